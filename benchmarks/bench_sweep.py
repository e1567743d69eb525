"""Sweep throughput by executor, store write throughput, and `unseen results` on 100,000 runs.

Run: ``python benchmarks/bench_sweep.py [--runs 200] [--jobs 2] [--store-runs 100000]``.
Everything is measured in one process, side by side:

- **executors**: one sweep of ``--runs`` fast GZSL runs (ESZSL with its validation grid search
  on a small synthetic CUB, a few tenths of a second of work each) executed serially, on a process pool of
  ``--jobs`` workers and on a local Ray instance with ``--jobs`` CPUs, each into a fresh store;
  runs/s and the speed-up over serial. Startup (spawning workers, starting Ray) is included:
  it is what a user waits for.
- **store writes**: ``ResultStore.put`` of real records (one transaction each, WAL), against
  the baseline of writing the same JSON to one file per record with the project's atomic writer.
- **results latency**: a store with ``--store-runs`` simulated done runs (trimmed records:
  identity, data, metrics; 25 methods x 40 datasets x 100 seeds at the default size) bulk-loaded,
  then the whole of ``unseen results`` (read every row, build the tables, render Markdown),
  against the baseline of reading and JSON-decoding every record.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from unseen.core.io import write_json
from unseen.core.record import run_id
from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.spec import RunSpec
from unseen.experiments.store import ResultStore
from unseen.report.results import build_tables, render

DATA = "synthetic:CUB?scale=0.1&dim=64"


def bench_executors(n_runs: int, jobs: int, folder: Path) -> list[tuple[str, float, float]]:
    runs = [
        RunSpec("gzsl", DATA, "eszsl", seed, {}, {"search": "grid", "calibrate": calibrate})
        for seed in range(n_runs // 2)
        for calibrate in (False, True)
    ]
    planned = plan(runs)
    out = []
    for name in ("serial", "pool", "ray"):
        with ResultStore(folder / f"{name}.sqlite") as store:
            t = time.perf_counter()
            summary = launch(planned, store, make_executor(name, jobs=jobs))
            elapsed = time.perf_counter() - t
            assert summary.done == len(planned), summary
        out.append((name, elapsed, len(planned) / elapsed))
    return out


def bench_store_writes(folder: Path, n: int) -> tuple[float, float]:
    runs = [RunSpec("gzsl", DATA, "eszsl", 0, {}, {"search": "default"})]
    with ResultStore(folder / "seed.sqlite") as store:
        launch(plan(runs), store, make_executor("serial"))
        template = store.records()[0]
    records = [{**template, "run_id": f"{i:016x}"} for i in range(n)]
    with ResultStore(folder / "writes.sqlite") as store:
        t = time.perf_counter()
        for r in records:
            store.put(r)
        store_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for r in records:
        write_json(folder / "json" / f"{r['run_id']}.json", r)
    files_rate = n / (time.perf_counter() - t)
    return store_rate, files_rate


def bench_results_latency(folder: Path, n: int) -> tuple[float, float]:
    path = folder / "big.sqlite"
    ResultStore(path).close()  # creates the schema
    rows = []
    for i in range(n):
        method, data, seed = f"method{i % 25}", f"data{(i // 25) % 40}", i // 1000
        identity = {
            "task": "gzsl",
            "protocol": "gzsl-ps-v1",
            "data_hash": data,
            "method": method,
            "calibrate": False,
            "search": "grid",
            "seed": seed,
            "hparams": {},
        }
        rid = run_id(identity)
        record = {
            "run_id": rid,
            "task": "gzsl",
            "protocol": "gzsl-ps-v1",
            "method": method,
            "seed": seed,
            "calibrate": False,
            "data": {"name": data, "hash": data},
            "metrics": {"S": 50.0, "U": 40.0, "H": 44.4 + (i % 7), "ZSL": 45.0, "AUSUC": 0.3},
        }
        rows.append(
            (rid, "gzsl", "gzsl-ps-v1", data, data, method, seed, json.dumps(identity), json.dumps(record))
        )
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO runs (run_id, status, task, protocol, data_name, data_hash, method, seed, spec_json,"
            " record_json) VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    with ResultStore(path) as store:
        t = time.perf_counter()
        text = render(build_tables(store.records(status=None)), "markdown")
        results_s = time.perf_counter() - t
        assert "method24" in text
    t = time.perf_counter()
    with sqlite3.connect(path) as conn:
        decoded = [json.loads(r[0]) for r in conn.execute("SELECT record_json FROM runs")]
    baseline_s = time.perf_counter() - t
    assert len(decoded) == n
    return results_s, baseline_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--store-runs", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"## executors: {args.runs} runs ({DATA}, eszsl grid search), {args.jobs} jobs")
        print("| executor | wall time (s) | runs/s | speed-up over serial |\n|---|---|---|---|")
        results = bench_executors(args.runs, args.jobs, folder)
        serial_rate = results[0][2]
        for name, elapsed, rate in results:
            print(f"| {name} | {elapsed:.1f} | {rate:.2f} | {rate / serial_rate:.2f} |")
        store_rate, files_rate = bench_store_writes(folder, args.writes)
        print(f"\n## store writes: {args.writes} real GZSL records, one transaction each")
        print("| writer | records/s | ratio to JSON files |\n|---|---|---|")
        print(f"| ResultStore.put | {store_rate:.0f} | {store_rate / files_rate:.2f} |")
        print(f"| atomic JSON file per record | {files_rate:.0f} | 1.00 |")
        results_s, baseline_s = bench_results_latency(folder, args.store_runs)
        print(f"\n## unseen results on {args.store_runs:,} simulated runs")
        print("| step | seconds | ratio to reading + decoding every record |\n|---|---|---|")
        print(f"| read + tables + Markdown | {results_s:.2f} | {results_s / baseline_s:.2f} |")
        print(f"| read + json.loads only | {baseline_s:.2f} | 1.00 |")


if __name__ == "__main__":
    main()
