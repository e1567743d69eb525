"""The estimator contract shared by GZSL methods on embeddings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from unseen.core.errors import NotFittedError, SpecError
from unseen.core.method import Method
from unseen.data.model import TrainSet

Monitor = Callable[[dict[str, int], "GZSLMethod"], None]


class GZSLMethod(Method):
    """A zero-shot method on embeddings: ``fit(train) -> self``, ``scores(X) -> (n, n_classes)``.

    Subclasses declare ``hparams`` (defaults and search grids) and ``paper`` (the citation), and
    implement :meth:`_fit` and :meth:`_scores`. ``fit`` sees a :class:`TrainSet` only: training
    embeddings, their labels and the class table (semantics of all classes, with their roles).
    ``scores`` sees embeddings only and returns a compatibility score for every class of the
    table; higher means more likely. Protocols turn scores into predictions and metrics.
    """

    dataset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    """Per-benchmark settings from the paper, keyed by xlsa17 name (AWA1, AWA2, CUB, SUN, FLO, APY)."""
    fast_hparams: ClassVar[dict[str, Any]] = {}
    """A small configuration for smoke runs (``unseen gzsl --fast``)."""
    transductive: ClassVar[bool] = False
    """Whether ``fit`` takes ``unlabelled`` test features (protocol ``gzsl-transductive-v1``,
    :mod:`unseen.protocols.gzsl_transductive`); such a method cannot be fitted without them, and
    an inductive one refuses them."""

    @classmethod
    def defaults_for(cls, dataset_name: str) -> dict[str, Any]:
        """The paper's settings for the benchmark ``dataset_name`` names, if it names one.

        ``"CUB"`` (an xlsa17 folder), ``"synthetic:CUB"`` and ``"synthetic:CUB/att_splits.mat"``
        (synthetic data shaped like an xlsa17 file) all name CUB: the last path component,
        upper-cased, that is a key of ``dataset_defaults``.
        """
        parts = dataset_name.split(":")[-1].split("/")
        key = next((p.upper() for p in reversed(parts) if p.upper() in cls.dataset_defaults), None)
        return dict(cls.dataset_defaults[key]) if key else {}

    def __init__(self, seed: int = 0, device: str | None = None, **hparams: Any) -> None:
        self._set_params(hparams, seed, device)
        self._n_classes: int | None = None
        self._monitor: Monitor | None = None
        self._unlabelled: np.ndarray | None = None

    def fit(
        self, train: TrainSet, monitor: Monitor | None = None, unlabelled: np.ndarray | None = None
    ) -> GZSLMethod:
        """Fit on ``train``. ``monitor(values, method)`` is called at every :meth:`checkpoint`.

        ``unlabelled``: ``(m, d)`` features without labels or roles, for ``transductive`` methods
        only (read in ``_fit`` as ``self._unlabelled``, a private read-only copy).
        """
        if self.transductive and unlabelled is None:
            raise SpecError(
                f"method '{self.name}' is transductive: it trains on unlabelled test features. "
                "Run it under protocol gzsl-transductive-v1 (unseen gzsl --protocol gzsl-transductive-v1)."
            )
        if not self.transductive and unlabelled is not None:
            raise SpecError(
                f"method '{self.name}' is inductive: it takes no unlabelled features. Run it under "
                "protocol gzsl-ps-v1, or choose a transductive method (see `unseen methods --family gzsl`)."
            )
        self._n_classes = train.n_classes
        self._monitor = monitor
        self._unlabelled = None if unlabelled is None else _readonly_features(unlabelled)
        try:
            self._fit(train)
        finally:
            self._monitor = None
            self._unlabelled = None
        return self

    @property
    def monitored(self) -> bool:
        """Whether the current fit is watched by a protocol (so checkpoints are worth taking)."""
        return self._monitor is not None

    def checkpoint(self, **values: int) -> None:
        """Offer the current state as a candidate model, reached after ``values`` (e.g. epochs).

        Methods with ``selected_on_validation`` call this during ``_fit`` whenever ``scores``
        reflect a model that training for exactly ``values`` would produce. Without a monitor
        (a final refit) it does nothing.
        """
        if self._monitor is not None:
            self._monitor(dict(values), self)

    def scores(self, X: np.ndarray) -> np.ndarray:
        if self._n_classes is None:
            raise NotFittedError(f"method '{self.name}' must be fitted before it can score.")
        return self._checked_scores(self._scores(np.asarray(X, dtype=np.float32)), len(X), self._n_classes)

    def _fit(self, train: TrainSet) -> None:
        raise NotImplementedError

    def _scores(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _readonly_features(X: np.ndarray) -> np.ndarray:
    X = np.array(X, dtype=np.float32, copy=True)
    if X.ndim != 2:
        raise SpecError(f"unlabelled features must be a 2-d array (samples x dims), got shape {X.shape}.")
    X.flags.writeable = False
    return X
