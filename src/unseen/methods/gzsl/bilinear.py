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
  of the per-sample losses, computed against all seen classes at once;
* scoring: ``F(x, c)`` for every class of the table (seen and unseen).

A subclass sets ``paper``, its ``hparams`` (built with :func:`sgd_hparams`) and implements
:meth:`BilinearCompatibility._loss`; LATEM also overrides :meth:`BilinearCompatibility._n_maps`.
"""

from __future__ import annotations

import numpy as np
import torch

from unseen.data.model import TrainSet
from unseen.methods.gzsl.preprocessing import (
    FEATURE_NORMS,
    SEMANTIC_NORMS,
    FeatureNorm,
    normalize_semantics,
    seen_local_labels,
)
from unseen.methods.gzsl.torch_setup import as_tensor, cpu_generator, resolve_device
from unseen.methods.gzsl.validated import ValidatedMethod
from unseen.methods.registry import HParam

INIT_STD = 1e-3
SCORE_CHUNK = 2048


def sgd_hparams(
    lr: float, lr_grid: tuple[float, ...], epochs: int, epochs_grid: tuple[int, ...]
) -> tuple[HParam, ...]:
    """The hyperparameters every bilinear method shares, with its own lr/epoch defaults."""
    return (
        HParam("lr", lr, lr_grid, "SGD learning rate (constant)"),
        HParam("epochs", epochs, epochs_grid, "passes over the training set (early stopping)"),
        HParam("batch_size", 128, (128,), "minibatch size"),
        HParam("feature_norm", "l2", ("l2",), f"feature normalisation, one of {FEATURE_NORMS}"),
        HParam("semantic_norm", "l2", ("l2",), f"class-semantics normalisation, {SEMANTIC_NORMS}"),
    )


def bilinear_compatibility(X: torch.Tensor, W: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``F[i, c] = max_m x_i^T W_m s_c`` for ``W`` of shape ``(d, K * k)`` holding ``K`` maps.

    ``W[:, m*k:(m+1)*k]`` is map ``m``; with ``K = 1`` this is the plain bilinear form. The max
    routes the gradient to the arg-max map only (LATEM's update rule).
    """
    k = S.shape[1]
    n_maps = W.shape[1] // k
    projected = X @ W  # (b, K*k)
    if n_maps == 1:
        return projected @ S.T
    per_map = projected.view(len(X), n_maps, k) @ S.T  # (b, K, z)
    return per_map.max(dim=1).values


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
) -> torch.Tensor:
    """SGD on ``mean_i loss_fn(F(x_i, .), y_i)`` over seen classes; returns ``W`` ``(d, K*k)``.

    ``X`` ``(n, d)``, ``y`` ``(n,)`` indices into the rows of ``S`` ``(z, k)``. All random draws
    (initial ``W``, minibatch order) come from ``generator`` (a CPU generator).
    """
    d, k = X.shape[1], S.shape[1]
    init = INIT_STD * torch.randn(d, n_maps * k, generator=generator, dtype=X.dtype)
    W = init.to(X.device).requires_grad_(True)
    optimizer = torch.optim.SGD([W], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator).to(X.device)
        for batch in order.split(batch_size):
            loss = loss_fn(bilinear_compatibility(X[batch], W, S), y[batch]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return W.detach()


class BilinearCompatibility(ValidatedMethod):
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
        Xn = self._feature_norm(X)
        out = []
        with torch.no_grad():
            for start in range(0, len(Xn), SCORE_CHUNK):
                chunk = as_tensor(Xn[start : start + SCORE_CHUNK], self._W.device)
                out.append(bilinear_compatibility(chunk, self._W, self._semantics).cpu().numpy())
        if not out:
            return np.zeros((0, len(self._semantics)))
        return np.concatenate(out)
