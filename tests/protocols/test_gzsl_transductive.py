"""gzsl-transductive-v1: fits receive unlabelled features only, validation never sees a real test
row, test labels cannot change anything, and its runs stay out of gzsl-ps-v1's tables."""

import numpy as np
import pytest
from click.testing import CliRunner

from unseen.cli import main
from unseen.core.errors import SpecError
from unseen.core.registry import HParam
from unseen.data.model import SplitName, TrainSet, ZSLDataset
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL, GZSLMethod
from unseen.protocols import PROTOCOLS, GZSLProtocol, TransductiveGZSLProtocol
from unseen.protocols.gzsl_transductive import unlabelled_features
from unseen.report.results import build_tables


class CentredRidgeSpy(GZSLMethod):
    """Ridge map to semantics after centring on the unlabelled mean (so the unlabelled features
    change its scores); remembers what each fit receives and what it scores."""

    name = "centred-spy"
    paper = "test double"
    hparams = (HParam("alpha", 1.0, grid=(0.1, 10.0)),)
    transductive = True
    received: list = []

    def _fit(self, train: TrainSet) -> None:
        CentredRidgeSpy.received.append(("fit", train, self._unlabelled))
        self.mu = self._unlabelled.mean(axis=0)
        X, S = train.features - self.mu, train.classes.semantics[train.labels]
        self.W = np.linalg.solve(X.T @ X + self.params["alpha"] * np.eye(X.shape[1]), X.T @ S)
        self.S = train.classes.semantics

    def _scores(self, X):
        scores = (X - self.mu) @ self.W @ self.S.T
        CentredRidgeSpy.received.append(("scores", scores))
        return scores


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setitem(GZSL._entries, "centred-spy", CentredRidgeSpy)
    CentredRidgeSpy.received = []
    return CentredRidgeSpy


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=3, dim=32, scale=0.04)


def _rows(X: np.ndarray) -> list[bytes]:
    return sorted(r.tobytes() for r in np.asarray(X, dtype=np.float32))


def _poisoned(d: ZSLDataset, seed: int) -> ZSLDataset:
    """Test labels redrawn within each role."""
    rng = np.random.default_rng(seed)
    labels = d.labels.copy()
    for split, pool in (
        (SplitName.TEST_SEEN, d.classes.seen_ids),
        (SplitName.TEST_UNSEEN, d.classes.unseen_ids),
    ):
        labels[d.indices(split)] = rng.choice(pool, size=len(d.indices(split)))
    return ZSLDataset(
        name=d.name,
        features=d.features,
        labels=labels,
        classes=d.classes,
        split_indices={s.value: sp.indices for s, sp in d.splits.items()},
        val_classes=d.val_classes,
        source=d.source,
    )


def test_unlabelled_features_pool_and_shuffle_the_test_parts():
    d = synthetic_dataset("AWA2", seed=0, dim=8, scale=0.03)
    U = unlabelled_features(d, seed=0)
    test = np.concatenate([d.split_features(SplitName.TEST_SEEN), d.split_features(SplitName.TEST_UNSEEN)])
    assert isinstance(U, np.ndarray) and U.dtype == np.float32 and U.shape == test.shape
    assert _rows(U) == _rows(test)
    assert not np.array_equal(U, test)  # shuffled: the seen rows do not come first
    assert not np.shares_memory(U, d.features)
    np.testing.assert_array_equal(unlabelled_features(d, seed=0), U)


def test_validation_fits_see_only_their_own_held_out_rows_and_the_refit_the_test_rows(spy, data):
    protocol = TransductiveGZSLProtocol()
    protocol.run(data, "centred-spy")
    fits = [(train, U) for kind, train, *rest in spy.received if kind == "fit" for U in rest]
    assert len(fits) == 3  # two grid points on validation + the refit
    test_rows = set(_rows(np.concatenate([data.split_features(s) for s in ("test_seen", "test_unseen")])))
    train_rows = set(_rows(data.split_features("train")))
    val_task = data.validation_task(
        protocol.seed, protocol.pseudo_unseen_fraction, protocol.seen_holdout_fraction
    )
    val_held_out = np.concatenate([val_task.split_features(s) for s in ("test_seen", "test_unseen")])
    for train, U in fits[:2]:
        assert isinstance(U, np.ndarray) and U.ndim == 2 and not U.flags.writeable
        assert set(_rows(U)) <= train_rows and not set(_rows(U)) & test_rows
        assert _rows(U) == _rows(val_held_out)
        assert not set(_rows(U)) & set(_rows(train.features))  # held out from the fit's labelled rows
    final_train, final_U = fits[2]
    assert _rows(final_U) == _rows(
        np.concatenate([data.split_features(s) for s in ("test_seen", "test_unseen")])
    )
    assert final_train.classes is data.classes


def test_poisoned_test_labels_change_nothing_the_method_sees_or_scores(spy, data):
    clean = TransductiveGZSLProtocol(calibrate=True).run(data, "centred-spy")
    seen_clean = list(spy.received)
    spy.received.clear()
    poisoned = TransductiveGZSLProtocol(calibrate=True).run(_poisoned(data, 0), "centred-spy")
    assert poisoned["selection"]["trials"] == clean["selection"]["trials"]
    assert (poisoned["hparams"], poisoned["gamma"]) == (clean["hparams"], clean["gamma"])
    assert len(spy.received) == len(seen_clean)
    for (kind, *a), (kind2, *b) in zip(seen_clean, spy.received, strict=True):
        assert kind == kind2
        if kind == "fit":
            np.testing.assert_array_equal(a[0].features, b[0].features)
            np.testing.assert_array_equal(a[1], b[1])  # the unlabelled features
        else:
            np.testing.assert_array_equal(a[0], b[0])  # every score the method produced
    assert poisoned["metrics"]["H"] != clean["metrics"]["H"]  # the poison did reach the metrics


def test_record_says_transductive_and_names_its_protocol(spy, data):
    rec = TransductiveGZSLProtocol(seed=1).run(data, "centred-spy")
    assert rec["protocol"] == "gzsl-transductive-v1" and rec["transductive"] is True
    n_test = len(data.indices("test_seen")) + len(data.indices("test_unseen"))
    assert rec["unlabelled"]["parts"] == ["test_seen", "test_unseen"] and rec["unlabelled"]["n"] == n_test
    assert PROTOCOLS["gzsl-transductive-v1"] is TransductiveGZSLProtocol


def test_inductive_methods_are_refused_and_transductive_ones_need_the_protocol(spy, data):
    with pytest.raises(SpecError, match="'eszsl' is inductive.*gzsl-ps-v1"):
        TransductiveGZSLProtocol(search="default").run(data, "eszsl")
    with pytest.raises(SpecError, match="'centred-spy' is transductive.*gzsl-transductive-v1"):
        GZSLProtocol().run(data, "centred-spy")


def test_results_keep_transductive_runs_in_their_own_table(spy, data):
    rows = []
    for protocol, method in ((GZSLProtocol(), "eszsl"), (TransductiveGZSLProtocol(), "centred-spy")):
        rec = protocol.run(data, method, {"alpha": 1.0} if method == "centred-spy" else None)
        rows.append(
            {
                "run_id": rec["run_id"],
                "status": "done",
                "spec": protocol.spec(data, method, {}),
                "record": rec,
            }
        )
    inductive, transductive = sorted(build_tables(rows), key=lambda t: t.protocol)
    assert (inductive.protocol, inductive.rows) == ("gzsl-ps-v1", ["eszsl"])
    assert (transductive.protocol, transductive.rows) == ("gzsl-transductive-v1", ["centred-spy"])
    assert "transductive" in transductive.caption() and "transductive" not in inductive.caption()


def test_cli_protocol_option(spy, tmp_path):
    runner = CliRunner()
    data = "synthetic:AWA2?dim=32&scale=0.04&seed=1"
    out = tmp_path / "run.json"
    args = ["gzsl", "--data", data, "--method", "centred-spy", "--search", "default", "--out", str(out)]
    result = runner.invoke(main, [*args, "--protocol", "gzsl-transductive-v1"])
    assert result.exit_code == 0, result.output
    assert "gzsl-transductive-v1" in result.output and '"transductive": true' in out.read_text()
    refused = runner.invoke(
        main, ["gzsl", "--data", data, "--method", "eszsl", "--protocol", "gzsl-transductive-v1"]
    )
    assert refused.exit_code != 0 and "inductive" in refused.output


def test_sweeps_choose_the_protocol_with_a_task_option(data):
    from unseen.experiments.spec import RunSpec
    from unseen.experiments.tasks import TASKS

    spec = RunSpec("gzsl", "x", "bi-vaegan", options={"protocol": "gzsl-transductive-v1"})
    assert TASKS["gzsl"].identity(spec, data)["protocol"] == "gzsl-transductive-v1"
    assert TASKS["gzsl"].identity(RunSpec("gzsl", "x", "eszsl"), data)["protocol"] == "gzsl-ps-v1"
    with pytest.raises(SpecError, match="protocol = 'gzsl-ps-v2' is unknown"):
        TASKS["gzsl"].identity(RunSpec("gzsl", "x", "eszsl", options={"protocol": "gzsl-ps-v2"}), data)
