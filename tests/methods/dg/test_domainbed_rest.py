"""DomainBed's later algorithms (docs/dg.md, "DomainBed's later additions"): each one's defining
computation against a reference written out step by step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unseen.methods import DG


def _minibatches(shape=(5,), n_domains=3, n=8, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, *shape, generator=g), torch.randint(n_classes, (n,), generator=g))
        for _ in range(n_domains)
    ]


def test_arm_appends_each_domain_batchs_mean_context_and_trains_the_context_net():
    # Feature vectors: the context has the input's width (images: one channel of the image's size).
    algo = DG["arm"]((5,), 3, 3, {"batch_size": 8, "mlp_width": 16}, seed=0)
    batches = _minibatches()
    adapted = algo.featurizer
    with torch.no_grad():
        context = adapted.context_net(torch.cat([x for x, _ in batches]))  # BatchNorm over the pooled batch
        logits = []
        for d, (x, _) in enumerate(batches):
            mean_context = context[8 * d : 8 * d + 8].mean(0, keepdim=True).repeat(8, 1)
            logits.append(algo.classifier(adapted.featurizer(torch.cat([x, mean_context], 1))))
        expected = F.cross_entropy(torch.cat(logits), torch.cat([y for _, y in batches]))
    loss, _ = algo.objective(batches)
    torch.testing.assert_close(loss.detach(), expected)

    algo.eval()  # prediction: groups of batch_size rows when they divide the batch, else one group
    x = torch.cat([batches[0][0], batches[1][0]])
    with torch.no_grad():
        together = algo.predict(x)
        apart = torch.cat([algo.predict(batches[0][0]), algo.predict(batches[1][0])])
        torch.testing.assert_close(together, apart)
        changed = x.clone()
        changed[0] += 1.0  # another input of the group changes the other rows' predictions
        assert not torch.allclose(algo.predict(changed)[1:8], together[1:8])
        torch.testing.assert_close(algo.predict(changed)[8:], together[8:])
        assert not torch.allclose(algo.predict(x[:7]), together[:7])  # 7 rows: one group of 7
    algo.train()
    before = [p.detach().clone() for p in adapted.context_net.parameters()]
    algo.update(batches)
    assert all(not torch.equal(a, p) for a, p in zip(before, adapted.context_net.parameters(), strict=True))


def test_mtl_classifies_features_beside_the_domains_moving_mean_embedding():
    algo = DG["mtl"]((5,), 3, 3, {"mlp_width": 16, "mtl_ema": 0.75}, seed=0)
    embeddings = torch.zeros(3, 16)
    for step in range(3):
        batches = _minibatches(seed=step)
        with torch.no_grad():
            expected, updated = 0.0, embeddings.clone()
            for d, (x, y) in enumerate(batches):
                f = algo.featurizer.featurizer(x)
                updated[d] = 0.75 * f.mean(0) + 0.25 * embeddings[d]
                joined = torch.cat([f, updated[d].repeat(len(f), 1)], 1)
                expected = expected + F.cross_entropy(algo.classifier(joined), y)  # a sum over domains
        loss, _ = algo.objective(batches)
        torch.testing.assert_close(loss.detach(), expected)
        torch.testing.assert_close(algo.embeddings, updated)
        embeddings = updated
        algo._step(loss)
    x = _minibatches(seed=9)[0][0]
    with torch.no_grad():  # prediction: the batch's own mean feature is the embedding
        f = algo.featurizer.featurizer(x)
        expected = algo.classifier(torch.cat([f, f.mean(0).repeat(len(f), 1)], 1))
        torch.testing.assert_close(algo.predict(x), expected)


def _kde_quantile_reference(values, q):
    """The q-quantile of a Gaussian KDE (bandwidth 1.06 std n^-1/5), by bisection in float64."""
    import statistics

    n = len(values)
    bandwidth = 1.06 * statistics.stdev(values) * n**-0.2

    def cdf(t):
        return sum(0.5 * (1 + math.erf((t - v) / (bandwidth * math.sqrt(2)))) for v in values) / n

    low, high = min(values) - 10 * bandwidth, max(values) + 10 * bandwidth
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (low, middle) if cdf(middle) > q else (middle, high)
    return (low + high) / 2


def test_eqrm_is_erm_during_burn_in_then_minimises_the_kde_quantile_of_the_domain_risks():
    hparams = {"mlp_width": 16, "eqrm_burnin_iters": 1, "eqrm_quantile": 0.8, "eqrm_lr": 1e-4}
    algo = DG["eqrm"]((5,), 3, 4, hparams, seed=0)
    batches = _minibatches(n_domains=4, seed=1)
    for step in range(2):
        with torch.no_grad():
            risks = [float(F.cross_entropy(algo.predict(x), y)) for x, y in batches]
        optimizer = algo.optimizer
        loss, _ = algo.objective(batches)
        if step == 0:
            assert loss.item() == pytest.approx(sum(risks) / 4, rel=1e-6)
            assert algo.optimizer is optimizer
        else:
            assert loss.item() == pytest.approx(_kde_quantile_reference(risks, 0.8), rel=1e-5)
            assert min(risks) < loss.item() < max(risks) + 1.0
            assert algo.optimizer is not optimizer and algo.optimizer.param_groups[0]["lr"] == 1e-4
        algo._step(loss)


def test_rdm_matches_the_worst_domains_loss_distribution_to_all_losses_after_the_anneal():
    import statistics

    hparams = {"mlp_width": 16, "rdm_penalty_anneal_iters": 1, "rdm_lambda": 2.0, "variance_weight": 0.5}
    algo = DG["rdm"]((5,), 3, 3, {**hparams, "rdm_lr": 1e-4}, seed=0)
    batches = _minibatches(seed=2)
    batches[1] = (batches[1][0][:5], batches[1][1][:5])  # domains of different sizes
    gammas = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)

    def k(a, b):
        return sum(sum(math.exp(-g * (u - v) ** 2) for g in gammas) for u in a for v in b) / (len(a) * len(b))

    for step in range(2):
        with torch.no_grad():
            per_sample = [
                [float(F.cross_entropy(algo.predict(x[i : i + 1]), y[i : i + 1])) for i in range(len(y))]
                for x, y in batches
            ]
        means = [sum(s) / len(s) for s in per_sample]
        worst, pooled = per_sample[means.index(max(means))], [v for s in per_sample for v in s]
        mmd = k(worst, worst) + k(pooled, pooled) - 2 * k(worst, pooled)
        variance = statistics.variance(pooled) + statistics.variance(worst)
        optimizer = algo.optimizer
        loss, logs = algo.objective(batches)
        assert logs["matching"].item() == pytest.approx(mmd, rel=1e-4, abs=1e-6)
        assert logs["variance"].item() == pytest.approx(variance, rel=1e-5)
        expected = sum(means) / 3 + (2.0 * mmd + 0.5 * variance if step == 1 else 0.0)
        assert loss.item() == pytest.approx(expected, rel=1e-5)
        assert (algo.optimizer is optimizer) == (step == 0)
        algo._step(loss)
    assert algo.optimizer.param_groups[0]["lr"] == 1e-4


def test_trm_adds_the_influence_corrected_transfer_risk_of_each_domains_fitted_head():
    import copy

    hparams = {"mlp_width": 16, "iters": 0, "cos_lambda": 0.5, "groupdro_eta": 0.1}
    algo = DG["trm"]((5,), 3, 3, hparams, seed=0)
    batches = _minibatches(seed=3)
    reference = copy.deepcopy(algo)
    logs = algo.update(batches)

    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    features = reference.featurizer(x)
    nll = F.cross_entropy(reference.classifier(features), y).detach()
    parts, labels = features.detach().split(8), [b[1] for b in batches]
    heads = [(h.weight.detach().clone(), h.bias.detach().clone()) for h in reference.heads]
    for _ in range(30):  # each head: plain gradient descent, lr 0.1, on its own domain
        for d, (w, b) in enumerate(heads):
            w.requires_grad_(True), b.requires_grad_(True)
            gw, gb = torch.autograd.grad(F.cross_entropy(parts[d] @ w.T + b, labels[d]), [w, b])
            heads[d] = (w.detach() - 0.1 * gw, b.detach() - 0.1 * gb)
    terms, weighted = [], {}
    for q, (w, b) in enumerate(heads):

        def own_loss(flat, q=q, b=b):
            return F.cross_entropy(parts[q] @ flat.view(3, 16).T + b, labels[q])

        flat = w.flatten().requires_grad_(True)
        hessian = torch.autograd.functional.hessian(own_loss, flat.detach())
        transfer = sum(
            0.5 * F.cross_entropy(parts[p] @ flat.view(3, 16).T + b, labels[p]) for p in range(3) if p != q
        )
        (g_transfer,) = torch.autograd.grad(transfer, flat)
        (g_own,) = torch.autograd.grad(own_loss(flat), flat)
        estimate, term = g_transfer.clone(), g_transfer.clone()
        for _ in range(10):  # the Neumann series of H^-1 g, from its first term
            term = term - hessian @ term
            estimate = estimate + term
        assert estimate.abs().max() < 10  # the series did not stop early
        terms.append(transfer.item() - 0.5 * (estimate @ g_own).item())
        for p in range(3):
            if p != q:
                weighted[q, p] = 0.5 * float(F.cross_entropy(parts[p] @ w.T + b, labels[p]))
    assert logs["nll"].item() == pytest.approx(float(nll), rel=1e-6)
    assert logs["loss"].item() == pytest.approx(float(nll) + sum(terms) / 3, rel=1e-4)
    for (q, p), value in weighted.items():  # alpha: rows renormalised, then exp(eta x weighted loss)
        assert algo.alpha[q, p].item() == pytest.approx(0.5 * math.exp(0.1 * value), rel=1e-5)


def test_transfer_adversary_widens_the_domain_risk_gap_inside_the_ball_around_the_classifier():
    from unseen.methods.dg.transferability import loss_gap, project_to_ball

    features = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    labels = [torch.tensor([0]), torch.tensor([0])]
    head = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    # domain 0: cross-entropy log(1 + e^-2); domain 1: log 2
    torch.testing.assert_close(
        loss_gap(head, features, labels), torch.tensor(math.log(2) - math.log1p(math.exp(-2)))
    )
    centre = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        centre.weight.zero_()
    project_to_ball(head, centre, 0.5)  # at distance 2: pulled back to 0.5 along the same direction
    torch.testing.assert_close(head.weight, torch.tensor([[0.5, 0.0], [0.0, 0.0]]))
    project_to_ball(head, centre, 1.0)  # inside: unchanged
    torch.testing.assert_close(head.weight, torch.tensor([[0.5, 0.0], [0.0, 0.0]]))

    algo = DG["transfer"](
        (5,), 3, 3, {"mlp_width": 16, "delta": 0.05, "lr_d": 0.5, "d_steps_per_g": 3}, seed=0
    )
    batches = _minibatches(seed=4)
    algo.update(batches)
    distance = torch.sqrt(
        sum(
            (a - c).pow(2).sum()
            for a, c in zip(algo.adversary.parameters(), algo.classifier.parameters(), strict=True)
        )
    )
    assert 0.0 < distance.item() <= 0.05 + 1e-6
    with torch.no_grad():
        parts, ys = [algo.featurizer(x) for x, _ in batches], [y for _, y in batches]
        assert loss_gap(algo.adversary, parts, ys) > loss_gap(algo.classifier, parts, ys)


def test_erm_plus_plus_probes_linearly_then_predicts_with_the_moving_average_of_its_iterates():
    algo = DG["erm++"](
        (5,), 3, 3, {"mlp_width": 16, "linear_steps": 1, "lr": 0.01, "linear_lr": 0.01}, seed=0
    )
    algo.sma_start = 3  # DomainBed's 600, shortened
    iterates = []
    for step in range(1, 6):
        featurizer_before = [p.detach().clone() for p in algo.student[0].parameters()]
        algo.update(_minibatches(seed=step))
        moved = any(
            not torch.equal(a, p)
            for a, p in zip(featurizer_before, algo.student[0].parameters(), strict=True)
        )
        assert moved == (step > 2)  # updates 1 and 2 (linear_steps + 1) train the classifier alone
        iterates.append([p.detach().clone() for p in algo.student.parameters()])
        # the average: the current weights until update sma_start - 1, then the mean since it
        window = iterates[-1:] if step < 2 else iterates[1:]
        for i, p in enumerate(algo.network.parameters()):
            torch.testing.assert_close(p, torch.stack([w[i] for w in window]).mean(0))
    x = _minibatches(seed=9)[0][0]
    with torch.no_grad():
        torch.testing.assert_close(algo.predict(x), algo.classifier(algo.featurizer(x)))
        assert not torch.allclose(algo.predict(x), algo.student(x))


def test_urm_fools_a_discriminator_of_uniform_noise_that_then_takes_its_own_step():
    import copy

    hparams = {"mlp_width": 16, "urm_adv_lambda": 0.2, "urm_discriminator_lr": 0.01}
    algo = DG["urm"]((5,), 3, 3, hparams, seed=0)
    batches = _minibatches(seed=5)
    reference, draws = copy.deepcopy(algo), torch.Generator()
    draws.set_state(algo.generator.get_state())
    logs = algo.update(batches)

    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    features = reference.featurizer(x)
    assert features.abs().max() < 1  # the tanh output
    ones, zeros = torch.ones(24), torch.zeros(24)
    disc = reference.discriminator
    with torch.no_grad():
        fooling = F.binary_cross_entropy_with_logits(disc(features).squeeze(1), ones)
        expected = F.cross_entropy(reference.classifier(features), y) + 0.2 * fooling
    assert logs["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    noise = -1 + 2 * torch.rand(features.shape, generator=draws)  # uniform on tanh's range
    disc_loss = F.binary_cross_entropy_with_logits(
        disc(noise).squeeze(1), ones
    ) + 0.2 * F.binary_cross_entropy_with_logits(disc(features.detach()).squeeze(1), zeros)
    assert logs["disc_loss"].item() == pytest.approx(disc_loss.item(), rel=1e-6)
    grads = torch.autograd.grad(disc_loss, list(disc.parameters()))
    for before, after, g in zip(disc.parameters(), algo.discriminator.parameters(), grads, strict=True):
        # Adam's first step: lr x g / (|g| + eps)
        torch.testing.assert_close(after, before - 0.01 * g / (g.abs() + 1e-8), atol=1e-6, rtol=1e-5)


def test_adrmx_contrastive_loss_matches_an_anchor_loop_and_the_players_alternate():
    from unseen.methods.dg.disentangle import domain_weighted_supcon

    g = torch.Generator().manual_seed(6)
    features = torch.randn(9, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1, 2, 0, 1, 0, 3])  # class 3: an anchor without positives
    domains = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    z = features / features.norm(dim=1, keepdim=True)
    total, kept = 0.0, 0
    for i in range(9):
        terms = {
            j: (0.8 if domains[j] == domains[i] else 0.2) * math.exp(float(z[i] @ z[j]) / 0.07)
            for j in range(9)
            if j != i
        }
        positives = [j for j in terms if labels[j] == labels[i]]
        if not positives:
            continue
        denominator = sum(terms.values()) + 1e-5
        total += sum(math.log(terms[j] / denominator + 1e-5) for j in positives) / len(positives)
        kept += 1
    got = domain_weighted_supcon(features, labels, domains, lam=0.8)  # same domain 0.8, others 0.2
    assert got.item() == pytest.approx(-total / (kept + 1), rel=1e-9)

    algo = DG["adrmx"]((5,), 3, 3, {"mlp_depth": 3, "mlp_width": 16}, seed=0)
    for step in range(1, 4):  # d_steps_per_g_step = 2: the discriminator at updates 1 and 3
        disc = [p.detach().clone() for p in algo.discriminator.parameters()]
        domain_featurizer = [p.detach().clone() for p in algo.domain_featurizer.parameters()]
        algo.update(_minibatches(seed=step))
        disc_moved = any(
            not torch.equal(a, p) for a, p in zip(disc, algo.discriminator.parameters(), strict=True)
        )
        rest_moved = any(
            not torch.equal(a, p)
            for a, p in zip(domain_featurizer, algo.domain_featurizer.parameters(), strict=True)
        )
        assert (disc_moved, rest_moved) == ((True, False) if step != 2 else (False, True))
