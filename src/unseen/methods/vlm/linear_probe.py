"""Linear probe on CLIP image features, initialised from the zero-shot head, and WiSE-FT's interpolation."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from unseen.core.arrays import unit_rows
from unseen.core.device import resolve_device
from unseen.core.registry import HParam
from unseen.methods.registry import VLM
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.methods.vlm.search import accuracy, coarse_then_bisect, first_best, validation_among
from unseen.methods.vlm.training import index_tensor, local_labels, supported_classes, tensor
from unseen.methods.vlm.zero_shot import LOGIT_SCALE

C_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)
"""CoOp's coarse search list for scikit-learn's ``C`` (``lpclip/linear_probe.py``), in its order."""

PENALTIES = ("to-init", "to-zero")
MIXING_GRID = tuple(round(0.1 * i, 1) for i in range(11))
GRADIENT_TOLERANCE = 1e-4
"""Stop when every gradient entry is this small: scikit-learn's default ``tol`` for L-BFGS."""


def fit_logistic(
    X: torch.Tensor,
    y: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    anchor: torch.Tensor,
    C: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS, started from ``(W, b)``.

    Minimises ``mean CE(X W^T + b, y) + ||W - anchor||^2 / (2 C n)``: scikit-learn's
    ``C sum CE + ||W||^2 / 2`` divided by ``C n``, with the penalty centred on ``anchor``
    instead of zero when asked (the bias is not penalised, as in scikit-learn).
    """
    W = W.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    strength = 1.0 / (2.0 * C * len(X))
    optimizer = torch.optim.LBFGS(
        [W, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=GRADIENT_TOLERANCE,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(X @ W.T + b, y) + strength * (W - anchor).pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    return W.detach(), b.detach()


@VLM.register("linear-probe")
class LinearProbe(VLMMethod):
    """Linear probe (logistic regression) on normalised image features, zero-shot initialised.

    A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
    ICML 2021 (the linear-probe evaluation); CoOp's few-shot version (K. Zhou et al., "Learning
    to Prompt for Vision-Language Models", IJCV 2022) searches the L2 strength on the few-shot
    validation set. The head ``x W^T + b`` starts from the zero-shot head (``W = 100 T``,
    ``b = 0``) when the data has class text, else from zeros, and minimises scikit-learn's
    multinomial objective ``C sum CE + ||W - W_0||^2 / 2`` by full-batch L-BFGS (at most
    ``max_iter`` iterations, scikit-learn's tolerance). With ``penalty = 'to-init'`` (default)
    the penalty is centred on the initial head, so the zero-shot initialisation matters: a
    small ``C`` keeps zero-shot CLIP, a large one frees the probe (a MAP estimate under a
    Gaussian prior at the zero-shot head); ``'to-zero'`` is CLIP's and CoOp's objective, which
    is strictly convex, so its solution does not depend on the initialisation. Without text
    both are the same. ``C`` is chosen on the few-shot validation set by CoOp's search (the
    coarse list ``10^6 .. 10^-6``, then ``bisection_steps`` log-scale bisections); without
    ``val`` it is 0.316, the value of CLIP's published linear-probe example. Classes without
    support samples keep their initial head (zero-shot scores, or 0 without text).
    """

    paper = (
        "Radford et al. Learning Transferable Visual Models From Natural Language Supervision. ICML "
        "2021 (linear probe); Zhou et al. Learning to Prompt for Vision-Language Models. IJCV 2022 "
        "(few-shot search of C)."
    )
    hparams = (
        HParam("C", 0.316, grid=C_GRID, help="inverse L2 strength (scikit-learn's C; CLIP's example value)"),
        HParam("tune_on_val", True, help="choose C on val by CoOp's coarse-then-bisection search"),
        HParam(
            "bisection_steps", 8, help="log-scale bisections after the coarse list (CoOp's num_step)", low=0
        ),
        HParam("penalty", "to-init", help="centre of the L2 penalty", choices=PENALTIES),
        HParam("max_iter", 1000, help="L-BFGS iterations per fit (scikit-learn's max_iter in CLIP, CoOp)"),
    )
    needs_text = False
    tuned_on_validation = ("C",)

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        p = self.params
        self._device = device = resolve_device(self.device)
        classes = supported_classes(support.labels)
        init = np.zeros((support.n_classes, support.dim), np.float32)
        if support.class_text is not None:
            init = LOGIT_SCALE * unit_rows(support.class_text)
        X = tensor(unit_rows(support.features), device)
        y = index_tensor(local_labels(support.labels, classes), device)
        start = tensor(init[classes], device)
        anchor = start if p["penalty"] == "to-init" else torch.zeros_like(start)
        fitted: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        last = (start, torch.zeros(len(classes), device=device))

        def fit(C: float) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal last
            if C not in fitted:  # each fit starts where the previous one ended
                fitted[C] = last = fit_logistic(X, y, *last, anchor, C, p["max_iter"])
            return fitted[C]

        C = p["C"]
        if val is not None and p["tune_on_val"]:
            X_val, y_val = validation_among(val, classes)
            X_val, y_val = tensor(X_val, device), index_tensor(y_val, device)

            def val_accuracy(C: float) -> float:
                W, b = fit(C)
                return accuracy(X_val @ W.T + b, y_val)

            C = coarse_then_bisect(val_accuracy, C_GRID, p["bisection_steps"])
        W, b = fit(C)
        self._W = init.copy()
        self._W[classes] = W.cpu().numpy()
        self._b = np.zeros(support.n_classes, np.float32)
        self._b[classes] = b.cpu().numpy()
        self.selected["C"] = C

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return unit_rows(X) @ self._W.T + self._b


@VLM.register("wise-ft")
class WiSEFT(LinearProbe):
    """WiSE-FT on the linear probe: the weights interpolated between zero-shot and fine-tuned heads.

    M. Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022 (the linear-classifier
    variant). With the zero-shot head ``(100 T, 0)`` and the :class:`LinearProbe` head
    ``(W, b)`` fitted from it, the scores are those of ``((1 - alpha) 100 T + alpha W,
    alpha b)``. ``alpha`` is chosen on the few-shot validation set from ``0, 0.1, ..., 1`` (first
    best) after the probe's ``C``; without ``val`` it is 0.5, the paper's default mixing
    weight. ``alpha = 0`` is zero-shot CLIP, ``alpha = 1`` the probe.
    """

    paper = "Wortsman et al. Robust fine-tuning of zero-shot models. CVPR 2022."
    hparams = LinearProbe.hparams + (
        HParam("alpha", 0.5, grid=MIXING_GRID, help="weight of the fine-tuned head in the interpolation"),
    )
    needs_text = True
    tuned_on_validation = ("C", "alpha")

    def _fit(self, support: FewShotSet, val: FewShotSet | None) -> None:
        super()._fit(support, val)
        zero_shot = LOGIT_SCALE * unit_rows(support.class_text)
        probe_W, probe_b = self._W, self._b

        def mix(alpha: float) -> tuple[np.ndarray, np.ndarray]:
            return (1.0 - alpha) * zero_shot + alpha * probe_W, alpha * probe_b

        alpha = self.params["alpha"]
        if val is not None and self.params["tune_on_val"]:
            classes = supported_classes(support.labels)
            X_val, y_val = validation_among(val, classes)

            def val_accuracy(alpha: float) -> float:
                W, b = mix(alpha)
                return accuracy(X_val @ W[classes].T + b[classes], y_val)

            alpha, _ = first_best(MIXING_GRID, val_accuracy)
        self._W, self._b = mix(alpha)
        self.selected["alpha"] = alpha
