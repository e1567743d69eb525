"""Per held-out domain tables of ``gzsl-dg-v1`` runs in a results store (docs/gzsl-dg.md).

    python benchmarks/gzsl_dg_table.py --store oc10-kg.sqlite [--store oc10-text.sqlite ...] [--per-seed]

One row per store, dataset, method and held-out domain: S, U, H, ZSL on the held-out domain and H on the
training domains' test parts, mean ± standard deviation over the seeds (n given when there are
fewer than three), then per method the mean over the held-out domains of each seed's H (mean ±
std over seeds, from seeds that ran every domain); with ``--per-seed``, also each such seed's means
over the held-out domains of every column; with ``--uncalibrated``, the metrics before calibrated
stacking. Reads the stores only.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from unseen.experiments.store import ResultStore


def cell(values: list[float]) -> str:
    text = f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else f"{values[0]:.1f}"
    return text + (f" (n={len(values)})" if len(values) < 3 else "")


COLUMNS = ("S", "U", "H", "ZSL")


def metrics_of(record: dict, uncalibrated: bool) -> list[float]:
    """S, U, H, ZSL on the held-out domain and H on the training domains' test parts; with
    ``uncalibrated``, before calibrated stacking (the same values for runs without it)."""
    suffix = "_uncalibrated" if uncalibrated else ""
    held = record.get(f"metrics{suffix}") or record["metrics"]
    train = record.get(f"metrics_train_domains{suffix}") or record["metrics_train_domains"]
    return [held[k] for k in COLUMNS] + [train["H"]]


def rows_of(store: str, per_seed_rows: bool = False, uncalibrated: bool = False) -> list[str]:
    runs = defaultdict(list)  # (dataset, method, test_env, domain) -> records
    with ResultStore(store, read_only=True) as results:
        records = results.records(task="gzsl-dg")
    for record in records:
        key = (record["data"]["name"], record["method"], record["test_env"], record["test_domain"])
        runs[key].append(record)
    lines = []
    for data, method in sorted({key[:2] for key in runs}):
        per_seed = defaultdict(dict)
        for (d, m, env, domain), records in sorted(runs.items()):
            if (d, m) != (data, method):
                continue
            values = np.array([metrics_of(r, uncalibrated) for r in records])
            lines.append(
                f"| {store} | {data} | {method} | {domain} | " + " | ".join(map(cell, values.T)) + " |"
            )
            for r, v in zip(records, values, strict=True):
                per_seed[r["seed"]][env] = v
        envs = {key[2] for key in runs if key[:2] == (data, method)}
        complete = {seed: np.mean(list(v.values()), axis=0) for seed, v in per_seed.items() if set(v) == envs}
        if not complete:
            continue
        label = f"mean of the {len(envs)} domains"
        if per_seed_rows:
            for seed, m in sorted(complete.items()):
                row = " | ".join(f"{x:.1f}" for x in m)
                lines.append(f"| {store} | {data} | {method} | seed {seed}, {label} | {row} |")
        means = [m[COLUMNS.index("H")] for m in complete.values()]
        lines.append(f"| {store} | {data} | {method} | {label} | | | {cell(means)} | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", required=True, help="a results store (repeatable)")
    parser.add_argument(
        "--per-seed", action="store_true", help="also each seed's means over the held-out domains"
    )
    parser.add_argument("--uncalibrated", action="store_true", help="the metrics before calibrated stacking")
    args = parser.parse_args()
    print("| store | dataset | method | held-out domain | S | U | H | ZSL | train-domain H |")
    print("|---|---|---|---|---|---|---|---|---|")
    for store in args.store:
        print("\n".join(rows_of(store, args.per_seed, args.uncalibrated)))


if __name__ == "__main__":
    main()
