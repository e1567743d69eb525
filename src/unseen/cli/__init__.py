"""The ``unseen`` command line. Each module registers its commands on :data:`main`."""

from unseen.cli import (  # noqa: F401  (registers the commands)
    bounds,
    dg,
    experiments,
    extract,
    fewshot,
    gzsl,
    gzsl_dg,
    info,
    kg,
    tta,
)
from unseen.cli.app import main

__all__ = ["main"]
