"""unit_rows: the one row normalisation of the project."""

from __future__ import annotations

import numpy as np

from unseen.core.arrays import unit_rows


def test_rows_get_unit_norm_zero_rows_stay_zero_and_float32_stays_float32():
    a = np.array([[3.0, 4.0], [0.0, 0.0], [1e-20, 0.0]], dtype=np.float32)
    out = unit_rows(a)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.6, 0.8])
    assert (out[1] == 0).all() and abs(out[2, 0]) < 1e-7  # below 1e-12 a norm counts as zero
    np.testing.assert_allclose(unit_rows(np.array([3, 4])), [0.6, 0.8])  # one vector, integers
