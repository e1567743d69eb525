"""`unseen gzsl-dg` end to end on a built-in: the record, the store, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from unseen.cli import main
from unseen.experiments.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DATA = "builtin:rotated-digits-zsl"


def _run(*args: str):
    return CliRunner().invoke(main, ["gzsl-dg", "--data", DATA, *args])


def test_identity_eszsl_writes_the_record_and_adds_it_to_the_store(tmp_path):
    out, store = tmp_path / "run.json", tmp_path / "results.sqlite"
    args = (
        "--featurizer",
        "identity",
        "--method",
        "eszsl",
        "--test-env",
        "1",
        "--calibrate",
        "--search",
        "default",
    )
    result = _run(*args, "--out", str(out), "--store", str(store))
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["protocol"] == "gzsl-dg-v1" and record["method"] == "identity+eszsl"
    assert record["test_domain"] == "15deg" and record["selection"]["validation_classes"] == ["five", "nine"]
    assert record["gamma"] is not None and record["featurizer_steps"] is None
    assert "held-out domain 15deg" in result.output and "training domains (test parts)" in result.output
    assert f"{record['metrics']['H']:.1f}" in result.output
    with ResultStore(store, read_only=True) as results:
        assert results.get(record["run_id"])["metrics"] == record["metrics"]
    again = _run(*args)  # same seed, same numbers
    assert again.exit_code == 0 and again.output.splitlines()[:9] == result.output.splitlines()[:9]


def test_a_dg_featurizer_trains_for_the_steps_chosen_on_validation(tmp_path):
    out = tmp_path / "run.json"
    result = _run(
        "--featurizer",
        "erm",
        "--method",
        "eszsl",
        "--test-env",
        "0",
        "--steps",
        "4",
        "--checkpoint-freq",
        "2",
        "--search",
        "default",
        "--featurizer-hparams",
        '{"batch_size": 8}',
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["method"] == "erm+eszsl" and record["featurizer_hparams"]["batch_size"] == 8
    assert record["featurizer_steps"] in (2, 4)
    assert [t["step"] for t in record["selection"]["trials"]] == [2, 4]
    assert record["selection"]["validation_domain"] in record["data"]["domains"][1:]
    assert f"featurizer steps {record['featurizer_steps']}" in result.output


def test_a_featurizer_search_reports_the_draw_chosen_on_validation(tmp_path):
    out = tmp_path / "run.json"
    args = ("--featurizer", "erm", "--method", "eszsl", "--test-env", "0", "--steps", "2")
    fast = ("--checkpoint-freq", "2", "--search", "default", "--featurizer-hparams", '{"batch_size": 8}')
    result = _run(*args, *fast, "--featurizer-search", "random:2", "--out", str(out))
    assert result.exit_code == 0, result.output
    search = json.loads(out.read_text())["selection"]["featurizer"]
    assert search["search"] == "random:2" and len(search["candidates"]) == 2
    assert f"featurizer draw {search['chosen'] + 1} of 2 (random:2)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--featurizer", "erm", "--method", "eszsl", "--test-env", "0,1"),
            "--test-env takes one domain number",
        ),
        (("--featurizer", "erm", "--method", "eszsl", "--test-env", "9"), "the data has no domain 9"),
        (("--featurizer", "ermm", "--method", "eszsl", "--test-env", "0"), "Did you mean erm"),
        (("--featurizer", "erm", "--method", "eszs", "--test-env", "0"), "Did you mean eszsl"),
        (
            ("--featurizer", "erm", "--method", "eszsl", "--test-env", "0", "--featurizer-hparams", "{bad"),
            "--featurizer-hparams must be a JSON object",
        ),
        (
            (
                "--featurizer",
                "identity",
                "--method",
                "eszsl",
                "--test-env",
                "0",
                "--featurizer-hparams",
                '{"lr": 1}',
            ),
            "takes no hyperparameters",
        ),
        (("--featurizer", "erm", "--method", "eszsl", "--test-env", "0", "--steps", "0"), "--steps"),
        (("--featurizer", "erm", "--method", "cumix", "--test-env", "0"), "cumix is end to end"),
        (
            ("--featurizer", "erm", "--method", "eszsl", "--test-env", "0", "--featurizer-search", "grid"),
            "'default' or 'random:N'",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_option(args, message):
    result = _run(*args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_a_file_that_is_not_a_results_store_is_refused_before_any_training(tmp_path, monkeypatch):
    from unseen.protocols.gzsl_dg import GZSLDGProtocol

    monkeypatch.setattr(GZSLDGProtocol, "run", lambda *a, **k: pytest.fail("the run started"))
    notes = tmp_path / "notes.sqlite"
    notes.write_text("my notes, not a results store\n")
    result = _run("--featurizer", "erm", "--method", "eszsl", "--test-env", "0", "--store", str(notes))
    assert result.exit_code == 2 and "notes.sqlite" in result.output and "Traceback" not in result.output
    assert notes.read_text() == "my notes, not a results store\n"


def test_user_text_is_not_read_as_markup():
    result = CliRunner().invoke(
        main,
        [
            "gzsl-dg",
            "--data",
            "builtin:[bold]x[/bold]",
            "--featurizer",
            "erm",
            "--method",
            "eszsl",
            "--test-env",
            "0",
        ],
    )
    assert result.exit_code == 2 and "[bold]x[/bold]" in result.output


def test_feature_domains_with_a_semantics_file_run_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    semantics = rng.normal(size=(6, 4))
    labels = np.tile(np.repeat(np.arange(6), 8), 2)
    features = semantics[labels] @ rng.normal(size=(4, 10)) + rng.normal(0, 0.3, (len(labels), 10))
    np.savez(
        tmp_path / "f.npz",
        features=features,
        labels=labels,
        domains=np.repeat([0, 1], 48),
        class_names=np.array(list("abcdef")),
        domain_names=np.array(["photo", "sketch"]),
    )
    rows = ["class,s0,s1,s2,s3"] + [
        ",".join([c, *map(str, v)]) for c, v in zip("abcdef", semantics, strict=True)
    ]
    (tmp_path / "s.csv").write_text("\n".join(rows))
    (tmp_path / "d.toml").write_text('data = "npz-domains:f.npz"\nsemantics = "s.csv"\nunseen = ["e", "f"]\n')
    result = CliRunner().invoke(
        main,
        ["gzsl-dg", "--data", f"zsl-domains:{tmp_path / 'd.toml'}", "--featurizer", "identity"]
        + ["--method", "eszsl", "--test-env", "1", "--search", "default"],
    )
    assert result.exit_code == 0, result.output
    assert "held-out domain sketch" in result.output
