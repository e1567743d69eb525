"""The root ``unseen`` command group and the helpers every subcommand shares."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from unseen import __version__
from unseen.core.errors import HyperparameterError, UnseenError


class OutputPath(click.Path):
    """An output location, checked when the command line is read, before any work: its folder
    must exist and be writable, and a file output must not name a folder."""

    def __init__(self, folder: bool = False):
        super().__init__(file_okay=not folder, dir_okay=folder, path_type=str)
        self.folder = folder

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = Path(super().convert(value, param, ctx))
        if not self.folder and path.is_dir():
            self.fail(f"{str(path)!r} is a folder; give a file name inside it.", param, ctx)
        parent = path.parent if not (self.folder and path.is_dir()) else path
        if not parent.is_dir():
            self.fail(f"folder {str(parent)!r} does not exist; create it first.", param, ctx)
        if not os.access(parent, os.W_OK):
            self.fail(f"folder {str(parent)!r} is not writable; choose another location.", param, ctx)
        return str(path)


OUTPUT_FILE = OutputPath()
OUTPUT_FOLDER = OutputPath(folder=True)

SEED = click.IntRange(min=0)
"""The type of every ``--seed`` option: numpy's generators take no negative seeds."""

# User text (names, paths, messages) is printed as it is: these consoles never read markup.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


class FriendlyGroup(click.Group):
    """Turns an :class:`UnseenError` anywhere below into one message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UnseenError as exc:
            err_console.print(
                Text.assemble(("error:", "bold red"), f" {exc}"), highlight=False, soft_wrap=True
            )
            ctx.exit(2)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unseen")
def main() -> None:
    """unseen: zero-shot, generalized zero-shot and out-of-domain recognition on embeddings."""


@contextmanager
def progress_bar(description: str) -> Iterator[Any]:
    """A rich progress bar; yields ``update(done, total, what)`` for protocols to call."""
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
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


def parse_hparams(text: str | None) -> dict[str, Any]:
    """The ``--hparams`` JSON object, or a clear error naming the fix."""
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
    for name, item in value.items():
        if not _finite(item):
            raise HyperparameterError(
                f"--hparams: {name!r} is {json.dumps(item)}; hyperparameters must be finite numbers."
            )
    return value


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a parsed JSON value (JSON's parser accepts both)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def domain_numbers(option: str, text: str, names: Sequence[str]) -> tuple[int, ...]:
    """``"0,2"`` as domain numbers of data whose domains are ``names``: integers, each a domain of
    the data, none twice; otherwise a usage error naming the data's domains."""
    listing = ", ".join(f"{k} {name}" for k, name in enumerate(names))
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{option} takes domain numbers like 0 or 0,2; got {text!r}. The data's domains: {listing}."
        ) from None
    outside = [v for v in values if not 0 <= v < len(names)]
    if outside:
        raise click.BadParameter(f"{option}: the data has no domain {outside[0]}; its domains: {listing}.")
    if len(set(values)) != len(values):
        raise click.BadParameter(f"{option} names a domain twice: {text!r}.")
    return values
