"""Synthetic GZSL benchmarks shaped like the real xlsa17 ones, with planted, learnable structure.

``synthetic:CUB`` has CUB's 150 seen + 50 unseen classes, a 312-d attribute matrix and CUB's
trainval / test_seen / test_unseen sizes, but every number in it is drawn from seeded generators,
so it needs no data files. The generative model (see ``docs/data-builtin.md``):

1. **Attributes** (``(n_classes, k)``, non-negative, sparse like the real matrix, rows L2-normalised):
   a thresholded low-rank Gaussian model.
2. **Class centres**: attributes -> random two-layer network (saturating nonlinearity) -> a
   ``latent``-dimensional centre per class, so class structure follows from the attributes.
3. **Class offsets** not explained by the attributes, and **per-sample noise**, both scaled by
   ``difficulty`` (0: almost perfectly learnable; about 1: hard).
4. **Features**: latent sample -> random linear map to ``dim`` dimensions -> smooth ReLU
   ``(x + sqrt(x^2 + 1)) / 2`` (positive and right-skewed, like pooled CNN features) -> float32,
   rounded to a ``2**-12`` grid so that last-bit differences between BLAS builds cannot change
   the dataset hash.

Every random draw comes from its own seeded :class:`numpy.random.Generator` (keyed by ``seed``,
the benchmark name and the part being drawn), so the same arguments always give identical arrays.
"""

from __future__ import annotations

import math
import numbers
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.core.errors import DataFileNotFound, DataFormatError, SpecError, UnknownNameError
from unseen.data.matfile import cellstr, read_mat
from unseen.data.model import ClassTable, ZSLDataset
from unseen.data.specs import DataSpec, register_scheme


@dataclass(frozen=True)
class BenchmarkShape:
    """The sizes of a real GZSL benchmark (xlsa17 "proposed split"), embedded as constants."""

    name: str
    n_seen: int
    n_unseen: int
    attr_dim: int
    n_train: int
    n_test_seen: int
    n_test_unseen: int
    attr_zero_fraction: float
    feature_dim: int = 2048

    @property
    def n_classes(self) -> int:
        return self.n_seen + self.n_unseen

    @property
    def n_samples(self) -> int:
        return self.n_train + self.n_test_seen + self.n_test_unseen


# Sizes read from the xlsa17 ``att_splits.mat`` files (``att`` is (attr_dim, n_classes); the
# ``*_loc`` vectors give the split sizes; seen/unseen class counts from trainvalclasses.txt /
# testclasses.txt, FLO's from the f-CLSWGAN release). ``attr_zero_fraction`` is the share of
# exactly-zero entries in the real ``att``; the synthetic attributes copy that sparsity.
SHAPES: dict[str, BenchmarkShape] = {
    s.name: s
    for s in (
        BenchmarkShape("APY", 20, 12, 64, 5932, 1483, 7924, 0.796),
        BenchmarkShape("AWA1", 40, 10, 85, 19832, 4958, 5685, 0.286),
        BenchmarkShape("AWA2", 40, 10, 85, 23527, 5882, 7913, 0.286),
        BenchmarkShape("CUB", 150, 50, 312, 7057, 1764, 2967, 0.426),
        BenchmarkShape("FLO", 82, 20, 1024, 5631, 1403, 1155, 0.0),
        BenchmarkShape("SUN", 645, 72, 102, 10320, 2580, 1440, 0.465),
    )
}

SEMANTICS_KIND = "attributes:synthetic"
LATENT_DIM = 64  # dimension of the latent space the class structure is planted in
HIDDEN_DIM = 128  # width of the random attribute -> centre network
OFFSET_SCALE = 0.8  # class-offset std per unit difficulty (latent units; centres have std 1)
NOISE_SCALE = 3.0  # per-sample noise std per unit difficulty
NOISE_FLOOR = 0.05  # per-sample noise std at difficulty 0
MIN_PER_CLASS = 2  # every class keeps at least this many samples in each split that has it
_FEATURE_QUANTUM = 2.0**-12
_ATTR_QUANTUM = 2.0**-24
_CHUNK_ROWS = 2048

# One tag per independent random stream, so that e.g. changing ``dim`` leaves attributes,
# roles and sample counts unchanged.
_STREAM_ATTRIBUTES = 1
_STREAM_ROLES = 2
_STREAM_COUNTS = 3
_STREAM_ORDER = 4
_STREAM_CENTRES = 5
_STREAM_OFFSETS = 6
_STREAM_NOISE = 7
_STREAM_PROJECTION = 8


def _rng(seed: int, key: str, stream: int) -> np.random.Generator:
    """A generator for one part of one benchmark: keyed by seed, benchmark key and stream tag."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), stream])


# -- parameter checks ----------------------------------------------------------------------


def _check_params(seed: object, dim: object, difficulty: object, scale: object) -> None:
    def is_int(v: object) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    def is_real(v: object) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

    if not is_int(seed) or seed < 0:
        raise SpecError(f"synthetic data: seed must be a non-negative integer, got {seed!r}.")
    if dim is not None and (not is_int(dim) or dim < 1):
        raise SpecError(f"synthetic data: dim must be a positive integer (feature dimension), got {dim!r}.")
    if not is_real(difficulty) or difficulty < 0:
        raise SpecError(
            f"synthetic data: difficulty must be a finite number >= 0 (0 easy, about 1 hard), "
            f"got {difficulty!r}."
        )
    if not is_real(scale) or not (0 < scale <= 1):
        raise SpecError(
            f"synthetic data: scale must be in (0, 1] (fraction of the real sample counts), got {scale!r}."
        )


# -- attributes, roles and counts --------------------------------------------------------


def synthetic_attributes(
    n_classes: int, attr_dim: int, zero_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """A non-negative, sparse-ish ``(n_classes, attr_dim)`` matrix with L2-normalised rows.

    Low-rank Gaussian scores (shared class factors x attribute loadings, plus a per-attribute
    frequency and idiosyncratic noise) are thresholded at their ``zero_fraction`` quantile, so that
    share of the entries is exactly zero and the rest are positive.
    """
    rank = max(4, min(attr_dim, n_classes) // 3)
    factors = rng.standard_normal((n_classes, rank))
    loadings = rng.standard_normal((rank, attr_dim)) / math.sqrt(rank)
    frequency = 0.5 * rng.standard_normal(attr_dim)
    noise = 0.5 * rng.standard_normal((n_classes, attr_dim))
    scores = factors @ loadings + frequency + noise
    threshold = np.quantile(scores, zero_fraction) if zero_fraction > 0 else scores.min()
    att = np.maximum(scores - threshold, 0.0)
    empty = ~(att > 0).any(axis=1)
    if empty.any():  # give an all-zero row its strongest attribute back
        rows = np.flatnonzero(empty)
        att[rows, scores[rows].argmax(axis=1)] = 1.0
    att /= np.sqrt((att * att).sum(axis=1, keepdims=True))
    return np.round(att / _ATTR_QUANTUM) * _ATTR_QUANTUM


def _split_sizes(shape_sizes: tuple[int, int, int], n_seen: int, n_unseen: int, scale: float):
    """Scaled (train, test_seen, test_unseen) sizes, at least MIN_PER_CLASS per class."""
    per_split_classes = (n_seen, n_seen, n_unseen)
    return tuple(
        max(int(round(scale * n)), MIN_PER_CLASS * k)
        for n, k in zip(shape_sizes, per_split_classes, strict=True)
    )


def _class_counts(total: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``total`` samples over classes: MIN_PER_CLASS each, the rest multinomial in ``weights``."""
    extra = total - MIN_PER_CLASS * len(weights)
    return MIN_PER_CLASS + rng.multinomial(extra, weights / weights.sum())


def _labels_and_splits(
    seen: np.ndarray, sizes: tuple[int, int, int], seed: int, key: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels for all samples and the sorted index set of each split.

    Class sizes are mildly imbalanced (log-normal class weights, std 0.3); a seen class has the
    same weight in ``train`` and ``test_seen``. Samples are stored in a seeded random order so the
    splits interleave like the real ``*_loc`` index vectors.
    """
    rng = _rng(seed, key, _STREAM_COUNTS)
    weights = rng.lognormal(0.0, 0.3, len(seen))
    seen_ids, unseen_ids = np.flatnonzero(seen), np.flatnonzero(~seen)
    parts = []
    for ids, n in ((seen_ids, sizes[0]), (seen_ids, sizes[1]), (unseen_ids, sizes[2])):
        parts.append(np.repeat(ids, _class_counts(n, weights[ids], rng)))
    position = _rng(seed, key, _STREAM_ORDER).permutation(sum(sizes))
    labels = np.empty(sum(sizes), dtype=np.int64)
    splits, start = {}, 0
    for name, part in zip(("train", "test_seen", "test_unseen"), parts, strict=True):
        where = position[start : start + len(part)]
        labels[where] = part
        splits[name] = np.sort(where)
        start += len(part)
    return labels, splits


# -- features ------------------------------------------------------------------------------


def _soft_saturate(x: np.ndarray) -> np.ndarray:
    """``x / sqrt(1 + x^2)``: tanh-shaped, built from exactly rounded operations only."""
    return x / np.sqrt(1.0 + x * x)


def _smooth_relu_(x: np.ndarray) -> None:
    """In place ``(x + sqrt(x^2 + 1)) / 2``: positive, smooth, ReLU-like, exactly rounded ops."""
    root = np.sqrt(x * x + 1.0)
    x += root
    x *= 0.5


def _standardise_columns(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(axis=0)
    std = centred.std(axis=0)
    return centred / np.where(std > 0, std, 1.0)


def class_centres(attributes: np.ndarray, latent: int, rng: np.random.Generator) -> np.ndarray:
    """Map attributes to ``(n_classes, latent)`` centres with a random two-layer network.

    Hidden pre-activations and outputs are standardised over classes, so centres have zero mean
    and unit variance per latent dimension whatever the attribute scale.
    """
    k = attributes.shape[1]
    w1 = rng.standard_normal((k, HIDDEN_DIM))
    b1 = 0.5 * rng.standard_normal(HIDDEN_DIM)
    w2 = rng.standard_normal((HIDDEN_DIM, latent))
    hidden = _soft_saturate(_standardise_columns(attributes @ w1) + b1)
    return _standardise_columns(hidden @ w2)


def planted_features(
    attributes: np.ndarray,
    labels: np.ndarray,
    *,
    dim: int,
    difficulty: float,
    seed: int,
    key: str,
) -> np.ndarray:
    """``(n, dim)`` float32 features whose class structure comes from ``attributes``.

    ``latent = centre(attributes[y]) + offset[y] + noise`` and
    ``feature = smooth_relu(latent @ P + bias)``, computed in float64 in row chunks, rounded to
    the ``2**-12`` grid and stored as float32.
    """
    n_classes = attributes.shape[0]
    latent = min(dim, LATENT_DIM)
    centres = class_centres(attributes, latent, _rng(seed, key, _STREAM_CENTRES))
    offsets = (OFFSET_SCALE * difficulty) * _rng(seed, key, _STREAM_OFFSETS).standard_normal(
        (n_classes, latent)
    )
    noise_std = NOISE_FLOOR + NOISE_SCALE * difficulty
    z = centres[labels] + offsets[labels]
    z += noise_std * _rng(seed, key, _STREAM_NOISE).standard_normal(z.shape)
    proj_rng = _rng(seed, key, _STREAM_PROJECTION)
    spread = math.sqrt(1.0 + (OFFSET_SCALE * difficulty) ** 2 + noise_std**2)
    proj = proj_rng.standard_normal((latent, dim)) / (math.sqrt(latent) * spread)
    bias = 0.5 * proj_rng.standard_normal(dim)
    out = np.empty((len(labels), dim), dtype=np.float32)
    buf = np.empty((min(_CHUNK_ROWS, len(labels)), dim))
    for start in range(0, len(labels), _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, len(labels))
        part = buf[: stop - start]
        np.matmul(z[start:stop], proj, out=part)
        part += bias
        _smooth_relu_(part)
        part *= 1.0 / _FEATURE_QUANTUM
        np.round(part, out=part)
        part *= _FEATURE_QUANTUM
        out[start:stop] = part
    return out


# -- assembling datasets -------------------------------------------------------------------


def _generate(
    *,
    name: str,
    key: str,
    attributes: np.ndarray,
    seen: np.ndarray,
    class_names: tuple[str, ...],
    semantics_kind: str,
    sizes: tuple[int, int, int],
    seed: int,
    dim: int,
    difficulty: float,
    source: str,
) -> ZSLDataset:
    labels, splits = _labels_and_splits(seen, sizes, seed, key)
    features = planted_features(attributes, labels, dim=dim, difficulty=difficulty, seed=seed, key=key)
    classes = ClassTable(names=class_names, seen=seen, semantics=attributes, semantics_kind=semantics_kind)
    return ZSLDataset(
        name=name,
        features=features,
        labels=labels,
        classes=classes,
        split_indices=splits,
        val_classes=None,
        source=source,
    )


def shape_for(name: str) -> BenchmarkShape:
    """The embedded shape called ``name`` (case-insensitive); unknown -> UnknownNameError."""
    shape = SHAPES.get(str(name).upper())
    if shape is None:
        raise UnknownNameError(
            f"synthetic data: unknown benchmark shape '{name}'; choose one of "
            f"{', '.join(SHAPES)} (or give the path of an xlsa17 att_splits.mat)."
        )
    return shape


def _canonical_spec(target: str, seed: int, dim: int, difficulty: float, scale: float) -> str:
    return f"synthetic:{target}?seed={seed}&dim={dim}&difficulty={difficulty:g}&scale={scale:g}"


def _random_roles(n_classes: int, n_unseen: int, seed: int, key: str) -> np.ndarray:
    unseen = _rng(seed, key, _STREAM_ROLES).choice(n_classes, size=n_unseen, replace=False)
    seen = np.ones(n_classes, dtype=bool)
    seen[unseen] = False
    return seen


def _from_shape(
    shape: BenchmarkShape,
    seed: int,
    dim: int | None,
    difficulty: float,
    scale: float,
    source: str | None,
) -> ZSLDataset:
    _check_params(seed, dim, difficulty, scale)
    dim = shape.feature_dim if dim is None else int(dim)
    key = shape.name
    attributes = synthetic_attributes(
        shape.n_classes,
        shape.attr_dim,
        shape.attr_zero_fraction,
        _rng(seed, key, _STREAM_ATTRIBUTES),
    )
    sizes = _split_sizes(
        (shape.n_train, shape.n_test_seen, shape.n_test_unseen),
        shape.n_seen,
        shape.n_unseen,
        scale,
    )
    return _generate(
        name=f"synthetic:{shape.name}",
        key=key,
        attributes=attributes,
        seen=_random_roles(shape.n_classes, shape.n_unseen, seed, key),
        class_names=tuple(f"class_{i:03d}" for i in range(shape.n_classes)),
        semantics_kind=SEMANTICS_KIND,
        sizes=sizes,
        seed=int(seed),
        dim=dim,
        difficulty=float(difficulty),
        source=source or _canonical_spec(shape.name, seed, dim, difficulty, scale),
    )


def synthetic_dataset(
    name: str = "CUB",
    *,
    seed: int = 0,
    dim: int | None = None,
    difficulty: float = 0.5,
    scale: float = 1.0,
) -> ZSLDataset:
    """A synthetic GZSL dataset shaped like the real benchmark ``name``.

    Parameters
    ----------
    name:
        One of ``AWA1, AWA2, CUB, SUN, FLO, APY`` (case-insensitive). Class counts, attribute
        dimension and split sizes are the real benchmark's.
    seed:
        Seeds every draw (attributes, class roles, sample counts and order, features).
    dim:
        Feature dimension; default 2048 (ResNet-101 features).
    difficulty:
        Scales class offsets not explained by the attributes and per-sample noise:
        0 is almost perfectly learnable, about 1 is hard; values above 1 are allowed.
    scale:
        Fraction in (0, 1] of the real sample counts to generate; every class keeps at least
        two samples in each split it appears in. Class counts never change.
    """
    return _from_shape(shape_for(name), seed, dim, difficulty, scale, None)


# -- from a real att_splits.mat ----------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _roles_from_class_files(folder: Path, names: list[str]) -> np.ndarray | None:
    """Seen mask from ``testclasses.txt`` next to the file, matched against the class names."""
    test_file = folder / "testclasses.txt"
    if not names or not test_file.is_file():
        return None
    unseen_names = set(_read_lines(test_file))
    seen = np.array([n not in unseen_names for n in names], dtype=bool)
    missing = unseen_names - set(names)
    if missing:
        raise DataFormatError(
            f"{test_file}: {len(missing)} class name(s) (e.g. {sorted(missing)[:3]}) are not in "
            f"the att_splits.mat class list; use the testclasses.txt from the same release."
        )
    return seen


def synthetic_from_att_splits(
    path: str | Path,
    *,
    seed: int = 0,
    dim: int | None = None,
    difficulty: float = 0.5,
    scale: float = 1.0,
) -> ZSLDataset:
    """Synthetic features planted on a real xlsa17 ``att_splits.mat`` (file or its folder).

    Uses the file's real attribute matrix (``att``, transposed to one row per class, kind
    ``attributes:att``), its class names, and its split sizes (lengths of ``trainval_loc``,
    ``test_seen_loc``, ``test_unseen_loc``). The file has no per-sample labels, so class roles
    come from ``testclasses.txt`` in the same folder when present; otherwise the unseen count of
    the embedded benchmark with the same class and attribute counts is used and the unseen classes
    are a seeded draw. Per-class sample counts are drawn as in :func:`synthetic_dataset`.
    """
    return _from_att_splits(path, seed, dim, difficulty, scale, None)


def _from_att_splits(
    path: str | Path,
    seed: int,
    dim: int | None,
    difficulty: float,
    scale: float,
    source: str | None,
) -> ZSLDataset:
    _check_params(seed, dim, difficulty, scale)
    p = Path(path)
    if p.is_dir():
        p = p / "att_splits.mat"
    if not p.is_file():
        raise DataFileNotFound(
            f"synthetic data: no att_splits.mat at '{path}'; give the path of an xlsa17 "
            "att_splits.mat or of the folder holding it."
        )
    needed = ("att", "trainval_loc", "test_seen_loc", "test_unseen_loc")
    mat = read_mat(
        p,
        (*needed, "allclasses_names"),
        required=needed,
        contents="an xlsa17 att_splits.mat (class attributes 'att' and the *_loc split indices)",
    )
    attributes = np.asarray(mat["att"], dtype=np.float64).T
    n_classes, attr_dim = attributes.shape
    names = cellstr(mat["allclasses_names"], p, "allclasses_names") if "allclasses_names" in mat else []
    if len(names) != n_classes or len(set(names)) != n_classes:
        names = []
    seen = _roles_from_class_files(p.parent, names)
    key = f"att_splits:{n_classes}x{attr_dim}"
    if seen is None:
        match = [s for s in SHAPES.values() if (s.n_classes, s.attr_dim) == (n_classes, attr_dim)]
        if not match:
            raise DataFormatError(
                f"synthetic data: '{p}' has no testclasses.txt beside it and its size "
                f"({n_classes} classes, {attr_dim} attributes) matches no known benchmark, so "
                "the unseen classes are unknown; put the release's testclasses.txt next to it."
            )
        seen = _random_roles(n_classes, match[0].n_unseen, int(seed), key)
    sizes = tuple(int(np.asarray(mat[k]).size) for k in needed[1:])
    dim_ = 2048 if dim is None else int(dim)
    return _generate(
        name=f"synthetic:{p.parent.name}/{p.name}",
        key=key,
        attributes=attributes,
        seen=seen,
        class_names=tuple(names) if names else tuple(f"class_{i:03d}" for i in range(n_classes)),
        semantics_kind="attributes:att",
        sizes=_split_sizes(sizes, int(seen.sum()), int((~seen).sum()), scale),
        seed=int(seed),
        dim=dim_,
        difficulty=float(difficulty),
        source=source or _canonical_spec(str(p), seed, dim_, difficulty, scale),
    )


# -- the ``synthetic:`` data-spec scheme ---------------------------------------------------

_OPTIONS = {"seed", "dim", "difficulty", "scale"}


@register_scheme(
    "synthetic",
    help="synthetic:NAME[?seed=0&dim=2048&difficulty=0.5&scale=1] - planted data shaped like "
    f"{'/'.join(SHAPES)} (NAME may also be the path of an xlsa17 att_splits.mat)",
)
def load_synthetic(spec: DataSpec) -> ZSLDataset:
    """Loader for ``synthetic:NAME[?seed=..&dim=..&difficulty=..&scale=..]``."""
    spec.check_options(_OPTIONS)
    seed = spec.int_option("seed", 0)
    raw_dim = spec.option("dim")
    dim = None if raw_dim is None else spec.int_option("dim", 0)
    difficulty = spec.float_option("difficulty", 0.5)
    scale = spec.float_option("scale", 1.0)
    try:
        _check_params(seed, dim, difficulty, scale)
    except SpecError as exc:
        raise SpecError(f"data spec '{spec.text}': {exc}") from None
    if spec.target.upper() in SHAPES:
        return _from_shape(SHAPES[spec.target.upper()], seed, dim, difficulty, scale, spec.text)
    target = Path(spec.target)
    if target.suffix == ".mat" or target.is_dir():
        return _from_att_splits(target, seed, dim, difficulty, scale, spec.text)
    raise UnknownNameError(
        f"data spec '{spec.text}': unknown synthetic benchmark '{spec.target}'; choose one of "
        f"{', '.join(SHAPES)} (case-insensitive), or give the path of an xlsa17 att_splits.mat."
    )
