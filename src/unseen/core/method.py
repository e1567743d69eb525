"""The contract every method of every family shares.

A method class declares its name (given by its registry), the paper it implements and its
hyperparameters; an instance holds the resolved values (``params``), its seed and its device.
The family bases (:class:`~unseen.methods.base.GZSLMethod`, :class:`~unseen.methods.dg.base.Algorithm`,
:class:`~unseen.methods.vlm.base.VLMMethod`, :class:`~unseen.methods.tta.base.TTAMethod`) extend
it with what their protocol calls: ``fit``/``scores``, ``update``/``predict``, ``predict`` on a stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from unseen.core.registry import HParam, resolve_hparams


class Method:
    """Name, paper, declared hyperparameters, and the resolved ``params``, ``seed`` and ``device``.

    ``role`` words the owner in error messages (``method``, ``DG algorithm``, ``TTA method``).
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: ClassVar[tuple[HParam, ...]] = ()
    role: ClassVar[str] = "method"
    selected_on_validation: ClassVar[tuple[str, ...]] = ()
    """Integer hyperparameters (training lengths) that a protocol chooses for the method, from the
    checkpoints the method offers while it trains on the validation task."""
    tuned_on_validation: ClassVar[tuple[str, ...]] = ()
    """What the method chooses by itself on the validation set it is given (its ``selected``)."""

    @classmethod
    def declared_hparams(cls) -> tuple[HParam, ...]:
        """Every hyperparameter an instance takes (families may add shared ones)."""
        return cls.hparams

    def _set_params(
        self,
        given: Mapping[str, Any] | None,
        seed: int,
        device: Any,
        declared: tuple[HParam, ...] | None = None,
    ) -> None:
        """Resolve ``given`` against ``declared`` (by default :meth:`declared_hparams`); unknown
        names and bad values raise."""
        declared = self.declared_hparams() if declared is None else declared
        self.params = resolve_hparams(declared, given, owner=f"{self.role} '{self.name}'")
        self.seed = int(seed)
        self.device = device

    def _checked_scores(self, scores: Any, n_samples: int, n_classes: int) -> np.ndarray:
        """``scores`` as float64, or an error naming the method when it is not ``(n_samples, n_classes)``."""
        out = np.asarray(scores, dtype=np.float64)
        if out.shape != (n_samples, n_classes):
            raise AssertionError(
                f"{self.role} '{self.name}' returned scores of shape {out.shape}, "
                f"expected {(n_samples, n_classes)}"
            )
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in getattr(self, "params", {}).items())
        return f"{type(self).__name__}({args})"
