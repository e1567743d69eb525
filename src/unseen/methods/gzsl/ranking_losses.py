"""Per-sample ranking losses on a compatibility matrix, shared by the bilinear methods.

Every function takes ``F`` of shape ``(b, z)`` (compatibility of each sample with each training
class) and ``y`` of shape ``(b,)`` (the true class as a column index of ``F``), and returns the
``(b,)`` per-sample losses; the trainer averages them over the minibatch. ``margin`` is the
label loss Delta(y, c) for ``c != y`` (Delta(y, y) = 0).
"""

from __future__ import annotations

import torch


def _true_mask(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(F, dtype=torch.bool).scatter_(1, y[:, None], True)


def pairwise_hinge(F: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``(b, z)`` hinge terms ``max(0, margin + F[i, c] - F[i, y_i])``, zero at ``c = y_i``."""
    true_score = F.gather(1, y[:, None])
    hinge = torch.clamp(margin + F - true_score, min=0.0)
    return hinge.masked_fill(_true_mask(F, y), 0.0)


def ale_rank_weight(rank: torch.Tensor, max_rank: int | None = None) -> torch.Tensor:
    """ALE's rank weight ``l_r / r`` with ``l_r = sum_{i=1..r} 1/i``; 0 where ``r = 0``.

    ``l_r`` grows like ``log r``: a true class with many violators is penalised more than one
    with few, but less than linearly. Dividing by ``r`` turns the sum over the ``r`` violators
    into their mean times ``l_r``. ``max_rank`` bounds ``rank`` (the number of classes); passing
    it avoids reading ``rank.max()`` back from the device.
    """
    rank = rank.long()
    if max_rank is None:
        max_rank = int(rank.max()) if rank.numel() else 0
    steps = torch.arange(1, max(max_rank, 1) + 1, dtype=torch.float64, device=rank.device)
    harmonic = torch.cat([steps.new_zeros(1), torch.cumsum(1.0 / steps, 0)])
    weight = harmonic[rank] / rank.clamp(min=1).to(torch.float64)
    return weight.to(torch.get_default_dtype())


def ale_loss(F: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Weighted approximate-ranking loss of ALE (Akata et al., TPAMI 2016), rank computed exactly.

    ``loss_i = (l_r / r) * sum_{c in V_i} [margin + F[i, c] - F[i, y_i]]`` where ``V_i`` are the
    classes violating the margin and ``r = |V_i|``. The weight is a constant of the step (no
    gradient flows through the count), as in the paper's SGD.
    """
    hinge = pairwise_hinge(F, y, margin)
    rank = (hinge > 0).sum(dim=1)
    return ale_rank_weight(rank, F.shape[1]).to(F.dtype) * hinge.sum(dim=1)


def structured_hinge_loss(F: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """SJE's structured SVM loss ``max_c [Delta(y, c) + F[i, c]] - F[i, y_i]`` (>= 0)."""
    augmented = F + margin * (~_true_mask(F, y)).to(F.dtype)
    return torch.clamp(augmented.max(dim=1).values - F.gather(1, y[:, None])[:, 0], min=0.0)


def hinge_rank_loss(F: torch.Tensor, y: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """DeViSE's hinge rank loss ``sum_{c != y} max(0, margin - F[i, y_i] + F[i, c])``."""
    return pairwise_hinge(F, y, margin).sum(dim=1)
