"""ICIS: predict unseen classifier weights from class semantics, learned from the seen classes' weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unseen.core.device import as_tensor, resolve_device, score_in_chunks, stream
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.generative import init_weights, train_softmax
from unseen.methods.gzsl.preprocessing import SEMANTIC_NORMS, normalize_semantics, seen_local_labels
from unseen.methods.registry import GZSL


class Autoencoder(nn.Module):
    """``decoder(encoder(x))`` with ``encoder = ReLU(Linear(dim, hidden))`` and ``decoder =
    Linear(hidden, dim)`` (the official code's two-layer autoencoder)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.decoder = nn.Linear(hidden, dim)


class JointAutoencoder(nn.Module):
    """Two autoencoders, for class semantics ``a`` and classifier weights ``w`` (``[W_c, b_c]``
    rows), whose latent codes decode into both spaces: :meth:`forward` returns the four
    reconstructions ``(a from a, a from w, w from w, w from a)``; :meth:`predict` maps
    semantics to weights (``w from a``)."""

    def __init__(self, semantic_dim: int, weight_dim: int, hidden: int):
        super().__init__()
        self.semantic = Autoencoder(semantic_dim, hidden)
        self.weight = Autoencoder(weight_dim, hidden)

    def forward(self, a: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
        za, zw = self.semantic.encoder(a), self.weight.encoder(w)
        dec_a, dec_w = self.semantic.decoder, self.weight.decoder
        return dec_a(za), dec_a(zw), dec_w(zw), dec_w(za)

    def predict(self, a: torch.Tensor) -> torch.Tensor:
        return self.weight.decoder(self.semantic.encoder(a))


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per row, ``1 - cos(pred, target)``."""
    return 1 - nn.functional.cosine_similarity(pred, target, dim=1, eps=1e-8)


def icis_loss(
    model: JointAutoencoder, a: torch.Tensor, w: torch.Tensor, has_weights: torch.Tensor
) -> torch.Tensor:
    """ICIS's objective on a minibatch of class semantics ``a`` and weight rows ``w``: the cosine
    losses of the four reconstructions. Rows without weights (``has_weights`` False: unseen
    classes, whose semantics only are known) enter the semantic reconstruction alone; the three
    terms that involve weights are averaged over the rows that have them."""
    a_a, a_w, w_w, w_a = model(a, w)
    mask = has_weights.to(a.dtype)
    n = mask.sum().clamp(min=1)
    masked = (cosine_loss(a_w, a) + cosine_loss(w_w, w) + cosine_loss(w_a, w)) * mask
    return cosine_loss(a_a, a).mean() + masked.sum() / n


def slope_stop(losses: list[float], after: int, window: int, threshold: float) -> bool:
    """The official early-stopping rule's test after an epoch: past epoch ``after`` (counting from
    1), the loss's mean decrease per epoch between the last two ``window``-epoch windows,
    ``(mean(previous) - mean(last)) / window``, is below ``threshold``."""
    if len(losses) <= after:
        return False
    last, previous = losses[-window:], losses[-2 * window : -window]
    return (np.mean(previous) - np.mean(last)) / window < threshold


@GZSL.register("icis")
class ICIS(GZSLMethod):
    """ICIS (Christensen, Mancini, Koepke, Winther, Akata, *Image-free Classifier Injection for
    Zero-Shot Classification*, ICCV 2023).

    1. A linear softmax classifier of the seen classes is trained on the features (cross-entropy,
       ``base_epochs`` = 100, Adam lr ``base_lr`` = 1e-4, beta1 0.9, batch ``batch_size``, weights
       ``N(0, 0.02)``); its rows ``[W_c, b_c]`` are the seen classes' weights.
    2. Without any image, a :class:`JointAutoencoder` (semantics and weights each encoded by one
       ReLU layer of ``hidden`` = 2048 units, decoded by one linear layer) learns from the seen
       classes' (semantics, weights) pairs with the cosine losses of :func:`icis_loss`: both
       reconstructions and both cross-reconstructions (semantics to weights, weights to
       semantics); with ``include_unseen`` the unseen classes' semantics join the batches for
       the semantic reconstruction. Adam lr ``lr`` = 1e-5, betas (0.9, 0.999), batch
       ``batch_size`` classes, at most ``epochs`` = 1000 epochs, stopped by the official
       slope rule (:func:`slope_stop`: past epoch 21, a decrease of the mean loss per epoch
       between the last two 10-epoch windows below ``stop_slope`` = 2e-3 for 5 epochs in a row).
    3. The unseen classes' weights are predicted from their semantics and injected beside the
       seen ones; an embedding's score for a class is its logit ``W_c x + b_c``. Calibration, if
       any, is the protocol's (``--calibrate``).

    Settings are the official scripts' (github.com/ExplainableML/ImageFreeZSL,
    ``scripts/table1_*.sh``: CUB and SUN batch 16, AWA2 batch 20), with features as given and
    L2-normalised semantics as its loader reads them. The official code keeps the base classifier
    of the epoch with the best accuracy on the seen test images; images of the test split are not
    used here, so the classifier after ``base_epochs`` is kept. Nothing is selected on validation:
    the stopping rule needs no image, as the method intends.
    """

    paper = (
        "Christensen, Mancini, Koepke, Winther, Akata. Image-free Classifier Injection for Zero-Shot "
        "Classification. ICCV 2023."
    )
    hparams = (
        HParam("base_epochs", 100, help="epochs of the seen-class classifier"),
        HParam("base_lr", 1e-4, help="Adam learning rate of the seen-class classifier (beta1 0.9)"),
        HParam(
            "batch_size", 16, high=2**20, help="minibatch of the classifier (samples) and regressor (classes)"
        ),
        HParam("hidden", 2048, help="latent units of both autoencoders (embed_dim)"),
        HParam("lr", 1e-5, help="Adam learning rate of the weight predictor (betas 0.9, 0.999)"),
        HParam("epochs", 1000, help="epoch budget of the weight predictor (the slope rule may stop sooner)"),
        HParam("stop_slope", 2e-3, help="early stop: loss decrease per epoch below which an epoch counts"),
        HParam("stop_patience", 5, help="early stop: consecutive such epochs that end training"),
        HParam(
            "include_unseen",
            True,
            help="unseen semantics join the semantic reconstruction",
            choices=(True, False),
        ),
        HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
    )
    dataset_defaults = {"CUB": {"batch_size": 16}, "SUN": {"batch_size": 16}, "AWA2": {"batch_size": 20}}
    fast_hparams = {"base_epochs": 30, "base_lr": 1e-3, "hidden": 128, "lr": 1e-3, "epochs": 200}

    STOP_AFTER, STOP_WINDOW = 21, 10  # the official rule: from the 22nd epoch, windows of 10 epochs

    def _fit(self, train: TrainSet) -> None:
        p = self.params
        self._device = dev = resolve_device(self.device)
        seen, unseen = train.classes.seen_ids, train.classes.unseen_ids
        S = as_tensor(normalize_semantics(train.classes.semantics, p["semantic_norm"]), dev)
        X = as_tensor(np.asarray(train.features, dtype=np.float32), dev)
        y = torch.as_tensor(seen_local_labels(np.asarray(train.labels), seen), device=dev)
        base = train_softmax(
            X, y, len(seen), p["base_epochs"], stream(self.seed, "base", dev),
            lr=p["base_lr"], beta1=0.9, batch_size=p["batch_size"],
        )  # fmt: skip
        seen_weights = torch.cat([base.fc.weight, base.fc.bias[:, None]], dim=1).detach()
        model = self._train_predictor(S, seen, unseen, seen_weights)
        with torch.no_grad():
            weights = torch.empty(train.n_classes, seen_weights.shape[1], device=dev)
            unseen_ids = torch.as_tensor(unseen, device=dev)
            weights[torch.as_tensor(seen, device=dev)] = seen_weights
            weights[unseen_ids] = model.predict(S[unseen_ids])
        self._W, self._b = weights[:, :-1].contiguous(), weights[:, -1].contiguous()

    def _train_predictor(
        self, S: torch.Tensor, seen: np.ndarray, unseen: np.ndarray, seen_weights: torch.Tensor
    ) -> JointAutoencoder:
        p, dev = self.params, self._device
        rows = np.concatenate([seen, unseen]) if p["include_unseen"] else np.asarray(seen)
        a = S[torch.as_tensor(rows, device=dev)]
        w = torch.cat([seen_weights, seen_weights.new_zeros(len(rows) - len(seen), seen_weights.shape[1])])
        has_weights = torch.arange(len(rows), device=dev) < len(seen)
        model = init_weights(
            JointAutoencoder(S.shape[1], seen_weights.shape[1], p["hidden"]), stream(self.seed, "init")
        ).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=p["lr"], betas=(0.9, 0.999))
        gen = stream(self.seed, "predictor", dev)
        losses: list[float] = []
        strikes = 0
        for _ in range(p["epochs"]):
            total = torch.zeros((), device=dev)
            batches = (
                torch.randperm(len(rows), generator=gen, device=gen.device).to(dev).split(p["batch_size"])
            )
            for idx in batches:
                loss = icis_loss(model, a[idx], w[idx], has_weights[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
            losses.append(total.item() / len(batches))
            slow = slope_stop(losses, self.STOP_AFTER, self.STOP_WINDOW, p["stop_slope"])
            strikes = strikes + 1 if slow else 0
            if strikes == p["stop_patience"]:
                break
        self.epochs_run_ = len(losses)
        return model.eval()

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(lambda x: x @ self._W.T + self._b, X, self._device)
