"""LisGAN: f-CLSWGAN whose generated features are pulled towards each class's soul samples."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.f_clswgan import FCLSWGAN
from unseen.methods.gzsl.generative import gaussian
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS
from unseen.methods.registry import GZSL


def soul_samples(X: np.ndarray, labels: np.ndarray, n_classes: int, k: int, seed: int) -> np.ndarray:
    """``(n_classes, k, d)``: per class, the means of ``k`` k-means clusters of its features (its
    "soul samples"). A class with fewer than ``k`` samples repeats its cluster means to fill ``k``
    slots, which leaves every nearest-soul distance unchanged."""
    out = np.empty((n_classes, k, X.shape[1]), dtype=np.float32)
    for c in range(n_classes):
        rows = X[labels == c]
        clusters = min(k, len(rows))
        assign = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit_predict(rows)
        means = np.stack([rows[assign == j].mean(axis=0) for j in range(clusters)])
        out[c] = means[np.arange(k) % clusters]
    return out


def nearest_soul_distance(features: torch.Tensor, souls: torch.Tensor) -> torch.Tensor:
    """Per row, the squared Euclidean distance to the nearest of its class's soul samples
    (``souls``: ``(n, k, d)``, the souls of each row's class); the mean over rows."""
    return (features[:, None, :] - souls).pow(2).sum(dim=2).min(dim=1).values.mean()


@GZSL.register("lisgan")
class LisGAN(FCLSWGAN):
    """LisGAN (Li, Jing, Lu, Ding, Zhu, Huang, *Leveraging the Invariant Side of Generative
    Zero-Shot Learning*, CVPR 2019).

    f-CLSWGAN (:class:`FCLSWGAN`: conditional WGAN-GP, frozen pretrained seen-class classifier)
    plus the invariant side of each class: its *soul samples*, the means of ``soul_samples`` = 3
    k-means clusters of its real training features. The generator additionally minimises

    - ``sample_soul_weight`` (0.01) times the mean, over the step's generated features, of the
      squared distance from each to the nearest soul sample of its class, and
    - ``class_soul_weight`` (0.01) times the mean, over the seen classes, of the squared distance
      from the class's generated prototype (the mean of ``class_soul_samples`` = 20 features
      generated for it with fresh noise at every step) to its nearest soul sample.

    Settings are the official code's (github.com/lijin118/LisGAN, ``lisgan.py``): critic width
    1024 (generator 4096), classification-loss weight 1, 100 synthetic features per unseen class,
    the seen classifier pretrained for 100 epochs, the final classifier trained for 50 epochs in
    batches of twice the synthetic count; otherwise f-CLSWGAN's (Adam lr 1e-4, betas (0.5,
    0.999), batch 64, 5 critic steps, penalty 10). The official code publishes one configuration
    for every dataset, so there are no per-dataset defaults. Its ZSL-only second stage (the
    confidence-ranked refinement of unseen predictions with soul samples) has no GZSL form and is
    left out. Selection as in :class:`FCLSWGAN`.
    """

    paper = (
        "Li, Jing, Lu, Ding, Zhu, Huang. Leveraging the Invariant Side of Generative Zero-Shot "
        "Learning. CVPR 2019."
    )
    hparams = (
        HParam("epochs", 56, help="generator epochs (budget; the best is selected on validation)"),
        HParam("hidden", 4096, help="hidden units of the generator"),
        HParam("critic_hidden", 1024, help="hidden units of the critic"),
        HParam("lr", 1e-4, help="Adam learning rate of generator and critic (betas 0.5, 0.999)"),
        HParam("batch_size", 64, high=2**20, help="GAN minibatch size"),
        HParam("critic_iters", 5, help="critic steps per generator step"),
        HParam("gp_weight", 10.0, help="gradient-penalty weight (lambda)"),
        HParam("cls_weight", 1.0, help="weight of the classification loss"),
        HParam("pretrain_epochs", 100, help="epochs of the frozen seen-class classifier"),
        HParam("syn_per_class", 100, help="synthetic features per unseen class"),
        HParam("soul_samples", 3, help="soul samples (k-means clusters) per seen class"),
        HParam("sample_soul_weight", 0.01, help="weight of the sample-level soul-sample loss"),
        HParam("class_soul_weight", 0.01, help="weight of the class-level soul-sample loss"),
        HParam("class_soul_samples", 20, help="generated features averaged into a class prototype"),
        *(h for h in COMMON_HPARAMS if h.name != "cls_epochs"),
        HParam(
            "cls_epochs", 50, help="epochs of the final softmax classifier (maximum; selected on validation)"
        ),
    )
    dataset_defaults = {}
    fast_hparams = {**FCLSWGAN.fast_hparams, "critic_hidden": 128, "class_soul_samples": 5}

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        super()._build(train, generator)
        p, dev = self.params, self._device
        seen = train.classes.seen_ids
        souls = soul_samples(
            self._X.cpu().numpy(), self._y_local.cpu().numpy(), len(seen), p["soul_samples"], self.seed
        )
        self._souls = torch.as_tensor(souls, device=dev)
        self._seen_semantics = self._S[torch.as_tensor(seen, device=dev)]

    def _critic_hidden(self) -> int:
        return self.params["critic_hidden"]

    def _classifier_batch_size(self) -> int:
        return 2 * self.params["syn_per_class"]

    def _generator_loss(
        self, fake: torch.Tensor, a: torch.Tensor, y_local: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        p = self.params
        m, n_seen = p["class_soul_samples"], len(self._seen_semantics)
        per_class = self._G(
            gaussian((n_seen * m, self.noise_dim), generator, self._device),
            self._seen_semantics.repeat_interleave(m, dim=0),
        )
        prototypes = per_class.view(n_seen, m, -1).mean(dim=1)
        return (
            super()._generator_loss(fake, a, y_local, generator)
            + p["sample_soul_weight"] * nearest_soul_distance(fake, self._souls[y_local])
            + p["class_soul_weight"] * nearest_soul_distance(prototypes, self._souls)
        )
