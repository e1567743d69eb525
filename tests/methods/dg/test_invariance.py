"""IB-ERM and CausIRL: their objectives against reference computations on the same features."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unseen.methods import DG
from unseen.methods.dg.penalties import coral_penalty, mmd_penalty


def _minibatches(n_domains=3, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 5, generator=g), torch.randint(3, (n,), generator=g)) for _ in range(n_domains)]


def _reference_nll(algo, minibatches):
    return torch.stack([F.cross_entropy(algo.predict(x), y) for x, y in minibatches]).mean()


def test_ib_erm_is_erm_until_the_anneal_step_then_adds_the_feature_variance():
    algo = DG["ib-erm"](
        (5,), 3, 3, {"mlp_width": 16, "ib_lambda": 10.0, "ib_penalty_anneal_iters": 2}, seed=0
    )
    batches = _minibatches()
    for step in range(3):
        optimizer = algo.optimizer
        with torch.no_grad():
            nll = _reference_nll(algo, batches)
            variance = torch.stack([algo.featurizer(x).var(dim=0).mean() for x, _ in batches]).mean()
        loss, logs = algo.objective(batches)
        expected = nll + (10.0 * variance if step >= 2 else 0.0)
        torch.testing.assert_close(loss.detach(), expected)
        torch.testing.assert_close(logs["penalty"], variance)
        assert (algo.optimizer is optimizer) == (step != 2)  # Adam restarts when the penalty switches on
        algo._step(loss)


@pytest.mark.parametrize(
    ("name", "distance"), [("causirl-coral", coral_penalty), ("causirl-mmd", mmd_penalty)]
)
def test_causirl_penalises_the_distance_between_two_randomly_cut_halves(name, distance):
    algo = DG[name]((5,), 3, 3, {"mlp_width": 16, "mmd_gamma": 3.0}, seed=0)
    batches = _minibatches()
    algo.generator.manual_seed(11)
    loss, logs = algo.objective(batches)
    draws = torch.Generator().manual_seed(11)
    cuts = [int(torch.randint(len(y), (), generator=draws)) for _, y in batches]
    with torch.no_grad():
        feats = [algo.featurizer(x) for x, _ in batches]
        first = torch.cat([f[:c] for f, c in zip(feats, cuts, strict=True)])
        second = torch.cat([f[c:] for f, c in zip(feats, cuts, strict=True)])
        expected = _reference_nll(algo, batches) + 3.0 * distance(first, second)
    torch.testing.assert_close(loss.detach(), expected)
    torch.testing.assert_close(logs["penalty"], distance(first, second))


def test_causirl_has_no_penalty_when_a_half_has_fewer_than_two_rows():
    algo = DG["causirl-coral"]((5,), 3, 1, {"mlp_width": 16})
    x, y = _minibatches(n_domains=1, n=2)[0]
    _, logs = algo.objective([(x, y)])  # two rows: one half has at most one
    assert logs["penalty"].item() == 0.0


def test_ib_irm_combines_irm_and_the_bottleneck_with_their_own_schedules():
    hparams = {"mlp_width": 16, "irm_lambda": 7.0, "irm_penalty_anneal_iters": 1}
    hparams |= {"ib_lambda": 5.0, "ib_penalty_anneal_iters": 2}
    algo = DG["ib-irm"]((5,), 3, 3, hparams, seed=0)
    batches = _minibatches()
    for step in range(3):
        optimizer = algo.optimizer
        loss, logs = algo.objective(batches)
        irm_weight, ib_weight = (1.0 if step < 1 else 7.0), (0.0 if step < 2 else 5.0)
        expected = logs["nll"] + irm_weight * logs["irm_penalty"] + ib_weight * logs["ib_penalty"]
        torch.testing.assert_close(loss.detach(), expected)
        with torch.no_grad():
            variance = torch.stack([algo.featurizer(x).var(dim=0).mean() for x, _ in batches]).mean()
        torch.testing.assert_close(logs["ib_penalty"], variance)
        assert (algo.optimizer is optimizer) == (step == 0)  # restarts at steps 1 and 2
        algo._step(loss)


def test_iga_penalises_the_spread_of_the_domain_gradients_and_vanishes_when_they_agree():
    algo = DG["iga"]((5,), 3, 3, {"mlp_width": 16, "penalty": 2.0}, seed=0)
    batches = _minibatches()
    params = list(algo.network.parameters())
    grads = [torch.autograd.grad(F.cross_entropy(algo.predict(x), y), params) for x, y in batches]
    mean = [torch.stack(g).mean(0) for g in zip(*grads, strict=True)]
    spread = sum((g - m).pow(2).sum() for grad in grads for g, m in zip(grad, mean, strict=True))
    loss, logs = algo.objective(batches)
    torch.testing.assert_close(logs["penalty"], spread)
    torch.testing.assert_close(loss.detach(), logs["loss"] + 2.0 * spread)
    same = [batches[0]] * 3
    _, agreeing = algo.objective(same)
    assert agreeing["penalty"].item() < 1e-12


def test_sand_mask_by_hand():
    from unseen.methods.dg.algorithms import sand_mask

    grads = torch.tensor([[1.0, 1.0, 2.0], [3.0, -1.0, 2.0]])  # two domains, three entries
    # entry 0: signs agree (1), var 2 -> tanh(10 * (1 - 0.5) / 2) ; entry 1: disagree (0) -> 0;
    # entry 2: agree, var 0 -> tanh(+inf) = 1
    mask = torch.tensor([torch.tanh(torch.tensor(2.5)).item(), 0.0, 1.0])
    expected = mask * grads.mean(0) / (1e-10 + mask.mean())
    torch.testing.assert_close(sand_mask(grads, tau=0.5, k=10.0), expected)
