"""DeViSE: a linear visual-to-semantic map trained with a hinge rank loss."""

from __future__ import annotations

import torch

from unseen.core.registry import HParam
from unseen.methods.gzsl.bilinear import BilinearCompatibility, sgd_hparams
from unseen.methods.gzsl.ranking_losses import hinge_rank_loss
from unseen.methods.registry import GZSL


@GZSL.register("devise")
class DeViSE(BilinearCompatibility):
    """Deep Visual-Semantic Embedding, on fixed embeddings.

    A. Frome, G. S. Corrado, J. Shlens, S. Bengio, J. Dean, M. Ranzato, T. Mikolov, "DeViSE: A
    Deep Visual-Semantic Embedding Model", NeurIPS 2013.

    A linear map ``M`` (``k x d``) sends ``x`` into the semantic space and a class scores
    ``s_c^T M x`` (the bilinear form ``x^T W s_c`` with ``W = M^T``); the hinge rank loss sums
    over all wrong training classes:

        loss = sum_{c != y} max(0, margin - s_y^T M x + s_c^T M x).

    The paper trains the top of a CNN with it; here only ``M`` is learned, on fixed embeddings,
    by the shared minibatch SGD of :mod:`unseen.methods.gzsl.bilinear` (no regulariser, early
    stopping by ``epochs``). Defaults: margin 0.1 (the paper's value for unit-norm word
    vectors; our semantics are ``l2``-normalised too), ``l2`` features, ``lr = 0.3`` and 25
    epochs chosen on our planted synthetic benchmarks within a few-second CUB-sized budget (the
    loss sums over all violators, so its steps are larger than SJE's); the grid searches ``lr``
    in {0.1, 0.3}, margin in {0.1, 1} and 10 or 25 epochs.
    """

    paper = (
        "Frome, Corrado, Shlens, Bengio, Dean, Ranzato, Mikolov. DeViSE: A Deep Visual-Semantic "
        "Embedding Model. NeurIPS 2013."
    )
    hparams = (
        *sgd_hparams(lr=0.3, lr_grid=(0.1, 0.3), epochs=25, epochs_grid=(10, 25)),
        HParam("margin", 0.1, grid=(0.1, 1.0), help="hinge margin"),
    )

    def _loss(self, F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return hinge_rank_loss(F, y, margin=self.params["margin"])
