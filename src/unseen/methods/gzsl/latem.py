"""LATEM: piecewise-linear compatibility from several latent bilinear maps."""

from __future__ import annotations

import torch

from unseen.core.registry import HParam
from unseen.methods.gzsl.bilinear import BilinearCompatibility, sgd_hparams
from unseen.methods.gzsl.ranking_losses import structured_hinge_loss
from unseen.methods.registry import GZSL


@GZSL.register("latem")
class LATEM(BilinearCompatibility):
    """Latent Embeddings.

    Y. Xian, Z. Akata, G. Sharma, Q. Nguyen, M. Hein, B. Schiele, "Latent Embeddings for
    Zero-shot Classification", CVPR 2016.

    ``K`` bilinear maps and ``F(x, c) = max_i x^T W_i s_c``. Trained with the SJE-style ranking
    loss ``max(0, max_c [Delta(y, c) + F(x, c)] - F(x, y))`` (``Delta = 1`` for ``c != y``) by
    the shared minibatch SGD of :mod:`unseen.methods.gzsl.bilinear`; the max routes each
    gradient to the arg-max map only, which is the paper's update of "the map selected for the
    class". (The paper samples one wrong class per step; we use the most violating one over all
    seen classes, vectorised.) With ``K = 1`` this is exactly SJE. Maps start from independent
    small noise so that they specialise. Defaults: ``K = 2``, the cheapest value of the paper's
    range {2, 4, ..., 10} (cost grows linearly in ``K``; on our planted benchmarks larger ``K``
    did not help), ``lr = 1`` as for SJE and 20 epochs; the grid searches ``K`` in {2, 4, 6}
    and the epoch count.
    """

    paper = (
        "Xian, Akata, Sharma, Nguyen, Hein, Schiele. Latent Embeddings for Zero-shot "
        "Classification. CVPR 2016."
    )
    hparams = (
        *sgd_hparams(lr=1.0, lr_grid=(1.0,), epochs=20, epochs_grid=(10, 20)),
        HParam("n_maps", 2, grid=(2, 4, 6), help="number of latent bilinear maps K"),
    )

    def _n_maps(self) -> int:
        return self.params["n_maps"]

    def _loss(self, F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return structured_hinge_loss(F, y, margin=1.0)
