"""MixStyle (Zhou et al., *Domain Generalization with MixStyle*, ICLR 2021): a featurizer option.

During training, after each of the featurizer's ``style_layers()`` and with probability ``p`` per
forward pass, every sample's feature-map style (per-channel mean and standard deviation over the
spatial positions, both treated as constants) is replaced by a convex combination of its own and
that of a random other sample of the batch, with a weight drawn from ``Beta(alpha, alpha)`` per
sample; the normalized content is kept. In evaluation mode the layer's output is untouched.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def mixstyle(x: torch.Tensor, weights: torch.Tensor, perm: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x`` (n, C, H, W) with each sample's style mixed with that of sample ``perm[i]``:
    ``weights[i]`` of its own mean and std, the rest of the other's."""
    mean = x.mean(dim=(2, 3), keepdim=True).detach()
    std = (x.var(dim=(2, 3), keepdim=True) + eps).sqrt().detach()
    content = (x - mean) / std
    w = weights.view(-1, 1, 1, 1).to(x)
    return content * (w * std + (1 - w) * std[perm]) + w * mean + (1 - w) * mean[perm]


class MixStyleHook:
    """A forward hook that applies :func:`mixstyle` to a layer's output in training mode; every
    random draw comes from ``generator`` (the algorithm's), so a run repeats exactly."""

    def __init__(self, p: float, alpha: float, generator: torch.Generator) -> None:
        self.p, self.alpha, self.generator = p, alpha, generator

    def __call__(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        if not module.training or output.dim() != 4:
            return output
        if float(torch.rand((), generator=self.generator)) >= self.p:
            return output
        n = output.shape[0]
        seed = int(torch.randint(2**31 - 1, (), generator=self.generator))
        weights = torch.from_numpy(np.random.default_rng(seed).beta(self.alpha, self.alpha, n))
        perm = torch.randperm(n, generator=self.generator).to(output.device)
        return mixstyle(output, weights.float(), perm)


def add_mixstyle(featurizer: nn.Module, p: float, alpha: float, generator: torch.Generator) -> list:
    """MixStyle after each of ``featurizer.style_layers()`` (the small CNN's first two blocks,
    EfficientNet's stride-4 and stride-8 stages: where ResNet's first two stages end, MixStyle's
    ``res1-2`` placement). Returns the hook handles."""
    hook = MixStyleHook(p, alpha, generator)
    return [layer.register_forward_hook(hook) for layer in featurizer.style_layers()]
