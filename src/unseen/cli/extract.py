"""``unseen extract``: image features of a dataset, through the feature cache, into one ``.npz``."""

from __future__ import annotations

import time

import click

from unseen.backbones.base import ENCODERS, ImageEncoder
from unseen.backbones.cache import FeatureCache
from unseen.backbones.extract import extract_features, save_features
from unseen.cli.app import OUTPUT_FILE, console, main, progress_bar
from unseen.cli.encoder_flags import encoder_option_flag, encoder_options
from unseen.core.errors import EncoderError
from unseen.data.images import load_images


@main.command("extract")
@click.option(
    "--encoder",
    required=True,
    help="Image encoder: efficientnet-lite0, or open-clip-image, timm, hf-image with --weights.",
)
@click.option(
    "--data",
    required=True,
    help="Image data spec: folder:ROOT, manifest:FILE.csv, builtin:rotated-mnist "
    "(add ?per_class=K to subsample).",
)
@click.option("--out", required=True, type=OUTPUT_FILE, help="Write the features here (.npz).")
@click.option(
    "--batch-size", default=8, show_default=True, help="Images per forward pass (CPU: 4-8 is fastest)."
)
@click.option(
    "--weights",
    default=None,
    help="Local weights file or model folder (default: the weights the backend ships).",
)
@encoder_option_flag
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Feature cache folder (default: $UNSEEN_CACHE/features or ~/.cache/unseen/features).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the feature cache.")
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
def extract_cmd(encoder, data, out, batch_size, weights, encoder_option, cache_dir, no_cache, device) -> None:
    """Encode every image of DATA with ENCODER and write features, labels and domains to OUT.

    \b
    Examples:
      unseen extract --encoder efficientnet-lite0 --data folder:PHOTOS --out f.npz
      unseen extract --encoder open-clip-image --weights ViT-B-32.pt \\
          --encoder-option model=ViT-B-32 --data folder:PHOTOS --out f.npz
      unseen extract --encoder timm --weights resnet50.safetensors \\
          --encoder-option model=resnet50 --data folder:PHOTOS --out f.npz
      unseen extract --encoder hf-image --weights ./clip-vit-base-patch32 \\
          --data folder:PHOTOS --out f.npz
    """
    if no_cache and cache_dir:
        raise click.UsageError("--cache-dir and --no-cache contradict each other; give one of them.")
    options = encoder_options(encoder, encoder_option)
    dataset = load_images(data)
    model = ENCODERS.create(encoder, weights=weights, device=device, **options)
    if not isinstance(model, ImageEncoder):
        raise EncoderError(f"encoder '{encoder}' encodes {model.kind}, not images; pick an image encoder.")
    cache = None if no_cache else FeatureCache(cache_dir)
    start = time.perf_counter()
    with progress_bar(f"{encoder} on {dataset.name}") as update:
        features, meta = extract_features(model, dataset, cache=cache, batch_size=batch_size, progress=update)
    elapsed = time.perf_counter() - start
    save_features(out, features, dataset, meta)
    status = "off" if cache is None else ("hit" if cache.hits else "miss")
    console.print(
        f"{len(dataset)} images, {len(dataset.class_names)} classes, {len(dataset.domain_names)} domain(s) "
        f"-> {features.shape[1]}-d features in {elapsed:.1f} s (cache {status})"
    )
    console.print(f"features written to {out}")
