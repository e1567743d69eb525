"""Training steps/s of our DG loop against DomainBed's own training code, same data and network.

Run: ``python benchmarks/bench_dg.py --domainbed PATH [--mnist-steps 6] [--mnist-rounds 3]
[--surf-steps 600] [--surf-rounds 12] [--threads 1] [--domainbed-workers 0] [--surf DIR]``
(about two minutes of CPU time, most of it RotatedMNIST; more wall time on a busy machine).

``--domainbed`` is a folder holding DomainBed's source (Gulrajani & Lopez-Paz, ICLR 2021;
``github.com/facebookresearch/DomainBed``, exported outside this repository; nothing of it is
part of this project). Without it, only our side runs.

For ERM and CORAL on ``builtin:rotated-mnist`` (DomainBed's ``MNIST_CNN``) and on
Office-Caltech10 SURF features (``mat-domains:...?normalize=l2``, DomainBed's ``MLP``), one
domain held out (the first), both sides train on the same ``in`` samples of the other domains
with the same hyperparameters and the same initial weights:

- **ours**: the per-step work of :meth:`unseen.protocols.dg.DGProtocol.train` (seeded minibatch
  sampling of every training domain from on-device tensors, then ``update``), steppable in
  blocks; :func:`check_replica` first confirms it reaches exactly the weights of
  ``DGProtocol.train``.
- **DomainBed**: what its ``scripts/train.py`` does per step: ``next`` of the zip of one
  ``InfiniteDataLoader`` per training domain (each over its ``_SplitDataset`` of a
  ``TensorDataset``), the minibatches moved to the device, ``algorithm.update``, the step time
  and losses logged. Hyperparameters are its ``hparams_registry`` defaults for small images
  (``RotatedMNIST``: lr 1e-3, batch 64, no weight decay), which are ours; the registry defines
  ``mlp_*`` for adversarial methods only, so the MLP gets our values (DomainBed's DANN defaults).

The last two columns bound what any implementation could gain: the network's forward and
backward on one step's batch alone (:func:`network_floor_s`, best of up to 20), as steps/s, and
that over DomainBed's steps/s. Where DomainBed already runs near the floor (the MNIST CNN, whose
convolutions are nearly all of a step), no loop can be much faster than it.

Before timing, two checks: the initial weights of both sides are compared, and fresh copies of
both take one update on the same minibatches (the first 16 ``in`` samples of each training
domain), then their weights are compared: a gap at float rounding level says both compute the
same step, so that, from the same weights and minibatches drawn from the same samples, they
reach the same accuracy up to sampling noise.

After a warm-up (a tenth of the steps), each side trains the given number of blocks, alternating
which goes first, so drifts of the shared machine's load hit both. Steps/s is over all timed
blocks; the per-block ratios show the noise. Accuracy is on the whole held-out domain after the
same number of steps, by one evaluator for both. Both run in this process with the same torch
threads (``--threads``, 1 by default: on a shared two-core machine, two intra-op threads slow
small steps down many times as soon as other jobs run) on the same device. DomainBed loads its
small-image datasets with 8 DataLoader worker processes per domain; ``--domainbed-workers`` is 0
by default, its fastest setting on two cores.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from unseen.core.device import resolve_device
from unseen.data.domains import DomainDataset, load_domains
from unseen.methods.registry import DG
from unseen.protocols.dg import DGProtocol

ALGORITHMS = {"erm": "ERM", "coral": "CORAL"}  # ours -> DomainBed's class name
SHARED_HPARAMS = ("lr", "batch_size", "weight_decay", "nonlinear_classifier", "mmd_gamma")
MLP_HPARAMS = ("mlp_width", "mlp_depth", "mlp_dropout")
TEST_ENV = 0
SEED = 0
ONE_STEP_BATCH = 16


class OurLoop:
    """``DGProtocol.train``'s steps without its checkpoints, runnable ``n`` steps at a time."""

    def __init__(self, dataset: DomainDataset, algorithm: str, protocol: DGProtocol) -> None:
        splits = dataset.in_out_split(protocol.trial_seed, protocol.holdout_fraction)
        envs = train_envs(dataset, protocol)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(protocol.seed)
            self.model = DG[algorithm](
                dataset.input_shape, dataset.n_classes, len(envs), {}, protocol.seed, None
            )
        self.inputs = torch.from_numpy(dataset.inputs.copy()).to(self.model.device)
        self.labels = torch.from_numpy(dataset.labels.copy()).to(self.model.device)
        self.batches = torch.Generator().manual_seed(protocol.seed)
        self.train_idx = [torch.as_tensor(splits[k][0]) for k in envs]
        self.losses: dict[str, list[float]] = {}

    def run(self, n: int) -> None:
        batch_size, device = self.model.params["batch_size"], self.model.device
        for _ in range(n):
            minibatches = []
            for idx in self.train_idx:
                rows = idx[torch.randint(len(idx), (batch_size,), generator=self.batches)].to(device)
                minibatches.append((self.inputs[rows], self.labels[rows]))
            self.model.train()
            for key, value in self.model.update(minibatches).items():
                self.losses.setdefault(key, []).append(value)


class DomainBedLoop:
    """DomainBed's ``train.py`` step loop over the same ``in`` samples, ``n`` steps at a time."""

    def __init__(
        self, db: types.SimpleNamespace, dataset: DomainDataset, algorithm, protocol: DGProtocol, workers: int
    ) -> None:
        self.algorithm = algorithm
        self.device = next(algorithm.parameters()).device
        splits = dataset.in_out_split(protocol.trial_seed, protocol.holdout_fraction)
        loaders = []
        for k in train_envs(dataset, protocol):
            members = dataset.domain_indices(k)
            env = TensorDataset(
                torch.from_numpy(dataset.inputs[members]), torch.from_numpy(dataset.labels[members])
            )
            in_split = db.misc._SplitDataset(env, np.searchsorted(members, splits[k][0]).tolist())
            loaders.append(db.InfiniteDataLoader(in_split, None, algorithm.hparams["batch_size"], workers))
        self.minibatches = zip(*loaders, strict=True)
        self.logged: dict[str, list[float]] = {}

    def run(self, n: int) -> None:
        for _ in range(n):
            start = time.time()
            minibatches = [(x.to(self.device), y.to(self.device)) for x, y in next(self.minibatches)]
            values = self.algorithm.update(minibatches, None)
            self.logged.setdefault("step_time", []).append(time.time() - start)
            for key, value in values.items():
                self.logged.setdefault(key, []).append(value)


def train_envs(dataset: DomainDataset, protocol: DGProtocol) -> list[int]:
    return [k for k in range(dataset.n_domains) if k not in protocol.test_envs]


def domainbed_algorithm(db, dataset: DomainDataset, algorithm: str, protocol: DGProtocol, hparams: dict):
    """DomainBed's algorithm with its initial weights drawn right after seeding the global generator,
    as ours are (its ``train.py`` seeds, then builds loaders and algorithm; building the algorithm
    first changes which numbers the initialisation draws, not the work)."""
    torch.manual_seed(protocol.seed)
    cls = db.algorithms.get_algorithm_class(ALGORITHMS[algorithm])
    model = cls(dataset.input_shape, dataset.n_classes, len(train_envs(dataset, protocol)), hparams)
    return model.to(resolve_device(None))


def import_domainbed(folder: Path) -> types.SimpleNamespace:
    """DomainBed's algorithms, hparams registry, split dataset and loader from ``folder``.

    Its ``networks.py`` imports torchvision and timm at module level for the ImageNet backbones,
    which this comparison never builds; where they are not installed, empty modules stand in.
    """
    for name in ("torchvision", "torchvision.models", "timm"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    if not isinstance(getattr(sys.modules["torchvision"], "models", None), types.ModuleType):
        sys.modules["torchvision"].models = sys.modules["torchvision.models"]
    sys.path.insert(0, str(folder))
    from domainbed import algorithms, hparams_registry
    from domainbed.lib import misc
    from domainbed.lib.fast_data_loader import InfiniteDataLoader

    return types.SimpleNamespace(
        algorithms=algorithms, registry=hparams_registry, misc=misc, InfiniteDataLoader=InfiniteDataLoader
    )


def domainbed_hparams(db: types.SimpleNamespace, algorithm: str, ours: dict, features: bool) -> dict:
    """DomainBed's small-image defaults (plus our ``mlp_*`` for features), checked equal to ours."""
    hparams = db.registry.default_hparams(ALGORITHMS[algorithm], "RotatedMNIST")
    if features:
        hparams.update({k: ours[k] for k in MLP_HPARAMS})
    differ = [k for k in SHARED_HPARAMS if (k in hparams or k in ours) and hparams.get(k) != ours.get(k)]
    if differ:
        raise SystemExit(f"{algorithm}: hyperparameters {differ} differ from DomainBed's defaults.")
    return hparams


def parameters_by_layer(network: nn.Module) -> list[torch.Tensor]:
    """Parameters grouped by layer type, each group in module order: the same list for our and
    DomainBed's versions of a network, which declare the same layers in different orders."""
    return [
        p
        for kind in (nn.Conv2d, nn.GroupNorm, nn.Linear)
        for module in network.modules()
        if isinstance(module, kind)
        for p in module.parameters(recurse=False)
    ]


@torch.no_grad()
def weight_gap(ours: nn.Module, theirs: nn.Module) -> float:
    """Largest absolute difference between corresponding parameters (inf if the shapes differ)."""
    a, b = parameters_by_layer(ours), parameters_by_layer(theirs)
    if [p.shape for p in a] != [p.shape for p in b]:
        return float("inf")
    return max(float((p - q).abs().max()) for p, q in zip(a, b, strict=True))


def one_step_gap(db, dataset: DomainDataset, algorithm: str, protocol: DGProtocol, hparams: dict) -> float:
    """``weight_gap`` after one update of fresh models of both sides on the same minibatches (the
    first ``ONE_STEP_BATCH`` ``in`` samples of each training domain): whether both do the same step."""
    ours = OurLoop(dataset, algorithm, protocol)
    theirs = domainbed_algorithm(db, dataset, algorithm, protocol, hparams)
    splits = dataset.in_out_split(protocol.trial_seed, protocol.holdout_fraction)
    minibatches = [
        (ours.inputs[rows], ours.labels[rows])
        for rows in (torch.as_tensor(splits[k][0][:ONE_STEP_BATCH]) for k in train_envs(dataset, protocol))
    ]
    ours.model.update(minibatches)
    theirs.update(minibatches, None)
    return weight_gap(ours.model.network, theirs.network)


@torch.no_grad()
def held_out_accuracy(model: torch.nn.Module, dataset: DomainDataset, chunk: int = 512) -> float:
    members = dataset.domain_indices(TEST_ENV)
    x, y = torch.from_numpy(dataset.inputs[members]), torch.from_numpy(dataset.labels[members])
    device = next(model.parameters()).device
    model.eval()
    correct = sum(
        int((model.predict(xb.to(device)).argmax(1).cpu() == yb).sum())
        for xb, yb in zip(x.split(chunk), y.split(chunk), strict=True)
    )
    model.train()
    return correct / len(members)


def check_replica(steps: int = 3) -> None:
    """Our timed loop must end at ``DGProtocol.train``'s weights (small built-in, a few steps)."""
    data = load_domains("builtin:rotated-digits")
    for algorithm in ALGORITHMS:
        protocol = DGProtocol(test_envs=(TEST_ENV,), steps=steps, checkpoint_freq=steps, seed=SEED)
        reference, _ = protocol.train(data, algorithm)
        loop = OurLoop(data, algorithm, protocol)
        loop.run(steps)
        mine, theirs = loop.model.state_dict(), reference.state_dict()
        if mine.keys() != theirs.keys() or not all(torch.equal(mine[k], theirs[k]) for k in mine):
            raise SystemExit(f"{algorithm}: the benchmark's loop no longer matches DGProtocol.train.")


@dataclass
class Timing:
    """One (data, method) comparison: per-block seconds of each side, held-out accuracies, gaps."""

    data: str
    method: str
    warmup: int
    block: int
    ours_seconds: list[float]
    ours_acc: float
    theirs_seconds: list[float] | None = None
    theirs_acc: float | None = None
    init_gap: float | None = None
    step_gap: float | None = None
    floor_seconds: float = float("nan")

    @property
    def trained(self) -> int:
        return self.warmup + self.block * len(self.ours_seconds)

    def rate(self, seconds: list[float]) -> float:
        return self.block * len(seconds) / sum(seconds)

    def block_ratios(self) -> list[float]:
        """Ours over DomainBed's steps/s in each round (equal block sizes: their time over ours)."""
        return [t / o for o, t in zip(self.ours_seconds, self.theirs_seconds, strict=True)]


def network_floor_s(loop: OurLoop, repeats: int) -> float:
    """Seconds of the network's own work in one step: forward of the whole step's batch (one
    minibatch per training domain, concatenated), cross-entropy and backward, on a copy of our
    network, best of ``repeats``. Any implementation of an ERM step pays at least this (CORAL adds
    its penalty), so ``floor steps/s / DomainBed's steps/s`` bounds the speed-up anyone can reach."""
    network = copy.deepcopy(loop.model.network).train()
    batch_size = loop.model.params["batch_size"]
    rows = torch.cat([idx[:batch_size] for idx in loop.train_idx]).to(loop.model.device)
    x, y = loop.inputs[rows], loop.labels[rows]
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        network.zero_grad(set_to_none=True)
        start = time.perf_counter()
        F.cross_entropy(network(x), y).backward()
        best = min(best, time.perf_counter() - start)
    return best


def bench(
    name: str, dataset: DomainDataset, algorithm: str, steps: int, rounds: int, db, workers: int
) -> Timing:
    protocol = DGProtocol(test_envs=(TEST_ENV,), seed=SEED)
    ours = OurLoop(dataset, algorithm, protocol)
    loops = {"ours": ours}
    if db is not None:
        hparams = domainbed_hparams(db, algorithm, ours.model.params, features=len(dataset.input_shape) == 1)
        step_gap = one_step_gap(db, dataset, algorithm, protocol, hparams)
        theirs = domainbed_algorithm(db, dataset, algorithm, protocol, hparams)
        loops["theirs"] = DomainBedLoop(db, dataset, theirs, protocol, workers)
        init_gap = weight_gap(ours.model.network, theirs.network)
    warmup, block = max(1, steps // 10), max(1, steps // rounds)
    for loop in loops.values():
        loop.run(warmup)
    seconds = {side: [] for side in loops}
    for r in range(rounds):
        for side in list(loops)[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            loops[side].run(block)
            seconds[side].append(time.perf_counter() - start)
    timing = Timing(name, algorithm, warmup, block, seconds["ours"], held_out_accuracy(ours.model, dataset))
    timing.floor_seconds = network_floor_s(ours, repeats=min(block, 20))
    if db is not None:
        timing.theirs_seconds = seconds["theirs"]
        timing.theirs_acc = held_out_accuracy(theirs, dataset)
        timing.init_gap, timing.step_gap = init_gap, step_gap
    return timing


def render(timings: list[Timing]) -> str:
    if all(t.theirs_seconds is None for t in timings):
        lines = ["| data | method | steps (timed) | ours steps/s | held-out acc |", "|---|---|---|---|---|"]
        lines += [
            f"| {t.data} | {t.method} | {t.trained} ({t.trained - t.warmup}) | {t.rate(t.ours_seconds):.2f}"
            f" | {t.ours_acc:.3f} |"
            for t in timings
        ]
        return "\n".join(lines)
    lines = [
        "| data | method | steps (timed) | ours steps/s | DomainBed steps/s | ours / DomainBed |"
        " median of blocks (range) | held-out acc ours | held-out acc DomainBed | initial weight gap |"
        " weight gap after 1 step on the same batch | network floor steps/s | floor / DomainBed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in timings:
        ours, theirs, ratios = t.rate(t.ours_seconds), t.rate(t.theirs_seconds), t.block_ratios()
        lines.append(
            f"| {t.data} | {t.method} | {t.trained} ({t.trained - t.warmup}) | {ours:.2f} | {theirs:.2f} | "
            f"{ours / theirs:.2f} | {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
            f"{t.ours_acc:.3f} | {t.theirs_acc:.3f} | {t.init_gap:.1g} | {t.step_gap:.1g} | "
            f"{1 / t.floor_seconds:.2f} | {1 / t.floor_seconds / theirs:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domainbed", type=Path, default=None, help="folder holding DomainBed's source")
    parser.add_argument("--surf", type=Path, default=Path("/work/shared/data/office-caltech10-surf"))
    parser.add_argument("--mnist-steps", type=int, default=6, help="timed steps on RotatedMNIST (0: skip)")
    parser.add_argument("--mnist-rounds", type=int, default=3, help="alternating blocks per side")
    parser.add_argument("--surf-steps", type=int, default=600, help="timed steps on SURF features (0: skip)")
    parser.add_argument("--surf-rounds", type=int, default=12, help="alternating blocks per side")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both sides)")
    parser.add_argument("--domainbed-workers", type=int, default=0, help="DataLoader workers, DomainBed side")
    args = parser.parse_args()
    if args.domainbed is not None and not (args.domainbed / "domainbed" / "algorithms.py").is_file():
        parser.error(
            f"--domainbed {args.domainbed}: no domainbed/algorithms.py in it; export DomainBed's tree there."
        )
    torch.set_num_threads(args.threads)
    db = import_domainbed(args.domainbed) if args.domainbed else None
    check_replica()
    cases = [("RotatedMNIST", "builtin:rotated-mnist", args.mnist_steps, args.mnist_rounds)]
    if args.surf.is_dir():
        surf = f"mat-domains:{args.surf}?normalize=l2"
        cases.append(("Office-Caltech10 SURF", surf, args.surf_steps, args.surf_rounds))
    else:
        print(f"{args.surf} not found: SURF skipped.")
    cases = [case for case in cases if case[2] > 0]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {resolve_device(None)}; "
        f"held-out domain {TEST_ENV}; seed {SEED}; "
        + (
            f"DomainBed DataLoader workers {args.domainbed_workers}"
            if db
            else "no --domainbed: our side only"
        )
    )
    timings = []
    for name, spec, steps, rounds in cases:
        dataset = load_domains(spec)
        held_out = dataset.domain_names[TEST_ENV]
        print(
            f"{name}: {len(dataset.inputs)} samples {dataset.input_shape}, held out: {held_out}", flush=True
        )
        for algorithm in ALGORITHMS:
            timings.append(bench(name, dataset, algorithm, steps, rounds, db, args.domainbed_workers))
    print(render(timings))


if __name__ == "__main__":
    main()
