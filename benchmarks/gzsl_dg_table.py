"""Per held-out domain tables of ``gzsl-dg-v1`` runs in a results store (docs/gzsl-dg.md).

    python benchmarks/gzsl_dg_table.py --store oc10-kg.sqlite [--store oc10-text.sqlite ...]

One row per store, dataset, method and held-out domain: S, U, H, ZSL on the held-out domain and H on the
training domains' test parts, mean ± standard deviation over the seeds (n given when there are
fewer than three), then per method the mean over the held-out domains of each seed's H (mean ±
std over seeds, from seeds that ran every domain). Reads the stores only.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from unseen.experiments.store import ResultStore


def cell(values: list[float]) -> str:
    text = f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else f"{values[0]:.1f}"
    return text + (f" (n={len(values)})" if len(values) < 3 else "")


def rows_of(store: str) -> list[str]:
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
            held = {k: [r["metrics"][k] for r in records] for k in ("S", "U", "H", "ZSL")}
            train_h = [r["metrics_train_domains"]["H"] for r in records]
            lines.append(
                f"| {store} | {data} | {method} | {domain} | "
                + " | ".join(cell(held[k]) for k in ("S", "U", "H", "ZSL"))
                + f" | {cell(train_h)} |"
            )
            for r in records:
                per_seed[r["seed"]][env] = r["metrics"]["H"]
        envs = {key[2] for key in runs if key[:2] == (data, method)}
        means = [np.mean(list(h.values())) for h in per_seed.values() if set(h) == envs]
        if means:
            lines.append(
                f"| {store} | {data} | {method} | mean of the {len(envs)} domains | | | {cell(means)} | | |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", required=True, help="a results store (repeatable)")
    args = parser.parse_args()
    print("| store | dataset | method | held-out domain | S | U | H | ZSL | train-domain H |")
    print("|---|---|---|---|---|---|---|---|---|")
    for store in args.store:
        print("\n".join(rows_of(store)))


if __name__ == "__main__":
    main()
