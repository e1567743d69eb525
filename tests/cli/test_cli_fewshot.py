"""`unseen fewshot` end to end, and few-shot runs in a sweep, a store and the result tables."""

from __future__ import annotations

import json

from click.testing import CliRunner

from unseen.cli import main
from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep
from unseen.report.results import build_tables

DATA = "synthetic-vl:default?classes=12&train=24&test=10"


def test_fewshot_prints_one_row_per_shot_count_and_writes_every_record(tmp_path):
    out = tmp_path / "runs.json"
    result = CliRunner().invoke(
        main,
        ["fewshot", "--data", DATA, "--method", "gda", "--shots", "1,4", "--seeds", "1,2", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert [(r["shots"], r["seed"]) for r in records] == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert all(r["protocol"] == "fewshot-kshot-v1" and 0 <= r["metrics"]["acc"] <= 100 for r in records)
    assert "fewshot-kshot-v1: gda" in result.output


def test_base_to_new_from_the_command_line(tmp_path):
    out = tmp_path / "b2n.json"
    result = CliRunner().invoke(
        main,
        ["fewshot", "--data", DATA, "--method", "zero-shot", "--protocol", "b2n", "--shots", "2",
         "--seeds", "1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = json.loads(out.read_text())
    assert set(record["metrics"]) == {"base_acc", "new_acc", "H"}


def test_an_unknown_adapter_is_a_clear_error():
    result = CliRunner().invoke(main, ["fewshot", "--data", DATA, "--method", "tip-adaptor"])
    assert result.exit_code == 2 and "Did you mean tip-adapter" in result.output


def test_a_fewshot_sweep_fills_a_table_with_one_column_per_shot_count(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        f"""
[[runs]]
task = "fewshot"
data = ["{DATA}"]
methods = ["zero-shot", "gda"]
seeds = [1, 2]

[runs.options]
shots = [1, 4]
"""
    )
    planned = plan(load_sweep(sweep).runs)
    with ResultStore(tmp_path / "r.sqlite") as store:
        launch(planned, store, make_executor("serial"))
        rows = store.records(status=None)
    (table,) = build_tables(rows, [p.identity for p in planned])
    assert table.columns == ["1-shot", "4-shot"] and table.rows == ["gda", "zero-shot"]
    zero_shot = dict(zip(table.header(), table.body()[1], strict=True))
    assert zero_shot["1-shot"] == zero_shot["4-shot"]  # the text head ignores the shots
