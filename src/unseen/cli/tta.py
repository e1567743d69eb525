"""``unseen tta``: test-time adaptation over a stream of target domains.

The source model is either a trained DG model (``--model``, from ``unseen dg --save-model``) or
a pretrained image encoder with a linear probe fitted on the non-target domains (``--encoder``,
:mod:`unseen.methods.tta.pretrained`), adapted on the target domains' images.
"""

from __future__ import annotations

import click
import numpy as np
import torch
from rich.table import Table

from unseen.backbones.base import ENCODERS, encoder_identity
from unseen.backbones.cache import FeatureCache
from unseen.backbones.extract import extract_features
from unseen.cli.app import OUTPUT_FILE, SEED, console, domain_numbers, main, parse_hparams, progress_bar
from unseen.cli.encoder_flags import encoder_option_flag, encoder_options
from unseen.core.errors import DataFormatError, HyperparameterError
from unseen.core.io import write_json
from unseen.data.domains import DomainDataset, load_domains
from unseen.data.images import load_images
from unseen.methods.registry import TTA
from unseen.methods.tta.pretrained import probe_source
from unseen.protocols.dg_checkpoint import load_model
from unseen.protocols.tta import STREAM_MODES, TargetDomain, TTAStreamProtocol


def _source_memory(model, meta: dict, dataset: DomainDataset) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the model's own training data (the training domains' in parts)."""
    if dataset.hash != meta["data_hash"]:
        raise HyperparameterError(
            "adanpc needs the source data the model was trained on; pass the same --data as `unseen dg`."
        )
    splits = dataset.in_out_split(meta["trial_seed"], meta["holdout_fraction"])
    rows = np.concatenate([splits[k][0] for k in range(dataset.n_domains) if k not in meta["test_envs"]])
    with torch.no_grad():
        x = torch.from_numpy(dataset.inputs[rows].copy()).to(model.device)
        feats = torch.cat([model.featurizer(chunk) for chunk in x.split(1024)]).cpu().numpy()
    return feats, dataset.labels[rows]


def _dg_source(model_path: str, data: str, domains: str | None, device: str | None):
    """Source model, target streams and AdaNPC's memory from a saved DG model."""
    model, meta = load_model(model_path, device)
    dataset = load_domains(data)
    if dataset.input_shape != tuple(meta["input_shape"]) or dataset.n_classes != meta["n_classes"]:
        raise DataFormatError(
            f"{data} has inputs {dataset.input_shape} and {dataset.n_classes} classes; the model expects "
            f"{tuple(meta['input_shape'])} and {meta['n_classes']}."
        )
    if list(dataset.class_names) != list(meta["class_names"]):
        differ = [(a, b) for a, b in zip(dataset.class_names, meta["class_names"], strict=True) if a != b]
        raise DataFormatError(
            f"{data} names its classes differently from the model's training data (first difference: "
            f"{differ[0][0]!r} where the model has {differ[0][1]!r}); the model's class k would be read "
            "as another class. Use data with the model's classes, in its order."
        )
    if domains is None:
        targets = meta["test_envs"] if dataset.hash == meta["data_hash"] else list(range(dataset.n_domains))
    else:
        targets = list(domain_numbers("--domains", domains, dataset.domain_names))
    streams = [
        TargetDomain(
            dataset.domain_names[k],
            dataset.inputs[dataset.domain_indices(k)],
            dataset.labels[dataset.domain_indices(k)],
        )
        for k in targets
    ]

    def memory() -> dict:
        feats, labels = _source_memory(model, meta, dataset)
        return {"source_features": feats, "source_labels": labels}

    return model.featurizer, model.classifier, streams, memory, dataset, {"model": meta["run_id"]}


def _encoder_source(
    encoder_name: str,
    weights: str | None,
    option_pairs: tuple[str, ...],
    data: str,
    domains: str | None,
    cache_dir,
    device: str | None,
):
    """A pretrained encoder probed on the non-target domains; target streams of its input tensors."""
    if domains is None:
        raise click.UsageError("--encoder needs --domains: the target domain numbers, e.g. 3.")
    options = encoder_options(encoder_name, option_pairs)
    dataset = load_images(data)
    targets = list(domain_numbers("--domains", domains, dataset.domain_names))
    encoder = ENCODERS.create(encoder_name, weights=weights, device=device, **options)
    if not hasattr(encoder, "torch_featurizer"):
        raise HyperparameterError(f"encoder '{encoder_name}' exposes no torch network to adapt.")
    with progress_bar(f"{encoder_name} features") as update:
        features, _ = extract_features(encoder, dataset, FeatureCache(cache_dir), progress=update)
    as_domains = DomainDataset(
        dataset.name, features, dataset.labels, dataset.domains, dataset.class_names, dataset.domain_names
    )
    source = probe_source(encoder.torch_featurizer(), as_domains, targets)
    streams = []
    for k in targets:
        rows = np.flatnonzero(dataset.domains == k)
        pixels = encoder.preprocess([dataset.load(int(i)) for i in rows]).cpu().numpy()
        streams.append(
            TargetDomain(dataset.domain_names[k], np.ascontiguousarray(pixels), dataset.labels[rows])
        )

    def memory() -> dict:
        return {"source_features": source.source_features, "source_labels": source.source_labels}

    info = {**encoder_identity(encoder), "probe": source.info}
    return source.featurizer, source.classifier, streams, memory, dataset, info


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
        featurizer, classifier, streams, memory, dataset, info = _dg_source(model_path, data, domains, device)
    else:
        featurizer, classifier, streams, memory, dataset, info = _encoder_source(
            encoder, weights, encoder_option, data, domains, cache_dir, device
        )

    def make(name: str, hp: dict):
        extra = memory() if name == "adanpc" else {}
        return TTA[name](featurizer, classifier, seed=seed, device=device, **extra, **hp)

    protocol = TTAStreamProtocol(mode=stream, batch_size=batch_size, seed=seed)
    record = protocol.run(
        make,
        method,
        streams,
        parse_hparams(hparams),
        data={"spec": data, "hash": dataset.hash, **info},
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
