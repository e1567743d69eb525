"""GZSL scoring + metrics throughput on a CUB-shaped synthetic set, as a ratio to raw matmul.

Run: ``python benchmarks/bench_gzsl_eval.py [--repeats 7]``. Everything is measured in one
process, side by side, so the ratios hold on a noisy shared machine where absolute times do not:

- ``matmul``: one bare float32 numpy product ``X @ W`` with ``W`` of shape (dim, n_classes): the
  floor for scoring any linear compatibility model, and this machine's matmul rate.
- ``scores``: ESZSL's ``scores`` on the same test features (normalisation + that product + checks).
- ``metrics``: S, U, H, ZSL from those scores.
- ``ausuc``: the exact seen-unseen curve and its area.
- ``evaluate``: the protocol's whole test evaluation (scores + every metric, with calibration).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from unseen.data.model import SplitName
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.metrics import gzsl_accuracies, seen_unseen_curve, zsl_accuracy
from unseen.protocols.gzsl import evaluate


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    data = synthetic_dataset("CUB", seed=0)
    method = GZSL["eszsl"](alpha=1.0, gamma=1.0).fit(data.train_set())
    X_s = data.split_features(SplitName.TEST_SEEN)
    X_u = data.split_features(SplitName.TEST_UNSEEN)
    y_s, y_u = data.split_labels(SplitName.TEST_SEEN), data.split_labels(SplitName.TEST_UNSEEN)
    X = np.vstack([X_s, X_u])
    y = np.concatenate([y_s, y_u])
    seen = data.classes.seen
    n, d = X.shape
    W = np.random.default_rng(0).normal(size=(d, data.classes.n_classes)).astype(np.float32)
    scores = method.scores(X)
    n_s = len(X_s)

    timings = {
        "matmul": _median_time(lambda: X @ W, args.repeats),
        "scores": _median_time(lambda: method.scores(X), args.repeats),
        "metrics": _median_time(
            lambda: (
                gzsl_accuracies(scores[:n_s], y_s, scores[n_s:], y_u),
                zsl_accuracy(scores[n_s:], y_u, data.classes.unseen_ids),
            ),
            args.repeats,
        ),
        "ausuc": _median_time(lambda: seen_unseen_curve(scores, y, seen).ausuc, args.repeats),
        "evaluate": _median_time(lambda: evaluate(method, data, 0.5), args.repeats),
    }
    base = timings["matmul"]
    print(
        f"synthetic:CUB test set: {n} samples x {d} dims, {data.classes.n_classes} classes; "
        f"median of {args.repeats}; matmul rate {2 * n * d * W.shape[1] / base / 1e9:.1f} GFLOP/s"
    )
    print("| step | median time (ms) | samples/s | time / matmul |")
    print("|---|---|---|---|")
    for step, t in timings.items():
        print(f"| {step} | {1e3 * t:.2f} | {n / t:,.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
