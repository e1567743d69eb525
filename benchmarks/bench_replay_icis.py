"""ICIS replayed step by step against the authors' code: same data, same initial weights, same
minibatches, in one process.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_replay_icis.py --official DIR [--data SPEC]
[--seed 0] [--base-epochs 100] [--epochs 50]``.

``DIR`` is the patched ExplainableML/ImageFreeZSL checkout of ``bench_official_icis.py`` (whose
docstring lists that patch); its modules are imported from there, nothing of it is copied. Both
stages of ICIS are replayed, each on the CPU with float32:

1. Base classifier. Ours (``train_softmax`` at ICIS's CUB settings: 100 epochs, Adam lr 1e-4,
   beta1 0.9, batch 16) runs first, recording its initial weights and every minibatch of
   sample indices; the official ``utility.train_base.BASECLASSIFIER`` (with ``--base_last_epoch``)
   then starts from those weights and its ``next_batch`` serves the same minibatches. Printed:
   the largest difference between the two final ``[W, b]`` and both seen test accuracies.
2. Weight predictor. Both sides start from ours' base classifier (saved where the official
   ``REGRESSOR`` loads it). The official ``joint_latent.Joint`` is built (its initial joint
   autoencoder is kept) and its class loader is replaced by one serving, per epoch, the rows of
   its own class dataset in the order of a seeded permutation; ours (``ICIS._train_predictor``)
   starts from the official initial weights (``init_weights`` of its module replaced) and its
   ``torch.randperm`` returns the same permutations. After every epoch both sides' parameters
   are compared (largest absolute difference over all tensors); at the end the injected rows
   and the official and our scores (uncalibrated GZSL S/U/H and ZSL, from the same base and
   predicted rows) are printed. A third run of ours from initial weights perturbed by one part
   in 10^7 gives the float-rounding noise floor the differences are read against.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unseen.data import load_dataset  # noqa: E402
from unseen.data.model import SplitName, ZSLDataset  # noqa: E402
from unseen.methods import GZSL  # noqa: E402
from unseen.methods.gzsl import icis  # noqa: E402
from unseen.methods.gzsl.generative import classifier as softmax  # noqa: E402
from unseen.methods.gzsl.preprocessing import normalize_semantics, seen_local_labels  # noqa: E402
from unseen.protocols.gzsl import evaluate  # noqa: E402

BATCH, LR, BASE_LR = 16, 1e-5, 1e-4


def official_opt(rootpath: Path, base_epochs: int) -> SimpleNamespace:
    """The options ``scripts/table1_cub.sh`` gives the ICIS line (CPU, no test-time selection)."""
    return SimpleNamespace(
        cuda=False, rootpath=str(rootpath), dataset="CUB", image_embedding="res101_finetuned",
        class_embedding="att", zst=False, strict_eval=True, save_pred_matrix=False,
        early_stopping_slope=True, cos_sim_loss=True, include_unseen=True, norm_scale_heuristic=False,
        classifier_nepoch=base_epochs, classifier_lr=BASE_LR, classifier_beta1=0.9, subspace_proj=False,
        daegnn=False, single_autoencoder_baseline=False, single_modal_ablation=False,
        class_reduction_ablation=0, calc_entropy=False, base_last_epoch=True,
    )  # fmt: skip


def official_data(dataset: ZSLDataset, S: np.ndarray) -> SimpleNamespace:
    """What the official ``DATA_LOADER`` holds, from ``dataset`` (global class ids)."""

    def split(name: SplitName) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(dataset.split_features(name)).float(), torch.from_numpy(
            dataset.split_labels(name)
        ).long()

    (train_x, train_y), (seen_x, seen_y), (unseen_x, unseen_y) = (
        split(s) for s in (SplitName.TRAIN, SplitName.TEST_SEEN, SplitName.TEST_UNSEEN)
    )
    return SimpleNamespace(
        train_feature=train_x, train_label=train_y, test_seen_feature=seen_x, test_seen_label=seen_y,
        test_unseen_feature=unseen_x, test_unseen_label=unseen_y, attribute=torch.from_numpy(S),
        seenclasses=torch.from_numpy(dataset.classes.seen_ids).long(),
        unseenclasses=torch.from_numpy(dataset.classes.unseen_ids).long(),
    )  # fmt: skip


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def ours_names(official_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official joint autoencoder's state under ours' parameter names."""
    renames = (("ae1.", "semantic."), ("ae2.", "weight."), ("decoder.0.", "decoder."))
    out = {}
    for key, value in official_state.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value.detach().clone()
    return out


def replay_base(dataset: ZSLDataset, data: SimpleNamespace, opt: SimpleNamespace, seed: int, train_base):
    """Stage 1 on both sides from ours' initial weights and minibatches; ours' final base."""
    X = torch.from_numpy(dataset.split_features(SplitName.TRAIN)).float()
    seen = dataset.classes.seen_ids
    y = torch.from_numpy(seen_local_labels(dataset.split_labels(SplitName.TRAIN), seen))
    init, batches = {}, []

    def recorded_init(module, generator):
        softmax.init_weights(module, generator)
        init.update({k: v.clone() for k, v in module.state_dict().items()})
        return module

    class RecordingSampler(softmax.BatchSampler):
        def draw(self, n_batches: int) -> torch.Tensor:
            out = super().draw(n_batches)
            batches.extend(out)
            return out

    sampler, softmax.BatchSampler = softmax.BatchSampler, RecordingSampler
    try:
        ours = softmax.train_softmax(
            X, y, len(seen), opt.classifier_nepoch, torch.Generator().manual_seed(seed),
            lr=BASE_LR, beta1=0.9, batch_size=BATCH, init=recorded_init,
        )  # fmt: skip
    finally:
        softmax.BatchSampler = sampler
    base = train_base.BASECLASSIFIER(
        X, y, data, len(dataset.classes.names), False, seedinfo=seed, _lr=LR, _beta1=0.9,
        _nepoch=opt.classifier_nepoch, _batch_size=BATCH, _embed_dim=2048, _num_layers=2, opt=opt,
    )  # fmt: skip
    with torch.no_grad():
        base.model.fc.weight.copy_(init["fc.weight"])
        base.model.fc.bias.copy_(init["fc.bias"])
    served = iter(batches)

    def next_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = next(served)
        return X[idx], y[idx]

    base.next_batch = next_batch
    theirs = base.fit()
    ours_wb = torch.cat([ours.fc.weight, ours.fc.bias[:, None]], 1).detach()
    theirs_wb = torch.cat([theirs.fc.weight, theirs.fc.bias[:, None]], 1).detach()
    test_x = torch.from_numpy(dataset.split_features(SplitName.TEST_SEEN)).float()
    test_y = seen_local_labels(dataset.split_labels(SplitName.TEST_SEEN), seen)

    def seen_acc(wb: torch.Tensor) -> float:
        pred = (test_x @ wb[:, :-1].T + wb[:, -1]).argmax(1).numpy()
        return 100 * float(np.mean([np.mean(pred[test_y == c] == c) for c in np.unique(test_y)]))

    print(f"base classifier, {opt.classifier_nepoch} epochs, {len(batches)} steps of {BATCH}:")
    print(f"  largest |[W, b] ours - official| {float((ours_wb - theirs_wb).abs().max()):.2e} "
          f"(largest |[W, b]| {float(theirs_wb.abs().max()):.2e}); seen-only test accuracy "
          f"ours {seen_acc(ours_wb):.2f}, official {seen_acc(theirs_wb):.2f}")  # fmt: skip
    return ours_wb.detach()


class EpochLoader:
    """The official class loader's stand-in: per epoch, its dataset's rows in the order of the
    next permutation, in batches of ``BATCH``; records the model's parameters at each epoch start."""

    def __init__(self, dataset, perms: list[torch.Tensor], model: torch.nn.Module, states: list):
        self.dataset, self.perms, self.model, self.states = dataset, iter(perms), model, states
        self.n_batches = -(-len(dataset) // BATCH)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        self.states.append(ours_names(self.model.state_dict()))
        for idx in next(self.perms).split(BATCH):
            yield self.dataset.input[idx], self.dataset.target[idx]


class TorchWithPerms:
    """Stands in for ``torch`` inside ours' ``icis`` module: ``randperm`` is the replay's."""

    def __init__(self, randperm):
        self.randperm = randperm

    def __getattr__(self, name):
        return getattr(torch, name)


def run_ours(method, S, dataset, seen_weights, initial, perms, jitter: float = 0.0):
    """Ours' predictor from ``initial`` with the given permutations; its state at each epoch start
    and at the end, and the fitted method (base + injected rows)."""
    states, served = [], iter(perms)
    box = {}

    def start(module, generator):
        module.load_state_dict(initial)
        if jitter:
            with torch.no_grad():
                for p in module.parameters():
                    p.mul_(1 + jitter * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        box["model"] = module
        return module

    def randperm(n, generator=None, device=None):
        states.append({k: v.detach().clone() for k, v in box["model"].state_dict().items()})
        return next(served)

    saved = icis.init_weights, icis.torch
    icis.init_weights = start
    icis.torch = TorchWithPerms(randperm)
    try:
        method._device = torch.device("cpu")
        seen, unseen = dataset.classes.seen_ids, dataset.classes.unseen_ids
        model = method._train_predictor(S, seen, unseen, seen_weights)
    finally:
        icis.init_weights, icis.torch = saved
    states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    with torch.no_grad():
        weights = torch.empty(len(dataset.classes.names), seen_weights.shape[1])
        weights[torch.as_tensor(seen)] = seen_weights
        weights[torch.as_tensor(unseen)] = model.predict(S[torch.as_tensor(unseen)])
    method._W, method._b = weights[:, :-1].contiguous(), weights[:, -1].contiguous()
    method._n_classes = len(dataset.classes.names)
    return states, method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="patched official ImageFreeZSL checkout")
    parser.add_argument("--data", default="synthetic:CUB?scale=0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-epochs", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=50, help="predictor epochs (no early stop)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.official.resolve()))
    import joint_latent  # noqa: PLC0415 (the official code, from --official)
    import utility.model_bases as model_bases  # noqa: PLC0415
    import utility.train_base as train_base  # noqa: PLC0415

    dataset = load_dataset(args.data)
    S_np = normalize_semantics(dataset.classes.semantics, "l2")
    data = official_data(dataset, S_np)
    print(f"## ICIS replay: {dataset.source} ({dataset.hash}), seed {args.seed}\n")
    with tempfile.TemporaryDirectory(prefix="icis-replay-") as root:
        opt = official_opt(Path(root), args.base_epochs)
        torch.manual_seed(args.seed)
        seen_weights = replay_base(dataset, data, opt, args.seed, train_base)
        folder = Path(root) / "models" / "base-classifiers"
        folder.mkdir(parents=True)
        linear = model_bases.LINEAR(dataset.dim, len(dataset.classes.seen_ids))
        with torch.no_grad():
            linear.fc.weight.copy_(seen_weights[:, :-1])
            linear.fc.bias.copy_(seen_weights[:, -1])
        torch.save(linear, folder / f"CUBres101_finetuned_seed{args.seed}_clr{BASE_LR}_nep{args.base_epochs}")
        X, y = data.train_feature, seen_local_labels(data.train_label.numpy(), dataset.classes.seen_ids)
        joint = joint_latent.Joint(
            X, torch.from_numpy(y), data, len(dataset.classes.names), False, seedinfo=args.seed, _lr=LR,
            _beta1=0.9, _nepoch=args.epochs, _batch_size=BATCH, _embed_dim=2048, _num_layers=2, opt=opt,
        )  # fmt: skip
        initial = ours_names(joint.model.state_dict())
        g = torch.Generator().manual_seed(args.seed)
        n_rows = len(joint.loader.dataset)
        perms = [torch.randperm(n_rows, generator=g) for _ in range(args.epochs)]
        theirs_states: list = []
        joint.loader = EpochLoader(joint.loader.dataset, perms, joint.model, theirs_states)
        opt.early_stopping_slope = False  # a fixed number of epochs on both sides
        joint.fit()
        theirs_states.append(ours_names(joint.model.state_dict()))

    S = torch.from_numpy(S_np)
    hp = {"epochs": args.epochs, "stop_patience": args.epochs + 1}
    ours_states, ours = run_ours(GZSL["icis"](seed=args.seed, **hp), S, dataset, seen_weights, initial, perms)
    twin_states, twin = run_ours(
        GZSL["icis"](seed=args.seed, **hp), S, dataset, seen_weights, initial, perms, jitter=1e-7
    )
    print(f"\nweight predictor, {args.epochs} epochs of {-(-n_rows // BATCH)} steps (batch {BATCH}):\n")
    print("| after epoch | max abs diff ours − official | max abs diff ours − ours (1e-7 jitter) |")
    print("|---|---|---|")
    for e in sorted({1, 2, 5, *range(10, args.epochs + 1, 10), args.epochs}):
        if e < len(theirs_states):
            print(
                f"| {e} | {max_diff(ours_states[e], theirs_states[e]):.2e} | "
                f"{max_diff(ours_states[e], twin_states[e]):.2e} |"
            )
    rows = torch.cat([ours._W, ours._b[:, None]], 1)[dataset.classes.unseen_ids]
    off_rows = torch.cat([joint.ext_model.fc.weight, joint.ext_model.fc.bias[:, None]], 1).detach()
    off_rows = off_rows[len(dataset.classes.seen_ids) :]
    print(f"\ninjected rows: largest |ours − official| {float((rows - off_rows).abs().max()):.2e}, "
          f"mean row norm ours {float(rows.norm(dim=1).mean()):.4f}, official "
          f"{float(off_rows.norm(dim=1).mean()):.4f}")  # fmt: skip
    m, t = evaluate(ours, dataset, None).metrics, evaluate(twin, dataset, None).metrics
    print("\n| run | S | U | H | ZSL |\n|---|---|---|---|---|")
    print(f"| official | {100 * joint.acc_seen:.2f} | {100 * joint.acc_unseen:.2f} | {100 * joint.H:.2f} | "
          f"{100 * joint.acc_unseen_zsl:.2f} |")  # fmt: skip
    for name, r in (("ours", m), ("ours, 1e-7 jitter", t)):
        print(f"| {name} | {r['S']:.2f} | {r['U']:.2f} | {r['H']:.2f} | {r['ZSL']:.2f} |")


if __name__ == "__main__":
    main()
