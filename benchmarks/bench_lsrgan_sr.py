"""LsrGAN's SR-loss weight on planted data: unseen accuracy at the official weight, a small one and none.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_lsrgan_sr.py``.

On ``synthetic:AWA2`` (``difficulty=0.1``, ``scale=0.03``) with 32- and 64-d features, LsrGAN
(fast preset, seed 0, one fit on the training split, no calibration) at ``sr_weight`` 20 (the
official CUB/AWA value), 1 and 0, beside ESZSL's unseen accuracy U; also the share of the real
seen classes' neighbour pairs whose visual cosine (between class means of the min-max-scaled
features) lies within 0.1 of their semantic cosine, the premise of the SR loss. One seed: the GAN
numbers move by tens of points between settings, so they show what can happen, not a ranking.
"""

from __future__ import annotations

import numpy as np

from unseen.core.arrays import unit_rows
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.generative import MinMaxScaler
from unseen.methods.gzsl.lsrgan import semantic_neighbours
from unseen.protocols.gzsl import evaluate

WEIGHTS = (20.0, 1.0, 0.0)


def within_band(data, k: int = 20, band: float = 0.1) -> float:
    """Share of (seen class, seen neighbour other than itself) pairs whose real visual cosine is
    within ``band`` of their semantic cosine."""
    train = data.train_set()
    X, y = MinMaxScaler(train.features)(train.features), np.asarray(train.labels)
    seen = train.classes.seen_ids
    means = np.stack([X[y == c].mean(axis=0) for c in seen])
    order, sims = semantic_neighbours(train.classes.semantics[seen], train.classes.semantics[seen], k)
    visual = np.take_along_axis(unit_rows(means) @ unit_rows(means).T, order, axis=1)
    return float((np.abs(visual - sims)[:, 1:] <= band).mean())


def main() -> None:
    columns = " | ".join(f"LsrGAN U, λ = {w:g}" for w in WEIGHTS)
    print(f"| features | pairs within 0.1 | ESZSL U | {columns} |")
    print("|---|---|---|" + "---|" * len(WEIGHTS))
    for dim in (32, 64):
        data = synthetic_dataset("AWA2", seed=0, dim=dim, difficulty=0.1, scale=0.03)
        cells = [f"{100 * within_band(data):.0f} %"]
        cells.append(f"{evaluate(GZSL['eszsl']().fit(data.train_set()), data, None).metrics['U']:.1f}")
        cls = GZSL["lsrgan"]
        for weight in WEIGHTS:
            method = cls(seed=0, **{**cls.fast_hparams, "sr_weight": weight}).fit(data.train_set())
            cells.append(f"{evaluate(method, data, None).metrics['U']:.1f}")
        print(f"| {dim}-d | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
