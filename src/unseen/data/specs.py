"""Data specs: ``scheme:target[?key=value&...]`` strings naming a dataset on the CLI.

Schemes live in a registry; each loader module registers its own:

- ``xlsa17:DIR`` - a folder with ``res101.mat`` + ``att_splits.mat`` (:mod:`unseen.data.xlsa17`)
- ``npz:FILE`` - features, labels, semantics and splits in one ``.npz`` (:mod:`unseen.data.npz`)
- ``builtin:mnist-zsl`` - offline built-in benchmarks (:mod:`unseen.data.builtin`)
- ``synthetic:NAME[?seed=..]`` - planted benchmarks shaped like real ones (:mod:`unseen.data.synthetic`)
- ``text:SPEC[?encoder=..&templates=..&mode=..]`` - SPEC with text-embedding class semantics
  (:mod:`unseen.semantics.scheme`)
- ``kg:SPEC?classes=FILE[&method=..]`` - SPEC with class semantics predicted from the WordNet graph
  (:mod:`unseen.protocols.kg_semantics`)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import parse_qsl

from unseen.core.errors import SpecError
from unseen.core.registry import Registry
from unseen.data.model import ZSLDataset

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


class SchemeRegistry(Registry[Callable[[DataSpec], T]]):
    """Data-spec schemes of one kind of dataset: scheme name -> loader, with a one-line help each.

    ``data_kind`` names the kind of dataset the loaders give (``zero-shot``, ``multi-domain``, ...).
    """

    def __init__(self, data_kind: str, *providers: str) -> None:
        super().__init__("scheme", *providers)
        self.data_kind = data_kind
        DATA_KINDS.register(data_kind)(self)

    def describe(self, name: str) -> str:
        return f"scheme '{name}' for {self.data_kind} data"

    def load(self, text: str) -> T:
        """The dataset ``text`` names; unknown schemes and bad options raise :class:`SpecError`."""
        spec = parse_spec(text, self)
        if spec.scheme not in self:
            raise self.unknown(spec.scheme, context=f"data spec '{text}': ")
        return self[spec.scheme](spec)


DATA_KINDS: Registry[SchemeRegistry] = Registry(
    "kind of data",
    "unseen.data.domains",
    "unseen.data.images",
    "unseen.data.paired",
    "unseen.data.zsl_domains",
)
"""Every kind of dataset (each scheme registry registers itself here), for listings."""

ZSL_SCHEMES: SchemeRegistry[ZSLDataset] = SchemeRegistry(
    "zero-shot",
    "unseen.data.builtin",
    "unseen.data.npz",
    "unseen.data.synthetic",
    "unseen.data.xlsa17",
    "unseen.semantics.scheme",  # text: embeds class names; it lives with the encoders' users, above data
    "unseen.protocols.kg_semantics",  # kg: trains a graph model of the kg-zsl-v1 task, two layers up
)
register_scheme = ZSL_SCHEMES.register
load_dataset = ZSL_SCHEMES.load


def parse_spec(text: str, registry: SchemeRegistry | None = None) -> DataSpec:
    """``text`` split into scheme, target and options; ``registry`` names the schemes in errors."""
    if ":" not in text:
        registry = registry or ZSL_SCHEMES
        raise SpecError(
            f"data spec '{text}' has no scheme; write SCHEME:TARGET[?key=value]. Schemes for "
            f"{registry.data_kind} data: " + "; ".join(registry.help().values()) + "."
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
