"""Registries load their family on first use: importing them loads no method and no torch."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_importing_the_registries_loads_no_torch():
    out = _run("import sys, unseen.methods, unseen.methods.registry; print('torch' in sys.modules)")
    assert out.strip() == "False"


def test_the_first_lookup_registers_the_whole_family():
    out = _run(
        "from unseen.methods import DG, GZSL, TTA, VLM\n"
        "print('eszsl' in GZSL, 'erm' in DG, 'tent' in TTA, 'gda' in VLM, len(GZSL) > 10)"
    )
    assert out.split() == ["True"] * 5
