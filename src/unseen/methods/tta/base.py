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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from unseen.core.device import resolve_device
from unseen.core.errors import HyperparameterError
from unseen.core.method import Method


@dataclass(frozen=True)
class SourceModel:
    """A trained model to adapt, as ``featurizer`` and linear ``classifier``, with its source memory.

    ``memory()`` returns the source (training-domain) features and labels that methods with
    ``needs_source`` start from; it is computed only when such a method asks. ``info`` is the
    model's provenance, which run records carry. ``parts`` are modules the source training left
    for test time beside the network, by name (ITTA's learned loss); ``domain_inputs()``, when
    the source can give them, returns the training inputs of each source domain (one array per
    domain), computed only when a method asks.
    """

    featurizer: nn.Module
    classifier: nn.Module
    memory: Callable[[], tuple[np.ndarray, np.ndarray]]
    info: dict[str, Any] = field(default_factory=dict)
    parts: Mapping[str, nn.Module] = field(default_factory=dict)
    domain_inputs: Callable[[], list[np.ndarray]] | None = None


class TTAMethod(Method):
    """Online test-time adaptation of ``classifier(featurizer(x))``.

    Subclasses declare ``hparams`` and ``paper`` and implement :meth:`_setup` (build adapted
    copies, optimizers and memories from ``self.featurizer`` / ``self.classifier``) and
    :meth:`_predict` (adapt on one unlabeled batch, return its logits). A method that needs the
    source memory sets ``needs_source`` and takes ``source_features`` and ``source_labels``.
    """

    role: ClassVar[str] = "TTA method"
    needs_source: ClassVar[bool] = False

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
        self._set_params(hparams, seed, resolve_device(device))
        self._source = (copy.deepcopy(featurizer).cpu(), copy.deepcopy(classifier).cpu())
        self.reset()

    @classmethod
    def around(
        cls, source: SourceModel, seed: int = 0, device: str | None = None, **hparams: Any
    ) -> TTAMethod:
        """This method wrapped around ``source``, given what it takes from it (:meth:`from_source`)."""
        taken = cls.from_source(source)
        return cls(source.featurizer, source.classifier, seed=seed, device=device, **taken, **hparams)

    @classmethod
    def from_source(cls, source: SourceModel) -> dict[str, Any]:
        """The constructor arguments this method takes from ``source`` beyond its network: the
        source memory (``source_features``, ``source_labels``) when it ``needs_source``."""
        if not cls.needs_source:
            return {}
        features, labels = source.memory()
        return {"source_features": features, "source_labels": labels}

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
