"""`unseen dg --save-model` then `unseen tta` on the held-out domain."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from unseen.cli import main


def test_train_save_and_adapt(tmp_path):
    runner = CliRunner()
    model = tmp_path / "m.pt"
    trained = runner.invoke(
        main,
        [
            "dg",
            "--data",
            "builtin:colored-digits",
            "--algorithm",
            "erm",
            "--test-env",
            "2",
            "--steps",
            "5",
            "--checkpoint-freq",
            "5",
            "--hparams",
            '{"batch_size": 16}',
            "--save-model",
            str(model),
        ],
    )
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "tta.json"
    adapted = runner.invoke(
        main,
        [
            "tta",
            "--model",
            str(model),
            "--data",
            "builtin:colored-digits",
            "--method",
            "t3a",
            "--out",
            str(out),
        ],
    )
    assert adapted.exit_code == 0, adapted.output
    record = json.loads(out.read_text())
    assert record["stream"]["domains"] == ["flip0.9"]  # the model's held-out domain by default
    m = record["metrics"]
    assert m["gain"]["flip0.9"] == m["accuracy"]["flip0.9"] - m["source_accuracy"]["flip0.9"]
    no_bn = runner.invoke(
        main, ["tta", "--model", str(model), "--data", "builtin:colored-digits", "--method", "tent"]
    )
    assert no_bn.exit_code == 2 and "no BatchNorm" in no_bn.output


def test_a_missing_or_damaged_model_file_is_a_clear_error(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(
        main,
        ["tta", "--model", str(tmp_path / "x.pt"), "--data", "builtin:colored-digits", "--method", "t3a"],
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output
    damaged = tmp_path / "bad.pt"
    damaged.write_bytes(b"not a model")
    result = runner.invoke(
        main, ["tta", "--model", str(damaged), "--data", "builtin:colored-digits", "--method", "t3a"]
    )
    assert result.exit_code == 2 and "not an unseen DG model file" in result.output


def test_adapt_a_pretrained_encoder_probed_on_the_source_domains(tmp_path):
    out = tmp_path / "tta.json"
    result = CliRunner().invoke(
        main,
        [
            "tta",
            "--encoder",
            "efficientnet-lite0",
            "--data",
            "builtin:rotated-digits?per_class=1",
            "--domains",
            "5",
            "--method",
            "tent",
            "--batch-size",
            "5",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["data"]["encoder"] == "efficientnet-lite0"
    assert record["data"]["probe"]["source_domains"] == ["0deg", "15deg", "30deg", "45deg", "60deg"]
    assert set(record["metrics"]["accuracy"]) == {"75deg"}


def test_exactly_one_source_model_is_required():
    result = CliRunner().invoke(main, ["tta", "--data", "builtin:rotated-digits", "--method", "tent"])
    assert result.exit_code == 2 and "exactly one source model" in result.output


def test_a_model_is_not_applied_to_data_that_names_its_classes_differently(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "features": rng.normal(size=(90, 6)).astype(np.float32),
        "labels": np.tile(np.arange(3), 30),
        "domains": np.repeat(np.arange(3), 30),
        "domain_names": np.array(["d0", "d1", "d2"]),
    }
    np.savez(tmp_path / "train.npz", class_names=np.array(["cat", "dog", "fox"]), **arrays)
    np.savez(tmp_path / "other.npz", class_names=np.array(["cat", "fox", "dog"]), **arrays)
    model = tmp_path / "m.pt"
    runner = CliRunner()
    trained = runner.invoke(
        main,
        ["dg", "--data", f"npz-domains:{tmp_path / 'train.npz'}", "--algorithm", "erm", "--test-env", "2"]
        + ["--steps", "2", "--checkpoint-freq", "2", "--save-model", str(model)],
    )
    assert trained.exit_code == 0, trained.output
    tta = ["tta", "--model", str(model), "--method", "t3a", "--data"]
    same = runner.invoke(main, [*tta, f"npz-domains:{tmp_path / 'train.npz'}"])
    assert same.exit_code == 0, same.output
    other = runner.invoke(main, [*tta, f"npz-domains:{tmp_path / 'other.npz'}"])
    assert other.exit_code == 2 and "'fox' where the model has 'dog'" in other.output
