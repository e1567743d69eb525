"""The boundary-based out-of-distribution gate: class centres and boundaries on a hypersphere."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy.special import softmax

from unseen.core.device import as_tensor, resolve_device, score_in_chunks, stream
from unseen.core.errors import NotFittedError
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.gating import (
    EXPERT_HPARAMS,
    GatedGZSL,
    acceptance_threshold,
    route,
    split_per_class,
)
from unseen.methods.gzsl.hyperspherical import AlignerSettings, SphereEncoder, fit_aligner
from unseen.methods.gzsl.preprocessing import (
    FEATURE_NORMS,
    SEMANTIC_NORMS,
    FeatureNorm,
    normalize_semantics,
    seen_local_labels,
)
from unseen.methods.registry import GZSL

BOUNDARY_KINDS = ("class", "shared")
"""``class``: one threshold per seen class, from its boundary samples' cosines to its centre;
``shared``: one threshold for all classes, from every boundary sample's best cosine to any centre
(the official test script's choice). Boundary samples: see ``holdout_fraction``."""


@dataclass(frozen=True)
class Boundaries:
    """Seen-class centres on the sphere and a cosine threshold per class.

    A latent ``z`` is inside when its cosine to the nearest centre reaches that centre's threshold.
    """

    centres: np.ndarray
    thresholds: np.ndarray

    def inside(self, Z: np.ndarray) -> np.ndarray:
        cos = np.asarray(Z, dtype=np.float64) @ self.centres.T
        nearest = cos.argmax(axis=1)
        return cos[np.arange(len(cos)), nearest] >= self.thresholds[nearest]


def fit_boundaries(
    Z: np.ndarray, labels: np.ndarray, centres: np.ndarray, kind: str, accept_quantile: float
) -> Boundaries:
    """Boundaries that keep ``accept_quantile`` of the latents ``Z`` (unit rows, class positions
    ``labels`` into ``centres``) inside: per class (``class``) or one shared threshold
    (``shared``), see :data:`BOUNDARY_KINDS`. A class without latents gets the shared threshold."""
    cos = np.asarray(Z, dtype=np.float64) @ centres.T
    shared = acceptance_threshold(cos.max(axis=1), accept_quantile)
    if kind == "shared":
        return Boundaries(centres, np.full(len(centres), shared))
    own = cos[np.arange(len(cos)), labels]
    thresholds = [
        acceptance_threshold(own[labels == c], accept_quantile) if (labels == c).any() else shared
        for c in range(len(centres))
    ]
    return Boundaries(centres, np.array(thresholds))


def mean_directions(encoder: torch.nn.Module, X: np.ndarray, device: torch.device) -> np.ndarray:
    """An encoder's mean directions ``mu(x)`` of the rows of ``X`` (float64 unit rows)."""
    return score_in_chunks(lambda x: encoder(x)[0], X, device).astype(np.float64)


@dataclass(frozen=True)
class BoundaryCore:
    """What the gate fits: the feature encoder, the seen-class centres, the latents of the
    training samples the boundaries are drawn from (with their seen-class positions), and both
    experts fitted on all of ``train``."""

    encoder: SphereEncoder
    norm: FeatureNorm
    device: torch.device
    centres: np.ndarray
    boundary_latents: np.ndarray
    boundary_labels: np.ndarray
    seen: GZSLMethod
    unseen: GZSLMethod
    seen_mask: np.ndarray

    def latents(self, X: np.ndarray) -> np.ndarray:
        return mean_directions(self.encoder, self.norm(X), self.device)


@GZSL.register("boundary-gate")
class BoundaryGate(GatedGZSL):
    """The boundary-based out-of-distribution classifier (Chen, Lan, Sun, Zheng, *A Boundary Based
    Out-of-Distribution Classifier for Generalized Zero-Shot Learning*, ECCV 2020) as a hard
    seen/unseen gate between two registry experts.

    * Latent space (:mod:`~unseen.methods.gzsl.hyperspherical`): an encoder per modality maps
      L2-normalised image features and class semantics to von Mises-Fisher distributions on the
      unit sphere of ``latent`` = 64 dimensions (a ReLU layer of ``hidden`` = 512 units, mean
      direction normalised, concentration ``softplus + kappa_floor``, floor 100). Per minibatch
      (``batch_size`` 128): one draw from each encoder is decoded into both modalities (L1) and
      classified among the seen classes (NLL), and clouds of ``align_samples`` = 10 further draws
      per sample are aligned by the Sinkhorn cost (eps 0.1, weight ``align_weight`` = 0.1). Adam
      at ``lr`` = 1e-4 (what the official ``train.py`` passes for every dataset), ``epochs`` per
      dataset from the official ``test.py``'s best epochs (AWA1 320, AWA2 520, CUB 300, SUN 350,
      FLO 560); the official code picked them on the test set, here they are fixed defaults.
    * Centres and boundaries: the centre of seen class ``c`` is the semantic encoder's mean
      direction of its semantics; a test feature's latent is its feature encoder's mean
      direction. With ``boundary = "class"`` each class's threshold accepts ``accept_quantile``
      of its boundary latents (cosine to its own centre); with ``"shared"`` one threshold
      accepts ``accept_quantile`` of all boundary latents' best cosines (the official test
      script, quantile 0.95). A sample inside the boundary of its nearest centre goes to the
      seen expert, every other sample to the zero-shot expert.
    * Boundary data: the official code draws the thresholds from the samples the latent space
      was trained on (``holdout_fraction`` = 0). Those lie closer to their centres than new
      samples of the same classes once the encoder fits them, and on small training sets the
      boundaries then reject nearly every seen test sample; by default the latent space is
      trained without ``holdout_fraction`` = 0.2 of each class's samples
      (:func:`~.gating.split_per_class`) and the boundaries are drawn from those.
    * Experts: any two GZSL methods of the registry (``seen_expert``, default ``softmax``;
      ``unseen_expert``, default ``eszsl``; the paper's were the latent classifier and an
      f-CLSWGAN classifier), fitted on all of ``train``. Scores are each expert's softmax over
      its block of classes, the block a sample is not sent to lowered by 1
      (:func:`~.gating.route`).

    The gate is fitted from the training set alone: features of seen classes and the semantics of
    seen classes (unseen classes' semantics reach only the zero-shot expert). ``boundary`` and
    ``accept_quantile`` only change scoring and are searched on the protocol's validation task;
    the latent space and the experts are fitted once per training set
    (:class:`~.gating.CoreCache`). Official code: github.com/Chenxingyu1990/A-Boundary-Based-Out-
    of-Distribution-Classifier-for-Generalized-Zero-Shot-Learning.
    """

    paper = (
        "Chen, Lan, Sun, Zheng. A Boundary Based Out-of-Distribution Classifier for Generalized "
        "Zero-Shot Learning. ECCV 2020."
    )
    hparams = (
        *EXPERT_HPARAMS,
        HParam("epochs", 300, help="training epochs of the hyperspherical latent space"),
        HParam("hidden", 512, help="hidden units of the encoders and decoders (mid_size)"),
        HParam("latent", 64, low=2, help="dimensions of the latent space; the sphere is S^(latent-1)"),
        HParam("kappa_floor", 100.0, help="lowest vMF concentration an encoder outputs"),
        HParam("lr", 1e-4, help="Adam learning rate"),
        HParam("batch_size", 128, high=2**20, help="minibatch size"),
        HParam("align_samples", 10, help="vMF draws per sample and modality in the Sinkhorn term"),
        HParam("align_weight", 0.1, help="weight of the Sinkhorn alignment term"),
        HParam("sinkhorn_eps", 0.1, help="entropic regularisation of the Sinkhorn cost"),
        HParam("sinkhorn_iters", 100, help="Sinkhorn iterations at most"),
        HParam("sinkhorn_tol", 0.1, help="stop once the dual potential changes by less than this"),
        HParam(
            "holdout_fraction",
            0.2,
            high=0.9,
            help="share of each class's samples the latent space is not trained on, for the boundaries",
        ),
        HParam("feature_norm", "l2", help="feature normalisation", choices=FEATURE_NORMS),
        HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
        HParam(
            "boundary",
            "class",
            grid=BOUNDARY_KINDS,
            help="per-class or shared acceptance threshold",
            choices=BOUNDARY_KINDS,
        ),
        HParam(
            "accept_quantile",
            0.95,
            grid=(0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
            help="share of training latents inside the boundaries",
        ),
    )
    combination = ("boundary", "accept_quantile")
    dataset_defaults = {
        name: {"epochs": epochs}
        for name, epochs in (("AWA1", 320), ("AWA2", 520), ("CUB", 300), ("SUN", 350), ("FLO", 560))
    }
    fast_hparams = {
        "epochs": 15,
        "hidden": 64,
        "latent": 16,
        "lr": 1e-3,
        "batch_size": 64,
        "align_samples": 4,
        "sinkhorn_iters": 20,
    }

    def _fit_core(self, train: TrainSet) -> BoundaryCore:
        p = self.params
        dev = resolve_device(self.device)
        seen_ids = train.classes.seen_ids
        norm = FeatureNorm.fit(p["feature_norm"], train.features)
        S = normalize_semantics(train.classes.semantics[seen_ids], p["semantic_norm"])
        labels = seen_local_labels(train.labels, seen_ids)
        X = norm(train.features)
        if p["holdout_fraction"] > 0:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xB0D]))
            fit_rows, held_rows = split_per_class(train.labels, p["holdout_fraction"], rng)
        else:  # the official code: boundaries from the samples the latent space was trained on
            fit_rows = held_rows = np.arange(len(X))
        settings = AlignerSettings(**{f.name: p[f.name] for f in fields(AlignerSettings)})
        net = fit_aligner(
            as_tensor(X[fit_rows], dev),
            as_tensor(S, dev),
            torch.as_tensor(labels[fit_rows], device=dev),
            settings,
            init=stream(self.seed, "boundary-init"),
            gen=stream(self.seed, "boundary", dev),
        )
        return BoundaryCore(
            encoder=net.enc_x,
            norm=norm,
            device=dev,
            centres=mean_directions(net.enc_a, S, dev),
            boundary_latents=mean_directions(net.enc_x, X[held_rows], dev),
            boundary_labels=labels[held_rows],
            seen=self._expert("seen_expert").fit(train),
            unseen=self._expert("unseen_expert").fit(train),
            seen_mask=train.classes.seen,
        )

    def boundaries(self) -> Boundaries:
        """The fitted seen-class centres and thresholds at this model's ``boundary`` and
        ``accept_quantile``."""
        if self._n_classes is None:
            raise NotFittedError(f"method '{self.name}' must be fitted before its boundaries can be read.")
        core = self._core
        return fit_boundaries(
            core.boundary_latents,
            core.boundary_labels,
            core.centres,
            self.params["boundary"],
            self.params["accept_quantile"],
        )

    def inside_boundary(self, X: np.ndarray) -> np.ndarray:
        """Whether each row of ``X`` lies inside a seen class's boundary (goes to the seen expert)."""
        boundaries = self.boundaries()
        return boundaries.inside(self._core.latents(np.asarray(X, dtype=np.float32)))

    def _combine(self, core: BoundaryCore, X: np.ndarray) -> np.ndarray:
        return route(
            self.inside_boundary(X),
            softmax(core.seen.scores(X)[:, core.seen_mask], axis=1),
            softmax(core.unseen.scores(X)[:, ~core.seen_mask], axis=1),
            core.seen_mask,
        )
