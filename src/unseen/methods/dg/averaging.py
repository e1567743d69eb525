"""Weight-averaging trainer callbacks: EMA and SWA (uniform average of every iterate).

Interface: ``on_step(algorithm, step)`` after each update, ``final_network()`` the averaged
network. BatchNorm running statistics are averaged like any buffer; networks with BatchNorm
should have them recomputed before evaluation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from unseen.core.registry import HParam, Registry, resolve_hparams
from unseen.methods.dg.swad import SWAD


class EMA:
    """Exponential moving average of ``algorithm.network`` weights (Polyak averaging)."""

    name: ClassVar[str] = "ema"
    paper: ClassVar[str] = (
        "Polyak & Juditsky, Acceleration of Stochastic Approximation by Averaging (SIAM J. Control "
        "Optim. 1992)"
    )
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("ema_decay", 0.999, help="weight of the running average at each step", high=1.0),
    )

    def __init__(self, hparams: Mapping[str, Any] | None = None) -> None:
        self.params = resolve_hparams(self.hparams, hparams, owner=f"wrapper '{self.name}'")
        self._avg: nn.Module | None = None
        self._n = 0

    def _decay(self) -> float:
        """Weight of the running average at this update (the new iterate gets the rest)."""
        return self.params["ema_decay"]

    @torch.no_grad()
    def on_step(self, algorithm: nn.Module, step: int) -> None:
        self._n += 1
        if self._avg is None:
            self._avg = copy.deepcopy(algorithm.network)
            return
        decay = self._decay()
        for a, p in zip(
            self._avg.state_dict().values(), algorithm.network.state_dict().values(), strict=True
        ):
            if a.dtype.is_floating_point:
                a.mul_(decay).add_(p, alpha=1 - decay)
            else:
                a.copy_(p)

    def final_network(self) -> nn.Module:
        if self._avg is None:
            raise RuntimeError(f"{type(self).__name__}.final_network() called before any on_step().")
        return self._avg


class SWA(EMA):
    """Stochastic weight averaging (Izmailov et al., UAI 2018): uniform mean of every iterate seen,
    i.e. an average whose decay after ``n`` iterates is ``1 - 1/n``."""

    name: ClassVar[str] = "swa"
    paper: ClassVar[str] = (
        "Izmailov et al., Averaging Weights Leads to Wider Optima and Better Generalization (UAI 2018)"
    )
    hparams: ClassVar[tuple[HParam, ...]] = ()

    def _decay(self) -> float:
        return 1.0 - 1.0 / self._n


WRAPPERS: Registry[type] = Registry.of("wrapper", {"ema": EMA, "swa": SWA, "swad": SWAD})
"""Averaging callbacks by name, each built from ``hparams`` (its declared ones, taken from the run).
SWAD also needs ``on_checkpoint`` with the validation loss; SAM and FAD change the update, not the
weights kept: see :mod:`unseen.methods.dg.optimizers`."""
