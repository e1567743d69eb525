"""Sweep files: a declarative TOML (or YAML) file that expands into run specs.

A sweep file holds one or more ``[[runs]]`` blocks; each block is the cartesian product of its
lists::

    store = "results.sqlite"        # optional; relative to the sweep file

    [[runs]]
    task = "gzsl"
    data = ["synthetic:CUB"]
    methods = ["eszsl", "dap"]
    seeds = [0, 1, 2]
    hparams = {}                    # fixed values for every run of the block
    sweep_hparams = "none"          # "none", "grid" or "random:N" (one run per candidate)
    hparams_seed = 0                # seeds the random draws

    [runs.options]                  # task options; a list gives one run per value
    calibrate = [false, true]
    search = "grid"

``sweep_hparams`` turns a method's declared search space into separate runs (DomainBed's
random search); ``"none"`` leaves the choice to the task's protocol (GZSL selects on validation).
The space is declared per data spec: DG algorithms on large images have DomainBed's large-image
learning rate and batch size and the pretrained featurizer's options.
A ``.yaml`` / ``.yml`` file holds the same keys: ``store`` and a list ``runs`` of blocks.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unseen.core.errors import SweepFileError, UnseenError
from unseen.experiments.spec import RunSpec
from unseen.experiments.tasks import task_runner
from unseen.protocols.search import candidates

BLOCK_KEYS = {"task", "data", "methods", "seeds", "hparams", "sweep_hparams", "hparams_seed", "options"}


@dataclass(frozen=True)
class Sweep:
    """The runs a sweep file asks for, in file order, and the store it names (if any)."""

    path: Path
    runs: tuple[RunSpec, ...]
    store: Path | None


def _read_toml(path: Path) -> Any:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepFileError(f"sweep file {path} is not valid TOML: {exc}.") from None


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SweepFileError(f"sweep file {path} is not valid YAML: {exc}.") from None


READERS = {".toml": _read_toml, ".yaml": _read_yaml, ".yml": _read_yaml}
"""Sweep file readers by file suffix."""


def load_sweep(path: str | Path) -> Sweep:
    """Parse and expand the sweep file at ``path``; errors name the file, the field and the fix."""
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file {path} does not exist; pass the path of a .toml sweep file.")
    if path.suffix.lower() not in READERS:
        raise SweepFileError(
            f"sweep file {path}: unknown format '{path.suffix}'; name it .toml, .yaml or .yml."
        )
    doc = READERS[path.suffix.lower()](path)
    if not isinstance(doc, dict):
        raise SweepFileError(f"sweep file {path}: the top level must be a table/mapping with 'runs'.")
    unknown = sorted(set(doc) - {"store", "runs"})
    if unknown:
        raise SweepFileError(
            f"sweep file {path}: unknown top-level key(s) {unknown}; use 'store' and [[runs]]."
        )
    blocks = doc.get("runs")
    if not isinstance(blocks, list) or not blocks:
        raise SweepFileError(f"sweep file {path}: add at least one [[runs]] block.")
    runs: list[RunSpec] = []
    for i, block in enumerate(blocks):
        runs.extend(_expand(block, f"sweep file {path}, [[runs]] block {i + 1}"))
    store = doc.get("store")
    if store is not None and not isinstance(store, str):
        raise SweepFileError(f"sweep file {path}: 'store' must be a path string.")
    return Sweep(path, tuple(runs), None if store is None else (path.parent / store))


def _expand(block: dict[str, Any], where: str) -> list[RunSpec]:
    unknown = sorted(set(block) - BLOCK_KEYS)
    if unknown:
        raise SweepFileError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(BLOCK_KEYS)}.")
    task = _required(block, "task", str, where)
    try:
        runner = task_runner(task)
    except UnseenError as exc:
        raise SweepFileError(f"{where}: {exc}") from None
    datas = _string_list(block, "data", where)
    methods = _string_list(block, "methods", where)
    seeds = block.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise SweepFileError(f"{where}: 'seeds' must be a non-empty list of integers, e.g. [0, 1, 2].")
    fixed = block.get("hparams", {})
    if not isinstance(fixed, dict):
        raise SweepFileError(f"{where}: 'hparams' must be a table, e.g. hparams = {{ alpha = 1.0 }}.")
    mode = block.get("sweep_hparams", "none")
    hseed = block.get("hparams_seed", 0)
    if type(hseed) is not int:
        raise SweepFileError(f"{where}: 'hparams_seed' must be an integer.")
    options = block.get("options", {})
    if not isinstance(options, dict):
        raise SweepFileError(f"{where}: 'options' must be a table ([runs.options]).")
    unknown_opts = sorted(set(options) - set(runner.options))
    if unknown_opts:
        raise SweepFileError(
            f"{where}: unknown option(s) {unknown_opts} for task '{task}'; known: {sorted(runner.options)}."
        )
    option_values = [v if isinstance(v, list) else [v] for v in options.values()]
    option_sets = [dict(zip(options, combo, strict=True)) for combo in itertools.product(*option_values)]

    runs = []
    for method in methods:
        if method not in runner.methods():
            raise SweepFileError(f"{where}: unknown {task} method '{method}'; see `unseen methods`.")
        for data, opts in itertools.product(datas, option_sets):
            declared = runner.declared_hparams(method, data, opts)
            for hp in _hparam_sets(declared, fixed, mode, hseed, f"{where}, {method} on '{data}'"):
                for seed in seeds:
                    runs.extend(runner.expand(RunSpec(task, data, method, seed, hp, opts)))
    return runs


def _hparam_sets(declared, fixed, mode: str, seed: int, owner: str) -> list[dict[str, Any]]:
    if mode == "none":
        try:
            candidates(declared, fixed, "default", seed, owner)  # validates the fixed values
        except UnseenError as exc:
            raise SweepFileError(str(exc)) from None
        return [dict(fixed)]
    if mode != "grid" and not mode.startswith("random:"):
        raise SweepFileError(f"{owner}: sweep_hparams must be 'none', 'grid' or 'random:N', got {mode!r}.")
    try:
        return candidates(declared, fixed, mode, seed, owner)
    except UnseenError as exc:
        raise SweepFileError(str(exc)) from None


def _required(block: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = block.get(key)
    if not isinstance(value, kind):
        raise SweepFileError(f"{where}: '{key}' is required and must be a {kind.__name__}.")
    return value


def _string_list(block: dict[str, Any], key: str, where: str) -> list[str]:
    value = block.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SweepFileError(f"{where}: '{key}' must be a non-empty list of strings.")
    return value
