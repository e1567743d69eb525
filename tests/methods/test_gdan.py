"""GDAN: its losses and 1-NN scores by hand, the uniform noise and negative classes of the official
code, a trained metric discriminator that prefers matching pairs, the official configs, and unseen
accuracy beyond ESZSL's on planted data."""

import math

import pytest
import torch

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.gdan import (
    NearestNeighbourScores,
    discriminator_loss,
    generator_regressor_loss,
    latent_noise,
    negative_classes,
    vae_loss,
)
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


@pytest.fixture(scope="module")
def fitted(data):
    cls = GZSL["gdan"]
    return cls(seed=0, **cls.fast_hparams).fit(data.train_set())


def dot(x, a):  # a metric "discriminator" whose scores are easy to write down
    return (x * a).sum(1, keepdim=True)


def test_vae_loss_by_hand():
    x, x_rec = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[math.log(2.0)]])
    # 0.5 * (1 + 4) + 0.5 * (2 + 1 - 1 - log 2)
    assert vae_loss(x, x_rec, mu, logvar).item() == pytest.approx(2.5 + 0.5 * (2 - math.log(2)))


def test_discriminator_loss_by_hand():
    x, a = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fake = torch.tensor([[0.5, 0.0], [0.0, 1.0]])  # scores 0.5, 1
    regressed = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # scores 2, 0
    negative = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # scores 0, 0
    # real scores 1, 2: ((0 + 1) / 2) + ((0.25 + 1) / 2) + 0.5 * ((4 + 0) / 2) + 0
    loss = discriminator_loss(dot, x, a, fake, regressed, negative, regressor_weight=0.5)
    assert loss.item() == pytest.approx(0.5 + 0.625 + 1.0)


def test_generator_regressor_loss_by_hand():
    x, a = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    x_rec = torch.tensor([[3.0, 2.0]])  # vae: 0.5 * 4 (zero KL below); D(x_rec, a) = 3 -> (3 - 1)^2 = 4
    mu, logvar = torch.zeros(1, 3), torch.zeros(1, 3)
    a_regressed = torch.tensor([[0.0, 1.0]])  # mse to a: 1; D(x, a_regressed) = 2 -> (2 - 1)^2 = 1
    a_cycle = torch.tensor([[1.0, 2.0]])  # mse to a: 2
    x_cycle = torch.tensor([[1.0, 0.0]])  # mse to x: 2
    loss = generator_regressor_loss(
        dot, x, a, x_rec, mu, logvar, a_regressed, a_cycle, x_cycle, weights=(0.1, 0.2, 0.3)
    )
    assert loss.item() == pytest.approx(2.0 + 4.0 + 0.1 * (2 + 2) + 0.2 * 1 + 0.3 * 1)


def test_official_noise_is_uniform_on_the_unit_interval():
    eps = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    u = latent_noise(eps, "official")
    assert latent_noise(torch.zeros(1), "official").item() == pytest.approx(0.5)
    assert 0 < u.min() and u.max() < 1
    counts = torch.histc(u, bins=10, min=0, max=1) / len(u)
    assert torch.allclose(counts, torch.full((10,), 0.1), atol=0.005)
    assert torch.equal(latent_noise(eps, "standard"), eps)


def test_negative_classes_are_other_classes_drawn_uniformly():
    local = torch.zeros(30_000, dtype=torch.long).index_fill_(0, torch.arange(15_000), 2)
    neg = negative_classes(local, 4, torch.Generator().manual_seed(0))
    assert (neg != local).all()
    shares = torch.bincount(neg[local == 2], minlength=4) / 15_000
    assert shares[2] == 0 and torch.allclose(shares[[0, 1, 3]], torch.full((3,), 1 / 3), atol=0.02)


def test_nearest_neighbour_scores_by_hand():
    bank = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
    clf = NearestNeighbourScores(bank, torch.tensor([0, 0, 2]), n_classes=4)
    scores = clf(torch.tensor([[3.0, 0.0], [0.0, 2.0]]))
    assert scores[0, [0, 2]].tolist() == pytest.approx([-1.0, -(18**0.5)])
    assert scores[1, [0, 2]].tolist() == pytest.approx([-2.0, -1.0])
    # classes 1 and 3 have no rows: one below the row's lowest score
    assert scores[:, 1].tolist() == scores[:, 3].tolist() == pytest.approx([-(18**0.5) - 1, -3.0])
    assert scores.argmax(1).tolist() == [0, 2]


def test_the_discriminator_scores_matching_pairs_above_other_classes(data, fitted):
    x, y = fitted._X, fitted._y_local
    a = fitted._S[fitted._seen_ids[y]]
    other = fitted._S[fitted._seen_ids[(y + 1) % len(fitted._seen_ids)]]
    with torch.no_grad():  # 55 % of the samples after one epoch
        assert (fitted._D(x, a) > fitted._D(x, other)).float().mean() > 0.9


def test_unseen_accuracy_beats_eszsl_without_calibration(data, fitted):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert evaluate(fitted, data, None).metrics["U"] > eszsl["U"] + 10


# The official configs (stevehuanghe/GDAN, configs/*.yaml over utils/config_gdan.py) in our names:
# epoch -> epochs, batch -> batch_size, learning_rate -> lr, z_dim -> latent, enc/dec/reg/dis ->
# enc_hidden1/2, dec_hidden, reg_hidden, dis_hidden, theta1/2/3 -> cycle_weight, regression_weight,
# regressor_adv_weight, num_samples -> syn_per_class; pretrain_epochs is the cvae_N.pkl each
# config's vae_ckpt starts from.
COMMON = {
    "epochs": 500,
    "lr": 1e-5,
    "weight_decay": 0.01,
    "latent": 100,
    "reg_hidden": 512,
    "dis_hidden": 800,
    "cycle_weight": 0.1,
    "regression_weight": 0.1,
    "regressor_adv_weight": 0.1,
    "syn_per_class": 500,
    "dropout": 0.3,
}
CUB_LIKE = {**COMMON, "batch_size": 128, "enc_hidden1": 1200, "enc_hidden2": 600, "dec_hidden": 600}
OFFICIAL = {
    "CUB": {**CUB_LIKE, "pretrain_epochs": 670},
    "SUN": {**CUB_LIKE, "pretrain_epochs": 320},
    "APY": {**CUB_LIKE, "pretrain_epochs": 590},
    "AWA2": {**COMMON, "batch_size": 256, "enc_hidden1": 1024, "enc_hidden2": 512, "dec_hidden": 512,
             "pretrain_epochs": 150},
}  # fmt: skip


@pytest.mark.parametrize("dataset", sorted(OFFICIAL))
def test_dataset_defaults_are_the_official_configs(dataset):
    cls = GZSL["gdan"]
    params = cls(**cls.defaults_for(dataset)).params
    assert {k: params[k] for k in OFFICIAL[dataset]} == OFFICIAL[dataset]
