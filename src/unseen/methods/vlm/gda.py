"""GDA: Gaussian discriminant analysis on CLIP image features, ensembled with zero-shot CLIP."""

from __future__ import annotations

import numpy as np

from unseen.core.registry import HParam
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.methods.vlm.search import accuracy, first_best, validation_among
from unseen.methods.vlm.training import supported_classes
from unseen.methods.vlm.zero_shot import unit_rows, zero_shot_logits

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
"""The official search grid of the ensemble weight."""


def ks_precision(deviations: np.ndarray) -> np.ndarray:
    """The official empirical-Bayes ridge precision ``d ((n - 1) S + tr(S) I)^+``.

    ``deviations`` ``(n, d)`` are samples minus their centres; ``S = D^T D / (n - 1)``. The
    pseudo-inverse is the official choice: with one sample per class the within-class scatter
    is zero and so is the precision (:func:`isotropic_precision` is GDA's fallback then).
    """
    n, d = deviations.shape
    scatter = deviations.T @ deviations
    ridge = np.trace(scatter) / max(n - 1, 1)
    return d * np.linalg.pinv(scatter + ridge * np.eye(d), hermitian=True)


def isotropic_precision(features: np.ndarray) -> np.ndarray:
    """``d / tr(S) I``, ``S`` the scatter of ``features`` about their mean over ``n - 1``: the
    precision of an isotropic Gaussian as wide as the support. GDA's estimate when no class has
    two samples (no within-class deviation exists); its head is then a nearest-class-mean
    classifier."""
    n, d = features.shape
    variance = np.sum((features - features.mean(axis=0)) ** 2) / max(n - 1, 1)
    return d / max(variance, np.finfo(float).tiny) * np.eye(d)


def mean_ks_precision(deviations: np.ndarray) -> np.ndarray:
    """The mean of :func:`ks_precision` over ``m`` sets of ``k`` deviations ``(m, k, d)``.

    Each ``d (D^T D + tau I)^-1`` (``tau = ||D||^2 / (k - 1) > 0``) is expanded by the Woodbury
    identity, ``(d / tau) (I - D^T (tau I_k + D D^T)^-1 D)``, so only ``k x k`` systems are solved.
    """
    m, k, d = deviations.shape
    tau = np.maximum(np.einsum("mkd,mkd->m", deviations, deviations) / max(k - 1, 1), np.finfo(float).tiny)
    gram = deviations @ deviations.transpose(0, 2, 1) + tau[:, None, None] * np.eye(k)
    solved = np.linalg.solve(gram, deviations)
    scaled = (deviations / tau[:, None, None]).reshape(m * k, d)
    correction = scaled.T @ solved.reshape(m * k, d) / m
    return d * (np.mean(1.0 / tau) * np.eye(d) - correction)


def linear_head(means: np.ndarray, precision: np.ndarray, log_prior: float) -> tuple[np.ndarray, np.ndarray]:
    """LDA's ``W = mu P`` and ``b = log pi - mu P mu^T / 2`` (per row of ``means``)."""
    W = means @ precision
    return W, log_prior - 0.5 * np.einsum("cd,cd->c", W, means)


@VLM.register("gda")
class GDA(VLMMethod):
    """Gaussian discriminant analysis ensembled with zero-shot CLIP.

    Z. Wang, J. Liang, L. Sheng, R. He, Z. Wang, T. Tan, "A Hard-to-Beat Baseline for
    Training-free CLIP-based Adaptation", ICLR 2024. The normalised support features of each
    class are Gaussian with the class mean ``mu_c`` and a shared covariance whose precision is
    the official empirical-Bayes ridge estimate ``P = d ((n - 1) S + tr(S) I)^+`` from the
    class-centred features (:func:`ks_precision`); with a uniform prior this gives the linear
    classifier ``W = mu P``, ``b = log(1 / C) - diag(mu P mu^T) / 2`` and the scores

        logits = 100 x T^T + alpha (x W^T + b).

    ``alpha`` is chosen from the official grid ``10^-4 .. 10^2`` (first best) on the few-shot
    validation set - the official code searches on its val split, on ImageNet on the test set -
    and is 0.1, the official code's starting value, when ``val`` is None. Without class text
    the scores are the GDA logits alone. Classes without support samples (base-to-new) follow
    the paper's extension in the official code: a class's mean averages its ``neighbours``
    support features nearest to its text embedding with ``text_copies`` copies of that
    embedding, and the precision averages per-class estimates from those neighbours' deviations
    from the text embedding; without text they score ``log(1 / C)``. The official code averages
    10 augmented views per image; cached embeddings have one, so with one shot per class there is
    no within-class deviation and the official estimate is zero (every class would score the
    same): the precision is then isotropic, as wide as the support (:func:`isotropic_precision`),
    and the GDA head is a nearest-class-mean classifier. Deterministic: the seed is unused.
    """

    paper = (
        "Wang, Liang, Sheng, He, Wang, Tan. A Hard-to-Beat Baseline for Training-free CLIP-based "
        "Adaptation. ICLR 2024."
    )
    hparams = (
        HParam("alpha", 0.1, grid=ALPHAS, help="weight of the GDA logits added to zero-shot CLIP's"),
        HParam("tune_on_val", True, help="choose alpha on val from the official grid"),
        HParam("neighbours", 64, help="support features averaged into a new class's mean (official k)"),
        HParam("text_copies", 16, help="copies of the text embedding in a new class's mean (official)"),
    )
    needs_text = False
    tuned_on_validation = ("alpha",)

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        X = unit_rows(support.features).astype(np.float64)
        n_classes = support.n_classes
        log_prior = float(np.log(1.0 / n_classes))
        seen = supported_classes(support.labels)
        counts = np.bincount(support.labels, minlength=n_classes)
        means = np.zeros((n_classes, support.dim))
        np.add.at(means, support.labels, X)
        means[seen] /= counts[seen, None]
        W = np.zeros_like(means)
        b = np.full(n_classes, log_prior)
        if counts.max() > 1:
            precision = ks_precision(X - means[support.labels])
        else:
            precision = isotropic_precision(X)
        W[seen], b[seen] = linear_head(means[seen], precision, log_prior)
        self._text = None if support.class_text is None else unit_rows(support.class_text)
        unseen = np.setdiff1d(np.arange(n_classes), seen)
        if self._text is not None and len(unseen):
            W[unseen], b[unseen] = self._new_class_head(X, self._text[unseen].astype(np.float64), log_prior)
        self._W, self._b = W.astype(np.float32), b.astype(np.float32)
        if self._text is None:
            return
        self._alpha = self.params["alpha"]
        if val is not None and self.params["tune_on_val"]:
            self._alpha = self._search(val, seen)
        self.selected["alpha"] = self._alpha

    def _new_class_head(
        self, X: np.ndarray, text: np.ndarray, log_prior: float
    ) -> tuple[np.ndarray, np.ndarray]:
        k, copies = min(self.params["neighbours"], len(X)), self.params["text_copies"]
        nearest = np.argsort(-(text @ X.T), axis=1, kind="stable")[:, :k]
        neighbours = X[nearest]  # (new classes, k, d)
        means = (neighbours.sum(axis=1) + copies * text) / (k + copies)
        return linear_head(means, mean_ks_precision(neighbours - text[:, None, :]), log_prior)

    def _search(self, val: FewShotSet, classes: np.ndarray) -> float:
        X, y = validation_among(val, classes)
        zero_shot = zero_shot_logits(X, self._text[classes])
        gda = X @ self._W[classes].T + self._b[classes]
        alpha, _ = first_best(ALPHAS, lambda a: accuracy(zero_shot + a * gda, y))
        return alpha

    def _scores(self, X: np.ndarray) -> np.ndarray:
        X = unit_rows(X)
        gda = X @ self._W.T + self._b
        if self._text is None:
            return gda
        return zero_shot_logits(X, self._text) + self._alpha * gda
