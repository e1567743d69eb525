"""The final GZSL classifier of the family: a linear log-softmax layer over all classes.

Xian et al. (CVPR 2018) train it on real seen features plus synthetic unseen features with
NLL loss, Adam (lr 1e-3, beta1 0.5) and minibatches, for a fixed number of epochs.
"""

from __future__ import annotations

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
) -> SoftmaxClassifier:
    """Train a :class:`SoftmaxClassifier` on ``(X, y)`` (on their device); ``on_epoch(e, clf)``
    is called after each epoch ``e = 1..epochs`` with the classifier in eval mode."""
    clf = init_weights(SoftmaxClassifier(X.shape[1], n_classes), generator).to(X.device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr, betas=(beta1, 0.999))
    sampler = BatchSampler(len(X), min(batch_size, len(X)), generator, X.device)
    for epoch in range(1, epochs + 1):
        clf.train()
        for idx in sampler.epoch():
            opt.zero_grad(set_to_none=True)
            nn.functional.nll_loss(clf(X[idx]), y[idx]).backward()
            opt.step()
        clf.eval()
        if on_epoch is not None:
            on_epoch(epoch, clf)
    return clf
