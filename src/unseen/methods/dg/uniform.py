"""URM: features pushed toward a uniform distribution on a box by a discriminator that tells them
from uniform noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, adam, concat, shared_hparams
from unseen.methods.registry import DG
from unseen.nn import networks

OUTPUT_RANGES = {"tanh": (-1.0, 1.0), "relu": (0.0, 1.0), "sigmoid": (0.0, 1.0)}
"""The box the uniform noise is drawn from for each featurizer output activation (DomainBed's)."""
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class BoundedFeaturizer(nn.Sequential):
    """A featurizer followed by an output activation; ``n_outputs`` is the featurizer's."""

    def __init__(self, featurizer: nn.Module, activation: nn.Module) -> None:
        super().__init__(featurizer, activation)
        self.n_outputs = featurizer.n_outputs


def urm_discriminator(width: int, hidden_layers: int) -> nn.Sequential:
    """DomainBed's URM discriminator: ``width -> 100``, ``hidden_layers`` more layers of 100, each
    followed by LeakyReLU, then one logit."""
    layers: list[nn.Module] = [nn.Linear(width, 100), nn.LeakyReLU()]
    for _ in range(hidden_layers):
        layers += [nn.Linear(100, 100), nn.LeakyReLU()]
    return nn.Sequential(*layers, nn.Linear(100, 1))


@DG.register("urm")
class URM(Algorithm):
    """Uniform Risk Minimization (Krishnamachari et al., *Uniformly Distributed Feature Representations for
    Fair and Robust Learning*, TMLR 2024; DomainBed's ``URM``, its adversarial form).

    The featurizer's output goes through ``urm_generator_output`` (tanh: features in (-1, 1);
    relu), which changes the featurizer of every input kind. Every update: (1) one step of
    featurizer and classifier on the pooled cross-entropy plus ``urm_adv_lambda`` x the
    discriminator's binary cross-entropy of the features against the label "uniform noise";
    (2) one step of the discriminator (its own optimizer, ``urm_discriminator_optimizer``: Adam, or
    SGD with momentum 0.9; lr ``urm_discriminator_lr``; the run's weight decay) on its binary
    cross-entropy for uniform noise on the activation's box (label 1, or a label drawn from
    ``[1 - s, 1]`` with label smoothing ``s``) plus ``urm_adv_lambda`` x that for the (detached)
    features (label 0, or drawn from ``[0, s]``). Noise and smoothed labels come from the
    algorithm's seeded generator.

    DomainBed's single-choice ``urm`` hyperparameter (``adversarial``, the only form it has) is not
    declared. Two players with two optimizers: the update rules (SAM, FAD) refuse URM with an
    error; the averaging wrappers work and average ``network`` (the bounded featurizer and the
    classifier; the discriminator is training state).
    """

    paper = (
        "Krishnamachari et al., Uniformly Distributed Feature Representations for Fair and Robust "
        "Learning (TMLR 2024)"
    )
    feature_level = "its adversary pushes the featurizer's output toward a uniform distribution"
    hparams = (
        HParam(
            "urm_adv_lambda",
            0.1,
            grid=(0.05, 0.1, 0.2),
            help="weight of the adversarial terms",
            draw=lambda r: float(r.uniform(0, 0.2)),
        ),
        HParam(
            "urm_discriminator_label_smoothing",
            0.0,
            high=0.5,
            help="width of the range the discriminator's soft labels are drawn from",
            draw=lambda r: float(r.uniform(0, 0)),
        ),
        HParam(
            "urm_discriminator_optimizer",
            "adam",
            choices=("adam", "sgd"),
            help="the discriminator's optimizer",
            draw=lambda r: "adam",
        ),
        HParam(
            "urm_discriminator_hidden_layers",
            1,
            grid=(1, 2, 3),
            help="hidden layers of 100 units after the first",
            draw=lambda r: int(r.choice([1, 2, 3])),
        ),
        HParam(
            "urm_generator_output",
            "tanh",
            choices=("tanh", "relu", "sigmoid"),
            help="the featurizer's output activation; the noise is uniform on its range",
            draw=lambda r: str(r.choice(["tanh", "relu"])),
        ),
        HParam(
            "urm_discriminator_lr",
            1e-3,
            grid=(1e-4, 1e-3),
            help="the discriminator's learning rate",
            draw=lambda r: float(10 ** r.uniform(-5.5, -3.5)),
        ),
    )

    @classmethod
    def all_hparams(cls, input_shape=None):
        """DomainBed's discriminator learning rate is 5e-5 (10^U(-6, -4.5)) on its large images."""
        declared = shared_hparams(input_shape) + cls.hparams
        if input_shape is None or networks.featurizer_kind(input_shape).name != "efficientnet-lite0":
            return declared
        lr = HParam(
            "urm_discriminator_lr",
            5e-5,
            grid=(1e-5, 5e-5),
            help="the discriminator's learning rate",
            draw=lambda r: float(10 ** r.uniform(-6, -4.5)),
        )
        return tuple(lr if h.name == lr.name else h for h in declared)

    def _build(self) -> None:
        activation = ACTIVATIONS[self.params["urm_generator_output"]]()
        self.featurizer = BoundedFeaturizer(self.featurizer, activation)
        self.discriminator = urm_discriminator(
            self.featurizer.n_outputs, self.params["urm_discriminator_hidden_layers"]
        )
        params, lr = self.discriminator.parameters(), self.params["urm_discriminator_lr"]
        if self.params["urm_discriminator_optimizer"] == "sgd":
            self.discriminator_optimizer = torch.optim.SGD(
                params, lr=lr, momentum=0.9, weight_decay=self.params["weight_decay"]
            )
        else:
            self.discriminator_optimizer = adam(params, lr=lr, weight_decay=self.params["weight_decay"])

    def _uniform(self, shape, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
        draws = torch.rand(shape, generator=self.generator, dtype=like.dtype)
        return (low + (high - low) * draws).to(like.device)

    def discriminator_targets(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Uniform noise shaped like ``features`` and the labels of noise (1) and features (0),
        drawn from ``[1 - s, 1]`` and ``[0, s]`` under label smoothing ``s``."""
        noise = self._uniform(features.shape, *OUTPUT_RANGES[self.params["urm_generator_output"]], features)
        s, n = self.params["urm_discriminator_label_smoothing"], len(features)
        if s:
            return noise, self._uniform((n,), 1 - s, 1.0, features), self._uniform((n,), 0.0, s, features)
        return noise, features.new_ones(n), features.new_zeros(n)

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        features = self.featurizer(x)
        nll = F.cross_entropy(self.classifier(features), y)
        fooling = F.binary_cross_entropy_with_logits(
            self.discriminator(features).squeeze(1), features.new_ones(len(features))
        )
        loss = nll + self.params["urm_adv_lambda"] * fooling
        self._step(loss)
        features = features.detach()
        noise, noise_labels, feature_labels = self.discriminator_targets(features)
        disc_loss = F.binary_cross_entropy_with_logits(
            self.discriminator(noise).squeeze(1), noise_labels
        ) + self.params["urm_adv_lambda"] * F.binary_cross_entropy_with_logits(
            self.discriminator(features).squeeze(1), feature_labels
        )
        self.discriminator_optimizer.zero_grad()
        disc_loss.backward()
        self.discriminator_optimizer.step()
        return {"loss": loss.detach(), "nll": nll.detach(), "disc_loss": disc_loss.detach()}
