"""Metrics as pure numpy functions: accuracies in percent, AUSUC as a fraction, and the worst-case
error bound of a class-attribute matrix (Mazzetto et al., NeurIPS 2022) as a fraction."""

from unseen.metrics.accuracy import (
    gzsl_accuracies,
    harmonic_mean,
    per_class_accuracy,
    predict,
    zsl_accuracy,
)
from unseen.metrics.attribute_bound import (
    attribute_lower_bound,
    greedy_attribute_bound,
    matching_lower_bound,
    pairwise_lower_bounds,
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
    "attribute_lower_bound",
    "auroc",
    "ausuc",
    "calibrated_stacking",
    "fpr_at_tpr",
    "greedy_attribute_bound",
    "gzsl_accuracies",
    "harmonic_mean",
    "matching_lower_bound",
    "pairwise_lower_bounds",
    "per_class_accuracy",
    "predict",
    "seen_unseen_curve",
    "zsl_accuracy",
]
