"""On-disk cache of extracted features, keyed by everything the features depend on.

The key is (encoder id, its non-default constructor options, SHA-256 of its weights, its
preprocessing, content hash of the images): other weights, another ``model=`` option, another
resize or one edited image give another key, so stale features are never reused; the same options
given in another order give the same key. One ``.npz`` file per key holds the features, the key
itself (JSON) and a SHA-256 of both; a file that is truncated, corrupted or written for another key
is reported with a :class:`CorruptCacheWarning`, deleted and rebuilt, never trusted. Writes are
atomic.

The cache lives in ``~/.cache/unseen/features``; the environment variable ``UNSEEN_CACHE``
moves the whole unseen cache (features then go to ``$UNSEEN_CACHE/features``) and an explicit
``root`` overrides both.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from unseen.backbones.base import ImageEncoder, encoder_identity
from unseen.core.io import atomic_write_bytes

CACHE_ENV = "UNSEEN_CACHE"
KEY_VERSION = 1  # bump when the way features are computed changes without the key noticing


class CorruptCacheWarning(UserWarning):
    """A cache file could not be trusted and is being rebuilt."""


def default_cache_root() -> Path:
    """``$UNSEEN_CACHE/features`` when the variable is set, else ``~/.cache/unseen/features``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "unseen") / "features"


def feature_key(encoder: ImageEncoder, images_hash: str) -> dict[str, Any]:
    """The cache key of ``encoder``'s features of the images whose content hash is ``images_hash``."""
    return {
        "version": KEY_VERSION,
        **encoder_identity(encoder),
        "preprocessing": encoder.preprocessing.as_dict(),
        "images": images_hash,
    }


def _key_text(key: dict[str, Any]) -> str:
    # sort_keys makes option order irrelevant; default=str writes option values such as paths
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)


def _checksum(features: np.ndarray, key_text: str) -> str:
    h = hashlib.sha256()
    h.update(f"{features.dtype.str}{features.shape}".encode())
    h.update(np.ascontiguousarray(features).tobytes())
    h.update(key_text.encode())
    return h.hexdigest()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """``arrays`` serialised as an uncompressed ``.npz`` file."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class FeatureCache:
    """Feature arrays on disk under ``root``, one file per :func:`feature_key`.

    ``hits`` and ``misses`` count the lookups of this instance.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.hits = 0
        self.misses = 0

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(_key_text(key).encode()).hexdigest()[:32]
        return self.root / f"{key.get('encoder', 'features')}-{digest}.npz"

    def get(self, key: dict[str, Any]) -> np.ndarray | None:
        """The cached features of ``key``, or ``None`` (missing, or damaged: then deleted with a warning)."""
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            features = self._read(path, _key_text(key))
        except _Untrusted as reason:
            warnings.warn(
                f"feature cache file {path} cannot be trusted ({reason}); deleting it and extracting again.",
                CorruptCacheWarning,
                stacklevel=2,
            )
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return features

    def put(self, key: dict[str, Any], features: np.ndarray) -> Path:
        """Store ``features`` under ``key`` (atomically) and return the file's path."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        key_text = _key_text(key)
        data = npz_bytes(
            features=features, key=np.array(key_text), checksum=np.array(_checksum(features, key_text))
        )
        return atomic_write_bytes(self.path(key), data)

    @staticmethod
    def _read(path: Path, key_text: str) -> np.ndarray:
        try:
            with np.load(path, allow_pickle=False) as content:
                features, stored_key, checksum = (content[k] for k in ("features", "key", "checksum"))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise _Untrusted(f"unreadable: {type(exc).__name__}: {exc}") from None
        if str(stored_key) != key_text:
            raise _Untrusted("it was written for another key")
        if str(checksum) != _checksum(features, key_text):
            raise _Untrusted("checksum mismatch")
        return features


class _Untrusted(Exception):
    """Why a cache file is not used (internal; turned into a warning)."""
