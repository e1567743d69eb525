"""Every classic GZSL method under gzsl-ps-v1 on full-size ``synthetic:CUB``: time and accuracy.

Run: ``python benchmarks/bench_classic_methods.py [--data synthetic:CUB] [--methods a,b]``.
Each method runs the whole protocol (grid search on validation, refit, test) with and without
calibration, sharing fits through one :class:`~unseen.protocols.gzsl.FitCache`. Times are quoted
per fit and as a ratio to ESZSL's per-fit time measured in the same process, since absolute
times on a shared 2-core machine drift.
"""

from __future__ import annotations

import argparse
import time

from unseen.data import load_dataset
from unseen.protocols.gzsl import FitCache, GZSLProtocol

METHODS = ("eszsl", "sae", "dap", "ale", "sje", "devise", "latem")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:CUB")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    rows = []
    for method in args.methods.split(","):
        cache = FitCache()
        t = time.perf_counter()
        plain = GZSLProtocol(seed=args.seed).run(dataset, method, cache=cache)
        per_fit = (time.perf_counter() - t) / len(cache)
        calibrated = GZSLProtocol(calibrate=True, seed=args.seed).run(dataset, method, cache=cache)
        rows.append((method, per_fit, len(cache), plain, calibrated))

    per_fit_base = next((r[1] for r in rows if r[0] == "eszsl"), rows[0][1])
    print(
        f"{dataset.name} ({dataset.hash}): {len(dataset.labels)} samples x {dataset.dim} dims; "
        f"protocol gzsl-ps-v1, seed {args.seed}"
    )
    print(
        "| method | fits | s / fit | per-fit time / eszsl | S | U | H | ZSL | AUSUC | calibrated S | U | H |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for method, per_fit, n_fits, plain, cal in rows:
        m, c = plain["metrics"], cal["metrics"]
        print(
            f"| {method} | {n_fits} | {per_fit:.2f} | {per_fit / per_fit_base:.1f} | "
            f"{m['S']:.1f} | {m['U']:.1f} | {m['H']:.1f} | {m['ZSL']:.1f} | {m['AUSUC']:.3f} | "
            f"{c['S']:.1f} | {c['U']:.1f} | {c['H']:.1f} |"
        )


if __name__ == "__main__":
    main()
