"""The boundary-based OOD gate: boundaries, Sinkhorn and vMF draws by hand, honest gate data, routing."""

import math

import numpy as np
import pytest
import torch
from scipy.special import ive

from unseen.core.errors import NotFittedError
from unseen.data.model import ClassTable, TrainSet
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl import boundary_gate, hyperspherical
from unseen.methods.gzsl.gating import GatedGZSL
from unseen.protocols.gzsl import evaluate

FAST = GZSL["boundary-gate"].fast_hparams


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


@pytest.fixture(scope="module")
def fitted(data):
    GatedGZSL.cores.clear()
    return GZSL["boundary-gate"](**FAST).fit(data.train_set())


def rows(X):
    return {r.tobytes() for r in np.asarray(X, dtype=np.float32)}


def test_a_sample_is_routed_by_the_boundary_of_its_nearest_centre():
    centres = np.eye(3)[:2]  # classes 0 and 1 centred on e1 and e2
    b = boundary_gate.Boundaries(centres, thresholds=np.array([0.9, 0.5]))
    Z = np.array(
        [
            [1.0, 0.0, 0.0],  # on centre 0: inside
            [0.0, 0.6, 0.8],  # nearest centre 1 at cosine 0.6 >= 0.5: inside
            [0.8, 0.0, 0.6],  # nearest centre 0 at cosine 0.8 < 0.9: outside
            [0.0, 0.0, 1.0],  # orthogonal to both: outside
            [0.8, 0.6, 0.0],  # nearest is 0 (0.8 < 0.9); 1's looser boundary is not consulted
        ]
    )
    np.testing.assert_array_equal(b.inside(Z), [True, True, False, False, False])


def test_boundaries_accept_the_requested_share_of_training_latents():
    centres = np.eye(2)
    angles = np.array([0.0, 0.3, 0.6, 1.2, 0.1, 0.5])  # class 0 around e1, class 1 around e2
    labels = np.array([0, 0, 0, 0, 1, 1])
    Z = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    Z[labels == 1] = Z[labels == 1][:, ::-1]
    own = np.cos(angles)
    per_class = boundary_gate.fit_boundaries(Z, labels, centres, "class", 0.5)
    np.testing.assert_allclose(per_class.thresholds, [np.median(own[:4]), np.median(own[4:])])
    shared = boundary_gate.fit_boundaries(Z, labels, centres, "shared", 0.5)
    best = np.maximum(Z[:, 0], Z[:, 1])  # every cosine here is to the own centre except angle 1.2
    np.testing.assert_allclose(shared.thresholds, [np.median(best)] * 2)
    assert per_class.inside(Z).sum() == 3 and shared.inside(Z).sum() == 3
    everything = boundary_gate.fit_boundaries(Z, labels, centres, "class", 1.0)
    nothing = boundary_gate.fit_boundaries(Z, labels, centres, "shared", 0.0)
    assert everything.inside(-Z).all() and not nothing.inside(Z).any()
    empty = boundary_gate.fit_boundaries(Z[:4], labels[:4], centres, "class", 0.5)
    best_of_class_0 = np.maximum(Z[:4, 0], Z[:4, 1])  # a class without latents: the shared threshold
    assert empty.thresholds[1] == pytest.approx(np.median(best_of_class_0))


def test_sinkhorn_cost_by_hand():
    # one point each: the only plan moves all mass, cost |x - y|^2
    x, y = torch.tensor([[[0.0, 1.0]]]), torch.tensor([[[3.0, 5.0]]])
    assert hyperspherical.sinkhorn_cost(x, y, 0.1, 100, 1e-9).item() == pytest.approx(25.0)
    # two points each, C = [[0, c], [c, 0]]: the entropic plan is [[1, k], [k, 1]] / (2 (1 + k)) with
    # k = exp(-c / eps), so the cost is c k / (1 + k)
    p, q = [0.0, 0.0], [0.0, math.sqrt(0.2)]
    x, y = torch.tensor([[p, q]]), torch.tensor([[p, q]])
    k = math.exp(-0.2 / 0.1)
    cost = hyperspherical.sinkhorn_cost(x, y, 0.1, 100, 1e-9)
    assert cost.item() == pytest.approx(0.2 * k / (1 + k), rel=1e-5)


def test_aligner_loss_on_a_tiny_case():
    settings = hyperspherical.AlignerSettings(
        hidden=2, latent=2, kappa_floor=100.0, epochs=1, lr=1e-3, batch_size=1,
        align_samples=2, align_weight=0.1, sinkhorn_eps=1.0, sinkhorn_iters=100, sinkhorn_tol=1e-9,
    )  # fmt: skip
    net = hyperspherical.SphereAligner(2, 2, hidden=2, latent=2, n_seen=3, kappa_floor=100.0)
    with torch.no_grad():  # decoders output their last bias whatever the latent; uniform classifier
        net.dec_x[2].weight.zero_()
        net.dec_x[2].bias.copy_(torch.tensor([0.5, 0.5]))
        net.dec_a[2].weight.zero_()
        net.dec_a[2].bias.copy_(torch.tensor([1.0, 1.0]))
        net.classifier.weight.zero_()
        net.classifier.bias.zero_()
    x, a, y = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([2])
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    clouds_x, clouds_a = torch.stack([e1, e2])[None], torch.stack([e2, e1])[None]
    loss = hyperspherical.aligner_loss(net, x, a, y, e1[None], e2[None], clouds_x, clouds_a, settings)
    # L1: mean(|1 - .5|, |2 - .5|) = 1 and mean(|0 - 1|, |1 - 1|) = .5; NLL of a uniform 3-way
    # softmax = log 3; Sinkhorn with C = [[2, 0], [0, 2]] at eps 1: 2 k / (1 + k), k = exp(-2)
    k = math.exp(-2.0)
    assert loss.item() == pytest.approx(1.0 + 0.5 + math.log(3) + 0.1 * 2 * k / (1 + k), rel=1e-5)


@pytest.mark.parametrize(("m", "kappa"), [(16, 100.0), (64, 150.0)])
def test_vmf_draws_are_unit_vectors_with_the_right_mean_cosine(m, kappa):
    g = torch.Generator().manual_seed(0)
    mu = torch.nn.functional.normalize(torch.randn(3, m, generator=g), dim=1).requires_grad_()
    k = torch.full((3, 1), kappa, requires_grad=True)
    z = hyperspherical.sample_vmf(mu, k, 2000, g)
    assert z.shape == (2000, 3, m)
    np.testing.assert_allclose(z.norm(dim=-1).detach().numpy(), 1.0, atol=1e-5)
    mean_cos = (z * mu).sum(-1).mean(0).detach().numpy()
    expected = ive(m / 2, kappa) / ive(m / 2 - 1, kappa)  # E[mu . z] = A_m(kappa)
    np.testing.assert_allclose(mean_cos, expected, atol=0.01)
    (z * mu.detach()).sum().backward()  # reparameterised: gradients reach both parameters
    assert mu.grad.abs().sum() > 0 and k.grad.abs().sum() > 0 and torch.isfinite(k.grad).all()


def test_gate_routes_seen_and_unseen_apart_and_beats_the_uncalibrated_seen_expert(data, fitted):
    seen_in = fitted.inside_boundary(data.split_features("test_seen"))
    unseen_in = fitted.inside_boundary(data.split_features("test_unseen"))
    routing = (seen_in.sum() + (~unseen_in).sum()) / (len(seen_in) + len(unseen_in))
    assert seen_in.mean() > 0.7 and unseen_in.mean() < 0.1 and routing > 0.8
    X = data.split_features("test_seen")  # a sample's best class lies in the block it is routed to
    np.testing.assert_array_equal(data.classes.seen[fitted.scores(X).argmax(axis=1)], seen_in)
    gate = evaluate(fitted, data, None).metrics
    softmax = evaluate(GZSL["softmax"]().fit(data.train_set()), data, None).metrics
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert softmax["H"] == 0.0  # the seen expert alone never predicts an unseen class
    assert gate["H"] > eszsl["H"] + 10 and gate["H"] > 60


def test_gate_is_fitted_without_any_unseen_class_information(data, fitted, monkeypatch):
    seen_by_aligner = []
    real = boundary_gate.fit_aligner

    def spy(X, S, labels, *args, **kwargs):
        seen_by_aligner.append((X.numpy(), S.numpy()))
        return real(X, S, labels, *args, **kwargs)

    monkeypatch.setattr(boundary_gate, "fit_aligner", spy)
    train = data.train_set()
    unseen = ~train.classes.seen
    semantics = train.classes.semantics.copy()  # poison the unseen classes' semantics
    semantics[unseen] = np.random.default_rng(1).normal(0, 100, (unseen.sum(), semantics.shape[1]))
    c = train.classes
    poisoned = TrainSet(
        train.features, train.labels, ClassTable(c.names, c.seen, semantics, c.semantics_kind)
    )
    model = GZSL["boundary-gate"](**FAST).fit(poisoned)
    ((X, S),) = seen_by_aligner
    assert len(S) == train.classes.seen.sum()  # only the seen classes' semantics
    norm, core = model._core.norm, model._core
    train_rows = rows(norm(data.split_features("train")))
    assert rows(X) <= train_rows and not rows(X) & rows(norm(data.split_features("test_unseen")))
    # the boundaries come from the held-out rest of the training set
    assert len(X) + len(core.boundary_latents) == len(train_rows) and len(core.boundary_latents) > 0
    for split in ("test_seen", "test_unseen"):  # the same gate as without the poison
        Xs = data.split_features(split)
        np.testing.assert_array_equal(model.inside_boundary(Xs), fitted.inside_boundary(Xs))
    np.testing.assert_array_equal(model.boundaries().thresholds, fitted.boundaries().thresholds)


def test_candidates_differing_only_in_the_boundary_share_one_fit(data, fitted):
    other = GZSL["boundary-gate"](**FAST, boundary="shared", accept_quantile=0.8).fit(data.train_set())
    assert other._core is fitted._core
    assert not np.array_equal(other.boundaries().thresholds, fitted.boundaries().thresholds)
    with pytest.raises(NotFittedError):
        GZSL["boundary-gate"]().inside_boundary(data.split_features("test_seen"))
