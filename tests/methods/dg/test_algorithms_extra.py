"""SagNet, RSC, SelfReg, Fishr, XDED, RIDG: training, hand-checked cores, ERM at weight 0."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.methods import DG
from unseen.methods.dg.consistency import class_mean_rows, ensemble_distillation_loss, same_class_permutation
from unseen.methods.dg.gradients import (
    domain_gradient_variances,
    fishr_penalty,
    per_sample_head_grads,
    top_quantile_mask,
)
from unseen.methods.dg.style import content_randomize, style_randomize, unistyle


def _minibatches(shape, n_domains=3, n=8, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, *shape, generator=g), torch.randint(n_classes, (n,), generator=g))
        for _ in range(n_domains)
    ]


LOG_KEYS = {
    "sagnet": {"loss", "style_loss", "adv_loss"},
    "rsc": {"loss"},
    "selfreg": {"loss", "nll"},
    "fishr": {"loss", "nll", "penalty"},
    "xded": {"loss", "nll", "distill"},
    "ridg": {"loss", "nll", "penalty"},
}


@pytest.mark.parametrize("name", sorted(LOG_KEYS))
@pytest.mark.parametrize("shape", [(5,), (1, 8, 8)], ids=["features", "images"])
def test_trains_with_finite_documented_losses(name, shape):
    hparams = {"mlp_width": 16, **({"penalty_anneal_iters": 1} if name == "fishr" else {})}
    algo = DG[name](shape, 3, 3, hparams, seed=0)
    before = [p.detach().clone() for p in algo.network.parameters()]
    for step in range(3):
        logs = algo.update(_minibatches(shape, seed=step))
        assert set(logs) == LOG_KEYS[name] and all(math.isfinite(float(v)) for v in logs.values()), logs
    assert any(not torch.equal(a, b) for a, b in zip(before, algo.network.parameters(), strict=True))


@pytest.mark.parametrize("name", sorted(LOG_KEYS))
def test_same_seed_same_numbers(name):
    a, b = (DG[name]((5,), 3, 3, {"mlp_width": 8}, seed=3) for _ in range(2))
    for step in range(2):
        assert a.update(_minibatches((5,), seed=step)) == b.update(_minibatches((5,), seed=step))
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("name", "hparams"),
    [
        ("fishr", {"penalty_anneal_iters": 100}),
        ("xded", {"xded_lambda": 0.0, "xded_unistyle": False}),
        ("ridg", {"ridg_reg": 0.0}),
    ],
)
def test_zero_penalty_weight_is_erm(name, hparams):
    algo = DG[name]((5,), 3, 3, {"mlp_width": 8, **hparams}, seed=1)
    erm = DG["erm"]((5,), 3, 3, {"mlp_width": 8}, seed=1)
    for step in range(3):
        batches = _minibatches((5,), seed=step)
        assert algo.update(batches)["loss"] == pytest.approx(erm.update(batches)["loss"], rel=1e-6)
    for p, q in zip(algo.network.parameters(), erm.network.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


# --- RSC ----------------------------------------------------------------------------------------


def test_top_quantile_mask_mutes_the_top_fraction_like_numpy_percentile():
    values = torch.tensor([[6.0, 1.0, 5.0, 2.0, 4.0, 3.0], [0.0, 0.0, 1.0, 9.0, 0.0, 0.0]])
    mask = top_quantile_mask(values, 1 / 3, dim=1)
    # numpy's linear percentile at 66.7 of 1..6 is 4.33: the values 5 and 6 are muted
    assert mask[0].tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    expected = (values.numpy() < np.percentile(values.numpy(), 100 * 2 / 3, axis=1, keepdims=True)).astype(
        float
    )
    assert np.array_equal(mask.numpy(), expected)
    assert top_quantile_mask(torch.tensor([3.0, 1.0, 2.0, 4.0]), 0.5).tolist() == [0.0, 1.0, 1.0, 0.0]


def test_rsc_mutes_the_top_gradient_features_of_the_most_affected_samples():
    algo = DG["rsc"]((6,), 2, 1, {"mlp_width": 6, "rsc_f_drop_factor": 1 / 3, "rsc_b_drop_factor": 0.5})
    with torch.no_grad():  # true-class logit gradients are the head's rows: class 0 ranks features 4, 5 top
        algo.classifier.weight.copy_(torch.tensor([[1.0, 2, 3, 4, 5, 6], [6.0, 5, 4, 3, 2, 1]]) / 10)
        algo.classifier.bias.zero_()
    features = torch.tensor([[1.0, 1, 1, 1, 1, 1], [1.0, 1, 1, 1, 9, 9], [1.0] * 6, [1.0, 1, 1, 1, 1, 9]])
    y = torch.tensor([0, 0, 1, 0])
    mask = algo.self_challenging_mask(features.requires_grad_(), y)
    feature_mask = {0: [1.0, 1, 1, 1, 0, 0], 1: [0.0, 0, 1, 1, 1, 1]}
    # muting features 4, 5 (or 0, 1 for class 1) costs sample 1 most, then sample 3: those two keep the mute
    for row, label in enumerate(y.tolist()):
        expected = feature_mask[label] if row in (1, 3) else [1.0] * 6
        assert mask[row].tolist() == expected


# --- Fishr --------------------------------------------------------------------------------------


def _loop_head_grads(head, features, y):
    rows = []
    for f, t in zip(features, y, strict=True):
        loss = F.cross_entropy(head(f[None]), t[None])
        grads = torch.autograd.grad(loss, list(head.parameters()))
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("nonlinear", [False, True], ids=["linear", "nonlinear"])
def test_per_sample_head_gradients_equal_a_loop_over_samples(nonlinear):
    from unseen.nn.networks import classifier

    torch.manual_seed(0)
    head = classifier(6, 3, nonlinear)
    features, y = torch.randn(5, 6), torch.tensor([0, 2, 1, 1, 0])
    assert torch.allclose(
        per_sample_head_grads(head, features, y), _loop_head_grads(head, features, y), atol=1e-6
    )


def test_per_sample_head_gradients_stay_differentiable():
    torch.manual_seed(0)
    head = nn.Linear(4, 3)
    features = torch.randn(6, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    penalty = fishr_penalty(domain_gradient_variances(per_sample_head_grads(head, features, y), [3, 3]))
    (grad,) = torch.autograd.grad(penalty, features)
    assert grad.abs().sum() > 0


def test_fishr_penalty_by_hand():
    grads = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 1.0], [0.0, 5.0], [0.0, 3.0]])
    variances = domain_gradient_variances(grads, [2, 3])
    assert variances.tolist() == [[1.0, 1.0], [0.0, pytest.approx(8 / 3)]]
    mean = (variances[0] + variances[1]) / 2
    expected = ((variances - mean) ** 2).mean()
    assert fishr_penalty(variances).item() == pytest.approx(expected.item())


def test_fishr_moving_average_of_variances_by_hand():
    algo = DG["fishr"]((4,), 3, 2, {"mlp_width": 8, "ema": 0.9}, seed=0)
    steps = [_minibatches((4,), n_domains=2, seed=s) for s in range(2)]
    ema = torch.zeros_like(algo.variance_ema)
    for batches in steps:
        net = copy.deepcopy(algo)
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        grads = per_sample_head_grads(net.classifier, net.featurizer(x), y).detach()
        current = domain_gradient_variances(grads, [8, 8])
        smoothed = 0.9 * ema + 0.1 * current
        logs = algo.update(batches)
        # the penalty is read on the average divided by (1 - ema), as DomainBed
        assert logs["penalty"] == pytest.approx(fishr_penalty(smoothed / 0.1).item(), rel=1e-4)
        ema = smoothed
    assert torch.allclose(algo.variance_ema, ema, atol=1e-7) and int(algo.update_count) == 2


def test_fishr_resets_adam_when_the_penalty_switches_on():
    algo = DG["fishr"]((4,), 2, 2, {"mlp_width": 8, "penalty_anneal_iters": 2})
    optimizers = []
    for step in range(3):
        optimizers.append(algo.optimizer)
        algo.update(_minibatches((4,), n_domains=2, n_classes=2, seed=step))
    assert optimizers[0] is optimizers[1] and algo.optimizer is not optimizers[1]


# --- SelfReg, XDED, RIDG ------------------------------------------------------------------------


def test_same_class_permutation_only_swaps_within_classes():
    y = torch.tensor([2, 0, 2, 1, 0, 2, 0])
    perm = same_class_permutation(y, torch.Generator().manual_seed(0))
    assert torch.equal(y[perm], y) and sorted(perm.tolist()) == list(range(7))


def test_xded_distils_toward_the_class_mean_of_the_batch():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
    y = torch.tensor([0, 0, 1])
    assert torch.equal(class_mean_rows(logits, y, 2), torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 3.0]]))

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    t = 2.0
    teacher = [softmax(np.array([1.0, 0.0]) / t)] * 2 + [softmax(np.array([1.0, 3.0]) / t)]
    student = [softmax(row / t) for row in logits.numpy()]
    kl = sum((p * np.log(p / q)).sum() for p, q in zip(teacher, student, strict=True))
    assert ensemble_distillation_loss(logits, y, t).item() == pytest.approx(kl * t**2 / 3, rel=1e-5)


def test_xded_unistyle_normalizes_early_image_feature_maps():
    x = torch.randn(2, 3, 4, 4) * 5 + 2
    out = unistyle(x).view(2, 3, -1)
    assert torch.allclose(out.mean(-1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(out.var(-1), torch.ones(2, 3), atol=1e-4)
    images = DG["xded"]((1, 8, 8), 3, 2, {"xded_unistyle": True}, seed=0)
    plain = DG["xded"]((1, 8, 8), 3, 2, {"xded_unistyle": False}, seed=0)
    x = torch.randn(4, 1, 8, 8)
    assert not torch.allclose(images.predict(x), plain.predict(x))
    averaged = copy.deepcopy(images.network)  # weight-averaging wrappers copy the network
    assert torch.equal(averaged(x), images.predict(x))


def test_ridg_bank_starts_at_the_class_mean_then_moves_by_momentum():
    algo = DG["ridg"]((4,), 2, 2, {"mlp_width": 6, "momentum": 0.25}, seed=0)

    def class_mean_rationale(batches, c):
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        with torch.no_grad():
            r = algo.featurizer(x)[:, None, :] * algo.classifier.weight[None]
        return r[y == c].mean(0)

    first, second = (_minibatches((4,), n_domains=2, n_classes=2, seed=s) for s in range(2))
    mean_first = class_mean_rationale(first, 0)
    algo.objective(first, commit=False)
    assert not algo.bank_filled.any()  # a perturbed evaluation leaves the bank alone
    algo.update(first)
    assert torch.allclose(algo.rationale_bank[0], mean_first, atol=1e-6)
    mean_second = class_mean_rationale(second, 0)
    algo.update(second)
    assert torch.allclose(algo.rationale_bank[0], 0.75 * mean_first + 0.25 * mean_second, atol=1e-6)


def test_ridg_needs_a_linear_head():
    with pytest.raises(HyperparameterError, match="nonlinear_classifier"):
        DG["ridg"]((4,), 2, 2, {"nonlinear_classifier": True})


# --- SagNet -------------------------------------------------------------------------------------


def _stats(z):
    return z.mean(-1), z.var(-1)


def test_content_randomization_keeps_each_samples_style():
    x = torch.randn(5, 7) * torch.arange(1, 6)[:, None] + torch.arange(5)[:, None]
    out = content_randomize(x, torch.Generator().manual_seed(0))
    for a, b in zip(_stats(out), _stats(x), strict=True):
        assert torch.allclose(a, b, atol=1e-4)


def test_style_randomization_keeps_each_samples_content():
    x = torch.randn(5, 7) * torch.arange(1, 6)[:, None] + torch.arange(5)[:, None]
    out = style_randomize(x, torch.Generator().manual_seed(0))

    def content(z):
        return (z - z.mean(-1, keepdim=True)) / z.std(-1, keepdim=True)

    assert torch.allclose(content(out), content(x), atol=1e-3)
    assert not torch.allclose(_stats(out)[0], _stats(x)[0])


def test_sagnet_adversarial_step_leaves_the_heads_to_their_own_losses():
    algo = DG["sagnet"]((5,), 3, 3, {"mlp_width": 8, "sag_w_adv": 0.0}, seed=0)
    reference = DG["sagnet"]((5,), 3, 3, {"mlp_width": 8, "sag_w_adv": 1.0}, seed=0)
    batches = _minibatches((5,))
    algo.update(batches)
    reference.update(batches)
    # the adversarial weight changes the featurizer only: both heads took identical steps
    assert torch.equal(algo.classifier.weight, reference.classifier.weight)
    assert torch.equal(algo.style_classifier.weight, reference.style_classifier.weight)
    assert not torch.equal(algo.featurizer.layers[0].weight, reference.featurizer.layers[0].weight)
