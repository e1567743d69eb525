"""Images: decoding files safely, and the geometry that turns an image into an encoder's input.

:func:`open_rgb` refuses decompression bombs and decodes huge JPEGs at a reduced scale;
:class:`ImagePreprocessing` travels with an encoder's weights; :func:`crop_and_resize` cuts the
region an encoder sees, so that pixel datasets built for training (DG on images) crop exactly as
feature extraction does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from unseen.core.errors import DataFileNotFound, DataFormatError

DRAFT_SIDE = 4096
"""JPEGs larger than this on both sides are decoded at a reduced scale (JPEG's DCT scaling, to the
smallest scale at least this large): encoders resize to a few hundred pixels, and a 144-megapixel
photo decoded whole takes over a gigabyte."""


def open_rgb(path: str | Path) -> Image.Image:
    """The image file ``path`` decoded as RGB; a missing or undecodable file, or one whose header
    claims more pixels than the decoder's safety limit, is a :class:`DataError`."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataFileNotFound(f"image file {path} does not exist.") from None
    except Image.DecompressionBombError as exc:
        raise DataFormatError(
            f"image file {path} is too large to decode safely ({exc}); shrink or remove it."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(f"image file {path} cannot be decoded ({exc}); replace or remove it.") from None


def to_rgb(image: Any) -> Image.Image:
    """``image`` (a PIL image or a path to one) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    return open_rgb(image)


@dataclass(frozen=True)
class ImagePreprocessing:
    """How an image becomes the encoder's input tensor; it travels with the weights.

    Resize the shorter side to ``resize`` (``interpolation``), centre-crop ``crop`` x ``crop``,
    scale to [0, 1], then normalise each channel with ``mean`` and ``std``.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


EFFICIENTNET_LITE = ImagePreprocessing(
    resize=256,
    crop=224,
    mean=(127 / 255, 127 / 255, 127 / 255),
    std=(128 / 255, 128 / 255, 128 / 255),
    interpolation="bicubic",
)
"""EfficientNet-Lite's evaluation geometry (its ImageNet crop and normalisation)."""

RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def crop_and_resize(image: Image.Image, preprocessing: ImagePreprocessing) -> np.ndarray:
    """``(crop, crop, 3)`` uint8: the centre crop of ``preprocessing``, resampled once from the original.

    The region is the central square that "resize the shorter side to ``resize``, then centre-crop
    ``crop``" keeps; PIL resamples it straight to ``crop`` x ``crop`` (antialiased), which avoids a
    second interpolation and is how the official EfficientNet evaluation crops too.
    """
    width, height = image.size
    side = min(width, height) * preprocessing.crop / preprocessing.resize
    left, top = (width - side) / 2, (height - side) / 2
    size = (preprocessing.crop, preprocessing.crop)
    box = (left, top, left + side, top + side)
    return np.asarray(image.resize(size, RESAMPLING[preprocessing.interpolation], box=box))
