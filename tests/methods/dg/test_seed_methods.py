"""The seeds' DG methods: the GSAM and SAGM update rules, DRM and the MixStyle featurizer option,
each against a computation by hand or a reference loop."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from unseen.core.errors import HyperparameterError
from unseen.methods import DG
from unseen.methods.dg.optimizers import UPDATE_RULES
from unseen.nn.mixstyle import mixstyle


def _minibatches(shape=(5,), n_domains=3, n=8, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, *shape, generator=g), torch.randint(n_classes, (n,), generator=g))
        for _ in range(n_domains)
    ]


def _erm_like(seed=0):
    """RIDG without its penalty: a single-objective algorithm whose objective is ERM's."""
    return DG["ridg"]((5,), 3, 3, {"mlp_width": 8, "ridg_reg": 0.0}, seed=seed)


def _flat_grad(network, batches, offset=None):
    """ERM's gradient (one flat vector) at the network's weights plus ``offset`` (flat)."""
    params = list(network.parameters())
    if offset is not None:
        _shift(params, offset)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    grads = torch.autograd.grad(F.cross_entropy(network(x), y), params)
    if offset is not None:
        _shift(params, -offset)
    return torch.cat([g.reshape(-1) for g in grads])


def _shift(params, flat):
    with torch.no_grad():
        start = 0
        for p in params:
            p.add_(flat[start : start + p.numel()].view_as(p))
            start += p.numel()


def _step_reference(network, lr, flat_direction):
    """One Adam step of ``network`` (a copy) with the given flat gradient."""
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    start = 0
    for p in network.parameters():
        p.grad = flat_direction[start : start + p.numel()].view_as(p).clone()
        start += p.numel()
    optimizer.step()


def _assert_same_weights(a, b):
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_gsam_steps_along_the_perturbed_gradient_minus_alpha_times_the_orthogonal_part():
    algo = _erm_like()
    reference = copy.deepcopy(algo.network)
    batches = _minibatches()
    rho, alpha = 0.1, 0.3
    g = _flat_grad(reference, batches)
    g_p = _flat_grad(reference, batches, rho * g / g.norm())
    # decomposition by hand: g = parallel + orthogonal with respect to g_p
    parallel = (g @ g_p) / (g_p @ g_p) * g_p
    orthogonal = g - parallel
    assert abs(float(orthogonal @ g_p)) < 1e-6
    _step_reference(reference, algo.params["lr"], g_p - alpha * orthogonal)

    UPDATE_RULES["gsam"](algo, {"rho": rho, "gsam_alpha": alpha}).update(batches)
    _assert_same_weights(algo.network, reference)

    sam, gsam0 = _erm_like(), _erm_like()  # alpha = 0 is SAM
    UPDATE_RULES["sam"](sam, {"rho": rho}).update(batches)
    UPDATE_RULES["gsam"](gsam0, {"rho": rho, "gsam_alpha": 0.0}).update(batches)
    _assert_same_weights(sam.network, gsam0.network)


def test_sagm_steps_along_the_mean_of_the_gradient_and_the_shifted_perturbed_gradient():
    algo = _erm_like()
    reference = copy.deepcopy(algo.network)
    batches = _minibatches(seed=1)
    rho, alpha = 0.05, 0.02
    g = _flat_grad(reference, batches)
    # the perturbed point: a step back along g by alpha, then SAM's ascent rho g / |g|
    g_p = _flat_grad(reference, batches, rho * g / g.norm() - alpha * g)
    _step_reference(reference, algo.params["lr"], (g + g_p) / 2)

    UPDATE_RULES["sagm"](algo, {"rho": rho, "sagm_alpha": alpha}).update(batches)
    _assert_same_weights(algo.network, reference)


# --- DRM ----------------------------------------------------------------------------------------


def test_drm_loss_is_the_mean_of_own_head_and_shared_head_risks_and_prediction_picks_by_entropy():
    algo = DG["drm"]((5,), 3, 3, {"mlp_width": 8}, seed=0)
    heads = algo.classifier.heads
    assert len(heads) == 4  # one per training domain and the shared one
    batches = _minibatches(seed=2)
    loss, _ = algo.objective(batches)
    expected = 0.0
    for d, (x, y) in enumerate(batches):
        z = algo.featurizer(x)
        own = F.cross_entropy(heads[d](z), y)
        shared = F.cross_entropy(heads[3](z), y)
        expected += (own + shared).item() / 2
    assert loss.item() == pytest.approx(expected / 3, rel=1e-6)

    # prediction: the head whose predictions on the batch have the lowest mean entropy
    with torch.no_grad():
        heads[1].weight.mul_(50.0)  # confident head
        x = batches[0][0]
        z = algo.featurizer(x)
        entropies = []
        for head in heads:
            p = head(z).softmax(1)
            entropies.append(float(-(p * p.log()).sum(1).mean()))
        best = min(range(4), key=entropies.__getitem__)
        assert best == 1
        assert torch.allclose(algo.predict(x), heads[best](z))
        # per sample: each row from its own lowest-entropy head
        algo.classifier.per_sample = True
        rows = torch.stack([head(z) for head in heads])  # (heads, n, classes)
        row_entropy = -(rows.softmax(2) * rows.log_softmax(2)).sum(2)
        picked = torch.stack([rows[int(row_entropy[:, i].argmin()), i] for i in range(len(x))])
        assert torch.allclose(algo.predict(x), picked)


# --- MixStyle -----------------------------------------------------------------------------------


def test_mixstyle_mixes_each_samples_channel_statistics_with_another_samples_by_hand():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g) * 2 + 1
    weights = torch.tensor([0.2, 0.9, 0.5, 1.0])
    perm = torch.tensor([2, 0, 3, 1])
    out = mixstyle(x, weights, perm)
    for i in range(4):
        for c in range(3):
            own, other = x[i, c], x[int(perm[i]), c]
            mean = weights[i] * own.mean() + (1 - weights[i]) * other.mean()
            std = weights[i] * (own.var() + 1e-6).sqrt() + (1 - weights[i]) * (other.var() + 1e-6).sqrt()
            expected = (own - own.mean()) / (own.var() + 1e-6).sqrt() * std + mean
            assert torch.allclose(out[i, c], expected, atol=1e-5)
    assert torch.allclose(out[3], x[3], atol=1e-5)  # weight 1: its own style


def test_mixstyle_option_acts_after_the_first_two_blocks_in_training_only():
    shape = (1, 8, 8)
    plain = DG["erm"](shape, 3, 3, {}, seed=0)
    mixed = DG["erm"](shape, 3, 3, {"mixstyle": True, "mixstyle_p": 1.0}, seed=0)
    layers = mixed.featurizer.style_layers()
    assert len(layers) == 2 and all(layer._forward_hooks for layer in layers)
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(1))
    mixed.eval(), plain.eval()
    assert torch.equal(mixed.predict(x), plain.predict(x))  # evaluation: untouched
    mixed.train(), plain.train()
    assert not torch.allclose(mixed.predict(x), plain.predict(x))
    with pytest.raises(HyperparameterError, match="unknown hyperparameter.*mixstyle"):
        DG["erm"]((5,), 3, 3, {"mixstyle": True})  # feature vectors have no style statistics
