"""Run records: one JSON-serialisable dict per (protocol, data, method, hparams, seed) run.

Every protocol builds its record with :func:`make_record`: the header (schema, run id, task,
protocol), the protocol's own fields, then the provenance footer (package versions, the git commit
of the code when it runs from a checkout, creation time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unseen.core.version import VERSION

RECORD_SCHEMA = 1


def run_id(spec: dict[str, Any]) -> str:
    """A stable id for a run spec: SHA-256 of its canonical JSON, first 16 hex chars."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("unseen", "numpy", "scipy", "scikit-learn", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages whose numerics a record depends on (read once)."""
    return dict(_versions())


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def revision_of(package_dir: Path) -> str | None:
    """The git commit that the files of ``package_dir`` come from, with ``+modified`` when any of
    them differs from it; ``None`` when they are not tracked by git (an installed wheel, even one
    inside another project's repository) or git is unavailable."""
    try:
        if not _git(package_dir, "ls-files", "--", "."):
            return None
        commit = _git(package_dir, "rev-parse", "HEAD")
        modified = _git(package_dir, "status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+modified" if modified else "")


@functools.lru_cache(maxsize=1)
def code_revision() -> str | None:
    """:func:`revision_of` this package's own source directory (read once per process): which code,
    in a development checkout, made a record."""
    return revision_of(Path(__file__).resolve().parents[1])


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_record(task: str, protocol: str, spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The record of one run: its id (from ``spec``, the run's identity), ``fields`` in order, and
    the versions, code revision and time it was made with."""
    return {
        "schema": RECORD_SCHEMA,
        "run_id": run_id(spec),
        "task": task,
        "protocol": protocol,
        **fields,
        "versions": package_versions(),
        "unseen_version": VERSION,
        "unseen_revision": code_revision(),
        "created": timestamp(),
    }
