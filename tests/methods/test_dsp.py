"""DSP on f-VAEGAN-D2 and TF-VAEGAN: the evolving network and fusion by hand, one evolution step,
the prototype-enhanced classifier input, the base methods' settings, and unseen accuracy beyond
ESZSL's on planted data."""

import numpy as np
import pytest
import torch

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.dsp import PrototypeEvolver, fuse, l1
from unseen.protocols.gzsl import evaluate

METHODS = ["f-vaegan-dsp", "tf-vaegan-dsp"]
TINY = {"epochs": 1, "hidden": 16, "cls_epochs": 1}


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(method, data, seed=0, **overrides):
    cls = GZSL[method]
    return cls(seed=seed, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


@pytest.fixture(scope="module")
def trained(data):
    """Each method fitted once with its fast settings, shared by the tests that only read it."""
    return {method: fit(method, data) for method in METHODS}


def test_prototype_evolver_is_a_residual_mlp_by_hand():
    vope = PrototypeEvolver(att_dim=2, hidden=2)
    with torch.no_grad():
        vope.net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        vope.net[0].bias.zero_()
        vope.net[2].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 2.0]]))
        vope.net[2].bias.copy_(torch.tensor([0.5, 0.0]))
    # z = (1, 2): hidden lrelu(1, -2) = (1, -0.4); correction (1 - 0.4 + 0.5, -0.8) = (1.1, -0.8)
    out = vope(torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(out, torch.tensor([[2.1, 1.2]]))


def test_fused_condition_and_l1_by_hand():
    s, evolved = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 4.0]])
    torch.testing.assert_close(fuse(s, evolved, 0.25), torch.tensor([[0.25, 3.0]]))
    assert torch.equal(fuse(s, evolved, 1.0), s) and torch.equal(fuse(s, evolved, 0.0), evolved)
    # rows |(1, -2)|_1 = 3 and |(0, 0.5)|_1 = 0.5, mean 1.75
    assert l1(torch.tensor([[1.0, -2.0], [0.0, 0.5]]), torch.zeros(2, 2)).item() == pytest.approx(1.75)


def test_one_evolution_step_moves_the_prototypes_towards_what_v2sm_reads(data):
    m = fit("f-vaegan-dsp", data, **TINY)
    idx = torch.cat([torch.nonzero(m._y == c)[:8, 0] for c in data.classes.seen_ids[:4]])
    x, labels = m._X[idx], m._y[idx]
    s = m._S[labels]
    with torch.no_grad():
        before = l1(m._vope(s), m._M(x)).item()
    vope_before = [p.clone() for p in m._vope.parameters()]
    m._after_generator_step(idx, torch.Generator())
    with torch.no_grad():
        read = m._M(x)  # V2SM took its own step first: VOPE's target is the updated reading
        assert l1(m._vope(s), read).item() < before
        # the conditions of the next step are the new VOPE's output for every class
        torch.testing.assert_close(m._conditions(labels), m._vope(s))
        torch.testing.assert_close(m._prototypes, m._vope(m._S))
    assert any(not torch.equal(a, b) for a, b in zip(vope_before, m._vope.parameters(), strict=True))


@pytest.mark.parametrize("method", METHODS)
def test_training_evolves_prototypes_towards_their_classes_visual_semantics(method, data, trained):
    m = trained[method]
    seen = torch.as_tensor(data.classes.seen_ids)
    with torch.no_grad():
        read = m._M(m._X)
        visual = torch.stack([read[m._y == c].mean(0) for c in seen])
        evolved, predefined = m._vope(m._S[seen]), m._S[seen]
    # the evolved prototypes sit much closer to the mean V2SM reading of their class's features
    assert l1(evolved, visual).item() < 0.6 * l1(predefined, visual).item()
    # and stay apart: no collapse of the classes onto one prototype
    unit = torch.nn.functional.normalize(evolved, dim=1)
    off_diagonal = (unit @ unit.T)[~torch.eye(len(seen), dtype=torch.bool)]
    assert off_diagonal.mean().item() < 0.8


def test_synthesis_conditions_on_the_fused_prototype(data):
    m = fit("f-vaegan-dsp", data, alpha=0.25, **TINY)
    z, a = torch.randn(3, m.noise_dim), m._S[torch.as_tensor(data.classes.unseen_ids[:3])]
    with torch.no_grad():
        expected = m._G(z, 0.25 * a + 0.75 * m._vope(a))
        torch.testing.assert_close(m._generate(z, a), expected)


@pytest.mark.parametrize(("method", "base_width"), [("f-vaegan-dsp", 0), ("tf-vaegan-dsp", 16)])
def test_classifier_sees_features_enhanced_with_their_evolved_prototype(method, base_width, data):
    m = fit(method, data, **TINY)
    d, k = data.dim, data.classes.semantics.shape[1]
    tf_part = k + base_width if base_width else 0  # TF-VAEGAN: [x, Dec(x), hidden(Dec, x)]
    assert m._clf.fc.in_features == d + tf_part + k
    X = m._X[:5]
    with torch.no_grad():
        torch.testing.assert_close(m._embed(X)[:, -k:], m._vope(m._M(X)))


@pytest.mark.parametrize("method", METHODS)
def test_unseen_accuracy_beats_eszsl_without_calibration(method, data, trained):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert evaluate(trained[method], data, None).metrics["U"] > eszsl["U"] + 10


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_numbers(method, data):
    X = data.split_features("test_unseen")
    a, b = fit(method, data, **TINY).scores(X), fit(method, data, **TINY).scores(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit(method, data, seed=1, **TINY).scores(X))


@pytest.mark.parametrize("dataset", ["CUB", "SUN", "FLO", "AWA1", "AWA2"])
def test_base_settings_are_the_base_methods_official_ones(dataset):
    for method, base in (("f-vaegan-dsp", "f-vaegan"), ("tf-vaegan-dsp", "tf-vaegan")):
        ours = GZSL[method](**GZSL[method].defaults_for(dataset)).params
        theirs = GZSL[base](**GZSL[base].defaults_for(dataset)).params
        assert {k: ours[k] for k in theirs} == theirs
        assert set(ours) - set(theirs) == {"alpha", "v2s_weight", "v2s_lr", "vope_lr"}


def test_dsp_is_a_plug_in_of_both_bases():
    for method, base in (("f-vaegan-dsp", "f-vaegan"), ("tf-vaegan-dsp", "tf-vaegan")):
        assert issubclass(GZSL[method], GZSL[base]) and GZSL[method].feedback == GZSL[base].feedback
