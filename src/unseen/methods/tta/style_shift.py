"""Test-time style shifting: far-off test styles moved to the nearest source domain's style."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.registry import TTA
from unseen.methods.tta.base import SourceModel, TTAMethod

EPS = 1e-6


def channel_styles(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample and channel of ``x`` (n, C, H, W): the mean and standard deviation over the
    spatial positions, ``sqrt(unbiased variance + 1e-6)`` as in MixStyle; each (n, C)."""
    return x.mean(dim=(2, 3)), (x.var(dim=(2, 3)) + EPS).sqrt()


def style_distances(
    mean: torch.Tensor, std: torch.Tensor, proto_mean: torch.Tensor, proto_std: torch.Tensor
) -> torch.Tensor:
    """``||mean_i - proto_mean_d|| + ||std_i - proto_std_d||`` (Euclidean) for every sample i
    (rows of ``mean``, ``std``) and prototype d (rows of ``proto_*``): (n, n_prototypes)."""
    return torch.cdist(mean, proto_mean) + torch.cdist(std, proto_std)


def shift_styles(
    x: torch.Tensor, proto_mean: torch.Tensor, proto_std: torch.Tensor, threshold: float
) -> torch.Tensor:
    """``x`` (n, C, H, W) with the style of each sample whose nearest prototype is farther than
    ``threshold`` replaced by that prototype's: ``(x - mean) / std * proto_std + proto_mean``;
    the other samples unchanged."""
    mean, std = channel_styles(x)
    distance, nearest = style_distances(mean, std, proto_mean, proto_std).min(dim=1)
    shifted = (x - mean[..., None, None]) / std[..., None, None] * proto_std[nearest][..., None, None]
    shifted = shifted + proto_mean[nearest][..., None, None]
    return torch.where((distance > threshold).view(-1, 1, 1, 1), shifted, x)


@torch.no_grad()
def domain_style_prototypes(
    featurizer: nn.Module, layers: Sequence[nn.Module], domains: Sequence[np.ndarray], chunk: int = 256
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer of ``layers`` (modules of ``featurizer``): the source domains' style prototypes,
    each domain's average over its samples of their channel means and of their standard
    deviations at that layer's output, as ``(means, stds)`` of shape (n_domains, C)."""
    styles: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
    hooks = [
        layer.register_forward_hook(lambda m, i, out, k=k: styles[k].append(channel_styles(out)))
        for k, layer in enumerate(layers)
    ]
    device = next(featurizer.parameters()).device
    prototypes: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
    try:
        for inputs in domains:
            for per_layer in styles:
                per_layer.clear()
            for start in range(0, len(inputs), chunk):
                featurizer(
                    torch.as_tensor(np.asarray(inputs[start : start + chunk]), dtype=torch.float32).to(device)
                )
            for k, per_layer in enumerate(styles):
                means, stds = zip(*per_layer, strict=True)
                prototypes[k].append((torch.cat(means).mean(0), torch.cat(stds).mean(0)))
    finally:
        for hook in hooks:
            hook.remove()
    return [(torch.stack([m for m, _ in per]), torch.stack([s for _, s in per])) for per in prototypes]


@TTA.register("style-shift")
class StyleShift(TTAMethod):
    """Shift a test sample's early feature-map style to the nearest source domain's when it is far.

    Park, Han, Kim & Moon, *Test-Time Style Shifting: Handling Arbitrary Styles in Domain
    Generalization* (ICML 2023). A style is the per-channel mean and standard deviation of a
    feature map over its positions. Each source domain's style prototype, at each of the first
    ``layers`` of the featurizer's ``style_layers()`` (the small CNN's first blocks, EfficientNet's
    stride-4 stage: where ResNet's first stages end), is the average style of its training
    samples, computed once from the source model on the training domains' ``in`` parts (the paper
    accumulates them during training; with the final weights they are the styles the trained
    network knows). At test time, per sample and layer: the distance to each prototype is
    ``||mean - mean_d|| + ||std - std_d||``; when the nearest is farther than ``gap_scale`` times
    the largest distance between two source prototypes (the test style lies outside the sources'
    spread; one source domain: always), the sample's map takes the nearest prototype's style
    (AdaIN), its normalized content kept. No weights change and each sample is handled alone, so
    predictions do not depend on the batch or the stream. The paper's optional training-side
    style balancing is not part of this method.
    """

    paper = "Park et al., Test-Time Style Shifting: Handling Arbitrary Styles in DG (ICML 2023)"
    hparams = (
        HParam("layers", 1, grid=(1, 2), help="style layers, from the first, whose styles may be shifted"),
        HParam(
            "gap_scale",
            1.0,
            grid=(0.0, 0.5, 1.0, 2.0),
            help="shift when the nearest prototype is farther than this times the prototypes' spread",
        ),
    )

    def __init__(self, featurizer, classifier, source_domains, seed=0, device=None, **hp) -> None:
        layers = list(getattr(featurizer, "style_layers", lambda: [])())
        if not layers:
            raise HyperparameterError(
                "style-shift shifts feature-map styles (channel means and standard deviations) at the "
                f"featurizer's early convolution layers; this featurizer ({type(featurizer).__name__}) has "
                "none: feature vectors carry no style. Use it on a model of images (the small CNN or "
                "EfficientNet featurizer of `unseen dg`)."
            )
        if not source_domains or any(len(d) == 0 for d in source_domains):
            raise HyperparameterError(
                "style-shift needs the inputs of every source domain to build its prototypes."
            )
        self._set_params(hp, seed, None)
        if self.params["layers"] > len(layers):
            raise HyperparameterError(
                f"style-shift: layers={self.params['layers']}, but the featurizer has {len(layers)} style "
                f"layers; use layers <= {len(layers)}."
            )
        network = copy.deepcopy(featurizer).eval()
        shifted = network.style_layers()[: self.params["layers"]]
        self._prototypes = [
            (mean.cpu(), std.cpu()) for mean, std in domain_style_prototypes(network, shifted, source_domains)
        ]
        super().__init__(featurizer, classifier, seed=seed, device=device, **hp)

    @classmethod
    def from_source(cls, source: SourceModel) -> dict:
        if source.domain_inputs is None:
            raise HyperparameterError(
                "style-shift builds its style prototypes from the source domains' training inputs, "
                "which this source model does not give; use a DG model (`unseen tta --model FILE`)."
            )
        return {"source_domains": source.domain_inputs()}

    def _setup(self) -> None:
        self.thresholds = []
        self.prototypes = [(m.to(self.device), s.to(self.device)) for m, s in self._prototypes]
        layers = self.featurizer.style_layers()[: self.params["layers"]]
        for layer, (mean, std) in zip(layers, self.prototypes, strict=True):
            spread = style_distances(mean, std, mean, std).max().item()
            threshold = self.params["gap_scale"] * spread
            self.thresholds.append(threshold)
            layer.register_forward_hook(lambda m, i, out, p=(mean, std, threshold): shift_styles(out, *p))

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))
