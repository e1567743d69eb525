"""``gzsl-dg-v1``: unseen classes in unseen domains, selected on training domains and seen classes.

Generalized zero-shot learning (:mod:`unseen.protocols.gzsl`, ``gzsl-ps-v1``) tests on new
classes in the training domain; domain generalization (:mod:`unseen.protocols.dg`,
``dg-lodo-v1``) tests on the training classes in a new domain. This protocol tests on both at
once: the held-out domain's samples of every class, seen and unseen (the setting of Mancini et
al., *Towards Recognizing Unseen Categories in Unseen Domains*, ECCV 2020).

A method is a composition ``FEATURIZER+METHOD``: a DG algorithm of the ``DG`` registry trains the
featurizer on the seen classes of the training domains with the DG training loop
(:meth:`~unseen.protocols.dg.DGProtocol.train_on`), then a GZSL method of the ``GZSL`` registry
runs on its embeddings, selected with ``gzsl-ps-v1``'s validation search
(:meth:`~unseen.protocols.gzsl.GZSLProtocol.select`). ``identity`` as the featurizer uses the
inputs themselves, flattened (no training). An end-to-end method (``cumix``,
:mod:`unseen.methods.joint.cumix`) is a whole method on its own: its network trains in the place
of the featurizer, on the same rows, and its semantic embedding is scored by compatibility with
the class semantics (nothing to search: validation fixes its steps and the calibration).

The rule, fixed for this protocol version:

1. **Split** (from the seed only): in every domain, the samples of the seen classes are divided
   into ``in`` (80%) and ``out`` (20%) by a permutation seeded by ``(seed, domain)``, whatever
   the held-out domain. Samples of unseen classes are never trained on.
2. **Validation**, from the ``in`` parts of the training domains' seen classes alone:
   pseudo-unseen classes are the dataset's validation classes, else a seeded 20% of the seen
   classes (:func:`~unseen.data.model.validation_parts`). With at least three training
   domains, a seeded one of them is held out too: the validation featurizer and method train on
   the pseudo-seen classes of the other training domains and are scored on the held-out training
   domain's pseudo-seen and pseudo-unseen samples (both shifts at once, as at test). With fewer,
   20% of each pseudo-seen class is held out instead, exactly as ``gzsl-ps-v1`` does.
3. **Selection**: the validation featurizer trains for ``steps`` steps; at every checkpoint (each
   ``checkpoint_freq`` steps and the last) every candidate of the GZSL method's search is fitted
   on the embeddings and scored by validation H (with ``calibrate``: the best H over the
   calibration constant, which fixes it). With ``featurizer_search="random:N"`` this is done
   for each of N draws of the featurizer's hyperparameters from its DomainBed search space
   (seeded by the seed; fixed ones are not drawn), each a validation featurizer of its own. The
   winner fixes the featurizer's hyperparameters, its number of steps, the GZSL hyperparameters
   (and training lengths) and the calibration constant; the first maximum wins.
4. **Refit and test**: the featurizer trains on the ``in`` parts of every training domain's seen
   classes for the chosen number of steps (same seed), the method is fitted on their embeddings
   with the chosen hyperparameters, and both are evaluated once: on the held-out domain (every
   sample; the reported ``metrics``) and on the training domains' test parts (their seen
   classes' ``out`` parts and their unseen-class samples; ``metrics_train_domains``).

Nothing of the held-out domain and nothing of the unseen classes reaches a fit or a selection;
the tests poison both and check that the selection and the fitted model do not move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unseen.core.device import resolve_device
from unseen.core.errors import DataError, HyperparameterError, SpecError
from unseen.core.record import make_record
from unseen.data.domains import DomainDataset
from unseen.data.model import ValidationParts, ZSLDataset, validation_parts
from unseen.data.zsl_domains import ZSLDomainDataset
from unseen.methods import DG, GZSL, JOINT
from unseen.methods.dg.base import Algorithm
from unseen.methods.joint.cumix import SemanticCompatibility
from unseen.metrics import calibrated_stacking
from unseen.protocols.dg import DGProtocol, eval_chunk
from unseen.protocols.gzsl import FitCache, GZSLProtocol, evaluate
from unseen.protocols.search import candidates

Progress = Callable[[int, int, str], None]
IDENTITY = "identity"
"""The featurizer that is no network: the inputs, flattened, are the embeddings."""


def parse_method(name: str) -> tuple[str, str | None]:
    """``"erm+eszsl"`` as ``("erm", "eszsl")``: a featurizer (a DG algorithm or ``identity``) and a
    GZSL method, both checked against their registries. The method is what follows the last
    ``+`` (a DG algorithm's name may hold one: ``erm+++eszsl`` is ``erm++`` then ``eszsl``).
    An end-to-end method (``cumix``) is ``(name, None)``: its network is the featurizer and it
    scores by compatibility with the class semantics."""
    if name in JOINT:
        return name, None
    featurizer, plus, method = name.rpartition("+")
    if not plus or not featurizer or not method:
        raise SpecError(
            f"method '{name}': a gzsl-dg method is FEATURIZER+METHOD, a DG algorithm (or "
            f"'{IDENTITY}') and a GZSL method, e.g. erm+eszsl or coral+cada-vae; or an end-to-end "
            f"method: {', '.join(JOINT)}."
        )
    if method in JOINT:
        raise SpecError(
            f"method '{name}': {method} is end to end (it trains its own featurizer); name it alone, "
            f"'{method}', without a featurizer."
        )
    if featurizer != IDENTITY:
        DG[featurizer]  # unknown names raise with the closest known ones
    GZSL[method]
    return featurizer, method


@dataclass(frozen=True)
class Split:
    """Sample indices of one gzsl-dg run: what trains, and the two test sets."""

    in_parts: tuple[np.ndarray, ...]
    """Per domain, the ``in`` part of its seen-class samples."""
    fit: np.ndarray
    """The ``in`` parts of the training domains: the only samples any final fit sees."""
    train_domains_seen: np.ndarray
    train_domains_unseen: np.ndarray
    test_seen: np.ndarray
    test_unseen: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {
            "fit": len(self.fit),
            "train_domains_test_seen": len(self.train_domains_seen),
            "train_domains_test_unseen": len(self.train_domains_unseen),
            "test_seen": len(self.test_seen),
            "test_unseen": len(self.test_unseen),
        }


@dataclass(frozen=True)
class Fitted:
    """The final model of a run: the featurizer (``None`` for ``identity``) and the GZSL method."""

    featurizer: torch.nn.Module | None
    method: Any
    gamma: float | None
    seen: np.ndarray
    device: str

    def embed(self, inputs: np.ndarray) -> np.ndarray:
        return _embed(self.featurizer, inputs, self.device)

    def scores(self, inputs: np.ndarray) -> np.ndarray:
        """The calibrated scores of every class for raw ``inputs``."""
        scores = self.method.scores(self.embed(inputs))
        if self.gamma is None:
            return scores
        return calibrated_stacking(scores, self.seen, self.gamma)


@torch.no_grad()
def _embed(featurizer: torch.nn.Module | None, inputs: np.ndarray, device: str) -> np.ndarray:
    """The featurizer's outputs for ``inputs`` (float32, one row per sample); ``None``: the
    inputs, flattened."""
    if featurizer is None:
        return np.asarray(inputs, dtype=np.float32).reshape(len(inputs), -1)
    featurizer.eval()
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    out = [featurizer(chunk.to(device)).float().cpu() for chunk in x.split(eval_chunk(x))]
    return torch.cat(out).numpy().reshape(len(inputs), -1)


def _task(
    name: str,
    parts: Mapping[str, np.ndarray],
    features: np.ndarray,
    labels: np.ndarray,
    classes,
    source: str,
) -> ZSLDataset:
    """A GZSL task over the samples of ``parts`` (``train``, ``test_seen``, ``test_unseen``, in
    that order); ``features`` and ``labels`` hold one row per sample of the concatenated parts."""
    local, start = {}, 0
    for key in ("train", "test_seen", "test_unseen"):
        local[key] = np.arange(start, start + len(parts[key]))
        start += len(parts[key])
    return ZSLDataset(
        name=name, features=features, labels=labels, classes=classes, split_indices=local, source=source
    )


def _algorithm(name: str):
    """The class of a trained featurizer: an end-to-end method or a DG algorithm."""
    return JOINT[name] if name in JOINT else DG[name]


def _rows(parts: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([parts["train"], parts["test_seen"], parts["test_unseen"]])


@dataclass(frozen=True)
class GZSLDGProtocol:
    """Train on the seen classes of the training domains, select on validation built from them,
    test once on the held-out domain ``test_env`` and on the training domains' test parts.

    Parameters
    ----------
    test_env:
        The held-out domain's number.
    steps, checkpoint_freq:
        Featurizer training budget and how often validation scores it (ignored by ``identity``).
    calibrate, search:
        As in ``gzsl-ps-v1``: calibrated stacking with the constant chosen on validation; the GZSL
        method's search (``grid``, ``default``, ``random:N``).
    featurizer_search:
        The trained featurizer's hyperparameters: ``default`` (DomainBed's defaults and the fixed
        ones) or ``random:N`` (N draws from its search space, each trained and scored on
        validation; N times the selection's training).
    seed:
        Seeds the split, the validation classes and domain, the featurizer and the method.
    """

    test_env: int
    steps: int = 1000
    checkpoint_freq: int = 100
    calibrate: bool = False
    search: str = "grid"
    seed: int = 0
    featurizer_search: str = "default"
    holdout_fraction: float = 0.2
    pseudo_unseen_fraction: float = 0.2
    seen_holdout_fraction: float = 0.2

    name = "gzsl-dg-v1"
    selection_metric = "H"

    # -- the rule ----------------------------------------------------------------------
    def check(self, data: ZSLDomainDataset) -> None:
        listing = ", ".join(f"{k} ({d})" for k, d in enumerate(data.domain_names))
        if data.n_domains < 2:
            raise SpecError(f"{data.name}: gzsl-dg needs at least two domains; it has {data.n_domains}.")
        if isinstance(self.test_env, bool) or not isinstance(self.test_env, int | np.integer):
            raise SpecError(f"test env must be a domain number; got {self.test_env!r}. Domains: {listing}.")
        if not 0 <= self.test_env < data.n_domains:
            raise SpecError(
                f"test env {self.test_env} is not a domain of {data.name}; give one of {listing}."
            )
        if self.steps < 1 or self.checkpoint_freq < 1:
            raise SpecError(
                f"steps and checkpoint_freq must be >= 1; got {self.steps}, {self.checkpoint_freq}."
            )
        if self.featurizer_search != "default" and not self.featurizer_search.startswith("random:"):
            raise SpecError(
                f"featurizer search must be 'default' or 'random:N' (DomainBed's random search), "
                f"got {self.featurizer_search!r}."
            )
        if not 0.0 < self.holdout_fraction < 1.0:
            raise SpecError(f"holdout_fraction must be in (0, 1); got {self.holdout_fraction}.")
        if data.classes.semantics.shape[1] == 0:
            raise DataError(
                f"{data.source or data.name}: the classes have no semantics (kind "
                f"'{data.classes.semantics_kind}'); name a CSV in the zsl-domains file (semantics = ...) "
                f"or embed the class names with text: (--data 'text:{data.source or 'SPEC'}')."
            )

    def train_envs(self, data: ZSLDomainDataset) -> list[int]:
        return [k for k in range(data.n_domains) if k != self.test_env]

    def split(self, data: ZSLDomainDataset) -> Split:
        """Step 1 of the rule: every domain's seen-class samples into ``in``/``out``."""
        samples, seen = data.samples, data.classes.seen
        is_seen = seen[samples.labels]
        in_parts, out_parts = [], []
        for k in range(data.n_domains):
            idx = np.flatnonzero((samples.domains == k) & is_seen)
            perm = np.random.default_rng([int(self.seed), k, 0x6D]).permutation(len(idx))
            n_out = int(round(self.holdout_fraction * len(idx)))
            in_parts.append(np.sort(idx[perm[n_out:]]))
            out_parts.append(np.sort(idx[perm[:n_out]]))
        train = self.train_envs(data)
        held = samples.domains == self.test_env
        return Split(
            in_parts=tuple(in_parts),
            fit=np.sort(np.concatenate([in_parts[k] for k in train])),
            train_domains_seen=np.sort(np.concatenate([out_parts[k] for k in train])),
            train_domains_unseen=np.flatnonzero(~held & ~is_seen),
            test_seen=np.flatnonzero(held & is_seen),
            test_unseen=np.flatnonzero(held & ~is_seen),
        )

    def validation(self, data: ZSLDomainDataset, split: Split) -> tuple[ValidationParts, int | None]:
        """Step 2 of the rule: the validation task's classes and samples (global indices) and the
        held-out training domain (``None`` with fewer than three training domains)."""
        labels = data.samples.labels
        parts = validation_parts(
            labels,
            split.fit,
            data.classes,
            data.val_classes,
            self.seed,
            self.pseudo_unseen_fraction,
            self.seen_holdout_fraction,
            where=f"dataset '{data.name}'",
        )
        train = self.train_envs(data)
        if len(train) < 3:
            return parts, None
        val_env = int(np.random.default_rng([int(self.seed), 0x76]).choice(train))
        others = np.sort(np.concatenate([split.in_parts[k] for k in train if k != val_env]))
        held = split.in_parts[val_env]
        return (
            ValidationParts(
                pseudo_seen=parts.pseudo_seen,
                pseudo_unseen=parts.pseudo_unseen,
                parts={
                    "train": others[np.isin(labels[others], parts.pseudo_seen)],
                    "test_seen": held[np.isin(labels[held], parts.pseudo_seen)],
                    "test_unseen": held[np.isin(labels[held], parts.pseudo_unseen)],
                },
            ),
            val_env,
        )

    # -- running -------------------------------------------------------------------------
    def spec(
        self,
        data: ZSLDomainDataset,
        method: str,
        hparams: Mapping[str, Any] | None = None,
        featurizer_hparams: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The identity of a run: what determines its numbers."""
        featurizer, _ = parse_method(method)
        trained = featurizer != IDENTITY
        searched = trained and self.featurizer_search != "default"
        return {
            "task": "gzsl-dg",
            "protocol": self.name,
            "data_hash": data.hash,
            "method": method,
            "hparams": dict(hparams or {}),
            "featurizer_hparams": dict(featurizer_hparams or {}) if trained else None,
            # present only when searched, so that runs without the search keep their ids
            **({"featurizer_search": self.featurizer_search} if searched else {}),
            "test_env": int(self.test_env),
            "steps": self.steps if trained else None,
            "checkpoint_freq": self.checkpoint_freq if trained else None,
            "holdout_fraction": self.holdout_fraction,
            "calibrate": self.calibrate,
            "search": self.search,
            "seed": self.seed,
        }

    def run(
        self,
        data: ZSLDomainDataset,
        method: str,
        hparams: Mapping[str, Any] | None = None,
        featurizer_hparams: Mapping[str, Any] | None = None,
        device: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Select on validation, refit, test once; return the run record."""
        return self.fit(data, method, hparams, featurizer_hparams, device, progress)[1]

    def fit(
        self,
        data: ZSLDomainDataset,
        method: str,
        hparams: Mapping[str, Any] | None = None,
        featurizer_hparams: Mapping[str, Any] | None = None,
        device: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[Fitted, dict[str, Any]]:
        """As :meth:`run`, and the fitted model too."""
        self.check(data)
        featurizer, gzsl_method = parse_method(method)
        fixed = dict(hparams or {})
        dg_fixed = dict(featurizer_hparams or {})
        joint = gzsl_method is None
        if joint and fixed:
            raise HyperparameterError(
                f"method '{method}' is end to end: give its hyperparameters {sorted(fixed)} as "
                "featurizer hyperparameters (--featurizer-hparams), not GZSL ones."
            )
        if featurizer == IDENTITY and (dg_fixed or self.featurizer_search != "default"):
            raise HyperparameterError(
                f"featurizer '{IDENTITY}' trains nothing and takes no hyperparameters; drop "
                f"{sorted(dg_fixed) or 'the featurizer search'} (or choose a DG algorithm as the featurizer)."
            )
        featurizer_candidates = self._featurizer_candidates(data, featurizer, dg_fixed)
        dev = str(resolve_device(device))
        t0 = time.perf_counter()
        split = self.split(data)
        val, val_env = self.validation(data, split)
        gzsl = GZSLProtocol(calibrate=self.calibrate, search=self.search, seed=self.seed)
        given = {} if joint else {**GZSL[gzsl_method].defaults_for(data.name), **fixed}
        cache = FitCache()

        # Selection: per featurizer candidate, the validation featurizer's checkpoints x the GZSL search.
        val_rows = _rows(val.parts)
        val_labels = val.relabel(data.samples.labels[val_rows])
        val_classes = val.classes(data.classes)
        searched = self.featurizer_search != "default"  # identity refuses a search above
        trials: list[dict[str, Any]] = []

        def select_on(embeddings: list[tuple[int | None, np.ndarray]], candidate: int) -> None:
            tag = {"featurizer_candidate": candidate} if searched else {}
            for i, (step, features) in enumerate(embeddings):
                task = _task(f"{data.name}/val", val.parts, features, val_labels, val_classes, data.source)
                if joint:  # nothing to search: the network's semantic embedding is scored as it is
                    scorer, _ = cache.fit(SemanticCompatibility, {}, self.seed, device, task)
                    ev = evaluate(scorer, task, "best" if self.calibrate else None)
                    trials.append({"step": step, **tag, "hparams": {}, "val": ev.metrics, "gamma": ev.gamma})
                else:
                    for trial in gzsl.select(task, gzsl_method, given, device, None, cache):
                        trials.append({"step": step, **tag, **trial})
                if progress:
                    progress(
                        i + 1, len(embeddings), f"{gzsl_method or method} validation at checkpoint {i + 1}"
                    )

        val_featurizers: list[dict[str, Any]] = []
        if featurizer == IDENTITY:
            select_on([(None, _embed(None, data.samples.inputs[val_rows], dev))], 0)
        for candidate, candidate_hparams in enumerate(featurizer_candidates):
            embeddings: list[tuple[int | None, np.ndarray]] = []

            def keep(step: int, network: torch.nn.Module, into: list = embeddings) -> None:
                into.append((step, _embed(network[0], data.samples.inputs[val_rows], dev)))

            _, checkpoints, resolved = self._train_featurizer(
                data,
                featurizer,
                candidate_hparams,
                val.parts["train"],
                val.pseudo_seen,
                self.steps,
                dev,
                progress,
                keep,
            )
            val_featurizers.append({"hparams": resolved, "checkpoints": checkpoints})
            select_on(embeddings, candidate)
        best = gzsl.best(trials)
        chosen, gamma, chosen_step = trials[best]["hparams"], trials[best]["gamma"], trials[best]["step"]
        chosen_candidate = trials[best].get("featurizer_candidate", 0)
        val_featurizer: dict[str, Any] = {}
        if val_featurizers:
            val_featurizer = {"checkpoints": val_featurizers[chosen_candidate]["checkpoints"]}
        if searched:
            val_featurizer.update(
                search=self.featurizer_search, candidates=val_featurizers, chosen=chosen_candidate
            )
        t1 = time.perf_counter()

        # Refit on every training domain's seen classes, then test once.
        network, dg_params, final_checkpoints = None, None, None
        if featurizer != IDENTITY:
            model, final_checkpoints, dg_params = self._train_featurizer(
                data,
                featurizer,
                featurizer_candidates[chosen_candidate],
                split.fit,
                data.classes.seen_ids,
                chosen_step,
                dev,
                progress,
            )
            network = model.network[0]
        held_parts = {"train": split.fit, "test_seen": split.test_seen, "test_unseen": split.test_unseen}
        seen_parts = {
            "train": split.fit,
            "test_seen": split.train_domains_seen,
            "test_unseen": split.train_domains_unseen,
        }
        views = {}
        for key, parts in (("held_out", held_parts), ("train_domains", seen_parts)):
            rows = _rows(parts)
            views[key] = _task(
                f"{data.name}/{key}",
                parts,
                _embed(network, data.samples.inputs[rows], dev),
                data.samples.labels[rows],
                data.classes,
                data.source,
            )
        scorer_cls = SemanticCompatibility if joint else GZSL[gzsl_method]
        final, _ = cache.fit(scorer_cls, chosen, self.seed, device, views["held_out"])
        t2 = time.perf_counter()
        results = {key: evaluate(final, view, gamma) for key, view in views.items()}
        t3 = time.perf_counter()
        fitted = Fitted(network, final, gamma, data.classes.seen.copy(), dev)
        record = make_record(
            "gzsl-dg",
            self.name,
            self.spec(data, method, fixed, dg_fixed),
            data={
                "spec": data.source,
                "name": data.name,
                "hash": data.hash,
                "semantics_kind": data.classes.semantics_kind,
                "domains": list(data.domain_names),
                "sizes": split.sizes(),
            },
            method=method,
            featurizer=featurizer,
            gzsl_method=gzsl_method,
            paper={
                "featurizer": None if featurizer == IDENTITY else _algorithm(featurizer).paper,
                "method": _algorithm(featurizer).paper if joint else GZSL[gzsl_method].paper,
            },
            hparams=chosen,
            hparams_fixed=fixed,
            featurizer_hparams=dg_params,
            featurizer_steps=chosen_step,
            test_env=int(self.test_env),
            test_domain=data.domain_names[self.test_env],
            train_envs=self.train_envs(data),
            calibrate=self.calibrate,
            gamma=gamma,
            seed=self.seed,
            metrics=results["held_out"].metrics,
            metrics_uncalibrated=results["held_out"].uncalibrated,
            metrics_train_domains=results["train_domains"].metrics,
            metrics_train_domains_uncalibrated=results["train_domains"].uncalibrated,
            curve={
                "seen": results["held_out"].curve_seen.tolist(),
                "unseen": results["held_out"].curve_unseen.tolist(),
            },
            selection={
                "metric": f"val {self.selection_metric}" + (" (calibrated)" if self.calibrate else ""),
                "search": self.search,
                "validation_classes": [data.classes.names[c] for c in val.pseudo_unseen],
                "validation_classes_from": "dataset" if data.val_classes is not None else "seeded",
                "validation_domain": None if val_env is None else data.domain_names[val_env],
                "val_task": {key: len(rows) for key, rows in val.parts.items()},
                "trials": trials,
                "featurizer": val_featurizer,
            },
            featurizer_checkpoints=final_checkpoints,
            timing={"select_s": t1 - t0, "fit_s": t2 - t1, "eval_s": t3 - t2, "total_s": t3 - t0},
        )
        return fitted, record

    def _featurizer_candidates(
        self, data: ZSLDomainDataset, featurizer: str, fixed: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The featurizer hyperparameters to train on validation: ``fixed`` alone (``default``),
        or ``random:N`` draws from the algorithm's search space for the data's input shape, drawn
        by the seed (DomainBed's random search; ``fixed`` values are kept). None for ``identity``."""
        if featurizer == IDENTITY:
            return []
        if self.featurizer_search == "default":
            return [dict(fixed)]
        declared = _algorithm(featurizer).all_hparams(data.samples.input_shape)
        owner = f"featurizer '{featurizer}'"
        return candidates(declared, fixed, self.featurizer_search, self.seed, owner)

    def _train_featurizer(
        self,
        data: ZSLDomainDataset,
        algorithm: str,
        hparams: Mapping[str, Any],
        rows: np.ndarray,
        class_ids: Sequence[int],
        steps: int,
        device: str,
        progress: Progress | None,
        on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
    ) -> tuple[Algorithm, list[dict[str, Any]], dict[str, Any]]:
        """The DG training loop of ``dg-lodo-v1`` on the samples ``rows`` only (labels renumbered
        into ``class_ids``, one training domain per domain present): nothing else reaches it."""
        samples = data.samples
        remap = np.full(samples.n_classes, -1, dtype=np.int64)
        remap[np.asarray(class_ids)] = np.arange(len(class_ids))
        if algorithm in JOINT:  # end to end: built for the training classes' semantics
            algorithm = JOINT[algorithm].for_classes(data.classes.semantics[np.asarray(class_ids)])
        present = np.unique(samples.domains[rows])
        domain_of = np.full(samples.n_domains, -1, dtype=np.int64)
        domain_of[present] = np.arange(len(present))
        fit_data = DomainDataset(
            name=f"{data.name}/fit",
            inputs=samples.inputs[rows],
            labels=remap[samples.labels[rows]],
            domains=domain_of[samples.domains[rows]],
            class_names=tuple(data.classes.names[c] for c in class_ids),
            domain_names=tuple(samples.domain_names[k] for k in present),
            source=data.source,
        )
        parts = [(fit_data.domain_indices(j), np.zeros(0, dtype=np.int64)) for j in range(len(present))]
        loop = DGProtocol(
            test_envs=(), steps=steps, checkpoint_freq=min(self.checkpoint_freq, steps), seed=self.seed
        )
        model, checkpoints, resolved = loop.train_on(
            fit_data, algorithm, hparams, parts, list(range(len(present))), device, progress, on_checkpoint
        )
        # Every sample trains (no `out` parts): keep each domain's training accuracy, by domain name.
        names = {f"env{j}_in_acc": f"{fit_data.domain_names[j]}_train_acc" for j in range(len(present))}
        checkpoints = [
            {names.get(k, k): v for k, v in c.items() if not k.endswith("_out_acc")} for c in checkpoints
        ]
        return model, checkpoints, resolved


PROTOCOLS: dict[str, type[GZSLDGProtocol]] = {GZSLDGProtocol.name: GZSLDGProtocol}
