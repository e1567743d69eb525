"""The contract of vision-language adaptation on cached embeddings.

A method sees a :class:`FewShotSet` - a few labelled image embeddings per class plus, when the
dataset has them, one text embedding per class in the same space (a prompt-ensemble mean) - and
returns a score for every class of the set. ``fit(support, val)`` may choose its own
hyperparameters (Tip-Adapter's alpha and beta, GDA's alpha, WiSE-FT's mixing weight) but only
on ``val``: the few-shot validation set the protocol draws from training data (CoOp's
``min(K, 4)`` shots per class). Test embeddings never reach ``fit``; the protocols guarantee it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from unseen.core.errors import DataFormatError, HyperparameterError, NotFittedError
from unseen.core.method import Method


@dataclass(frozen=True, eq=False)
class FewShotSet:
    """Labelled image embeddings and the class text embeddings (or ``None``).

    ``features`` is ``(n, d)`` float32, ``labels`` ``(n,)`` int64 in ``[0, n_classes)``.
    ``class_text`` is ``(n_classes, d)`` in the image space, or ``None`` when the dataset has no
    aligned text (then only methods with ``needs_text = False`` apply). Classes may have no
    samples (base-to-new: new classes are known by their text only).
    """

    features: np.ndarray
    labels: np.ndarray
    n_classes: int
    class_text: np.ndarray | None = None

    def __post_init__(self) -> None:
        features = np.ascontiguousarray(self.features, dtype=np.float32)
        labels = np.asarray(self.labels, dtype=np.int64)
        if features.ndim != 2 or labels.shape != (len(features),):
            raise DataFormatError(
                f"few-shot set: features must be (n, d) with n labels; got {features.shape} and "
                f"{labels.shape}."
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise DataFormatError(f"few-shot set: labels must lie in [0, {self.n_classes}).")
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", labels)
        if self.class_text is not None:
            text = np.ascontiguousarray(self.class_text, dtype=np.float32)
            if text.shape != (self.n_classes, features.shape[1]):
                raise DataFormatError(
                    f"few-shot set: class_text must be ({self.n_classes}, {features.shape[1]}) "
                    f"(one embedding per class, in the image space); got {text.shape}."
                )
            object.__setattr__(self, "class_text", text)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    def one_hot(self) -> np.ndarray:
        out = np.zeros((len(self.labels), self.n_classes), dtype=np.float32)
        out[np.arange(len(self.labels)), self.labels] = 1.0
        return out


class VLMMethod(Method):
    """A few-shot adapter on embeddings: ``fit(support, val) -> self``, ``scores(X) -> (n, C)``.

    Subclasses declare ``hparams``, ``paper`` and ``needs_text`` (whether class text embeddings
    are required, e.g. for the zero-shot head), and implement :meth:`_fit` and :meth:`_scores`.
    ``tuned_on_validation`` names the hyperparameters ``_fit`` chooses on ``val`` by itself; the
    chosen values are reported in :attr:`selected` so records can carry them.
    """

    needs_text: ClassVar[bool] = True

    def __init__(self, seed: int = 0, device: str | None = None, **hparams: Any) -> None:
        self._set_params(hparams, seed, device)
        self._given = frozenset(hparams)
        self.selected: dict[str, Any] = {}
        self._n_classes: int | None = None

    def fit(self, support: FewShotSet, val: FewShotSet | None = None) -> VLMMethod:
        if self.needs_text and support.class_text is None:
            raise HyperparameterError(
                f"method '{self.name}' needs class text embeddings in the image space (a CLIP-like "
                "encoder pair); this dataset has none. Use a method that works without text, e.g. "
                "linear-probe or gda."
            )
        if val is not None and val.n_classes != support.n_classes:
            raise DataFormatError("few-shot support and validation sets must share one class list.")
        overridden = sorted(self._given & set(self.tuned_on_validation))
        if val is not None and overridden and self.params.get("tune_on_val"):
            raise HyperparameterError(
                f"method '{self.name}': {', '.join(overridden)} would be chosen on validation, replacing "
                "the value given; to fix it, also give tune_on_val=false."
            )
        self._n_classes = support.n_classes
        self.selected = {}
        self._fit(support, val)
        return self

    def scores(self, X: np.ndarray) -> np.ndarray:
        if self._n_classes is None:
            raise NotFittedError(f"method '{self.name}' must be fitted before it can score.")
        scores = self._scores(np.ascontiguousarray(X, dtype=np.float32))
        return self._checked_scores(scores, len(X), self._n_classes)

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        raise NotImplementedError

    def _scores(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError
