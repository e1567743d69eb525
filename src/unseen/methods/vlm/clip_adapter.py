"""CLIP-Adapter: a residual bottleneck MLP on the image features, trained against the text head."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unseen.core.device import cpu_generator, resolve_device, score_in_chunks
from unseen.core.registry import HParam
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.methods.vlm.training import (
    index_tensor,
    local_labels,
    shuffled_batches,
    supported_classes,
    tensor,
)
from unseen.methods.vlm.zero_shot import LOGIT_SCALE, unit_rows

MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
WARMUP_LR = 1e-5
"""Dassl's SGD defaults and the constant warm-up epoch of the CoOp schedule the official trainer uses."""


class Bottleneck(nn.Module):
    """``relu(W2 relu(W1 x))`` without biases, hidden width ``dim // reduction`` (the official adapter)."""

    def __init__(self, dim: int, reduction: int, generator: torch.Generator):
        super().__init__()
        self.down = nn.Linear(dim, dim // reduction, bias=False)
        self.up = nn.Linear(dim // reduction, dim, bias=False)
        with torch.no_grad():  # torch's default Linear initialisation, drawn from the method's seed
            for layer in (self.down, self.up):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.up(F.relu(self.down(x))))


@VLM.register("clip-adapter")
class CLIPAdapter(VLMMethod):
    """CLIP-Adapter with the visual adapter.

    P. Gao et al., "CLIP-Adapter: Better Vision-Language Models with Feature Adapters", IJCV
    2023. A bottleneck MLP ``A`` (reduction 4, ReLU, no biases) adapts the image feature, blended
    residually with the original: ``f = ratio A(x) + (1 - ratio) x``; the logits are
    ``100 cos(f, t_c)`` with the fixed class text embeddings, and only ``A`` is trained, with
    cross-entropy over the classes with support samples. ``ratio`` 0.2 is the paper's value for
    generic-object datasets (its ablation also tries 0.4-0.8: the grid). Training follows the
    CoOp schedule the official Dassl trainer plugs into: SGD (momentum 0.9, weight decay 5e-4),
    batch 32, 200 epochs, one constant warm-up epoch at 1e-5, then cosine decay per epoch; the
    learning rate 1e-2 is that of LP++'s re-implementation (Huang et al., CVPR 2024). The
    official adapter reads unnormalised CLIP features; with no biases and ReLU it is positively
    homogeneous, so normalised inputs give the same normalised ``f``. ``val`` is not used (the
    official trainer keeps the last epoch). Classes without support samples score by their text
    embedding against the adapted feature.
    """

    paper = "Gao et al. CLIP-Adapter: Better Vision-Language Models with Feature Adapters. IJCV 2023."
    hparams = (
        HParam("ratio", 0.2, grid=(0.2, 0.4, 0.6, 0.8), help="residual ratio: weight of the adapted feature"),
        HParam("reduction", 4, help="hidden width is dim // reduction (the paper's best)"),
        HParam("lr", 1e-2, help="SGD learning rate after the warm-up epoch"),
        HParam("epochs", 200, help="training epochs (CoOp schedule)"),
        HParam("batch_size", 32, high=2**20, help="minibatch size (CoOp schedule)"),
    )
    needs_text = True

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        p = self.params
        self._device = device = resolve_device(self.device)
        generator = cpu_generator(self.seed)
        self._adapter = Bottleneck(support.dim, p["reduction"], generator).to(device)
        self._text = tensor(unit_rows(support.class_text), device)
        classes = supported_classes(support.labels)
        columns = index_tensor(classes, device)
        X = tensor(unit_rows(support.features), device)
        y = index_tensor(local_labels(support.labels, classes), device)
        optimizer = torch.optim.SGD(
            self._adapter.parameters(), lr=WARMUP_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
        )
        for epoch in range(p["epochs"]):
            lr = WARMUP_LR if epoch == 0 else 0.5 * p["lr"] * (1.0 + math.cos(math.pi * epoch / p["epochs"]))
            for group in optimizer.param_groups:
                group["lr"] = lr
            for batch in shuffled_batches(len(X), p["batch_size"], generator, device):
                loss = F.cross_entropy(self._logits(X[batch])[:, columns], y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self._adapter.eval()

    def _logits(self, X_unit: torch.Tensor) -> torch.Tensor:
        ratio = self.params["ratio"]
        blended = ratio * self._adapter(X_unit) + (1.0 - ratio) * X_unit
        return LOGIT_SCALE * F.normalize(blended, dim=1) @ self._text.T

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(self._logits, unit_rows(X), self._device)
