"""CAD and CondCAD: a contrastive bottleneck that removes domain information from the features."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unseen.core.registry import HParam
from unseen.methods.dg.base import Minibatches, concat
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.registry import DG

BASE_TEMPERATURE = 0.07
"""SupCon's reference temperature; the loss is scaled by ``temperature / BASE_TEMPERATURE``."""


def finite_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of the finite entries of ``values`` (0 when there are none)."""
    finite = torch.isfinite(values)
    return torch.where(finite, values, torch.zeros_like(values)).sum() / finite.sum().clamp_min(1)


def domain_bottleneck_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    domains: torch.Tensor,
    temperature: float,
    conditional: bool,
) -> torch.Tensor:
    """CAD's contrastive domain-bottleneck loss, in its "flipped" form (DomainBed's default).

    Similarities ``z_i . z_j / temperature`` between every pair of distinct samples define, for
    each anchor ``i``, a softmax over the other samples (unconditional: all of them; conditional:
    those of ``i``'s class). The loss is minus the log of the probability mass on samples from
    *other* domains (conditional: of the same class), scaled by ``temperature / 0.07`` and
    averaged over the anchors that have such samples: minimising it pulls samples of different
    domains together, so the features carry less about the domain (given the class).
    """
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    same_label = (labels[:, None] == labels[None]) & ~eye
    other_domain = domains[:, None] != domains[None]
    if conditional:
        candidates, positives = same_label, same_label & other_domain
    else:
        candidates, positives = ~eye, other_domain
    # Anchors without candidates or positives would make a logsumexp of nothing (and NaN
    # gradients): they are left out before it, as DomainBed does.
    valid = positives.any(dim=1) if conditional else same_label.any(dim=1)
    logits = (z[valid] @ z.T) / temperature
    log_prob = logits - torch.logsumexp(
        logits.masked_fill(~candidates[valid], float("-inf")), 1, keepdim=True
    )
    mass = torch.logsumexp(log_prob.masked_fill(~positives[valid], float("-inf")), dim=1)
    return finite_mean(-(temperature / BASE_TEMPERATURE) * mass)


class _CAD(SingleObjective):
    """CAD (Ruan, Dubois, Maddison, *Optimal Representations for Covariate Shift*, ICLR 2022;
    DomainBed's ``CAD`` / ``CondCAD``): cross-entropy on the pooled minibatch plus ``lmbda`` x
    :func:`domain_bottleneck_loss` of the features, which removes information about the domain
    (CondCAD: about the domain given the class). DomainBed's settings: flipped loss, no projection
    head, unnormalised features."""

    paper = "Ruan, Dubois, Maddison, Optimal Representations for Covariate Shift (ICLR 2022)"
    feature_level = "its contrastive bottleneck shapes the featurizer's output"
    conditional = False
    hparams = (
        HParam(
            "lmbda",
            0.1,
            grid=(0.01, 0.1, 1.0),
            help="bottleneck weight",
            draw=lambda r: float(r.choice([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2])),
        ),
        HParam(
            "temperature",
            0.1,
            grid=(0.05, 0.1),
            help="softmax temperature of the similarities",
            draw=lambda r: float(r.choice([0.05, 0.1])),
        ),
    )

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        domains = torch.cat(
            [torch.full((len(yi),), k, device=y.device) for k, (_, yi) in enumerate(minibatches)]
        )
        z = torch.cat(self.domain_features(minibatches))
        nll = F.cross_entropy(self.classifier(z), y)
        bottleneck = domain_bottleneck_loss(z, y, domains, self.params["temperature"], self.conditional)
        loss = nll + self.params["lmbda"] * bottleneck
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "bottleneck": bottleneck.detach()}


@DG.register("cad")
class CAD(_CAD):
    __doc__ = _CAD.__doc__ + " CAD: the unconditional bottleneck, ``I(D; Z)``."


@DG.register("condcad")
class CondCAD(_CAD):
    __doc__ = _CAD.__doc__ + " CondCAD: the conditional bottleneck, ``I(D; Z | Y)``."
    conditional = True
