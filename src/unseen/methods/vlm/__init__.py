"""Vision-language adaptation on cached embeddings; importing a module registers its method in ``VLM``."""

from unseen.methods.vlm.base import FewShotSet, VLMMethod

__all__ = ["FewShotSet", "VLMMethod"]
