"""CuMix replayed step by step against the authors' code: the same initial weights, the same
minibatches, the same partners and mixing ratios on both sides.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_replay_cumix.py --official DIR [--data SPEC]
[--target 1] [--seed 0] [--config configs/zsl+dg/painting.json] [--iters 50]``.

The official checkout (mancinimassimiliano/CuMix 8a1cf3a, outside this repository) is imported as
``bench_official_cumix.py`` imports it (its docstring lists the replacements: torchvision stubbed,
data loading in the main process, the module's generators seeded, on images our initial DG
featurizer as its backbone) and runs the same ZSL+DG training on the same task (backbone-less on
feature vectors, end to end on images), recording as it goes, through wrappers set on the
``CuMix`` instance and on the training data (its files unchanged): the training rows of every
minibatch (in the order its balanced sampler serves them), the partner indices and mixing ratios
of every draw (``get_mixup_sample_and_ratio``: features, then images with a backbone), the losses
of every step (``criterion``; ``mixup_criterion``, features then images), the curriculum's
``mixup_beta`` and ``mixup_domain`` of every epoch, and the projection's and backbone's weights
after every epoch. Ours (``JOINT["cumix"]`` as in ``bench_official_cumix.py``: on feature vectors
``featurizer="linear"`` and ``mixup_img_w = 0``; the official SGD each epoch) then starts from
the official initial weights, trains on the official minibatches (each split into its per-source
blocks, ours' one minibatch per domain) and takes the official partners and ratios at each of its
draws (without an official image mixup, its image draw, weight 0, gets the identity pairing);
everything else is our code. Both sides then compute the same thing up to float rounding; a
second run of ours from the official initial weights perturbed by one part in 10^7 measures how
far that rounding carries (the noise floor). The curriculum is compared separately: the official
per-epoch values beside the values our per-step curriculum hands to the draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_official_cumix import (  # noqa: E402
    DATA,
    METRICS,
    OfficialData,
    build_ours,
    local_labels,
    new_official,
    official_configs,
    official_scores,
    ours_scores,
    scores_report,
    setup,
    steps_per_epoch,
    task_arrays,
    train_ours,
)


class RecordingData(OfficialData):
    """The official training data, noting every row its loader fetches."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.fetched: list[int] = []

    def __getitem__(self, i):
        self.fetched.append(int(i))
        return super().__getitem__(i)


def network_state(projector: torch.nn.Module, backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the trained weights: the projection's and the backbone's (none without one)."""
    state = {f"projector.{k}": v.detach().clone() for k, v in projector.state_dict().items()}
    state.update({f"backbone.{k}": v.detach().clone() for k, v in backbone.state_dict().items()})
    return state


def record_official(off, configs, arrays, semantics, seen, seed, backbone):
    """The official training with every step's rows, draws and losses, every epoch's curriculum and
    weights, its initial weights and its final scores of every class."""
    method, train = new_official(off, configs, arrays, semantics, seen, seed, backbone, RecordingData)
    init = network_state(method.semantic_projector, method.backbone)
    steps: list[dict] = []
    criterion, mixup_criterion, draw = (
        method.criterion,
        method.mixup_criterion,
        method.get_mixup_sample_and_ratio,
    )

    def recorded_criterion(preds, labels):
        loss = criterion(preds, labels)
        steps.append({"semantic": loss.item(), "draws": []})
        return loss

    def recorded_draw(domains):  # features first, then images (with a backbone)
        partners, ratios = draw(domains)
        steps[-1]["draws"].append((partners.clone(), ratios.clone()))
        return partners, ratios

    def recorded_mixup_criterion(preds, labels):
        loss = mixup_criterion(preds, labels)
        steps[-1]["mixup_img" if "mixup_feat" in steps[-1] else "mixup_feat"] = loss.item()
        return loss

    method.criterion, method.mixup_criterion = recorded_criterion, recorded_mixup_criterion
    method.get_mixup_sample_and_ratio = recorded_draw
    epochs = []
    for _ in range(configs["epochs"]):
        method.fit(train)
        state = network_state(method.semantic_projector, method.backbone)
        epochs.append({"beta": method.mixup_beta, "within": method.mixup_domain, "state": state})
    batch = configs["batch_size"]
    for k, step in enumerate(steps):
        step["rows"] = np.array(train.fetched[k * batch : (k + 1) * batch])
    return init, steps, epochs, official_scores(method, arrays["test_x"], semantics)


def replay_ours(configs, arrays, semantics, seen, seed, iters, init, steps, jitter: float = 0.0):
    """Ours from ``init`` on the official minibatches and draws; the model, its step logs, the
    (beta, within) its curriculum handed to each feature draw, and its weights after each epoch."""
    n_dom = int(arrays["d"].max()) + 1
    x = torch.from_numpy(arrays["x"])
    y = torch.from_numpy(local_labels(arrays["y"], np.flatnonzero(seen), len(seen)))
    model = build_ours(configs, semantics, seen, n_dom, tuple(x.shape[1:]), iters, seed)
    model.projector.load_state_dict({k[10:]: v for k, v in init.items() if k.startswith("projector.")})
    model.backbone.load_state_dict({k[9:]: v for k, v in init.items() if k.startswith("backbone.")})
    if jitter:
        noise = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.network.parameters():
                p.mul_(1 + jitter * torch.randn(p.shape, generator=noise))
    calls, handed, states = [0], [], []

    def official_draw(sizes, beta, within, device):
        step, which = divmod(calls[0], 2)  # ours draws for the feature mixup first, then for images
        calls[0] += 1
        draws = steps[step]["draws"]
        if which == 0:
            handed.append((beta, within))
        if which < len(draws):
            return draws[which]
        return torch.arange(sum(sizes)), torch.ones(sum(sizes))  # no official image mixup: weight 0

    model._draw = official_draw
    per_domain = configs["batch_size"] // n_dom

    def epoch_batches(epoch: int):
        if epoch:
            states.append(network_state(model.projector, model.backbone))
        out = []
        for step in steps[epoch * iters : (epoch + 1) * iters]:
            blocks = step["rows"].reshape(n_dom, per_domain)
            if not all((arrays["d"][b] == d).all() for d, b in enumerate(blocks)):
                raise RuntimeError("an official minibatch is not one block of rows per source domain")
            out.append(list(blocks))
        return out

    logs = train_ours(model, configs, x, y, epoch_batches, iters, epoch_curriculum=False)
    states.append(network_state(model.projector, model.backbone))
    return model, logs, handed, states


def largest(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the official CuMix checkout")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--target", type=int, default=1, help="held-out domain number")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="configs/zsl+dg/painting.json", help="official config file")
    parser.add_argument("--iters", type=int, default=50, help="steps per epoch")
    args = parser.parse_args()

    official, off, data, seen, semantics = setup(args.official, args.data)
    arrays = task_arrays(data, args.target, args.seed)
    input_shape = tuple(arrays["x"].shape[1:])
    images = len(input_shape) > 1
    configs = official_configs(official, args.config, data.n_domains - 1, args.iters, images)
    n_dom = data.n_domains - 1
    iters = steps_per_epoch(configs, arrays["d"])
    initial = build_ours(configs, semantics, seen, n_dom, input_shape, iters, args.seed).backbone
    configs["input_dim"] = initial.n_outputs
    backbone = initial if images else None  # on images, our initial featurizer on both sides
    init, steps, epochs, official_scores = record_official(
        off, configs, arrays, semantics, seen, args.seed, backbone
    )
    model, logs, handed, states = replay_ours(configs, arrays, semantics, seen, args.seed, iters, init, steps)
    _, _, _, jittered = replay_ours(configs, arrays, semantics, seen, args.seed, iters, init, steps, 1e-7)
    losses = ("semantic", "mixup_feat", "mixup_img") if images else ("semantic", "mixup_feat")
    print(
        f"## CuMix replayed: {data.source}, held-out {data.domain_names[args.target]}, seed {args.seed}, "
        f"{args.config}, {configs['epochs']} epochs of {iters} steps, backbone: "
        f"{'our initial featurizer' if images else 'none'}\n"
    )
    print("| epoch | official beta / p (whole epoch) | ours beta / p, first step | last step | "
          f"largest step gap {' / '.join(losses)} loss | largest weight gap | noise floor |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for e, epoch in enumerate(epochs):
        span = range(e * iters, (e + 1) * iters)
        gaps = [max(abs(logs[k][name] - steps[k][name]) for k in span) for name in losses]
        first, last = handed[span[0]], handed[span[-1]]
        print(
            f"| {e} | {epoch['beta']:.2f} / {epoch['within']:.2f} | {first[0]:.2f} / {first[1]:.2f} | "
            f"{last[0]:.2f} / {last[1]:.2f} | {' / '.join(f'{g:.1e}' for g in gaps)} | "
            f"{largest(states[e], epoch['state']):.1e} | {largest(jittered[e], states[e]):.1e} |"
        )
    weight = max(float(v.abs().max()) for v in epochs[-1]["state"].values())
    print(f"\nlargest final weight entry {weight:.2e}\n")
    ours = scores_report(ours_scores(model, arrays["test_x"], semantics), arrays["test_y"], seen)
    theirs = scores_report(official_scores, arrays["test_y"], seen)
    print("| run | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for run, r in (("official", theirs), ("ours, replayed", ours)):
        print(f"| {run} | " + " | ".join(f"{r[k]:.2f}" for k in METRICS) + " |")


if __name__ == "__main__":
    main()
