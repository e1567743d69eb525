"""Extract an image dataset's features once, through the cache, and save them for DG, TTA and few-shot.

:func:`save_features` writes the ``.npz`` that ``npz-domains:FILE`` (:mod:`unseen.data.domains`)
and ``features:FILE`` (:mod:`unseen.data.paired`) read:

==============  ===================  ==================================================
key             dtype, shape         meaning
==============  ===================  ==================================================
features        float32 (n, d)       one embedding per image, in dataset order
labels          int64 (n,)           class ids into ``class_names``
domains         int64 (n,)           domain ids into ``domain_names``
class_names     str (C,)
domain_names    str (D,)
meta            str ()               JSON: encoder, options, weights hash, preprocessing, dataset
==============  ===================  ==================================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from unseen import __version__
from unseen.backbones.base import ImageEncoder, ProgressFn, encoder_identity
from unseen.backbones.cache import FeatureCache, feature_key, npz_bytes
from unseen.core.errors import EncoderError
from unseen.core.io import atomic_write_bytes
from unseen.data.images import ImageDataset


def extraction_meta(encoder: ImageEncoder, dataset: ImageDataset) -> dict[str, Any]:
    """Where features come from: encoder, options, weights, preprocessing, dataset and unseen version."""
    return {
        **encoder_identity(encoder),
        "preprocessing": encoder.preprocessing.as_dict(),
        "dim": encoder.dim,
        "dataset": {
            "name": dataset.name,
            "spec": dataset.spec,
            "hash": dataset.hash,
            "images_hash": dataset.images_hash,
            "images": len(dataset),
        },
        "unseen_version": __version__,
    }


def extract_features(
    encoder: ImageEncoder,
    dataset: ImageDataset,
    cache: FeatureCache | None = None,
    batch_size: int = 8,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(n, dim)`` float32 features of ``dataset``'s images and their :func:`extraction_meta`.

    With a ``cache``, features already extracted with the same encoder, weights, preprocessing
    and images are read back instead of recomputed (``cache.hits`` tells which happened).
    """
    key = feature_key(encoder, dataset.images_hash) if cache is not None else None
    features = cache.get(key) if cache is not None else None
    if features is None:
        features = np.asarray(encoder.encode_images(dataset.images(), batch_size, progress), dtype=np.float32)
        if features.shape != (len(dataset), encoder.dim) or not np.isfinite(features).all():
            raise EncoderError(
                f"encoder '{encoder.id}' returned {features.shape} features (finite: "
                f"{bool(np.isfinite(features).all())}) for {len(dataset)} images; expected "
                f"({len(dataset)}, {encoder.dim}) finite values."
            )
        if cache is not None:
            cache.put(key, features)
    return features, extraction_meta(encoder, dataset)


def save_features(
    path: str | os.PathLike, features: np.ndarray, dataset: ImageDataset, meta: dict[str, Any]
) -> Path:
    """Write ``features`` with ``dataset``'s labels, domains and names, and ``meta``, atomically."""
    data = npz_bytes(
        features=np.ascontiguousarray(features, dtype=np.float32),
        labels=dataset.labels.astype(np.int64),
        domains=dataset.domains.astype(np.int64),
        class_names=np.array(dataset.class_names, dtype=str),
        domain_names=np.array(dataset.domain_names, dtype=str),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    return atomic_write_bytes(path, data)
