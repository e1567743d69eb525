"""gzsl-dg runs through sweeps: one run per (method, held-out domain), the numbers of `unseen
gzsl-dg`, and a results table of methods x held-out domains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
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


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """The store of the sweep of :func:`write_sweep`: two methods x two held-out domains."""
    folder = tmp_path_factory.mktemp("gzsl-dg")
    planned = plan(load_sweep(write_sweep(folder)).runs)
    assert len(planned) == 4 and len({p.run_id for p in planned}) == 4
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as one_torch_thread, which is function-scoped
    try:
        with ResultStore(folder / "runs.sqlite") as store:
            summary = launch(planned, store, make_executor("serial"))
    finally:
        torch.set_num_threads(threads)
    assert summary.done == 4 and not summary.failed
    return folder / "runs.sqlite"


def test_a_sweep_runs_each_method_on_each_held_out_domain_and_matches_the_cli(tmp_path, swept):
    with ResultStore(swept, read_only=True) as store:
        records = {(r["method"], r["test_env"]): r for r in store.records()}
    assert len(records) == 4

    out = tmp_path / "cli.json"
    args = ["gzsl-dg", "--data", DATA, "--featurizer", "erm", "--method", "eszsl", "--test-env", "2"]
    args += ["--steps", "2", "--checkpoint-freq", "1", "--calibrate", "--search", "default"]
    result = CliRunner().invoke(main, [*args, "--featurizer-hparams", '{"batch_size": 8}', "--out", str(out)])
    assert result.exit_code == 0, result.output
    by_cli, by_sweep = json.loads(out.read_text()), records[("erm+eszsl", 2)]
    assert by_cli["run_id"] == by_sweep["run_id"] and by_cli["metrics"] == by_sweep["metrics"]

    with ResultStore(swept, read_only=True) as store:
        (table,) = build_tables(store.records(status=None))
    assert table.protocol == "gzsl-dg-v1 on rotated-digits-zsl" and table.metric == "H"
    assert table.columns == ["test env 0", "test env 2"]
    assert table.rows == ["erm+eszsl + CS", "identity+eszsl + CS"]
    cell = table.cells[("erm+eszsl + CS", "test env 2")]
    assert cell.values == [by_sweep["metrics"]["H"]]
    assert "held-out domain" in render([table], "markdown")


def test_the_report_draws_seen_unseen_curves_per_held_out_domain(tmp_path, swept):
    result = CliRunner().invoke(main, ["report", "--store", str(swept), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text()
    assert "rotated-digits-zsl, held-out domain 0deg" in page and "held-out domain 30deg" in page
    assert "gzsl-dg-v1 on rotated-digits-zsl" in page


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
