"""Feature style statistics: SagNet's style/content randomization and XDED's UniStyle.

"Style" is the per-sample mean and variance of a feature map over its spatial positions (over
the feature dimension for feature vectors, as DomainBed does for SagNet); "content" is the map
normalized by them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, concat
from unseen.methods.registry import DG
from unseen.nn import networks


def _flat_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x`` as (n, channels, positions) (feature vectors: (n, 1, d)) with its per-sample,
    per-channel mean and unbiased variance over positions."""
    flat = x.view(x.shape[0], x.shape[1], -1) if x.dim() == 4 else x.view(x.shape[0], 1, -1)
    return flat, flat.mean(-1, keepdim=True), flat.var(-1, keepdim=True)


def style_randomize(x: torch.Tensor, generator: torch.Generator, eps: float = 1e-5) -> torch.Tensor:
    """SagNet's style randomization: each sample keeps its content but takes the style
    ``alpha * own + (1 - alpha) * other's`` of a random other sample, ``alpha ~ U(0, 1)``."""
    flat, mean, var = _flat_stats(x)
    alpha = torch.rand(x.shape[0], 1, 1, generator=generator).to(x.device)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    content = (flat - mean) / (var + eps).sqrt()
    mixed_mean = alpha * mean + (1 - alpha) * mean[perm]
    mixed_var = alpha * var + (1 - alpha) * var[perm]
    return (content * (mixed_var + eps).sqrt() + mixed_mean).view(x.shape)


def content_randomize(x: torch.Tensor, generator: torch.Generator, eps: float = 1e-5) -> torch.Tensor:
    """SagNet's content randomization: each sample keeps its style but takes the (detached)
    content of a random other sample."""
    flat, mean, var = _flat_stats(x)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    content = ((flat - mean) / (var + eps).sqrt())[perm].detach()
    return (content * (var + eps).sqrt() + mean).view(x.shape)


def unistyle(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """UniStyle (Lee et al., ECCV 2022): every sample's feature map normalized to zero mean and
    unit (unbiased) variance per channel, i.e. one shared style; applied in training and test."""
    flat, mean, var = _flat_stats(x)
    return ((flat - mean) / (var + eps).sqrt()).view(x.shape)


def _unistyle_hook(module, inputs, output):
    return unistyle(output)


def add_unistyle(featurizer: torch.nn.Module) -> None:
    """UniStyle after the featurizer's ``style_layers()`` (XDED puts it after ResNet's first two
    stages): the small CNN's first two blocks, EfficientNet's stride-4 and stride-8 stages;
    feature vectors have no spatial style statistics and are left alone."""
    for layer in featurizer.style_layers():
        layer.register_forward_hook(_unistyle_hook)


@DG.register("sagnet")
class SagNet(Algorithm):
    """Style-Agnostic Networks (Nam et al., CVPR 2021), DomainBed's form (randomization on the
    featurizer's output).

    Three steps per update: the featurizer and content head learn the labels from features whose
    style is randomized; a style head learns the labels from features whose content is
    randomized; then the featurizer alone minimizes ``sag_w_adv`` times the cross-entropy of
    the style head's prediction to the uniform distribution, so style alone cannot predict the
    class. The featurizer's Adam state is shared by its two steps, as in DomainBed.
    """

    paper = "Nam et al., Reducing Domain Gap by Reducing Style Bias (CVPR 2021)"
    feature_level = "its adversarial step trains the featurizer against the style-biased network"
    hparams = (
        HParam(
            "sag_w_adv",
            0.1,
            grid=(0.01, 0.1, 1.0),
            help="adversarial style weight",
            draw=lambda r: float(10 ** r.uniform(-2, 1)),
        ),
    )

    def _build(self) -> None:
        self.style_classifier = networks.classifier(
            self.featurizer.n_outputs, self.n_classes, self.params["nonlinear_classifier"]
        )
        self.style_optimizer = self._optimizer(self.style_classifier.parameters())

    def update(self, minibatches: Minibatches) -> StepLogs:
        x, y = concat(minibatches)
        content_loss = F.cross_entropy(
            self.classifier(style_randomize(self.featurizer(x), self.generator)), y
        )
        self._step(content_loss)

        style_params = list(self.style_classifier.parameters())
        style_loss = F.cross_entropy(
            self.style_classifier(content_randomize(self.featurizer(x), self.generator)), y
        )
        self.style_optimizer.zero_grad()
        style_loss.backward(inputs=style_params)
        self.style_optimizer.step()

        style_logits = self.style_classifier(content_randomize(self.featurizer(x), self.generator))
        adv_loss = -self.params["sag_w_adv"] * F.log_softmax(style_logits, dim=1).mean()
        self.optimizer.zero_grad()  # the content head has no gradient now, so Adam skips it
        adv_loss.backward(inputs=list(self.featurizer.parameters()))
        self.optimizer.step()
        losses = {"loss": content_loss, "style_loss": style_loss, "adv_loss": adv_loss}
        return {key: value.detach() for key, value in losses.items()}
