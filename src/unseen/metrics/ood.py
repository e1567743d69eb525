"""Out-of-distribution detection metrics over scores where higher means in-distribution."""

from __future__ import annotations

import math

import numpy as np


def _check(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(scores_in, dtype=np.float64).ravel()
    b = np.asarray(scores_out, dtype=np.float64).ravel()
    if not len(a) or not len(b):
        raise ValueError("OOD metrics need at least one in-distribution and one OOD score")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("OOD scores must be finite")
    return a, b


def auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Area under the ROC curve = P(in > out) + P(in = out) / 2 (the Mann-Whitney statistic)."""
    a, b = _check(scores_in, scores_out)
    b_sorted = np.sort(b)
    below = np.searchsorted(b_sorted, a, side="left")
    equal = np.searchsorted(b_sorted, a, side="right") - below
    return float((below.sum() + 0.5 * equal.sum()) / (len(a) * len(b)))


def fpr_at_tpr(scores_in: np.ndarray, scores_out: np.ndarray, tpr: float = 0.95) -> float:
    """Fraction of OOD samples accepted at the highest threshold that accepts ``tpr`` of the
    in-distribution samples (a sample is accepted when its score is >= the threshold)."""
    a, b = _check(scores_in, scores_out)
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    k = math.ceil(tpr * len(a) - 1e-9)
    threshold = np.sort(a)[::-1][k - 1]
    return float(np.mean(b >= threshold))
