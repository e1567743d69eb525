"""Seen-unseen accuracy curves (Chao et al.) from GZSL run records, drawn with matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from unseen.experiments.io import atomic_write_bytes  # noqa: E402


def seen_unseen_plot(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One curve per method, drawn through the exact points whose trapezoid area is AUSUC.

    Calibration does not change a curve, so a method's calibrated and plain records share one.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    drawn = set()
    for r in records:
        if r["method"] in drawn:
            continue
        drawn.add(r["method"])
        ax.plot(
            r["curve"]["unseen"],
            r["curve"]["seen"],
            label=f"{r['method']} (AUSUC {r['metrics']['AUSUC']:.3f})",
        )
    ax.set_xlabel("unseen accuracy (%)")
    ax.set_ylabel("seen accuracy (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title(f"Seen-unseen accuracy curves: {records[0]['data']['name']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
