"""Multi-domain data for domain generalization: inputs, labels, a domain per sample.

A :class:`DomainDataset` holds every sample of every domain (features ``(n, d)`` or images
``(n, C, H, W)``, float32), integer labels into one class list and integer domain ids into one
domain list. Data specs name them like GZSL data, through a registry of their own
(:func:`load_domains`):

- ``builtin:rotated-mnist``, ``builtin:colored-mnist``, ``builtin:rotated-digits``,
  ``builtin:colored-digits`` (:mod:`unseen.data.digit_domains`)
- ``mat-domains:DIR`` - one MATLAB file per domain, Office-Caltech10 style
- ``npz-domains:FILE`` - ``features, labels, domains, class_names, domain_names`` (what
  ``unseen extract`` writes)
- ``folder:DIR`` (DomainBed's ``root/domain/class/image``) and ``manifest:FILE`` (CSV
  ``path,domain,class``), decoded once at the backbone's input size
  (:mod:`unseen.data.image_domains`)

Contents depend on the files (or, for built-ins, on the dataset and the protocol version) only,
never on an algorithm or a seed. Each domain's in/out division is drawn from the trial seed by
:meth:`DomainDataset.in_out_split`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.core.arrays import unit_rows, whole_numbers
from unseen.core.errors import DataFileNotFound, DataFormatError, SplitError, UnknownNameError
from unseen.data.hashing import hash_arrays
from unseen.data.matfile import read_mat
from unseen.data.specs import DataSpec, SchemeRegistry


@dataclass(frozen=True, eq=False)
class DomainDataset:
    """Samples from several domains sharing one label space."""

    name: str
    inputs: np.ndarray
    labels: np.ndarray
    domains: np.ndarray
    class_names: tuple[str, ...]
    domain_names: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        where = f"dataset '{self.name}'"
        inputs = np.ascontiguousarray(self.inputs, dtype=np.float32)
        labels = np.asarray(self.labels)
        domains = np.asarray(self.domains)
        n = len(inputs)
        if labels.shape != (n,) or domains.shape != (n,):
            raise DataFormatError(
                f"{where}: {n} inputs need {n} labels and {n} domain ids; got shapes "
                f"{labels.shape} and {domains.shape}."
            )
        for field, values, size in (
            ("label", labels, len(self.class_names)),
            ("domain", domains, len(self.domain_names)),
        ):
            if not np.issubdtype(values.dtype, np.integer) or (
                n and (values.min() < 0 or values.max() >= size)
            ):
                raise DataFormatError(f"{where}: {field} ids must be integers in 0..{size - 1}.")
        if not np.isfinite(inputs).all():
            raise DataFormatError(f"{where}: inputs contain NaN or Inf; clean the features first.")
        empty = [d for k, d in enumerate(self.domain_names) if not (domains == k).any()]
        if empty:
            raise DataFormatError(f"{where}: domain(s) {empty} have no samples.")
        for name, arr in (
            ("inputs", inputs),
            ("labels", labels.astype(np.int64)),
            ("domains", domains.astype(np.int64)),
        ):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_domains(self) -> int:
        return len(self.domain_names)

    @functools.cached_property
    def hash(self) -> str:
        """Content hash of inputs, labels, domains and the class and domain names."""
        names = "\n".join([*self.class_names, "|", *self.domain_names])
        return hash_arrays(self.inputs, self.labels, self.domains, extra=names)

    def domain_indices(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.domains == k)

    def in_out_split(self, trial_seed: int, holdout: float = 0.2) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per domain, ``(in, out)`` sample indices: a seeded ``holdout`` share goes to ``out``.

        Drawn from ``trial_seed`` and the domain's position only (DomainBed's rule), so every
        algorithm, hyperparameter draw and algorithm seed of a trial sees the same division.
        """
        if not 0.0 < holdout < 1.0:
            raise SplitError(f"holdout fraction must be in (0, 1), got {holdout}.")
        out = []
        for k in range(self.n_domains):
            idx = self.domain_indices(k)
            perm = np.random.default_rng([int(trial_seed), k]).permutation(len(idx))
            n_out = int(round(holdout * len(idx)))
            out.append((np.sort(idx[perm[n_out:]]), np.sort(idx[perm[:n_out]])))
        return out

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "classes": len(self.class_names),
            "domains": {d: int((self.domains == k).sum()) for k, d in enumerate(self.domain_names)},
            "hash": self.hash,
        }


DOMAIN_SCHEMES: SchemeRegistry[DomainDataset] = SchemeRegistry(
    "multi-domain", "unseen.data.digit_domains", "unseen.data.image_domains"
)
register_domain_scheme = DOMAIN_SCHEMES.register
load_domains = DOMAIN_SCHEMES.load


FEATURE_KEYS = (("fts", "labels"), ("feas", "labels"), ("features", "labels"), ("X", "Y"))
NORMALIZATIONS = {
    "none": lambda x: x,
    "l2": unit_rows,
    "l1": lambda x: x / np.maximum(np.abs(x).sum(axis=1, keepdims=True), 1e-12),
}


def _normalization(spec: DataSpec) -> Callable[[np.ndarray], np.ndarray]:
    name = spec.option("normalize", "none")
    if name not in NORMALIZATIONS:
        raise UnknownNameError(
            f"data spec '{spec.text}': normalize must be one of {', '.join(NORMALIZATIONS)}, got '{name}'."
        )
    return NORMALIZATIONS[name]


def require_every_class(dataset: DomainDataset, where: str) -> None:
    """Refuse a dataset (multi-domain, or image files with domains) with a domain that lacks a
    class: every domain needs every class (DomainBed's rule)."""
    for k, domain in enumerate(dataset.domain_names):
        present = set(dataset.labels[dataset.domains == k].tolist())
        missing = [c for i, c in enumerate(dataset.class_names) if i not in present]
        if missing:
            raise DataFormatError(
                f"{where}: domain '{domain}' has no sample of class(es) {missing}; every domain needs "
                "every class (DomainBed's rule): add samples of them to the domain, or leave the "
                "domain out."
            )


@register_domain_scheme(
    "mat-domains",
    help="mat-domains:DIR[?normalize=none|l2|l1] - one .mat per domain (keys fts|feas + labels), "
    "Office-Caltech10 style; domain = file name up to the first '_'",
)
def load_mat_domains(spec: DataSpec) -> DomainDataset:
    spec.check_options({"normalize"})
    normalize = _normalization(spec)
    folder = Path(spec.target)
    if not folder.is_dir():
        raise DataFileNotFound(f"data spec '{spec.text}': folder {folder} does not exist.")
    files = sorted(folder.glob("*.mat"))
    if len(files) < 2:
        raise DataFormatError(
            f"data spec '{spec.text}': {folder} holds {len(files)} .mat file(s); domain "
            "generalization needs one file per domain, at least two."
        )
    features, labels, domains, names = [], [], [], []
    for k, path in enumerate(files):
        content = read_mat(path)
        keys = next((pair for pair in FEATURE_KEYS if all(key in content for key in pair)), None)
        if keys is None:
            raise DataFormatError(
                f"{path}: expected a features matrix and labels under one of "
                f"{[f'{a}+{b}' for a, b in FEATURE_KEYS]}; found keys {sorted(content)}."
            )
        x = np.asarray(content[keys[0]], dtype=np.float64)
        y = whole_numbers(np.asarray(content[keys[1]]).reshape(-1), f"{path}: '{keys[1]}'")
        if x.ndim != 2 or len(x) != len(y):
            raise DataFormatError(f"{path}: '{keys[0]}' must be (n, d) with n = len('{keys[1]}') = {len(y)}.")
        features.append(x)
        labels.append(y)
        domains.append(np.full(len(y), k))
        names.append(path.stem.split("_")[0].lower())
    dims = {f.shape[1] for f in features}
    if len(dims) != 1:
        raise DataFormatError(
            f"data spec '{spec.text}': domains have different feature sizes {sorted(dims)}."
        )
    y = np.concatenate(labels)
    classes = np.unique(y)
    dataset = DomainDataset(
        name=folder.name,
        inputs=normalize(np.vstack(features)).astype(np.float32),
        labels=np.searchsorted(classes, y),
        domains=np.concatenate(domains),
        class_names=tuple(str(c) for c in classes),
        domain_names=tuple(names),
        source=spec.text,
    )
    require_every_class(dataset, f"data spec '{spec.text}'")
    return dataset


@register_domain_scheme(
    "npz-domains",
    help="npz-domains:FILE[?normalize=...] - features, labels, domains, class_names, domain_names "
    "(the format `unseen extract` writes)",
)
def load_npz_domains(spec: DataSpec) -> DomainDataset:
    spec.check_options({"normalize"})
    path = Path(spec.target)
    if not path.is_file():
        raise DataFileNotFound(f"data spec '{spec.text}': file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as z:
            content = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable .npz file ({exc}).") from None
    missing = [
        k for k in ("features", "labels", "domains", "class_names", "domain_names") if k not in content
    ]
    if missing:
        raise DataFormatError(f"{path}: missing array(s) {missing}; found {sorted(content)}.")
    dataset = DomainDataset(
        name=path.stem,
        inputs=_normalization(spec)(content["features"].astype(np.float64)).astype(np.float32),
        labels=whole_numbers(content["labels"], f"{path}: 'labels'"),
        domains=whole_numbers(content["domains"], f"{path}: 'domains'"),
        class_names=tuple(str(c) for c in content["class_names"]),
        domain_names=tuple(str(d) for d in content["domain_names"]),
        source=spec.text,
    )
    require_every_class(dataset, str(path))
    return dataset
