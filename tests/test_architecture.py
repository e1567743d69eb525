"""The layers of src/unseen: no package imports another in a circle, and the foundation (core)
imports nothing else of the project. Imports inside functions count: a lazy import is still a
dependency."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import unseen

ROOT = Path(unseen.__file__).parent
LAYERS = (
    ("core",),
    ("data", "metrics"),
    ("backbones",),
    ("semantics", "nn"),
    ("methods",),
    ("protocols",),
    ("experiments",),
    ("report",),
    ("cli",),
)
"""The layers of docs/architecture.md, bottom up: a package imports only from layers below its own."""


def imported_modules(path: Path, root: Path = ROOT) -> list[str]:
    """Every ``unseen.*`` module that ``path`` (under the package folder ``root``) imports, anywhere
    in it, relative imports resolved."""
    package = ["unseen", *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found += [name] + [f"{name}.{alias.name}" for alias in node.names]
    return [name for name in found if name.split(".")[0] == "unseen"]


def package_of(module: str) -> str | None:
    """The top-level package of ``unseen.PACKAGE...``; ``None`` for the root module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else None


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        source = package_of(".".join(["unseen", *path.relative_to(ROOT).parts]))
        if source is None:
            continue
        for module in imported_modules(path):
            target = package_of(module)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or ``None``."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path):
    module = tmp_path / "unseen" / "data" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def f():\n    from unseen.backbones.base import ENCODERS\n    from ..nn import networks\n"
    )
    assert imported_modules(module, tmp_path / "unseen") == [
        "unseen.backbones.base",
        "unseen.backbones.base.ENCODERS",
        "unseen.nn",
        "unseen.nn.networks",
    ]
    assert find_cycle({"data": {"backbones"}, "backbones": {"nn"}, "nn": {"data"}}) == [
        "backbones",
        "nn",
        "data",
        "backbones",
    ]
    assert find_cycle({"data": {"core"}, "backbones": {"data", "core"}}) is None


def test_no_package_imports_another_in_a_circle():
    graph = package_graph()
    assert "methods" in graph and "core" in graph["methods"]  # the walk sees the imports at all
    cycle = find_cycle(graph)
    assert cycle is None, f"packages import each other in a circle: {' -> '.join(cycle)}"


def test_each_package_imports_only_from_the_layers_below_it():
    layer = {package: level for level, packages in enumerate(LAYERS) for package in packages}
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(layer), "a package is missing from LAYERS (and from docs/architecture.md)"
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in package_graph().items()
        for target in targets
        if layer[target] >= layer[source]
    )
    assert not upward, f"imports that do not go down the layers: {upward}"


def test_the_architecture_page_lists_the_same_layers():
    page = (ROOT.parents[1] / "docs" / "architecture.md").read_text()
    for level, packages in enumerate(LAYERS):
        assert f"{level}. " + ", ".join(f"`{p}`" for p in packages) in page


@pytest.mark.parametrize("path", sorted((ROOT / "core").rglob("*.py")), ids=lambda p: p.name)
def test_the_foundation_imports_nothing_else_of_the_project(path):
    outside = sorted({m for m in imported_modules(path) if package_of(m) != "core"})
    assert not outside, f"{path.name} imports {outside}: core must depend on nothing of the project"
