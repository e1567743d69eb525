"""Sweeps: file expansion, stable run ids, resume, failures, executors, kill -9 of the driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unseen.core.errors import SweepFileError
from unseen.core.record import run_id
from unseen.experiments import tasks
from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.spec import RunSpec
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep

DATA = "synthetic:CUB?scale=0.1&dim=64"


def write_sweep(
    folder: Path, seeds=(0, 1), methods=("eszsl", "sae"), search="default", name="s.toml"
) -> Path:
    path = folder / name
    path.write_text(
        f"""
store = "results.sqlite"

[[runs]]
task = "gzsl"
data = ["{DATA}"]
methods = {list(methods)!r}
seeds = {list(seeds)!r}

[runs.options]
calibrate = [false, true]
search = "{search}"
""".replace("'", '"')
    )
    return path


def metrics_by_id(store: ResultStore) -> dict[str, dict]:
    return {r["run_id"]: r["metrics"] for r in store.records()}


def test_a_sweep_file_expands_to_the_cartesian_product(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    assert len(sweep.runs) == 2 * 2 * 2  # methods x seeds x calibrate
    assert sweep.store == tmp_path / "results.sqlite"
    assert {(r.method, r.seed, r.options["calibrate"]) for r in sweep.runs} == {
        (m, s, c) for m in ("eszsl", "sae") for s in (0, 1) for c in (False, True)
    }


def test_sweep_hparams_grid_gives_one_run_per_candidate(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        f'[[runs]]\ntask = "gzsl"\ndata = "{DATA}"\nmethods = ["eszsl"]\nsweep_hparams = "grid"\n'
        "hparams = { alpha = 1.0 }\n"
    )
    runs = load_sweep(path).runs
    from unseen.methods import GZSL

    grid_sizes = [len(h.grid) for h in GZSL["eszsl"].hparams if h.name != "alpha"]
    assert len(runs) == int(__import__("math").prod(grid_sizes))
    assert all(r.hparams["alpha"] == 1.0 for r in runs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[runs]]\ntask = "gzsl"\ndata = "x"\nmethods = ["eszsl"]\ncolour = 1\n', "unknown key"),
        ('[[runs]]\ntask = "gzsl"\ndata = "x"\nmethods = ["nope"]\n', "unknown gzsl method 'nope'"),
        ('[[runs]]\ntask = "gzsl"\ndata = "x"\nmethods = ["eszsl"]\nseeds = [0.5]\n', "'seeds'"),
        ('[[runs]]\ntask = "tea"\ndata = "x"\nmethods = ["eszsl"]\n', "unknown task 'tea'"),
        ('[[runs]]\ntask = "gzsl"\ndata = "x"\nmethods = ["eszsl"]\n[runs.options]\nfoo = 1\n', "foo"),
        ('[[runs]]\ntask = "gzsl"\ndata = "x"\nmethods = ["eszsl"]\nhparams = { zeta = 1 }\n', "zeta"),
        ("store = 3\n[[runs]", "not valid TOML"),
        ("", "at least one [[runs]] block"),
    ],
)
def test_bad_sweep_files_name_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SweepFileError, match="bad.toml") as err:
        load_sweep(path)
    assert message in str(err.value)


def test_run_ids_are_stable_and_match_the_records(tmp_path):
    # A fixed identity hashes to a fixed id: changing the hashing would orphan every stored run.
    assert run_id({"task": "gzsl", "seed": 0, "hparams": {"a": 1}}) == run_id(
        {"hparams": {"a": 1}, "seed": 0, "task": "gzsl"}
    )
    assert run_id({"task": "gzsl", "seed": 0}) == "de7788f706bbc843"  # sha256 of {"seed":0,"task":"gzsl"}
    runs = load_sweep(write_sweep(tmp_path, seeds=(0,), methods=("eszsl",))).runs
    first, again = plan(runs), plan(runs)
    assert [p.run_id for p in first] == [p.run_id for p in again]
    assert len({p.run_id for p in first}) == len(first) == 2
    with ResultStore(tmp_path / "r.sqlite") as store:
        launch(first, store, make_executor("serial"))
        assert store.finished_ids() == {p.run_id for p in first}


def test_relaunch_skips_finished_runs_and_reruns_interrupted_ones(tmp_path):
    planned = plan(load_sweep(write_sweep(tmp_path, seeds=(0,))).runs)
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = launch(planned, store, make_executor("serial"))
        assert (summary.done, summary.skipped) == (4, 0)
        before = metrics_by_id(store)
        again = launch(planned, store, make_executor("serial"))
        assert (again.done, again.skipped) == (0, 4)
        # an interrupted run: its row says running, as a killed driver leaves it
        victim = planned[1]
        with store._transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', record_json = NULL WHERE run_id = ?", (victim.run_id,)
            )
        third = launch(planned, store, make_executor("serial"))
        assert (third.done, third.skipped) == (1, 3)
        assert metrics_by_id(store) == before and len(store) == 4


class _ExplodingTask(tasks.GZSLTask):
    task = "gzsl"

    def run(self, spec, dataset):
        if spec.method == "sae":
            raise ValueError("synthetic failure for the test")
        return super().run(spec, dataset)


def test_a_failed_run_keeps_its_traceback_and_does_not_stop_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setitem(tasks.TASKS._entries, "gzsl", _ExplodingTask())
    planned = plan(load_sweep(write_sweep(tmp_path, seeds=(0,))).runs)
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = launch(planned, store, make_executor("serial"))
        assert summary.done == 2 and len(summary.failed) == 2
        for rid in summary.failed:
            assert store.status(rid) == "failed"
            assert "ValueError: synthetic failure for the test" in store.error(rid)
            assert "Traceback" in store.error(rid)


def test_pool_executor_gives_the_serial_numbers(tmp_path):
    planned = plan(load_sweep(write_sweep(tmp_path, seeds=(0,), methods=("eszsl",))).runs)
    with ResultStore(tmp_path / "a.sqlite") as a, ResultStore(tmp_path / "b.sqlite") as b:
        launch(planned, a, make_executor("serial"))
        launch(planned, b, make_executor("pool", jobs=2))
        assert metrics_by_id(a) == metrics_by_id(b)


def test_ray_executor_on_a_local_instance_gives_the_serial_numbers(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    planned = plan(load_sweep(write_sweep(tmp_path, seeds=(0,), methods=("eszsl",))).runs)
    with ResultStore(tmp_path / "a.sqlite") as a, ResultStore(tmp_path / "b.sqlite") as b:
        launch(planned, a, make_executor("serial"))
        launch(planned, b, make_executor("ray", jobs=2))
        assert metrics_by_id(a) == metrics_by_id(b)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; reaping it is its new parent's business


def test_kill_9_of_the_driver_loses_and_duplicates_nothing(tmp_path):
    sweep_file = write_sweep(tmp_path, seeds=tuple(range(5)), methods=("eszsl",), search="grid")
    store_path = tmp_path / "results.sqlite"
    command = [sys.executable, "-m", "unseen.cli", "sweep", str(sweep_file), "--executor"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(
        [*command, "pool", "--jobs", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and driver.poll() is None:
        if store_path.exists():
            with ResultStore(store_path) as store:
                done = len(store.finished_ids())
            if done >= 2:
                break
        time.sleep(0.05)
    assert driver.poll() is None, "the sweep finished before it could be killed; make it longer"
    children_file = Path(f"/proc/{driver.pid}/task/{driver.pid}/children")
    workers = [int(p) for p in children_file.read_text().split()] if children_file.exists() else []
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with ResultStore(store_path) as store:
        interrupted = len(store.finished_ids())
    assert 2 <= interrupted < 10
    # The orphaned pool workers leave instead of idling forever.
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = [w for w in workers if alive(w)]
    for w in leftover:
        os.kill(w, signal.SIGKILL)
    assert not leftover

    subprocess.run([*command, "serial"], env=env, check=True, capture_output=True)
    planned = plan(load_sweep(sweep_file).runs)
    with ResultStore(store_path) as resumed, ResultStore(tmp_path / "clean.sqlite") as clean:
        launch(planned, clean, make_executor("serial"))
        assert len(resumed) == len(clean) == 10
        assert metrics_by_id(resumed) == metrics_by_id(clean)
        assert {r["run_id"]: r["hparams"] for r in resumed.records()} == {
            r["run_id"]: r["hparams"] for r in clean.records()
        }


def test_run_spec_round_trips_through_a_dict():
    spec = RunSpec("gzsl", DATA, "eszsl", 3, {"alpha": 1.0}, {"calibrate": True})
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_a_yaml_sweep_expands_to_the_same_runs_as_its_toml_twin(tmp_path):
    (tmp_path / "s.yaml").write_text(
        f"""
store: results.sqlite
runs:
  - task: gzsl
    data: ["{DATA}"]
    methods: [eszsl, sae]
    seeds: [0, 1]
    options:
      calibrate: [false, true]
      search: default
"""
    )
    toml = load_sweep(write_sweep(tmp_path))
    yaml = load_sweep(tmp_path / "s.yaml")
    assert yaml.runs == toml.runs and yaml.store == toml.store


def test_unreadable_yaml_and_unknown_formats_name_the_file(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("runs: [unclosed\n")
    with pytest.raises(SweepFileError, match=r"bad.yml is not valid YAML"):
        load_sweep(bad)
    other = tmp_path / "s.json"
    other.write_text("{}")
    with pytest.raises(SweepFileError, match=r"unknown format '.json'"):
        load_sweep(other)
