"""DG algorithms: every one updates on tiny data; penalties match hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unseen.core.errors import HyperparameterError
from unseen.methods import DG
from unseen.methods.dg.algorithms import fish_meta_step, random_pairs
from unseen.methods.dg.penalties import (
    coral_penalty,
    irm_penalty,
    mean_pairwise,
    mean_pairwise_coral,
    mmd_penalty,
    vrex_penalty,
)


def _minibatches(shape, n_domains=3, n=8, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, *shape, generator=g), torch.randint(n_classes, (n,), generator=g))
        for _ in range(n_domains)
    ]


SMALL = {"mlp_width": 16, "irm_penalty_anneal_iters": 1, "vrex_penalty_anneal_iters": 1}
IMAGE_ONLY = {"itta"}  # mixes feature-map styles, so refuses feature vectors (tests/methods/tta/test_itta.py)


@pytest.mark.parametrize("name", sorted(DG))
@pytest.mark.parametrize("shape", [(5,), (1, 8, 8)], ids=["features", "images"])
def test_every_algorithm_updates_with_finite_losses(name, shape):
    if name in IMAGE_ONLY and len(shape) == 1:
        with pytest.raises(HyperparameterError, match=f"'{name}'.*feature vectors"):
            DG[name](shape, 3, 3, {})
        return
    algo = DG[name](
        shape, 3, 3, {k: v for k, v in SMALL.items() if k in {h.name for h in DG[name].all_hparams()}}
    )
    before = [p.detach().clone() for p in algo.network.parameters()]
    for step in range(3):
        logs = algo.update(_minibatches(shape, seed=step))
        assert logs and all(math.isfinite(float(v)) for v in logs.values()), logs
    assert any(not torch.equal(a, b) for a, b in zip(before, algo.network.parameters(), strict=True))
    assert algo.predict(_minibatches(shape)[0][0]).shape == (8, 3)


def test_same_seed_same_weights_and_updates():
    a, b = (DG["mixup"]((5,), 3, 3, {"mlp_width": 8}, seed=4) for _ in range(2))
    for step in range(3):
        assert a.update(_minibatches((5,), seed=step)) == b.update(_minibatches((5,), seed=step))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    c = DG["mixup"]((5,), 3, 3, {"mlp_width": 8}, seed=5)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_state_dict_round_trip_gives_identical_predictions():
    a = DG["coral"]((5,), 3, 3, {"mlp_width": 8}, seed=1)
    a.update(_minibatches((5,)))
    b = DG["coral"]((5,), 3, 3, {"mlp_width": 8}, seed=2)
    b.load_state_dict(a.state_dict())
    x = _minibatches((5,))[0][0]
    assert torch.equal(a.predict(x), b.predict(x))


def test_coral_penalty_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 2.0], [4.0, 1.0]])
    xn, yn = x.numpy(), y.numpy()
    mean = ((xn.mean(0) - yn.mean(0)) ** 2).mean()
    cov = ((np.cov(xn, rowvar=False) - np.cov(yn, rowvar=False)) ** 2).mean()
    assert coral_penalty(x, y).item() == pytest.approx(mean + cov, rel=1e-6)


def test_mmd_penalty_by_hand():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[3.0]])

    def k(a, b):
        return sum(np.exp(-g * (a - b) ** 2) for g in (0.001, 0.01, 0.1, 1, 10, 100, 1000))

    kxx = (k(0, 0) + k(0, 1) + k(1, 0) + k(1, 1)) / 4
    kyy = k(3, 3)
    kxy = (k(0, 3) + k(1, 3)) / 2
    assert mmd_penalty(x, y).item() == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-5)
    assert mmd_penalty(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_irm_penalty_is_the_product_of_half_batch_gradients():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, -1.0]])
    y = torch.tensor([0, 1, 1, 0])

    def grad_at_scale_one(rows):
        # d/ds CE(s * z, y) at s = 1 is mean over rows of (softmax(z) - onehot(y)) . z
        z = logits[rows]
        p = torch.softmax(z, 1)
        onehot = torch.nn.functional.one_hot(y[rows], 2).float()
        return ((p - onehot) * z).sum(1).mean().item()

    expected = grad_at_scale_one([0, 2]) * grad_at_scale_one([1, 3])
    assert irm_penalty(logits, y).item() == pytest.approx(expected, rel=1e-5)


def test_vrex_penalty_is_the_variance_of_domain_risks():
    assert vrex_penalty(torch.tensor([1.0, 2.0, 6.0])).item() == pytest.approx(np.var([1.0, 2.0, 6.0]))


def test_fish_meta_step_moves_toward_the_inner_weights():
    meta = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    inner = {"w": torch.tensor([3.0, 0.0]), "n": torch.tensor(5)}
    out = fish_meta_step(meta, inner, 0.5)
    assert torch.allclose(out["w"], torch.tensor([2.0, 1.0])) and int(out["n"]) == 5


def test_fish_update_equals_inner_loop_then_meta_step():
    algo = DG["fish"]((4,), 2, 2, {"mlp_width": 8, "meta_lr": 0.1}, seed=0)
    batches = _minibatches((4,), n_domains=2, n_classes=2)
    start = {k: v.clone() for k, v in algo.network.state_dict().items()}
    inner = __import__("copy").deepcopy(algo.network)
    opt = torch.optim.Adam(inner.parameters(), lr=algo.params["lr"])
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(inner(x), y).backward()
        opt.step()
    expected = fish_meta_step(start, inner.state_dict(), 0.1)
    algo.update(batches)
    for k, v in algo.network.state_dict().items():
        assert torch.allclose(v, expected[k], atol=1e-6)


def test_groupdro_upweights_the_worst_domain():
    algo = DG["groupdro"]((4,), 2, 2, {"mlp_width": 8, "groupdro_eta": 1.0})
    easy = (torch.zeros(8, 4), torch.zeros(8, dtype=torch.long))
    hard = (
        torch.randn(8, 4, generator=torch.Generator().manual_seed(0)) * 5,
        torch.ones(8, dtype=torch.long),
    )
    with torch.no_grad():
        algo.classifier.bias.copy_(torch.tensor([3.0, -3.0]))  # favours class 0: domain 2 is hard
    algo.update([easy, hard])
    assert algo.q[1] > algo.q[0]


def test_random_pairs_form_a_cycle_over_all_domains():
    pairs = random_pairs(4, torch.Generator().manual_seed(0))
    assert sorted(i for i, _ in pairs) == [0, 1, 2, 3] and sorted(j for _, j in pairs) == [0, 1, 2, 3]
    assert all(i != j for i, j in pairs)


def test_random_search_draws_follow_domainbed_ranges():
    (lr,) = [h for h in DG["erm"].all_hparams() if h.name == "lr"]
    draws = [lr.sample(seed) for seed in range(200)]
    assert all(10**-4.5 <= d <= 10**-2.5 for d in draws) and len(set(draws)) == 200
    assert lr.sample(3) == lr.sample(3)


def test_dann_alternates_discriminator_and_generator_steps():
    algo = DG["dann"]((5,), 3, 3, {"mlp_width": 8, "d_steps_per_g_step": 2})
    kinds = [next(iter(algo.update(_minibatches((5,), seed=s)))) for s in range(6)]
    # update_count 1..6: count % 3 < 2 is a discriminator step
    assert kinds == ["disc_loss", "gen_loss", "disc_loss", "disc_loss", "gen_loss", "disc_loss"]


def test_cdann_discriminator_sees_the_class():
    algo = DG["cdann"]((5,), 3, 3, {"mlp_width": 8})
    before = algo.class_embeddings.weight.detach().clone()
    algo.update(_minibatches((5,), seed=0))  # count 1: generator step
    algo.update(_minibatches((5,), seed=1))  # count 2: discriminator step trains the embeddings
    assert not torch.equal(before, algo.class_embeddings.weight)


def test_and_mask_keeps_only_agreeing_components_by_hand():
    from unseen.methods.dg.algorithms import and_mask

    grads = torch.tensor([[1.0, -2.0, 3.0, 0.5], [3.0, 2.0, 1.0, 0.5]])
    # signs agree on components 0, 2, 3 (kept fraction 3/4); mean gradient (2, 0, 2, 0.5)
    expected = torch.tensor([2.0, 0.0, 2.0, 0.5]) / 0.75
    assert torch.allclose(and_mask(grads, 1.0), expected)
    assert torch.allclose(and_mask(grads, 0.0), grads.mean(0))  # tau 0 keeps everything


def test_mldg_without_meta_test_term_is_one_step_on_the_mean_domain_loss():
    algo = DG["mldg"]((4,), 2, 3, {"mlp_width": 8, "mldg_beta": 0.0}, seed=0)
    batches = _minibatches((4,), n_domains=3, n_classes=2)
    reference = __import__("copy").deepcopy(algo.network)
    opt = torch.optim.Adam(reference.parameters(), lr=algo.params["lr"])
    opt.zero_grad()
    torch.stack([torch.nn.functional.cross_entropy(reference(x), y) for x, y in batches]).mean().backward()
    opt.step()
    algo.update(batches)  # each domain is meta-train exactly once in the random cycle
    for a, b in zip(algo.network.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_pairwise_coral_equals_the_mean_of_coral_over_pairs():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(n, 5, generator=g) * s for n, s in ((6, 1.0), (9, 2.0), (7, 0.5), (6, 1.5))]
    pairs = [coral_penalty(feats[i], feats[j]) for i in range(4) for j in range(i + 1, 4)]
    expected = float(torch.stack(pairs).mean())
    assert mean_pairwise_coral(feats).item() == pytest.approx(expected, rel=1e-6)
    assert mean_pairwise(coral_penalty, feats).item() == pytest.approx(expected, rel=1e-6)
    assert mean_pairwise_coral(feats[:1]).item() == 0.0


def test_feature_matching_runs_one_featurizer_pass_unless_batchnorm_uses_batch_statistics():
    """Per-domain passes only matter for BatchNorm in training mode (each domain its own statistics)."""
    g = torch.Generator().manual_seed(0)
    minibatches = [(torch.randn(4, 6, generator=g), torch.tensor([0, 1, 0, 1])) for _ in range(3)]
    model = DG["coral"]((6,), 2, 3, {}, seed=0)
    model.train()
    joint = model.domain_features(minibatches)
    alone = [model.featurizer(x) for x, _ in minibatches]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(joint, alone, strict=True))
    model.featurizer = torch.nn.Sequential(model.featurizer, torch.nn.BatchNorm1d(model.featurizer.n_outputs))
    per_domain = model.domain_features(minibatches)
    for f in per_domain:  # normalised with its own domain's batch statistics
        np.testing.assert_allclose(f.mean(0).detach(), 0.0, atol=1e-5)
