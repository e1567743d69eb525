"""CuMix beside the authors' code, seed by seed, on the same data and the same budget.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_official_cumix.py --official DIR [--data SPEC]
[--targets 0,1,2,3] [--seeds 0,1,2,3,4] [--config configs/zsl+dg/painting.json] [--iters N|min]
[--same-init] [--epoch-curriculum] [--json FILE]``.

The official code (Mancini, Akata, Ricci & Caputo, *Towards Recognizing Unseen Categories in Unseen
Domains*, ECCV 2020; github.com/mancinimassimiliano/CuMix, commit
8a1cf3a5071e12ca4eee0fcf2e55edb9fdef48f4) is checked out OUTSIDE this repository (never commit it);
``--official DIR`` names that checkout. Its files are used unmodified; this script imports its
``methods.py`` (class ``CuMix``), ``data/domain_dataset.py`` (the balanced sampler its ``fit``
builds) and ``utils.py`` (``test``, its ZSL evaluation) in-process and replaces, before or right
after importing them:

* ``torchvision`` (not installed here; used only for the ResNet backbones and the image dataset
  classes, neither of which runs here): stub modules in ``sys.modules`` whose ``resnet18``/
  ``resnet50`` raise if called.
* ``DataLoader`` in ``methods`` and ``utils``: the same loader with ``num_workers=0`` (the code asks
  for 8 worker processes; the batches are the same, in the main process).
* ``methods.RG``, the module's unseeded numpy generator (partners' domains, within-domain draws,
  mixing ratios): ``np.random.default_rng(seed)``; python's ``random`` (the sampler's shuffles) and
  torch's global generator (the projection's initialisation, the partner permutations) are seeded
  with ``seed`` too. The official ``main.py`` seeds nothing.
* On images only: ``methods.project_featurizer`` (:data:`BACKBONE`), the name ``CuMix`` evaluates
  ``configs["backbone"]`` to, returns a copy of our initial DG featurizer for the input shape (on 8
  × 8 digits DomainBed's small CNN, 128 features) instead of an ImageNet ResNet; ``CuMix`` then sets
  its ``fc`` to the identity (an unused extra module) as it does for the ResNet.

The official side is ``main.py``'s ZSL+DG loop (``--zsl --dg``) without its DomainNet dataset and
distributed launch: ``CuMix(seen, unseen, attributes, configs, device='cpu')`` then ``fit`` once per
epoch, scored after the last epoch (``main.py`` scores after every epoch and keeps the last; scoring
changes no weight). ``configs`` is ``--config`` (a file of the checkout; default ``painting.json``:
``mixup_feat_w`` 1, ``mixup_beta`` 2, ``mixup_step`` 2, ``step`` 6, 8 epochs, batch 120, lr 0.001,
weight decay 5e-5, Nesterov) with what ``main.py`` adds for ZSL+DG (``semantic_w`` 1, ``freeze_bn``
False, ``multi_domain`` True) and, on feature vectors, ``backbone = "none"`` (the official
backbone-less mode: identity backbone, no image-level mixup; ``input_dim`` = the feature width), on
images ``backbone = "project_featurizer"`` (the config's ``lr_net`` 1e-4 for it, ``mixup_img_w``
0.001; ``input_dim`` = its output width), ``domains_per_batch`` = the number of source domains (the
DomainNet configs put all 5 sources in every batch: 5; here 3, so a batch of 120 is 40 samples of
each) and ``iters_per_epoch = --iters``. The config's ``"min"`` (one pass over the smallest source)
gives 2 steps per epoch on Office-Caltech10 (82 dslr training samples at 40 a step; 4 with dslr held
out), 16 steps in all, too few to train the projection at lr 0.001; an integer, which the official
sampler accepts, sets the steps per epoch (it cycles each domain's shuffled list), the same on both
sides. Each epoch, ``fit`` builds the balanced sampler (each source's samples shuffled, one block of
40 per source per batch), the curriculum's ``beta`` and within-domain probability from the epoch
number, and a fresh SGD (momentum 0.9, Nesterov, weight decay, lr × 0.1^(epoch // step)) on the
projection.

Ours: ``JOINT["cumix"].for_classes(seen semantics)`` on input shape ``(d,)`` with
``featurizer="linear"`` (no featurizer network: the identity, as the official backbone-less mode),
``mixup_img_w = 0`` (the official code has no image mixup without a backbone; on identity features
an image mix would be a second feature mix), ``mixup_feat_w``/``mixup_beta`` of the config and
``mixup_ramp = mixup_step × iters``: our curriculum ramps per step where the official one is
constant over each epoch at its value at the epoch's start (ours is ahead of it within each epoch by
at most one epoch's worth). ``--epoch-curriculum`` sets ours to the official per-epoch values
instead, by setting ``steps_done`` to ``epoch × iters`` before each step (our update and curriculum
code unchanged). On images ours keeps its DG featurizer (the one the official side is given a copy
of: the same initial weights), the config's ``mixup_img_w`` and no ``featurizer`` setting.
``--same-init``: ours' projection starts from the official one's initial weights (each side
otherwise initialises it from its own seeded generator, both N(0, 0.02²) with a zero bias), so that
only the random draws differ. Its own ``update`` does each step on one minibatch per source domain
of ``batch_size // domains`` samples, drawn like the official sampler (each epoch, each source's
training rows shuffled and cut into consecutive blocks, the list repeated when exhausted), with the
same number of steps per epoch and of epochs. Benchmark setting, not a change to the library:
``model.optimizer`` (DomainBed's Adam by default) is replaced each epoch by the official
optimization, SGD with momentum 0.9, Nesterov, the config's weight decay and lr × 0.1^(epoch //
step) for the projection (``lr_net`` × the same factor for a featurizer with parameters, as the
official second optimizer).

Data: ``--data`` (default Office-Caltech10 EfficientNet-Lite0 features with MiniLM text class
semantics, docs/gzsl-dg.md; any ``zsl-domains`` spec, e.g. ``builtin:rotated-digits-zsl``) and, per
target domain and seed, ``gzsl-dg-v1``'s split of that seed: training rows = the seen-class training
rows (``fit``) of the other domains, test = every sample of the target domain (seen and unseen
classes). Both sides get the same arrays. Both models score the test samples against every class's
unit-norm semantics (for the official model ``semantic_projector(backbone(x))`` dotted with the rows
its ``UnitClassifier`` would hold for all classes); S, U, H and ZSL come from
``unseen.metrics.accuracy`` (per-class mean accuracies), AUSUC and H* (the best H along the
seen-unseen curve, i.e. calibrated stacking with the constant chosen on the test samples: an oracle,
the same on both sides) from ``unseen.metrics.calibration``. The official ``utils.test`` (ZSL: the
target's unseen classes, the unseen-only classifier) is run too and must equal our ZSL of the
official scores. The two sides take turns, one torch thread each.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from unseen.data.zsl_domains import load_zsl_domains
from unseen.methods import JOINT
from unseen.methods.joint.cumix import unit_rows
from unseen.metrics.accuracy import gzsl_accuracies, zsl_accuracy
from unseen.metrics.calibration import seen_unseen_curve
from unseen.protocols.gzsl_dg import GZSLDGProtocol

DATA = "text:zsl-domains:examples/office-caltech10-zsl.toml?data=npz-domains:/tmp/oc10-effnet.npz"
METRICS = ("S", "U", "H", "ZSL", "AUSUC", "H*")
BACKBONE = "project_featurizer"
"""The name the official ``CuMix`` evaluates ``configs["backbone"]`` to on images: set in its
module to a function returning a copy of our initial featurizer."""


def import_official(official: Path) -> types.SimpleNamespace:
    """The official ``methods``, ``utils`` and sampler modules, with the replacements the
    docstring lists (torchvision stubbed, data loading in the main process)."""

    def missing(*args, **kwargs):
        raise RuntimeError("torchvision is stubbed: the benchmark runs the backbone-less mode only")

    stubs = {
        "torchvision": {},
        "torchvision.models": {},
        "torchvision.models.resnet": {"resnet18": missing, "resnet50": missing},
        "torchvision.datasets": {},
        "torchvision.datasets.folder": {"default_loader": missing},
        "torchvision.transforms": {},
    }
    for name, attrs in stubs.items():
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    sys.path.insert(0, str(official))
    methods = importlib.import_module("methods")
    utils = importlib.import_module("utils")
    sampler = importlib.import_module("data.domain_dataset")
    if not Path(methods.__file__).resolve().is_relative_to(official):
        raise RuntimeError(f"imported {methods.__file__}, not the official checkout {official}")

    def in_process(*args, **kwargs):
        kwargs["num_workers"] = 0
        return torch.utils.data.DataLoader(*args, **kwargs)

    methods.DataLoader = utils.DataLoader = in_process
    return types.SimpleNamespace(methods=methods, utils=utils, sampler=sampler)


class OfficialData(torch.utils.data.Dataset):
    """The interface of the official ``DomainDataset``: items ``(features, attributes, domain,
    label)``, ``get_domains()`` and ``classes`` (the number of classes its labels index)."""

    def __init__(self, x: np.ndarray, domains: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
        self.x = torch.from_numpy(x).float()
        self.domain_id = torch.from_numpy(domains).long()
        self.labels = torch.from_numpy(labels).long()
        self.n_doms = int(domains.max()) + 1
        self.classes = n_classes

    def get_domains(self):
        return self.domain_id, self.n_doms

    def __getitem__(self, i):
        return self.x[i], 0, self.domain_id[i], self.labels[i]

    def __len__(self) -> int:
        return len(self.labels)


def task_arrays(data, target: int, seed: int) -> dict:
    """The training rows (seen classes of the other domains, ``gzsl-dg-v1``'s ``fit`` part) and the
    target domain's samples, with global class ids and source numbers 0..n-1."""
    split = GZSLDGProtocol(test_env=target, seed=seed).split(data)
    samples = data.samples
    sources = [k for k in range(data.n_domains) if k != target]
    test = np.concatenate([split.test_seen, split.test_unseen])
    return {
        "x": samples.inputs[split.fit].astype(np.float32),
        "y": samples.labels[split.fit],
        "d": np.searchsorted(sources, samples.domains[split.fit]),
        "test_x": samples.inputs[test].astype(np.float32),
        "test_y": samples.labels[test],
        "sources": sources,
    }


def scores_report(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray) -> dict[str, float]:
    """S, U, H over all classes and ZSL among the unseen classes, per-class mean accuracies; the
    area under the seen-unseen curve (percent) and the best H along it (calibrated stacking with
    the constant chosen on the test samples: an oracle, the same rule on both sides)."""
    is_seen = seen[labels]
    out = gzsl_accuracies(scores[is_seen], labels[is_seen], scores[~is_seen], labels[~is_seen])
    out["ZSL"] = zsl_accuracy(scores[~is_seen], labels[~is_seen], np.flatnonzero(~seen))
    curve = seen_unseen_curve(scores, labels, seen)
    out["AUSUC"] = 100.0 * curve.ausuc
    out["H*"] = curve.best_h()[0]
    return out


def official_configs(official: Path, config: str, n_sources: int, iters, images: bool) -> dict:
    """The config file with ``main.py``'s ZSL+DG settings and this benchmark's: the backbone-less
    mode on feature vectors, :data:`BACKBONE` on images (``input_dim`` is set by the caller)."""
    configs = json.loads((official / config).read_text())
    configs.update(semantic_w=1.0, freeze_bn=False, multi_domain=True)  # main.py, --zsl --dg
    configs.update(backbone=BACKBONE if images else "none")
    configs.update(domains_per_batch=n_sources, iters_per_epoch=iters)
    return configs


def new_official(
    off,
    configs: dict,
    arrays: dict,
    semantics: np.ndarray,
    seen: np.ndarray,
    seed: int,
    backbone: torch.nn.Module | None = None,
    data_class: type | None = None,
):
    """The official ``CuMix`` and its training data (``data_class``, default :class:`OfficialData`),
    after seeding every generator it draws from with ``seed``."""
    if backbone is not None:
        setattr(off.methods, BACKBONE, lambda pretrained: copy.deepcopy(backbone))
    random.seed(seed)
    torch.manual_seed(seed)
    off.methods.RG = np.random.default_rng(seed)
    seen_ids, unseen_ids = np.flatnonzero(seen), np.flatnonzero(~seen)
    train = (data_class or OfficialData)(
        arrays["x"], arrays["d"], local_labels(arrays["y"], seen_ids, len(seen)), len(seen_ids)
    )
    method = off.methods.CuMix(
        seen_classes=torch.from_numpy(seen_ids),
        unseen_classes=torch.from_numpy(unseen_ids),
        attributes=torch.from_numpy(semantics.copy()),  # its UnitClassifier normalises rows in place
        configs=configs,
        device="cpu",
    )
    return method, train


def official_scores(method, x: np.ndarray, semantics: np.ndarray) -> np.ndarray:
    """The official model's score of every class: its semantic embedding against each class's
    unit-norm semantics (the rows its ``UnitClassifier`` would hold for all classes)."""
    with torch.no_grad():
        return (
            method.semantic_projector(method.backbone(torch.from_numpy(x))) @ unit_rows(semantics).T
        ).numpy()


def run_official(
    off,
    configs: dict,
    arrays: dict,
    semantics: np.ndarray,
    seen: np.ndarray,
    seed: int,
    backbone: torch.nn.Module | None = None,
) -> dict:
    t = time.perf_counter()
    method, train = new_official(off, configs, arrays, semantics, seen, seed, backbone)
    unseen_ids = np.flatnonzero(~seen)
    init = {k: v.detach().clone() for k, v in method.semantic_projector.state_dict().items()}
    losses = [method.fit(train) for _ in range(configs["epochs"])]
    train_s = time.perf_counter() - t
    out = scores_report(official_scores(method, arrays["test_x"], semantics), arrays["test_y"], seen)
    is_unseen = ~seen[arrays["test_y"]]
    zsl_test = OfficialData(
        arrays["test_x"][is_unseen],
        np.zeros(int(is_unseen.sum()), dtype=np.int64),
        local_labels(arrays["test_y"][is_unseen], unseen_ids, len(seen)),
        len(unseen_ids),
    )
    out["official_test_zsl"] = 100.0 * off.utils.test(method, zsl_test, device="cpu", zsl=True)
    if abs(out["official_test_zsl"] - out["ZSL"]) > 1e-3:
        raise RuntimeError(f"official utils.test ZSL {out['official_test_zsl']} != ours {out['ZSL']}")
    out["final_losses"] = [float(v) for v in losses[-1]]
    out["train_s"] = train_s
    out["wall_s"] = time.perf_counter() - t
    return out, init


def balanced_batches(rng: np.random.Generator, domains: np.ndarray, per_domain: int, iters: int):
    """One epoch of the official sampler's batching: each source's rows shuffled, cut into
    consecutive blocks of ``per_domain`` (the list repeated when exhausted); ``iters`` steps of one
    block per source."""
    blocks = []
    for d in range(int(domains.max()) + 1):
        rows = rng.permutation(np.flatnonzero(domains == d))
        rows = np.tile(rows, -(-iters * per_domain // len(rows)))
        blocks.append(rows[: iters * per_domain].reshape(iters, per_domain))
    return [[b[i] for b in blocks] for i in range(iters)]


def build_ours(
    configs: dict,
    semantics: np.ndarray,
    seen: np.ndarray,
    n_dom: int,
    input_shape: tuple[int, ...],
    iters: int,
    seed: int,
):
    """Our CuMix for the seen classes at the config's loss weights and curriculum: on feature
    vectors backbone-less (``featurizer="linear"``, no image mixup), on images with the DG
    featurizer of their shape and the config's image-mixup weight."""
    images = len(input_shape) > 1
    hparams = {
        "semantic_w": configs["semantic_w"],
        "mixup_feat_w": configs["mixup_feat_w"],
        "mixup_img_w": configs["mixup_img_w"] if images else 0.0,
        "mixup_beta": configs["mixup_beta"],
        "mixup_ramp": configs["mixup_step"] * iters,
    }
    if not images:
        hparams["featurizer"] = "linear"
    classes = JOINT["cumix"].for_classes(semantics[seen])
    return classes(tuple(input_shape), int(seen.sum()), n_dom, hparams, seed=seed, device="cpu")


def official_sgd(model, configs: dict, epoch: int) -> None:
    """The official optimization of one epoch, given to our model (a benchmark setting): the
    projection at ``lr``, the backbone (if it has parameters) at ``lr_net``, both decayed."""
    scale = 0.1 ** (epoch // configs["step"])
    groups = [{"params": list(model.projector.parameters()), "lr": configs["lr"] * scale}]
    backbone = list(model.backbone.parameters())
    if backbone:
        groups.append({"params": backbone, "lr": configs["lr_net"] * scale})
    model.optimizer = torch.optim.SGD(
        groups, momentum=0.9, weight_decay=configs["weight_decay"], nesterov=configs["nesterov"]
    )


def train_ours(model, configs: dict, x, y, epoch_batches, iters: int, epoch_curriculum: bool) -> list[dict]:
    """``configs["epochs"]`` epochs of our ``update`` on the blocks ``epoch_batches(epoch)`` gives
    (per step, one index array per source), a fresh official SGD each epoch; the step logs."""
    logs = []
    for epoch in range(configs["epochs"]):
        official_sgd(model, configs, epoch)
        model.train()
        for batch in epoch_batches(epoch):
            if epoch_curriculum:
                model.steps_done = epoch * iters
            logs.append(model.update([(x[idx], y[idx]) for idx in batch]))
    return logs


def ours_scores(model, test_x: np.ndarray, semantics: np.ndarray) -> np.ndarray:
    """Our model's scores of every class (its embedding against each class's unit semantics)."""
    model.eval()
    with torch.no_grad():
        return (model.featurizer(torch.from_numpy(test_x)) @ unit_rows(semantics).T).numpy()


def local_labels(labels: np.ndarray, ids: np.ndarray, n_classes: int) -> np.ndarray:
    """Global class ids as positions in ``ids`` (-1 for the others)."""
    local = np.full(n_classes, -1)
    local[ids] = np.arange(len(ids))
    return local[labels]


def run_ours(
    configs: dict,
    arrays: dict,
    semantics: np.ndarray,
    seen: np.ndarray,
    seed: int,
    epoch_curriculum: bool,
    init: dict | None = None,
    backbone: dict | None = None,
) -> dict:
    n_dom = int(arrays["d"].max()) + 1
    per_domain = configs["batch_size"] // n_dom
    iters = steps_per_epoch(configs, arrays["d"])
    x = torch.from_numpy(arrays["x"])
    y = torch.from_numpy(local_labels(arrays["y"], np.flatnonzero(seen), len(seen)))
    rng = np.random.default_rng([seed, 0xB7])
    t = time.perf_counter()
    model = build_ours(configs, semantics, seen, n_dom, x.shape[1:], iters, seed)
    if init is not None:
        model.projector.load_state_dict(init)
    if backbone is not None:
        model.backbone.load_state_dict(backbone)
    logs = train_ours(
        model,
        configs,
        x,
        y,
        lambda _: balanced_batches(rng, arrays["d"], per_domain, iters),
        iters,
        epoch_curriculum,
    )
    train_s = time.perf_counter() - t
    out = scores_report(ours_scores(model, arrays["test_x"], semantics), arrays["test_y"], seen)
    last = logs[-iters:]
    out["final_losses"] = [
        float(np.mean([s[k] for s in last])) for k in ("semantic", "mixup_img", "mixup_feat")
    ]
    out["train_s"] = train_s
    out["wall_s"] = time.perf_counter() - t
    return out


def steps_per_epoch(configs: dict, domains: np.ndarray) -> int:
    """The official sampler's ``iters``: ``"min"`` is the smallest source's size // block size."""
    per_domain = configs["batch_size"] // configs["domains_per_batch"]
    if configs["iters_per_epoch"] == "min":
        return int(np.bincount(domains).min()) // per_domain
    return int(configs["iters_per_epoch"])


def setup(official_dir: Path, spec: str):
    """One torch thread; the official checkout imported; the data, its seen mask and semantics."""
    torch.set_num_threads(1)
    official = official_dir.resolve()
    data = load_zsl_domains(spec)
    return (
        official,
        import_official(official),
        data,
        data.classes.seen,
        data.classes.semantics.astype(np.float32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the official CuMix checkout")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--targets", default="0,1,2,3", help="held-out domain numbers")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--config", default="configs/zsl+dg/painting.json", help="official config file")
    parser.add_argument("--iters", default="50", help="steps per epoch on both sides: an integer or min")
    parser.add_argument("--epoch-curriculum", action="store_true", help="ours at the per-epoch values")
    parser.add_argument(
        "--same-init", action="store_true", help="ours starts from the official initial projection"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    args = parser.parse_args()

    official, off, data, seen, semantics = setup(args.official, args.data)
    targets = [int(t) for t in args.targets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    iters = args.iters if args.iters == "min" else int(args.iters)
    input_shape = tuple(data.samples.input_shape)
    images = len(input_shape) > 1
    configs = official_configs(official, args.config, data.n_domains - 1, iters, images)
    configs["input_dim"] = build_ours(configs, semantics, seen, 1, input_shape, 1, 0).backbone.n_outputs
    print(
        f"## CuMix vs the official code: {data.source} ({data.hash}), inputs {input_shape}, "
        f"{'our initial featurizer as the official backbone' if images else 'no backbone'} "
        f"({configs['input_dim']}-d features), "
        f"{semantics.shape[1]}-d semantics, {int(seen.sum())} + {int((~seen).sum())} classes, "
        f"config {args.config}, iters_per_epoch {iters}, "
        f"{'per-epoch' if args.epoch_curriculum else 'per-step'} curriculum for ours"
        f"{', ours from the official initial projection' if args.same_init else ''}\n"
    )
    print(
        "| target | seed | run | steps | time (s) | "
        + " | ".join(METRICS)
        + " | final losses sem / feat-mix |"
    )
    print("|---|---|---|---|---|" + "---|" * (len(METRICS) + 1))
    results = []
    for target in targets:
        for seed in seeds:
            arrays = task_arrays(data, target, seed)
            steps = configs["epochs"] * steps_per_epoch(configs, arrays["d"])
            backbone = None
            if images:  # our initial featurizer, on both sides
                backbone = build_ours(configs, semantics, seen, 1, input_shape, 1, seed).backbone
            theirs, init = run_official(off, configs, arrays, semantics, seen, seed, backbone)
            ours = run_ours(
                configs,
                arrays,
                semantics,
                seen,
                seed,
                args.epoch_curriculum,
                init if args.same_init else None,
                None if backbone is None else backbone.state_dict(),
            )
            for run, r in (("official", theirs), ("ours", ours)):
                losses = r["final_losses"]
                print(
                    f"| {data.domain_names[target]} | {seed} | {run} | {steps} | {r['wall_s']:.1f} | "
                    + " | ".join(f"{r[k]:.1f}" for k in METRICS)
                    + f" | {losses[0]:.3f} / {losses[2]:.3f} |",
                    flush=True,
                )
            results.append({"target": target, "seed": seed, "official": theirs, "ours": ours})
    print(f"\nper target over seeds {seeds} (mean ± std), ours − official per seed:\n")
    print("| target | run | " + " | ".join(METRICS) + " | time (s) |")
    print("|---|---|" + "---|" * (len(METRICS) + 1))
    for target in [*targets, None]:
        rows = [r for r in results if target is None or r["target"] == target]
        name = "all" if target is None else data.domain_names[target]
        for run in ("official", "ours", "gap"):
            if run == "gap":
                cells = [np.array([r["ours"][k] - r["official"][k] for r in rows]) for k in METRICS]
                text = [f"{v.mean():+.1f} ± {v.std():.1f}" for v in cells]
                print(f"| {name} | ours − official | " + " | ".join(text) + " | |")
                continue
            cells = [np.array([r[run][k] for r in rows]) for k in METRICS]
            wall = np.mean([r[run]["wall_s"] for r in rows])
            text = [f"{v.mean():.1f} ± {v.std():.1f}" for v in cells]
            print(f"| {name} | {run} | " + " | ".join(text) + f" | {wall:.1f} |")
    if args.json is not None:
        meta = {key: str(value) for key, value in vars(args).items()}
        args.json.write_text(json.dumps({"args": meta, "configs": configs, "results": results}))


if __name__ == "__main__":
    main()
