"""Epoch selection on validation: curves, refit lengths, and no access to test labels."""

import numpy as np
import pytest

from unseen.core.registry import HParam
from unseen.data.model import SplitName, TrainSet, ZSLDataset
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL, GZSLMethod
from unseen.protocols import GZSLProtocol
from unseen.protocols.gzsl import FitCache

TINY = {
    "epochs": 4,
    "checkpoint_every": 2,
    "cls_epochs": 3,
    "hidden": 16,
    "critic_iters": 1,
    "batch_size": 64,
}


class PeakAtThree(GZSLMethod):
    """Ridge scores after exactly 3 epochs, seeded noise otherwise; records every fit."""

    paper = "test double"
    hparams = (HParam("epochs", 5),)
    selected_on_validation = ("epochs",)
    fits: list = []

    def _fit(self, train: TrainSet) -> None:
        PeakAtThree.fits.append((self.params["epochs"], self.monitored))
        X, S = train.features, train.classes.semantics
        self.W = np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ S[train.labels])
        self.S = S
        for e in range(1, self.params["epochs"] + 1):
            self.epoch = e
            self.checkpoint(epochs=e)

    def _scores(self, X):
        if self.epoch != 3:
            return np.random.default_rng(self.epoch).normal(size=(len(X), len(self.S)))
        return (X @ self.W) @ self.S.T


@pytest.fixture
def peak(monkeypatch):
    monkeypatch.setitem(GZSL._entries, "peak-at-three", PeakAtThree)
    PeakAtThree.fits = []
    return PeakAtThree


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=3, dim=16, difficulty=0.1, scale=0.03)


def _poisoned(d: ZSLDataset, seed: int) -> ZSLDataset:
    rng = np.random.default_rng(seed)
    labels = d.labels.copy()
    for split, pool in (
        (SplitName.TEST_SEEN, d.classes.seen_ids),
        (SplitName.TEST_UNSEEN, d.classes.unseen_ids),
    ):
        idx = d.indices(split)
        labels[idx] = rng.choice(pool, size=len(idx))
    return ZSLDataset(
        name=d.name,
        features=d.features,
        labels=labels,
        classes=d.classes,
        split_indices={s.value: sp.indices for s, sp in d.splits.items()},
        val_classes=d.val_classes,
        source=d.source,
    )


def test_best_checkpoint_sets_the_refit_length_and_the_refit_is_unmonitored(peak, data):
    record = GZSLProtocol(search="default").run(data, "peak-at-three")
    assert record["hparams"]["epochs"] == 3
    assert peak.fits == [(5, True), (3, False)]
    curve = record["selection"]["trials"][0]["curve"]
    assert [c["epochs"] for c in curve] == [1, 2, 3, 4, 5]
    assert max(curve, key=lambda c: c["H"])["epochs"] == 3
    assert {"S", "U", "H"} <= set(curve[0])
    assert "select_s" in record["timing"] and "fit_s" in record["timing"]


def test_generative_curve_covers_every_checkpoint_and_refit_reproduces_it(data):
    record = GZSLProtocol(search="default").run(data, "f-clswgan", {**GZSL["f-clswgan"].fast_hparams, **TINY})
    curve = record["selection"]["trials"][0]["curve"]
    assert [(c["epochs"], c["cls_epochs"]) for c in curve] == [(e, c) for e in (2, 4) for c in (1, 2, 3)]
    best = max(curve, key=lambda c: c["H"])
    assert (record["hparams"]["epochs"], record["hparams"]["cls_epochs"]) == (
        best["epochs"],
        best["cls_epochs"],
    )


@pytest.mark.parametrize("method", ["f-clswgan", "f-vaegan", "tf-vaegan"])
def test_unmonitored_fit_reproduces_the_checkpoint_it_is_refit_to(method, data):
    """A checkpoint at (e, c) is exactly the model a plain fit with epochs=e, cls_epochs=c gives."""
    params = {**GZSL[method].fast_hparams, **TINY}
    X = data.split_features("test_unseen")
    at_checkpoint = {}

    def monitor(values, m):
        at_checkpoint[(values["epochs"], values["cls_epochs"])] = m.scores(X)

    GZSL[method](**params).fit(data.train_set(), monitor=monitor)
    plain = GZSL[method](**{**params, "epochs": 2, "cls_epochs": 2}).fit(data.train_set())
    np.testing.assert_allclose(plain.scores(X), at_checkpoint[(2, 2)], rtol=1e-5, atol=1e-6)


def test_poisoned_test_labels_leave_chosen_epochs_and_gamma_unchanged(data):
    hp = {**GZSL["f-clswgan"].fast_hparams, **TINY}
    clean = GZSLProtocol(calibrate=True, search="default").run(data, "f-clswgan", hp)
    poisoned = GZSLProtocol(calibrate=True, search="default").run(_poisoned(data, 0), "f-clswgan", hp)
    assert poisoned["hparams"] == clean["hparams"]
    assert poisoned["gamma"] == clean["gamma"]
    assert poisoned["selection"]["trials"] == clean["selection"]["trials"]
    assert poisoned["metrics"]["H"] != clean["metrics"]["H"]


def test_fit_cache_shares_monitored_fits_between_plain_and_calibrated_runs(peak, data):
    cache = FitCache()
    plain = GZSLProtocol(search="default").run(data, "peak-at-three", cache=cache)
    calibrated = GZSLProtocol(calibrate=True, search="default").run(data, "peak-at-three", cache=cache)
    assert calibrated["timing"]["fits_reused"] >= 1
    assert len(plain["selection"]["trials"][0]["curve"]) == len(calibrated["selection"]["trials"][0]["curve"])
    assert calibrated["gamma"] is not None and plain["gamma"] is None
