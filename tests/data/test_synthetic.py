"""The synthetic generator: real benchmark shapes, seeded determinism, options, learnability."""

from pathlib import Path

import numpy as np
import pytest

from unseen.core.errors import DataFileNotFound, SpecError, UnknownNameError
from unseen.data.specs import load_dataset, parse_spec
from unseen.data.synthetic import (
    MIN_PER_CLASS,
    SHAPES,
    load_synthetic,
    synthetic_attributes,
    synthetic_dataset,
    synthetic_from_att_splits,
)

XLSA17 = Path(__file__).parents[2].parent / "shared" / "data" / "xlsa17"
needs_xlsa17 = pytest.mark.skipif(
    not XLSA17.is_dir(), reason=f"real xlsa17 att_splits.mat files not found at {XLSA17}"
)


def _split_counts(ds):
    return {name: len(ds.indices(name)) for name in ("train", "test_seen", "test_unseen")}


def _expected_counts(shape, scale):
    want = {
        "train": (shape.n_train, shape.n_seen),
        "test_seen": (shape.n_test_seen, shape.n_seen),
        "test_unseen": (shape.n_test_unseen, shape.n_unseen),
    }
    return {k: max(int(round(scale * n)), MIN_PER_CLASS * c) for k, (n, c) in want.items()}


def test_spec_loads_with_options_and_matches_the_function():
    ds = load_dataset("synthetic:CUB?seed=1&dim=64&scale=0.1")
    shape = SHAPES["CUB"]
    assert ds.name == "synthetic:CUB"
    assert ds.source == "synthetic:CUB?seed=1&dim=64&scale=0.1"
    assert ds.dim == 64 and ds.features.dtype == np.float32
    assert ds.classes.n_classes == 200
    assert ds.classes.seen.sum() == 150 and (~ds.classes.seen).sum() == 50
    assert ds.classes.semantics.shape == (200, 312)
    assert ds.classes.semantics_kind == "attributes:synthetic"
    assert ds.val_classes is None
    assert ds.classes.names[0] == "class_000"
    assert _split_counts(ds) == _expected_counts(shape, 0.1)
    same = synthetic_dataset("cub", seed=1, dim=64, scale=0.1)  # names are case-insensitive
    assert same.hash == ds.hash


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_has_its_class_counts_and_split_sizes(name):
    shape = SHAPES[name]
    scale = 0.02
    ds = synthetic_dataset(name, seed=0, dim=8, scale=scale)
    assert ds.classes.n_classes == shape.n_classes
    assert int(ds.classes.seen.sum()) == shape.n_seen
    assert ds.classes.semantics.shape == (shape.n_classes, shape.attr_dim)
    assert _split_counts(ds) == _expected_counts(shape, scale)
    # Every class appears in each split it belongs to, at least MIN_PER_CLASS times.
    for split, ids in (
        ("train", ds.classes.seen_ids),
        ("test_seen", ds.classes.seen_ids),
        ("test_unseen", ds.classes.unseen_ids),
    ):
        counts = np.bincount(ds.split_labels(split), minlength=shape.n_classes)[ids]
        assert counts.min() >= MIN_PER_CLASS


def test_full_scale_sizes_are_the_real_ones_and_features_look_like_relu_features():
    ds = synthetic_dataset("APY", seed=0, dim=16)
    assert _split_counts(ds) == {"train": 5932, "test_seen": 1483, "test_unseen": 7924}
    assert synthetic_dataset("CUB", seed=0, dim=4, scale=1.0).features.shape == (11788, 4)
    X = ds.features
    assert np.all(np.isfinite(X)) and X.min() > 0
    assert np.mean(X) > 1.2 * np.median(X)  # right-skewed, like pooled ReLU activations
    assert np.all(np.round(X * 4096) == X * 4096)  # on the documented 2**-12 grid


def test_attributes_are_nonnegative_sparse_unit_rows_and_distinct():
    for name, shape in SHAPES.items():
        A = synthetic_dataset(name, seed=2, dim=4, scale=0.01).classes.semantics
        assert A.min() >= 0, name
        np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, atol=1e-5)
        assert len(np.unique(A, axis=0)) == shape.n_classes, name
        assert abs((A == 0).mean() - shape.attr_zero_fraction) < 0.02, name


def test_attribute_sparsity_follows_the_requested_zero_fraction():
    rng = np.random.default_rng(0)
    dense = synthetic_attributes(30, 40, 0.0, rng)
    sparse = synthetic_attributes(30, 40, 0.7, np.random.default_rng(0))
    assert (dense == 0).mean() < 0.01
    assert abs((sparse == 0).mean() - 0.7) < 0.02


def test_same_seed_same_arrays_different_seed_different_data():
    a = synthetic_dataset("AWA1", seed=5, dim=32, scale=0.05)
    b = synthetic_dataset("AWA1", seed=5, dim=32, scale=0.05)
    c = synthetic_dataset("AWA1", seed=6, dim=32, scale=0.05)
    assert a.hash == b.hash
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.hash != c.hash
    assert not np.array_equal(a.classes.semantics, c.classes.semantics)
    assert not np.array_equal(a.classes.seen, c.classes.seen)


def test_dim_and_difficulty_leave_classes_and_splits_alone():
    a = synthetic_dataset("APY", seed=1, dim=32, scale=0.05, difficulty=0.2)
    b = synthetic_dataset("APY", seed=1, dim=48, scale=0.05, difficulty=0.9)
    assert a.classes.hash == b.classes.hash
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.hash != b.hash


@pytest.mark.parametrize(
    "spec, match",
    [
        ("synthetic:CUB?seed=x", "seed"),
        ("synthetic:CUB?seed=-1", "seed"),
        ("synthetic:CUB?dim=0", "dim"),
        ("synthetic:CUB?dim=2.5", "dim"),
        ("synthetic:CUB?difficulty=-0.1", "difficulty"),
        ("synthetic:CUB?difficulty=nan", "difficulty"),
        ("synthetic:CUB?scale=0", "scale"),
        ("synthetic:CUB?scale=1.5", "scale"),
        ("synthetic:CUB?noise=1", "unknown option"),
    ],
)
def test_bad_options_raise_spec_error(spec, match):
    with pytest.raises(SpecError, match=match):
        load_synthetic(parse_spec(spec))


def test_bad_function_arguments_raise_spec_error():
    with pytest.raises(SpecError, match="scale"):
        synthetic_dataset("CUB", scale=0.0)
    with pytest.raises(SpecError, match="dim"):
        synthetic_dataset("CUB", dim=-4)
    with pytest.raises(SpecError, match="seed"):
        synthetic_dataset("CUB", seed=1.5)


def test_unknown_name_lists_the_known_shapes():
    with pytest.raises(UnknownNameError, match="AWA1.*CUB.*SUN"):
        synthetic_dataset("ImageNet")
    with pytest.raises(UnknownNameError, match="APY"):
        load_synthetic(parse_spec("synthetic:cifar?seed=1"))
    with pytest.raises(DataFileNotFound, match="att_splits"):
        synthetic_from_att_splits("/nonexistent/folder/att_splits.mat")


# -- learnability ----------------------------------------------------------------------------


def _ridge_zsl_and_ncm(ds, lam=1.0):
    """(nearest-class-mean accuracy on test_seen, least-squares attribute ZSL on test_unseen)."""
    X = ds.split_features("train").astype(np.float64)
    y = ds.split_labels("train")
    S = ds.classes.semantics.astype(np.float64)
    seen, unseen = ds.classes.seen_ids, ds.classes.unseen_ids
    means = np.stack([X[y == c].mean(axis=0) for c in seen])
    Xs, ys = ds.split_features("test_seen"), ds.split_labels("test_seen")
    dist = (Xs**2).sum(1)[:, None] - 2 * Xs @ means.T + (means**2).sum(1)[None]
    ncm = np.mean(seen[dist.argmin(axis=1)] == ys)
    mu, target_mu = X.mean(axis=0), S[seen].mean(axis=0)
    Xc = X - mu
    W = np.linalg.solve(Xc.T @ Xc + lam * np.eye(X.shape[1]), Xc.T @ (S[y] - target_mu))
    Xu, yu = ds.split_features("test_unseen"), ds.split_labels("test_unseen")
    pred = (Xu - mu) @ W
    proto = S[unseen] - target_mu
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    proto /= np.linalg.norm(proto, axis=1, keepdims=True)
    zsl = np.mean(unseen[(pred @ proto.T).argmax(axis=1)] == yu)
    return ncm, zsl


def test_planted_structure_is_learnable_and_transfers_to_unseen_classes():
    ds = synthetic_dataset("CUB", seed=0, dim=128, scale=0.2, difficulty=0.5)
    ncm, zsl = _ridge_zsl_and_ncm(ds)
    assert ncm > 0.5  # chance 1/150
    assert zsl > 0.15  # chance 1/50


def test_difficulty_makes_the_task_harder():
    easy = _ridge_zsl_and_ncm(synthetic_dataset("AWA1", seed=0, dim=64, scale=0.1, difficulty=0))
    hard = _ridge_zsl_and_ncm(synthetic_dataset("AWA1", seed=0, dim=64, scale=0.1, difficulty=1))
    assert easy[0] > 0.95 and easy[1] > 0.6
    assert hard[0] < easy[0] - 0.1 and hard[1] < easy[1] - 0.1


# -- against the real xlsa17 files -----------------------------------------------------------


def _real_sizes(name):
    from scipy.io import loadmat

    mat = loadmat(str(XLSA17 / name / "att_splits.mat"))
    attr_dim, n_classes = mat["att"].shape
    sizes = tuple(mat[k].size for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc"))
    return n_classes, attr_dim, sizes


@needs_xlsa17
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_embedded_shapes_equal_the_real_files(name):
    shape = SHAPES[name]
    n_classes, attr_dim, sizes = _real_sizes(name)
    assert (shape.n_classes, shape.attr_dim) == (n_classes, attr_dim)
    assert (shape.n_train, shape.n_test_seen, shape.n_test_unseen) == sizes
    test_classes = XLSA17 / name / "testclasses.txt"
    if test_classes.is_file():  # FLO ships without class lists
        n_unseen = len([line for line in test_classes.read_text().splitlines() if line.strip()])
        assert shape.n_unseen == n_unseen


@needs_xlsa17
def test_from_att_splits_reproduces_the_real_class_roles_and_sizes():
    from scipy.io import loadmat

    folder = XLSA17 / "CUB"
    ds = synthetic_from_att_splits(folder / "att_splits.mat", seed=0, dim=16)
    att = loadmat(str(folder / "att_splits.mat"))["att"]
    np.testing.assert_allclose(ds.classes.semantics, att.T.astype(np.float32))
    assert ds.classes.semantics_kind == "attributes:att"
    assert (ds.classes.seen.sum(), (~ds.classes.seen).sum()) == (150, 50)
    unseen_names = set((folder / "testclasses.txt").read_text().split())
    assert {ds.classes.names[i] for i in ds.classes.unseen_ids} == unseen_names
    assert _split_counts(ds) == {"train": 7057, "test_seen": 1764, "test_unseen": 2967}
    # Through the spec, a folder works too and the source is the spec text.
    spec = f"synthetic:{folder}?dim=16&scale=0.1"
    via_spec = load_synthetic(parse_spec(spec))
    assert via_spec.source == spec
    assert via_spec.classes.hash == ds.classes.hash


@needs_xlsa17
def test_from_att_splits_without_class_lists_uses_the_embedded_unseen_count():
    ds = synthetic_from_att_splits(XLSA17 / "FLO", seed=3, dim=8, scale=0.1)
    assert (ds.classes.seen.sum(), (~ds.classes.seen).sum()) == (82, 20)
    assert ds.classes.semantics.shape == (102, 1024)
