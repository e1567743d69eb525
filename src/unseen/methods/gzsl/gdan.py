"""GDAN: a CVAE feature generator, a regressor back to the semantics and a metric discriminator of
(feature, semantics) pairs, trained with cycle-consistency and dual adversarial (LSGAN) losses."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from unseen.core.device import score_in_chunks
from unseen.core.errors import DataError
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.generative import BatchSampler, frozen, gaussian, stream, synthesize
from unseen.methods.gzsl.generative.base import GenerativeGZSL
from unseen.methods.gzsl.generative.training import FEATURE_SCALINGS
from unseen.methods.gzsl.preprocessing import SEMANTIC_NORMS, seen_local_labels
from unseen.methods.registry import GZSL

LATENT_NOISE = ("official", "standard")
"""The CVAE's noise: ``official`` is the authors' code, uniform ``U(0, 1)`` draws both in the
reparameterisation ``z = mu + exp(logvar / 2) * eps`` and when sampling ``z`` for synthesis (its KL
term still compares with ``N(0, I)``); ``standard`` draws ``N(0, I)`` in both places."""


def latent_noise(eps: torch.Tensor, kind: str) -> torch.Tensor:
    """Standard-normal ``eps`` as the noise ``kind`` names (:data:`LATENT_NOISE`): itself, or for
    ``official`` its normal CDF ``Phi(eps)``, which is exactly ``U(0, 1)``-distributed."""
    return 0.5 * (1.0 + torch.erf(eps / math.sqrt(2.0))) if kind == "official" else eps


def torch_default_init(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch's own ``nn.Linear`` initialisation (the official code keeps it), drawn from
    ``generator``: weights Kaiming-uniform with ``a = sqrt(5)`` (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``),
    biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                for param in (layer.weight, layer.bias):
                    u = torch.rand(param.shape, generator=generator, device=generator.device)
                    param.copy_(((2 * u - 1) * bound).to(param.device))
    return module


class CVAE(nn.Module):
    """The generator: encoder ``x -> (mu, log sigma^2)`` through ``enc_hidden`` ReLU layers (dropout
    ``dropout`` before each one after the first), decoder ``[a, z] -> dec_hidden -> x`` (ReLU
    everywhere, output included). As in the official code the encoder reads the feature only."""

    def __init__(
        self, feat_dim: int, att_dim: int, enc_hidden: tuple[int, int], dec_hidden: int, latent: int
    ):
        super().__init__()
        h1, h2 = enc_hidden
        self.enc1 = nn.Sequential(nn.Linear(feat_dim, h1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Linear(h1, h2), nn.ReLU())
        self.mu, self.logvar = nn.Linear(h2, latent), nn.Linear(h2, latent)
        self.decoder = nn.Sequential(
            nn.Linear(att_dim + latent, dec_hidden), nn.ReLU(), nn.Linear(dec_hidden, feat_dim), nn.ReLU()
        )

    def encode(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``; ``keep`` is the dropout mask of the first hidden layer, already
        scaled by ``1 / (1 - p)`` (``None``: no dropout)."""
        h = self.enc1(x)
        h = self.enc2(h if keep is None else h * keep)
        return self.mu(h), self.logvar(h)

    def decode(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([a, z], dim=1))


def mlp(in_dim: int, hidden: int, out_dim: int, output: nn.Module | None = None) -> nn.Sequential:
    layers = [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)]
    return nn.Sequential(*layers, *([output] if output is not None else []))


class Discriminator(nn.Module):
    """The metric network ``D(x, a) = W2 relu(W1 [x, a])``: how well feature ``x`` matches ``a``."""

    def __init__(self, feat_dim: int, att_dim: int, hidden: int):
        super().__init__()
        self.net = mlp(feat_dim + att_dim, hidden, 1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, a], dim=1))


def vae_loss(x: torch.Tensor, x_rec: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The CVAE loss per sample, averaged: ``||x - x_rec||^2 / 2 + KL(N(mu, e^logvar) || N(0, I))``."""
    rec = 0.5 * (x - x_rec).pow(2).sum(1)
    kl = 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(1)
    return (rec + kl).mean()


def discriminator_loss(
    D: nn.Module,
    x: torch.Tensor,
    a: torch.Tensor,
    x_fake: torch.Tensor,
    a_regressed: torch.Tensor,
    a_negative: torch.Tensor,
    regressor_weight: float,
) -> torch.Tensor:
    """The discriminator's least-squares loss: real pairs ``(x, a)`` scored 1; generated features
    with their semantics ``(x_fake, a)``, regressed semantics ``(x, a_regressed)`` (weighted by
    ``regressor_weight``) and another class's semantics ``(x, a_negative)`` scored 0. Each term is
    the mean over the batch."""
    x4 = torch.cat([x, x_fake, x, x])
    real, fake, regressed, negative = D(x4, torch.cat([a, a, a_regressed, a_negative])).chunk(4)
    return (
        (real - 1).pow(2).mean()
        + fake.pow(2).mean()
        + regressor_weight * regressed.pow(2).mean()
        + negative.pow(2).mean()
    )


def generator_regressor_loss(
    D: nn.Module,
    x: torch.Tensor,
    a: torch.Tensor,
    x_rec: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    a_regressed: torch.Tensor,
    a_cycle: torch.Tensor,
    x_cycle: torch.Tensor,
    weights: tuple[float, float, float],
) -> torch.Tensor:
    """The joint loss of generator and regressor, with ``weights`` = (cycle, regression,
    regressor-adversarial) = (theta1, theta2, theta3):

    ``vae_loss(x, x_rec) + mean (D(x_rec, a) - 1)^2`` (the generator fools ``D``)
    ``+ theta1 * (mse(a_cycle, a) + mse(x_cycle, x))`` (cycle consistency: ``a_cycle = R(x_rec)``,
    ``x_cycle`` = the CVAE's reconstruction of ``x`` from the regressed semantics ``R(x)``)
    ``+ theta2 * mse(a_regressed, a) + theta3 * mean (D(x, a_regressed) - 1)^2`` (the regressor
    fits the semantics and fools ``D``); ``mse`` is the mean over all entries."""
    cycle_w, regression_w, adversarial_w = weights
    fake, regressed = D(torch.cat([x_rec, x]), torch.cat([a, a_regressed])).chunk(2)
    mse = nn.functional.mse_loss
    return (
        vae_loss(x, x_rec, mu, logvar)
        + (fake - 1).pow(2).mean()
        + cycle_w * (mse(a_cycle, a) + mse(x_cycle, x))
        + regression_w * mse(a_regressed, a)
        + adversarial_w * (regressed - 1).pow(2).mean()
    )


def negative_classes(local: torch.Tensor, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each local label, another of the ``n_classes`` classes drawn uniformly (``n_classes >= 2``)."""
    shift = torch.randint(1, n_classes, local.shape, generator=generator, device=generator.device)
    return (local + shift.to(local.device)) % n_classes


class NearestNeighbourScores:
    """The official final classifier, 1-nearest-neighbour (Euclidean) over a bank of labelled
    features, as class scores: ``score[i, c] = -min_{j: label j = c} ||x_i - b_j||``, whose argmax
    is the 1-NN prediction. A class without bank rows scores one below the row's lowest score."""

    def __init__(self, bank: torch.Tensor, labels: torch.Tensor, n_classes: int):
        self.bank, self.labels, self.n_classes = bank, labels, n_classes
        self.present = torch.bincount(labels, minlength=n_classes) > 0
        self.chunk = max(1, 2**25 // len(bank))  # query rows per distance block (128 MiB of float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x, self.bank)
        out = x.new_full((len(x), self.n_classes), -math.inf)
        out.scatter_reduce_(1, self.labels.expand(len(x), -1), -dist, "amax")
        if not self.present.all():
            out[:, ~self.present] = out[:, self.present].min(dim=1, keepdim=True).values - 1
        return out


@GZSL.register("gdan")
class GDAN(GenerativeGZSL):
    """GDAN (Huang, Wang, Yu, Wang, *Generative Dual Adversarial Network for Generalized Zero-shot
    Learning*, CVPR 2019).

    Three networks: the generator, a CVAE (:class:`CVAE`: encoder ``x -> z`` of ``latent`` = 100
    dimensions through 1200 and 600 ReLU units with dropout 0.3, decoder ``[a, z] -> 600 -> x``);
    the regressor ``R: x -> 512 -> a`` (ReLU, output included); the discriminator, a metric
    network ``D(x, a)`` (:class:`Discriminator`, 800 hidden units) scoring feature/semantics pairs.
    The CVAE is first pretrained alone on :func:`vae_loss` for ``pretrain_epochs``. Then every
    step (``ceil(n / batch)`` per epoch) takes one discriminator step on a minibatch
    (:func:`discriminator_loss`, least squares: real pairs 1; reconstructed features, regressed
    semantics (weight ``regressor_adv_weight``) and a random other seen class's semantics 0) and
    one joint generator+regressor step on another (:func:`generator_regressor_loss`: CVAE loss,
    both networks fooling ``D``, cycle consistency ``R(G(x, a)) ~ a`` and ``G(x, R(x)) ~ x``
    weighted ``cycle_weight``, regression ``R(x) ~ a`` weighted ``regression_weight``). Adam,
    lr 1e-5, betas (0.8, 0.999), weight decay 0.01 for all three (pretraining: betas (0.9,
    0.999)); batch 128; PyTorch's default initialisation. Then ``syn_per_class`` = 500 features
    are sampled per unseen class (``z`` drawn as :data:`LATENT_NOISE` says) and the official final
    classifier, 1-nearest-neighbour over real seen plus synthetic unseen features
    (:class:`NearestNeighbourScores`), scores the test features. Features are used unscaled and
    class semantics L2-normalised, as the official code reads them from the xlsa17 files.

    Settings are the official code's (github.com/stevehuanghe/GDAN, ``configs/*.yaml`` and
    ``utils/config_gdan.py``). Per dataset (``dataset_defaults``): the CVAE checkpoint each config
    starts from (CUB 670, SUN 320, AWA2 150, APY 590 pretraining epochs); on AWA2 batch 256 and
    encoder 1024-512, decoder 512. AWA1 and FLO have no published config; they, like other data,
    use the class defaults, which are CUB's. Differences from the official code: its pretraining
    loop never clears the gradients (each Adam step sees the sum of all gradients so far), here
    each step uses its own minibatch's gradient; its minibatches are independent random draws, here
    consecutive permutations; ``epochs`` (at most the 500 of the configs) is selected on the
    ``gzsl-ps-v1`` validation task from checkpoints every ``checkpoint_every`` = 10 epochs (the
    official saving interval), where the official ``valtest_gdan.py`` picks the saved checkpoint
    with the best accuracy on the validation classes and the method here is then refitted on the
    whole training split for the chosen length (see :class:`GenerativeGZSL`).
    """

    paper = (
        "Huang, Wang, Yu, Wang. Generative Dual Adversarial Network for Generalized Zero-shot "
        "Learning. CVPR 2019."
    )
    hparams = (
        HParam("epochs", 500, help="epochs after pretraining (budget; the best is selected on validation)"),
        HParam("pretrain_epochs", 670, low=0, help="epochs of pretraining the CVAE alone"),
        HParam("lr", 1e-5, help="Adam learning rate of all networks (pretraining included)"),
        HParam("weight_decay", 0.01, help="Adam weight decay of all networks"),
        HParam("batch_size", 128, high=2**20, help="minibatch size"),
        HParam("latent", 100, help="latent size of the CVAE"),
        HParam("enc_hidden1", 1200, help="encoder: first hidden layer"),
        HParam("enc_hidden2", 600, help="encoder: second hidden layer"),
        HParam("dec_hidden", 600, help="decoder hidden layer"),
        HParam("reg_hidden", 512, help="regressor hidden layer"),
        HParam("dis_hidden", 800, help="discriminator hidden layer"),
        HParam("dropout", 0.3, high=0.99, help="encoder dropout before its second layer"),
        HParam("cycle_weight", 0.1, help="theta1: weight of the cycle-consistency loss"),
        HParam("regression_weight", 0.1, help="theta2: weight of the regressor's supervised loss"),
        HParam("regressor_adv_weight", 0.1, help="theta3: weight of the regressor's adversarial terms"),
        HParam("latent_noise", "official", help="CVAE noise (see LATENT_NOISE)", choices=LATENT_NOISE),
        HParam("syn_per_class", 500, help="synthetic features per unseen class for the 1-NN classifier"),
        HParam("checkpoint_every", 10, help="epochs between validation checkpoints"),
        HParam("feature_scaling", "none", help="feature scaling fitted on train", choices=FEATURE_SCALINGS),
        HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
    )
    selected_on_validation: ClassVar[tuple[str, ...]] = ("epochs",)
    dataset_defaults: ClassVar[dict[str, dict]] = {
        "CUB": {"pretrain_epochs": 670},
        "SUN": {"pretrain_epochs": 320},
        "APY": {"pretrain_epochs": 590},
        "AWA2": {
            "pretrain_epochs": 150,
            "batch_size": 256,
            "enc_hidden1": 1024,
            "enc_hidden2": 512,
            "dec_hidden": 512,
        },
    }
    fast_hparams: ClassVar[dict] = {
        "epochs": 20,
        "pretrain_epochs": 20,
        "lr": 1e-3,
        "batch_size": 32,
        "latent": 16,
        "enc_hidden1": 64,
        "enc_hidden2": 32,
        "dec_hidden": 64,
        "reg_hidden": 64,
        "dis_hidden": 64,
        "syn_per_class": 50,
        "checkpoint_every": 10,
    }

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        p, dev = self.params, self._device
        seen = train.classes.seen_ids
        if len(seen) < 2:
            raise DataError(
                f"gdan needs at least 2 seen classes with training features (its discriminator scores "
                f"features against other classes' semantics); this training split has {len(seen)}."
            )
        feat_dim, att_dim = self._X.shape[1], self._S.shape[1]
        self.noise_dim = p["latent"]
        enc = (p["enc_hidden1"], p["enc_hidden2"])
        self._G = torch_default_init(CVAE(feat_dim, att_dim, enc, p["dec_hidden"], p["latent"]), generator)
        self._R = torch_default_init(mlp(feat_dim, p["reg_hidden"], att_dim, nn.ReLU()), generator)
        self._D = torch_default_init(Discriminator(feat_dim, att_dim, p["dis_hidden"]), generator)
        for net in (self._G, self._R, self._D):
            net.to(dev)
        self._seen_ids = torch.as_tensor(seen, device=dev)
        self._y_local = torch.as_tensor(seen_local_labels(np.asarray(train.labels), seen), device=dev)
        self._pretrain()
        betas, wd = (0.8, 0.999), p["weight_decay"]
        self._opt_gr = torch.optim.Adam(
            [*self._G.parameters(), *self._R.parameters()], lr=p["lr"], betas=betas, weight_decay=wd
        )
        self._opt_d = torch.optim.Adam(self._D.parameters(), lr=p["lr"], betas=betas, weight_decay=wd)

    def _reconstruct(
        self, x: torch.Tensor, a: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The CVAE's training pass: encode ``x`` (with a dropout mask), sample ``z``, decode with
        ``a``; returns the reconstruction, ``mu`` and ``logvar``."""
        p = self.params
        keep_p = 1.0 - p["dropout"]
        u = torch.rand((len(x), p["enc_hidden1"]), generator=generator, device=generator.device)
        keep = (u < keep_p).to(x.device, x.dtype) / keep_p
        mu, logvar = self._G.encode(x, keep)
        eps = latent_noise(gaussian(tuple(mu.shape), generator, x.device), p["latent_noise"])
        return self._G.decode(a, mu + (0.5 * logvar).exp() * eps), mu, logvar

    def _pretrain(self) -> None:
        p, dev = self.params, self._device
        gen = stream(self.seed, "pretrain", dev)
        opt = torch.optim.Adam(self._G.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        sampler = BatchSampler(len(self._X), min(p["batch_size"], len(self._X)), gen, dev)
        for _ in range(p["pretrain_epochs"]):
            for idx in sampler.epoch():
                x = self._X[idx]
                x_rec, mu, logvar = self._reconstruct(x, self._S[self._y[idx]], gen)
                opt.zero_grad(set_to_none=True)
                vae_loss(x, x_rec, mu, logvar).backward()
                opt.step()

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        steps = -(-sampler.n // sampler.batch)
        for d_idx, g_idx in sampler.draw(2 * steps).view(steps, 2, -1):
            self._discriminator_step(d_idx, generator)
            self._generator_step(g_idx, generator)

    def _discriminator_step(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        x, a, local = self._X[idx], self._S[self._y[idx]], self._y_local[idx]
        negative = self._S[self._seen_ids[negative_classes(local, len(self._seen_ids), generator)]]
        with torch.no_grad():
            x_fake = self._reconstruct(x, a, generator)[0]
            a_regressed = self._R(x)
        loss = discriminator_loss(
            self._D, x, a, x_fake, a_regressed, negative, self.params["regressor_adv_weight"]
        )
        self._opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_d.step()

    def _generator_step(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        p = self.params
        x = self._X[idx]
        a = self._S[self._y[idx]]
        x_rec, mu, logvar = self._reconstruct(x, a, generator)
        a_regressed = self._R(x)
        a_cycle = self._R(x_rec)
        x_cycle = self._reconstruct(x, a_regressed, generator)[0]
        weights = (p["cycle_weight"], p["regression_weight"], p["regressor_adv_weight"])
        with frozen(self._D):
            loss = generator_regressor_loss(
                self._D, x, a, x_rec, mu, logvar, a_regressed, a_cycle, x_cycle, weights
            )
        self._opt_gr.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_gr.step()

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._G.decode(a, latent_noise(z, self.params["latent_noise"]))

    def _fit_classifier(self, epoch: int) -> None:
        gen = stream(self.seed, "classifier", self._device)
        with torch.no_grad():
            X_syn, y_syn = synthesize(
                self._generate, self._S, self._unseen, self.params["syn_per_class"], self.noise_dim, gen
            )
        bank = torch.cat([self._X, X_syn])
        self._clf = NearestNeighbourScores(bank, torch.cat([self._y, y_syn]), self._n_classes)
        self.checkpoint(epochs=epoch)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(self._clf, self._scaler(X), self._device, chunk=self._clf.chunk)
