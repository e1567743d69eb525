"""Seen/unseen gating: a seen expert and a zero-shot expert from the registry, mixed by a gate.

A gated GZSL model scores class ``y`` of sample ``x`` as ``p(seen|x) p_S(y|x)`` for seen ``y`` and
``(1 - p(seen|x)) p_U(y|x)`` for unseen ``y`` (Socher et al., NeurIPS 2013; Atzmon & Chechik,
CVPR 2019). This module holds what the gated methods share:

* :class:`SeenSoftmax` (``softmax``) -- a softmax classifier of the seen classes, the seen expert;
* :class:`GatedGZSL` -- two experts named by hyperparameters, and a fit split into a memoised
  *core* (experts, gate) and *combination* hyperparameters that only change scoring;
* :func:`split_per_class` and :func:`pseudo_unseen_split` -- held-out training samples, with or
  without seen classes playing the unseen role, to fit a gate from ``train`` alone;
* :class:`OODGated` (``gated``) -- a hard gate on an out-of-distribution score of the seen expert.

COSMO (:mod:`unseen.methods.gzsl.cosmo`) builds on the same pieces.
"""

from __future__ import annotations

import ast
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from unseen.core.errors import DataError, HyperparameterError
from unseen.core.registry import HParam
from unseen.data.hashing import hash_arrays
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.preprocessing import FEATURE_NORMS, FeatureNorm, seen_local_labels
from unseen.methods.ood import LOGIT_SCORES
from unseen.methods.registry import GZSL

UNSCORED = -1e6
"""Score of a class a classifier cannot recognise: far below any logit it produces."""


@GZSL.register("softmax")
class SeenSoftmax(GZSLMethod):
    """A softmax classifier of the seen classes on the image features.

    The seen expert of COSMO (Atzmon & Chechik, *Adaptive Confidence Smoothing for Generalized
    Zero-Shot Learning*, CVPR 2019): multinomial logistic regression (scikit-learn, lbfgs,
    L2 penalty with inverse strength ``C`` = 1, at most ``max_iter`` = 2000 iterations, as in the
    official code) on features z-scored with training statistics. Scores are its logits for the
    seen classes; unseen classes, which it cannot recognise, score ``UNSCORED``, so alone it
    never predicts an unseen class without calibration. Deterministic: the seed is unused.
    """

    paper = (
        "Atzmon, Chechik. Adaptive Confidence Smoothing for Generalized Zero-Shot Learning. "
        "CVPR 2019 (seen expert)."
    )
    hparams = (
        HParam("C", 1.0, help="inverse L2 strength of scikit-learn's LogisticRegression"),
        HParam("max_iter", 2000, help="lbfgs iterations at most"),
        HParam("feature_norm", "zscore", help="feature normalisation", choices=FEATURE_NORMS),
    )

    def _fit(self, train: TrainSet) -> None:
        p = self.params
        self._seen = train.classes.seen_ids
        self._norm = FeatureNorm.fit(p["feature_norm"], train.features)
        self._model = LogisticRegression(C=p["C"], max_iter=p["max_iter"]).fit(
            self._norm(train.features), seen_local_labels(train.labels, self._seen)
        )

    def _scores(self, X: np.ndarray) -> np.ndarray:
        out = np.full((len(X), self._n_classes), UNSCORED)
        logits = self._model.decision_function(self._norm(X))
        if logits.ndim == 1:  # two classes: one logit, split so that the softmax is its probability
            logits = np.stack([-logits, logits], axis=1) / 2
        out[:, self._seen] = logits
        return out


def split_per_class(labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """Row indices ``(kept, held_out)``: ``fraction`` of each class's rows held out (seeded).

    A class with at least two rows keeps at least one and holds out at least one.
    """
    kept, held = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_held = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1) if len(rows) > 1 else 0
        held.append(rows[:n_held])
        kept.append(rows[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


@dataclass(frozen=True)
class GateSplit:
    """Training data divided to fit a seen/unseen gate without any unseen-class sample.

    ``experts`` is what inner experts are fitted on: samples of the kept seen classes, with a
    class table of the training set's seen classes only, the pseudo-unseen ones marked unseen.
    ``features`` are the held-out samples the gate learns from and ``is_seen`` their targets:
    ``True`` for held-out samples of kept classes, ``False`` for pseudo-unseen-class samples.
    """

    experts: TrainSet
    features: np.ndarray
    is_seen: np.ndarray


def pseudo_unseen_split(
    train: TrainSet, pseudo_unseen_fraction: float, holdout_fraction: float, rng: np.random.Generator
) -> GateSplit:
    """COSMO's gating data (Atzmon & Chechik, Sec. 4 / Fig. 3) built from ``train`` alone.

    ``pseudo_unseen_fraction`` of the seen classes (at least one; at least two stay seen) play
    the unseen role; ``holdout_fraction`` of each remaining class's samples is held out.
    """
    seen_ids = train.classes.seen_ids
    if len(seen_ids) < 3:
        raise DataError(
            f"a learned seen/unseen gate needs at least 3 seen classes to hold some out as "
            f"pseudo-unseen; the training set has {len(seen_ids)}. Use a method without one, e.g. 'gated'."
        )
    n_pseudo = min(max(int(round(pseudo_unseen_fraction * len(seen_ids))), 1), len(seen_ids) - 2)
    pseudo_unseen = np.sort(rng.choice(seen_ids, size=n_pseudo, replace=False))
    kept_classes = np.setdiff1d(seen_ids, pseudo_unseen)
    order = np.concatenate([kept_classes, pseudo_unseen])
    remap = np.full(train.n_classes, -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    in_kept = np.isin(train.labels, kept_classes)
    kept_rows = np.flatnonzero(in_kept)
    fit, held = split_per_class(train.labels[kept_rows], holdout_fraction, rng)
    fit_rows, held_rows = kept_rows[fit], kept_rows[held]
    unseen_rows = np.flatnonzero(~in_kept)
    experts = TrainSet(
        features=train.features[fit_rows],
        labels=remap[train.labels[fit_rows]],
        classes=train.classes.subset(order, np.arange(len(order)) < len(kept_classes)),
    )
    return GateSplit(
        experts=experts,
        features=train.features[np.concatenate([held_rows, unseen_rows])],
        is_seen=np.arange(len(held_rows) + len(unseen_rows)) < len(held_rows),
    )


class CoreCache:
    """A small least-recently-used store of fitted cores, keyed by what determines them.

    Candidates of a hyperparameter search that differ only in combination hyperparameters
    share one core, so the protocol's grid over them costs one fit per task.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        core = build()
        self._items[key] = core
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return core

    def clear(self) -> None:
        self._items.clear()


def parse_object(text: str) -> dict | None:
    """The dict ``text`` spells as a JSON object, or as a Python dict (what a JSON object given
    for a text hyperparameter becomes), else None."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError):
            continue
        if isinstance(value, dict):
            return value
    return None


EXPERT_HPARAMS = (
    HParam("seen_expert", "softmax", help="GZSL method used as the seen-class expert"),
    HParam("seen_expert_hparams", "{}", help="its hyperparameters, a JSON object"),
    HParam("unseen_expert", "eszsl", help="GZSL method used as the zero-shot (unseen) expert"),
    HParam("unseen_expert_hparams", "{}", help="its hyperparameters, a JSON object"),
)


class GatedGZSL(GZSLMethod):
    """Base of the gated methods: two registry experts, a memoised core, cheap combination.

    Subclasses list the hyperparameters that only change scoring in ``combination``, build the
    core in :meth:`_fit_core` (from ``train`` only) and score with it in :meth:`_combine`. The
    core is shared (:class:`CoreCache`) by fits with the same method, other hyperparameters,
    seed, device and training data.
    """

    combination: ClassVar[tuple[str, ...]] = ()
    cores: ClassVar[CoreCache] = CoreCache()

    def __init__(self, seed: int = 0, device: str | None = None, **hparams: Any) -> None:
        super().__init__(seed=seed, device=device, **hparams)
        for role in ("seen_expert", "unseen_expert"):  # fail now, not after a long fit
            self._expert(role)

    def _expert(self, role: str) -> GZSLMethod:
        """A fresh, unfitted expert for ``role`` (``seen_expert`` or ``unseen_expert``)."""
        text = self.params[f"{role}_hparams"]
        given = parse_object(text)
        if given is None:
            raise HyperparameterError(
                f"method '{self.name}': {role}_hparams must be a JSON object such as "
                f"'{{\"alpha\": 0.1}}', got {text!r}."
            )
        return GZSL[self.params[role]](seed=self.seed, device=self.device, **given)

    def _fit(self, train: TrainSet) -> None:
        fixed = {k: v for k, v in self.params.items() if k not in self.combination}
        key = (
            self.name,
            json.dumps(fixed, sort_keys=True),
            self.seed,
            self.device,
            hash_arrays(train.features, train.labels, extra=train.classes.hash),
        )
        self._core = self.cores.get(key, lambda: self._fit_core(train))

    def _fit_core(self, train: TrainSet) -> Any:
        raise NotImplementedError

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self._combine(self._core, X)

    def _combine(self, core: Any, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def mix(p_seen: np.ndarray, seen_part: np.ndarray, unseen_part: np.ndarray, seen_mask: np.ndarray):
    """Scores over all classes: ``p_seen * seen_part`` on seen, ``(1 - p_seen) * unseen_part`` on unseen."""
    out = np.empty((len(p_seen), len(seen_mask)))
    out[:, seen_mask] = p_seen[:, None] * seen_part
    out[:, ~seen_mask] = (1.0 - p_seen)[:, None] * unseen_part
    return out


def route(accept: np.ndarray, seen_part: np.ndarray, unseen_part: np.ndarray, seen_mask: np.ndarray):
    """A hard gate's scores: the block of classes a sample is not sent to is shifted down by 1.

    With probabilities in each block, every score of the chosen block beats every score of the
    other, as in :func:`mix` with ``p_seen`` in {0, 1}, but the ranking inside the other block
    survives, so zero-shot accuracy and the calibration curve stay meaningful.
    """
    rejected = ~np.asarray(accept, dtype=bool)
    out = np.empty((len(rejected), len(seen_mask)))
    out[:, seen_mask] = seen_part - rejected[:, None]
    out[:, ~seen_mask] = unseen_part - (~rejected)[:, None]
    return out


def acceptance_threshold(scores: np.ndarray, accept_quantile: float) -> float:
    """The score above which ``accept_quantile`` of ``scores`` lie; 1 accepts all, 0 none."""
    if accept_quantile >= 1.0:
        return -np.inf
    if accept_quantile <= 0.0:
        return np.inf
    return float(np.quantile(scores, 1.0 - accept_quantile))


@dataclass(frozen=True)
class OODCore:
    """What ``gated`` fits: both experts on all of ``train``, and held-out seen-class logits."""

    seen: GZSLMethod
    unseen: GZSLMethod
    held_out_logits: np.ndarray
    seen_mask: np.ndarray


@GZSL.register("gated")
class OODGated(GatedGZSL):
    """A hard seen/unseen gate on an out-of-distribution score of the seen expert's logits.

    The gate of Socher et al. (*Zero-Shot Learning Through Cross-Modal Transfer*, NeurIPS 2013)
    with the scores of :mod:`unseen.methods.ood`: ``gate`` = ``msp`` (Hendrycks & Gimpel, ICLR
    2017), ``max-logit`` (Hendrycks et al., ICML 2022) or ``energy`` (Liu et al., NeurIPS 2020),
    computed from the seen expert's scores of the seen classes. ``x`` goes to the seen expert
    when its score reaches the threshold, else to the zero-shot expert: ``p(seen|x)`` is 1 or 0.
    Scores are ``p_S(y|x)`` on seen classes and ``p_U(y|x)`` on unseen ones, each the softmax of
    its expert's scores over its block of classes, with the block ``x`` is not sent to lowered
    by 1 (:func:`route`).

    Threshold: the seen expert is fitted on ``1 - holdout_fraction`` of each seen class's
    training samples and scores the rest; the threshold accepts ``accept_quantile`` of those
    held-out seen samples (1 sends everything to the seen expert, 0 everything to the zero-shot
    expert). ``gate`` and ``accept_quantile`` are searched on the protocol's validation task.
    Everything is fitted from ``train``: the held-out samples are training samples of seen
    classes, and the experts that score test data are refitted on all of ``train``.
    """

    paper = (
        "Socher, Ganjoo, Manning, Ng. Zero-Shot Learning Through Cross-Modal Transfer. NeurIPS 2013 "
        "(hard gate); OOD scores: Hendrycks & Gimpel ICLR 2017, Hendrycks et al. ICML 2022, "
        "Liu et al. NeurIPS 2020."
    )
    hparams = (
        *EXPERT_HPARAMS,
        HParam(
            "gate",
            "msp",
            grid=tuple(LOGIT_SCORES),
            help="OOD score of the seen expert",
            choices=tuple(LOGIT_SCORES),
        ),
        HParam(
            "accept_quantile",
            0.95,
            grid=(0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
            help="share of held-out seen samples the gate sends to the seen expert",
        ),
        HParam("holdout_fraction", 0.2, help="share of each seen class's samples held out"),
    )
    combination = ("gate", "accept_quantile")

    def _fit_core(self, train: TrainSet) -> OODCore:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x6A7E]))
        fit, held = split_per_class(train.labels, self.params["holdout_fraction"], rng)
        inner = self._expert("seen_expert").fit(
            TrainSet(train.features[fit], train.labels[fit], train.classes)
        )
        seen_ids = train.classes.seen_ids
        return OODCore(
            seen=self._expert("seen_expert").fit(train),
            unseen=self._expert("unseen_expert").fit(train),
            held_out_logits=inner.scores(train.features[held])[:, seen_ids],
            seen_mask=train.classes.seen,
        )

    def _combine(self, core: OODCore, X: np.ndarray) -> np.ndarray:
        score = LOGIT_SCORES[self.params["gate"]]
        threshold = acceptance_threshold(score(core.held_out_logits), self.params["accept_quantile"])
        seen_logits = core.seen.scores(X)[:, core.seen_mask]
        accept = score(seen_logits) >= threshold
        return route(
            accept,
            softmax(seen_logits, axis=1),
            softmax(core.unseen.scores(X)[:, ~core.seen_mask], axis=1),
            core.seen_mask,
        )
