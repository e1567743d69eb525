"""SJE: structured joint embedding with a structured SVM loss."""

from __future__ import annotations

import torch

from unseen.core.registry import HParam
from unseen.methods.gzsl.bilinear import BilinearCompatibility, sgd_hparams
from unseen.methods.gzsl.ranking_losses import structured_hinge_loss
from unseen.methods.registry import GZSL


@GZSL.register("sje")
class SJE(BilinearCompatibility):
    """Structured Joint Embedding.

    Z. Akata, S. Reed, D. Walter, H. Lee, B. Schiele, "Evaluation of Output Embeddings for
    Fine-Grained Image Classification", CVPR 2015.

    Compatibility ``F(x, c) = x^T W s_c`` trained with the structured SVM (multiclass hinge)
    loss of the most violating class,

        loss = max(0, max_c [Delta(y, c) + F(x, c)] - F(x, y)),  Delta(y, c) = margin * [c != y],

    by the shared minibatch SGD of :mod:`unseen.methods.gzsl.bilinear` (no regulariser, early
    stopping by ``epochs``). Defaults: margin 1 (the paper's 0/1 label loss), ``l2``-normalised
    features and semantics; ``lr = 1`` and 25 epochs chosen on our planted synthetic
    benchmarks within a few-second CUB-sized budget; the grid brackets them (``lr`` in
    {0.3, 1, 3}, 10 or 25 epochs).
    """

    paper = (
        "Akata, Reed, Walter, Lee, Schiele. Evaluation of Output Embeddings for Fine-Grained "
        "Image Classification. CVPR 2015."
    )
    hparams = (
        *sgd_hparams(lr=1.0, lr_grid=(0.3, 1.0, 3.0), epochs=25, epochs_grid=(10, 25)),
        HParam("margin", 1.0, help="label loss Delta(y, c) for c != y"),
    )

    def _loss(self, F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return structured_hinge_loss(F, y, margin=self.params["margin"])
