"""What DomainBed's image augmentation adds to a DG training step on full-size images.

Run: ``python benchmarks/bench_augmentation.py [--batch 32] [--domains 3] [--size 224] [--repeats 5]
[--threads 1]``.

One ``dg-lodo-v1`` step on images trains ERM's EfficientNet-Lite0 on one minibatch per training
domain; with ``data_augmentation`` (the large-image default) each minibatch first goes through
:class:`unseen.data.augmentation.ImageAugmentation`. Both are timed in this process, alternating,
on the same random images (DomainBed's defaults: 3 training domains, batch 32, 224 px); the
script prints seconds per step of each and the augmentation's share of an augmented step.
"""

from __future__ import annotations

import argparse
import time

import torch

from unseen.data.augmentation import ImageAugmentation
from unseen.methods import DG


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="images per domain per step")
    parser.add_argument("--domains", type=int, default=3, help="training domains")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    shape = (3, args.size, args.size)
    draws = torch.Generator().manual_seed(0)
    minibatches = [
        (torch.rand(args.batch, *shape, generator=draws), torch.randint(10, (args.batch,), generator=draws))
        for _ in range(args.domains)
    ]
    model = DG["erm"](shape, 10, args.domains, {"batch_size": args.batch}, seed=0, device="cpu")
    model.train()
    augment = ImageAugmentation()

    def augmentation() -> None:
        for x, _ in minibatches:
            augment(x, draws)

    def update() -> None:
        model.update(minibatches)

    timings: dict[str, list[float]] = {"augmentation": [], "update": []}
    augmentation(), update()  # warm-up
    for _ in range(args.repeats):
        for name, work in (("augmentation", augmentation), ("update", update)):
            start = time.perf_counter()
            work()
            timings[name].append(time.perf_counter() - start)
    aug = sum(timings["augmentation"]) / args.repeats
    step = sum(timings["update"]) / args.repeats
    print(
        f"{args.domains} domains x {args.batch} images of {args.size} px, torch threads {args.threads}, "
        f"{args.repeats} repeats"
    )
    print("| work per step | s |")
    print("|---|---|")
    print(f"| ImageAugmentation of every minibatch | {aug:.3f} |")
    print(f"| ERM update (EfficientNet-Lite0 forward + backward + Adam) | {step:.3f} |")
    print(f"augmentation share of an augmented step: {aug / (aug + step):.1%}")


if __name__ == "__main__":
    main()
