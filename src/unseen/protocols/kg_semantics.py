"""The ``kg:`` data-spec scheme: class semantics predicted from the WordNet graph.

``kg:INNER_SPEC?classes=FILE[&method=dgp&method.KEY=VALUE&kg_seed=0]`` loads ``INNER_SPEC`` (any
zero-shot spec, single-domain or multi-domain, e.g. ``zsl-domains:FILE.toml?data=...``) and
replaces its class semantics by the classifier rows a knowledge-graph method
(:data:`unseen.methods.KG`: ``gcnz`` or ``dgp``) predicts for its classes. ``classes`` is a class
map (``examples/office-caltech10-wordnet.toml``): every class of the data mapped to a WordNet 3.0
noun synset. The task is ``kg-zsl-v1``'s (:func:`unseen.protocols.kg_zsl.build_setup`): every
mapped class is held out of the EfficientNet-Lite0 ImageNet head, so the rows of the seen and the
unseen classes of the data come from one graph model trained on the other ImageNet classes' rows,
the graph and MiniLM embeddings of the synsets' lemmas -- never from the data's images. A class's
semantics is its predicted row ``[w, b]`` (1,281 numbers).

The rows go through the feature cache (``$UNSEEN_CACHE/features``), keyed by method,
hyperparameters, seed and class map, so a sweep trains the graph model once.

The data-spec registries import this module at their first lookup of any scheme, so its imports
of the graph models, WordNet and the encoders (torch among them) wait until a ``kg:`` spec loads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import numpy as np

from unseen.backbones.cache import FeatureCache
from unseen.core.errors import DataError, SpecError
from unseen.data.model import ZSLDataset
from unseen.data.specs import DataSpec, load_dataset, register_scheme
from unseen.data.zsl_domains import ZSL_DOMAIN_SCHEMES, ZSLDomainDataset, load_zsl_domains
from unseen.semantics.text import WithClasses

KG_OPTIONS = {"classes", "method", "kg_seed"}
METHOD_OPTION_PREFIX = "method."
ROW_METHODS = ("gcnz", "dgp")
"""The registry's methods that predict classifier rows (ConSE and Loki score without rows; the
oracle's rows are the head's own, not a zero-shot prediction)."""

KG_HELP = (
    "kg:SPEC?classes=CLASS_MAP.toml[&method=dgp|gcnz&method.epochs=N] - class semantics: the classifier "
    "rows a graph model predicts from WordNet for SPEC's classes"
)


def _value(text: str) -> Any:
    """A hyperparameter written in a spec: a JSON number or boolean, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def predicted_rows(
    class_map: Mapping[str, str],
    method: str,
    hparams: Mapping[str, Any],
    seed: int,
    cache: FeatureCache | None = None,
    fit: Callable[[Mapping[str, str], str, Mapping[str, Any], int], np.ndarray] | None = None,
) -> np.ndarray:
    """``(len(class_map), d + 1)``: the rows ``method`` predicts for the mapped classes, in class-map
    order (classes mapped to one synset share its row). ``fit`` trains the graph model
    (:func:`fit_rows` by default); ``cache`` keeps its result."""
    from unseen.methods.registry import KG

    if method not in ROW_METHODS:
        raise SpecError(
            f"kg: method '{method}' predicts no classifier rows; choose one of {list(ROW_METHODS)}."
        )
    resolved = KG[method](seed=seed, **dict(hparams)).params  # wrong names and values fail here
    key = {
        "kind": "kg-rows",
        "method": method,
        "hparams": resolved,
        "seed": seed,
        "classes": sorted(class_map.items()),
    }
    rows = cache.get(key) if cache is not None else None
    if rows is None:
        rows = (fit or fit_rows)(class_map, method, resolved, seed)
        if cache is not None:
            cache.put(key, rows)
    return rows


def fit_rows(class_map: Mapping[str, str], method: str, hparams: Mapping[str, Any], seed: int) -> np.ndarray:
    """Train ``method`` on ``kg-zsl-v1``'s task for ``class_map`` and return its held-out rows,
    one per mapped class in class-map order."""
    from unseen.backbones.minilm import minilm
    from unseen.data.imagenet1k import imagenet1k_classes
    from unseen.data.wordnet import load_wordnet
    from unseen.methods.registry import KG
    from unseen.protocols.kg_zsl import build_setup, imagenet_head

    setup = build_setup(
        dict(class_map),
        load_wordnet(),
        imagenet1k_classes(),
        imagenet_head(),
        minilm(device="cpu").encode_texts,
    )
    n_seen = len(setup.task.seen)
    held = np.arange(n_seen, n_seen + len(setup.held_out))
    model = KG[method](seed=seed, **dict(hparams)).fit(dataclasses.replace(setup.task, candidates=held))
    position = {wnid: k for k, wnid in enumerate(setup.held_out)}
    return np.asarray(model.rows[[position[w] for w in class_map.values()]], dtype=np.float32)


def require_mapped(names: Sequence[str], class_map: Mapping[str, str], source: str = "the class map") -> None:
    """Every class name in ``names`` has a synset in ``class_map``, or an error naming the missing ones."""
    missing = [n for n in names if n not in class_map]
    if missing:
        raise DataError(
            f"{source} has no synset for the data's classes {missing}; add a line "
            f'`{missing[0]} = "nXXXXXXXX"` (a WordNet 3.0 noun id) for each to its [classes] table.'
        )


def with_graph_rows(
    dataset: WithClasses, class_map: Mapping[str, str], rows: np.ndarray, kind: str
) -> WithClasses:
    """``dataset`` whose class semantics are ``rows`` (one per ``class_map`` entry), matched by
    class name; every class of the data must be in the map."""
    require_mapped(dataset.classes.names, class_map)
    row_of = {name: k for k, name in enumerate(class_map)}
    semantics = np.stack([rows[row_of[n]] for n in dataset.classes.names])
    classes = dataclasses.replace(dataset.classes, semantics=semantics, semantics_kind=kind)
    return dataclasses.replace(dataset, classes=classes)


def with_graph_spec(spec: DataSpec, load: Callable[[str], WithClasses]) -> WithClasses:
    """The dataset ``load`` gives for ``spec``'s inner spec, with graph-predicted class semantics:
    the one path of ``kg:`` for single- and multi-domain zero-shot data."""
    from unseen.protocols.kg_zsl import read_class_map

    if not spec.option("classes"):
        raise SpecError(
            f"data spec '{spec.text}': kg: needs the class map, e.g. "
            "'kg:SPEC?classes=examples/office-caltech10-wordnet.toml'."
        )
    hparams = {
        k.removeprefix(METHOD_OPTION_PREFIX): _value(v)
        for k, v in spec.options.items()
        if k.startswith(METHOD_OPTION_PREFIX)
    }
    passed_on = {
        k: v
        for k, v in spec.options.items()
        if k not in KG_OPTIONS and not k.startswith(METHOD_OPTION_PREFIX)
    }
    method = spec.option("method", "dgp")
    seed = spec.int_option("kg_seed", 0)
    class_map = read_class_map(spec.option("classes"))
    dataset = load(spec.target + (f"?{urlencode(passed_on)}" if passed_on else ""))
    # Checked before the graph model trains (minutes to hours), not after.
    require_mapped(dataset.classes.names, class_map, f"class map {spec.option('classes')}")
    rows = predicted_rows(class_map, method, hparams, seed, cache=FeatureCache())
    return with_graph_rows(dataset, class_map, rows, kind=f"kg:{method}").with_source(spec.text)


@register_scheme("kg", help=KG_HELP)
def load_kg_spec(spec: DataSpec) -> ZSLDataset:
    """Loader for ``kg:INNER_SPEC?classes=FILE[...]``, ``INNER_SPEC`` a zero-shot spec."""
    return with_graph_spec(spec, load_dataset)


@ZSL_DOMAIN_SCHEMES.register("kg", help=KG_HELP)
def load_kg_domains_spec(spec: DataSpec) -> ZSLDomainDataset:
    """Loader for ``kg:INNER_SPEC?classes=FILE[...]``, ``INNER_SPEC`` a zero-shot multi-domain spec."""
    return with_graph_spec(spec, load_zsl_domains)
