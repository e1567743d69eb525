"""Small array helpers every layer shares."""

from __future__ import annotations

import numpy as np

from unseen.core.errors import DataFormatError

UNIT_EPS = 1e-12
"""Norms below this count as zero: such rows are left (near) zero instead of blown up."""


def unit_rows(a: np.ndarray) -> np.ndarray:
    """Each row (last axis) of ``a`` scaled to unit L2 norm; all-zero rows stay zero. Floating
    inputs keep their dtype."""
    a = np.asarray(a)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), UNIT_EPS)


def whole_numbers(values: np.ndarray, where: str) -> np.ndarray:
    """``values`` (ids: labels, domains) as int64; floats are accepted only when every one is a
    whole number (MATLAB stores ids as doubles). ``where`` names the array in the error."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if not len(bad):
            return values.astype(np.int64)
        first = bad[0]
        raise DataFormatError(
            f"{where} must hold whole numbers (integer ids), but holds {values.flat[first].item()!r} at "
            f"position {first} ({len(bad)} such value(s)). Map the values to ids, e.g. "
            "np.unique(values, return_inverse=True)[1]; a cast to int would silently truncate them."
        )
    raise DataFormatError(
        f"{where} must hold integer ids, got dtype {values.dtype}. Map the values to ids, e.g. "
        "np.unique(values, return_inverse=True)[1]."
    )
