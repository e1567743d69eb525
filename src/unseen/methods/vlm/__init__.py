"""Vision-language adaptation on cached embeddings. Each module registers its methods in ``VLM``; the
registry imports every module of this package at its first lookup."""

from unseen.methods.vlm.base import FewShotSet, VLMMethod

__all__ = ["FewShotSet", "VLMMethod"]
