"""CADA-VAE: cross- and distribution-aligned VAEs for features and class attributes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from unseen.core.device import as_tensor, resolve_device, score_in_chunks, stream
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.generative.classifier import SoftmaxClassifier, train_softmax
from unseen.methods.gzsl.generative.training import (
    FEATURE_SCALINGS,
    BatchSampler,
    MinMaxScaler,
    gaussian,
)
from unseen.methods.gzsl.preprocessing import SEMANTIC_NORMS, normalize_semantics
from unseen.methods.registry import GZSL


def warmup(epoch: int, start: int, end: int, factor: float) -> float:
    """The official linear warm-up: ``factor * clip((epoch - start) / (end - start), 0, 1)``."""
    return factor * min(max((epoch - start) / (end - start), 0.0), 1.0)


def gaussian_w2(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor):
    """Per-row 2-Wasserstein distance between diagonal Gaussians, summed over the batch:
    ``sum_i sqrt(||mu1_i - mu2_i||^2 + ||sigma1_i - sigma2_i||^2)``."""
    sig1, sig2 = (0.5 * logvar1).exp(), (0.5 * logvar2).exp()
    return ((mu1 - mu2).pow(2).sum(1) + (sig1 - sig2).pow(2).sum(1)).sqrt().sum()


def kl_to_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag e^logvar) || N(0, I))`` summed over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum()


LATENT_NOISE = ("official", "standard")
"""How a latent sample is drawn from an encoder's ``(mu, logvar)``: ``standard`` is the usual
reparameterisation ``mu + eps * exp(logvar / 2)`` with ``eps ~ N(0, I)``; ``official`` is what
the authors' code does, ``mu + eps * exp(logvar)`` with one scalar ``eps ~ N(0, 1)`` per sample
shared by all latent dimensions (its KL and alignment terms still read ``exp(logvar)`` as the
variance)."""


def sample_latent(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, kind: str) -> torch.Tensor:
    """A latent sample from ``(mu, logvar)`` with standard-normal ``eps`` of ``mu``'s shape;
    ``kind`` is one of :data:`LATENT_NOISE` (``official`` reads only ``eps[:, :1]``)."""
    if kind == "official":
        return mu + eps[:, :1] * logvar.exp()
    return mu + eps * (0.5 * logvar).exp()


def xavier(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """The official initialisation: Xavier-uniform weights with gain 0.5 (drawn from
    ``generator``), zero biases; used for the VAEs and the final classifier."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight, gain=0.5, generator=generator)
                layer.bias.zero_()
    return module


class Encoder(nn.Module):
    def __init__(self, in_dim: int, hidden: int, latent: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


def decoder(latent: int, hidden: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


@GZSL.register("cada-vae")
class CADAVAE(GZSLMethod):
    """CADA-VAE.

    E. Schönfeld, S. Ebrahimi, S. Sinha, T. Darrell, Z. Akata, "Generalized Zero- and Few-Shot
    Learning via Aligned Variational Autoencoders", CVPR 2019.

    One VAE per modality (min-max scaled image features, L2-normalised class attributes) with a
    shared latent space of size ``latent``. Loss per minibatch: L1 reconstruction (summed) +
    ``beta`` * KL, plus cross-reconstruction (decode each modality from the other's latent
    sample) and the 2-Wasserstein distance between the two encoders' diagonal Gaussians. The
    three weights are warmed up linearly as in the official code (beta 0 -> 0.25 over epochs
    0..93, cross reconstruction 0 -> 2.37 over 21..75, alignment 0 -> 8.13 over 6..22). Adam
    (amsgrad) lr 1.5e-4, batch 50, 100 epochs; hidden widths 1560/1660 (features) and 1450/665
    (attributes); Xavier-uniform initialisation with gain 0.5; latent samples drawn as the
    official code draws them (``latent_noise``, see :data:`LATENT_NOISE`).

    A linear softmax classifier (Adam lr 1e-3, beta1 0.5, batch 32) is then trained on latent
    samples: for every seen class, the encodings of its first ``seen_per_class`` training
    features (cycled when the class has fewer), and ``unseen_per_class`` encodings of every
    unseen class's attributes; test features are embedded by the feature encoder's mean.
    ``cls_epochs`` is selected on validation via :meth:`checkpoint` (the official code trains
    its classifier for a per-dataset fixed number of epochs, 23 on CUB, and evaluates on the
    test set after every epoch, which we never do).
    """

    paper = (
        "Schönfeld, Ebrahimi, Sinha, Darrell, Akata. Generalized Zero- and Few-Shot Learning via "
        "Aligned Variational Autoencoders. CVPR 2019."
    )
    hparams = (
        HParam("latent", 64, help="latent size"),
        HParam("hidden_enc_x", 1560, help="feature-encoder hidden width"),
        HParam("hidden_dec_x", 1660, help="feature-decoder hidden width"),
        HParam("hidden_enc_a", 1450, help="attribute-encoder hidden width"),
        HParam("hidden_dec_a", 665, help="attribute-decoder hidden width"),
        HParam("lr", 1.5e-4, help="Adam (amsgrad) learning rate of the VAEs"),
        HParam("batch_size", 50, high=2**20, help="VAE minibatch size"),
        HParam("epochs", 100, help="VAE training epochs"),
        HParam("beta", 0.25, help="final KL weight (warm-up epochs 0..93)"),
        HParam("cross_weight", 2.37, help="final cross-reconstruction weight (warm-up 21..75)"),
        HParam("align_weight", 8.13, help="final distribution-alignment weight (warm-up 6..22)"),
        HParam("latent_noise", "official", help="latent sampling (see LATENT_NOISE)", choices=LATENT_NOISE),
        HParam("seen_per_class", 200, help="latent samples per seen class for the classifier"),
        HParam("unseen_per_class", 400, help="latent samples per unseen class for the classifier"),
        HParam("cls_epochs", 23, help="classifier epochs (maximum; selected on validation)"),
        HParam("cls_lr", 1e-3, help="Adam learning rate of the classifier (beta1 0.5)"),
        HParam("cls_batch_size", 32, high=2**20, help="classifier minibatch size"),
        HParam("feature_scaling", "minmax", help="feature scaling fitted on train", choices=FEATURE_SCALINGS),
        HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
    )
    selected_on_validation: ClassVar[tuple[str, ...]] = ("cls_epochs",)
    dataset_defaults: ClassVar[dict[str, dict]] = {
        "CUB": {"cls_epochs": 23},
        "SUN": {"cls_epochs": 21},
        "AWA1": {"cls_epochs": 33},
        "AWA2": {"cls_epochs": 29},
    }
    fast_hparams: ClassVar[dict] = {
        "hidden_enc_x": 128,
        "hidden_dec_x": 128,
        "hidden_enc_a": 128,
        "hidden_dec_a": 64,
        "latent": 16,
        "epochs": 60,
        "lr": 1e-3,
        "batch_size": 64,
        "seen_per_class": 50,
        "unseen_per_class": 100,
        "cls_epochs": 10,
    }
    WARMUPS = {"beta": (0, 93), "cross": (21, 75), "align": (6, 22)}

    def _fit(self, train: TrainSet) -> None:
        p = self.params
        dev = self._device = resolve_device(self.device)
        self._scaler = MinMaxScaler(train.features, p["feature_scaling"])
        S = as_tensor(normalize_semantics(train.classes.semantics, p["semantic_norm"]), dev)
        X = as_tensor(self._scaler(train.features), dev)
        y = torch.as_tensor(np.asarray(train.labels, dtype=np.int64), device=dev)
        init = stream(self.seed, "init")
        d, k, z = X.shape[1], S.shape[1], p["latent"]
        self._enc_x = xavier(Encoder(d, p["hidden_enc_x"], z), init).to(dev)
        self._enc_a = xavier(Encoder(k, p["hidden_enc_a"], z), init).to(dev)
        dec_x = xavier(decoder(z, p["hidden_dec_x"], d), init).to(dev)
        dec_a = xavier(decoder(z, p["hidden_dec_a"], k), init).to(dev)
        nets = nn.ModuleList([self._enc_x, self._enc_a, dec_x, dec_a])
        opt = torch.optim.Adam(nets.parameters(), lr=p["lr"], amsgrad=True, fused=True)
        gen = stream(self.seed, "vae", dev)
        sampler = BatchSampler(len(X), min(p["batch_size"], len(X)), gen, dev)
        noise = p["latent_noise"]
        l1 = nn.L1Loss(reduction="sum")
        stretch = p["epochs"] / 100  # the official schedule is for 100 epochs; shorter runs compress it
        ramps = {key: (start * stretch, end * stretch) for key, (start, end) in self.WARMUPS.items()}
        for epoch in range(p["epochs"]):
            beta = warmup(epoch, *ramps["beta"], p["beta"])
            cross = warmup(epoch, *ramps["cross"], p["cross_weight"])
            align = warmup(epoch, *ramps["align"], p["align_weight"])
            batches = sampler.epoch()
            eps = gaussian((2, *batches.shape, z), gen, dev)
            for b, idx in enumerate(batches):
                x, a = X[idx], S[y[idx]]
                mu_x, lv_x = self._enc_x(x)
                mu_a, lv_a = self._enc_a(a)
                z_x = sample_latent(mu_x, lv_x, eps[0, b], noise)
                z_a = sample_latent(mu_a, lv_a, eps[1, b], noise)
                loss = beta * (kl_to_standard(mu_x, lv_x) + kl_to_standard(mu_a, lv_a))
                if cross > 0:  # decode both latents in one pass per decoder
                    x_rec, x_cross = dec_x(torch.cat([z_x, z_a])).chunk(2)
                    a_rec, a_cross = dec_a(torch.cat([z_a, z_x])).chunk(2)
                    loss = loss + cross * (l1(x_cross, x) + l1(a_cross, a))
                else:
                    x_rec, a_rec = dec_x(z_x), dec_a(z_a)
                loss = loss + l1(x_rec, x) + l1(a_rec, a)
                if align > 0:
                    loss = loss + align * gaussian_w2(mu_x, lv_x, mu_a, lv_a)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self._fit_classifier(X, y, S, train)

    def _fit_classifier(self, X: torch.Tensor, y: torch.Tensor, S: torch.Tensor, train: TrainSet) -> None:
        p = self.params
        dev = self._device
        gen = stream(self.seed, "classifier", dev)
        y_np = np.asarray(train.labels)
        idx_s = np.concatenate(
            [np.resize(np.flatnonzero(y_np == c), p["seen_per_class"]) for c in np.unique(y_np)]
        )
        idx_s = torch.as_tensor(idx_s, device=dev)
        unseen = train.classes.unseen_ids
        y_u = torch.as_tensor(np.repeat(unseen, p["unseen_per_class"]), device=dev)
        with torch.no_grad():
            mu_s, lv_s = self._enc_x(X[idx_s])
            mu_u, lv_u = self._enc_a(S[y_u])
            mu, logvar = torch.cat([mu_s, mu_u]), torch.cat([lv_s, lv_u])
            Z = sample_latent(mu, logvar, gaussian(mu.shape, gen, dev), p["latent_noise"])
        labels = torch.cat([y[idx_s], y_u])

        def offer(c: int, clf: SoftmaxClassifier) -> None:
            self._clf = clf
            self.checkpoint(cls_epochs=c)

        self._clf = train_softmax(
            Z,
            labels,
            self._n_classes,
            p["cls_epochs"],
            gen,
            lr=p["cls_lr"],
            beta1=0.5,
            batch_size=p["cls_batch_size"],
            on_epoch=offer if self.monitored else None,
            init=xavier,
        )

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(lambda x: self._clf(self._enc_x(x)[0]), self._scaler(X), self._device)
