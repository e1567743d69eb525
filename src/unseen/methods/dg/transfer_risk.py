"""TRM: representations on which a classifier fitted to one training domain transfers to the
others (the transfer risk), with the risk of swapping in another domain's optimal head estimated by
an influence-function (inverse-Hessian) correction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import autograd, nn

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, concat
from unseen.methods.registry import DG

HEAD_FIT_STEPS = 30
"""SGD steps fitting each domain's head to its detached features at every update (DomainBed's)."""
HEAD_LR = 0.1
NEUMANN_TERMS = 10
NEUMANN_LIMIT = 10.0


def neumann_inverse_hvp(
    vector: torch.Tensor,
    head: nn.Linear,
    features: torch.Tensor,
    y: torch.Tensor,
    terms: int = NEUMANN_TERMS,
    limit: float = NEUMANN_LIMIT,
) -> torch.Tensor:
    """``H^-1 v`` by the Neumann series ``sum_{t=0..terms} (I - H)^t v``, ``H`` the Hessian of
    ``cross_entropy(head(features), y)`` with respect to ``head.weight`` (flattened, features held
    fixed). The series stops after the first term that makes an entry of the sum exceed ``limit``
    in absolute value (it is not converging). Detached."""
    loss = F.cross_entropy(head(features.detach()), y)
    (gradient,) = autograd.grad(loss, head.weight, create_graph=True)
    gradient = gradient.flatten()
    term = vector.detach()
    estimate = term
    for _ in range(terms):
        (hessian_term,) = autograd.grad(gradient @ term, head.weight, retain_graph=True)
        term = term - hessian_term.flatten()
        estimate = estimate + term
        if estimate.abs().max() > limit:
            break
    return estimate.detach()


@DG.register("trm")
class TRM(Algorithm):
    """Transfer Risk Minimization (Xu & Jaakkola, *Learning Representations that Support Robust
    Transfer of Predictors*, arXiv 2021; DomainBed's ``TRM``).

    For the first ``iters`` steps, ERM. After, every update: (1) each training domain's own linear
    head is fitted to its domain's (detached) features by 30 SGD steps (lr 0.1; the heads persist
    across updates); (2) for each domain ``Q``, the transfer loss of ``Q``'s head on the other
    domains ``P``, weighted by ``alpha[Q, P]``, minus ``cos_lambda`` x ``H_Q^-1 g_P . g_Q`` (``g_Q``,
    ``g_P`` the gradients of ``Q``'s loss and of the weighted transfer loss with respect to the
    head's weight, ``H_Q^-1`` by :func:`neumann_inverse_hvp`): the first-order change of the
    transfer loss when the head is refitted; (3) the loss is ERM's pooled cross-entropy plus the
    mean over ``Q`` of those terms, and one Adam step updates featurizer and classifier. The weights
    ``alpha`` (off-diagonal, rows renormalised every update) grow as
    ``alpha[Q, P] *= exp(groupdro_eta x weighted transfer loss)``, as in DomainBed (the exponent
    uses the already-weighted loss).

    Difference from DomainBed: its Neumann loop aliases the first term (it adds ``(I - H) v``
    twice and never ``v``); here the series starts at ``v``, as written in the paper. Heads and
    classifier are linear (DomainBed ignores ``nonlinear_classifier`` here; it is refused). The
    per-domain heads have their own optimizer, so TRM is not a single objective: the update rules
    (SAM, FAD) refuse it; the averaging wrappers work and average ``network`` (featurizer and
    classifier; the heads are training state).
    """

    paper = "Xu & Jaakkola, Learning Representations that Support Robust Transfer of Predictors (arXiv 2021)"
    hparams = (
        HParam(
            "cos_lambda",
            1e-4,
            grid=(1e-5, 1e-4, 1e-3),
            help="weight of the head-refitting (inverse-Hessian) correction",
            draw=lambda r: float(10 ** r.uniform(-5, 0)),
        ),
        HParam(
            "iters",
            200,
            low=0,
            help="ERM steps before the transfer-risk term",
            draw=lambda r: int(10 ** r.uniform(0, 4)),
        ),
        HParam(
            "groupdro_eta",
            1e-2,
            grid=(1e-3, 1e-2, 1e-1),
            help="step of the transfer weights alpha",
            draw=lambda r: float(10 ** r.uniform(-3, -1)),
        ),
    )

    def _build(self) -> None:
        if self.params["nonlinear_classifier"]:
            raise HyperparameterError(
                "TRM's per-domain heads and their Hessians are defined for linear heads; set "
                "nonlinear_classifier=false."
            )
        width = self.featurizer.n_outputs
        self.heads = nn.ModuleList(nn.Linear(width, self.n_classes) for _ in range(self.n_domains))
        self.head_optimizer = torch.optim.SGD(self.heads.parameters(), lr=HEAD_LR)
        self.register_buffer("alpha", torch.ones(self.n_domains, self.n_domains) - torch.eye(self.n_domains))
        self.update_count = 0

    def fit_heads(self, features: list[torch.Tensor], labels: list[torch.Tensor]) -> None:
        """Step (1): each domain's head, HEAD_FIT_STEPS SGD steps on its domain's features."""
        for _ in range(HEAD_FIT_STEPS):
            loss = sum(
                F.cross_entropy(head(f.detach()), y)
                for head, f, y in zip(self.heads, features, labels, strict=True)
            )
            self.head_optimizer.zero_grad()
            loss.backward()
            self.head_optimizer.step()

    def transfer_term(
        self, q: int, features: list[torch.Tensor], labels: list[torch.Tensor], alpha: torch.Tensor
    ):
        """Step (2) for domain ``q`` with transfer weights ``alpha``: its differentiable term and the
        weighted transfer losses."""
        head = self.heads[q]
        own = F.cross_entropy(head(features[q]), labels[q])
        (own_grad,) = autograd.grad(own, head.weight, create_graph=True)
        transfer = [
            F.cross_entropy(head(f), y) * alpha[q, p]
            for p, (f, y) in enumerate(zip(features, labels, strict=True))
            if p != q
        ]
        total = sum(transfer)
        (transfer_grad,) = autograd.grad(total, head.weight, retain_graph=True)
        correction = neumann_inverse_hvp(transfer_grad.flatten(), head, features[q], labels[q])
        term = total - self.params["cos_lambda"] * (correction @ own_grad.flatten())
        return term, [t.detach() for t in transfer]

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        all_features = self.featurizer(x)
        nll = F.cross_entropy(self.classifier(all_features), y)
        loss = nll
        if self.update_count >= self.params["iters"] and len(minibatches) > 1:
            sizes = [len(yd) for _, yd in minibatches]
            features, labels = list(all_features.split(sizes)), [yd for _, yd in minibatches]
            with torch.no_grad():
                self.alpha /= self.alpha.sum(1, keepdim=True)
            self.fit_heads(features, labels)
            alpha, swap = self.alpha.clone(), 0.0
            for q in range(len(minibatches)):
                term, transfer = self.transfer_term(q, features, labels, alpha)
                swap = swap + term
                others = [p for p in range(len(minibatches)) if p != q]
                with torch.no_grad():
                    for p, value in zip(others, transfer, strict=True):
                        self.alpha[q, p] *= torch.exp(self.params["groupdro_eta"] * value)
            loss = nll + swap / len(minibatches)
        self.head_optimizer.zero_grad()
        self._step(loss)
        self.update_count += 1
        return {"loss": loss.detach(), "nll": nll.detach(), "trm_loss": (loss - nll).detach()}
