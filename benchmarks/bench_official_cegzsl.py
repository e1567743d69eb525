"""CE-GZSL beside the authors' code, seed by seed, on the same data and the same generator steps.

Run: ``python benchmarks/bench_official_cegzsl.py --official DIR [--data SPEC] [--seeds 0,1,2]
[--epochs N] [--eval-every K] [--json FILE] [--device cuda]``.

The official code (Han, Fu, Chen, Yang, CVPR 2021; github.com/Hanzy1996/CE-GZSL, commit
7bf5358ac4727ea1dc2dc9dec2f453b014500bd8) is checked out OUTSIDE this repository (never commit
it); ``--official DIR`` names that checkout, patched as follows:

* CPU: in ``CE_GZSL.py`` ``--cuda`` defaults to False (it was ``store_true`` with default True,
  so it could not be turned off), a ``device`` is derived from it, and the four ``.cuda()``
  calls of the two class-score functions become ``.to(device)``.
* ``util.py``: ``image_files`` of ``res101.mat`` is read only when present (unused by training).
* Speed, same function: ``class_scores_for_loop`` scored every (sample, seen class) pair by
  running the comparator ``F_ha`` on ``[h_i, a_c]`` one sample at a time (78 s for one forward
  and backward at 706 x 150 pairs on one core); the patch splits ``F_ha.fc1``'s weight into its
  ``h`` and ``a`` column blocks and scores all pairs at once (3.4 s). Loss and gradients of the
  loop and the patch agree to float rounding (largest difference 3e-7 on a small case).
* ``--eval_every K`` (default 1): the per-epoch GZSL test runs every K generator epochs and
  after the last (the training code is untouched; the test draws from torch's global random
  stream, so K changes the draws of later epochs, as another seed would).
* ``classifier_embed_contras.py``: the classifier also keeps its last epoch's accuracies, and
  ``CE_GZSL.py`` prints ``LAST unseen=, seen=, h=`` after its own line (which reports the best
  of the 25 classifier epochs, chosen on test).
* ``CE_GZSL.py`` prints ``TIMING train_s=<s> eval_s=<s>`` at the end: the generator loop's time
  without, and the per-epoch GZSL tests' time.

Flags (the README's CUB command; ``att`` instead of ``sent``, since the data here carry
attributes): ``--dataset CUB --class_embedding att --syn_num 100 --attSize K --nz K
--embedSize 2048 --outzSize 512 --nhF 2048 --ins_weight 0.001 --cls_weight 0.001 --ins_temp 0.1
--cls_temp 0.1 --nclass_all C --nclass_seen Cs --resSize D --manualSeed SEED --nepoch N
--batch_size B``. The README's batch is 2048, which the official loader cannot draw from fewer
training samples; ``--batch-size`` defaults to 2048 scaled by ``n_train / 7057`` (CUB's
trainval size), so an epoch has as many generator steps as on CUB (4 on 1/10 CUB: batch 205).
Its loader reads ``att`` of ``att_splits.mat`` as the class embedding without normalising it
(the synthetic semantics are already L2-normalised, as ours normalise them), and min-max scales
the features on the training split (as ours do).

Ours: ``GZSL["ce-gzsl"]`` at the same settings (its CUB defaults; ``epochs`` N, the same batch),
one fit on the whole training split with a classifier (25 epochs) trained after every
``--eval-every``-th generator epoch and the last, each scored on test: the last classifier epoch
(what an unmonitored fit of that length returns, since classifier and generator draw from
separate streams) and, like the official line, the best of its 25 epochs. A test curve only
reports here, it selects nothing. The two sides take turns (``OMP_NUM_THREADS=1``).
``--device cuda`` runs ours on the GPU and the official code with its ``--cuda`` switch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generative import run_official_script, time_stage, write_xlsa17  # noqa: E402
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import SplitName, ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.protocols.gzsl import evaluate  # noqa: E402

CUB_TRAINVAL = 7057
CLS_EPOCHS = 25
EPOCH_LINE = re.compile(r"^\[(\d+)/\d+\] Loss_D")
BEST_LINE = re.compile(r"^unseen=([\d.]+), seen=([\d.]+), h=([\d.]+)")
LAST_LINE = re.compile(r"^LAST unseen=([\d.]+), seen=([\d.]+), h=([\d.]+)")
TIMING_LINE = re.compile(r"^TIMING train_s=([\d.]+) eval_s=([\d.]+)")


def official_flags(dataset: ZSLDataset, batch: int, epochs: int, eval_every: int, seed: int) -> list[str]:
    k = dataset.classes.semantics.shape[1]
    flags = {
        "dataset": "CUB",
        "class_embedding": "att",
        "syn_num": 100,
        "batch_size": batch,
        "attSize": k,
        "nz": k,
        "resSize": dataset.dim,
        "embedSize": 2048,
        "outzSize": 512,
        "nhF": 2048,
        "ins_weight": 0.001,
        "cls_weight": 0.001,
        "ins_temp": 0.1,
        "cls_temp": 0.1,
        "manualSeed": seed,
        "nclass_all": len(dataset.classes.names),
        "nclass_seen": len(dataset.classes.seen_ids),
        "nepoch": epochs,
        "eval_every": eval_every,
    }
    return [item for key, value in flags.items() for item in (f"--{key}", str(value))]


def run_official(official: Path, flags: list[str]) -> dict:
    """The patched official ``CE_GZSL.py`` in a subprocess; its per-epoch test lines and timing."""
    stdout, wall = run_official_script(official, "CE_GZSL.py", flags, "CE-GZSL")
    curve: dict[int, dict] = {}
    epoch, timing = None, None
    for line in stdout.splitlines():
        line = line.strip()
        if m := EPOCH_LINE.match(line):
            epoch = int(m.group(1)) + 1
        elif m := LAST_LINE.match(line):
            curve[epoch]["last"] = dict(zip("USH", (100 * float(v) for v in m.groups()), strict=True))
        elif m := BEST_LINE.match(line):
            curve[epoch] = {"best": dict(zip("USH", (100 * float(v) for v in m.groups()), strict=True))}
        elif m := TIMING_LINE.match(line):
            timing = float(m.group(1)), float(m.group(2))
    if not curve or timing is None:
        raise RuntimeError(f"could not parse the official output:\n{stdout[-3000:]}")
    return {"wall_s": wall, "train_s": timing[0], "eval_s": timing[1], "curve": curve}


def run_ours(
    dataset: ZSLDataset, batch: int, epochs: int, eval_every: int, seed: int, device: str | None = None
) -> dict:
    """One fit of ours on the whole training split, a test score after every checkpointed epoch."""
    method = GZSL["ce-gzsl"](
        seed=seed,
        device=device,
        epochs=epochs,
        batch_size=batch,
        cls_epochs=CLS_EPOCHS,
        checkpoint_every=eval_every,
    )
    curve: dict[int, dict] = {}

    def monitor(values: dict, fitted) -> None:
        m = evaluate(fitted, dataset, None).metrics
        point = {"U": m["U"], "S": m["S"], "H": m["H"]}
        entry = curve.setdefault(values["epochs"], {})
        if point["H"] >= entry.get("best", {"H": -1.0})["H"]:
            entry["best"] = point
        if values["cls_epochs"] == CLS_EPOCHS:
            entry["last"] = point

    eval_s = time_stage(method, "_fit_classifier")
    t = time.perf_counter()
    method.fit(dataset.train_set(), monitor=monitor)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "train_s": wall - sum(eval_s), "eval_s": sum(eval_s), "curve": curve}


def curve_rows(theirs: dict, ours: dict) -> list[str]:
    rows = []
    for epoch in sorted(theirs["curve"]):
        o, t = ours["curve"].get(epoch), theirs["curve"][epoch]
        cells = [
            t["last"]["H"],
            o["last"]["H"] if o else np.nan,
            t["best"]["H"],
            o["best"]["H"] if o else np.nan,
        ]
        rows.append(f"| {epoch} | " + " | ".join(f"{v:.1f}" for v in cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched official CE-GZSL checkout")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10, help="generator epochs on both sides")
    parser.add_argument("--eval-every", type=int, default=5, help="test every K epochs and after the last")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 2048 scaled to the data")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--device", default="cpu", help="both sides' device: cpu or cuda")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    n_train = len(dataset.indices(SplitName.TRAIN))
    batch = args.batch_size or min(2048, n_train, max(1, round(2048 * n_train / CUB_TRAINVAL)))
    seeds = [int(s) for s in args.seeds.split(",")]
    official = args.official.resolve()
    write_xlsa17(dataset, official / "data" / "CUB", seeds[0])
    steps = args.epochs * -(-n_train // batch)
    print(
        f"## CE-GZSL vs the official code: {dataset.source} ({dataset.hash}), {n_train} training samples, "
        f"batch {batch}, {args.epochs} generator epochs ({steps} generator steps, 5 critic steps each), "
        f"{CLS_EPOCHS} classifier epochs, seeds {seeds}\n"
    )
    print(f"official flags: {' '.join(official_flags(dataset, batch, args.epochs, args.eval_every, 0))}\n")
    print("| seed | run | train (s) | test curve (s) | S | U | H | H - official | best-epoch H (on test) |")
    print("|---|---|---|---|---|---|---|---|---|")
    results, gaps, gaps_best = [], [], []
    for seed in seeds:
        ours = run_ours(dataset, batch, args.epochs, args.eval_every, seed, args.device)
        flags = official_flags(dataset, batch, args.epochs, args.eval_every, seed)
        flags += ["--cuda"] if args.device.startswith("cuda") else []
        theirs = run_official(official, flags)
        final_t, final_o = theirs["curve"][args.epochs], ours["curve"][args.epochs]
        gaps.append(final_o["last"]["H"] - final_t["last"]["H"])
        gaps_best.append(final_o["best"]["H"] - final_t["best"]["H"])
        for run, r, final in (("official", theirs, final_t), ("ours", ours, final_o)):
            last = final["last"]
            print(
                f"| {seed} | {run} | {r['train_s']:.0f} | {r['eval_s']:.0f} | {last['S']:.1f} | "
                f"{last['U']:.1f} | {last['H']:.1f} | {last['H'] - final_t['last']['H']:+.1f} | "
                f"{final['best']['H']:.1f} |",
                flush=True,
            )
        results.append({"seed": seed, "official": theirs, "ours": ours})
    for r in results:
        print(
            f"\nseed {r['seed']}: test H per generator epoch (last classifier epoch; best of its 25 on test)"
        )
        print("| epoch | official H | ours H | official best-epoch H | ours best-epoch H |")
        print("|---|---|---|---|---|")
        print("\n".join(curve_rows(r["official"], r["ours"])))
    t_ratio = np.mean([r["official"]["train_s"] / r["ours"]["train_s"] for r in results])
    print(
        f"\nover seeds {seeds}: H - official {np.mean(gaps):+.2f} +- {np.std(gaps):.2f} (std); "
        f"best-epoch H - official {np.mean(gaps_best):+.2f} +- {np.std(gaps_best):.2f}; "
        f"official / ours train time {t_ratio:.2f}"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"batch": batch, "epochs": args.epochs, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
