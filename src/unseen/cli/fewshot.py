"""``unseen fewshot``: k-shot or base-to-new adaptation on paired embeddings, over shots and seeds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
import numpy as np
from rich.table import Table

from unseen.cli.app import OUTPUT_FILE, console, main, parse_hparams, progress_bar
from unseen.core.io import write_json
from unseen.data.paired import load_paired
from unseen.protocols.fewshot import PROTOCOLS


def _ints(option: str, text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{option} takes integers like 1,2,4; got {text!r}") from None
    if any(v < 0 for v in values):
        raise click.BadParameter(f"{option} takes integers >= 0; got {text!r}")
    return values


def _summary_table(records: Sequence[dict[str, Any]], title: str) -> Table:
    metrics = list(records[0]["metrics"])
    table = Table(title=title, title_justify="left")
    for col in ("shots", *metrics, "seeds", "chosen on validation"):
        table.add_column(col, justify="left" if col == "chosen on validation" else "right")
    for shots in sorted({r["shots"] for r in records}):
        group = [r for r in records if r["shots"] == shots]
        cells = []
        for metric in metrics:
            values = np.array([r["metrics"][metric] for r in group])
            spread = f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else ""
            cells.append(f"{values.mean():.1f}{spread}")
        chosen = "; ".join(
            ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
            for r in (g["selected_on_validation"] for g in group)
            if r
        )
        table.add_row(str(shots), *cells, str(len(group)), chosen or "-")
    return table


@main.command("fewshot")
@click.option("--data", required=True, help="Paired-embedding data spec, e.g. synthetic-vl:default.")
@click.option("--method", required=True, help="Adapter (see `unseen methods --family vlm`).")
@click.option("--shots", default="1,2,4,8,16", show_default=True, help="Shots per class, comma-separated.")
@click.option("--seeds", default="1,2,3", show_default=True, help="Seeds of the shot draws and the method.")
@click.option(
    "--protocol",
    type=click.Choice(sorted(PROTOCOLS)),
    default="kshot",
    show_default=True,
    help="kshot: all classes; b2n: shots from base classes, scored on base and new.",
)
@click.option(
    "--test-fraction",
    default=0.5,
    show_default=True,
    help="Share of each class held out for testing when the data has no official test part.",
)
@click.option("--hparams", default=None, help="Fixed hyperparameters as JSON, e.g. '{\"alpha\": 1.0}'.")
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option("--out", type=OUTPUT_FILE, default=None, help="Write the records (JSON list).")
def fewshot_cmd(data, method, shots, seeds, protocol, test_fraction, hparams, device, out) -> None:
    """Fit METHOD on K shots per class for every K and seed; print accuracy mean ± std over seeds."""
    dataset = load_paired(data)
    fixed = parse_hparams(hparams)
    runs = [(k, s) for k in _ints("--shots", shots) for s in _ints("--seeds", seeds)]
    records = []
    with progress_bar(f"{method} on {dataset.name}") as update:
        for i, (k, seed) in enumerate(runs):
            update(i, len(runs), f"{method}: {k}-shot, seed {seed}")
            records.append(PROTOCOLS[protocol](k, seed, test_fraction).run(dataset, method, fixed, device))
    console.print(_summary_table(records, f"{records[0]['protocol']}: {method} on {dataset.name}"))
    if out:
        write_json(out, records)
        console.print(f"{len(records)} records written to {out}")
