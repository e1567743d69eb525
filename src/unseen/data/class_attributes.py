"""Class-attribute matrices named by a data spec, for analyses that need only the class semantics.

:func:`read_class_attributes` returns the attribute matrix of one group of a dataset's classes
(``unseen``, ``seen`` or ``all``) as probabilities ``P(attribute | class)``, without the features.
Schemes with a reader in :data:`CLASS_ATTRIBUTE_READERS` are read directly; any other zero-shot
spec is loaded in full and its class semantics are used as they are (they must then already be
probabilities in ``[0, 1]``, which :func:`unseen.metrics.attribute_bound.check_class_attribute_matrix`
checks).

``xlsa17:DIR`` (Xian et al., TPAMI 2018) reads only ``att_splits.mat`` and the class lists, so it
works on folders without ``res101.mat``. It takes ``original_att`` (the raw per-class attribute
frequencies; ``att`` is L2-normalised and no longer a probability): a matrix whose maximum
exceeds 1 is in percent (AWA1, AWA2, CUB) and is divided by 100, and negative entries (AWA's
``-1``: four attributes of *antelope* were never annotated) become unknown (NaN). The unseen
classes are those of ``testclasses.txt``, the seen ones those of ``trainvalclasses.txt``, the
Proposed Split. FLO has no attributes (its ``att`` is a sentence embedding) and is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.core.errors import DataFileNotFound, DataFormatError, SpecError
from unseen.core.registry import Registry
from unseen.data.matfile import cellstr, read_mat
from unseen.data.specs import DataSpec, load_dataset, parse_spec

__all__ = ["CLASS_GROUPS", "CLASS_ATTRIBUTE_READERS", "ClassAttributes", "read_class_attributes"]

CLASS_GROUPS = ("unseen", "seen", "all")


@dataclass(frozen=True)
class ClassAttributes:
    """``matrix`` ``(k, m)``: row ``c`` is class ``names[c]``'s attribute probabilities (NaN: unknown)."""

    names: tuple[str, ...]
    matrix: np.ndarray
    group: str
    source: str


Reader = Callable[[DataSpec, str], ClassAttributes]
CLASS_ATTRIBUTE_READERS: Registry[Reader] = Registry("class-attribute reader")


def read_class_attributes(spec: str, group: str = "unseen") -> ClassAttributes:
    """The attribute matrix of the ``group`` classes of the dataset ``spec`` names."""
    if group not in CLASS_GROUPS:
        raise SpecError(f"class group '{group}' is unknown. Fix: use one of {', '.join(CLASS_GROUPS)}.")
    parsed = parse_spec(spec)
    reader = CLASS_ATTRIBUTE_READERS.get(parsed.scheme, _from_dataset)
    return reader(parsed, group)


def _from_dataset(spec: DataSpec, group: str) -> ClassAttributes:
    classes = load_dataset(spec.text).classes
    keep = {"unseen": ~classes.seen, "seen": classes.seen, "all": np.ones_like(classes.seen)}[group]
    rows = np.flatnonzero(keep)
    return ClassAttributes(
        names=tuple(classes.names[i] for i in rows),
        matrix=np.asarray(classes.semantics, dtype=np.float64)[rows],
        group=group,
        source=f"{spec.text} ({classes.semantics_kind})",
    )


@CLASS_ATTRIBUTE_READERS.register(
    "xlsa17", help="original_att of att_splits.mat; classes from the class lists"
)
def _from_xlsa17(spec: DataSpec, group: str) -> ClassAttributes:
    spec.check_options(set())
    folder = Path(spec.target)
    path = folder / "att_splits.mat"
    if not path.is_file():
        raise DataFileNotFound(
            f"xlsa17 folder '{folder}': '{path}' does not exist. Fix: name a folder of the xlsa17 release "
            "holding att_splits.mat."
        )
    raw = read_mat(path, ["original_att", "allclasses_names"], required=[], contents="'original_att'")
    if "original_att" not in raw:
        raise DataFormatError(
            f"xlsa17 file '{path}' has no key 'original_att', the per-class attribute frequencies the bound "
            "needs (FLO's release has none: its 'att' is a sentence embedding, not attributes). Fix: use a "
            "dataset with attribute annotations (AWA1, AWA2, CUB, SUN, APY)."
        )
    att = np.asarray(raw["original_att"], dtype=np.float64).T  # (n_classes, m)
    if "allclasses_names" in raw:
        names = cellstr(raw["allclasses_names"], path, "allclasses_names")
    else:
        names = _class_list(folder / "allclasses.txt")
    if len(names) != att.shape[0]:
        raise DataFormatError(
            f"xlsa17 folder '{folder}': {len(names)} class names but 'original_att' has {att.shape[0]} class "
            "columns. Fix: use the class list and att_splits.mat of the same release."
        )
    att = np.where(att < 0, np.nan, att)
    if np.nanmax(att) > 1.0:
        att = att / 100.0
    if group == "all":
        rows = np.arange(len(names))
    else:
        listing = folder / ("testclasses.txt" if group == "unseen" else "trainvalclasses.txt")
        index = {name: i for i, name in enumerate(names)}
        wanted = _class_list(listing)
        unknown = [w for w in wanted if w not in index]
        if unknown:
            raise DataFormatError(
                f"xlsa17 class list '{listing}': {len(unknown)} name(s) are not classes of '{path}' (e.g. "
                f"{unknown[:3]}). Fix: use the class lists of the same release."
            )
        rows = np.array([index[w] for w in wanted])
    return ClassAttributes(
        names=tuple(names[i] for i in rows),
        matrix=att[rows],
        group=group,
        source=f"{spec.text} (original_att)",
    )


def _class_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFileNotFound(
            f"xlsa17 class list '{path}' does not exist. Fix: put the class lists of the release "
            "(allclasses.txt, testclasses.txt, trainvalclasses.txt) into the folder, or use --classes all."
        )
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
