"""Calibrated stacking, the seen-unseen accuracy curve and its area (AUSUC).

Chao et al., *An Empirical Study and Analysis of Generalized Zero-Shot Learning for Object
Recognition in the Wild* (ECCV 2016). Calibrated stacking subtracts a constant ``gamma`` from the
scores of seen classes. As ``gamma`` sweeps the real line each sample changes its prediction
exactly once: from its best seen class to its best unseen class, at ``gamma`` equal to its score
gap ``max_seen - max_unseen``. The seen and unseen accuracies are therefore step functions of
``gamma`` whose steps sit at the sorted gaps, and the curve and its area are computed exactly
from those gaps (no grid).

Convention at a step: with ``gamma == gap`` the sample is assigned to its unseen class (a seen
prediction needs ``max_seen - gamma > max_unseen``; ties go to unseen).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def calibrated_stacking(scores: np.ndarray, seen_mask: np.ndarray, gamma: float) -> np.ndarray:
    """Scores with ``gamma`` subtracted from every seen class column."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores - gamma * np.asarray(seen_mask, dtype=np.float64)[None, :]


@dataclass(frozen=True)
class SeenUnseenCurve:
    """The exact seen-unseen accuracy curve (percent), one point per distinct gap plus ends.

    ``gammas[i]`` is a value of the calibration constant at which the accuracies are
    ``seen[i]`` and ``unseen[i]``; ``gammas`` increase, ``seen`` falls and ``unseen`` rises.
    Point ``i`` holds for ``gammas[i] <= gamma < gammas[i + 1]``: the first point
    (``gamma = -inf``) assigns every sample to its best seen class, the last (from the largest
    gap on) every sample to its best unseen class.
    """

    gammas: np.ndarray
    seen: np.ndarray
    unseen: np.ndarray

    @property
    def ausuc(self) -> float:
        """Area under the curve of seen vs unseen accuracy, as a fraction in [0, 1]."""
        s = self.seen / 100.0
        u = self.unseen / 100.0
        return float(np.sum((u[1:] - u[:-1]) * (s[1:] + s[:-1]) / 2.0))

    def best_h(self) -> tuple[float, float]:
        """(H, gamma) maximising the harmonic mean; gamma is the midpoint of the best interval."""
        total = self.seen + self.unseen
        h = np.where(total > 0, 2 * self.seen * self.unseen / np.where(total > 0, total, 1.0), 0.0)
        i = int(np.argmax(h))
        return float(h[i]), float(self._representative_gamma(i))

    def _representative_gamma(self, i: int) -> float:
        """A finite gamma inside the interval where point ``i`` holds: [gammas[i], gammas[i+1])."""
        g = self.gammas
        lo = g[i]
        hi = g[i + 1] if i + 1 < len(g) else np.inf
        if np.isneginf(lo):
            return float(hi - 1.0)
        if np.isposinf(hi):
            return float(lo + 1.0)
        return float((lo + hi) / 2.0)


def _class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weight 1 / (n_classes * n_samples_of_its_class): sums to 1 over the set."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / (len(counts) * counts[inverse])


def seen_unseen_curve(scores: np.ndarray, labels: np.ndarray, seen_mask: np.ndarray) -> SeenUnseenCurve:
    """The exact curve for a test set holding both seen- and unseen-class samples.

    ``scores`` is ``(n, n_classes)`` over all classes, ``labels`` the true global ids,
    ``seen_mask`` the classes' roles. Seen accuracy averages per class over samples of seen
    classes, unseen accuracy over samples of unseen classes, both searching all classes.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    seen_mask = np.asarray(seen_mask, dtype=bool)
    seen_ids = np.flatnonzero(seen_mask)
    unseen_ids = np.flatnonzero(~seen_mask)
    best_seen = seen_ids[scores[:, seen_ids].argmax(axis=1)]
    best_unseen = unseen_ids[scores[:, unseen_ids].argmax(axis=1)]
    rows = np.arange(len(labels))
    gap = scores[rows, best_seen] - scores[rows, best_unseen]
    is_seen_sample = seen_mask[labels]
    if not is_seen_sample.any() or is_seen_sample.all():
        raise ValueError("the seen-unseen curve needs test samples of both seen and unseen classes")

    # Each sample contributes (weight) to seen accuracy while gamma < gap if its best seen class
    # is right, and to unseen accuracy once gamma >= gap if its best unseen class is right.
    w = np.zeros(len(labels))
    w[is_seen_sample] = _class_weights(labels[is_seen_sample])
    w[~is_seen_sample] = _class_weights(labels[~is_seen_sample])
    seen_gain = np.where(is_seen_sample & (best_seen == labels), w, 0.0)
    unseen_gain = np.where(~is_seen_sample & (best_unseen == labels), w, 0.0)

    order = np.argsort(gap, kind="stable")
    steps, first = np.unique(gap[order], return_index=True)
    seen_lost = np.add.reduceat(seen_gain[order], first)
    unseen_won = np.add.reduceat(unseen_gain[order], first)
    seen_acc = seen_gain.sum() - np.concatenate([[0.0], np.cumsum(seen_lost)])
    unseen_acc = np.concatenate([[0.0], np.cumsum(unseen_won)])
    gammas = np.concatenate([[-np.inf], steps])
    return SeenUnseenCurve(
        gammas=gammas,
        seen=100.0 * np.clip(seen_acc, 0.0, None),
        unseen=100.0 * unseen_acc,
    )


def ausuc(scores: np.ndarray, labels: np.ndarray, seen_mask: np.ndarray) -> float:
    """Area under the seen-unseen accuracy curve (Chao et al.), a fraction in [0, 1]."""
    return seen_unseen_curve(scores, labels, seen_mask).ausuc
