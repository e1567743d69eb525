"""EQRM: minimise a quantile of the distribution of the training domains' risks, estimated with a
Gaussian kernel density over the per-domain risks of the minibatch."""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from unseen.core.registry import HParam
from unseen.methods.dg.base import adam
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.registry import DG


def kde_bandwidth(values: torch.Tensor) -> torch.Tensor:
    """The Gaussian-optimal rule of thumb, ``1.06 x std x n^(-1/5)`` (unbiased standard deviation)."""
    return 1.06 * values.std() * len(values) ** -0.2


def kde_quantile(values: torch.Tensor, q: float, steps: int = 32) -> torch.Tensor:
    """The ``q``-quantile of the Gaussian kernel density estimate over ``values`` (bandwidth
    :func:`kde_bandwidth`), found by bisection of its CDF as DomainBed does: the bracket starts at
    the ``q``-quantiles of the kernels on the smallest and largest value, and each of at most
    ``steps`` halvings keeps the half where the CDF crosses ``q``. The result is a combination of
    the bracket's ends, so its gradient reaches the risks through the smallest and largest one and
    through the bandwidth (DomainBed's gradient). With fewer than two values, or all of them equal,
    there is no spread to estimate and every quantile is their mean."""
    if len(values) < 2 or bool((values == values[0]).all()):
        return values.mean()
    bandwidth = kde_bandwidth(values)
    z = statistics.NormalDist().inv_cdf(q)
    low, high = values.min() + bandwidth * z, values.max() + bandwidth * z
    kernels = torch.distributions.Normal(values, bandwidth)
    middle = (low + high) / 2
    for _ in range(steps):
        if kernels.cdf(middle).mean() > q:
            high = middle
        else:
            low = middle
        following = (low + high) / 2
        if torch.equal(following, middle):
            break
        middle = following
    return middle


@DG.register("eqrm")
class EQRM(SingleObjective):
    """Empirical Quantile Risk Minimization (Eastwood et al., *Probable Domain Generalization via
    Quantile Risk Minimization*, NeurIPS 2022, Algorithm 1; DomainBed's ``EQRM``): for the first
    ``eqrm_burnin_iters`` steps the mean of the training domains' risks (ERM's burn-in), then the
    ``eqrm_quantile``-quantile of their distribution, estimated by a Gaussian KDE over the
    minibatch's per-domain risks (:func:`kde_quantile`); at the switch Adam restarts with learning
    rate ``eqrm_lr``. ``eqrm_quantile`` near 1 approaches the worst domain's risk; 0.5 is the
    median. A single objective: it composes with the update rules (SAM, FAD) and the averaging
    wrappers."""

    paper = "Eastwood et al., Probable Domain Generalization via Quantile Risk Minimization (NeurIPS 2022)"
    hparams = (
        HParam(
            "eqrm_quantile",
            0.75,
            grid=(0.5, 0.75, 0.9),
            low=0.001,
            high=0.999,
            help="the quantile of the domains' risk distribution minimised",
            draw=lambda r: float(r.uniform(0.5, 0.99)),
        ),
        HParam(
            "eqrm_burnin_iters",
            2500,
            low=0,
            help="ERM steps before the quantile objective",
            draw=lambda r: int(10 ** r.uniform(2.5, 3.5)),
        ),
        HParam(
            "eqrm_lr",
            1e-6,
            grid=(1e-7, 1e-6, 1e-5),
            help="Adam learning rate after the burn-in",
            draw=lambda r: float(10 ** r.uniform(-7, -5)),
        ),
    )

    def _build(self) -> None:
        self.update_count = 0

    def objective(self, minibatches, commit: bool = True) -> ObjectiveValue:
        risks = torch.stack([F.cross_entropy(self.predict(x), y) for x, y in minibatches])
        burnin = self.params["eqrm_burnin_iters"]
        if commit and self.update_count == burnin:
            self.optimizer = adam(
                self.network.parameters(), lr=self.params["eqrm_lr"], weight_decay=self.params["weight_decay"]
            )
        if self.update_count < burnin:
            loss = risks.mean()
        else:
            loss = kde_quantile(risks, self.params["eqrm_quantile"])
        if commit:
            self.update_count += 1
        return loss, {"loss": loss.detach(), "nll": risks.mean().detach()}
