"""Data specs: ``scheme:target[?key=value&...]`` strings naming a dataset on the CLI.

Schemes live in a registry; each loader module registers its own:

- ``xlsa17:DIR`` - a folder with ``res101.mat`` + ``att_splits.mat`` (:mod:`unseen.data.xlsa17`)
- ``npz:FILE`` - features, labels, semantics and splits in one ``.npz`` (:mod:`unseen.data.npz`)
- ``builtin:mnist-zsl`` - offline built-in benchmarks (:mod:`unseen.data.builtin`)
- ``synthetic:NAME[?seed=..]`` - planted benchmarks shaped like real ones (:mod:`unseen.data.synthetic`)
- ``text:SPEC[?encoder=..&templates=..&mode=..]`` - SPEC with text-embedding class semantics
  (:mod:`unseen.data.text_semantics`)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import parse_qsl

from unseen.data.model import ZSLDataset
from unseen.errors import SpecError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``scheme``, ``target`` and string ``options``."""

    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def int_option(self, key: str, default: int) -> int:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise SpecError(
                f"data spec '{self.text}': option '{key}' must be an integer, got '{raw}'."
            ) from None

    def float_option(self, key: str, default: float) -> float:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise SpecError(
                f"data spec '{self.text}': option '{key}' must be a number, got '{raw}'."
            ) from None

    def check_options(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise SpecError(
                f"data spec '{self.text}': unknown option(s) {unknown} for scheme "
                f"'{self.scheme}'; allowed: {sorted(allowed) or 'none'}."
            )


class SchemeRegistry(Generic[T]):
    """Data-spec schemes of one kind of dataset: scheme name -> (loader, one-line help).

    ``import_loaders`` imports the modules whose decorators register the schemes, on first use.
    """

    def __init__(self, kind: str, import_loaders: Callable[[], None]) -> None:
        self.kind = kind
        self._import_loaders = import_loaders
        self._entries: dict[str, tuple[Callable[[DataSpec], T], str]] = {}

    def register(self, name: str, help: str) -> Callable[[Callable[[DataSpec], T]], Callable[[DataSpec], T]]:
        def decorate(fn: Callable[[DataSpec], T]) -> Callable[[DataSpec], T]:
            self._entries[name] = (fn, help)
            return fn

        return decorate

    def schemes(self) -> dict[str, str]:
        self._import_loaders()
        return {name: help for name, (_, help) in sorted(self._entries.items())}

    def load(self, text: str) -> T:
        """The dataset ``text`` names; unknown schemes and bad options raise :class:`SpecError`."""
        self._import_loaders()
        spec = parse_spec(text, self)
        if spec.scheme not in self._entries:
            close = difflib.get_close_matches(spec.scheme, self._entries, n=2)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"data spec '{text}': unknown scheme '{spec.scheme}' for {self.kind} data.{hint} "
                f"Known: {', '.join(sorted(self._entries))}."
            )
        return self._entries[spec.scheme][0](spec)


def _import_zsl_loaders() -> None:
    # Importing the loader modules registers their schemes.
    from unseen.data import builtin, npz, synthetic, text_semantics, xlsa17  # noqa: F401


ZSL_SCHEMES: SchemeRegistry[ZSLDataset] = SchemeRegistry("zero-shot", _import_zsl_loaders)
register_scheme = ZSL_SCHEMES.register
schemes = ZSL_SCHEMES.schemes
load_dataset = ZSL_SCHEMES.load


def parse_spec(text: str, registry: SchemeRegistry | None = None) -> DataSpec:
    """``text`` split into scheme, target and options; ``registry`` names the schemes in errors."""
    if ":" not in text:
        registry = registry or ZSL_SCHEMES
        raise SpecError(
            f"data spec '{text}' has no scheme; write SCHEME:TARGET[?key=value]. Schemes for "
            f"{registry.kind} data: " + "; ".join(f"{help}" for help in registry.schemes().values()) + "."
        )
    scheme, rest = text.split(":", 1)
    target, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise SpecError(
            f"data spec '{text}': options after '?' must look like key=value&key=value."
        ) from None
    if not target:
        raise SpecError(f"data spec '{text}': nothing after '{scheme}:'; name a file, folder or dataset.")
    return DataSpec(scheme=scheme, target=target, options=options, text=text)
