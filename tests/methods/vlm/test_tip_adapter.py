"""Tip-Adapter and Tip-Adapter-F: the cache logits by hand, the official search run on val only."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from methods.vlm.planted import planted_pairs
from unseen.methods.vlm.base import FewShotSet
from unseen.methods.vlm.search import tip_adapter_grid
from unseen.methods.vlm.tip_adapter import TipAdapter, TipAdapterF, cache_logits
from unseen.methods.vlm.zero_shot import ZeroShot


def two_sample_set() -> FewShotSet:
    features = np.array([[1.0, 0.0], [0.6, 0.8]])  # class 0, class 1
    text = np.array([[1.0, 0.0], [0.0, 1.0]])
    return FewShotSet(features, np.array([0, 1]), 2, text)


def test_cache_logits_by_hand_on_two_samples():
    method = TipAdapter(alpha=1.5, beta=2.0, device="cpu").fit(two_sample_set())
    x = np.array([[0.8, 0.6]])
    # affinities with the keys: 0.8 and 0.6 * 0.8 + 0.8 * 0.6 = 0.96
    expected = [100 * 0.8 + 1.5 * np.exp(-2.0 * 0.2), 100 * 0.6 + 1.5 * np.exp(-2.0 * 0.04)]
    np.testing.assert_allclose(method.scores(x), [expected], rtol=1e-6)
    assert method.selected == {"alpha": 1.5, "beta": 2.0}


def test_cache_logits_sum_each_class_entries():
    key_affinity = torch.tensor([[1.0], [0.5], [0.0]])  # three keys, one image
    logits = cache_logits(key_affinity, torch.tensor([1, 1, 0]), 3, beta=1.0)
    np.testing.assert_allclose(logits.numpy(), [[np.exp(-1.0), 1.0 + np.exp(-0.5), 0.0]], rtol=1e-6)


def test_alpha_zero_is_zero_shot():
    data = planted_pairs()
    support, val = data.shots(4)
    tip = TipAdapter(alpha=0.0, tune_on_val=False, device="cpu").fit(support, val)
    zero_shot = ZeroShot().fit(support)
    np.testing.assert_allclose(
        tip.scores(data.test_features), zero_shot.scores(data.test_features), atol=1e-4
    )


def test_without_val_the_official_initial_values_are_used():
    data = planted_pairs()
    support, _ = data.shots(4)
    assert TipAdapter(device="cpu").fit(support).selected == {"alpha": 1.17, "beta": 1.0}
    tip_f = TipAdapterF(epochs=3, device="cpu").fit(support)
    assert tip_f.selected == {"epoch": 3, "alpha": 1.17, "beta": 1.0}


def test_search_picks_the_first_best_pair_of_the_official_grid_on_val():
    data = planted_pairs()
    support, val = data.shots(8)
    method = TipAdapter(alpha_steps=6, beta_steps=9, device="cpu").fit(support, val)
    # the same search written out: beta-major over the official grids, strict '>' keeps the first
    keys, Xv = support.features, val.features  # planted rows are unit-norm
    best, best_accuracy = None, -1.0
    for beta, alpha in itertools.product(tip_adapter_grid(7.0, 9), tip_adapter_grid(3.0, 6)):
        cache = np.exp(-beta * (1 - Xv @ keys.T)) @ support.one_hot()
        acc = np.mean(np.argmax(100 * Xv @ data.text.T + alpha * cache, axis=1) == val.labels)
        if acc > best_accuracy + 1e-12:
            best, best_accuracy = (alpha, beta), acc
    assert (method.selected["alpha"], method.selected["beta"]) == pytest.approx(best)


def test_fine_tuning_moves_the_keys_and_is_seeded():
    data = planted_pairs()
    support, val = data.shots(8)
    fixed = dict(alpha=1.0, beta=2.0, tune_on_val=False, epochs=5, device="cpu")
    plain = TipAdapter(alpha=1.0, beta=2.0, tune_on_val=False, device="cpu").fit(support)
    tuned = [TipAdapterF(seed=seed, **fixed).fit(support, val) for seed in (0, 0, 1)]
    scores = [m.scores(data.test_features) for m in tuned]
    assert not np.allclose(scores[0], plain.scores(data.test_features))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.array_equal(scores[0], scores[2])
