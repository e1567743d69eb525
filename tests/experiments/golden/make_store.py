"""Regenerate the committed golden store: ``python tests/experiments/golden/make_store.py``.

Two methods x two seeds x plain/calibrated on a small synthetic CUB, all done; a third method
with one failed run and one run left ``running`` (as a killed driver leaves it), so every kind
of missing cell appears. ``sweep.toml`` additionally asks for a method never run.
After regenerating, rewrite the expected tables with ``--update-expected``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from unseen.experiments.executors import make_executor
from unseen.experiments.launch import launch, plan
from unseen.experiments.store import ResultStore
from unseen.experiments.sweep import load_sweep
from unseen.report.results import build_tables, render

HERE = Path(__file__).parent
STORE = HERE / "store.sqlite"
FORMATS = {"markdown": "expected.md", "latex": "expected.tex", "csv": "expected.csv"}


def expected_tables() -> dict[str, str]:
    with ResultStore(STORE) as store:
        rows = store.records(status=None)
    identities = [p.identity for p in plan(load_sweep(HERE / "sweep.toml").runs)]
    tables = build_tables(rows, identities)
    return {name: render(tables, fmt) + "\n" for fmt, name in FORMATS.items()}


def main() -> None:
    if "--update-expected" not in sys.argv:
        STORE.unlink(missing_ok=True)
        planned = plan(load_sweep(HERE / "sweep.toml").runs)
        done = [p for p in planned if p.spec.method in ("eszsl", "sae")]
        sje = [p for p in planned if p.spec.method == "sje" and not p.spec.options["calibrate"]]
        with ResultStore(STORE) as store:
            launch(done, store, make_executor("serial"))
            store.mark_failed(
                sje[0].run_id, sje[0].identity, "Traceback (most recent call last):\nValueError: x"
            )
            store.mark_running(sje[1].run_id, sje[1].identity)
    for name, text in expected_tables().items():
        (HERE / name).write_text(text)


if __name__ == "__main__":
    main()
