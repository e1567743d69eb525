"""CE-GZSL replayed step by step against the authors' code: same data, same initial weights
(generator, critic, embedding network and comparator), the same random draws.

Run: ``python benchmarks/bench_replay_cegzsl.py --official DIR [--epochs 2] [--seed 0]
[--classifier-seeds 0,1,2] [--comparator-grads per-epoch [per-step]] [--data synthetic:CUB?scale=0.1]``.

``DIR`` is the patched Hanzy1996/CE-GZSL checkout of ``bench_official_cegzsl.py`` (whose docstring
lists that patch). :mod:`replay` describes the method. The recorder goes into a copy of
``CE_GZSL.py``: ``start`` once the optimisers exist (the four networks), ``step`` after each
generator step (the penalty weight is fixed), ``end_epoch`` before each epoch's report
(``--eval_every`` is out of reach, so the official code never tests during training); its
``evaluate`` is the official ``generate_syn_feature`` and GZSL ``classifier_embed_contras.CLASSIFIER``
(last classifier epoch) on the final weights.

Ours (``ce-gzsl``, ``dataset_defaults["CUB"]``, ``epochs = N``, the official batch: 2048 scaled to
the data) starts from those weights and its draw sites take the official draws:
``BatchSampler.draw`` the ``randperm`` prefixes of ``next_batch``, ``gaussian`` the
``noise_gen.normal_`` rows, the critic's penalty the ``rand`` mixing weights.

One deliberate difference is left in ours: the official critic step clears the gradients of the
critic and the embedding network but not those of the comparator ``F_ha`` (its ``zero_grad`` runs
once per epoch), so the comparator's Adam steps on the sum of the epoch's critic-step gradients
so far; ours clears all three every step, as the paper's objective reads. ``--comparator-grads
per-epoch`` (the default) gives ours the official clearing for the replay, so the two runs must
agree to rounding; ``per-step`` replays ours as it ships and measures what that difference moves
(both: two replays of ours against one official run).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_official_cegzsl import CUB_TRAINVAL, official_flags  # noqa: E402
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
from unseen.methods.gzsl import ce_gzsl  # noqa: E402
from unseen.methods.gzsl.generative import modules, training  # noqa: E402

EVALUATE = """
def evaluate(g):
    opt, data = g["opt"], g["data"]
    g["netG"].eval()
    for p in g["netMap"].parameters():
        p.requires_grad = False
    X, y = g["generate_syn_feature"](g["netG"], data.unseenclasses, data.attribute, opt.syn_num)
    cls = g["classifier_embed_contras"].CLASSIFIER(
        torch.cat((data.train_feature, X)), torch.cat((data.train_label, y)), g["netMap"], opt.embedSize,
        data, opt.nclass_all, False, opt.classifier_lr, 0.5, 25, opt.syn_num, True,
    )
    return cls.last_seen, cls.last_unseen, cls.last_H
"""
INSERTIONS = (
    (
        "optimizerG = optim.Adam(netG.parameters()",
        1,
        "import replay_recorder\nreplay_recorder.start(G=netG, D=netD, Map=netMap, F=F_ha)\n",
    ),
    ("        optimizerG.step()", 1, "        replay_recorder.step(opt.lambda1)\n"),
    ("    mean_lossG /=", 0, "    replay_recorder.end_epoch(epoch, globals())\n"),
)
# official network -> (attribute of ours, official layer -> ours' layer)
LAYERS: Layers = {
    "G": ("_G", {"fc1": "hidden.0", "fc2": "out.0"}),
    "D": ("_D", {"fc1": "net.0", "fc2": "net.2"}),
    "Map": ("_E", {"fc1": "embed.0", "fc2": "project"}),
    "F": ("_F", {"fc1": "hidden", "fc2": "out"}),
}
METHOD = "ce-gzsl"
CLS = ce_gzsl.CEGZSL
CLEARING = ("per-epoch", "per-step")
NEVER = 10**9
"""``--eval_every`` beyond any run: the official per-epoch test would draw from the recorded stream."""


@contextmanager
def comparator_grads_per_epoch():
    """Ours clears the comparator's gradients once per epoch, as the official code does; the
    critic's and the embedding network's still every critic step."""
    build, train_epoch = CLS._build, CLS._train_epoch

    def build_accumulating(self, train, generator):
        build(self, train, generator)
        cleared = (self._D, self._E)

        def zero_grad(set_to_none: bool = True) -> None:
            for module in cleared:
                module.zero_grad(set_to_none=set_to_none)

        self._opt_d.zero_grad = zero_grad

    def epoch_clearing(self, sampler, generator):
        self._F.zero_grad(set_to_none=True)
        train_epoch(self, sampler, generator)

    CLS._build, CLS._train_epoch = build_accumulating, epoch_clearing
    try:
        yield
    finally:
        CLS._build, CLS._train_epoch = build, train_epoch


@contextmanager
def replayed(draws: Draws):
    """Ours' draw sites take the official draws."""
    saved = (ce_gzsl.gaussian, training.BatchSampler.draw, modules.torch)

    def draw(self, n_batches):  # one independent permutation prefix per critic batch
        return torch.stack([draws.take("randperm", (self.n,))[: self.batch] for _ in range(n_batches)])

    ce_gzsl.gaussian = lambda shape, generator, device: draws.take("normal_", tuple(shape))
    training.BatchSampler.draw = draw
    modules.torch = TorchWithRand(draws)
    try:
        yield
    finally:
        ce_gzsl.gaussian, training.BatchSampler.draw, modules.torch = saved


def official_batch(dataset: ZSLDataset) -> int:
    """The README's CUB batch of 2048, scaled to the data (as ``bench_official_cegzsl.py``)."""
    n = len(dataset.train_set().features)
    return min(2048, n, max(1, round(2048 * n / CUB_TRAINVAL)))


def hparams(epochs: int, batch: int) -> dict:
    return {**GZSL[METHOD].defaults_for("CUB"), "epochs": epochs, "batch_size": batch}


def replay_ours(
    dataset: ZSLDataset, epochs: int, seed: int, out: Path, per_epoch: bool, jitter: float = 0.0
) -> tuple[list, object]:
    """Ours trained on the official draws; the per-step log and the fitted model (no classifier)."""
    record = torch.load(out / f"epoch{epochs - 1}.pt")
    model = GZSL[METHOD](seed=seed, **hparams(epochs, official_batch(dataset)))
    model._fit_classifier = lambda epoch: None
    log: list[dict] = []
    with (
        started_from(CLS, torch.load(out / "init.pt"), LAYERS, jitter, log),
        comparator_grads_per_epoch() if per_epoch else nullcontext(),
        replayed(Draws(record["draws"])),
    ):
        model.fit(dataset.train_set())
    return log, model


def classifier_on_official(dataset: ZSLDataset, final: dict, out: Path, seeds: list[int]) -> list[dict]:
    """Ours' synthesis and final classifier on the official final weights, once per official
    classifier seed, each on that run's draws."""
    results = []
    with started_from(CLS, final, LAYERS):
        for seed in seeds:
            model = GZSL[METHOD](seed=seed, **hparams(1, official_batch(dataset)))
            model._train_epoch = lambda sampler, generator: None
            replay_classifier(model, torch.load(out / f"classifier_draws{seed}.pt"))
            model.fit(dataset.train_set())
            results.append({"seed": seed, "SUH": test_accuracies(model, dataset)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched Hanzy1996/CE-GZSL checkout")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the official run's --manualSeed")
    parser.add_argument("--classifier-seeds", default="", help="e.g. 0,1,2 (empty: skip)")
    parser.add_argument(
        "--comparator-grads",
        choices=CLEARING,
        nargs="+",
        default=["per-epoch"],
        help="ours clears the comparator's gradients as the official code (per-epoch) or as it ships "
        "(per-step); each given replays ours against the one official run",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data)
    seeds = [int(s) for s in args.classifier_seeds.split(",") if s]

    def flags(data: Path) -> list[str]:
        return official_flags(dataset, official_batch(dataset), args.epochs, NEVER, args.seed) + [
            "--dataroot",
            str(data),
        ]

    recorded = official_recorded(
        args.official, "CE_GZSL.py", INSERTIONS, EVALUATE, dataset, args.seed, args.classifier_seeds, flags
    )
    with recorded as (written, out):
        record = torch.load(out / f"epoch{args.epochs - 1}.pt")
        for clearing in args.comparator_grads:
            per_epoch = clearing == "per-epoch"
            log, model = replay_ours(written, args.epochs, args.seed, out, per_epoch)
            _, twin = replay_ours(written, args.epochs, args.seed, out, per_epoch, jitter=1e-7)
            head = (
                f"{METHOD}, {args.data}, {args.epochs} epochs, seed {args.seed}, "
                f"ours clearing the comparator's gradients {clearing}"
            )
            print_replay(head, record, log, model, twin, LAYERS)
            print()
        if seeds:
            print_classifiers(out, classifier_on_official(written, record["state"], out, seeds))


if __name__ == "__main__":
    main()
