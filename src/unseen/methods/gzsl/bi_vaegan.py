"""Bi-VAEGAN: a transductive VAE-GAN aligned with the unlabelled test features in both directions."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from unseen.core.device import as_tensor, stream
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.f_vaegan import weighted_l1
from unseen.methods.gzsl.generative import (
    BatchSampler,
    ConditionalGenerator,
    Critic,
    SemanticDecoder,
    frozen,
    gaussian,
    init_weights,
    synthesize,
)
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS, GenerativeGZSL
from unseen.methods.gzsl.generative.modules import LEAK
from unseen.methods.gzsl.generative.training import AdaptivePenaltyWeight, MinMaxScaler
from unseen.methods.registry import GZSL

REGRESSOR_EVERY = 5
"""The regressor trains before every fifth generator step (official ``i % 5 == 0``) ..."""
REGRESSOR_STEPS, ATT_CRITIC_STEPS, ATT_CRITIC_HIDDEN = 5, 3, 100
"""... for 5 steps, after 3 steps of the attribute critic, which has 100 hidden units."""


def sphere(X: torch.Tensor, radius: float = 1.0) -> torch.Tensor:
    """Rows of ``X`` rescaled to L2 norm ``radius`` (a zero row stays zero)."""
    return radius * X / X.norm(dim=1, keepdim=True).clamp_min(1e-12)


def class_prior_by_clustering(
    U: torch.Tensor, centres: torch.Tensor, max_iters: int = 300
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bi-VAEGAN's cluster prior estimation (CPE): k-means (Lloyd, squared Euclidean) on the
    unlabelled rows ``U`` started from one centre per class; the class prior is the share of rows
    in each final cluster. Stops when no assignment changes or after ``max_iters`` updates; an
    empty cluster keeps its centre. Returns ``(prior, assignment)``."""
    centres = centres.clone()
    assign = torch.cdist(U, centres).argmin(dim=1)
    for _ in range(max_iters):
        counts = torch.bincount(assign, minlength=len(centres))
        sums = torch.zeros_like(centres).index_add_(0, assign, U)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None].to(U.dtype)
        new = torch.cdist(U, centres).argmin(dim=1)
        if torch.equal(new, assign):
            break
        assign = new
    counts = torch.bincount(assign, minlength=len(centres)).to(U.dtype)
    return counts / counts.sum(), assign


class BNEncoder(nn.Module):
    """Bi-VAEGAN's encoder ``E(x, a) -> (mu, log sigma^2)``: ``[x, a]`` -> ``hidden`` units with
    batch normalisation and LeakyReLU 0.2, then linear heads of the latent size."""

    def __init__(self, feat_dim: int, att_dim: int, hidden: int, latent: int):
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Linear(feat_dim + att_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(LEAK)
        )
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(torch.cat([x, a], dim=1))
        return self.mu(h), self.logvar(h)


class OnSphere:
    """A fitted feature scaling followed by projection onto the sphere of ``radius``."""

    def __init__(self, scaler: MinMaxScaler, radius: float):
        self.scaler, self.radius = scaler, radius

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = self.scaler(X)
        norms = np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return (self.radius * X / norms).astype(np.float32)


HPARAMS = (
    HParam("epochs", 300, help="generator epochs (budget; the best is selected on validation)"),
    HParam("hidden", 4096, help="hidden units of encoder, generator, both feature critics and the regressor"),
    HParam("lr", 2e-4, help="Adam learning rate of every network (betas 0.5, 0.999)"),
    HParam("batch_size", 64, high=2**20, help="minibatch size (seen and unlabelled batches alike)"),
    HParam("critic_iters", 5, help="steps of each feature critic per generator step"),
    HParam("gp_weight", 10.0, help="initial gradient-penalty weight of both feature critics (adapted)"),
    HParam("critic_weight", 10.0, help="weight of the conditional critic's loss, penalty included (gammaD)"),
    HParam("gan_weight", 10.0, help="weight of the generator's conditional adversarial term (gammaG)"),
    HParam("target_critic_weight", 1000.0, help="weight of the unconditional critic's loss (gammaD_un)"),
    HParam(
        "target_gan_weight", 10.0, help="weight of the generator's unconditional adversarial term (gammaG_un)"
    ),
    HParam("att_critic_weight", 10.0, help="weight of the attribute critic's loss (gammaD_att)"),
    HParam("att_gan_weight", 0.1, help="weight of the regressor's adversarial term (gammaG_att)"),
    HParam("att_gp_weight", 0.1, help="gradient-penalty weight of the attribute critic (fixed)"),
    HParam(
        "regressor_weight", 10.0, help="weight of the regression loss on generated target features (beta)"
    ),
    HParam("radius", 1.0, help="L2 norm of every feature, real and generated"),
    HParam(
        "encoded_noise",
        True,
        help="conditional critic and adversarial term use z encoded from the real batch (else N(0, I))",
        choices=(True, False),
    ),
    HParam("inductive_epochs", 3, help="epochs before the transductive terms start (ind_epoch)", low=0),
    HParam("prior_iters", 300, help="k-means iterations (at most) of the class-prior estimate"),
    HParam("syn_per_class", 400, help="synthetic features per unseen class"),
    *(
        HParam(
            "cls_epochs", 20, help="epochs of the final softmax classifier (maximum; selected on validation)"
        )
        if h.name == "cls_epochs"
        else HParam("feature_scaling", "none", help=h.help + ", before the L2 projection", choices=h.choices)
        if h.name == "feature_scaling"
        else h
        for h in COMMON_HPARAMS
    ),
)
FAST = {  # SUN's weights (on small data CUB's gan_weight 10 keeps the generator off the features for long)
    "epochs": 10,
    "hidden": 256,
    "batch_size": 64,
    "lr": 1e-3,
    "critic_iters": 2,
    "critic_weight": 100.0,
    "gan_weight": 1.0,
    "target_critic_weight": 100.0,
    "target_gan_weight": 1.0,
    "syn_per_class": 50,
    "cls_epochs": 10,
    "cls_lr": 1e-2,
    "checkpoint_every": 5,
    "inductive_epochs": 1,
}


@GZSL.register("bi-vaegan")
class BiVAEGAN(GenerativeGZSL):
    """Bi-VAEGAN (Wang, Hao, Mu, Li, Wang, He, *Bi-directional Distribution Alignment for
    Transductive Zero-Shot Learning*, CVPR 2023; official code github.com/Zhicai-Wang/Bi-VAEGAN),
    transductive: it trains on the unlabelled test
    features (protocol ``gzsl-transductive-v1``), never on their labels.

    Every feature, real or generated, is projected onto the sphere of ``radius`` (L2 feature
    normalisation; attributes are L2-normalised too). Networks (hidden widths ``hidden`` = 4096,
    LeakyReLU 0.2, weights ``N(0, 0.02)``): a VAE-GAN as f-VAEGAN-D2's, whose encoder has one
    batch-normalised hidden layer and whose generator ``G(z, a)`` ends in the sphere projection;
    a conditional critic ``D(x, a)`` on seen features; an unconditional critic ``D_u(x)`` on the
    unlabelled target features; a regressor ``R(x)`` (features -> L2-normalised attributes, its
    hidden layer kept); and an attribute critic ``D_a(a)`` with 100 hidden units.

    The bidirectional alignment, after ``inductive_epochs`` epochs without it:

    * visual side: ``D_u`` separates unlabelled target features from ``G(z, a_t)``, where the
      ``a_t`` are the semantics of classes drawn from the estimated class prior (weight
      ``target_critic_weight``, penalty ``lambda_2`` adapted as ``D``'s; generator term
      ``target_gan_weight``), and the generator also pays ``regressor_weight *``
      :func:`~unseen.methods.gzsl.f_vaegan.weighted_l1` ``(R(G(z, a_t)), a_t)``;
    * semantic side: ``D_a`` separates class semantics (of the seen batch and of the ``a_t``)
      from the regressed ``R(x)`` of seen and unlabelled features (weight ``att_critic_weight``,
      a fixed penalty ``att_gp_weight``), and ``R`` trains on ``weighted_l1(R(x), a)`` for seen
      features minus ``att_gan_weight`` times ``D_a`` of its regressions of seen and unlabelled
      features. Before every fifth generator step the attribute critic takes 3 steps and ``R``
      5 (``R`` keeps training on seen features alone before the transductive epochs).

    Conditional side as f-VAEGAN-D2: ``critic_iters`` = 5 critic steps (weight ``critic_weight``,
    adaptive ``lambda`` from ``gp_weight``), encoder and generator on ``MSE + KL - gan_weight *
    D(G(z, a), a)`` with encoded ``z`` (``encoded_noise``), the MSE being the official code's mean
    squared error divided again by the batch size. Gradient penalties are taken at
    interpolates projected back onto the sphere, as in the official code. All networks: Adam,
    lr ``lr``, betas (0.5, 0.999).

    Class prior: after each epoch from the last inductive one on, :func:`class_prior_by_clustering`
    runs k-means on the unlabelled features from one centre per class and the cluster shares
    become the prior that draws the ``a_t`` (uniform before). The official code starts its centres
    from a softmax classifier's predictions on the unlabelled set; here they start at the class
    means (real seen features, ``syn_per_class`` synthetic features of each unseen class), one
    classifier fit per epoch less. As the unlabelled set of ``gzsl-transductive-v1`` pools seen and
    unseen test features, the prior (and so the ``a_t``) covers all classes; the official GZSL code
    instead feeds the unseen test features alone and draws the ``a_t`` from their true labels.

    Final classifier as TF-VAEGAN's: log-softmax on ``[x, R(x), hidden(R, x)]`` of real seen and
    ``syn_per_class`` synthetic unseen features, ``cls_epochs`` = 20 epochs, lr 1e-3 (official
    GZSL classifier). Per-dataset defaults are the official scripts' (``scripts/{cub,sun,flo,awa,
    awa1}.sh``); the attribute perturbation (``--perb``) of the SUN, FLO and AWA scripts is not
    implemented. Selection: ``epochs`` and ``cls_epochs`` on the validation task (whose own held-out
    features are its unlabelled set), then refit; the official code reports the best epoch on test.
    """

    paper = (
        "Wang, Hao, Mu, Li, Wang, He. Bi-directional Distribution Alignment for Transductive "
        "Zero-Shot Learning. CVPR 2023."
    )
    hparams = HPARAMS
    transductive = True
    dataset_defaults: ClassVar = {
        "CUB": {"epochs": 300, "lr": 2e-4, "syn_per_class": 400},
        "SUN": {
            "epochs": 600,
            "lr": 2e-4,
            "syn_per_class": 400,
            "critic_weight": 100.0,
            "gan_weight": 1.0,
            "target_critic_weight": 100.0,
            "target_gan_weight": 1.0,
            "att_critic_weight": 1.0,
            "att_gan_weight": 0.01,
        },
        "FLO": {
            "epochs": 700,
            "lr": 1e-4,
            "syn_per_class": 1200,
            "critic_iters": 1,
            "critic_weight": 1000.0,
            "regressor_weight": 1.0,
        },
        "AWA1": {
            "epochs": 300,
            "lr": 1e-4,
            "syn_per_class": 3000,
            "critic_weight": 100.0,
            "target_critic_weight": 100.0,
            "att_gan_weight": 1.0,
            "regressor_weight": 1.0,
            "encoded_noise": False,
            "inductive_epochs": 1,
        },
        "AWA2": {
            "epochs": 300,
            "lr": 1e-4,
            "syn_per_class": 3000,
            "critic_weight": 1000.0,
            "att_gan_weight": 1.0,
            "regressor_weight": 1.0,
            "encoded_noise": False,
            "radius": 5.0,
        },
    }
    fast_hparams = FAST

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        p, dev = self.params, self._device
        self._scaler = OnSphere(self._scaler, p["radius"])
        self._X = as_tensor(self._scaler(train.features), dev)
        self._U = as_tensor(self._scaler(self._unlabelled), dev)
        feat_dim, att_dim, h = self._X.shape[1], self._S.shape[1], p["hidden"]
        self.noise_dim = att_dim
        self._E = init_weights(BNEncoder(feat_dim, att_dim, h, att_dim), generator).to(dev)
        self._G = init_weights(ConditionalGenerator(att_dim, att_dim, h, feat_dim, "linear"), generator).to(
            dev
        )
        self._D = init_weights(Critic(feat_dim, att_dim, h), generator).to(dev)
        self._D_u = init_weights(Critic(feat_dim, 0, h), generator).to(dev)
        self._R = init_weights(SemanticDecoder(feat_dim, att_dim, h), generator).to(dev)
        self._D_a = init_weights(Critic(att_dim, 0, ATT_CRITIC_HIDDEN), generator).to(dev)
        self._opt = {
            name: self._adam(getattr(self, name), p["lr"])
            for name in ("_E", "_G", "_D", "_D_u", "_R", "_D_a")
        }
        self._lambda = AdaptivePenaltyWeight(p["gp_weight"], True, dev)
        self._lambda_u = AdaptivePenaltyWeight(p["gp_weight"], True, dev)
        self._prior = torch.full((train.n_classes,), 1.0 / train.n_classes, device=dev)
        self._prior_stream = stream(self.seed, "prior", dev)
        self._target = None  # a sampler of unlabelled rows, made with the first epoch's stream
        self._epoch = 0

    def _gen(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return sphere(self._G(z, a), self.params["radius"])

    _generate = _gen

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            att, hidden = self._R(X)
        return torch.cat([X, att, hidden], dim=1)

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        p = self.params
        self._epoch += 1
        if self._target is None:
            self._target = BatchSampler(len(self._U), sampler.batch, generator, self._device)
        transductive = self._epoch > p["inductive_epochs"]
        steps, k = -(-len(self._X) // sampler.batch), p["critic_iters"]
        for i, step in enumerate(sampler.draw(steps * k).view(steps, k, -1)):
            if i % REGRESSOR_EVERY == 0:
                self._regressor_steps(sampler, generator, transductive)
            penalties, penalties_u = [], []
            a_t = None
            for idx in step:
                x, a = self._X[idx], self._S[self._y[idx]]
                penalties.append(self._critic_step(x, a, generator))
                if transductive:
                    u, a_t = self._target_batch(generator)
                    penalties_u.append(self._target_critic_step(u, a_t, generator))
            self._lambda.update(penalties)
            if transductive:
                self._lambda_u.update(penalties_u)
            self._generator_step(x, a, a_t, generator)
        if self._epoch >= p["inductive_epochs"]:
            self._estimate_prior()

    def _target_batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A minibatch of unlabelled features and, independently, semantics of classes drawn from
        the current prior."""
        u = self._U[self._target.draw(1)[0]]
        classes = torch.multinomial(self._prior, len(u), replacement=True, generator=generator)
        return u, self._S[classes.to(self._device)]

    def _critic_step(self, x: torch.Tensor, a: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        p = self.params
        with torch.no_grad():
            if p["encoded_noise"]:
                mu, logvar = self._E(x, a)
                z = mu + torch.exp(0.5 * logvar) * gaussian(mu.shape, generator, self._device)
            else:
                z = gaussian((len(x), self.noise_dim), generator, self._device)
            fake = self._gen(z, a)
        self._opt["_D"].zero_grad(set_to_none=True)
        _, gp = self._D.backward_wgan_gp(
            x, fake, a, generator, self._lambda.value, p["critic_weight"], radius=p["radius"]
        )
        self._opt["_D"].step()
        return gp

    def _target_critic_step(
        self, u: torch.Tensor, a_t: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        p = self.params
        with torch.no_grad():
            fake = self._gen(gaussian((len(u), self.noise_dim), generator, self._device), a_t)
        self._opt["_D_u"].zero_grad(set_to_none=True)
        _, gp = self._D_u.backward_wgan_gp(
            u, fake, u[:, :0], generator, self._lambda_u.value, p["target_critic_weight"], radius=p["radius"]
        )
        self._opt["_D_u"].step()
        return gp

    def _regressor_steps(self, sampler: BatchSampler, generator: torch.Generator, transductive: bool) -> None:
        """The attribute critic's steps (transductive epochs only), then the regressor's."""
        p = self.params
        for _ in range(ATT_CRITIC_STEPS if transductive else 0):
            x, a = self._seen_batch(sampler)
            u, a_t = self._target_batch(generator)
            with torch.no_grad():
                fake = torch.cat([self._R(x)[0], self._R(u)[0]])
            real = torch.cat([a, a_t])
            none = real.new_zeros((len(real), 0))
            self._opt["_D_a"].zero_grad(set_to_none=True)
            # one critic objective over both halves: the mean of the two halves' means, so the
            # scale doubles to give the official sum of the seen and the unseen terms
            self._D_a.backward_wgan_gp(
                real, fake, none, generator, p["att_gp_weight"] / 2, 2 * p["att_critic_weight"], radius=1.0
            )
            self._opt["_D_a"].step()
        for _ in range(REGRESSOR_STEPS):
            x, a = self._seen_batch(sampler)
            regressed = self._R(x)[0]
            loss = weighted_l1(regressed, a)
            if transductive:
                u, _ = self._target_batch(generator)
                with frozen(self._D_a):
                    realism = (
                        self._D_a(regressed, a[:, :0]).mean() + self._D_a(self._R(u)[0], u[:, :0]).mean()
                    )
                loss = loss - p["att_gan_weight"] * realism
            self._opt["_R"].zero_grad(set_to_none=True)
            loss.backward()
            self._opt["_R"].step()

    def _seen_batch(self, sampler: BatchSampler) -> tuple[torch.Tensor, torch.Tensor]:
        idx = sampler.draw(1)[0]
        return self._X[idx], self._S[self._y[idx]]

    def _generator_step(
        self, x: torch.Tensor, a: torch.Tensor, a_t: torch.Tensor | None, generator: torch.Generator
    ) -> None:
        """Encoder and generator on the last critic step's seen batch (and its target semantics)."""
        p = self.params
        mu, logvar = self._E(x, a)
        recon = self._gen(mu + torch.exp(0.5 * logvar) * gaussian(mu.shape, generator, self._device), a)
        vae = vae_loss(recon, x, mu, logvar)
        fake = recon if p["encoded_noise"] else self._gen(gaussian(mu.shape, generator, self._device), a)
        with frozen(self._D):
            loss = vae - p["gan_weight"] * self._D(fake, a).mean()
        if a_t is not None:
            fake_t = self._gen(gaussian((len(a_t), self.noise_dim), generator, self._device), a_t)
            with frozen(self._D_u), frozen(self._R):
                realism = self._D_u(fake_t, a_t[:, :0]).mean()
                regression = weighted_l1(self._R(fake_t)[0], a_t)
            loss = loss - p["target_gan_weight"] * realism + p["regressor_weight"] * regression
        self._opt["_E"].zero_grad(set_to_none=True)
        self._opt["_G"].zero_grad(set_to_none=True)
        loss.backward()
        self._opt["_G"].step()
        self._opt["_E"].step()

    @torch.no_grad()
    def _estimate_prior(self) -> None:
        """The class prior of the unlabelled features by :func:`class_prior_by_clustering`, from
        the class means: real for seen classes, synthetic for unseen ones."""
        n_classes, dim = self._S.shape[0], self._X.shape[1]
        X_syn, y_syn = synthesize(
            self._gen, self._S, self._unseen, self.params["syn_per_class"], self.noise_dim, self._prior_stream
        )
        sums = torch.zeros((n_classes, dim), device=self._device)
        sums.index_add_(0, self._y, self._X).index_add_(0, y_syn, X_syn)
        counts = torch.bincount(torch.cat([self._y, y_syn]), minlength=n_classes).clamp_min(1)
        self._prior = class_prior_by_clustering(self._U, sums / counts[:, None], self.params["prior_iters"])[
            0
        ]


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Bi-VAEGAN's VAE objective on the sphere: ``mean((recon - x)^2) / n + KL(q(z|x, a) || N(0, I)) / n``
    over a batch of ``n`` rows (the official code divides the elementwise mean by ``n`` once more)."""
    n = len(x)
    mse = nn.functional.mse_loss(recon, x) / n
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
    return mse + kl
