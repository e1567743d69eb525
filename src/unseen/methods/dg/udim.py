"""UDIM: Unknown Domain Inconsistency Minimization (Shin et al., ICLR 2024), on top of SAM.

SAM flattens the loss landscape of the source domains around the weights; UDIM also asks that
the landscape of *unknown* domains agree with it. Unknown domains are crafted by perturbing the
source inputs in data space, in the direction that most increases the loss of the
perturbed-weight model (SAM's worst case, to first order ``L(x) + rho |grad_w L(x)|``), and the
inconsistency between the source and the perturbed domain is penalised at the current weights.

One update on the pooled minibatch ``x`` (the official code's ``IADA_DG_FINAL``):

1. ``g = grad_w L(x)``; SAM's perturbation ``e = rho g / |g|``.
2. The perturbed domain ``x~ = x + rho_x normalize(grad_x [L(x) + rho |grad_w L(x)|])``: the
   gradient is a second-order one (through ``grad_w L``), and it is normalised as the official
   code does, each input coordinate's gradient to unit L2 norm across the minibatch
   (``F.normalize(dim=0)``); ``x~`` is then held constant.
3. SAM's gradient ``g_sam = grad_w L(x)`` at ``w + e``.
4. The inconsistency at ``w``, per training domain ``d`` (the official multi-source mode): the
   per-sample gradients of the classifier head on ``x_d`` and on ``x~_d``; their variances
   (the perturbed ones centred on the *source* mean, as the official code does) are matched
   with Fishr's penalty (the Hessian-alignment term of the paper's Taylor expansion), plus the
   mean squared per-sample gradient norm on ``x~_d`` divided by each head parameter's size (the
   perturbed domain's gradient norm, the first-order term); summed over domains.
5. The step uses ``g_sam + lambda grad_w inconsistency`` with the algorithm's Adam.

For the first ``udim_warmup_steps`` updates only SAM's step is taken (the official runs train
SAM for the first fifth of their 5,000 steps, then switch; 1,000 by default here).

Defaults: the official scripts' ``rho = 0.05``, ``rho_x`` (``syn_lr``) ``= 10``, ``lambda``
(``worst_weight``) ``= 1``; DomainBed's shared hyperparameters otherwise. The random-search
distributions of ``rho_x`` and ``lambda`` are ours (the authors ran the defaults only). The
official code's adversarial-style variant (``advstyle``, perturbing image mean and std) is its
single-source setting and is not built here.

Why an algorithm and not an update rule: UDIM perturbs the *inputs* and adds a penalty computed
from them, while an :class:`~unseen.methods.dg.optimizers.UpdateRule` only sees an algorithm's
scalar objective at perturbed weights. UDIM therefore runs SAM's weight perturbation itself (its
loss is ERM's) and does not expose a single objective, so ``--update-rule`` refuses it. CLI:
``unseen dg --data builtin:rotated-digits --algorithm udim --test-env 0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, concat
from unseen.methods.dg.gradients import fishr_penalty, per_sample_head_grads
from unseen.methods.dg.optimizers import Grads, _gradients, _shifted, ascent_step, global_norm
from unseen.methods.registry import DG


def perturbed_domain(
    network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rho: float, rho_x: float
) -> tuple[torch.Tensor, torch.Tensor, Grads]:
    """UDIM's crafted domain ``x + rho_x normalize(grad_x [L + rho |grad_w L|], dim=0)``, with the
    loss ``L(x)`` and its weight gradient ``grad_w L`` (detached), from one forward pass."""
    params = [p for p in network.parameters() if p.requires_grad]
    inputs = x.detach().requires_grad_(True)
    loss = F.cross_entropy(network(inputs), y)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    (direction,) = torch.autograd.grad(loss + rho * global_norm(grads), inputs)
    crafted = (x + rho_x * F.normalize(direction, p=2.0, dim=0)).detach()
    return crafted, loss.detach(), [g.detach() for g in grads]


def inconsistency(source_grads: torch.Tensor, crafted_grads: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """UDIM's inconsistency of one domain from per-sample head gradients ``(n, k)`` of its source
    and crafted samples (``sizes``: the head parameters' sizes, in the same flattened order):
    Fishr's penalty between the source variance and the crafted samples' spread around the source
    mean, plus, per head parameter, the crafted samples' mean squared gradient norm divided by the
    parameter's size."""
    centre = source_grads.mean(0, keepdim=True)
    source_var = (source_grads - centre).pow(2).mean(0)
    crafted_var = (crafted_grads - centre).pow(2).mean(0)
    alignment = fishr_penalty(torch.stack([source_var, crafted_var]))
    norm = sum(g.pow(2).sum(1).mean() / g.shape[1] for g in crafted_grads.split(sizes, dim=1))
    return alignment + norm


@DG.register("udim")
class UDIM(Algorithm):
    """Unknown Domain Inconsistency Minimization: SAM plus the inconsistency between the source
    domains and their data-space worst-case perturbation (see the module docstring)."""

    paper = "Shin et al., Unknown Domain Inconsistency Minimization for Domain Generalization (ICLR 2024)"
    hparams = (
        HParam(
            "rho",
            0.05,
            grid=(0.01, 0.02, 0.05, 0.1),
            help="SAM's weight-perturbation radius",
            draw=lambda r: float(r.choice([0.01, 0.02, 0.05, 0.1])),
        ),
        HParam(
            "udim_rho_x",
            10.0,
            grid=(1.0, 10.0),
            help="step of the data perturbation crafting the unknown domain",
            draw=lambda r: float(10 ** r.uniform(0, 2)),
        ),
        HParam(
            "udim_lambda",
            1.0,
            grid=(0.1, 1.0, 10.0),
            help="weight of the inconsistency penalty",
            draw=lambda r: float(10 ** r.uniform(-1, 1)),
        ),
        HParam("udim_warmup_steps", 1000, low=0, help="SAM-only updates before UDIM's penalty starts"),
    )

    def _build(self) -> None:
        self.register_buffer("update_count", torch.zeros((), dtype=torch.long))

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        params = [p for p in self.network.parameters() if p.requires_grad]
        rho = self.params["rho"]
        warm = int(self.update_count) < self.params["udim_warmup_steps"]
        self.update_count += 1
        if warm:
            loss = F.cross_entropy(self.network(x), y)
            g = _gradients(loss, params)
            crafted = None
        else:
            crafted, loss, g = perturbed_domain(self.network, x, y, rho, self.params["udim_rho_x"])
        with _shifted(params, ascent_step(g, rho)):
            sam_grads = _gradients(F.cross_entropy(self.network(x), y), params)
        logs: StepLogs = {"loss": loss.detach()}
        if crafted is not None:
            penalty = self._inconsistency(x, crafted, y, [len(yd) for _, yd in minibatches])
            weight = self.params["udim_lambda"]
            sam_grads = [s + weight * p for s, p in zip(sam_grads, _gradients(penalty, params), strict=True)]
            logs["inconsistency"] = penalty.detach()
        self.optimizer.zero_grad()
        for p, grad in zip(params, sam_grads, strict=True):
            p.grad = grad
        self.optimizer.step()
        return logs

    def _inconsistency(
        self, x: torch.Tensor, crafted: torch.Tensor, y: torch.Tensor, sizes: list[int]
    ) -> torch.Tensor:
        head_sizes = [p.numel() for p in self.classifier.parameters()]
        total = x.new_zeros(())
        for xs, xc, ys in zip(x.split(sizes), crafted.split(sizes), y.split(sizes), strict=True):
            features = self.featurizer(torch.cat([xs, xc]))
            grads = per_sample_head_grads(self.classifier, features, torch.cat([ys, ys]))
            total = total + inconsistency(grads[: len(ys)], grads[len(ys) :], head_sizes)
        return total
