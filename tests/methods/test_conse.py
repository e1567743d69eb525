"""ConSE: the convex combination by hand, and zero-shot accuracy well above chance."""

import numpy as np
import pytest

from unseen.data import load_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.conse import conse_embedding
from unseen.protocols.gzsl import evaluate


def test_the_embedding_is_the_probability_weighted_mean_of_the_top_seen_semantics():
    probs = np.array([[0.5, 0.3, 0.2], [0.15, 0.05, 0.8]])
    semantics = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    top2 = conse_embedding(probs, semantics, top_k=2)
    np.testing.assert_allclose(top2[0], (0.5 * np.array([1, 0]) + 0.3 * np.array([0, 1])) / 0.8)
    np.testing.assert_allclose(top2[1], (0.8 * np.array([1, 1]) + 0.15 * np.array([1, 0])) / 0.95)
    np.testing.assert_allclose(conse_embedding(probs, semantics, top_k=1), semantics[[0, 2]])
    np.testing.assert_allclose(conse_embedding(probs, semantics, top_k=9), probs @ semantics)


@pytest.mark.parametrize("spec", ["synthetic:AWA2?dim=64&scale=0.05", "builtin:mnist-zsl"])
def test_zero_shot_accuracy_is_well_above_chance(spec):
    data = load_dataset(spec)
    metrics = evaluate(GZSL["conse"](seed=0).fit(data.train_set()), data, None).metrics
    assert metrics["ZSL"] > 1.5 * 100.0 / len(data.classes.unseen_ids)
