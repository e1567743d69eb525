"""Test-time adaptation methods. Each module registers its methods in ``TTA``; the registry imports
every module of this package at its first lookup."""

from unseen.methods.tta.base import SourceModel, TTAMethod

__all__ = ["SourceModel", "TTAMethod"]
