"""``unseen tta``: test-time adaptation of a trained DG model over a stream of target domains."""

from __future__ import annotations

import click
import numpy as np
import torch
from rich.table import Table

from unseen.cli.app import console, main, parse_hparams
from unseen.data.domains import DomainDataset, load_domains
from unseen.errors import DataFormatError, HyperparameterError
from unseen.experiments.io import write_json
from unseen.methods.dg.checkpoint import load_model
from unseen.methods.registry import TTA
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


@main.command("tta")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="From `unseen dg --save-model`.",
)
@click.option("--data", required=True, help="Multi-domain data spec holding the target domains.")
@click.option("--method", required=True, help="TTA method (see `unseen methods --family tta`).")
@click.option(
    "--domains", default=None, help="Target domain numbers, e.g. 1,2 (default: the model's test domains)."
)
@click.option("--stream", type=click.Choice(STREAM_MODES), default="single", show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of the stream order.")
@click.option("--hparams", default=None, help="Method hyperparameters as JSON.")
@click.option("--device", default=None)
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write the run record (JSON) here."
)
def tta_cmd(model_path, data, method, domains, stream, batch_size, seed, hparams, device, out) -> None:
    """Adapt online on target domains' unlabeled streams; print accuracy and gain over the source."""
    model, meta = load_model(model_path, device)
    dataset = load_domains(data)
    if dataset.input_shape != tuple(meta["input_shape"]) or dataset.n_classes != meta["n_classes"]:
        raise DataFormatError(
            f"{data} has inputs {dataset.input_shape} and {dataset.n_classes} classes; the model expects "
            f"{tuple(meta['input_shape'])} and {meta['n_classes']}."
        )
    if domains is None:
        targets = meta["test_envs"] if dataset.hash == meta["data_hash"] else list(range(dataset.n_domains))
    else:
        targets = [int(d) for d in domains.split(",")]
    stream_domains = [
        TargetDomain(
            dataset.domain_names[k],
            dataset.inputs[dataset.domain_indices(k)],
            dataset.labels[dataset.domain_indices(k)],
        )
        for k in targets
    ]

    def make(name: str, hp: dict):
        extra = {}
        if name == "adanpc":
            feats, labels = _source_memory(model, meta, dataset)
            extra = {"source_features": feats, "source_labels": labels}
        return TTA[name](model.featurizer, model.classifier, seed=seed, device=device, **extra, **hp)

    protocol = TTAStreamProtocol(mode=stream, batch_size=batch_size, seed=seed)
    record = protocol.run(
        make,
        method,
        stream_domains,
        parse_hparams(hparams),
        data={"spec": data, "hash": dataset.hash, "model": meta["run_id"]},
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
