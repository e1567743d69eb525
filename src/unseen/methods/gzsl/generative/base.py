"""``GenerativeGZSL``: train a conditional feature generator, synthesise unseen features, classify.

The fit, shared by the family (Xian et al. CVPR 2018 and its successors):

1. features are scaled (``feature_scaling``, default min-max fitted on the training features)
   and class semantics normalised (``semantic_norm``, default L2);
2. the subclass trains its generator for ``epochs`` epochs (:meth:`_train_epoch`);
3. ``syn_per_class`` features are synthesised for every unseen class and a linear log-softmax
   classifier is trained for ``cls_epochs`` epochs on real seen + synthetic unseen features.

Honest epoch selection: ``epochs`` and ``cls_epochs`` are ``selected_on_validation``. When a
protocol monitors the fit (validation), a classifier is trained after every
``checkpoint_every``-th generator epoch (and the last), and every classifier epoch is offered
as a checkpoint ``(epochs=e, cls_epochs=c)``; the protocol keeps the best on validation and
refits on the whole training split for exactly those lengths, unmonitored (one classifier, at
the end). Random streams are separate for the generator, synthesis and the classifier, so the
state at ``(e, c)`` is the same whether or not earlier checkpoints were taken.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from unseen.core.device import as_tensor, resolve_device, score_in_chunks, stream
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.generative.classifier import SoftmaxClassifier, train_softmax
from unseen.methods.gzsl.generative.training import (
    FEATURE_SCALINGS,
    BatchSampler,
    MinMaxScaler,
    synthesize,
)
from unseen.methods.gzsl.preprocessing import SEMANTIC_NORMS, normalize_semantics

COMMON_HPARAMS = (
    HParam("cls_epochs", 25, help="epochs of the final softmax classifier (maximum; selected on validation)"),
    HParam("cls_lr", 1e-3, help="Adam learning rate of the final classifier (beta1 0.5)"),
    HParam("checkpoint_every", 5, help="generator epochs between validation checkpoints"),
    HParam("feature_scaling", "minmax", help="feature scaling fitted on train", choices=FEATURE_SCALINGS),
    HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
)


class GenerativeGZSL(GZSLMethod):
    """Base of the feature-generating methods; subclasses build and train the generator.

    Subclasses declare ``epochs``, ``batch_size`` and ``syn_per_class`` hyperparameters (plus
    ``COMMON_HPARAMS``), set ``self.noise_dim`` in :meth:`_build` and implement :meth:`_build`,
    :meth:`_train_epoch` and :meth:`_generate`; they may override :meth:`_embed` (the
    classifier's view of a feature, e.g. TF-VAEGAN's decoder concatenation).
    """

    selected_on_validation: ClassVar[tuple[str, ...]] = ("epochs", "cls_epochs")
    noise_dim: int

    def _fit(self, train: TrainSet) -> None:
        p = self.params
        self._device = resolve_device(self.device)
        self._scaler = MinMaxScaler(train.features, p["feature_scaling"])
        S = normalize_semantics(train.classes.semantics, p["semantic_norm"])
        self._S = as_tensor(S, self._device)
        self._X = as_tensor(self._scaler(train.features), self._device)
        self._y = torch.as_tensor(np.asarray(train.labels, dtype=np.int64), device=self._device)
        self._unseen = train.classes.unseen_ids
        self._build(train, stream(self.seed, "init"))
        gen = stream(self.seed, "generator", self._device)
        sampler = BatchSampler(len(self._X), min(p["batch_size"], len(self._X)), gen, self._device)
        for epoch in range(1, p["epochs"] + 1):
            self._train_epoch(sampler, gen)
            last = epoch == p["epochs"]
            if self.monitored and (last or epoch % p["checkpoint_every"] == 0):
                self._fit_classifier(epoch)
        if not self.monitored:
            self._fit_classifier(p["epochs"])

    def _fit_classifier(self, epoch: int) -> None:
        p = self.params
        gen = stream(self.seed, "classifier", self._device)
        with torch.no_grad():
            X_syn, y_syn = synthesize(
                self._generate, self._S, self._unseen, p["syn_per_class"], self.noise_dim, gen
            )
            X = torch.cat([self._embed(self._X), self._embed(X_syn)])
        y = torch.cat([self._y, y_syn])

        def offer(c: int, clf: SoftmaxClassifier) -> None:
            self._clf = clf
            self.checkpoint(epochs=epoch, cls_epochs=c)

        self._clf = train_softmax(
            X,
            y,
            self._n_classes,
            p["cls_epochs"],
            gen,
            lr=p["cls_lr"],
            batch_size=self._classifier_batch_size(),
            on_epoch=offer if self.monitored else None,
        )

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(lambda x: self._clf(self._embed(x)), self._scaler(X), self._device)

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        raise NotImplementedError

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        """One epoch: ``ceil(n / batch)`` generator steps on minibatches from ``sampler``."""
        raise NotImplementedError

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return X

    def _classifier_batch_size(self) -> int:
        """The final classifier's batch (the official codes': the synthetic count per class)."""
        return self.params["syn_per_class"]

    def _adam(self, module: torch.nn.Module, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(module.parameters(), lr=lr, betas=(0.5, 0.999), fused=True)
