"""The shared trainer of the bilinear compatibility methods (ALE, SJE, DeViSE, LATEM).

All four score a sample ``x`` against a class with semantics ``s_c`` by a bilinear form
``F(x, c) = x^T W s_c`` (LATEM: the maximum over ``K`` such maps) and differ only in the ranking
loss minimised over the seen training samples. :class:`BilinearCompatibility` owns everything
else, written once:

* preprocessing: ``feature_norm`` (default per-sample ``l2``, so one learning-rate grid fits
  every dataset) and ``semantic_norm`` (default per-class ``l2``, as in Xian et al., TPAMI 2018);
* initialisation: ``W`` drawn from N(0, 1e-3^2), seeded from ``self.seed``;
* optimisation: plain minibatch SGD (no momentum, no weight decay: regularisation is early
  stopping by the epoch count, as in Xian et al.'s re-evaluation), minibatches of
  ``batch_size`` samples in a seeded random order each epoch; the loss is the minibatch mean
  of the per-sample losses, computed against all seen classes at once; when there are fewer
  seen classes than semantic dimensions the same iterates are computed in the span of the seen
  classes' semantics, which is cheaper (:func:`train_bilinear`);
* scoring: ``F(x, c)`` for every class of the table (seen and unseen).

A subclass sets ``paper``, its ``hparams`` (built with :func:`sgd_hparams`) and implements
:meth:`BilinearCompatibility._loss`; LATEM also overrides :meth:`BilinearCompatibility._n_maps`.
"""

from __future__ import annotations

import numpy as np
import torch

from unseen.core.device import as_tensor, cpu_generator, resolve_device, score_in_chunks
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.preprocessing import (
    FEATURE_NORMS,
    SEMANTIC_NORMS,
    FeatureNorm,
    normalize_semantics,
    seen_local_labels,
)

INIT_STD = 1e-3
SCORE_CHUNK = 2048


def sgd_hparams(
    lr: float, lr_grid: tuple[float, ...], epochs: int, epochs_grid: tuple[int, ...]
) -> tuple[HParam, ...]:
    """The hyperparameters every bilinear method shares, with its own lr/epoch defaults."""
    return (
        HParam("lr", lr, grid=lr_grid, help="SGD learning rate (constant)"),
        HParam("epochs", epochs, grid=epochs_grid, help="passes over the training set (early stopping)"),
        HParam("batch_size", 128, high=2**20, help="minibatch size"),
        HParam("feature_norm", "l2", help="feature normalisation", choices=FEATURE_NORMS),
        HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
    )


def _max_over_maps(per_map: torch.Tensor) -> torch.Tensor:
    """``(b, K, z)`` -> ``(b, z)``: the max routes the gradient to the arg-max map only."""
    return per_map[:, 0] if per_map.shape[1] == 1 else per_map.max(dim=1).values


def bilinear_compatibility(X: torch.Tensor, W: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``F[i, c] = max_m x_i^T W_m s_c`` for ``W`` of shape ``(d, K * k)`` holding ``K`` maps.

    ``W[:, m*k:(m+1)*k]`` is map ``m``; with ``K = 1`` this is the plain bilinear form.
    """
    k = S.shape[1]
    return _max_over_maps((X @ W).view(len(X), W.shape[1] // k, k) @ S.T)


def _sgd_direct(X, y, S, W0, loss_fn, lr, epochs, batch_size, generator):
    """Plain SGD on ``W``: ``W <- W - lr * dL/dW``."""
    W = W0.clone().requires_grad_(True)
    for _ in range(epochs):
        for batch in torch.randperm(len(X), generator=generator).to(X.device).split(batch_size):
            loss = loss_fn(bilinear_compatibility(X[batch], W, S), y[batch]).mean()
            (grad,) = torch.autograd.grad(loss, W)
            with torch.no_grad():
                W -= lr * grad
    return W.detach()


def _sgd_in_class_span(X, y, S, W0, loss_fn, lr, epochs, batch_size, generator):
    """The same SGD iterates as :func:`_sgd_direct`, computed in the span of the seen classes.

    The gradient of ``F = X W_m S^T`` with respect to map ``W_m`` is ``X^T G_m S`` (``G_m`` the
    gradient with respect to that map's scores), so every iterate is ``W_m = W0_m + M_m S``
    with ``M_m`` of shape ``(d, z)`` updated by ``M_m <- M_m - lr X^T G_m``. When there are fewer
    seen classes ``z`` than semantic dimensions ``k`` (CUB, AWA, APY, FLO) each step then costs
    ``O(b d z)`` instead of ``O(b d k)``. The scores of ``W0`` are precomputed once.
    """
    d, k, z = X.shape[1], S.shape[1], S.shape[0]
    n_maps = W0.shape[1] // k
    gram = S @ S.T
    with torch.no_grad():
        base = torch.cat([(chunk @ W0).view(len(chunk), n_maps, k) @ S.T for chunk in X.split(SCORE_CHUNK)])
    M = torch.zeros(d, n_maps * z, dtype=X.dtype, device=X.device)
    for _ in range(epochs):
        for batch in torch.randperm(len(X), generator=generator).to(X.device).split(batch_size):
            xb = X[batch]
            with torch.no_grad():
                per_map = base[batch] + (xb @ M).view(len(batch), n_maps, z) @ gram
            per_map.requires_grad_(True)
            loss = loss_fn(_max_over_maps(per_map), y[batch]).mean()
            (grad,) = torch.autograd.grad(loss, per_map)
            with torch.no_grad():
                M -= lr * (xb.T @ grad.reshape(len(batch), n_maps * z))
    return W0 + (M.view(d, n_maps, z).transpose(0, 1) @ S).transpose(0, 1).reshape(d, n_maps * k)


def train_bilinear(
    X: torch.Tensor,
    y: torch.Tensor,
    S: torch.Tensor,
    loss_fn,
    *,
    n_maps: int,
    lr: float,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    class_span: bool | None = None,
) -> torch.Tensor:
    """SGD on ``mean_i loss_fn(F(x_i, .), y_i)`` over seen classes; returns ``W`` ``(d, K*k)``.

    ``X`` ``(n, d)``, ``y`` ``(n,)`` indices into the rows of ``S`` ``(z, k)``. All random draws
    (initial ``W``, minibatch order) come from ``generator`` (a CPU generator). ``class_span``
    picks the computation (same iterates up to rounding): ``None`` uses the seen-class span
    when ``z < k`` (see :func:`_sgd_in_class_span`).
    """
    d, k = X.shape[1], S.shape[1]
    W0 = (INIT_STD * torch.randn(d, n_maps * k, generator=generator, dtype=X.dtype)).to(X.device)
    if class_span is None:
        class_span = S.shape[0] < k
    run = _sgd_in_class_span if class_span else _sgd_direct
    return run(X, y, S, W0, loss_fn, lr, epochs, batch_size, generator)


class BilinearCompatibility(GZSLMethod):
    """Base class: ``F(x, c) = x^T W s_c`` learned by SGD on a subclass-defined ranking loss."""

    def _loss(self, F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample losses ``(b,)`` from compatibilities ``(b, n_seen)`` and seen indices."""
        raise NotImplementedError

    def _n_maps(self) -> int:
        return 1

    def _fit(self, train: TrainSet) -> None:
        p = self.params
        device = resolve_device(self.device)
        self._feature_norm = FeatureNorm.fit(p["feature_norm"], train.features)
        semantics = normalize_semantics(train.classes.semantics, p["semantic_norm"])
        seen_ids = train.classes.seen_ids
        X = as_tensor(self._feature_norm(train.features), device)
        y = as_tensor(seen_local_labels(train.labels, seen_ids), device, torch.long)
        self._W = train_bilinear(
            X,
            y,
            as_tensor(semantics[seen_ids], device),
            self._loss,
            n_maps=self._n_maps(),
            lr=p["lr"],
            epochs=p["epochs"],
            batch_size=p["batch_size"],
            generator=cpu_generator(self.seed),
        )
        self._semantics = as_tensor(semantics, device)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return score_in_chunks(
            lambda x: bilinear_compatibility(x, self._W, self._semantics),
            self._feature_norm(X),
            self._W.device,
            SCORE_CHUNK,
        )
