"""Few-shot protocols on paired embeddings: ``fewshot-kshot-v1`` and ``fewshot-b2n-v1``.

The rule, fixed for these protocol versions:

1. **Test part.** The dataset's official test part when it has one (``test_mask``); otherwise a
   stratified ``test_fraction`` of every class, drawn from the dataset's content hash only, so
   every method, shot count and seed of a dataset is scored on the same test samples.
2. **Shots.** From the remaining samples (the pool), seed ``seed`` and shot count ``K`` draw
   ``K`` support samples per class and, disjoint from them, ``min(K, 4)`` validation samples per
   class (CoOp's few-shot validation; Zhou et al., *Learning to Prompt for Vision-Language
   Models*, IJCV 2022). A class with fewer than ``K + min(K, 4)`` pool samples is an error.
3. **Fitting.** The method receives the support set and the validation set, nothing else; any
   hyperparameter it tunes (Tip-Adapter's alpha and beta, GDA's alpha, ...) is tuned on that
   validation set. Test features reach the method only through ``scores``, after ``fit``
   returned, and test labels are read only to score predictions.
4. **Metrics.** ``kshot``: top-1 accuracy over test samples (the field's convention) and the
   per-class mean. ``b2n`` (base-to-new, Zhou et al., *Conditional Prompt Learning*, CVPR
   2022): the first ``ceil(C / 2)`` classes are base, the rest new; shots come from base classes
   only; base test samples are classified among base classes, new ones among new classes, and
   ``H`` is the harmonic mean of the two accuracies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from unseen.core.errors import SpecError, SplitError
from unseen.core.record import make_record
from unseen.core.registry import Registry
from unseen.data.paired import PairedDataset
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.metrics.accuracy import harmonic_mean, per_class_accuracy, predict

VAL_SHOTS_CAP = 4

MethodRef = str | type[VLMMethod]
"""A registered method's name, or a method class (tests, user code that registers nothing)."""


def method_class(method: MethodRef) -> type[VLMMethod]:
    return VLM[method] if isinstance(method, str) else method


def split_test_part(dataset: PairedDataset, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, test)`` sample indices: the official division, else one fixed by the data hash."""
    if dataset.test_mask is not None:
        return np.flatnonzero(~dataset.test_mask), np.flatnonzero(dataset.test_mask)
    if not 0.0 < test_fraction < 1.0:
        raise SplitError(f"test fraction must be in (0, 1), got {test_fraction}.")
    rng = np.random.default_rng(int(dataset.hash, 16))
    test = []
    for c in range(dataset.n_classes):
        members = np.flatnonzero(dataset.labels == c)
        test.append(rng.permutation(members)[: int(round(test_fraction * len(members)))])
    is_test = np.zeros(len(dataset.labels), dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def draw_shots(
    labels: np.ndarray, pool: np.ndarray, classes: np.ndarray, shots: int, seed: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(support, val)`` indices: ``shots`` and ``min(shots, 4)`` per class, disjoint, from ``pool``."""
    val_shots = min(shots, VAL_SHOTS_CAP)
    rng = np.random.default_rng([int(seed), int(shots)])
    support, val = [], []
    for c in classes:
        members = pool[labels[pool] == c]
        if len(members) < shots + val_shots:
            raise SplitError(
                f"{where}: class {int(c)} has {len(members)} training samples; {shots}-shot needs "
                f"{shots + val_shots} ({shots} support + {val_shots} validation). Use fewer shots."
            )
        chosen = rng.permutation(members)[: shots + val_shots]
        support.append(chosen[:shots])
        val.append(chosen[shots:])
    return np.sort(np.concatenate(support)), np.sort(np.concatenate(val))


@dataclass(frozen=True)
class FewShotProtocol:
    """Fit on ``shots`` per class (+ few-shot validation), score the test part; see the module."""

    shots: int = 16
    seed: int = 1
    test_fraction: float = 0.5

    name: ClassVar[str] = "fewshot-kshot-v1"
    kind: ClassVar[str] = "kshot"

    def __post_init__(self) -> None:
        if self.shots < 1:
            raise SpecError(f"shots must be >= 1, got {self.shots}.")

    def spec(self, dataset: PairedDataset, method: MethodRef, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The identity of a run: what determines its numbers."""
        return {
            "task": "fewshot",
            "protocol": self.name,
            "data_hash": dataset.hash,
            "method": method_class(method).name,
            "hparams": dict(hparams),
            "shots": self.shots,
            "seed": self.seed,
            "test_fraction": None if dataset.test_mask is not None else self.test_fraction,
        }

    def train_classes(self, dataset: PairedDataset) -> np.ndarray:
        return np.arange(dataset.n_classes)

    def fit(
        self, dataset: PairedDataset, method: MethodRef, hparams: Mapping[str, Any] | None = None, device=None
    ) -> tuple[VLMMethod, dict[str, Any]]:
        """The method fitted on this seed's shots, and the sizes and indices of what it saw."""
        pool, _ = split_test_part(dataset, self.test_fraction)
        support, val = draw_shots(
            dataset.labels, pool, self.train_classes(dataset), self.shots, self.seed, dataset.name
        )
        model = method_class(method)(seed=self.seed, device=device, **dict(hparams or {}))
        t0 = time.perf_counter()
        model.fit(self._subset(dataset, support), self._subset(dataset, val))
        return model, {"support": len(support), "val": len(val), "fit_s": time.perf_counter() - t0}

    def run(
        self, dataset: PairedDataset, method: MethodRef, hparams: Mapping[str, Any] | None = None, device=None
    ) -> dict[str, Any]:
        """Fit, score the test part and return the run record."""
        hparams = dict(hparams or {})
        t0 = time.perf_counter()
        model, fitted = self.fit(dataset, method, hparams, device)
        _, test = split_test_part(dataset, self.test_fraction)
        t1 = time.perf_counter()
        scores = model.scores(dataset.features[test])
        score_s = time.perf_counter() - t1
        spec = self.spec(dataset, method, hparams)
        return make_record(
            "fewshot",
            self.name,
            spec,
            data={**dataset.summary(), "spec": dataset.source},
            method=model.name,
            paper=model.paper,
            hparams=model.params,
            hparams_fixed=hparams,
            selected_on_validation=model.selected,
            shots=self.shots,
            val_shots=min(self.shots, VAL_SHOTS_CAP),
            seed=self.seed,
            sizes={"support": fitted["support"], "val": fitted["val"], "test": len(test)},
            metrics=self._metrics(dataset, scores, dataset.labels[test]),
            timing={"total_s": time.perf_counter() - t0, "fit_s": fitted["fit_s"], "score_s": score_s},
        )

    def _metrics(self, dataset: PairedDataset, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        pred = scores.argmax(axis=1)
        return {
            "acc": 100.0 * float((pred == labels).mean()),
            "mean_class_acc": per_class_accuracy(labels, pred),
        }

    @staticmethod
    def _subset(dataset: PairedDataset, rows: np.ndarray) -> FewShotSet:
        return FewShotSet(dataset.features[rows], dataset.labels[rows], dataset.n_classes, dataset.class_text)


@dataclass(frozen=True)
class BaseToNewProtocol(FewShotProtocol):
    """Shots from the base half of the classes; accuracy on base, on new, and their harmonic mean."""

    name: ClassVar[str] = "fewshot-b2n-v1"
    kind: ClassVar[str] = "b2n"

    def train_classes(self, dataset: PairedDataset) -> np.ndarray:
        return np.arange(math.ceil(dataset.n_classes / 2))

    def spec(self, dataset: PairedDataset, method: MethodRef, hparams: Mapping[str, Any]) -> dict[str, Any]:
        if dataset.n_classes < 2:
            raise SpecError(f"{dataset.name}: base-to-new needs at least two classes.")
        return super().spec(dataset, method, hparams)

    def _metrics(self, dataset: PairedDataset, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        n_base = math.ceil(dataset.n_classes / 2)
        out = {}
        for part, cols in (("base", np.arange(n_base)), ("new", np.arange(n_base, dataset.n_classes))):
            rows = np.isin(labels, cols)
            out[f"{part}_acc"] = 100.0 * float((predict(scores[rows], cols) == labels[rows]).mean())
        out["H"] = harmonic_mean(out["base_acc"], out["new_acc"])
        return out


PROTOCOLS: Registry[type[FewShotProtocol]] = Registry.of(
    "few-shot protocol", {p.kind: p for p in (FewShotProtocol, BaseToNewProtocol)}
)
"""Few-shot protocols by kind: ``kshot`` and ``b2n``."""
