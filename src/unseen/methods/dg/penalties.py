"""Penalty terms of DG objectives as pure functions of tensors (tested against hand computations)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import autograd


def coral_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature mean ``(d,)`` and unbiased covariance ``(d, d)`` of ``x`` ``(n, d)``."""
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.t() @ centred / (len(x) - 1)


def coral_penalty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Deep CORAL (Sun & Saenko 2016) as in DomainBed: mean squared difference of the feature
    means plus mean squared difference of the (unbiased) covariance matrices."""
    (mean_x, cov_x), (mean_y, cov_y) = coral_statistics(x), coral_statistics(y)
    return (mean_x - mean_y).pow(2).mean() + (cov_x - cov_y).pow(2).mean()


def mean_pairwise(
    discrepancy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean of ``discrepancy(features[i], features[j])`` over the domain pairs ``i < j``."""
    pairs = [(i, j) for i in range(len(features)) for j in range(i + 1, len(features))]
    if not pairs:
        return features[0].new_zeros(())
    return torch.stack([discrepancy(features[i], features[j]) for i, j in pairs]).mean()


def mean_pairwise_coral(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """:func:`coral_penalty` averaged over the domain pairs ``i < j``, with each domain's
    statistics computed once and every pair's differences taken in one broadcast (the ``k x k``
    differences hold each pair twice and zeros on the diagonal, hence the halving)."""
    k = len(features)
    if k < 2:
        return features[0].new_zeros(())
    means, covs = (torch.stack(s) for s in zip(*map(coral_statistics, features), strict=True))
    mean_gaps = (means[:, None] - means[None]).pow(2).mean(-1).sum()
    cov_gaps = (covs[:, None] - covs[None]).pow(2).mean((-2, -1)).sum()
    return (mean_gaps + cov_gaps) / (k * (k - 1))


MMD_GAMMAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, gammas=MMD_GAMMAS) -> torch.Tensor:
    """Sum over ``gammas`` of ``exp(-gamma * ||x_i - y_j||^2)``."""
    d = torch.cdist(x, y).pow(2)
    return sum(torch.exp(-g * d) for g in gammas)


def mmd_penalty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Biased MMD^2 with a mixture of Gaussian kernels (Li et al., CVPR 2018, as DomainBed)."""
    return gaussian_kernel(x, x).mean() + gaussian_kernel(y, y).mean() - 2 * gaussian_kernel(x, y).mean()


def irm_penalty(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """IRMv1 (Arjovsky et al. 2019): squared gradient of the risk w.r.t. a dummy scale of 1,
    estimated without bias as the product of the gradients on the two halves of the batch."""
    scale = torch.tensor(1.0, device=logits.device, requires_grad=True)
    loss_1 = F.cross_entropy(logits[::2] * scale, y[::2])
    loss_2 = F.cross_entropy(logits[1::2] * scale, y[1::2])
    grad_1 = autograd.grad(loss_1, [scale], create_graph=True)[0]
    grad_2 = autograd.grad(loss_2, [scale], create_graph=True)[0]
    return grad_1 * grad_2


def vrex_penalty(losses: torch.Tensor) -> torch.Tensor:
    """V-REx (Krueger et al. 2021): variance (biased) of the per-domain risks."""
    return ((losses - losses.mean()) ** 2).mean()
