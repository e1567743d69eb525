"""Domain-generalization algorithms. Each module registers its algorithms in ``DG``; the registry
imports every module of this package at its first lookup."""

from unseen.methods.dg.base import Algorithm

__all__ = ["Algorithm"]
