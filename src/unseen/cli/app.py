"""The root ``unseen`` command group and the helpers every subcommand shares."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from unseen import __version__
from unseen.errors import HyperparameterError, UnseenError

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
    return value
