"""Crafted distribution shifts: a bank of strong image augmentations, grouped by category.

Efthymiadis, Tolias & Chum, *Crafting Distribution Shifts for Validation and Training in Single
Source Domain Generalization* (WACV 2025) validate on copies of the validation set transformed by
ten categories of ``imgaug`` augmentations (arithmetic, artistic, blur, color, contrast,
convolutional, edges, geometric, segmentation, weather): each image of a category's copy gets one
augmentation drawn from that category's list, with parameters drawn from the authors' ranges, once.
The validation score is the mean accuracy over the categories' copies.

Here the bank runs on batches of ``(n, C, H, W)`` tensors in [0, 1] with torch alone (no
``imgaug``), on eight of the ten categories, with the authors' parameter ranges converted from
0-255 to [0, 1] and sizes in pixels scaled by ``min(H, W) / 227`` (the authors augment images
resized to 227 pixels). What differs from ``imgaug``:

- ``artistic`` (a cartoon filter) and ``weather`` (snow, rain, clouds, fog) are not built;
- per-channel options are per channel only where noted below (invert, gamma, sigmoid, log and
  linear contrast); the others act on all channels alike;
- ``edges`` is a Sobel edge map of the blurred greyscale image thresholded at its mean plus one
  standard deviation (Canny's non-maximum suppression and hysteresis are left out), white on
  black, blended with weight U(0.8, 1);
- ``segmentation`` replaces each cell of a regular grid (10-20 rows and columns, at most half
  the image size) by its mean colour, standing in for superpixels and Voronoi cells;
- colour operations that need three channels (hue, saturation, greyscale) are left out of the
  ``color`` list for other images; CLAHE, JPEG compression, median, bilateral and mean-shift
  blur, piecewise-affine, perspective, elastic, polar and jigsaw warps are not built.

Every random draw comes from one CPU ``torch.Generator``, so a seeded bank gives the same images
on any device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from unseen.core.registry import Registry
from unseen.data.augmentation import adjust_hue, adjust_saturation, greyscale

REFERENCE_SIZE = 227
"""The image size (shorter side) the authors apply their augmentations at."""


class Draws:
    """Per-image random draws for ``n`` images from a CPU ``generator``, placed on ``device``."""

    def __init__(self, n: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.generator, self.device = n, generator, device

    def uniform(self, low: float, high: float, *shape: int) -> torch.Tensor:
        shape = shape or (self.n,)
        return (low + (high - low) * torch.rand(shape, generator=self.generator)).to(self.device)

    def either(self, low: tuple[float, float], high: tuple[float, float], *shape: int) -> torch.Tensor:
        """Uniform in ``low`` or in ``high``, each with probability 1/2 (the authors'
        ``random.choice`` between a weakening and a strengthening range)."""
        pick = self.uniform(0, 1, *shape) < 0.5
        return torch.where(pick, self.uniform(*low, *shape), self.uniform(*high, *shape))

    def sign(self) -> torch.Tensor:
        return torch.where(self.uniform(0, 1) < 0.5, -1.0, 1.0)

    def integers(self, low: int, high: int) -> torch.Tensor:
        """Integers in ``[low, high]`` on the CPU."""
        return torch.randint(low, high + 1, (self.n,), generator=self.generator)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator).to(self.device)


Op = Callable[[torch.Tensor, Draws], torch.Tensor]


def _view(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * 3)) if values.dim() == 1 else values[:, :, None, None]


def _px(x: torch.Tensor, size: float) -> float:
    """``size`` pixels at the authors' 227-pixel scale, in pixels of ``x``."""
    return size * min(x.shape[-2:]) / REFERENCE_SIZE


def per_image_conv(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image's channels convolved with its own ``(kh, kw)`` kernel (``kernels``:
    ``(n, kh, kw)``, odd sides), borders replicated."""
    n, c, h, w = x.shape
    kh, kw = kernels.shape[-2:]
    padded = F.pad(x.reshape(1, n * c, h, w), (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    weight = kernels.to(x).repeat_interleave(c, dim=0)[:, None]
    return F.conv2d(padded, weight, groups=n * c).view(n, c, h, w)


def separable_conv(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image filtered along rows and then columns with its own 1-D kernel (``(n, k)``)."""
    return per_image_conv(per_image_conv(x, kernels[:, None, :]), kernels[:, :, None])


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """``(n, size)`` normalised 1-D Gaussian kernels of standard deviations ``sigma`` (pixels)."""
    r = torch.arange(size, dtype=torch.float32, device=sigma.device) - size // 2
    one = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None] ** 2))
    return one / one.sum(1, keepdim=True)


def _odd(size: float, x: torch.Tensor) -> int:
    """An odd kernel size near ``size``, at least 1 and below twice the image size."""
    limit = 2 * min(x.shape[-2:]) - 1
    return min(limit, 2 * int(size // 2) + 1)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    sigma = sigma.clamp(min=1e-3)
    return separable_conv(x, gaussian_kernels(sigma, _odd(float(6 * sigma.max()) + 1, x)))


def _blend_kernels(d: Draws, effect: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``(1 - alpha) identity + alpha effect`` per image (imgaug's ``alpha`` of a convolution)."""
    identity = torch.zeros(3, 3, device=effect.device)
    identity[1, 1] = 1
    a = alpha.view(-1, 1, 1)
    return (1 - a) * identity + a * effect


# arithmetic
def add(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return (x + _view(d.sign() * d.uniform(50, 200) / 255)).clamp(0, 1)


def multiply(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return (x * _view(d.uniform(2, 4))).clamp(0, 1)


def gaussian_noise(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return (x + _view(d.uniform(50, 150) / 255) * d.normal(*x.shape)).clamp(0, 1)


def salt_and_pepper(x: torch.Tensor, d: Draws) -> torch.Tensor:
    n, _, h, w = x.shape
    hit = d.uniform(0, 1, n, 1, h, w) < 0.5
    salt = (d.uniform(0, 1, n, 1, h, w) < 0.5).to(x.dtype)
    return torch.where(hit, salt.expand_as(x), x)


def invert(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Each channel inverted with probability 1/2 (per channel)."""
    flip = _view(d.uniform(0, 1, x.shape[0], x.shape[1]) < 0.5)
    return torch.where(flip, 1 - x, x)


def solarize(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """With probability 1/2, every value above a threshold U(32, 128)/255 inverted."""
    act = _view(d.uniform(0, 1) < 0.5)
    above = x >= _view(d.uniform(32, 128) / 255)
    return torch.where(act & above, 1 - x, x)


def cutout(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """5-10 squares of side 0.2 x the shorter image side set to 0."""
    n, _, h, w = x.shape
    side = max(1, round(0.2 * min(h, w)))
    count = d.integers(5, 10).to(x.device)
    top = (d.uniform(0, 1, n, 10) * (h - side + 1)).floor()
    left = (d.uniform(0, 1, n, 10) * (w - side + 1)).floor()
    rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
    inside = (
        (rows >= top[..., None, None])
        & (rows < top[..., None, None] + side)
        & (cols >= left[..., None, None])
        & (cols < left[..., None, None] + side)
    )
    used = torch.arange(10, device=x.device)[None] < count[:, None]
    hole = (inside & used[..., None, None]).any(1, keepdim=True)
    return x.masked_fill(hole, 0.0)


def pixel_dropout(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """A fraction U(0.2, 0.5) of the pixels set to 0."""
    n, _, h, w = x.shape
    return x.masked_fill(d.uniform(0, 1, n, 1, h, w) < _view(d.uniform(0.2, 0.5)), 0.0)


# blur
def gaussian_blur(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return _gaussian_blur(x, d.uniform(5, 7) * _px(x, 1))


def average_blur(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """A box filter of odd side drawn from 9-15 pixels at the 227-pixel scale."""
    sides = (d.integers(9, 15).float() * _px(x, 1)).round().clamp(min=1)
    k = _odd(float(sides.max()), x)
    inside = ((torch.arange(k) - k // 2).abs()[None] <= sides[:, None] // 2).float()
    return separable_conv(x, (inside / inside.sum(1, keepdim=True)).to(x.device))


def motion_blur(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """The mean along a line of 15 pixels (227-pixel scale) through each pixel, at a random angle."""
    k = _odd(max(3.0, _px(x, 15)), x)
    angle = d.uniform(0, math.pi)
    r = (torch.arange(k, device=x.device) - k // 2).float()
    yy, xx = r.view(1, k, 1), r.view(1, 1, k)
    distance = (xx * torch.sin(angle).view(-1, 1, 1) - yy * torch.cos(angle).view(-1, 1, 1)).abs()
    kernels = (distance <= 0.5).float()
    return per_image_conv(x, kernels / kernels.sum((1, 2), keepdim=True))


# color
def brightness_multiply(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return (x * _view(d.either((0.1, 0.3), (1.8, 2.0)))).clamp(0, 1)


def hue_shift(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """The hue rotated by U(50, 179) of OpenCV's 180 hue steps."""
    return adjust_hue(x, d.uniform(50, 179) / 180)


def saturation_multiply(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return adjust_saturation(x, d.either((0.1, 0.3), (1.8, 2.0)))


def remove_saturation(x: torch.Tensor, d: Draws) -> torch.Tensor:
    return greyscale(x).expand_as(x).clone()


def quantize(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Each channel quantized to 4 levels (bin centres)."""
    return ((x * 4).floor().clamp(max=3) + 0.5) / 4


# contrast
def gamma_contrast(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Per channel ``x ** gamma``, gamma in U(0.1, 0.3) or U(1.8, 2.0)."""
    return x.clamp(min=0) ** _view(d.either((0.1, 0.3), (1.8, 2.0), x.shape[0], x.shape[1]))


def sigmoid_contrast(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Per channel ``1 / (1 + exp(gain (cutoff - x)))``, gain U(10, 25), cutoff U(0.4, 0.6)."""
    n, c = x.shape[:2]
    gain, cutoff = _view(d.uniform(10, 25, n, c)), _view(d.uniform(0.4, 0.6, n, c))
    return torch.sigmoid(gain * (x - cutoff))


def log_contrast(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Per channel ``gain log2(1 + x)``, gain in U(0.1, 0.3) or U(1.8, 2.0)."""
    gain = _view(d.either((0.1, 0.3), (1.8, 2.0), x.shape[0], x.shape[1]))
    return (gain * torch.log2(1 + x)).clamp(0, 1)


def linear_contrast(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Per channel ``0.5 + alpha (x - 0.5)``, alpha in U(0.1, 0.3) or U(1.8, 2.0)."""
    alpha = _view(d.either((0.1, 0.3), (1.8, 2.0), x.shape[0], x.shape[1]))
    return (0.5 + alpha * (x - 0.5)).clamp(0, 1)


# convolutional (imgaug's 3x3 matrices)
LAPLACIAN = ((0.0, -1.0, 0.0), (-1.0, 4.0, -1.0), (0.0, -1.0, 0.0))


def laplacian(x: torch.Tensor, d: Draws) -> torch.Tensor:
    kernel = torch.tensor(LAPLACIAN, device=x.device).expand(x.shape[0], 3, 3)
    return per_image_conv(x, kernel).clamp(0, 1)


def sharpen(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """``[[-1, -1, -1], [-1, 8 + lightness, -1], [-1, -1, -1]]``, lightness U(0.75, 2), alpha U(0.8, 1)."""
    effect = -torch.ones(x.shape[0], 3, 3, device=x.device)
    effect[:, 1, 1] = 8 + d.uniform(0.75, 2.0)
    return per_image_conv(x, _blend_kernels(d, effect, d.uniform(0.8, 1.0))).clamp(0, 1)


def emboss(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """``[[-1 - s, -s, 0], [-s, 1, s], [0, s, 1 + s]]``, strength s U(0.5, 1.5), alpha U(0.8, 1)."""
    s = d.uniform(0.5, 1.5).view(-1, 1, 1)
    base = torch.tensor(((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), device=x.device)
    slope = torch.tensor(((-1.0, -1.0, 0.0), (-1.0, 0.0, 1.0), (0.0, 1.0, 1.0)), device=x.device)
    return per_image_conv(x, _blend_kernels(d, base + s * slope, d.uniform(0.8, 1.0))).clamp(0, 1)


def edge_detect(x: torch.Tensor, d: Draws) -> torch.Tensor:
    effect = torch.tensor(((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)), device=x.device)
    kernels = _blend_kernels(d, effect.expand(x.shape[0], 3, 3), d.uniform(0.8, 1.0))
    return per_image_conv(x, kernels).clamp(0, 1)


# edges
SOBEL = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def edge_map(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """White Sobel edges (above mean + std of the magnitude) of the blurred greyscale image on
    black, blended with weight U(0.8, 1)."""
    n = x.shape[0]
    grey = _gaussian_blur(
        greyscale(x) if x.shape[1] == 3 else x.mean(1, keepdim=True), _px(x, 2) + x.new_zeros(n)
    )
    sobel = torch.tensor(SOBEL, device=x.device)
    gx = per_image_conv(grey, sobel.expand(n, 3, 3))
    gy = per_image_conv(grey, sobel.t().expand(n, 3, 3))
    magnitude = (gx**2 + gy**2).sqrt()
    flat = magnitude.flatten(1)
    threshold = flat.mean(1) + flat.std(1)
    edges = (magnitude > _view(threshold)).to(x.dtype).expand_as(x)
    alpha = _view(d.uniform(0.8, 1.0))
    return (1 - alpha) * x + alpha * edges


# geometric (constant 0 outside the image, as imgaug's default)
def _warp(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """``x`` resampled where output point ``p`` (normalised coordinates) reads input ``A p + t``;
    ``matrices``: ``(n, 2, 3)``."""
    grid = F.affine_grid(matrices.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _identity(n: int, device: torch.device) -> torch.Tensor:
    return torch.eye(2, 3, device=device).repeat(n, 1, 1)


def scale(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Zoom by a factor per axis in U(0.5, 0.75) or U(1.25, 1.75), about the centre."""
    theta = _identity(x.shape[0], x.device)
    theta[:, 0, 0] = 1 / d.either((0.5, 0.75), (1.25, 1.75))
    theta[:, 1, 1] = 1 / d.either((0.5, 0.75), (1.25, 1.75))
    return _warp(x, theta)


def translate(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Shift by U(-0.4, 0.4) of the width and of the height."""
    theta = _identity(x.shape[0], x.device)
    theta[:, 0, 2] = -2 * d.uniform(-0.4, 0.4)
    theta[:, 1, 2] = -2 * d.uniform(-0.4, 0.4)
    return _warp(x, theta)


def rotate(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Rotation by ±U(15, 45) degrees about the centre (square pixels)."""
    h, w = x.shape[-2:]
    angle = d.sign() * d.uniform(15, 45) * math.pi / 180
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = _identity(x.shape[0], x.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    return _warp(x, theta)


def shear(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Horizontal shear by ±U(15, 25) degrees."""
    h, w = x.shape[-2:]
    theta = _identity(x.shape[0], x.device)
    theta[:, 0, 1] = torch.tan(d.sign() * d.uniform(15, 25) * math.pi / 180) * h / w
    return _warp(x, theta)


# segmentation
def grid_cells(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Each cell of a regular grid of 10-20 rows and 10-20 columns (at most half the image's
    pixels per side, so cells never shrink to single pixels) replaced by its mean colour."""
    h, w = x.shape[-2:]
    rows = d.integers(10, 20).clamp(max=max(1, h // 2))
    cols = d.integers(10, 20).clamp(max=max(1, w // 2))
    out = torch.empty_like(x)
    for r, c in sorted({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)}):
        idx = ((rows == r) & (cols == c)).nonzero()[:, 0].to(x.device)
        cells = F.adaptive_avg_pool2d(x[idx], (r, c))
        out[idx] = F.interpolate(cells, size=(h, w), mode="nearest")
    return out


CATEGORIES: Registry[tuple[Op, ...]] = Registry.of(
    "crafted-shift category",
    {
        "arithmetic": (
            add,
            multiply,
            gaussian_noise,
            salt_and_pepper,
            invert,
            solarize,
            cutout,
            pixel_dropout,
        ),
        "blur": (gaussian_blur, average_blur, motion_blur),
        "color": (brightness_multiply, add, hue_shift, saturation_multiply, remove_saturation, quantize),
        "contrast": (gamma_contrast, sigmoid_contrast, log_contrast, linear_contrast),
        "convolutional": (laplacian, sharpen, emboss, edge_detect),
        "edges": (edge_map,),
        "geometric": (scale, translate, rotate, shear),
        "segmentation": (grid_cells,),
    },
)
"""The categories of the bank, each a tuple of augmentations; one is drawn per image."""

RGB_ONLY = frozenset({hue_shift, saturation_multiply, remove_saturation})
"""Operations that need three colour channels, left out of a category for other images."""


def craft(images: torch.Tensor, category: str, generator: torch.Generator) -> torch.Tensor:
    """``images`` ``(n, C, H, W)`` in [0, 1], each transformed by one augmentation drawn uniformly
    from ``category``'s list with its own parameters; every draw from the CPU ``generator``."""
    ops = [op for op in CATEGORIES[category] if images.shape[1] == 3 or op not in RGB_ONLY]
    choice = torch.randint(len(ops), (len(images),), generator=generator)
    out = images.clone()
    for k, op in enumerate(ops):
        rows = (choice == k).nonzero()[:, 0]
        if len(rows):
            idx = rows.to(images.device)
            out[idx] = op(images[idx], Draws(len(rows), generator, images.device)).to(images.dtype)
    return out
