"""Result tables from a committed golden store: values, missing-cell reasons, three formats."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from unseen.cli import main
from unseen.report.results import Cell, format_mean_spread

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture()
def golden_store(tmp_path) -> Path:
    # A copy: opening a WAL database writes beside it, and the committed file must stay as it is.
    path = tmp_path / "store.sqlite"
    shutil.copy(GOLDEN / "store.sqlite", path)
    return path


@pytest.mark.parametrize(
    ("fmt", "expected"), [("markdown", "expected.md"), ("latex", "expected.tex"), ("csv", "expected.csv")]
)
def test_results_match_the_golden_tables(golden_store, fmt, expected):
    result = CliRunner().invoke(
        main,
        ["results", "--store", str(golden_store), "--sweep", str(GOLDEN / "sweep.toml"), "--format", fmt],
    )
    assert result.exit_code == 0, result.output
    assert result.output == (GOLDEN / expected).read_text()


def test_without_the_sweep_only_runs_the_store_has_seen_appear(golden_store):
    result = CliRunner().invoke(main, ["results", "--store", str(golden_store)])
    assert result.exit_code == 0
    assert "latem" not in result.output  # never started: only the sweep file knows it was wanted
    assert "| sje | failed 1/2, incomplete 1/2 | incomplete |" in result.output


def test_mean_and_standard_error_by_hand():
    assert format_mean_spread([40.0, 42.0, 47.0]) == "43.0 ± 2.1"  # sd 3.606 / sqrt(3) = 2.08
    assert format_mean_spread([12.34]) == "12.3 (n=1)"
    assert format_mean_spread([40.0, 42.0, 47.0], "std") == "43.0 ± 3.6"


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        (Cell([1.0, 3.0], 2, 0, 0), "2.0 ± 1.0"),
        (Cell([], 3, 0, 0), "not run"),
        (Cell([1.0], 3, 1, 0), "failed 1/3, not run 1/3"),
        (Cell([1.0], 3, 0, 2), "incomplete 2/3"),
    ],
)
def test_every_missing_cell_says_why(cell, text):
    assert cell.text() == text


def test_results_on_a_missing_store_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["results", "--store", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "unseen sweep" in result.output
