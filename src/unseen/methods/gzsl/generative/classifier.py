"""The final GZSL classifier of the family: a linear log-softmax layer over all classes.

Xian et al. (CVPR 2018) train it on real seen features plus synthetic unseen features with
NLL loss, Adam (lr 1e-3, beta1 0.5) and minibatches, for a fixed number of epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from unseen.methods.gzsl.generative.modules import init_weights
from unseen.methods.gzsl.generative.training import BatchSampler


class SoftmaxClassifier(nn.Module):
    """``log softmax(W x + b)``."""

    def __init__(self, in_dim: int, n_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.fc(x), dim=1)


class AdamState:
    """Adam (Kingma & Ba, 2015; no weight decay) on one tensor, with ``torch.optim.Adam``'s
    update order and bias corrections, in a handful of in-place ops: the final classifier takes
    tens of thousands of tiny steps, where the optimizer machinery of ``torch.optim`` costs
    more than the arithmetic."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float], eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m, self.v = torch.zeros_like(param), torch.zeros_like(param)
        self.t = 0

    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2**self.t)).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))


def train_softmax(
    X: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    epochs: int,
    generator: torch.Generator,
    lr: float = 1e-3,
    beta1: float = 0.5,
    batch_size: int = 64,
    on_epoch: Callable[[int, SoftmaxClassifier], None] | None = None,
    init: Callable[[nn.Module, torch.Generator], nn.Module] = init_weights,
) -> SoftmaxClassifier:
    """Train a :class:`SoftmaxClassifier` on ``(X, y)`` (on their device) with the mean NLL loss
    and Adam, its weights first set by ``init(module, generator)``; ``on_epoch(e, clf)`` is called
    after each epoch ``e = 1..epochs`` with the classifier in eval mode.

    The gradient of the mean NLL of ``log softmax(W x + b)`` is written out,
    ``(softmax - onehot)^T [x, 1] / batch``, over one ``(classes, dim + 1)`` tensor holding
    ``[W, b]``: the same updates as autograd and ``torch.optim.Adam``, up to float rounding.
    """
    clf = init(SoftmaxClassifier(X.shape[1], n_classes).to(X.device), generator)
    with torch.no_grad():
        Wb = torch.cat([clf.fc.weight, clf.fc.bias[:, None]], dim=1)
        X1 = torch.cat([X, X.new_ones(len(X), 1)], dim=1)
        adam = AdamState(Wb, lr, (beta1, 0.999))
        sampler = BatchSampler(len(X), min(batch_size, len(X)), generator, X.device)
        rows = torch.arange(sampler.batch, device=X.device)
        for epoch in range(1, epochs + 1):
            for idx in sampler.epoch():
                x = X1[idx]
                residual = torch.softmax(x @ Wb.T, dim=1)
                residual[rows, y[idx]] -= 1.0
                adam.step(residual.T.mm(x).div_(sampler.batch))
            if on_epoch is not None:
                _load(clf, Wb)
                on_epoch(epoch, clf.eval())
        _load(clf, Wb)
    return clf.eval()


def _load(clf: SoftmaxClassifier, Wb: torch.Tensor) -> None:
    clf.fc.weight.copy_(Wb[:, :-1])
    clf.fc.bias.copy_(Wb[:, -1])
