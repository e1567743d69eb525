"""DG runs through sweeps: test-domain and LODO expansion, run ids, model-selected table cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from unseen.cli import main
from unseen.core.errors import SpecError
from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep
from unseen.protocols.dg_selection import SELECTIONS
from unseen.report.html import report_html
from unseen.report.results import build_tables, format_mean_spread, render

DATA = "builtin:rotated-digits"  # six domains (rotation angles)


def write_sweep(folder: Path, test_env: str, lodo: bool) -> Path:
    path = folder / "dg.toml"
    path.write_text(
        f'[[runs]]\ntask = "dg"\ndata = "{DATA}"\nmethods = ["erm"]\nseeds = [0]\n'
        f"[runs.options]\ntest_env = {test_env}\nsteps = 4\ncheckpoint_freq = 2\n"
        f"lodo_validation = {str(lodo).lower()}\n"
    )
    return path


def test_test_domains_and_lodo_pairs_expand_to_one_run_each(tmp_path):
    runs = load_sweep(write_sweep(tmp_path, "[0, 1]", lodo=True)).runs
    envs = [r.options["test_env"] for r in runs]
    # Each held-out domain, then LODO's runs holding it out with every other domain.
    assert envs == [0, *[[0, v] for v in range(1, 6)], 1, *[[1, v] for v in (0, 2, 3, 4, 5)]]
    # Holding out {0, 1} is one run whichever domain is the test one: planned once, not twice.
    assert len(plan(runs)) == 11


def test_a_test_domain_the_data_lacks_fails_the_plan_before_any_run(tmp_path):
    sweep = write_sweep(tmp_path, "[0, 9]", lodo=False)
    with pytest.raises(SpecError, match=r"test env\(s\) \[9\] invalid for rotated-digits"):
        plan(load_sweep(sweep).runs)
    result = CliRunner().invoke(main, ["sweep", str(sweep), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "[9] invalid" in result.output
    assert not (tmp_path / "s.sqlite").exists()


@pytest.fixture(scope="module")
def dg_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dg")
    sweep = write_sweep(folder, "[0]", lodo=False)
    planned = plan(load_sweep(sweep).runs)
    store = ResultStore(folder / "dg.sqlite")
    summary = launch(planned, store, make_executor("serial"))
    assert summary.done == 1 and not summary.failed
    yield store, planned
    store.close()


def test_a_dg_run_is_stored_under_its_planned_id(dg_store):
    store, planned = dg_store
    (record,) = store.records()
    assert record["run_id"] == planned[0].run_id
    assert record["task"] == "dg" and record["test_envs"] == [0]
    assert [c["step"] for c in record["checkpoints"]] == [2, 4]


def test_dg_cells_hold_the_selected_test_accuracy_and_say_why_when_selection_cannot(dg_store):
    store, planned = dg_store
    rows = store.records(status=None)
    expected = [p.identity for p in planned]
    (table,) = build_tables(rows, expected, "training-val")
    pick = SELECTIONS["training-val"]([r["record"] for r in rows])
    assert table.body() == [["erm", format_mean_spread([100.0 * pick["test_acc"]]), table.body()[0][2]]]
    assert table.columns == ["0:0deg"]
    # LODO needs the runs holding out two domains; this sweep did not ask for them.
    (lodo,) = build_tables(rows, expected, "lodo")
    assert "no lodo pick (sweep with lodo_validation = true) 1/1" in render([lodo], "markdown")


def test_the_report_draws_per_domain_bars_for_dg_tables(dg_store):
    store, planned = dg_store
    rows = store.records(status=None)
    page = report_html(rows, build_tables(rows, [p.identity for p in planned]), "dg")
    assert "<h2>Per-domain accuracy</h2>" in page
    assert 'alt="per-domain accuracy dg-lodo-v1 on rotated-digits" src="data:image/png;base64,' in page
    assert "<h2>Seen–unseen accuracy curves</h2>" not in page  # no GZSL runs, no GZSL section


def test_update_rule_and_wrapper_hyperparameters_are_declared_by_the_options(tmp_path):
    sweep = tmp_path / "sam.toml"
    sweep.write_text(
        f'[[runs]]\ntask = "dg"\ndata = "{DATA}"\nmethods = ["erm"]\n'
        "hparams = { rho = 0.1, ema_decay = 0.5 }\n"
        '[runs.options]\ntest_env = 0\nsteps = 4\nupdate_rule = "sam"\nwrapper = "ema"\n'
    )
    (run,) = plan(load_sweep(sweep).runs)
    assert run.identity["hparams"] == {"rho": 0.1, "ema_decay": 0.5}
    without = tmp_path / "plain.toml"
    without.write_text(sweep.read_text().replace('update_rule = "sam"\n', ""))
    with pytest.raises(SpecError, match=r"unknown hyperparameter\(s\) \['rho'\]"):
        plan(load_sweep(without).runs)


def test_several_datasets_add_domainbeds_averages_table(tmp_path):
    sweep = tmp_path / "two.toml"
    sweep.write_text(
        '[[runs]]\ntask = "dg"\ndata = ["builtin:rotated-digits", "builtin:colored-digits"]\n'
        'methods = ["erm"]\nseeds = [0, 1]\n'
        "[runs.options]\ntest_env = [0, 1]\nsteps = 2\ncheckpoint_freq = 1\n"
    )
    planned = plan(load_sweep(sweep).runs)
    store = ResultStore(tmp_path / "two.sqlite")
    assert launch(planned, store, make_executor("serial")).done == 8
    rows = store.records(status=None)
    *per_dataset, averages = build_tables(rows, [p.identity for p in planned], "training-val")
    names = [t.protocol.removeprefix("dg-lodo-v1 on ") for t in per_dataset]
    assert sorted(names) == ["colored-digits", "rotated-digits"]
    assert averages.protocol == "dg-lodo-v1 averages" and averages.columns == names  # same order
    picks = {}
    for record in (r["record"] for r in rows):
        pick = SELECTIONS["training-val"]([record])
        picks[record["data"]["name"], record["trial_seed"], record["test_envs"][0]] = 100.0 * pick["test_acc"]
    for name in averages.columns:
        per_trial = [np.mean([picks[name, seed, env] for env in (0, 1)]) for seed in (0, 1)]
        assert averages.cells["erm", name].text() == format_mean_spread(per_trial)
    row = averages.body()[0]
    means = [np.mean([np.mean([picks[n, s, e] for e in (0, 1)]) for s in (0, 1)]) for n in averages.columns]
    assert row[-1] == f"{np.mean(means):.1f}"
    assert "dg-lodo-v1 averages" in render([averages], "latex")
    store.close()
