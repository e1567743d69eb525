"""The npz format: load, atomic save, round trip, and errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support import xlsa17_fixtures as fx
from unseen.core.errors import DataFileNotFound, DataFormatError, SpecError, SplitError
from unseen.data.model import ClassTable, ZSLDataset
from unseen.data.npz import NPZ_KEYS, _load_spec, load_npz, save_npz
from unseen.data.specs import parse_spec


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A valid 5-class task: classes 0-2 seen, 3-4 unseen; 40 samples."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(5), 8)
    seen_samples = np.flatnonzero(labels < 3)
    return {
        "features": rng.standard_normal((40, 6)).astype(np.float32),
        "labels": labels,
        "semantics": rng.random((5, 4)),
        "seen": np.array([True, True, True, False, False]),
        "train_idx": seen_samples[seen_samples % 8 < 6],
        "test_seen_idx": seen_samples[seen_samples % 8 >= 6],
        "test_unseen_idx": np.flatnonzero(labels >= 3),
    }


def _write(tmp_path, filename="task.npz", drop=(), **changes) -> Path:
    arrays = {k: v for k, v in _arrays().items() if k not in drop}
    arrays.update(changes)
    path = tmp_path / filename
    np.savez(path, **arrays)
    return path


def test_minimal_file_loads_with_defaults(tmp_path):
    path = _write(tmp_path)
    d = load_npz(path)
    a = _arrays()
    assert d.name == "task" and d.source == f"npz:{path}"
    assert d.classes.names == ("class_000", "class_001", "class_002", "class_003", "class_004")
    assert d.classes.semantics_kind == "attributes"
    np.testing.assert_array_equal(d.classes.seen_ids, [0, 1, 2])
    np.testing.assert_array_equal(d.features, a["features"])
    np.testing.assert_array_equal(d.indices("test_unseen"), a["test_unseen_idx"])
    assert d.val_classes is None


def test_optional_keys_and_unseen_classes(tmp_path):
    path = _write(
        tmp_path,
        drop=("seen",),
        unseen_classes=np.array([3, 4]),
        class_names=np.array(["a", "b", "c", "d", "e"]),
        semantics_kind=np.array("text:sent"),
        val_classes=np.array([1]),
        name=np.array("mini"),
    )
    d = load_npz(path)
    assert d.name == "mini" and d.classes.names == ("a", "b", "c", "d", "e")
    assert d.classes.semantics_kind == "text:sent"
    np.testing.assert_array_equal(d.classes.unseen_ids, [3, 4])
    np.testing.assert_array_equal(d.val_classes, [1])


def test_round_trip_keeps_the_hash(tmp_path):
    a = _arrays()
    d = ZSLDataset(
        name="rt",
        features=a["features"],
        labels=a["labels"],
        classes=ClassTable(("x", "y", "z", "u", "v"), a["seen"], a["semantics"], "attributes:att"),
        split_indices={
            "train": a["train_idx"],
            "test_seen": a["test_seen_idx"],
            "test_unseen": a["test_unseen_idx"],
        },
        val_classes=np.array([0]),
    )
    for compress in (False, True):
        path = save_npz(d, tmp_path / f"rt{compress}.npz", compress=compress)
        back = load_npz(path)
        assert back.hash == d.hash
        assert back.name == "rt" and back.classes.names == d.classes.names
        assert {s: sp.hash for s, sp in back.splits.items()} == {s: sp.hash for s, sp in d.splits.items()}
        np.testing.assert_array_equal(back.val_classes, d.val_classes)
        assert set(np.load(path).files) <= set(NPZ_KEYS)
        assert (path.stat().st_mode & 0o777) == 0o644


def test_round_trip_of_a_real_xlsa17_dataset(tmp_path):
    if not fx.SHARED_XLSA17.is_dir():
        pytest.skip(fx.SKIP_REASON)
    from unseen.data.xlsa17 import load_xlsa17

    folder, _, _ = fx.build_folder(tmp_path, "APY")
    d = load_xlsa17(folder)
    back = load_npz(save_npz(d, tmp_path / "apy.npz"))
    assert back.hash == d.hash and back.summary()["splits"] == d.summary()["splits"]
    np.testing.assert_array_equal(back.val_classes, d.val_classes)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = _write(tmp_path)
    before = path.read_bytes()
    d = load_npz(path)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_npz(d, path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task.npz"]  # no temp file left
    monkeypatch.undo()
    save_npz(d, path)  # overwriting works
    assert load_npz(path).hash == d.hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task.npz"]
    with pytest.raises(DataFileNotFound, match="does not exist"):
        save_npz(d, tmp_path / "no" / "x.npz")


def test_spec(tmp_path):
    path = _write(tmp_path)
    assert _load_spec(parse_spec(f"npz:{path}")).hash == load_npz(path).hash
    with pytest.raises(SpecError, match="unknown option"):
        _load_spec(parse_spec(f"npz:{path}?x=1"))


# -- errors ---------------------------------------------------------------------------------------
def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataFileNotFound, match=r"nope\.npz' does not exist"):
        load_npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("features,labels\n")
    with pytest.raises(DataFormatError, match=r"bad\.npz' is not a readable \.npz"):
        load_npz(bad)
    whole = _write(tmp_path, "whole.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.npz"):
        load_npz(cut)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(DataFormatError, match=r"single\.npy' holds a single \.npy array"):
        load_npz(single)


def test_missing_unknown_and_conflicting_keys(tmp_path):
    with pytest.raises(DataFormatError) as e:
        load_npz(_write(tmp_path, drop=("labels",), label=np.zeros(40, int)))
    msg = str(e.value)
    assert "task.npz" in msg and "missing key(s) ['labels']" in msg and "unknown key(s) ['label']" in msg
    assert "Keys found:" in msg
    with pytest.raises(DataFormatError, match="exactly one of 'seen'.*found neither"):
        load_npz(_write(tmp_path, drop=("seen",)))
    with pytest.raises(DataFormatError, match=r"exactly one of 'seen'.*\['seen', 'unseen_classes'\]"):
        load_npz(_write(tmp_path, unseen_classes=np.array([3, 4])))


@pytest.mark.parametrize(
    ("changes", "error", "pattern"),
    [
        ({"seen": np.array([1, 1, 1, 0, 0])}, DataFormatError, r"task\.npz': key 'seen' must be a bool"),
        (
            {"labels": np.repeat(np.arange(5), 8).astype(float)},
            DataFormatError,
            r"key 'labels' must be a 1-D integer.*whole-number floats",
        ),
        (
            {"labels": np.repeat(np.arange(1, 6), 8)},
            DataFormatError,
            r"key 'labels'.*look 1-based; subtract 1",
        ),
        (
            {"labels": np.zeros(39, dtype=int)},
            DataFormatError,
            r"'labels' has 39 entries but 'features' has 40",
        ),
        ({"features": np.ones((40, 2, 3))}, DataFormatError, r"key 'features' must be a numeric \(n, d\)"),
        ({"semantics": np.ones(5)}, DataFormatError, r"key 'semantics' must be a numeric \(n_classes, k\)"),
        (
            {"class_names": np.array(["a", "b"])},
            DataFormatError,
            r"key 'class_names' must be a str array of shape \(5,\)",
        ),
        (
            {"semantics_kind": np.array(["a", "b"])},
            DataFormatError,
            r"key 'semantics_kind' must be a single string",
        ),
        ({"val_classes": np.array([7])}, SplitError, r"key 'val_classes' has ids outside"),
        (
            {"test_unseen_idx": np.array([0, 1])},
            SplitError,
            r"task\.npz'.*'train_idx' and 'test_unseen_idx' overlap",
        ),
        ({"train_idx": np.array([[0, 1]])}, DataFormatError, r"key 'train_idx' must be a 1-D integer"),
        (
            {"test_seen_idx": np.array([99])},
            SplitError,
            r"key 'test_seen_idx' has indices outside \[0, 40\).*0-based",
        ),
        ({"unseen_classes": np.array([9])}, DataFormatError, r"key 'unseen_classes' has ids outside"),
    ],
)
def test_bad_contents(tmp_path, changes, error, pattern):
    drop = ("seen",) if "unseen_classes" in changes else ()
    with pytest.raises(error, match=pattern):
        load_npz(_write(tmp_path, drop=drop, **changes))


def test_one_based_indices_are_recognised(tmp_path):
    a = _arrays()
    shifted = {k: a[k] + 1 for k in ("train_idx", "test_seen_idx", "test_unseen_idx")}
    with pytest.raises(SplitError, match=r"task\.npz': key '\w+_idx'.*look 1-based.*Fix: subtract 1"):
        load_npz(_write(tmp_path, **shifted))


def test_object_arrays_are_not_unpickled(tmp_path):
    path = tmp_path / "task.npz"
    np.savez(path, **_arrays(), class_names=np.array(["a", "b", "c", "d", "e"], dtype=object))
    with pytest.raises(DataFormatError, match=r"key 'class_names' is stored as Python objects.*dtype=str"):
        load_npz(path)


def test_model_errors_name_the_file(tmp_path):
    # unseen-class samples in the training split: caught by the ZSLDataset constructor
    with pytest.raises(SplitError, match=r"npz file '.*task\.npz': dataset 'task'.*'train'.*unseen classes"):
        load_npz(_write(tmp_path, seen=np.array([True, True, False, False, False])))
