"""TTA runs through sweeps: a saved DG model adapted on target streams, one run per (method, targets),
the same numbers as `unseen tta`, and a results table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from unseen.cli import main
from unseen.core.errors import SpecError
from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep
from unseen.report.results import build_tables, render

DATA = "builtin:colored-digits"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tta") / "erm.pt"
    args = ["dg", "--data", DATA, "--algorithm", "erm", "--test-env", "2", "--steps", "5"]
    args += ["--checkpoint-freq", "5", "--hparams", '{"batch_size": 16}', "--save-model", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return path


def write_sweep(folder: Path, model: Path, domains: str) -> Path:
    path = folder / "tta.toml"
    path.write_text(
        f'[[runs]]\ntask = "tta"\ndata = "{DATA}"\nmethods = ["t3a", "adanpc"]\nseeds = [0]\n'
        f'[runs.options]\nmodel = "{model}"\ndomains = {domains}\nbatch_size = 32\n'
    )
    return path


def test_a_sweep_adapts_each_method_on_each_target_and_matches_the_cli(tmp_path, model):
    planned = plan(load_sweep(write_sweep(tmp_path, model, "[2, 1]")).runs)
    assert len(planned) == 4 and len({p.run_id for p in planned}) == 4  # targets are part of the identity
    store = ResultStore(tmp_path / "tta.sqlite")
    summary = launch(planned, store, make_executor("serial"))
    assert summary.done == 4 and not summary.failed
    records = {(r["method"], tuple(r["stream"]["domains"])): r for r in store.records()}
    store.close()

    out = tmp_path / "cli.json"
    args = ["tta", "--model", str(model), "--data", DATA, "--method", "adanpc", "--domains", "2"]
    result = CliRunner().invoke(main, [*args, "--batch-size", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    by_cli = json.loads(out.read_text())
    by_sweep = records[("adanpc", ("flip0.9",))]
    assert by_cli["run_id"] == by_sweep["run_id"]
    assert by_cli["metrics"] == by_sweep["metrics"]

    (table,) = build_tables(ResultStore(tmp_path / "tta.sqlite", read_only=True).records(status=None))
    assert table.protocol.startswith("tta-stream-v1") and sorted(table.columns) == ["flip0.2", "flip0.9"]
    text = render([table], "markdown")
    assert f"{by_sweep['metrics']['mean_accuracy']:.1f}" in text


def test_a_sweep_without_a_model_or_with_a_missing_domain_fails_the_plan(tmp_path, model):
    no_model = tmp_path / "none.toml"
    no_model.write_text(f'[[runs]]\ntask = "tta"\ndata = "{DATA}"\nmethods = ["t3a"]\n')
    with pytest.raises(SpecError, match="needs options.model"):
        plan(load_sweep(no_model).runs)
    with pytest.raises(SpecError, match=r"domains \[9\] are not domains"):
        plan(load_sweep(write_sweep(tmp_path, model, "[9]")).runs)
