"""The contract every registered method keeps, tested for each entry of each registry without
naming it: a method added to a registry is tested here the day it is registered."""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest

from unseen.core.errors import HyperparameterError, NotFittedError
from unseen.core.method import Method
from unseen.core.registry import HParam, resolve_hparams
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import FAMILIES, GZSL, TTA
from unseen.protocols.gzsl_transductive import unlabelled_features

EVERY_METHOD = [(family, name) for family, registry in FAMILIES.items() for name in registry]


def declared(cls) -> tuple[HParam, ...]:
    # DG algorithms add DomainBed's shared hyperparameters, which depend on the input shape.
    return cls.all_hparams() if hasattr(cls, "all_hparams") else cls.declared_hparams()


@pytest.mark.parametrize(("family", "name"), EVERY_METHOD, ids=[f"{f}:{n}" for f, n in EVERY_METHOD])
def test_each_method_declares_its_name_paper_and_valid_hyperparameters(family, name):
    cls = FAMILIES[family][name]
    assert issubclass(cls, Method) and cls.name == name
    assert cls.paper.strip(), f"{family} method '{name}' cites no paper"
    hparams = declared(cls)
    assert all(isinstance(h, HParam) for h in hparams)
    names = [h.name for h in hparams]
    assert len(names) == len(set(names)), f"{name} declares a hyperparameter twice"
    defaults = resolve_hparams(hparams, {}, owner=name)
    for h in hparams:
        for value in h.grid:  # every value a search may pick is one the method accepts
            assert resolve_hparams(hparams, {h.name: value}, owner=name)[h.name] == value
        assert defaults[h.name] == h.default
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        resolve_hparams(hparams, {"not_a_hyperparameter": 1}, owner=name)
    by_name = {h.name: h for h in hparams}
    for length in cls.selected_on_validation:  # a protocol picks these from checkpoints: counts
        assert type(by_name[length].default) is int, f"{name}: {length} is not an integer hyperparameter"
    for h in hparams:
        if h.draw is not None:  # random search draws only values the declaration allows
            for seed in range(20):
                h.sample(seed)
        if h.is_number:  # a value outside the declared domain is refused, naming the domain
            below = [h.low - 1] if h.low is not None else []
            above = [h.high + 1] if h.high is not None else []
            for value in below + above:
                with pytest.raises(HyperparameterError, match=f"'{h.name}' must be"):
                    resolve_hparams(hparams, {h.name: value}, owner=name)


@functools.cache
def tiny_gzsl_data():
    return synthetic_dataset("AWA2", seed=0, dim=32, scale=0.03)


def fit_inputs(cls, data) -> dict:
    """What ``fit`` takes besides the training set: a transductive method's unlabelled features."""
    return {"unlabelled": unlabelled_features(data, 0)} if cls.transductive else {}


@functools.cache
def fitted_gzsl(name: str, seed: int):
    cls, data = GZSL[name], tiny_gzsl_data()
    return cls(seed=seed, device="cpu", **cls.fast_hparams).fit(data.train_set(), **fit_inputs(cls, data))


@pytest.mark.parametrize("name", list(GZSL))
def test_each_gzsl_method_scores_every_class_reproducibly(name):
    data = tiny_gzsl_data()
    with pytest.raises(NotFittedError):
        GZSL[name](device="cpu").scores(np.zeros((2, data.dim), dtype=np.float32))
    X = data.split_features("test_unseen")
    scores = fitted_gzsl(name, 0).scores(X)
    assert scores.shape == (len(X), data.classes.n_classes) and np.isfinite(scores).all()
    again = GZSL[name](seed=0, device="cpu", **GZSL[name].fast_hparams)
    again.fit(data.train_set(), **fit_inputs(GZSL[name], data))
    np.testing.assert_array_equal(again.scores(X), scores)
    assert repr(fitted_gzsl(name, 0)).startswith(f"{type(fitted_gzsl(name, 0)).__name__}(")


@pytest.mark.parametrize("name", list(TTA))
def test_a_tta_method_declares_needs_source_exactly_when_it_takes_the_source_memory(name):
    takes = {"source_features", "source_labels"} <= set(inspect.signature(TTA[name]).parameters)
    assert TTA[name].needs_source == takes
