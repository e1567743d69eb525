"""The sweep driver: plan run ids, skip finished runs, execute the rest, store every outcome.

Resume semantics, which make ``kill -9`` of the driver harmless:

* A run id is the hash of the task's identity dict (data content hash included), so the same
  sweep planned again yields the same ids.
* Before a run is handed to the executor its row is marked ``running``; each outcome is written
  in its own transaction as soon as it arrives (``done`` with the record, or ``failed`` with the
  traceback). A killed driver therefore loses at most the runs in flight; they stay ``running``.
* A relaunch skips ``done`` runs and executes everything else again (``running`` rows left by the
  killed driver and ``failed`` ones). ``put`` is an upsert on the run id, so no record is ever
  duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from unseen.core.record import run_id
from unseen.experiments.executors import Executor
from unseen.experiments.spec import RunSpec
from unseen.experiments.store import ResultStore
from unseen.experiments.tasks import load_cached, task_runner


@dataclass(frozen=True)
class PlannedRun:
    """A run spec with its identity dict and run id."""

    spec: RunSpec
    identity: dict[str, Any]
    run_id: str


@dataclass
class LaunchSummary:
    """What one launch did: runs planned, skipped as already done, finished and failed now."""

    planned: int = 0
    skipped: int = 0
    done: int = 0
    failed: list[str] = field(default_factory=list)


def plan(runs: Sequence[RunSpec]) -> list[PlannedRun]:
    """Run ids for ``runs`` (loading each dataset once); duplicates of one id are dropped."""
    planned, seen = [], set()
    for spec in runs:
        identity = task_runner(spec.task).identity(spec, load_cached(spec.task, spec.data))
        rid = run_id(identity)
        if rid not in seen:
            seen.add(rid)
            planned.append(PlannedRun(spec, identity, rid))
    return planned


def launch(
    planned: Sequence[PlannedRun],
    store: ResultStore,
    executor: Executor,
    progress: Callable[[int, int, str], None] | None = None,
) -> LaunchSummary:
    """Execute the planned runs that are not done yet and write each outcome to ``store``."""
    finished = store.finished_ids()
    todo = [p for p in planned if p.run_id not in finished]
    summary = LaunchSummary(planned=len(planned), skipped=len(planned) - len(todo))
    by_id = {p.run_id: p for p in todo}
    for p in todo:
        store.mark_running(p.run_id, p.identity)
    if progress:
        progress(0, len(todo), "starting")
    items = [{"run_id": p.run_id, "spec": p.spec.to_dict()} for p in todo]
    for outcome in executor.map(items):
        p = by_id[outcome["run_id"]]
        if outcome["status"] == "done":
            store.put(outcome["record"], p.identity)
            summary.done += 1
        else:
            store.mark_failed(p.run_id, p.identity, outcome["error"])
            summary.failed.append(p.run_id)
        if progress:
            progress(summary.done + len(summary.failed), len(todo), p.spec.label())
    return summary
