"""`unseen gzsl` runs every generative method and gate on built-in digits, on synthetic CUB (its per-dataset
defaults) and on a real xlsa17 folder."""

import json
import math

import pytest
from click.testing import CliRunner

from support import xlsa17_fixtures as fx
from unseen.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# --fast plus --epochs 1 and a short classifier: a smoke run of the whole protocol per method
SMOKE = {
    "cada-vae": [
        "--epochs",
        "1",
        "--hparams",
        '{"cls_epochs": 2, "seen_per_class": 10, "unseen_per_class": 20}',
    ],
    "cosmo": [],
    "f-clswgan": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256, "pretrain_epochs": 2}'],
    "f-vaegan": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256}'],
    "tf-vaegan": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256}'],
    "ce-gzsl": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256}'],
    "lisgan": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256, "pretrain_epochs": 2}'],
    "lsrgan": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256, "pretrain_epochs": 2}'],
    "dascn": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256, "pretrain_epochs": 2}'],
    "gdan": ["--epochs", "1", "--hparams", '{"pretrain_epochs": 1, "batch_size": 256, "syn_per_class": 10}'],
    "icis": ["--epochs", "1", "--hparams", '{"base_epochs": 2}'],
    "f-vaegan-dsp": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256}'],
    "tf-vaegan-dsp": ["--epochs", "1", "--hparams", '{"cls_epochs": 2, "batch_size": 256}'],
    "boundary-gate": ["--epochs", "1"],
    "bi-vaegan": [
        "--protocol",
        "gzsl-transductive-v1",
        "--epochs",
        "2",
        "--hparams",
        '{"cls_epochs": 2, "batch_size": 256, "inductive_epochs": 1}',
    ],
}


def run(data: str, method: str, out) -> dict:
    args = ["gzsl", "--data", data, "--method", method, "--fast", "--search", "default", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, *SMOKE[method]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert method in result.output
    return json.loads(out.read_text())


def check(rec: dict, method: str, name: str) -> None:
    assert rec["method"] == method and rec["data"]["name"] == name and rec["preset"] == "fast"
    assert all(math.isfinite(rec["metrics"][k]) for k in ("S", "U", "H"))
    if method != "cosmo":
        assert rec["hparams_fixed"]["epochs"] == int(SMOKE[method][SMOKE[method].index("--epochs") + 1])


@pytest.mark.parametrize("method", sorted(SMOKE))
def test_every_generative_method_runs_on_builtin_digits(tmp_path, method):
    check(run("builtin:mnist-zsl", method, tmp_path / "run.json"), method, "mnist-zsl")


@pytest.mark.parametrize("method", sorted(SMOKE))
def test_every_generative_method_runs_on_synthetic_cub(tmp_path, method):
    rec = run("synthetic:CUB?scale=0.05&dim=64", method, tmp_path / "run.json")
    check(rec, method, "synthetic:CUB")


@pytest.mark.skipif(not fx.SHARED_XLSA17.is_dir(), reason=fx.SKIP_REASON)
@pytest.mark.parametrize("method", sorted(SMOKE))
def test_every_generative_method_runs_on_a_real_xlsa17_folder(apy_folder, tmp_path, method):
    check(run(f"xlsa17:{apy_folder}", method, tmp_path / "run.json"), method, "APY")
