"""DomainBed's model-selection methods as pure functions over ``dg-lodo-v1`` run records.

Gulrajani & Lopez-Paz, *In Search of Lost Domain Generalization* (ICLR 2021), section 3. Every
function takes the records of one (dataset, algorithm, test domain, trial seed) cell, each
record being one hyperparameter draw, and returns the pick: its validation accuracy, the test
accuracy reported for it (the test domain's ``in`` part, as DomainBed reports), the chosen
hyperparameters and checkpoint. ``None`` when the records cannot support the method.

- ``training-val`` (training-domain validation): the mean ``out`` accuracy of the training
  domains, at every checkpoint (early stopping); best checkpoint of the best draw.
- ``lodo`` (leave-one-domain-out validation): runs that also hold out one training domain ``v``
  are scored by ``v``'s ``in`` accuracy, averaged over every ``v``; a draw qualifies only if all
  its ``(test, v)`` runs and its final ``(test,)`` run exist; best checkpoint of the best draw,
  reported on the final run.
- ``oracle`` (test-domain validation): the test domain's ``out`` accuracy at the last
  checkpoint only (no early stopping, as DomainBed restricts it).
- ``crafted-shift`` (Efthymiadis, Tolias & Chum, *Crafting Distribution Shifts for Validation
  and Training in Single Source Domain Generalization*, WACV 2025): the mean over the training
  domains of their ``out`` accuracy under the bank of crafted shifts (recorded by runs with
  ``crafted_shifts``, :mod:`unseen.protocols.dg_crafted`), at every checkpoint; best
  checkpoint of the best draw. Runs without those fields are not candidates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from unseen.core.registry import Registry
from unseen.protocols.dg_crafted import crafted_key

Record = dict[str, Any]
Pick = dict[str, Any]


def _key(hparams: dict) -> str:
    return json.dumps(hparams, sort_keys=True, default=str)


def _acc(checkpoint: dict, env: int, part: str) -> float:
    return float(checkpoint[f"env{env}_{part}_acc"])


def _finals(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if len(r["test_envs"]) == 1]


def _pick(candidates: list[Pick]) -> Pick | None:
    # The first maximum: candidates come in a deterministic order (hparams JSON, then step).
    return max(candidates, key=lambda c: c["val_acc"]) if candidates else None


def training_domain_validation(records: Sequence[Record]) -> Pick | None:
    candidates = []
    for r in sorted(_finals(records), key=lambda r: _key(r["hparams"])):
        (test,) = r["test_envs"]
        for c in r["checkpoints"]:
            val = sum(_acc(c, k, "out") for k in r["train_envs"]) / len(r["train_envs"])
            candidates.append(_candidate(r, c, val, _acc(c, test, "in")))
    return _pick(candidates)


def crafted_shift_validation(records: Sequence[Record]) -> Pick | None:
    candidates = []
    for r in sorted(_finals(records), key=lambda r: _key(r["hparams"])):
        (test,) = r["test_envs"]
        for c in r["checkpoints"]:
            keys = [crafted_key(k) for k in r["train_envs"]]
            if all(k in c for k in keys):
                val = sum(float(c[k]) for k in keys) / len(keys)
                candidates.append(_candidate(r, c, val, _acc(c, test, "in")))
    return _pick(candidates)


def oracle(records: Sequence[Record]) -> Pick | None:
    candidates = []
    for r in sorted(_finals(records), key=lambda r: _key(r["hparams"])):
        (test,) = r["test_envs"]
        last = r["checkpoints"][-1]
        candidates.append(_candidate(r, last, _acc(last, test, "out"), _acc(last, test, "in")))
    return _pick(candidates)


def leave_one_domain_out(records: Sequence[Record]) -> Pick | None:
    by_hparams: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_hparams[_key(r["hparams"])].append(r)
    candidates = []
    for key in sorted(by_hparams):
        runs = by_hparams[key]
        finals = _finals(runs)
        if len(finals) != 1:
            continue
        final = finals[0]
        (test,) = final["test_envs"]
        held = {
            next(e for e in r["test_envs"] if e != test): r
            for r in runs
            if len(r["test_envs"]) == 2 and test in r["test_envs"]
        }
        if set(held) != set(final["train_envs"]):
            continue
        steps = {c["step"]: c for c in final["checkpoints"]}
        per_val = [{c["step"]: c for c in held[v]["checkpoints"]} for v in sorted(held)]
        for step in sorted(steps):
            if all(step in p for p in per_val):
                val = sum(_acc(p[step], v, "in") for p, v in zip(per_val, sorted(held), strict=True)) / len(
                    held
                )
                candidates.append(_candidate(final, steps[step], val, _acc(steps[step], test, "in")))
    return _pick(candidates)


def _candidate(record: Record, checkpoint: dict, val: float, test: float) -> Pick:
    return {
        "val_acc": val,
        "test_acc": test,
        "step": checkpoint["step"],
        "hparams": record["hparams"],
        "run_id": record["run_id"],
    }


SELECTIONS: Registry[Callable[[Sequence[Record]], Pick | None]] = Registry.of(
    "model selection",
    {
        "training-val": training_domain_validation,
        "lodo": leave_one_domain_out,
        "oracle": oracle,
        "crafted-shift": crafted_shift_validation,
    },
)


def cells(records: Iterable[Record]) -> dict[tuple, list[Record]]:
    """Records grouped by (data hash, algorithm, test domain, trial seed); LODO's validation runs
    (two held-out domains) join the cell of each test domain they hold out."""
    out: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        for test in r["test_envs"]:
            out[(r["data"]["hash"], r["method"], test, r["trial_seed"])].append(r)
    return out
