"""ICIS: the masked cosine losses and the slope stopping rule by hand, the seen classes keep the
base classifier's weights, the official scripts' settings, and unseen accuracy beyond ESZSL's on
planted data."""

import numpy as np
import pytest
import torch

from unseen.core.device import stream
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.generative import train_softmax
from unseen.methods.gzsl.icis import JointAutoencoder, cosine_loss, icis_loss, slope_stop
from unseen.methods.gzsl.preprocessing import seen_local_labels
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


@pytest.fixture(scope="module")
def fitted(data):
    cls = GZSL["icis"]
    return cls(seed=0, **cls.fast_hparams).fit(data.train_set())


def test_cosine_loss_by_hand():
    loss = cosine_loss(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [3.0, 3.0]]))
    np.testing.assert_allclose(loss.numpy(), [1.0, 0.0], atol=1e-7)


def test_rows_without_weights_enter_the_semantic_reconstruction_only():
    model = JointAutoencoder(3, 4, 8)
    a, w = torch.randn(5, 3), torch.randn(5, 4)
    has = torch.tensor([True, True, True, False, False])
    other = w.clone()
    other[3:] = torch.randn(2, 4)  # what stands in for the unseen rows' weights does not matter
    assert icis_loss(model, a, w, has).item() == pytest.approx(icis_loss(model, a, other, has).item())
    a_a, a_w, w_w, w_a = model(a, w)
    by_hand = cosine_loss(a_a, a).mean() + sum(
        cosine_loss(r, t)[:3].mean() for r, t in ((a_w, a), (w_w, w), (w_a, w))
    )
    assert icis_loss(model, a, w, has).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_slope_rule_by_hand():
    falling = [100.0 - e for e in range(22)]  # loses 1 per epoch: slope (mean 90.5 - mean 80.5) / 10
    assert not slope_stop(falling, after=21, window=10, threshold=2e-3)
    assert slope_stop(falling, after=21, window=10, threshold=1.5)
    plateau = [50.0] * 22
    assert slope_stop(plateau, after=21, window=10, threshold=2e-3)
    assert not slope_stop(plateau[:21], after=21, window=10, threshold=2e-3)  # not before epoch 22


def test_seen_classes_keep_the_base_classifier_weights(data, fitted):
    train, p = data.train_set(), fitted.params
    seen = train.classes.seen_ids
    X = torch.as_tensor(np.asarray(train.features, dtype=np.float32))
    y = torch.as_tensor(seen_local_labels(np.asarray(train.labels), seen))
    base = train_softmax(
        X,
        y,
        len(seen),
        p["base_epochs"],
        stream(0, "base"),
        lr=p["base_lr"],
        beta1=0.9,
        batch_size=p["batch_size"],
    )
    torch.testing.assert_close(fitted._W[torch.as_tensor(seen)], base.fc.weight.detach())
    torch.testing.assert_close(fitted._b[torch.as_tensor(seen)], base.fc.bias.detach())


def test_unseen_accuracy_beats_eszsl_without_calibration(data, fitted):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert evaluate(fitted, data, None).metrics["U"] > eszsl["U"] + 10
    assert fitted.epochs_run_ < fitted.params["epochs"]  # the slope rule stopped it


@pytest.mark.parametrize(("dataset", "batch"), [("CUB", 16), ("SUN", 16), ("AWA2", 20)])
def test_defaults_are_the_official_scripts(dataset, batch):
    """scripts/table1_*.sh: --cos_sim_loss --include_unseen --num_layers 2 --beta1 0.9 --lr 0.00001
    --embed_dim 2048 --early_stopping_slope, batch 16 (AWA2: 20); main.py: nepoch 1000,
    classifier_nepoch 100, classifier_lr 1e-4."""
    cls = GZSL["icis"]
    params = cls(**cls.defaults_for(dataset)).params
    expected = {
        "batch_size": batch, "lr": 1e-5, "hidden": 2048, "epochs": 1000, "base_epochs": 100,
        "base_lr": 1e-4, "include_unseen": True, "stop_slope": 2e-3, "stop_patience": 5,
    }  # fmt: skip
    assert {k: params[k] for k in expected} == expected
