"""DomainBed's training augmentation for full-size images, on batches of decoded tensors.

Gulrajani & Lopez-Paz, *In Search of Lost Domain Generalization* (ICLR 2021), train every
large-image dataset with, per image: a random resized crop (area 70-100 % of the image, aspect
ratio 3/4-4/3) back to the input size, a horizontal flip with probability 1/2, colour jitter
(brightness, contrast, saturation and hue, each 0.3, applied in a random order) and greyscale
with probability 0.1 - torchvision's ``RandomResizedCrop``, ``RandomHorizontalFlip``,
``ColorJitter`` and ``RandomGrayscale`` with those arguments. Here the same steps run on a
minibatch of ``(n, 3, H, W)`` RGB tensors in [0, 1] (what :mod:`unseen.data.image_domains`
decodes once) instead of on each decoded file: every random draw comes from one CPU
``torch.Generator``, so a seeded run draws the same augmentations on any device, and the pixel
work runs batched on the images' device.

The crop is taken from the decoded (already centre-cropped) image, not from the original file,
and is resampled bilinearly; DomainBed resizes the original with PIL. Colour operations follow
torchvision's definitions: brightness scales the pixels; contrast blends with the mean of the
greyscale image; saturation blends with the greyscale image; hue rotates the HSV hue; greyscale
is ``0.299 R + 0.587 G + 0.114 B`` in all three channels; every step clips to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GREY_WEIGHTS = (0.299, 0.587, 0.114)
CROP_TRIES = 10
"""Candidate crops drawn per image before falling back to the whole image (torchvision's rule)."""


def greyscale(images: torch.Tensor) -> torch.Tensor:
    """``(n, 1, H, W)`` luma of ``(n, 3, H, W)`` RGB images."""
    weights = images.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """``(n, 3, H, W)`` RGB in [0, 1] -> hue, saturation, value, each in [0, 1]."""
    r, g, b = images.unbind(1)
    value = images.amax(1)
    chroma = value - images.amin(1)
    grey = chroma == 0
    divisor = torch.where(grey, 1.0, chroma)
    # hue in sixths of the circle, measured from the largest channel (red first on ties)
    sixths = torch.where(
        value == r, (g - b) / divisor, torch.where(value == g, (b - r) / divisor + 2, (r - g) / divisor + 4)
    )
    hue = torch.where(grey, 0.0, sixths / 6) % 1.0
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, 1.0), 0.0)
    return torch.stack((hue, saturation, value), 1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`: channel ``c`` is ``v - v s clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n_c + 6 h) mod 6`` and ``n = 5, 3, 1`` for red, green, blue (the piecewise-linear hue
    ramps in one expression)."""
    hue, saturation, value = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    k = (images.new_tensor([5.0, 3.0, 1.0]).view(1, 3, 1, 1) + 6 * hue) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value - value * saturation * ramp


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (images * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = greyscale(images).mean((1, 2, 3), keepdim=True)
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * mean).clamp(0, 1)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * greyscale(images)).clamp(0, 1)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` (a fraction of the colour circle, per image)."""
    hsv = rgb_to_hsv(images)
    hue = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack((hue, hsv[:, 1], hsv[:, 2]), 1)).clamp(0, 1)


COLOUR_STEPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
"""ColorJitter's four operations, in its numbering (the order each image applies them is drawn)."""


def crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """``(n, 4)`` integer crop boxes ``(top, left, h, w)``, RandomResizedCrop's sampling per image.

    Up to :data:`CROP_TRIES` candidates per image: area ``U(scale)`` of the image, aspect ratio
    log-uniform in ``ratio``; the first that fits is kept. An image with none gets the
    centre crop of the whole image clamped to ``ratio``.
    """
    device = generator.device
    area = height * width * torch.empty(n, CROP_TRIES, device=device).uniform_(*scale, generator=generator)
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    log_ratio = torch.empty(n, CROP_TRIES, device=device).uniform_(log_low, log_high, generator=generator)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(1)
    w = w.gather(1, first[:, None])[:, 0]
    h = h.gather(1, first[:, None])[:, 0]
    top = torch.floor(torch.rand(n, generator=generator, device=device) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=generator, device=device) * (width - w + 1))
    fallback = _centre_box(height, width, ratio)
    none_fit = ~fits.any(1)
    boxes = torch.stack((top, left, h, w), 1)
    return torch.where(none_fit[:, None], torch.tensor(fallback, dtype=boxes.dtype, device=device), boxes)


def _centre_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[float, float, float, float]:
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Each image's box ``(top, left, h, w)`` resampled bilinearly to the image size, mirrored
    left-right where ``flip`` is true; pixel centres map as in ``resize(align_corners=False)``."""
    n, _, height, width = images.shape
    top, left, h, w = boxes.to(images.device, images.dtype).unbind(1)
    sign = 1 - 2 * flip.to(images.device, images.dtype)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class ImageAugmentation:
    """DomainBed's large-image training augmentation (defaults are its arguments).

    ``augmentation(images, generator)`` returns a new batch; ``images`` is not modified.
    """

    crop_scale: tuple[float, float] = (0.7, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.3
    greyscale_p: float = 0.1

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = images.shape
        boxes = crop_boxes(n, height, width, self.crop_scale, self.crop_ratio, generator)
        flip = torch.rand(n, generator=generator, device=generator.device) < self.flip_p
        out = resized_crops(images, boxes, flip)
        return self.jitter(out, generator)

    def colour_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, 4)`` brightness, contrast and saturation factors and hue shifts."""
        device = generator.device
        spread = torch.tensor([self.brightness, self.contrast, self.saturation, self.hue], device=device)
        low = torch.cat(((1 - spread[:3]).clamp(min=0), -spread[3:]))
        high = torch.cat((1 + spread[:3], spread[3:]))
        return low + (high - low) * torch.rand(n, 4, generator=generator, device=device)

    def jitter(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Colour jitter, each image its own factors and order of the four steps, then greyscale.

        The draws are made on the generator's device; the per-step row selection below reads the
        order on the host (a few small syncs per batch, far below a network step's cost)."""
        n, device = len(images), generator.device
        factors = self.colour_factors(n, generator).to(images.device)
        order = (
            torch.rand(n, len(COLOUR_STEPS), generator=generator, device=device).argsort(1).to(images.device)
        )
        for slot in range(len(COLOUR_STEPS)):
            out = torch.empty_like(images)  # every row is written: each image has one step per slot
            for k, step in enumerate(COLOUR_STEPS):
                rows = (order[:, slot] == k).nonzero()[:, 0]
                if len(rows):
                    out[rows] = step(images[rows], factors[rows, k])
            images = out
        grey = (torch.rand(n, generator=generator, device=device) < self.greyscale_p).to(images.device)
        return torch.where(grey.view(-1, 1, 1, 1), greyscale(images).expand_as(images), images)
