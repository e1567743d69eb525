"""``unseen tta``: test-time adaptation over a stream of target domains.

The source model is either a trained DG model (``--model``, from ``unseen dg --save-model``) or
a pretrained image encoder with a linear probe fitted on the non-target domains (``--encoder``,
:mod:`unseen.methods.tta.pretrained`), adapted on the target domains' images.
"""

from __future__ import annotations

import click
from rich.table import Table

from unseen.backbones.base import ENCODERS
from unseen.backbones.cache import FeatureCache
from unseen.cli.app import OUTPUT_FILE, SEED, console, domain_numbers, main, parse_hparams, progress_bar
from unseen.cli.encoder_flags import encoder_option_flag, encoder_options
from unseen.core.io import write_json
from unseen.data.domains import load_domains
from unseen.data.images import load_images
from unseen.methods.registry import TTA
from unseen.protocols.dg_checkpoint import load_model
from unseen.protocols.tta import (
    STREAM_MODES,
    TTAStreamProtocol,
    default_targets,
    dg_source,
    domain_streams,
    encoder_source,
)


def _dg_source(model_path: str, data: str, domains: str | None, device: str | None):
    """A saved DG model and the target streams of ``data`` it adapts on."""
    model, meta = load_model(model_path, device)
    dataset = load_domains(data)
    source = dg_source(model, meta, dataset)
    if domains is None:
        targets = default_targets(meta, dataset)
    else:
        targets = list(domain_numbers("--domains", domains, dataset.domain_names))
    return source, domain_streams(dataset, targets), dataset


def _encoder_source(encoder_name, weights, option_pairs, data, domains, cache_dir, device):
    """A pretrained encoder probed on the non-target domains, and its target streams."""
    if domains is None:
        raise click.UsageError("--encoder needs --domains: the target domain numbers, e.g. 3.")
    options = encoder_options(encoder_name, option_pairs)
    dataset = load_images(data)
    targets = list(domain_numbers("--domains", domains, dataset.domain_names))
    encoder = ENCODERS.create(encoder_name, weights=weights, device=device, **options)
    with progress_bar(f"{encoder_name} features") as update:
        source, streams = encoder_source(encoder, dataset, targets, FeatureCache(cache_dir), progress=update)
    return source, streams, dataset


@main.command("tta")
@click.option(
    "--model",
    "model_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="A trained DG model, from `unseen dg --save-model`.",
)
@click.option(
    "--encoder",
    default=None,
    help="Or a pretrained image encoder (e.g. efficientnet-lite0) probed on the non-target domains.",
)
@click.option("--weights", default=None, help="Local weights for --encoder (default: what it ships).")
@encoder_option_flag
@click.option("--cache-dir", default=None, help="Feature cache folder for --encoder (default: ~/.cache).")
@click.option("--data", required=True, help="Multi-domain data (images with --encoder) holding the targets.")
@click.option("--method", required=True, help="TTA method (see `unseen methods --family tta`).")
@click.option(
    "--domains", default=None, help="Target domain numbers, e.g. 1,2 (default: the model's test domains)."
)
@click.option("--stream", type=click.Choice(STREAM_MODES), default="single", show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--seed", default=0, type=SEED, show_default=True, help="Seed of the stream order.")
@click.option("--hparams", default=None, help="Method hyperparameters as JSON.")
@click.option("--device", default=None)
@click.option("--out", type=OUTPUT_FILE, default=None, help="Write the run record (JSON) here.")
def tta_cmd(
    model_path,
    encoder,
    weights,
    encoder_option,
    cache_dir,
    data,
    method,
    domains,
    stream,
    batch_size,
    seed,
    hparams,
    device,
    out,
) -> None:
    """Adapt online on target domains' unlabeled streams; print accuracy and gain over the source."""
    if (model_path is None) == (encoder is None):
        raise click.UsageError("give exactly one source model: --model FILE or --encoder NAME.")
    if model_path is not None and (weights or encoder_option):
        raise click.UsageError("--weights and --encoder-option belong to --encoder, not --model.")
    TTA[method]  # an unknown name fails before any work
    if model_path is not None:
        source, streams, dataset = _dg_source(model_path, data, domains, device)
    else:
        source, streams, dataset = _encoder_source(
            encoder, weights, encoder_option, data, domains, cache_dir, device
        )
    protocol = TTAStreamProtocol(mode=stream, batch_size=batch_size, seed=seed)
    record = protocol.run(
        source,
        method,
        streams,
        parse_hparams(hparams),
        data={"spec": data, "hash": dataset.hash},
        device=device,
    )
    m = record["metrics"]
    table = Table(title=f"{protocol.name} ({stream}): {method} on {dataset.name}", title_justify="left")
    for col in ("domain", "source acc", f"{method} acc", "gain"):
        table.add_column(col, justify="left" if col == "domain" else "right")
    for name in m["accuracy"]:
        table.add_row(
            name, f"{m['source_accuracy'][name]:.1f}", f"{m['accuracy'][name]:.1f}", f"{m['gain'][name]:+.1f}"
        )
    console.print(table)
    if out:
        write_json(out, record)
        console.print(f"record written to {out}")
