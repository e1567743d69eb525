"""Report figures drawn with matplotlib: seen-unseen curves, per-domain bars, k-shot curves."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from unseen.core.io import atomic_write_bytes  # noqa: E402


def seen_unseen_plot(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write :func:`seen_unseen_png` of ``records`` to ``path``."""
    return atomic_write_bytes(path, seen_unseen_png(records))


def seen_unseen_png(records: Sequence[dict[str, Any]]) -> bytes:
    """One curve per record, drawn through the exact points whose trapezoid area is AUSUC.

    A method's plain and calibrated runs may select different hyperparameters, hence different
    models and curves: plain runs are solid, calibrated ones dashed in the same colour.
    """
    fig, ax = plt.subplots(figsize=(6, 4.8), dpi=110)
    colours: dict[str, str] = {}
    for r in records:
        colour = colours.setdefault(r["method"], f"C{len(colours) % 10}")
        tag = "calibrated" if r["calibrate"] else "plain"
        ax.plot(
            r["curve"]["unseen"],
            r["curve"]["seen"],
            color=colour,
            linestyle="--" if r["calibrate"] else "-",
            label=f"{r['method']} {tag} (AUSUC {r['metrics']['AUSUC']:.3f})",
        )
    ax.set_xlabel("unseen accuracy (%)")
    ax.set_ylabel("seen accuracy (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title(f"Seen-unseen accuracy curves: {records[0]['data']['name']}")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def domain_bars_png(
    title: str, domains: Sequence[str], series: dict[str, Sequence[tuple[float, float]]]
) -> bytes:
    """Grouped bars: one group per domain, one bar per algorithm, with standard-error whiskers.

    ``series`` maps an algorithm to one ``(mean, standard error)`` per domain (NaN: missing).
    """
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(domains) + 2), 4.2), dpi=110)
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(sorted(series.items())):
        xs = [d + (i - (len(series) - 1) / 2) * width for d in range(len(domains))]
        ax.bar(
            xs,
            [m for m, _ in values],
            width,
            yerr=[s for _, s in values],
            capsize=2,
            label=name,
            color=f"C{i % 10}",
        )
    ax.set_xticks(range(len(domains)), domains)
    ax.set_ylabel("test-domain accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, ncols=min(len(series), 4))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def shot_curves_png(
    title: str, metric: str, shots: Sequence[int], series: dict[str, Sequence[tuple[float, float]]]
) -> bytes:
    """Accuracy against shots per class (log-2 axis): one line per method, standard-error band.

    ``series`` maps a method to one ``(mean, standard error)`` per shot count (NaN: missing).
    """
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    for i, (name, values) in enumerate(sorted(series.items())):
        means = np.array([m for m, _ in values])
        errors = np.array([s for _, s in values])
        colour = f"C{i % 10}"
        ax.plot(shots, means, marker="o", color=colour, label=name)
        ax.fill_between(shots, means - errors, means + errors, color=colour, alpha=0.15, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(shots), [str(k) for k in shots])
    ax.set_xlabel("shots per class")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
