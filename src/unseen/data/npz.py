"""The ``npz`` loader and writer: a whole GZSL dataset in one numpy ``.npz`` archive.

The format carries what a loader of the xlsa17 release of Xian et al., "Zero-Shot Learning — A
Comprehensive Evaluation of the Good, the Bad and the Ugly" (TPAMI 2018) produces, but in numpy's
conventions: samples are **rows**, classes are **rows**, and every index is **0-based**.

========================  ==================  =========================================================
key                       shape / dtype       meaning
========================  ==================  =========================================================
``features``              ``(n, d)`` number   one embedding per sample
``labels``                ``(n,)`` integer    0-based class ids (rows of ``semantics``)
``semantics``             ``(C, k)`` number   one semantic vector per class
``seen``                  ``(C,)`` bool       training (seen) classes — or instead:
``unseen_classes``        ``(u,)`` integer    0-based ids of the unseen classes
``train_idx``             ``(m,)`` integer    0-based sample indices of the training split
``test_seen_idx``         integer             ... of seen-class test samples
``test_unseen_idx``       integer             ... of unseen-class test samples
``class_names``           ``(C,)`` str        optional; default ``class_000``, ...
``semantics_kind``        0-d str             optional; default ``"attributes"``
``val_classes``           integer             optional; seen class ids held out for validation
``name``                  0-d str             optional; default: the file name without ``.npz``
========================  ==================  =========================================================

Files are read with ``allow_pickle=False`` (text must be numpy unicode arrays, not Python objects).
:func:`save_npz` writes any :class:`~unseen.data.model.ZSLDataset` in this format atomically, so
``npz:FILE`` can reload it with an identical content hash.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from unseen.core.errors import DataError, DataFileNotFound, DataFormatError, SplitError
from unseen.data.model import ClassTable, SplitName, ZSLDataset, first_overlap
from unseen.data.specs import DataSpec, register_scheme

__all__ = ["NPZ_KEYS", "load_npz", "save_npz"]

_REQUIRED = ("features", "labels", "semantics", "train_idx", "test_seen_idx", "test_unseen_idx")
_OPTIONAL = ("seen", "unseen_classes", "class_names", "semantics_kind", "val_classes", "name")
#: Every key the format knows; any other key is an error (it is usually a misspelling).
NPZ_KEYS = _REQUIRED + _OPTIONAL
_SPLIT_KEYS = {
    "train_idx": SplitName.TRAIN,
    "test_seen_idx": SplitName.TEST_SEEN,
    "test_unseen_idx": SplitName.TEST_UNSEEN,
}


def _open(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataFileNotFound(f"npz file '{path}' does not exist. Fix: check the path.")
    if path.is_dir():
        raise DataFormatError(f"npz target '{path}' is a folder. Fix: name the .npz file itself.")
    with path.open("rb") as fh:
        magic = fh.read(6)
    if not (magic.startswith((b"PK\x03\x04", b"PK\x05\x06")) or magic == b"\x93NUMPY"):
        raise DataFormatError(
            f"'{path}' is not a readable .npz archive (it does not start with the zip signature of "
            "an .npz file). Fix: write it with numpy.savez (or unseen.data.npz.save_npz)."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(
            f"'{path}' is not a readable .npz archive ({exc}). Fix: write it with numpy.savez "
            "(or unseen.data.npz.save_npz) and check the copy is complete."
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataFormatError(
            f"'{path}' holds a single .npy array, not an .npz archive of named arrays. Fix: save "
            f"with numpy.savez(path, features=..., labels=..., ...) using the keys {list(NPZ_KEYS)}."
        )
    out: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                out[key] = archive[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "pickle" in str(exc).lower():
                    raise DataFormatError(
                        f"npz file '{path}': key '{key}' is stored as Python objects, which are "
                        "not loaded (allow_pickle=False). Fix: store text as a numpy unicode array, "
                        "e.g. np.array(names, dtype=str)."
                    ) from exc
                raise DataFormatError(f"npz file '{path}': key '{key}' is unreadable ({exc}).") from exc
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DataFormatError(
                    f"npz file '{path}': key '{key}' is unreadable ({exc}). Fix: the file is "
                    "probably truncated; write it again."
                ) from exc
    return out


def _int_vector(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        kind = "whole-number floats" if arr.dtype.kind == "f" else f"dtype {arr.dtype}"
        raise DataFormatError(
            f"npz file '{path}': key '{key}' must be a 1-D integer array, got shape {arr.shape} "
            f"with {kind}. Fix: save whole-number ids as integers (np.rint({key}).astype(np.int64)); "
            f"map other values to ids first (np.unique({key}, return_inverse=True)[1])."
        )
    return arr.astype(np.int64)


def _text(arr: np.ndarray, path: Path, key: str) -> str:
    if arr.ndim != 0 or arr.dtype.kind not in "US":
        raise DataFormatError(
            f"npz file '{path}': key '{key}' must be a single string (0-d str array), got dtype "
            f"{arr.dtype} shape {arr.shape}. Fix: save np.array('text')."
        )
    item = arr.item()
    return item.decode("utf-8") if isinstance(item, bytes) else str(item)


def _check_keys(data: dict[str, np.ndarray], path: Path) -> None:
    missing = [k for k in _REQUIRED if k not in data]
    unknown = sorted(set(data) - set(NPZ_KEYS))
    roles = [k for k in ("seen", "unseen_classes") if k in data]
    problems = []
    if missing:
        problems.append(f"missing key(s) {missing}")
    if unknown:
        problems.append(f"unknown key(s) {unknown}")
    if len(roles) != 1:
        problems.append(
            "needs exactly one of 'seen' (bool per class) or 'unseen_classes' (class ids), found "
            f"{roles or 'neither'}"
        )
    if problems:
        raise DataFormatError(
            f"npz file '{path}': {'; '.join(problems)}. Keys found: {sorted(data)}. The file must "
            f"contain {list(_REQUIRED)} plus 'seen' or 'unseen_classes'; optional: "
            f"{[k for k in _OPTIONAL if k not in ('seen', 'unseen_classes')]} (see docs/data-formats.md)."
        )


def _seen_mask(data: dict[str, np.ndarray], path: Path, n_classes: int) -> np.ndarray:
    if "seen" in data:
        seen = data["seen"]
        if seen.dtype != bool or seen.shape != (n_classes,):
            raise DataFormatError(
                f"npz file '{path}': key 'seen' must be a bool array of shape ({n_classes},) (one "
                f"per row of 'semantics'), got dtype {seen.dtype} shape {seen.shape}. Fix: save "
                "np.asarray(seen, dtype=bool)."
            )
        return seen
    unseen = _int_vector(data["unseen_classes"], path, "unseen_classes")
    if len(unseen) and (unseen.min() < 0 or unseen.max() >= n_classes):
        raise DataFormatError(
            f"npz file '{path}': key 'unseen_classes' has ids outside [0, {n_classes}) (range "
            f"[{unseen.min()}, {unseen.max()}]). Fix: use 0-based class ids (rows of 'semantics')."
        )
    seen = np.ones(n_classes, dtype=bool)
    seen[unseen] = False
    return seen


def _split_indices(data: dict[str, np.ndarray], path: Path, n: int) -> dict[str, np.ndarray]:
    idx = {key: _int_vector(data[key], path, key) for key in _SPLIT_KEYS}
    nonempty = [v for v in idx.values() if len(v)]
    lo = min((int(v.min()) for v in nonempty), default=0)
    hi = max((int(v.max()) for v in nonempty), default=0)
    one_based = lo >= 1 and hi == n
    for key, v in idx.items():
        if len(v) and (v.min() < 0 or v.max() >= n):
            hint = (
                " The indices look 1-based (none is 0 and the largest equals the sample count). "
                "Fix: subtract 1 from every *_idx array."
                if one_based
                else " Fix: indices are 0-based rows of 'features'."
            )
            raise SplitError(
                f"npz file '{path}': key '{key}' has indices outside [0, {n}) (range "
                f"[{v.min()}, {v.max()}]).{hint}"
            )
    overlap = first_overlap(idx)
    if overlap:
        a, b, common = overlap
        raise SplitError(
            f"npz file '{path}': keys '{a}' and '{b}' overlap in {len(common)} sample(s) "
            f"(e.g. {common[:5].tolist()}). Fix: each sample belongs to one split."
        )
    return {_SPLIT_KEYS[k].value: v for k, v in idx.items()}


def load_npz(path: str | Path) -> ZSLDataset:
    """Load a GZSL dataset from an ``.npz`` archive (keys: see the module docstring).

    Raises :class:`DataFileNotFound` for a missing file, :class:`DataFormatError` for an unreadable
    archive, missing/unknown keys and wrong dtypes or shapes, and :class:`SplitError` for bad split
    indices; every message names the file and the key.
    """
    path = Path(path)
    data = _open(path)
    _check_keys(data, path)

    features = data["features"]
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
        raise DataFormatError(
            f"npz file '{path}': key 'features' must be a numeric (n, d) array, got dtype "
            f"{features.dtype} shape {features.shape}. Fix: one row per sample."
        )
    semantics = data["semantics"]
    if semantics.ndim != 2 or not np.issubdtype(semantics.dtype, np.number):
        raise DataFormatError(
            f"npz file '{path}': key 'semantics' must be a numeric (n_classes, k) array, got dtype "
            f"{semantics.dtype} shape {semantics.shape}. Fix: one row per class."
        )
    n, n_classes = len(features), len(semantics)
    labels = _int_vector(data["labels"], path, "labels")
    if len(labels) != n:
        raise DataFormatError(
            f"npz file '{path}': key 'labels' has {len(labels)} entries but 'features' has {n} "
            "rows. Fix: one label per feature row, in the same order."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        one_based = labels.min() >= 1 and labels.max() == n_classes
        hint = (
            " Fix: they look 1-based; subtract 1."
            if one_based
            else " Fix: labels are 0-based rows of 'semantics'."
        )
        raise DataFormatError(
            f"npz file '{path}': key 'labels' has class ids outside [0, {n_classes}) (range "
            f"[{labels.min()}, {labels.max()}]; 'semantics' has {n_classes} rows).{hint}"
        )
    seen = _seen_mask(data, path, n_classes)
    splits = _split_indices(data, path, n)

    if "class_names" in data:
        names_arr = data["class_names"]
        if names_arr.dtype.kind not in "US" or names_arr.shape != (n_classes,):
            raise DataFormatError(
                f"npz file '{path}': key 'class_names' must be a str array of shape ({n_classes},), "
                f"got dtype {names_arr.dtype} shape {names_arr.shape}. Fix: save "
                "np.array(names, dtype=str)."
            )
        names = tuple(x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in names_arr.tolist())
    else:
        width = max(3, len(str(n_classes - 1)))
        names = tuple(f"class_{i:0{width}d}" for i in range(n_classes))
    kind = _text(data["semantics_kind"], path, "semantics_kind") if "semantics_kind" in data else "attributes"
    name = _text(data["name"], path, "name") if "name" in data else path.name.removesuffix(".npz")
    val = _int_vector(data["val_classes"], path, "val_classes") if "val_classes" in data else None
    if val is not None and len(val) and (val.min() < 0 or val.max() >= n_classes):
        raise SplitError(
            f"npz file '{path}': key 'val_classes' has ids outside [0, {n_classes}). Fix: use "
            "0-based ids of seen classes."
        )
    try:
        return ZSLDataset(
            name=name,
            features=features,
            labels=labels,
            classes=ClassTable(names=names, seen=seen, semantics=semantics, semantics_kind=kind),
            split_indices=splits,
            val_classes=val,
            source=f"npz:{path}",
        )
    except DataError as exc:
        raise type(exc)(f"npz file '{path}': {exc}") from exc


def save_npz(dataset: ZSLDataset, path: str | Path, *, compress: bool = False) -> Path:
    """Write ``dataset`` to ``path`` in the ``npz`` format, atomically; returns the path.

    The archive is written to a temporary file in the same folder and moved over ``path`` with
    :func:`os.replace`, so readers never see a half-written file and an interrupted write leaves
    any previous file intact. :func:`load_npz` of the result has the same :attr:`ZSLDataset.hash`.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise DataFileNotFound(
            f"cannot write '{path}': folder '{path.parent}' does not exist. Fix: create it first."
        )
    arrays: dict[str, np.ndarray] = {
        "features": np.asarray(dataset.features),
        "labels": np.asarray(dataset.labels),
        "semantics": np.asarray(dataset.classes.semantics),
        "seen": np.asarray(dataset.classes.seen),
        "train_idx": dataset.indices(SplitName.TRAIN),
        "test_seen_idx": dataset.indices(SplitName.TEST_SEEN),
        "test_unseen_idx": dataset.indices(SplitName.TEST_UNSEEN),
        "class_names": np.array(dataset.classes.names, dtype=str),
        "semantics_kind": np.array(dataset.classes.semantics_kind, dtype=str),
        "name": np.array(dataset.name, dtype=str),
    }
    if dataset.val_classes is not None:
        arrays["val_classes"] = np.asarray(dataset.val_classes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file private (0600); give it the usual permissions of a data file.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@register_scheme("npz", "npz:FILE - features, labels, semantics and 0-based splits in one .npz archive")
def _load_spec(spec: DataSpec) -> ZSLDataset:
    spec.check_options(set())
    return load_npz(spec.target)
