"""f-VAEGAN-D2 (inductive) and TF-VAEGAN: one VAE-GAN feature generator, feedback switched on or off."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from unseen.data.model import TrainSet
from unseen.methods.gzsl.generative import (
    BatchSampler,
    ConditionalGenerator,
    Critic,
    Feedback,
    SemanticDecoder,
    VAEEncoder,
    gaussian,
    gradient_penalty,
    init_weights,
)
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS, GenerativeGZSL
from unseen.methods.registry import GZSL, HParam

VAEGAN_HPARAMS = (
    HParam("epochs", 300, (300,), "generator epochs (budget; the best is selected on validation)"),
    HParam("hidden", 4096, (4096,), "hidden units of encoder, generator, critic (and decoder, feedback)"),
    HParam("lr", 1e-4, (1e-4,), "Adam learning rate of encoder, generator and critic (betas 0.5, 0.999)"),
    HParam("batch_size", 64, (64,), "minibatch size"),
    HParam("critic_iters", 5, (5,), "critic steps per generator step"),
    HParam("gp_weight", 10.0, (10.0,), "gradient-penalty weight (lambda)"),
    HParam("critic_weight", 10.0, (10.0,), "weight of the critic's Wasserstein term (gammaD)"),
    HParam("gan_weight", 10.0, (10.0,), "weight of the generator's adversarial term (gammaG)"),
    HParam("syn_per_class", 300, (300,), "synthetic features per unseen class"),
    *COMMON_HPARAMS,
)
FEEDBACK_HPARAMS = (
    HParam("recons_weight", 0.1, (0.1,), "weight of the decoder's attribute (cycle) reconstruction loss"),
    HParam("dec_lr", 1e-4, (1e-4,), "Adam learning rate of the semantic decoder"),
    HParam("feedback_lr", 1e-5, (1e-5,), "Adam learning rate of the feedback module"),
    HParam("feedback_train", 1.0, (1.0,), "feedback weight while training (a1)"),
    HParam("feedback_eval", 1.0, (1.0,), "feedback weight while synthesising (a2)"),
)
FAST = {
    "epochs": 30,
    "hidden": 128,
    "batch_size": 32,
    "lr": 1e-3,
    "syn_per_class": 50,
    "cls_epochs": 10,
    "cls_lr": 1e-2,
    "checkpoint_every": 10,
}


@GZSL.register("f-vaegan")
class FVAEGAN(GenerativeGZSL):
    """f-VAEGAN-D2, inductive (Xian, Sharma, Schiele, Akata, *f-VAEGAN-D2: A Feature Generating
    Framework for Any-Shot Learning*, CVPR 2019), without the unlabelled-feature critic D2.

    A conditional VAE whose decoder is the generator of a WGAN-GP: encoder ``E(x, a)`` gives
    ``(mu, log sigma^2)`` of a latent of the attribute dimension; generator ``G(z, a)`` (sigmoid
    output, features min-max scaled to [0, 1]); critic ``D(x, a)``; one hidden layer of
    ``hidden`` = 4096 units and LeakyReLU 0.2 everywhere. Critic (``critic_iters`` = 5 steps):
    ``critic_weight * (E[D(G(z, a))] - E[D(x, a)]) + gp_weight * GP`` with ``z`` encoded from
    real features. Encoder and generator: ``BCE(G(z, a), x) + KL(q(z|x, a) || N(0, I))`` per
    sample plus ``-gan_weight * E[D(G(z, a))]``. Adam lr 1e-4, betas (0.5, 0.999), batch 64.
    Synthesis draws ``z ~ N(0, I)``. Final classifier as in f-CLSWGAN.

    This is :class:`TFVAEGAN` with feedback and semantic decoder switched off; the per-dataset
    defaults are TF-VAEGAN's official scripts' (CUB, SUN, FLO, AWA1/AWA2); other data use CUB's.

    Selection: ``epochs`` and ``cls_epochs`` are chosen on the ``gzsl-ps-v1`` validation task
    and the method is refitted on the whole training split (see :class:`GenerativeGZSL`); the
    official code reports the best epoch on the test set.
    """

    paper = (
        "Xian, Sharma, Schiele, Akata. f-VAEGAN-D2: A Feature Generating Framework for "
        "Any-Shot Learning. CVPR 2019."
    )
    hparams = VAEGAN_HPARAMS
    feedback: ClassVar[bool] = False
    dataset_defaults = {
        "CUB": {"epochs": 300, "lr": 1e-4, "cls_lr": 1e-3, "syn_per_class": 300},
        "SUN": {
            "epochs": 400,
            "lr": 1e-3,
            "cls_lr": 5e-4,
            "syn_per_class": 400,
            "critic_weight": 1.0,
            "gan_weight": 1.0,
        },
        "FLO": {"epochs": 500, "lr": 1e-4, "cls_lr": 1e-3, "syn_per_class": 1200},
        "AWA1": {"epochs": 120, "lr": 1e-5, "cls_lr": 1e-3, "syn_per_class": 1800},
        "AWA2": {"epochs": 120, "lr": 1e-5, "cls_lr": 1e-3, "syn_per_class": 1800},
    }
    fast_hparams = FAST

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        p, dev = self.params, self._device
        feat_dim, att_dim, h = self._X.shape[1], self._S.shape[1], p["hidden"]
        self.noise_dim = att_dim
        self._E = init_weights(VAEEncoder(feat_dim, att_dim, h, att_dim), generator).to(dev)
        self._G = init_weights(ConditionalGenerator(att_dim, att_dim, h, feat_dim, "sigmoid"), generator).to(
            dev
        )
        self._D = init_weights(Critic(feat_dim, att_dim, h), generator).to(dev)
        self._opt_eg = torch.optim.Adam(
            [*self._E.parameters(), *self._G.parameters()], lr=p["lr"], betas=(0.5, 0.999)
        )
        self._opt_d = self._adam(self._D, p["lr"])
        if self.feedback:
            self._dec = init_weights(SemanticDecoder(feat_dim, att_dim, h), generator).to(dev)
            self._fb = init_weights(Feedback(h), generator).to(dev)
            self._opt_dec = self._adam(self._dec, p["dec_lr"])
            self._opt_fb = self._adam(self._fb, p["feedback_lr"])

    def _decode_loss(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """L1 attribute reconstruction, summed over dimensions, averaged over samples."""
        return (self._dec(x)[0] - a).abs().sum(dim=1).mean()

    def _synth(self, z: torch.Tensor, a: torch.Tensor, weight: float) -> torch.Tensor:
        """``G(z, a)``, with TF-VAEGAN's feedback: decode once, feed the decoder's hidden layer back."""
        fake = self._G(z, a)
        if not self.feedback:
            return fake
        hidden = self._dec(fake)[1].detach()
        return self._G(z, a, weight * self._fb(hidden))

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        p, dev = self.params, self._device
        steps, k = -(-len(self._X) // sampler.batch), p["critic_iters"]
        a1 = p.get("feedback_train", 0.0)
        for step in sampler.draw(steps * k).view(steps, k, -1):
            for idx in step:
                x, a = self._X[idx], self._S[self._y[idx]]
                if self.feedback:
                    self._opt_dec.zero_grad(set_to_none=True)
                    (p["recons_weight"] * self._decode_loss(x, a)).backward()
                    self._opt_dec.step()
                with torch.no_grad():
                    mu, logvar = self._E(x, a)
                    z = mu + torch.exp(0.5 * logvar) * gaussian(mu.shape, generator, dev)
                    fake = self._synth(z, a, a1)
                gp = gradient_penalty(self._D, x, fake, a, generator)
                loss_d = p["critic_weight"] * (self._D(fake, a).mean() - self._D(x, a).mean())
                self._opt_d.zero_grad(set_to_none=True)
                (loss_d + p["gp_weight"] * gp).backward()
                self._opt_d.step()
            mu, logvar = self._E(x, a)
            z = mu + torch.exp(0.5 * logvar) * gaussian(mu.shape, generator, dev)
            recon = self._synth(z, a, a1)
            bce = nn.functional.binary_cross_entropy(recon, x, reduction="sum") / len(x)
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
            loss = bce + kl - p["gan_weight"] * self._D(recon, a).mean()
            if self.feedback:
                loss = loss + p["recons_weight"] * self._decode_loss(recon, a)
                self._opt_dec.zero_grad(set_to_none=True)
                self._opt_fb.zero_grad(set_to_none=True)
            self._opt_eg.zero_grad(set_to_none=True)
            loss.backward()
            self._opt_eg.step()
            if self.feedback:
                self._opt_fb.step()
                self._opt_dec.step()

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._synth(z, a, self.params.get("feedback_eval", 0.0))


@GZSL.register("tf-vaegan")
class TFVAEGAN(FVAEGAN):
    """TF-VAEGAN (Narayan, Gupta, Khan, Snoek, Shao, *Latent Embedding Feedback and
    Discriminative Features for Zero-Shot Classification*, ECCV 2020).

    f-VAEGAN-D2 (inductive, :class:`FVAEGAN`) plus a semantic embedding decoder ``Dec`` (feature
    -> L2-normalised attributes through a ``hidden``-unit layer) trained with an L1 cycle loss
    (``recons_weight``) on real features (in the critic loop) and on generated ones (with the
    generator), and a feedback module ``F`` (two ``hidden``-unit LeakyReLU layers) mapping
    ``Dec``'s hidden layer of a first generated feature back into the generator's hidden layer,
    weighted ``feedback_train`` (a1) while training and ``feedback_eval`` (a2) while
    synthesising. The final classifier sees ``[x, Dec(x), hidden(Dec, x)]`` (decoder-latent
    concatenation) for real, synthetic and test features. Learning rates: decoder ``dec_lr``,
    feedback ``feedback_lr``. Per-dataset defaults are the official scripts' (CUB, SUN, FLO,
    AWA1/AWA2); other data use CUB's.

    Selection as in :class:`FVAEGAN`: ``epochs`` and ``cls_epochs`` on validation, then refit.
    """

    paper = (
        "Narayan, Gupta, Khan, Snoek, Shao. Latent Embedding Feedback and Discriminative Features "
        "for Zero-Shot Classification. ECCV 2020."
    )
    hparams = (*VAEGAN_HPARAMS, *FEEDBACK_HPARAMS)
    feedback = True
    dataset_defaults = {
        "CUB": {
            **FVAEGAN.dataset_defaults["CUB"],
            "recons_weight": 0.1,
            "feedback_lr": 1e-5,
            "feedback_train": 1.0,
            "feedback_eval": 1.0,
        },
        "SUN": {
            **FVAEGAN.dataset_defaults["SUN"],
            "recons_weight": 0.01,
            "feedback_lr": 1e-4,
            "feedback_train": 0.1,
            "feedback_eval": 0.01,
        },
        "FLO": {
            **FVAEGAN.dataset_defaults["FLO"],
            "recons_weight": 0.01,
            "feedback_lr": 1e-5,
            "feedback_train": 0.5,
            "feedback_eval": 0.5,
        },
        "AWA1": {
            **FVAEGAN.dataset_defaults["AWA1"],
            "recons_weight": 0.1,
            "feedback_lr": 1e-4,
            "feedback_train": 0.01,
            "feedback_eval": 0.01,
        },
        "AWA2": {
            **FVAEGAN.dataset_defaults["AWA2"],
            "recons_weight": 0.1,
            "feedback_lr": 1e-4,
            "feedback_train": 0.01,
            "feedback_eval": 0.01,
        },
    }
    fast_hparams = {**FAST, "feedback_lr": 1e-3, "dec_lr": 1e-3}

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            att, hidden = self._dec(X)
        return torch.cat([X, att, hidden], dim=1)
