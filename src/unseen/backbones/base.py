"""The encoder contract: image and text encoders that turn inputs into embeddings.

An encoder carries what a feature cache must key on: a stable ``id`` (backend and model name), the
constructor ``options`` it was created with, a hash of its weights, and its preprocessing (for
images) - so features extracted with different weights, options or resize never mix. Encoders are
looked up by name in :data:`ENCODERS`; each backend module registers its own. Nothing here
downloads: weights come from an installed package or a local path, and a missing file raises
:class:`~unseen.core.errors.EncoderError` naming it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from unseen.core.errors import UnknownNameError
from unseen.core.images import ImagePreprocessing
from unseen.core.registry import Registry

COMMON_ARGUMENTS = ("weights", "device")
"""Keyword arguments every encoder factory takes. Neither is an identity option: weights count
through their hash, and the device does not change what an encoder computes."""

_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, what)``, the callback the CLI's progress bar provides."""


class ImageEncoder(ABC):
    """Images (PIL images, RGB) -> ``(n, dim)`` float32 embeddings."""

    kind: ClassVar[str] = "image"
    id: str
    dim: int
    preprocessing: ImagePreprocessing
    options: Mapping[str, Any] = _NO_OPTIONS
    """The non-default factory options it was created with (set by :meth:`EncoderRegistry.create`)."""

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
    options: Mapping[str, Any] = _NO_OPTIONS
    """The non-default factory options it was created with (set by :meth:`EncoderRegistry.create`)."""

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


def encoder_identity(encoder: ImageEncoder | TextEncoder) -> dict[str, Any]:
    """What an encoder's outputs depend on besides its input: id, options (when any), weights hash.

    ``options`` is left out when empty, so keys written before encoders had options stay valid.
    """
    options = {"options": dict(encoder.options)} if encoder.options else {}
    return {"encoder": encoder.id, **options, "weights_sha256": encoder.weights_hash()}


def unknown_option_error(encoder: str, option: str, accepted: Iterable[str]) -> UnknownNameError:
    """The error for ``option``, which encoder ``encoder``'s factory does not take."""
    names = sorted(set(accepted) - set(COMMON_ARGUMENTS))
    close = difflib.get_close_matches(option, names, n=2)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    if not names:
        return UnknownNameError(
            f"encoder '{encoder}' has no option '{option}'; it takes no options besides "
            f"{' and '.join(COMMON_ARGUMENTS)}. Drop '{option}'."
        )
    example = (close or names)[0]
    return UnknownNameError(
        f"encoder '{encoder}' has no option '{option}'.{hint} It accepts: {', '.join(names)} (besides "
        f"{' and '.join(COMMON_ARGUMENTS)}). Give one of those, e.g. --encoder-option {example}=VALUE "
        f"on the command line or {example}=... in Python."
    )


EncoderFactory = Callable[..., ImageEncoder | TextEncoder]


class EncoderRegistry(Registry[EncoderFactory]):
    """Encoder name -> factory, with a one-line help each.

    A factory takes keyword arguments ``weights`` (a local path or ``None`` for the weights the
    backend ships) and ``device``; its other keyword parameters are the encoder's options.
    """

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword parameters of encoder ``name``'s factory, ``weights`` and ``device`` included.

        Annotations are resolved to types, so callers can convert option text to what is expected.
        """
        signature = inspect.signature(self[name], eval_str=True)
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: p for p in signature.parameters.values() if p.kind in keyword}

    def create(self, name: str, **options: Any) -> ImageEncoder | TextEncoder:
        """Encoder ``name`` built with ``options``; the non-default ones become its ``options``."""
        parameters = self.parameters(name)
        for option in options:
            if option not in parameters:
                raise unknown_option_error(name, option, parameters)
        encoder = self[name](**options)
        encoder.options = MappingProxyType(
            {
                key: value
                for key, value in sorted(options.items())
                if key not in COMMON_ARGUMENTS and value != parameters[key].default
            }
        )
        return encoder


# Importing a backend module registers its encoders (optional libraries load lazily inside).
ENCODERS = EncoderRegistry(
    "encoder", "unseen.backbones.efficientnet_lite", "unseen.backbones.local", "unseen.backbones.minilm"
)
