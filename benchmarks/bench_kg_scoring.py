"""Scoring the ImageNet-21K label space in bounded memory: hit@k of 50,000 samples against 21,841
classes of 2,048-d rows, as a throughput ratio to the bare matrix product.

Run: ``python benchmarks/bench_kg_scoring.py [--samples 50000 --classes 21841 --dim 2048
--budget-mb 256]``. The full float32 score matrix would take samples x classes x 4 bytes (4.4 GB
at the defaults); :func:`unseen.metrics.ranking.chunked_hits_at_k` scores blocks of samples whose
scores fit ``--budget-mb`` and keeps only each sample's rank of its true class. Measured in one
process, side by side:

- ``bare``: one float32 numpy product ``X_block @ W.T`` of the scorer's block shape, timed alone
  and counted once per block: the floor of any linear scoring.
- ``chunked``: the whole hit@k computation (the products, the bias, the ranks).

Memory: the peak of numpy's allocations traced while ``chunked`` runs (tracemalloc sees numpy's
buffers), beside the inputs' own size; the whole run stays within 4 GB.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

from unseen.metrics.ranking import chunk_rows, chunked_hits_at_k

KS = (1, 2, 5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=21_841)
    parser.add_argument("--dim", type=int, default=2_048)
    parser.add_argument("--budget-mb", type=int, default=256, help="memory for one block of scores")
    parser.add_argument("--repeats", type=int, default=3, help="timings of the bare block product")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((args.classes, args.dim), dtype=np.float32)
    bias = rng.standard_normal(args.classes, dtype=np.float32)
    truth = rng.integers(args.classes, size=args.samples)
    # Samples near their class row, so the ranks spread over the whole range of k.
    features = rows[truth] * np.float32(0.05) + rng.standard_normal(
        (args.samples, args.dim), dtype=np.float32
    )
    budget = args.budget_mb * 2**20
    step = chunk_rows(args.classes, budget)
    blocks = -(-args.samples // step)

    block = features[:step]
    block @ rows.T  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        block @ rows.T
        times.append(time.perf_counter() - start)
    bare = statistics.median(times) * args.samples / len(block)

    tracemalloc.start()
    start = time.perf_counter()
    hits = chunked_hits_at_k(features, rows, truth, KS, bias=bias, max_bytes=budget)
    chunked = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    inputs = features.nbytes + rows.nbytes
    full = args.samples * args.classes * 4
    print(
        f"{args.samples} samples x {args.classes} classes x {args.dim}-d, float32; {blocks} blocks of {step}"
    )
    print(f"full score matrix would be {full / 2**30:.2f} GiB; inputs {inputs / 2**30:.2f} GiB")
    print(f"peak memory while scoring (beyond the inputs): {peak / 2**20:.0f} MiB")
    print(f"bare products: {bare:.1f} s ({args.samples / bare:.0f} samples/s)")
    print(f"chunked hit@k: {chunked:.1f} s ({args.samples / chunked:.0f} samples/s)")
    print(f"throughput ratio (chunked / bare): {bare / chunked:.3f}")
    print("hit@k: " + ", ".join(f"{k} {v:.1f}" for k, v in hits.items()))


if __name__ == "__main__":
    main()
