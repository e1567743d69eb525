"""Torch plumbing shared by the trained adapters: the classes they train on, seeded epochs, scoring.

Adapters train their cross-entropy over the classes that have support samples only: in the
base-to-new protocol the new classes are known by their text alone (CoCoOp trains on the base
class list), and their columns keep the text-based scores each method defines for them.
"""

from __future__ import annotations

import numpy as np
import torch

from unseen.core.device import as_tensor

SCORE_CHUNK = 4096
"""Rows scored at once: bounds the memory of Tip-Adapter's ``(rows, support)`` affinities."""


def supported_classes(labels: np.ndarray) -> np.ndarray:
    """Sorted ids of the classes with at least one support sample."""
    return np.unique(np.asarray(labels, dtype=np.int64))


def local_labels(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``labels`` as positions in the sorted ``classes``."""
    return np.searchsorted(classes, labels)


def tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 copy of ``a`` on ``device``."""
    return as_tensor(a, device)


def index_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """An int64 copy of ``a`` on ``device``."""
    return as_tensor(a, device, dtype=torch.int64)


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> list:
    """One epoch of minibatch indices: a seeded permutation cut into ``ceil(n / batch_size)``
    batches, the last one smaller (``drop_last=False``, as the reference data loaders)."""
    order = torch.randperm(n, generator=generator).to(device)
    return list(order.split(batch_size))
