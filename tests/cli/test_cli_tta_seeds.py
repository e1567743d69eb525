"""ITTA and test-time style shifting from the CLI, on models saved by `unseen dg`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from unseen.cli import main

DATA = "builtin:rotated-digits"


def _train(tmp_path, algorithm: str) -> str:
    model = tmp_path / f"{algorithm}.pt"
    result = CliRunner().invoke(
        main,
        [
            "dg",
            "--data",
            DATA,
            "--algorithm",
            algorithm,
            "--test-env",
            "5",
            "--steps",
            "3",
            "--checkpoint-freq",
            "3",
            "--hparams",
            '{"batch_size": 8}',
            "--save-model",
            str(model),
        ],
    )
    assert result.exit_code == 0, result.output
    return str(model)


def _adapt(model: str, method: str, out=None):
    args = ["tta", "--model", model, "--data", DATA, "--method", method, "--batch-size", "32"]
    return CliRunner().invoke(main, args + (["--out", str(out)] if out else []))


def test_itta_trains_its_loss_with_the_model_and_adapts_with_it(tmp_path):
    model = _train(tmp_path, "itta")
    out = tmp_path / "itta.json"
    result = _adapt(model, "itta", out)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["method"] == "itta" and set(record["metrics"]["accuracy"]) == {"75deg"}
    assert "Improved Test-Time Adaptation" in record["paper"]


def test_style_shift_runs_on_any_image_model_and_itta_refuses_one_without_its_loss(tmp_path):
    model = _train(tmp_path, "erm")
    out = tmp_path / "shift.json"
    result = _adapt(model, "style-shift", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["method"] == "style-shift"
    refused = _adapt(model, "itta")
    assert refused.exit_code == 2 and "unseen dg --algorithm itta" in refused.output
