"""The data model every module shares: class table, typed splits and the GZSL dataset.

A :class:`ZSLDataset` holds one ``(n, d)`` float32 embedding matrix, one global label per sample
(an index into the :class:`ClassTable`), the class table with its seen/unseen roles and semantics,
and immutable typed :class:`Split` objects (``train``, ``test_seen``, ``test_unseen``). All arrays
are read-only; every split and the dataset carry content hashes. Construction validates everything
and raises :class:`~unseen.core.errors.DataError` subclasses with messages that name the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from unseen.core.errors import DataError, SplitError
from unseen.data.hashing import hash_arrays


class SplitName(StrEnum):
    """The typed splits of a GZSL dataset.

    ``train`` is the whole training set (xlsa17's ``trainval``); validation is not a fixed split
    of the dataset but a task the protocol derives from ``train`` (see :meth:`ZSLDataset.validation_task`).
    """

    TRAIN = "train"
    TEST_SEEN = "test_seen"
    TEST_UNSEEN = "test_unseen"


def first_overlap(index_sets: Mapping[str, np.ndarray]) -> tuple[str, str, np.ndarray] | None:
    """The first pair of named index sets that share indices, with the shared ones, or None."""
    names = list(index_sets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(index_sets[a], index_sets[b])
            if len(common):
                return a, b, common
    return None


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class ClassTable:
    """One row per class: its name, whether it is seen in training, and its semantics.

    ``semantics`` is ``(n_classes, k)``: an attribute vector, a text embedding, or another class
    description, and ``semantics_kind`` records which (e.g. ``"attributes:att"``, ``"text:sent"``).
    """

    names: tuple[str, ...]
    seen: np.ndarray
    semantics: np.ndarray
    semantics_kind: str

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        seen = np.asarray(self.seen)
        sem = np.asarray(self.semantics)
        n = len(names)
        if n < 2:
            raise DataError(f"class table has {n} class(es); a recognition task needs at least 2.")
        if len(set(names)) != n:
            dupes = sorted({x for x in names if names.count(x) > 1})[:5]
            raise DataError(f"class names must be unique; duplicated: {dupes}. Rename the classes.")
        if seen.shape != (n,) or seen.dtype != bool:
            raise DataError(
                f"class table 'seen' must be a boolean vector of length {n} (one per class), "
                f"got shape {seen.shape} dtype {seen.dtype}."
            )
        if sem.ndim != 2 or sem.shape[0] != n:
            raise DataError(
                f"class semantics must have one row per class: expected shape ({n}, k), got "
                f"{sem.shape}. If your matrix is (k, {n}) (xlsa17 stores attributes that way), "
                "transpose it."
            )
        if not np.issubdtype(sem.dtype, np.number) or not np.all(np.isfinite(sem)):
            bad = np.argwhere(~np.isfinite(sem.astype(float)))[:3].tolist()
            raise DataError(
                f"class semantics ({self.semantics_kind}) contain NaN/Inf at (class, dim) {bad}; "
                "fill or drop those entries before loading."
            )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "seen", _readonly(seen))
        object.__setattr__(self, "semantics", _readonly(sem.astype(np.float32)))

    @property
    def n_classes(self) -> int:
        return len(self.names)

    @property
    def seen_ids(self) -> np.ndarray:
        return np.flatnonzero(self.seen)

    @property
    def unseen_ids(self) -> np.ndarray:
        return np.flatnonzero(~self.seen)

    @property
    def hash(self) -> str:
        return hash_arrays(self.seen, self.semantics, extra="\x1f".join(self.names) + self.semantics_kind)

    def subset(self, class_ids: Sequence[int], seen: np.ndarray) -> ClassTable:
        """The table restricted to ``class_ids`` (in that order) with new seen/unseen roles."""
        ids = np.asarray(class_ids, dtype=np.int64)
        return ClassTable(
            names=tuple(self.names[i] for i in ids),
            seen=np.asarray(seen, dtype=bool),
            semantics=self.semantics[ids],
            semantics_kind=self.semantics_kind,
        )


@dataclass(frozen=True)
class Split:
    """An immutable, typed index set into a dataset, with a hash of its indices and their data."""

    name: SplitName
    indices: np.ndarray
    hash: str

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class TrainSet:
    """What a method sees when it is fitted: training embeddings, their labels, the class table.

    Built by protocols from the ``train`` split only; arrays are private copies, so no view
    reaches the rest of the dataset (in particular, no test labels).
    """

    features: np.ndarray
    labels: np.ndarray
    classes: ClassTable

    @property
    def n_classes(self) -> int:
        return self.classes.n_classes


@dataclass(frozen=True)
class ZSLDataset:
    """Embeddings + labels + class table + typed splits for (generalized) zero-shot learning.

    Parameters
    ----------
    name:
        Human-readable dataset name (e.g. ``"CUB"``, ``"mnist-zsl"``).
    features:
        ``(n, d)`` embeddings; stored as read-only float32.
    labels:
        ``(n,)`` integer class ids into ``classes``.
    classes:
        The :class:`ClassTable`; ``classes.seen`` marks the training classes.
    split_indices:
        Mapping from ``"train"``, ``"test_seen"``, ``"test_unseen"`` to 0-based sample indices.
    val_classes:
        Seen class ids the dataset's authors designated as pseudo-unseen for validation (xlsa17's
        ``val_loc`` classes), or ``None`` to let the protocol draw them with a seed.
    source:
        The data spec or path the dataset came from (recorded in run records).
    """

    name: str
    features: np.ndarray
    labels: np.ndarray
    classes: ClassTable
    split_indices: Mapping[str, np.ndarray]
    val_classes: np.ndarray | None = None
    source: str = ""
    splits: Mapping[SplitName, Split] = field(init=False)
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        X = np.asarray(self.features)
        y = np.asarray(self.labels)
        where = f"dataset '{self.name}'"
        if X.ndim != 2:
            raise DataError(f"{where}: features must be a 2-D (n_samples, dim) array, got {X.shape}.")
        if not np.issubdtype(X.dtype, np.number):
            raise DataError(f"{where}: features must be numeric, got dtype {X.dtype}.")
        X = X.astype(np.float32, copy=False)
        finite = np.isfinite(X)
        if not finite.all():
            rows = np.flatnonzero(~finite.all(axis=1))
            raise DataError(
                f"{where}: features contain NaN/Inf in {len(rows)} row(s) (first rows, 0-based: "
                f"{rows[:5].tolist()}). Re-extract those samples or drop them before loading."
            )
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{where}: labels must be a 1-D integer vector, got shape {y.shape} dtype {y.dtype}."
            )
        if len(y) != len(X):
            raise DataError(
                f"{where}: {len(X)} feature rows but {len(y)} labels; each sample needs exactly one "
                "label. Check that features and labels come from the same file/order."
            )
        n_cls = self.classes.n_classes
        if len(y) and (y.min() < 0 or y.max() >= n_cls):
            raise DataError(
                f"{where}: labels must be class indices in [0, {n_cls}), found range "
                f"[{y.min()}, {y.max()}]. If your labels are 1-based (MATLAB), subtract 1."
            )
        object.__setattr__(self, "features", _readonly(X))
        object.__setattr__(self, "labels", _readonly(y.astype(np.int64)))
        splits = self._validated_splits()
        object.__setattr__(self, "splits", splits)
        if self.val_classes is not None:
            vc = np.unique(np.asarray(self.val_classes, dtype=np.int64))
            if not np.all(self.classes.seen[vc]):
                raise SplitError(f"{where}: validation classes must be seen classes; got {vc}.")
            if len(vc) == 0 or len(vc) == len(self.classes.seen_ids):
                raise SplitError(
                    f"{where}: validation classes must be a non-empty proper subset of the seen "
                    f"classes, got {len(vc)} of {len(self.classes.seen_ids)}."
                )
            object.__setattr__(self, "val_classes", _readonly(vc))
        object.__setattr__(
            self,
            "hash",
            hash_arrays(
                self.features,
                self.labels,
                *(s.indices for s in splits.values()),
                extra=self.classes.hash,
            ),
        )

    def _validated_splits(self) -> dict[SplitName, Split]:
        where = f"dataset '{self.name}'"
        given = dict(self.split_indices)
        missing = [s.value for s in SplitName if s.value not in given]
        unknown = sorted(set(given) - {s.value for s in SplitName})
        if missing or unknown:
            raise SplitError(
                f"{where}: splits must be exactly {[s.value for s in SplitName]}; missing "
                f"{missing}, unknown {unknown}."
            )
        n = len(self.labels)
        splits: dict[SplitName, Split] = {}
        for name in SplitName:
            idx = np.asarray(given[name.value])
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise SplitError(
                    f"{where}: split '{name}' must be a 1-D integer index vector, got shape "
                    f"{idx.shape} dtype {idx.dtype}."
                )
            if len(idx) == 0:
                raise SplitError(
                    f"{where}: split '{name}' is empty; GZSL needs training samples, seen test "
                    "samples and unseen test samples."
                )
            if idx.min() < 0 or idx.max() >= n:
                raise SplitError(
                    f"{where}: split '{name}' has indices outside [0, {n}) (range "
                    f"[{idx.min()}, {idx.max()}]). If the indices are 1-based (MATLAB), subtract 1."
                )
            if len(np.unique(idx)) != len(idx):
                raise SplitError(f"{where}: split '{name}' lists some samples more than once.")
            idx = idx.astype(np.int64)
            splits[name] = Split(
                name=name,
                indices=_readonly(idx),
                hash=hash_arrays(idx, self.features[idx], self.labels[idx]),
            )
        overlap = first_overlap({name.value: sp.indices for name, sp in splits.items()})
        if overlap:
            a, b, common = overlap
            raise SplitError(
                f"{where}: splits '{a}' and '{b}' overlap in {len(common)} sample(s) "
                f"(e.g. {common[:5].tolist()}); a sample may be in one split only."
            )
        seen = self.classes.seen
        for name, want_seen in (
            (SplitName.TRAIN, True),
            (SplitName.TEST_SEEN, True),
            (SplitName.TEST_UNSEEN, False),
        ):
            cls = np.unique(self.labels[splits[name].indices])
            wrong = cls[seen[cls] != want_seen]
            if len(wrong):
                role = "unseen" if want_seen else "seen"
                raise SplitError(
                    f"{where}: split '{name}' contains samples of {role} classes "
                    f"{[self.classes.names[c] for c in wrong[:5]]}; the class table's seen/unseen "
                    "roles and the splits disagree."
                )
        if not (~seen).any():
            raise SplitError(f"{where}: the unseen class set is empty; mark unseen classes.")
        return splits

    # -- views -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.features.shape[1]

    def indices(self, split: SplitName | str) -> np.ndarray:
        return self.splits[SplitName(split)].indices

    def split_features(self, split: SplitName | str) -> np.ndarray:
        """A private copy of the embeddings of ``split`` (no labels)."""
        return np.take(self.features, self.indices(split), axis=0)

    def split_labels(self, split: SplitName | str) -> np.ndarray:
        """A private copy of the labels of ``split``; protocols call this, methods never do."""
        return np.take(self.labels, self.indices(split))

    def train_set(self) -> TrainSet:
        """The fitting view a method receives: training samples only, private copies."""
        return TrainSet(
            features=self.split_features(SplitName.TRAIN),
            labels=self.split_labels(SplitName.TRAIN),
            classes=self.classes,
        )

    def validation_task(
        self, seed: int, pseudo_unseen_fraction: float = 0.2, seen_holdout_fraction: float = 0.2
    ) -> ZSLDataset:
        """A GZSL task built from the ``train`` split alone, for hyperparameter selection.

        Pseudo-unseen classes are ``val_classes`` when the dataset provides them, otherwise a
        seeded draw of ``pseudo_unseen_fraction`` of the seen classes. Samples of the remaining
        (pseudo-seen) classes are divided per class into a training part and a held-out seen part
        (``seen_holdout_fraction``, seeded). Real unseen classes and all test samples are absent,
        and class ids are renumbered into a smaller class table (see :func:`validation_parts`).
        """
        parts = validation_parts(
            self.labels,
            self.indices(SplitName.TRAIN),
            self.classes,
            self.val_classes,
            seed,
            pseudo_unseen_fraction,
            seen_holdout_fraction,
            where=f"dataset '{self.name}'",
        )
        return parts.task(self, f"{self.name}/val(seed={seed})")

    def with_source(self, source: str) -> ZSLDataset:
        """The same dataset recorded as coming from ``source`` (a data spec wrapping this one's)."""
        return dataclasses.replace(self, source=source)

    def summary(self) -> dict:
        """Sizes, roles and hashes, as printed by ``unseen data info``."""
        return {
            "name": self.name,
            "source": self.source,
            "hash": self.hash,
            "n_samples": int(len(self.labels)),
            "dim": int(self.dim),
            "n_classes": int(self.classes.n_classes),
            "n_seen": int(self.classes.seen.sum()),
            "n_unseen": int((~self.classes.seen).sum()),
            "semantics_kind": self.classes.semantics_kind,
            "semantics_dim": int(self.classes.semantics.shape[1]),
            "val_classes": "dataset" if self.val_classes is not None else "seeded hold-out",
            "splits": {s.value: {"n": len(sp), "hash": sp.hash} for s, sp in self.splits.items()},
        }


@dataclass(frozen=True)
class ValidationParts:
    """A validation task as sample indices into a dataset: which classes play pseudo-seen and
    pseudo-unseen, and the rows of its ``train``, ``test_seen`` and ``test_unseen`` parts."""

    pseudo_seen: np.ndarray
    pseudo_unseen: np.ndarray
    parts: Mapping[str, np.ndarray]

    @property
    def class_ids(self) -> np.ndarray:
        """The task's classes in their new order: pseudo-seen first, then pseudo-unseen."""
        return np.concatenate([self.pseudo_seen, self.pseudo_unseen])

    def classes(self, table: ClassTable) -> ClassTable:
        """``table`` restricted to the task's classes, renumbered, with the task's roles."""
        seen = np.zeros(len(self.class_ids), dtype=bool)
        seen[: len(self.pseudo_seen)] = True
        return table.subset(self.class_ids, seen)

    def relabel(self, labels: np.ndarray) -> np.ndarray:
        """Global class ids of the task's samples as the task's class ids."""
        remap = np.full(int(max(self.class_ids.max(), labels.max())) + 1, -1, dtype=np.int64)
        remap[self.class_ids] = np.arange(len(self.class_ids))
        return remap[labels]

    def task(self, dataset: ZSLDataset, name: str, features: np.ndarray | None = None) -> ZSLDataset:
        """The validation :class:`ZSLDataset` over ``dataset``'s rows (or ``features``, one row per
        sample of ``dataset``, e.g. embeddings of them)."""
        rows = np.concatenate(list(self.parts.values()))
        local, start = {}, 0
        for key, idx in self.parts.items():
            local[key] = np.arange(start, start + len(idx))
            start += len(idx)
        source = dataset.features if features is None else features
        return ZSLDataset(
            name=name,
            features=source[rows],
            labels=self.relabel(dataset.labels[rows]),
            classes=self.classes(dataset.classes),
            split_indices=local,
            val_classes=None,
            source=dataset.source,
        )


def validation_parts(
    labels: np.ndarray,
    train_idx: np.ndarray,
    classes: ClassTable,
    val_classes: np.ndarray | None,
    seed: int,
    pseudo_unseen_fraction: float = 0.2,
    seen_holdout_fraction: float = 0.2,
    where: str = "dataset",
) -> ValidationParts:
    """The rule of :meth:`ZSLDataset.validation_task` on indices: from the training rows
    ``train_idx`` (samples of seen classes), pseudo-unseen classes (``val_classes`` or a seeded
    share of the seen classes) and, per pseudo-seen class, a seeded held-out seen part."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A1]))
    seen_ids = classes.seen_ids
    if val_classes is not None:
        pseudo_unseen = np.asarray(val_classes)
    else:
        k = int(round(pseudo_unseen_fraction * len(seen_ids)))
        k = min(max(k, 1), len(seen_ids) - 2)
        if k < 1:
            raise SplitError(
                f"{where}: {len(seen_ids)} seen class(es) are too few to hold "
                "out pseudo-unseen classes for validation (need at least 3)."
            )
        pseudo_unseen = np.sort(rng.choice(seen_ids, size=k, replace=False))
    pseudo_seen = np.setdiff1d(seen_ids, pseudo_unseen)
    train_y = labels[train_idx]
    fit_idx, seen_test_idx = [], []
    for c in pseudo_seen:
        members = train_idx[train_y == c]
        members = members[rng.permutation(len(members))]
        n_hold = int(round(seen_holdout_fraction * len(members)))
        if len(members) >= 2:
            n_hold = min(max(n_hold, 1), len(members) - 1)
        else:
            n_hold = 0
        seen_test_idx.append(members[:n_hold])
        fit_idx.append(members[n_hold:])
    unseen_idx = train_idx[np.isin(train_y, pseudo_unseen)]
    return ValidationParts(
        pseudo_seen=pseudo_seen,
        pseudo_unseen=np.asarray(pseudo_unseen, dtype=np.int64),
        parts={
            "train": np.sort(np.concatenate(fit_idx)),
            "test_seen": np.sort(np.concatenate(seen_test_idx)),
            "test_unseen": np.sort(unseen_idx),
        },
    )
