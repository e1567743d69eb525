"""Flatness-seeking update rules composable with any single-objective DG algorithm: SAM and FAD.

Design. SAM and FAD need the gradient of one objective at several weights within one update.
They cannot hide behind an algorithm's ``update`` (it computes its loss and steps once), and an
optimizer wrapper with ``step(closure)`` would make every algorithm build a closure around its
own state. Instead an algorithm whose update is one step on one scalar objective exposes it
(:class:`~unseen.methods.dg.objective.SingleObjective`: RSC, Fishr, SelfReg, XDED, RIDG, and
any penalty algorithm that defines ``objective``) and a rule wraps the algorithm and replaces
that step:

1. evaluate ``objective(minibatches, commit=True)`` at the current weights: the algorithm's
   counters and moving averages advance exactly once per update, and its logs are returned;
2. evaluate ``objective(minibatches, commit=False)`` at perturbed weights, each time with the
   algorithm's generator and the global torch generator rewound, so every evaluation sees the
   same random draws (mixing weights, pairings, dropout) -- the same objective at nearby weights;
3. restore the weights, install the combined gradient and call the algorithm's own optimizer,
   so Adam, weight decay and optimizer resets stay the algorithm's.

The perturbed weights are the parameters of the algorithm's optimizer. BatchNorm running
statistics are not frozen during the perturbed evaluations (the MLP and small-CNN featurizers
have none). Algorithms that alternate
players or optimizers (DANN, SagNet, Fish, MLDG, ...) have no single objective and are refused
with an error naming the ones that have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam, Registry, resolve_hparams
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs
from unseen.methods.dg.objective import SingleObjective
from unseen.methods.registry import DG

Grads = list[torch.Tensor]


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum(t.pow(2).sum() for t in tensors))


def ascent_step(grads: Sequence[torch.Tensor], rho: float, eps: float = 1e-12) -> Grads:
    """SAM's perturbation ``rho * g / ||g||`` (one global L2 norm over all parameters)."""
    scale = rho / (global_norm(grads) + eps)
    return [g * scale for g in grads]


def _gradients(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> Grads:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


@contextmanager
def _shifted(params: Sequence[torch.Tensor], offsets: Sequence[torch.Tensor]):
    with torch.no_grad():
        for p, e in zip(params, offsets, strict=True):
            p.add_(e)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, e in zip(params, offsets, strict=True):
                p.sub_(e)


def _random_state(algorithm: Algorithm) -> tuple:
    cuda = torch.cuda.get_rng_state(algorithm.device) if algorithm.device.type == "cuda" else None
    return algorithm.generator.get_state(), torch.get_rng_state(), cuda


def _set_random_state(algorithm: Algorithm, state: tuple) -> None:
    generator, cpu, cuda = state
    algorithm.generator.set_state(generator)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, algorithm.device)


class UpdateRule:
    """Wraps a single-objective algorithm; :meth:`update` replaces the algorithm's update.

    Subclasses define :meth:`direction`: the gradient handed to the algorithm's optimizer, from
    the gradient ``g0`` at the current weights and ``gradient_at(offsets)``, the objective's
    gradient at the weights shifted by ``offsets``.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: ClassVar[tuple[HParam, ...]] = ()

    def __init__(self, algorithm: Algorithm, hparams: Mapping[str, Any] | None = None) -> None:
        if not isinstance(algorithm, SingleObjective):
            usable = sorted(name for name, cls in DG.items() if issubclass(cls, SingleObjective))
            raise HyperparameterError(
                f"update rule '{self.name}' needs an algorithm that exposes its single objective "
                f"(SingleObjective); '{algorithm.name}' does not. Use it with one of: {', '.join(usable)}."
            )
        self.algorithm = algorithm
        self.params = resolve_hparams(self.hparams, hparams, owner=f"update rule '{self.name}'")

    def direction(self, g0: Grads, gradient_at: Callable[[Grads], Grads]) -> Grads:
        raise NotImplementedError

    def update(self, minibatches: Minibatches) -> StepLogs:
        algorithm = self.algorithm
        draws = _random_state(algorithm)
        loss, logs = algorithm.objective(minibatches, commit=True)
        after = _random_state(algorithm)
        params = [p for group in algorithm.optimizer.param_groups for p in group["params"] if p.requires_grad]

        def gradient_at(offsets: Grads) -> Grads:
            _set_random_state(algorithm, draws)
            with _shifted(params, offsets):
                shifted_loss, _ = algorithm.objective(minibatches, commit=False)
                return _gradients(shifted_loss, params)

        grads = self.direction(_gradients(loss, params), gradient_at)
        _set_random_state(algorithm, after)
        algorithm.optimizer.zero_grad()
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        algorithm.optimizer.step()
        return logs


RHO = HParam("rho", 0.05, grid=(0.01, 0.02, 0.05, 0.1), help="perturbation radius")
"""SAM's perturbation radius, shared by every rule of the SAM family (SAM, FAD, GSAM, SAGM)."""


class SAM(UpdateRule):
    """Sharpness-Aware Minimization (Foret et al., ICLR 2021): the gradient at the worst
    first-order perturbation ``w + rho * g / ||g||``, applied at ``w``."""

    name = "sam"
    paper = "Foret et al., Sharpness-Aware Minimization for Efficiently Improving Generalization (ICLR 2021)"
    hparams = (RHO,)

    def direction(self, g0: Grads, gradient_at: Callable[[Grads], Grads]) -> Grads:
        return gradient_at(ascent_step(g0, self.params["rho"]))


class FAD(UpdateRule):
    """Flatness-Aware Minimization for Domain Generalization (Zhang et al., ICCV 2023):
    descent on ``L + beta * (alpha * R0 + (1 - alpha) * R1)`` with the zeroth-order flatness
    ``R0 = max_{|e|<=rho} L(w + e) - L(w)`` and the first-order flatness
    ``R1 = rho * max_{|e|<=rho} |grad L(w + e)|``: ``alpha`` in [0, 1] trades the two flatness
    terms off, ``beta`` weighs flatness against the loss.

    Gradients by first-order perturbations and finite-difference Hessian-vector products, four
    gradient evaluations per update:

    - ``g0 = grad L(w)``; ``g1 = grad L(w + rho g0/|g0|)``, so ``grad R0 ~ g1 - g0`` (SAM);
    - ``grad |grad L|(w) = H g0/|g0| ~ (g1 - g0)/rho``, so the first-order worst perturbation is
      ``e1 = rho (g1 - g0)/|g1 - g0|``; ``g2 = grad L(w + e1)``;
    - ``g3 = grad L(w + e1 + rho g2/|g2|)``, so ``grad R1 = rho grad |grad L|(w + e1) ~ g3 - g2``;
    - the step uses ``g0 + beta (alpha (g1 - g0) + (1 - alpha) (g3 - g2))``.

    ``alpha = beta = 1`` is SAM and ``beta = 0`` the plain step. There is no official code, and
    the paper's DomainBed hyperparameters were not available to us: the objective's form follows
    the paper's definitions as restated by later work; the defaults (``alpha = 0.5``, equal
    weight to both flatness terms, ``beta = 1``, SAM's ``rho = 0.05``) and grids are ours.
    """

    name = "fad"
    paper = "Zhang et al., Flatness-Aware Minimization for Domain Generalization (ICCV 2023)"
    hparams = (
        RHO,
        HParam(
            "alpha",
            0.5,
            grid=(0.25, 0.5, 0.75),
            help="share of zeroth-order flatness (the rest: first-order)",
        ),
        HParam("beta", 1.0, grid=(0.5, 1.0), help="weight of the flatness terms against the loss"),
    )

    def direction(self, g0: Grads, gradient_at: Callable[[Grads], Grads]) -> Grads:
        rho, alpha, beta = self.params["rho"], self.params["alpha"], self.params["beta"]
        g1 = gradient_at(ascent_step(g0, rho))
        first_order = ascent_step([b - a for a, b in zip(g0, g1, strict=True)], rho)
        g2 = gradient_at(first_order)
        g3 = gradient_at([e + s for e, s in zip(first_order, ascent_step(g2, rho), strict=True)])
        zeroth, first = beta * alpha, beta * (1 - alpha)
        return [a + zeroth * (b - a) + first * (d - c) for a, b, c, d in zip(g0, g1, g2, g3, strict=True)]


UPDATE_RULES: Registry[type[UpdateRule]] = Registry("update rule", "unseen.methods.dg.sharpness")
"""Update rules by name; each wraps a single-objective algorithm: ``UPDATE_RULES[name](algorithm)``.
SAM and FAD are registered here; :mod:`unseen.methods.dg.sharpness` registers GSAM and SAGM."""
UPDATE_RULES.register("sam")(SAM)
UPDATE_RULES.register("fad")(FAD)
