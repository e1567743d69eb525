"""Device choice and seeded random streams for the torch-based methods.

Methods never move tensors to a hard-coded GPU or seed torch globally: they resolve
``self.device`` here and draw every random number (initialisation, minibatch order) from an
explicit CPU generator seeded from ``self.seed``, so the same seed gives the same draws whatever
the device.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_generator(seed: int) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded with ``seed``."""
    return torch.Generator(device="cpu").manual_seed(int(seed))


def stream(seed: int, name: str) -> torch.Generator:
    """An independent CPU generator for the random stream ``name`` of a method seeded ``seed``.

    Separate streams keep, e.g., the generator's training draws identical whether or not
    validation checkpoints train classifiers in between.
    """
    return cpu_generator(int(seed) * 1_000_003 + zlib.crc32(name.encode()))


def as_tensor(a: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A copy of ``a`` on ``device`` (never a view into read-only numpy memory)."""
    return torch.as_tensor(np.array(a, copy=True)).to(device=device, dtype=dtype)
