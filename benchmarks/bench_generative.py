"""Generative GZSL methods end to end on full-size ``synthetic:CUB``, and CADA-VAE beside its official code.

Run: ``python benchmarks/bench_generative.py [--methods a,b] [--epochs m=N,...] [--official DIR]``.

Part 1, every generative method (default: every registered GZSL method built on
:class:`~unseen.methods.gzsl.generative.GenerativeGZSL`, plus CADA-VAE, CE-GZSL and COSMO when
registered) runs the whole ``gzsl-ps-v1`` protocol: fit on the validation task with checkpoints,
refit on train with the selected lengths, test once. Settings are the paper's CUB settings
(``dataset_defaults``) unless ``--epochs`` caps a method's generator epochs; the table prints the
budget each method ran with.

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
--generalized True`` in a subprocess and parses what it prints. It reports the H of its last (23rd)
classifier epoch; it also prints every epoch's test H, whose maximum (a choice on test) is shown
for reference. Ours runs at the same settings (100 VAE epochs, batch 50, latent 64, 23 classifier
epochs): one ``fit`` on the whole training split scored once on test (the same work as the
official run), then the full protocol. The runs take turns on this machine's cores.
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
from unseen.protocols.gzsl import GZSLProtocol, evaluate

# Generative-family methods that are not GenerativeGZSL subclasses (docs/methods-vae-contrastive-gating.md).
OTHER_GENERATIVE = ("cada-vae", "ce-gzsl", "cosmo")
OFFICIAL_CLS_EPOCHS = 23  # the official CUB GZSL classifier length (its cls_train_steps table)
OFFICIAL_EPOCH_LINE = re.compile(r"^\[(\d+)\.0\]\s+novel=([\d.]+), seen=([\d.]+), h=([\d.]+)")
OFFICIAL_TIMING_LINE = re.compile(r"^TIMING train_vae_s=([\d.]+) train_classifier_s=([\d.]+)")


def generative_methods() -> list[str]:
    """The registered generative GZSL methods, in registry (name) order."""
    return [name for name, cls in GZSL.items() if issubclass(cls, GenerativeGZSL) or name in OTHER_GENERATIVE]


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


def run_official(official: Path, epochs: int, seed: int) -> dict:
    """The official CADA-VAE (GZSL, CUB, 0 shots) in a subprocess: wall time, phase times, history."""
    cmd = [
        sys.executable,
        "single_experiment.py",
        "--dataset",
        "CUB",
        "--num_shots",
        "0",
        "--generalized",
        "True",
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
    ]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=official / "model", capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"official CADA-VAE failed ({done.returncode}):\n{done.stderr[-3000:]}")
    history, phases = [], None
    for line in done.stdout.splitlines():
        if m := OFFICIAL_EPOCH_LINE.match(line.strip()):
            u, s, h = (100 * float(v) for v in m.group(2, 3, 4))
            history.append({"S": s, "U": u, "H": h})
        elif m := OFFICIAL_TIMING_LINE.match(line.strip()):
            phases = float(m.group(1)), float(m.group(2))
    if not history or phases is None:
        raise RuntimeError(f"could not parse the official output:\n{done.stdout[-3000:]}")
    return {"wall_s": wall, "train_vae_s": phases[0], "train_classifier_s": phases[1], "history": history}


def single_fit(dataset: ZSLDataset, hparams: dict, seed: int) -> dict:
    """One unmonitored CADA-VAE fit on the whole training split, scored once on test.

    The classifier stage (latent sampling + softmax training) is timed apart from the VAE by
    wrapping the instance's ``_fit_classifier``, to match the official code's two phases.
    """
    method = GZSL["cada-vae"](seed=seed, **hparams)
    stage = method._fit_classifier
    classifier_s = []

    def timed_classifier(*args):
        t = time.perf_counter()
        stage(*args)
        classifier_s.append(time.perf_counter() - t)

    method._fit_classifier = timed_classifier
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


def part_methods(dataset: ZSLDataset, methods: list[str], epochs: dict[str, int], seed: int) -> None:
    print(
        f"\n## gzsl-ps-v1 end to end: {dataset.source} ({dataset.hash}), {len(dataset.labels)} samples x "
        f"{dataset.dim} dims, seed {seed}, torch threads {torch.get_num_threads()}"
    )
    print("| method | epochs | select (s) | refit (s) | total (s) | S | U | H |")
    print("|---|---|---|---|---|---|---|---|")
    for name in methods:
        cls = GZSL[name]
        fixed = {"epochs": epochs[name]} if name in epochs else {}
        budget = {**cls.defaults_for(dataset.name), **fixed}.get("epochs")
        if budget is None:
            budget = next((h.default for h in cls.hparams if h.name == "epochs"), "-")
        record = GZSLProtocol(seed=seed).run(dataset, name, fixed)
        t, m = record["timing"], record["metrics"]
        print(
            f"| {name} | {budget}{'' if name not in epochs else ' (capped)'} | {t['select_s']:.0f} | "
            f"{t['fit_s']:.0f} | {t['total_s']:.0f} | {m['S']:.1f} | {m['U']:.1f} | {m['H']:.1f} |",
            flush=True,
        )


def part_official(dataset: ZSLDataset, official: Path, epochs: int, seed: int) -> None:
    write_xlsa17(dataset, official / "data" / "CUB", seed)
    print(
        f"\n## CADA-VAE vs the official code: {dataset.source} ({dataset.hash}), {epochs} VAE epochs, "
        f"batch 50, latent 64, {OFFICIAL_CLS_EPOCHS} classifier epochs, seed {seed}, "
        f"torch threads {torch.get_num_threads()}"
    )
    ours = single_fit(dataset, {"epochs": epochs, "cls_epochs": OFFICIAL_CLS_EPOCHS}, seed)
    theirs = run_official(official, epochs, seed)
    final, best = theirs["history"][-1], max(theirs["history"], key=lambda r: r["H"])
    official_train = theirs["train_vae_s"] + theirs["train_classifier_s"]
    print("| run | what is timed | seconds | official train / this | S | U | H | H - official final |")
    print("|---|---|---|---|---|---|---|---|")

    def row(run: str, what: str, seconds: float | None, r: dict) -> None:
        ratio = "" if seconds is None else f"{official_train / seconds:.2f}"
        secs = "" if seconds is None else f"{seconds:.0f}"
        print(
            f"| {run} | {what} | {secs} | {ratio} | {r['S']:.1f} | {r['U']:.1f} | {r['H']:.1f} | "
            f"{r['H'] - final['H']:+.1f} |",
            flush=True,
        )

    row("official", "process (imports, data, VAE, classifier, test every epoch)", theirs["wall_s"], final)
    row("official", "train_vae + train_classifier", official_train, final)
    row("official, best test epoch", "(chosen on test)", None, best)
    row("ours, one fit", "fit on train + scoring test", ours["total_s"], ours["metrics"])
    row("ours, one fit", "fit on train", ours["fit_s"], ours["metrics"])
    print(
        f"phases: official train_vae {theirs['train_vae_s']:.0f} s, train_classifier "
        f"{theirs['train_classifier_s']:.0f} s; ours VAE {ours['fit_s'] - ours['classifier_s']:.0f} s, "
        f"classifier {ours['classifier_s']:.0f} s"
    )
    record = GZSLProtocol(seed=seed).run(dataset, "cada-vae", {"epochs": epochs})
    row("ours, gzsl-ps-v1", "validation fit + refit + test", record["timing"]["total_s"], record["metrics"])
    print(
        f"ours, gzsl-ps-v1: cls_epochs {record['hparams']['cls_epochs']} chosen on validation; "
        f"refit {record['timing']['fit_s']:.0f} s"
    )
    print(f"official H per classifier epoch: {[round(r['H'], 1) for r in theirs['history']]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:CUB")
    parser.add_argument("--methods", default=None, help="comma-separated; default: every generative method")
    parser.add_argument("--epochs", default="", help="generator-epoch caps, e.g. f-clswgan=5,f-vaegan=3")
    parser.add_argument("--official", type=Path, default=None, help="patched official CADA-VAE checkout")
    parser.add_argument("--official-epochs", type=int, default=100, help="VAE epochs of the side-by-side")
    parser.add_argument("--skip-methods", action="store_true", help="only the CADA-VAE side-by-side")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    methods = args.methods.split(",") if args.methods else generative_methods()
    if args.official is not None:
        part_official(dataset, args.official.resolve(), args.official_epochs, args.seed)
    if not args.skip_methods:
        part_methods(dataset, methods, parse_epochs(args.epochs), args.seed)


if __name__ == "__main__":
    main()
