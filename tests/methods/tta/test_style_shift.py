"""Test-time style shifting: the shift by hand, prototypes against a loop, a gain under a style shift."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unseen.core.errors import HyperparameterError
from unseen.data.domains import load_domains
from unseen.methods import DG, TTA
from unseen.methods.tta.base import SourceModel
from unseen.methods.tta.style_shift import domain_style_prototypes, shift_styles


def test_shift_styles_by_hand():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=g)
    x[1] = x[1] * 5 + 3  # far from both prototypes
    proto_mean = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    proto_std = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.5, 1.0]])
    threshold = 4.0
    out = shift_styles(x, proto_mean, proto_std, threshold)
    for i in range(2):
        flat = x[i].reshape(3, -1).double()
        mean = flat.mean(1)
        std = torch.sqrt(((flat - mean[:, None]) ** 2).sum(1) / (flat.shape[1] - 1) + 1e-6)
        dist = [
            float(
                torch.sqrt(((mean - proto_mean[d]) ** 2).sum())
                + torch.sqrt(((std - proto_std[d]) ** 2).sum())
            )
            for d in range(2)
        ]
        d = int(np.argmin(dist))
        if min(dist) > threshold:
            expected = (flat - mean[:, None]) / std[:, None] * proto_std[d][:, None] + proto_mean[d][:, None]
        else:
            expected = flat
        assert torch.allclose(out[i].reshape(3, -1).double(), expected, atol=1e-5)
    assert torch.equal(out[0], x[0])  # near prototype 0: untouched
    assert not torch.allclose(out[1], x[1])  # far: takes its nearest prototype's style


def test_domain_prototypes_match_a_per_sample_loop():
    torch.manual_seed(0)
    featurizer = DG["erm"]((1, 8, 8), 3, 2, {}).featurizer.eval()
    layer = featurizer.style_layers()[0]
    domains = [np.random.default_rng(k).random((7, 1, 8, 8)).astype(np.float32) + k for k in range(2)]
    (means, stds) = domain_style_prototypes(featurizer, [layer], domains, chunk=3)[0]
    first_block = featurizer.body[:3]  # conv, ReLU, GroupNorm: the first style layer's output
    for k, inputs in enumerate(domains):
        per_sample = [first_block(torch.as_tensor(inputs[i : i + 1]))[0].detach() for i in range(len(inputs))]
        mean = torch.stack([f.mean(dim=(1, 2)) for f in per_sample]).mean(0)
        std = torch.stack([(f.var(dim=(1, 2)) + 1e-6).sqrt() for f in per_sample]).mean(0)
        assert torch.allclose(means[k], mean, atol=1e-5) and torch.allclose(stds[k], std, atol=1e-5)


@pytest.fixture(scope="module")
def digits_model():
    """ERM's small CNN trained on two styles of 8x8 digits (plain, and dimmed 0.6x + 0.1)."""
    data = load_domains("builtin:rotated-digits")
    x, y = data.inputs[data.domains == 0], data.labels[data.domains == 0]
    sources = [(x[:100], y[:100]), (x[100:200] * 0.6 + 0.1, y[100:200])]
    model = DG["erm"]((1, 8, 8), 10, 2, {}, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        model.update(
            [
                (torch.as_tensor(xs[idx]), torch.as_tensor(ys[idx]))
                for xs, ys in sources
                for idx in [rng.integers(0, 100, 32)]
            ]
        )
    model.eval()
    source = SourceModel(
        model.featurizer, model.classifier, memory=None, domain_inputs=lambda: [s[0] for s in sources]
    )
    return source, x[200:], y[200:]


def _accuracy(method, x, y) -> float:
    predictions = [method.predict(torch.as_tensor(x[s : s + 32])).argmax(1) for s in range(0, len(x), 32)]
    return float((torch.cat(predictions).numpy() == y).mean())


def test_style_shifting_recovers_accuracy_lost_to_a_contrast_and_brightness_shift(digits_model):
    source, x, y = digits_model
    target = x * 2.0 + 0.5  # a style no source domain has
    before = _accuracy(TTA["source"].around(source), target, y)
    after = _accuracy(TTA["style-shift"].around(source), target, y)
    assert after > before + 0.1
    # Held-out digits in a source style lie within the sources' spread: kept, predictions unchanged.
    plain = TTA["style-shift"].around(source)
    assert torch.equal(
        plain.predict(torch.as_tensor(x)), TTA["source"].around(source).predict(torch.as_tensor(x))
    )
    assert not any(layer._forward_hooks for layer in source.featurizer.style_layers())  # the copies hold them


def test_style_shifting_refuses_what_it_cannot_shift(digits_model):
    source = digits_model[0]
    vectors = DG["erm"]((5,), 3, 2, {})
    with pytest.raises(HyperparameterError, match="feature vectors carry no style"):
        TTA["style-shift"](vectors.featurizer, vectors.classifier, source_domains=[np.zeros((2, 5))])
    no_inputs = SourceModel(source.featurizer, source.classifier, memory=None)
    with pytest.raises(HyperparameterError, match="training inputs"):
        TTA["style-shift"].around(no_inputs)
    with pytest.raises(HyperparameterError, match="layers <= 2"):
        TTA["style-shift"].around(source, layers=3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_style_shift_on_cuda_matches_cpu(digits_model):
    source, x, _ = digits_model
    batch = torch.as_tensor(x[:32] * 2.0 + 0.5)
    on_cpu = TTA["style-shift"].around(source).predict(batch)
    on_cuda = TTA["style-shift"].around(source, device="cuda").predict(batch)
    assert on_cuda.device.type == "cuda"
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, rtol=1e-4, atol=1e-4)
