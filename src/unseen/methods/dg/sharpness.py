"""More sharpness-aware update rules beside SAM and FAD: GSAM and SAGM.

Each is an :class:`~unseen.methods.dg.optimizers.UpdateRule`: it wraps any single-objective
algorithm, evaluates the objective's gradient at perturbed weights with the same random draws,
and hands the combined gradient to the algorithm's own optimizer (Adam in DomainBed's setting).
Both rules use two gradient evaluations per update, as SAM does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from unseen.core.registry import HParam
from unseen.methods.dg.optimizers import RHO, UPDATE_RULES, Grads, UpdateRule, ascent_step, global_norm


def _dot(a: Grads, b: Grads) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


def orthogonal_part(g: Grads, direction: Grads, eps: float = 1e-12) -> Grads:
    """The component of ``g`` orthogonal to ``direction`` (all parameters as one vector):
    ``g - (g . d / |d|^2) d``."""
    scale = _dot(g, direction) / (global_norm(direction) ** 2 + eps)
    return [a - scale * d for a, d in zip(g, direction, strict=True)]


class GSAM(UpdateRule):
    """Surrogate Gap Guided Sharpness-Aware Minimization (Zhuang et al., ICLR 2022).

    GSAM minimizes the perturbed loss ``f_p(w) = f(w + rho g/|g|)`` (SAM's) and, without
    changing that descent, the surrogate gap ``h(w) = f_p(w) - f(w)``. With ``g = grad f(w)`` and
    ``g_p = grad f_p(w)`` (the gradient at the perturbed weights), ``g`` is split into its part
    parallel to ``g_p`` and its part ``g_orth`` orthogonal to it; the update direction is
    ``g_p - alpha g_orth`` (the paper's Algorithm 1): ascending ``f`` along ``g_orth``
    decreases the gap while leaving ``f_p``'s first-order change untouched. ``alpha = 0`` is SAM.

    Defaults: ``rho = 0.05`` (SAM's value in domain generalization) and ``alpha = 0.01`` (our
    reading of the paper's ResNet setting; its tables were not available to check here). The
    paper ties ``rho`` to the learning-rate schedule (``rho_t`` falls with ``lr_t``); DomainBed's
    learning rate is constant, so ``rho`` is too.
    """

    name = "gsam"
    paper = (
        "Zhuang et al., Surrogate Gap Guided Sharpness-Aware Minimization (ICLR 2022); "
        "Foret et al., Sharpness-Aware Minimization for Efficiently Improving Generalization (ICLR 2021)"
    )
    hparams = (
        RHO,
        HParam(
            "gsam_alpha",
            0.01,
            grid=(0.01, 0.1, 0.3),
            help="weight of the ascent along the gradient's part orthogonal to the perturbed gradient",
        ),
    )

    def direction(self, g0: Grads, gradient_at: Callable[[Grads], Grads]) -> Grads:
        perturbed = gradient_at(ascent_step(g0, self.params["rho"]))
        orth = orthogonal_part(g0, perturbed)
        alpha = self.params["gsam_alpha"]
        return [p - alpha * o for p, o in zip(perturbed, orth, strict=True)]


class SAGM(UpdateRule):
    """Sharpness-Aware Gradient Matching (Wang et al., CVPR 2023).

    SAGM minimizes the empirical loss, the perturbed loss and the gap between them together by
    descending ``L(w) + L_p(w - alpha grad L(w))``, where ``L_p(v) = L(v + rho g/|g|)``: the
    perturbed loss is taken one small gradient step (``alpha``) ahead, which makes the two
    gradients agree (the gradient matching of the title). With ``g = grad L(w)`` the perturbed
    point is ``w + (rho/|g| - alpha) g`` (the ascent direction of ``w`` is kept, as in the
    paper's first-order approximation) and the update direction the mean
    ``(g + grad L(w + (rho/|g| - alpha) g)) / 2`` (the authors' code halves the paper's sum,
    which only rescales the step; under Adam it changes nothing but epsilon's weight).
    ``alpha = 0`` is the mean of the plain and the SAM gradient.

    Defaults ``rho = 0.05`` and ``alpha = 0.001``: the values a DomainBed-based SAGM code base
    declares (the paper's own tables were not available to check here).
    """

    name = "sagm"
    paper = "Wang et al., Sharpness-Aware Gradient Matching for Domain Generalization (CVPR 2023)"
    hparams = (
        RHO,
        HParam(
            "sagm_alpha",
            0.001,
            grid=(0.0001, 0.001, 0.01),
            help="step back along the gradient before the perturbation",
        ),
    )

    def direction(self, g0: Grads, gradient_at: Callable[[Grads], Grads]) -> Grads:
        ascent = ascent_step(g0, self.params["rho"])
        alpha = self.params["sagm_alpha"]
        perturbed = gradient_at([e - alpha * g for e, g in zip(ascent, g0, strict=True)])
        return [(g + p) / 2 for g, p in zip(g0, perturbed, strict=True)]


UPDATE_RULES.register("gsam")(GSAM)
UPDATE_RULES.register("sagm")(SAGM)
