"""The registries of methods, one per family. A registry imports its family's package (whose
modules register every method in it) at its first lookup, so importing this module loads no
method and no torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from unseen.core.registry import Registry

T = TypeVar("T", bound=type)


class MethodRegistry(Registry[type]):
    """Name -> method class; registering a class also gives it its ``name``."""

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        add = super().register(name, help)

        def decorate(cls: T) -> T:
            cls.name = name
            return add(cls)

        return decorate


GZSL = MethodRegistry("gzsl method", "unseen.methods.gzsl", fix="List them with `unseen methods`.")
DG = MethodRegistry("dg method", "unseen.methods.dg", fix="List them with `unseen methods`.")
VLM = MethodRegistry("vlm method", "unseen.methods.vlm", fix="List them with `unseen methods`.")
TTA = MethodRegistry("tta method", "unseen.methods.tta", fix="List them with `unseen methods`.")
KG = MethodRegistry("knowledge-graph method", "unseen.methods.kg", fix="List them with `unseen methods`.")
JOINT = MethodRegistry(
    "end-to-end gzsl-dg method", "unseen.methods.joint", fix="List them with `unseen methods --family joint`."
)
"""Whole ``gzsl-dg`` methods on their own (named without ``FEATURIZER+``): a network trained on the
seen classes of the training domains that scores classes by their semantics."""

FAMILIES: dict[str, MethodRegistry] = {
    "gzsl": GZSL,
    "dg": DG,
    "vlm": VLM,
    "tta": TTA,
    "kg": KG,
    "joint": JOINT,
}
