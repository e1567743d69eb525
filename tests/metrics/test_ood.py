"""OOD metrics and scores on hand-made score lists."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from unseen.methods.ood import energy, max_logit, mcm, msp
from unseen.metrics import auroc, fpr_at_tpr


def test_auroc_by_hand_with_a_tie():
    # pairs (in, out): (3,1) (3,2) (2,1) win, (2,2) ties: (3 + 0.5) / 4
    assert auroc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(0.875)
    assert auroc([1.0], [2.0]) == 0.0 and auroc([2.0], [1.0]) == 1.0
    assert auroc([1.0, 1.0], [1.0]) == 0.5


def test_auroc_agrees_with_scikit_learn_on_random_scores():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, size=200).round(1), rng.normal(size=150).round(1)  # rounding makes ties
    expected = roc_auc_score(np.r_[np.ones(200), np.zeros(150)], np.r_[a, b])
    assert auroc(a, b) == pytest.approx(expected)


def test_fpr_at_95_tpr_by_hand():
    scores_in = np.arange(1, 21, dtype=float)  # 20 scores: 95% of them are >= 2
    scores_out = np.array([0.5, 1.5, 2.0, 3.0])  # 2.0 and 3.0 pass the threshold 2
    assert fpr_at_tpr(scores_in, scores_out) == 0.5
    assert fpr_at_tpr(scores_in, scores_out, tpr=1.0) == 0.75  # threshold 1
    assert fpr_at_tpr(scores_in, [-1.0]) == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        fpr_at_tpr([np.nan], [1.0])


def test_scores_by_hand():
    logits = np.array([[2.0, 0.0], [0.0, 0.0]])
    assert msp(logits) == pytest.approx([np.e**2 / (np.e**2 + 1), 0.5])
    assert max_logit(logits).tolist() == [2.0, 0.0]
    assert energy(logits) == pytest.approx([np.log(np.e**2 + 1), np.log(2)])
    assert energy(logits, temperature=2.0) == pytest.approx(
        2 * np.log(np.exp(1.0) + 1) * np.array([1, 0]) + [0, 2 * np.log(2)]
    )


def test_mcm_prefers_images_close_to_one_class_text():
    texts = np.array([[1.0, 0.0], [0.0, 1.0]])
    close = mcm(np.array([[5.0, 0.1]]), texts, temperature=0.1)
    between = mcm(np.array([[1.0, 1.0]]), texts, temperature=0.1)
    assert close[0] > 0.99 and between[0] == pytest.approx(0.5)
