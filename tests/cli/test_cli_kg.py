"""``unseen kg-zsl``: bad inputs are one clear message before any work; the family is listed."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from unseen.cli import main

CLASS_MAP = "examples/office-caltech10-wordnet.toml"


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_knowledge_graph_family_is_listed():
    out = invoke("methods", "--family", "kg").output
    for name in ("conse", "dgp", "gcnz", "loki", "oracle"):
        assert name in out


def test_hparams_must_name_the_chosen_methods(tmp_path):
    result = invoke("kg-zsl", "--photos", "x.npz", "--classes", CLASS_MAP, "--methods", "loki",
                    "--hparams", '{"dgp": {"epochs": 3}}')  # fmt: skip
    assert result.exit_code == 2 and "'dgp' is not one of ['loki']" in result.output


def test_features_of_another_encoder_are_refused_naming_the_fix(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, features=np.zeros((1, 3)), labels=np.zeros(1, int), class_names=np.array(["mug"]),
             meta=np.array('{"encoder": "minilm"}'))  # fmt: skip
    result = invoke("kg-zsl", "--photos", str(path), "--classes", CLASS_MAP)
    assert result.exit_code == 2 and "unseen extract --encoder efficientnet-lite0" in result.output
