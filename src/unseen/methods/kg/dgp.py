"""DGP: dense graph propagation over ancestors and descendants with distance-dependent weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unseen.core.device import cpu_generator, resolve_device
from unseen.core.registry import HParam
from unseen.data.class_graph import dense_groups
from unseen.methods.kg.base import KGTask, RowPredictor, sparse_tensor, unit_word_vectors
from unseen.methods.registry import KG


class DenseGraphConvolution(nn.Module):
    """``act(sum_k softmax(alpha)_k A_k (dropout(H) W + b))``: one propagation matrix per distance
    group ``A_k``, mixed by learned weights ``alpha`` (initialised equal)."""

    def __init__(self, groups, n_in: int, n_out: int, dropout: float, act, generator) -> None:
        super().__init__()
        self.groups = groups
        bound = float(np.sqrt(6.0 / (n_in + n_out)))
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound, generator=generator))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.alpha = nn.Parameter(torch.ones(len(groups)))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.act = act

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        support = self.dropout(h) @ self.weight + self.bias
        mix = torch.softmax(self.alpha, dim=0)
        out = sum(mix[k] * torch.sparse.mm(a, support) for k, a in enumerate(self.groups))
        return self.act(out)


class DGPNetwork(nn.Module):
    """Two dense layers - from the descendants, then from the ancestors - and L2-normalised outputs."""

    def __init__(self, down, up, widths: list[int], dropout: float, slope: float, generator) -> None:
        super().__init__()
        self.first = DenseGraphConvolution(
            down, widths[0], widths[1], dropout, nn.LeakyReLU(slope), generator
        )
        self.second = DenseGraphConvolution(up, widths[1], widths[2], dropout, nn.Identity(), generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.second(self.first(x)), dim=1)


@KG.register("dgp")
class DGP(RowPredictor):
    """DGP (Kampffmeyer, Chen, Liang, Wang, Zhang, Xing, *Rethinking Knowledge Graph Propagation for
    Zero-Shot Learning*, CVPR 2019), the graph stage.

    Each node is connected to all its ancestors and descendants, the connections grouped by
    distance (0 = itself, 1, 2, 3, and 4 or more: ``groups`` 5, the authors' code). The first
    layer aggregates from the descendants, the second from the ancestors, each group row-
    normalised and weighted by a softmax over learned per-group weights. Hidden width 2048,
    leaky ReLU (0.2), dropout 0.5 on the input of both layers, L2-normalised outputs; loss the
    squared error to the L2-normalised seen rows summed over them and divided by twice their
    number; Adam at ``1e-3`` with weight decay ``5e-4``, full batch, 3000 epochs.

    The paper's second stage fine-tunes the image backbone's last layers on the seen classes'
    training images with the predicted seen rows fixed; those images (ImageNet's) are not
    available here, so only the graph stage runs (docs/knowledge-graph.md).
    """

    paper = (
        "Kampffmeyer, Chen, Liang, Wang, Zhang, Xing. Rethinking Knowledge Graph Propagation for "
        "Zero-Shot Learning. CVPR 2019."
    )
    hparams = (
        HParam("epochs", 3000, help="full-batch training epochs"),
        HParam("hidden", 2048, help="width of the hidden layer"),
        HParam("groups", 5, help="distance groups (the last holds every larger distance)"),
        HParam("lr", 1e-3, help="Adam learning rate"),
        HParam("weight_decay", 5e-4, help="L2 weight decay"),
        HParam("dropout", 0.5, low=0.0, high=0.9, help="dropout on each layer's input"),
        HParam("slope", 0.2, help="leaky ReLU negative slope"),
    )

    def _fit(self, task: KGTask) -> None:
        p = self.params
        device = resolve_device(self.device)
        inputs = unit_word_vectors(task, device)
        targets = nn.functional.normalize(torch.as_tensor(task.seen_logit_rows, dtype=torch.float32), dim=1)
        down, up = dense_groups(task.graph, p["groups"])
        widths = [inputs.shape[1], p["hidden"], targets.shape[1]]
        network = DGPNetwork(
            [sparse_tensor(a, device) for a in down],
            [sparse_tensor(a, device) for a in up],
            widths,
            p["dropout"],
            p["slope"],
            cpu_generator(self.seed),
        ).to(device)

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return ((out - target) ** 2).sum() / (2 * len(target))

        self._fit_rows(task, network, inputs, targets.to(device), loss, device)
