"""Reading MATLAB files: v5 (scipy) and v7.3 (HDF5, h5py), corrupt files, keys, cell strings."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from support import xlsa17_fixtures as fx
from unseen.core.errors import DataFileNotFound, DataFormatError
from unseen.data.matfile import as_vector, cellstr, mat_keys, read_mat

NAMES = ["002.Laysan_Albatross", "", "Gänsegeier"]
FEATURES = np.arange(24, dtype=np.float64).reshape(4, 6)  # MATLAB (dim=4, N=6)


@pytest.fixture
def v5(tmp_path):
    path = tmp_path / "a.mat"
    cells = np.empty((3, 1), dtype=object)
    for i, n in enumerate(NAMES):
        cells[i, 0] = n
    scipy.io.savemat(
        str(path),
        {
            "features": FEATURES,
            "labels": np.arange(1, 7).reshape(-1, 1),
            "names": cells,
            "flag": np.array([[True]]),
        },
    )
    return path


@pytest.fixture
def v73(tmp_path):
    path = tmp_path / "b.mat"
    fx.write_mat_v73(
        path,
        {
            "features": FEATURES,
            "labels": np.arange(1, 7, dtype=np.float64).reshape(-1, 1),
            "names": list(NAMES),
            "flag": np.array([[True, False]]),
            "title": "hello",
            "meta": {"x": np.ones(2)},
        },
    )
    return path


def test_v5_reads_requested_keys_in_matlab_orientation(v5):
    data = read_mat(v5, ["features", "labels", "absent"])
    assert set(data) == {"features", "labels"}
    np.testing.assert_array_equal(data["features"], FEATURES)
    assert data["labels"].shape == (6, 1)
    assert cellstr(read_mat(v5, ["names"])["names"], v5, "names") == NAMES
    assert set(read_mat(v5)) == {"features", "labels", "names", "flag"}
    assert mat_keys(v5) == ["features", "labels", "names", "flag"]


def test_v73_matches_v5(v5, v73):
    assert scipy.io.matlab.matfile_version(str(v73))[0] == 2  # a real v7.3 header before the HDF5 data
    assert h5py.is_hdf5(v73)
    a = read_mat(v5, ["features", "labels", "names"])
    b = read_mat(v73, ["features", "labels", "names", "flag", "title"])
    np.testing.assert_array_equal(b["features"], a["features"])  # transposed back from HDF5 order
    np.testing.assert_array_equal(b["labels"], a["labels"])
    assert cellstr(b["names"], v73, "names") == NAMES
    assert b["flag"].dtype == bool and b["flag"].tolist() == [[True, False]]
    assert cellstr(b["title"], v73, "title") == ["hello"]
    assert mat_keys(v73) == ["features", "flag", "labels", "meta", "names", "title"]


def test_v73_struct_is_refused_by_name(v73):
    with pytest.raises(DataFormatError, match=r"b\.mat': key 'meta' is a MATLAB struct"):
        read_mat(v73, ["meta"])


def test_plain_hdf5_strings_and_arrays(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(6).reshape(2, 3)
        f["names"] = np.array([b"cat", b"dog"])
        f["title"] = "zebra"
    data = read_mat(path)
    assert data["x"].shape == (3, 2)  # HDF5 (column-major MATLAB) order is transposed back
    assert cellstr(data["names"], path, "names") == ["cat", "dog"]
    assert cellstr(data["title"], path, "title") == ["zebra"]


def test_missing_required_keys_message(v5, v73):
    for path in (v5, v73):
        with pytest.raises(DataFormatError) as e:
            read_mat(
                path,
                ["features"],
                required=["features", "att", "test_unseen_loc"],
                contents="the class attributes",
            )
        msg = str(e.value)
        assert str(path) in msg
        assert "['att', 'test_unseen_loc']" in msg
        assert "keys found:" in msg and "'features'" in msg and "'names'" in msg
        assert "should contain the class attributes" in msg


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataFileNotFound, match=r"nope\.mat' does not exist"):
        read_mat(tmp_path / "nope.mat")
    with pytest.raises(DataFileNotFound):
        mat_keys(tmp_path / "nope.mat")
    with pytest.raises(DataFormatError, match="is a folder"):
        read_mat(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"this is a csv file\n1,2,3\n" * 20,
        b"MATLAB 5.0 MAT-file",
        b"\x00\x01\x02\x03" * 10,
    ],
    ids=["empty", "text", "header-only", "binary-junk"],
)
def test_non_mat_files(tmp_path, content):
    path = tmp_path / "x.mat"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=r"x\.mat' is not a readable MATLAB file"):
        read_mat(path)
    with pytest.raises(DataFormatError, match=r"x\.mat' is not a readable MATLAB file"):
        mat_keys(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_v5(v5, fraction):
    data = v5.read_bytes()
    v5.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DataFormatError, match=r"a\.mat'.*(not a readable MATLAB file|lacks required)"):
        read_mat(v5, required=["features", "labels", "names", "flag"])


def test_truncated_v73(v73):
    data = v73.read_bytes()
    v73.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"b\.mat'"):
        read_mat(v73, ["features"], required=["features"])


def test_cellstr_variants(tmp_path):
    path = tmp_path / "c.mat"
    scipy.io.savemat(str(path), {"m": np.array(["ab  ", "cde "]), "num": np.ones((2, 1))})
    data = read_mat(path)
    assert cellstr(data["m"], path, "m") == ["ab", "cde"]  # char matrix rows, padding stripped
    with pytest.raises(DataFormatError, match=r"c\.mat': key 'num' should be a cell array of strings"):
        cellstr(data["num"], path, "num")
    bad = np.empty((2, 1), dtype=object)
    bad[0, 0], bad[1, 0] = np.array(["ok"]), np.ones((2, 2))
    with pytest.raises(DataFormatError, match=r"key 'names' cell 2 holds"):
        cellstr(bad, path, "names")


def test_as_vector():
    np.testing.assert_array_equal(as_vector(np.arange(3).reshape(3, 1), "f", "k"), [0, 1, 2])
    np.testing.assert_array_equal(as_vector(np.arange(3).reshape(1, 3), "f", "k"), [0, 1, 2])
    assert as_vector(np.array(5), "f", "k").tolist() == [5]
    with pytest.raises(DataFormatError, match=r"'f': key 'k' should be a vector"):
        as_vector(np.ones((2, 3)), "f", "k")


@pytest.mark.skipif(not fx.SHARED_XLSA17.is_dir(), reason=fx.SKIP_REASON)
def test_real_release_files():
    cub = fx.SHARED_XLSA17 / "CUB" / "att_splits.mat"
    data = read_mat(cub, ["allclasses_names", "att"], required=["att"])
    names = cellstr(data["allclasses_names"], cub, "allclasses_names")
    assert len(names) == 200 and names[0] == "002.Laysan_Albatross"
    assert data["att"].shape == (312, 200)
    assert "trainval_loc" in mat_keys(cub) and "train_loc" not in mat_keys(cub)
