"""Registries (name -> entry, in place of if-chains) and declared hyperparameters.

A method class declares its hyperparameters as :class:`HParam` objects next to its code: the
paper's default, the values it may take, and the search space the protocols draw from. The CLI,
protocols and sweeps look methods, encoders, data schemes and protocols up by name in a
:class:`Registry`.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import math
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeVar

import numpy as np

from unseen.core.errors import HyperparameterError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: the paper's default, the values it may take, and how it is searched.

    ``grid`` is what a grid search on validation tries (by default the default alone).
    ``choices`` lists the allowed values of a categorical hyperparameter (any value in it may be
    set by hand, even when the grid searches fewer). ``draw`` replaces the grid for random search
    with a distribution (DomainBed's, e.g. ``lambda r: 10 ** r.uniform(-4.5, -2.5)``).
    ``low`` and ``high`` bound a number (inclusive). Unless given, a number whose default and grid
    are all non-negative may not be negative, and an integer whose default and grid are all
    positive (a count, a size, a length) may not be below 1. Every value, given, fixed or drawn,
    is checked against this domain.
    """

    name: str
    default: Any
    _: KW_ONLY
    grid: tuple = ()
    help: str = ""
    choices: tuple = ()
    draw: Callable[[np.random.Generator], Any] | None = field(default=None, compare=False, repr=False)
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(self.grid) if self.grid else (self.default,))
        if self.is_number and self.low is None:
            values = (self.default, *self.grid)
            if isinstance(self.default, int) and min(values) >= 1:
                object.__setattr__(self, "low", 1)
            elif min(values) >= 0:
                object.__setattr__(self, "low", 0)
        for value in (self.default, *self.grid):
            self.coerce(value, owner="declaration")  # a declaration outside its own domain is a bug

    @property
    def is_number(self) -> bool:
        number = isinstance(self.default, int | float) and not isinstance(self.default, bool)
        return number and not self.choices

    def sample(self, seed: int) -> Any:
        """A draw from the grid, seeded by ``seed`` and a hash of this hyperparameter's name."""
        salt = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "little")
        rng = np.random.default_rng([seed, salt])
        if self.draw is not None:
            return self.coerce(self.draw(rng), owner=f"hyperparameter '{self.name}'")
        return self.grid[int(rng.integers(len(self.grid)))]

    def coerce(self, value: Any, owner: str) -> Any:
        """``value`` converted to the type of the default and checked against the domain, or a
        clear error."""
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
        if self.is_number and not (
            (self.low is None or converted >= self.low) and (self.high is None or converted <= self.high)
        ):
            raise HyperparameterError(
                f"{owner}: hyperparameter '{self.name}' must be {self.domain()}, got {value!r}."
            )
        return converted

    def domain(self) -> str:
        """The allowed numbers in words, e.g. ``between 1 and 1048576``."""
        if self.low is not None and self.high is not None:
            return f"between {self.low} and {self.high}"
        if self.low is not None:
            return f"at least {self.low}"
        return f"at most {self.high}" if self.high is not None else "a number"


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


class Registry(Mapping[str, T]):
    """Name -> entry for one kind of thing: the methods of a family, encoders, data schemes, ...

    ``providers`` name the modules whose import registers the entries (their decorators call
    :meth:`register`); a package stands for every module in it, so a new entry is one new file.
    The registry imports them at its first lookup, so importing a registry loads none of them,
    and a layer can offer entries that a layer above it provides. ``kind`` and ``fix``
    word the error for an unknown name.
    """

    def __init__(self, kind: str, *providers: str, fix: str = "") -> None:
        self.kind = kind
        self.providers = providers
        self.fix = fix
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}
        self._loaded = not providers

    @classmethod
    def of(cls, kind: str, entries: Mapping[str, T], fix: str = "") -> Registry[T]:
        """A registry holding ``entries`` (name -> entry): a small set fixed where it is defined."""
        registry = cls(kind, fix=fix)
        for name, entry in entries.items():
            registry.register(name)(entry)
        return registry

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before the imports: the providers' own lookups must not recurse
            for name in self.providers:
                module = importlib.import_module(name)
                if hasattr(module, "__path__"):  # a package: each of its modules may register entries
                    for found in pkgutil.walk_packages(module.__path__, prefix=f"{name}."):
                        importlib.import_module(found.name)

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """A decorator that registers its argument under ``name`` with a one-line ``help``."""

        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = entry
            self._help[name] = help
            return entry

        return decorate

    def help(self) -> dict[str, str]:
        """``{name: one-line help}`` in name order."""
        self._load()
        return {name: self._help.get(name, "") for name in sorted(self._entries)}

    def unknown(self, name: str, context: str = "") -> UnknownNameError:
        """The error for ``name``: the closest known names, all of them, and the fix."""
        self._load()
        close = difflib.get_close_matches(name, self._entries, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        fix = f" {self.fix}" if self.fix else ""
        return UnknownNameError(
            f"{context}unknown {self.describe(name)}.{hint} Known: {', '.join(sorted(self._entries))}.{fix}"
        )

    def describe(self, name: str) -> str:
        """How an error names entry ``name``."""
        return f"{self.kind} '{name}'"

    def __getitem__(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise self.unknown(name) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def get(self, name: str, default: Any = None) -> Any:
        self._load()
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
