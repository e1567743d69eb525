"""One self-contained HTML page from a results store: tables, plots and every run.

Everything is inline (CSS in a ``<style>`` element, plots as base64 PNG data URIs): the page
opens from a file, offline, and can be mailed or attached to a paper's supplement as one file.
"""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from unseen import __version__
from unseen.core.record import timestamp
from unseen.report.plots import domain_bars_png, seen_unseen_png, shot_curves_png
from unseen.report.results import ResultTable

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 70em;
       color: #1d1d1f; background: #fff; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0 0 0.4em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f3f7; }
figure { margin: 0.8em 0 1.4em; }
figcaption { color: #555; font-size: 0.85em; max-width: 60em; }
.missing { color: #a33; } .status-failed { color: #a33; font-weight: bold; }
.status-running { color: #b07000; } .status-done { color: #27632a; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
.meta { color: #555; font-size: 0.9em; }
"""


def _png_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table_html(t: ResultTable) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header())
    body = []
    for row in t.body():
        cells = []
        for i, value in enumerate(row):
            missing = i > 0 and (value[:1].isalpha())
            cls = ' class="missing"' if missing else ""
            cells.append(f"<td{cls}>{html.escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        # A figure caption, not a <caption>: it may be wider than a narrow table.
        f"<figure><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<figcaption>{html.escape(t.caption())}</figcaption></figure>"
    )


def _gzsl_curves(records: Sequence[dict[str, Any]]) -> list[str]:
    """One seen-unseen plot per dataset (gzsl-dg: per dataset and held-out domain, whose curve it
    is): each method's run with the lowest seed."""
    by_data: dict[str, dict[tuple, dict]] = defaultdict(dict)
    for r in sorted(records, key=lambda r: r["seed"]):
        held_out = f", held-out domain {r['test_domain']}" if r.get("task") == "gzsl-dg" else ""
        key = r["data"]["name"] + held_out + " " + r["data"]["hash"]
        by_data[key].setdefault((r["method"], r["calibrate"]), r)
    out = []
    for name, runs in sorted(by_data.items()):
        chosen = [runs[k] for k in sorted(runs)]
        out.append(f"<h3>{html.escape(name)}</h3>" + _png_tag(seen_unseen_png(chosen), f"curves {name}"))
    return out


def _series(t: ResultTable) -> dict[str, list[tuple[float, float]]]:
    """Per row of ``t``, ``(mean, standard error)`` of each column's complete cell (NaN if not)."""
    series = {}
    for method in t.rows:
        points = []
        for column in t.columns:
            cell = t.cells.get((method, column))
            values = cell.values if cell is not None and cell.complete else []
            mean = float(sum(values) / len(values)) if values else math.nan
            se = float(_standard_error(values)) if len(values) > 1 else 0.0
            points.append((mean, se))
        series[method] = points
    return series


def _dg_bars(tables: Sequence[ResultTable]) -> list[str]:
    """Per-domain accuracy bars of each DG table (its selected test accuracies)."""
    out = []
    for t in tables:
        if t.task == "dg":
            png = domain_bars_png(t.protocol, t.columns, _series(t))
            alt = f"per-domain accuracy {t.protocol}"
            out.append(f"<h3>{html.escape(t.protocol)}</h3>" + _png_tag(png, alt))
    return out


def _shot_curves(tables: Sequence[ResultTable]) -> list[str]:
    """Accuracy against shots per class for each few-shot table."""
    out = []
    for t in tables:
        if t.task == "fewshot":
            shots = [int(c.split("-")[0]) for c in t.columns]
            png = shot_curves_png(t.protocol, f"{t.metric} (%)", shots, _series(t))
            out.append(f"<h3>{html.escape(t.protocol)}</h3>" + _png_tag(png, f"k-shot curves {t.protocol}"))
    return out


def _standard_error(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def _metric_text(row: dict[str, Any]) -> str:
    rec = row.get("record") or {}
    if rec.get("checkpoints"):
        last = rec["checkpoints"][-1]
        accs = ", ".join(f"env{e} {100 * last[f'env{e}_in_acc']:.1f}" for e in rec["test_envs"])
        return accs + " (last step)"
    metrics = rec.get("metrics") or {}
    shown = {k: v for k, v in metrics.items() if isinstance(v, int | float) and k != "AUSUC"}
    return ", ".join(f"{k} {v:.1f}" for k, v in shown.items())


IDENTITY_KEYS = {"task", "protocol", "data_hash", "semantics_kind", "method", "seed"}


def _options_text(spec: dict[str, Any]) -> str:
    """The spec's fields beyond the identity columns shown elsewhere (variant, fixed hparams)."""
    return " ".join(f"{k}={v}" for k, v in sorted(spec.items()) if k not in IDENTITY_KEYS and v != {})


def _runs_html(rows: Sequence[dict[str, Any]]) -> str:
    columns = ("run id", "status", "task", "method", "options", "data", "seed", "metrics")
    head = "".join(f"<th>{h}</th>" for h in columns)
    body = []
    for r in rows:
        spec = r.get("spec") or {}
        rec = r.get("record") or {}
        data = (rec.get("data") or {}).get("name") or spec.get("data_hash", "")
        error = ""
        if r["status"] == "failed" and r.get("error"):
            last = r["error"].strip().splitlines()[-1]
            error = (
                f"<details><summary>{html.escape(last)}</summary>"
                f"<pre>{html.escape(r['error'])}</pre></details>"
            )
        body.append(
            "<tr>"
            f"<td><code>{html.escape(r['run_id'])}</code></td>"
            f'<td class="status-{r["status"]}">{r["status"]}</td>'
            f"<td>{html.escape(str(spec.get('task', '')))}</td>"
            f"<td>{html.escape(str(spec.get('method', '')))}</td>"
            f"<td>{html.escape(_options_text(spec))}</td>"
            f"<td>{html.escape(str(data))}</td>"
            f"<td>{html.escape(str(spec.get('seed', '')))}</td>"
            f"<td>{html.escape(_metric_text(r))}{error}</td>"
            "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_html(rows: Sequence[dict[str, Any]], tables: Sequence[ResultTable], title: str) -> str:
    """The whole page for store ``rows`` (``ResultStore.records(status=None)``) and ``tables``."""
    counts = defaultdict(int)
    for r in rows:
        counts[r["status"]] += 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs"
    gzsl = [
        r["record"] for r in rows if r["status"] == "done" and r["record"].get("task") in ("gzsl", "gzsl-dg")
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(summary)}. Generated {timestamp()} by unseen {__version__}.</p>',
        "<h2>Results</h2>",
        *(_table_html(t) for t in tables),
    ]
    if not tables:
        parts.append("<p>No finished runs yet.</p>")
    if gzsl:
        parts += [
            "<h2>Seen–unseen accuracy curves</h2>",
            "<p>Calibrated stacking swept over the calibration constant (Chao et al., ECCV 2016); "
            "the legend gives each curve's AUSUC. Solid: plain runs; dashed: calibrated runs.</p>",
            *_gzsl_curves(gzsl),
        ]
    bars = _dg_bars(tables)
    if bars:
        parts += [
            "<h2>Per-domain accuracy</h2>",
            "<p>Each held-out domain's accuracy after model selection (the selection named in the "
            "table caption), mean over trial seeds with standard-error whiskers.</p>",
            *bars,
        ]
    curves = _shot_curves(tables)
    if curves:
        parts += [
            "<h2>Few-shot curves</h2>",
            "<p>The table's metric against shots per class, mean over seeds with a standard-error "
            "band; hyperparameters were chosen on the few-shot validation set only.</p>",
            *curves,
        ]
    parts += ["<h2>Runs</h2>", _runs_html(rows), "</body></html>"]
    return "\n".join(parts)
