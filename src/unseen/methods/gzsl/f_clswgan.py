"""f-CLSWGAN: a WGAN-GP feature generator with a classification loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.generative import (
    BatchSampler,
    ConditionalGenerator,
    Critic,
    SoftmaxClassifier,
    frozen,
    gaussian,
    init_weights,
    stream,
    train_softmax,
)
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS, GenerativeGZSL
from unseen.methods.gzsl.preprocessing import seen_local_labels
from unseen.methods.registry import GZSL


@GZSL.register("f-clswgan")
class FCLSWGAN(GenerativeGZSL):
    """f-CLSWGAN (Xian, Lorenz, Schiele, Akata, *Feature Generating Networks for Zero-Shot
    Learning*, CVPR 2018).

    A conditional WGAN-GP: generator ``G(z, a)`` (one hidden layer of ``hidden`` = 4096 units,
    LeakyReLU 0.2, ReLU output; noise dimension = attribute dimension) and critic ``D(x, a)``
    (same width). Per generator step the critic takes ``critic_iters`` = 5 steps on
    ``E[D(fake)] - E[D(real)] + gp_weight * GP`` (gradient penalty 10); the generator minimises
    ``-E[D(G(z, a))] + cls_weight * NLL(P(y | G(z, a)))`` with ``P`` a log-softmax classifier
    pretrained on the real seen features (``pretrain_epochs`` = 50, Adam lr 1e-3, beta1 0.5,
    batch 100, as in the official code) and frozen. Adam lr 1e-4, betas (0.5, 0.999), batch 64.
    One epoch is ``ceil(n / batch)`` generator steps. Then ``syn_per_class`` features per unseen
    class (CUB 300, SUN 400, FLO 1200, AWA 1800) and the real seen features train the final
    log-softmax classifier (Adam lr 1e-3, beta1 0.5, batch = ``syn_per_class``, as in the
    official code).

    Per-dataset defaults (``dataset_defaults``) are the official scripts'
    (``script/reproduce_gzsl_*.sh``) epoch budgets and settings (FLO: ``cls_weight`` 0.1; SUN:
    lr 2e-4; AWA: lr 1e-5). Other data (``builtin:mnist-zsl``, APY, synthetic data with other
    names) use the class defaults, which are CUB's.

    Selection: the official code reports the best epoch on the test set; here ``epochs`` (up to
    the budget) and ``cls_epochs`` are chosen on the ``gzsl-ps-v1`` validation task from
    checkpoints every ``checkpoint_every`` generator epochs, then the method is refitted on the
    whole training split for exactly those lengths (see :class:`GenerativeGZSL`).
    """

    paper = "Xian, Lorenz, Schiele, Akata. Feature Generating Networks for Zero-Shot Learning. CVPR 2018."
    hparams = (
        HParam("epochs", 56, help="generator epochs (budget; the best is selected on validation)"),
        HParam("hidden", 4096, help="hidden units of generator and critic"),
        HParam("lr", 1e-4, help="Adam learning rate of generator and critic (betas 0.5, 0.999)"),
        HParam("batch_size", 64, high=2**20, help="GAN minibatch size"),
        HParam("critic_iters", 5, help="critic steps per generator step"),
        HParam("gp_weight", 10.0, help="gradient-penalty weight (lambda)"),
        HParam("cls_weight", 0.01, help="weight of the classification loss (beta)"),
        HParam("pretrain_epochs", 50, help="epochs of the frozen seen-class classifier"),
        HParam("syn_per_class", 300, help="synthetic features per unseen class"),
        *COMMON_HPARAMS,
    )
    dataset_defaults = {
        "CUB": {"epochs": 56, "syn_per_class": 300, "cls_weight": 0.01},
        "SUN": {"epochs": 40, "syn_per_class": 400, "cls_weight": 0.01, "lr": 2e-4},
        "FLO": {"epochs": 80, "syn_per_class": 1200, "cls_weight": 0.1},
        "AWA1": {"epochs": 30, "syn_per_class": 1800, "cls_weight": 0.01, "lr": 1e-5},
        "AWA2": {"epochs": 30, "syn_per_class": 1800, "cls_weight": 0.01, "lr": 1e-5},
    }
    fast_hparams = {
        "epochs": 30,
        "hidden": 128,
        "batch_size": 32,
        "lr": 1e-3,
        "pretrain_epochs": 20,
        "syn_per_class": 50,
        "cls_epochs": 10,
        "cls_lr": 1e-2,
        "checkpoint_every": 10,
    }

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        p, dev = self.params, self._device
        feat_dim, att_dim, h = self._X.shape[1], self._S.shape[1], p["hidden"]
        self.noise_dim = att_dim
        self._G = init_weights(ConditionalGenerator(att_dim, att_dim, h, feat_dim, "relu"), generator).to(dev)
        self._D = init_weights(Critic(feat_dim, att_dim, self._critic_hidden()), generator).to(dev)
        self._opt_g, self._opt_d = self._adam(self._G, p["lr"]), self._adam(self._D, p["lr"])
        seen = train.classes.seen_ids
        self._y_local = torch.as_tensor(seen_local_labels(np.asarray(train.labels), seen), device=dev)
        self._pretrained = self._generator_classifier(len(seen))

    def _generator_classifier(self, n_seen: int) -> SoftmaxClassifier:
        """The classifier of the generator's classification loss: log-softmax over the ``n_seen``
        seen classes (local labels), pretrained on the real seen features and frozen."""
        return self._pretrain(self._y_local, n_seen).requires_grad_(False)

    def _pretrain(self, labels: torch.Tensor, n_classes: int) -> SoftmaxClassifier:
        """A log-softmax classifier of ``n_classes`` trained on the real seen features with
        ``labels``, as in the official code (``pretrain_epochs``, Adam lr 1e-3, beta1 0.5, batch 100)."""
        return train_softmax(
            self._X,
            labels,
            n_classes,
            self.params["pretrain_epochs"],
            stream(self.seed, "pretrain", self._device),
            lr=1e-3,
            beta1=0.5,
            batch_size=100,
        )

    def _critic_hidden(self) -> int:
        return self.params["hidden"]

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        p = self.params
        steps, k = -(-len(self._X) // sampler.batch), p["critic_iters"]
        for step in sampler.draw(steps * k).view(steps, k, -1):
            for idx in step:
                x, a = self._X[idx], self._S[self._y[idx]]
                with torch.no_grad():
                    fake = self._G(gaussian((len(idx), self.noise_dim), generator, self._device), a)
                self._opt_d.zero_grad(set_to_none=True)
                self._D.backward_wgan_gp(x, fake, a, generator, p["gp_weight"])
                self._opt_d.step()
            fake = self._G(gaussian((len(idx), self.noise_dim), generator, self._device), a)
            with frozen(self._D):
                loss_g = self._generator_loss(fake, a, self._y_local[idx], generator)
            self._opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self._opt_g.step()
            self._after_generator_step(idx, generator)

    def _generator_loss(
        self, fake: torch.Tensor, a: torch.Tensor, y_local: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The generator's loss on ``fake`` features of the seen classes ``y_local``: the WGAN
        term and the frozen classifier's NLL."""
        cls_loss = nn.functional.nll_loss(self._pretrained(fake), y_local)
        return -self._D(fake, a).mean() + self.params["cls_weight"] * cls_loss

    def _after_generator_step(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        """Called after each generator step with the step's real minibatch ``idx`` (rows of the
        training features); subclasses add further updates here (LsrGAN's unseen-class step)."""

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._G(z, a)
