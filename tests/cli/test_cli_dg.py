"""`unseen dg` end to end on a built-in, and its errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from unseen.cli import main


def test_unseen_dg_trains_and_writes_a_record(tmp_path):
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        main,
        [
            "dg",
            "--data",
            "builtin:rotated-digits",
            "--algorithm",
            "coral",
            "--test-env",
            "1",
            "--steps",
            "6",
            "--checkpoint-freq",
            "3",
            "--hparams",
            '{"batch_size": 8}',
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["protocol"] == "dg-lodo-v1" and record["test_envs"] == [1]
    assert [c["step"] for c in record["checkpoints"]] == [3, 6]
    assert "training-val: test accuracy" in result.output and "15deg" in result.output


def test_unseen_dg_bad_inputs_are_one_line_errors():
    runner = CliRunner()
    bad_env = runner.invoke(
        main, ["dg", "--data", "builtin:rotated-digits", "--algorithm", "erm", "--test-env", "9"]
    )
    assert bad_env.exit_code == 2 and "--test-env: the data has no domain 9" in bad_env.output
    bad_alg = runner.invoke(
        main, ["dg", "--data", "builtin:rotated-digits", "--algorithm", "ermm", "--test-env", "0"]
    )
    assert bad_alg.exit_code == 2 and "Did you mean erm" in bad_alg.output
    assert "Traceback" not in bad_alg.output
