"""Tip-Adapter and Tip-Adapter-F: a key-value cache of the few-shot features added to zero-shot CLIP."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from unseen.core.arrays import unit_rows
from unseen.core.device import cpu_generator, resolve_device, score_in_chunks
from unseen.core.registry import HParam
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.methods.vlm.search import accuracy, first_best, tip_adapter_grid, validation_among
from unseen.methods.vlm.training import (
    index_tensor,
    local_labels,
    shuffled_batches,
    supported_classes,
    tensor,
)
from unseen.methods.vlm.zero_shot import LOGIT_SCALE

ADAMW_EPS = 1e-4
"""The official Tip-Adapter-F optimizer's epsilon (AdamW, otherwise torch's defaults)."""


def cache_logits(
    key_affinity: torch.Tensor, cache_labels: torch.Tensor, n_classes: int, beta: float
) -> torch.Tensor:
    """``exp(-beta (1 - A)) L`` as ``(n, n_classes)``: each class sums the affinities of its entries.

    ``key_affinity`` ``(m, n)`` holds ``k_j . x_i`` for ``m`` cache keys (rows) whose classes
    are ``cache_labels`` ``(m,)`` and ``n`` images; ``L`` is the one-hot value matrix, applied
    as a scatter-add over rows (keys-major, the fast direction for it).
    """
    weights = torch.exp(-beta * (1.0 - key_affinity))
    per_class = key_affinity.new_zeros((n_classes, key_affinity.shape[1]))
    return per_class.index_add(0, cache_labels, weights).T


@VLM.register("tip-adapter")
class TipAdapter(VLMMethod):
    """Tip-Adapter: training-free cache model on top of zero-shot CLIP.

    R. Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification",
    ECCV 2022. The cache keys are the L2-normalised support features ``K``, the values their
    one-hot labels ``L``; an image ``x`` (normalised) scores

        logits = 100 x T^T + alpha exp(-beta (1 - x K^T)) L

    with ``T`` the normalised class text embeddings. ``alpha`` (residual ratio) and ``beta``
    (sharpness) are chosen by the official search - every pair of ``beta_steps`` values spaced
    from 0.1 towards ``beta_scale`` and ``alpha_steps`` values towards ``alpha_scale``, the first
    best pair in beta-major order - but on the few-shot validation set: the official code
    searches on its val split (on ImageNet, on the test set). Defaults are the official
    ImageNet configuration (``init_alpha`` 1.17, ``init_beta`` 1, search scales 3 and 7, steps
    20 and 200), used as given when ``val`` is None or ``tune_on_val`` is false. The official
    cache keys average 10 augmented views per image; cached embeddings have one view.
    Classes without support samples have no cache entries and keep their zero-shot scores.
    """

    paper = "Zhang et al. Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification. ECCV 2022."
    hparams = (
        HParam("alpha", 1.17, help="residual ratio: weight of the cache logits (official ImageNet init)"),
        HParam("beta", 1.0, help="sharpness of the cache affinities (official init)"),
        HParam("alpha_scale", 3.0, help="upper end of alpha's search range (official ImageNet config)"),
        HParam("beta_scale", 7.0, help="upper end of beta's search range (official ImageNet config)"),
        HParam("alpha_steps", 20, help="alpha values searched (official)"),
        HParam("beta_steps", 200, help="beta values searched (official)"),
        HParam("tune_on_val", True, help="choose alpha and beta (Tip-Adapter-F: and the epoch) on val"),
    )
    needs_text = True
    tuned_on_validation = ("alpha", "beta")

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        p = self.params
        self._device = resolve_device(self.device)
        self._text = tensor(unit_rows(support.class_text), self._device)
        self._cache_labels = index_tensor(support.labels, self._device)
        self._keys = self._cache_keys(support, val)
        self._alpha, self._beta = p["alpha"], p["beta"]
        if val is not None and p["tune_on_val"]:
            self._alpha, self._beta = self._search(val, supported_classes(support.labels))
        self.selected.update(alpha=self._alpha, beta=self._beta)

    def _cache_keys(self, support: FewShotSet, val: FewShotSet | None) -> torch.Tensor:
        return tensor(unit_rows(support.features), self._device)

    def _logits(self, X_unit: torch.Tensor, keys: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
        cache = cache_logits(keys @ X_unit.T, self._cache_labels, len(self._text), beta)
        return LOGIT_SCALE * X_unit @ self._text.T + alpha * cache

    @torch.no_grad()
    def _search(self, val: FewShotSet, classes: np.ndarray) -> tuple[float, float]:
        p = self.params
        X, y = validation_among(val, classes)
        X, y = tensor(X, self._device), index_tensor(y, self._device)
        columns = index_tensor(classes, self._device)
        zero_shot = LOGIT_SCALE * X @ self._text[columns].T
        # cache_logits written into buffers reused across the grid: at ImageNet scale every
        # beta touches (16,000 keys x 4,000 images)
        shifted = self._keys @ X.T - 1.0
        weights = torch.empty_like(shifted)
        per_class = shifted.new_empty((len(self._text), len(X)))
        logits = torch.empty_like(zero_shot)
        results = []  # (beta, alpha, accuracy) in the official beta-major order
        for beta in tip_adapter_grid(p["beta_scale"], p["beta_steps"]):
            torch.mul(shifted, beta, out=weights).exp_()
            per_class.zero_().index_add_(0, self._cache_labels, weights)
            cache = per_class[columns].T.contiguous()
            for alpha in tip_adapter_grid(p["alpha_scale"], p["alpha_steps"]):
                torch.add(zero_shot, cache, alpha=alpha, out=logits)
                results.append((beta, alpha, accuracy(logits, y)))
        (beta, alpha, _), _ = first_best(results, lambda r: r[2])
        return alpha, beta

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(
            lambda x: self._logits(x, self._keys, self._alpha, self._beta), unit_rows(X), self._device
        )


@VLM.register("tip-adapter-f")
class TipAdapterF(TipAdapter):
    """Tip-Adapter-F: Tip-Adapter whose cache keys are fine-tuned on the support set.

    R. Zhang et al., ECCV 2022 (see :class:`TipAdapter`). The keys start as the normalised
    support features and are trained with cross-entropy of the Tip-Adapter logits at the
    initial ``alpha`` and ``beta``; values and text stay fixed. Optimiser as the official
    code: AdamW (lr 1e-3, eps 1e-4, torch's weight decay 0.01), cosine annealing per step over
    20 epochs of batches of 256. The official code keeps the epoch of best *test* accuracy; here
    the epoch of best validation accuracy is kept (the last one without a search), then
    ``alpha`` and ``beta`` are searched on val as in :class:`TipAdapter`. Training sees each
    support feature once per epoch (no image augmentation on cached embeddings); its
    cross-entropy runs over the classes with support samples.
    """

    hparams = TipAdapter.hparams + (
        HParam("lr", 1e-3, help="AdamW learning rate (official)"),
        HParam("epochs", 20, help="training epochs (official)"),
        HParam("batch_size", 256, high=2**20, help="minibatch size (official)"),
    )
    tuned_on_validation = ("epoch", "alpha", "beta")

    def _cache_keys(self, support: FewShotSet, val: FewShotSet | None) -> torch.Tensor:
        p = self.params
        alpha, beta = p["alpha"], p["beta"]
        features = tensor(unit_rows(support.features), self._device)
        classes = supported_classes(support.labels)
        columns = index_tensor(classes, self._device)
        targets = index_tensor(local_labels(support.labels, classes), self._device)
        keys = features.clone().requires_grad_(True)
        optimizer = torch.optim.AdamW([keys], lr=p["lr"], eps=ADAMW_EPS)
        steps = p["epochs"] * math.ceil(len(features) / p["batch_size"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        generator = cpu_generator(self.seed)
        tune = val is not None and p["tune_on_val"]
        if tune:
            X_val, y_val = validation_among(val, classes)
            X_val, y_val = tensor(X_val, self._device), index_tensor(y_val, self._device)
        best_keys, best_accuracy, best_epoch = keys.detach().clone(), -math.inf, p["epochs"]
        for epoch in range(1, p["epochs"] + 1):
            for batch in shuffled_batches(len(features), p["batch_size"], generator, self._device):
                logits = self._logits(features[batch], keys, alpha, beta)[:, columns]
                loss = F.cross_entropy(logits, targets[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
            if tune:
                with torch.no_grad():
                    val_accuracy = accuracy(self._logits(X_val, keys, alpha, beta)[:, columns], y_val)
                if val_accuracy > best_accuracy:
                    best_keys, best_accuracy, best_epoch = keys.detach().clone(), val_accuracy, epoch
        if not tune:
            best_keys = keys.detach().clone()
        self.selected["epoch"] = best_epoch
        return best_keys
