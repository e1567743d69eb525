"""Transfer: features on which no classifier near the current one performs very differently across
the training domains (transferability), by an adversarial classifier kept in a ball around it."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, adam, concat
from unseen.methods.registry import DG


def loss_gap(head: nn.Module, features: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """The largest minus the smallest of the domains' cross-entropies of ``head`` on their features."""
    losses = torch.stack([F.cross_entropy(head(f), y) for f, y in zip(features, labels, strict=True)])
    return losses.max() - losses.min()


@torch.no_grad()
def project_to_ball(moving: nn.Module, centre: nn.Module, radius: float) -> None:
    """Move ``moving``'s parameters onto the Euclidean ball of ``radius`` around ``centre``'s (all
    parameters as one vector) when they lie outside it, along the line to the centre."""
    pairs = list(zip(moving.parameters(), centre.parameters(), strict=True))
    distance = torch.sqrt(sum((p - c).pow(2).sum() for p, c in pairs))
    if distance > radius:
        for p, c in pairs:
            p.copy_(c + (radius / distance) * (p - c))


@DG.register("transfer")
class Transfer(Algorithm):
    """Transfer (Zhang et al., *Quantifying and Improving Transferability in Domain Generalization*,
    NeurIPS 2021, Algorithm 1; DomainBed's ``Transfer``).

    Every update: (1) an ERM step of featurizer and classifier on the pooled minibatch; (2) a
    second step of the same optimizer on ``t_lambda`` x the gap between the largest and smallest
    domain risk of an adversarial classifier on the new features (:func:`loss_gap`; only the
    featurizer moves); (3) the adversarial classifier restarts from the classifier and takes
    ``d_steps_per_g`` SGD steps (lr ``lr_d``) that increase the gap, each followed by the
    projection onto the ball of radius ``delta`` around the classifier (:func:`project_to_ball`).

    Differences from DomainBed, each for a reason: DomainBed's ``gda`` option gives its main
    optimizer the adversarial classifier's parameters (so featurizer and classifier never train);
    here ``gda`` makes the main optimizer plain SGD over featurizer and classifier (gradient
    descent-ascent), which is what the option names. DomainBed declares ``weight_decay_d`` and
    ``beta1`` for Transfer but its code uses neither; they are not declared here.

    Two optimizers and an adversarial phase: the update rules (SAM, FAD) refuse Transfer with an
    error; the averaging wrappers work and average ``network`` (featurizer and classifier; the
    adversarial classifier is training state).
    """

    paper = "Zhang et al., Quantifying and Improving Transferability in Domain Generalization (NeurIPS 2021)"
    hparams = (
        HParam(
            "t_lambda",
            1.0,
            grid=(0.1, 1.0, 10.0),
            help="weight of the domain-risk gap",
            draw=lambda r: float(10 ** r.uniform(-2, 1)),
        ),
        HParam(
            "delta",
            2.0,
            grid=(0.5, 2.0, 3.0),
            help="radius of the ball around the classifier the adversary stays in",
            draw=lambda r: float(r.uniform(0.1, 3.0)),
        ),
        HParam(
            "d_steps_per_g",
            10,
            grid=(1, 5, 10),
            help="adversary steps per update",
            draw=lambda r: int(r.choice([1, 2, 5])),
        ),
        HParam(
            "gda",
            False,
            choices=(False, True),
            help="plain SGD for featurizer and classifier (gradient descent-ascent)",
            draw=lambda r: True,
        ),
        HParam(
            "lr_d",
            1e-3,
            grid=(1e-4, 1e-3),
            help="SGD learning rate of the adversarial classifier",
            draw=lambda r: float(10 ** r.uniform(-4.5, -2.5)),
        ),
    )

    def _build(self) -> None:
        self.adversary = copy.deepcopy(self.classifier)
        self.adversary_optimizer = torch.optim.SGD(self.adversary.parameters(), lr=self.params["lr_d"])

    def _optimizer(self, params) -> torch.optim.Optimizer:
        if self.params["gda"]:
            return torch.optim.SGD(params, lr=self.params["lr"])
        return adam(params, lr=self.params["lr"], weight_decay=self.params["weight_decay"])

    def _gap(self, minibatches: Minibatches) -> torch.Tensor:
        features = self.domain_features(minibatches)
        return self.params["t_lambda"] * loss_gap(self.adversary, features, [y for _, y in minibatches])

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        loss = F.cross_entropy(self.predict(x), y)
        self._step(loss)
        self._step(self._gap(minibatches))
        self.adversary.load_state_dict(self.classifier.state_dict())
        for _ in range(self.params["d_steps_per_g"]):
            gap = self._gap(minibatches)
            self.adversary_optimizer.zero_grad()
            (-gap).backward()
            self.adversary_optimizer.step()
            project_to_ball(self.adversary, self.classifier, self.params["delta"])
        return {"loss": loss.detach(), "gap": gap.detach()}
