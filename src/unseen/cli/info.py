"""``unseen methods`` and ``unseen data``: what is registered and what a data spec holds."""

from __future__ import annotations

import json

import click
from rich.table import Table

from unseen.cli.app import FriendlyGroup, console, main
from unseen.core.errors import UnknownNameError
from unseen.data import load_dataset
from unseen.data.specs import DATA_KINDS
from unseen.methods import FAMILIES


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


@main.group("data", cls=FriendlyGroup)
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


DATA_COMMANDS = {
    "zero-shot": "gzsl, data info",
    "multi-domain": "dg, tta",
    "image": "extract, tta with --encoder",
    "few-shot (paired embedding)": "fewshot",
    "zero-shot multi-domain": "gzsl-dg",
}


@data_group.command("schemes")
def data_schemes() -> None:
    """The data-spec schemes this installation understands, by the kind of data each gives."""
    for kind, registry in DATA_KINDS.items():
        click.echo(f"{kind} data (--data of {DATA_COMMANDS[kind]}):")
        for name, help_text in registry.help().items():
            click.echo(f"  {name}:\t{help_text}")
