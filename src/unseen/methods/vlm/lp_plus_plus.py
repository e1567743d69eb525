"""LP++: a linear probe whose class weights blend visual prototypes with class-wise scaled text embeddings."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from unseen.core.arrays import unit_rows
from unseen.core.device import resolve_device
from unseen.core.registry import HParam
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.methods.vlm.search import accuracy, validation_among
from unseen.methods.vlm.training import index_tensor, local_labels, supported_classes, tensor

ALPHA_INIT_SCALE = 250.0
"""The official initial blending multiplier is this times the mean own-class text similarity."""
MOMENTUM = 0.9
"""The official code runs its full-batch steps on the visual prototypes with SGD momentum."""


@VLM.register("lp++")
class LPPlusPlus(VLMMethod):
    """LP++: linear probe with learnable class-wise blending of the text embeddings.

    Y. Huang, F. Shakeri, J. Dolz, M. Boudiaf, H. Bahig, I. Ben Ayed, "LP++: A Surprisingly
    Strong Linear Probe for Few-Shot CLIP", CVPR 2024. The logits are
    ``l_ik = f_i^T (w_k + alpha_k t_k)`` with visual prototypes ``w_k`` and class-wise
    multipliers ``alpha_k`` on the normalised text embeddings, minimising the cross-entropy by
    full-batch block-coordinate descent with data-driven step sizes (no learning-rate search):
    ``w`` takes a step of size ``4 N / lambda_max(F^T F)`` every iteration (momentum 0.9, as the
    official code), ``alpha`` one of size ``N / (4 max_k sum_i (f_i . t_k)^2)`` every
    ``alpha_every`` iterations. Initialisation as the official code derives it: ``w_k`` is the
    sum of class ``k``'s support features and every ``alpha_k`` is 250 times the mean over
    classes of the mean similarity of a class's features to its own text. 300 iterations; the
    official code keeps the iteration of best validation accuracy, as here (the last one when
    ``val`` is None). Two departures from the official code, both towards the paper: no bias
    term (the paper's logits have none) and each ``alpha`` step uses the current gradient
    (the official code never clears ``alpha``'s gradient, so its steps use the running sum).
    Classes without support samples keep their initial head, ``alpha_0 f . t_k``.
    """

    paper = (
        "Huang, Shakeri, Dolz, Boudiaf, Bahig, Ben Ayed. LP++: A Surprisingly Strong Linear Probe for "
        "Few-Shot CLIP. CVPR 2024."
    )
    hparams = (
        HParam("epochs", 300, help="full-batch iterations (official; 0: the initial head)", low=0),
        HParam("alpha_every", 10, help="iterations on w between two steps on alpha (official)"),
        HParam("tune_on_val", True, help="keep the iteration of best validation accuracy (official)"),
    )
    needs_text = True
    tuned_on_validation = ("epoch",)

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        p = self.params
        self._device = device = resolve_device(self.device)
        classes = supported_classes(support.labels)
        text_all = unit_rows(support.class_text)
        X = tensor(unit_rows(support.features), device)
        y = index_tensor(local_labels(support.labels, classes), device)
        text = tensor(text_all[classes], device)
        n = len(X)
        text_logits = X @ text.T
        own = text_logits.gather(1, y[:, None]).squeeze(1)
        per_class = torch.zeros(len(classes), device=device).index_add_(0, y, own)
        per_class /= torch.bincount(y, minlength=len(classes))
        alpha_init = ALPHA_INIT_SCALE * float(per_class.mean())
        W = torch.zeros(len(classes), X.shape[1], device=device).index_add_(0, y, X).requires_grad_(True)
        alpha = torch.full((len(classes),), alpha_init, device=device, requires_grad=True)
        lr_w = 4.0 * n / float(torch.linalg.eigvalsh(X.T @ X)[-1])
        lr_alpha = n / (4.0 * float(text_logits.pow(2).sum(dim=0).max()))
        optimizer = torch.optim.SGD([W], lr=lr_w, momentum=MOMENTUM)
        tune = val is not None and p["tune_on_val"]
        if tune:
            X_val, y_val = validation_among(val, classes)
            X_val, y_val = tensor(X_val, device), index_tensor(y_val, device)
        best = (-math.inf, p["epochs"], W.detach().clone(), alpha.detach().clone())
        for epoch in range(1, p["epochs"] + 1):
            loss = F.cross_entropy(X @ W.T + alpha * text_logits, y)
            optimizer.zero_grad(set_to_none=True)
            alpha.grad = None
            loss.backward()
            optimizer.step()
            if epoch % p["alpha_every"] == 0:
                with torch.no_grad():
                    alpha -= lr_alpha * alpha.grad
            if tune:
                with torch.no_grad():
                    val_accuracy = accuracy(X_val @ W.T + alpha * (X_val @ text.T), y_val)
                if val_accuracy >= best[0]:  # the official '>=': the latest of equally good iterations
                    best = (val_accuracy, epoch, W.detach().clone(), alpha.detach().clone())
        if not tune:
            best = (math.nan, p["epochs"], W.detach(), alpha.detach())
        _, epoch, W_best, alpha_best = best
        self._W = np.zeros((support.n_classes, support.dim), np.float32)
        self._W[classes] = W_best.cpu().numpy()
        self._alpha = np.full(support.n_classes, alpha_init, np.float32)
        self._alpha[classes] = alpha_best.cpu().numpy()
        self._text = text_all
        self.selected["epoch"] = epoch

    def _scores(self, X: np.ndarray) -> np.ndarray:
        X = unit_rows(X)
        return X @ self._W.T + self._alpha * (X @ self._text.T)
