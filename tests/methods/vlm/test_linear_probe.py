"""Linear probe and WiSE-FT: scikit-learn's objective, the zero-shot anchor, the interpolation ends."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from methods.vlm.planted import planted_pairs
from unseen.methods.vlm.linear_probe import LinearProbe, WiSEFT
from unseen.methods.vlm.zero_shot import ZeroShot


def test_to_zero_penalty_is_scikit_learns_logistic_regression():
    data = planted_pairs(classes=6, dim=16)
    support, _ = data.shots(8, with_text=False)
    probe = LinearProbe(C=0.5, penalty="to-zero", tune_on_val=False, device="cpu").fit(support)
    reference = LogisticRegression(C=0.5, tol=1e-8, max_iter=10_000).fit(support.features, support.labels)
    probabilities = np.exp(probe.scores(data.test_features))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, reference.predict_proba(data.test_features), atol=2e-3)


def test_zero_shot_initialised_probe_with_a_tiny_C_stays_zero_shot():
    data = planted_pairs()
    support, _ = data.shots(8)
    probe = LinearProbe(C=1e-6, tune_on_val=False, device="cpu").fit(support)
    zero_shot = ZeroShot().fit(support).scores(data.test_features)
    np.testing.assert_allclose(probe.scores(data.test_features), zero_shot, atol=0.05)


def test_without_text_the_probe_starts_from_zeros_and_both_penalties_agree():
    data = planted_pairs()
    support, _ = data.shots(4, with_text=False)
    fits = [
        LinearProbe(C=1.0, penalty=p, tune_on_val=False, device="cpu").fit(support)
        for p in ("to-init", "to-zero")
    ]
    np.testing.assert_allclose(
        fits[0].scores(data.test_features), fits[1].scores(data.test_features), atol=1e-5
    )


def test_C_is_searched_on_val_and_defaults_to_clips_example_value():
    data = planted_pairs()
    support, val = data.shots(4)
    assert LinearProbe(device="cpu").fit(support).selected == {"C": 0.316}
    searched = LinearProbe(bisection_steps=2, device="cpu").fit(support, val).selected["C"]
    assert 1e-7 <= searched <= 1e7 and searched != 0.316


def test_wise_ft_ends_are_zero_shot_and_the_probe():
    data = planted_pairs()
    support, val = data.shots(8)
    X = data.test_features
    probe = LinearProbe(C=10.0, tune_on_val=False, device="cpu").fit(support, val)
    ends = {a: WiSEFT(C=10.0, alpha=a, tune_on_val=False, device="cpu").fit(support, val) for a in (0.0, 1.0)}
    np.testing.assert_allclose(ends[0.0].scores(X), ZeroShot().fit(support).scores(X), atol=1e-4)
    np.testing.assert_allclose(ends[1.0].scores(X), probe.scores(X), atol=1e-5)
    halfway = WiSEFT(C=10.0, tune_on_val=False, device="cpu").fit(support)
    assert halfway.selected == {"C": 10.0, "alpha": 0.5}
    np.testing.assert_allclose(
        halfway.scores(X), 0.5 * (ends[0.0].scores(X) + ends[1.0].scores(X)), atol=1e-4
    )
