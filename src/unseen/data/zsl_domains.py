"""Unseen classes in unseen domains: multi-domain data whose classes carry semantics and roles.

A :class:`ZSLDomainDataset` is a :class:`~unseen.data.domains.DomainDataset` (inputs, labels,
domain ids: what the DG training loop reads) paired with a :class:`~unseen.data.model.ClassTable`
(names, seen/unseen roles, semantics: what every GZSL method reads), plus optional validation
classes. The pair is checked to describe the same classes in the same order; everything else is
already checked by the two parts. No split is stored: which samples train and which test depends
on the held-out domain, so protocol ``gzsl-dg-v1`` (:mod:`unseen.protocols.gzsl_dg`) derives
the splits.

Data specs (:func:`load_zsl_domains`, scheme registry :data:`ZSL_DOMAIN_SCHEMES`):

- ``builtin:rotated-mnist-zsl`` - ``builtin:rotated-mnist``'s six rotated domains with the digit
  attributes, unseen digits and validation digits of ``builtin:mnist-zsl``;
- ``builtin:rotated-digits-zsl`` - the same on ``builtin:rotated-digits`` (scikit-learn's 8x8
  digits; small enough for tests);
- ``zsl-domains:FILE.toml`` - any multi-domain data spec (``npz-domains:``, ``mat-domains:``,
  ``folder:``, ...) plus a CSV of class semantics and the unseen (and validation) class names,
  named in a small TOML file (:func:`load_zsl_domains_file`);
- ``text:SPEC`` - any of them with text embeddings of the class names as class semantics
  (:mod:`unseen.semantics.scheme`, the same loader as for single-domain zero-shot data);
- ``kg:SPEC?classes=FILE`` - any of them with class semantics predicted from the WordNet graph
  (:mod:`unseen.protocols.kg_semantics`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.core.errors import DataError, DataFileNotFound, DataFormatError, SplitError, UnknownNameError
from unseen.data.domains import DOMAIN_SCHEMES, DomainDataset, load_domains, require_every_class
from unseen.data.hashing import hash_arrays
from unseen.data.model import ClassTable
from unseen.data.specs import DataSpec, SchemeRegistry, parse_spec


@dataclass(frozen=True, eq=False)
class ZSLDomainDataset:
    """Samples of several domains (``samples``) and one class table with semantics and roles.

    Parameters
    ----------
    samples:
        The multi-domain samples; ``samples.class_names`` must equal ``classes.names``.
    classes:
        One row per class: name, seen/unseen role, semantics.
    val_classes:
        Seen class ids the dataset designates as pseudo-unseen for validation, or ``None`` to let
        the protocol draw them with a seed.
    """

    samples: DomainDataset
    classes: ClassTable
    val_classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"dataset '{self.samples.name}'"
        if tuple(self.samples.class_names) != tuple(self.classes.names):
            raise DataError(
                f"{where}: the samples' classes {list(self.samples.class_names)[:12]} and the class "
                f"table's {list(self.classes.names)[:12]} differ; give the class table one row per "
                "class of the samples, in the samples' class order."
            )
        if not self.classes.seen.any() or self.classes.seen.all():
            raise SplitError(
                f"{where}: the class table must mark some classes seen and some unseen; it has "
                f"{int(self.classes.seen.sum())} seen of {self.classes.n_classes}."
            )
        require_every_class(self.samples, where)
        if self.val_classes is not None:
            vc = np.unique(np.asarray(self.val_classes, dtype=np.int64))
            n_seen = len(self.classes.seen_ids)
            if not np.isin(vc, self.classes.seen_ids).all() or not 0 < len(vc) <= n_seen - 2:
                raise SplitError(
                    f"{where}: validation classes must be seen classes, at least one, leaving at "
                    f"least two seen; got {vc.tolist()} with seen classes {self.classes.seen_ids.tolist()}."
                )
            vc.setflags(write=False)
            object.__setattr__(self, "val_classes", vc)

    @property
    def name(self) -> str:
        return self.samples.name

    @property
    def source(self) -> str:
        return self.samples.source

    @property
    def n_domains(self) -> int:
        return self.samples.n_domains

    @property
    def domain_names(self) -> tuple[str, ...]:
        return self.samples.domain_names

    @functools.cached_property
    def hash(self) -> str:
        """Content hash of the samples, the class table and the validation classes."""
        val = np.asarray(self.val_classes if self.val_classes is not None else [-1], dtype=np.int64)
        return hash_arrays(val, extra=self.samples.hash + self.classes.hash)

    def with_source(self, source: str) -> ZSLDomainDataset:
        """The same dataset recorded as coming from ``source`` (a data spec wrapping this one's)."""
        return dataclasses.replace(self, samples=dataclasses.replace(self.samples, source=source))

    def summary(self) -> dict:
        return {
            **self.samples.summary(),
            "hash": self.hash,
            "seen": [self.classes.names[c] for c in self.classes.seen_ids],
            "unseen": [self.classes.names[c] for c in self.classes.unseen_ids],
            "semantics_kind": self.classes.semantics_kind,
            "semantics_dim": int(self.classes.semantics.shape[1]),
            "val_classes": "dataset" if self.val_classes is not None else "seeded hold-out",
        }


ZSL_DOMAIN_SCHEMES: SchemeRegistry[ZSLDomainDataset] = SchemeRegistry(
    "zero-shot multi-domain",
    "unseen.data.zsl_domains",
    "unseen.semantics.scheme",  # text: embeds class names; it lives with the encoders' users, above data
    "unseen.protocols.kg_semantics",  # kg: graph-predicted classifier rows
)
load_zsl_domains = ZSL_DOMAIN_SCHEMES.load


def with_digit_attributes(samples: DomainDataset, name: str) -> ZSLDomainDataset:
    """Digit domains (classes ``0`` .. ``9``) with ``mnist-zsl``'s attributes, roles and
    validation digits; classes are renamed ``zero`` .. ``nine`` as in ``mnist-zsl``."""
    from unseen.data.mnist_zsl import (
        DIGIT_NAMES,
        SEMANTICS_KIND,
        UNSEEN_DIGITS,
        VAL_DIGITS,
        attribute_table,
    )

    if tuple(samples.class_names) != tuple(str(d) for d in range(10)):
        raise DataError(f"dataset '{samples.name}': digit attributes need the classes 0..9 in order.")
    seen = np.ones(len(DIGIT_NAMES), dtype=bool)
    seen[list(UNSEEN_DIGITS)] = False
    return ZSLDomainDataset(
        samples=DomainDataset(
            name=name,
            inputs=samples.inputs,
            labels=samples.labels,
            domains=samples.domains,
            class_names=DIGIT_NAMES,
            domain_names=samples.domain_names,
            source=f"builtin:{name}",
        ),
        classes=ClassTable(DIGIT_NAMES, seen, attribute_table(), SEMANTICS_KIND),
        val_classes=np.array(VAL_DIGITS),
    )


BUILTIN_ZSL_DOMAINS = {
    "rotated-mnist-zsl": "rotated-mnist",
    "rotated-digits-zsl": "rotated-digits",
}
"""Built-in name -> the built-in multi-domain digits it puts the digit attributes on."""


@functools.lru_cache(maxsize=2)
def builtin_zsl_domains(name: str) -> ZSLDomainDataset:
    """The built-in dataset ``name`` (cached; it is immutable)."""
    from unseen.data.digit_domains import builtin_domains

    if name not in BUILTIN_ZSL_DOMAINS:
        raise UnknownNameError(
            f"unknown built-in zero-shot multi-domain dataset '{name}'; known: "
            f"{', '.join(BUILTIN_ZSL_DOMAINS)}."
        )
    return with_digit_attributes(builtin_domains(BUILTIN_ZSL_DOMAINS[name]), name)


@ZSL_DOMAIN_SCHEMES.register(
    "builtin",
    help="builtin:NAME - "
    + ", ".join(BUILTIN_ZSL_DOMAINS)
    + " (mnist-zsl's digit attributes and unseen digits 0/3/7 on the rotated domains)",
)
def load_builtin_zsl_domains(spec: DataSpec) -> ZSLDomainDataset:
    spec.check_options(set())
    try:
        return builtin_zsl_domains(spec.target)
    except UnknownNameError as exc:
        raise UnknownNameError(f"data spec '{spec.text}': {exc}") from None


DESCRIPTOR_KEYS = {"data", "semantics", "semantics_kind", "unseen", "validation"}
NO_SEMANTICS = "none"
"""The semantics kind of a descriptor that names no semantics file: its class semantics have no
columns until ``text:`` gives them (``text:zsl-domains:FILE.toml``)."""


@ZSL_DOMAIN_SCHEMES.register(
    "zsl-domains",
    help="zsl-domains:FILE.toml[?data=SPEC] - data = a multi-domain spec (?data= replaces it), "
    "semantics = a CSV (class, then one column per dimension; or none, and text:zsl-domains:FILE "
    "embeds the class names), unseen = [class names], validation = [class names] (optional)",
)
def load_zsl_domains_file(spec: DataSpec) -> ZSLDomainDataset:
    """A multi-domain data spec with class semantics and roles, named in a small TOML file::

    data = "npz-domains:features.npz"    # any multi-domain spec; paths relative to this file
    semantics = "attributes.csv"         # optional: header row, then: class name, value, value, ...
    semantics_kind = "attributes:mine"   # optional; default "attributes:<CSV file name>"
    unseen = ["bike", "mug"]
    validation = ["pen"]                 # optional: seen classes held out for validation

    The option ``data=SPEC`` replaces the file's ``data`` (relative paths read from the working
    folder), so one file of class roles serves the photos and every set of features extracted
    from them. Without ``semantics`` the class table's semantics have no columns (kind
    ``"none"``): load the file as ``text:zsl-domains:FILE.toml`` to embed the class names.
    """
    spec.check_options({"data"})
    path = Path(spec.target)
    where = f"data spec '{spec.text}'"
    if not path.is_file():
        raise DataFileNotFound(f"{where}: file {path} does not exist.")
    try:
        desc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a readable TOML file ({exc}).") from None
    unknown = sorted(set(desc) - DESCRIPTOR_KEYS)
    missing = sorted({"data", "unseen"} - set(desc))
    if unknown or missing:
        raise DataFormatError(
            f"{path}: missing key(s) {missing}, unknown key(s) {unknown}; the keys are "
            f"{sorted(DESCRIPTOR_KEYS)} (data and unseen are required)."
        )
    for key in ("data", "semantics", "semantics_kind"):
        if key in desc and not isinstance(desc[key], str):
            raise DataFormatError(f"{path}: '{key}' must be a string.")
    for key in ("unseen", "validation"):
        if key in desc and not (isinstance(desc[key], list) and all(isinstance(v, str) for v in desc[key])):
            raise DataFormatError(f"{path}: '{key}' must be a list of class names, e.g. {key} = [\"mug\"].")
    samples = load_domains(spec.options.get("data") or _relative_to(desc["data"], path.parent))
    names = samples.class_names
    if "semantics" in desc:
        csv_path = path.parent / desc["semantics"]
        semantics = _read_semantics(csv_path, names)
        kind = desc.get("semantics_kind") or f"attributes:{csv_path.name}"
    else:
        semantics, kind = np.zeros((len(names), 0), dtype=np.float32), NO_SEMANTICS
    index = {name: i for i, name in enumerate(names)}
    for key in ("unseen", "validation"):
        strangers = [c for c in desc.get(key, []) if c not in index]
        if strangers:
            raise DataFormatError(
                f"{path}: {key} names class(es) {strangers} the data lacks; its classes: {list(names)}."
            )
    seen = np.ones(len(names), dtype=bool)
    seen[[index[c] for c in desc["unseen"]]] = False
    validation = desc.get("validation")
    return ZSLDomainDataset(
        samples=samples,
        classes=ClassTable(names, seen, semantics, kind),
        val_classes=None if validation is None else np.array([index[c] for c in validation], dtype=np.int64),
    ).with_source(spec.text)


def _relative_to(text: str, folder: Path) -> str:
    """A data spec whose relative path is read from ``folder`` (the descriptor's) when it is there."""
    inner = parse_spec(text, DOMAIN_SCHEMES)
    target = Path(inner.target)
    if target.is_absolute() or not (folder / target).exists():
        return text
    query = text.split("?", 1)[1] if "?" in text else ""
    return f"{inner.scheme}:{folder / target}" + (f"?{query}" if query else "")


def _read_semantics(path: Path, names: tuple[str, ...]) -> np.ndarray:
    """The rows of a semantics CSV (header, then ``class, v1, v2, ...``) in the order of ``names``."""
    if not path.is_file():
        raise DataFileNotFound(f"semantics file {path} does not exist.")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2 or len(rows[0]) < 2:
        raise DataFormatError(
            f"{path}: expected a header row and one row per class: class, value, value, ..."
        )
    table: dict[str, list[float]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise DataFormatError(f"{path}: line {line} has {len(row)} fields, the header {len(rows[0])}.")
        try:
            table[row[0]] = [float(v) for v in row[1:]]
        except ValueError:
            raise DataFormatError(
                f"{path}: line {line} ({row[0]!r}) holds a value that is not a number."
            ) from None
    absent = [c for c in names if c not in table]
    if absent:
        raise DataFormatError(
            f"{path}: no semantics for class(es) {absent}; add one row per class of the data."
        )
    return np.array([table[c] for c in names], dtype=np.float32)
