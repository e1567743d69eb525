"""Fit and score time of every few-shot adapter at ImageNet scale, on planted paired embeddings.

Run: ``python benchmarks/bench_adapters.py [--classes 1000] [--dim 1024] [--shots 16] [--test 10]
[--device cpu] [--methods tip-adapter,gda]``.

The data is ``synthetic-vl:imagenet`` (:func:`unseen.data.paired.synthetic_paired`): 1,000
classes of 1,024-d embeddings, the width of CLIP RN50's (ViT-B/16's is 512: ``--dim 512``),
with ``--shots`` support and ``min(shots, 4)`` validation samples per class drawn as the
few-shot protocols do, and ``--test`` test samples per class (10,000 at the default). Each
method is fitted once on the support and validation sets (seed 1) and scores the whole test
set; the table gives the wall time of ``fit`` and of ``scores``, top-1 accuracy on the test set
and what the method chose on validation. Methods run on ``--device`` (default: CUDA when
available, else CPU) with the threads torch was given.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from unseen.data.paired import SYNTHETIC_VL, synthetic_paired
from unseen.methods.registry import VLM
from unseen.methods.vlm import FewShotSet

VAL_SHOTS_CAP = 4


def few_shot_sets(
    classes: int, dim: int, shots: int, test: int
) -> tuple[FewShotSet, FewShotSet, np.ndarray, np.ndarray]:
    """Support, validation, test features and test labels of one planted dataset."""
    val_shots = min(shots, VAL_SHOTS_CAP)
    shape = {
        **SYNTHETIC_VL["imagenet"],
        "classes": classes,
        "dim": dim,
        "train": shots + val_shots,
        "test": test,
    }
    data = synthetic_paired(**shape)
    rng = np.random.default_rng(1)
    support, val = [], []
    for c in range(classes):
        members = rng.permutation(np.flatnonzero((data.labels == c) & ~data.test_mask))
        support.append(members[:shots])
        val.append(members[shots:])

    def subset(rows: np.ndarray) -> FewShotSet:
        return FewShotSet(data.features[rows], data.labels[rows], classes, data.class_text)

    return (
        subset(np.concatenate(support)),
        subset(np.concatenate(val)),
        data.features[data.test_mask],
        data.labels[data.test_mask],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--test", type=int, default=10, help="test samples per class")
    parser.add_argument("--device", default=None)
    parser.add_argument("--methods", default=",".join(VLM), help="comma-separated VLM method names")
    args = parser.parse_args()
    support, val, X_test, y_test = few_shot_sets(args.classes, args.dim, args.shots, args.test)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"## {args.classes} classes, {args.dim}-d, {args.shots} shots + {len(val.labels) // args.classes} "
        f"validation per class, {len(y_test):,} test samples; {device}, {torch.get_num_threads()} threads"
    )
    print("| method | fit (s) | score (s) | accuracy (%) | chosen on validation |\n|---|---|---|---|---|")
    for name in args.methods.split(","):
        method = VLM[name](seed=1, device=device)
        t = time.perf_counter()
        method.fit(support, val)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        scores = method.scores(X_test)
        score_s = time.perf_counter() - t
        accuracy = 100.0 * float(np.mean(scores.argmax(axis=1) == y_test))
        chosen = ", ".join(f"{k}={v:.4g}" for k, v in method.selected.items()) or "-"
        print(f"| {name} | {fit_s:.2f} | {score_s:.2f} | {accuracy:.1f} | {chosen} |", flush=True)


if __name__ == "__main__":
    main()
