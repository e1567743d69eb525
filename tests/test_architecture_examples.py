"""The worked examples of docs/architecture.md: each new method file, then its test, run as written.

Each example runs in its own interpreter, so the methods it registers never reach the registries
the other tests iterate over."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import unseen

PAGE = Path(unseen.__file__).parents[2] / "docs" / "architecture.md"
EXAMPLE = re.compile(r"^### (\w+): `([^`]+)`\n(.*?)(?=^### |\Z)", re.M | re.S)
CODE = re.compile(r"```python\n(.*?)```", re.S)


def examples() -> dict[str, tuple[str, str, str]]:
    """``{family: (file, method code, test code)}`` from the page."""
    out = {}
    for family, path, body in EXAMPLE.findall(PAGE.read_text()):
        method, test = CODE.findall(body)
        out[family] = (path, method, test)
    return out


def test_the_page_has_an_example_for_every_family():
    assert set(examples()) == {"GZSL", "DG", "TTA", "VLM"}
    for family, (path, _, _) in examples().items():
        assert path.startswith(f"src/unseen/methods/{family.lower()}/") and path.endswith(".py")


@pytest.mark.parametrize("family", ["GZSL", "DG", "TTA", "VLM"])
def test_the_example_method_passes_its_test_and_the_contract(family):
    _, method, test = examples()[family]
    names = re.findall(r"^def (test_\w+)\(", test, re.M)
    assert len(names) == 1
    check = f"""
from unseen.methods import FAMILIES
registry = FAMILIES[{family.lower()!r}]
name = next(n for n in registry if registry[n].__module__ == "__main__")
cls = registry[name]
assert cls.paper and all(h.default in h.grid for h in cls.hparams)
print("passed", name)
"""
    script = "\n".join([method, test, f"{names[0]}()", check])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("passed ")
