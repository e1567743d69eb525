"""ERM++: ERM with a linear-probing warm-up of the classifier and a built-in simple moving average
of the weights, which is the model evaluated and saved."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, adam, concat
from unseen.methods.registry import DG


@DG.register("erm++")
class ERMPlusPlus(Algorithm):
    """ERM++ (Teterwak et al., *ERM++: An Improved Baseline for Domain Generalization*, arXiv 2023;
    DomainBed's ``ERMPlusPlus``), the parts of it that are an algorithm:

    - linear probing: the first ``linear_steps`` + 1 updates train the classifier alone (its own
      Adam, lr ``linear_lr``), as DomainBed counts them; then Adam (lr ``lr``) trains everything;
    - a simple moving average of the weights: up to update ``SMA_START`` - 1 the average is the
      current weights; from then on it is the uniform mean of the iterates since update
      ``SMA_START`` - 1 (600 - 1, DomainBed's fixed start). ``network``, ``featurizer`` and
      ``classifier`` are the averaged model (what the protocol evaluates, ``--save-model`` writes
      and ``unseen tta`` adapts); the trained weights are ``student``. When BatchNorm layers
      normalise with batch statistics (``freeze_bn`` off), the average is run on each training
      minibatch in training mode, as in DomainBed, to refresh its running statistics.

    The rest of ERM++ is the run's setting, not the algorithm (its ResNet-50 AugMix weights, longer
    training, LARS off by default); DomainBed's plateau learning-rate schedule is never called by its
    training script and is left out. Two optimizers and its own average: the update rules (SAM,
    FAD) refuse ERM++ with an error; an averaging wrapper (``--wrapper``) averages ERM++'s average
    again, which runs but is redundant.
    """

    paper = "Teterwak et al., ERM++: An Improved Baseline for Domain Generalization (arXiv 2023)"
    hparams = (
        HParam(
            "linear_lr",
            5e-5,
            grid=(1e-5, 5e-5, 1e-4),
            help="Adam learning rate of the linear-probing updates",
            draw=lambda r: float(10 ** r.uniform(-5, -3.5)),
        ),
        HParam(
            "linear_steps",
            500,
            low=0,
            help="updates (+1) that train the classifier alone",
            draw=lambda r: 500,
        ),
    )
    SMA_START = 600

    def __init__(self, input_shape, n_classes, n_domains, hparams=None, seed=0, device=None) -> None:
        super().__init__(input_shape, n_classes, n_domains, hparams, seed, device)
        self.student = self.network
        self.student_classifier = self.classifier
        self.network = copy.deepcopy(self.student)
        self.featurizer, self.classifier = self.network[0], self.network[1]
        self.linear_optimizer = adam(
            self.student_classifier.parameters(),
            lr=self.params["linear_lr"],
            weight_decay=self.params["weight_decay"],
        )
        self.sma_start = self.SMA_START
        self.update_count = 0
        self.sma_count = 0

    @torch.no_grad()
    def _update_average(self, x: torch.Tensor) -> None:
        self.update_count += 1
        average, current = self.network.state_dict(), self.student.state_dict()
        if self.update_count >= self.sma_start:
            self.sma_count += 1
            weight = self.sma_count / (1.0 + self.sma_count)
        else:
            weight = 0.0
        for name, value in average.items():
            if value.dtype.is_floating_point:
                value.mul_(weight).add_(current[name], alpha=1 - weight)
            elif "num_batches_tracked" not in name:
                value.copy_(current[name])
        batch_statistics = not self.params.get("freeze_bn", False)
        if batch_statistics and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.network.modules()
        ):
            training = self.network.training
            self.network.train()
            self.network(x)
            self.network.train(training)

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        loss = F.cross_entropy(self.student(x), y)
        optimizer = (
            self.optimizer if self.update_count > self.params["linear_steps"] else self.linear_optimizer
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        self._update_average(x)
        return {"loss": loss.detach()}
