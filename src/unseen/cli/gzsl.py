"""``unseen gzsl`` and ``unseen demo``: GZSL runs under ``gzsl-ps-v1`` (or, with ``--protocol``,
``gzsl-transductive-v1``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from unseen.cli.app import OUTPUT_FILE, OUTPUT_FOLDER, SEED, console, main, parse_hparams, progress_bar
from unseen.core.errors import HyperparameterError
from unseen.core.io import atomic_write_text, write_json
from unseen.data import load_dataset
from unseen.data.model import ZSLDataset
from unseen.methods import GZSL
from unseen.protocols import PROTOCOLS
from unseen.protocols.gzsl import FitCache
from unseen.report.plots import seen_unseen_plot
from unseen.report.tables import METRIC_COLUMNS, gzsl_markdown, gzsl_rows

DEMO_DATA = "builtin:mnist-zsl"
DEMO_METHODS = ("dap", "eszsl", "sae", "ale", "devise")


def _metrics_table(records: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    rows = gzsl_rows(records)
    # A narrow terminal wraps the selected hyperparameters, never a method's name.
    table.add_column("method", min_width=max((len(r[0]) for r in rows), default=6), no_wrap=True)
    for col in ("calibrated", *METRIC_COLUMNS, "selected hparams"):
        table.add_column(col, justify="right" if col in METRIC_COLUMNS else "left")
    for row in rows:
        table.add_row(*row)
    return table


def run_gzsl(
    dataset: ZSLDataset,
    method: str,
    calibrate: bool,
    seed: int,
    hparams: dict[str, Any],
    search: str,
    device: str | None,
    cache: FitCache | None = None,
    protocol_name: str = "gzsl-ps-v1",
) -> dict[str, Any]:
    """Run a GZSL protocol (default ``gzsl-ps-v1``) once on ``dataset``, with a progress bar."""
    protocol = PROTOCOLS[protocol_name](calibrate=calibrate, search=search, seed=seed)
    with progress_bar(f"{method} on {dataset.name}") as update:
        return protocol.run(dataset, method, hparams, device=device, progress=update, cache=cache)


@main.command("gzsl")
@click.option("--data", "data", required=True, help="Data spec, e.g. synthetic:CUB or xlsa17:DIR.")
@click.option("--method", required=True, help="GZSL method name (see `unseen methods`).")
@click.option("--calibrate", is_flag=True, help="Calibrated stacking, constant chosen on validation.")
@click.option("--seed", default=0, type=SEED, show_default=True, help="Seed of validation split and method.")
@click.option("--hparams", default=None, help="Fixed hyperparameters as JSON, e.g. '{\"alpha\": 1}'.")
@click.option(
    "--search",
    default="grid",
    show_default=True,
    help="Hyperparameter search on validation: grid, default, or random:N.",
)
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option("--out", "out", type=OUTPUT_FILE, default=None, help="Write the run record (JSON) here.")
@click.option("--fast", is_flag=True, help="The method's small smoke-run configuration (recorded).")
@click.option(
    "--epochs", type=int, default=None, help="Training-epoch budget (methods with an 'epochs' setting)."
)
@click.option(
    "--protocol",
    type=click.Choice(sorted(PROTOCOLS)),
    default="gzsl-ps-v1",
    show_default=True,
    help="gzsl-transductive-v1: transductive methods also train on the unlabelled test features.",
)
def gzsl_cmd(data, method, calibrate, seed, hparams, search, device, out, fast, epochs, protocol) -> None:
    """Run one GZSL method under protocol gzsl-ps-v1 (or --protocol) and print S, U, H, ZSL and AUSUC."""
    cls = GZSL[method]
    fixed = {**(cls.fast_hparams if fast else {}), **parse_hparams(hparams)}
    if epochs is not None:
        if "epochs" not in {h.name for h in cls.hparams}:
            raise HyperparameterError(f"method '{method}' has no epoch budget; drop --epochs.")
        if epochs < 1:
            raise HyperparameterError(f"--epochs must be a positive integer, got {epochs}.")
        fixed["epochs"] = epochs
    dataset = load_dataset(data)
    record = run_gzsl(dataset, method, calibrate, seed, fixed, search, device, protocol_name=protocol)
    record["preset"] = "fast" if fast else None
    console.print(_metrics_table([record], f"{record['protocol']} on {record['data']['name']}"))
    if out:
        write_json(out, record)
        console.print(f"record written to {out}")


@main.command("demo")
@click.option(
    "--out",
    "out",
    type=OUTPUT_FOLDER,
    default="unseen-demo",
    show_default=True,
    help="Folder for run records and the report.",
)
@click.option("--data", "data", default=DEMO_DATA, show_default=True, help="Data spec.")
@click.option(
    "--methods", default=",".join(DEMO_METHODS), show_default=True, help="Comma-separated GZSL methods."
)
@click.option("--seed", default=0, type=SEED, show_default=True)
def demo_cmd(out: str, data: str, methods: str, seed: int) -> None:
    """Several GZSL methods, with and without calibration, on the built-in MNIST zero-shot task."""
    out_dir = Path(out)
    dataset = load_dataset(data)
    records = []
    for method in [m.strip() for m in methods.split(",") if m.strip()]:
        cache = FitCache()  # the calibrated run reuses the plain run's fits
        for calibrate in (False, True):
            record = run_gzsl(dataset, method, calibrate, seed, {}, "grid", None, cache)
            tag = "calibrated" if calibrate else "plain"
            write_json(out_dir / "runs" / f"{method}-{tag}.json", record)
            records.append(record)
            m = record["metrics"]
            console.print(f"{method:>8} {tag:>10}: S {m['S']:5.1f}  U {m['U']:5.1f}  H {m['H']:5.1f}")
    console.print(_metrics_table(records, f"gzsl-ps-v1 on {records[0]['data']['name']}"))
    seen_unseen_plot(records, out_dir / "seen_unseen_curves.png")
    report = (
        f"# unseen demo: {records[0]['data']['name']}\n\n{gzsl_markdown(records)}\n\n"
        "![seen-unseen curves](seen_unseen_curves.png)\n\n"
        "Each row is one run record in `runs/`; produced by `unseen demo`.\n"
    )
    atomic_write_text(out_dir / "report.md", report)
    console.print(f"records, report.md and seen_unseen_curves.png written to {out_dir}/")
