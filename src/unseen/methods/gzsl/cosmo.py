"""COSMO: a confidence-based seen/unseen gate and adaptive confidence smoothing of two experts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression

from unseen.core.errors import NotFittedError
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.gating import EXPERT_HPARAMS, GatedGZSL, mix, pseudo_unseen_split
from unseen.methods.registry import GZSL

SMOOTHINGS = ("adaptive", "none")


def top_k(p: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest entries of each row, in descending order."""
    return -np.sort(-p, axis=1)[:, :k]


def expert_outputs(
    seen: GZSLMethod, unseen: GZSLMethod, X: np.ndarray, seen_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The seen expert's logits of the seen classes, and the zero-shot expert's probabilities of
    the unseen classes: its softmax over all classes, restricted to the unseen ones (not
    renormalised, so their sum keeps the expert's own belief that ``x`` is unseen)."""
    return seen.scores(X)[:, seen_mask], softmax(unseen.scores(X), axis=1)[:, ~seen_mask]


@dataclass(frozen=True)
class ConfidenceGate:
    """COSMO's confidence-based gate: logistic regression on sorted top-K expert confidences.

    Features of ``x``: the ``k_unseen`` largest zero-shot-expert probabilities of unseen classes
    and the ``k_seen`` largest seen-expert probabilities at ``temperature`` (the softmax of its
    logits divided by the temperature), each sorted in descending order. The output is the
    estimated probability that ``x`` belongs to a seen class.
    """

    model: LogisticRegression
    k_unseen: int
    k_seen: int
    temperature: float

    @classmethod
    def fit(
        cls,
        unseen_probs: np.ndarray,
        seen_logits: np.ndarray,
        is_seen: np.ndarray,
        k_unseen: int,
        k_seen: int,
        temperature: float,
        C: float,
    ) -> ConfidenceGate:
        gate = cls(LogisticRegression(C=C, max_iter=1000), k_unseen, k_seen, temperature)
        gate.model.fit(gate.features(unseen_probs, seen_logits), np.asarray(is_seen, dtype=bool))
        return gate

    def features(self, unseen_probs: np.ndarray, seen_logits: np.ndarray) -> np.ndarray:
        seen_probs = softmax(seen_logits / self.temperature, axis=1)
        return np.hstack([top_k(unseen_probs, self.k_unseen), top_k(seen_probs, self.k_seen)])

    def p_seen(self, unseen_probs: np.ndarray, seen_logits: np.ndarray) -> np.ndarray:
        """``p(seen | x)`` in [0, 1], one per row."""
        proba = self.model.predict_proba(self.features(unseen_probs, seen_logits))
        return proba[:, list(self.model.classes_).index(True)]


def smoothed_experts(
    p_unseen: np.ndarray, seen_probs: np.ndarray, unseen_probs: np.ndarray, smoothing: str
) -> tuple[np.ndarray, np.ndarray]:
    """The experts' class distributions as COSMO mixes them, given the gate's ``p(unseen|x)``.

    ``adaptive`` (COSMO): each expert's distribution plus a uniform prior over its classes,
    weighted by the gate's belief that ``x`` lies outside the expert's domain -- seen classes
    get ``p_S(y|x) + p(unseen|x) / |S|``, unseen ones ``p_U(y|x) + p(seen|x) / |U|`` (the
    official code's form, without renormalising). ``none``: the plain total probability, with
    the zero-shot expert renormalised over the unseen classes.
    """
    if smoothing == "adaptive":
        seen_part = seen_probs + (p_unseen / seen_probs.shape[1])[:, None]
        unseen_part = unseen_probs + ((1.0 - p_unseen) / unseen_probs.shape[1])[:, None]
        return seen_part, unseen_part
    return seen_probs, unseen_probs / unseen_probs.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class COSMOCore:
    """What COSMO fits: the gate, and both experts refitted on all of ``train``."""

    gate: ConfidenceGate
    seen: GZSLMethod
    unseen: GZSLMethod
    seen_mask: np.ndarray


@GZSL.register("cosmo")
class COSMO(GatedGZSL):
    """COSMO (Atzmon & Chechik, *Adaptive Confidence Smoothing for Generalized Zero-Shot
    Learning*, CVPR 2019): a seen expert, a zero-shot expert and a gate, combined as

        p(y|x) = p(seen|x) p~_S(y|x)  (seen y),   (1 - p(seen|x)) p~_U(y|x)  (unseen y),

    with ``p~`` the adaptively smoothed expert distributions (:func:`smoothed_experts`).

    * Experts: any two GZSL methods of the registry, ``seen_expert`` (default ``softmax``, the
      paper's logistic regression) and ``unseen_expert`` (default ``eszsl``; the paper used
      LAGO and f-CLSWGAN, ``f-clswgan`` here), with hyperparameters given as JSON objects.
    * Gate (:class:`ConfidenceGate`): logistic regression (inverse strength ``gate_C``) on the
      ``top_k`` = 5 largest unseen-class probabilities of the zero-shot expert and the 5
      largest seen-class probabilities of the seen expert at ``confidence_temperature`` = 3.
      Its output ``g(x)`` becomes ``p(seen|x) = sigmoid((g(x) - threshold) /
      threshold_temperature)`` (:meth:`seen_probability`), the official code's soft threshold.
    * Gating data (the paper's Fig. 3): ``pseudo_unseen_fraction`` of the training classes play
      the unseen role and ``holdout_fraction`` of every other class's samples is held out;
      inner experts are fitted on the rest, and the gate learns seen vs pseudo-unseen from
      their outputs on the held-out samples. The experts that score test data are then
      refitted on all of ``train`` (as the official code retrains them on trainval). Experts
      are fitted unmonitored, with the hyperparameters given (a generative expert trains for
      its given epoch counts).

    Everything COSMO fits comes from the :class:`TrainSet`: the gate never receives a sample
    of a real unseen class, only training samples of seen classes, some of them playing the
    unseen role. ``threshold``, ``threshold_temperature`` and ``smoothing`` only change scoring
    and are searched on the protocol's validation task (the official code sweeps threshold and
    temperature on its validation split); the experts and the gate are fitted once per
    training set and shared by those candidates (:class:`~.gating.CoreCache`).
    """

    paper = "Atzmon, Chechik. Adaptive Confidence Smoothing for Generalized Zero-Shot Learning. CVPR 2019."
    hparams = (
        *EXPERT_HPARAMS,
        HParam("top_k", 5, help="sorted confidences per expert in the gate's features"),
        HParam("confidence_temperature", 3.0, help="temperature of the seen expert's gate features"),
        HParam("gate_C", 1.0, help="inverse L2 strength of the logistic-regression gate"),
        HParam("pseudo_unseen_fraction", 0.2, help="share of training classes playing unseen"),
        HParam("holdout_fraction", 0.2, help="share of each other class's samples held out"),
        HParam(
            "threshold",
            0.5,
            grid=tuple(round(0.1 * i, 1) for i in range(-2, 13)),
            help="gate output at which p(unseen|x) = 1/2",
        ),
        HParam(
            "threshold_temperature",
            0.1,
            grid=(0.01, 0.03, 0.1, 0.3, 1.0),
            help="softness of the threshold (the official T_cond)",
        ),
        HParam("smoothing", "adaptive", help="expert smoothing before mixing", choices=SMOOTHINGS),
    )
    combination = ("threshold", "threshold_temperature", "smoothing")

    def _fit_core(self, train: TrainSet) -> COSMOCore:
        p = self.params
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xC05]))
        split = pseudo_unseen_split(train, p["pseudo_unseen_fraction"], p["holdout_fraction"], rng)
        inner_mask = split.experts.classes.seen
        seen_logits, unseen_probs = expert_outputs(
            self._expert("seen_expert").fit(split.experts),
            self._expert("unseen_expert").fit(split.experts),
            split.features,
            inner_mask,
        )
        seen_mask = train.classes.seen
        gate = ConfidenceGate.fit(
            unseen_probs,
            seen_logits,
            split.is_seen,
            k_unseen=min(p["top_k"], (~inner_mask).sum(), (~seen_mask).sum()),
            k_seen=min(p["top_k"], inner_mask.sum()),
            temperature=p["confidence_temperature"],
            C=p["gate_C"],
        )
        return COSMOCore(
            gate=gate,
            seen=self._expert("seen_expert").fit(train),
            unseen=self._expert("unseen_expert").fit(train),
            seen_mask=seen_mask,
        )

    def seen_probability(self, X: np.ndarray) -> np.ndarray:
        """``p(seen|x)``: the weight :meth:`scores` gives the seen expert, one per row of ``X``."""
        if self._n_classes is None:
            raise NotFittedError(f"method '{self.name}' must be fitted before its gate can be read.")
        X = np.asarray(X, dtype=np.float32)
        return self._seen_probability(
            *expert_outputs(self._core.seen, self._core.unseen, X, self._core.seen_mask)
        )

    def _seen_probability(self, seen_logits: np.ndarray, unseen_probs: np.ndarray) -> np.ndarray:
        g = self._core.gate.p_seen(unseen_probs, seen_logits)
        return expit((g - self.params["threshold"]) / self.params["threshold_temperature"])

    def _combine(self, core: COSMOCore, X: np.ndarray) -> np.ndarray:
        seen_logits, unseen_probs = expert_outputs(core.seen, core.unseen, X, core.seen_mask)
        p_seen = self._seen_probability(seen_logits, unseen_probs)
        seen_part, unseen_part = smoothed_experts(
            1.0 - p_seen, softmax(seen_logits, axis=1), unseen_probs, self.params["smoothing"]
        )
        return mix(p_seen, seen_part, unseen_part, core.seen_mask)
