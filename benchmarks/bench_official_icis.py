"""ICIS beside the authors' code, seed by seed, on the same data and the same budget.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_official_icis.py --official DIR [--data SPEC]
[--seeds 0,1,2] [--epochs N] [--base-epochs N] [--official-base-selection] [--json FILE]``.

The official code (Christensen, Mancini, Koepke, Winther, Akata, *Image-free Classifier Injection
for Zero-Shot Classification*, ICCV 2023; github.com/ExplainableML/ImageFreeZSL, commit
f009293a2886e0123ac938b6b0df8c16d8c2328d) is checked out OUTSIDE this repository (never commit
it); ``--official DIR`` names that checkout, patched as follows (for a current torch on the CPU,
and to print what this script reads):

* Optional dependencies: ``torchvision`` (used only to transfer from ImageNet's ResNet) and
  ``clip`` (only for CLIP class embeddings) are imported where they are used instead of at the
  top of ``main.py``, ``regressor.py``, ``joint_latent.py``, ``utility/train_base.py``,
  ``utility/util.py`` and (through ``main.py``) the ConSE/COSTA/VGSE baselines.
* CPU: ``REGRESSOR.pred_weights_and_val`` moves each unseen attribute vector to the GPU only
  with ``--cuda`` (it called ``.cuda()`` unconditionally).
* torch >= 2.6: the base classifier, saved as a whole module, is read back with
  ``torch.load(..., weights_only=False)``.
* ``--base_last_epoch`` (new, off by default): ``BASECLASSIFIER.fit`` returns the classifier
  of its last epoch instead of the epoch with the best accuracy on the seen *test* images. This
  script passes it, as ours keeps the last epoch (no test image selects anything), unless
  ``--official-base-selection`` is given.
* After training ``Joint.fit`` prints ``EPOCHS_RUN <n>`` (predictor epochs run) and
  ``ROW_NORMS seen=<x> unseen=<y>``, the mean norms of the seen and injected rows
  ``[W_c, b_c]`` of the extended classifier it evaluated.

Flags (``scripts/table1_cub.sh``'s ICIS line, less ``--cuda``): ``--manualSeed SEED
--dataset=CUB --image_embedding=res101_finetuned --class_embedding=att --cos_sim_loss
--include_unseen --num_layers 2 --beta1 0.9 --lr 0.00001 --batch_size 16 --embed_dim 2048
--strict_eval --early_stopping_slope --calc_entropy``, plus ``--nepoch N`` (predictor epoch
budget; the slope rule may stop sooner), ``--classifier_nepoch`` (base classifier epochs, its
default 100; Adam lr 1e-4, beta1 0.9 are its defaults), ``--dataroot`` and a fresh
``--rootpath`` per run (the base classifier is cached there by seed, so no run reuses another's).
This script writes the data as xlsa17 files (``DIR/data/CUB/res101_finetuned.mat``,
``att_splits.mat``); the loader reads ``att`` unnormalised (the synthetic semantics are already
L2-normalised, as ours normalise them) and the features as given (no ``--preprocessing``), as
ours do. ``main.py`` runs in a subprocess with ``OMP_NUM_THREADS=1``; it trains the base
classifier (``utility/train_base.py``), then the weight predictor (``joint_latent.py``), then
scores once (``--strict_eval``).

Ours: ``GZSL["icis"]`` with its CUB defaults (the same settings) and ``epochs = N``,
``base_epochs`` likewise, fit on the whole training split, scored once on test uncalibrated.
GZSL S/U/H and the ZSL accuracy among the unseen classes are per-class mean accuracies on both
sides. The two sides take turns, one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generative import run_official_script, write_xlsa17  # noqa: E402
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import SplitName, ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.protocols.gzsl import evaluate  # noqa: E402

ZSL_LINE = re.compile(r"^I-ZSL \(unseen only\) Acc = ([\d.]+)%")
GZSL_LINE = re.compile(r"^I-GZSL \(seen and unseen\): H = ([\d.]+), Seen=([\d.]+)%, Unseen=([\d.]+)%")
EPOCHS_LINE = re.compile(r"^EPOCHS_RUN (\d+)")
NORMS_LINE = re.compile(r"^ROW_NORMS seen=([\d.]+) unseen=([\d.]+)")
METRICS = ("S", "U", "H", "ZSL")


def official_flags(epochs: int, base_epochs: int, seed: int, dataroot: Path, rootpath: Path) -> list[str]:
    flags = ["--manualSeed", str(seed), "--dataset=CUB", "--image_embedding=res101_finetuned"]
    flags += ["--class_embedding=att", "--cos_sim_loss", "--include_unseen", "--num_layers", "2"]
    flags += ["--beta1", "0.9", "--lr", "0.00001", "--batch_size", "16", "--embed_dim", "2048"]
    flags += ["--strict_eval", "--early_stopping_slope", "--calc_entropy"]
    flags += ["--nepoch", str(epochs), "--classifier_nepoch", str(base_epochs)]
    return flags + ["--dataroot", str(dataroot), "--rootpath", str(rootpath)]


def run_official(official: Path, flags: list[str]) -> dict:
    """The patched official ``main.py`` in a subprocess; its final scores, epochs and row norms."""
    stdout, wall = run_official_script(official, "main.py", flags, "ICIS")
    out: dict = {"wall_s": wall}
    for line in stdout.splitlines():
        line = line.strip()
        if m := ZSL_LINE.match(line):
            out["ZSL"] = float(m.group(1))
        elif m := GZSL_LINE.match(line):
            out["H"], out["S"], out["U"] = (float(v) for v in m.groups())
        elif m := EPOCHS_LINE.match(line):
            out["epochs_run"] = int(m.group(1))
        elif m := NORMS_LINE.match(line):
            out["norm_seen"], out["norm_unseen"] = (float(v) for v in m.groups())
    if not {*METRICS, "epochs_run", "norm_seen"} <= out.keys():
        raise RuntimeError(f"could not parse the official output:\n{stdout[-3000:]}")
    return out


def run_ours(dataset: ZSLDataset, epochs: int, base_epochs: int, seed: int) -> dict:
    """One fit of ours on the whole training split, scored once on test without calibration."""
    method = GZSL["icis"](seed=seed, epochs=epochs, base_epochs=base_epochs)
    t = time.perf_counter()
    method.fit(dataset.train_set())
    metrics = evaluate(method, dataset, None).metrics
    wall = time.perf_counter() - t
    norms = np.linalg.norm(np.hstack([method._W.cpu().numpy(), method._b.cpu().numpy()[:, None]]), axis=1)
    seen = dataset.classes.seen
    return {
        "wall_s": wall,
        "epochs_run": method.epochs_run_,
        "norm_seen": float(norms[seen].mean()),
        "norm_unseen": float(norms[~seen].mean()),
        **{k: float(metrics[k]) for k in METRICS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched official ImageFreeZSL checkout")
    parser.add_argument("--data", default="synthetic:CUB")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=1000, help="predictor epoch budget on both sides")
    parser.add_argument("--base-epochs", type=int, default=100, help="base classifier epochs on both sides")
    parser.add_argument(
        "--official-base-selection",
        action="store_true",
        help="let the official code keep the base classifier with the best seen test accuracy",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    n_train = len(dataset.indices(SplitName.TRAIN))
    seeds = [int(s) for s in args.seeds.split(",")]
    official = args.official.resolve()
    dataroot = official / "data"
    write_xlsa17(dataset, dataroot / "CUB", seeds[0])
    os.replace(dataroot / "CUB" / "res101.mat", dataroot / "CUB" / "res101_finetuned.mat")
    print(
        f"## ICIS vs the official code: {dataset.source} ({dataset.hash}), {n_train} training samples, "
        f"{len(dataset.classes.seen_ids)} + {len(dataset.classes.unseen_ids)} classes, base classifier "
        f"{args.base_epochs} epochs, predictor budget {args.epochs} epochs, seeds {seeds}, uncalibrated\n"
    )
    extra = [] if args.official_base_selection else ["--base_last_epoch"]
    shown = official_flags(args.epochs, args.base_epochs, 0, dataroot, Path("TMP")) + extra
    print(f"official flags: {' '.join(shown)}\n")
    print("| seed | run | predictor epochs | time (s) | S | U | H | ZSL | mean row norm seen / injected |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for seed in seeds:
        ours = run_ours(dataset, args.epochs, args.base_epochs, seed)
        with tempfile.TemporaryDirectory(prefix="icis-official-") as root:
            flags = official_flags(args.epochs, args.base_epochs, seed, dataroot, Path(root)) + extra
            theirs = run_official(official, flags)
        for run, r in (("official", theirs), ("ours", ours)):
            print(
                f"| {seed} | {run} | {r['epochs_run']} | {r['wall_s']:.0f} | "
                + " | ".join(f"{r[k]:.1f}" for k in METRICS)
                + f" | {r['norm_seen']:.2f} / {r['norm_unseen']:.2f} |",
                flush=True,
            )
        results.append({"seed": seed, "official": theirs, "ours": ours})
    print(f"\nover seeds {seeds} (mean ± std):\n")
    print("| run | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for run in ("official", "ours"):
        cells = [np.array([r[run][k] for r in results]) for k in METRICS]
        print(f"| {run} | " + " | ".join(f"{v.mean():.1f} ± {v.std():.1f}" for v in cells) + " |")
    gaps = [np.array([r["ours"][k] - r["official"][k] for r in results]) for k in METRICS]
    print("| ours − official | " + " | ".join(f"{g.mean():+.1f} ± {g.std():.1f}" for g in gaps) + " |")
    if args.json is not None:
        meta = {key: str(value) for key, value in vars(args).items()}
        args.json.write_text(json.dumps({"args": meta, "results": results}))


if __name__ == "__main__":
    main()
