"""Building blocks of ITTA (Chen et al., *Improved Test-Time Adaptation for Domain Generalization*,
CVPR 2023), shared by its training algorithm (:mod:`unseen.methods.dg.itta`) and its test-time
method (:mod:`unseen.methods.tta.itta`).

- :class:`ElementwiseAffineStack`: ``depth`` element-wise affine maps with ReLU between them,
  weights 1 and biases 0 at the start. Over the featurizer's output it is the learnable test-time
  loss ``||f_w(z_aug - z)||^2``; over a block's feature map it is one test-time adapter.
- :func:`augmented_pair`: the features of a batch and of its feature-level augmentation, MixStyle
  after the first or (with probability 1/2) the second of the featurizer's ``style_layers()``,
  ResNet's first two stages in the paper.
- :func:`adapter_sites`: where the adapters go, after the activation ending each block (the paper:
  after each of ResNet's four stages, whose outputs are ReLU outputs too).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.nn.mixstyle import mixstyle
from unseen.nn.networks import SmallImageCNN

MIXSTYLE_ALPHA = 0.1
"""The Beta(0.1, 0.1) of the augmentation's mixing weights, MixStyle's default as ITTA uses it."""


class ElementwiseAffineStack(nn.Module):
    """``x -> w_D * relu(... relu(w_1 * x + b_1) ...) + b_D``, every ``w_i``, ``b_i`` of ``shape``.

    The identity on non-negative inputs at the start (all weights 1, biases 0).
    """

    def __init__(self, shape: tuple[int, ...], depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise HyperparameterError(f"an element-wise affine stack needs depth >= 1, got {depth}.")
        self.weights = nn.ParameterList(nn.Parameter(torch.ones(shape)) for _ in range(depth))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(shape)) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = w * x + b
            if i < last:
                x = torch.relu(x)
        return x


def learned_loss(loss_net: nn.Module, z: torch.Tensor, z_aug: torch.Tensor) -> torch.Tensor:
    """ITTA's learnable consistency loss: the mean square of ``loss_net(z_aug - z)``."""
    return loss_net(z_aug - z).pow(2).mean()


def check_style_layers(featurizer: nn.Module, owner: str) -> None:
    """Refuse featurizers without spatial style layers (feature vectors), naming ``owner``."""
    if not getattr(featurizer, "style_layers", lambda: [])():
        raise HyperparameterError(
            f"{owner} augments features by mixing feature-map styles (channel means and standard "
            "deviations) after the featurizer's first stages; this featurizer has no such layers "
            "(feature vectors). Use image inputs (the small CNN)."
        )


def augmented_pair(
    featurizer: nn.Module, x: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(featurizer(x), featurizer(x augmented))`` in one pass over ``[x; x]``: MixStyle on the
    second half after the first style layer, or after the second with probability 1/2, with
    Beta(0.1, 0.1) weights and a random pairing within the half. Every draw comes from
    ``generator``; the featurizer normalizes per sample, so the halves do not interact."""
    layers = featurizer.style_layers()
    n = len(x)
    late = float(torch.rand((), generator=generator)) >= 0.5
    layer = layers[1 if late and len(layers) > 1 else 0]
    seed = int(torch.randint(2**31 - 1, (), generator=generator))
    weights = torch.from_numpy(np.random.default_rng(seed).beta(MIXSTYLE_ALPHA, MIXSTYLE_ALPHA, n)).float()
    perm = torch.randperm(n, generator=generator).to(x.device)

    def augment(module, inputs, output):
        return torch.cat([output[:n], mixstyle(output[n:], weights, perm)])

    handle = layer.register_forward_hook(augment)
    try:
        z = featurizer(torch.cat([x, x]))
    finally:
        handle.remove()
    return z[:n], z[n:]


ADAPTER_SITES: dict[type, Callable[[nn.Module], list[nn.Module]]] = {
    SmallImageCNN: lambda f: [m for m in f.body if isinstance(m, nn.ReLU)],
}
"""Per featurizer class: the modules after which ITTA inserts an adapter, one per block. The small
CNN's four ReLUs end its convolution blocks (before their GroupNorm), so an adapter starts as the
identity on their non-negative maps."""


def adapter_sites(featurizer: nn.Module) -> list[nn.Module]:
    """The layers after which ITTA's adapters go (see :data:`ADAPTER_SITES`); refuses others."""
    sites = ADAPTER_SITES.get(type(featurizer))
    if sites is None:
        raise HyperparameterError(
            f"itta inserts its test-time adapters after each block of the featurizer; it knows the "
            f"blocks of {', '.join(c.__name__ for c in ADAPTER_SITES)}, not of "
            f"{type(featurizer).__name__}. Use small images (H, W <= 32: the small CNN)."
        )
    return sites(featurizer)
