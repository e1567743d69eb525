"""What a DG training step costs on frozen features, against a bare loop on the same head.

Run: ``python benchmarks/bench_frozen_dg.py [--data npz-domains:/tmp/oc10-effnet.npz]
[--featurizer mlp|linear] [--steps 200] [--repeats 5] [--threads 1]``.

Without ``--data``, random features of Office-Caltech10's size (2,533 x 1,280, 4 domains,
10 classes) stand in; a step's cost depends on the shapes only. Two loops train the same
network (the ``featurizer`` head, then the linear classifier) from the same initial weights,
alternating timed blocks of ``--steps`` steps in this process:

- ``dg-lodo-v1``: :meth:`unseen.protocols.dg.DGProtocol.train_on` with ERM, held-out domain 0,
  checkpoint only at the block's last step: minibatch sampling on the in-memory features, the
  algorithm's update, the bookkeeping, one evaluation of every domain's in and out parts;
- bare: per step, the same minibatch draw, forward, cross-entropy, backward and (fused) Adam step
  on the concatenated batch, nothing else.

It prints steps/s of each (median over blocks) and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from unseen.data.domains import DomainDataset, load_domains
from unseen.methods import DG
from unseen.methods.dg.base import adam
from unseen.protocols.dg import DGProtocol


def random_features() -> DomainDataset:
    rng = np.random.default_rng(0)
    sizes = (958, 1123, 157, 295)  # Office-Caltech10: amazon, caltech10, dslr, webcam
    domains = np.repeat(np.arange(4), sizes)
    labels = np.concatenate([np.arange(n) % 10 for n in sizes])
    features = rng.random((len(labels), 1280), dtype=np.float32)
    return DomainDataset("random", features, labels, domains, tuple("abcdefghij"), ("a", "c", "d", "w"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="npz-domains:FILE (default: random features)")
    parser.add_argument("--featurizer", default="mlp", choices=("mlp", "linear"))
    parser.add_argument("--steps", type=int, default=200, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks of each loop")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_domains(args.data) if args.data else random_features()
    hparams = {"featurizer": args.featurizer}
    protocol = DGProtocol((0,), steps=args.steps, checkpoint_freq=args.steps)
    splits = data.in_out_split(0)
    train_envs = [k for k in range(data.n_domains) if k != 0]

    def protocol_block() -> None:
        protocol.train_on(data, "erm", hparams, splits, train_envs, device="cpu")

    model = DG["erm"](data.input_shape, data.n_classes, len(train_envs), hparams, seed=0, device="cpu")
    network = model.network
    optimizer = adam(network.parameters(), lr=model.params["lr"])  # the algorithms' own (fused) Adam
    inputs, labels = torch.from_numpy(data.inputs.copy()), torch.from_numpy(data.labels.copy())
    train_idx = [torch.as_tensor(splits[k][0]) for k in train_envs]
    batch, draws = model.params["batch_size"], torch.Generator().manual_seed(0)

    def bare_block() -> None:
        network.train()
        for _ in range(args.steps):
            rows = torch.cat([idx[torch.randint(len(idx), (batch,), generator=draws)] for idx in train_idx])
            loss = F.cross_entropy(network(inputs[rows]), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    rates: dict[str, list[float]] = {"dg-lodo-v1 (ERM)": [], "bare loop": []}
    protocol_block(), bare_block()  # warm-up
    for _ in range(args.repeats):
        for name, block in zip(rates, (protocol_block, bare_block), strict=True):
            start = time.perf_counter()
            block()
            rates[name].append(args.steps / (time.perf_counter() - start))
    print(f"{data.name}: {data.inputs.shape}, featurizer {args.featurizer}, batch {batch} x 3 domains")
    print("| loop | steps/s (median) | range |")
    print("|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f}-{max(values):.1f} |")
    ratio = [a / b for a, b in zip(*rates.values(), strict=True)]
    print(f"| ratio dg-lodo-v1 / bare | {statistics.median(ratio):.2f} | {min(ratio):.2f}-{max(ratio):.2f} |")


if __name__ == "__main__":
    main()
