"""gzsl-ps-v1: selection on validation only, refit on train, test labels out of methods' reach."""

import json

import numpy as np
import pytest

from unseen.core.registry import HParam
from unseen.data.model import SplitName, TrainSet, ZSLDataset
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL, GZSLMethod
from unseen.protocols import GZSLProtocol


class RidgeSpy(GZSLMethod):
    """Ridge map features -> semantics, cosine scores; remembers every array it is handed."""

    paper = "test double"
    hparams = (HParam("alpha", 1.0, grid=(0.01, 1.0, 100.0)),)
    received: list = []

    def _fit(self, train: TrainSet) -> None:
        RidgeSpy.received.append(("fit", train))
        X, S = train.features, train.classes.semantics[train.labels]
        d = X.shape[1]
        self.W = np.linalg.solve(X.T @ X + self.params["alpha"] * np.eye(d), X.T @ S)
        self.S = train.classes.semantics

    def _scores(self, X):
        RidgeSpy.received.append(("scores", X))
        P = X @ self.W
        P /= np.linalg.norm(P, axis=1, keepdims=True) + 1e-9
        return P @ (self.S / (np.linalg.norm(self.S, axis=1, keepdims=True) + 1e-9)).T


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setitem(GZSL._entries, "ridge-spy", RidgeSpy)
    RidgeSpy.received = []
    return RidgeSpy


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=3, dim=32, scale=0.04)


def _with_labels(d: ZSLDataset, labels: np.ndarray) -> ZSLDataset:
    return ZSLDataset(
        name=d.name,
        features=d.features,
        labels=labels,
        classes=d.classes,
        split_indices={s.value: sp.indices for s, sp in d.splits.items()},
        val_classes=d.val_classes,
        source=d.source,
    )


def _poisoned(d: ZSLDataset, seed: int) -> ZSLDataset:
    """Test labels shuffled within each role: what a leaking selection would react to."""
    rng = np.random.default_rng(seed)
    labels = d.labels.copy()
    for split, pool in (
        (SplitName.TEST_SEEN, d.classes.seen_ids),
        (SplitName.TEST_UNSEEN, d.classes.unseen_ids),
    ):
        idx = d.indices(split)
        labels[idx] = rng.choice(pool, size=len(idx))
    return _with_labels(d, labels)


def test_methods_never_receive_test_labels_or_test_rows_in_fit(spy, data):
    GZSLProtocol(calibrate=True).run(data, "ridge-spy")
    test_rows = {r.tobytes() for s in ("test_seen", "test_unseen") for r in data.split_features(s)}
    fits = [obj for kind, obj in spy.received if kind == "fit"]
    assert len(fits) == 4  # three grid points on validation + the refit
    for train in fits:
        assert isinstance(train, TrainSet)
        assert not np.shares_memory(train.labels, data.labels)
        assert not any(r.tobytes() in test_rows for r in train.features)
        assert set(np.unique(train.labels)) <= set(np.flatnonzero(train.classes.seen))
    # validation fits see a smaller class table without the real unseen classes
    assert fits[0].classes.n_classes < data.classes.n_classes
    assert fits[-1].classes is data.classes
    for kind, obj in spy.received:
        if kind == "scores":
            assert obj.ndim == 2 and obj.shape[1] == data.dim


def test_selection_ignores_test_labels(spy, data):
    clean = GZSLProtocol(calibrate=True).run(data, "ridge-spy")
    poisoned = GZSLProtocol(calibrate=True).run(_poisoned(data, 0), "ridge-spy")
    assert poisoned["hparams"] == clean["hparams"]
    assert poisoned["gamma"] == clean["gamma"]
    assert poisoned["selection"]["trials"] == clean["selection"]["trials"]
    assert poisoned["metrics"]["H"] != clean["metrics"]["H"]


def test_record_is_complete_and_consistent(spy, data):
    rec = GZSLProtocol(seed=1).run(data, "ridge-spy")
    json.dumps(rec)  # serialisable
    m = rec["metrics"]
    assert set(m) == {"S", "U", "H", "ZSL", "AUSUC"}
    assert m["H"] == pytest.approx(2 * m["S"] * m["U"] / (m["S"] + m["U"]))
    assert 0.0 <= m["AUSUC"] <= 1.0
    assert rec["protocol"] == "gzsl-ps-v1" and rec["seed"] == 1
    assert rec["data"]["hash"] == data.hash
    assert rec["data"]["semantics_kind"] == data.classes.semantics_kind
    assert rec["hparams"]["alpha"] in (0.01, 1.0, 100.0)
    best = max(rec["selection"]["trials"], key=lambda t: t["val"]["H"])
    assert rec["hparams"] == best["hparams"]
    assert rec["gamma"] is None and rec["metrics_uncalibrated"] == m
    assert {"torch", "numpy", "python"} <= set(rec["versions"])


def test_fixed_hparams_are_not_searched(spy, data):
    rec = GZSLProtocol().run(data, "ridge-spy", hparams={"alpha": 5.0})
    assert [t["hparams"] for t in rec["selection"]["trials"]] == [{"alpha": 5.0}]
    assert rec["hparams"] == {"alpha": 5.0}


def test_same_seed_same_numbers_and_stable_run_id(spy, data):
    a = GZSLProtocol(calibrate=True, seed=2).run(data, "ridge-spy")
    b = GZSLProtocol(calibrate=True, seed=2).run(data, "ridge-spy")
    assert a["metrics"] == b["metrics"] and a["run_id"] == b["run_id"]
    c = GZSLProtocol(calibrate=True, seed=3).run(data, "ridge-spy")
    assert c["run_id"] != a["run_id"]


def test_calibration_raises_h_for_a_seen_biased_method(spy, data):
    plain = GZSLProtocol().run(data, "ridge-spy")
    calibrated = GZSLProtocol(calibrate=True).run(data, "ridge-spy")
    assert plain["metrics"]["U"] < plain["metrics"]["S"]
    assert calibrated["metrics"]["H"] > plain["metrics"]["H"]
