"""``unseen sweep``, ``unseen results`` and ``unseen report``: experiments at scale."""

from __future__ import annotations

from pathlib import Path

import click

from unseen.cli.app import OUTPUT_FILE, OUTPUT_FOLDER, console, main, progress_bar
from unseen.core.errors import SpecError
from unseen.core.io import atomic_write_text
from unseen.experiments.executors import EXECUTORS, make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep
from unseen.protocols.dg_selection import SELECTIONS
from unseen.report.html import report_html
from unseen.report.results import RENDERERS, SPREADS, build_tables, render

DEFAULT_STORE = "unseen-results.sqlite"


def _store_path(store: str | None, sweep_store: Path | None) -> Path:
    if store:
        return Path(store)
    return sweep_store if sweep_store is not None else Path(DEFAULT_STORE)


@main.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--store", default=None, help=f"Results store (default: the sweep's, else {DEFAULT_STORE}).")
@click.option(
    "--executor",
    type=click.Choice(sorted(EXECUTORS)),
    default="pool",
    show_default=True,
    help="Where runs execute.",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Parallel runs (default: CPU count).")
@click.option(
    "--address", default=None, help="Ray cluster address (auto or HOST:PORT); local Ray if omitted."
)
@click.option("--dry-run", is_flag=True, help="List the runs and their status; execute nothing.")
def sweep_cmd(sweep_file, store, executor, jobs, address, dry_run) -> None:
    """Run every run of SWEEP_FILE not finished yet; finished runs are skipped, interrupted ones rerun."""
    sweep = load_sweep(sweep_file)
    planned = plan(sweep.runs)
    path = _store_path(store, sweep.store)
    if dry_run:
        statuses = {}
        if path.exists():
            with ResultStore(path, read_only=True) as st:
                statuses = {p.run_id: st.status(p.run_id) for p in planned}
        for p in planned:
            click.echo(f"{p.run_id}\t{statuses.get(p.run_id) or 'not run'}\t{p.spec.label()}")
        click.echo(f"{len(planned)} runs; store {path}")
        return
    with ResultStore(path) as st, progress_bar(f"sweep {Path(sweep_file).name}") as update:
        summary = launch(planned, st, make_executor(executor, jobs, address), progress=update)
    console.print(
        f"{summary.planned} runs: {summary.skipped} already done, {summary.done} finished now, "
        f"{len(summary.failed)} failed. Store: {path}"
    )
    for rid in summary.failed:
        console.print(f"  failed: {rid} (see `unseen report` or the store for the traceback)")
    if summary.failed:
        raise SystemExit(1)


SELECT_OPTION = click.option(
    "--select",
    type=click.Choice(sorted(SELECTIONS)),
    default="training-val",
    show_default=True,
    help="DG model selection: training-domain validation, leave-one-domain-out, test-domain oracle, "
    "or crafted-shift validation (runs with crafted_shifts).",
)


SPREAD_OPTION = click.option(
    "--spread",
    type=click.Choice(sorted(SPREADS)),
    default="se",
    show_default=True,
    help="The ± of each cell: standard error of the mean or standard deviation over seeds.",
)


def _tables(store: str, sweep_file: str | None, select: str, spread: str = "se"):
    path = Path(store)
    if not path.exists():
        raise SpecError(f"results store {path} does not exist; run `unseen sweep FILE --store {path}` first.")
    with ResultStore(path, read_only=True) as st:
        rows = st.records(status=None)
    expected = None
    if sweep_file:
        expected = [p.identity for p in plan(load_sweep(sweep_file).runs)]
    return rows, build_tables(rows, expected, select, spread)


@main.command("results")
@click.option("--store", default=DEFAULT_STORE, show_default=True, help="Results store.")
@click.option(
    "--sweep", "sweep_file", default=None, help="Sweep file: cells it asks for but lacks say 'not run'."
)
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="markdown", show_default=True)
@click.option("--out", default=None, type=OUTPUT_FILE, help="Write the tables here too.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@SELECT_OPTION
@SPREAD_OPTION
def results_cmd(store, sweep_file, fmt, out, force, select, spread) -> None:
    """Per-dataset and average tables (mean ± SE or std over seeds); missing cells say why."""
    if out:
        _refuse_to_replace(Path(out), force, "--out")
    _, tables = _tables(store, sweep_file, select, spread)
    text = render(tables, fmt)
    click.echo(text)
    if out:
        atomic_write_text(out, text + "\n")


@main.command("report")
@click.option("--store", default=DEFAULT_STORE, show_default=True, help="Results store.")
@click.option("--sweep", "sweep_file", default=None, help="Sweep file (for 'not run' cells).")
@click.option("--out", "out_dir", required=True, type=OUTPUT_FOLDER, help="Output folder.")
@click.option("--title", default=None, help="Page title (default: the store's file name).")
@click.option("--force", is_flag=True, help="Replace OUT/index.html if it exists.")
@SELECT_OPTION
def report_cmd(store, sweep_file, out_dir, title, force, select) -> None:
    """One self-contained HTML page: tables, plots and every run (OUT/index.html)."""
    index = Path(out_dir) / "index.html"
    _refuse_to_replace(index, force, "--out")
    rows, tables = _tables(store, sweep_file, select)
    page = report_html(rows, tables, title or f"unseen results: {Path(store).name}")
    path = atomic_write_text(index, page)
    console.print(f"report written to {path}")


def _refuse_to_replace(path: Path, force: bool, option: str) -> None:
    """An existing output file is replaced only with ``--force``: it may be someone else's."""
    if path.exists() and not force:
        raise click.BadParameter(f"{str(path)!r} exists; pass --force to replace it.", param_hint=option)
