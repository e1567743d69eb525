"""Test-time adaptation: exact resets, bounded memories, hand-checked pieces, gains under shift."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.methods import TTA
from unseen.methods.tta.base import SourceModel, softmax_entropy
from unseen.methods.tta.entropy import information_maximization_loss
from unseen.methods.tta.norm import MixedBatchNorm

N_CLASSES, DIM = 4, 8
IMAGE_ONLY = ("itta", "style-shift")  # need image models: tests/methods/tta/test_itta.py, test_style_shift.py
ON_VECTORS = [name for name in TTA if name not in IMAGE_ONLY]


def _source_data(n: int, seed: int, shift: float = 0.0, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    means = torch.eye(N_CLASSES, DIM) * 2.0
    y = torch.arange(n) % N_CLASSES
    x = means[y] + torch.randn(n, DIM, generator=g)
    return x * scale + shift, y


@pytest.fixture(scope="module")
def trained():
    """A featurizer with BatchNorm + linear head, trained on unshifted source data."""
    torch.manual_seed(0)
    featurizer = nn.Sequential(nn.Linear(DIM, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16))
    head = nn.Linear(16, N_CLASSES)
    x, y = _source_data(512, seed=1)
    opt = torch.optim.Adam([*featurizer.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(150):
        loss = nn.functional.cross_entropy(head(featurizer(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    featurizer.eval()
    return featurizer, head, x, y


def _make(name, trained, **hp):
    featurizer, head, x, y = trained

    def memory():
        with torch.no_grad():
            return featurizer(x).numpy(), y.numpy()

    return TTA[name].around(SourceModel(featurizer, head, memory), **hp)


def _shifted_stream(n_batches=8, batch=64):
    x, y = _source_data(n_batches * batch, seed=2, shift=5.0, scale=2.0)
    return list(zip(x.split(batch), y.split(batch), strict=True))


def _stream_accuracy(method, stream):
    correct = sum(int((method.predict(xb).argmax(1) == yb).sum()) for xb, yb in stream)
    return correct / sum(len(yb) for _, yb in stream)


@pytest.mark.parametrize("name", ON_VECTORS)
def test_every_method_predicts_and_leaves_the_given_model_untouched(name, trained):
    before = copy.deepcopy(trained[0].state_dict())
    method = _make(name, trained)
    for xb, _ in _shifted_stream(3):
        logits = method.predict(xb)
        assert logits.shape == (len(xb), N_CLASSES) and torch.isfinite(logits).all()
    for key, value in trained[0].state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("name", ON_VECTORS)
def test_reset_restores_the_exact_starting_state(name, trained):
    method = _make(name, trained)
    stream = _shifted_stream(4)
    first = [method.predict(xb) for xb, _ in stream]
    method.reset()
    again = [method.predict(xb) for xb, _ in stream]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["tent", "shot-im"])
def test_gradient_methods_change_weights_and_reset_restores_them(name, trained):
    method = _make(name, trained)
    start = copy.deepcopy(method.featurizer.state_dict())
    for xb, _ in _shifted_stream(2):
        method.predict(xb)
    assert any(not torch.equal(v, start[k]) for k, v in method.featurizer.state_dict().items())
    method.reset()
    for key, value in method.featurizer.state_dict().items():
        assert torch.equal(value, start[key])


def test_tent_reduces_entropy_on_a_shifted_stream(trained):
    method = _make("tent", trained, lr=1e-2)
    probe, _ = _source_data(64, seed=3, shift=5.0, scale=2.0)
    with torch.no_grad():
        before = softmax_entropy(method.classifier(method.featurizer(probe))).mean()
    for _ in range(3):
        for xb, _ in _shifted_stream():
            method.predict(xb)
    with torch.no_grad():
        after = softmax_entropy(method.classifier(method.featurizer(probe))).mean()
    assert after < 0.9 * before


def test_batch_statistics_recover_accuracy_lost_to_covariate_shift(trained):
    stream = _shifted_stream()
    source = _stream_accuracy(_make("source", trained), stream)
    adapted = _stream_accuracy(_make("bn-adapt", trained), stream)
    assert adapted > source + 0.1


def test_mixed_batchnorm_matches_eval_and_train_mode_batchnorm():
    bn = nn.BatchNorm1d(3)
    bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.0]))
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, 0.5, 1.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    bn.eval()
    assert torch.allclose(MixedBatchNorm(bn, 1.0)(x), bn(x), atol=1e-6)
    batch_mode = copy.deepcopy(bn).train()
    assert torch.allclose(MixedBatchNorm(bn, 0.0)(x), batch_mode(x), atol=1e-5)
    # alpha = 0.25 by hand: mix the means and the (biased) variances
    mean = 0.25 * bn.running_mean + 0.75 * x.mean(0)
    var = 0.25 * bn.running_var + 0.75 * x.var(0, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    assert torch.allclose(MixedBatchNorm(bn, 0.25)(x), expected, atol=1e-6)
    with torch.no_grad():  # the fused path taken when no gradient is needed
        assert torch.allclose(MixedBatchNorm(bn, 0.25)(x), expected, atol=1e-6)


def test_information_maximization_loss_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.5], [1.0 - 1e-9, 1e-9]]))
    # mean entropy: (ln 2 + ~0) / 2; mean prediction (0.75, 0.25) contributes its negative entropy
    expected = np.log(2) / 2 + (0.75 * np.log(0.75 + 1e-5) + 0.25 * np.log(0.25 + 1e-5))
    assert information_maximization_loss(logits).item() == pytest.approx(expected, abs=1e-6)


def test_t3a_first_batch_matches_a_direct_computation(trained):
    featurizer, head, _, _ = trained
    method = _make("t3a", trained, filter_k=-1)
    xb, _ = _shifted_stream(1)[0]
    with torch.no_grad():
        z = featurizer(xb)
        supports = torch.cat([head.weight, z])
        labels = torch.cat([head(head.weight).argmax(1), head(z).argmax(1)])
        protos = torch.stack(
            [nn.functional.normalize(supports[labels == c], dim=1).sum(0) for c in range(N_CLASSES)]
        )
        expected = z @ nn.functional.normalize(protos, dim=1).T
    assert torch.allclose(method.predict(xb), expected, atol=1e-5)


def test_t3a_memory_is_bounded_by_filter_k(trained):
    method = _make("t3a", trained, filter_k=5)
    for xb, _ in _shifted_stream(6):
        method.predict(xb)
        assert method.memory_size <= N_CLASSES * 5


def test_adanpc_memory_is_bounded_and_its_votes_are_a_distribution(trained):
    method = _make("adanpc", trained, max_test_memory=50, beta=0.0)
    n_source = method.memory_size
    for xb, _ in _shifted_stream(4):
        probs = method.predict(xb).exp()
        assert torch.allclose(probs.sum(1), torch.ones(len(xb)), atol=1e-5)
    assert method.memory_size == n_source + 50


def test_adanpc_with_k1_returns_the_nearest_source_label(trained):
    featurizer, head, x, y = trained
    method = _make("adanpc", trained, k=1, beta=1.1)  # beta > 1: no test feature joins the memory
    with torch.no_grad():
        keys = nn.functional.normalize(featurizer(x), dim=1)
        z = nn.functional.normalize(featurizer(x[:16]), dim=1)
    nearest = y[(z @ keys.T).argmax(1)]
    assert torch.equal(method.predict(x[:16]).argmax(1), nearest)


def test_clear_errors_for_models_the_method_cannot_adapt(trained):
    no_bn = nn.Sequential(nn.Linear(DIM, 16), nn.ReLU())
    with pytest.raises(HyperparameterError, match="no BatchNorm"):
        TTA["bn-adapt"](no_bn, nn.Linear(16, N_CLASSES))
    with pytest.raises(HyperparameterError, match="linear classifier"):
        TTA["t3a"](trained[0], nn.Sequential(nn.Linear(16, N_CLASSES)))
    with pytest.raises(HyperparameterError, match="source features"):
        TTA["adanpc"](trained[0], trained[1], source_features=np.zeros((3, 16)), source_labels=[0])


def _domains():
    from unseen.protocols.tta import TargetDomain

    clean_x, clean_y = _source_data(96, seed=5)
    shifted_x, shifted_y = _source_data(96, seed=6, shift=5.0, scale=2.0)
    return [
        TargetDomain("clean", clean_x.numpy(), clean_y.numpy()),
        TargetDomain("shifted", shifted_x.numpy(), shifted_y.numpy()),
    ]


def test_stream_protocol_reports_gains_and_is_reproducible(trained):
    from unseen.protocols.tta import TTAStreamProtocol

    protocol = TTAStreamProtocol(mode="single", batch_size=32, seed=1)
    source = SourceModel(trained[0], trained[1], memory=lambda: pytest.fail("bn-adapt needs no memory"))
    record = protocol.run(source, "bn-adapt", _domains())
    again = protocol.run(source, "bn-adapt", _domains())
    m = record["metrics"]
    assert m["accuracy"] == again["metrics"]["accuracy"] and record["run_id"] == again["run_id"]
    assert m["gain"]["shifted"] > 10.0
    assert m["gain"]["shifted"] == pytest.approx(m["accuracy"]["shifted"] - m["source_accuracy"]["shifted"])


def test_single_mode_resets_between_domains_and_continual_does_not(trained):
    from unseen.protocols.tta import TTAStreamProtocol

    domains = _domains()
    single = TTAStreamProtocol(mode="single", batch_size=32).accuracies(_make("tent", trained), domains)
    alone = TTAStreamProtocol(mode="single", batch_size=32).accuracies(_make("tent", trained), domains[1:])
    assert single["shifted"] == alone["shifted"]  # the clean domain left no trace
    resets = []
    method = _make("tent", trained)
    method.reset = lambda: resets.append(1)
    TTAStreamProtocol(mode="continual", batch_size=32).accuracies(method, domains)
    assert len(resets) == 1  # once, before the first domain
