"""The SQLite results store: round trips, upserts, statuses, concurrency, schema checks, export."""

import json
import multiprocessing as mp
import sqlite3

import pandas as pd
import pytest

from unseen.core.errors import UnseenError
from unseen.core.record import run_id
from unseen.experiments.store import (
    STORE_SCHEMA,
    ResultStore,
    StoreError,
    StoreFormatError,
    StoreSchemaError,
    spec_from_record,
)


def make_spec(method="eszsl", seed=0, alpha=1.0, protocol="gzsl-ps-v1", data_hash="abc123"):
    return {
        "task": "gzsl",
        "protocol": protocol,
        "data_hash": data_hash,
        "semantics_kind": "attributes",
        "method": method,
        "hparams": {"alpha": alpha},
        "calibrate": True,
        "search": "grid",
        "seed": seed,
    }


def make_record(spec, H=0.5, created="2026-01-01T00:00:00+00:00"):
    """A hand-made record shaped like GZSLProtocol.run's."""
    return {
        "schema": 1,
        "run_id": run_id(spec),
        "task": spec["task"],
        "protocol": spec["protocol"],
        "data": {
            "spec": "synthetic:AWA2",
            "name": "AWA2-synthetic",
            "hash": spec["data_hash"],
            "semantics_kind": spec["semantics_kind"],
            "splits": {"train": "h1", "test_seen": "h2", "test_unseen": "h3"},
        },
        "method": spec["method"],
        "paper": "test",
        "hparams": {"alpha": spec["hparams"]["alpha"], "gamma": 0.1},
        "hparams_fixed": dict(spec["hparams"]),
        "calibrate": spec["calibrate"],
        "gamma": 0.25,
        "seed": spec["seed"],
        "metrics": {"S": 0.6, "U": 0.4, "H": H, "ZSL": 0.45, "AUSUC": 0.3},
        "metrics_uncalibrated": {"S": 0.8, "U": 0.1, "H": 0.18, "ZSL": 0.45, "AUSUC": 0.3},
        "curve": {"seen": [0.0, 0.5, 0.8], "unseen": [0.6, 0.4, 0.0]},
        "selection": {"metric": "val H (calibrated)", "search": spec["search"], "trials": [{"alpha": 1.0}]},
        "timing": {"select_s": 0.1, "fit_s": 0.2, "eval_s": 0.01, "total_s": 0.31},
        "versions": {"python": "3.11"},
        "created": created,
    }


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "runs.sqlite") as s:
        yield s


def test_put_get_round_trip(store):
    rec = make_record(make_spec())
    assert store.put(rec) == rec["run_id"]
    assert store.get(rec["run_id"]) == rec
    assert store.status(rec["run_id"]) == "done"
    assert store.get("nope") is None and store.status("nope") is None
    assert len(store) == 1 and rec["run_id"] in store


def test_spec_rebuilt_from_record_matches_run_id(store):
    spec = make_spec()
    rec = make_record(spec)
    assert spec_from_record(rec) == spec
    store.put(rec)
    [row] = store.records(status=None)
    assert row["spec"] == spec


def test_reput_keeps_one_row_and_the_latest_record(store):
    spec = make_spec()
    store.put(make_record(spec, H=0.5))
    store.put(make_record(spec, H=0.5))
    store.put(make_record(spec, H=0.7))
    assert len(store) == 1
    assert store.get(run_id(spec))["metrics"]["H"] == 0.7
    rows = sqlite3.connect(store.path).execute("SELECT COUNT(*), MAX(H) FROM runs").fetchone()
    assert rows == (1, 0.7)


def test_running_then_done(store):
    spec = make_spec()
    rid = run_id(spec)
    assert store.mark_running(rid, spec)
    assert store.status(rid) == "running"
    assert store.get(rid) is None
    assert store.finished_ids() == set()
    store.put(make_record(spec))
    assert store.status(rid) == "done"
    assert store.finished_ids() == {rid}
    [row] = store.records(status=None)
    assert row["spec"] == spec and row["started"] is not None and row["finished"] is not None
    # a finished run is not demoted by a late mark_running / mark_failed
    assert not store.mark_running(rid, spec)
    assert not store.mark_failed(rid, spec, "late")
    assert store.status(rid) == "done" and len(store) == 1


def test_failed_keeps_error_text_and_can_be_retried(store):
    spec = make_spec(method="sje")
    rid = run_id(spec)
    store.mark_running(rid, spec)
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom ✗'
    assert store.mark_failed(rid, spec, tb)
    assert store.status(rid) == "failed"
    assert store.error(rid) == tb
    [row] = store.records(status="failed")
    assert row["error"] == tb and row["record"] is None
    assert store.get(rid) is None
    # retry succeeds: the row becomes done and loses the error
    store.mark_running(rid, spec)
    store.put(make_record(spec))
    assert store.status(rid) == "done" and store.error(rid) is None


def test_spec_must_match_run_id(store):
    spec = make_spec()
    with pytest.raises(StoreError, match="does not match its spec"):
        store.mark_running("0000000000000000", spec)
    with pytest.raises(StoreError, match="does not match its spec"):
        store.put(make_record(spec), spec=make_spec(seed=5))
    with pytest.raises(StoreError, match="run_id"):
        store.put({"task": "gzsl"})


def test_records_filters(store):
    a = make_spec(method="eszsl", protocol="gzsl-ps-v1")
    b = make_spec(method="sae", protocol="gzsl-ps-v1")
    c = make_spec(method="eszsl", protocol="other-protocol")
    for s in (a, b, c):
        store.put(make_record(s))
    d = make_spec(method="failing")
    store.mark_failed(run_id(d), d, "err")
    e = make_spec(method="slow")
    store.mark_running(run_id(e), e)

    assert {r["run_id"] for r in store.records()} == {run_id(s) for s in (a, b, c)}
    assert {r["run_id"] for r in store.records(protocol="gzsl-ps-v1")} == {run_id(a), run_id(b)}
    assert store.records(task="dg") == []
    assert [r["run_id"] for r in store.records(status="failed")] == [run_id(d)]
    assert [r["run_id"] for r in store.records(status="running")] == [run_id(e)]
    assert len(store.records(status=None)) == 5 == len(store)
    assert store.finished_ids() == {run_id(s) for s in (a, b, c)}
    with pytest.raises(StoreError, match="unknown run status"):
        store.records(status="finished")


def test_reopen_sees_everything(tmp_path):
    path = tmp_path / "sub" / "runs.sqlite"
    with ResultStore(path) as s:
        s.put(make_record(make_spec()))
    with ResultStore(path) as s:
        assert len(s) == 1
        mode = s._read("PRAGMA journal_mode")[0][0]
        assert mode == "wal"


# ----------------------------------------------------------------------------- concurrency
N_PROCS, N_EACH, N_SHARED = 4, 50, 10


def _worker(path, proc, barrier):
    store = ResultStore(path)
    barrier.wait()
    for k in range(N_EACH):
        spec = make_spec(method=f"m{proc}", seed=k)
        if k % 3 == 0:
            store.mark_running(run_id(spec), spec)
        store.put(make_record(spec, H=proc + k / 100))
    for k in range(N_SHARED):  # every process writes these same ids
        spec = make_spec(method="shared", seed=k)
        store.mark_running(run_id(spec), spec)
        store.put(make_record(spec, H=k / 10))
    store.close()


def test_concurrent_writers(tmp_path):
    path = tmp_path / "runs.sqlite"
    ResultStore(path).close()
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(N_PROCS)
    procs = [ctx.Process(target=_worker, args=(path, p, barrier)) for p in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * N_PROCS

    expected = {run_id(make_spec(method=f"m{p}", seed=k)) for p in range(N_PROCS) for k in range(N_EACH)}
    expected |= {run_id(make_spec(method="shared", seed=k)) for k in range(N_SHARED)}
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT run_id, status, record_json FROM runs").fetchall()
    assert len(rows) == N_PROCS * N_EACH + N_SHARED
    assert {r[0] for r in rows} == expected
    assert all(r[1] == "done" for r in rows)
    for rid, _, rec in rows:
        assert json.loads(rec)["run_id"] == rid
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with ResultStore(path) as s:
        assert s.finished_ids() == expected


def _put_from_inherited(store, seed):
    spec = make_spec(method="child", seed=seed)
    store.put(make_record(spec))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_store_object_survives_fork(tmp_path):
    """A store opened in the parent and used in forked children reconnects there; parent unharmed."""
    store = ResultStore(tmp_path / "runs.sqlite")
    store.put(make_record(make_spec(method="parent")))
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_put_from_inherited, args=(store, k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    store.put(make_record(make_spec(method="parent", seed=1)))
    assert len(store) == 5
    assert store._read("PRAGMA integrity_check")[0][0] == "ok"
    store.close()


# ----------------------------------------------------------------------------- bad files
def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    ResultStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreSchemaError) as info:
        ResultStore(path)
    msg = str(info.value)
    assert str(path) in msg and "999" in msg and str(STORE_SCHEMA) in msg and "upgrade unseen" in msg
    assert isinstance(info.value, UnseenError)


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE things (x)")
    conn.close()
    with pytest.raises(StoreSchemaError, match="not an unseen results store"):
        ResultStore(path)


def test_non_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"hello")
    with pytest.raises(StoreFormatError) as info:
        ResultStore(path)
    assert str(path) in str(info.value) and "not an SQLite database" in str(info.value)
    assert path.read_bytes() == b"hello"  # left untouched


def test_folder_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a folder"):
        ResultStore(tmp_path)


# ----------------------------------------------------------------------------- export
def _fill(store):
    specs = [make_spec(method=m, seed=s) for m in ("eszsl", "sae") for s in (0, 1)]
    for i, spec in enumerate(specs):
        store.put(make_record(spec, H=0.1 * (i + 1)))
    f = make_spec(method="broken")
    store.mark_failed(run_id(f), f, "err")  # not exported
    return {run_id(s): 0.1 * (i + 1) for i, s in enumerate(specs)}


def test_to_dataframe(store):
    expected = _fill(store)
    df = store.to_dataframe()
    assert len(df) == len(expected)
    assert dict(zip(df["run_id"], df["H"], strict=True)) == pytest.approx(expected)
    cols = ("method", "seed", "data_name", "spec.hparams.alpha", "hparams.gamma", "uncalibrated.H", "AUSUC")
    assert set(cols) <= set(df.columns)


def test_to_dataframe_empty(store):
    df = store.to_dataframe()
    assert len(df) == 0 and "run_id" in df.columns


def test_export_csv(store, tmp_path):
    expected = _fill(store)
    out = store.export(tmp_path / "out" / "results.csv")
    df = pd.read_csv(out)
    assert dict(zip(df["run_id"], df["H"], strict=True)) == pytest.approx(expected)
    assert not [p for p in out.parent.iterdir() if p.name != "results.csv"]  # no temp files left


def test_export_parquet(store, tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet export needs pyarrow")
    expected = _fill(store)
    out = store.export(tmp_path / "results.parquet")
    df = pd.read_parquet(out)
    assert dict(zip(df["run_id"], df["H"], strict=True)) == pytest.approx(expected)


def test_export_unknown_suffix(store, tmp_path):
    with pytest.raises(StoreError, match=r"unknown suffix '\.xlsx'.*\.csv, \.parquet"):
        store.export(tmp_path / "results.xlsx")
    assert not (tmp_path / "results.xlsx").exists()


def test_real_protocol_record(store):
    from unseen.data.synthetic import synthetic_dataset
    from unseen.protocols import GZSLProtocol

    proto = GZSLProtocol()
    data = synthetic_dataset("AWA2", seed=0, dim=16, scale=0.04)
    hp = {"alpha": 1.0, "gamma": 1.0}
    rec = proto.run(data, "eszsl", hparams=hp)
    spec = proto.spec(data, "eszsl", rec["hparams_fixed"])
    assert run_id(spec) == rec["run_id"]
    store.mark_running(rec["run_id"], spec)
    store.put(rec)
    assert store.get(rec["run_id"]) == json.loads(json.dumps(rec))
    assert spec_from_record(rec) == spec
    df = store.to_dataframe()
    assert df.loc[0, "H"] == pytest.approx(rec["metrics"]["H"])


def test_reading_commands_never_create_or_convert_a_file(tmp_path):
    """``read_only`` stores (``unseen results``/``report``) leave an empty or foreign file as it was;
    a writing open refuses a foreign SQLite file before switching it to WAL."""
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(StoreFormatError, match="is empty"):
        ResultStore(empty, read_only=True)
    assert empty.stat().st_size == 0
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = foreign.read_bytes()
    for read_only in (True, False):
        with pytest.raises(StoreSchemaError, match="not an unseen results store"):
            ResultStore(foreign, read_only=read_only)
    assert foreign.read_bytes() == before
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with pytest.raises(StoreFormatError, match="does not exist"):
        ResultStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_read_only_store_reads_what_a_writer_stored(tmp_path):
    path = tmp_path / "runs.sqlite"
    spec = make_spec()
    with ResultStore(path) as writer:
        writer.mark_running(run_id(spec), spec)
    with ResultStore(path, read_only=True) as reader:
        assert reader.status(run_id(spec)) == "running"
    # a store at rest is read without leaving SQLite's -wal/-shm files beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]
