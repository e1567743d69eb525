"""CuMix (Mancini, Akata, Ricci & Caputo, *Towards Recognizing Unseen Categories in Unseen
Domains*, ECCV 2020): a featurizer and a projection into the class-semantic space, trained
jointly on the seen classes of the training domains.

A sample ``x`` is embedded as ``e(x) = W f(x)`` (``f`` the featurizer, ``W`` a linear map into the
semantic space); the score of class ``c`` is ``<e(x), s_c / |s_c|>`` with ``s_c`` the class's
semantics (fixed, not trained), so any class with semantics can be scored, unseen ones too. One
step minimises, on one minibatch per training domain,

``semantic_w * CE(real) + mixup_feat_w * CE(mixed features) + mixup_img_w * CE(mixed images)``

where a mixed sample is ``lam * a + (1 - lam) * b`` of a sample ``a`` and a partner ``b`` (images,
or featurizer outputs ``f``), with the target ``lam * onehot(y_a) + (1 - lam) * onehot(y_b)`` and
the soft cross-entropy ``-sum_c t_c log softmax(scores)_c``. ``lam ~ Beta(beta_t, beta_t)`` per
sample. The partner is a random sample of the same domain with probability ``p_t``, else of
another domain (the domains paired by a random cyclic permutation): partners are of any class,
so mixing crosses classes and, as training goes on, domains.

The curriculum (the official implementation's, there per epoch, here per step ``t`` counted from
0, with ``R = mixup_ramp``): ``beta_t = clip(mixup_beta * t / R, 0.1, mixup_beta)`` ramps the
mixing strength up over the first ``R`` steps (``beta`` near 0: ratios near 0 or 1, little
mixing); then ``p_t = clip(2 - t / R, 0, 1)`` moves the partners from the same domain to other
domains over the next ``R`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.dg.base import Algorithm, Minibatches
from unseen.methods.registry import JOINT

PAPER = "Mancini, Akata, Ricci & Caputo, Towards Recognizing Unseen Categories in Unseen Domains (ECCV 2020)"


def unit_rows(semantics: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Class semantics, each row scaled to unit L2 norm (float32)."""
    s = torch.tensor(np.asarray(semantics, dtype=np.float32))
    return s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)


class SemanticHead(nn.Module):
    """Scores of every class of ``semantics``: the embedding's dot product with each class's unit
    semantics. Nothing in it trains."""

    def __init__(self, semantics: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("classes", unit_rows(semantics))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e @ self.classes.T


def curriculum(step: int, max_beta: float, ramp: int) -> tuple[float, float]:
    """``(beta_t, p_t)`` at step ``step`` (from 0): the Beta parameter of the mixing ratios and the
    probability that a partner comes from the sample's own domain."""
    beta = min(max_beta, max(max_beta * step / ramp, 0.1))
    within = min(1.0, max(2.0 - step / ramp, 0.0))
    return beta, within


def mix_draws(
    rng: np.random.Generator, sizes: Sequence[int], beta: float, within: float
) -> tuple[np.ndarray, np.ndarray]:
    """One partner index and one mixing ratio per sample of a batch made of consecutive domain
    blocks of ``sizes``: the partner is in the sample's own block with probability ``within``,
    else in the block its domain is paired with by a random cyclic permutation of the domains."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    n_dom = len(sizes)
    order = rng.permutation(n_dom)
    other = np.empty(n_dom, dtype=np.int64)
    other[order] = order[(np.arange(n_dom) + 1) % n_dom]  # a cycle: no domain is its own partner
    partners = []
    for d, n in enumerate(sizes):
        own = starts[d] + rng.permutation(n)
        m = sizes[other[d]]
        pick = rng.permutation(m)[:n] if m >= n else rng.integers(m, size=n)
        across = starts[other[d]] + pick
        keep = rng.random(n) < within
        partners.append(np.where(keep, own, across))
    ratios = rng.beta(beta, beta, size=int(sum(sizes)))
    return np.concatenate(partners), ratios.astype(np.float32)


def mix(values: torch.Tensor, partners: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
    """``ratio * values[i] + (1 - ratio) * values[partner[i]]`` for every row ``i``."""
    lam = ratios.reshape(-1, *([1] * (values.dim() - 1))).to(values.dtype)
    return lam * values + (1.0 - lam) * values[partners]


def soft_cross_entropy(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum_c targets_c * log softmax(scores)_c``."""
    return -(targets * F.log_softmax(scores, dim=1)).sum(dim=1).mean()


@JOINT.register("cumix")
class CuMix(Algorithm):
    """CuMix (Mancini et al., ECCV 2020): semantic cross-entropy on real samples plus mixup across
    domains and classes at image and at feature level, under a curriculum. Built for one set of
    training classes with :meth:`for_classes`; ``network[0]`` embeds into the semantic space."""

    role: ClassVar[str] = "joint method"
    paper = PAPER
    class_semantics: ClassVar[np.ndarray | None] = None
    hparams = (
        HParam("semantic_w", 1.0, help="weight of the cross-entropy on real samples"),
        HParam(
            "mixup_feat_w",
            1.0,
            help="weight of the feature-level mixup loss (official painting config; 0.5-2 per target)",
        ),
        HParam(
            "mixup_img_w", 0.001, help="weight of the image-level mixup loss (every official ZSL+DG config)"
        ),
        HParam(
            "mixup_beta",
            2.0,
            help="largest Beta parameter of the mixing ratios (official painting config; 1-2 per target)",
            low=0.1,
        ),
        HParam(
            "mixup_ramp",
            250,
            help="steps of each curriculum ramp (paper: 2 of 8 epochs; here 1/4 of the default 1,000 steps)",
        ),
    )

    @classmethod
    def for_classes(cls, semantics: np.ndarray) -> type[CuMix]:
        """This method for the training classes whose semantics are the rows of ``semantics``."""
        return type(cls.__name__, (cls,), {"class_semantics": np.asarray(semantics, dtype=np.float32)})

    def _build(self) -> None:
        if self.class_semantics is None:
            raise TypeError(
                "CuMix needs the training classes' semantics: build it with CuMix.for_classes(S)."
            )
        if len(self.class_semantics) != self.n_classes:
            raise ValueError(
                f"CuMix: {len(self.class_semantics)} rows of semantics for {self.n_classes} classes."
            )
        self.backbone = self.featurizer
        self.projector = nn.Linear(self.backbone.n_outputs, self.class_semantics.shape[1])
        nn.init.normal_(self.projector.weight, 0.0, 0.02)
        nn.init.zeros_(self.projector.bias)
        self.featurizer = nn.Sequential(self.backbone, self.projector)
        self.classifier = SemanticHead(self.class_semantics)
        self.rng = np.random.default_rng([int(self.seed), 0xC0])
        self.steps_done = 0

    def update(self, minibatches: Minibatches) -> dict[str, Any]:
        x = torch.cat([xi for xi, _ in minibatches])
        y = torch.cat([yi for _, yi in minibatches])
        sizes = [len(yi) for _, yi in minibatches]
        beta, within = curriculum(self.steps_done, self.params["mixup_beta"], self.params["mixup_ramp"])
        targets = F.one_hot(y, self.n_classes).float()
        features = self.backbone(x)
        loss_real = F.cross_entropy(self.classifier(self.projector(features)), y)
        partners, ratios = self._draw(sizes, beta, within, x.device)
        mixed = self.classifier(self.projector(mix(features, partners, ratios)))
        loss_feat = soft_cross_entropy(mixed, mix(targets, partners, ratios))
        partners, ratios = self._draw(sizes, beta, within, x.device)
        loss_img = soft_cross_entropy(self.network(mix(x, partners, ratios)), mix(targets, partners, ratios))
        p = self.params
        loss = p["semantic_w"] * loss_real + p["mixup_feat_w"] * loss_feat + p["mixup_img_w"] * loss_img
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.steps_done += 1
        return {
            "loss": loss.item(),
            "semantic": loss_real.item(),
            "mixup_feat": loss_feat.item(),
            "mixup_img": loss_img.item(),
        }

    def _draw(self, sizes, beta, within, device) -> tuple[torch.Tensor, torch.Tensor]:
        partners, ratios = mix_draws(self.rng, sizes, beta, within)
        return torch.from_numpy(partners).to(device), torch.from_numpy(ratios).to(device)


class SemanticCompatibility(GZSLMethod):
    """The scoring half of an end-to-end method: features already in the semantic space are scored
    by their dot product with every class's unit semantics. Fitting stores the semantics only."""

    name: ClassVar[str] = "semantic-compatibility"
    paper = PAPER
    hparams = ()

    def _fit(self, train: TrainSet) -> None:
        self.S = unit_rows(train.classes.semantics).numpy()

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return X @ self.S.T
