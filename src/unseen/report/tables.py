"""Result tables from GZSL run records (Markdown), naming the protocol they come from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

METRIC_COLUMNS = ("S", "U", "H", "ZSL", "AUSUC")


def _cell(metric: str, value: float) -> str:
    return f"{value:.3f}" if metric == "AUSUC" else f"{value:.1f}"


def gzsl_rows(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per record: method, calibration, the five metrics and the selected hparams.

    Only hyperparameters that validation actually chose between are listed; the rest are in the
    record.
    """
    rows = []
    for r in records:
        trials = [t["hparams"] for t in r["selection"]["trials"]]
        searched = [k for k in r["hparams"] if len({repr(t[k]) for t in trials}) > 1]
        hp = ", ".join(f"{k}={r['hparams'][k]}" for k in searched) or "-"
        cal = "yes (γ={:.3g})".format(r["gamma"]) if r["calibrate"] else "no"
        rows.append([r["method"], cal, *(_cell(m, r["metrics"][m]) for m in METRIC_COLUMNS), hp])
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def gzsl_markdown(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of GZSL records, headed by the protocol and dataset they share."""
    if not records:
        return "(no runs)"
    protocols = sorted({r["protocol"] for r in records})
    datasets = sorted({f"{r['data']['name']} ({r['data']['hash']})" for r in records})
    head = (
        f"Protocol: {', '.join(protocols)}; data: {', '.join(datasets)}. "
        "S, U: per-class mean top-1 (%) on seen / unseen test classes over all classes; "
        "H: harmonic mean; ZSL: unseen-only top-1 (%); AUSUC: area under the seen-unseen curve."
    )
    table = markdown_table(["method", "calibrated", *METRIC_COLUMNS, "selected hparams"], gzsl_rows(records))
    return head + "\n\n" + table
