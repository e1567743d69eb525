"""The tight worst-case bound of Mazzetto et al. (NeurIPS 2022) on hand-made class-attribute matrices."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.core.errors import DataFormatError
from unseen.metrics.attribute_bound import (
    attribute_lower_bound,
    greedy_attribute_bound,
    matching_lower_bound,
    pairwise_lower_bounds,
    worst_case_error,
)
from unseen.metrics.attribute_bound_search import bracket_lower_bound


def test_identical_rows_give_the_worst_bound():
    row = [0.2, 0.7, 0.5]
    assert attribute_lower_bound([row, row]).bound == pytest.approx(0.5)
    assert pairwise_lower_bounds([row, row])[0, 1] == pytest.approx(0.5)
    # k indistinguishable classes: the best map is right on one class in k.
    assert attribute_lower_bound([row] * 4).bound == pytest.approx(0.75)


def test_one_attribute_that_always_differs_gives_zero():
    matrix = [[0.3, 1.0, 0.6], [0.3, 0.0, 0.6]]
    assert attribute_lower_bound(matrix).bound == pytest.approx(0.0, abs=1e-9)
    assert pairwise_lower_bounds(matrix)[0, 1] == pytest.approx(0.0)


def test_three_classes_on_one_attribute_by_hand():
    # One attribute fixes each class's distribution: P(v=1) = 0, 1/2, 1. The Bayes map is right on
    # v=0 for the first class and v=1 for the last; the middle class is always lost: error 1/3.
    result = attribute_lower_bound([[0.0], [0.5], [1.0]])
    assert result.bound == pytest.approx(1 / 3)
    assert result.per_class_error.sum() / 3 == pytest.approx(1 / 3)


def test_classes_differing_in_many_attributes_have_a_small_bound():
    rng = np.random.default_rng(0)
    close = np.clip(0.5 + 0.05 * rng.standard_normal((2, 6)), 0, 1)
    far = np.array([[0.9] * 6, [0.1] * 6])
    assert attribute_lower_bound(far).bound < 0.15 < 0.4 < attribute_lower_bound(close).bound


@pytest.mark.parametrize("seed", range(4))
def test_two_class_closed_form_equals_the_linear_program(seed):
    matrix = np.random.default_rng(seed).random((2, 4))
    closed = (1 - np.abs(matrix[0] - matrix[1]).max()) / 2
    assert pairwise_lower_bounds(matrix)[0, 1] == pytest.approx(closed)
    assert attribute_lower_bound(matrix).bound == pytest.approx(closed, abs=1e-7)


def test_pairwise_matrix_by_hand():
    bounds = pairwise_lower_bounds([[0.8, 0.5], [0.3, 0.4], [0.8, 0.5]])
    assert np.isnan(np.diag(bounds)).all()
    assert bounds[0, 1] == pytest.approx(0.25) and bounds[1, 2] == pytest.approx(0.25)
    assert bounds[0, 2] == pytest.approx(0.5) and np.allclose(bounds, bounds.T, equal_nan=True)


@pytest.mark.parametrize("seed", range(3))
def test_the_dual_randomized_map_achieves_the_bound(seed):
    """Tightness: the map read off the dual errs at most the bound on every consistent
    distribution, and the adversary makes every map err at least the bound."""
    rng = np.random.default_rng(seed)
    matrix = rng.random((4, 3))
    result = attribute_lower_bound(matrix)
    assert np.allclose(result.map.sum(axis=1), 1.0) and (result.map >= 0).all()
    worst, per_class = worst_case_error(matrix, result.map)
    assert worst == pytest.approx(result.bound, abs=1e-7)
    # The adversary is consistent with the matrix, and the Bayes map on it errs exactly the bound.
    assert np.allclose(result.adversary @ result.vectors, matrix, atol=1e-7)
    bayes_accuracy = result.adversary.max(axis=0).sum() / 4
    assert 1 - bayes_accuracy == pytest.approx(result.bound, abs=1e-7)
    # A deterministic map (nearest class row) can do no better in the worst case.
    nearest = np.abs(result.vectors[:, None, :] - matrix[None]).sum(axis=2).argmin(axis=1)
    assert worst_case_error(matrix, np.eye(4)[nearest])[0] >= result.bound - 1e-7
    assert per_class.mean() == pytest.approx(worst)


def test_matching_and_greedy_bracket_the_exact_bound():
    matrix = np.random.default_rng(5).random((6, 5))
    exact = attribute_lower_bound(matrix).bound
    low, pairs = matching_lower_bound(pairwise_lower_bounds(matrix))
    assert 0 < low <= exact + 1e-9 and len(pairs) == 3
    assert len({c for pair in pairs for c in pair}) == 6  # disjoint pairs
    greedy = greedy_attribute_bound(matrix, 5)
    assert sorted(greedy.attributes) == list(range(5))
    assert (np.diff(greedy.bounds) <= 1e-9).all()  # more attributes, lower bound
    assert greedy.bounds[-1] == pytest.approx(exact, abs=1e-7)  # all attributes: the exact bound
    first = [attribute_lower_bound(matrix[:, [i]]).bound for i in range(5)]
    assert greedy.attributes[0] == int(np.argmin(first)) and greedy.bounds[0] == pytest.approx(min(first))


def test_unknown_entries_put_no_constraint():
    matrix = [[0.2, np.nan], [0.2, 0.9]]  # the only attribute that differs is unknown for class 0
    assert attribute_lower_bound(matrix, allow_missing=True).bound == pytest.approx(0.5)
    assert pairwise_lower_bounds(matrix, allow_missing=True)[0, 1] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([0.1, 0.2], "2-D"),
        ([[0.1, 0.2]], "at least 2 classes"),
        ([[0.1, np.nan], [0.2, 0.3]], "allow_missing=True"),
        ([[10.0, 50.0], [20.0, 30.0]], "divide by 100"),
        ([[-0.1, 0.2], [0.2, 0.3]], "original_att"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_bad_matrices_are_refused_with_the_fix(matrix, message):
    with pytest.raises(DataFormatError, match=message):
        pairwise_lower_bounds(matrix)


def test_too_many_attributes_for_the_exact_program_names_the_fix():
    with pytest.raises(DataFormatError, match="greedy_attribute_bound"):
        attribute_lower_bound(np.full((2, 20), 0.5))
    with pytest.raises(DataFormatError, match="n_attributes=3"):
        greedy_attribute_bound(np.full((2, 2), 0.5), 3)
    with pytest.raises(DataFormatError, match="shape"):
        worst_case_error(np.full((2, 2), 0.5), np.ones((3, 2)))


@pytest.mark.parametrize("seed", range(3))
def test_column_generation_certifies_the_exact_bound(seed):
    rng = np.random.default_rng(seed)
    matrix = rng.random((5, 7))
    if seed == 2:
        matrix = np.where(matrix > 0.5, 0.95, 0.05)  # near-binary rows: many vectors matter
    found = bracket_lower_bound(matrix)
    exact = attribute_lower_bound(matrix).bound
    assert found.certified and found.lower == pytest.approx(exact, abs=1e-7)
    assert found.upper == pytest.approx(exact, abs=1e-6)


def test_a_stopped_search_still_brackets_the_exact_bound():
    matrix = np.random.default_rng(7).random((6, 8))
    exact = attribute_lower_bound(matrix).bound
    found = bracket_lower_bound(matrix, max_rounds=1, certify_rounds=1, pricing_time=5.0)
    assert found.lower <= exact + 1e-9 <= found.upper + 2e-9
    assert found.lower >= matching_lower_bound(pairwise_lower_bounds(matrix))[0] - 1e-9
