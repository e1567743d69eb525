"""Hand-crafted, deterministic features for small grey-level images (HOG-like + pooled intensity).

:func:`pixel_features` turns a stack of ``(n, h, w)`` images into ``(n, d)`` float32 vectors:

1. **Gradients.** Central differences of the pixel values (border pixels replicated outwards).
2. **Orientation histograms.** Each pixel votes with its gradient magnitude for the unsigned
   orientation bins (``bins`` bins over 0..180 degrees, centred on 0, 180/bins, ...). The vote is
   split softly between the nearest bins; the split is computed from the doubled-angle vector
   ``(gx^2 - gy^2, 2 gx gy)`` with products and square roots only, so no trigonometric function
   is evaluated per pixel.
3. **Cells.** Votes are summed over a grid of ``cells x cells`` square cells.
4. **Normalisation.** The whole histogram block is L2-normalised, clipped at ``clip`` and
   L2-normalised again (HOG's "L2-Hys").
5. **Intensity map.** The image is average-pooled to ``pool x pool`` and L2-normalised.

The two blocks are concatenated. The result is rounded to a ``2**-16`` grid, so that the last-bit
differences floating-point libraries may show between machines cannot change a dataset hash.
With the defaults on 28 x 28 images the descriptor has ``4*4*8 + 7*7 = 177`` dimensions.

Nothing is learnt: every output row depends on its own image only.
"""

from __future__ import annotations

import math

import numpy as np

from unseen.core.errors import DataError

_QUANTUM = 2.0**-16


def feature_dim(bins: int = 8, cells: int = 4, pool: int = 7) -> int:
    """Length of the vectors :func:`pixel_features` returns for these settings."""
    return cells * cells * bins + pool * pool


def _check_images(images: np.ndarray, cells: int, pool: int) -> np.ndarray:
    imgs = np.asarray(images)
    if imgs.ndim != 3:
        raise DataError(
            f"pixel_features: images must be a 3-D (n, height, width) array, got shape "
            f"{imgs.shape}. Reshape flat rows with images.reshape(n, height, width)."
        )
    if not np.issubdtype(imgs.dtype, np.number) or not np.all(np.isfinite(imgs)):
        raise DataError("pixel_features: images must be finite numbers (grey levels).")
    _, h, w = imgs.shape
    for size, what in ((cells, "cells"), (pool, "pool")):
        if size < 1 or h % size or w % size:
            raise DataError(
                f"pixel_features: image size {h}x{w} is not divisible by {what}={size}; pick a "
                f"{what} value that divides both the height and the width."
            )
    return imgs


def _gradients(imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences ``I[x+1] - I[x-1]`` along width and height (edge pixels replicated).

    Integer images stay integers here (exact); other dtypes are computed in float64.
    """
    if np.issubdtype(imgs.dtype, np.integer):
        x = imgs.astype(np.int32)
    else:
        x = imgs.astype(np.float64)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = xp[:, 1:-1, 2:] - xp[:, 1:-1, :-2]
    gy = xp[:, 2:, 1:-1] - xp[:, :-2, 1:-1]
    return gx, gy


def orientation_histograms(images: np.ndarray, bins: int = 8, cells: int = 4) -> np.ndarray:
    """Magnitude-weighted unsigned orientation histograms per cell: ``(n, cells, cells, bins)``.

    A pixel whose doubled gradient angle lies within one bin width of a bin centre gives that bin
    a weight that falls linearly in the cosine of the angular distance; weights are then divided
    by their sum, so each pixel spreads exactly its gradient magnitude over (at most) two bins.
    Only pixels with a non-zero gradient are visited, and votes are accumulated with
    :func:`numpy.bincount` (a fixed summation order).
    """
    if bins < 2:
        raise DataError(f"pixel_features: bins={bins}; use at least 2 orientation bins.")
    imgs = _check_images(images, cells, 1)
    n, h, w = imgs.shape
    gx, gy = _gradients(imgs)
    r2_all = gx * gx + gy * gy
    where = np.flatnonzero(r2_all)
    gx = gx.ravel()[where].astype(np.float64)
    gy = gy.ravel()[where].astype(np.float64)
    r2 = r2_all.ravel()[where].astype(np.float64)
    mag = np.sqrt(r2)
    c2 = (gx * gx - gy * gy) / r2  # cos(2 theta)
    s2 = (2.0 * gx * gy) / r2  # sin(2 theta)
    # Which cell each visited pixel falls in (flat index over n x cells x cells).
    img, rem = np.divmod(where, h * w)
    row, col = np.divmod(rem, w)
    cell = (img * cells + row // (h // cells)) * cells + col // (w // cells)
    width = 2.0 * math.pi / bins  # bin width in doubled-angle space
    floor = math.cos(width)
    weights = np.empty((bins, len(where)))
    for b in range(bins):
        phi = b * width
        np.maximum(c2 * math.cos(phi) + s2 * math.sin(phi) - floor, 0.0, out=weights[b])
    weights *= mag / weights.sum(axis=0)
    n_cells = n * cells * cells
    hist = np.empty((n_cells, bins))
    for b in range(bins):
        hist[:, b] = np.bincount(cell, weights=weights[b], minlength=n_cells)
    return hist.reshape(n, cells, cells, bins)


def _l2(v: np.ndarray) -> np.ndarray:
    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
    return v / np.where(norm > 0, norm, 1.0)


def pixel_features(
    images: np.ndarray, *, bins: int = 8, cells: int = 4, pool: int = 7, clip: float = 0.2
) -> np.ndarray:
    """HOG-like orientation histograms + pooled intensity for ``(n, h, w)`` images, as float32.

    Parameters
    ----------
    images:
        Grey levels, any numeric dtype (e.g. uint8 0..255); ``h`` and ``w`` must be divisible by
        ``cells`` and ``pool``.
    bins:
        Unsigned orientation bins over 0..180 degrees.
    cells:
        The histogram grid is ``cells x cells``.
    pool:
        The intensity map is average-pooled to ``pool x pool``.
    clip:
        L2-Hys clipping threshold for the normalised histogram block.
    """
    imgs = _check_images(images, cells, pool)
    n = imgs.shape[0]
    hog = orientation_histograms(imgs, bins=bins, cells=cells).reshape(n, -1)
    hog = _l2(np.minimum(_l2(hog), clip))
    x = imgs.astype(np.float64)
    _, h, w = x.shape
    intensity = x.reshape(n, pool, h // pool, pool, w // pool).mean(axis=(2, 4)).reshape(n, -1)
    intensity = _l2(intensity)
    out = np.concatenate([hog, intensity], axis=1)
    return (np.round(out / _QUANTUM) * _QUANTUM).astype(np.float32)
