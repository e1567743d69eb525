"""Step-by-step replays of ours against an official training script: shared pieces.

A replay copies an official checkout to a temporary folder and inserts three calls into the
copy's training script (the checkout itself is untouched): ``start`` after the networks and
optimisers exist (save the initial weights, start recording every random draw in order),
``step`` after each generator step (each network's weight norm and the penalty weight), and
``end_epoch`` before each epoch's evaluation (save the draws, the step log and the weights;
after the last epoch, with classifier seeds, run the official synthesis and final classifier on
those weights once per seed, recording their draws too, then stop). Ours then trains from the
official initial weights with each of its draw sites taking the official draw, every draw
checked for shape (:class:`Draws`), so both sides run the same computation up to float
rounding; a second run of ours from initial weights perturbed by one part in 10^7 measures that
rounding's effect (the noise floor the final-weight differences are read against). The final
classifiers are replayed the same way (:func:`classifier_replayed`): ours' synthesis and
classifier on the official final weights take the official synthesis noise, classifier
initialisation and minibatches.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from bench_generative import run_official_script, write_xlsa17
from unseen.data import load_dataset
from unseen.data.model import ZSLDataset

RECORDER = '''"""Recording hooks of a replay benchmark (written into a copy of an official checkout)."""
import json
import os
import sys

import torch

OUT = os.environ["REPLAY_OUT"]
SEEDS = [int(s) for s in os.environ.get("REPLAY_CLASSIFIER_SEEDS", "").split(",") if s]
DRAWN = ("randn", "rand", "randperm")
draws, steps, nets = [], [], {}
originals = {n: getattr(torch, n) for n in DRAWN}
normal_ = torch.Tensor.normal_


def _recording(name):
    def draw(*args, **kwargs):
        out = originals[name](*args, **kwargs)
        draws.append((name, out.clone()))
        return out

    return draw


def _recording_normal(self, *args, **kwargs):
    out = normal_(self, *args, **kwargs)
    draws.append(("normal_", self.detach().clone()))
    return out


def _record(on):
    for name in DRAWN:
        setattr(torch, name, _recording(name) if on else originals[name])
    torch.Tensor.normal_ = _recording_normal if on else normal_


def _state():
    return {k: {n: v.detach().clone() for n, v in m.state_dict().items()} for k, m in nets.items()}


def start(**modules):
    nets.update(modules)
    torch.save(_state(), os.path.join(OUT, "init.pt"))
    _record(True)


def step(lam):
    row = {"lam": float(lam)}
    for k, m in nets.items():
        row[k] = float(sum((p.detach().double() ** 2).sum() for p in m.parameters()).sqrt())
    steps.append(row)


def end_epoch(epoch, g):
    _record(False)
    torch.save({"draws": draws, "steps": steps, "state": _state()}, os.path.join(OUT, "epoch%d.pt" % epoch))
    if epoch + 1 < g["opt"].nepoch:
        _record(True)
        return
    results = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        del draws[:]
        _record(True)
        suh = evaluate(g)
        _record(False)
        torch.save(draws, os.path.join(OUT, "classifier_draws%d.pt" % seed))
        results.append({"seed": seed, "SUH": [100 * float(v) for v in suh]})
    with open(os.path.join(OUT, "classifier.json"), "w") as fh:
        json.dump(results, fh)
    sys.exit(0)
'''


def patched_copy(
    official: Path, into: Path, script: str, insertions: tuple[tuple[str, int, str], ...], evaluate: str
) -> Path:
    """A copy of ``official`` whose ``script`` has each ``(line start, offset, code)`` inserted
    ``offset`` lines after the one line starting so, and ``replay_recorder.py`` beside it
    (:data:`RECORDER` plus ``evaluate``, the source of ``evaluate(g) -> (S, U, H)`` in [0, 1] on
    the script's globals ``g``)."""
    copy = into / official.name
    shutil.copytree(official, copy, ignore=shutil.ignore_patterns("*.mat", "__pycache__", ".git"))
    path = copy / script
    lines = path.read_text().splitlines(keepends=True)
    at = [_line(lines, anchor, path) + offset for anchor, offset, _ in insertions]
    # from the bottom up, so earlier positions stay valid; at one position, in the listed order
    for i in sorted(range(len(insertions)), key=lambda i: (at[i], i), reverse=True):
        lines.insert(at[i], insertions[i][2])
    path.write_text("".join(lines))
    (copy / "replay_recorder.py").write_text(RECORDER + "\n\n" + evaluate)
    return copy


@contextmanager
def official_recorded(
    official: Path,
    script: str,
    insertions: tuple[tuple[str, int, str], ...],
    evaluate: str,
    dataset: ZSLDataset,
    seed: int,
    classifier_seeds: str,
    flags: Callable[[Path], list[str]],
) -> Iterator[tuple[ZSLDataset, Path]]:
    """The official ``script`` run once, with the recorder (:func:`patched_copy`), on ``dataset``
    written as xlsa17 files (``flags(data folder)`` its command-line flags); yields the dataset as
    read back from those files (so ours sees the official sample order) and the recorder's folder.
    Everything lives in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="replay_") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        write_xlsa17(dataset, data / "CUB", seed)
        copy = patched_copy(official.resolve(), tmp, script, insertions, evaluate)
        out = tmp / "out"
        out.mkdir()
        os.environ.update(REPLAY_OUT=str(out), REPLAY_CLASSIFIER_SEEDS=classifier_seeds)
        run_official_script(copy, script, flags(data), script)
        yield load_dataset(f"xlsa17:{data / 'CUB'}"), out


def _line(lines: list[str], anchor: str, path: Path) -> int:
    found = [i for i, line in enumerate(lines) if line.startswith(anchor)]
    if len(found) != 1:
        raise RuntimeError(f"{path}: expected one line starting {anchor!r}, found {len(found)}")
    return found[0]


class Draws:
    """The official draws by kind, handed out in order; :meth:`take` checks the shape."""

    def __init__(self, draws: list[tuple[str, torch.Tensor]], keep=lambda kind, t: True):
        self._queues: dict[str, Iterator[torch.Tensor]] = {}
        for kind in {k for k, _ in draws}:
            self._queues[kind] = iter([t for k, t in draws if k == kind and keep(k, t)])

    def take(self, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
        t = next(self._queues[kind]).clone()
        if tuple(t.shape) != tuple(shape):
            raise RuntimeError(f"replay out of step: official {kind} of shape {tuple(t.shape)}, ours {shape}")
        return t


class TorchWithRand:
    """Stands in for the ``torch`` module inside one of ours' modules: ``rand`` takes the
    official draw, everything else is torch's."""

    def __init__(self, draws: Draws):
        self._draws = draws

    def __getattr__(self, name):
        return getattr(torch, name)

    def rand(self, shape, generator=None, device=None):
        return self._draws.take("rand", tuple(shape))


def official_batches(perms: list[torch.Tensor], batch: int) -> Iterator[torch.Tensor]:
    """The rows of the official final classifiers' ``next_batch``: one stream of successive
    permutations cut into consecutive batches, each permutation applied to the already permuted
    data (so the rows of the original data are the composed permutations)."""
    order, stream = torch.arange(len(perms[0])), []
    for perm in perms:
        order = order[perm]
        stream.append(order)
    flat = torch.cat(stream)
    for i in range(0, len(flat) - batch + 1, batch):
        yield flat[i : i + batch]


@contextmanager
def classifier_replayed(draws: list[tuple[str, torch.Tensor]], per_class: int, batch: int):
    """Ours' synthesis and final classifier take the official draws: the synthesis noise (one
    ``normal_`` of ``(per_class, noise_dim)`` per class), the classifier's ``N(0, 0.02)`` weights
    and its minibatches of ``batch`` (:func:`official_batches`)."""
    from unseen.methods.gzsl.generative import modules, training

    queue = Draws(draws)
    perms = [t for k, t in draws if k == "randperm"]
    batches = official_batches(perms, batch) if perms else iter(())

    class Torch:  # init_weights draws N(0, 1) and scales it by 0.02
        def __getattr__(self, name):
            return getattr(torch, name)

        def randn(self, shape, generator=None, device=None):
            return queue.take("normal_", tuple(shape)) / 0.02

    def noise(shape, generator, device):
        return torch.cat([queue.take("normal_", (per_class, shape[1])) for _ in range(shape[0] // per_class)])

    def draw(self, n_batches):
        if self.batch != batch:
            return saved[2](self, n_batches)
        return torch.stack([next(batches) for _ in range(n_batches)])

    saved = (modules.torch, training.gaussian, training.BatchSampler.draw)
    modules.torch, training.gaussian, training.BatchSampler.draw = Torch(), noise, draw
    try:
        yield
    finally:
        modules.torch, training.gaussian, training.BatchSampler.draw = saved


def replay_classifier(model, draws: list[tuple[str, torch.Tensor]]) -> None:
    """``model``'s final classifier (synthesis included) takes the official ``draws``."""
    fit_classifier, per_class = model._fit_classifier, model.params["syn_per_class"]

    def replayed(epoch: int) -> None:
        with classifier_replayed(draws, per_class, model._classifier_batch_size()):
            fit_classifier(epoch)

    model._fit_classifier = replayed


Layers = dict[str, tuple[str, dict[str, str]]]
"""Official network name -> (ours' attribute holding it, official layer name -> ours')."""


def renamed(net: str, official: dict[str, torch.Tensor], layers: Layers) -> dict[str, torch.Tensor]:
    """An official network's ``state_dict`` under ours' parameter names."""
    names = layers[net][1]
    return {f"{names[k.rsplit('.', 1)[0]]}.{k.rsplit('.', 1)[1]}": v for k, v in official.items()}


def networks(model, layers: Layers) -> list[tuple[str, torch.nn.Module]]:
    """Ours' networks of ``model`` that ``layers`` maps, by official name."""
    return [(net, getattr(model, attr)) for net, (attr, _) in layers.items() if hasattr(model, attr)]


def test_accuracies(model, dataset) -> list[float]:
    """``model``'s test S, U, H (percent) on ``dataset``."""
    from unseen.data.model import SplitName
    from unseen.metrics.accuracy import gzsl_accuracies

    X_s, y_s = dataset.split_features(SplitName.TEST_SEEN), dataset.split_labels(SplitName.TEST_SEEN)
    X_u, y_u = dataset.split_features(SplitName.TEST_UNSEEN), dataset.split_labels(SplitName.TEST_UNSEEN)
    m = gzsl_accuracies(model.scores(X_s), y_s, model.scores(X_u), y_u)
    return [float(m[k]) for k in "SUH"]


def print_replay(head: str, record: dict, log: list[dict], model, twin, layers: Layers) -> None:
    """The step table and the final-weights table of one replay (``record``: the official
    last epoch's save; ``twin``: ours from the jittered start)."""
    print(f"{head}: {len(log)} generator steps")
    nets = networks(model, layers)
    print_steps(record["steps"], log, [net for net, _ in nets])
    twins = dict(networks(twin, layers))
    rows = [
        (n, m.state_dict(), renamed(n, record["state"][n], layers), twins[n].state_dict()) for n, m in nets
    ]
    print_final(rows)


@contextmanager
def started_from(cls, weights: dict, layers: Layers, jitter: float = 0.0, log: list[dict] | None = None):
    """Ours' method class ``cls`` builds its networks from the official ``weights`` (optionally
    jittered); with ``log``, each generator step (``_opt_g.step``) appends the penalty weight
    (fixed: ``gp_weight``) and every network's weight norm to it."""
    build = cls._build

    def build_from_official(self, train, generator):
        build(self, train, generator)
        for net, module in networks(self, layers):
            load(module, renamed(net, weights[net], layers), jitter)
        if log is not None:
            step = self._opt_g.step

            def logged_step(*args, **kwargs):
                step(*args, **kwargs)
                log.append(
                    {"lam": self.params["gp_weight"], **{k: norm(m) for k, m in networks(self, layers)}}
                )

            self._opt_g.step = logged_step

    cls._build = build_from_official
    try:
        yield
    finally:
        cls._build = build


def load(module: torch.nn.Module, state: dict[str, torch.Tensor], jitter: float = 0.0) -> None:
    """``state`` into ``module``, each value times ``1 + jitter * N(0, 1)`` (fixed draws)."""
    module.load_state_dict(state)
    if jitter:
        noise = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in module.parameters():
                p.mul_(1 + jitter * torch.randn(p.shape, generator=noise))


def norm(module: torch.nn.Module) -> float:
    return float(sum((p.detach().double() ** 2).sum() for p in module.parameters()).sqrt())


def print_steps(official: list[dict], ours: list[dict], nets: list[str]) -> None:
    """Per generator step: both penalty weights, each network's relative weight-norm difference."""
    print("\n| generator step | penalty weight, official / ours | " + " | ".join(nets) + " |")
    print("|---" * (2 + len(nets)) + "|")
    for i, (o, u) in enumerate(zip(official, ours, strict=True)):
        rel = [f"{(u[n] - o[n]) / o[n]:+.1e}" for n in nets]
        print(f"| {i + 1} | {o['lam']:.4f} / {u['lam']:.4f} | " + " | ".join(rel) + " |")


def print_final(pairs: list[tuple[str, dict, dict, dict]]) -> None:
    """Per final weight tensor: ``(name, ours, official, ours from a jittered start)``."""
    print("\n| final weights | ours vs official | ours vs ours, jittered start (noise floor) |")
    print("|---|---|---|")
    for name, ours, theirs, twin in pairs:
        for key, value in ours.items():
            d = [float((value - b[key]).norm() / b[key].norm().clamp_min(1e-12)) for b in (theirs, twin)]
            print(f"| {name}.{key} | {d[0]:.1e} | {d[1]:.1e} |")


def print_classifiers(out: Path, ours: list[dict]) -> None:
    """Test S / U / H per classifier seed of both pipelines on the official final weights."""
    official = json.loads((out / "classifier.json").read_text())
    print("\n| classifier seed | official S / U / H | ours S / U / H |\n|---|---|---|")
    for o, u in zip(official, ours, strict=True):
        cells = (" / ".join(f"{v:.1f}" for v in r["SUH"]) for r in (o, u))
        print(f"| {o['seed']} | " + " | ".join(cells) + " |")
    for side, rows in (("official", official), ("ours", ours)):
        suh = np.array([r["SUH"] for r in rows])
        print(
            f"{side}: S {suh[:, 0].mean():.1f}, U {suh[:, 1].mean():.2f} +- {suh[:, 1].std():.2f}, "
            f"H {suh[:, 2].mean():.2f} +- {suh[:, 2].std():.2f} (mean +- std over {len(rows)} seeds)"
        )
