"""`unseen extract` end to end on built-in digits (cache miss, then hit), and its errors."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from unseen.cli import main
from unseen.data.domains import load_domains

DATA = "builtin:colored-digits?per_class=1"  # 3 domains x 2 classes x 1 image


def _extract(out, *extra, encoder="efficientnet-lite0", data=DATA):
    args = ["extract", "--encoder", encoder, "--data", data, "--out", str(out), *extra]
    return CliRunner().invoke(main, args)


def test_extract_writes_features_that_dg_loads_and_reuses_the_cache(tmp_path):
    out, cache = tmp_path / "digits.npz", tmp_path / "cache"
    first = _extract(out, "--cache-dir", str(cache), "--batch-size", "4")
    assert first.exit_code == 0, first.output
    assert "6 images, 2 classes, 3 domain(s) -> 1280-d features" in first.output
    assert "cache miss" in first.output
    data = load_domains(f"npz-domains:{out}")
    assert data.inputs.shape == (6, 1280) and data.domain_names == ("flip0.1", "flip0.2", "flip0.9")
    assert data.domains.tolist() == [0, 0, 1, 1, 2, 2]
    with np.load(out) as z:
        meta = json.loads(str(z["meta"]))
    assert meta["encoder"] == "efficientnet-lite0" and meta["dataset"]["spec"] == DATA
    assert meta["preprocessing"]["crop"] == 224 and meta["weights_sha256"].startswith("57934424")

    again = _extract(tmp_path / "again.npz", "--cache-dir", str(cache))
    assert again.exit_code == 0 and "cache hit" in again.output
    np.testing.assert_array_equal(load_domains(f"npz-domains:{tmp_path / 'again.npz'}").inputs, data.inputs)


def test_extract_bad_inputs_are_one_line_errors(tmp_path):
    out = tmp_path / "x.npz"
    typo = _extract(out, encoder="efficientnet-lite")
    assert typo.exit_code == 2 and "Did you mean efficientnet-lite0" in typo.output
    weights = _extract(out, "--weights", str(tmp_path / "w.pth"))
    assert weights.exit_code == 2 and "w.pth does not exist" in weights.output
    both = _extract(out, "--no-cache", "--cache-dir", str(tmp_path))
    assert both.exit_code == 2 and "contradict" in both.output
    data = _extract(out, data=f"folder:{tmp_path / 'no'}")
    assert data.exit_code == 2 and "does not exist" in data.output and "Traceback" not in data.output
    assert not out.exists()
