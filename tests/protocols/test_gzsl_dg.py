"""gzsl-dg-v1: nothing of the held-out domain or the unseen classes reaches a fit or a selection;
with an identity featurizer and a copied domain it is gzsl-ps-v1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unseen.core.errors import HyperparameterError, SpecError, UnknownNameError
from unseen.core.record import run_id
from unseen.core.registry import HParam
from unseen.data.domains import DomainDataset
from unseen.data.model import ClassTable, TrainSet, ZSLDataset
from unseen.data.synthetic import synthetic_dataset
from unseen.data.zsl_domains import ZSLDomainDataset
from unseen.methods import DG, GZSL, GZSLMethod
from unseen.methods.dg.algorithms import ERM
from unseen.metrics import calibrated_stacking, gzsl_accuracies, zsl_accuracy
from unseen.protocols.gzsl import GZSLProtocol
from unseen.protocols.gzsl_dg import GZSLDGProtocol, parse_method

FAST_DG = {"mlp_width": 32, "batch_size": 16}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def zsl_domains(n_domains=4, n_classes=8, n_unseen=2, per=10, dim=12, seed=0, ids=False) -> ZSLDomainDataset:
    """Classes placed by their semantics through a random linear map, each domain shifted by its
    own offset; with ``ids`` feature 0 is the sample's row number, so a batch says where it came
    from."""
    rng = np.random.default_rng(seed)
    semantics = rng.normal(size=(n_classes, 6)).astype(np.float32)
    mixing = rng.normal(size=(6, dim))
    offsets = rng.normal(0, 0.7, size=(n_domains, dim))
    labels = np.tile(np.repeat(np.arange(n_classes), per), n_domains)
    domains = np.repeat(np.arange(n_domains), n_classes * per)
    x = semantics[labels] @ mixing + offsets[domains] + rng.normal(0, 0.5, (len(labels), dim))
    if ids:
        x[:, 0] = np.arange(len(labels))
    names = tuple(f"c{c}" for c in range(n_classes))
    seen = np.arange(n_classes) < n_classes - n_unseen
    return ZSLDomainDataset(
        DomainDataset(
            "planted", x, labels, domains, names, tuple(f"d{k}" for k in range(n_domains)), "test:planted"
        ),
        ClassTable(names, seen, semantics, "attributes:planted"),
    )


def poisoned(data: ZSLDomainDataset, test_env: int, seed: int = 1) -> ZSLDomainDataset:
    """The held-out domain's inputs replaced by noise and its labels permuted; every unseen-class
    sample's inputs replaced by noise and the unseen labels permuted within each domain. Class
    counts per domain are kept, so every split of the allowed data stays the same."""
    rng = np.random.default_rng(seed)
    s = data.samples
    x, y = s.inputs.copy(), s.labels.copy()
    held = np.flatnonzero(s.domains == test_env)
    x[held] = rng.normal(0, 5, x[held].shape)
    y[held] = rng.permutation(y[held])
    for k in range(s.n_domains):
        if k == test_env:
            continue
        rows = np.flatnonzero((s.domains == k) & ~data.classes.seen[y])
        x[rows] = rng.normal(0, 5, x[rows].shape)
        y[rows] = rng.permutation(y[rows])
    return ZSLDomainDataset(
        DomainDataset(s.name, x, y, s.domains, s.class_names, s.domain_names, s.source),
        data.classes,
        data.val_classes,
    )


def _forbidden(data: ZSLDomainDataset, test_env: int) -> set[int]:
    s = data.samples
    return set(np.flatnonzero((s.domains == test_env) | ~data.classes.seen[s.labels]).tolist())


def test_the_split_keeps_unseen_classes_and_the_held_out_domain_out_of_every_fit():
    data = zsl_domains()
    protocol = GZSLDGProtocol(test_env=2, seed=3)
    split = protocol.split(data)
    s = data.samples
    forbidden = _forbidden(data, 2)
    assert not set(split.fit.tolist()) & forbidden
    assert set(split.test_seen.tolist()) | set(split.test_unseen.tolist()) == set(
        s.domain_indices(2).tolist()
    )
    assert data.classes.seen[s.labels[split.test_seen]].all()
    assert not data.classes.seen[s.labels[split.test_unseen]].any()
    parts = [
        split.fit,
        split.train_domains_seen,
        split.train_domains_unseen,
        split.test_seen,
        split.test_unseen,
    ]
    assert sum(len(p) for p in parts) == len(s.labels) == len(np.unique(np.concatenate(parts)))
    # The in/out division of a domain does not depend on which domain is held out.
    other = GZSLDGProtocol(test_env=0, seed=3).split(data)
    for k in (1, 3):
        assert np.array_equal(split.in_parts[k], other.in_parts[k])
    val, val_env = protocol.validation(data, split)
    assert val_env in (0, 1, 3)  # three training domains: one of them is held out for validation
    assert np.isin(val.pseudo_unseen, data.classes.seen_ids).all() and len(val.pseudo_unseen) == 1
    rows = np.concatenate(list(val.parts.values()))
    assert set(rows.tolist()) <= set(split.fit.tolist())
    assert set(s.domains[val.parts["test_seen"]]) == set(s.domains[val.parts["test_unseen"]]) == {val_env}
    assert val_env not in set(s.domains[val.parts["train"]])
    assert set(s.labels[val.parts["test_unseen"]]) == set(val.pseudo_unseen)
    assert not set(s.labels[val.parts["train"]]) & set(val.pseudo_unseen)


def test_with_two_training_domains_validation_holds_out_samples_not_a_domain():
    data = zsl_domains(n_domains=3)
    protocol = GZSLDGProtocol(test_env=0)
    split = protocol.split(data)
    val, val_env = protocol.validation(data, split)
    assert val_env is None
    s = data.samples
    assert set(s.domains[val.parts["test_seen"]]) == {1, 2}
    assert set(np.concatenate(list(val.parts.values())).tolist()) <= set(split.fit.tolist())


row_log: list[np.ndarray] = []


class RowSpy(ERM):
    """ERM that remembers the row id (feature 0) of every sample it trains on."""

    name = "row-spy"
    paper = "test spy"

    def update(self, minibatches):
        for x, _ in minibatches:
            row_log.append(x[:, 0].numpy().astype(int))
        return super().update(minibatches)


class ScoreSpy(GZSLMethod):
    """Ridge map features -> semantics; remembers the row ids of everything it fits or scores."""

    name = "score-spy"
    paper = "test spy"
    hparams = (HParam("alpha", 1.0, grid=(0.1, 10.0)),)
    fitted: list = []
    scored: list = []

    def _fit(self, train: TrainSet) -> None:
        ScoreSpy.fitted.append(train.features[:, 0].astype(int))
        X, S = train.features[:, 1:], train.classes.semantics[train.labels]
        self.W = np.linalg.solve(X.T @ X + self.params["alpha"] * np.eye(X.shape[1]), X.T @ S)
        self.S = train.classes.semantics

    def _scores(self, X):
        ScoreSpy.scored.append(X[:, 0].astype(int))
        return (X[:, 1:] @ self.W) @ self.S.T


@pytest.fixture
def spies(monkeypatch):
    monkeypatch.setitem(DG._entries, "row-spy", RowSpy)
    monkeypatch.setitem(GZSL._entries, "score-spy", ScoreSpy)
    row_log.clear()
    ScoreSpy.fitted, ScoreSpy.scored = [], []


def test_no_held_out_or_unseen_sample_reaches_the_featurizer_or_a_fit(spies):
    data = zsl_domains(ids=True)
    forbidden = _forbidden(data, 1)
    protocol = GZSLDGProtocol(test_env=1, steps=6, checkpoint_freq=3, calibrate=True)
    protocol.run(data, "row-spy+score-spy", featurizer_hparams=FAST_DG)
    trained = set(np.concatenate(row_log).tolist())
    assert trained and not trained & forbidden
    # identity: the GZSL method sees raw rows, so its fits and its validation scores are checked too
    ScoreSpy.fitted, ScoreSpy.scored = [], []
    record = protocol.run(data, "identity+score-spy")
    assert len(ScoreSpy.fitted) == 3  # two candidates on validation + the refit
    for rows in ScoreSpy.fitted:
        assert not set(rows.tolist()) & forbidden
    n_val = sum(record["selection"]["val_task"][k] for k in ("test_seen", "test_unseen"))
    selection_scores = ScoreSpy.scored[: 2 * 2]  # two candidates x (test_seen, test_unseen)
    assert sum(len(r) for r in selection_scores) == 2 * n_val
    for rows in selection_scores:
        assert not set(rows.tolist()) & forbidden


def _probe_scores(fitted, data):
    probe = data.samples.inputs[data.samples.domains != 1][:50]
    return fitted.scores(probe)


@pytest.mark.parametrize(
    ("method", "featurizer_search"),
    [
        ("erm+eszsl", "default"),
        ("coral+eszsl", "default"),
        ("identity+eszsl", "default"),
        ("erm+eszsl", "random:2"),
    ],
)
def test_poisoning_the_held_out_domain_and_the_unseen_classes_moves_nothing_but_the_test(
    method, featurizer_search
):
    data = zsl_domains(seed=4)
    dg = {} if method.startswith("identity") else FAST_DG
    protocol = GZSLDGProtocol(
        test_env=1,
        steps=8,
        checkpoint_freq=4,
        calibrate=True,
        search="random:6",
        featurizer_search=featurizer_search,
    )
    clean_model, clean = protocol.fit(data, method, featurizer_hparams=dg)
    bad = poisoned(data, 1)
    bad_model, dirty = protocol.fit(bad, method, featurizer_hparams=dg)
    assert clean["selection"]["trials"] == dirty["selection"]["trials"]
    assert (clean["hparams"], clean["gamma"], clean["featurizer_steps"]) == (
        dirty["hparams"],
        dirty["gamma"],
        dirty["featurizer_steps"],
    )
    assert clean["featurizer_checkpoints"] == dirty["featurizer_checkpoints"]
    assert clean["featurizer_hparams"] == dirty["featurizer_hparams"]
    if clean_model.featurizer is not None:
        for a, b in zip(
            clean_model.featurizer.state_dict().values(),
            bad_model.featurizer.state_dict().values(),
            strict=True,
        ):
            assert torch.equal(a, b)
    assert np.array_equal(_probe_scores(clean_model, data), _probe_scores(bad_model, data))
    # The poison is real: the held-out test moves.
    assert clean["metrics"] != dirty["metrics"]


def test_a_featurizer_search_trains_every_draw_on_validation_and_refits_the_winner():
    data = zsl_domains(seed=4)
    protocol = GZSLDGProtocol(
        test_env=1, steps=8, checkpoint_freq=4, calibrate=True, search="default", featurizer_search="random:3"
    )
    record = protocol.run(data, "erm+eszsl", featurizer_hparams=FAST_DG)
    search = record["selection"]["featurizer"]
    drawn = [c["hparams"] for c in search["candidates"]]
    assert search["search"] == "random:3" and len(drawn) == 3
    assert all(h["mlp_width"] == 32 and h["batch_size"] == 16 for h in drawn)  # fixed values are not drawn
    assert len({tuple(sorted(h.items())) for h in drawn}) == 3
    # every draw is scored at both checkpoints; the best validation H fixes the draw and the length
    assert sorted({(t["featurizer_candidate"], t["step"]) for t in record["selection"]["trials"]}) == [
        (c, s) for c in range(3) for s in (4, 8)
    ]
    best = max(record["selection"]["trials"], key=lambda t: t["val"]["H"])
    assert search["chosen"] == best["featurizer_candidate"]
    assert record["featurizer_steps"] == best["step"]
    assert record["featurizer_hparams"] == drawn[search["chosen"]]
    assert search["checkpoints"] == search["candidates"][search["chosen"]]["checkpoints"]
    # the search is part of the run's identity; same seed, same draws and numbers
    default = GZSLDGProtocol(test_env=1, steps=8, checkpoint_freq=4, calibrate=True, search="default")
    default_spec = default.spec(data, "erm+eszsl", {}, FAST_DG)
    assert "featurizer_search" not in default_spec  # runs without the search keep their ids
    assert record["run_id"] != run_id(default_spec)
    again = protocol.run(data, "erm+eszsl", featurizer_hparams=FAST_DG)
    assert again["selection"]["featurizer"]["candidates"] == search["candidates"]
    assert again["metrics"] == record["metrics"]


def test_a_featurizer_search_needs_a_trained_featurizer_and_a_known_mode():
    data = zsl_domains(seed=4)
    with pytest.raises(HyperparameterError, match="trains nothing"):
        GZSLDGProtocol(test_env=1, featurizer_search="random:2").run(data, "identity+eszsl")
    with pytest.raises(SpecError, match="'default' or 'random:N'"):
        GZSLDGProtocol(test_env=1, featurizer_search="grid").run(data, "erm+eszsl")


def test_identity_on_a_copied_domain_is_gzsl_ps_v1():
    base = synthetic_dataset("AWA2", seed=2, dim=24, scale=0.03)
    n = len(base.labels)
    samples = DomainDataset(
        "copied",
        np.vstack([base.features, base.features]),
        np.concatenate([base.labels, base.labels]),
        np.repeat([0, 1], n),
        base.classes.names,
        ("original", "copy"),
    )
    data = ZSLDomainDataset(samples, base.classes)
    protocol = GZSLDGProtocol(test_env=1, calibrate=True, seed=5)
    split = protocol.split(data)
    flat = ZSLDataset(
        "copied",
        samples.inputs,
        samples.labels,
        base.classes,
        {"train": split.fit, "test_seen": split.test_seen, "test_unseen": split.test_unseen},
    )
    ps = GZSLProtocol(calibrate=True, seed=5).run(flat, "eszsl")
    dg = protocol.run(data, "identity+eszsl")
    assert dg["selection"]["validation_domain"] is None
    assert [{k: v for k, v in t.items() if k != "step"} for t in dg["selection"]["trials"]] == ps[
        "selection"
    ]["trials"]
    assert (dg["hparams"], dg["gamma"]) == (ps["hparams"], ps["gamma"])
    assert dg["metrics"] == ps["metrics"] and dg["metrics_uncalibrated"] == ps["metrics_uncalibrated"]
    assert dg["curve"] == ps["curve"]
    assert ps["metrics"]["ZSL"] > 2 * 100 / len(base.classes.unseen_ids)  # a real task, not chance


def test_the_reported_metrics_are_the_held_out_domain_s_and_the_training_domains():
    data = zsl_domains(seed=6)
    protocol = GZSLDGProtocol(test_env=3, steps=6, checkpoint_freq=3, calibrate=True)
    fitted, record = protocol.fit(data, "erm+eszsl", featurizer_hparams=FAST_DG)
    split = protocol.split(data)
    s = data.samples
    for key, seen_rows, unseen_rows in (
        ("metrics", split.test_seen, split.test_unseen),
        ("metrics_train_domains", split.train_domains_seen, split.train_domains_unseen),
    ):
        scores_s, scores_u = fitted.scores(s.inputs[seen_rows]), fitted.scores(s.inputs[unseen_rows])
        expected = gzsl_accuracies(scores_s, s.labels[seen_rows], scores_u, s.labels[unseen_rows])
        expected["ZSL"] = zsl_accuracy(scores_u, s.labels[unseen_rows], data.classes.unseen_ids)
        for m in ("S", "U", "H", "ZSL"):
            assert record[key][m] == pytest.approx(expected[m], abs=1e-9)
        assert 0.0 <= record[key]["AUSUC"] <= 1.0
    assert record["test_domain"] == "d3" and record["train_envs"] == [0, 1, 2]
    assert record["featurizer_steps"] in (3, 6)
    assert record["method"] == "erm+eszsl" and record["featurizer_hparams"]["batch_size"] == 16
    uncal = calibrated_stacking(
        fitted.method.scores(fitted.embed(s.inputs[split.test_seen])), data.classes.seen, 0
    )
    assert uncal.shape == (len(split.test_seen), data.classes.n_classes)


def test_same_seed_same_numbers_and_the_seed_matters():
    data = zsl_domains(seed=7)
    runs = [
        GZSLDGProtocol(test_env=0, steps=6, checkpoint_freq=3, seed=s).run(
            data, "erm+eszsl", featurizer_hparams=FAST_DG
        )
        for s in (0, 0, 1)
    ]
    keys = ("metrics", "metrics_train_domains", "hparams", "featurizer_steps", "selection", "run_id")
    assert all(runs[0][k] == runs[1][k] for k in keys)
    assert runs[0]["run_id"] != runs[2]["run_id"] and runs[0]["selection"] != runs[2]["selection"]


def test_bad_requests_name_the_fix():
    data = zsl_domains(n_domains=3)
    with pytest.raises(SpecError, match="FEATURIZER\\+METHOD"):
        parse_method("eszsl")
    assert parse_method("erm+++eszsl") == ("erm++", "eszsl")  # a DG name may end in "+"
    with pytest.raises(UnknownNameError, match="erm"):
        parse_method("ermm+eszsl")
    with pytest.raises(UnknownNameError, match="eszsl"):
        parse_method("erm+eszs")
    with pytest.raises(SpecError, match="end to end.*'cumix'"):
        parse_method("erm+cumix")
    with pytest.raises(SpecError, match="0 \\(d0\\), 1 \\(d1\\), 2 \\(d2\\)"):
        GZSLDGProtocol(test_env=3).run(data, "identity+eszsl")
    with pytest.raises(HyperparameterError, match="takes no hyperparameters"):
        GZSLDGProtocol(test_env=0).run(data, "identity+eszsl", featurizer_hparams={"lr": 0.1})
    with pytest.raises(SpecError, match="steps and checkpoint_freq"):
        GZSLDGProtocol(test_env=0, steps=0).run(data, "erm+eszsl")


def test_every_dg_algorithm_trains_a_featurizer_for_a_gzsl_method():
    """The composition holds for the whole DG registry, including names ending in '+' (erm++) and
    featurizers that adapt to their batch (ARM, MTL)."""
    data = zsl_domains(n_domains=3, per=6)
    protocol = GZSLDGProtocol(test_env=0, steps=2, checkpoint_freq=1, search="default")
    for algorithm in (name for name in DG if name != "itta"):  # itta needs images: it mixes map styles
        record = protocol.run(data, f"{algorithm}+eszsl", featurizer_hparams=FAST_DG)
        assert record["featurizer"] == algorithm and record["featurizer_steps"] in (1, 2)
        assert 0.0 <= record["metrics"]["H"] <= 100.0
