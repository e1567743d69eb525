"""Penalty terms of DG objectives as pure functions of tensors (tested against hand computations)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import autograd


def coral_penalty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Deep CORAL (Sun & Saenko 2016) as in DomainBed: mean squared difference of the feature
    means plus mean squared difference of the (unbiased) covariance matrices."""
    mean_x, mean_y = x.mean(0, keepdim=True), y.mean(0, keepdim=True)
    cent_x, cent_y = x - mean_x, y - mean_y
    cov_x = cent_x.t() @ cent_x / (len(x) - 1)
    cov_y = cent_y.t() @ cent_y / (len(y) - 1)
    return (mean_x - mean_y).pow(2).mean() + (cov_x - cov_y).pow(2).mean()


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
