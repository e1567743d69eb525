"""A linear softmax head fitted to fixed features: the probe on top of a frozen backbone.

Multinomial logistic regression with an L2 penalty, minimised full-batch by L-BFGS (the
objective is convex, so the solution does not depend on a seed). The penalty is chosen among
``weight_decays`` by accuracy on held-out features, never on the data the head will be tested
on: callers pass a held-out part of their training data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)
"""Candidate L2 strengths (per sample, on standardised features)."""


def fit_linear_head(
    features: np.ndarray, labels: np.ndarray, n_classes: int, weight_decay: float, max_iter: int = 200
) -> nn.Linear:
    """The head minimising mean cross-entropy + ``weight_decay`` / 2 * ||W||^2 on ``features``."""
    x = torch.tensor(np.asarray(features, dtype=np.float32))
    y = torch.tensor(np.asarray(labels, dtype=np.int64))
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / scale
    weight = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(z @ weight.T + bias, y) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    # Fold the standardisation into the layer, so it applies to raw features.
    head = nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(weight / scale)
        head.bias.copy_(bias - (weight / scale) @ mean)
    return head


def select_linear_head(
    train: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    weight_decays: Sequence[float] = WEIGHT_DECAYS,
) -> tuple[nn.Linear, float, dict[float, float]]:
    """The head fitted on ``train`` whose penalty scores best on ``held_out`` (ties: stronger).

    Returns the head, its penalty and the held-out accuracy of every candidate.
    """
    x_out = torch.tensor(np.asarray(held_out[0], dtype=np.float32))
    y_out = np.asarray(held_out[1])
    best, accuracy = None, {}
    for wd in sorted(weight_decays, reverse=True):
        head = fit_linear_head(*train, n_classes, wd)
        with torch.no_grad():
            accuracy[wd] = float((head(x_out).argmax(1).numpy() == y_out).mean())
        if best is None or accuracy[wd] > accuracy[best[1]]:
            best = (head, wd)
    return best[0], best[1], accuracy
