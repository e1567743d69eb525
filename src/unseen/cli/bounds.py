"""``unseen data lower-bound``: the tight worst-case bound of Mazzetto et al. (NeurIPS 2022) for a
dataset's class-attribute matrix (:mod:`unseen.metrics.attribute_bound`)."""

from __future__ import annotations

import json
import time

import click
import numpy as np

from unseen.cli.info import data_group
from unseen.data.class_attributes import CLASS_GROUPS, read_class_attributes
from unseen.metrics.attribute_bound import (
    MAX_LP_ATTRIBUTES,
    attribute_lower_bound,
    greedy_attribute_bound,
    matching_lower_bound,
    pairwise_lower_bounds,
)
from unseen.metrics.attribute_bound_search import bracket_lower_bound

EXACT_UP_TO = 12
"""Matrices with at most this many attributes get the exact program without asking (seconds)."""


@data_group.command("lower-bound")
@click.argument("spec")
@click.option(
    "--classes",
    type=click.Choice(CLASS_GROUPS),
    default="unseen",
    show_default=True,
    help="Which classes to tell apart (the paper: the unseen test classes).",
)
@click.option(
    "--greedy",
    type=click.IntRange(0, MAX_LP_ATTRIBUTES),
    default=0,
    show_default=True,
    help="Also run the paper's greedy selection of this many attributes (exact bound on each prefix).",
)
@click.option(
    "--bracket",
    is_flag=True,
    help="Column generation on all attributes: a certified [lower, upper] around the bound.",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="With --bracket: stop the search at the first round past this time (lower stays valid).",
)
@click.option(
    "--top", type=click.IntRange(min=0), default=5, show_default=True, help="Most confusable pairs to list."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def lower_bound_cmd(
    spec: str, classes: str, greedy: int, bracket: bool, max_seconds: float, top: int, as_json: bool
) -> None:
    """Worst-case error lower bound of zero-shot learning with attributes on the dataset SPEC.

    Perfect attribute detectors, equally likely classes: no map from attributes to classes has a
    smaller worst-case error over the distributions consistent with the class-attribute matrix.
    Prints the two-class bound of the most confusable pairs, a polynomial lower bound for all
    classes (disjoint pairs), the exact bound when the matrix has at most 12 attributes, the
    paper's greedy attribute selection with --greedy, and a certified bracket on all attributes
    with --bracket.
    """
    data = read_class_attributes(spec, classes)
    start = time.perf_counter()
    matrix = data.matrix
    k, m = matrix.shape
    pairwise = pairwise_lower_bounds(matrix, allow_missing=True)
    matching, pairs = matching_lower_bound(pairwise)
    upper = np.triu_indices(k, 1)
    values = pairwise[upper]
    order = np.argsort(-values, kind="stable")[:top]
    result = {
        "source": data.source,
        "classes": classes,
        "n_classes": k,
        "n_attributes": m,
        "unknown_entries": int(np.isnan(matrix).sum()),
        "pairwise_max": float(values.max()),
        "identical_pairs": int((values >= 0.5).sum()),
        "top_pairs": [
            [data.names[upper[0][i]], data.names[upper[1][i]], round(float(values[i]), 6)] for i in order
        ],
        "matching_lower_bound": matching,
        "matching_pairs": len(pairs),
    }
    if m <= EXACT_UP_TO:
        exact = attribute_lower_bound(matrix, allow_missing=True)
        result["exact_bound"] = exact.bound
        result["per_class_error"] = dict(zip(data.names, map(float, exact.per_class_error), strict=True))
    if greedy:
        selection = greedy_attribute_bound(matrix, min(greedy, m), allow_missing=True)
        result["greedy_attributes"] = selection.attributes
        result["greedy_bounds"] = selection.bounds
    if bracket:
        found = bracket_lower_bound(matrix, allow_missing=True, max_seconds=max_seconds)
        result["bracket"] = {
            "lower": found.lower,
            "upper": found.upper,
            "certified": found.certified,
            "rounds": found.rounds,
            "pairs": found.pairs,
            "seconds": round(found.seconds, 3),
        }
    result["seconds"] = round(time.perf_counter() - start, 3)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{data.source}: {k} {classes} classes x {m} attributes ({result['unknown_entries']} unknown entries)"
    )
    click.echo(
        f"most confusable pairs (two-class bound, 0.5 = identical rows; {result['identical_pairs']} at 0.5):"
    )
    for a, b, value in result["top_pairs"]:
        click.echo(f"  {value:.4f}  {a} / {b}")
    click.echo(f"lower bound from {len(pairs)} disjoint pairs: {matching:.4f}")
    if "exact_bound" in result:
        click.echo(f"exact bound: {result['exact_bound']:.4f}")
    if greedy:
        for s, (i, value) in enumerate(
            zip(result["greedy_attributes"], result["greedy_bounds"], strict=True), 1
        ):
            click.echo(f"  greedy {s:2d} attributes (+ column {i}): exact bound on them {value:.4f}")
    if bracket:
        b = result["bracket"]
        state = "exact (certified)" if b["certified"] else f"search stopped after {b['rounds']} rounds"
        click.echo(f"bound on all attributes: [{b['lower']:.4f}, {b['upper']:.4f}], {state}")
    click.echo(f"time: {result['seconds']:.2f} s")
