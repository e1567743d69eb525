"""Few-shot result tables and k-shot curves from store rows."""

import pytest

from unseen.core.record import run_id
from unseen.report.html import report_html
from unseen.report.results import build_tables, render


def _row(method, shots, seed, acc, status="done"):
    spec = {
        "task": "fewshot",
        "protocol": "fewshot-kshot-v1",
        "data_hash": "abc",
        "method": method,
        "hparams": {},
        "shots": shots,
        "seed": seed,
        "test_fraction": None,
    }
    record = {
        "task": "fewshot",
        "method": method,
        "seed": seed,
        "data": {"name": "planted", "hash": "abc"},
        "metrics": {"acc": acc, "mean_class_acc": acc},
    }
    done = status == "done"
    return {"run_id": run_id(spec), "spec": spec, "status": status, "record": record if done else None}


@pytest.fixture
def rows():
    out = []
    for shots, base in ((1, 40.0), (2, 50.0), (16, 80.0)):
        out += [_row("tip-adapter", shots, 1, base), _row("tip-adapter", shots, 2, base + 2)]
        out += [_row("zero-shot", shots, 1, 43.0), _row("zero-shot", shots, 2, 43.0)]
    out[-1] = _row("zero-shot", 16, 2, 0.0, status="failed")
    return out


def test_one_table_per_dataset_with_shot_columns_in_numeric_order(rows):
    (table,) = build_tables(rows)
    assert table.protocol == "fewshot-kshot-v1 on planted"
    assert table.columns == ["1-shot", "2-shot", "16-shot"]
    body = {r[0]: r[1:] for r in table.body()}
    # mean 41, SE = std([40, 42]) / sqrt(2) = 1.0
    assert body["tip-adapter"] == ["41.0 ± 1.0", "51.0 ± 1.0", "81.0 ± 1.0", "57.7"]
    assert body["zero-shot"] == ["43.0 ± 0.0", "43.0 ± 0.0", "failed 1/2", "incomplete"]
    assert "mean over shot counts" in table.caption()
    assert "| tip-adapter | 41.0 ± 1.0 |" in render([table], "markdown")


def test_the_report_draws_a_shot_curve_per_few_shot_table(rows):
    page = report_html(rows, build_tables(rows), "few-shot")
    assert "<h2>Few-shot curves</h2>" in page
    assert 'alt="k-shot curves fewshot-kshot-v1 on planted"' in page
