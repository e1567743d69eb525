"""Test-time adaptation gains on Office-Caltech10 images, leave one domain out, EfficientNet-Lite0.

For each domain in turn: the pretrained EfficientNet-Lite0 with a linear probe fitted on the
other three domains (its L2 strength chosen on their held-out splits) is the source model; every
TTA method then adapts online on the held-out domain's unlabelled stream (``tta-stream-v1``,
``single`` mode, batches of 64, stream seed 0). Methods that adapt BatchNorm or the featurizer
run the network on the images; T3A and AdaNPC keep the featurizer frozen, so they run on the
cached features, which equal the frozen network's outputs. Prints a Markdown table of accuracy
and gain over the source model, and writes every number to ``--out`` (JSON).

    python examples/tta_office_caltech10.py --data ../shared/data/office-caltech10-images
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from torch import nn

from unseen.backbones.base import ENCODERS
from unseen.backbones.cache import FeatureCache
from unseen.backbones.extract import extract_features
from unseen.core.io import write_json
from unseen.data.domains import DomainDataset
from unseen.data.images import load_images
from unseen.methods.registry import TTA
from unseen.methods.tta.norm import replace_batchnorm
from unseen.methods.tta.pretrained import probe_source
from unseen.protocols.tta import TargetDomain, TTAStreamProtocol

IMAGE_METHODS = ("bn-adapt", "alpha-bn", "tent", "shot-im")
BN_CHECK_DOMAIN, BN_CHECK_PER_CLASS = "amazon", 7


def batch_statistics_effect(encoder, root: str) -> dict[str, float]:
    """How much test-batch BatchNorm statistics change the backbone, on one batch of Amazon images.

    Mean cosine similarity of the features under test-batch statistics (``bn-adapt``'s
    normalisation) to those under the running statistics, and how often the network's own
    ImageNet head predicts the same class under both.
    """
    batch = load_images(f"folder:{root}?domains={BN_CHECK_DOMAIN}&per_class={BN_CHECK_PER_CLASS}")
    x = encoder.preprocess([batch.load(i) for i in range(len(batch))])
    running, head = encoder.torch_featurizer(), encoder.imagenet_classifier()
    adapted = encoder.torch_featurizer()
    replace_batchnorm(adapted, alpha=0.0)
    with torch.no_grad():
        a, b = running(x), adapted(x)
        agree = (head(a).argmax(1) == head(b).argmax(1)).float().mean()
    return {
        "images": len(batch),
        "cosine": float(nn.functional.cosine_similarity(a, b).mean()),
        "imagenet_top1_agreement": float(agree),
    }


FEATURE_METHODS = ("t3a", "adanpc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Office-Caltech10 images (DomainBed folder layout).")
    parser.add_argument("--out", default="tta-office-caltech10.json")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--methods", default=",".join(IMAGE_METHODS + FEATURE_METHODS))
    parser.add_argument("--bn-check-only", action="store_true", help="Only the BatchNorm statistics check.")
    args = parser.parse_args()
    bn_check = batch_statistics_effect(ENCODERS.create("efficientnet-lite0"), args.data)
    print(f"test-batch BatchNorm statistics on {BN_CHECK_DOMAIN}: {bn_check}", flush=True)
    if args.bn_check_only:
        return

    images = load_images(f"folder:{args.data}")
    encoder = ENCODERS.create("efficientnet-lite0")
    features, meta = extract_features(encoder, images, FeatureCache())
    as_domains = DomainDataset(
        images.name, features, images.labels, images.domains, images.class_names, images.domain_names
    )
    protocol = TTAStreamProtocol(mode="single", batch_size=args.batch_size, seed=0)
    methods = args.methods.split(",")
    results = {"encoder": meta["encoder"], "weights_sha256": meta["weights_sha256"], "bn_check": bn_check}
    results["targets"] = {}
    for target, name in enumerate(images.domain_names):
        source = probe_source(encoder.torch_featurizer(), as_domains, [target])
        rows = np.flatnonzero(images.domains == target)
        labels = images.labels[rows]
        on_features = [TargetDomain(name, features[rows], labels)]
        on_features_source = dataclasses.replace(source, featurizer=nn.Identity())

        def on_features_model(method: str, source=on_features_source):
            return TTA[method].around(source, seed=0)

        accuracy = {"source": protocol.accuracies(on_features_model("source"), on_features)[name]}
        seconds = {}
        pixels = None
        for method in methods:
            t0 = time.perf_counter()
            if method in FEATURE_METHODS:
                accuracy[method] = protocol.accuracies(on_features_model(method), on_features)[name]
            else:
                if pixels is None:
                    pixels = encoder.preprocess([images.load(int(i)) for i in rows]).cpu().numpy()
                    on_images = [TargetDomain(name, np.ascontiguousarray(pixels), labels)]
                model = TTA[method].around(source, seed=0)
                accuracy[method] = protocol.accuracies(model, on_images)[name]
            seconds[method] = time.perf_counter() - t0
            print(f"{name} {method}: {accuracy[method]:.1f} ({seconds[method]:.0f} s)", flush=True)
        results["targets"][name] = {"probe": source.info, "accuracy": accuracy, "seconds": seconds}
        write_json(args.out, results)

    names = list(images.domain_names)
    print("\n| method | " + " | ".join(names) + " | mean | mean gain |")
    print("|---|" + "---|" * (len(names) + 2))
    for method in ["source", *methods]:
        accs = [results["targets"][n]["accuracy"][method] for n in names]
        gains = [a - results["targets"][n]["accuracy"]["source"] for a, n in zip(accs, names, strict=True)]
        cells = [
            f"{a:.1f}" if method == "source" else f"{a:.1f} ({g:+.1f})"
            for a, g in zip(accs, gains, strict=True)
        ]
        print(f"| {method} | " + " | ".join(cells) + f" | {np.mean(accs):.1f} | {np.mean(gains):+.1f} |")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
