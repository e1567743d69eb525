"""hit@k by hand, and the chunked scorer equal to the full score matrix under any memory budget."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.metrics.ranking import chunk_rows, chunked_hits_at_k, hits_at_k, true_class_ranks


def test_ranks_count_ties_against_the_true_class():
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(true_class_ranks(scores, np.array([0, 1, 0])), [1, 2, 3])
    assert hits_at_k(scores, np.array([0, 1, 0]), (1, 2, 5)) == pytest.approx(
        {"hit@1": 100 / 3, "hit@2": 200 / 3}
    )


@pytest.mark.parametrize("budget", [1, 3 * 7 * 4, 10**6])  # one sample a block, 3 a block, all at once
def test_chunked_hits_equal_the_full_matrix(budget):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 5)).astype(np.float32)
    rows = rng.normal(size=(7, 5)).astype(np.float32)
    bias = rng.normal(size=7).astype(np.float32)
    truth = rng.integers(7, size=10)
    full = hits_at_k(features @ rows.T + bias, truth, (1, 2, 5, 10))
    assert set(full) == {"hit@1", "hit@2", "hit@5"}
    assert chunked_hits_at_k(features, rows, truth, (1, 2, 5, 10), bias=bias, max_bytes=budget) == full
    assert chunk_rows(7, budget) == max(1, budget // 28)
