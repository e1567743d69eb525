"""``dg-probe-v1``: the logistic-regression probe, the baseline row of DG on frozen features.

A plain multinomial logistic regression (scikit-learn's ``LogisticRegression``: L2 penalty of
inverse strength ``C``, L-BFGS, an intercept, the features as they are) fit on the ``in`` parts
of the training domains, the same parts and the same trial-seed division
(:meth:`~unseen.data.domains.DomainDataset.in_out_split`) a ``dg-lodo-v1`` run trains on.

Its record has a ``dg-lodo-v1`` record's shape (task ``dg``, ``test_envs``, ``train_envs``,
``trial_seed``, one checkpoint with every domain's ``in`` and ``out`` accuracy), so DomainBed's
model selections (:mod:`unseen.protocols.dg_selection`) choose ``C`` exactly as they choose an
algorithm's hyperparameters: one run per ``C`` of the grid (a sweep with
``sweep_hparams = "grid"``), then ``training-val`` keeps the ``C`` whose training domains' ``out``
parts score best -- nothing from the held-out domain -- and ``oracle`` the one whose held-out
``out`` part does. ``unseen results`` then prints the probe as one more row of the DG tables.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from unseen.core.errors import SpecError
from unseen.core.method import Method
from unseen.core.record import make_record
from unseen.core.registry import HParam, Registry
from unseen.data.domains import DomainDataset
from unseen.protocols.dg import record_data


class LogisticRegressionProbe(Method):
    """Multinomial logistic regression on fixed features (scikit-learn's conventions: ``C`` is the
    inverse L2 strength on the weights, the intercept is not penalized, L-BFGS to convergence).

    The linear probe of Radford et al., *Learning Transferable Visual Models From Natural Language
    Supervision* (ICML 2021), section 3.2, which sweeps ``C`` on validation; here ``C``'s grid is
    searched by the DG model selections.
    """

    role: ClassVar[str] = "DG probe"
    paper = (
        "Radford et al., Learning Transferable Visual Models From Natural Language Supervision (ICML 2021)"
    )
    hparams = (
        HParam(
            "C",
            1.0,
            grid=(1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3),
            help="inverse L2 regularization strength (scikit-learn's C)",
        ),
        HParam("max_iter", 1000, help="L-BFGS iterations at most"),
    )

    def __init__(self, hparams: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self._set_params(hparams, seed, "cpu")

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticRegressionProbe:
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=self.params["C"], max_iter=self.params["max_iter"])
        self.model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


PROBES: Registry[type[LogisticRegressionProbe]] = Registry.of(
    "DG probe", {"logreg-probe": LogisticRegressionProbe}
)


@dataclass(frozen=True)
class DGProbeProtocol:
    """Fit a probe on the training domains' ``in`` parts; record every part's accuracy."""

    test_envs: tuple[int, ...]
    holdout_fraction: float = 0.2
    trial_seed: int = 0

    name = "dg-probe-v1"

    def check(self, dataset: DomainDataset) -> None:
        if len(dataset.input_shape) != 1:
            raise SpecError(
                f"{dataset.name}: the probe fits feature vectors, not inputs of shape "
                f"{dataset.input_shape}; extract features first (`unseen extract`, then npz-domains:)."
            )
        bad = [e for e in self.test_envs if not 0 <= e < dataset.n_domains]
        if bad or len(self.test_envs) != 1:
            raise SpecError(
                f"test env {list(self.test_envs)} invalid for {dataset.name}: give one of "
                + ", ".join(f"{k} ({d})" for k, d in enumerate(dataset.domain_names))
                + "."
            )

    def spec(self, dataset: DomainDataset, method: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The identity of a run: what determines its numbers (task ``dg``: its record joins the DG
        tables)."""
        return {
            "task": "dg",
            "protocol": self.name,
            "data_hash": dataset.hash,
            "method": method,
            "hparams": dict(hparams),
            "test_envs": sorted(self.test_envs),
            "holdout_fraction": self.holdout_fraction,
            "trial_seed": self.trial_seed,
        }

    def run(self, dataset: DomainDataset, method: str, hparams: Mapping[str, Any] | None = None) -> dict:
        self.check(dataset)
        hparams = dict(hparams or {})
        t0 = time.perf_counter()
        probe = PROBES[method](hparams, self.trial_seed)
        splits = dataset.in_out_split(self.trial_seed, self.holdout_fraction)
        train_envs = [k for k in range(dataset.n_domains) if k not in self.test_envs]
        fit_rows = np.concatenate([splits[k][0] for k in train_envs])
        probe.fit(dataset.inputs[fit_rows], dataset.labels[fit_rows])
        checkpoint: dict[str, Any] = {"step": int(np.max(probe.model.n_iter_))}
        for k, parts in enumerate(splits):
            for part, rows in zip(("in", "out"), parts, strict=True):
                hits = probe.predict(dataset.inputs[rows]) == dataset.labels[rows]
                checkpoint[f"env{k}_{part}_acc"] = float(hits.mean()) if len(rows) else 0.0
        return make_record(
            "dg",
            self.name,
            self.spec(dataset, method, hparams),
            data=record_data(dataset, splits),
            method=method,
            paper=probe.paper,
            hparams=probe.params,
            hparams_fixed=hparams,
            test_envs=sorted(self.test_envs),
            train_envs=train_envs,
            holdout_fraction=self.holdout_fraction,
            trial_seed=self.trial_seed,
            seed=self.trial_seed,
            checkpoints=[checkpoint],
            timing={"total_s": time.perf_counter() - t0},
        )
