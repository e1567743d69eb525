"""Featurizers and classifier heads for domain generalization, DomainBed's architectures.

Gulrajani & Lopez-Paz, *In Search of Lost Domain Generalization* (ICLR 2021): an MLP for
feature vectors, a four-layer CNN with GroupNorm for small images (their ``MNIST_CNN``), an
ImageNet-pretrained network for larger RGB images (:mod:`unseen.nn.efficientnet_dg`; theirs is a
ResNet-50), and a linear or one-hidden-layer classifier on top. :func:`featurizer` picks the
network from the input shape, as DomainBed does, through the :data:`FEATURIZERS` registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.nn.efficientnet_dg import EfficientNetLite0Featurizer


class MLP(nn.Module):
    """``depth`` linear layers of ``width`` units with ReLU and dropout; ``n_outputs`` wide."""

    def __init__(self, n_inputs: int, n_outputs: int, width: int, depth: int, dropout: float) -> None:
        super().__init__()
        if depth < 2:
            raise HyperparameterError(f"mlp_depth must be >= 2 (input and output layers), got {depth}.")
        layers: list[nn.Module] = [nn.Linear(n_inputs, width), nn.Dropout(dropout), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.Dropout(dropout), nn.ReLU()]
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)
        self.n_outputs = n_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def style_layers(self) -> list[nn.Module]:
        """None: feature vectors carry no spatial style statistics."""
        return []


class IdentityFeaturizer(nn.Module):
    """The inputs themselves as features (``n_outputs = d``): the classifier head acts directly on
    cached feature vectors, the linear probe that frozen-feature DG reports. It has no parameters,
    so whatever an algorithm adds at the feature level (alignment penalties, feature mixing) acts
    on fixed features; only terms that reach the classifier train anything."""

    def __init__(self, n_inputs: int) -> None:
        super().__init__()
        self.n_outputs = n_inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def style_layers(self) -> list[nn.Module]:
        """None: feature vectors carry no spatial style statistics."""
        return []


class SmallImageCNN(nn.Module):
    """DomainBed's ``MNIST_CNN``: 64-128-128-128 3x3 convolutions (the second with stride 2),
    ReLU and GroupNorm(8), global average pooling; 128 features. Works for any image of at
    least 4x4 pixels (8x8 scikit-learn digits, 14x14 or 28x28 MNIST variants).
    """

    n_outputs = 128

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        channels = input_shape[0]
        self.body = nn.Sequential(
            nn.Conv2d(channels, 64, 3, 1, padding=1),
            nn.ReLU(),
            nn.GroupNorm(8, 64),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.GroupNorm(8, 128),
            nn.Conv2d(128, 128, 3, 1, padding=1),
            nn.ReLU(),
            nn.GroupNorm(8, 128),
            nn.Conv2d(128, 128, 3, 1, padding=1),
            nn.ReLU(),
            nn.GroupNorm(8, 128),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def style_layers(self) -> list[nn.Module]:
        """The ends (GroupNorm) of the first two convolution blocks."""
        return [m for m in self.body if isinstance(m, nn.GroupNorm)][:2]


@dataclass(frozen=True)
class FeaturizerKind:
    """One featurizer network: the inputs it takes (``accepts`` an input shape) and its builder."""

    name: str
    inputs: str
    accepts: Callable[[tuple[int, ...]], bool]
    build: Callable[[tuple[int, ...], Mapping[str, Any]], nn.Module]


def _mlp(input_shape: tuple[int, ...], hparams: Mapping[str, Any]) -> nn.Module:
    width = hparams["mlp_width"]
    return MLP(input_shape[0], width, width, hparams["mlp_depth"], hparams["mlp_dropout"])


def _efficientnet(input_shape: tuple[int, ...], hparams: Mapping[str, Any]) -> nn.Module:
    return EfficientNetLite0Featurizer(hparams["backbone_dropout"], hparams["freeze_bn"])


FEATURIZERS: tuple[FeaturizerKind, ...] = (
    FeaturizerKind("mlp", "feature vectors (n, d)", lambda s: len(s) == 1, _mlp),
    FeaturizerKind(
        "linear",
        "feature vectors (n, d), the classifier directly on them",
        lambda s: len(s) == 1,
        lambda s, _: IdentityFeaturizer(s[0]),
    ),
    FeaturizerKind(
        "small-cnn",
        "small images (n, C, H, W) with H, W <= 32",
        lambda s: len(s) == 3 and max(s[1:]) <= 32,
        lambda s, _: SmallImageCNN(s),
    ),
    FeaturizerKind(
        "efficientnet-lite0",
        "RGB images (n, 3, H, W) with H, W > 32",
        lambda s: len(s) == 3 and s[0] == 3 and min(s[1:]) > 32,
        _efficientnet,
    ),
)
"""The featurizers in the order they are tried; the first that accepts the input shape is the
default, and the ``featurizer`` hyperparameter picks another that accepts it by name (feature
vectors: ``mlp``, DomainBed's, or ``linear``)."""


def featurizer_choices(input_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the featurizers that accept inputs of ``input_shape``, the default first."""
    return tuple(kind.name for kind in FEATURIZERS if kind.accepts(tuple(input_shape)))


def featurizer_kind(input_shape: tuple[int, ...], name: str | None = None) -> FeaturizerKind:
    """The featurizer network for inputs of ``input_shape`` (one sample's shape): the one called
    ``name``, or by default the first that accepts the shape."""
    shape = tuple(input_shape)
    accepting = [kind for kind in FEATURIZERS if kind.accepts(shape)]
    if name is not None:
        named = [kind for kind in accepting if kind.name == name]
        if not named:
            raise HyperparameterError(
                f"featurizer '{name}' does not take inputs of shape {shape}; choose one of "
                f"{[kind.name for kind in accepting]}."
            )
        return named[0]
    if accepting:
        return accepting[0]
    raise HyperparameterError(
        f"no featurizer for inputs of shape {shape}: use "
        + "; ".join(kind.inputs for kind in FEATURIZERS)
        + ". Resize images with a data spec option (e.g. folder:DIR?size=224) or extract features "
        "with `unseen extract`."
    )


def featurizer(input_shape: tuple[int, ...], hparams: Mapping[str, Any]) -> nn.Module:
    """The featurizer for ``input_shape`` (see :data:`FEATURIZERS`; ``hparams["featurizer"]``
    names one where the shape has a choice), built from ``hparams``."""
    return featurizer_kind(input_shape, hparams.get("featurizer")).build(tuple(input_shape), hparams)


def classifier(n_features: int, n_classes: int, nonlinear: bool = False) -> nn.Module:
    """A linear head, or DomainBed's nonlinear head (two hidden ReLU layers of n_features/2)."""
    if not nonlinear:
        return nn.Linear(n_features, n_classes)
    hidden = n_features // 2
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )
