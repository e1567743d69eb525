"""Encoder options written as text (``KEY=VALUE``), checked and typed against the encoder's factory.

The command line (``--encoder-option model=ViT-B-32``, repeatable) and data specs give encoder
options as strings. :func:`parse_encoder_options` splits them and :func:`typed_encoder_options`
checks each name against the keyword parameters of the chosen encoder's factory
(:meth:`~unseen.backbones.base.EncoderRegistry.parameters`) and converts each value to the type
the parameter is annotated with: ``bool`` (true/false, yes/no, on/off, 1/0), ``int`` or ``float``;
every other value stays a string. Names a caller takes another way (the CLI's ``--weights`` and
``--device``) go in ``reserved``; naming one of them as an option is an error that says how.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_args

from unseen.backbones.base import ENCODERS, unknown_option_error
from unseen.core.errors import SpecError

BOOLEANS = {
    **dict.fromkeys(("true", "yes", "on", "1"), True),
    **dict.fromkeys(("false", "no", "off", "0"), False),
}


def _to_bool(text: str) -> bool:
    return BOOLEANS[text.strip().lower()]  # a KeyError reads as "not a boolean"


def _to_finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


CONVERTERS: dict[type, tuple[Callable[[str], Any], str, str]] = {
    bool: (_to_bool, "true or false (also yes/no, on/off, 1/0)", "true"),
    int: (int, "an integer", "4"),
    float: (_to_finite_float, "a finite number", "0.5"),
}
"""Annotated type -> (converter, what it expects, an example value)."""


def split_options(pairs: Sequence[str]) -> dict[str, str]:
    """``["model=ViT-B-32", ...]`` as ``{"model": "ViT-B-32", ...}`` (value: all after the first ``=``)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise SpecError(
                f"encoder option {pair!r} is not KEY=VALUE; write it like model=ViT-B-32 "
                "(one --encoder-option per option)."
            )
        if key in options:
            raise SpecError(
                f"encoder option '{key}' is given twice ({key}={options[key]} and {key}={value}); keep one."
            )
        options[key] = value
    return options


def _value_type(annotation: Any) -> type:
    """The first of bool, int, float that ``annotation`` allows (``int | None`` -> int), else str."""
    allowed = get_args(annotation) or (annotation,)
    return next((t for t in CONVERTERS if t in allowed), str)


def _convert(encoder: str, key: str, text: str, parameter: inspect.Parameter) -> Any:
    kind = _value_type(parameter.annotation)
    if kind is str:
        return text
    convert, expected, example = CONVERTERS[kind]
    try:
        return convert(text)
    except (KeyError, ValueError):
        raise SpecError(
            f"encoder '{encoder}': option {key}={text!r} must be {expected}; write e.g. {key}={example}."
        ) from None


def typed_encoder_options(
    encoder: str, options: Mapping[str, str], reserved: Mapping[str, str]
) -> dict[str, Any]:
    """``options`` (name -> text) checked against encoder ``encoder`` and converted to their types.

    ``reserved`` maps the names the caller gives another way to how it does (e.g. ``weights`` ->
    ``--weights PATH``); naming one of them here is an error that says so.
    """
    parameters = ENCODERS.parameters(encoder)
    typed: dict[str, Any] = {}
    for key, text in options.items():
        if key in reserved:
            raise SpecError(
                f"'{key}' is not given as an encoder option for '{encoder}'; use {reserved[key]} instead."
            )
        if key not in parameters:
            raise unknown_option_error(encoder, key, parameters)
        typed[key] = _convert(encoder, key, text, parameters[key])
    return typed


def parse_encoder_options(encoder: str, pairs: Sequence[str], reserved: Mapping[str, str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as keyword arguments of encoder ``encoder``'s factory, checked and typed."""
    return typed_encoder_options(encoder, split_options(pairs), reserved)
