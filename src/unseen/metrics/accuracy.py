"""Accuracy metrics of the GZSL literature, as pure functions (percent, 0-100).

Xian et al., *Zero-Shot Learning - A Comprehensive Evaluation of the Good, the Bad and the Ugly*
(TPAMI 2018): accuracy is averaged per class, then over classes ("per-class mean top-1"), so that
large classes do not dominate; GZSL reports it on seen (S) and unseen (U) test classes, searching
over the union of all classes, and their harmonic mean H = 2SU / (S + U).
"""

from __future__ import annotations

import numpy as np


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in ``y_true`` of the fraction of each class predicted right.

    Returns percent. Classes absent from ``y_true`` do not count; an empty input raises.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length: {y_true.shape}, {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("per-class accuracy of an empty set is undefined")
    classes, inverse = np.unique(y_true, return_inverse=True)
    correct = np.bincount(inverse, weights=(y_true == y_pred), minlength=len(classes))
    counts = np.bincount(inverse, minlength=len(classes))
    return float(100.0 * np.mean(correct / counts))


def harmonic_mean(seen: float, unseen: float) -> float:
    """H = 2SU / (S + U); 0 when both are 0."""
    total = seen + unseen
    return 0.0 if total == 0 else float(2.0 * seen * unseen / total)


def predict(scores: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """Arg-max class id per row, searching only ``candidates`` (global ids) when given.

    Ties go to the lowest candidate id.
    """
    scores = np.asarray(scores)
    if candidates is None:
        return scores.argmax(axis=1)
    candidates = np.asarray(candidates)
    return candidates[scores[:, candidates].argmax(axis=1)]


def gzsl_accuracies(
    scores_seen: np.ndarray,
    labels_seen: np.ndarray,
    scores_unseen: np.ndarray,
    labels_unseen: np.ndarray,
) -> dict[str, float]:
    """S, U and H: per-class accuracy on seen and unseen test samples over all classes."""
    s = per_class_accuracy(labels_seen, predict(scores_seen))
    u = per_class_accuracy(labels_unseen, predict(scores_unseen))
    return {"S": s, "U": u, "H": harmonic_mean(s, u)}


def zsl_accuracy(scores_unseen: np.ndarray, labels_unseen: np.ndarray, unseen_ids: np.ndarray) -> float:
    """Conventional ZSL: per-class accuracy on unseen samples, searching unseen classes only."""
    return per_class_accuracy(labels_unseen, predict(scores_unseen, unseen_ids))
