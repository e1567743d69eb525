"""The encoder contract: image and text encoders that turn inputs into embeddings.

An encoder carries what a feature cache must key on: a stable ``id`` (backend and model name), a
hash of its weights, and its preprocessing (for images) - so features extracted with different
weights or a different resize never mix. Encoders are looked up by name in :data:`ENCODERS`;
each backend module registers its own. Nothing here downloads: weights come from an installed
package or a local path, and a missing file raises :class:`~unseen.errors.EncoderError` naming it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from unseen.errors import UnknownNameError

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, what)``, the callback the CLI's progress bar provides."""


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


class ImageEncoder(ABC):
    """Images (PIL images, RGB) -> ``(n, dim)`` float32 embeddings."""

    kind: ClassVar[str] = "image"
    id: str
    dim: int
    preprocessing: ImagePreprocessing

    @abstractmethod
    def weights_hash(self) -> str:
        """A content hash of the weights (hex); changes whenever the weights do."""

    @abstractmethod
    def encode_images(
        self, images: Sequence[Any], batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Embeddings of ``images`` (PIL images or paths), one row each, in order."""


class TextEncoder(ABC):
    """Strings -> ``(n, dim)`` float32 embeddings."""

    kind: ClassVar[str] = "text"
    id: str
    dim: int

    @abstractmethod
    def weights_hash(self) -> str:
        """A content hash of the weights (hex); changes whenever the weights do."""

    @abstractmethod
    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts``, one row each, in order."""


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per (path, size, modification time) in a process."""
    stat = path.stat()
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


EncoderFactory = Callable[..., ImageEncoder | TextEncoder]


class EncoderRegistry:
    """Encoder name -> (factory, one-line help). ``import_backends`` registers them on first use.

    A factory takes keyword arguments ``weights`` (a local path or ``None`` for the weights the
    backend ships) and ``device``.
    """

    def __init__(self, import_backends: Callable[[], None]) -> None:
        self._import_backends = import_backends
        self._entries: dict[str, tuple[EncoderFactory, str]] = {}

    def register(self, name: str, help: str) -> Callable[[EncoderFactory], EncoderFactory]:
        def decorate(factory: EncoderFactory) -> EncoderFactory:
            if name in self._entries:
                raise ValueError(f"encoder '{name}' is registered twice")
            self._entries[name] = (factory, help)
            return factory

        return decorate

    def names(self) -> dict[str, str]:
        self._import_backends()
        return {name: help for name, (_, help) in sorted(self._entries.items())}

    def create(self, name: str, **options: Any) -> ImageEncoder | TextEncoder:
        self._import_backends()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=2)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown encoder '{name}'.{hint} Known: {', '.join(sorted(self._entries))}."
            )
        return self._entries[name][0](**options)


def _import_backends() -> None:
    # Importing a backend module registers its encoders (optional libraries load lazily inside).
    from unseen.backbones import efficientnet_lite, local, minilm  # noqa: F401


ENCODERS = EncoderRegistry(_import_backends)
