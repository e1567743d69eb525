"""The ``--encoder-option KEY=VALUE`` flag of the commands that build an encoder (extract, tta)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from unseen.backbones.options import parse_encoder_options

OWN_FLAGS = {"weights": "--weights PATH", "device": "--device DEV"}
"""Factory arguments these commands take as flags of their own, not as encoder options."""

encoder_option_flag: Callable[[Callable], Callable] = click.option(
    "--encoder-option",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the encoder's constructor; repeat for several: model=ARCH for open-clip-image "
    "and timm (the architecture of --weights), threads=N or channels_last=false for efficientnet-lite0. "
    "Names are checked against what the encoder accepts; options are part of the feature cache key.",
)


def encoder_options(encoder: str, pairs: Sequence[str]) -> dict[str, Any]:
    """The ``--encoder-option`` values as keyword arguments of ``encoder``, checked and typed."""
    return parse_encoder_options(encoder, pairs, reserved=OWN_FLAGS)
