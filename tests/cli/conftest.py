"""Fixtures of the CLI tests."""

import numpy as np
import pytest
import scipy.io

from support import xlsa17_fixtures as fx


@pytest.fixture(scope="session")
def apy_folder(tmp_path_factory):
    """Real APY split files + a res101.mat whose features follow the real attributes."""
    folder = tmp_path_factory.mktemp("xlsa17") / "APY"
    labels = fx.make_labels("APY")  # 1-based, consistent with the real locs
    att = scipy.io.loadmat(fx.SHARED_XLSA17 / "APY" / "att_splits.mat")["att"].T  # (classes, 64)
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(att.shape[1], 48))
    feats = np.tanh(att[labels - 1] @ mixing * 3.0) + 0.3 * rng.normal(size=(len(labels), 48))
    fx.link_real(folder, "APY")
    fx.write_res101(folder / "res101.mat", feats.T.astype(np.float32), labels)
    return folder
