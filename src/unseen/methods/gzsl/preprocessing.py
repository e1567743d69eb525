"""Feature and class-semantics normalisations the classic methods expose as hyperparameters.

Nothing here runs silently: every method that normalises declares the choice as an ``HParam``
(``feature_norm`` / ``semantic_norm``) with a documented default. Statistics of data-dependent
normalisations (``zscore``) come from the training features only and are reused at scoring time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from unseen.core.arrays import UNIT_EPS, unit_rows

FEATURE_NORMS = ("none", "l2", "zscore")
SEMANTIC_NORMS = ("none", "l2")


@dataclass(frozen=True)
class FeatureNorm:
    """A fitted feature normalisation: ``none``, per-sample ``l2``, or per-dimension ``zscore``."""

    kind: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @classmethod
    def fit(cls, kind: str, X: np.ndarray) -> FeatureNorm:
        if kind not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {kind!r}")
        if kind != "zscore":
            return cls(kind)
        X = np.asarray(X, dtype=np.float64)
        std = X.std(axis=0)
        mean, std = X.mean(axis=0), np.where(std > UNIT_EPS, std, 1.0)
        return cls(kind, mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if self.kind == "l2":
            return unit_rows(X).astype(np.float32)
        if self.kind == "zscore":
            return (X - self.mean) / self.std
        return X


def normalize_semantics(S: np.ndarray, kind: str) -> np.ndarray:
    """Class semantics ``(n_classes, k)`` as float32, each row unit-norm when ``kind == 'l2'``."""
    if kind not in SEMANTIC_NORMS:
        raise ValueError(f"semantic_norm must be one of {SEMANTIC_NORMS}, got {kind!r}")
    S = np.asarray(S, dtype=np.float32)
    return unit_rows(S).astype(np.float32) if kind == "l2" else S


def seen_local_labels(labels: np.ndarray, seen_ids: np.ndarray) -> np.ndarray:
    """Global class ids of training samples mapped to positions in ``seen_ids``."""
    lookup = np.full(int(max(labels.max(), seen_ids.max())) + 1, -1, dtype=np.int64)
    lookup[seen_ids] = np.arange(len(seen_ids))
    local = lookup[labels]
    if (local < 0).any():
        raise ValueError("training labels must all belong to seen classes")
    return local


def class_sums(X: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, d)`` float64 sums of the rows of ``X`` per label (a sparse indicator product)."""
    indicator = sp.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(n_classes, len(labels))
    )
    return np.asarray(indicator @ np.asarray(X, dtype=np.float64))
