"""DomainDrop (Guo et al., ICCV 2023): channel scores, the weighted drop and the consistency loss
by hand; the hooks drop one stage's channels in labelled training passes only; the injected
discriminator loss reaches the discriminators and, reversed, the featurizer."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from unseen.core.errors import HyperparameterError
from unseen.methods import DG
from unseen.nn.domaindrop import STAGES, channel_scores, drop_mask, labelled, symmetric_kl
from unseen.protocols.dg import DGProtocol

SHAPE = (1, 8, 8)


def _minibatches(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, *SHAPE, generator=g), torch.randint(3, (n,), generator=g)) for _ in range(3)]


def _stage_outputs(featurizer):
    """Hooks (after DomainDrop's) recording each stage's output; returns the list they fill."""
    seen = []
    for stage in STAGES[type(featurizer)](featurizer):
        stage.register_forward_hook(lambda m, i, o: seen.append(o))
    return seen


def test_channel_scores_by_hand():
    # one sample, three channels, two positions; domain weights (1, -1, 2)
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]], [[0.5, 1.0]]]])
    scores = channel_scores(f, torch.tensor([[1.0, -1.0, 2.0]]))
    # position 1: products (1, -3, 1) -> (1, 0, 1); position 2: (2, 0, 2) -> (1, 0, 1)
    torch.testing.assert_close(scores, torch.tensor([[1.0, 0.0, 1.0]]))


def test_drop_mask_samples_channels_by_their_scores_without_replacement():
    scores = torch.tensor([[0.0, 1.0, 2.0, 4.0], [4.0, 0.0, 0.0, 1.0]])
    mask = drop_mask(scores, 0.5, torch.Generator().manual_seed(3))
    u = torch.rand(2, 4, generator=torch.Generator().manual_seed(3))
    keys = u ** (1 / (scores / scores.amax(1, keepdim=True)))  # min-max with minimum 0
    dropped = torch.zeros(2, 4)
    dropped.scatter_(1, keys.topk(2, dim=1).indices, 1.0)
    torch.testing.assert_close(mask, 1 - dropped)
    # over many draws the most domain-sensitive channel is dropped most, a zero-score one never
    g = torch.Generator().manual_seed(0)
    rates = torch.stack([1 - drop_mask(scores[:1], 0.25, g)[0] for _ in range(400)]).mean(0)
    assert rates[0] == 0 and rates[1] < rates[2] < rates[3]


def test_symmetric_kl_matches_the_official_form():
    g = torch.Generator().manual_seed(1)
    p, q = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    t = 5.0
    one = F.kl_div(F.log_softmax(p / t, -1), F.softmax(q / t, -1), reduction="none").mean()
    two = F.kl_div(F.log_softmax(q / t, -1), F.softmax(p / t, -1), reduction="none").mean()
    torch.testing.assert_close(symmetric_kl(p, q, t), (one + two) / 2)


def test_labelled_training_pass_drops_one_stages_channels_and_others_are_untouched():
    hp = {"domaindrop": True, "domaindrop_layer_p": 1.0, "domaindrop_kl_weight": 0.0}
    algo = DG["erm"](SHAPE, 3, 3, hp, seed=0)
    featurizer = algo.featurizer
    seen = _stage_outputs(featurizer)
    batches = _minibatches()
    x = torch.cat([b[0] for b in batches])
    algo.train()
    with torch.no_grad():
        plain = featurizer(x)  # not armed: no stage is touched
        clean = list(seen)
        seen.clear()
        with labelled(featurizer, batches):
            dropped = featurizer(x)
    changed = [k for k in range(4) if not torch.equal(seen[k], clean[k])]
    assert changed and not torch.equal(plain, dropped)
    first = changed[0]
    channels = seen[first].shape[1]
    zero = (seen[first] == 0).flatten(2).all(2)  # (n, C) channels dropped
    assert (zero.sum(1) == int(channels * 0.33)).all()
    kept = ~zero
    scale = zero.numel() / kept.sum()
    torch.testing.assert_close(seen[first][kept], (clean[first] * scale)[kept])
    algo.eval()
    with labelled(featurizer, batches), torch.no_grad():
        assert torch.equal(featurizer(x), plain)  # evaluation: untouched


def test_injected_loss_trains_discriminators_and_reverses_into_the_featurizer():
    hp = {"domaindrop": True, "domaindrop_layer_p": 0.0, "domaindrop_kl_weight": 0.0, "domaindrop_grl": 0.25}
    algo = DG["erm"](SHAPE, 3, 3, hp, seed=0)
    batches = _minibatches()
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    domains = torch.arange(3).repeat_interleave(6)
    # reference: the same weights without hooks; stage outputs recorded with their graph
    reference = copy.deepcopy(algo.featurizer)
    discriminators = reference.domaindrop.discriminators
    for module in reference.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    stages = _stage_outputs(reference)
    algo.train()
    reference.train()
    loss = F.cross_entropy(algo.classifier(reference(x)), y)
    domain_loss = torch.stack(
        [F.cross_entropy(d(s.mean((2, 3))), domains) for d, s in zip(discriminators, stages, strict=True)]
    ).mean()
    backbone = [p for n, p in reference.named_parameters() if "domaindrop" not in n]
    expected_backbone = torch.autograd.grad(loss - 0.25 * domain_loss, backbone, retain_graph=True)
    expected_disc = torch.autograd.grad(domain_loss, list(discriminators.parameters()))

    with labelled(algo.featurizer, batches):
        F.cross_entropy(algo.classifier(algo.featurizer(x)), y).backward()
    got_backbone = [p.grad for n, p in algo.featurizer.named_parameters() if "domaindrop" not in n]
    got_disc = [p.grad for p in algo.featurizer.domaindrop.discriminators.parameters()]
    for a, b in zip(got_backbone + got_disc, list(expected_backbone) + list(expected_disc), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_domaindrop_runs_under_the_protocol_and_feature_vectors_do_not_declare_it():
    data_hp = {"domaindrop": True, "batch_size": 8}
    from unseen.data.domains import load_domains

    data = load_domains("builtin:rotated-digits")
    model, record = DGProtocol((0,), steps=2, checkpoint_freq=2).train(data, "erm", data_hp, device="cpu")
    fresh = DG["erm"](data.input_shape, data.n_classes, 5, {**data_hp}, seed=0)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(
            model.featurizer.domaindrop.parameters(), fresh.featurizer.domaindrop.parameters(), strict=True
        )
    ]
    assert all(moved)  # the discriminators train only through labelled passes
    assert record["hparams"]["domaindrop_percent"] == 0.33
    with pytest.raises(HyperparameterError, match="unknown hyperparameter.*domaindrop"):
        DG["erm"]((5,), 3, 3, {"domaindrop": True})
