"""The domain-generalization algorithm contract (DomainBed's, without global lookups).

An algorithm is built from ``(input_shape, n_classes, n_domains, hparams)``; ``update`` takes one
minibatch ``(x, y)`` per training domain, takes one optimization step and returns its losses as
floats; ``predict`` returns logits. Hyperparameters are declared next to each class as
:class:`~unseen.core.registry.HParam` objects: DomainBed's default and its random-search
distribution (``draw``), each draw seeded by the run's hyperparameter seed and a hash of the
hyperparameter's name.

The shared hyperparameters depend on the featurizer the input shape selects, as DomainBed's
depend on the dataset: :data:`FEATURIZER_HPARAMS` adds or replaces some of
:data:`COMMON_HPARAMS` per featurizer (:data:`unseen.nn.networks.FEATURIZERS`), so
:meth:`Algorithm.all_hparams` of an input shape is the full declaration for that data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.device import resolve_device
from unseen.core.errors import HyperparameterError
from unseen.core.method import Method
from unseen.core.registry import HParam
from unseen.nn import networks
from unseen.nn.domaindrop import DOMAINDROP_HPARAMS, add_domaindrop
from unseen.nn.mixstyle import add_mixstyle

Minibatches = Sequence[tuple[torch.Tensor, torch.Tensor]]

COMMON_HPARAMS: tuple[HParam, ...] = (
    HParam(
        "lr",
        1e-3,
        grid=(1e-4, 1e-3),
        help="Adam learning rate",
        draw=lambda r: float(10 ** r.uniform(-4.5, -2.5)),
    ),
    HParam(
        "batch_size",
        64,
        high=2**20,
        grid=(32, 64),
        help="examples per domain per step",
        draw=lambda r: int(2 ** r.uniform(3, 9)),
    ),
    HParam("weight_decay", 0.0, help="Adam weight decay", draw=lambda r: float(10 ** r.uniform(-6, -2))),
    HParam("mlp_width", 256, help="MLP featurizer width", draw=lambda r: int(2 ** r.uniform(6, 10))),
    HParam("mlp_depth", 3, help="MLP featurizer depth", draw=lambda r: int(r.choice([3, 4, 5]))),
    HParam("mlp_dropout", 0.0, help="MLP dropout", draw=lambda r: float(r.choice([0.0, 0.1, 0.5]))),
    HParam("nonlinear_classifier", False, help="two hidden layers in the head", choices=(False, True)),
)
"""DomainBed's hyperparameters shared by every algorithm (its small-image / MLP settings)."""

LARGE_IMAGE_HPARAMS: tuple[HParam, ...] = (
    HParam(
        "lr",
        5e-5,
        grid=(1e-5, 5e-5),
        help="Adam learning rate",
        draw=lambda r: float(10 ** r.uniform(-5, -3.5)),
    ),
    HParam(
        "batch_size",
        32,
        high=2**20,
        grid=(16, 32),
        help="examples per domain per step",
        draw=lambda r: int(2 ** r.uniform(3, 5.5)),
    ),
    HParam(
        "backbone_dropout",
        0.0,
        help="dropout on the pretrained network's pooled features (DomainBed's resnet_dropout)",
        draw=lambda r: float(r.choice([0.0, 0.1, 0.5])),
    ),
    HParam(
        "freeze_bn",
        True,
        help="BatchNorm layers keep their ImageNet running statistics during training",
        choices=(True, False),
    ),
    HParam(
        "data_augmentation",
        True,
        help="random resized crop, flip, colour jitter and greyscale on training minibatches",
        choices=(True, False),
    ),
)
"""DomainBed's settings for its datasets of full-size images (all but ``SMALL_IMAGES``), used with
the ImageNet-pretrained featurizer; weight decay keeps the shared declaration (default 0, draw
``10^U(-6, -2)``), which is already DomainBed's large-image one. ``data_augmentation`` is
DomainBed's too (always on in its search); the protocol applies
:class:`~unseen.data.augmentation.ImageAugmentation` to the training minibatches."""

MIXSTYLE_HPARAMS: tuple[HParam, ...] = (
    HParam(
        "mixstyle",
        False,
        choices=(False, True),
        help="MixStyle after the featurizer's first two stages (Zhou et al., ICLR 2021)",
    ),
    HParam("mixstyle_p", 0.5, high=1.0, help="probability that MixStyle acts on a forward pass"),
    HParam("mixstyle_alpha", 0.1, help="Beta(alpha, alpha) distribution of the style mixing weight"),
)
"""MixStyle, a featurizer option of the image featurizers (:mod:`unseen.nn.mixstyle`), off by
default; the paper's ``p = 0.5`` and ``alpha = 0.1``. Feature vectors have no style statistics,
so the MLP featurizer does not declare it."""

VECTOR_HPARAMS: tuple[HParam, ...] = (
    HParam(
        "featurizer",
        "mlp",
        choices=networks.featurizer_choices((1,)),
        help="network on feature vectors: mlp (DomainBed's) or linear (the classifier directly on "
        "the features); kept at its value in random search",
    ),
)
"""The featurizer choice for feature vectors (:data:`unseen.nn.networks.FEATURIZERS`): DomainBed's
MLP by default, or ``linear``, no featurizer network at all (frozen-feature DG's linear head)."""

FEATURIZER_HPARAMS: dict[str, tuple[HParam, ...]] = {
    "mlp": VECTOR_HPARAMS,
    "small-cnn": MIXSTYLE_HPARAMS + DOMAINDROP_HPARAMS,
    "efficientnet-lite0": LARGE_IMAGE_HPARAMS + MIXSTYLE_HPARAMS + DOMAINDROP_HPARAMS,
}
"""Per featurizer name: hyperparameters that replace the shared one of the same name, or are added."""


def shared_hparams(input_shape: tuple[int, ...] | None = None) -> tuple[HParam, ...]:
    """:data:`COMMON_HPARAMS` adjusted for the featurizer of ``input_shape`` (``None``: unadjusted).

    A replacement takes the shared hyperparameter's place; added ones follow. Feature vectors add
    the ``featurizer`` choice (:data:`VECTOR_HPARAMS`, declared under the default featurizer's name,
    ``mlp``).
    """
    if input_shape is None:
        return COMMON_HPARAMS
    adjusted = {h.name: h for h in FEATURIZER_HPARAMS.get(networks.featurizer_kind(input_shape).name, ())}
    merged = tuple(adjusted.pop(h.name, h) for h in COMMON_HPARAMS)
    return merged + tuple(adjusted.values())


def adam(params, **options) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused kernel: one pass over all parameters per step instead of
    a loop of small per-tensor ops; the same update up to float rounding (benchmarks/RESULTS.md)."""
    return torch.optim.Adam(params, fused=True, **options)


StepLogs = dict[str, torch.Tensor | float]
"""What an update logs: detached 0-dim tensors (or floats), which the protocol reads only at
checkpoints, so that a training step never waits for the device."""


class Algorithm(Method, nn.Module):
    """Base class: a featurizer, a classifier head, ``network = classifier(featurizer(x))``.

    Subclasses set ``paper`` and extra ``hparams`` and override :meth:`update`. Weights are
    initialised from ``seed`` without touching the global torch random state; randomness inside
    updates (mixing weights, pairings) draws from ``self.generator``.
    """

    role: ClassVar[str] = "DG algorithm"
    feature_level: ClassVar[str] = ""
    """Why the algorithm needs a featurizer with parameters (its defining term acts on the
    featurizer's output), or empty; such an algorithm refuses a featurizer without parameters
    (``featurizer=linear`` on feature vectors), where that term could not train anything."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_classes: int,
        n_domains: int,
        hparams: Mapping[str, Any] | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self._set_params(hparams, seed, resolve_device(device), declared=self.all_hparams(self.input_shape))
        self.n_classes = n_classes
        self.n_domains = n_domains
        self.generator = torch.Generator().manual_seed(int(seed))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.featurizer = networks.featurizer(self.input_shape, self.params)
            if self.params.get("mixstyle"):
                add_mixstyle(
                    self.featurizer, self.params["mixstyle_p"], self.params["mixstyle_alpha"], self.generator
                )
            self.classifier = networks.classifier(
                self.featurizer.n_outputs, n_classes, self.params["nonlinear_classifier"]
            )
            self._build()
            if self.params.get("domaindrop"):  # DomainDrop (unseen.nn.domaindrop): after _build's draws
                args = (self.input_shape, n_domains, self.params, self.generator)
                add_domaindrop(self.featurizer, *args).attach_head(self.classifier)
        self._require_trainable_featurizer()
        self.network = nn.Sequential(self.featurizer, self.classifier)
        self.to(self.device)
        self.optimizer = self._optimizer(self.network.parameters())

    @classmethod
    def all_hparams(cls, input_shape: tuple[int, ...] | None = None) -> tuple[HParam, ...]:
        """Every hyperparameter of this algorithm on inputs of ``input_shape`` (one sample's shape).

        Without a shape: the shared declarations of feature vectors and small images.
        """
        return shared_hparams(input_shape) + cls.hparams

    def _build(self) -> None:
        """Extra modules of the algorithm, created under the seeded initialisation."""

    def _require_trainable_featurizer(self) -> None:
        if self.feature_level and not any(True for _ in self.featurizer.parameters()):
            raise HyperparameterError(
                f"DG algorithm '{self.name}' cannot train with featurizer "
                f"'{self.params.get('featurizer')}', which has no parameters: {self.feature_level}, and "
                "fixed features leave that term nothing to train. Use featurizer=mlp (the default on "
                "feature vectors)."
            )

    def _optimizer(self, params) -> torch.optim.Optimizer:
        return adam(params, lr=self.params["lr"], weight_decay=self.params["weight_decay"])

    def update(self, minibatches: Minibatches) -> StepLogs:
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def domain_features(
        self, minibatches: Minibatches, featurizer: nn.Module | None = None
    ) -> list[torch.Tensor]:
        """The featurizer's output for each minibatch: one pass over their concatenation, unless a
        BatchNorm layer normalises with batch statistics (``freeze_bn`` off); then each domain
        passes alone, as in DomainBed, so that its statistics stay its own. ``featurizer``: another
        network to apply the same way (default: ``self.featurizer``)."""
        featurizer = self.featurizer if featurizer is None else featurizer
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in featurizer.modules()):
            return [featurizer(x) for x, _ in minibatches]
        x, _ = concat(minibatches)
        return list(featurizer(x).split([len(y) for _, y in minibatches]))

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def concat(minibatches: Minibatches) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([x for x, _ in minibatches]), torch.cat([y for _, y in minibatches])


def per_domain_losses(logits: torch.Tensor, minibatches: Minibatches) -> list[torch.Tensor]:
    """Cross-entropy of each domain's slice of ``logits`` (computed on all domains at once)."""
    out, start = [], 0
    for _, y in minibatches:
        out.append(F.cross_entropy(logits[start : start + len(y)], y))
        start += len(y)
    return out
