"""RDM: match the distribution of per-sample risks of the worst training domain to that of all
training domains, with a kernel MMD over the risks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unseen.core.registry import HParam
from unseen.methods.dg.base import adam, concat, shared_hparams
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.registry import DG
from unseen.nn import networks

RDM_GAMMAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
"""The Gaussian kernels' inverse widths of RDM's MMD (DomainBed's, one more than MMD's)."""


def risk_mmd(first: torch.Tensor, second: torch.Tensor, gammas=RDM_GAMMAS) -> torch.Tensor:
    """Biased MMD^2 between two samples of scalars with the kernel ``sum_g exp(-g (a - b)^2)``."""

    def kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        squared = (a[:, None] - b[None]).pow(2)
        return sum(torch.exp(-g * squared) for g in gammas).mean()

    return kernel_mean(first, first) + kernel_mean(second, second) - 2 * kernel_mean(first, second)


@DG.register("rdm")
class RDM(SingleObjective):
    """Risk Distribution Matching (Nguyen et al., *Domain Generalisation via Risk Distribution
    Matching*, WACV 2024; DomainBed's ``RDM``): the mean of the domains' risks plus, after
    ``rdm_penalty_anneal_iters`` ERM steps, ``rdm_lambda`` x the MMD (:func:`risk_mmd`) between
    the per-sample losses of the domain with the largest mean loss and the per-sample losses of all
    domains, plus ``variance_weight`` x the sum of the (unbiased) variances of those two sets of
    losses. At the switch Adam restarts with learning rate ``rdm_lr``.

    Defaults and search distributions are DomainBed's for its datasets other than DomainNet,
    TerraIncognita and OfficeHome (whose ``rdm_lambda``, anneal and ``variance_weight`` differ);
    with the pretrained image featurizer the batch size is DomainBed's RDM one (88, U(70, 100)).
    Minibatches of different sizes are allowed (DomainBed stacks them). A single objective: it
    composes with the update rules (SAM, FAD) and the averaging wrappers."""

    paper = "Nguyen et al., Domain Generalisation via Risk Distribution Matching (WACV 2024)"
    hparams = (
        HParam(
            "rdm_lambda",
            5.0,
            grid=(1.0, 5.0, 10.0),
            help="weight of the risk-distribution MMD",
            draw=lambda r: float(r.uniform(0.1, 10.0)),
        ),
        HParam(
            "rdm_penalty_anneal_iters",
            1500,
            low=0,
            help="ERM steps before the matching and variance penalties",
            draw=lambda r: int(r.uniform(800, 2700)),
        ),
        HParam(
            "variance_weight",
            0.004,
            grid=(0.001, 0.004, 0.007),
            help="weight of the variances of the per-sample losses",
            draw=lambda r: float(r.uniform(0.001, 0.007)),
        ),
        HParam(
            "rdm_lr",
            1.5e-5,
            grid=(8e-6, 1.5e-5, 2e-5),
            help="Adam learning rate after the anneal",
            draw=lambda r: float(r.uniform(8e-6, 2e-5)),
        ),
    )

    @classmethod
    def all_hparams(cls, input_shape=None):
        declared = shared_hparams(input_shape) + cls.hparams
        if input_shape is None or networks.featurizer_kind(input_shape).name != "efficientnet-lite0":
            return declared
        batch = HParam(
            "batch_size",
            88,
            high=2**20,
            grid=(70, 88, 100),
            help="examples per domain per step",
            draw=lambda r: int(r.uniform(70, 100)),
        )
        return tuple(batch if h.name == "batch_size" else h for h in declared)

    def _build(self) -> None:
        self.update_count = 0

    def objective(self, minibatches, commit: bool = True) -> ObjectiveValue:
        anneal = self.params["rdm_penalty_anneal_iters"]
        on = self.update_count >= anneal
        if commit and self.update_count == anneal:
            self.optimizer = adam(
                self.network.parameters(), lr=self.params["rdm_lr"], weight_decay=self.params["weight_decay"]
            )
        x, y = concat(minibatches)
        losses = F.cross_entropy(self.predict(x), y, reduction="none").split(
            [len(yd) for _, yd in minibatches]
        )
        risks = torch.stack([l.mean() for l in losses])
        nll = risks.mean()
        worst = losses[int(risks.argmax())]
        pooled = torch.cat(losses)
        matching = risk_mmd(worst, pooled)
        variance = pooled.var() + worst.var()
        loss = nll
        if on:
            loss = loss + self.params["rdm_lambda"] * matching + self.params["variance_weight"] * variance
        if commit:
            self.update_count += 1
        return loss, {
            "loss": loss.detach(),
            "nll": nll.detach(),
            "matching": matching.detach(),
            "variance": variance.detach(),
        }
