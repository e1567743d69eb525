"""CuMix replayed step by step against the authors' code: the same initial projection, the same
minibatches, the same partners and mixing ratios on both sides.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_replay_cumix.py --official DIR [--data SPEC]
[--target 1] [--seed 0] [--config configs/zsl+dg/painting.json] [--iters 50]``.

The official checkout (mancinimassimiliano/CuMix 8a1cf3a, outside this repository) is imported
as ``bench_official_cumix.py`` imports it (its docstring lists the replacements: torchvision
stubbed, data loading in the main process, the module's generators seeded) and runs the same
backbone-less ZSL+DG training on the same task, recording as it goes, through wrappers set on the
``CuMix`` instance and on the training data (its files unchanged): the training rows of every
minibatch (in the order its balanced sampler serves them), the partner indices and mixing ratios
of every step (``get_mixup_sample_and_ratio``), both losses of every step (``criterion``,
``mixup_criterion``), the curriculum's ``mixup_beta`` and ``mixup_domain`` of every epoch, and the
projection after every epoch. Ours (``JOINT["cumix"]``, ``featurizer="linear"``,
``mixup_img_w = 0``, the official SGD each epoch, as in ``bench_official_cumix.py``) then starts
from the official initial projection, trains on the official minibatches (each split into its
per-source blocks, ours' one minibatch per domain) and takes the official partners and ratios at
its feature-mixup draw (its image-mixup draw, weight 0, gets the identity pairing); everything
else is our code. Both sides then compute the same thing up to float rounding; a second run of
ours from the official initial projection perturbed by one part in 10^7 measures how far that
rounding carries (the noise floor). The curriculum is compared separately: the official
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
    import_official,
    local_labels,
    official_configs,
    ours_scores,
    scores_report,
    steps_per_epoch,
    task_arrays,
    train_ours,
)
from unseen.data.zsl_domains import load_zsl_domains  # noqa: E402
from unseen.methods.joint.cumix import unit_rows  # noqa: E402


class RecordingData(OfficialData):
    """The official training data, noting every row its loader fetches."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.fetched: list[int] = []

    def __getitem__(self, i):
        self.fetched.append(int(i))
        return super().__getitem__(i)


def record_official(off, configs: dict, arrays: dict, semantics: np.ndarray, seen: np.ndarray, seed: int):
    """The official training with every step's rows, draws and losses, every epoch's curriculum and
    projection, its initial projection and its final scores of every class."""
    import random

    random.seed(seed)
    torch.manual_seed(seed)
    off.methods.RG = np.random.default_rng(seed)
    seen_ids, unseen_ids = np.flatnonzero(seen), np.flatnonzero(~seen)
    train = RecordingData(
        arrays["x"], arrays["d"], local_labels(arrays["y"], seen_ids, len(seen)), len(seen_ids)
    )
    method = off.methods.CuMix(
        seen_classes=torch.from_numpy(seen_ids),
        unseen_classes=torch.from_numpy(unseen_ids),
        attributes=torch.from_numpy(semantics.copy()),
        configs=configs,
        device="cpu",
    )
    init = {k: v.detach().clone() for k, v in method.semantic_projector.state_dict().items()}
    steps: list[dict] = []
    criterion, mixup_criterion, draw = (
        method.criterion,
        method.mixup_criterion,
        method.get_mixup_sample_and_ratio,
    )

    def recorded_criterion(preds, labels):
        loss = criterion(preds, labels)
        steps.append({"semantic": loss.item()})
        return loss

    def recorded_draw(domains):
        partners, ratios = draw(domains)
        steps[-1].update(partners=partners.clone(), ratios=ratios.clone())
        return partners, ratios

    def recorded_mixup_criterion(preds, labels):
        loss = mixup_criterion(preds, labels)
        steps[-1]["mixup_feat"] = loss.item()
        return loss

    method.criterion, method.mixup_criterion = recorded_criterion, recorded_mixup_criterion
    method.get_mixup_sample_and_ratio = recorded_draw
    epochs = []
    for _ in range(configs["epochs"]):
        method.fit(train)
        state = {k: v.detach().clone() for k, v in method.semantic_projector.state_dict().items()}
        epochs.append({"beta": method.mixup_beta, "within": method.mixup_domain, "state": state})
    batch = configs["batch_size"]
    for k, step in enumerate(steps):
        step["rows"] = np.array(train.fetched[k * batch : (k + 1) * batch])
    with torch.no_grad():
        x = torch.from_numpy(arrays["test_x"])
        scores = (method.semantic_projector(method.backbone(x)) @ unit_rows(semantics).T).numpy()
    return init, steps, epochs, scores


def replay_ours(configs, arrays, semantics, seen, seed, iters, init, steps, jitter: float = 0.0):
    """Ours from ``init`` on the official minibatches and draws; the model, its step logs, the
    (beta, within) its curriculum handed to each feature draw, and its projection after each epoch."""
    n_dom = int(arrays["d"].max()) + 1
    x = torch.from_numpy(arrays["x"])
    y = torch.from_numpy(local_labels(arrays["y"], np.flatnonzero(seen), len(seen)))
    model = build_ours(configs, semantics, seen, n_dom, tuple(x.shape[1:]), iters, seed)
    model.projector.load_state_dict(init)
    if jitter:
        noise = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.projector.parameters():
                p.mul_(1 + jitter * torch.randn(p.shape, generator=noise))
    served, handed, states = iter(steps), [], []

    def official_draw(sizes, beta, within, device):
        if len(handed) % 2 == 0:  # ours draws for the feature mixup first, then for the image one
            step = next(served)
            handed.append((beta, within))
            return step["partners"], step["ratios"]
        handed.append(None)
        return torch.arange(sum(sizes)), torch.ones(sum(sizes))

    model._draw = official_draw
    per_domain = configs["batch_size"] // n_dom

    def epoch_batches(epoch: int):
        if epoch:
            states.append({k: v.detach().clone() for k, v in model.projector.state_dict().items()})
        out = []
        for step in steps[epoch * iters : (epoch + 1) * iters]:
            blocks = step["rows"].reshape(n_dom, per_domain)
            if not all((arrays["d"][b] == d).all() for d, b in enumerate(blocks)):
                raise RuntimeError("an official minibatch is not one block of rows per source domain")
            out.append(list(blocks))
        return out

    logs = train_ours(model, configs, x, y, epoch_batches, iters, epoch_curriculum=False)
    states.append({k: v.detach().clone() for k, v in model.projector.state_dict().items()})
    return model, logs, [h for h in handed if h is not None], states


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

    torch.set_num_threads(1)
    official = args.official.resolve()
    off = import_official(official)
    data = load_zsl_domains(args.data)
    seen, semantics = data.classes.seen, data.classes.semantics.astype(np.float32)
    arrays = task_arrays(data, args.target, args.seed)
    if arrays["x"].ndim != 2:
        raise SystemExit(f"{args.data}: the replay runs on feature vectors (the backbone-less mode) only")
    configs = official_configs(official, args.config, data.n_domains - 1, args.iters, images=False)
    configs["input_dim"] = arrays["x"].shape[1]
    iters = steps_per_epoch(configs, arrays["d"])
    init, steps, epochs, official_scores = record_official(off, configs, arrays, semantics, seen, args.seed)
    model, logs, handed, states = replay_ours(configs, arrays, semantics, seen, args.seed, iters, init, steps)
    _, _, _, jittered = replay_ours(configs, arrays, semantics, seen, args.seed, iters, init, steps, 1e-7)
    print(
        f"## CuMix replayed: {data.source}, held-out {data.domain_names[args.target]}, seed {args.seed}, "
        f"{args.config}, {configs['epochs']} epochs of {iters} steps\n"
    )
    print("| epoch | official beta / p (whole epoch) | ours beta / p, first step | last step | "
          "largest step gap semantic / feat-mix loss | largest projection gap | noise floor |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for e, epoch in enumerate(epochs):
        span = range(e * iters, (e + 1) * iters)
        sem = max(abs(logs[k]["semantic"] - steps[k]["semantic"]) for k in span)
        feat = max(abs(logs[k]["mixup_feat"] - steps[k]["mixup_feat"]) for k in span)
        first, last = handed[span[0]], handed[span[-1]]
        print(
            f"| {e} | {epoch['beta']:.2f} / {epoch['within']:.2f} | {first[0]:.2f} / {first[1]:.2f} | "
            f"{last[0]:.2f} / {last[1]:.2f} | {sem:.1e} / {feat:.1e} | "
            f"{largest(states[e], epoch['state']):.1e} | {largest(jittered[e], states[e]):.1e} |"
        )
    weight = float(epochs[-1]["state"]["weight"].abs().max())
    print(f"\nlargest final projection entry {weight:.2e}\n")
    ours = scores_report(ours_scores(model, arrays["test_x"], semantics), arrays["test_y"], seen)
    theirs = scores_report(official_scores, arrays["test_y"], seen)
    print("| run | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for run, r in (("official", theirs), ("ours, replayed", ours)):
        print(f"| {run} | " + " | ".join(f"{r[k]:.2f}" for k in METRICS) + " |")


if __name__ == "__main__":
    main()
