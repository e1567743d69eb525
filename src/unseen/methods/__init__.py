"""Method families and their registries. Importing this package registers every method."""

from unseen.methods import dg, gzsl, tta, vlm  # noqa: F401  (importing a family registers its methods)
from unseen.methods.base import GZSLMethod
from unseen.methods.registry import DG, FAMILIES, GZSL, TTA, VLM, HParam, Registry

__all__ = ["DG", "FAMILIES", "GZSL", "GZSLMethod", "HParam", "Registry", "TTA", "VLM"]
