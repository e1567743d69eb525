"""Domain-generalization algorithms; importing this package registers them in ``DG``."""

from unseen.methods.dg import algorithms, consistency, gradients, style  # noqa: F401
from unseen.methods.dg.base import Algorithm

__all__ = ["Algorithm"]
