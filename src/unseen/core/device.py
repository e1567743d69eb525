"""Device choice and seeded random streams for the torch-based methods.

Methods never move tensors to a hard-coded GPU or seed torch globally: they resolve
``self.device`` here and draw every random number from an explicit generator seeded from
``self.seed``. Draws made once (weight initialisation) come from CPU generators, so a seed gives
the same initial weights on any device; draws made every step (noise, minibatch order) come from
a generator on the method's device, so a training loop never waits on a host-to-device copy.
The same seed gives the same numbers on the same device (CPU and CUDA draw different streams).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` (CPU by default) seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(int(seed))


def stream(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """An independent generator on ``device`` for the random stream ``name`` of a method seeded ``seed``.

    Separate streams keep, e.g., the generator's training draws identical whether or not
    validation checkpoints train classifiers in between.
    """
    return cpu_generator(int(seed) * 1_000_003 + zlib.crc32(name.encode()), device)


def fork_rng(device: torch.device):
    """``torch.random.fork_rng`` over the CPU and, for a CUDA ``device``, that device: global draws
    made inside (dropout) leave the caller's random state untouched."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.random.fork_rng(devices=[index])


def as_tensor(a: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A copy of ``a`` on ``device`` (never a view into read-only numpy memory)."""
    return torch.as_tensor(np.array(a, copy=True)).to(device=device, dtype=dtype)


@torch.no_grad()
def score_in_chunks(
    score: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray, device: torch.device, chunk: int = 4096
) -> np.ndarray:
    """``score`` applied to row chunks of ``X`` (each copied to ``device`` as float32), concatenated
    on the host: the memory of scoring stays bounded however many rows ``X`` has. An empty ``X``
    gives a ``(0, C)`` result."""
    starts = range(0, max(len(X), 1), chunk)
    return torch.cat([score(as_tensor(X[i : i + chunk], device)).cpu() for i in starts]).numpy()
