"""CADA-VAE: loss pieces by hand, beats ESZSL on unseen classes, reproducible, honest selection."""

import math

import numpy as np
import pytest
import torch

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.cada_vae import gaussian_w2, kl_to_standard, sample_latent, warmup
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(data, seed=0, monitor=None, **overrides):
    cls = GZSL["cada-vae"]
    return cls(seed=seed, **{**cls.fast_hparams, **overrides}).fit(data.train_set(), monitor)


def test_warmup_schedule_matches_official_linear_ramp():
    assert warmup(0, 0, 93, 0.25) == 0.0
    assert warmup(31, 0, 93, 0.25) == pytest.approx(0.25 / 3)
    assert warmup(93, 0, 93, 0.25) == 0.25 and warmup(99, 0, 93, 0.25) == 0.25
    assert warmup(20, 21, 75, 2.37) == 0.0 and warmup(14, 6, 22, 8.13) == pytest.approx(4.065)


def test_wasserstein_and_kl_by_hand():
    mu1, mu2 = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    lv1 = torch.log(torch.tensor([[4.0, 1.0], [1.0, 1.0]]))  # sigma (2, 1), (1, 1)
    lv2 = torch.zeros(2, 2)  # sigma (1, 1)
    # row 0: sqrt(1 + 4 + (2-1)^2) = sqrt(6); row 1: 0
    assert gaussian_w2(mu1, lv1, mu2, lv2).item() == pytest.approx(math.sqrt(6))
    # KL(N(1, 4) || N(0, 1)) = 0.5 (1 + 4 - 1 - ln 4); other dims 0 except N(0,1) terms
    expected = 0.5 * (1 + 4 - 1 - math.log(4))
    assert kl_to_standard(mu1, lv1).item() == pytest.approx(expected, rel=1e-6)


def test_latent_samples_official_and_standard():
    mu = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    logvar = torch.log(torch.tensor([[4.0, 1.0], [9.0, 0.25]]))
    eps = torch.tensor([[0.5, -2.0], [-1.0, 3.0]])
    # official: sigma = exp(logvar) (not its square root), one draw per row (eps[:, 0])
    official = torch.tensor([[1.0 + 0.5 * 4, -1.0 + 0.5 * 1], [0.0 - 9.0, 2.0 - 0.25]])
    torch.testing.assert_close(sample_latent(mu, logvar, eps, "official"), official)
    standard = torch.tensor([[1.0 + 0.5 * 2, -1.0 - 2.0 * 1], [0.0 - 3.0, 2.0 + 3.0 * 0.5]])
    torch.testing.assert_close(sample_latent(mu, logvar, eps, "standard"), standard)


def test_unseen_accuracy_beats_eszsl_without_calibration(data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    vae = evaluate(fit(data), data, None).metrics
    assert vae["U"] > eszsl["U"] + 5


def test_same_seed_same_numbers_and_checkpoints_only_classifier_epochs(data):
    small = {"epochs": 3, "cls_epochs": 4}
    X = data.split_features("test_seen")
    a, b = fit(data, **small).scores(X), fit(data, **small).scores(X)
    assert a.shape == (len(X), data.classes.n_classes) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit(data, seed=1, **small).scores(X))
    seen = []
    fit(data, monitor=lambda values, m: seen.append(values), **small)
    assert seen == [{"cls_epochs": c} for c in range(1, 5)]


def test_paper_defaults():
    p = GZSL["cada-vae"]().params
    assert (p["latent"], p["lr"], p["batch_size"], p["epochs"]) == (64, 1.5e-4, 50, 100)
    widths = (p["hidden_enc_x"], p["hidden_dec_x"], p["hidden_enc_a"], p["hidden_dec_a"])
    assert widths == (1560, 1660, 1450, 665)
    assert (p["beta"], p["cross_weight"], p["align_weight"]) == (0.25, 2.37, 8.13)
    assert (p["latent_noise"], p["feature_scaling"], p["cls_batch_size"]) == ("official", "minmax", 32)
    cls = GZSL["cada-vae"]
    official_cls_steps = {"CUB": 23, "SUN": 21, "AWA1": 33, "AWA2": 29}  # its GZSL cls_train_steps
    assert {name: cls.defaults_for(name)["cls_epochs"] for name in official_cls_steps} == official_cls_steps
