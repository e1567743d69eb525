"""DASCN: a primal GAN generating visual features from semantics and a dual GAN mapping them back."""

from __future__ import annotations

import torch
from torch import nn

from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.f_clswgan import FCLSWGAN
from unseen.methods.gzsl.generative import (
    BatchSampler,
    Critic,
    SemanticDecoder,
    frozen,
    gaussian,
    init_weights,
)
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS
from unseen.methods.gzsl.lsrgan import class_means
from unseen.methods.registry import GZSL


def centroid_distance(features: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The visual-consistency loss: for each class among ``labels`` (local ids into ``centroids``,
    the ``(c, d)`` real class centroids), the Euclidean distance between the mean of its rows of
    ``features`` and its real centroid; the mean over those classes."""
    means, present = class_means(features, labels, len(centroids))
    return (means[present] - centroids[present]).norm(dim=1).mean()


def semantic_distance(reconstructed: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
    """The semantic-consistency loss: the mean over rows of the Euclidean distance between each
    reconstructed semantic vector and the semantics of its class."""
    return (reconstructed - semantics).norm(dim=1).mean()


@GZSL.register("dascn")
class DASCN(FCLSWGAN):
    """DASCN (Ni, Zhang, Xie, *Dual Adversarial Semantics-Consistent Network for Generalized
    Zero-Shot Learning*, NeurIPS 2019).

    Two GANs trained together on the seen classes, then the family's final classifier
    (:class:`GenerativeGZSL`: real seen + ``syn_per_class`` synthetic unseen features).

    * Primal GAN: the f-CLSWGAN pair (:class:`FCLSWGAN`), generator ``G_SV(z, a) -> x'`` and
      conditional WGAN-GP critic ``D_V(x, a)``, with the frozen pretrained seen-class classifier's
      NLL (``cls_weight``) and the visual-consistency loss (``vc_weight``,
      :func:`centroid_distance`: generated class centroids against the real ones, computed once on
      all training features of each seen class).
    * Dual GAN: generator ``G_VS(x) -> a'`` (one hidden layer of ``dual_hidden`` units, LeakyReLU
      0.2, L2-normalised output, like the class semantics) and a WGAN-GP critic on semantics
      ``D_S(a, x)``, conditioned on the visual feature the semantics belong to: real pairs are the
      class semantics with a real or a generated feature of the class, fake pairs the same
      features with ``G_VS``'s reconstruction. ``G_VS`` minimises ``-E[D_S(G_VS(x), x)]`` plus the
      semantic-consistency loss (``sc_weight``, :func:`semantic_distance` to the class semantics),
      over real features ``x`` and generated ``x'``.
    * The two are coupled: the primal generator also synthesises ``x'' = G_SV(z, G_VS(x'))`` from
      the semantics the dual GAN reconstructs, and ``x''`` takes the primal terms (critic score
      under the class semantics, NLL, visual consistency) alongside ``x'``. Each generator step
      updates ``G_SV`` and ``G_VS`` jointly on the sum of both generators' losses, so the dual
      GAN's adversarial and consistency terms on ``G_VS(x')`` also train ``G_SV``; before it, each
      critic takes ``critic_iters`` steps (both with gradient penalty ``gp_weight``).

    Sources. The stored copies of the paper available here give its abstract only, and the
    authors published no code, so the structure above is the abstract's (primal GAN from class
    semantics and from dual-reconstructed semantics, dual GAN with semantics-consistent
    adversarial learning) plus the losses the method is known for (classification and
    visual-consistency losses in the primal GAN, semantic consistency in the dual). The shared
    settings are f-CLSWGAN's, on which DASCN builds: MLPs of 4096 hidden units with LeakyReLU 0.2,
    noise dimension = attribute dimension, Adam lr 1e-4 with betas (0.5, 0.999), batch 64, 5 critic
    steps, gradient penalty 10, classification weight 0.01, the frozen classifier pretrained for 50
    epochs, and f-CLSWGAN's official per-dataset epochs, synthetic counts, ``cls_weight`` and
    ``lr`` (``dataset_defaults``). Chosen here, not taken from a source: the dual critic's
    conditioning on the visual feature, ``vc_weight`` = ``sc_weight`` = 1, ``dual_hidden`` = 4096,
    the distances' reduction (mean over classes, mean over rows) and scoring ``x''`` with the
    class semantics. Class semantics must be L2-normalised (``semantic_norm`` ``l2``), the space
    ``G_VS`` maps into. Selection as in :class:`FCLSWGAN` (``epochs`` and ``cls_epochs`` on the
    ``gzsl-ps-v1`` validation task).
    """

    paper = (
        "Ni, Zhang, Xie. Dual Adversarial Semantics-Consistent Network for Generalized Zero-Shot "
        "Learning. NeurIPS 2019."
    )
    hparams = (
        HParam("epochs", 56, help="generator epochs (budget; the best is selected on validation)"),
        HParam("hidden", 4096, help="hidden units of the primal generator and critic"),
        HParam("dual_hidden", 4096, help="hidden units of the dual generator and critic"),
        HParam("lr", 1e-4, help="Adam learning rate of all generators and critics (betas 0.5, 0.999)"),
        HParam("batch_size", 64, high=2**20, help="GAN minibatch size"),
        HParam("critic_iters", 5, help="steps of each critic per generator step"),
        HParam("gp_weight", 10.0, help="gradient-penalty weight of both critics"),
        HParam("cls_weight", 0.01, help="weight of the primal generator's classification loss"),
        HParam("vc_weight", 1.0, help="weight of the visual-consistency (class centroid) loss"),
        HParam("sc_weight", 1.0, help="weight of the dual generator's semantic-consistency loss"),
        HParam("pretrain_epochs", 50, help="epochs of the frozen seen-class classifier"),
        HParam("syn_per_class", 300, help="synthetic features per unseen class"),
        *(h for h in COMMON_HPARAMS if h.name != "semantic_norm"),
        HParam(
            "semantic_norm",
            "l2",
            choices=("l2",),
            help="class-semantics normalisation (l2 only: the dual generator's output is L2-normalised)",
        ),
    )
    dataset_defaults = FCLSWGAN.dataset_defaults
    fast_hparams = {**FCLSWGAN.fast_hparams, "epochs": 15, "lr": 2e-3, "dual_hidden": 128}

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        super()._build(train, generator)
        p, dev = self.params, self._device
        feat_dim, att_dim, h = self._X.shape[1], self._S.shape[1], p["dual_hidden"]
        self._R = init_weights(SemanticDecoder(feat_dim, att_dim, h), generator).to(dev)
        self._DS = init_weights(Critic(att_dim, feat_dim, h), generator).to(dev)
        self._opt_r, self._opt_ds = self._adam(self._R, p["lr"]), self._adam(self._DS, p["lr"])
        self._centroids, _ = class_means(self._X, self._y_local, len(train.classes.seen_ids))

    def _reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``G_VS(x)``: the dual generator's semantics of visual features ``x``."""
        return self._R(x)[0]

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        p = self.params
        steps, k = -(-len(self._X) // sampler.batch), p["critic_iters"]
        for step in sampler.draw(steps * k).view(steps, k, -1):
            for idx in step:
                x, a = self._X[idx], self._S[self._y[idx]]
                with torch.no_grad():
                    fake = self._G(gaussian((len(idx), self.noise_dim), generator, self._device), a)
                    visual = torch.cat([x, fake])
                    rebuilt = self._reconstruct(visual)
                self._opt_d.zero_grad(set_to_none=True)
                self._opt_ds.zero_grad(set_to_none=True)
                self._D.backward_wgan_gp(x, fake, a, generator, p["gp_weight"])
                self._DS.backward_wgan_gp(torch.cat([a, a]), rebuilt, visual, generator, p["gp_weight"])
                self._opt_d.step()
                self._opt_ds.step()
            with frozen(self._D), frozen(self._DS):
                loss = self._generators_loss(idx, generator)
            self._opt_g.zero_grad(set_to_none=True)
            self._opt_r.zero_grad(set_to_none=True)
            loss.backward()
            self._opt_g.step()
            self._opt_r.step()

    def _generators_loss(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The joint loss of ``G_SV`` and ``G_VS`` on the real minibatch ``idx``."""
        p = self.params
        x, a, local = self._X[idx], self._S[self._y[idx]], self._y_local[idx]
        n = len(idx)
        fake = self._G(gaussian((n, self.noise_dim), generator, self._device), a)
        rebuilt_fake = self._reconstruct(fake)
        cycled = self._G(gaussian((n, self.noise_dim), generator, self._device), rebuilt_fake)
        primal = sum(
            -self._D(v, a).mean()
            + p["cls_weight"] * nn.functional.nll_loss(self._pretrained(v), local)
            + p["vc_weight"] * centroid_distance(v, local, self._centroids)
            for v in (fake, cycled)
        )
        visual = torch.cat([x, fake])
        rebuilt = torch.cat([self._reconstruct(x), rebuilt_fake])
        dual = -self._DS(rebuilt, visual).mean() + p["sc_weight"] * semantic_distance(
            rebuilt, torch.cat([a, a])
        )
        return primal + dual
