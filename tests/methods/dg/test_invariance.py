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
