"""TF-VAEGAN and f-VAEGAN-D2 replayed step by step against the authors' code: same data, same
initial weights, the same random draws.

Run: ``python benchmarks/bench_replay_vaegan.py --official DIR --method tf-vaegan|f-vaegan
[--epochs 2] [--seed 0] [--classifier-seeds 0,1,2,3,4,5] [--data synthetic:CUB?scale=0.1]``.

``DIR`` is the patched akshitac8/tfvaegan checkout of ``bench_official_vaegan.py`` (whose docstring
lists that patch). A side-by-side of final H over seeds cannot separate a real difference from
the spread of the random streams at a budget a CPU affords (a seed moves H by several points
there); this replay can (:mod:`replay` describes the method). The recorder goes into a copy of
``train_images.py``: ``start`` after the optimisers are built (the five networks), ``step``
after each generator step (with the adaptive penalty weight), ``end_epoch`` before each epoch's
classifier; its ``evaluate`` is the official ``generate_syn_feature`` and GZSL ``CLASSIFIER``
(last classifier epoch) on the final weights.

Ours then fits with the same hyperparameters (``dataset_defaults["CUB"]``, ``epochs = N``) from
the official initial weights, and each of its draw sites takes the official draw instead of its
own stream: ``BatchSampler.draw`` the ``randperm`` prefixes (one independent permutation per
critic batch, as the official sampler), ``gaussian`` the ``randn`` rows (the encoded-noise
``eps`` of each critic step and generator step), the critic's penalty the ``rand`` mixing
weights. Every replayed draw is checked for shape, so a change in either side's draw order
fails loudly instead of comparing different computations. The table prints, after every
generator step, both sides' penalty weight and the relative difference of each network's
weight norm; then the relative difference of every final weight tensor beside the noise floor.

With ``--classifier-seeds``, ours' synthesis and final classifier run on the official final
weights once per seed too: the test S / U / H of both pipelines on the same generator, mean and
spread over the seeds (their random streams differ, so this part is statistical).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_official_vaegan import official_command  # noqa: E402
from replay import (  # noqa: E402
    Draws,
    Layers,
    TorchWithRand,
    load,
    networks,
    norm,
    official_recorded,
    print_classifiers,
    print_replay,
    renamed,
    replay_classifier,
    test_accuracies,
)
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.methods.gzsl import f_vaegan  # noqa: E402
from unseen.methods.gzsl.generative import modules, training  # noqa: E402

EVALUATE = """
def evaluate(g):
    opt, data = g["opt"], g["data"]
    with torch.no_grad():
        X, y = g["generate_syn_feature"](
            g["netG"], data.unseenclasses, data.attribute, opt.syn_num, netF=g["netF"], netDec=g["netDec"]
        )
    cls = g["classifier"].CLASSIFIER(
        torch.cat((data.train_feature, X)), torch.cat((data.train_label, y)), data, opt.nclass_all,
        False, opt.classifier_lr, 0.5, 25, opt.syn_num, generalized=True,
        netDec=None if opt.no_dec_features else g["netDec"], dec_size=opt.attSize, dec_hidden_size=4096,
    )
    return cls.last
"""
# (start of a line of the official train_images.py, lines after it, code inserted there)
INSERTIONS = (
    (
        "optimizerDec       = optim.Adam(",
        1,
        "import replay_recorder\nreplay_recorder.start(E=netE, G=netG, D=netD, F=netF, Dec=netDec)\n",
    ),
    # after the generator step's last statement: `if ... not opt.freeze_dec:` and its one-line body
    (
        "            if opt.recons_weight > 0 and not opt.freeze_dec:",
        2,
        "            replay_recorder.step(opt.lambda1)\n",
    ),
    ("    print('[%d/%d]  Loss_D", 0, "    replay_recorder.end_epoch(epoch, globals())\n"),
)
# official network -> (attribute of ours, official layer -> ours' layer)
LAYERS: Layers = {
    "E": ("_E", {"fc1": "hidden.0", "fc3": "hidden.2", "linear_means": "mu", "linear_log_var": "logvar"}),
    "G": ("_G", {"fc1": "hidden.0", "fc3": "out.0"}),
    "D": ("_D", {"fc1": "net.0", "fc2": "net.2"}),
    "F": ("_fb", {"fc1": "net.0", "fc2": "net.2"}),
    "Dec": ("_dec", {"fc1": "hidden.0", "fc3": "out"}),
}


@contextmanager
def started_from(weights: dict, jitter: float = 0.0):
    """Ours' networks start from the official ``weights`` (optionally jittered)."""
    build = f_vaegan.FVAEGAN._build

    def build_from_official(self, train, generator):
        build(self, train, generator)
        for net, module in networks(self, LAYERS):
            load(module, renamed(net, weights[net], LAYERS), jitter)

    f_vaegan.FVAEGAN._build = build_from_official
    try:
        yield
    finally:
        f_vaegan.FVAEGAN._build = build


@contextmanager
def replayed(draws: Draws):
    """Ours' draw sites take the official draws; yields the per-generator-step log."""
    log: list[dict] = []
    saved = (f_vaegan.FVAEGAN._generator_step, f_vaegan.gaussian, training.BatchSampler.draw, modules.torch)
    generator_step = saved[0]

    def logged_step(self, *args):
        generator_step(self, *args)
        log.append({"lam": float(self._gp_weight.value), **{k: norm(m) for k, m in networks(self, LAYERS)}})

    def draw(self, n_batches):  # one independent permutation prefix per critic batch
        return torch.stack([draws.take("randperm", (self.n,))[: self.batch] for _ in range(n_batches)])

    f_vaegan.FVAEGAN._generator_step = logged_step
    f_vaegan.gaussian = lambda shape, generator, device: draws.take("randn", tuple(shape))
    training.BatchSampler.draw = draw
    modules.torch = TorchWithRand(draws)
    try:
        yield log
    finally:
        f_vaegan.FVAEGAN._generator_step, f_vaegan.gaussian, training.BatchSampler.draw, modules.torch = saved


def hparams(method: str, epochs: int) -> dict:
    return {**GZSL[method].defaults_for("CUB"), "epochs": epochs}


def replay_ours(
    dataset: ZSLDataset, method: str, epochs: int, seed: int, out: Path, jitter: float = 0.0
) -> tuple[list, object]:
    """Ours trained on the official draws; the per-step log and the fitted model (no classifier)."""
    record = torch.load(out / f"epoch{epochs - 1}.pt")
    train = dataset.train_set()
    n = len(train.features)
    # the official per-epoch classifiers draw permutations of their own (larger) training sets
    draws = Draws(record["draws"], keep=lambda kind, t: kind != "randperm" or len(t) == n)
    model = GZSL[method](seed=seed, **hparams(method, epochs))
    model._fit_classifier = lambda epoch: None
    with started_from(torch.load(out / "init.pt"), jitter), replayed(draws) as log:
        model.fit(train)
    return log, model


def classifier_on_official(
    dataset: ZSLDataset, method: str, final: dict, out: Path, seeds: list[int]
) -> list[dict]:
    """Ours' synthesis and final classifier on the official final weights, once per official
    classifier seed, each on that run's draws."""
    results = []
    with started_from(final):
        for seed in seeds:
            model = GZSL[method](seed=seed, **hparams(method, 1))
            model._train_epoch = lambda sampler, generator: None
            replay_classifier(model, torch.load(out / f"classifier_draws{seed}.pt"))
            model.fit(dataset.train_set())
            results.append({"seed": seed, "SUH": test_accuracies(model, dataset)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched akshitac8/tfvaegan checkout")
    parser.add_argument("--method", choices=("tf-vaegan", "f-vaegan"), default="tf-vaegan")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the official run's --manualSeed")
    parser.add_argument("--classifier-seeds", default="", help="e.g. 0,1,2,3,4,5 (empty: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data)
    seeds = [int(s) for s in args.classifier_seeds.split(",") if s]

    def flags(data: Path) -> list[str]:
        return official_command(dataset, args.method, data, args.epochs, args.seed)[2:]

    recorded = official_recorded(
        args.official,
        "train_images.py",
        INSERTIONS,
        EVALUATE,
        dataset,
        args.seed,
        args.classifier_seeds,
        flags,
    )
    with recorded as (written, out):
        log, model = replay_ours(written, args.method, args.epochs, args.seed, out)
        _, twin = replay_ours(written, args.method, args.epochs, args.seed, out, jitter=1e-7)
        record = torch.load(out / f"epoch{args.epochs - 1}.pt")
        head = f"{args.method}, {args.data}, {args.epochs} epochs, seed {args.seed}"
        print_replay(head, record, log, model, twin, LAYERS)
        if seeds:
            print_classifiers(out, classifier_on_official(written, args.method, record["state"], out, seeds))


if __name__ == "__main__":
    main()
