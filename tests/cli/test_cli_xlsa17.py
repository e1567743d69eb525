"""`unseen gzsl` runs every classic method on an xlsa17 folder built from the real split files."""

import json

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from support import xlsa17_fixtures as fx
from unseen.cli import main

pytestmark = pytest.mark.skipif(not fx.SHARED_XLSA17.is_dir(), reason=fx.SKIP_REASON)


@pytest.mark.parametrize("method", ["dap", "eszsl", "sae", "ale", "sje", "devise", "latem"])
def test_every_classic_method_runs_on_a_real_xlsa17_folder(apy_folder, tmp_path, method):
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        main,
        [
            "gzsl",
            "--data",
            f"xlsa17:{apy_folder}",
            "--method",
            method,
            "--search",
            "default",
            "--calibrate",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rec = json.loads(out.read_text())
    assert rec["data"]["name"] == "APY" and rec["data"]["semantics_kind"] == "attributes:att"
    assert rec["selection"]["validation_classes"] == "dataset"  # APY's valclasses1.txt
    # 12 unseen classes: chance is 8.3%; attributes drive the features, so ZSL must beat it.
    assert rec["metrics"]["ZSL"] > 2 * 100 / 12


@pytest.mark.parametrize("damage", ["truncate", "text", "nan"])
def test_damaged_res101_is_one_message_and_exit_2(apy_folder, tmp_path, damage):
    folder = tmp_path / "APY"
    fx.link_real(folder, "APY")
    res101 = (apy_folder / "res101.mat").read_bytes()
    if damage == "truncate":
        (folder / "res101.mat").write_bytes(res101[: len(res101) // 3])
    elif damage == "text":
        (folder / "res101.mat").write_text("not a mat file\n")
    else:
        mat = scipy.io.loadmat(apy_folder / "res101.mat")
        mat["features"][0, 5] = np.nan
        fx.write_res101(folder / "res101.mat", mat["features"], mat["labels"].ravel())
    result = CliRunner().invoke(main, ["gzsl", "--data", f"xlsa17:{folder}", "--method", "eszsl"])
    assert result.exit_code == 2
    assert "res101.mat" in result.output and "Traceback" not in result.output
