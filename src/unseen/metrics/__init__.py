"""Metrics as pure numpy functions: accuracies in percent, AUSUC as a fraction."""

from unseen.metrics.accuracy import (
    gzsl_accuracies,
    harmonic_mean,
    per_class_accuracy,
    predict,
    zsl_accuracy,
)
from unseen.metrics.calibration import (
    SeenUnseenCurve,
    ausuc,
    calibrated_stacking,
    seen_unseen_curve,
)
from unseen.metrics.ood import auroc, fpr_at_tpr

__all__ = [
    "SeenUnseenCurve",
    "auroc",
    "ausuc",
    "calibrated_stacking",
    "fpr_at_tpr",
    "gzsl_accuracies",
    "harmonic_mean",
    "per_class_accuracy",
    "predict",
    "seen_unseen_curve",
    "zsl_accuracy",
]
