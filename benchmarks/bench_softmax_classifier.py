"""The generative family's final softmax classifier: closed-form steps against autograd + ``torch.optim``.

Run: ``python benchmarks/bench_softmax_classifier.py [--samples N] [--classes C] [--dim D]``.

Both loops train ``log softmax(W x + b)`` with the mean NLL loss and Adam (lr 1e-3, beta1 0.5)
on the same minibatches (one seeded :class:`BatchSampler`): the reference is the textbook
``nll_loss(...).backward(); opt.step()`` over an ``nn.Linear``; ours is
:func:`unseen.methods.gzsl.generative.train_softmax`. Defaults are CADA-VAE's CUB classifier
(150 x 200 seen + 50 x 400 unseen latent samples of 64 dims, batch 32). The two run in
alternation, ``--repeats`` times each, and the script prints the median time per step of each,
their ratio, and the largest weight difference after training.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from unseen.methods.gzsl.generative import (
    BatchSampler,
    SoftmaxClassifier,
    init_weights,
    stream,
    train_softmax,
)


def reference(X: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int, batch: int) -> SoftmaxClassifier:
    gen = stream(0, "bench")
    clf = init_weights(SoftmaxClassifier(X.shape[1], n_classes), gen)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3, betas=(0.5, 0.999))
    sampler = BatchSampler(len(X), batch, gen, X.device)
    for _ in range(epochs):
        for idx in sampler.epoch():
            opt.zero_grad(set_to_none=True)
            nn.functional.nll_loss(clf(X[idx]), y[idx]).backward()
            opt.step()
    return clf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.samples, args.dim, generator=g)
    y = torch.randint(args.classes, (args.samples,), generator=g)
    steps = args.epochs * -(-args.samples // args.batch)
    times: dict[str, list[float]] = {"autograd + torch.optim.Adam": [], "train_softmax": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        ref = reference(X, y, args.classes, args.epochs, args.batch)
        times["autograd + torch.optim.Adam"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = train_softmax(X, y, args.classes, args.epochs, stream(0, "bench"), batch_size=args.batch)
        times["train_softmax"].append(time.perf_counter() - t)
    print(
        f"{args.samples} samples x {args.dim} dims, {args.classes} classes, batch {args.batch}, "
        f"{steps} steps, torch threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    print("| loop | us per step | ratio |")
    print("|---|---|---|")
    base = statistics.median(times["autograd + torch.optim.Adam"])
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts) / steps * 1e6:.0f} | {base / statistics.median(ts):.2f} |")
    diff = (ref.fc.weight - ours.fc.weight).abs().max().item()
    print(f"largest weight difference after training: {diff:.1e}")


if __name__ == "__main__":
    main()
