"""UDIM (Shin et al., ICLR 2024): its warm-up is SAM on ERM, and one full update matches a
reference loop built from per-sample autograd calls."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from unseen.core.errors import HyperparameterError
from unseen.methods import DG
from unseen.methods.dg.optimizers import UPDATE_RULES

HP = {"mlp_width": 8, "mlp_depth": 3}


def _minibatches(n_domains=2, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 5, generator=g), torch.randint(3, (n,), generator=g)) for _ in range(n_domains)]


def _grads(loss, params, create_graph=False):
    return list(torch.autograd.grad(loss, params, create_graph=create_graph))


def _adam_step(network, lr, grads):
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    for p, g in zip(network.parameters(), grads, strict=True):
        p.grad = g.detach().clone()
    optimizer.step()


def _assert_same_weights(a, b):
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_udim_warmup_is_sam_on_erm():
    udim = DG["udim"]((5,), 3, 2, {**HP, "rho": 0.1}, seed=3)
    erm = DG["erm"]((5,), 3, 2, HP, seed=3)
    _assert_same_weights(udim.network, erm.network)
    batches = _minibatches()
    udim.update(batches)
    UPDATE_RULES["sam"](erm, {"rho": 0.1}).update(batches)
    _assert_same_weights(udim.network, erm.network)


def test_udim_update_matches_a_per_sample_reference_loop():
    rho, rho_x, lam = 0.05, 2.0, 0.7
    hp = {**HP, "rho": rho, "udim_rho_x": rho_x, "udim_lambda": lam, "udim_warmup_steps": 0}
    udim = DG["udim"]((5,), 3, 2, hp, seed=1)
    net = copy.deepcopy(udim.network)
    featurizer, head = net[0], net[1]
    params = list(net.parameters())
    batches = _minibatches()
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])

    # the crafted domain: ascend L + rho |grad_w L| in data space, each coordinate unit-normed over the batch
    xs = x.clone().requires_grad_(True)
    loss = F.cross_entropy(net(xs), y)
    g = _grads(loss, params, create_graph=True)
    gnorm = torch.sqrt(sum((t**2).sum() for t in g))
    (gx,) = torch.autograd.grad(loss + rho * gnorm, xs)
    crafted = x + rho_x * gx / gx.pow(2).sum(0, keepdim=True).sqrt()
    g = [t.detach() for t in g]

    # SAM's gradient at w + rho g/|g|
    eps = [rho * t / gnorm.detach() for t in g]
    with torch.no_grad():
        for p, e in zip(params, eps, strict=True):
            p.add_(e)
    g_sam = _grads(F.cross_entropy(net(x), y), params)
    with torch.no_grad():
        for p, e in zip(params, eps, strict=True):
            p.sub_(e)

    # the inconsistency from per-sample head gradients, one autograd call per sample
    def sample_grads(inputs, labels):
        rows = []
        for xi, yi in zip(inputs, labels, strict=True):
            li = F.cross_entropy(head(featurizer(xi[None])), yi[None])
            gw, gb = torch.autograd.grad(li, [head.weight, head.bias], create_graph=True)
            rows.append((gw.reshape(-1), gb))
        return rows

    penalty = 0.0
    for d in range(2):
        sl = slice(4 * d, 4 * d + 4)
        src, crf = sample_grads(x[sl], y[sl]), sample_grads(crafted[sl], y[sl])
        src_flat = torch.stack([torch.cat(r) for r in src])
        crf_flat = torch.stack([torch.cat(r) for r in crf])
        mean = src_flat.mean(0)
        v_src = ((src_flat - mean) ** 2).mean(0)
        v_crf = ((crf_flat - mean) ** 2).mean(0)
        penalty = penalty + ((v_src - v_crf) ** 2).mean() / 4  # Fishr with two "domains"
        for k, size in enumerate((head.weight.numel(), head.bias.numel())):
            penalty = penalty + torch.stack([r[k].pow(2).sum() for r in crf]).mean() / size
    g_pen = _grads(penalty, params)
    _adam_step(net, udim.params["lr"], [s + lam * p for s, p in zip(g_sam, g_pen, strict=True)])

    logs = udim.update(batches)
    assert float(logs["inconsistency"]) == pytest.approx(float(penalty.detach()), rel=1e-5)
    _assert_same_weights(udim.network, net)


def test_udim_refuses_update_rules_because_it_perturbs_the_inputs_itself():
    with pytest.raises(HyperparameterError, match="single objective"):
        UPDATE_RULES["sam"](DG["udim"]((5,), 3, 2, HP))
