"""CAD / CondCAD: the domain-bottleneck loss against a per-anchor reference loop, and the objective."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unseen.methods import DG
from unseen.methods.dg.contrastive import domain_bottleneck_loss


def reference(z, labels, domains, temperature, conditional):
    """DomainBed's flipped CAD loss written anchor by anchor."""
    values = []
    for i in range(len(z)):
        others = [j for j in range(len(z)) if j != i]
        same_label = [j for j in others if labels[j] == labels[i]]
        if not same_label:
            continue  # unconditional: the anchor needs a sample of its class; conditional: positives
        pool = same_label if conditional else others
        positives = [j for j in pool if domains[j] != domains[i]]
        if not positives:
            continue
        sims = {j: float(z[i] @ z[j]) / temperature for j in pool}
        denominator = math.log(sum(math.exp(s) for s in sims.values()))
        mass = math.log(sum(math.exp(sims[j] - denominator) for j in positives))
        values.append(-(temperature / 0.07) * mass)
    return sum(values) / len(values)


@pytest.mark.parametrize("conditional", [False, True], ids=["cad", "condcad"])
def test_the_bottleneck_loss_matches_a_reference_loop(conditional):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 3])  # class 3 has one sample
    domains = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    got = domain_bottleneck_loss(z, labels, domains, 0.1, conditional)
    assert got.item() == pytest.approx(reference(z, labels, domains, 0.1, conditional), rel=1e-9)
    z.requires_grad_(True)
    domain_bottleneck_loss(z, labels, domains, 0.1, conditional).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", ["cad", "condcad"])
def test_the_objective_is_pooled_cross_entropy_plus_the_weighted_bottleneck(name):
    algo = DG[name]((5,), 3, 3, {"mlp_width": 16, "lmbda": 2.0}, seed=0)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(6, 5, generator=g), torch.randint(3, (6,), generator=g)) for _ in range(3)]
    loss, logs = algo.objective(batches)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    with torch.no_grad():
        z = algo.featurizer(x)
        domains = torch.arange(3).repeat_interleave(6)
        expected = F.cross_entropy(algo.classifier(z), y) + 2.0 * domain_bottleneck_loss(
            z, y, domains, 0.1, conditional=name == "condcad"
        )
    torch.testing.assert_close(loss.detach(), expected)
