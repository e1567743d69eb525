"""CE-GZSL: contrastive losses by hand, beats ESZSL on unseen classes, reproducible, paper settings."""

import math

import numpy as np
import pytest
import torch

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.ce_gzsl import Comparator, instance_contrastive_loss
from unseen.methods.gzsl.generative import init_weights, stream
from unseen.protocols.gzsl import evaluate

# Half the fast preset's generator steps: enough for the planted classes to come out.
TEST_RUN = {"epochs": 10, "critic_iters": 2}


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(data, seed=0, monitor=None, **overrides):
    cls = GZSL["ce-gzsl"]
    return cls(seed=seed, **{**cls.fast_hparams, **overrides}).fit(data.train_set(), monitor)


def test_instance_contrastive_loss_by_hand():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # anchors 0 and 1: one positive (similarity 1) against {1, 0}; anchor 2 has no positive
    loss = instance_contrastive_loss(z, torch.tensor([0, 0, 1]), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(math.e + 1) - 1)
    loss = instance_contrastive_loss(z, torch.tensor([0, 0, 1]), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(math.e**2 + 1) - 2)
    # every anchor: a positive at similarity 0 against similarities {0, 1, 0}
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    loss = instance_contrastive_loss(z, torch.tensor([0, 0, 1, 1]), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(2 + math.e))
    assert instance_contrastive_loss(z, torch.tensor([0, 1, 2, 3]), 0.1).item() == 0.0


def test_instance_contrastive_loss_matches_its_formula_with_several_positives():
    gen = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(7, 3, generator=gen), dim=1)
    labels = [0, 1, 0, 2, 1, 0, 3]
    t = 0.3
    total, anchors = 0.0, 0
    for i in range(7):
        positives = [p for p in range(7) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / t) for a in range(7) if a != i)
        total += -sum(float(z[i] @ z[p]) / t - math.log(denominator) for p in positives) / len(positives)
        anchors += 1
    loss = instance_contrastive_loss(z, torch.tensor(labels), t)
    assert loss.item() == pytest.approx(total / anchors, rel=1e-5)


def test_comparator_scores_every_pair_as_on_the_concatenation():
    F = init_weights(Comparator(embed_dim=4, att_dim=3, hidden=5), stream(0, "test"))
    gen = torch.Generator().manual_seed(0)
    h, a = torch.rand(2, 4, generator=gen), torch.rand(3, 3, generator=gen)

    def on_concatenation(hi, ac):  # F(h, a) = W2 lrelu(W1 [h, a]), LeakyReLU slope 0.2
        pre = F.hidden(torch.cat([hi, ac]))
        return F.out(torch.where(pre > 0, pre, 0.2 * pre)).item()

    with torch.no_grad():
        expected = [[on_concatenation(hi, ac) for ac in a] for hi in h]
        np.testing.assert_allclose(F.pairwise(h, a).numpy(), expected, rtol=1e-5, atol=1e-9)


def test_unseen_accuracy_beats_eszsl_without_calibration(data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    ce = evaluate(fit(data, **TEST_RUN), data, None).metrics
    assert ce["U"] > eszsl["U"] + 10


def test_same_seed_same_numbers_and_checkpoints(data):
    small = {
        "epochs": 2,
        "hidden": 32,
        "batch_size": 256,
        "critic_iters": 1,
        "checkpoint_every": 1,
        "cls_epochs": 2,
    }
    X = data.split_features("test_seen")
    a, b = fit(data, **small).scores(X), fit(data, **small).scores(X)
    assert a.shape == (len(X), data.classes.n_classes) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit(data, seed=1, **small).scores(X))
    seen = []
    fit(data, monitor=lambda values, m: seen.append(values), **small)
    assert seen == [{"epochs": e, "cls_epochs": c} for e in (1, 2) for c in (1, 2)]


def test_classifier_sees_the_embedding_or_features_and_embedding(data):
    small = {"epochs": 1, "hidden": 16, "embed_dim": 8, "batch_size": 256, "cls_epochs": 1}
    X = torch.rand(5, data.dim)
    assert fit(data, **small)._embed(X).shape == (5, 8)
    assert fit(data, classifier_input="features+embedding", **small)._embed(X).shape == (5, data.dim + 8)


def test_paper_defaults():
    cls = GZSL["ce-gzsl"]
    p = cls().params
    readme_cub = (2048, 2048, 512, 2048, 0.001, 0.001, 0.1, 0.1, 100, 1e-4)
    got = ("batch_size", "embed_dim", "proj_dim", "comparator_hidden", "ins_weight", "cls_weight")
    got += ("ins_temp", "cls_temp", "syn_per_class", "lr")
    assert tuple(p[k] for k in got) == readme_cub
    assert (p["hidden"], p["critic_iters"], p["gp_weight"], p["lr_decay"], p["cls_epochs"]) == (
        4096,
        5,
        10.0,
        0.99,
        25,
    )
    per_class = {k: cls.defaults_for(k)["syn_per_class"] for k in ("CUB", "AWA1", "AWA2", "FLO", "SUN")}
    assert per_class == {"CUB": 100, "AWA1": 1800, "AWA2": 2400, "FLO": 600, "SUN": 100}
    assert cls.defaults_for("synthetic:SUN")["lr"] == 5e-5 and cls.defaults_for("FLO")["noise_dim"] == 512
