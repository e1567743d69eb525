"""EfficientNet-Lite0 feature extraction on CPU: images/s by batch size, torch threads and memory layout.

Run: ``python benchmarks/bench_extract.py [--images 64] [--repeats 1]``. Everything is measured in
one process, side by side, on the same fixed images (the first ``--images`` Office-Caltech10
photos, cycling through the domains and classes, when ``../shared/data`` has them; else built-in
MNIST digits), decoded once beforehand so that disk reads are not timed:

- **encode**: ``encode_images`` (PIL crop + resize, normalisation, network) for every combination
  of batch size 1 / 8 / 32 / 64, torch intra-op threads 1 / 2, and channels-last on / off; images/s
  and the ratio to the batch-1, one-thread, contiguous baseline. Each configuration runs one
  warm-up batch first; the best of ``--repeats`` passes is reported.
- **preprocess only**: the PIL and tensor steps without the network, to show how much of the
  time the network takes.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from unseen.backbones.efficientnet_lite import EfficientNetLite0
from unseen.data.images import load_images

OFFICE = Path(__file__).resolve().parents[2] / "shared" / "data" / "office-caltech10-images"
BATCHES = (1, 8, 32, 64)
THREADS = (1, 2)


def fixed_images(n: int) -> tuple[str, list]:
    spec = f"folder:{OFFICE}?per_class=4" if OFFICE.is_dir() else "builtin:mnist?per_class=10"
    data = load_images(spec)
    step = max(len(data) // n, 1)
    return spec, [data.load(i) for i in range(0, len(data), step)[:n]]


def images_per_second(encoder: EfficientNetLite0, images: list, batch: int, repeats: int) -> float:
    encoder.encode_images(images[:batch], batch_size=batch)  # warm-up: first-call allocations
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode_images(images, batch_size=batch)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    spec, images = fixed_images(args.images)
    print(f"## EfficientNet-Lite0 extraction on CPU: {len(images)} images of {spec}")
    print("| batch | threads | channels-last | images/s | ratio to batch 1, 1 thread, contiguous |")
    print("|---|---|---|---|---|")
    baseline = None
    for channels_last, threads, batch in itertools.product((False, True), THREADS, BATCHES):
        encoder = EfficientNetLite0(device="cpu", threads=threads, channels_last=channels_last)
        rate = images_per_second(encoder, images, batch, args.repeats)
        baseline = baseline or rate
        layout = "on" if channels_last else "off"
        print(f"| {batch} | {threads} | {layout} | {rate:.2f} | {rate / baseline:.2f} |")
    encoder = EfficientNetLite0(device="cpu")
    start = time.perf_counter()
    for i in range(0, len(images), 32):
        encoder.preprocess(images[i : i + 32])
    rate = len(images) / (time.perf_counter() - start)
    print(f"\npreprocess only (PIL crop + resize, normalisation; batches of 32): {rate:.0f} images/s")


if __name__ == "__main__":
    main()
