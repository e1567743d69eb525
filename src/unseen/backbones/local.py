"""Optional encoders loaded only from local weights: open_clip, timm and Hugging Face models.

Every encoder here needs ``weights=PATH``; nothing is downloaded, and calling one without it
raises :class:`~unseen.core.errors.EncoderError`. Their other keyword arguments (``model``,
``max_length``) are encoder options (``--encoder-option KEY=VALUE`` on the command line), part of
the feature cache's key. Images go through the library's own evaluation transform and
``preprocessing`` records what that transform does (for the feature cache).

- ``open-clip-image`` / ``open-clip-text``: ``open_clip.create_model_and_transforms(model,
  pretrained=FILE)``; the two views share one loaded model (CLIP's joint space).
- ``timm``: ``timm.create_model(model, pretrained=True, num_classes=0,
  pretrained_cfg_overlay=dict(file=FILE))``, the pooled features.
- ``hf-image``: ``AutoModel`` + ``AutoImageProcessor`` from a folder; CLIP-style models give
  ``get_image_features``, others their pooled output.
- ``hf-text``: ``AutoModel`` + ``AutoTokenizer`` from a folder; CLIP-style models give
  ``get_text_features``, plain encoders mean-pooled unit-norm sentence embeddings; ``max_length``
  caps the word pieces per text.

open_clip and timm need torchvision, which is not a dependency of unseen: install them with the
extras ``pip install 'unseen[open_clip]'`` / ``'unseen[timm]'``. Hugging Face models only need
``transformers`` and are loaded with ``local_files_only=True``.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image

from unseen.backbones.base import (
    ENCODERS,
    ImageEncoder,
    ProgressFn,
    TextEncoder,
    file_sha256,
)
from unseen.backbones.minilm import (
    SentenceEncoder,
    check_model_folder,
    folder_weights_hash,
    load_hf,
    read_json,
)
from unseen.core.errors import EncoderError
from unseen.core.images import ImagePreprocessing, to_rgb

PIL_RESAMPLING = {int(m): m.name.lower() for m in Image.Resampling}


def local_weights(encoder: str, weights: str | None, what: str) -> Path:
    """``weights`` as an existing local path, or :class:`EncoderError` saying why it must be one."""
    if weights is None:
        raise EncoderError(
            f"encoder '{encoder}' loads weights from a local path only: pass weights=PATH (--weights) "
            f"to {what}. unseen never downloads weights; fetch them once with the library's own tools."
        )
    path = Path(weights).expanduser()
    if not path.exists():
        raise EncoderError(f"encoder '{encoder}': weights {path} do not exist; pass the path of {what}.")
    return path


def require(encoder: str, module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`EncoderError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise EncoderError(
            f"encoder '{encoder}' needs the package '{module}', which cannot be imported ('{exc.name}' "
            f"is missing); install it with `pip install 'unseen[{extra}]'` (it brings torchvision, "
            "which must match your torch build)."
        ) from None


def require_model(encoder: str, model: str | None, weights: Path, example: str) -> str:
    if not model:
        raise EncoderError(
            f"encoder '{encoder}' needs model=ARCH, the architecture the checkpoint {weights} belongs "
            f"to (e.g. '{example}')."
        )
    return model


def path_hash(path: Path) -> str:
    """SHA-256 of a weights file, or of a model folder's weight files."""
    return file_sha256(path) if path.is_file() else folder_weights_hash(path)


def load_failed(encoder: str, weights: Path, exc: Exception) -> EncoderError:
    return EncoderError(
        f"encoder '{encoder}' could not load {weights} ({type(exc).__name__}: {exc}). Check that the "
        "weights match the architecture and were saved by the same library."
    )


def _square(size: Any) -> int:
    """An image side from an int, a ``(h, w)`` pair or a Hugging Face size dict (or ``SizeDict``)."""
    if isinstance(size, (tuple, list)):
        return int(size[-1])
    if hasattr(size, "get"):
        return int(size.get("shortest_edge") or size.get("height"))
    return int(size)


class LocalImageEncoder(ImageEncoder):
    """Images -> features with a library's transform (``prepare``) and network (``forward``)."""

    def __init__(
        self,
        id: str,
        weights: Path,
        preprocessing: ImagePreprocessing,
        prepare: Callable[[list[Image.Image]], torch.Tensor],
        forward: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
    ) -> None:
        self.id = id
        self.weights = weights
        self.preprocessing = preprocessing
        self._prepare = prepare
        self._forward = forward
        self.device = device
        blank = Image.new("RGB", (preprocessing.crop, preprocessing.crop))
        self.dim = int(self._embed([blank]).shape[1])

    def weights_hash(self) -> str:
        return path_hash(self.weights)

    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        with torch.inference_mode():
            return self._forward(self._prepare(images).to(self.device)).float().cpu().numpy()

    def encode_images(
        self, images: Sequence[Any], batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        if batch_size < 1:
            raise EncoderError(f"batch_size must be at least 1, got {batch_size}.")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            stop = min(start + batch_size, len(images))
            out[start:stop] = self._embed([to_rgb(images[i]) for i in range(start, stop)])
            if progress is not None:
                progress(stop, len(images), f"{self.id}: images")
        return out


class LocalTextEncoder(TextEncoder):
    """Texts -> features with a library's tokenizer (``tokenize``) and text tower (``forward``)."""

    def __init__(
        self,
        id: str,
        weights: Path,
        tokenize: Callable[[list[str]], Any],
        forward: Callable[[Any], torch.Tensor],
        device: torch.device,
    ) -> None:
        self.id = id
        self.weights = weights
        self._tokenize = tokenize
        self._forward = forward
        self.device = device
        self.dim = int(self._embed(["a"]).shape[1])

    def weights_hash(self) -> str:
        return path_hash(self.weights)

    def _embed(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return self._forward(self._tokenize(texts).to(self.device)).float().cpu().numpy()

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if batch_size < 1:
            raise EncoderError(f"batch_size must be at least 1, got {batch_size}.")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            out[start : start + len(batch)] = self._embed(batch)
        return out


def _device(device: str | None) -> torch.device:
    from unseen.core.device import resolve_device  # lazy: methods import backbones

    return resolve_device(device)


def _stack(transform: Callable[[Image.Image], torch.Tensor]) -> Callable[[list[Image.Image]], torch.Tensor]:
    return lambda images: torch.stack([transform(image) for image in images])


# -- open_clip -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _open_clip(model: str, weights: str, device: torch.device) -> tuple[Any, Any, Any]:
    """(model, eval transform, tokenizer), loaded once for both views."""
    import open_clip

    try:
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=weights, device=device)
        tokenizer = open_clip.get_tokenizer(model)
    except Exception as exc:  # open_clip raises many types for a wrong or damaged checkpoint
        raise load_failed("open-clip", Path(weights), exc) from None
    return net.eval(), preprocess, tokenizer


def _open_clip_weights(name: str, weights: str | None, model: str | None) -> tuple[Path, str]:
    path = local_weights(name, weights, "an open_clip checkpoint file (.pt, .bin or .safetensors)")
    model = require_model(name, model, path, "ViT-B-32")
    require(name, "open_clip", "open_clip")
    return path, model


@ENCODERS.register("open-clip-image", help="open_clip image tower from a local checkpoint (model=ARCH)")
def open_clip_image(
    weights: str | None = None, device: str | None = None, model: str | None = None
) -> LocalImageEncoder:
    path, model = _open_clip_weights("open-clip-image", weights, model)
    dev = _device(device)
    net, preprocess, _ = _open_clip(model, str(path), dev)
    cfg = net.visual.preprocess_cfg  # open_clip >= 2.23 records its eval transform here
    side = _square(cfg["size"])
    preprocessing = ImagePreprocessing(
        resize=side,
        crop=side,
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg.get("interpolation", "bicubic"),
    )
    return LocalImageEncoder(
        f"open-clip:{model}", path, preprocessing, _stack(preprocess), net.encode_image, dev
    )


@ENCODERS.register("open-clip-text", help="open_clip text tower from a local checkpoint (model=ARCH)")
def open_clip_text(
    weights: str | None = None, device: str | None = None, model: str | None = None
) -> LocalTextEncoder:
    path, model = _open_clip_weights("open-clip-text", weights, model)
    dev = _device(device)
    net, _, tokenizer = _open_clip(model, str(path), dev)
    return LocalTextEncoder(f"open-clip:{model}", path, tokenizer, net.encode_text, dev)


# -- timm ----------------------------------------------------------------------------------------
@ENCODERS.register("timm", help="timm image model from a local checkpoint (model=ARCH); pooled features")
def timm_image(
    weights: str | None = None, device: str | None = None, model: str | None = None
) -> LocalImageEncoder:
    path = local_weights("timm", weights, "a timm checkpoint file (.pth, .bin or .safetensors)")
    model = require_model("timm", model, path, "resnet50")
    timm = require("timm", "timm", "timm")
    try:
        net = timm.create_model(
            model, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), num_classes=0
        )
    except Exception as exc:  # timm raises many types for a wrong or damaged checkpoint
        raise load_failed("timm", path, exc) from None
    cfg = timm.data.resolve_model_data_config(net)
    side = int(cfg["input_size"][-1])
    preprocessing = ImagePreprocessing(
        resize=math.floor(side / cfg["crop_pct"]),  # timm's eval transform: resize, then centre-crop
        crop=side,
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg["interpolation"],
    )
    transform = timm.data.create_transform(**cfg, is_training=False)
    dev = _device(device)
    return LocalImageEncoder(f"timm:{model}", path, preprocessing, _stack(transform), net.to(dev).eval(), dev)


# -- Hugging Face --------------------------------------------------------------------------------
def _hf_folder(encoder: str, weights: str | None) -> Path:
    path = local_weights(encoder, weights, "a Hugging Face model folder (what `save_pretrained` writes)")
    return check_model_folder(path, "pass the folder that `save_pretrained` wrote")


def _features(out: Any) -> torch.Tensor:
    # transformers < 5 returns the projected features, >= 5 a model output holding them as pooler_output
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@ENCODERS.register("hf-image", help="Hugging Face vision model from a local folder (CLIP, ViT, ...)")
def hf_image(weights: str | None = None, device: str | None = None) -> LocalImageEncoder:
    folder = _hf_folder("hf-image", weights)
    processor = load_hf(folder, "AutoImageProcessor")
    dev = _device(device)
    net = load_hf(folder, "AutoModel").to(dev).eval()

    def forward(pixels: torch.Tensor) -> torch.Tensor:
        if hasattr(net, "get_image_features"):
            return _features(net.get_image_features(pixel_values=pixels))
        out = net(pixel_values=pixels)
        pooled = getattr(out, "pooler_output", None)  # CNNs: global average; ViTs: their CLS head
        return (pooled if pooled is not None else out.last_hidden_state.mean(dim=1)).flatten(1)

    def prepare(images: list[Image.Image]) -> torch.Tensor:
        return processor(images=images, return_tensors="pt")["pixel_values"]

    crop = processor.crop_size if getattr(processor, "do_center_crop", False) else processor.size
    preprocessing = ImagePreprocessing(
        resize=_square(processor.size),
        crop=_square(crop),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
        interpolation=PIL_RESAMPLING.get(int(getattr(processor, "resample", 2)), "bilinear"),
    )
    return LocalImageEncoder(f"hf-image:{folder.name}", folder, preprocessing, prepare, forward, dev)


@ENCODERS.register(
    "hf-text", help="Hugging Face text model from a local folder (CLIP text or sentence encoder)"
)
def hf_text(
    weights: str | None = None, device: str | None = None, max_length: int | None = None
) -> TextEncoder:
    """A text encoder from a Hugging Face folder.

    ``max_length`` caps the word pieces kept per text (default: the folder's
    ``sentence_bert_config.json`` ``max_seq_length``, else the tokenizer's limit).
    """
    folder = _hf_folder("hf-text", weights)
    if max_length is not None and max_length < 1:
        raise EncoderError(f"encoder 'hf-text': max_length must be at least 1, got {max_length}.")
    config = read_json(folder / "config.json")
    if "text_config" not in config:  # a plain text encoder: the sentence-transformers recipe
        return SentenceEncoder(folder, id=f"hf-text:{folder.name}", device=device, max_length=max_length)
    tokenizer = load_hf(folder, "AutoTokenizer")
    dev = _device(device)
    net = load_hf(folder, "AutoModel").to(dev).eval()
    # SigLIP was trained on texts padded to the full length; CLIP-style models pad to the batch.
    padding = "max_length" if config.get("model_type", "").startswith("siglip") else True

    def tokenize(texts: list[str]) -> Any:
        return tokenizer(texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt")

    def forward(tokens: Any) -> torch.Tensor:
        return _features(
            net.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask"))
        )

    return LocalTextEncoder(f"hf-text:{folder.name}", folder, tokenize, forward, dev)
