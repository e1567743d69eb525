"""The ``xlsa17`` loader: the GZSL benchmark files of Xian et al. (TPAMI 2018).

Xian, Lampert, Schiele and Akata, "Zero-Shot Learning — A Comprehensive Evaluation of the Good,
the Bad and the Ugly" (TPAMI 2018) released, per dataset (AWA1, AWA2, CUB, SUN, APY, and FLO with
f-CLSWGAN), a folder holding

- ``res101.mat``: ``features`` ``(dim, N)`` ResNet-101 features (one **column** per image),
  ``labels`` ``(N, 1)`` 1-based class ids in ``allclasses_names`` order, ``image_files`` (unused);
- ``att_splits.mat``: ``att`` ``(k, n_classes)`` class semantics (one **column** per class,
  L2-normalised), ``original_att`` (raw attributes; absent for FLO), ``allclasses_names`` (absent
  for FLO), and the "Proposed Split" as 1-based sample indices into ``res101.mat``:
  ``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc`` (plus ``train_loc``/``val_loc`` in the
  2017 key set);
- optionally other ``NAME_splits.mat`` files with the same keys and different ``att`` (e.g. CUB's
  ``sent_splits.mat``: 1024-d sentence embeddings) and the class lists ``allclasses.txt``,
  ``trainvalclasses.txt``, ``testclasses.txt``, ``valclasses{1,2,3}.txt``.

:func:`load_xlsa17` turns such a folder into a :class:`~unseen.data.model.ZSLDataset`: ``train`` =
``trainval_loc``, seen classes = the classes of ``trainval_loc``, unseen classes = the classes of
``test_unseen_loc``. Validation classes come from ``val_loc`` (the 2017 key set), else from
``valclasses1.txt``, else are left to the protocol (see ``docs/data-formats.md``). The data spec
``xlsa17:DIR[?semantics=NAME&val=MODE]`` calls it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unseen.core.errors import DataError, DataFileNotFound, DataFormatError, SpecError, SplitError
from unseen.data.matfile import as_vector, cellstr, read_mat
from unseen.data.model import ClassTable, ZSLDataset, first_overlap
from unseen.data.specs import DataSpec, register_scheme

__all__ = ["SPLIT_KEYS", "load_xlsa17"]

#: The index keys of the Proposed Split, in the order of the dataset's splits.
SPLIT_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")
_VAL_KEYS = ("train_loc", "val_loc")
_SPLIT_NAMES = {"trainval_loc": "train", "test_seen_loc": "test_seen", "test_unseen_loc": "test_unseen"}
_RES101_CONTENTS = (
    "'features' (dim x N ResNet-101 features, one column per image) and 'labels' (N x 1, "
    "1-based class ids), as in the xlsa17 release of Xian et al. (TPAMI 2018). Fix: use the "
    "res101.mat of that release (or one written in the same layout)"
)
_SPLITS_CONTENTS = (
    "'att' (k x n_classes, one column per class) and the 1-based index vectors 'trainval_loc', "
    "'test_seen_loc' and 'test_unseen_loc', as in the xlsa17 release of Xian et al. (TPAMI 2018). "
    "Fix: use the {name} of that release (or one written in the same layout)"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VAL_RE = re.compile(r"^(auto|locs|none|valclasses\d+)$")


@dataclass(frozen=True)
class _Semantics:
    """Where the class semantics come from: a file, the key in it, and the recorded kind."""

    file: Path
    key: str
    kind: str


def _resolve_semantics(folder: Path, semantics: str) -> _Semantics:
    if not _NAME_RE.match(semantics):
        raise SpecError(
            f"xlsa17 option semantics='{semantics}' is not a valid name. Fix: use 'att', "
            "'original_att' or NAME for a NAME_splits.mat file in the folder (e.g. 'sent')."
        )
    if semantics in ("att", "original_att"):
        # FLO's release has no attribute annotations: its att_splits.mat 'att' holds the 1024-d
        # char-CNN-RNN sentence embeddings of Reed et al. (CVPR 2016).
        family = "text" if folder.name.upper() == "FLO" and semantics == "att" else "attributes"
        return _Semantics(folder / "att_splits.mat", semantics, f"{family}:{semantics}")
    file = folder / f"{semantics}_splits.mat"
    if not file.is_file():
        available = ["att", "original_att"] + sorted(
            p.name[: -len("_splits.mat")] for p in folder.glob("*_splits.mat") if p.name != "att_splits.mat"
        )
        raise DataFileNotFound(
            f"xlsa17 folder '{folder}': semantics='{semantics}' needs the file '{file}', which "
            f"does not exist. Fix: pick one of {available} (each NAME except att/original_att "
            "names a NAME_splits.mat file in the folder)."
        )
    kind = "text:sent" if semantics == "sent" else f"{semantics}:att"
    return _Semantics(file, "att", kind)


# -- res101.mat ---------------------------------------------------------------------------------
def _read_res101(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(N, dim)`` float32 features and ``(N,)`` 0-based labels from ``res101.mat``."""
    if not path.is_file():
        raise DataFileNotFound(
            f"xlsa17 feature file '{path}' does not exist. Fix: put the res101.mat of the xlsa17 "
            "release (Xian et al., TPAMI 2018) for this dataset into the folder, next to "
            "att_splits.mat."
        )
    raw = read_mat(path, ["features", "labels"], required=["features", "labels"], contents=_RES101_CONTENTS)
    labels = _integer_vector(raw["labels"], path, "labels")
    n = len(labels)
    if n == 0:
        raise DataFormatError(f"xlsa17 file '{path}': key 'labels' is empty; it needs one per image.")
    if labels.min() < 1:
        raise DataFormatError(
            f"xlsa17 file '{path}': key 'labels' contains {labels.min()}; xlsa17 labels are "
            "1-based MATLAB class ids (1..n_classes). Fix: if your labels are 0-based, add 1 "
            "before saving."
        )
    feats = np.asarray(raw["features"])
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.number):
        raise DataFormatError(
            f"xlsa17 file '{path}': key 'features' must be a numeric (dim x N) matrix, got "
            f"{feats.dtype} of shape {feats.shape}. Fix: store one column per image."
        )
    # The official layout is (dim, N); files re-saved from Python are often (N, dim). Match N to
    # the labels; when both sides equal N, the official layout wins.
    if feats.shape[1] == n:
        X = feats.T
    elif feats.shape[0] == n:
        X = feats
    else:
        raise DataFormatError(
            f"xlsa17 file '{path}': key 'features' has shape {feats.shape} but 'labels' has {n} "
            f"entries; neither dimension matches the number of images. Fix: features must be "
            f"(dim x {n}), one column per labelled image, from the same extraction as 'labels'."
        )
    X = np.ascontiguousarray(X, dtype=np.float32)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataFormatError(
            f"xlsa17 file '{path}': key 'features' contains NaN/Inf in {len(rows)} of {n} "
            f"image(s) (1-based image indices: {(rows[:5] + 1).tolist()}). Fix: re-extract the "
            "features of those images."
        )
    return X, labels.astype(np.int64) - 1


def _integer_vector(value: Any, path: Path, key: str) -> np.ndarray:
    vec = as_vector(value, path, key)
    if vec.dtype.kind in "iu":
        return vec.astype(np.int64)
    if vec.dtype.kind == "f" and np.all(np.isfinite(vec)) and np.all(vec == np.round(vec)):
        return vec.astype(np.int64)
    raise DataFormatError(
        f"xlsa17 file '{path}': key '{key}' must hold whole numbers, got dtype {vec.dtype}"
        + (" with non-integer values" if vec.dtype.kind == "f" else "")
        + ". Fix: store it as a vector of integer (1-based) ids."
    )


# -- *_splits.mat -------------------------------------------------------------------------------
def _read_splits_file(path: Path, key: str | None, with_locs: bool) -> dict[str, Any]:
    """The split/semantics keys of a ``*_splits.mat``; ``key`` is the semantics key it must hold."""
    keys = [*SPLIT_KEYS, *_VAL_KEYS, "allclasses_names"] + ([key] if key else [])
    required = [*SPLIT_KEYS] if with_locs else []
    if key == "original_att":
        raw = read_mat(path, keys, required=required, contents=_SPLITS_CONTENTS.format(name=path.name))
        if key not in raw:
            raise DataFormatError(
                f"xlsa17 file '{path}' has no key 'original_att' (the raw, unnormalised "
                "attributes; FLO's file has none). Fix: load with semantics=att."
            )
        return raw
    required += [key] if key else []
    return read_mat(path, keys, required=required, contents=_SPLITS_CONTENTS.format(name=path.name))


def _locs(value: Any, path: Path, key: str, n: int) -> np.ndarray:
    """A ``*_loc`` vector as validated 0-based indices into the ``n`` images of res101.mat."""
    idx = _integer_vector(value, path, key)
    if len(idx) and idx.min() < 1:
        raise SplitError(
            f"xlsa17 file '{path}': key '{key}' contains index {idx.min()}; xlsa17 indices are "
            "1-based MATLAB indices (1..N). Fix: if the file was written with 0-based indices, "
            "add 1 to every *_loc vector."
        )
    if len(idx) and idx.max() > n:
        raise SplitError(
            f"xlsa17 file '{path}': key '{key}' contains index {idx.max()} but res101.mat has "
            f"only {n} images (xlsa17 indices are 1-based MATLAB indices, 1..{n}). Fix: use the "
            "res101.mat and split file of the same dataset and release."
        )
    uniq, counts = np.unique(idx, return_counts=True)
    if len(uniq) != len(idx):
        raise SplitError(
            f"xlsa17 file '{path}': key '{key}' lists {int((counts > 1).sum())} image(s) more "
            f"than once (e.g. {uniq[counts > 1][:5].tolist()}). Fix: each index may appear once."
        )
    return idx - 1


def _check_disjoint(locs: dict[str, np.ndarray], path: Path, keys: tuple[str, ...]) -> None:
    overlap = first_overlap({key: locs[key] for key in keys})
    if overlap:
        a, b, common = overlap
        raise SplitError(
            f"xlsa17 file '{path}': keys '{a}' and '{b}' overlap in {len(common)} "
            f"image(s) (1-based: {(common[:5] + 1).tolist()}). Fix: an image may be in "
            "one of them only; use the unmodified split file of the release."
        )


def _same_locs(
    ref: dict[str, np.ndarray], ref_path: Path, other: dict[str, Any], other_path: Path, n: int
) -> None:
    for key in SPLIT_KEYS:
        if key not in other:
            continue
        theirs = _locs(other[key], other_path, key, n)
        if not np.array_equal(np.sort(theirs), np.sort(ref[key])):
            raise SplitError(
                f"xlsa17 folder: key '{key}' differs between '{ref_path}' and '{other_path}' "
                f"({len(ref[key])} vs {len(theirs)} images); the split comes from "
                f"{ref_path.name} and the semantics file must use the same split. Fix: use "
                "semantics files of the same release, or remove the *_loc keys from the "
                "semantics file."
            )


# -- classes ------------------------------------------------------------------------------------
def _class_names(
    folder: Path, files: list[tuple[Path, dict[str, Any]]], n_classes: int
) -> tuple[tuple[str, ...], bool]:
    """Class names and whether they are real (from a file) rather than generated."""
    names: list[str] | None = None
    origin: Path | None = None
    for path, raw in files:
        if "allclasses_names" not in raw:
            continue
        these = cellstr(raw["allclasses_names"], path, "allclasses_names")
        if names is None:
            names, origin = these, path
        elif these != names:
            raise DataFormatError(
                f"xlsa17 files '{origin}' and '{path}' list different 'allclasses_names' (class "
                "order); their semantics would be misaligned. Fix: use files of the same release."
            )
    if names is None and (folder / "allclasses.txt").is_file():
        origin = folder / "allclasses.txt"
        names = _read_names(origin)
    if names is None:
        width = max(3, len(str(n_classes)))
        return tuple(f"class_{i + 1:0{width}d}" for i in range(n_classes)), False
    if len(names) != n_classes:
        raise DataFormatError(
            f"xlsa17 file '{origin}': {len(names)} class names but the semantics matrix and "
            f"labels have {n_classes} classes. Fix: use the class list of the same dataset."
        )
    return tuple(names), True


def _read_names(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"xlsa17 class list '{path}' could not be read as UTF-8 text ({exc}). Fix: one class "
            "name per line."
        ) from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def _semantics_matrix(value: Any, path: Path, key: str, n_classes: int) -> np.ndarray:
    att = np.asarray(value)
    if att.ndim != 2 or not np.issubdtype(att.dtype, np.number):
        raise DataFormatError(
            f"xlsa17 file '{path}': key '{key}' must be a numeric (k x n_classes) matrix, got "
            f"{att.dtype} of shape {att.shape}."
        )
    if att.shape[1] != n_classes:
        hint = (
            " It looks transposed (one row per class). Fix: save its transpose."
            if att.shape[0] == n_classes
            else " Fix: use the split/semantics file of the same dataset as res101.mat."
        )
        raise DataFormatError(
            f"xlsa17 file '{path}': key '{key}' has shape {att.shape}, i.e. {att.shape[1]} "
            f"class columns, but res101.mat labels name {n_classes} classes; the layout is "
            f"(k x n_classes), one column per class.{hint}"
        )
    if not np.all(np.isfinite(att)):
        cols = np.flatnonzero(~np.isfinite(att).all(axis=0))
        raise DataFormatError(
            f"xlsa17 file '{path}': key '{key}' contains NaN/Inf in {len(cols)} class column(s) "
            f"(1-based: {(cols[:5] + 1).tolist()}). Fix: fill those entries."
        )
    return att.T.astype(np.float32)


def _val_from_locs(raw: dict[str, Any], path: Path, labels: np.ndarray, seen: np.ndarray) -> np.ndarray:
    n = len(labels)
    train = _locs(raw["train_loc"], path, "train_loc", n)
    val = _locs(raw["val_loc"], path, "val_loc", n)
    val_cls = np.unique(labels[val])
    shared = np.intersect1d(val_cls, np.unique(labels[train]))
    if len(shared):
        raise SplitError(
            f"xlsa17 file '{path}': 'train_loc' and 'val_loc' share {len(shared)} class(es), so "
            "they are not a class split and cannot give validation classes. Fix: load with "
            "val=none (the protocol then draws validation classes) or val=valclasses1."
        )
    not_seen = val_cls[~seen[val_cls]]
    if len(not_seen):
        raise SplitError(
            f"xlsa17 file '{path}': 'val_loc' holds images of {len(not_seen)} class(es) that are "
            "not in trainval_loc (unseen classes). Fix: load with val=none or val=valclasses1."
        )
    return val_cls


def _val_from_txt(path: Path, names: tuple[str, ...], seen: np.ndarray) -> np.ndarray:
    if not path.is_file():
        raise DataFileNotFound(
            f"xlsa17 class list '{path}' does not exist. Fix: choose val=auto, val=locs or "
            "val=none, or add the file (one seen class name per line)."
        )
    wanted = _read_names(path)
    index = {name: i for i, name in enumerate(names)}
    unknown = [w for w in wanted if w not in index]
    if unknown:
        raise DataFormatError(
            f"xlsa17 class list '{path}': {len(unknown)} name(s) are not dataset classes (e.g. "
            f"{unknown[:5]}); known names look like {list(names[:3])}. Fix: use the class list of "
            "the same dataset, one name per line."
        )
    ids = np.unique([index[w] for w in wanted]).astype(np.int64)
    if not seen[ids].all():
        raise SplitError(
            f"xlsa17 class list '{path}' names unseen (test) classes "
            f"{[names[i] for i in ids[~seen[ids]]][:5]}; validation classes must be seen classes. "
            "Fix: use the valclasses file that matches this split."
        )
    return ids


# -- the loader ---------------------------------------------------------------------------------
def load_xlsa17(folder: str | Path, semantics: str = "att", val: str = "auto") -> ZSLDataset:
    """Load an xlsa17 dataset folder (Xian et al., TPAMI 2018) as a :class:`ZSLDataset`.

    Parameters
    ----------
    folder:
        Folder with ``res101.mat`` and ``att_splits.mat`` (and optionally ``NAME_splits.mat`` files
        and class-list ``.txt`` files). ``res101.mat`` may be MATLAB v5 or v7.3 (HDF5).
    semantics:
        ``"att"`` (default; kind ``attributes:att``, ``text:att`` for FLO, whose ``att`` is a
        sentence embedding), ``"original_att"`` (kind
        ``attributes:original_att``), or ``NAME`` to take ``att`` from ``NAME_splits.mat`` (kind
        ``text:sent`` for ``sent``, else ``NAME:att``). The split always comes from
        ``att_splits.mat`` when it exists, and a ``NAME_splits.mat`` that has ``*_loc`` keys must
        agree with it; without ``att_splits.mat`` the ``NAME_splits.mat`` locs are used.
    val:
        Where :attr:`ZSLDataset.val_classes` come from. ``"auto"``: the classes of ``val_loc``
        when the split file has ``train_loc``/``val_loc`` (2017 key set), else the names in
        ``valclasses1.txt`` when it exists and class names are known, else ``None`` (the protocol
        draws them with a seed). ``"locs"``, ``"valclassesK"`` (``valclassesK.txt``) and
        ``"none"`` force one source.

    Raises
    ------
    DataFileNotFound, DataFormatError, SplitError
        With a message naming the file, the key, what is wrong and the fix.
    """
    folder_arg = Path(folder)
    if not folder_arg.exists():
        raise DataFileNotFound(
            f"xlsa17 folder '{folder_arg}' does not exist. Fix: name the folder that holds "
            "res101.mat and att_splits.mat for one dataset (e.g. .../xlsa17/data/CUB)."
        )
    if not folder_arg.is_dir():
        raise DataFormatError(
            f"xlsa17 target '{folder_arg}' is a file, not a folder. Fix: name the folder that "
            "holds res101.mat and att_splits.mat."
        )
    if not _VAL_RE.match(val):
        raise SpecError(
            f"xlsa17 option val='{val}' is not understood. Fix: use auto, locs, none or "
            "valclassesK (e.g. valclasses1)."
        )
    sem = _resolve_semantics(folder_arg, semantics)
    split_path = folder_arg / "att_splits.mat"
    if not split_path.is_file():
        if sem.file == split_path:
            raise DataFileNotFound(
                f"xlsa17 split file '{split_path}' does not exist. Fix: put the att_splits.mat "
                "of the xlsa17 release (Xian et al., TPAMI 2018) next to res101.mat"
                + _other_semantics_hint(folder_arg)
            )
        split_path = sem.file

    X, labels = _read_res101(folder_arg / "res101.mat")
    n = len(labels)
    split_raw = _read_splits_file(split_path, sem.key if sem.file == split_path else None, True)
    files = [(split_path, split_raw)]
    sem_raw = split_raw
    if sem.file != split_path:
        sem_raw = _read_splits_file(sem.file, sem.key, False)
        files.append((sem.file, sem_raw))

    locs = {key: _locs(split_raw[key], split_path, key, n) for key in SPLIT_KEYS}
    for key in SPLIT_KEYS:
        if len(locs[key]) == 0:
            raise SplitError(
                f"xlsa17 file '{split_path}': key '{key}' is empty; GZSL needs training, seen "
                "test and unseen test images. Fix: use the split file of the release."
            )
    _check_disjoint(locs, split_path, SPLIT_KEYS)
    if sem_raw is not split_raw:
        _same_locs(locs, split_path, sem_raw, sem.file, n)

    n_classes = int(labels.max()) + 1
    semantics_matrix = _semantics_matrix(sem_raw[sem.key], sem.file, sem.key, n_classes)
    names, real_names = _class_names(folder_arg, files, n_classes)

    seen_ids = np.unique(labels[locs["trainval_loc"]])
    unseen_ids = np.unique(labels[locs["test_unseen_loc"]])
    both = np.intersect1d(seen_ids, unseen_ids)
    if len(both):
        raise SplitError(
            f"xlsa17 file '{split_path}': {len(both)} class(es) have images in both "
            f"'trainval_loc' and 'test_unseen_loc' (e.g. {[names[c] for c in both[:3]]}), so "
            "res101.mat labels and the split disagree. Fix: use res101.mat and the split file "
            "of the same dataset and release."
        )
    seen = np.isin(np.arange(n_classes), seen_ids)
    stray = np.setdiff1d(np.unique(labels[locs["test_seen_loc"]]), seen_ids)
    if len(stray):
        raise SplitError(
            f"xlsa17 file '{split_path}': 'test_seen_loc' holds images of {len(stray)} class(es) "
            f"absent from 'trainval_loc' (e.g. {[names[c] for c in stray[:3]]}). Fix: use "
            "res101.mat and the split file of the same dataset and release."
        )

    val_classes = _val_classes(folder_arg, files, val, labels, seen, names, real_names)
    options = {k: v for k, v in (("semantics", semantics), ("val", val)) if v not in ("att", "auto")}
    source = f"xlsa17:{folder_arg}" + (
        "?" + "&".join(f"{k}={v}" for k, v in options.items()) if options else ""
    )
    try:
        return ZSLDataset(
            name=folder_arg.resolve().name,
            features=X,
            labels=labels,
            classes=ClassTable(names=names, seen=seen, semantics=semantics_matrix, semantics_kind=sem.kind),
            split_indices={_SPLIT_NAMES[k]: locs[k] for k in SPLIT_KEYS},
            val_classes=val_classes,
            source=source,
        )
    except DataError as exc:
        raise type(exc)(f"xlsa17 folder '{folder_arg}': {exc}") from exc


def _other_semantics_hint(folder: Path) -> str:
    others = sorted(p.name[: -len("_splits.mat")] for p in folder.glob("*_splits.mat"))
    if not others:
        return "."
    return f", or load semantics={others[0]} (found {[o + '_splits.mat' for o in others]})."


def _val_classes(
    folder: Path,
    files: list[tuple[Path, dict[str, Any]]],
    mode: str,
    labels: np.ndarray,
    seen: np.ndarray,
    names: tuple[str, ...],
    real_names: bool,
) -> np.ndarray | None:
    if mode == "none":
        return None
    if mode in ("auto", "locs"):
        for path, raw in files:
            if all(k in raw for k in _VAL_KEYS):
                return _val_from_locs(raw, path, labels, seen)
        if mode == "locs":
            raise DataFormatError(
                f"xlsa17 folder '{folder}': val=locs needs 'train_loc' and 'val_loc' (the 2017 "
                f"key set) but {[str(p) for p, _ in files]} lack them. Fix: use val=auto, "
                "val=valclasses1 or val=none."
            )
        txt = folder / "valclasses1.txt"
        if not (txt.is_file() and real_names):
            return None
        return _val_from_txt(txt, names, seen)
    txt = folder / f"{mode}.txt"
    if not real_names:
        raise DataFormatError(
            f"xlsa17 folder '{folder}': val={mode} maps class names, but the folder has no class "
            "names (no 'allclasses_names' key and no allclasses.txt). Fix: add allclasses.txt "
            "(one name per line, in label order) or use val=auto/none."
        )
    return _val_from_txt(txt, names, seen)


@register_scheme(
    "xlsa17",
    "xlsa17:DIR[?semantics=att|original_att|NAME&val=auto|locs|none|valclassesK] - a folder "
    "with res101.mat + att_splits.mat (Xian et al., TPAMI 2018)",
)
def _load_spec(spec: DataSpec) -> ZSLDataset:
    spec.check_options({"semantics", "val"})
    return load_xlsa17(
        spec.target,
        semantics=spec.option("semantics", "att") or "att",
        val=spec.option("val", "auto") or "auto",
    )
