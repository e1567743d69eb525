"""Hyperparameter choice on the few-shot validation set, by the schemes of the reference codes.

The reference codes of Tip-Adapter, GDA and CoOp's linear probe search on their validation (or
test) split; the adapters here run the same searches on the ``val`` set the protocol hands to
``fit``, and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import torch

from unseen.core.arrays import unit_rows
from unseen.core.errors import DataFormatError
from unseen.methods.vlm.base import FewShotSet
from unseen.methods.vlm.training import local_labels

T = TypeVar("T")


def accuracy(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of ``scores`` ``(n, C)`` against ``labels`` ``(n,)``."""
    if isinstance(scores, torch.Tensor):
        return float((scores.argmax(dim=1) == labels).float().mean())
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def first_best(candidates: Iterable[T], score: Callable[[T], float]) -> tuple[T, float]:
    """The candidate of highest ``score``; ties go to the earliest (the reference codes' strict ``>``)."""
    best, best_score = None, -math.inf
    for candidate in candidates:
        value = score(candidate)
        if value > best_score:
            best, best_score = candidate, value
    if best is None:
        raise ValueError("first_best needs at least one candidate")
    return best, best_score


def tip_adapter_grid(scale: float, steps: int) -> tuple[float, ...]:
    """Tip-Adapter's search values: ``steps`` evenly spaced from 0.1 towards ``scale`` (excluded)."""
    return tuple(0.1 + i * (scale - 0.1) / steps for i in range(steps))


def coarse_then_bisect(evaluate: Callable[[float], float], coarse: Sequence[float], steps: int) -> float:
    """CoOp's search for the linear probe's ``C`` (Zhou et al., IJCV 2022, ``lpclip``).

    Evaluate every value of ``coarse``; around the first best ``c``, bisect ``[c / 10, 10 c]`` in
    log scale ``steps`` times, each time keeping the half on the side of the better endpoint
    (the left one on ties). Returns the better endpoint of the last step (``c`` when
    ``steps == 0``). ``evaluate`` is called at most once per distinct value.
    """
    seen: dict[float, float] = {}

    def cached(c: float) -> float:
        if c not in seen:
            seen[c] = evaluate(c)
        return seen[c]

    chosen, _ = first_best(coarse, cached)
    left, right = chosen / 10.0, chosen * 10.0
    for _ in range(steps):
        middle = 10.0 ** (0.5 * (math.log10(left) + math.log10(right)))
        if cached(left) < cached(right):
            chosen, left = right, middle
        else:
            chosen, right = left, middle
    return chosen


def validation_among(val: FewShotSet, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm features of the ``val`` samples of ``classes`` and their positions in ``classes``.

    Searches score validation samples among the classes that have support samples, as the
    protocols score base classes among themselves.
    """
    keep = np.isin(val.labels, classes)
    if not keep.any():
        raise DataFormatError(
            "few-shot validation set: none of its samples belongs to a class with support samples, "
            "so nothing can be tuned on it; draw validation samples from the support classes or pass "
            "val=None to use the paper defaults."
        )
    return unit_rows(val.features[keep]), local_labels(val.labels[keep], classes)
