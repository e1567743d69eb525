"""Run records: one JSON-serialisable dict per (protocol, data, method, hparams, seed) run.

Every protocol builds its record with :func:`make_record`: the header (schema, run id, task,
protocol), the protocol's own fields, then the provenance footer (package versions, creation time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from datetime import UTC, datetime
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


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_record(task: str, protocol: str, spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The record of one run: its id (from ``spec``, the run's identity), ``fields`` in order, and
    the versions and time it was made with."""
    return {
        "schema": RECORD_SCHEMA,
        "run_id": run_id(spec),
        "task": task,
        "protocol": protocol,
        **fields,
        "versions": package_versions(),
        "unseen_version": VERSION,
        "created": timestamp(),
    }
