"""End-to-end methods for unseen classes in unseen domains (protocol ``gzsl-dg-v1``): one network
trained on the seen classes of the training domains that scores every class, seen or unseen, by
its compatibility with the class semantics. Importing this package loads no method and no torch;
:func:`joint_method` imports the one asked for."""

from __future__ import annotations

from typing import Any

JOINT_METHODS: tuple[str, ...] = ("cumix",)
"""Names of the end-to-end methods, each a whole ``gzsl-dg`` method on its own (no ``+``)."""


def joint_method(name: str) -> Any:
    """The class of the end-to-end method ``name`` (one of :data:`JOINT_METHODS`)."""
    if name == "cumix":
        from unseen.methods.joint.cumix import CuMix

        return CuMix
    raise KeyError(name)
