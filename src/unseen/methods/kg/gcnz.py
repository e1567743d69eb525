"""GCNZ: a six-layer graph convolutional network regresses the seen classifiers from word vectors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unseen.core.device import cpu_generator, resolve_device
from unseen.core.registry import HParam
from unseen.data.class_graph import gcn_adjacency
from unseen.methods.kg.base import KGTask, RowPredictor, sparse_tensor, unit_word_vectors
from unseen.methods.registry import KG


class GraphConvolution(nn.Module):
    """``act(A @ dropout(H) @ W)`` with a fixed propagation matrix ``A``, no bias, Glorot-uniform ``W``."""

    def __init__(self, n_in: int, n_out: int, dropout: float, act, generator: torch.Generator) -> None:
        super().__init__()
        bound = float(np.sqrt(6.0 / (n_in + n_out)))
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound, generator=generator))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.act = act

    def forward(self, adjacency: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.act(torch.sparse.mm(adjacency, self.dropout(h) @ self.weight))


class GCNZNetwork(nn.Module):
    """Layers of :class:`GraphConvolution`: leaky ReLU between them, dropout on the inputs of the
    last two, L2-normalised outputs."""

    def __init__(self, adjacency, widths: list[int], dropout: float, slope: float, generator) -> None:
        super().__init__()
        self.adjacency = adjacency
        last = len(widths) - 2
        leaky = nn.LeakyReLU(slope)
        self.layers = nn.ModuleList(
            GraphConvolution(
                widths[i],
                widths[i + 1],
                dropout if i >= last - 1 else 0.0,
                nn.Identity() if i == last else leaky,
                generator,
            )
            for i in range(len(widths) - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(self.adjacency, x)
        return nn.functional.normalize(x, dim=1)


@KG.register("gcnz")
class GCNZ(RowPredictor):
    """GCNZ (Wang, Ye, Gupta, *Zero-shot Recognition via Semantic Embeddings and Knowledge Graphs*,
    CVPR 2018).

    Every node of the class graph starts from the word vector of its name; a 6-layer GCN over the
    undirected graph with self-loops and symmetric normalisation (``D^-1/2 (A + I) D^-1/2``)
    outputs one classifier row per node (weights and bias), L2-normalised. Layers have no bias,
    widths 2048-2048-1024-1024-512 (the authors' code), leaky ReLU (slope 0.2) between them and
    dropout 0.5 on the inputs of the last two. The loss is the squared error to the L2-normalised
    seen rows, summed, halved and scaled by ``(n_nodes / n_seen)^2`` (the authors' masked loss),
    plus weight decay ``5e-4``; Adam at ``1e-3``, full batch, 350 epochs (the code's default).
    The predicted rows of every candidate class, seen ones included, score the samples.
    """

    paper = "Wang, Ye, Gupta. Zero-shot Recognition via Semantic Embeddings and Knowledge Graphs. CVPR 2018."
    hparams = (
        HParam("epochs", 350, help="full-batch training epochs"),
        HParam("hidden", "2048,2048,1024,1024,512", help="widths of the five hidden layers"),
        HParam("lr", 1e-3, help="Adam learning rate"),
        HParam("weight_decay", 5e-4, help="L2 weight decay"),
        HParam("dropout", 0.5, low=0.0, high=0.9, help="dropout before the last two layers"),
        HParam("slope", 0.2, help="leaky ReLU negative slope"),
    )

    def _fit(self, task: KGTask) -> None:
        p = self.params
        device = resolve_device(self.device)
        inputs = unit_word_vectors(task, device)
        targets = nn.functional.normalize(torch.as_tensor(task.seen_logit_rows, dtype=torch.float32), dim=1)
        widths = [inputs.shape[1], *(int(w) for w in p["hidden"].split(",")), targets.shape[1]]
        adjacency = sparse_tensor(gcn_adjacency(task.graph), device)
        network = GCNZNetwork(adjacency, widths, p["dropout"], p["slope"], cpu_generator(self.seed)).to(
            device
        )
        scale = (task.graph.n_nodes / len(task.seen)) ** 2

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return 0.5 * scale * ((out - target) ** 2).sum()

        self._fit_rows(task, network, inputs, targets.to(device), loss, device)
