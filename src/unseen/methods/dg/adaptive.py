"""Algorithms whose prediction adapts to the batch it is given: ARM (a context computed from the
batch's inputs) and MTL (the batch's mean feature as a domain embedding).

Both keep DomainBed's contract: the protocol evaluates ``network(x)`` one chunk of one domain's
rows at a time, so the batch that defines the context is always from a single domain. Their
``featurizer`` is the adapted one (it takes the raw inputs and applies the context itself), so
``network = classifier(featurizer(x))``, the averaging wrappers, ``--save-model`` and ``unseen tta``
see an ordinary featurizer/classifier pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.dg.base import concat
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.registry import DG
from unseen.nn import networks


def context_network(input_shape: tuple[int, ...]) -> nn.Module:
    """ARM-CML's context network: three layers that keep the input's spatial size and output one
    channel (images: 5x5 convolutions with 64 channels, BatchNorm and ReLU, as DomainBed's
    ``ContextNet``); for feature vectors, the analogous MLP with 64 hidden units whose output has the
    input's dimension."""
    if len(input_shape) == 3:
        channels = input_shape[0]
        return nn.Sequential(
            nn.Conv2d(channels, 64, 5, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 64, 5, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 1, 5, padding=2),
        )
    width = input_shape[0]
    return nn.Sequential(
        nn.Linear(width, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, width),
    )


def batch_groups(n: int, support_size: int) -> list[int]:
    """DomainBed's ARM grouping of ``n`` rows: consecutive groups of ``support_size`` when they
    divide ``n``, else one group of all rows."""
    return [support_size] * (n // support_size) if n % support_size == 0 else [n]


def group_means(values: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Each row replaced by the mean of the rows of its group (consecutive groups of ``sizes``)."""
    return torch.cat([v.mean(0, keepdim=True).expand_as(v) for v in values.split(sizes)])


class ContextFeaturizer(nn.Module):
    """ARM-CML's adapted featurizer: ``featurizer([x, mean of context_net(x) over x's group])``,
    the context appended as one more input channel (feature vectors: as many more features)."""

    def __init__(self, context_net: nn.Module, featurizer: nn.Module, support_size: int) -> None:
        super().__init__()
        self.context_net = context_net
        self.featurizer = featurizer
        self.support_size = support_size
        self.n_outputs = featurizer.n_outputs

    def forward(self, x: torch.Tensor, groups: list[int] | None = None) -> torch.Tensor:
        sizes = batch_groups(len(x), self.support_size) if groups is None else groups
        context = group_means(self.context_net(x), sizes)
        return self.featurizer(torch.cat([x, context], 1))


@DG.register("arm")
class ARM(SingleObjective):
    """Adaptive Risk Minimization, its contextual meta-learning form ARM-CML (Zhang et al., NeurIPS
    2021; DomainBed's ``ARM``): a context network maps every input to one channel of the input's
    size; its mean over a batch of one domain is appended to each input of that batch as an extra
    channel before the featurizer, so the prediction adapts to the domain's unlabeled batch. Trained
    by ERM on the adapted predictions, each training domain's minibatch being one batch (DomainBed
    groups the pooled minibatch into ``batch_size`` rows, the same thing); at prediction, rows are
    grouped by ``batch_size`` when it divides the batch, else the whole batch is one group
    (DomainBed's rule).

    Differences from DomainBed, each for a reason: the context network is trained with the
    featurizer and classifier, as in the paper (DomainBed builds it after ERM's optimizer, so its
    weights never change); feature vectors get an MLP context network (DomainBed has ARM for images
    only). The ImageNet-pretrained featurizer takes RGB only and cannot take the extra channel: ARM
    refuses images larger than 32x32 (DomainBed adapts its ResNet's first convolution).

    A single objective: it composes with the update rules (SAM, FAD; the context network's
    BatchNorm statistics then also move in the perturbed evaluations) and with the averaging
    wrappers, which average the context network with the rest of ``network``.
    """

    paper = "Zhang et al., Adaptive Risk Minimization: Learning to Adapt to Domain Shift (NeurIPS 2021)"

    def __init__(self, input_shape, n_classes, n_domains, hparams=None, seed=0, device=None) -> None:
        if networks.featurizer_kind(tuple(input_shape)).name == "efficientnet-lite0":
            raise HyperparameterError(
                f"ARM appends a context channel to the input, giving {input_shape[0] + 1}-channel "
                "images; the ImageNet-pretrained featurizer of images larger than 32x32 takes RGB "
                "only. Use ARM on small images (H, W <= 32) or on extracted features "
                "(`unseen extract`, then npz-domains:)."
            )
        super().__init__(input_shape, n_classes, n_domains, hparams, seed, device)

    def _build(self) -> None:
        shape = self.input_shape
        adapted = (2 * shape[0],) if len(shape) == 1 else (shape[0] + 1, *shape[1:])
        self.featurizer = ContextFeaturizer(
            context_network(shape),
            networks.featurizer(adapted, self.params),
            self.params["batch_size"],
        )
        if self.featurizer.n_outputs != self.classifier.in_features:  # featurizer=linear: [x, context]
            self.classifier = networks.classifier(
                self.featurizer.n_outputs, self.n_classes, self.params["nonlinear_classifier"]
            )

    def objective(self, minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        features = self.featurizer(x, groups=[len(yd) for _, yd in minibatches])
        loss = F.cross_entropy(self.classifier(features), y)
        return loss, {"loss": loss.detach()}


class MarginalFeaturizer(nn.Module):
    """MTL's featurizer: ``[f(x), e]`` with ``e`` a domain embedding in feature space, by default
    the mean of ``f`` over the batch."""

    def __init__(self, featurizer: nn.Module) -> None:
        super().__init__()
        self.featurizer = featurizer
        self.n_outputs = 2 * featurizer.n_outputs

    @staticmethod
    def join(features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, embedding.expand_as(features)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.featurizer(x)
        return self.join(features, features.mean(0))


@DG.register("mtl")
class MTL(SingleObjective):
    """Marginal Transfer Learning (Blanchard et al., *Domain Generalization by Marginal Transfer
    Learning*, JMLR 2021), the neural-network form of DomainBed's ``MTL``: the classifier sees each
    sample's features next to an embedding of its domain's marginal distribution, the mean feature.
    In training, domain ``d``'s embedding is ``mtl_ema`` x the minibatch's mean feature + (1 -
    ``mtl_ema``) x its previous embedding (a buffer starting at zero); the loss is the sum over
    domains of their cross-entropies. At prediction the embedding is the mean feature of the batch
    being predicted (one domain's rows; see the module docstring).

    Difference from DomainBed: its code overwrites the embedding with standard-normal noise (an
    in-place ``normal_()`` on it) before the classifier, in training and prediction, so the
    classifier only ever sees noise in place of the embedding; here the classifier sees the
    embedding, as the paper and the rest of DomainBed's code intend.

    A single objective: it composes with the update rules (the perturbed evaluations of one update
    mix the batch mean with the embeddings as they were before that update) and with the averaging
    wrappers (the embeddings are training state; prediction does not use them).
    """

    paper = "Blanchard et al., Domain Generalization by Marginal Transfer Learning (JMLR 2021)"
    hparams = (
        HParam(
            "mtl_ema",
            0.99,
            grid=(0.5, 0.9, 0.99),
            high=1.0,
            help="weight of the minibatch's mean feature in a domain's embedding (1: no memory)",
            draw=lambda r: float(r.choice([0.5, 0.9, 0.99, 1.0])),
        ),
    )

    def _build(self) -> None:
        width = self.featurizer.n_outputs
        self.featurizer = MarginalFeaturizer(self.featurizer)
        self.classifier = networks.classifier(
            self.featurizer.n_outputs, self.n_classes, self.params["nonlinear_classifier"]
        )
        self.register_buffer("embeddings", torch.zeros(self.n_domains, width))
        self._embeddings_before_update = None

    def objective(self, minibatches, commit: bool = True) -> ObjectiveValue:
        if commit or self._embeddings_before_update is None:
            self._embeddings_before_update = self.embeddings.clone()
        previous = self._embeddings_before_update
        decay = self.params["mtl_ema"]
        loss = 0.0
        features = self.domain_features(minibatches, self.featurizer.featurizer)
        for d, (f, (_, y)) in enumerate(zip(features, minibatches, strict=True)):
            embedding = decay * f.mean(0) + (1 - decay) * previous[d]
            if commit:
                self.embeddings[d] = embedding.detach()
            loss = loss + F.cross_entropy(self.classifier(MarginalFeaturizer.join(f, embedding)), y)
        return loss, {"loss": loss.detach()}
