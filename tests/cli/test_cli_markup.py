"""User text (domain names, paths) is printed as it is, never read as terminal markup."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from unseen.cli import main


def test_a_domain_name_with_brackets_is_printed_and_the_run_is_written(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "bracket-domains.npz"
    np.savez(
        data,
        features=rng.normal(size=(90, 6)).astype(np.float32),
        labels=np.tile(np.arange(3), 30),
        domains=np.repeat(np.arange(3), 30),
        class_names=np.array(["a", "b", "c"]),
        domain_names=np.array(["photo[/old]", "[bold]sketch", "art"]),
    )
    out = tmp_path / "run.json"
    args = ["dg", "--data", f"npz-domains:{data}", "--algorithm", "erm", "--test-env", "0"]
    result = CliRunner().invoke(main, [*args, "--steps", "4", "--checkpoint-freq", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "photo[/old]" in result.output and "[bold]sketch" in result.output
    assert json.loads(out.read_text())["data"]["domains"][:2] == ["photo[/old]", "[bold]sketch"]


def test_a_path_with_brackets_is_reported_literally():
    runner = CliRunner()
    for path in ("x/[/x].npz", "[red]my[/red]file.npz"):
        result = runner.invoke(main, ["data", "info", f"npz:{path}"])
        assert result.exit_code == 2 and path in result.output, result.output
        assert "Traceback" not in result.output
