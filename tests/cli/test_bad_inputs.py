"""Bad command-line input ends in one clean error (exit 2, no traceback, nothing written): the
regression corpus of inputs a new user, or a hostile one, has tried."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from unseen.cli import main

DG = ["dg", "--data", "builtin:rotated-digits", "--algorithm", "erm", "--steps", "2"]
GZSL = ["gzsl", "--data", "builtin:mnist-zsl", "--method", "eszsl"]
SWEEP = '[[runs]]\ntask = "gzsl"\ndata = "builtin:mnist-zsl"\nmethods = ["eszsl"]\n'

CASES = {
    "dg test domain twice": ([*DG, "--test-env", "0,0"], "names a domain twice"),
    "dg test domain out of range": ([*DG, "--test-env", "9"], "has no domain 9; its domains: 0 0deg"),
    "dg test domain not a number": ([*DG, "--test-env", "x"], "takes domain numbers"),
    "dg negative seed": ([*DG, "--test-env", "0", "--seed", "-1"], "-1 is not in the range x>=0"),
    "dg negative trial seed": ([*DG, "--test-env", "0", "--trial-seed", "-3"], "-3 is not in the range"),
    "dg infinite learning rate": ([*DG, "--test-env", "0", "--hparams", '{"lr": Infinity}'], "is Infinity"),
    "dg NaN learning rate": ([*DG, "--test-env", "0", "--hparams", '{"lr": NaN}'], "'lr' is NaN"),
    "dg batch size of a trillion": (
        [*DG, "--test-env", "0", "--hparams", '{"batch_size": 1e12}'],
        "'batch_size' must be between 1 and 1048576, got 1000000000000",
    ),
    "dg negative batch size": (
        [*DG, "--test-env", "0", "--hparams", '{"batch_size": -4}'],
        "'batch_size' must be between 1 and 1048576, got -4",
    ),
    "dg negative learning rate": ([*DG, "--test-env", "0", "--hparams", '{"lr": -0.1}'], "at least 0"),
    "gzsl zero epochs": (
        ["gzsl", "--data", "builtin:mnist-zsl", "--method", "f-clswgan", "--hparams", '{"epochs": 0}'],
        "'epochs' must be at least 1, got 0",
    ),
    "fewshot fixed value the validation search would replace": (
        ["fewshot", "--data", "synthetic-vl:default", "--method", "linear-probe", "--hparams", '{"C": 5}'],
        "C would be chosen on validation, replacing the value given; to fix it, also give tune_on_val=false",
    ),
    "sweep store whose folder is a file": (
        ["sweep", "sweep.toml", "--store", "sweep.toml/s.sqlite"],
        "cannot create the folder of results store sweep.toml/s.sqlite",
    ),
    "gzsl NaN in a nested value": ([*GZSL, "--hparams", '{"alpha": [1, NaN]}'], "finite numbers"),
    "gzsl negative seed": ([*GZSL, "--seed", "-1"], "-1 is not in the range x>=0"),
    "fewshot negative seed": (
        ["fewshot", "--data", "synthetic-vl:default", "--method", "gda", "--seeds", "1,-2"],
        "takes integers >= 0",
    ),
    "sweep zero jobs": (["sweep", "missing.toml", "--jobs", "0"], "0 is not in the range x>=1"),
    "sweep negative jobs": (["sweep", "missing.toml", "--jobs", "-2"], "-2 is not in the range x>=1"),
    "gzsl record into a missing folder": ([*GZSL, "--out", "missing-folder/r.json"], "does not exist"),
    "gzsl record onto a folder": ([*GZSL, "--out", "."], "is a directory"),
    "dg model into a missing folder": (
        [*DG, "--test-env", "0", "--save-model", "missing-folder/m.pt"],
        "folder 'missing-folder' does not exist",
    ),
    "extract features into a missing folder": (
        ["extract", "--encoder", "efficientnet-lite0", "--data", "builtin:digits", "--out", "no/f.npz"],
        "folder 'no' does not exist",
    ),
    "report into a missing parent": (["report", "--out", "no/such/report"], "folder 'no/such' does not"),
}


@pytest.mark.parametrize("command", ["results", "report"])
def test_an_existing_output_is_replaced_only_with_force(command, tmp_path):
    store = Path(__file__).resolve().parents[1] / "experiments" / "golden" / "store.sqlite"
    target = tmp_path / "theirs.txt" if command == "results" else tmp_path / "index.html"
    target.write_text("someone else's file")
    out = str(target if command == "results" else tmp_path)
    refused = CliRunner().invoke(main, [command, "--store", str(store), "--out", out])
    assert refused.exit_code == 2 and "exists; pass --force to replace it" in refused.output
    assert target.read_text() == "someone else's file"
    forced = CliRunner().invoke(main, [command, "--store", str(store), "--out", out, "--force"])
    assert forced.exit_code == 0, forced.output
    assert target.read_text() != "someone else's file"


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clean_error(case, tmp_path, monkeypatch):
    args, message = CASES[case]
    out = tmp_path / "out.json"
    add_out = args[0] in ("dg", "gzsl") and "--out" not in args
    monkeypatch.chdir(tmp_path)
    Path("sweep.toml").write_text(SWEEP)
    result = CliRunner().invoke(main, [*args, "--out", str(out)] if add_out else args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()
