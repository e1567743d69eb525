"""Bi-VAEGAN with and without its transductive terms on planted data, beside ESZSL.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_bi_vaegan_transduction.py``.

On ``synthetic:AWA2`` (64-d, ``difficulty=0.1``, ``scale=0.03``), Bi-VAEGAN's fast preset for 9
epochs (one fit on the training split with ``gzsl-transductive-v1``'s unlabelled features: the
pooled, shuffled test features; no calibration), seeds 0-2: transductive from epoch 2 (the
preset's ``inductive_epochs`` 1) against every epoch inductive (``inductive_epochs`` 9: no
unlabelled-feature critic, no attribute critic, uniform prior), with ESZSL's S, U and H.
"""

from __future__ import annotations

import time

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.protocols.gzsl import evaluate
from unseen.protocols.gzsl_transductive import unlabelled_features

EPOCHS = 9


def main() -> None:
    data = synthetic_dataset("AWA2", seed=0, dim=64, difficulty=0.1, scale=0.03)
    unlabelled = unlabelled_features(data, 0)
    m = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    print("| method | seed | inductive epochs | S | U | H | fit (s) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| eszsl | - | - | {m['S']:.1f} | {m['U']:.1f} | {m['H']:.1f} | - |")
    cls = GZSL["bi-vaegan"]
    for seed in (0, 1, 2):
        for inductive in (cls.fast_hparams["inductive_epochs"], EPOCHS):
            t = time.perf_counter()
            method = cls(seed=seed, **{**cls.fast_hparams, "epochs": EPOCHS, "inductive_epochs": inductive})
            method.fit(data.train_set(), unlabelled=unlabelled)
            fit_s = time.perf_counter() - t
            m = evaluate(method, data, None).metrics
            print(
                f"| bi-vaegan | {seed} | {inductive} of {EPOCHS} | {m['S']:.1f} | {m['U']:.1f} "
                f"| {m['H']:.1f} | {fit_s:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
