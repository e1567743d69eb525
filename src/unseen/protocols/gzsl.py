"""``gzsl-ps-v1``: generalized zero-shot learning on the proposed splits, selected on validation.

Xian et al., *Zero-Shot Learning - A Comprehensive Evaluation of the Good, the Bad and the Ugly*
(TPAMI 2018) define the proposed splits and the metrics (per-class mean top-1 on seen and unseen
test classes, searching all classes; harmonic mean H); Chao et al. (ECCV 2016) define calibrated
stacking and AUSUC.

The rule, which never changes within a protocol version:

1. A GZSL validation task is built from the ``train`` split alone
   (:meth:`~unseen.data.model.ZSLDataset.validation_task`): the dataset's validation classes
   (xlsa17's ``val_loc`` classes / ``valclasses1.txt``) or a seeded 20% of the seen classes become
   pseudo-unseen; 20% of each remaining class's samples (seeded) become pseudo-seen test samples.
2. Every hyperparameter candidate (the method's grid, or defaults, or N random draws) is fitted on
   the validation task's training part and scored on its held-out parts. The selection metric
   is validation H; with ``calibrate`` it is the best H over the calibration constant, which
   fixes gamma as well.
3. The chosen candidate is refitted on the whole ``train`` split and evaluated once on
   ``test_seen`` and ``test_unseen``. Test labels are read here, after fitting, and nowhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from unseen.core.record import make_record
from unseen.data.hashing import hash_arrays
from unseen.data.model import SplitName, ZSLDataset
from unseen.methods import GZSL
from unseen.methods.base import GZSLMethod
from unseen.metrics import (
    calibrated_stacking,
    gzsl_accuracies,
    seen_unseen_curve,
    zsl_accuracy,
)
from unseen.protocols.search import candidates

Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)`` is called after each fit."""


@dataclass(frozen=True)
class Evaluation:
    """Scores of one fitted method on one task's seen and unseen test parts, with metrics."""

    metrics: dict[str, float]
    uncalibrated: dict[str, float]
    gamma: float | None
    curve_seen: np.ndarray
    curve_unseen: np.ndarray


def evaluate(method: GZSLMethod, task: ZSLDataset, gamma: float | None | str) -> Evaluation:
    """Metrics of a fitted ``method`` on ``task``'s test parts.

    ``gamma``: ``None`` for no calibration, a number to subtract from seen-class scores, or
    ``"best"`` to choose the H-maximising constant on this very task (validation only).
    """
    seen_mask = task.classes.seen
    scores_s = method.scores(task.split_features(SplitName.TEST_SEEN))
    scores_u = method.scores(task.split_features(SplitName.TEST_UNSEEN))
    labels_s = task.split_labels(SplitName.TEST_SEEN)
    labels_u = task.split_labels(SplitName.TEST_UNSEEN)
    curve = seen_unseen_curve(
        np.vstack([scores_s, scores_u]), np.concatenate([labels_s, labels_u]), seen_mask
    )
    unseen_ids = task.classes.unseen_ids

    def metrics_at(g: float) -> dict[str, float]:
        cal_s = calibrated_stacking(scores_s, seen_mask, g)
        cal_u = calibrated_stacking(scores_u, seen_mask, g)
        out = gzsl_accuracies(cal_s, labels_s, cal_u, labels_u)
        out["ZSL"] = zsl_accuracy(cal_u, labels_u, unseen_ids)
        out["AUSUC"] = curve.ausuc
        return out

    if gamma == "best":
        _, gamma = curve.best_h()
    uncalibrated = metrics_at(0.0)
    metrics = uncalibrated if gamma is None else metrics_at(float(gamma))
    return Evaluation(
        metrics, uncalibrated, None if gamma is None else float(gamma), curve.seen, curve.unseen
    )


class FitCache:
    """Fitted methods shared by runs that fit the same thing, e.g. a plain and a calibrated run.

    Calibration changes how candidates are scored, not how they are fitted, so both runs can
    reuse each other's fits. Keyed by method, hyperparameters, seed, device and the task's hash.
    A fit on a validation task of a method with ``selected_on_validation`` also records its
    validation curve: every checkpoint's metrics, plain and at the best calibration constant.
    """

    def __init__(self) -> None:
        self._fits: dict[tuple, tuple[GZSLMethod, list[dict[str, Any]] | None]] = {}
        self.reused = 0

    def fit(
        self,
        cls: type[GZSLMethod],
        params: Mapping[str, Any],
        seed: int,
        device: str | None,
        task: ZSLDataset,
        monitor_on: ZSLDataset | None = None,
        unlabelled: np.ndarray | None = None,
    ) -> tuple[GZSLMethod, list[dict[str, Any]] | None]:
        """The fitted method and, when ``monitor_on`` is given, its curve on that task.

        ``unlabelled`` features go to a transductive method's ``fit`` (and into the key)."""
        key = (cls.name, json.dumps(params, sort_keys=True, default=str), seed, device, task.hash)
        if unlabelled is not None:
            key += (hash_arrays(unlabelled),)
        if key in self._fits:
            self.reused += 1
            return self._fits[key]
        curve: list[dict[str, Any]] | None = None
        monitor = None
        if monitor_on is not None and cls.selected_on_validation:
            curve = []

            def monitor(values: dict[str, int], method: GZSLMethod) -> None:
                ev = evaluate(method, monitor_on, "best")
                curve.append(
                    {"values": values, "plain": ev.uncalibrated, "calibrated": ev.metrics, "gamma": ev.gamma}
                )

        extra = {} if unlabelled is None else {"unlabelled": unlabelled}
        method = cls(seed=seed, device=device, **params).fit(task.train_set(), monitor=monitor, **extra)
        self._fits[key] = (method, curve)
        return self._fits[key]

    def __len__(self) -> int:
        return len(self._fits)


@dataclass(frozen=True)
class GZSLProtocol:
    """Generalized zero-shot evaluation with hyperparameters selected on validation only.

    Parameters
    ----------
    calibrate:
        Apply calibrated stacking with the constant chosen on validation.
    search:
        ``"grid"`` (default), ``"default"`` or ``"random:N"`` (see :mod:`unseen.protocols.search`).
    seed:
        Seeds the validation split, random search and the method.
    """

    calibrate: bool = False
    search: str = "grid"
    seed: int = 0
    pseudo_unseen_fraction: float = 0.2
    seen_holdout_fraction: float = 0.2

    name = "gzsl-ps-v1"
    transductive = False
    """Whether fits also receive unlabelled test features (:mod:`unseen.protocols.gzsl_transductive`)."""
    selection_metric = "H"

    def run(
        self,
        dataset: ZSLDataset,
        method: str,
        hparams: Mapping[str, Any] | None = None,
        device: str | None = None,
        progress: Progress | None = None,
        cache: FitCache | None = None,
    ) -> dict[str, Any]:
        """Select on validation, refit on ``train``, evaluate once on test; return the record.

        ``cache`` lets several runs on the same data share fits (see :class:`FitCache`).
        """
        cls = GZSL[method]
        cache = cache if cache is not None else FitCache()
        reused_before = cache.reused
        fixed = dict(hparams or {})
        t0 = time.perf_counter()
        val_task = dataset.validation_task(self.seed, self.pseudo_unseen_fraction, self.seen_holdout_fraction)
        trials = self.select(
            val_task, method, {**cls.defaults_for(dataset.name), **fixed}, device, progress, cache
        )
        total = len(trials) + 1
        best = self.best(trials)
        chosen, gamma = trials[best]["hparams"], trials[best]["gamma"]
        t1 = time.perf_counter()

        final, _ = self._fit(cache, cls, chosen, device, dataset)
        t2 = time.perf_counter()
        test = evaluate(final, dataset, gamma)
        if progress:
            progress(total, total, f"{method} test")
        t3 = time.perf_counter()
        return self._record(
            dataset,
            method,
            fixed,
            chosen,
            gamma,
            test,
            trials,
            val_task,
            timing={
                "select_s": t1 - t0,
                "fit_s": t2 - t1,
                "eval_s": t3 - t2,
                "total_s": t3 - t0,
                "fits_reused": cache.reused - reused_before,
            },
        )

    def select(
        self,
        val_task: ZSLDataset,
        method: str,
        given: Mapping[str, Any],
        device: str | None = None,
        progress: Progress | None = None,
        cache: FitCache | None = None,
    ) -> list[dict[str, Any]]:
        """The validation trials: every candidate of ``method`` (its search space with the values
        ``given`` fixed) fitted on ``val_task``'s ``train`` part and scored on its test parts
        (at the best calibration constant with ``calibrate``; at the best checkpoint for methods
        with ``selected_on_validation``), in candidate order."""
        cls = GZSL[method]
        cache = cache if cache is not None else FitCache()
        grid = candidates(cls.hparams, given, self.search, self.seed, f"method '{method}'")
        trials = []
        for i, params in enumerate(grid):
            fitted, curve = self._fit(cache, cls, params, device, val_task, monitor_on=val_task)
            if curve is None:
                ev = evaluate(fitted, val_task, "best" if self.calibrate else None)
                trials.append({"hparams": params, "val": ev.metrics, "gamma": ev.gamma})
            else:
                trials.append(self._trial_from_curve(params, curve, method))
            if progress:
                progress(i + 1, len(grid) + 1, f"{method} validation {i + 1}/{len(grid)}")
        return trials

    def _fit(
        self,
        cache: FitCache,
        cls: type[GZSLMethod],
        params: Mapping[str, Any],
        device: str | None,
        task: ZSLDataset,
        monitor_on: ZSLDataset | None = None,
    ) -> tuple[GZSLMethod, list[dict[str, Any]] | None]:
        """Fit ``cls`` on ``task``'s training part (inductive: the training part only)."""
        return cache.fit(cls, params, self.seed, device, task, monitor_on)

    def best(self, trials: list[dict[str, Any]]) -> int:
        """The position of the winning trial: the first maximum of the selection metric."""
        return max(range(len(trials)), key=lambda i: trials[i]["val"][self.selection_metric])

    def _trial_from_curve(
        self, params: dict[str, Any], curve: list[dict[str, Any]], method: str
    ) -> dict[str, Any]:
        """A monitored fit's trial: its best checkpoint fixes the training lengths."""
        if not curve:
            raise RuntimeError(f"method '{method}' declares selected_on_validation but never checkpointed")
        variant = "calibrated" if self.calibrate else "plain"
        best = max(curve, key=lambda c: c[variant][self.selection_metric])  # first maximum
        return {
            "hparams": {**params, **best["values"]},
            "val": best[variant],
            "gamma": best["gamma"] if self.calibrate else None,
            "curve": [{**c["values"], **{m: c[variant][m] for m in ("S", "U", "H")}} for c in curve],
        }

    def spec(self, dataset: ZSLDataset, method: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The identity of a run: what determines its numbers."""
        return {
            "task": "gzsl",
            "protocol": self.name,
            "data_hash": dataset.hash,
            "semantics_kind": dataset.classes.semantics_kind,
            "method": method,
            "hparams": dict(hparams),
            "calibrate": self.calibrate,
            "search": self.search,
            "seed": self.seed,
        }

    def _record(
        self, dataset, method, fixed, chosen, gamma, test, trials, val_task, timing
    ) -> dict[str, Any]:
        spec = self.spec(dataset, method, fixed)
        return make_record(
            "gzsl",
            self.name,
            spec,
            data={
                "spec": dataset.source,
                "name": dataset.name,
                "hash": dataset.hash,
                "semantics_kind": dataset.classes.semantics_kind,
                "splits": {s.value: sp.hash for s, sp in dataset.splits.items()},
            },
            method=method,
            paper=GZSL[method].paper,
            hparams=chosen,
            hparams_fixed=dict(fixed),
            hparams_dataset_defaults=GZSL[method].defaults_for(dataset.name),
            calibrate=self.calibrate,
            gamma=gamma,
            seed=self.seed,
            metrics=test.metrics,
            metrics_uncalibrated=test.uncalibrated,
            curve={"seen": test.curve_seen.tolist(), "unseen": test.curve_unseen.tolist()},
            selection={
                "metric": f"val {self.selection_metric}" + (" (calibrated)" if self.calibrate else ""),
                "search": self.search,
                "validation_classes": "dataset" if dataset.val_classes is not None else "seeded",
                "val_task": {s.value: len(sp) for s, sp in val_task.splits.items()},
                "trials": trials,
            },
            timing=timing,
        )


PROTOCOLS: dict[str, type[GZSLProtocol]] = {GZSLProtocol.name: GZSLProtocol}
