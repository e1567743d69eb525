"""COSMO and the OOD-score gate: gate probabilities, smoothing by hand, honest gate data, GZSL gains."""

import numpy as np
import pytest

from unseen.core.errors import DataError, HyperparameterError, NotFittedError, UnknownNameError
from unseen.data.model import ClassTable, TrainSet
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl import cosmo
from unseen.methods.gzsl.gating import UNSCORED, GatedGZSL, acceptance_threshold, mix, route
from unseen.protocols import GZSLProtocol


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


@pytest.fixture(autouse=True)
def fresh_cores():
    GatedGZSL.cores.clear()  # every test fits its own experts and gate


def rows(X):
    return {r.tobytes() for r in np.asarray(X, dtype=np.float32)}


def test_adaptive_smoothing_and_mixing_by_hand():
    p_unseen = np.array([0.2])
    seen_probs, unseen_probs = np.array([[0.7, 0.3]]), np.array([[0.1, 0.05]])
    seen_part, unseen_part = cosmo.smoothed_experts(p_unseen, seen_probs, unseen_probs, "adaptive")
    # seen: p_S + p(unseen)/|S| = p_S + 0.1; unseen: p_U + p(seen)/|U| = p_U + 0.4
    np.testing.assert_allclose(seen_part, [[0.8, 0.4]])
    np.testing.assert_allclose(unseen_part, [[0.5, 0.45]])
    seen_mask = np.array([True, False, True, False])
    np.testing.assert_allclose(
        mix(1 - p_unseen, seen_part, unseen_part, seen_mask), [[0.64, 0.1, 0.32, 0.09]]
    )
    plain_seen, plain_unseen = cosmo.smoothed_experts(p_unseen, seen_probs, unseen_probs, "none")
    np.testing.assert_allclose(plain_unseen, [[2 / 3, 1 / 3]])
    np.testing.assert_allclose(plain_seen, seen_probs)


def test_gate_features_are_sorted_top_k_confidences():
    unseen_probs = np.array([[0.1, 0.3, 0.2]])
    seen_logits = np.log(np.array([[1.0, 8.0]]))  # at temperature 3: softmax of logits / 3 = (1/3, 2/3)
    gate = cosmo.ConfidenceGate(model=None, k_unseen=2, k_seen=2, temperature=3.0)
    np.testing.assert_allclose(gate.features(unseen_probs, seen_logits), [[0.3, 0.2, 2 / 3, 1 / 3]])


def test_gate_output_is_a_probability_that_separates_seen_from_unseen(data):
    model = GZSL["cosmo"]().fit(data.train_set())
    p_seen = model.seen_probability(data.split_features("test_seen"))
    p_unseen_samples = model.seen_probability(data.split_features("test_unseen"))
    both = np.concatenate([p_seen, p_unseen_samples])
    assert np.isfinite(both).all() and (both >= 0).all() and (both <= 1).all()
    assert p_seen.mean() > p_unseen_samples.mean() + 0.3
    with pytest.raises(NotFittedError):
        GZSL["cosmo"]().seen_probability(data.split_features("test_seen"))


def test_gate_is_fitted_without_any_unseen_class_sample(data, monkeypatch):
    seen_split, gate_targets = [], []
    real_split, real_fit = cosmo.pseudo_unseen_split, cosmo.ConfidenceGate.fit.__func__

    def spy_split(*args, **kwargs):
        seen_split.append(real_split(*args, **kwargs))
        return seen_split[-1]

    def spy_fit(cls, unseen_probs, seen_logits, is_seen, *args, **kwargs):
        gate_targets.append(np.asarray(is_seen))
        return real_fit(cls, unseen_probs, seen_logits, is_seen, *args, **kwargs)

    monkeypatch.setattr(cosmo, "pseudo_unseen_split", spy_split)
    monkeypatch.setattr(cosmo.ConfidenceGate, "fit", classmethod(spy_fit))
    GZSL["cosmo"]().fit(data.train_set())
    (split,) = seen_split
    train_rows, unseen_rows = rows(data.split_features("train")), rows(data.split_features("test_unseen"))
    gate_rows = rows(split.features)
    assert gate_rows <= train_rows and not gate_rows & unseen_rows
    assert not rows(split.experts.features) & gate_rows  # inner experts never see the gate's samples
    names = dict(zip(data.classes.names, data.classes.seen, strict=True))
    assert all(names[n] for n in split.experts.classes.names)  # only seen classes, some playing unseen
    assert (~split.experts.classes.seen).any()
    (targets,) = gate_targets
    np.testing.assert_array_equal(targets, split.is_seen)
    assert targets.any() and not targets.all()


def test_cosmo_selected_on_validation_beats_both_experts_alone(data):
    protocol = GZSLProtocol(seed=0)
    h = {m: protocol.run(data, m)["metrics"]["H"] for m in ("cosmo", "softmax", "eszsl")}
    assert h["softmax"] == 0.0  # the seen expert alone never predicts an unseen class
    assert h["cosmo"] > h["eszsl"] + 10


def test_candidates_differing_only_in_combination_share_one_fit(data):
    a = GZSL["cosmo"](threshold=0.3).fit(data.train_set())
    b = GZSL["cosmo"](threshold=0.8, threshold_temperature=0.03).fit(data.train_set())
    c = GZSL["cosmo"](top_k=3).fit(data.train_set())
    assert a._core is b._core and a._core is not c._core
    X = data.split_features("test_seen")
    assert not np.array_equal(a.scores(X), b.scores(X))


def test_same_seed_same_scores_other_seed_other_gate(data):
    X = data.split_features("test_unseen")
    first = GZSL["cosmo"](seed=0).fit(data.train_set()).scores(X)
    GatedGZSL.cores.clear()
    again = GZSL["cosmo"](seed=0).fit(data.train_set()).scores(X)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (len(X), data.classes.n_classes) and np.isfinite(first).all()
    assert not np.array_equal(first, GZSL["cosmo"](seed=1).fit(data.train_set()).scores(X))


def test_expert_settings_are_checked_when_the_method_is_built():
    with pytest.raises(HyperparameterError, match="unseen_expert_hparams must be a JSON object"):
        GZSL["cosmo"](unseen_expert_hparams="alpha=1")
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        GZSL["gated"](seen_expert_hparams='{"no_such": 1}')
    with pytest.raises(UnknownNameError):
        GZSL["cosmo"](unseen_expert="no-such-method")
    expert = GZSL["cosmo"](unseen_expert="sae", unseen_expert_hparams='{"lam": 0.5}')._expert("unseen_expert")
    assert expert.name == "sae" and expert.params["lam"] == 0.5
    # a JSON object given in --hparams or a sweep file arrives as text too
    gated = GZSL["gated"](seen_expert_hparams={"C": 0.1})
    assert gated.params["seen_expert_hparams"] == '{"C": 0.1}'  # recorded as JSON
    expert = gated._expert("seen_expert")
    assert expert.name == "softmax" and expert.params["C"] == 0.1


def test_learned_gate_needs_three_seen_classes():
    classes = ClassTable(("a", "b", "c"), np.array([True, True, False]), np.eye(3), "attributes:test")
    train = TrainSet(np.random.default_rng(0).random((6, 4)), np.array([0, 0, 0, 1, 1, 1]), classes)
    with pytest.raises(DataError, match="at least 3 seen classes"):
        GZSL["cosmo"]().fit(train)


def test_softmax_expert_scores_seen_classes_only(data):
    scores = GZSL["softmax"]().fit(data.train_set()).scores(data.split_features("test_seen"))
    assert (scores[:, ~data.classes.seen] == UNSCORED).all()
    labels = data.split_labels("test_seen")
    assert (scores.argmax(axis=1) == labels).mean() > 0.9


@pytest.mark.parametrize("gate", ["msp", "max-logit", "energy"])
def test_ood_gate_quantile_one_sends_all_to_seen_expert_zero_to_unseen(data, gate):
    X = np.vstack([data.split_features("test_seen"), data.split_features("test_unseen")])
    seen_mask = data.classes.seen
    everything_seen = GZSL["gated"](gate=gate, accept_quantile=1.0).fit(data.train_set()).scores(X)
    assert seen_mask[everything_seen.argmax(axis=1)].all()
    nothing_seen = GZSL["gated"](gate=gate, accept_quantile=0.0).fit(data.train_set()).scores(X)
    assert not seen_mask[nothing_seen.argmax(axis=1)].any()


def test_ood_gate_threshold_and_routing_by_hand():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert acceptance_threshold(scores, 0.5) == 3.0  # half of the held-out seen samples pass
    assert acceptance_threshold(scores, 1.0) == -np.inf and acceptance_threshold(scores, 0.0) == np.inf
    seen_mask = np.array([True, True, False])
    out = route(
        np.array([True, False]), np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([[1.0], [1.0]]), seen_mask
    )
    np.testing.assert_allclose(out, [[0.9, 0.1, 0.0], [-0.4, -0.6, 1.0]])


def test_ood_gate_selected_on_validation_beats_the_unseen_expert_alone(data):
    protocol = GZSLProtocol(seed=0)
    record = protocol.run(data, "gated")
    assert {t["hparams"]["gate"] for t in record["selection"]["trials"]} == {"msp", "max-logit", "energy"}
    assert record["metrics"]["H"] > protocol.run(data, "eszsl")["metrics"]["H"] + 10
