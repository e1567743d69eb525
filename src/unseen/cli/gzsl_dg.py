"""``unseen gzsl-dg``: unseen classes in an unseen domain, one run under ``gzsl-dg-v1``."""

from __future__ import annotations

import click
from rich.table import Table

from unseen.cli.app import OUTPUT_FILE, SEED, console, domain_numbers, main, parse_hparams, progress_bar
from unseen.core.errors import HyperparameterError
from unseen.core.io import write_json
from unseen.data.zsl_domains import load_zsl_domains
from unseen.experiments.store import ResultStore
from unseen.methods import JOINT
from unseen.protocols.gzsl_dg import GZSLDGProtocol, parse_method
from unseen.report.tables import METRIC_COLUMNS

POSITIVE = click.IntRange(min=1)


def _row(metrics: dict[str, float]) -> list[str]:
    return [f"{metrics[m]:.3f}" if m == "AUSUC" else f"{metrics[m]:.1f}" for m in METRIC_COLUMNS]


@main.command("gzsl-dg")
@click.option(
    "--data", required=True, help="Zero-shot multi-domain data spec, e.g. builtin:rotated-mnist-zsl."
)
@click.option(
    "--featurizer",
    default=None,
    help="DG algorithm that trains the featurizer on the seen classes (see `unseen methods --family dg`), "
    "or 'identity' for the inputs themselves; none for an end-to-end method (cumix).",
)
@click.option(
    "--method",
    required=True,
    help="GZSL method run on the embeddings (see `unseen methods`), or the end-to-end method cumix.",
)
@click.option("--test-env", "test_env", required=True, help="The held-out domain's number, e.g. 0.")
@click.option("--steps", default=1000, type=POSITIVE, show_default=True, help="Featurizer training steps.")
@click.option(
    "--checkpoint-freq",
    default=100,
    type=POSITIVE,
    show_default=True,
    help="Score the featurizer on validation every N steps (its length is chosen there).",
)
@click.option("--calibrate", is_flag=True, help="Calibrated stacking, constant chosen on validation.")
@click.option(
    "--search",
    default="grid",
    show_default=True,
    help="GZSL hyperparameter search on validation: grid, default, or random:N.",
)
@click.option(
    "--seed", default=0, type=SEED, show_default=True, help="Seed of splits, featurizer and method."
)
@click.option("--hparams", default=None, help="Fixed GZSL hyperparameters as JSON, e.g. '{\"alpha\": 1}'.")
@click.option(
    "--featurizer-hparams",
    default=None,
    help="Fixed DG hyperparameters as JSON, e.g. '{\"batch_size\": 32}' (DomainBed's defaults otherwise).",
)
@click.option(
    "--featurizer-search",
    default="default",
    show_default=True,
    help="The featurizer's hyperparameters: default (DomainBed's), or random:N draws from its search "
    "space, each trained and scored on validation.",
)
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option("--out", type=OUTPUT_FILE, default=None, help="Write the run record (JSON) here.")
@click.option("--store", type=OUTPUT_FILE, default=None, help="Also add the record to this results store.")
def gzsl_dg_cmd(
    data,
    featurizer,
    method,
    test_env,
    steps,
    checkpoint_freq,
    calibrate,
    search,
    seed,
    hparams,
    featurizer_hparams,
    featurizer_search,
    device,
    out,
    store,
) -> None:
    """Train FEATURIZER on the seen classes of every domain but TEST_ENV, run METHOD on its
    embeddings, and test on TEST_ENV's seen and unseen classes (protocol gzsl-dg-v1)."""
    if featurizer is None and method not in JOINT:
        raise click.UsageError(
            f"--method {method} runs on a featurizer: give --featurizer (a DG algorithm or identity); "
            f"only the end-to-end methods ({', '.join(JOINT)}) need none."
        )
    name = method if featurizer is None else f"{featurizer}+{method}"
    parse_method(name)  # unknown names fail before the data loads
    fixed = parse_hparams(hparams)
    dg_fixed = _featurizer_hparams(featurizer_hparams)
    if store:
        with ResultStore(store):  # an unusable store fails now, not after hours of training
            pass
    dataset = load_zsl_domains(data)
    (env,) = _one_domain(test_env, dataset.domain_names)
    protocol = GZSLDGProtocol(
        env,
        steps=steps,
        checkpoint_freq=checkpoint_freq,
        calibrate=calibrate,
        search=search,
        seed=seed,
        featurizer_search=featurizer_search,
    )
    with progress_bar(f"{name} on {dataset.name}") as update:
        record = protocol.run(dataset, name, fixed, dg_fixed, device=device, progress=update)
    table = Table(
        title=f"{record['protocol']}: {name} on {dataset.name}, held-out domain "
        f"{env} ({record['test_domain']})",
        title_justify="left",
    )
    for col in ("test on", *METRIC_COLUMNS):
        table.add_column(col, justify="left" if col == "test on" else "right")
    table.add_row(f"held-out domain {record['test_domain']}", *_row(record["metrics"]))
    table.add_row("training domains (test parts)", *_row(record["metrics_train_domains"]))
    console.print(table)
    selection = record["selection"]
    steps_text = (
        "" if record["featurizer_steps"] is None else f"featurizer steps {record['featurizer_steps']}, "
    )
    searched = selection["featurizer"].get("search")
    if searched:
        draw = selection["featurizer"]["chosen"]
        steps_text += (
            f"featurizer draw {draw + 1} of {len(selection['featurizer']['candidates'])} ({searched}): "
            f"{record['featurizer_hparams']}, "
        )
    gamma = "" if record["gamma"] is None else f", calibration {record['gamma']:.4g}"
    console.print(
        f"selected on validation (pseudo-unseen {', '.join(selection['validation_classes'])}"
        + (
            f"; held-out training domain {selection['validation_domain']}"
            if selection["validation_domain"]
            else ""
        )
        + f"): {steps_text}hparams {record['hparams']}{gamma}"
    )
    if out:
        write_json(out, record)
        console.print(f"record written to {out}")
    if store:
        with ResultStore(store) as results:
            results.put(record, protocol.spec(dataset, name, fixed, dg_fixed))
        console.print(f"record {record['run_id']} added to {store}")


def _featurizer_hparams(text: str | None) -> dict:
    try:
        return parse_hparams(text)
    except HyperparameterError as exc:  # the same checks, named after this option
        raise HyperparameterError(str(exc).replace("--hparams", "--featurizer-hparams")) from None


def _one_domain(text: str, names) -> tuple[int]:
    values = domain_numbers("--test-env", text, names)
    if len(values) != 1:
        raise click.BadParameter(
            f"--test-env takes one domain number (gzsl-dg holds out one domain); got {text!r}."
        )
    return values
