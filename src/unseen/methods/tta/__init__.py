"""Test-time adaptation methods; importing a module registers its method in ``TTA``."""

from unseen.methods.tta import entropy, memory, norm, source  # noqa: F401
from unseen.methods.tta.base import TTAMethod

__all__ = ["TTAMethod"]
