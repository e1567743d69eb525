"""LsrGAN: f-CLSWGAN whose generated class means mirror the semantic similarities of their classes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unseen.core.arrays import unit_rows
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.gzsl.f_clswgan import FCLSWGAN
from unseen.methods.gzsl.generative import BatchSampler, SoftmaxClassifier, frozen, gaussian
from unseen.methods.gzsl.generative.base import COMMON_HPARAMS
from unseen.methods.registry import GZSL


def semantic_neighbours(S_from: np.ndarray, S_to: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``S_from``, the ``k`` rows of ``S_to`` with the highest cosine similarity
    (most similar first, ties in index order) and those similarities: ``(n, k)`` indices, ``(n, k)``
    similarities. A class compared with its own semantics is its own first neighbour."""
    sims = unit_rows(np.asarray(S_from, np.float64)) @ unit_rows(np.asarray(S_to, np.float64)).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def class_means(X: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_classes, d)`` means of the rows of ``X`` per label (zero for an absent class, whose
    gradient is then zero) and the ``(n_classes,)`` mask of the classes present."""
    counts = torch.bincount(labels, minlength=n_classes)
    sums = X.new_zeros(n_classes, X.shape[1]).index_add(0, labels, X)
    return sums / counts.clamp(min=1)[:, None].to(X.dtype), counts > 0


def relation_loss(
    means: torch.Tensor, neighbours: torch.Tensor, sims: torch.Tensor, low: float, high: float
) -> torch.Tensor:
    """The semantic-relationship (SR) loss: ``means`` ``(c, d)`` (generated class means),
    ``neighbours`` ``(c, k, d)`` (real seen-class means of each class's semantic neighbours),
    ``sims`` ``(c, k)`` (their semantic cosine similarities). Each visual cosine similarity
    ``v`` is held in ``[s - low, s + high]`` by ``max(0, v - s - high)^2 + max(0, s - low - v)^2``;
    summed over the classes and averaged over the ``k`` neighbours (the official code's
    normalisation)."""
    v = nn.functional.cosine_similarity(means[:, None, :], neighbours, dim=2)
    above = (v - sims - high).clamp(min=0)
    below = (sims - low - v).clamp(min=0)
    return (above.pow(2) + below.pow(2)).sum() / sims.shape[1]


@GZSL.register("lsrgan")
class LsrGAN(FCLSWGAN):
    """LsrGAN (Vyas, Venkateswara, Panchanathan, *Leveraging Seen and Unseen Semantic
    Relationships for Generative Zero-Shot Learning*, ECCV 2020).

    f-CLSWGAN (:class:`FCLSWGAN`: conditional WGAN-GP, generator and critic of ``hidden`` = 4096
    units) with the semantic-relationship regulariser (SR loss, :func:`relation_loss`): for each
    class, its ``neighbours`` = 20 most similar seen classes by cosine similarity ``s`` of the class
    semantics; the cosine similarity between the class's generated-feature mean (over the
    minibatch) and each neighbour's real feature mean must stay within ``[s - epsilon,
    s + upper_epsilon]``, with ``sr_weight`` (lambda) on the squared violations.

    * Seen step (every generator step): the WGAN term, ``cls_weight`` times the NLL of the
      classifier over all classes on the generated seen features, ``sr_weight`` times the SR loss
      of the minibatch's seen classes (a seen class is its own first neighbour), and
      ``centroid_weight`` times the distance of each generated seen-class mean to its real mean
      (summed over the minibatch's classes, divided by the number of seen classes).
    * Unseen step (after each generator step, from epoch ``unseen_start`` + 1): a minibatch of
      unseen classes drawn uniformly, features generated for them; generator and classifier take
      one Adam step on ``unseen_cls_weight`` times the classifier's NLL on those features plus
      ``cls_weight`` times its NLL on the step's real seen minibatch, and the generator also on
      ``sr_weight`` times the SR loss of the unseen classes against their seen neighbours.

    The classifier (all classes, log-softmax) is pretrained on the real seen features (50 epochs,
    Adam lr 1e-3, beta1 0.5, batch 100) and then trained jointly in the unseen steps (Adam lr
    1e-3, beta1 0.5). Settings and per-dataset values are the official scripts' (github.com/Maunil/
    LsrGAN, ``Shell_Scipts/GZSL_*.sh``); on AWA the official code halves ``cls_weight`` after
    epoch 15 (``halve_cls_weight_after``). Differences from the official code: its SR terms are
    computed in NumPy and pass no gradient to the generator, here they are differentiable as the
    paper's objective is; its unseen step zeroes only the classifier's gradient, so its generator
    update also applies the seen step's generator gradient a second time, here each step has its
    own gradient (the paper's alternating updates); its unseen steps continue the classifier's
    pretraining Adam state, here they start a fresh Adam (``benchmarks/bench_replay_lsrgan.py``
    replays both codes: with these three switched to the official behaviour, the runs agree
    within float rounding); its unseen minibatches follow the test set's unseen labels, here the
    unseen classes are drawn uniformly (test labels are never seen); it scores with the jointly
    trained classifier, here the family's final classifier (:class:`GenerativeGZSL`) is trained
    on real seen plus ``syn_per_class`` synthetic unseen features, and ``epochs`` and
    ``cls_epochs`` are selected on validation as in :class:`FCLSWGAN`.
    """

    paper = (
        "Vyas, Venkateswara, Panchanathan. Leveraging Seen and Unseen Semantic Relationships for "
        "Generative Zero-Shot Learning. ECCV 2020."
    )
    hparams = (
        HParam("epochs", 40, help="generator epochs (budget; the best is selected on validation)"),
        HParam("hidden", 4096, help="hidden units of generator and critic"),
        HParam("lr", 1e-4, help="Adam learning rate of generator and critic (betas 0.5, 0.999)"),
        HParam("batch_size", 64, high=2**20, help="GAN minibatch size (seen and unseen steps)"),
        HParam("critic_iters", 5, help="critic steps per generator step"),
        HParam("gp_weight", 10.0, help="gradient-penalty weight (lambda1)"),
        HParam("cls_weight", 0.01, help="weight of the seen classification loss"),
        HParam("unseen_cls_weight", 0.03, help="weight of the unseen classification loss"),
        HParam("sr_weight", 20.0, help="weight of the semantic-relationship loss (correlation_penalty)"),
        HParam("epsilon", 0.1, help="SR loss: lower margin below the semantic similarity"),
        HParam("upper_epsilon", 0.1, help="SR loss: upper margin above the semantic similarity"),
        HParam("neighbours", 20, help="semantic neighbours (seen classes) per class in the SR loss"),
        HParam("centroid_weight", 1.0, help="weight of the generated-to-real class-mean distance"),
        HParam("unseen_start", 1, low=0, help="epochs before the unseen steps begin"),
        HParam("halve_cls_weight_after", 0, help="halve cls_weight after this epoch (0: never)"),
        HParam("pretrain_epochs", 50, help="epochs of pretraining the classifier on real seen features"),
        HParam("syn_per_class", 300, help="synthetic features per unseen class"),
        *COMMON_HPARAMS,
    )
    dataset_defaults = {
        "CUB": {"epochs": 40, "cls_weight": 0.01, "unseen_cls_weight": 0.03, "syn_per_class": 300},
        "SUN": {
            "epochs": 20,
            "lr": 2e-4,
            "cls_weight": 0.03,
            "unseen_cls_weight": 0.01,
            "sr_weight": 10.0,
            "syn_per_class": 400,
        },
        **{
            name: {
                "epochs": 18,
                "lr": 1e-5,
                "cls_weight": 0.001,
                "unseen_cls_weight": 0.1,
                "epsilon": 0.15,
                "upper_epsilon": 0.15,
                "syn_per_class": 1800,
                "halve_cls_weight_after": 15,
            }
            for name in ("AWA1", "AWA2")
        },
    }
    fast_hparams = {**FCLSWGAN.fast_hparams, "neighbours": 5}

    def _build(self, train: TrainSet, generator: torch.Generator) -> None:
        super()._build(train, generator)
        p, dev = self.params, self._device
        seen, unseen = train.classes.seen_ids, train.classes.unseen_ids
        self._seen_ids = torch.as_tensor(seen, device=dev)
        self._unseen_ids = torch.as_tensor(unseen, device=dev)
        self._centroids, _ = class_means(self._X, self._y_local, len(seen))
        S = self._S.cpu().numpy()
        k = min(p["neighbours"], len(seen))
        self._relations = {
            role: tuple(torch.as_tensor(a, device=dev) for a in semantic_neighbours(S[ids], S[seen], k))
            for role, ids in (("seen", seen), ("unseen", unseen))
        }
        self._opt_clf = torch.optim.Adam(self._pretrained.parameters(), lr=1e-3, betas=(0.5, 0.999))
        self._epoch = 0

    def _generator_classifier(self, n_seen: int) -> SoftmaxClassifier:
        # over all classes, global labels, not frozen: the unseen steps keep training it
        return self._pretrain(self._y, self._n_classes)

    def _train_epoch(self, sampler: BatchSampler, generator: torch.Generator) -> None:
        self._epoch += 1
        super()._train_epoch(sampler, generator)

    def _cls_weight(self) -> float:
        p = self.params
        halve = 0 < p["halve_cls_weight_after"] < self._epoch
        return p["cls_weight"] / 2 if halve else p["cls_weight"]

    def _sr_loss(self, fake: torch.Tensor, local: torch.Tensor, role: str) -> tuple[torch.Tensor, ...]:
        """The SR loss of ``fake`` features of the ``role`` ("seen"/"unseen") classes with local
        labels ``local``, and the classes' generated means and presence mask."""
        neighbours, sims = self._relations[role]
        means, present = class_means(fake, local, len(neighbours))
        p = self.params
        loss = relation_loss(
            means[present],
            self._centroids[neighbours[present]],
            sims[present].to(fake.dtype),
            p["epsilon"],
            p["upper_epsilon"],
        )
        return loss, means, present

    def _generator_loss(
        self, fake: torch.Tensor, a: torch.Tensor, y_local: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        p = self.params
        with frozen(self._pretrained):
            cls_loss = nn.functional.nll_loss(self._pretrained(fake), self._seen_ids[y_local])
        sr, means, present = self._sr_loss(fake, y_local, "seen")
        centroid = (means[present] - self._centroids[present]).norm(dim=1).sum() / len(self._centroids)
        return (
            -self._D(fake, a).mean()
            + self._cls_weight() * cls_loss
            + p["sr_weight"] * sr
            + p["centroid_weight"] * centroid
        )

    def _after_generator_step(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        p = self.params
        if self._epoch <= p["unseen_start"]:
            return
        n = len(idx)
        pick = torch.randint(len(self._unseen_ids), (n,), generator=generator, device=generator.device)
        local = pick.to(self._device)
        labels = self._unseen_ids[local]
        fake = self._G(gaussian((n, self.noise_dim), generator, self._device), self._S[labels])
        nll = nn.functional.nll_loss
        sr, _, _ = self._sr_loss(fake, local, "unseen")
        loss = (
            p["unseen_cls_weight"] * nll(self._pretrained(fake), labels)
            + self._cls_weight() * nll(self._pretrained(self._X[idx]), self._y[idx])
            + p["sr_weight"] * sr
        )
        self._opt_g.zero_grad(set_to_none=True)
        self._opt_clf.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_g.step()
        self._opt_clf.step()
