"""f-CLSWGAN: trains, scores, beats ESZSL on unseen classes, reproducible."""

import numpy as np
import pytest

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(method, data, **overrides):
    cls = GZSL[method]
    return cls(seed=0, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


def test_unseen_accuracy_beats_eszsl_without_calibration(data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    gan = evaluate(fit("f-clswgan", data), data, None).metrics
    assert gan["U"] > eszsl["U"] + 10


def test_same_seed_same_numbers_and_scores_cover_all_classes(data):
    small = {"epochs": 2, "hidden": 32}
    a = fit("f-clswgan", data, **small).scores(data.split_features("test_seen"))
    b = fit("f-clswgan", data, **small).scores(data.split_features("test_seen"))
    assert a.shape == (len(a), data.classes.n_classes) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    c = GZSL["f-clswgan"](seed=1, **{**GZSL["f-clswgan"].fast_hparams, **small}).fit(data.train_set())
    assert not np.array_equal(a, c.scores(data.split_features("test_seen")))


def test_paper_defaults():
    p = GZSL["f-clswgan"]().params
    assert (p["hidden"], p["gp_weight"], p["critic_iters"], p["lr"], p["cls_weight"], p["batch_size"]) == (
        4096,
        10.0,
        5,
        1e-4,
        0.01,
        64,
    )
    per_class = {k: v["syn_per_class"] for k, v in GZSL["f-clswgan"].dataset_defaults.items()}
    assert per_class == {"CUB": 300, "SUN": 400, "FLO": 1200, "AWA1": 1800, "AWA2": 1800}
