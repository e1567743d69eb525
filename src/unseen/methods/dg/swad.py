"""SWAD: dense stochastic weight averaging over a loss valley (Cha et al., NeurIPS 2021).

Every training iterate inside a window ``[start, end]`` of checkpoints is averaged uniformly.
The window comes from the validation loss of the training domains' held-out parts at each
checkpoint (never test-domain data), by the rule of the paper's Algorithm 1 ("LossValley" in the
official code, defaults ``n_converge = 3``, ``n_tolerance = 6``, ``tolerance_ratio = 0.3``):

- start: the first checkpoint ``s`` that is the minimum of the ``n_converge`` losses from ``s``
  on (the loss stopped improving); the threshold is ``(1 + tolerance_ratio)`` times their mean;
- end: checkpoints from ``s`` on are kept while the minimum of the ``n_tolerance`` losses from
  each one on (fewer at the end of training) stays at or below the threshold; the first
  checkpoint that fails ends the valley (it and everything after are excluded).

Checkpoint ``k`` stands for the iterates since checkpoint ``k - 1`` (the official code's
segments). Every iterate in the window has the same weight (the official code weights segments
equally and, with its default windows, adds the convergence segment twice). Before the valley is
found the model is the average of the last segment (as the official code falls back to).
BatchNorm statistics are averaged like any buffer; the small-image and MLP featurizers have none.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from unseen.core.registry import HParam, resolve_hparams


def loss_valley_start(
    losses: Sequence[float], n_converge: int, tolerance_ratio: float
) -> tuple[int, float] | None:
    """``(start, threshold)`` from the checkpoint losses seen so far, or ``None`` before convergence."""
    for first in range(len(losses) - n_converge + 1):
        window = losses[first : first + n_converge]
        if int(np.argmin(window)) == 0:
            return first, (1.0 + tolerance_ratio) * float(np.mean(window))
    return None


def in_valley(losses: Sequence[float], k: int, n_tolerance: int, threshold: float) -> bool:
    """Whether checkpoint ``k`` stays in the valley: the minimum loss over ``k .. k + n_tolerance - 1``
    (as many as exist) is at most ``threshold``."""
    return min(losses[k : k + n_tolerance]) <= threshold


def loss_valley(
    losses: Sequence[float], n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3
) -> tuple[int, int] | None:
    """The averaging window ``(start, end)`` (checkpoint indices, inclusive) over a finished loss
    sequence, or ``None`` when the loss never stopped improving for ``n_converge`` checkpoints."""
    found = loss_valley_start(losses, n_converge, tolerance_ratio)
    if found is None:
        return None
    start, threshold = found
    end = start
    while end + 1 < len(losses) and in_valley(losses, end + 1, n_tolerance, threshold):
        end += 1
    return start, end


@dataclass
class _Segment:
    """The uniform average of the iterates since the previous checkpoint."""

    index: int
    state: dict[str, torch.Tensor]
    count: int


def _fold(avg: dict[str, torch.Tensor] | None, n: int, state: dict[str, torch.Tensor], m: int):
    """The mean of ``n`` iterates averaging to ``avg`` and ``m`` averaging to ``state``."""
    if avg is None:
        return {k: v.clone() for k, v in state.items()}, m
    out = {}
    for k, v in avg.items():
        out[k] = v + (state[k] - v) * (m / (n + m)) if v.dtype.is_floating_point else state[k].clone()
    return out, n + m


class SWAD:
    """Trainer callback: ``on_step(algorithm, step)`` after every update,
    ``on_checkpoint(algorithm, step, val_loss)`` at every checkpoint with the training domains'
    validation loss of the current weights, ``final_network()`` the averaged network."""

    name: ClassVar[str] = "swad"
    paper: ClassVar[str] = "Cha et al., SWAD: Domain Generalization by Seeking Flat Minima (NeurIPS 2021)"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("swad_n_converge", 3, help="checkpoints whose minimum starts the averaging window"),
        HParam("swad_n_tolerance", 6, help="checkpoints looked ahead before the window ends"),
        HParam("swad_tolerance_ratio", 0.3, help="loss threshold above the start's mean, as a ratio"),
    )

    def __init__(self, hparams: Mapping[str, Any] | None = None) -> None:
        p = resolve_hparams(self.hparams, hparams, owner=f"wrapper '{self.name}'")
        self.params = p
        self.n_converge, self.n_tolerance = p["swad_n_converge"], p["swad_n_tolerance"]
        self.tolerance_ratio = p["swad_tolerance_ratio"]
        self.losses: list[float] = []
        self.start: int | None = None
        self.end: int | None = None
        self.threshold: float | None = None
        self.finished = False
        self._template: nn.Module | None = None
        self._segment: dict[str, torch.Tensor] | None = None
        self._segment_count = 0
        self._last: _Segment | None = None
        self._pending: deque[_Segment] = deque()
        self._avg: dict[str, torch.Tensor] | None = None
        self._avg_count = 0

    @torch.no_grad()
    def on_step(self, algorithm: nn.Module, step: int) -> None:
        if self.finished:
            return
        if self._template is None:
            self._template = copy.deepcopy(algorithm.network)
        state = {k: v.detach() for k, v in algorithm.network.state_dict().items()}
        self._segment, self._segment_count = _fold(self._segment, self._segment_count, state, 1)

    def on_checkpoint(self, algorithm: nn.Module, step: int, val_loss: float) -> None:
        if self.finished or self._segment is None:
            return
        segment = _Segment(len(self.losses), self._segment, self._segment_count)
        self.losses.append(float(val_loss))
        self._segment, self._segment_count, self._last = None, 0, segment
        self._pending.append(segment)
        if self.start is None:
            found = loss_valley_start(self.losses, self.n_converge, self.tolerance_ratio)
            if found is None:
                while len(self._pending) >= self.n_converge:  # can no longer start a window
                    self._pending.popleft()
                return
            self.start, self.threshold = found
            while self._pending[0].index < self.start:
                self._pending.popleft()
        # fold the segments whose look-ahead of n_tolerance losses is complete
        while self._pending and self._pending[0].index + self.n_tolerance <= len(self.losses):
            head = self._pending.popleft()
            if not in_valley(self.losses, head.index, self.n_tolerance, self.threshold):
                self.finished = True
                self._pending.clear()
                return
            self._avg, self._avg_count = _fold(self._avg, self._avg_count, head.state, head.count)
            self.end = head.index

    def final_network(self) -> nn.Module:
        """The SWAD network so far: the window's average, with the segments still waiting for
        their look-ahead decided on the losses seen until now (no state changes)."""
        if self._last is None:
            raise RuntimeError("SWAD.final_network() called before any on_checkpoint().")
        network = copy.deepcopy(self._template)
        if self.start is None:
            network.load_state_dict(self._last.state)
            return network
        avg, count = self._avg, self._avg_count
        for segment in self._pending if not self.finished else ():
            if not in_valley(self.losses, segment.index, self.n_tolerance, self.threshold):
                break
            avg, count = _fold(avg, count, segment.state, segment.count)
        network.load_state_dict(avg)
        return network
