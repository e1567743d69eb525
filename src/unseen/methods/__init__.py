"""Method families and their registries. Importing this package registers every method."""

from unseen.methods import gzsl  # noqa: F401  (registers the GZSL methods)
from unseen.methods.base import GZSLMethod
from unseen.methods.registry import FAMILIES, GZSL, HParam, Registry

__all__ = ["FAMILIES", "GZSL", "GZSLMethod", "HParam", "Registry"]
