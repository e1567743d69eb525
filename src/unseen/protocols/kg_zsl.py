"""Protocol ``kg-zsl-v1``: zero-shot classifiers from the WordNet graph, on real photos.

The seen classes are ImageNet-1k's and their classifier is the EfficientNet-Lite0 head
(:mod:`unseen.backbones.efficientnet_lite`). The photos' classes are mapped to WordNet 3.0 noun
synsets by a class-map file (``examples/office-caltech10-wordnet.toml``); every mapped class is
held out: one that is an ImageNet-1k class loses its row of the head, one that is not is a new
node of the graph. A knowledge-graph method (:data:`unseen.methods.KG`) sees the graph of the
remaining 1,000 - h ImageNet classes, the held-out classes and all their WordNet ancestors, the
MiniLM embedding of every node's lemmas, and the seen rows; it scores every photo against the
seen and the held-out classes. Two settings are read from the same fit:

- ``imagenet``: the photos of the held-out classes that are ImageNet-1k classes, against those
  classes (ZSL) or against all 1,000 (generalized); the oracle (the head's own rows) applies.
- ``all``: every photo, against all held-out classes (ZSL) or the 1,000 - h seen plus all held-out
  classes (generalized); no oracle row exists for a new node.

Metrics: top-1 accuracy averaged per class (the project's convention) and hit@k, the fraction of
photos whose class is among the k best-scored candidates, ties counted against the method (the
graph papers' evaluation).
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from unseen.core.errors import DataError, DataFormatError
from unseen.data.class_graph import ClassGraph, class_graph
from unseen.data.imagenet1k import ImageNetClasses, imagenet1k_classes
from unseen.data.wordnet import WordNet, load_wordnet
from unseen.methods.kg.base import KGTask
from unseen.methods.registry import KG
from unseen.metrics.accuracy import per_class_accuracy
from unseen.metrics.ranking import hits_at_k

PROTOCOL = "kg-zsl-v1"
ENCODER = "efficientnet-lite0"
HITS = (1, 2, 5, 10, 20)


@dataclass(frozen=True)
class Photos:
    """Backbone features of the photos (``(n, 1280)``), their class ids into ``class_names``."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str


def read_class_map(path: str | Path) -> dict[str, str]:
    """``{class name: wnid}`` from the ``[classes]`` table of a TOML file."""
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("classes")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"class map {path} could not be read ({exc}).") from None
    if not isinstance(table, dict) or not table or not all(isinstance(v, str) for v in table.values()):
        raise DataFormatError(
            f'class map {path} needs a [classes] table of `class name = "wnid"` lines, e.g. '
            'backpack = "n02769748".'
        )
    return dict(table)


def load_photos(spec: str, cache_dir: str | None = None, batch_size: int = 8, progress=None) -> Photos:
    """Features of the photos: an ``unseen extract`` ``.npz`` made with efficientnet-lite0, or any image
    spec (``folder:ROOT``, ``manifest:FILE``), encoded here through the feature cache."""
    if spec.endswith(".npz"):
        path = Path(spec.removeprefix("npz-domains:"))
        if not path.is_file():
            raise DataError(f"features file {path} does not exist; make it with `unseen extract`.")
        with np.load(path, allow_pickle=False) as z:
            missing = {"features", "labels", "class_names", "meta"} - set(z.files)
            if missing:
                raise DataFormatError(f"{path} lacks {sorted(missing)}; make it with `unseen extract`.")
            encoder = json.loads(str(z["meta"])).get("encoder")
            if encoder != ENCODER:
                raise DataFormatError(
                    f"{path} holds {encoder} features; the ImageNet head needs {ENCODER}: "
                    f"`unseen extract --encoder {ENCODER} --data folder:PHOTOS --out {path.name}`."
                )
            return Photos(z["features"], z["labels"], tuple(map(str, z["class_names"])), f"npz:{path}")
    from unseen.backbones.cache import FeatureCache
    from unseen.backbones.efficientnet_lite import EfficientNetLite0
    from unseen.backbones.extract import extract_features
    from unseen.data.images import load_images

    dataset = load_images(spec)
    features, _ = extract_features(
        EfficientNetLite0(), dataset, cache=FeatureCache(cache_dir), batch_size=batch_size, progress=progress
    )
    return Photos(features, np.asarray(dataset.labels), tuple(dataset.class_names), spec)


def imagenet_head() -> np.ndarray:
    """``(1000, 1281)``: the EfficientNet-Lite0 ImageNet head, rows ``[weights, bias]``."""
    from unseen.backbones.efficientnet_lite import EfficientNetLite0

    head = EfficientNetLite0(device="cpu").imagenet_classifier()
    weight = head.weight.detach().double().numpy()
    return np.hstack([weight, head.bias.detach().double().numpy()[:, None]])


def node_texts(wordnet: WordNet, graph: ClassGraph) -> list[str]:
    """The text embedded for each node: its lemmas, comma-separated (DGP averages the word vectors
    of all lemmas)."""
    return [", ".join(wordnet[w].lemmas) for w in graph.nodes]


@dataclass(frozen=True)
class Setup:
    """The fitted-once task and what the evaluation needs around it."""

    task: KGTask
    held_out: tuple[str, ...]
    """wnids of the held-out classes (candidates ``n_seen ..``), in class-map order."""
    in_imagenet: np.ndarray
    """Per held-out class: its ImageNet-1k output index, or -1 for a new node."""
    true_rows: np.ndarray
    """The head's rows of the ImageNet classes in candidate order (seen, then held-out ImageNet ones)."""


def build_setup(
    class_map: dict[str, str],
    wordnet: WordNet,
    imagenet: ImageNetClasses,
    head: np.ndarray,
    embed: Callable[[Sequence[str]], np.ndarray],
) -> Setup:
    held_out = tuple(dict.fromkeys(class_map.values()))
    for key in held_out:
        wordnet[key]  # an unknown id fails here, naming it
    index = {w: i for i, w in enumerate(imagenet.wnids)}
    in_imagenet = np.array([index.get(w, -1) for w in held_out], dtype=np.int64)
    seen = [i for i, w in enumerate(imagenet.wnids) if w not in set(held_out)]
    classes = [imagenet.wnids[i] for i in seen] + list(held_out)
    graph = class_graph(wordnet, classes)
    vectors = np.asarray(embed(node_texts(wordnet, graph)), dtype=np.float32)
    n_seen = len(seen)
    task = KGTask(
        graph=graph,
        word_vectors=vectors,
        seen=np.arange(n_seen),
        seen_rows=head[seen],
        candidates=np.arange(len(classes)),
    )
    true_rows = np.vstack([head[seen], head[in_imagenet[in_imagenet >= 0]]])
    return Setup(task, held_out, in_imagenet, true_rows)


def hits_at(scores: np.ndarray, truth: np.ndarray, ks: Sequence[int] = HITS) -> dict[str, float]:
    """Percent of rows whose ``truth`` column ranks within the top ``k`` (ties count against)."""
    return hits_at_k(scores, truth, ks)


def per_class_top1(scores: np.ndarray, truth: np.ndarray) -> float:
    return per_class_accuracy(truth, scores.argmax(axis=1))


def evaluate(scores: np.ndarray, truth: np.ndarray, held_columns: np.ndarray) -> dict[str, Any]:
    """ZSL (only the ``held_columns``) and generalized (all columns) accuracy and hit@k;
    ``truth`` is each photo's column."""
    position = {c: k for k, c in enumerate(held_columns)}
    zsl = scores[:, held_columns]
    zsl_truth = np.array([position[t] for t in truth])
    return {
        "zsl": {"acc": per_class_top1(zsl, zsl_truth), **hits_at(zsl, zsl_truth)},
        "generalized": {"acc": per_class_top1(scores, truth), **hits_at(scores, truth)},
    }


def run_kg_zsl(
    photos: Photos,
    class_map: dict[str, str],
    methods: Sequence[str],
    hparams: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    device: str | None = None,
    wordnet: WordNet | None = None,
    head: np.ndarray | None = None,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Fit each method once, score every photo, and report both settings (module docstring)."""
    unknown = sorted(set(photos.class_names) - set(class_map))
    if unknown:
        raise DataError(f"the class map names no synset for the photo classes {unknown}; add them.")
    for name in methods:
        KG[name]  # unknown names fail before any work
    hparams = hparams or {}
    wordnet = wordnet or load_wordnet()
    imagenet = imagenet1k_classes()
    head = imagenet_head() if head is None else head
    if embed is None:
        from unseen.backbones.minilm import minilm

        embed = minilm(device="cpu").encode_texts
    setup = build_setup(class_map, wordnet, imagenet, head, embed)
    task = setup.task
    n_seen = len(task.seen)
    column = {w: n_seen + k for k, w in enumerate(setup.held_out)}
    truth = np.array([column[class_map[photos.class_names[y]]] for y in photos.labels])
    held = np.arange(n_seen, n_seen + len(setup.held_out))
    imagenet_held = held[setup.in_imagenet >= 0]
    imagenet_photos = np.isin(truth, imagenet_held)
    imagenet_columns = np.concatenate([np.arange(n_seen), imagenet_held])
    result: dict[str, Any] = {
        "protocol": PROTOCOL,
        "photos": photos.source,
        "n_photos": len(truth),
        "n_photos_imagenet": int(imagenet_photos.sum()),
        "seed": seed,
        "classes": {
            name: {
                "wnid": key,
                "synset": ", ".join(wordnet[key].lemmas),
                "imagenet_index": int(setup.in_imagenet[setup.held_out.index(key)]),
            }
            for name, key in class_map.items()
        },
        "graph": {"nodes": task.graph.n_nodes, "edges": len(task.graph.edges), "seen": n_seen},
        "results": {},
    }
    for name in methods:
        start = time.perf_counter()
        method = KG[name](seed=seed, device=device, **hparams.get(name, {}))
        settings: dict[str, Any] = {}
        if name == "oracle":
            method.reveal(setup.true_rows).fit(replace(task, candidates=imagenet_columns))
            scores = method.scores(photos.features[imagenet_photos])
            remap = {c: k for k, c in enumerate(imagenet_columns)}
            local = np.array([remap[t] for t in truth[imagenet_photos]])
            settings["imagenet"] = evaluate(scores, local, np.array([remap[c] for c in imagenet_held]))
        else:
            method.fit(task)
            scores = method.scores(photos.features)
            sub = scores[imagenet_photos][:, imagenet_columns]
            remap = {c: k for k, c in enumerate(imagenet_columns)}
            local = np.array([remap[t] for t in truth[imagenet_photos]])
            settings["imagenet"] = evaluate(sub, local, np.array([remap[c] for c in imagenet_held]))
            settings["all"] = evaluate(scores, truth, held)
        seconds = time.perf_counter() - start
        result["results"][name] = {"hparams": method.params, "seconds": round(seconds, 2), **settings}
        log(f"{name}: {seconds:.1f} s")
    return result
