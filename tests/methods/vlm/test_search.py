"""The validation searches: official grids, tie-breaking, CoOp's coarse-then-bisection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unseen.core.errors import DataFormatError
from unseen.methods.vlm.base import FewShotSet
from unseen.methods.vlm.search import (
    accuracy,
    coarse_then_bisect,
    first_best,
    tip_adapter_grid,
    validation_among,
)


def test_tip_adapter_grid_is_the_official_one():
    # configs/imagenet.yaml: search_scale [7, 3], search_step [200, 20]
    betas = tip_adapter_grid(7.0, 200)
    assert len(betas) == 200 and betas[0] == pytest.approx(0.1) and betas[1] == pytest.approx(0.1345)
    assert betas[-1] == pytest.approx(0.1 + 199 * 6.9 / 200) and betas[-1] < 7.0
    assert tip_adapter_grid(3.0, 20)[:3] == pytest.approx((0.1, 0.245, 0.39))


def test_first_best_keeps_the_earliest_of_ties():
    assert first_best([3, 1, 2, 5], lambda c: {3: 0.5, 1: 0.9, 2: 0.9, 5: 0.1}[c]) == (1, 0.9)
    with pytest.raises(ValueError):
        first_best([], lambda c: 0.0)


def test_accuracy_of_numpy_and_torch_scores():
    import torch

    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    labels = np.array([1, 1, 1])
    assert accuracy(scores, labels) == pytest.approx(2 / 3)
    assert accuracy(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(2 / 3)


def test_coarse_then_bisect_walks_towards_the_peak_and_evaluates_each_value_once():
    calls = []

    def evaluate(c):
        calls.append(c)
        return -abs(math.log10(c) - 2.3)  # peak at C = 10^2.3

    coarse = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)
    chosen = coarse_then_bisect(evaluate, coarse, steps=8)
    assert abs(math.log10(chosen) - 2.3) < 0.05
    assert len(calls) == len(set(calls))
    # step 1 compares 10^1 and 10^3 (10^3 wins), step 2 10^2 (seen in the coarse list) and 10^3
    # (10^2 wins), step 3 10^2 and 10^2.5, ...
    assert calls[7:10] == pytest.approx([10.0, 1000.0, 10**2.5])
    assert coarse_then_bisect(evaluate, coarse, steps=0) == 1e2


def test_validation_among_keeps_the_supported_classes_and_renumbers_them():
    val = FewShotSet(np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]]), np.array([4, 0, 2]), 5)
    X, y = validation_among(val, np.array([2, 4]))
    np.testing.assert_allclose(X, [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_array_equal(y, [1, 0])


def test_validation_without_support_classes_is_a_clear_error():
    val = FewShotSet(np.eye(2), np.array([0, 1]), 3)
    with pytest.raises(DataFormatError, match="none of its samples belongs to a class with support"):
        validation_among(val, np.array([2]))
