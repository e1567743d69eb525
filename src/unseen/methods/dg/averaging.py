"""Weight-averaging trainer callbacks: EMA and SWA (uniform average of every iterate).

Interface: ``on_step(algorithm, step)`` after each update, ``on_evaluation(algorithm, step, val_loss)``
at each validation, ``final_network()`` the averaged network. BatchNorm running statistics are
averaged like any buffer; networks with BatchNorm should have them recomputed before evaluation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Exponential moving average of ``algorithm.network`` weights (Polyak averaging), decay ``decay``."""

    def __init__(self, decay: float = 0.999) -> None:
        self.decay = decay
        self._avg: nn.Module | None = None

    @torch.no_grad()
    def on_step(self, algorithm: nn.Module, step: int) -> None:
        if self._avg is None:
            self._avg = copy.deepcopy(algorithm.network)
            return
        for a, p in zip(
            self._avg.state_dict().values(), algorithm.network.state_dict().values(), strict=True
        ):
            if a.dtype.is_floating_point:
                a.mul_(self.decay).add_(p, alpha=1 - self.decay)
            else:
                a.copy_(p)

    def on_evaluation(self, algorithm: nn.Module, step: int, val_loss: float) -> None:
        """EMA ignores validation."""

    def final_network(self) -> nn.Module:
        if self._avg is None:
            raise RuntimeError("EMA.final_network() called before any on_step().")
        return self._avg


class SWA(EMA):
    """Stochastic weight averaging (Izmailov et al., UAI 2018): uniform mean of every iterate seen."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0

    @torch.no_grad()
    def on_step(self, algorithm: nn.Module, step: int) -> None:
        self._n += 1
        if self._avg is None:
            self._avg = copy.deepcopy(algorithm.network)
            return
        for a, p in zip(
            self._avg.state_dict().values(), algorithm.network.state_dict().values(), strict=True
        ):
            if a.dtype.is_floating_point:
                a.add_((p - a) / self._n)
            else:
                a.copy_(p)


WRAPPERS: dict[str, type] = {"ema": EMA, "swa": SWA}
"""Averaging callbacks by name (SAM, FAD and SWAD are not implemented yet)."""
