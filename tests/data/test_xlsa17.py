"""The xlsa17 loader on the REAL split files of Xian et al. (TPAMI 2018) with generated res101.mat."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import scipy.io

from support import xlsa17_fixtures as fx
from unseen.core.errors import DataFileNotFound, DataFormatError, SpecError, SplitError
from unseen.data.specs import parse_spec
from unseen.data.xlsa17 import _load_spec, load_xlsa17

pytestmark = pytest.mark.skipif(not fx.SHARED_XLSA17.is_dir(), reason=fx.SKIP_REASON)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every real dataset folder with a generated res101.mat: ds -> (folder, features, labels)."""
    root = tmp_path_factory.mktemp("xlsa17")
    return {ds: fx.build_folder(root, ds) for ds in fx.EXPECTED}


def test_the_shared_folder_holds_the_split_files_of_all_six_datasets():
    assert all((fx.SHARED_XLSA17 / ds / "att_splits.mat").is_file() for ds in fx.EXPECTED)


# -- the six datasets -------------------------------------------------------------------------------
@pytest.mark.parametrize("ds", sorted(fx.EXPECTED))
def test_real_split_files_load_with_the_right_sizes(built, ds):
    folder, feats, labels = built[ds]
    n_classes, n_seen, n_unseen, n = fx.EXPECTED[ds]
    real = fx.load_real(fx.SHARED_XLSA17 / ds / "att_splits.mat")
    d = load_xlsa17(folder)

    assert d.name == ds
    assert d.source == f"xlsa17:{folder}"
    assert (d.classes.n_classes, int(d.classes.seen.sum()), int((~d.classes.seen).sum())) == (
        n_classes,
        n_seen,
        n_unseen,
    )
    assert len(d.labels) == n and d.dim == 16
    for split, key in (
        ("train", "trainval_loc"),
        ("test_seen", "test_seen_loc"),
        ("test_unseen", "test_unseen_loc"),
    ):
        np.testing.assert_array_equal(d.indices(split), real[key].ravel().astype(np.int64) - 1)
    # (dim, N) on disk -> (N, dim) rows; 1-based labels -> 0-based.
    np.testing.assert_array_equal(d.features, feats.T)
    np.testing.assert_array_equal(d.labels, labels - 1)
    roles = fx.class_roles(ds)
    np.testing.assert_array_equal(d.classes.seen_ids, roles.seen)
    np.testing.assert_array_equal(d.classes.unseen_ids, roles.unseen)
    # semantics: att is (k, n_classes); the class table holds one row per class.
    np.testing.assert_allclose(d.classes.semantics, real["att"].T.astype(np.float32))
    # FLO's 'att' is a sentence embedding, not attribute annotations
    assert d.classes.semantics_kind == ("text:att" if ds == "FLO" else "attributes:att")
    if fx.names_of(real) is not None:
        assert list(d.classes.names) == fx.names_of(real)
    else:
        assert d.classes.names[:2] == ("class_001", "class_002") and d.classes.names[-1] == "class_102"


@pytest.mark.parametrize("ds", ["AWA1", "AWA2", "SUN", "FLO"])
def test_2017_key_set_gives_val_classes_from_val_loc(built, ds):
    folder, _, labels = built[ds]
    real = fx.load_real(fx.SHARED_XLSA17 / ds / "att_splits.mat")
    assert "val_loc" in real
    d = load_xlsa17(folder)
    expected = np.unique(labels[real["val_loc"].ravel().astype(np.int64) - 1] - 1)
    np.testing.assert_array_equal(d.val_classes, expected)
    np.testing.assert_array_equal(d.val_classes, fx.class_roles(ds).val)
    assert d.classes.seen[d.val_classes].all()
    assert 0 < len(d.val_classes) < len(d.classes.seen_ids)


@pytest.mark.parametrize("ds", ["CUB", "APY"])
def test_without_val_loc_val_classes_come_from_valclasses1_txt(built, ds):
    folder, _, _ = built[ds]
    assert "val_loc" not in fx.load_real(folder / "att_splits.mat")
    d = load_xlsa17(folder)
    wanted = set(fx.read_list(folder / "valclasses1.txt"))
    assert {d.classes.names[i] for i in d.val_classes} == wanted
    d2 = load_xlsa17(folder, val="valclasses2")
    assert {d2.classes.names[i] for i in d2.val_classes} == set(fx.read_list(folder / "valclasses2.txt"))
    assert d2.source == f"xlsa17:{folder}?val=valclasses2"


def test_no_locs_and_no_txt_gives_none(tmp_path):
    folder, _, _ = fx.build_folder(tmp_path, "CUB", names=("att_splits.mat",))
    assert load_xlsa17(folder).val_classes is None


def test_val_modes(built):
    awa2, _, _ = built["AWA2"]
    assert load_xlsa17(awa2, val="none").val_classes is None
    from_txt = load_xlsa17(awa2, val="valclasses3")
    assert {from_txt.classes.names[i] for i in from_txt.val_classes} == set(
        fx.read_list(awa2 / "valclasses3.txt")
    )
    cub, _, _ = built["CUB"]
    with pytest.raises(DataFormatError, match=r"att_splits\.mat.*lack them") as e:
        load_xlsa17(cub, val="locs")
    assert "val=none" in str(e.value)
    with pytest.raises(SpecError, match="val='sometimes'"):
        load_xlsa17(cub, val="sometimes")
    flo, _, _ = built["FLO"]
    with pytest.raises(DataFormatError, match="no class names"):
        load_xlsa17(flo, val="valclasses1")


def test_val_loc_that_is_not_a_class_split_is_refused_with_a_fix(tmp_path):
    folder = tmp_path / "AWA1"
    fx.link_real(folder, "AWA1")
    labels = fx.make_labels("AWA1", respect_val=False)
    fx.write_res101(folder / "res101.mat", fx.make_features(len(labels)), labels)
    with pytest.raises(SplitError, match=r"att_splits\.mat.*not a class split.*val=none"):
        load_xlsa17(folder)
    assert load_xlsa17(folder, val="none").val_classes is None


# -- semantics ------------------------------------------------------------------------------------
def test_original_att(built):
    folder, _, _ = built["AWA2"]
    real = fx.load_real(folder / "att_splits.mat")
    d = load_xlsa17(folder, semantics="original_att")
    assert d.classes.semantics_kind == "attributes:original_att"
    np.testing.assert_allclose(d.classes.semantics, real["original_att"].T.astype(np.float32))
    assert d.source.endswith("?semantics=original_att")
    # same samples and split, other class descriptions
    assert d.splits["train"].hash == load_xlsa17(folder).splits["train"].hash


def test_original_att_missing_in_flo_names_the_file_and_the_fix(built):
    folder, _, _ = built["FLO"]
    with pytest.raises(DataFormatError, match=r"FLO/att_splits\.mat.*original_att.*semantics=att"):
        load_xlsa17(folder, semantics="original_att")


def test_sent_semantics_on_cub(built):
    folder, _, labels = built["CUB"]
    sent = fx.load_real(folder / "sent_splits.mat")
    d = load_xlsa17(folder, semantics="sent")
    assert d.classes.semantics_kind == "text:sent"
    assert d.classes.semantics.shape == (200, 1024)
    np.testing.assert_allclose(d.classes.semantics, sent["att"].T.astype(np.float32))
    # the split is att_splits.mat's (identical locs); val classes come from sent_splits' val_loc
    np.testing.assert_array_equal(d.indices("test_unseen"), load_xlsa17(folder).indices("test_unseen"))
    np.testing.assert_array_equal(d.val_classes, np.unique(labels[sent["val_loc"].ravel() - 1] - 1))
    spec = _load_spec(parse_spec(f"xlsa17:{folder}?semantics=sent"))
    assert spec.hash == d.hash and spec.source == f"xlsa17:{folder}?semantics=sent"


def test_sent_without_att_splits_uses_its_own_locs(tmp_path):
    folder, _, _ = fx.build_folder(tmp_path, "CUB", names=("sent_splits.mat",))
    d = load_xlsa17(folder, semantics="sent")
    assert d.classes.semantics_kind == "text:sent" and len(d.indices("train")) == 7057
    with pytest.raises(DataFileNotFound, match=r"att_splits\.mat.*semantics=sent"):
        load_xlsa17(folder)


def test_semantics_file_with_different_locs_is_refused(tmp_path):
    folder, _, _ = fx.build_folder(tmp_path, "CUB", names=("att_splits.mat",))
    sent = fx.load_real(fx.SHARED_XLSA17 / "CUB" / "sent_splits.mat")
    sent["trainval_loc"] = sent["trainval_loc"][:-1]
    scipy.io.savemat(str(folder / "sent_splits.mat"), sent)
    with pytest.raises(SplitError, match=r"trainval_loc.*att_splits\.mat.*sent_splits\.mat"):
        load_xlsa17(folder, semantics="sent")


def test_custom_semantics_name_and_unknown_name(built, tmp_path):
    folder, _, _ = fx.build_folder(tmp_path, "APY")
    real = fx.load_real(folder / "att_splits.mat")
    w2v = np.random.default_rng(1).standard_normal((300, 32))
    scipy.io.savemat(str(folder / "w2v_splits.mat"), {"att": w2v})  # no locs: the split is att_splits'
    d = load_xlsa17(folder, semantics="w2v")
    assert d.classes.semantics_kind == "w2v:att"
    np.testing.assert_allclose(d.classes.semantics, w2v.T.astype(np.float32), rtol=1e-6)
    assert len(d.indices("train")) == len(real["trainval_loc"])
    with pytest.raises(DataFileNotFound, match=r"glove_splits\.mat.*\['att', 'original_att', 'w2v'\]"):
        load_xlsa17(folder, semantics="glove")
    with pytest.raises(SpecError, match="not a valid name"):
        load_xlsa17(folder, semantics="../etc")


def test_spec_and_unknown_option(built):
    folder, _, _ = built["APY"]
    d = _load_spec(parse_spec(f"xlsa17:{folder}"))
    assert d.hash == load_xlsa17(folder).hash
    with pytest.raises(SpecError, match="unknown option"):
        _load_spec(parse_spec(f"xlsa17:{folder}?semantic=att"))


def test_load_dataset_registry(built):
    pytest.importorskip("unseen.data.builtin", reason="load_dataset imports every loader module")
    pytest.importorskip("unseen.data.synthetic", reason="load_dataset imports every loader module")
    from unseen.data.specs import load_dataset

    folder, _, _ = built["FLO"]
    assert load_dataset(f"xlsa17:{folder}").hash == load_xlsa17(folder).hash


# -- MATLAB v7.3 (HDF5) res101.mat ----------------------------------------------------------------
def test_v73_res101_written_like_matlab(built, tmp_path):
    src, feats, labels = built["FLO"]
    folder = tmp_path / "FLO"
    fx.link_real(folder, "FLO")
    fx.write_mat_v73(
        folder / "res101.mat",
        {
            "features": feats.astype(np.float64),
            "labels": labels.astype(np.float64).reshape(-1, 1),
            "image_files": [f"jpg/image_{i:05d}.jpg" for i in range(3)],
        },
    )
    assert h5py.is_hdf5(folder / "res101.mat")
    d = load_xlsa17(folder)
    ref = load_xlsa17(src)
    assert d.hash == ref.hash
    np.testing.assert_array_equal(d.features, feats.T)


def test_v73_res101_written_by_plain_h5py_rows_layout(built, tmp_path):
    _, feats, labels = built["FLO"]
    folder = tmp_path / "FLO"
    fx.link_real(folder, "FLO")
    with h5py.File(folder / "res101.mat", "w") as f:
        # No MATLAB attributes; h5py reads arrays back transposed, so the loader must match N.
        f["features"] = feats
        f["labels"] = labels.reshape(1, -1)
    d = load_xlsa17(folder)
    np.testing.assert_array_equal(d.features, feats.T)
    np.testing.assert_array_equal(d.labels, labels - 1)


# -- bad inputs -----------------------------------------------------------------------------------
def _variant(tmp_path, ds="FLO", splits=None, res101=None):
    """Folder with the real files of ``ds``, optionally a modified att_splits.mat / res101.mat."""
    folder = tmp_path / ds
    labels = fx.make_labels(ds)
    feats = fx.make_features(len(labels))
    fx.link_real(folder, ds, names=() if splits is not None else None)
    real = fx.load_real(fx.SHARED_XLSA17 / ds / "att_splits.mat")
    if splits is not None:
        scipy.io.savemat(str(folder / "att_splits.mat"), splits(real))
    if res101 is None:
        fx.write_res101(folder / "res101.mat", feats, labels)
    else:
        scipy.io.savemat(str(folder / "res101.mat"), res101(feats, labels))
    return folder


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(DataFileNotFound, match="does not exist"):
        load_xlsa17(tmp_path / "nope")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataFormatError, match="is a file, not a folder"):
        load_xlsa17(tmp_path / "afile")
    folder = tmp_path / "APY"
    fx.link_real(folder, "APY")
    with pytest.raises(DataFileNotFound, match=r"APY/res101\.mat' does not exist.*Fix"):
        load_xlsa17(folder)
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    fx.write_res101(empty / "res101.mat", fx.make_features(4), [1, 2, 1, 2])
    with pytest.raises(DataFileNotFound, match=r"EMPTY/att_splits\.mat' does not exist"):
        load_xlsa17(empty)


def test_truncated_and_non_mat_res101(tmp_path):
    folder = _variant(tmp_path)
    data = (folder / "res101.mat").read_bytes()
    (folder / "res101.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"FLO/res101\.mat' is not a readable MATLAB file"):
        load_xlsa17(folder)
    (folder / "res101.mat").write_text("features,labels\n1,2\n")
    with pytest.raises(DataFormatError, match=r"FLO/res101\.mat' is not a readable MATLAB file"):
        load_xlsa17(folder)


def test_truncated_att_splits(tmp_path):
    folder = _variant(tmp_path, "APY")
    data = (folder / "att_splits.mat").read_bytes()
    (folder / "att_splits.mat").unlink()
    (folder / "att_splits.mat").write_bytes(data[:3000])
    with pytest.raises(DataFormatError, match=r"APY/att_splits\.mat"):
        load_xlsa17(folder)


def test_missing_keys_name_file_keys_found_and_contents(tmp_path):
    folder = _variant(tmp_path, res101=lambda f, y: {"features": f, "label": y.reshape(-1, 1)})
    with pytest.raises(DataFormatError) as e:
        load_xlsa17(folder)
    msg = str(e.value)
    assert "res101.mat" in msg and "['labels']" in msg and "['features', 'label']" in msg
    assert "1-based class ids" in msg
    folder = _variant(tmp_path / "b", splits=lambda m: {k: v for k, v in m.items() if k != "test_unseen_loc"})
    with pytest.raises(DataFormatError, match=r"att_splits\.mat.*\['test_unseen_loc'\].*keys found"):
        load_xlsa17(folder)


def test_zero_based_locs(tmp_path):
    def zero_based(m):
        for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc"):
            m[k] = m[k].astype(np.int64) - 1
        return m

    folder = _variant(tmp_path, splits=zero_based)
    with pytest.raises(SplitError, match=r"att_splits\.mat.*'\w+_loc' contains index 0.*1-based MATLAB"):
        load_xlsa17(folder)


def test_out_of_range_locs(tmp_path):
    folder = _variant(
        tmp_path, res101=lambda f, y: {"features": f[:, :-10], "labels": y[:-10].reshape(-1, 1)}
    )
    with pytest.raises(
        SplitError, match=r"att_splits\.mat.*contains index 8189 but res101\.mat has only 8179"
    ):
        load_xlsa17(folder)


def test_overlapping_locs(tmp_path):
    def overlap(m):
        m["test_seen_loc"] = np.vstack([m["test_seen_loc"], m["trainval_loc"][:3]])
        return m

    folder = _variant(tmp_path, splits=overlap)
    with pytest.raises(SplitError, match=r"att_splits\.mat.*'trainval_loc' and 'test_seen_loc' overlap in 3"):
        load_xlsa17(folder)


def test_empty_unseen_split(tmp_path):
    def no_unseen(m):
        m["test_unseen_loc"] = np.zeros((0, 1), dtype=np.uint16)
        return m

    folder = _variant(tmp_path, splits=no_unseen)
    with pytest.raises(SplitError, match=r"att_splits\.mat.*'test_unseen_loc' is empty"):
        load_xlsa17(folder)


def test_nan_features(tmp_path):
    def with_nan(f, y):
        f = f.copy()
        f[2, [4, 9, 100]] = np.nan
        f[0, 7] = np.inf
        return {"features": f, "labels": y.reshape(-1, 1)}

    folder = _variant(tmp_path, res101=with_nan)
    with pytest.raises(DataFormatError, match=r"res101\.mat.*NaN/Inf in 4 of 8189.*\[5, 8, 10, 101\]"):
        load_xlsa17(folder)


def test_feature_label_count_mismatch(tmp_path):
    folder = _variant(tmp_path, res101=lambda f, y: {"features": f[:, :-1], "labels": y.reshape(-1, 1)})
    with pytest.raises(DataFormatError, match=r"res101\.mat.*shape \(16, 8188\).*8189 entries"):
        load_xlsa17(folder)


def test_zero_based_labels(tmp_path):
    folder = _variant(tmp_path, res101=lambda f, y: {"features": f, "labels": (y - 1).reshape(-1, 1)})
    with pytest.raises(DataFormatError, match=r"res101\.mat.*'labels' contains 0.*1-based"):
        load_xlsa17(folder)


def test_wrong_att_shape(tmp_path):
    def drop_column(m):
        m["att"] = m["att"][:, :-1]
        return m

    folder = _variant(tmp_path, "APY", splits=drop_column)
    with pytest.raises(
        DataFormatError, match=r"att_splits\.mat.*'att' has shape \(64, 31\).*32 classes.*\(k x n_classes\)"
    ):
        load_xlsa17(folder)

    def transpose(m):
        m["att"] = m["att"].T
        return m

    folder = _variant(tmp_path / "t", "APY", splits=transpose)
    with pytest.raises(DataFormatError, match="looks transposed"):
        load_xlsa17(folder)


def test_labels_that_contradict_the_split(tmp_path):
    def mixed(f, y):
        y = y.copy()
        real = fx.load_real(fx.SHARED_XLSA17 / "FLO" / "att_splits.mat")
        y[real["test_unseen_loc"].ravel()[0] - 1] = y[real["trainval_loc"].ravel()[0] - 1]
        return {"features": f, "labels": y.reshape(-1, 1)}

    folder = _variant(tmp_path, res101=mixed)
    with pytest.raises(SplitError, match=r"att_splits\.mat.*both 'trainval_loc' and 'test_unseen_loc'"):
        load_xlsa17(folder)


def test_valclasses_txt_with_unknown_names(tmp_path):
    folder, _, _ = fx.build_folder(tmp_path, "APY", names=("att_splits.mat",))
    shutil.copy(fx.SHARED_XLSA17 / "APY" / "valclasses1.txt", folder / "valclasses1.txt")
    with (folder / "valclasses1.txt").open("a") as fh:
        fh.write("\nunicorn\n")
    with pytest.raises(DataFormatError, match=r"valclasses1\.txt.*\['unicorn'\]"):
        load_xlsa17(folder)
