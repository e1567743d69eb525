"""SHOT-IM: information maximization on the featurizer at test time."""

from __future__ import annotations

import torch

from unseen.core.registry import HParam
from unseen.methods.registry import TTA
from unseen.methods.tta.base import TTAMethod, softmax_entropy


def information_maximization_loss(logits: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mean per-sample entropy minus the entropy of the mean prediction (SHOT's L_ent + L_div)."""
    mean_p = logits.softmax(dim=1).mean(dim=0)
    return softmax_entropy(logits).mean() + (mean_p * torch.log(mean_p + eps)).sum()


@TTA.register("shot-im")
class SHOTIM(TTAMethod):
    """Adapt the featurizer, with the classifier frozen, by information maximization.

    Liang et al., *Do We Really Need to Access the Source Data? Source Hypothesis Transfer for
    Unsupervised Domain Adaptation* (ICML 2020): confident (low entropy) and diverse (high entropy
    of the batch-mean prediction) outputs; the online, test-time form evaluated by Iwasawa & Matsuo
    (T3A) and Zhang et al. (AdaNPC). One Adam step per batch; the logits returned are those of the
    forward pass that computed the update, as in Tent.
    """

    paper = "Liang et al., Do We Really Need to Access the Source Data? (ICML 2020), IM objective"
    hparams = (
        HParam("lr", 1e-4, grid=(1e-5, 1e-4, 1e-3), help="Adam learning rate of the featurizer"),
        HParam("steps", 1, help="updates per test batch", low=0),
    )

    def _setup(self) -> None:
        self.classifier.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.featurizer.parameters(), lr=self.params["lr"])

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.params["steps"]):
            logits = self.classifier(self.featurizer(x))
            loss = information_maximization_loss(logits)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return logits.detach()
