"""Algorithms whose update is one optimizer step on one scalar objective.

Such an algorithm exposes the objective itself, ``objective(minibatches, commit) -> (loss, logs)``,
so that update rules which need the gradient of the same objective at several weights (SAM, FAD in
:mod:`unseen.methods.dg.optimizers`) can drive it without forking it. ``commit=True`` is the one
evaluation per update that advances the algorithm's own state (step counters, moving averages,
optimizer resets); evaluations at perturbed weights pass ``commit=False`` and must leave that
state untouched. Random draws come from ``self.generator`` (and the global torch generator for
dropout), which the update rules rewind so every evaluation of one update sees the same draws.
"""

from __future__ import annotations

import torch

from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs

ObjectiveValue = tuple[torch.Tensor, StepLogs]
"""The objective's scalar loss (with its graph) and the logs ``update`` returns."""


class SingleObjective(Algorithm):
    """An algorithm defined by :meth:`objective`; :meth:`update` takes one step on it."""

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        raise NotImplementedError

    def update(self, minibatches: Minibatches) -> StepLogs:
        loss, logs = self.objective(minibatches)
        self._step(loss)
        return logs
