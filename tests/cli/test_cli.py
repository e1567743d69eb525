"""The command line: every bad input is one clear message and exit code 2, never a traceback."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from unseen.cli import main

SMALL = "synthetic:AWA2?dim=32&scale=0.04&seed=1"


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_methods_lists_every_classic_method(cli):
    result = cli("methods", "--family", "gzsl")
    assert result.exit_code == 0
    names = {line.split("\t")[1] for line in result.output.strip().splitlines()}
    assert {"dap", "eszsl", "ale", "sje", "devise", "latem", "sae"} <= names


def test_gzsl_prints_metrics_and_writes_record(cli, tmp_path):
    out = tmp_path / "run.json"
    result = cli("gzsl", "--data", SMALL, "--method", "eszsl", "--calibrate", "--out", str(out))
    assert result.exit_code == 0, result.output
    for col in ("S", "U", "H", "ZSL", "AUSUC"):
        assert col in result.output
    rec = json.loads(out.read_text())
    assert set(rec["metrics"]) == {"S", "U", "H", "ZSL", "AUSUC"}
    assert rec["protocol"] == "gzsl-ps-v1" and rec["method"] == "eszsl" and rec["calibrate"]
    for key in ("hparams", "seed", "versions", "data"):
        assert key in rec
    assert rec["data"]["semantics_kind"] and rec["data"]["hash"]


def test_data_info(cli):
    result = cli("data", "info", SMALL, "--json")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["n_classes"] == 50 and info["n_unseen"] == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gzsl", "--data", "nosuchscheme:x", "--method", "eszsl"), "unknown scheme"),
        (("gzsl", "--data", "no-colon", "--method", "eszsl"), "has no scheme"),
        (("gzsl", "--data", SMALL, "--method", "eszls"), "Did you mean eszsl"),
        (("gzsl", "--data", SMALL, "--method", "eszsl", "--hparams", "{bad"), "JSON"),
        (
            ("gzsl", "--data", SMALL, "--method", "eszsl", "--hparams", '{"nope": 1}'),
            "unknown hyperparameter",
        ),
        (("gzsl", "--data", SMALL, "--method", "eszsl", "--search", "sometimes"), "unknown search"),
        (("gzsl", "--data", "xlsa17:/no/such/folder", "--method", "eszsl"), "/no/such/folder"),
        (("gzsl", "--data", "npz:/no/such/file.npz", "--method", "eszsl"), "/no/such/file.npz"),
        (("data", "info", "builtin:nope"), "nope"),
        (("methods", "--family", "nope"), "unknown family"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_console_script_reports_errors_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "unseen.cli", "gzsl", "--data", "xlsa17:/no/such", "--method", "eszsl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_writes_records_and_report(cli, tmp_path):
    result = cli("demo", "--methods", "eszsl", "--out", str(tmp_path / "demo"))
    assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in (tmp_path / "demo" / "runs").iterdir())
    assert runs == ["eszsl-calibrated.json", "eszsl-plain.json"]
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "gzsl-ps-v1" in report and "eszsl" in report
    assert (tmp_path / "demo" / "seen_unseen_curves.png").stat().st_size > 1000


def test_data_schemes_lists_every_kind_of_data_and_the_commands_that_read_it():
    from unseen.cli.info import DATA_COMMANDS
    from unseen.data.specs import DATA_KINDS

    result = CliRunner().invoke(main, ["data", "schemes"])
    assert result.exit_code == 0
    assert set(DATA_KINDS) == set(DATA_COMMANDS)  # a new kind of data must say which commands read it
    headings = [line for line in result.output.splitlines() if not line.startswith(" ")]
    assert headings == [f"{kind} data (--data of {DATA_COMMANDS[kind]}):" for kind in sorted(DATA_KINDS)]
    for scheme in ("xlsa17", "text", "npz-domains", "mat-domains", "manifest", "features", "synthetic-vl"):
        assert f"  {scheme}:" in result.output
