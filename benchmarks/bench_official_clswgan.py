"""f-CLSWGAN beside the authors' PyTorch code, per generator epoch, on the same data and budget.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_official_clswgan.py --official DIR [--data SPEC]
[--seeds 0,1,2] [--epochs N] [--eval-every K] [--lr LR] [--skip-official] [--skip-ours]``. ``--lr``
(default 1e-4, CUB's) sets the GAN learning rate of both sides, for budget experiments;
``--device cuda`` runs ours on the GPU and the official code with its own ``--cuda`` switch.

The official code is Xian et al.'s release for *Feature Generating Networks for Zero-Shot
Learning* (CVPR 2018; PyTorch 0.3), as re-published at github.com/myaghmaei/f-CLSWGAN, commit
4d527f77ed56b39c4d5e310b5b1fa0f287ceb7b5 (its README is the authors'; the re-publisher's notes name
two changes for a newer torch, ``one``/``mone`` as 0-dim tensors and ``.data`` in the epoch print,
and its default ``--dataroot`` is ``data``). It is checked out OUTSIDE this repository (never commit
it); ``--official DIR`` names that checkout. (github.com/akku1506/Feature-Generating-Networks-for-ZSL,
named in some notes as a copy, is a TensorFlow re-implementation, not the authors' code.)

Patches to the checkout, all for a modern torch on the CPU or for measurement only:

* ``clswgan.py``: ``generate_syn_feature`` calls ``netG`` under ``torch.no_grad()`` instead of on
  ``Variable(..., volatile=True)``; ``np.random.seed(opt.manualSeed)`` beside its
  ``random.seed``/``torch.manual_seed`` (``--manualSeed`` is the seed); the time of the generator
  epochs and of the per-epoch evaluation (synthesis + classifier + test) are summed and printed at
  the end as ``TIMING train_s=<s> eval_s=<s>``; the evaluation runs only when ``epoch + 1`` is a
  multiple of its (otherwise unused) ``--val_every`` or the last epoch; after its per-epoch line
  ``unseen=, seen=, h=`` (the best of its 25 classifier epochs, chosen on test) it also prints
  ``LAST unseen=, seen=, h=`` (the classifier's last epoch).
* ``classifier2.py``: ``fit`` keeps the last classifier epoch's accuracies (``last_seen``,
  ``last_unseen``, ``last_H``); ``loss.data[0]`` -> ``loss.item()``; test forward passes on
  tensors instead of ``Variable(..., volatile=True)``, ``torch.max(output.detach(), 1)``.
* ``classifier.py``: the same test-forward change.

Flags (its ``script/reproduce_gzsl_cub.sh``, less ``--cuda``; ``--nepoch`` from ``--epochs``,
``--val_every`` from ``--eval-every``, ``--manualSeed`` the seed): ``--gzsl --val_every K
--cls_weight 0.01 --preprocessing --image_embedding res101 --class_embedding att --netG_name MLP_G
--netD_name MLP_CRITIC --nepoch N --ngh 4096 --ndh 4096 --lr 0.0001 --classifier_lr 0.001
--lambda1 10 --critic_iter 5 --dataset CUB --dataroot DIR/data --nclass_all C --batch_size 64 --nz
A --attSize A --resSize D --syn_num 300``. This script writes the data as xlsa17 files
(``DIR/data/CUB/res101.mat``, ``att_splits.mat``) where its loader reads them and runs
``clswgan.py`` in a subprocess with ``OMP_NUM_THREADS=1``.

Ours: ``f-clswgan`` with its CUB ``dataset_defaults`` (the same settings: 4,096 units, lr 1e-4,
batch 64, 5 critic steps, lambda 10, cls_weight 0.01, 300 features per unseen class, classifier
25 epochs, lr 1e-3, batch 300) and ``epochs = N``: one fit on the whole training split. For a
test curve the fit is monitored with ``checkpoint_every = K``: after every K-th generator epoch
(and the last) the final classifier is trained and each of its epochs is scored on test, as the
official code does. The machinery draws generator, synthesis and classifier numbers from separate
streams, so the last point is the fit an unmonitored run would produce. A test curve only
reports here; nothing is selected on it. Both report the last generator epoch with the
classifier's last epoch ("final"); "best cls" is the best of the 25 classifier epochs on test,
the number the official code prints. The runs take turns on this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generative import run_official_script, time_stage, write_xlsa17  # noqa: E402
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.protocols.gzsl import evaluate  # noqa: E402

EPOCH_LINE = re.compile(r"^\[(\d+)/(\d+)\] Loss_D")
BEST_LINE = re.compile(r"^unseen=([\d.]+), seen=([\d.]+), h=([\d.]+)")
LAST_LINE = re.compile(r"^LAST unseen=([\d.]+), seen=([\d.]+), h=([\d.]+)")
TIMING_LINE = re.compile(r"^TIMING train_s=([\d.]+) eval_s=([\d.]+)")
CLS_EPOCHS = 25  # classifier2.CLASSIFIER(..., 25, ...) in clswgan.py


def official_flags(
    dataset: ZSLDataset,
    dataroot: Path,
    outf: Path,
    epochs: int,
    every: int,
    seed: int,
    lr: float = 1e-4,
    cuda: bool = False,
) -> list[str]:
    """clswgan.py's flags: its CUB GZSL script's, sizes from ``dataset``, data under ``dataroot``."""
    k, d = dataset.classes.semantics.shape[1], dataset.dim
    flags = (
        f"--gzsl --manualSeed {seed} --val_every {every} --cls_weight 0.01 --preprocessing "
        f"--image_embedding res101 --class_embedding att --netG_name MLP_G --netD_name MLP_CRITIC "
        f"--nepoch {epochs} --ngh 4096 --ndh 4096 --lr {lr} --classifier_lr 0.001 --lambda1 10 "
        f"--critic_iter 5 --dataset CUB --dataroot {dataroot} "
        f"--nclass_all {dataset.classes.n_classes} --batch_size 64 --nz {k} --attSize {k} --resSize {d} "
        f"--syn_num 300 --outf {outf}" + " --cuda" * cuda
    )
    return flags.split()


def run_official(
    official: Path,
    dataset: ZSLDataset,
    epochs: int,
    every: int,
    seed: int,
    lr: float = 1e-4,
    cuda: bool = False,
) -> dict:
    """The authors' clswgan.py (GZSL, CUB flags) in a subprocess: wall time, phase times, test curve."""
    flags = official_flags(dataset, official / "data", official / "checkpoint", epochs, every, seed, lr, cuda)
    stdout, wall = run_official_script(official, "clswgan.py", flags, "clswgan.py")
    curve: dict[int, dict] = {}
    epoch, timing = None, None
    for line in stdout.splitlines():
        line = line.strip()
        if m := EPOCH_LINE.match(line):
            epoch = int(m.group(1)) + 1
        elif m := BEST_LINE.match(line):
            curve.setdefault(epoch, {})["best"] = _metrics(*m.group(1, 2, 3))
        elif m := LAST_LINE.match(line):
            curve.setdefault(epoch, {})["final"] = _metrics(*m.group(1, 2, 3))
        elif m := TIMING_LINE.match(line):
            timing = float(m.group(1)), float(m.group(2))
    if epochs not in curve or timing is None:
        raise RuntimeError(f"could not parse the official output:\n{stdout[-3000:]}")
    return {"wall_s": wall, "train_s": timing[0], "eval_s": timing[1], "curve": curve}


def _metrics(u: str, s: str, h: str) -> dict:
    return {"U": 100 * float(u), "S": 100 * float(s), "H": 100 * float(h)}


def run_ours(
    dataset: ZSLDataset, epochs: int, every: int, seed: int, lr: float = 1e-4, device: str | None = None
) -> dict:
    """Ours, one fit on the training split at the official CUB settings, with a test curve."""
    cls = GZSL["f-clswgan"]
    hparams = {**cls.defaults_for("CUB"), "epochs": epochs, "checkpoint_every": every, "lr": lr}
    method = cls(seed=seed, device=device, **hparams)
    assert method.params["cls_epochs"] == CLS_EPOCHS and method.params["syn_per_class"] == 300
    curve: dict[int, dict] = {}

    def monitor(values: dict[str, int], fitted) -> None:
        m = evaluate(fitted, dataset, None).metrics
        point = curve.setdefault(values["epochs"], {})
        if "best" not in point or m["H"] > point["best"]["H"]:
            point["best"] = {k: m[k] for k in ("U", "S", "H")}
        if values["cls_epochs"] == CLS_EPOCHS:
            point["final"] = {k: m[k] for k in ("U", "S", "H")}

    eval_s = time_stage(method, "_fit_classifier")
    t = time.perf_counter()
    method.fit(dataset.train_set(), monitor=monitor)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "train_s": wall - sum(eval_s), "eval_s": sum(eval_s), "curve": curve}


def fmt(p: dict | None, key: str = "final") -> str:
    if p is None or key not in p:
        return "|  |  | "
    m = p[key]
    return f"| {m['U']:.1f} | {m['S']:.1f} | {m['H']:.1f} "


def print_curve(seed: int, theirs: dict | None, ours: dict | None) -> None:
    """The test curves of one seed side by side (final classifier epoch; U / S / H in %)."""
    print(f"\nseed {seed}: test U / S / H per generator epoch (final classifier epoch)\n")
    print("| epoch | official U | official S | official H | ours U | ours S | ours H |")
    print("|---|---|---|---|---|---|---|")
    epochs = sorted(set((theirs or {}).get("curve", {})) | set((ours or {}).get("curve", {})))
    for e in epochs:
        cells = [fmt(r["curve"].get(e) if r else None) for r in (theirs, ours)]
        print(f"| {e} {cells[0]}{cells[1]}|")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--official", type=Path, required=True, help="patched checkout of the authors' code")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=56, help="generator epochs (official CUB: 56)")
    parser.add_argument("--eval-every", type=int, default=1, help="generator epochs between test points")
    parser.add_argument("--lr", type=float, default=1e-4, help="GAN learning rate, both sides (CUB: 1e-4)")
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--device", default="cpu", help="both sides' device: cpu or cuda")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    official = args.official.resolve()
    seeds = [int(v) for v in args.seeds.split(",")]
    write_xlsa17(dataset, official / "data" / "CUB", seeds[0])
    n_train = len(dataset.train_set().labels)
    print(
        f"\n## f-CLSWGAN vs the authors' code: {dataset.source} ({dataset.hash}), {n_train} training "
        f"samples, {args.epochs} generator epochs of {-(-n_train // 64)} steps, test every "
        f"{args.eval_every}, GAN lr {args.lr:g}, seeds {seeds}, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}\n",
        flush=True,
    )
    results = {}
    for seed in seeds:
        ours = None
        if not args.skip_ours:
            ours = run_ours(dataset, args.epochs, args.eval_every, seed, args.lr, args.device)
        theirs = None
        if not args.skip_official:
            cuda = args.device.startswith("cuda")
            theirs = run_official(official, dataset, args.epochs, args.eval_every, seed, args.lr, cuda)
        results[seed] = (theirs, ours)
        print_curve(seed, theirs, ours)
        for name, r in (("official", theirs), ("ours", ours)):
            if r is not None:
                last = r["curve"][args.epochs]["final"]
                print(
                    f"seed {seed} {name}: {r['wall_s']:.0f} s (generator {r['train_s']:.0f} s, "
                    f"evaluation {r['eval_s']:.0f} s), final U {last['U']:.1f} S {last['S']:.1f} "
                    f"H {last['H']:.1f}",
                    flush=True,
                )

    print("\n| seed | run | wall (s) | generator (s) | evaluation (s) | U | S | H | best-cls H (on test) "
          "| H - official |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    gaps = []
    for seed, (theirs, ours) in results.items():
        ref = theirs["curve"][args.epochs]["final"]["H"] if theirs else None
        for name, r in (("official", theirs), ("ours", ours)):
            if r is None:
                continue
            p = r["curve"][args.epochs]
            gap = "" if ref is None else f"{p['final']['H'] - ref:+.1f}"
            print(
                f"| {seed} | {name} | {r['wall_s']:.0f} | {r['train_s']:.0f} | {r['eval_s']:.0f} "
                f"{fmt(p)}| {p['best']['H']:.1f} | {gap} |"
            )
        if theirs and ours:
            gaps.append(ours["curve"][args.epochs]["final"]["H"] - ref)
    if gaps:
        print(f"\nover seeds {seeds}: H(ours) - H(official) {np.mean(gaps):+.1f} +- {np.std(gaps):.1f} (std)")


if __name__ == "__main__":
    main()
