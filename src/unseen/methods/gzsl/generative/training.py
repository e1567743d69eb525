"""Training-loop toolkit: seeded streams, on-device minibatches, frozen modules, the adaptive
gradient-penalty weight, batched synthesis.

All random numbers come from explicit generators (``unseen.core.device.stream``); per-step draws are
made on the generator's device, which the methods put beside their data, and minibatch orders a
whole epoch at a time; minibatches are index rows into tensors that already live on the device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

FEATURE_SCALINGS = ("minmax", "none")
"""Feature conventions: ``minmax`` is the official codes' ``--preprocessing`` (scikit-learn's
``MinMaxScaler`` fitted on the training features); ``none`` uses features as given."""


def gaussian(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal draws of ``shape`` from ``generator`` (made on its device), on ``device``."""
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


@dataclass
class BatchSampler:
    """Minibatch index rows for ``n`` samples: consecutive seeded permutations, cut into batches.

    Every sample appears once per permutation and no batch repeats a sample unless ``batch > n``.
    """

    n: int
    batch: int
    generator: torch.Generator
    device: torch.device

    def draw(self, n_batches: int) -> torch.Tensor:
        """``(n_batches, batch)`` sample indices on the device."""
        need = n_batches * self.batch
        g = self.generator
        perms = [torch.randperm(self.n, generator=g, device=g.device) for _ in range(-(-need // self.n))]
        return torch.cat(perms)[:need].view(n_batches, self.batch).to(self.device)

    def epoch(self) -> torch.Tensor:
        """One pass: ``ceil(n / batch)`` batches, the last one filled from the next permutation."""
        return self.draw(-(-self.n // self.batch))


class MinMaxScaler:
    """Per-dimension ``(x - min) / (max - min)`` with the training set's min and max (constant
    dimensions are shifted, not scaled); test features may fall outside [0, 1]."""

    def __init__(self, X: np.ndarray, kind: str = "minmax"):
        if kind not in FEATURE_SCALINGS:
            raise ValueError(f"feature_scaling must be one of {FEATURE_SCALINGS}, got {kind!r}")
        X = np.asarray(X, dtype=np.float32)
        self.kind = kind
        self.low = X.min(axis=0) if kind == "minmax" else np.zeros(X.shape[1], np.float32)
        span = X.max(axis=0) - self.low if kind == "minmax" else np.ones(X.shape[1], np.float32)
        self.span = np.where(span > 0, span, 1.0).astype(np.float32)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float32) - self.low) / self.span).astype(np.float32)


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module``'s parameters do not require gradients inside the block (the generator steps'
    pass through the critic: gradients flow to the input only, no weight gradient is computed)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class AdaptivePenaltyWeight:
    """The gradient-penalty weight ``lambda`` of the official f-VAEGAN-D2 / TF-VAEGAN code.

    After the critic steps of each generator step, :meth:`update` takes their raw penalties
    ``E[(||grad|| - 1)^2]``: when ``adaptive``, ``lambda`` is multiplied by 1.1 if their mean
    exceeds 1.05 and divided by 1.1 if it is below 1.001, otherwise kept. ``value`` is a
    0-dim tensor on the device, so the rule runs without synchronising with it.
    """

    HIGH, LOW, FACTOR = 1.05, 1.001, 1.1

    def __init__(self, initial: float, adaptive: bool, device: torch.device):
        self.value = torch.tensor(float(initial), device=device)
        self.adaptive = adaptive

    def update(self, penalties: list[torch.Tensor]) -> None:
        if not self.adaptive:
            return
        mean = torch.stack(penalties).detach().mean()
        larger, smaller = self.value * self.FACTOR, self.value / self.FACTOR
        self.value = torch.where(mean > self.HIGH, larger, torch.where(mean < self.LOW, smaller, self.value))


@torch.no_grad()
def synthesize(
    generate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    semantics: torch.Tensor,
    class_ids: np.ndarray,
    per_class: int,
    noise_dim: int,
    generator: torch.Generator,
    chunk: int = 16384,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` features for each class in ``class_ids``: ``generate(z, a)`` in large chunks.

    ``semantics`` ``(n_classes, k)`` on the device, indexed by global class id. Returns the
    features and their global labels, both on the device.
    """
    device = semantics.device
    labels = torch.as_tensor(np.repeat(np.asarray(class_ids, dtype=np.int64), per_class), device=device)
    noise = gaussian((len(labels), noise_dim), generator, device)
    parts = [
        generate(noise[i : i + chunk], semantics[labels[i : i + chunk]]) for i in range(0, len(labels), chunk)
    ]
    return torch.cat(parts), labels
