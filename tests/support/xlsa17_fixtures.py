"""Test helpers: build xlsa17 folders around the REAL split files, and MATLAB v7.3 files.

The xlsa17 release of Xian et al. (TPAMI 2018) ships small ``att_splits.mat`` files (kept, for tests
only, in ``/work/shared/data/xlsa17``) and large ``res101.mat`` feature files (not available). The
helpers here write a small ``res101.mat`` in the official layout (``features`` ``(dim, N)``,
``labels`` ``(N, 1)`` 1-based) whose labels are consistent with a real file's locs, and link the
real split files next to it. Nothing is copied into the repository.

Labels are not in the split files, so they are constructed:

- seen/unseen class ids come from ``trainvalclasses.txt`` / ``testclasses.txt`` mapped through the
  class names in ``att_splits.mat`` (FLO has neither: a seeded draw of 20 unseen of 102 classes);
- where a split file has ``train_loc``/``val_loc`` (the 2017 key set), the seen images in
  ``val_loc`` get validation classes (the names in ``valclasses1.txt``; FLO: a seeded 16 of 82) and
  the other seen images get the remaining seen classes;
- within each group, images are dealt classes round-robin in a seeded random order, so every class
  of a group that has at least as many images as classes appears.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

SHARED_XLSA17 = Path(__file__).resolve().parents[3] / "shared" / "data" / "xlsa17"
SKIP_REASON = (
    f"real xlsa17 split files not found at {SHARED_XLSA17} (the shared test data of the project; "
    "see its SOURCE.md)"
)

#: dataset -> (n_classes, n_seen, n_unseen, N images)
EXPECTED = {
    "APY": (32, 20, 12, 15339),
    "AWA1": (50, 40, 10, 30475),
    "AWA2": (50, 40, 10, 37322),
    "CUB": (200, 150, 50, 11788),
    "FLO": (102, 82, 20, 8189),
    "SUN": (717, 645, 72, 14340),
}
LOC_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


def load_real(path: Path) -> dict:
    """All variables of a v5 .mat file, via scipy only (independent of the code under test)."""
    return {k: v for k, v in scipy.io.loadmat(str(path)).items() if not k.startswith("__")}


def names_of(mat: dict) -> list[str] | None:
    if "allclasses_names" not in mat:
        return None
    return [str(c.item()) for c in mat["allclasses_names"].ravel()]


def read_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().splitlines() if s.strip()]


@dataclass
class Roles:
    n_classes: int
    seen: np.ndarray  # 0-based ids
    unseen: np.ndarray
    val: np.ndarray | None  # 0-based ids used for val_loc images, when the locs exist


def class_roles(ds: str) -> Roles:
    folder = SHARED_XLSA17 / ds
    mat = load_real(folder / "att_splits.mat")
    n_classes = mat["att"].shape[1]
    names = names_of(mat)
    rng = np.random.default_rng(17)
    if names is not None:
        index = {n: i for i, n in enumerate(names)}
        seen = np.sort([index[n] for n in read_list(folder / "trainvalclasses.txt")])
        unseen = np.sort([index[n] for n in read_list(folder / "testclasses.txt")])
        val = np.sort([index[n] for n in read_list(folder / "valclasses1.txt")])
    else:
        unseen = np.sort(rng.choice(n_classes, size=20, replace=False))
        seen = np.setdiff1d(np.arange(n_classes), unseen)
        val = np.sort(rng.choice(seen, size=16, replace=False))
    return Roles(n_classes, np.asarray(seen), np.asarray(unseen), np.asarray(val))


def val_locs_file(ds: str) -> Path | None:
    """The real split file of ``ds`` that has train_loc/val_loc, if any."""
    for name in ("att_splits.mat", "sent_splits.mat"):
        path = SHARED_XLSA17 / ds / name
        if path.is_file() and "val_loc" in load_real(path):
            return path
    return None


def make_labels(ds: str, seed: int = 0, respect_val: bool = True) -> np.ndarray:
    """1-based labels (N,) consistent with the real locs of ``ds`` (see the module docstring)."""
    roles = class_roles(ds)
    mat = load_real(SHARED_XLSA17 / ds / "att_splits.mat")
    locs = {k: mat[k].ravel().astype(np.int64) - 1 for k in LOC_KEYS}
    n = int(max(v.max() for v in locs.values())) + 1
    labels = np.full(n, -1, dtype=np.int64)
    rng = np.random.default_rng(seed)

    def deal(idx: np.ndarray, classes: np.ndarray) -> None:
        if len(idx):
            order = rng.permutation(len(idx))
            labels[idx[order]] = classes[np.arange(len(idx)) % len(classes)]

    vfile = val_locs_file(ds) if respect_val else None
    in_val = np.zeros(n, dtype=bool)
    if vfile is not None:
        in_val[load_real(vfile)["val_loc"].ravel().astype(np.int64) - 1] = True
    train_cls = np.setdiff1d(roles.seen, roles.val) if vfile is not None else roles.seen
    for key in ("trainval_loc", "test_seen_loc"):
        idx = locs[key]
        deal(idx[~in_val[idx]], train_cls)
        deal(idx[in_val[idx]], roles.val)
    deal(locs["test_unseen_loc"], roles.unseen)
    # Images no loc mentions (none in the real files) get class 0.
    labels[labels < 0] = roles.seen[0]
    return labels + 1


def make_features(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """``(dim, n)`` float32 features, the official (transposed) layout."""
    return np.random.default_rng(seed).standard_normal((dim, n)).astype(np.float32)


def write_res101(path: Path, features: np.ndarray, labels: np.ndarray, **extra) -> None:
    scipy.io.savemat(str(path), {"features": features, "labels": np.asarray(labels).reshape(-1, 1), **extra})


def link_real(folder: Path, ds: str, names: tuple[str, ...] | None = None) -> None:
    """Symlink the real files of ``ds`` (all, or ``names``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in sorted((SHARED_XLSA17 / ds).iterdir()):
        if src.suffix in (".mat", ".txt") and (names is None or src.name in names):
            os.symlink(src, folder / src.name)


def build_folder(root: Path, ds: str, dim: int = 16, names: tuple[str, ...] | None = None):
    """A folder ``root/ds`` with a fresh res101.mat and the real split files; returns
    ``(folder, features (dim, N), labels (N,) 1-based)``."""
    folder = root / ds
    labels = make_labels(ds)
    feats = make_features(len(labels), dim)
    link_real(folder, ds, names)
    write_res101(folder / "res101.mat", feats, labels)
    return folder, feats, labels


# -- MATLAB v7.3 (HDF5) writer, in the layout MATLAB itself uses ------------------------------------
_CLASS = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "single",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
}


def _char(group: h5py.Group, name: str, text: str) -> h5py.Dataset:
    if text == "":
        ds = group.create_dataset(name, data=np.array([0, 0], dtype=np.uint64))
        ds.attrs["MATLAB_empty"] = np.uint8(1)
    else:
        codes = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
        ds = group.create_dataset(name, data=codes.reshape(-1, 1))  # MATLAB (1, L) -> disk (L, 1)
    ds.attrs["MATLAB_class"] = np.bytes_("char")
    ds.attrs["MATLAB_int_decode"] = np.int32(2)
    return ds


def _put(f: h5py.File, group: h5py.Group, name: str, value) -> h5py.Dataset | h5py.Group:
    refs = f.require_group("#refs#")
    if isinstance(value, str):
        return _char(group, name, value)
    if isinstance(value, dict):
        sub = group.create_group(name)
        sub.attrs["MATLAB_class"] = np.bytes_("struct")
        for k, v in value.items():
            _put(f, sub, k, v)
        return sub
    if isinstance(value, list):  # a MATLAB (n, 1) cell array
        out = np.empty((1, len(value)), dtype=h5py.ref_dtype)
        for i, item in enumerate(value):
            cell_name = f"{name}_{i}_{len(refs)}"
            out[0, i] = _put(f, refs, cell_name, item).ref
        ds = group.create_dataset(name, data=out)
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
        return ds
    arr = np.asarray(value)
    if arr.dtype == bool:
        ds = group.create_dataset(name, data=arr.astype(np.uint8).T)
        ds.attrs["MATLAB_class"] = np.bytes_("logical")
        return ds
    matlab = arr.reshape(-1, 1) if arr.ndim < 2 else arr  # a numpy vector is a MATLAB column
    ds = group.create_dataset(name, data=matlab.T)
    ds.attrs["MATLAB_class"] = np.bytes_(_CLASS[arr.dtype])
    return ds


def write_mat_v73(path: Path, variables: dict) -> None:
    """Write ``variables`` like MATLAB's ``save -v7.3``: HDF5 with a 512-byte MAT header block,
    arrays stored transposed (column-major), strings as uint16 char arrays, cells as references.

    Values: numpy arrays (given in MATLAB orientation), ``str`` (char row), ``list`` of values
    (an ``(n, 1)`` cell array), ``dict`` (a struct)."""
    with h5py.File(str(path), "w", userblock_size=512) as f:
        for name, value in variables.items():
            _put(f, f, name, value)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")
