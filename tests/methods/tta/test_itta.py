"""ITTA: the training step and the test-time step against reference loops, and its refusals."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from unseen.core.errors import HyperparameterError
from unseen.methods import DG, TTA
from unseen.methods.tta.base import SourceModel
from unseen.nn.itta import ElementwiseAffineStack, augmented_pair

SHAPE = (1, 8, 8)


def _minibatches(n_domains=2, n=6, n_classes=3, seed=0, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(n, *SHAPE, generator=g) * scale + shift, torch.randint(n_classes, (n,), generator=g))
        for _ in range(n_domains)
    ]


@pytest.fixture(scope="module")
def trained():
    """The DG algorithm ``itta`` after a few updates on random 8x8 images, and its source model."""
    model = DG["itta"](SHAPE, 3, 2, {}, seed=0)
    for step in range(4):
        model.update(_minibatches(seed=step))
    model.eval()
    return model, SourceModel(model.featurizer, model.classifier, memory=None, parts=model.test_time_parts)


def test_elementwise_affine_stack_by_hand():
    stack = ElementwiseAffineStack((3,), depth=2)
    with torch.no_grad():
        stack.weights[0].copy_(torch.tensor([1.0, -2.0, 0.5]))
        stack.biases[0].copy_(torch.tensor([0.0, 1.0, -1.0]))
        stack.weights[1].copy_(torch.tensor([2.0, 1.0, 3.0]))
        stack.biases[1].copy_(torch.tensor([0.5, 0.0, 0.0]))
    x = torch.tensor([[1.0, 1.0, 4.0], [-1.0, -1.0, 1.0]])
    # row 0: relu(1, -1, 1) = (1, 0, 1) -> (2.5, 0, 3); row 1: relu(-1, 3, -0.5) = (0, 3, 0) -> (0.5, 3, 0)
    assert torch.equal(stack(x), torch.tensor([[2.5, 0.0, 3.0], [0.5, 3.0, 0.0]]))
    assert torch.equal(ElementwiseAffineStack((3,), 5)(x.relu()), x.relu())  # identity at the start


def test_the_augmented_pair_keeps_the_clean_half_clean(trained):
    featurizer = trained[0].featurizer
    x = _minibatches()[0][0]
    z, z_aug = augmented_pair(featurizer, x, torch.Generator().manual_seed(0))
    assert torch.allclose(z, featurizer(x), atol=1e-5)
    assert not torch.allclose(z_aug, z, atol=1e-3)
    assert not featurizer.style_layers()[0]._forward_hooks  # the augmentation leaves no hook behind


def test_itta_update_matches_a_reference_loop():
    model = DG["itta"](SHAPE, 3, 2, {}, seed=0)
    model.update(_minibatches(seed=9))  # past the first step, so Adam has state
    reference = copy.deepcopy(model)
    batches = _minibatches(seed=1)
    model.update(batches)

    ref = reference
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])

    def losses():
        z, z_aug = augmented_pair(ref.featurizer, x, ref.generator)
        task = F.cross_entropy(ref.classifier(z), y) + F.cross_entropy(ref.classifier(z_aug), y)
        return task, (ref.loss_net(z_aug - z) ** 2).mean()

    task, reg = losses()  # step 1: the network on CE(z) + CE(z') + L_w
    ref.optimizer.zero_grad()
    (task + reg).backward()
    ref.optimizer.step()

    task, reg = losses()  # step 2: the learned loss on the alignment of standardized gradients
    params = list(ref.featurizer.parameters())
    loss_grads = [torch.autograd.grad(reg, p, create_graph=True)[0].reshape(-1) for p in params]
    task_grads = [torch.autograd.grad(task, p, retain_graph=True)[0].reshape(-1) for p in params]
    a, b = torch.cat(loss_grads), torch.cat(task_grads)
    a = (a - a.mean().item()) / a.std().item()
    b = (b - b.mean().item()) / b.std().item()
    alignment = 0.1 * ((a - b) ** 2).mean()
    loss_params = list(ref.loss_net.parameters())
    for p, g in zip(loss_params, torch.autograd.grad(alignment, loss_params), strict=True):
        p.grad = g
    ref.loss_optimizer.step()
    assert ref.loss_optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)  # 0.1 x lr

    for name, value in model.state_dict().items():
        assert torch.allclose(value, ref.state_dict()[name], atol=1e-6), name
    assert any(
        not torch.equal(p, q)
        for p, q in zip(model.loss_net.parameters(), reference.loss_net.parameters(), strict=True)
    )


def test_itta_test_time_step_is_one_adam_step_on_the_learned_loss(trained):
    method = TTA["itta"].around(trained[1], loss_weight=1.0, lr=1e-2)
    reference = copy.deepcopy(method)
    x = _minibatches(seed=3, scale=2.0, shift=0.5)[0][0]
    logits = method.predict(x)

    reference._insert_adapters(x)
    adapters = list(reference.adapters.parameters())
    z, z_aug = augmented_pair(reference.featurizer, x, reference.generator)
    grads = torch.autograd.grad((reference.loss_net(z_aug - z) ** 2).mean(), adapters)
    for before, g, after in zip(adapters, grads, method.adapters.parameters(), strict=True):
        expected = before - 1e-2 * g / (g.abs() + 1e-8)  # Adam's first step
        assert torch.allclose(after, expected, atol=1e-6)
    assert any(g.abs().max() > 0 for g in grads)
    with torch.no_grad():  # the logits are the batch's, through the adapters just updated
        for p, q in zip(adapters, method.adapters.parameters(), strict=True):
            p.copy_(q)
        assert torch.allclose(logits, reference.classifier(reference.featurizer(x)), atol=1e-5)


def test_unadapted_itta_is_the_source_model_and_reset_is_exact(trained):
    x = _minibatches(seed=4)[0][0]
    still = TTA["itta"].around(trained[1], steps=0)
    assert torch.equal(still.predict(x), TTA["source"].around(trained[1]).predict(x))
    method = TTA["itta"].around(trained[1], loss_weight=1.0, lr=1e-2)
    stream = [b[0] for b in _minibatches(n_domains=3, seed=5, scale=2.0)]
    first = [method.predict(b) for b in stream]
    method.reset()
    assert all(torch.equal(a, method.predict(b)) for a, b in zip(first, stream, strict=True))
    assert not any(m._forward_hooks for m in trained[0].featurizer.modules())  # the given model: untouched


def test_adapting_lowers_the_learned_loss_on_a_shifted_stream(trained):
    method = TTA["itta"].around(trained[1], loss_weight=1.0, lr=1e-2)
    probe = _minibatches(seed=6, scale=2.0, shift=0.5)[0][0]

    method._insert_adapters(probe)

    def probe_loss():
        with torch.no_grad():
            z, z_aug = augmented_pair(method.featurizer, probe, torch.Generator().manual_seed(0))
            return (method.loss_net(z_aug - z) ** 2).mean().item()

    before = probe_loss()
    for _ in range(3):
        for x, _ in _minibatches(n_domains=4, seed=7, scale=2.0, shift=0.5):
            method.predict(x)
    assert probe_loss() < 0.8 * before  # the descent carries over to batches it did not see


def test_itta_refuses_models_without_a_learned_loss_and_feature_vectors(trained):
    erm = DG["erm"](SHAPE, 3, 2, {})
    plain = SourceModel(erm.featurizer, erm.classifier, memory=None, info={"model": "run-1"})
    with pytest.raises(HyperparameterError, match="unseen dg --algorithm itta"):
        TTA["itta"].around(plain)
    with pytest.raises(HyperparameterError, match="feature vectors"):
        DG["itta"]((5,), 3, 2, {})
    with pytest.raises(HyperparameterError, match="adapters after each block.*small images"):
        DG["itta"]((3, 40, 40), 3, 2, {})  # EfficientNet: refused before any training


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_itta_adapts_on_cuda_and_repeats(trained):
    x = _minibatches(seed=3, scale=2.0)[0][0]
    runs = []
    for _ in range(2):
        method = TTA["itta"].around(trained[1], device="cuda", loss_weight=1.0, lr=1e-2)
        logits = [method.predict(x), method.predict(x)]
        assert all(out.device.type == "cuda" for out in logits)
        runs.append(torch.cat(logits).cpu())
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-5, atol=1e-5)
