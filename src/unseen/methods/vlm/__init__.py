"""Vision-language adaptation on cached embeddings; importing a module registers its method in ``VLM``."""

from unseen.methods.vlm import clip_adapter, gda, linear_probe, lp_plus_plus, tip_adapter, zero_shot
from unseen.methods.vlm.base import FewShotSet, VLMMethod

__all__ = [
    "FewShotSet",
    "VLMMethod",
    "clip_adapter",
    "gda",
    "linear_probe",
    "lp_plus_plus",
    "tip_adapter",
    "zero_shot",
]
