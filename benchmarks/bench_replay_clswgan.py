"""f-CLSWGAN replayed step by step against the authors' code: same data, same initial weights
(generator, critic and the pretrained seen-class classifier), the same random draws.

Run: ``python benchmarks/bench_replay_clswgan.py --official DIR [--epochs 4] [--seed 0]
[--classifier-seeds 0,1,2,3,4,5] [--lr 1e-4] [--data synthetic:CUB?scale=0.1]``.

``DIR`` is the patched checkout of Xian et al.'s PyTorch release used by
``bench_official_clswgan.py`` (whose docstring lists that patch). :mod:`replay` describes the
method. The recorder goes into a copy of ``clswgan.py``: ``start`` once the classifier of the
classification loss is pretrained and frozen (generator, critic and that classifier), ``step``
after each generator step (the penalty weight is fixed here), ``end_epoch`` before each epoch's
evaluation (``--val_every`` is the epoch count, so the official code evaluates only after the
last one); its ``evaluate`` is the official ``generate_syn_feature`` and GZSL
``classifier2.CLASSIFIER`` (last classifier epoch) on the final weights.

Ours (``f-clswgan``, ``dataset_defaults["CUB"]``, ``epochs = N``) starts from those weights,
its pretrained classifier replaced by the official one, and its draw sites take the official
draws: ``BatchSampler.draw`` the ``randperm`` prefixes of ``next_batch``, ``gaussian`` the
``noise.normal_`` rows, the critic's penalty the ``rand`` mixing weights.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_official_clswgan import official_flags  # noqa: E402
from replay import (  # noqa: E402
    Draws,
    Layers,
    TorchWithRand,
    official_recorded,
    print_classifiers,
    print_replay,
    replay_classifier,
    started_from,
    test_accuracies,
)
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.methods.gzsl import f_clswgan  # noqa: E402
from unseen.methods.gzsl.generative import modules, training  # noqa: E402

EVALUATE = """
def evaluate(g):
    opt, data = g["opt"], g["data"]
    g["netG"].eval()
    X, y = g["generate_syn_feature"](g["netG"], data.unseenclasses, data.attribute, opt.syn_num)
    cls = g["classifier2"].CLASSIFIER(
        torch.cat((data.train_feature, X)), torch.cat((data.train_label, y)), data, opt.nclass_all,
        False, opt.classifier_lr, 0.5, 25, opt.syn_num, True,
    )
    return cls.last_seen, cls.last_unseen, cls.last_H
"""
INSERTIONS = (
    (
        "for p in pretrain_cls.model.parameters(): # set requires_grad to False",
        2,
        "import replay_recorder\nreplay_recorder.start(G=netG, D=netD, C=pretrain_cls.model)\n",
    ),
    ("        optimizerG.step()", 1, "        replay_recorder.step(opt.lambda1)\n"),
    ("    mean_lossG /=", 0, "    replay_recorder.end_epoch(epoch, globals())\n"),
)
# official network -> (attribute of ours, official layer -> ours' layer)
LAYERS: Layers = {
    "G": ("_G", {"fc1": "hidden.0", "fc2": "out.0"}),
    "D": ("_D", {"fc1": "net.0", "fc2": "net.2"}),
    "C": ("_pretrained", {"fc": "fc"}),
}
METHOD = "f-clswgan"
CLS = f_clswgan.FCLSWGAN


@contextmanager
def replayed(draws: Draws, batch: int):
    """Ours' draw sites take the official draws (minibatches of ``batch``: the generator's)."""
    saved = (f_clswgan.gaussian, training.BatchSampler.draw, modules.torch)

    def draw(self, n_batches):  # one independent permutation prefix per critic batch
        if self.batch != batch:  # the pretrained classifier's own batches; its weights are replaced
            return saved[1](self, n_batches)
        return torch.stack([draws.take("randperm", (self.n,))[: self.batch] for _ in range(n_batches)])

    f_clswgan.gaussian = lambda shape, generator, device: draws.take("normal_", tuple(shape))
    training.BatchSampler.draw = draw
    modules.torch = TorchWithRand(draws)
    try:
        yield
    finally:
        f_clswgan.gaussian, training.BatchSampler.draw, modules.torch = saved


def hparams(epochs: int, lr: float) -> dict:
    return {**GZSL[METHOD].defaults_for("CUB"), "epochs": epochs, "lr": lr}


def replay_ours(
    dataset: ZSLDataset, epochs: int, lr: float, seed: int, out: Path, jitter: float = 0.0
) -> tuple[list, object]:
    """Ours trained on the official draws; the per-step log and the fitted model (no classifier)."""
    record = torch.load(out / f"epoch{epochs - 1}.pt")
    model = GZSL[METHOD](seed=seed, **hparams(epochs, lr))
    model._fit_classifier = lambda epoch: None
    log: list[dict] = []
    draws = Draws(record["draws"])
    with (
        started_from(CLS, torch.load(out / "init.pt"), LAYERS, jitter, log),
        replayed(draws, model.params["batch_size"]),
    ):
        model.fit(dataset.train_set())
    return log, model


def classifier_on_official(
    dataset: ZSLDataset, final: dict, lr: float, out: Path, seeds: list[int]
) -> list[dict]:
    """Ours' synthesis and final classifier on the official final weights, once per official
    classifier seed, each on that run's draws."""
    results = []
    with started_from(CLS, final, LAYERS):
        for seed in seeds:
            model = GZSL[METHOD](seed=seed, **{**hparams(1, lr), "pretrain_epochs": 1})
            model._train_epoch = lambda sampler, generator: None
            replay_classifier(model, torch.load(out / f"classifier_draws{seed}.pt"))
            model.fit(dataset.train_set())
            results.append({"seed": seed, "SUH": test_accuracies(model, dataset)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched checkout of the authors' code")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4, help="both sides' generator and critic lr")
    parser.add_argument("--seed", type=int, default=0, help="the official run's --manualSeed")
    parser.add_argument("--classifier-seeds", default="", help="e.g. 0,1,2,3,4,5 (empty: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data)
    seeds = [int(s) for s in args.classifier_seeds.split(",") if s]

    def flags(data: Path) -> list[str]:
        return official_flags(
            dataset, data, data.parent / "checkpoint", args.epochs, args.epochs, args.seed, args.lr
        )

    recorded = official_recorded(
        args.official, "clswgan.py", INSERTIONS, EVALUATE, dataset, args.seed, args.classifier_seeds, flags
    )
    with recorded as (written, out):
        log, model = replay_ours(written, args.epochs, args.lr, args.seed, out)
        _, twin = replay_ours(written, args.epochs, args.lr, args.seed, out, jitter=1e-7)
        record = torch.load(out / f"epoch{args.epochs - 1}.pt")
        head = f"{METHOD}, {args.data}, {args.epochs} epochs, lr {args.lr}, seed {args.seed}"
        print_replay(head, record, log, model, twin, LAYERS)
        if seeds:
            print_classifiers(out, classifier_on_official(written, record["state"], args.lr, out, seeds))


if __name__ == "__main__":
    main()
