"""LsrGAN replayed step by step against the authors' code: same data, same initial weights
(generator, critic and the pretrained all-class classifier), the same random draws.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_replay_lsrgan.py --official DIR [--epochs 4]
[--seed 0] [--data synthetic:CUB?scale=0.1]``.

The official code is Vyas, Venkateswara, Panchanathan's release for *Leveraging Seen and Unseen
Semantic Relationships for Generative Zero-Shot Learning* (ECCV 2020), github.com/Maunil/LsrGAN,
commit 95394db5b0df11b36cc5c3d12e615c99698d2edb, its attribute-based code: ``DIR`` is a copy of
``Codes/Attribute_based_dataset`` kept OUTSIDE this repository (never commit it), patched for a
CPU and torch 2.x only (all in the ``--cuda``-off paths; the GPU paths are unchanged):

* ``clswgan.py``: ``data.tr_cls_centroid`` (the real seen-class means) becomes a float tensor also
  without ``--cuda`` (the code converts it only in its CUDA block and then indexes it as a tensor);
  the three zero accumulators of the Euclidean and SR losses,
  ``Variable(torch.Tensor([0.0]), requires_grad=True).cuda()``, take ``.clone()`` instead of
  ``.cuda()`` without ``--cuda`` (on the GPU ``.cuda()`` returns a non-leaf copy that the code adds
  to in place; on the CPU the leaf itself would refuse the in-place add; ``.clone()`` is the same
  non-leaf copy).
* ``classifier.py``: ``confidence_cal`` (a per-epoch log of class confidences) feeds the features
  without ``.cuda()`` / ``Variable(..., volatile=True)`` when the classifier is on the CPU.

Flags: ``Shell_Scipts/GZSL_CUB.sh``'s, less ``--cuda``, with ``--dataset CUB`` for its ``CUB1``
(the data is written to ``DATA/CUB``; the name only selects ``--upper_epsilon`` over
``--epsilon`` as the SR loss's upper margin, both 0.1 here), sizes from the data, ``--nepoch`` the
epoch count and ``--manualSeed`` the seed.

:mod:`replay` describes the method. The recorder goes into a copy of ``clswgan.py``: ``start``
once the classifier is pretrained (generator ``G``, critic ``D``, classifier ``C``), ``seen`` after
each generator step and ``unseen`` after each unseen-class step (weight norms and that step's loss
terms), ``end_epoch`` before each epoch's evaluation (the draws, steps and weights); its
``evaluate`` is the official GZSL report (``--no_classifier True``: the jointly trained classifier
``C`` on the test features, ``val_gzsl``) after the last epoch.

Ours (``lsrgan``, ``dataset_defaults["CUB"]``, ``epochs = N``) starts from those weights and its
draw sites take the official draws: ``BatchSampler.draw`` the ``randperm`` prefixes of
``next_batch``, ``gaussian`` the ``noise.normal_`` rows (the per-epoch evaluation's synthesis
draws, ``syn_num`` rows, are left out), the critic's penalty the ``rand`` mixing weights, and the
unseen step's class draw (``torch.randint`` in :mod:`unseen.methods.gzsl.lsrgan`) the classes of
the official ``next_batch_unseen_class`` (a ``randperm`` prefix over the test-unseen samples; the
official code draws its unseen classes by the test labels, ours uniformly: only the classes are
replayed, as ours would draw them). Ours runs twice: as it is, and on the official code's
path (:func:`official_path`), which differs from ours in three ways: (1) its SR loss passes no
gradient (the official computes it in NumPy, so ``Correlation_loss.backward()`` reaches no
parameter); (2) its unseen step does not clear the generator's gradient (it zeroes only the
classifier's), so that step's generator update adds the seen step's gradient a second time; (3)
the classifier's unseen-step optimiser is the pretraining's Adam, continued with its moments and
step count (recorded by ``save_adam``), where ours starts a fresh Adam. A third run, on the
official path from weights jittered by one part in 10^7, is the noise floor.

Tables: per step (generator step, then unseen step from the second epoch), the largest relative
weight-norm difference of G, D, C to the official and the loss terms (critic objective of the last
critic step, classifier NLL, ``correlation_penalty`` times the SR loss, the generator's total;
unseen: NLL on the generated unseen features and on the real seen minibatch, the weighted SR
loss); per epoch, the largest ``||ours - official|| / ||official||`` over each network's weight
tensors; then test S / U / H of the jointly trained classifier C (the official report) and of
ours' final classifier (trained on ours' own draws, for reference).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.io
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay import (  # noqa: E402
    Draws,
    Layers,
    TorchWithRand,
    networks,
    norm,
    official_recorded,
    renamed,
    started_from,
    test_accuracies,
)
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import SplitName, ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.methods.gzsl import f_clswgan, lsrgan  # noqa: E402
from unseen.methods.gzsl.generative import modules, training  # noqa: E402

EVALUATE = """
def _f(v):
    return float(v.detach().reshape(-1)[0]) if torch.is_tensor(v) else float(v)


def seen(g):
    o = g["opt"]
    step(o.lambda1)
    total = _f(g["G_cost"]) + o.cls_weight * _f(g["c_errG"]) + _f(g["Euclidean_loss"])
    steps[-1].update(
        phase="seen", critic=_f(g["D_cost"]), cls=_f(g["c_errG"]), sr=_f(g["Correlation_loss"]),
        total=total + _f(g["Correlation_loss"]),
    )


def unseen(g):
    step(g["opt"].lambda1)
    steps[-1].update(
        phase="unseen", cls=_f(g["c_errG_zero"]), cls_real=_f(g["c_errG_orginal"]),
        sr=_f(g["Correlation_loss_zero"]),
    )


def save_adam(optimizer):
    torch.save(optimizer.state_dict(), os.path.join(OUT, "classifier_adam.pt"))


def evaluate(g):
    data, cls = g["data"], g["pretrain_cls"]
    s = cls.val_gzsl(data.test_seen_feature, data.test_seen_label, data.seenclasses)
    u = cls.val_gzsl(data.test_unseen_feature, data.test_unseen_label, data.unseenclasses)
    return s, u, 2 * s * u / (s + u)
"""
INSERTIONS = (
    (
        "pretrain_cls = classifier.CLASSIFIER(",
        1,
        "import replay_recorder\nreplay_recorder.save_adam(pretrain_cls.optimizer)\n"
        "replay_recorder.start(G=netG, D=netD, C=pretrain_cls.model)\n",
    ),
    ("        optimizerG.step()", 1, "        replay_recorder.seen(globals())\n"),
    (
        "                pretrain_cls.optimizer.step()",
        1,
        "                replay_recorder.unseen(globals())\n",
    ),
    ("    mean_lossG /=", 0, "    replay_recorder.end_epoch(epoch, globals())\n"),
)
LAYERS: Layers = {
    "G": ("_G", {"fc1": "hidden.0", "fc2": "out.0"}),
    "D": ("_D", {"fc1": "net.0", "fc2": "net.2"}),
    "C": ("_pretrained", {"fc": "fc"}),
}
METHOD = "lsrgan"
CLS = lsrgan.LsrGAN
LOSSES = {"seen": ("critic", "cls", "sr", "total"), "unseen": ("cls", "cls_real", "sr")}


def official_flags(dataset: ZSLDataset, data: Path, epochs: int, seed: int) -> list[str]:
    """clswgan.py's flags: ``Shell_Scipts/GZSL_CUB.sh``'s on the CPU, sizes from ``dataset``."""
    k, d = dataset.classes.semantics.shape[1], dataset.dim
    flags = (
        f"--gzsl --manualSeed {seed} --val_every 1 --cls_weight 0.01 --preprocessing "
        "--image_embedding res101 --class_embedding att --netG_name MLP_G --netD_name MLP_CRITIC "
        f"--nepoch {epochs} --ngh 4096 --ndh 4096 --lr 0.0001 --classifier_lr 0.001 --lambda1 10 "
        f"--critic_iter 5 --dataset CUB --dataroot {data} --nclass_all {dataset.classes.n_classes} "
        f"--batch_size 64 --nz {k} --attSize {k} --resSize {d} --syn_num 300 --outname cub "
        "--no_classifier True --epsilon 0.1 --upper_epsilon 0.1 --correlation_penalty 20 "
        f"--unseen_cls_weight 0.03 --outf {data.parent / 'checkpoint'}"
    )
    return flags.split()


class TorchWithUnseenDraw:
    """Stands in for ``torch`` inside :mod:`unseen.methods.gzsl.lsrgan`: ``randint`` (the unseen
    step's classes) returns the classes of the official draw, as positions among ``unseen_ids``."""

    def __init__(self, draws: Draws, test_unseen_labels: np.ndarray, unseen_ids: np.ndarray):
        self._draws, self._labels = draws, torch.as_tensor(test_unseen_labels)
        self._position = {int(c): i for i, c in enumerate(unseen_ids)}

    def __getattr__(self, name):
        return getattr(torch, name)

    def randint(self, high, shape, generator=None, device=None):
        rows = self._draws.take("randperm", (len(self._labels),))[: shape[0]]
        return torch.tensor([self._position[int(c)] for c in self._labels[rows]])


@contextmanager
def replayed(record: dict, batch: int, n_train: int, test_unseen_labels: np.ndarray, unseen_ids):
    """Ours' draw sites take the official draws (see the module docstring)."""
    n_test = len(test_unseen_labels)
    if n_test == n_train:
        raise RuntimeError("the two randperm streams have one length; the replay cannot tell them apart")
    draws = Draws(
        record["draws"],
        keep=lambda k, t: (k != "randperm" or len(t) == n_train) and (k != "normal_" or len(t) == batch),
    )
    unseen = Draws(record["draws"], keep=lambda k, t: k == "randperm" and len(t) == n_test)
    saved = (f_clswgan.gaussian, lsrgan.gaussian, training.BatchSampler.draw, modules.torch, lsrgan.torch)

    def draw(self, n_batches):  # one independent permutation prefix per critic batch
        if self.batch != batch:  # the classifier's own batches (pretraining, final classifier)
            return saved[2](self, n_batches)
        return torch.stack([draws.take("randperm", (self.n,))[: self.batch] for _ in range(n_batches)])

    def gaussian(shape, generator, device):
        return draws.take("normal_", tuple(shape))

    f_clswgan.gaussian = lsrgan.gaussian = gaussian
    training.BatchSampler.draw = draw
    modules.torch = TorchWithRand(draws)
    lsrgan.torch = TorchWithUnseenDraw(unseen, test_unseen_labels, unseen_ids)
    try:
        yield
    finally:
        f_clswgan.gaussian, lsrgan.gaussian, training.BatchSampler.draw, modules.torch, lsrgan.torch = saved


@contextmanager
def official_path(classifier_adam: dict) -> Iterator[None]:
    """Ours with the official code's three departures (see the module docstring): the SR loss
    is a constant (computed on detached class means), the unseen step adds to the generator
    gradient the seen step left, and the classifier's optimiser continues from the pretraining's
    Adam state (``classifier_adam``, the official one's) instead of a fresh Adam."""
    relation, after, build = lsrgan.relation_loss, CLS._after_generator_step, CLS._build

    def detached(means, *args):
        return relation(means.detach(), *args)

    def accumulating(self, idx, generator):
        self._opt_g.zero_grad = lambda set_to_none=True: None
        try:
            after(self, idx, generator)
        finally:
            del self._opt_g.zero_grad

    def continued(self, train, generator):
        build(self, train, generator)
        self._opt_clf.load_state_dict(classifier_adam)

    lsrgan.relation_loss, CLS._after_generator_step, CLS._build = detached, accumulating, continued
    try:
        yield
    finally:
        lsrgan.relation_loss, CLS._after_generator_step, CLS._build = relation, after, build


@contextmanager
def logged(log: list[dict], epochs: list[dict]) -> Iterator[None]:
    """Ours' per-step rows as the official recorder writes them (weight norms after the generator
    step and after the unseen step, that step's loss terms) and the weights after each epoch."""
    build, relation, nll = CLS._build, lsrgan.relation_loss, nn.functional.nll_loss
    current: dict = {"phase": None}

    def record_relation(*args):
        value = relation(*args)
        current["sr"] = current.get("sr", 0.0) + current["model"].params["sr_weight"] * float(value.detach())
        return value

    def record_nll(*args, **kwargs):
        value = nll(*args, **kwargs)
        if current["phase"] is not None:
            current.setdefault("nll", []).append(float(value.detach()))
        return value

    def row(model, phase: str) -> None:
        terms = {k: v for k, v in current.items() if k in ("critic", "sr", "total")}
        names = ("cls",) if phase == "seen" else ("cls", "cls_real")
        terms.update(zip(names, current.get("nll", []), strict=True))
        log.append({"phase": phase, **terms, **{k: norm(m) for k, m in networks(model, LAYERS)}})
        current.update(phase=None, nll=[], sr=0.0)

    def build_logged(self, train, generator):
        build(self, train, generator)
        current["model"] = self
        critic, loss, step_g, step_c = (
            self._D.backward_wgan_gp,
            self._generator_loss,
            self._opt_g.step,
            self._opt_clf.step,
        )
        train_epoch, after = self._train_epoch, self._after_generator_step

        def critic_logged(*args, **kwargs):
            out = critic(*args, **kwargs)
            current["critic"] = float(out[0])
            return out

        def loss_logged(*args):
            current["phase"] = "seen"
            value = loss(*args)
            current["total"] = float(value.detach())
            return value

        def step_g_logged(*args, **kwargs):
            step_g(*args, **kwargs)
            if current["phase"] == "seen":
                row(self, "seen")

        def step_c_logged(*args, **kwargs):
            step_c(*args, **kwargs)
            row(self, "unseen")

        def after_logged(idx, generator):
            current.update(phase="unseen", nll=[], sr=0.0)
            after(idx, generator)
            current["phase"] = None

        def epoch_logged(sampler, generator):
            train_epoch(sampler, generator)
            epochs.append(
                {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in networks(self, LAYERS)}
            )

        self._D.backward_wgan_gp, self._generator_loss = critic_logged, loss_logged
        self._opt_g.step, self._opt_clf.step = step_g_logged, step_c_logged
        self._after_generator_step, self._train_epoch = after_logged, epoch_logged

    CLS._build, lsrgan.relation_loss, nn.functional.nll_loss = build_logged, record_relation, record_nll
    try:
        yield
    finally:
        CLS._build, lsrgan.relation_loss, nn.functional.nll_loss = build, relation, nll


def replay_ours(
    dataset: ZSLDataset,
    epochs: int,
    seed: int,
    out: Path,
    labels: np.ndarray,
    official: bool,
    jitter=0.0,
) -> tuple[list[dict], list[dict], object]:
    """Ours trained on the official draws: per-step rows, per-epoch weights, the fitted model
    (its final classifier trained afterwards on ours' own draws)."""
    record = torch.load(out / f"epoch{epochs - 1}.pt")
    model = GZSL[METHOD](seed=seed, **{**GZSL[METHOD].defaults_for("CUB"), "epochs": epochs})
    model._fit_classifier = lambda epoch: None
    log: list[dict] = []
    weights: list[dict] = []
    train = dataset.train_set()
    batch = model.params["batch_size"]
    with (
        official_path(torch.load(out / "classifier_adam.pt")) if official else _nothing(),
        started_from(CLS, torch.load(out / "init.pt"), LAYERS, jitter),
        logged(log, weights),
        replayed(record, batch, len(train.labels), labels, train.classes.unseen_ids),
    ):
        model.fit(train)
    del model._fit_classifier
    model._fit_classifier(epochs)
    return log, weights, model


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def official_test_unseen_labels(out: Path) -> np.ndarray:
    """The official ``test_unseen_label`` (0-based, in ``test_unseen_loc`` order) from the written files."""
    data = out.parent / "data" / "CUB"
    labels = scipy.io.loadmat(data / "res101.mat")["labels"].astype(int).squeeze() - 1
    return labels[scipy.io.loadmat(data / "att_splits.mat")["test_unseen_loc"].squeeze() - 1]


def joint_classifier_suh(model, dataset: ZSLDataset) -> list[float]:
    """The official report's S / U / H (percent): ``C`` (trained jointly) over all classes, mean
    per-class accuracy on the test-seen and test-unseen features."""
    accs = []
    for split in (SplitName.TEST_SEEN, SplitName.TEST_UNSEEN):
        X = torch.as_tensor(model._scaler(dataset.split_features(split)), dtype=torch.float32)
        y = np.asarray(dataset.split_labels(split))
        with torch.no_grad():
            pred = model._pretrained(X).argmax(1).numpy()
        accs.append(100 * float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)])))
    s, u = accs
    return [s, u, 2 * s * u / (s + u) if s + u else 0.0]


def max_diff(a: dict, b: dict) -> float:
    """The largest relative difference ``||a - b|| / ||b||`` over a network's weight tensors."""
    return max(float((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-12)) for k in a)


def print_steps(official: list[dict], runs: dict[str, list[dict]]) -> None:
    """Per step: each run's largest relative weight-norm difference to the official, and the loss
    terms (official / each run)."""
    names = list(runs)
    print(
        "\n| step | phase | "
        + " | ".join(f"max rel. norm diff, {n}" for n in names)
        + " | losses, official / "
        + " / ".join(names)
        + " |"
    )
    print("|---" * (3 + len(names)) + "|")
    for i, o in enumerate(official):
        rows = [runs[n][i] for n in names]
        if any(r["phase"] != o["phase"] for r in rows):
            raise RuntimeError(
                f"replay out of step at row {i + 1}: {o['phase']} vs {[r['phase'] for r in rows]}"
            )
        rel = [max(abs(r[k] - o[k]) / o[k] for k in LAYERS) for r in rows]
        terms = ", ".join(f"{k} " + " / ".join(f"{x[k]:.5g}" for x in (o, *rows)) for k in LOSSES[o["phase"]])
        print(f"| {i + 1} | {o['phase']} | " + " | ".join(f"{v:.1e}" for v in rel) + f" | {terms} |")


def print_epochs(out: Path, runs: dict[str, list[dict]], twin: tuple[str, str]) -> None:
    """Per epoch and network: the largest absolute weight difference of each run to the official,
    and of the jittered run to its unjittered twin (the noise floor)."""
    names = list(runs)
    print(
        "\n| epoch | network | "
        + " | ".join(f"{n} vs official" for n in names)
        + f" | {twin[1]} vs {twin[0]} (noise floor) |"
    )
    print("|---" * (3 + len(names)) + "|")
    for e in range(len(runs[names[0]])):
        official = torch.load(out / f"epoch{e}.pt")["state"]
        for net in LAYERS:
            theirs = renamed(net, official[net], LAYERS)
            cells = [max_diff(runs[n][e][net], theirs) for n in names]
            floor = max_diff(runs[twin[1]][e][net], runs[twin[0]][e][net])
            print(f"| {e + 1} | {net} | " + " | ".join(f"{v:.1e}" for v in cells) + f" | {floor:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched Codes/Attribute_based_dataset")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="the official run's --manualSeed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data)
    recorded = official_recorded(
        args.official,
        "clswgan.py",
        INSERTIONS,
        EVALUATE,
        dataset,
        args.seed,
        "0",
        lambda data: official_flags(dataset, data, args.epochs, args.seed),
    )
    with recorded as (written, out):
        labels = official_test_unseen_labels(out)
        models, logs, weights = {}, {}, {}
        for name, path, jitter in (
            ("ours", False, 0.0),
            ("ours, official path", True, 0.0),
            ("ours, official path, jittered", True, 1e-7),
        ):
            logs[name], weights[name], models[name] = replay_ours(
                written, args.epochs, args.seed, out, labels, path, jitter
            )
        record = torch.load(out / f"epoch{args.epochs - 1}.pt")
        print(f"{METHOD}, {args.data}, {args.epochs} epochs, seed {args.seed}: {len(record['steps'])} steps")
        print_steps(record["steps"], logs)
        print_epochs(out, weights, ("ours, official path", "ours, official path, jittered"))
        official = (out / "classifier.json").read_text()
        suh = json.loads(official)[0]["SUH"]
        print(
            "\n| run | S / U / H, jointly trained classifier C (the official report) | "
            "S / U / H, ours' final classifier |\n|---|---|---|"
        )
        print("| official | " + " / ".join(f"{v:.2f}" for v in suh) + " | - |")
        for name, model in models.items():
            joint = " / ".join(f"{v:.2f}" for v in joint_classifier_suh(model, written))
            final = " / ".join(f"{v:.2f}" for v in test_accuracies(model, written))
            print(f"| {name} | {joint} | {final} |")


if __name__ == "__main__":
    main()
