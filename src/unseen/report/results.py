"""Result tables over a store: mean ± standard error over seeds, and why any cell is missing.

GZSL: one table per protocol; rows are methods (with their variant, e.g. calibrated stacking),
columns are datasets plus their average; a cell aggregates the runs that differ only in seed.
Few-shot: one table per (protocol, dataset); rows are methods, columns are shot counts.
TTA: one table per target dataset; rows are methods with their source model, columns are the
streams' target domains.
DG: one table per dataset; rows are algorithms, columns are test domains plus their average; a
cell is the model-selected test accuracy, aggregated over trial seeds. With several datasets,
DomainBed's averages table follows: algorithms x datasets, each cell the mean over the dataset's
test domains per trial seed, then aggregated over trial seeds.

A cell is filled only when every run it expects is done; otherwise it says why: ``failed k/n``,
``incomplete k/n`` (runs still marked running: in flight or interrupted) and ``not run k/n``,
or just ``not run`` when none of its runs has started. The expected runs come from the sweep
file when one is given, else from the runs the store has seen.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unseen.core.errors import SpecError
from unseen.core.record import run_id


@dataclass(frozen=True)
class TableLayout:
    """How runs of one protocol map to tables and cells.

    Columns are datasets (their content hash, shown by name) unless a layout says otherwise;
    ``table`` splits a protocol's runs into several tables (few-shot: one per dataset).
    """

    metric: str
    description: str
    columns_kind: str = "datasets"

    def row(self, identity: dict[str, Any]) -> str:
        return identity["method"]

    def column(self, identity: dict[str, Any]) -> str:
        return str(identity.get("data_hash"))

    def table(self, identity: dict[str, Any]) -> str:
        return ""

    def column_order(self, column: str) -> Any:
        return column


class GZSLLayout(TableLayout):
    def row(self, identity: dict[str, Any]) -> str:
        return identity["method"] + (" + CS" if identity.get("calibrate") else "")


class FewShotLayout(TableLayout):
    def column(self, identity: dict[str, Any]) -> str:
        return f"{identity['shots']}-shot"

    def table(self, identity: dict[str, Any]) -> str:
        return str(identity["data_hash"])

    def column_order(self, column: str) -> Any:
        return int(column.split("-")[0])


class TTALayout(TableLayout):
    """One table per target data; rows are method and source model, columns the streams' domains."""

    def row(self, identity: dict[str, Any]) -> str:
        mode = "" if identity["mode"] == "single" else f", {identity['mode']}"
        return f"{identity['method']} (model {identity['data'].get('model', 'probe')}{mode})"

    def column(self, identity: dict[str, Any]) -> str:
        return "+".join(identity["domains"])

    def table(self, identity: dict[str, Any]) -> str:
        return str(identity["data"]["hash"])


class GZSLDGLayout(GZSLLayout):
    """One table per dataset; rows are ``FEATURIZER+METHOD`` (+ CS), columns the held-out domains."""

    def column(self, identity: dict[str, Any]) -> str:
        return f"test env {identity['test_env']}"

    def table(self, identity: dict[str, Any]) -> str:
        return str(identity["data_hash"])

    def column_order(self, column: str) -> Any:
        return int(column.rsplit(" ", 1)[-1])


LAYOUTS: dict[str, TableLayout] = {
    "gzsl-ps-v1": GZSLLayout(
        "H",
        "harmonic mean of seen and unseen per-class top-1 (%); + CS: calibrated stacking, "
        "constant chosen on validation",
    ),
    "gzsl-transductive-v1": GZSLLayout(
        "H",
        "harmonic mean of seen and unseen per-class top-1 (%), methods trained on the unlabelled test "
        "features as well (transductive, never their labels); + CS: calibrated stacking, constant "
        "chosen on validation",
    ),
    "gzsl-dg-v1": GZSLDGLayout(
        "H",
        "harmonic mean of seen and unseen per-class top-1 (%) on the held-out domain; + CS: "
        "calibrated stacking, constant chosen on validation",
        "held-out domains",
    ),
    "fewshot-kshot-v1": FewShotLayout(
        "acc",
        "top-1 accuracy (%) on the test part, hyperparameters chosen on min(K, 4)-shot validation",
        "shot counts",
    ),
    "fewshot-b2n-v1": FewShotLayout(
        "H",
        "harmonic mean of base and new accuracy (%), shots from base classes only",
        "shot counts",
    ),
    "tta-stream-v1": TTALayout(
        "mean_accuracy",
        "online top-1 accuracy (%) over the stream, averaged over its target domains",
        "target domains",
    ),
}
"""Table layouts by protocol name."""


@dataclass
class Cell:
    values: list[float]
    expected: int
    failed: int
    running: int
    unselected: int = 0
    """Runs done whose trial the model selection cannot decide (it lacks the runs it needs)."""
    unselected_reason: str = ""

    def text(self, spread: str = "se") -> str:
        if self.complete:
            return format_mean_spread(self.values, spread)
        if not self.expected or not (self.values or self.failed or self.running or self.unselected):
            return "not run"
        reasons = []
        if self.failed:
            reasons.append(f"failed {self.failed}/{self.expected}")
        if self.running:
            reasons.append(f"incomplete {self.running}/{self.expected}")
        if self.unselected:
            reasons.append(f"{self.unselected_reason} {self.unselected}/{self.expected}")
        absent = self.expected - len(self.values) - self.failed - self.running - self.unselected
        if absent:
            reasons.append(f"not run {absent}/{self.expected}")
        return ", ".join(reasons)

    @property
    def complete(self) -> bool:
        return self.expected > 0 and len(self.values) == self.expected


SPREADS = {"se": "standard error", "std": "standard deviation"}
"""How a cell's ± is computed: the standard error of the mean, or the sample standard deviation."""


def format_mean_spread(values: Sequence[float], spread: str = "se") -> str:
    """``mean ± spread`` with one decimal; the spread of a single value is undefined and not printed."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return f"{mean:.1f} (n=1)"
    std = float(np.std(values, ddof=1))
    return f"{mean:.1f} ± {std / math.sqrt(len(values)) if spread == 'se' else std:.1f}"


@dataclass
class ResultTable:
    task: str
    protocol: str
    metric: str
    description: str
    columns: list[str]
    rows: list[str]
    cells: dict[tuple[str, str], Cell]
    columns_kind: str = "datasets"
    spread: str = "se"

    def header(self) -> list[str]:
        return ["method", *self.columns, "avg"]

    def body(self) -> list[list[str]]:
        out = []
        for r in self.rows:
            cells = [self.cells.get((r, c), Cell([], 0, 0, 0)) for c in self.columns]
            if all(cell.complete for cell in cells):
                avg = f"{np.mean([np.mean(cell.values) for cell in cells]):.1f}"
            else:
                avg = "incomplete"
            out.append([r, *(cell.text(self.spread) for cell in cells), avg])
        return out

    def caption(self) -> str:
        return (
            f"Task {self.task}, protocol {self.protocol}: {self.metric} = {self.description}. "
            f"Mean ± {SPREADS[self.spread]} over seeds; avg = mean over {self.columns_kind} of the column "
            "means."
        )


def build_tables(
    rows: Iterable[dict[str, Any]],
    expected: Iterable[dict[str, Any]] | None = None,
    select: str = "training-val",
    spread: str = "se",
) -> list[ResultTable]:
    """Tables from store rows (``ResultStore.records(status=None)``) and optional expected specs.

    ``expected`` are identity dicts of the runs a sweep asks for; a run absent from the store
    counts as not run. ``select`` is the model-selection method of DG tables; ``spread`` the
    ± of every cell (:data:`SPREADS`).
    """
    if spread not in SPREADS:
        raise SpecError(f"unknown spread '{spread}'; use one of {', '.join(SPREADS)}.")
    rows = list(rows)
    expected = None if expected is None else list(expected)
    tables = _score_tables(rows, expected) + dg_tables(rows, expected, select)
    for table in tables:
        table.spread = spread
    return tables


def _score_tables(rows: list[dict[str, Any]], expected: list[dict[str, Any]] | None) -> list[ResultTable]:
    """Tables of protocols whose runs each carry their headline metric (GZSL, few-shot)."""
    by_id = {r["run_id"]: r for r in rows}
    names: dict[str, str] = {}
    for r in rows:
        rec = r.get("record")
        if rec and rec.get("data", {}).get("hash"):
            names[rec["data"]["hash"]] = rec["data"].get("name") or rec["data"]["spec"]
    identities = (
        [(run_id(e), e) for e in expected]
        if expected is not None
        else [(r["run_id"], r["spec"]) for r in rows if r.get("spec")]
    )
    groups: dict[tuple[str, str, str], dict[tuple[str, str], Cell]] = defaultdict(dict)
    for rid, identity in identities:
        layout = LAYOUTS.get(identity.get("protocol"))
        if layout is None:
            continue
        group = (identity["task"], identity["protocol"], layout.table(identity))
        cell = groups[group].setdefault((layout.row(identity), layout.column(identity)), Cell([], 0, 0, 0))
        cell.expected += 1
        row = by_id.get(rid)
        status = row["status"] if row else None
        if status == "done":
            cell.values.append(float(row["record"]["metrics"][layout.metric]))
        elif status == "failed":
            cell.failed += 1
        elif status == "running":
            cell.running += 1
    tables = []
    for (task, protocol, table), cells in sorted(groups.items()):
        layout = LAYOUTS[protocol]
        label = {c: names.get(c, c) for _, c in cells}
        columns = sorted(label, key=lambda c: layout.column_order(label[c]))
        tables.append(
            ResultTable(
                task,
                f"{protocol} on {names.get(table, table)}" if table else protocol,
                layout.metric,
                layout.description,
                [label[c] for c in columns],
                sorted({r for r, _ in cells}),
                {(r, label[c]): cell for (r, c), cell in cells.items()},
                layout.columns_kind,
            )
        )
    return tables


def render(tables: Sequence[ResultTable], fmt: str) -> str:
    """The tables as ``markdown``, ``latex`` or ``csv``."""
    return "\n\n".join(RENDERERS[fmt](t) for t in tables) if tables else "(no runs in the store)"


def _markdown(t: ResultTable) -> str:
    lines = [t.caption(), "", "| " + " | ".join(t.header()) + " |", "|" + "---|" * len(t.header())]
    lines += ["| " + " | ".join(row) + " |" for row in t.body()]
    return "\n".join(lines)


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        s = s.replace(a, b)
    return s.replace("±", r"$\pm$")


def _latex(t: ResultTable) -> str:
    head = t.header()
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{l" + "c" * (len(head) - 1) + "}",
        r"\toprule",
        " & ".join(_latex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in t.body()]
    caption = r"\caption{" + _latex_escape(t.caption()) + "}"
    lines += [r"\bottomrule", r"\end{tabular}", caption, r"\end{table}"]
    return "\n".join(lines)


def _csv(t: ResultTable) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["task", "protocol", "metric", *t.header()])
    for row in t.body():
        writer.writerow([t.task, t.protocol, t.metric, *row])
    return buf.getvalue().rstrip("\n")


RENDERERS = {"markdown": _markdown, "latex": _latex, "csv": _csv}


UNSELECTED_REASONS = {
    "lodo": "no lodo pick (sweep with lodo_validation = true)",
    "crafted-shift": "no crafted-shift pick (sweep with crafted_shifts = true)",
}
"""Why a done DG run has no model-selected value, by selection (default: ``no <select> pick``)."""


def dg_tables(
    rows: list[dict[str, Any]], expected: list[dict[str, Any]] | None, select: str
) -> list[ResultTable]:
    """One table per DG dataset: algorithms x test domains (+ average), after model selection.

    A cell is the selected run's test-domain accuracy (%), mean ± SE over trial seeds. A trial
    whose selection lacks runs says so (e.g. LODO without the runs holding out two domains).
    """
    from unseen.protocols.dg_selection import SELECTIONS, cells

    SELECTIONS[select]  # an unknown name fails here, naming the known ones
    by_id = {r["run_id"]: r for r in rows}
    identities = (
        [(run_id(e), e) for e in expected]
        if expected is not None
        else [(r["run_id"], r["spec"]) for r in rows if r.get("spec")]
    )
    finals = [(rid, e) for rid, e in identities if e.get("task") == "dg" and len(e["test_envs"]) == 1]
    if not finals:
        return []
    done = [r["record"] for r in rows if r["status"] == "done" and r["record"].get("task") == "dg"]
    picks = {key: SELECTIONS[select](records) for key, records in cells(done).items()}
    domain_names = {r["data"]["hash"]: (r["data"]["name"], r["data"]["domains"]) for r in done}
    tables: dict[str, dict[tuple[str, str], Cell]] = defaultdict(dict)
    trials: dict[tuple[str, str], dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for rid, e in finals:
        data, test = e["data_hash"], e["test_envs"][0]
        cell = tables[data].setdefault((e["method"], str(test)), Cell([], 0, 0, 0))
        cell.expected += 1
        row = by_id.get(rid)
        status = row["status"] if row else None
        pick = picks.get((data, e["method"], test, e["trial_seed"]))
        trial = trials[data, e["method"]][e["trial_seed"]]
        if status == "done" and pick is not None:
            cell.values.append(100.0 * pick["test_acc"])
            trial[test] = 100.0 * pick["test_acc"]
        elif status == "done":
            cell.unselected += 1
            cell.unselected_reason = UNSELECTED_REASONS.get(select, f"no {select} pick")
        elif status == "failed":
            cell.failed += 1
        elif status == "running":
            cell.running += 1
    out = []
    for data, cells_ in sorted(tables.items()):
        name, domains = domain_names.get(data, (data, None))
        tests = sorted({int(t) for _, t in cells_})
        labels = {str(t): f"{t}:{domains[t]}" if domains and t < len(domains) else str(t) for t in tests}
        out.append(
            ResultTable(
                "dg",
                f"dg-lodo-v1 on {name}",
                "test acc",
                f"accuracy (%) of the held-out domain's in split, model selection: {select}",
                [labels[str(t)] for t in tests],
                sorted({m for m, _ in cells_}),
                {(m, labels[t]): c for (m, t), c in cells_.items()},
                "test domains",
            )
        )
    if len(out) > 1:
        out.append(_dg_averages(tables, trials, domain_names, select))
    return out


def _dg_averages(
    tables: dict[str, dict[tuple[str, str], Cell]],
    trials: dict[tuple[str, str], dict[int, dict[int, float]]],
    domain_names: dict[str, tuple[str, Any]],
    select: str,
) -> ResultTable:
    """DomainBed's "Averages" table: algorithms x datasets. A cell is, per trial seed, the mean
    over the dataset's test domains, then mean ± SE over trial seeds; a trial lacking a test
    domain's pick is counted, not averaged."""
    cells: dict[tuple[str, str], Cell] = {}
    columns = []
    for data, cells_ in sorted(tables.items()):
        name = domain_names.get(data, (data, None))[0]
        columns.append(name)
        tests = {int(t) for _, t in cells_}
        for method in {m for m, _ in cells_}:
            by_trial = trials[data, method]
            averages = [float(np.mean(list(v.values()))) for v in by_trial.values() if set(v) == tests]
            cell = Cell(averages, len(by_trial), 0, 0, len(by_trial) - len(averages))
            cell.unselected_reason = "trials without every test domain"
            cells[method, name] = cell
    return ResultTable(
        "dg",
        "dg-lodo-v1 averages",
        "test acc",
        f"per trial seed, the mean accuracy (%) over the dataset's test domains; model selection: {select}",
        columns,
        sorted({m for m, _ in cells}),
        cells,
        "datasets",
    )
