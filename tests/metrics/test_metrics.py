"""Metrics on hand-computed cases."""

import numpy as np
import pytest

from unseen.metrics import (
    ausuc,
    calibrated_stacking,
    gzsl_accuracies,
    harmonic_mean,
    per_class_accuracy,
    predict,
    seen_unseen_curve,
    zsl_accuracy,
)


def test_per_class_accuracy_averages_over_classes_not_samples():
    # class 0: 3 of 4 right (75%), class 1: 0 of 1 right (0%) -> 37.5%, sample accuracy would be 60%
    y_true = np.array([0, 0, 0, 0, 1])
    y_pred = np.array([0, 0, 0, 1, 0])
    assert per_class_accuracy(y_true, y_pred) == pytest.approx(37.5)


def test_per_class_accuracy_ignores_classes_absent_from_truth():
    assert per_class_accuracy(np.array([2, 2]), np.array([2, 5])) == pytest.approx(50.0)


def test_per_class_accuracy_rejects_empty_and_mismatched():
    with pytest.raises(ValueError):
        per_class_accuracy(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(ValueError):
        per_class_accuracy(np.array([0, 1]), np.array([0]))


def test_harmonic_mean():
    assert harmonic_mean(60.0, 40.0) == pytest.approx(48.0)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(100.0, 0.0) == 0.0


def test_predict_restricted_to_candidates():
    scores = np.array([[5.0, 1.0, 2.0], [0.0, 3.0, 4.0]])
    assert predict(scores).tolist() == [0, 2]
    assert predict(scores, np.array([1, 2])).tolist() == [2, 2]


def _toy():
    # classes 0, 1 seen; 2, 3 unseen
    seen_mask = np.array([True, True, False, False])
    scores = np.array(
        [
            [3.0, 1.0, 2.0, 0.0],  # seen class 0, gap 3-2=1, seen right, unseen wrong (best unseen 2)
            [0.0, 2.0, 2.5, 0.0],  # seen class 1, gap 2-2.5=-0.5, seen right
            [1.0, 0.0, 0.5, 0.2],  # seen class 1, gap 1-0.5=0.5, best seen 0: wrong
            [4.0, 0.0, 1.0, 0.0],  # unseen class 2, gap 4-1=3, best unseen 2: right
            [0.0, 1.0, 0.0, 2.0],  # unseen class 3, gap 1-2=-1, best unseen 3: right
        ]
    )
    labels = np.array([0, 1, 1, 2, 3])
    return scores, labels, seen_mask


def test_gzsl_and_zsl_accuracies_by_hand():
    scores, labels, seen_mask = _toy()
    m = gzsl_accuracies(scores[:3], labels[:3], scores[3:], labels[3:])
    # seen: sample0 -> 0 right; sample1 -> 2 wrong; sample2 -> 0 wrong: class0 100, class1 0 -> 50
    # unseen: sample3 -> 0 wrong; sample4 -> 3 right: class2 0, class3 100 -> 50
    assert m == pytest.approx({"S": 50.0, "U": 50.0, "H": 50.0})
    assert zsl_accuracy(scores[3:], labels[3:], np.array([2, 3])) == pytest.approx(100.0)


def test_calibrated_stacking_subtracts_from_seen_columns_only():
    scores, _, seen_mask = _toy()
    out = calibrated_stacking(scores, seen_mask, 1.5)
    np.testing.assert_allclose(out[:, :2], scores[:, :2] - 1.5)
    np.testing.assert_allclose(out[:, 2:], scores[:, 2:])


def test_seen_unseen_curve_exact_steps_and_ausuc_by_hand():
    scores, labels, seen_mask = _toy()
    curve = seen_unseen_curve(scores, labels, seen_mask)
    # gaps: s0=1 (seen right, w=1/2), s1=-0.5 (seen right, w=1/4), s2=0.5 (seen wrong),
    #       u3=3 (unseen right, w=1/2), u4=-1 (unseen right, w=1/2)
    np.testing.assert_allclose(curve.gammas, [-np.inf, -1.0, -0.5, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(curve.seen, [75.0, 75.0, 50.0, 50.0, 0.0, 0.0])
    np.testing.assert_allclose(curve.unseen, [0.0, 50.0, 50.0, 50.0, 50.0, 100.0])
    # area: 0->0.5 at S=0.75 (0.375), 0.5 stays, 0.5->0.5 with S 0.5->0 (0), 0.5->1 at S=0 (0)
    assert curve.ausuc == pytest.approx(0.375)
    assert ausuc(scores, labels, seen_mask) == pytest.approx(0.375)


def test_curve_points_match_calibrated_stacking_at_every_interval():
    rng = np.random.default_rng(0)
    seen_mask = np.array([True] * 4 + [False] * 3)
    scores = rng.normal(size=(60, 7))
    labels = np.concatenate([rng.integers(0, 4, 30), rng.integers(4, 7, 30)])
    curve = seen_unseen_curve(scores, labels, seen_mask)
    is_seen = seen_mask[labels]
    for i in range(len(curve.gammas)):
        gamma = curve._representative_gamma(i)
        cal = calibrated_stacking(scores, seen_mask, gamma)
        m = gzsl_accuracies(cal[is_seen], labels[is_seen], cal[~is_seen], labels[~is_seen])
        assert m["S"] == pytest.approx(curve.seen[i])
        assert m["U"] == pytest.approx(curve.unseen[i])


def test_best_h_is_the_maximum_over_the_exact_curve():
    scores, labels, seen_mask = _toy()
    h, gamma = seen_unseen_curve(scores, labels, seen_mask).best_h()
    # best point: S=75, U=50 -> H=60, holding for gamma in [-1, -0.5)
    assert h == pytest.approx(60.0)
    assert -1.0 <= gamma < -0.5


def test_ausuc_perfect_classifier_is_one():
    seen_mask = np.array([True, True, False, False])
    labels = np.array([0, 1, 2, 3])
    scores = np.eye(4) * 10.0
    assert ausuc(scores, labels, seen_mask) == pytest.approx(1.0)
