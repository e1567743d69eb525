"""Method families and their registries. A registry imports its family (registering every method
in it) at its first lookup, so importing this package loads no method and no torch."""

from unseen.core.registry import HParam
from unseen.methods.base import GZSLMethod
from unseen.methods.registry import DG, FAMILIES, GZSL, JOINT, KG, TTA, VLM

__all__ = ["DG", "FAMILIES", "GZSL", "JOINT", "KG", "GZSLMethod", "HParam", "TTA", "VLM"]
