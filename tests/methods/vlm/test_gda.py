"""GDA: the closed form against a direct LDA computation, the base-to-new extension, no-text use."""

from __future__ import annotations

import numpy as np

from methods.vlm.planted import planted_pairs, unit
from unseen.methods.vlm.base import FewShotSet
from unseen.methods.vlm.gda import ALPHAS, GDA, ks_precision, mean_ks_precision


def small_case(seed: int = 0) -> tuple[FewShotSet, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 5)
    features = unit(rng.normal(size=(3, 4))[labels] + 0.5 * rng.normal(size=(15, 4)))
    return FewShotSet(features, labels, 3), unit(rng.normal(size=(6, 4)))


def lda_scores(features: np.ndarray, labels: np.ndarray, X: np.ndarray) -> np.ndarray:
    """LDA written out with the paper's shrinkage precision d ((N-1) S + tr(S) I)^-1."""
    n, d = features.shape
    means = np.stack([features[labels == c].mean(axis=0) for c in range(3)])
    centred = features - means[labels]
    S = np.cov(centred.T)  # (d, d), normalised by N - 1
    precision = d * np.linalg.inv((n - 1) * S + np.trace(S) * np.eye(d))
    W = means @ precision
    b = np.log(1 / 3) - 0.5 * np.array([m @ precision @ m for m in means])
    return X @ W.T + b


def test_closed_form_equals_a_direct_lda_computation():
    support, X = small_case()
    method = GDA().fit(support)
    np.testing.assert_allclose(method.scores(X), lda_scores(support.features, support.labels, X), rtol=1e-4)
    assert method.selected == {}  # without text there is nothing to ensemble


def test_with_text_the_gda_logits_are_added_to_zero_shot_with_weight_alpha():
    support, X = small_case()
    text = unit(np.random.default_rng(1).normal(size=(3, 4)))
    with_text = FewShotSet(support.features, support.labels, 3, text)
    method = GDA(alpha=10.0, tune_on_val=False).fit(with_text)
    expected = 100 * X @ text.T + 10.0 * lda_scores(support.features, support.labels, X)
    np.testing.assert_allclose(method.scores(X), expected, rtol=1e-4)
    assert method.selected == {"alpha": 10.0}


def test_alpha_is_chosen_on_val_from_the_official_grid_and_defaults_to_0_1():
    data = planted_pairs()
    support, val = data.shots(8)
    assert GDA().fit(support).selected == {"alpha": 0.1}
    chosen = GDA().fit(support, val).selected["alpha"]
    assert chosen in ALPHAS
    accuracies = [
        np.mean(GDA(alpha=a, tune_on_val=False).fit(support).scores(val.features).argmax(1) == val.labels)
        for a in ALPHAS
    ]
    assert chosen == ALPHAS[int(np.argmax(accuracies))]


def test_woodbury_mean_precision_equals_the_mean_of_direct_estimates():
    deviations = np.random.default_rng(2).normal(size=(3, 5, 8))
    direct = np.mean([ks_precision(D) for D in deviations], axis=0)
    np.testing.assert_allclose(mean_ks_precision(deviations), direct, rtol=1e-8, atol=1e-10)


def test_one_shot_without_text_is_a_nearest_class_mean_classifier_far_above_chance():
    """One shot per class leaves no within-class scatter; GDA falls back to an isotropic precision
    instead of scoring every class the same (which put every image in one class)."""
    data = planted_pairs()
    support, _ = data.shots(1)
    no_text = FewShotSet(support.features, support.labels, support.n_classes)
    scores = GDA().fit(no_text).scores(data.test_features)
    X, shots = unit(data.test_features), unit(support.features)
    nearest = support.labels[np.argmin(((X[:, None, :] - shots[None]) ** 2).sum(-1), axis=1)]
    np.testing.assert_array_equal(scores.argmax(axis=1), nearest)
    assert np.mean(nearest == data.test_labels) > 3 / support.n_classes


def test_new_classes_get_the_official_synthesised_head():
    data = planted_pairs()
    base = np.arange(10)
    support, _ = data.shots(4, classes=base)
    method = GDA(alpha=1.0, tune_on_val=False, neighbours=6, text_copies=3).fit(support)
    X, new = data.test_features[:5], np.arange(10, 20)
    # by hand: mean of the 6 support features nearest to the text and 3 copies of the text;
    # precision averaged over new classes from the neighbours' deviations from the text
    t = data.text[new].astype(np.float64)
    F = support.features.astype(np.float64)
    nearest = [np.argsort(-(F @ tc))[:6] for tc in t]
    means = np.stack([(F[idx].sum(axis=0) + 3 * tc) / 9 for idx, tc in zip(nearest, t, strict=True)])
    precision = np.mean([ks_precision(F[idx] - tc) for idx, tc in zip(nearest, t, strict=True)], axis=0)
    gda = X @ (means @ precision).T + np.log(1 / 20) - 0.5 * np.einsum("cd,de,ce->c", means, precision, means)
    np.testing.assert_allclose(method.scores(X)[:, new], 100 * X @ t.T + gda, rtol=1e-4)
