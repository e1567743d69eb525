"""DG objectives that pull each sample toward the other samples of its class, across the training
domains: SelfReg (features and logits), XDED (predictions) and RIDG (rationales)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.dg.base import Minibatches, concat
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.dg.style import add_unistyle
from unseen.methods.registry import DG


def same_class_permutation(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices that shuffle the batch within each class: ``y[perm] == y``."""
    perm = torch.arange(len(y))
    for c in torch.unique(y.cpu()).tolist():
        members = torch.nonzero(y.cpu() == c).flatten()
        perm[members] = members[torch.randperm(len(members), generator=generator)]
    return perm.to(y.device)


def class_mean_rows(values: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Each row replaced by the mean of the rows of its class in the batch."""
    sums = torch.zeros(n_classes, values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, y, values)
    counts = torch.bincount(y, minlength=n_classes).clamp(min=1).to(values.dtype)
    return (sums / counts[:, None])[y]


@DG.register("selfreg")
class SelfReg(SingleObjective):
    """SelfReg: self-supervised contrastive regularization with positive pairs only
    (Kim et al., ICCV 2021), as in DomainBed and the authors' DomainBed code.

    Each sample is paired with a random same-class sample (any domain) and with a mixup, weight
    ``lam ~ Beta(0.5, 0.5)``, of two such samples. The logits are matched to the partner's
    logits and the features to the partner's projection by a three-layer MLP with BatchNorm
    ("CDPL"), in mean squared error, the feature terms weighted 0.3; the whole regularizer is
    scaled by ``min(cross-entropy, 1)``. As in both codes the projection is not in the optimizer:
    it stays at its seeded initialization.
    """

    paper = (
        "Kim et al., SelfReg: Self-supervised Contrastive Regularization for Domain Generalization "
        "(ICCV 2021)"
    )
    feature_weight = 0.3
    mixup_alpha = 0.5

    def _build(self) -> None:
        width = self.featurizer.n_outputs
        hidden = width if width == 2048 else 2 * width
        self.projection = nn.Sequential(
            nn.Linear(width, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, width),
            nn.BatchNorm1d(width),
        )

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        seed = int(torch.randint(2**31, (1,), generator=self.generator))
        lam = float(np.random.default_rng(seed).beta(self.mixup_alpha, self.mixup_alpha))
        features = self.featurizer(x)
        projected = self.projection(features)
        logits = self.classifier(features)
        first, second = (same_class_permutation(y, self.generator) for _ in range(2))
        mixed_logits = lam * logits[first] + (1 - lam) * logits[second]
        mixed_projected = lam * projected[first] + (1 - lam) * projected[second]
        individual = F.mse_loss(logits, logits[first]) + self.feature_weight * F.mse_loss(
            features, projected[first]
        )
        heterogeneous = F.mse_loss(logits, mixed_logits) + self.feature_weight * F.mse_loss(
            features, mixed_projected
        )
        nll = F.cross_entropy(logits, y)
        loss = nll + nll.detach().clamp(max=1.0) * (lam * individual + (1 - lam) * heterogeneous)
        return loss, {"loss": loss.detach(), "nll": nll.detach()}


def ensemble_distillation_loss(logits: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """XDED's loss: KL from the softened mean logits of each sample's class in the batch (the
    cross-domain ensemble, detached) to the sample's softened prediction, times ``T^2``,
    averaged over the batch."""
    teacher = class_mean_rows(logits.detach(), y, logits.shape[1])
    log_student = F.log_softmax(logits / temperature, dim=1)
    return F.kl_div(log_student, F.softmax(teacher / temperature, dim=1), reduction="sum") * (
        temperature**2 / len(logits)
    )


@DG.register("xded")
class XDED(SingleObjective):
    """Cross-Domain Ensemble Distillation (Lee et al., ECCV 2022): cross-entropy plus
    ``xded_lambda`` times the distillation of every sample toward the ensemble of the
    predictions of its class across the training domains (temperature ``xded_temperature``),
    and, with ``xded_unistyle``, UniStyle after the featurizer's early blocks (image
    featurizers only; see :func:`~unseen.methods.dg.style.add_unistyle`). Defaults are the
    official configuration (lambda 5, temperature 4); DomainBed has no XDED, so the search
    distributions are log-uniform around them.
    """

    paper = "Lee et al., Cross-Domain Ensemble Distillation for Domain Generalization (ECCV 2022)"
    hparams = (
        HParam(
            "xded_lambda",
            5.0,
            grid=(1.0, 5.0, 10.0),
            help="distillation weight",
            draw=lambda r: float(10 ** r.uniform(-1, 1)),
        ),
        HParam(
            "xded_temperature",
            4.0,
            grid=(2.0, 4.0, 8.0),
            help="distillation temperature",
            draw=lambda r: float(r.choice([2.0, 4.0, 8.0])),
        ),
        HParam("xded_unistyle", True, help="UniStyle in the image featurizer", choices=(True, False)),
    )

    def _build(self) -> None:
        if self.params["xded_unistyle"]:
            add_unistyle(self.featurizer)

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        logits = self.predict(x)
        nll = F.cross_entropy(logits, y)
        distill = ensemble_distillation_loss(logits, y, self.params["xded_temperature"])
        loss = nll + self.params["xded_lambda"] * distill
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "distill": distill.detach()}


@DG.register("ridg")
class RIDG(SingleObjective):
    """Rationale Invariance for domain generalization (Chen et al., ICCV 2023), as the official code.

    A sample's rationale is the (n_classes, d) matrix of its features times each class's head
    weights, ``R[k] = w_k * h`` (element-wise), whose row sums are the logits without bias. A bank
    holds one mean rationale per class, set to the batch's class mean the first time the class
    is seen and then updated ``bank <- (1 - momentum) * bank + momentum * batch mean``; the
    penalty, weight ``ridg_reg``, is the squared distance of each rationale to its class's
    (detached, just updated) bank entry, averaged over samples and rows and summed over classes.
    """

    paper = "Chen et al., Domain Generalization via Rationale Invariance (ICCV 2023)"
    hparams = (
        HParam(
            "momentum",
            0.001,
            grid=(1e-4, 1e-3, 1e-2),
            help="bank update rate",
            draw=lambda r: float(10 ** r.uniform(-4, -1)),
        ),
        HParam(
            "ridg_reg",
            0.01,
            grid=(0.01, 0.1),
            help="penalty weight",
            draw=lambda r: float(10 ** r.uniform(-2, -1)),
        ),
    )

    def _build(self) -> None:
        if not isinstance(self.classifier, nn.Linear):
            raise HyperparameterError(
                "RIDG's rationale is defined for a linear classifier head; set nonlinear_classifier=false."
            )
        width = self.featurizer.n_outputs
        self.register_buffer("rationale_bank", torch.zeros(self.n_classes, self.n_classes, width))
        self.register_buffer("bank_filled", torch.zeros(self.n_classes, dtype=torch.bool))

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        features = self.featurizer(x)
        logits = self.classifier(features)
        rationales = features[:, None, :] * self.classifier.weight[None]
        penalty = torch.zeros((), device=features.device)
        for c in torch.unique(y).tolist():
            members = rationales[y == c]
            batch_mean = members.mean(0).detach()
            target = (
                (1 - self.params["momentum"]) * self.rationale_bank[c] + self.params["momentum"] * batch_mean
                if self.bank_filled[c]
                else batch_mean
            )
            if commit:
                self.rationale_bank[c] = target
                self.bank_filled[c] = True
            penalty = penalty + (members - target).pow(2).sum(-1).mean()
        nll = F.cross_entropy(logits, y)
        loss = nll + self.params["ridg_reg"] * penalty
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}
