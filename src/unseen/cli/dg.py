"""``unseen dg``: one domain-generalization run under ``dg-lodo-v1``."""

from __future__ import annotations

import click
from rich.table import Table

from unseen.cli.app import OUTPUT_FILE, SEED, console, domain_numbers, main, parse_hparams, progress_bar
from unseen.core.io import write_json
from unseen.data.domains import load_domains
from unseen.methods.dg.averaging import WRAPPERS
from unseen.methods.dg.optimizers import UPDATE_RULES
from unseen.protocols.dg import DGProtocol
from unseen.protocols.dg_checkpoint import save_model as save
from unseen.protocols.dg_selection import SELECTIONS


@main.command("dg")
@click.option("--data", required=True, help="Multi-domain data spec, e.g. builtin:rotated-mnist.")
@click.option("--algorithm", required=True, help="DG algorithm (see `unseen methods --family dg`).")
@click.option("--test-env", "test_env", required=True, help="Held-out domain number(s), e.g. 0 or 0,2.")
@click.option("--steps", default=5000, show_default=True, help="Training steps (DomainBed: 5000).")
@click.option("--checkpoint-freq", default=100, show_default=True, help="Evaluate every N steps.")
@click.option("--seed", default=0, type=SEED, show_default=True, help="Seed of weights and minibatches.")
@click.option("--trial-seed", default=0, type=SEED, show_default=True, help="Seed of the in/out splits.")
@click.option("--hparams", default=None, help="Fixed hyperparameters as JSON, e.g. '{\"lr\": 1e-3}'.")
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option("--out", type=OUTPUT_FILE, default=None, help="Write the run record (JSON) here.")
@click.option(
    "--wrapper",
    type=click.Choice(sorted(WRAPPERS)),
    default=None,
    help="Weight averaging evaluated and saved instead of the last iterate: ema, swa or swad.",
)
@click.option(
    "--update-rule",
    type=click.Choice(sorted(UPDATE_RULES)),
    default=None,
    help="Flatness-seeking update on the algorithm's objective: sam, fad, gsam or sagm.",
)
@click.option(
    "--crafted-shifts",
    is_flag=True,
    help="Also score the training domains' out parts under crafted shifts (images; selection crafted-shift).",
)
@click.option(
    "--save-model",
    type=OUTPUT_FILE,
    default=None,
    help="Save the trained model (for `unseen tta`).",
)
def dg_cmd(
    data,
    algorithm,
    test_env,
    steps,
    checkpoint_freq,
    seed,
    trial_seed,
    hparams,
    device,
    out,
    wrapper,
    update_rule,
    crafted_shifts,
    save_model,
) -> None:
    """Train ALGORITHM with the test domain(s) held out; print per-domain accuracies."""
    dataset = load_domains(data)
    protocol = DGProtocol(
        domain_numbers("--test-env", test_env, dataset.domain_names),
        steps,
        checkpoint_freq,
        trial_seed=trial_seed,
        seed=seed,
        wrapper=wrapper,
        update_rule=update_rule,
        crafted_shifts=crafted_shifts,
    )
    with progress_bar(f"{algorithm} on {dataset.name}") as update:
        model, record = protocol.train(
            dataset, algorithm, parse_hparams(hparams), device=device, progress=update
        )
    last = record["checkpoints"][-1]
    table = Table(
        title=f"{record['protocol']}: {algorithm} on {dataset.name}, step {last['step']}",
        title_justify="left",
    )
    for col in ("domain", "role", "in acc", "out acc"):
        table.add_column(col, justify="left" if col in ("domain", "role") else "right")
    for k, name in enumerate(dataset.domain_names):
        role = "test" if k in record["test_envs"] else "train"
        table.add_row(
            f"{k} {name}", role, f"{100 * last[f'env{k}_in_acc']:.1f}", f"{100 * last[f'env{k}_out_acc']:.1f}"
        )
    console.print(table)
    for name, select in SELECTIONS.items():
        pick = select([record])
        if pick is not None:
            console.print(
                f"{name}: test accuracy {100 * pick['test_acc']:.1f} at step {pick['step']} "
                f"(validation {100 * pick['val_acc']:.1f})"
            )
    if out:
        write_json(out, record)
        console.print(f"record written to {out}")
    if save_model:
        save(save_model, model, record, dataset.class_names, dataset.domain_names)
        console.print(f"model written to {save_model}")
