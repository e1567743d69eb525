"""Zero-shot CLIP: an image's score for a class is its cosine similarity to the class text embedding.

The zero-shot head is also the text half of most adapters (Tip-Adapter, GDA, WiSE-FT,
CLIP-Adapter), so the normalisation and the logit scale they share live here.
"""

from __future__ import annotations

import numpy as np

from unseen.core.arrays import unit_rows
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod

LOGIT_SCALE = 100.0
"""CLIP's learned temperature after pre-training (``exp(4.6052)``), fixed by every adapter here."""


def zero_shot_logits(X_unit: np.ndarray, text_unit: np.ndarray) -> np.ndarray:
    """``100 x . t_c`` for unit-norm image rows ``X_unit`` and class text rows ``text_unit``."""
    return LOGIT_SCALE * (X_unit @ text_unit.T)


@VLM.register("zero-shot")
class ZeroShot(VLMMethod):
    """Zero-shot CLIP classification by the class text embeddings.

    A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
    ICML 2021. Scores are ``100 cos(x, t_c)`` with ``t_c`` the class text embedding (a
    prompt-ensemble mean in the datasets of this project). The support set is not used.
    """

    paper = "Radford et al. Learning Transferable Visual Models From Natural Language Supervision. ICML 2021."
    needs_text = True

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        self._text = unit_rows(support.class_text)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return zero_shot_logits(unit_rows(X), self._text)
