"""Small array helpers every layer shares."""

from __future__ import annotations

import numpy as np

UNIT_EPS = 1e-12
"""Norms below this count as zero: such rows are left (near) zero instead of blown up."""


def unit_rows(a: np.ndarray) -> np.ndarray:
    """Each row (last axis) of ``a`` scaled to unit L2 norm; all-zero rows stay zero. Floating
    inputs keep their dtype."""
    a = np.asarray(a)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), UNIT_EPS)
