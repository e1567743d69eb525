"""DSP: dynamic semantic prototypes evolved from visual features, plugged into f-VAEGAN-D2 and TF-VAEGAN."""

from __future__ import annotations

import torch
from torch import nn

from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.f_vaegan import FVAEGAN, TFVAEGAN
from unseen.methods.gzsl.generative import frozen, init_weights
from unseen.methods.gzsl.generative.modules import LEAK
from unseen.methods.registry import GZSL

DSP_HPARAMS = (
    HParam(
        "alpha",
        0.5,
        low=0,
        high=1,
        help="unseen synthesis condition: alpha * predefined + (1 - alpha) * evolved prototype",
    ),
    HParam("v2s_weight", 1.0, help="weight of the generator's V2SM term |M(fake) - M(real)|_1"),
    HParam("v2s_lr", 1e-4, help="Adam learning rate of V2SM (betas 0.5, 0.999)"),
    HParam("vope_lr", 1e-4, help="Adam learning rate of the prototype evolving net VOPE (betas 0.5, 0.999)"),
)
DSP_FAST = {"v2s_lr": 1e-3, "vope_lr": 1e-3}


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||pred - target||_1`` per row, averaged over rows."""
    return (pred - target).abs().sum(dim=1).mean()


def fuse(predefined: torch.Tensor, evolved: torch.Tensor, alpha: float) -> torch.Tensor:
    """DSP's synthesis condition ``alpha * predefined + (1 - alpha) * evolved``."""
    return alpha * predefined + (1 - alpha) * evolved


class PrototypeEvolver(nn.Module):
    """VOPE: ``E(z) = z + W2 lrelu(W1 z)``, a prototype to its evolved form in the same space.

    The residual form starts the evolution at the predefined prototypes (the family's ``N(0, 0.02)``
    initialisation makes the correction small at first)."""

    def __init__(self, att_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(att_dim, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, att_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.net(z)


def visual_to_semantic(feat_dim: int, att_dim: int, hidden: int) -> nn.Module:
    """V2SM: ``M(x) = W2 lrelu(W1 x)``, a feature to a point of the semantic space."""
    return nn.Sequential(nn.Linear(feat_dim, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, att_dim))


class DSP:
    """The DSP plug-in (Chen, Hou, Hong, Ding, Song, You, Liu, Zhang, *Evolving Semantic Prototype
    Improves Generative Zero-Shot Learning*, ICML 2023) for a VAE-GAN feature generator.

    * V2SM ``M`` (feature -> semantic space, one ``hidden``-unit LeakyReLU layer) is trained after
      each generator step on the step's real features to regress their classes' predefined
      prototypes (L1, :func:`l1`, lr ``v2s_lr``). The generator's loss gains
      ``v2s_weight * |M(fake) - M(x)|_1`` (``M`` frozen): synthesised features carry the semantics
      that ``M`` reads in the real ones.
    * VOPE ``E`` (:class:`PrototypeEvolver`) evolves prototypes. The dynamic prototype of class
      ``c`` at step ``k`` is ``z_k = E_k(s_c)``, ``s_c`` the predefined one; encoder, generator
      and critic (and TF-VAEGAN's decoder) are conditioned on ``z_k`` instead of ``s_c``. After
      each generator step ``E`` takes one step on ``|E(s_c) - M(x)|_1`` over the step's real
      features ``x`` (lr ``vope_lr``): the prototypes move towards the semantics ``M`` reads in
      the features of their class (visual-oriented prototypes); then ``z_{k+1} = E_{k+1}(s)``
      for every class.
    * Synthesis for the unseen classes conditions on :func:`fuse`,
      ``alpha * s_u + (1 - alpha) * E(s_u)``.
    * Feature enhancement: the final classifier sees the base method's view of a feature (TF-VAEGAN:
      ``[x, Dec(x), hidden(Dec, x)]``) concatenated with the evolved prototype read from it,
      ``E(M(x))``, for real, synthetic and test features alike.

    The authors' code (github.com/shiming-chen/DSP) could not be read when this was written; the
    structure follows the paper (its Fig. 2: V2SM, VOPE, the ``alpha`` fusion, prototype
    concatenation). Choices of ours where the paper leaves them open: L1 losses, ``M`` anchored on
    the predefined prototypes, the residual ``E`` applied to the predefined prototypes at every
    step (rather than to its own last output), ``E(M(x))`` as a test feature's prototype, and the
    values of ``alpha``, ``v2s_weight``, ``v2s_lr`` and ``vope_lr``. One departure: the paper
    supervises VOPE with ``M`` of *synthesised* features; here that loop (prototype -> generator
    -> ``M`` -> prototype) collapsed the prototypes on planted data (mean cosine between classes
    0.93 against 0.56 predefined, unseen accuracy 0), so VOPE reads ``M`` of the real features of
    the same step, which keeps the prototypes apart. The base method's hyperparameters and
    per-dataset defaults are its own (the official TF-VAEGAN scripts).
    """

    _S: torch.Tensor
    _device: torch.device
    params: dict

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        super()._build(train, generator)
        p, dev = self.params, self._device
        feat_dim, att_dim, h = self._X.shape[1], self._S.shape[1], p["hidden"]
        self._M = init_weights(visual_to_semantic(feat_dim, att_dim, h), generator).to(dev)
        self._vope = init_weights(PrototypeEvolver(att_dim, h), generator).to(dev)
        self._opt_m, self._opt_vope = self._adam(self._M, p["v2s_lr"]), self._adam(self._vope, p["vope_lr"])
        self._evolve()

    def _evolve(self) -> None:
        """The dynamic prototypes of every class, ``E(s)``, with VOPE's current weights."""
        with torch.no_grad():
            self._prototypes = self._vope(self._S)

    def _conditions(self, labels: torch.Tensor) -> torch.Tensor:
        return self._prototypes[labels]

    def _generator_regularizer(self, x: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with frozen(self._M):
            return self.params["v2s_weight"] * l1(self._M(fake), self._M(x).detach())

    def _after_generator_step(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        x, s = self._X[idx], self._S[self._y[idx]]
        self._opt_m.zero_grad(set_to_none=True)
        l1(self._M(x), s).backward()
        self._opt_m.step()
        with torch.no_grad():
            target = self._M(x)
        self._opt_vope.zero_grad(set_to_none=True)
        l1(self._vope(s), target).backward()
        self._opt_vope.step()
        self._evolve()

    def _generate_from(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The base method's synthesis from ``condition`` as given."""
        return super()._generate(z, condition)

    def _generate(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._generate_from(z, fuse(a, self._vope(a), self.params["alpha"]))

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([super()._embed(X), self._vope(self._M(X))], dim=1)


@GZSL.register("f-vaegan-dsp")
class FVAEGANDSP(DSP, FVAEGAN):
    """f-VAEGAN-D2 (inductive, :class:`~unseen.methods.gzsl.f_vaegan.FVAEGAN`) with DSP
    (:class:`DSP`: evolving semantic prototypes, fused synthesis condition, prototype-enhanced
    features)."""

    paper = (
        "Chen, Hou, Hong, Ding, Song, You, Liu, Zhang. Evolving Semantic Prototype Improves "
        "Generative Zero-Shot Learning. ICML 2023. On: " + FVAEGAN.paper
    )
    hparams = (*FVAEGAN.hparams, *DSP_HPARAMS)
    fast_hparams = {**FVAEGAN.fast_hparams, **DSP_FAST}


@GZSL.register("tf-vaegan-dsp")
class TFVAEGANDSP(DSP, TFVAEGAN):
    """TF-VAEGAN (:class:`~unseen.methods.gzsl.f_vaegan.TFVAEGAN`) with DSP (:class:`DSP`); the
    semantic decoder and feedback see the dynamic prototypes as their conditions."""

    paper = (
        "Chen, Hou, Hong, Ding, Song, You, Liu, Zhang. Evolving Semantic Prototype Improves "
        "Generative Zero-Shot Learning. ICML 2023. On: " + TFVAEGAN.paper
    )
    hparams = (*TFVAEGAN.hparams, *DSP_HPARAMS)
    fast_hparams = {**TFVAEGAN.fast_hparams, **DSP_FAST}
