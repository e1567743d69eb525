"""The shared machinery of the feature-generating methods: sampling, scaling, critic, synthesis."""

import numpy as np
import pytest
import torch

from unseen.core.errors import HyperparameterError
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.generative import (
    BatchSampler,
    ConditionalGenerator,
    Critic,
    MinMaxScaler,
    SoftmaxClassifier,
    frozen,
    init_weights,
    stream,
    synthesize,
    train_softmax,
)

CPU = torch.device("cpu")


def test_batch_sampler_visits_every_sample_once_per_permutation_and_is_seeded():
    rows = BatchSampler(10, 4, stream(0, "s"), CPU).draw(5)  # 20 indices = two permutations
    assert rows.shape == (5, 4)
    flat = rows.flatten().tolist()
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    again = BatchSampler(10, 4, stream(0, "s"), CPU).draw(5)
    assert torch.equal(rows, again)
    assert not torch.equal(rows, BatchSampler(10, 4, stream(1, "s"), CPU).draw(5))
    assert BatchSampler(10, 4, stream(0, "s"), CPU).epoch().shape == (3, 4)


def test_named_streams_are_independent_and_reproducible():
    a1, b = torch.rand(3, generator=stream(0, "a")), torch.rand(3, generator=stream(0, "b"))
    assert torch.equal(a1, torch.rand(3, generator=stream(0, "a")))
    assert not torch.equal(a1, b)


def test_minmax_scaler_uses_training_range_and_leaves_constant_dims_unscaled():
    X = np.array([[0.0, 2.0, 5.0], [4.0, 6.0, 5.0]])
    scale = MinMaxScaler(X)
    np.testing.assert_allclose(scale(X), [[0, 0, 0], [1, 1, 0]])
    np.testing.assert_allclose(scale(np.array([[2.0, 10.0, 6.0]])), [[0.5, 2.0, 1.0]])
    np.testing.assert_allclose(MinMaxScaler(X, "none")(X), X)
    with pytest.raises(ValueError, match="feature_scaling"):
        MinMaxScaler(X, "zscore")


def linear_regime_critic() -> Critic:
    """A 2-d critic whose hidden units are always active: ``D(x, a) = 3 x1 + 4 x2 + 3 a + 110``,
    so ``||grad_x D|| = 5`` everywhere and the raw penalty is ``(5 - 1)^2 = 16``."""
    critic = Critic(2, 1, 2)
    with torch.no_grad():
        critic.net[0].weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
        critic.net[0].bias.fill_(10.0)
        critic.net[2].weight.copy_(torch.tensor([[3.0, 4.0]]))
        critic.net[2].bias.fill_(40.0)
    return critic


def test_wgan_gp_objective_of_a_linear_regime_critic_is_hand_computable():
    critic = linear_regime_critic()
    real = torch.tensor([[1.0, 1.0], [2.0, 0.0]])  # D = 7 + 3 a + 110, 6 + 3 a + 110
    fake = torch.tensor([[0.0, 0.0], [1.0, 2.0]])  # D = 0 + 3 a + 110, 11 + 3 a + 110
    att = torch.tensor([[0.5], [1.0]])
    objective, penalty = critic.backward_wgan_gp(real, fake, att, stream(0, "gp"), 10.0, scale=2.0)
    assert penalty.item() == pytest.approx(16.0)
    # 2 * (mean(0, 11) - mean(7, 6) + 10 * 16) = 2 * (5.5 - 6.5 + 160)
    assert objective.item() == pytest.approx(318.0)
    # the biases shift real and fake scores alike and do not enter the penalty
    torch.testing.assert_close(critic.net[0].bias.grad, torch.zeros(2))
    assert critic.net[2].bias.grad.item() == 0.0


def autograd_wgan_gp(critic, real, fake, att, generator, gp_weight, scale):
    """The objective of :meth:`Critic.backward_wgan_gp` by double backpropagation."""
    t = torch.rand((len(real), 1), generator=generator)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, att).sum(), x_hat, create_graph=True)
    penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
    objective = scale * (critic(fake, att).mean() - critic(real, att).mean() + gp_weight * penalty)
    objective.backward()
    return objective.detach(), penalty.detach()


@pytest.mark.parametrize("gp_weight, scale", [(10.0, 1.0), (torch.tensor(13.0), 10.0)])
def test_written_out_critic_gradient_equals_double_backpropagation(gp_weight, scale):
    torch.manual_seed(0)
    ours, reference = Critic(9, 4, 32), Critic(9, 4, 32)
    reference.load_state_dict(ours.state_dict())
    real, fake, att = torch.rand(12, 9), torch.rand(12, 9), torch.randn(12, 4)
    for critic in (ours, reference):  # gradients are added to what is there, as backward() does
        for p in critic.parameters():
            p.grad = torch.ones_like(p)
    got = ours.backward_wgan_gp(real, fake, att, stream(0, "gp"), gp_weight, scale)
    want = autograd_wgan_gp(reference, real, fake, att, stream(0, "gp"), gp_weight, scale)
    torch.testing.assert_close(got, want)
    for (name, p), q in zip(ours.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5, msg=name)
    assert all(not p.grad.requires_grad for p in ours.parameters())


def test_frozen_module_gets_no_weight_gradient_and_is_restored():
    critic = Critic(3, 2, 4)
    critic.net[2].bias.requires_grad_(False)
    x = torch.rand(5, 3, requires_grad=True)
    with frozen(critic):
        critic(x, torch.rand(5, 2)).sum().backward()
    assert x.grad is not None
    assert all(p.grad is None for p in critic.parameters())
    assert [p.requires_grad for p in critic.parameters()] == [True, True, True, False]


def test_init_weights_is_seeded_with_zero_biases():
    g1 = init_weights(ConditionalGenerator(3, 2, 8, 5), stream(0, "init"))
    g2 = init_weights(ConditionalGenerator(3, 2, 8, 5), stream(0, "init"))
    for p1, p2 in zip(g1.parameters(), g2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert torch.count_nonzero(g1.out[0].bias) == 0
    assert 0.01 < g1.hidden[0].weight.std().item() < 0.04


def test_synthesize_labels_and_chunking():
    S = torch.eye(4)
    gen = ConditionalGenerator(2, 4, 8, 3, "sigmoid")

    def run(chunk):
        return synthesize(gen, S, np.array([1, 3]), 5, 2, stream(0, "syn"), chunk=chunk)

    X, y = run(16384)
    assert X.shape == (10, 3) and y.tolist() == [1] * 5 + [3] * 5
    X_small, _ = run(3)
    torch.testing.assert_close(X, X_small)


def test_softmax_classifier_learns_separable_data_and_reports_every_epoch():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = torch.as_tensor(np.eye(3)[y] * 3 + rng.normal(0, 0.3, (300, 3)), dtype=torch.float32)
    seen = []
    clf = train_softmax(
        X, torch.as_tensor(y), 3, 5, stream(0, "c"), lr=1e-2, on_epoch=lambda e, c: seen.append(e)
    )
    assert seen == [1, 2, 3, 4, 5]
    assert (clf(X).argmax(1).numpy() == y).mean() > 0.95


def test_softmax_classifier_takes_the_steps_of_autograd_and_torch_adam():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(90, 6, generator=g), torch.randint(0, 4, (90,), generator=g)
    clf = train_softmax(X, y, 4, 3, stream(0, "c"), lr=1e-2, beta1=0.5, batch_size=16)

    gen = stream(0, "c")
    reference = init_weights(SoftmaxClassifier(6, 4), gen)
    opt = torch.optim.Adam(reference.parameters(), lr=1e-2, betas=(0.5, 0.999))
    sampler = BatchSampler(90, 16, gen, torch.device("cpu"))
    for _ in range(3):
        for idx in sampler.epoch():
            opt.zero_grad()
            torch.nn.functional.nll_loss(reference(X[idx]), y[idx]).backward()
            opt.step()
    torch.testing.assert_close(clf.fc.weight, reference.fc.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(clf.fc.bias, reference.fc.bias, rtol=0, atol=1e-6)


def test_dataset_defaults_are_keyed_by_xlsa17_name():
    cls = GZSL["f-clswgan"]
    assert cls.defaults_for("CUB") == cls.defaults_for("synthetic:CUB") == cls.dataset_defaults["CUB"]
    assert cls.defaults_for("synthetic:CUB/att_splits.mat") == cls.dataset_defaults["CUB"]
    assert cls.defaults_for("FLO")["cls_weight"] == 0.1
    assert cls.defaults_for("mnist-zsl") == {}


@pytest.mark.parametrize("name", ["epochs", "cls_epochs", "syn_per_class"])
def test_non_positive_lengths_are_rejected_with_a_clear_error(name):
    data = synthetic_dataset("AWA2", seed=0, dim=8, scale=0.02)
    with pytest.raises(HyperparameterError, match=name):
        GZSL["f-clswgan"](**{name: 0}).fit(data.train_set())
