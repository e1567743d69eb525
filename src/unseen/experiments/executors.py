"""Executors: where runs execute. Serial, a local process pool, or a Ray cluster.

Every executor takes the same work items (plain dicts, so they cross process and machine
boundaries) and yields outcomes as runs finish, in completion order. Workers never touch the
results store: they return outcomes to the driver, which alone writes them, so a store on a
laptop can collect a cluster's runs and no two processes ever race on one record.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from unseen.core.errors import ExecutorError, SpecError
from unseen.core.registry import Registry

Outcome = dict[str, Any]
"""``{"run_id", "status": "done", "record"}`` or ``{"run_id", "status": "failed", "error"}``."""


def execute(item: dict[str, Any]) -> Outcome:
    """Run one work item ``{"run_id", "spec"}``; never raises (a failure becomes an outcome)."""
    from unseen.experiments.spec import RunSpec
    from unseen.experiments.tasks import load_cached, task_runner

    rid = item["run_id"]
    try:
        spec = RunSpec.from_dict(item["spec"])
        record = task_runner(spec.task).run(spec, load_cached(spec.task, spec.data))
        if record.get("run_id") != rid:
            raise RuntimeError(
                f"run {rid}: the task returned a record with run id {record.get('run_id')}; "
                "the data changed between planning and running"
            )
        return {"run_id": rid, "status": "done", "record": record}
    except Exception:
        return {"run_id": rid, "status": "failed", "error": traceback.format_exc()}


class Executor:
    """Runs work items and yields their outcomes as they complete."""

    name = ""

    def map(self, items: Iterable[dict[str, Any]]) -> Iterator[Outcome]:
        raise NotImplementedError


class SerialExecutor(Executor):
    """One run after another in this process (debugging, tiny sweeps)."""

    name = "serial"

    def __init__(self, jobs: int = 1, address: str | None = None) -> None:
        pass

    def map(self, items: Iterable[dict[str, Any]]) -> Iterator[Outcome]:
        for item in items:
            yield execute(item)


_THREAD_LIMITS: list[Any] = []


def _init_worker(driver: int | None = None) -> None:
    # Each worker is one of ``jobs`` processes: one math thread each (torch and the BLAS behind
    # numpy) avoids oversubscribing the cores, which makes spinning BLAS threads several times
    # slower than one thread.
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    _THREAD_LIMITS.append(threadpool_limits(1))
    if driver is not None:
        threading.Thread(target=_exit_without, args=(driver,), daemon=True).start()


def _exit_without(driver: int) -> None:
    # A driver killed with SIGKILL cannot stop its pool, and idle workers would wait on the task
    # queue forever: each worker leaves as soon as it is orphaned (its results could go nowhere).
    while os.getppid() == driver:
        time.sleep(0.5)
    os._exit(1)


class PoolExecutor(Executor):
    """A pool of ``jobs`` local worker processes (spawned: safe with torch and SQLite)."""

    name = "pool"

    def __init__(self, jobs: int | None = None, address: str | None = None) -> None:
        self.jobs = max(1, jobs or os.cpu_count() or 1)

    def map(self, items: Iterable[dict[str, Any]]) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            self.jobs, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
        ) as pool:
            futures = [pool.submit(execute, item) for item in items]
            for future in as_completed(futures):
                yield future.result()


class RayExecutor(Executor):
    """Ray tasks, one CPU each: a running cluster (``address``) or a local instance.

    Needs the ``ray`` extra (``pip install -e ".[ray]"``). Workers need unseen installed and the
    data specs readable where they run.
    """

    name = "ray"

    def __init__(self, jobs: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise SpecError(
                'the ray executor needs Ray: install the extra with `pip install -e ".[ray]"`, '
                "or use --executor pool."
            ) from None
        self._ray = ray
        self.address = address
        self.jobs = jobs

    def map(self, items: Iterable[dict[str, Any]]) -> Iterator[Outcome]:
        ray = self._ray
        items = list(items)
        if not items:
            return
        started_here = not ray.is_initialized()
        if started_here:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            elif self.jobs:
                kwargs["num_cpus"] = self.jobs
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise ExecutorError(
                    f"cannot reach a Ray cluster at --address {self.address}: {exc} Start one with "
                    "`ray start --head`, pass its HOST:PORT, or omit --address for a local Ray instance."
                ) from None
        try:
            remote = ray.remote(num_cpus=1)(_ray_execute)
            pending = [remote.remote(item) for item in items]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            if started_here:
                ray.shutdown()


def _ray_execute(item: dict[str, Any]) -> Outcome:
    _init_worker()
    return execute(item)


EXECUTORS: Registry[Callable[..., Executor]] = Registry.of(
    "executor", {cls.name: cls for cls in (SerialExecutor, PoolExecutor, RayExecutor)}
)


def make_executor(name: str, jobs: int | None = None, address: str | None = None) -> Executor:
    return EXECUTORS[name](jobs=jobs, address=address)
