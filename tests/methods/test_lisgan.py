"""LisGAN: soul samples by hand, the soul losses pull generated features to them, the official
settings, and unseen accuracy beyond ESZSL's on planted data."""

import numpy as np
import pytest
import torch

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.generative import gaussian, train_softmax
from unseen.methods.gzsl.lisgan import nearest_soul_distance, soul_samples
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(data, **overrides):
    cls = GZSL["lisgan"]
    return cls(seed=0, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


def test_soul_samples_are_the_cluster_means_of_each_class():
    X = np.array([[0, 0], [0, 2], [10, 0], [10, 2], [5, 5]], dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 1])
    souls = soul_samples(X, labels, n_classes=2, k=2, seed=0)
    assert sorted(map(tuple, souls[0].tolist())) == [(0.0, 1.0), (10.0, 1.0)]
    assert souls[1].tolist() == [[5.0, 5.0], [5.0, 5.0]]  # one sample: repeated to fill k slots


def test_nearest_soul_distance_by_hand():
    souls = torch.tensor([[[0.0, 0.0], [4.0, 0.0]], [[0.0, 3.0], [9.0, 9.0]]])
    features = torch.tensor([[3.0, 0.0], [0.0, 0.0]])  # nearest: 1^2 (row 0), 3^2 (row 1)
    assert nearest_soul_distance(features, souls).item() == pytest.approx((1 + 9) / 2)


def test_the_soul_losses_pull_generated_features_to_the_soul_samples(data):
    def soul_gap(method):
        seen = method._seen_semantics
        z = gaussian((len(seen) * 50, method.noise_dim), torch.Generator().manual_seed(1), method._device)
        with torch.no_grad():
            fake = method._G(z, seen.repeat_interleave(50, dim=0))
        return nearest_soul_distance(fake, method._souls.repeat_interleave(50, dim=0)).item()

    small = {"epochs": 10, "hidden": 64, "critic_hidden": 64}
    without = fit(data, **small, sample_soul_weight=0.0, class_soul_weight=0.0)
    pulled = fit(data, **small, sample_soul_weight=1.0, class_soul_weight=1.0)
    assert soul_gap(pulled) < 0.8 * soul_gap(without)


def test_unseen_accuracy_beats_eszsl_without_calibration(data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert evaluate(fit(data), data, None).metrics["U"] > eszsl["U"] + 10


def test_defaults_are_the_official_codes(data, monkeypatch):
    """lisgan.py: ndh 1024, ngh 4096, cls_weight 1, syn_num 100, proto_param1/2 0.01, n_clusters 3,
    loss_syn_num 20; the seen classifier 100 epochs (lr 1e-3, beta1 0.5, batch 100); the final
    classifier 50 epochs in batches of 2 x syn_num."""
    params = GZSL["lisgan"]().params
    expected = {
        "critic_hidden": 1024,
        "hidden": 4096,
        "cls_weight": 1.0,
        "syn_per_class": 100,
        "sample_soul_weight": 0.01,
        "class_soul_weight": 0.01,
        "soul_samples": 3,
        "class_soul_samples": 20,
        "pretrain_epochs": 100,
        "cls_epochs": 50,
        "lr": 1e-4,
        "batch_size": 64,
    }
    assert {k: params[k] for k in expected} == expected
    calls = []

    def spy(X, y, n_classes, epochs, generator, **kwargs):
        calls.append((epochs, kwargs["batch_size"]))
        return train_softmax(X, y, n_classes, epochs, generator, **kwargs)

    monkeypatch.setattr("unseen.methods.gzsl.f_clswgan.train_softmax", spy)
    monkeypatch.setattr("unseen.methods.gzsl.generative.base.train_softmax", spy)
    GZSL["lisgan"](epochs=1, hidden=16, critic_hidden=8, pretrain_epochs=3, syn_per_class=7).fit(
        data.train_set()
    )
    assert calls == [(3, 100), (50, 14)]
