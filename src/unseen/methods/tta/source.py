"""The unadapted source model: the baseline every TTA gain is measured against."""

from __future__ import annotations

import torch

from unseen.methods.registry import TTA
from unseen.methods.tta.base import TTAMethod


@TTA.register("source")
class Source(TTAMethod):
    """No adaptation: the trained model in evaluation mode (source BatchNorm statistics)."""

    paper = "no adaptation (baseline)"

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))
