"""f-VAEGAN-D2 (inductive) and TF-VAEGAN: one VAE-GAN feature generator, feedback switched on or off."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.generative import (
    BatchSampler,
    ConditionalGenerator,
    Critic,
    Feedback,
    SemanticDecoder,
    VAEEncoder,
    frozen,
    gaussian,
    init_weights,
)
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS, GenerativeGZSL
from unseen.methods.gzsl.generative.training import AdaptivePenaltyWeight
from unseen.methods.registry import GZSL

VAEGAN_HPARAMS = (
    HParam("epochs", 300, help="generator epochs (budget; the best is selected on validation)"),
    HParam("hidden", 4096, help="hidden units of encoder, generator, critic (and decoder, feedback)"),
    HParam(
        "lr",
        1e-4,
        help="Adam learning rate of encoder (betas 0.9, 0.999), generator and critic (betas 0.5, 0.999)",
    ),
    HParam("batch_size", 64, high=2**20, help="minibatch size"),
    HParam("critic_iters", 5, help="critic steps per generator step"),
    HParam("gp_weight", 10.0, help="initial gradient-penalty weight (lambda; scaled by critic_weight)"),
    HParam(
        "adapt_gp",
        True,
        help="after each generator step, lambda x1.1 if the mean raw penalty of its critic steps > 1.05, "
        "/1.1 if < 1.001 (official code)",
        choices=(True, False),
    ),
    HParam("critic_weight", 10.0, help="weight of the critic's loss, penalty included (gammaD)"),
    HParam("gan_weight", 10.0, help="weight of the generator's adversarial term (gammaG)"),
    HParam(
        "encoded_noise",
        True,
        help="critic step and adversarial term use z encoded from the real batch (else z ~ N(0, I))",
        choices=(True, False),
    ),
    HParam("syn_per_class", 300, help="synthetic features per unseen class"),
    *COMMON_HPARAMS,
)
FEEDBACK_HPARAMS = (
    HParam("recons_weight", 0.01, help="weight of the decoder's weighted-L1 attribute (cycle) loss"),
    HParam("dec_lr", 1e-4, help="Adam learning rate of the semantic decoder"),
    HParam("feedback_lr", 1e-5, help="Adam learning rate of the feedback module"),
    HParam("feedback_train", 1.0, help="feedback weight while training (a1)"),
    HParam("feedback_eval", 1.0, help="feedback weight while synthesising (a2)"),
    HParam(
        "feedback_loops",
        2,
        help="passes over the training data per epoch; only the second uses (and trains) the feedback",
    ),
    HParam(
        "freeze_dec",
        False,
        help="no decoder update from the cycle loss on generated features (real ones still train it)",
        choices=(False, True),
    ),
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


def weighted_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """TF-VAEGAN's cycle loss: per sample ``sum_j w_j |d_j|`` with ``d = pred - target`` and
    ``w_j = d_j^2 / ||d||_2`` (gradients flow through the weights too), averaged over samples.

    It equals ``sum_j |d_j|^3 / ||d||_2``; a sample with ``d = 0`` contributes 0.
    """
    diff = pred - target
    weights = diff.pow(2) / diff.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (weights * diff.abs()).sum(dim=1).mean()


@GZSL.register("f-vaegan")
class FVAEGAN(GenerativeGZSL):
    """f-VAEGAN-D2, inductive (Xian, Sharma, Schiele, Akata, *f-VAEGAN-D2: A Feature Generating
    Framework for Any-Shot Learning*, CVPR 2019), without the unlabelled-feature critic D2.

    A conditional VAE whose decoder is the generator of a WGAN-GP: encoder ``E(x, a)`` gives
    ``(mu, log sigma^2)`` of a latent of the attribute dimension through ``hidden`` = 4096 and
    ``2 * latent`` units; generator ``G(z, a)`` (sigmoid output, features min-max scaled to
    [0, 1]) and critic ``D(x, a)`` with one hidden layer of ``hidden`` units; LeakyReLU 0.2
    everywhere. Critic (``critic_iters`` = 5 steps per generator step):
    ``critic_weight * (E[D(G(z, a))] - E[D(x, a)] + lambda * GP)`` (the penalty is scaled by
    ``critic_weight`` too, as in the official code: its effective weight is ``gammaD * lambda``,
    100 with the CUB, FLO and AWA scripts, 10 on SUN), with ``lambda``
    starting at ``gp_weight`` and, with ``adapt_gp``, adapted after every generator step
    (:class:`~unseen.methods.gzsl.generative.training.AdaptivePenaltyWeight`). ``z`` is encoded
    from the real batch with ``encoded_noise`` (off on FLO: ``z ~ N(0, I)``). Encoder and
    generator: ``BCE(G(z, a), x) + KL(q(z|x, a) || N(0, I))`` per sample with encoded ``z``,
    minus ``gan_weight * E[D(fake)]`` where ``fake`` is that reconstruction (``encoded_noise``)
    or ``G`` of fresh ``N(0, I)`` noise. Adam lr ``lr``, betas (0.5, 0.999) for generator and
    critic, the default (0.9, 0.999) for the encoder, batch 64. Synthesis draws ``z ~ N(0, I)``.
    Final classifier as in f-CLSWGAN.

    This is :class:`TFVAEGAN` with feedback and semantic decoder switched off (one pass over the
    data per epoch); the per-dataset defaults are TF-VAEGAN's official scripts' (CUB, SUN, FLO,
    AWA1/AWA2); other data use CUB's.

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
        "FLO": {"epochs": 500, "lr": 1e-4, "cls_lr": 1e-3, "syn_per_class": 1200, "encoded_noise": False},
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
        self._opt_e = torch.optim.Adam(self._E.parameters(), lr=p["lr"], fused=True)
        self._opt_g, self._opt_d = self._adam(self._G, p["lr"]), self._adam(self._D, p["lr"])
        self._gp_weight = AdaptivePenaltyWeight(p["gp_weight"], p["adapt_gp"], dev)
        if self.feedback:
            if p["feedback_loops"] < 1:
                raise HyperparameterError(
                    f"method '{self.name}': feedback_loops must be >= 1, got {p['feedback_loops']}."
                )
            self._dec = init_weights(SemanticDecoder(feat_dim, att_dim, h), generator).to(dev)
            self._fb = init_weights(Feedback(h), generator).to(dev)
            self._opt_dec = self._adam(self._dec, p["dec_lr"])
            self._opt_fb = self._adam(self._fb, p["feedback_lr"])

    def _passes(self) -> tuple[bool, ...]:
        """Whether each pass over the training data in an epoch runs with feedback: one pass
        without it, or TF-VAEGAN's ``feedback_loops`` with it in the second (official ``loop == 1``)."""
        if not self.feedback:
            return (False,)
        return tuple(loop == 1 for loop in range(self.params["feedback_loops"]))

    def _cycle_loss(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return weighted_l1(self._dec(x)[0], a)

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        """``len(self._passes())`` passes of ``ceil(n / batch)`` generator steps each."""
        for with_feedback in self._passes():
            self._train_pass(sampler, generator, with_feedback)

    def _train_pass(self, sampler: BatchSampler, generator: torch.Generator, with_feedback: bool) -> None:
        p = self.params
        a1 = p["feedback_train"] if with_feedback else None
        steps, k = -(-len(self._X) // sampler.batch), p["critic_iters"]
        for step in sampler.draw(steps * k).view(steps, k, -1):
            penalties = []
            for idx in step:
                x, a = self._X[idx], self._conditions(self._y[idx])
                if self.feedback:
                    self._opt_dec.zero_grad(set_to_none=True)
                    (p["recons_weight"] * self._cycle_loss(x, a)).backward()
                    self._opt_dec.step()
                with torch.no_grad():
                    fake = self._synth(self._critic_latent(x, a, generator), a, a1)
                self._opt_d.zero_grad(set_to_none=True)
                _, gp = self._D.backward_wgan_gp(
                    x, fake, a, generator, self._gp_weight.value, p["critic_weight"]
                )
                penalties.append(gp)
                self._opt_d.step()
            self._gp_weight.update(penalties)
            self._generator_step(x, a, a1, generator)
            self._after_generator_step(idx, generator)

    def _conditions(self, labels: torch.Tensor) -> torch.Tensor:
        """The generator's, encoder's and critic's condition for each label: its class semantics."""
        return self._S[labels]

    def _after_generator_step(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        """Runs after each generator step with its batch's sample indices (nothing here; plug-ins
        such as DSP train their own modules there)."""

    def _generator_step(
        self, x: torch.Tensor, a: torch.Tensor, a1: float | None, generator: torch.Generator
    ) -> None:
        """Encoder, generator (and decoder, feedback) on the last critic step's batch."""
        p = self.params
        mu, logvar = self._E(x, a)
        recon = self._synth(self._latent(mu, logvar, generator), a, a1)
        bce = nn.functional.binary_cross_entropy(recon, x, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
        if p["encoded_noise"]:
            fake = recon
        else:  # the official code feeds back the decoder's view of the reconstruction here
            fake = self._synth(self._noise(x, generator), a, a1, source=recon)
        with frozen(self._D):
            realism = self._D(fake, a).mean()
        loss = bce + kl - p["gan_weight"] * realism + self._generator_regularizer(x, fake)
        zeroed, stepped = [self._opt_e, self._opt_g], [self._opt_e, self._opt_g]
        if self.feedback:
            loss = loss + p["recons_weight"] * self._cycle_loss(fake, a)
            zeroed += [self._opt_dec, self._opt_fb]
            stepped += [self._opt_fb] if a1 is not None else []
            stepped += [] if p["freeze_dec"] else [self._opt_dec]
        for opt in zeroed:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in stepped:
            opt.step()

    def _generator_regularizer(self, x: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | float:
        """Extra terms of the generator's loss on the real batch ``x`` and its ``fake``: none here
        (0.0 leaves the loss and its gradients as they are); plug-ins such as DSP add theirs."""
        return 0.0

    def _latent(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``z = mu + sigma * eps``, ``eps ~ N(0, I)``."""
        return mu + torch.exp(0.5 * logvar) * gaussian(mu.shape, generator, self._device)

    def _critic_latent(self, x: torch.Tensor, a: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The critic step's ``z``: encoded from the real batch (``encoded_noise``) or ``N(0, I)``."""
        if self.params["encoded_noise"]:
            return self._latent(*self._E(x, a), generator)
        return self._noise(x, generator)

    def _noise(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``z ~ N(0, I)``, one row per row of ``x``."""
        return gaussian((len(x), self.noise_dim), generator, self._device)

    def _synth(
        self, z: torch.Tensor, a: torch.Tensor, weight: float | None, source: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``G(z, a)``; with a feedback ``weight``, TF-VAEGAN's second pass: the decoder's hidden
        layer of ``source`` (default: a first ``G(z, a)``) goes through the feedback module into
        the generator's hidden layer."""
        if weight is None:
            return self._G(z, a)
        first = self._G(z, a) if source is None else source
        return self._G(z, a, weight * self._fb(self._dec(first)[1].detach()))

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._G(z, a)


@GZSL.register("tf-vaegan")
class TFVAEGAN(FVAEGAN):
    """TF-VAEGAN (Narayan, Gupta, Khan, Snoek, Shao, *Latent Embedding Feedback and
    Discriminative Features for Zero-Shot Classification*, ECCV 2020).

    f-VAEGAN-D2 (inductive, :class:`FVAEGAN`) plus a semantic embedding decoder ``Dec`` (feature
    -> L2-normalised attributes through a ``hidden``-unit layer) trained with the weighted-L1
    cycle loss :func:`weighted_l1` (``recons_weight``) on real features (in the critic loop) and
    on generated ones (with the generator; skipped with ``freeze_dec``, the AWA setting), and a
    feedback module ``F`` (two ``hidden``-unit LeakyReLU layers) mapping ``Dec``'s hidden layer
    of a first generated feature back into the generator's hidden layer, weighted
    ``feedback_train`` (a1) while training and ``feedback_eval`` (a2) while synthesising.

    As in the official ``train_images.py``, an epoch is ``feedback_loops`` = 2 passes over the
    training data: only the second (index 1) runs critic and generator steps with feedback and
    updates ``F``; every other pass trains without feedback. The final classifier sees
    ``[x, Dec(x), hidden(Dec, x)]`` (decoder-latent concatenation) for real, synthetic and test
    features. Learning rates: decoder ``dec_lr``, feedback ``feedback_lr``. Per-dataset defaults
    are the official scripts' (``scripts/run_{cub,sun,flo,awa}_tfvaegan.py``); other data use
    CUB's.

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
            "recons_weight": 0.01,
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
            "freeze_dec": True,
        },
        "AWA2": {
            **FVAEGAN.dataset_defaults["AWA2"],
            "recons_weight": 0.1,
            "feedback_lr": 1e-4,
            "feedback_train": 0.01,
            "feedback_eval": 0.01,
            "freeze_dec": True,
        },
    }
    # half of f-VAEGAN's epochs: each runs two passes over the data
    fast_hparams = {**FAST, "epochs": 15, "checkpoint_every": 5, "feedback_lr": 1e-3, "dec_lr": 1e-3}

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._synth(z, a, self.params["feedback_eval"])

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            att, hidden = self._dec(X)
        return torch.cat([X, att, hidden], dim=1)
