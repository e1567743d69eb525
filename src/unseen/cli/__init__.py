"""The ``unseen`` command line. Each module registers its commands on :data:`main`."""

from unseen.cli import dg, experiments, extract, fewshot, gzsl, info, tta  # noqa: F401  (registers the commands)
from unseen.cli.app import main

__all__ = ["main"]
