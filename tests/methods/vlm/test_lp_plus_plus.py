"""LP++: the data-derived initialisation and one block-coordinate step, checked by hand."""

from __future__ import annotations

import numpy as np

from methods.vlm.planted import planted_pairs
from unseen.methods.vlm.lp_plus_plus import LPPlusPlus


def initial_head(support):
    X, y, T = support.features.astype(np.float64), support.labels, support.class_text.astype(np.float64)
    sums = np.stack([X[y == c].sum(axis=0) for c in range(support.n_classes)])
    own_similarity = np.mean([np.mean(X[y == c] @ T[c]) for c in range(support.n_classes)])
    return X, y, T, sums, 250.0 * own_similarity


def test_initial_head_is_class_sums_and_250_times_the_mean_own_text_similarity():
    data = planted_pairs()
    support, _ = data.shots(4)
    _, _, T, sums, alpha = initial_head(support)
    method = LPPlusPlus(epochs=0, device="cpu").fit(support)
    X = data.test_features.astype(np.float64)
    np.testing.assert_allclose(method.scores(X), X @ sums.T + alpha * X @ T.T, rtol=1e-4, atol=1e-4)
    assert method.selected == {"epoch": 0}


def test_one_step_uses_the_lipschitz_step_sizes_on_both_blocks():
    data = planted_pairs()
    support, _ = data.shots(4)
    X, y, T, W, alpha0 = initial_head(support)
    n = len(X)
    text_logits = X @ T.T
    logits = X @ W.T + alpha0 * text_logits
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = (p - np.eye(support.n_classes)[y]) / n  # gradient of the mean cross-entropy
    W1 = W - 4 * n / np.linalg.eigvalsh(X.T @ X)[-1] * residual.T @ X
    alpha1 = alpha0 - n / (4 * (text_logits**2).sum(axis=0).max()) * (residual * text_logits).sum(axis=0)
    method = LPPlusPlus(epochs=1, alpha_every=1, device="cpu").fit(support)
    Xt = data.test_features.astype(np.float64)
    np.testing.assert_allclose(method.scores(Xt), Xt @ W1.T + alpha1 * (Xt @ T.T), rtol=1e-4, atol=1e-3)


def test_the_iteration_of_best_validation_accuracy_is_kept():
    data = planted_pairs()
    support, val = data.shots(4)
    chosen = LPPlusPlus(epochs=40, device="cpu").fit(support, val)
    epoch = chosen.selected["epoch"]
    replay = LPPlusPlus(epochs=epoch, device="cpu").fit(support)
    np.testing.assert_allclose(
        chosen.scores(data.test_features), replay.scores(data.test_features), rtol=1e-5
    )
    assert LPPlusPlus(epochs=40, device="cpu").fit(support).selected == {"epoch": 40}
