"""The contract of test-time adaptation: a resettable, online wrapper around a trained classifier.

A trained model is split into a ``featurizer`` (inputs -> features) and a linear ``classifier``
(features -> logits), the split DomainBed's algorithms expose. A :class:`TTAMethod` copies both,
so the model it was given is never modified, and then processes a stream batch by batch:
:meth:`TTAMethod.predict` adapts on the batch it is given (no labels) and returns logits for it.
:meth:`TTAMethod.reset` restores the exact state the method started from (weights, optimizer,
memory), which is what a stream over independent domains calls between domains.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn

from unseen.core.device import resolve_device
from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam, resolve_hparams


class TTAMethod:
    """Online test-time adaptation of ``classifier(featurizer(x))``.

    Subclasses declare ``hparams`` and ``paper`` and implement :meth:`_setup` (build adapted
    copies, optimizers and memories from ``self.featurizer`` / ``self.classifier``) and
    :meth:`_predict` (adapt on one unlabeled batch, return its logits).
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: ClassVar[tuple[HParam, ...]] = ()

    def __init__(
        self,
        featurizer: nn.Module,
        classifier: nn.Module,
        seed: int = 0,
        device: str | None = None,
        **hparams: Any,
    ) -> None:
        if not isinstance(classifier, nn.Linear):
            raise HyperparameterError(
                f"TTA method '{self.name}' needs a linear classifier head (torch.nn.Linear), got "
                f"{type(classifier).__name__}; split the model into featurizer + linear head."
            )
        self.params = resolve_hparams(self.hparams, hparams, owner=f"TTA method '{self.name}'")
        self.seed = int(seed)
        self.device = resolve_device(device)
        self._source = (copy.deepcopy(featurizer).cpu(), copy.deepcopy(classifier).cpu())
        self.reset()

    def reset(self) -> None:
        """Back to the state right after construction: source weights, fresh optimizer, memory."""
        self.featurizer = copy.deepcopy(self._source[0]).to(self.device)
        self.classifier = copy.deepcopy(self._source[1]).to(self.device)
        self.featurizer.eval()
        self.classifier.eval()
        self._setup()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Adapt on the unlabeled batch ``x`` and return its logits, shape ``(len(x), n_classes)``."""
        return self._predict(x.to(self.device))

    def _setup(self) -> None:
        """Prepare adaptation state; the default adapts nothing."""

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of ``softmax(logits)`` per row (nats)."""
    log_p = logits.log_softmax(dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)
