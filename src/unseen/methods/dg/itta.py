"""ITTA's source training: the model and its learnable test-time loss, trained together.

Chen, Zhang, Song, Shan & Liu, *Improved Test-Time Adaptation for Domain Generalization*
(CVPR 2023). The test-time method that uses what this trains is :mod:`unseen.methods.tta.itta`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, adam, concat
from unseen.methods.registry import DG
from unseen.nn.itta import (
    ElementwiseAffineStack,
    adapter_sites,
    augmented_pair,
    check_style_layers,
    learned_loss,
)


def standardized(grads: list[torch.Tensor]) -> torch.Tensor:
    """The gradients as one flat vector minus its mean, over its (unbiased) standard deviation,
    both taken as constants (the deviation floored at 1e-12: an all-zero gradient, e.g. a batch
    whose feature differences the loss's ReLUs all cut, stays zero instead of turning NaN)."""
    flat = torch.cat([g.reshape(-1) for g in grads])
    return (flat - flat.mean().detach()) / flat.std().detach().clamp_min(1e-12)


def gradient_alignment(loss_grads: list[torch.Tensor], task_grads: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared difference of the standardized gradients of the learnable loss and of the
    supervised loss (a constant target): what the learnable loss's weights minimise."""
    return (standardized(loss_grads) - standardized(task_grads).detach()).pow(2).mean()


@DG.register("itta")
class ITTA(Algorithm):
    """The model, trained on clean and feature-augmented inputs, and a learnable test-time loss.

    Chen et al., *Improved Test-Time Adaptation for Domain Generalization* (CVPR 2023), as in the
    authors' DomainBed code. Each batch passes clean (features ``z``) and augmented by MixStyle
    after the featurizer's first or second stage (``z'``, :func:`~unseen.nn.itta.augmented_pair`).
    The learnable loss is ``L_w = mean ||f_w(z' - z)||^2`` with ``f_w`` ``loss_depth`` element-wise
    affine layers with ReLU between (:class:`~unseen.nn.itta.ElementwiseAffineStack`). Two steps
    per update, each on a fresh augmentation:

    1. featurizer and classifier: Adam on ``CE(z) + CE(z') + L_w``;
    2. ``f_w`` alone: Adam (``loss_lr_ratio * lr``, no weight decay) on ``align_weight`` times
       the mean squared difference between the standardized gradients of ``L_w`` and of
       ``CE(z) + CE(z')`` with respect to the featurizer's weights (the supervised one a constant),
       so that descending ``L_w`` at test time moves the featurizer as the unavailable
       supervised loss would.

    ``predict`` is the plain network; test-time adaptation (``unseen tta --method itta``) takes
    ``f_w`` from the saved model (:attr:`test_time_parts`). Image featurizers only: the
    augmentation mixes feature-map styles. Two optimizers and no single objective, so the update
    rules (SAM, FAD, ...) refuse it; an averaging wrapper averages the network, and ``f_w`` saved
    with it is the last one trained.
    """

    paper = "Chen et al., Improved Test-Time Adaptation for Domain Generalization (CVPR 2023)"
    hparams = (
        HParam("loss_depth", 10, help="element-wise affine layers of the learnable loss"),
        HParam("align_weight", 0.1, help="weight of the learnable loss's gradient-alignment objective"),
        HParam("loss_lr_ratio", 0.1, help="learning rate of the learnable loss, as a fraction of lr"),
    )

    def __init__(self, input_shape, n_classes, n_domains, hparams=None, seed=0, device=None) -> None:
        super().__init__(input_shape, n_classes, n_domains, hparams, seed, device)
        lr = self.params["lr"] * self.params["loss_lr_ratio"]
        self.loss_optimizer = adam(self.loss_net.parameters(), lr=lr)

    def _build(self) -> None:
        check_style_layers(self.featurizer, "DG algorithm 'itta'")
        adapter_sites(self.featurizer)  # refuse now a featurizer its test-time method cannot adapt
        self.loss_net = ElementwiseAffineStack((self.featurizer.n_outputs,), self.params["loss_depth"])

    @property
    def test_time_parts(self) -> dict[str, nn.Module]:
        """What test-time adaptation needs beside the network: the learnable loss."""
        return {"itta_loss": self.loss_net}

    def _losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(supervised loss on clean and augmented features, learnable loss) of one fresh pass."""
        z, z_aug = augmented_pair(self.featurizer, x, self.generator)
        task = F.cross_entropy(self.classifier(z), y) + F.cross_entropy(self.classifier(z_aug), y)
        return task, learned_loss(self.loss_net, z, z_aug)

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        task, reg = self._losses(x, y)
        self._step(task + reg)

        task, reg = self._losses(x, y)
        params = list(self.featurizer.parameters())
        task_grads = torch.autograd.grad(task, params, retain_graph=True)
        loss_grads = torch.autograd.grad(reg, params, create_graph=True)
        alignment = self.params["align_weight"] * gradient_alignment(loss_grads, task_grads)
        self.loss_optimizer.zero_grad()
        alignment.backward(inputs=list(self.loss_net.parameters()))
        self.loss_optimizer.step()
        return {"loss": task.detach(), "reg": reg.detach(), "align": alignment.detach()}
