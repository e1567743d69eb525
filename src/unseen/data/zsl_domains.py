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
  digits; small enough for tests).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from unseen.core.errors import DataError, SplitError, UnknownNameError
from unseen.data.domains import DomainDataset, require_every_class
from unseen.data.hashing import hash_arrays
from unseen.data.model import ClassTable
from unseen.data.specs import DataSpec, SchemeRegistry


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
    "zero-shot multi-domain", "unseen.data.zsl_domains"
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
