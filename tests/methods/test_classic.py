"""The seven classic GZSL baselines: DAP, ESZSL, SAE, ALE, SJE, DeViSE, LATEM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import solve_sylvester

from unseen.core.device import resolve_device
from unseen.core.errors import HyperparameterError
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.bilinear import train_bilinear
from unseen.methods.gzsl.dap import binarize_attributes
from unseen.methods.gzsl.eszsl import eszsl_solution
from unseen.methods.gzsl.ranking_losses import (
    ale_loss,
    ale_rank_weight,
    hinge_rank_loss,
    structured_hinge_loss,
)
from unseen.methods.gzsl.sae import sae_solution, solve_symmetric_sylvester
from unseen.metrics import zsl_accuracy

CLASSIC = ("dap", "eszsl", "sae", "ale", "sje", "devise", "latem")
SGD = ("ale", "sje", "devise", "latem")


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset("AWA2", seed=0, dim=64, scale=0.05)


@pytest.fixture(scope="module")
def fitted(dataset):
    """Each method fitted once with defaults and seed 0, with its unseen-test scores."""
    X = dataset.split_features("test_unseen")
    out = {}
    for name in CLASSIC:
        method = GZSL[name](seed=0).fit(dataset.train_set())
        out[name] = (method, method.scores(X))
    return out


def unseen_accuracy(dataset, scores):
    labels = dataset.split_labels("test_unseen")
    return zsl_accuracy(scores, labels, dataset.classes.unseen_ids)


def test_all_seven_are_registered():
    assert set(CLASSIC) <= set(GZSL)
    for name in CLASSIC:
        assert GZSL[name].paper


@pytest.mark.parametrize("name", CLASSIC)
def test_zero_shot_accuracy_beats_chance(dataset, fitted, name):
    chance = 100.0 / len(dataset.classes.unseen_ids)
    assert unseen_accuracy(dataset, fitted[name][1]) > 1.5 * chance


def test_eszsl_and_ale_beat_dap(dataset, fitted):
    dap = unseen_accuracy(dataset, fitted["dap"][1])
    assert unseen_accuracy(dataset, fitted["eszsl"][1]) > dap
    assert unseen_accuracy(dataset, fitted["ale"][1]) > dap


@pytest.mark.parametrize("name", SGD)
def test_another_seed_changes_sgd_scores(dataset, fitted, name):
    other = GZSL[name](seed=1).fit(dataset.train_set())
    assert not np.allclose(other.scores(dataset.split_features("test_unseen")), fitted[name][1])


@pytest.mark.parametrize("name", CLASSIC)
def test_bad_hyperparameters_raise(name):
    with pytest.raises(HyperparameterError):
        GZSL[name](not_a_hyperparameter=1)
    with pytest.raises(HyperparameterError):
        GZSL[name](feature_norm="whiten")
    if "semantic_norm" in GZSL[name]().params:
        with pytest.raises(HyperparameterError):
            GZSL[name](semantic_norm="whiten")
    with pytest.raises(HyperparameterError):
        GZSL[name](seed=0, **{next(h.name for h in GZSL[name].hparams): "not a value"})


def test_categorical_choices_are_checked():
    with pytest.raises(HyperparameterError):
        GZSL["sae"](space="pixels")
    with pytest.raises(HyperparameterError):
        GZSL["dap"](binarize="median")


@pytest.mark.parametrize("name", CLASSIC)
def test_grids_are_small_and_contain_defaults(name):
    cls = GZSL[name]
    size = int(np.prod([len(h.grid) for h in cls.hparams]))
    assert size <= (8 if name in SGD else 49)
    for h in cls.hparams:
        assert h.default in h.grid


def test_device_defaults_to_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("name", CLASSIC)
def test_fits_a_renumbered_validation_task(dataset, name):
    task = dataset.validation_task(seed=0)
    method = GZSL[name](seed=0, **({"epochs": 2} if name in SGD else {})).fit(task.train_set())
    scores = method.scores(task.split_features("test_unseen"))
    assert scores.shape == (len(task.indices("test_unseen")), task.classes.n_classes)


# -- closed forms and losses on hand-made cases -------------------------------------------------


def test_eszsl_matches_the_papers_closed_form():
    rng = np.random.default_rng(0)
    n, d, k, z = 12, 5, 4, 3
    X = rng.normal(size=(n, d))
    labels = np.arange(n) % z
    S = rng.normal(size=(z, k))
    alpha, gamma = 0.5, 2.0
    # The paper's notation: X (d, n), Y (n, z) in {-1, +1}, S (k, z).
    Xp, Sp = X.T, S.T
    Y = -np.ones((n, z))
    Y[np.arange(n), labels] = 1.0
    V = (
        np.linalg.inv(Xp @ Xp.T + alpha * np.eye(d))
        @ Xp
        @ Y
        @ Sp.T
        @ np.linalg.inv(Sp @ Sp.T + gamma * np.eye(k))
    )
    np.testing.assert_allclose(eszsl_solution(X, labels, S, alpha, gamma), V, rtol=1e-10)


def test_sae_solves_its_sylvester_equation():
    rng = np.random.default_rng(1)
    n, d, k, z = 30, 6, 4, 5
    X = rng.normal(size=(n, d))
    labels = np.arange(n) % z
    S = rng.normal(size=(z, k))
    lam = 0.7
    W = sae_solution(X, labels, S, lam)
    Sn = S[labels].T  # (k, n) per-sample semantics
    Xp = X.T
    np.testing.assert_allclose(
        Sn @ Sn.T @ W + lam * W @ Xp @ Xp.T, (1 + lam) * Sn @ Xp.T, rtol=1e-8, atol=1e-8
    )
    np.testing.assert_allclose(
        W, solve_sylvester(Sn @ Sn.T, lam * Xp @ Xp.T, (1 + lam) * Sn @ Xp.T), rtol=1e-8
    )


def test_symmetric_sylvester_matches_scipy():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(4, 6))
    B = rng.normal(size=(5, 8))
    A, B = A @ A.T + 0.1 * np.eye(4), B @ B.T
    C = rng.normal(size=(4, 5))
    np.testing.assert_allclose(
        solve_symmetric_sylvester(A, B, C), solve_sylvester(A, B, C), rtol=1e-9, atol=1e-12
    )


def test_ale_rank_weight_values():
    weights = ale_rank_weight(torch.tensor([0, 1, 2, 3]))
    expected = [0.0, 1.0, (1 + 1 / 2) / 2, (1 + 1 / 2 + 1 / 3) / 3]
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)


def test_ale_loss_weights_the_summed_violations_by_rank():
    # True class 0 scores 1.0; classes 1-3 violate the unit margin, class 4 does not.
    F = torch.tensor([[1.0, 1.5, 0.5, 0.2, -1.0]])
    violations = (1 + 1.5 - 1.0) + (1 + 0.5 - 1.0) + (1 + 0.2 - 1.0)
    expected = (1 + 1 / 2 + 1 / 3) / 3 * violations
    assert ale_loss(F, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)
    assert ale_loss(torch.tensor([[5.0, 1.0, 0.0]]), torch.tensor([0])).item() == 0.0


def test_sje_and_devise_losses_on_a_hand_made_case():
    F = torch.tensor([[1.0, 1.5, 0.5, -3.0]])
    y = torch.tensor([0])
    # SJE: most violating class 1: 1 + 1.5 - 1.0.
    assert structured_hinge_loss(F, y).item() == pytest.approx(1.5)
    # DeViSE, margin 0.1: classes 1 (0.6) and 2 (0.1 + 0.5 - 1.0 < 0 -> 0).
    assert hinge_rank_loss(F, y, margin=0.1).item() == pytest.approx(0.6)
    assert structured_hinge_loss(torch.tensor([[3.0, 1.0]]), y).item() == 0.0


@pytest.mark.parametrize("n_maps", [1, 3])
def test_class_span_sgd_gives_the_direct_sgd_iterates(n_maps):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 16, generator=gen, dtype=torch.float64)
    S = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 6, (200,), generator=gen)
    kwargs = dict(n_maps=n_maps, lr=0.5, epochs=3, batch_size=32)
    direct = train_bilinear(
        X, y, S, ale_loss, generator=torch.Generator().manual_seed(1), class_span=False, **kwargs
    )
    span = train_bilinear(
        X, y, S, ale_loss, generator=torch.Generator().manual_seed(1), class_span=True, **kwargs
    )
    assert direct.shape == (16, n_maps * 10)
    torch.testing.assert_close(span, direct, rtol=1e-10, atol=1e-12)


def test_latem_with_one_map_is_sje(dataset):
    X = dataset.split_features("test_unseen")
    sje = GZSL["sje"](seed=3, epochs=3).fit(dataset.train_set())
    latem = GZSL["latem"](seed=3, epochs=3, n_maps=1, lr=sje.params["lr"]).fit(dataset.train_set())
    np.testing.assert_allclose(latem.scores(X), sje.scores(X), rtol=1e-6, atol=1e-7)


def test_dap_binarisation_rules():
    S = np.array([[0.0, 1.0, 0.2], [1.0, 1.0, 0.6], [0.0, 0.0, 0.4]])
    np.testing.assert_array_equal(binarize_attributes(S, "mean"), [[0, 1, 0], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(binarize_attributes(S, "zero"), [[0, 1, 1], [1, 1, 1], [0, 0, 1]])
