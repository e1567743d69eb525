"""gzsl-dg runs through sweeps: one run per (method, held-out domain), the numbers of `unseen
gzsl-dg`, and a results table of methods x held-out domains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from unseen.cli import main
from unseen.core.errors import SweepFileError
from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep
from unseen.report.results import build_tables, render

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DATA = "builtin:rotated-digits-zsl"


def write_sweep(folder: Path, methods: str = '["identity+eszsl", "erm+eszsl"]') -> Path:
    path = folder / "gzsl-dg.toml"
    path.write_text(
        f'[[runs]]\ntask = "gzsl-dg"\ndata = "{DATA}"\nmethods = {methods}\nseeds = [0]\n'
        "[runs.options]\ntest_env = [0, 2]\nsteps = 2\ncheckpoint_freq = 1\ncalibrate = true\n"
        'search = "default"\nfeaturizer_hparams = { batch_size = 8 }\n'
    )
    return path


def test_a_sweep_runs_each_method_on_each_held_out_domain_and_matches_the_cli(tmp_path):
    planned = plan(load_sweep(write_sweep(tmp_path)).runs)
    assert len(planned) == 4 and len({p.run_id for p in planned}) == 4
    store = ResultStore(tmp_path / "runs.sqlite")
    summary = launch(planned, store, make_executor("serial"))
    assert summary.done == 4 and not summary.failed
    records = {(r["method"], r["test_env"]): r for r in store.records()}
    store.close()

    out = tmp_path / "cli.json"
    args = ["gzsl-dg", "--data", DATA, "--featurizer", "erm", "--method", "eszsl", "--test-env", "2"]
    args += ["--steps", "2", "--checkpoint-freq", "1", "--calibrate", "--search", "default"]
    result = CliRunner().invoke(main, [*args, "--featurizer-hparams", '{"batch_size": 8}', "--out", str(out)])
    assert result.exit_code == 0, result.output
    by_cli, by_sweep = json.loads(out.read_text()), records[("erm+eszsl", 2)]
    assert by_cli["run_id"] == by_sweep["run_id"] and by_cli["metrics"] == by_sweep["metrics"]

    (table,) = build_tables(ResultStore(tmp_path / "runs.sqlite", read_only=True).records(status=None))
    assert table.protocol == "gzsl-dg-v1 on rotated-digits-zsl" and table.metric == "H"
    assert table.columns == ["test env 0", "test env 2"]
    assert table.rows == ["erm+eszsl + CS", "identity+eszsl + CS"]
    cell = table.cells[("erm+eszsl + CS", "test env 2")]
    assert cell.values == [by_sweep["metrics"]["H"]]
    assert "held-out domain" in render([table], "markdown")


def test_unknown_methods_and_bad_options_fail_the_plan(tmp_path):
    with pytest.raises(SweepFileError, match="unknown gzsl-dg method 'erm\\+eszs'"):
        load_sweep(write_sweep(tmp_path, '["erm+eszs"]'))
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[[runs]]\ntask = "gzsl-dg"\ndata = "{DATA}"\nmethods = ["identity+eszsl"]\n'
        "[runs.options]\ntest_env = 7\n"
    )
    with pytest.raises(Exception, match="test env 7 is not a domain"):
        plan(load_sweep(path).runs)
