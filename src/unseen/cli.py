"""The ``unseen`` command line: demo, methods, data info and GZSL runs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from unseen import __version__
from unseen.data import load_dataset
from unseen.data.model import ZSLDataset
from unseen.data.specs import schemes
from unseen.errors import HyperparameterError, UnknownNameError, UnseenError
from unseen.experiments.io import atomic_write_text, write_json
from unseen.methods import FAMILIES
from unseen.protocols.gzsl import FitCache, GZSLProtocol
from unseen.report.plots import seen_unseen_plot
from unseen.report.tables import METRIC_COLUMNS, gzsl_markdown, gzsl_rows

console = Console()
err_console = Console(stderr=True)

DEMO_DATA = "builtin:mnist-zsl"
DEMO_METHODS = ("dap", "eszsl", "sae", "ale", "devise")


class _FriendlyGroup(click.Group):
    """Turns an :class:`UnseenError` anywhere below into one message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UnseenError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            ctx.exit(2)


@click.group(cls=_FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unseen")
def main() -> None:
    """unseen: zero-shot, generalized zero-shot and out-of-domain recognition on embeddings."""


@contextmanager
def _progress(description: str) -> Iterator[Any]:
    """A rich progress bar; yields ``update(done, total, what)`` for protocols to call."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        yield update


def _parse_hparams(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HyperparameterError(
            f"--hparams must be a JSON object like '{{\"alpha\": 1.0}}'; could not parse {text!r}: "
            f"{exc.msg} at position {exc.pos}."
        ) from None
    if not isinstance(value, dict):
        raise HyperparameterError(f"--hparams must be a JSON object, got {type(value).__name__}.")
    return value


def _metrics_table(records: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("method", "calibrated", *METRIC_COLUMNS, "selected hparams"):
        table.add_column(col, justify="right" if col in METRIC_COLUMNS else "left")
    for row in gzsl_rows(records):
        table.add_row(*row)
    return table


@main.command("methods")
@click.option("--family", default=None, help="Only this family (e.g. gzsl).")
def methods_cmd(family: str | None) -> None:
    """List registered methods, one a line: family, name, paper."""
    if family is not None and family not in FAMILIES:
        raise UnknownNameError(f"unknown family '{family}'; known: {', '.join(FAMILIES)}.")
    for fam, registry in FAMILIES.items():
        if family in (None, fam):
            for name in registry:
                click.echo(f"{fam}\t{name}\t{registry[name].paper}")


@main.group("data", cls=_FriendlyGroup)
def data_group() -> None:
    """Inspect datasets named by data specs (SCHEME:TARGET[?options])."""


@data_group.command("info")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def data_info(spec: str, as_json: bool) -> None:
    """Sizes, class roles, semantics and content hashes of the dataset SPEC."""
    summary = load_dataset(spec).summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{summary['name']}  ({spec})", title_justify="left", show_header=False)
    for key, value in summary.items():
        if key == "splits":
            for split, info in value.items():
                table.add_row(f"split {split}", f"{info['n']} samples, hash {info['hash']}")
        else:
            table.add_row(key, str(value))
    console.print(table)


@data_group.command("schemes")
def data_schemes() -> None:
    """The data-spec schemes this installation understands."""
    for name, help_text in schemes().items():
        click.echo(f"{name}:\t{help_text}")


def run_gzsl(
    dataset: ZSLDataset,
    method: str,
    calibrate: bool,
    seed: int,
    hparams: dict[str, Any],
    search: str,
    device: str | None,
    cache: FitCache | None = None,
) -> dict[str, Any]:
    """Run ``gzsl-ps-v1`` once on ``dataset``, with a progress bar."""
    protocol = GZSLProtocol(calibrate=calibrate, search=search, seed=seed)
    with _progress(f"{method} on {dataset.name}") as update:
        return protocol.run(dataset, method, hparams, device=device, progress=update, cache=cache)


@main.command("gzsl")
@click.option("--data", "data", required=True, help="Data spec, e.g. synthetic:CUB or xlsa17:DIR.")
@click.option("--method", required=True, help="GZSL method name (see `unseen methods`).")
@click.option("--calibrate", is_flag=True, help="Calibrated stacking, constant chosen on validation.")
@click.option("--seed", default=0, show_default=True, help="Seed of validation split and method.")
@click.option("--hparams", default=None, help="Fixed hyperparameters as JSON, e.g. '{\"alpha\": 1}'.")
@click.option(
    "--search",
    default="grid",
    show_default=True,
    help="Hyperparameter search on validation: grid, default, or random:N.",
)
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False), default=None, help="Write the run record (JSON) here."
)
def gzsl_cmd(data, method, calibrate, seed, hparams, search, device, out) -> None:
    """Run one GZSL method under protocol gzsl-ps-v1 and print S, U, H, ZSL and AUSUC."""
    dataset = load_dataset(data)
    record = run_gzsl(dataset, method, calibrate, seed, _parse_hparams(hparams), search, device)
    console.print(_metrics_table([record], f"{record['protocol']} on {record['data']['name']}"))
    if out:
        write_json(out, record)
        console.print(f"record written to {out}")


@main.command("demo")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="unseen-demo",
    show_default=True,
    help="Folder for run records and the report.",
)
@click.option("--data", "data", default=DEMO_DATA, show_default=True, help="Data spec.")
@click.option(
    "--methods", default=",".join(DEMO_METHODS), show_default=True, help="Comma-separated GZSL methods."
)
@click.option("--seed", default=0, show_default=True)
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


if __name__ == "__main__":
    main()
