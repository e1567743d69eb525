"""Hyperparameter candidates drawn from a method's declared search space."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from unseen.core.errors import SpecError
from unseen.core.registry import HParam, resolve_hparams

SEARCH_MODES = ("grid", "default", "random:N")


def candidates(
    declared: Sequence[HParam],
    fixed: Mapping[str, Any] | None,
    search: str,
    seed: int,
    owner: str,
) -> list[dict[str, Any]]:
    """Complete hyperparameter dicts to try; values in ``fixed`` are never searched.

    ``search``: ``"grid"`` (every combination of the declared grids), ``"default"`` (the paper
    defaults only) or ``"random:N"`` (N distinct draws from the grids, seeded by ``seed``).
    """
    fixed = dict(fixed or {})
    base = resolve_hparams(declared, fixed, owner)  # validates names and types of ``fixed``
    free = [h for h in declared if h.name not in fixed]
    if search == "default":
        combos: list[dict[str, Any]] = [{}]
    elif search == "grid":
        names = [h.name for h in free]
        combos = [
            dict(zip(names, values, strict=True)) for values in itertools.product(*(h.grid for h in free))
        ]
    elif search.startswith("random:"):
        combos = _random_draws(free, _draw_count(search), seed)
    else:
        raise SpecError(f"unknown search '{search}'; use one of {', '.join(SEARCH_MODES)}.")
    return [{**base, **combo} for combo in combos]


def _draw_count(search: str) -> int:
    try:
        n = int(search.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 1:
        raise SpecError(f"search '{search}': write random:N with N >= 1, e.g. random:20.")
    return n


def _random_draws(free: Sequence[HParam], n: int, seed: int) -> list[dict[str, Any]]:
    """Up to ``n`` distinct combinations (fewer when the grids hold fewer)."""
    combos: list[dict[str, Any]] = []
    keys: set[tuple] = set()
    for draw in range(50 * n):
        combo = {h.name: h.sample(seed * 100_003 + draw) for h in free}
        key = tuple(sorted(combo.items()))
        if key not in keys:
            keys.add(key)
            combos.append(combo)
            if len(combos) == n:
                break
    return combos
