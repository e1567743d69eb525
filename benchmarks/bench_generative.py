"""Generative GZSL methods end to end on full-size ``synthetic:CUB``, and CADA-VAE beside its official code.

Run: ``python benchmarks/bench_generative.py [--methods a,b] [--epochs m=N,...] [--official DIR]``.

Part 1, every generative method (default: every registered GZSL method built on
:class:`~unseen.methods.gzsl.generative.GenerativeGZSL`, plus CADA-VAE, CE-GZSL, COSMO and the
boundary gate when registered) runs the whole ``gzsl-ps-v1`` protocol: fit on the validation task
with checkpoints, refit on train with the selected lengths, test once. Settings are the paper's CUB settings
(``dataset_defaults``) unless ``--epochs`` caps a method's generator epochs; the table prints the
budget each method ran with. ``--protocol gzsl-transductive-v1`` runs the transductive methods
(Bi-VAEGAN) under that protocol instead: a separate table, never mixed with the inductive one.

Part 2, CADA-VAE side by side with the authors' code (Schönfeld et al., CVPR 2019;
github.com/edgarschnfld/CADA-VAE-PyTorch), checked out OUTSIDE this repository (never commit it);
``--official DIR`` names that checkout. Its CPU patch, in ``model/``: ``'device': 'cpu'`` in
``single_experiment.py``; ``torch.cuda.FloatTensor``/``LongTensor`` -> ``torch.FloatTensor``/
``LongTensor`` and ``.cuda()`` -> ``.to(self.device)`` in ``vaemodel.py``; drop the unused
``data.DataLoader(self.dataset, ...)`` line of ``train_vae`` (current torch needs ``len()`` of its
dataset object, which has none); and in ``single_experiment.py`` the options ``--epochs`` (default
100) and ``--seed`` (seeds torch and numpy) plus one line printed after training,
``TIMING train_vae_s=<s> train_classifier_s=<s>``, timing its two calls. This script writes the
same data as xlsa17 files (``DIR/data/CUB/res101.mat``, ``att_splits.mat``, 1-based indices)
where its loader reads them, runs ``single_experiment.py --dataset CUB --num_shots 0
--generalized True`` in a subprocess and parses what it prints. It reports the H of its last
classifier epoch (23 on CUB); it also prints every epoch's test H, whose maximum (a choice on
test) is shown for reference. Ours runs at the same settings (100 VAE epochs, batch 50, latent
64, 23 classifier epochs): one ``fit`` on the whole training split scored once on test (the same
work as the official run). ``--official-seeds 0,1,2`` repeats the pair per seed (each side seeded
with it) and prints the mean time ratio and the mean and spread of the H difference; then the
full protocol runs once (first seed), choosing the classifier epochs on validation. The runs take
turns on this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io
import torch

from unseen.data import load_dataset
from unseen.data.model import SplitName, ZSLDataset
from unseen.methods import GZSL
from unseen.methods.gzsl.generative import GenerativeGZSL
from unseen.protocols import PROTOCOLS
from unseen.protocols.gzsl import GZSLProtocol, evaluate

# Generative-family methods that are not GenerativeGZSL subclasses (docs/methods-vae-contrastive-gating.md).
OTHER_GENERATIVE = ("boundary-gate", "cada-vae", "ce-gzsl", "cosmo")
OFFICIAL_CLS_EPOCHS = 23  # the official CUB GZSL classifier length (its cls_train_steps table)
OFFICIAL_EPOCH_LINE = re.compile(r"^\[(\d+)\.0\]\s+novel=([\d.]+), seen=([\d.]+), h=([\d.]+)")
OFFICIAL_TIMING_LINE = re.compile(r"^TIMING train_vae_s=([\d.]+) train_classifier_s=([\d.]+)")


def generative_methods(transductive: bool = False) -> list[str]:
    """The registered generative GZSL methods, inductive (or ``transductive``), in registry (name) order."""
    return [
        name
        for name, cls in GZSL.items()
        if (issubclass(cls, GenerativeGZSL) or name in OTHER_GENERATIVE) and cls.transductive == transductive
    ]


def parse_epochs(text: str) -> dict[str, int]:
    """``"f-clswgan=5,tf-vaegan=3"`` -> ``{"f-clswgan": 5, "tf-vaegan": 3}``."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        out[name.strip()] = int(value)
    return out


def write_xlsa17(dataset: ZSLDataset, folder: Path, seed: int) -> None:
    """``res101.mat`` and ``att_splits.mat`` of ``dataset`` in the xlsa17 layout (1-based indices).

    ``train_loc``/``val_loc`` (the 2017 key set; the official CADA-VAE code reads them but does not
    use them) split ``trainval_loc`` by the pseudo-unseen classes of the protocol's validation task.
    """
    folder.mkdir(parents=True, exist_ok=True)
    val_task = dataset.validation_task(seed)
    val_names = {val_task.classes.names[c] for c in val_task.classes.unseen_ids}
    val_ids = [i for i, name in enumerate(dataset.classes.names) if name in val_names]
    trainval = dataset.indices(SplitName.TRAIN)
    in_val = np.isin(dataset.labels[trainval], val_ids)
    locs = {
        "trainval_loc": trainval,
        "test_seen_loc": dataset.indices(SplitName.TEST_SEEN),
        "test_unseen_loc": dataset.indices(SplitName.TEST_UNSEEN),
        "train_loc": trainval[~in_val],
        "val_loc": trainval[in_val],
    }
    contents = {
        "res101.mat": {
            "features": dataset.features.T.astype(np.float32),
            "labels": (dataset.labels + 1).reshape(-1, 1).astype(np.float64),
        },
        "att_splits.mat": {
            "att": dataset.classes.semantics.T.astype(np.float64),
            **{key: (idx + 1).reshape(-1, 1).astype(np.int32) for key, idx in locs.items()},
        },
    }
    for name, arrays in contents.items():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            scipy.io.savemat(fh, arrays)
        os.replace(tmp, folder / name)


def run_official_script(folder: Path, script: str, args: list[str], name: str) -> tuple[str, float]:
    """An official code's ``script`` run with ``args`` in ``folder`` in a subprocess (one OpenMP
    thread): its standard output and wall time, or a RuntimeError with the end of its errors."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, script, *args], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"official {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, wall


def run_official(official: Path, epochs: int, seed: int) -> dict:
    """The official CADA-VAE (GZSL, CUB, 0 shots) in a subprocess: wall time, phase times, history."""
    args = ["--dataset", "CUB", "--num_shots", "0", "--generalized", "True"]
    args += ["--epochs", str(epochs), "--seed", str(seed)]
    stdout, wall = run_official_script(official / "model", "single_experiment.py", args, "CADA-VAE")
    history, phases = [], None
    for line in stdout.splitlines():
        if m := OFFICIAL_EPOCH_LINE.match(line.strip()):
            u, s, h = (100 * float(v) for v in m.group(2, 3, 4))
            history.append({"S": s, "U": u, "H": h})
        elif m := OFFICIAL_TIMING_LINE.match(line.strip()):
            phases = float(m.group(1)), float(m.group(2))
    if not history or phases is None:
        raise RuntimeError(f"could not parse the official output:\n{stdout[-3000:]}")
    return {"wall_s": wall, "train_vae_s": phases[0], "train_classifier_s": phases[1], "history": history}


def time_stage(obj: object, name: str) -> list[float]:
    """Wrap the method ``obj.name`` (on the instance) so that each call's seconds are appended to
    the returned list: how the side-by-sides time ours' classifier stage apart from the rest."""
    stage, seconds = getattr(obj, name), []

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return stage(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - t)

    setattr(obj, name, timed)
    return seconds


def single_fit(dataset: ZSLDataset, hparams: dict, seed: int, device: str | None = None) -> dict:
    """One unmonitored CADA-VAE fit on the whole training split, scored once on test.

    The classifier stage (latent sampling + softmax training) is timed apart from the VAE by
    wrapping the instance's ``_fit_classifier``, to match the official code's two phases.
    """
    method = GZSL["cada-vae"](seed=seed, device=device, **hparams)
    classifier_s = time_stage(method, "_fit_classifier")
    t = time.perf_counter()
    method.fit(dataset.train_set())
    t_fit = time.perf_counter()
    metrics = evaluate(method, dataset, None).metrics
    return {
        "fit_s": t_fit - t,
        "classifier_s": sum(classifier_s),
        "total_s": time.perf_counter() - t,
        "metrics": metrics,
    }


def validation_curve(record: dict) -> list[str]:
    """Per generator checkpoint of the selection fit: the classifier length with the best
    validation H there, and its validation S, U, H (Markdown rows)."""
    rows = []
    for trial in record["selection"]["trials"]:
        by_epoch: dict[int, dict] = {}
        for point in trial.get("curve", []):
            best = by_epoch.get(point.get("epochs"))
            if best is None or point["H"] > best["H"]:
                by_epoch[point.get("epochs")] = point
        for epoch, p in by_epoch.items():
            cls_epochs = p.get("cls_epochs", "-")
            epoch = "last" if epoch is None else epoch
            rows.append(f"| {epoch} | {cls_epochs} | {p['S']:.1f} | {p['U']:.1f} | {p['H']:.1f} |")
    return rows


def part_methods(
    dataset: ZSLDataset,
    methods: list[str],
    epochs: dict[str, int],
    seed: int,
    curve: bool = False,
    device: str | None = None,
    protocol: str = "gzsl-ps-v1",
) -> None:
    print(
        f"\n## {protocol} end to end: {dataset.source} ({dataset.hash}), {len(dataset.labels)} samples x "
        f"{dataset.dim} dims, seed {seed}, torch threads {torch.get_num_threads()}"
    )
    print("| method | epochs (capped: cap of the paper's) | select (s) | refit (s) | total (s) | S | U | H |")
    print("|---|---|---|---|---|---|---|---|")
    for name in methods:
        cls = GZSL[name]
        fixed = {"epochs": epochs[name]} if name in epochs else {}
        paper = cls.defaults_for(dataset.name).get("epochs")
        if paper is None:
            paper = next((h.default for h in cls.hparams if h.name == "epochs"), "-")
        budget = f"{epochs[name]} of {paper}" if name in epochs else f"{paper}"
        record = PROTOCOLS[protocol](seed=seed).run(dataset, name, fixed, device=device)
        t, m = record["timing"], record["metrics"]
        print(
            f"| {name} | {budget} | {t['select_s']:.0f} | "
            f"{t['fit_s']:.0f} | {t['total_s']:.0f} | {m['S']:.1f} | {m['U']:.1f} | {m['H']:.1f} |",
            flush=True,
        )
        if curve:
            chosen = {k: record["hparams"].get(k) for k in ("epochs", "cls_epochs")}
            print(f"\n{name}: validation curve (chosen: {chosen})")
            print("| generator epochs | best classifier epochs | val S | val U | val H |")
            print("|---|---|---|---|---|")
            print("\n".join(validation_curve(record)) + "\n", flush=True)


def matmul_floor_s(d: int, k: int, batch: int = 50, latent: int = 64, repeats: int = 20) -> float:
    """Seconds per CADA-VAE step spent in its matrix products alone (forward and backward, paper
    widths, cross-reconstruction on): the floor any implementation of the same step pays on this
    CPU. Each linear layer ``A (m x p) @ W (p x q)`` costs its forward product, the weight gradient
    ``A^T G`` and, except for the encoders' first layers, the input gradient ``G W^T``."""
    layers = [  # (rows, in, out, needs input gradient)
        (batch, d, 1560, False), (batch, 1560, 2 * latent, True),  # feature encoder (mu, logvar)
        (batch, k, 1450, False), (batch, 1450, 2 * latent, True),  # attribute encoder
        (2 * batch, latent, 1660, True), (2 * batch, 1660, d, True),  # feature decoder, both latents
        (2 * batch, latent, 665, True), (2 * batch, 665, k, True),  # attribute decoder
    ]  # fmt: skip
    g = torch.Generator().manual_seed(0)
    operands = [
        (torch.randn(m, p, generator=g), torch.randn(p, q, generator=g), torch.randn(m, q, generator=g), back)
        for m, p, q, back in layers
    ]

    def step() -> None:
        for a, w, grad, back in operands:
            a @ w
            a.T @ grad
            if back:
                grad @ w.T

    step()
    t = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t) / repeats


def part_official(
    dataset: ZSLDataset, official: Path, epochs: int, seeds: list[int], device: str | None = None
) -> None:
    write_xlsa17(dataset, official / "data" / "CUB", seeds[0])
    print(
        f"\n## CADA-VAE vs the official code: {dataset.source} ({dataset.hash}), {epochs} VAE epochs, "
        f"batch 50, latent 64, {OFFICIAL_CLS_EPOCHS} classifier epochs, seeds {seeds}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print("| seed | run | seconds | official / ours | VAE (s) | classifier (s) | S | U | H | H - official |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    gaps, ratios = [], []
    for seed in seeds:
        ours = single_fit(dataset, {"epochs": epochs, "cls_epochs": OFFICIAL_CLS_EPOCHS}, seed, device)
        theirs = run_official(official, epochs, seed)
        final, best = theirs["history"][-1], max(theirs["history"], key=lambda r: r["H"])
        official_s = theirs["train_vae_s"] + theirs["train_classifier_s"]
        ours_vae_s = ours["fit_s"] - ours["classifier_s"]
        gaps.append(ours["metrics"]["H"] - final["H"])
        ratios.append(official_s / ours["total_s"])
        rows = (
            ("official (train_vae + train_classifier)", official_s, 1.0, theirs["train_vae_s"],
             theirs["train_classifier_s"], final),
            ("official, best test epoch (chosen on test)", None, None, None, None, best),
            ("ours (fit on train + scoring test)", ours["total_s"], ratios[-1], ours_vae_s,
             ours["classifier_s"], ours["metrics"]),
        )  # fmt: skip
        for run, secs, ratio, vae, clf, r in rows:
            cells = [f"{v:.0f}" if v is not None else "" for v in (secs, vae, clf)]
            print(
                f"| {seed} | {run} | {cells[0]} | {'' if ratio is None else f'{ratio:.2f}'} | {cells[1]} | "
                f"{cells[2]} | {r['S']:.1f} | {r['U']:.1f} | {r['H']:.1f} | {r['H'] - final['H']:+.1f} |",
                flush=True,
            )
        print(f"seed {seed}: official H per classifier epoch {[round(r['H'], 1) for r in theirs['history']]}")
    steps = epochs * -(-len(dataset.indices(SplitName.TRAIN)) // 50)
    floor = matmul_floor_s(dataset.dim, dataset.classes.semantics.shape[1]) * steps
    print(
        f"matrix products alone, {steps} VAE steps: {floor:.0f} s (the VAE phase's floor on this CPU; "
        f"last seed: official {theirs['train_vae_s']:.0f} s, ours {ours_vae_s:.0f} s)"
    )
    print(
        f"over seeds {seeds}: official / ours time {np.mean(ratios):.2f} (min {min(ratios):.2f}), "
        f"H - official {np.mean(gaps):+.1f} +- {np.std(gaps):.1f} (std)"
    )
    record = GZSLProtocol(seed=seeds[0]).run(dataset, "cada-vae", {"epochs": epochs}, device=device)
    m = record["metrics"]
    print(
        f"ours, gzsl-ps-v1 (seed {seeds[0]}): cls_epochs {record['hparams']['cls_epochs']} chosen on "
        f"validation; validation fit + refit + test {record['timing']['total_s']:.0f} s; "
        f"S {m['S']:.1f} U {m['U']:.1f} H {m['H']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:CUB")
    parser.add_argument("--methods", default=None, help="comma-separated; default: every generative method")
    parser.add_argument("--epochs", default="", help="generator-epoch caps, e.g. f-clswgan=5,f-vaegan=3")
    parser.add_argument("--official", type=Path, default=None, help="patched official CADA-VAE checkout")
    parser.add_argument("--official-epochs", type=int, default=100, help="VAE epochs of the side-by-side")
    parser.add_argument("--skip-methods", action="store_true", help="only the CADA-VAE side-by-side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--official-seeds", default="0", help="comma-separated seeds of the side-by-side")
    parser.add_argument("--curve", action="store_true", help="print each method's validation curve")
    parser.add_argument("--device", default=None, help="torch device of ours (default: cuda if available)")
    parser.add_argument(
        "--protocol",
        default="gzsl-ps-v1",
        choices=sorted(PROTOCOLS),
        help="gzsl-transductive-v1 runs (by default) the transductive methods instead",
    )
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    transductive = PROTOCOLS[args.protocol].transductive
    methods = args.methods.split(",") if args.methods else generative_methods(transductive)
    if args.official is not None:
        seeds = [int(v) for v in args.official_seeds.split(",")]
        part_official(dataset, args.official.resolve(), args.official_epochs, seeds, args.device)
    if not args.skip_methods:
        part_methods(
            dataset, methods, parse_epochs(args.epochs), args.seed, args.curve, args.device, args.protocol
        )


if __name__ == "__main__":
    main()
