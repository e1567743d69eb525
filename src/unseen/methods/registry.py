"""Registries of methods, one per family, and the hyperparameter declarations that live with them.

A method class declares its hyperparameters as :class:`HParam` objects next to its code: the
paper's default and the search space the protocols draw from. Registries replace if-chains: the
CLI, protocols and sweeps look methods up by name.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from unseen.errors import HyperparameterError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: paper default, the grid searched on validation, and what it means.

    ``choices`` lists the allowed values of a categorical hyperparameter (any value in it may be
    set by hand, even when the grid searches fewer). ``draw`` replaces the grid for random search
    with a distribution (DomainBed's, e.g. ``lambda r: 10 ** r.uniform(-4.5, -2.5)``); grid
    search still uses ``grid``.
    """

    name: str
    default: Any
    grid: tuple = ()
    help: str = ""
    choices: tuple = ()
    draw: Callable[[np.random.Generator], Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(self.grid) if self.grid else (self.default,))

    def sample(self, seed: int) -> Any:
        """A draw from the grid, seeded by ``seed`` and a hash of this hyperparameter's name."""
        salt = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "little")
        rng = np.random.default_rng([seed, salt])
        if self.draw is not None:
            return self.coerce(self.draw(rng), owner=f"hyperparameter '{self.name}'")
        return self.grid[int(rng.integers(len(self.grid)))]

    def coerce(self, value: Any, owner: str) -> Any:
        """``value`` converted to the type of the default, or a clear error."""
        kind = type(self.default)
        if self.choices:
            if value not in self.choices:
                raise HyperparameterError(
                    f"{owner}: hyperparameter '{self.name}' must be one of {list(self.choices)}, "
                    f"got {value!r}."
                )
            return value
        if isinstance(self.default, bool):
            if isinstance(value, bool):
                return value
            raise HyperparameterError(
                f"{owner}: hyperparameter '{self.name}' must be true or false, got {value!r}."
            )
        if kind is str and isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True)  # a JSON object or list given for a text hparam
        try:
            if kind in (int, float) and isinstance(value, bool):
                raise ValueError  # true is not a batch size of 1
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            converted = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise HyperparameterError(
                f"{owner}: hyperparameter '{self.name}' must be a {kind.__name__} like "
                f"{self.default!r}, got {value!r}."
            ) from None
        if kind is float and not math.isfinite(converted):
            raise HyperparameterError(
                f"{owner}: hyperparameter '{self.name}' must be a finite number, got {value!r}."
            )
        return converted


def resolve_hparams(
    declared: Sequence[HParam], given: Mapping[str, Any] | None, owner: str
) -> dict[str, Any]:
    """Defaults overridden by ``given``; unknown names and wrong types raise with the fix."""
    spec = {h.name: h for h in declared}
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise HyperparameterError(
            f"{owner}: unknown hyperparameter(s) {unknown}; valid names: {sorted(spec)}."
        )
    return {name: h.coerce(given[name], owner) if name in given else h.default for name, h in spec.items()}


class Registry(Mapping[str, type]):
    """Name -> class for one family of methods (``gzsl``, ``dg``, ``vlm``, ``tta``, ...).

    The family's package (``package``) registers its methods when imported; the registry imports
    it at the first lookup, so importing a registry (or this module) loads no method and no torch.
    """

    def __init__(self, family: str, package: str | None = None) -> None:
        self.family = family
        self.package = package
        self._entries: dict[str, type] = {}
        self._loaded = package is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before the import: the package's own lookups must not recurse
            importlib.import_module(self.package)

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise ValueError(f"{self.family} method '{name}' is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorate

    def __getitem__(self, name: str) -> type:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.family} method '{name}'.{hint} Known: {', '.join(sorted(self))}. "
                "List them with `unseen methods`."
            ) from None

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


GZSL = Registry("gzsl", "unseen.methods.gzsl")
DG = Registry("dg", "unseen.methods.dg")
VLM = Registry("vlm", "unseen.methods.vlm")
TTA = Registry("tta", "unseen.methods.tta")

FAMILIES: dict[str, Registry] = {"gzsl": GZSL, "dg": DG, "vlm": VLM, "tta": TTA}
