"""f-VAEGAN-D2 (inductive) and TF-VAEGAN: train, score, beat ESZSL on unseen classes, reproducible."""

import numpy as np
import pytest

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(method, data, seed=0, **overrides):
    cls = GZSL[method]
    return cls(seed=seed, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


@pytest.mark.parametrize("method", ["f-vaegan", "tf-vaegan"])
def test_unseen_accuracy_beats_eszsl_without_calibration(method, data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    ours = evaluate(fit(method, data), data, None).metrics
    assert ours["U"] > eszsl["U"] + 10


@pytest.mark.parametrize("method", ["f-vaegan", "tf-vaegan"])
def test_same_seed_same_numbers(method, data):
    small = {"epochs": 2, "hidden": 32}
    X = data.split_features("test_unseen")
    a, b = fit(method, data, **small).scores(X), fit(method, data, **small).scores(X)
    assert a.shape == (len(X), data.classes.n_classes) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit(method, data, seed=1, **small).scores(X))


def test_tf_vaegan_classifies_decoder_concatenated_features(data):
    m = fit("tf-vaegan", data, epochs=1, hidden=16)
    d, k = data.dim, data.classes.semantics.shape[1]
    assert m._clf.fc.in_features == d + k + 16
    assert fit("f-vaegan", data, epochs=1, hidden=16)._clf.fc.in_features == d


def test_f_vaegan_is_tf_vaegan_without_feedback():
    f, tf = GZSL["f-vaegan"], GZSL["tf-vaegan"]
    extra = {h.name for h in tf.hparams} - {h.name for h in f.hparams}
    assert extra == {"recons_weight", "dec_lr", "feedback_lr", "feedback_train", "feedback_eval"}
    assert issubclass(tf, f) and tf.feedback and not f.feedback
    assert tf.defaults_for("SUN")["feedback_eval"] == 0.01
