"""TF-VAEGAN and f-VAEGAN-D2 side by side with the authors' code (github.com/akshitac8/tfvaegan).

Run: ``python benchmarks/bench_official_vaegan.py --official DIR --method tf-vaegan|f-vaegan
--seeds 0,1,2 --epochs N [--data synthetic:CUB?scale=0.1] [--log runs.jsonl]``.

The official code (Narayan et al., ECCV 2020; commit ``a0de81c963b3a6672ebc064ebf1071e52095a6b1``)
is checked out OUTSIDE this repository (never commit it); ``--official DIR`` names that checkout,
whose image-feature GZSL code is ``train_images.py`` with ``config_images.py``,
``networks/TFVAEGAN_model.py``, ``classifiers/classifier_images.py`` and ``datasets/image_util.py``.
Its patch for current torch on a CPU, and for this comparison:

* ``config_images.py``: ``--cuda`` defaults to off (it was ``store_true`` with ``default=True``, so
  it could not be turned off); two new options, ``--no_dec_features`` (the final classifiers get
  ``netDec=None``: raw features instead of ``[x, Dec(x), hidden(Dec, x)]``) and ``--skip_zsl`` (no
  ZSL classifier after each epoch; it only reports the ZSL accuracy, not used here, and costs as
  much as the GZSL one);
* ``train_images.py``: ``eps.cuda()`` (twice, unguarded) only with ``--cuda``;
  ``one = torch.FloatTensor([1])`` -> ``torch.tensor(1.0)`` (current torch refuses a shape-(1,)
  gradient for a 0-dim output in ``backward(one)`` / ``backward(mone)``); ``.data[0]`` ->
  ``.item()`` in the epoch print; ``generate_syn_feature`` under ``torch.no_grad()`` (its
  ``volatile=True`` no longer does that); one more print per epoch, ``LAST: seen=, unseen=, h=``,
  the GZSL classifier's last-epoch test accuracies; ``TIMING train_s=<s>`` (the whole epoch loop)
  printed after it; the ``--no_dec_features`` / ``--skip_zsl`` switches where the classifiers are
  built;
* ``classifiers/classifier_images.py``: ``loss.data[0]`` -> ``loss.item()``; ``fit`` keeps the last
  epoch's ``(seen, unseen, H)`` in ``self.last`` (it returns the best epoch's, chosen on test).

Seeds: ``--manualSeed`` (already there) seeds ``random`` and torch. Epoch cap: ``--nepoch``.
``--device cuda`` runs ours on the GPU and the official code with its own ``--cuda`` switch.

Official flags (``scripts/run_cub_tfvaegan.py``, with the sizes taken from the data; it already
uses ``--class_embedding att`` with the 312 CUB attributes, as the synthetic data does):
``--gammaD 10 --gammaG 10 --gzsl --encoded_noise --preprocessing --image_embedding res101
--class_embedding att --ngh 4096 --ndh 4096 --lr 0.0001 --classifier_lr 0.001 --lambda1 10
--critic_iter 5 --dataset CUB --nclass_all C --batch_size 64 --nz K --latent_size K --attSize K
--resSize D --syn_num 300 --recons_weight 0.01 --a1 1 --a2 1 --feed_lr 0.00001 --dec_lr 0.0001
--feedback_loop 2`` plus ``--nepoch N --manualSeed SEED --skip_zsl``. TF-VAEGAN is that.
f-VAEGAN-D2 (inductive) is the same with ``--feedback_loop 1`` (one pass per epoch; ``loop == 1``,
the only pass that runs and trains the feedback module, never happens), ``--a2 0`` (synthesis
adds ``0 x`` the untrained feedback to the generator's hidden layer), ``--recons_weight 0`` (the
decoder's cycle loss neither trains the decoder nor reaches the generator; its Adam steps on zero
gradients leave it as initialised) and ``--no_dec_features`` (the classifier sees the features
alone; without it the untrained decoder's outputs would still be concatenated to them).

This script writes the data as xlsa17 files (``write_xlsa17`` of ``bench_generative.py``) under
``--workdir`` (``CUB/res101.mat``, ``CUB/att_splits.mat``; ``--dataroot`` points there), runs the
official script in a subprocess (``OMP_NUM_THREADS=1``) and parses its per-epoch lines. Ours runs
with the method's CUB ``dataset_defaults`` (the same settings) and ``epochs = N``: one fit on the
whole training split (the official code trains on ``trainval`` too), monitored with
``checkpoint_every = 1`` so that, after every generator epoch, the final classifier (25 epochs,
batch 300) is trained and scored on the test splits at each of its epochs: the curve is only
reported, nothing is selected on it, and the generator's state at epoch ``e`` is the same as in an
unmonitored fit of ``e`` epochs (separate random streams). Both sides take the same number of
generator steps: ``N x passes x ceil(n_train / 64)``.

Two numbers per epoch and side: "last", the classifier's last (25th) epoch (what an unmonitored
fit reports), and "best", the best classifier epoch on test (what the official code prints and
reports). The table's final H is the "last" at epoch N; the gap is ours minus official. Each run
is appended to ``--log`` (JSON lines) as it finishes, and ``--table-only`` rebuilds the tables
from that log.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generative import run_official_script, write_xlsa17  # noqa: E402
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import SplitName, ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.metrics.accuracy import gzsl_accuracies  # noqa: E402

COMMIT = "a0de81c963b3a6672ebc064ebf1071e52095a6b1"
NUM = r"([\d.]+)"
EPOCH_LINE = re.compile(rf"GZSL: seen={NUM}, unseen={NUM}, h={NUM}\s+LAST: seen={NUM}, unseen={NUM}, h={NUM}")
TIMING_LINE = re.compile(rf"^TIMING train_s={NUM}")
CUB_FLAGS = (
    "--gammaD 10 --gammaG 10 --gzsl --encoded_noise --preprocessing --image_embedding res101 "
    "--class_embedding att --ngh 4096 --ndh 4096 --lr 0.0001 --classifier_lr 0.001 --lambda1 10 "
    "--critic_iter 5 --dataset CUB --batch_size 64 --syn_num 300 --recons_weight 0.01 --a1 1 --a2 1 "
    "--feed_lr 0.00001 --dec_lr 0.0001 --feedback_loop 2"
)
NO_FEEDBACK = {"--feedback_loop": "1", "--a2": "0", "--recons_weight": "0"}


def official_command(
    dataset: ZSLDataset, method: str, dataroot: Path, epochs: int, seed: int, cuda: bool = False
) -> list[str]:
    """The official ``train_images.py`` command line of ``method`` on ``dataset`` (on the GPU with
    ``cuda``: its own ``--cuda`` switch)."""
    k, d = dataset.classes.semantics.shape[1], dataset.dim
    flags = CUB_FLAGS.split()
    if method == "f-vaegan":
        for i, flag in enumerate(flags[:-1]):
            if flag in NO_FEEDBACK:
                flags[i + 1] = NO_FEEDBACK[flag]
        flags.append("--no_dec_features")
    n_classes = len(dataset.classes.names)
    sizes = f"--nclass_all {n_classes} --nz {k} --latent_size {k} --attSize {k} --resSize {d}"
    run = f"--dataroot {dataroot} --nepoch {epochs} --manualSeed {seed} --skip_zsl" + " --cuda" * cuda
    return [sys.executable, "train_images.py", *flags, *sizes.split(), *run.split()]


def run_official(official: Path, command: list[str]) -> dict:
    """Run the official script; its per-epoch test curve (percent) and timings."""
    stdout, wall = run_official_script(official, command[1], command[2:], "TF-VAEGAN")
    curve, train_s = [], None
    for line in stdout.splitlines():
        if m := EPOCH_LINE.search(line):
            v = [100 * float(x) for x in m.groups()]
            best, last = (dict(zip("SUH", part, strict=True)) for part in (v[:3], v[3:]))
            curve.append({"best": best, "last": last})
        elif m := TIMING_LINE.match(line.strip()):
            train_s = float(m.group(1))
    if not curve or train_s is None:
        raise RuntimeError(f"could not parse the official output:\n{stdout[-3000:]}")
    return {"wall_s": wall, "train_s": train_s, "curve": curve}


def run_ours(dataset: ZSLDataset, method: str, epochs: int, seed: int, device: str | None = None) -> dict:
    """One monitored fit on the whole training split; per generator epoch, test S/U/H at every
    classifier epoch (the time spent scoring test is not counted in ``train_s``)."""
    cls = GZSL[method]
    hparams = {**cls.defaults_for("CUB"), "epochs": epochs, "checkpoint_every": 1}
    model = cls(seed=seed, device=device, **hparams)
    X_s, y_s = dataset.split_features(SplitName.TEST_SEEN), dataset.split_labels(SplitName.TEST_SEEN)
    X_u, y_u = dataset.split_features(SplitName.TEST_UNSEEN), dataset.split_labels(SplitName.TEST_UNSEEN)
    points: dict[int, list[dict]] = {}
    scoring = [0.0]

    def monitor(values: dict, fitted) -> None:
        t = time.perf_counter()
        m = gzsl_accuracies(fitted.scores(X_s), y_s, fitted.scores(X_u), y_u)
        points.setdefault(values["epochs"], []).append({k: float(m[k]) for k in "SUH"})
        scoring[0] += time.perf_counter() - t

    t = time.perf_counter()
    model.fit(dataset.train_set(), monitor=monitor)
    wall = time.perf_counter() - t
    curve = [{"best": max(points[e], key=lambda r: r["H"]), "last": points[e][-1]} for e in sorted(points)]
    return {"wall_s": wall, "train_s": wall - scoring[0], "curve": curve, "hparams": hparams}


def percent(curve: list[dict]) -> list[dict]:
    """Ours' accuracies as percentages (the metrics module reports fractions)."""
    scale = 100.0 if all(r[k]["H"] <= 1.0 for r in curve for k in ("best", "last")) else 1.0
    return [{k: {m: scale * v for m, v in acc.items()} for k, acc in row.items()} for row in curve]


def print_tables(records: list[dict]) -> None:
    """Markdown: per seed final H of both sides, gap and times; the per-epoch curves; the mean gap."""
    for method in sorted({r["method"] for r in records}):
        runs = [r for r in records if r["method"] == method]
        epochs = runs[0]["epochs"]
        print(f"\n## {method} vs the official code, {runs[0]['data']}, {epochs} generator epochs")
        print(
            "| seed | official S / U / H (last cls epoch) | ours S / U / H | H gap (ours - official) | "
            "official H (best cls epoch, on test) | ours H (best) | gap (best) | official s | ours s |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        gaps, gaps_best = [], []
        for r in sorted(runs, key=lambda r: r["seed"]):
            o, u = r["official"]["curve"][-1], percent(r["ours"]["curve"])[-1]
            gap, gap_best = u["last"]["H"] - o["last"]["H"], u["best"]["H"] - o["best"]["H"]
            gaps.append(gap)
            gaps_best.append(gap_best)
            sus = [" / ".join(f"{x[k]:.1f}" for k in "SUH") for x in (o["last"], u["last"])]
            print(
                f"| {r['seed']} | {sus[0]} | {sus[1]} | {gap:+.1f} | {o['best']['H']:.1f} | "
                f"{u['best']['H']:.1f} | {gap_best:+.1f} | {r['official']['wall_s']:.0f} | "
                f"{r['ours']['wall_s']:.0f} |"
            )
        print(
            f"\nmean H gap (last cls epoch) {np.mean(gaps):+.2f} +- {np.std(gaps):.2f} (std over "
            f"{len(gaps)} seeds); best cls epoch {np.mean(gaps_best):+.2f} +- {np.std(gaps_best):.2f}"
        )
        print(f"\n{method}: test H per generator epoch (last cls epoch; best cls epoch in brackets)")
        print("| epoch | " + " | ".join(f"official s{r['seed']} | ours s{r['seed']}" for r in runs) + " |")
        print("|---" * (1 + 2 * len(runs)) + "|")
        for e in range(epochs):
            cells = []
            for r in runs:
                for curve in (r["official"]["curve"], percent(r["ours"]["curve"])):
                    p = curve[e] if e < len(curve) else None
                    cells.append(f"{p['last']['H']:.1f} ({p['best']['H']:.1f})" if p else "")
            print(f"| {e + 1} | " + " | ".join(cells) + " |")
        for side in ("official", "ours"):
            curves = [percent(r[side]["curve"]) if side == "ours" else r[side]["curve"] for r in runs]
            finals = [curve[-1]["last"]["H"] for curve in curves]
            print(f"{side}: final H {np.mean(finals):.2f} +- {np.std(finals):.2f} over seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched akshitac8/tfvaegan checkout")
    parser.add_argument("--method", choices=("tf-vaegan", "f-vaegan"), default="tf-vaegan")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=2, help="generator epochs of both sides")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_official_vaegan"))
    parser.add_argument("--log", type=Path, default=None, help="append each run here (JSON lines)")
    parser.add_argument("--table-only", action="store_true", help="only print the tables of --log")
    parser.add_argument("--device", default="cpu", help="both sides' device: cpu or cuda")
    args = parser.parse_args()

    records = []
    if args.log is not None and args.log.exists():
        records = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    if not args.table_only:
        torch.set_num_threads(1)
        dataset = load_dataset(args.data)
        seeds = [int(s) for s in args.seeds.split(",")]
        write_xlsa17(dataset, args.workdir / "CUB", seeds[0])
        for seed in seeds:
            cuda = args.device.startswith("cuda")
            command = official_command(dataset, args.method, args.workdir.resolve(), args.epochs, seed, cuda)
            record = {"method": args.method, "data": args.data, "epochs": args.epochs, "seed": seed}
            record["official"] = run_official(args.official.resolve(), command)
            record["official"]["command"] = " ".join(command[1:])
            print(f"seed {seed} official: {record['official']['curve'][-1]}", flush=True)
            record["ours"] = run_ours(dataset, args.method, args.epochs, seed, args.device)
            print(f"seed {seed} ours: {percent(record['ours']['curve'])[-1]}", flush=True)
            records.append(record)
            if args.log is not None:
                with args.log.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
    print_tables([r for r in records if r["method"] == args.method] if not args.table_only else records)


if __name__ == "__main__":
    main()
