"""The data model validates on construction and derives leakage-free validation tasks."""

import numpy as np
import pytest

from unseen.core.errors import DataError, SplitError
from unseen.data.model import ClassTable, SplitName, ZSLDataset


def _table(n=6, n_unseen=2):
    seen = np.array([True] * (n - n_unseen) + [False] * n_unseen)
    sem = np.random.default_rng(0).random((n, 5))
    return ClassTable(tuple(f"c{i}" for i in range(n)), seen, sem, "attributes:test")


def _dataset(**overrides):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(6), 10)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    seen_idx = np.flatnonzero(labels < 4)
    splits = {
        "train": seen_idx[seen_idx % 10 < 7],
        "test_seen": seen_idx[seen_idx % 10 >= 7],
        "test_unseen": np.flatnonzero(labels >= 4),
    }
    kwargs = dict(name="toy", features=X, labels=labels, classes=_table(), split_indices=splits)
    kwargs.update(overrides)
    return ZSLDataset(**kwargs)


def test_arrays_are_read_only_and_hashes_stable():
    a, b = _dataset(), _dataset()
    assert a.hash == b.hash
    assert a.splits[SplitName.TRAIN].hash == b.splits[SplitName.TRAIN].hash
    with pytest.raises(ValueError):
        a.features[0, 0] = 1.0
    with pytest.raises(ValueError):
        a.labels[0] = 3


def test_hash_changes_with_data():
    X = np.random.default_rng(1).normal(size=(60, 4)).astype(np.float32)
    X[0, 0] += 1.0
    assert _dataset(features=X).hash != _dataset().hash


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"features": np.full((60, 4), np.nan)}, "NaN/Inf"),
        ({"features": np.zeros((59, 4))}, "59 feature rows but 60 labels"),
        ({"labels": np.repeat(np.arange(1, 7), 10)}, "1-based"),
    ],
)
def test_bad_arrays_raise_with_the_fix(overrides, match):
    with pytest.raises(DataError, match=match):
        _dataset(**overrides)


def test_overlapping_and_misassigned_splits_raise():
    d = _dataset()
    splits = {k.value: v.indices for k, v in d.splits.items()}
    with pytest.raises(SplitError, match="overlap"):
        _dataset(split_indices={**splits, "test_seen": np.concatenate([splits["test_seen"], [0]])})
    with pytest.raises(SplitError, match="unseen classes"):
        moved = {
            **splits,
            "train": np.concatenate([splits["train"], [45]]),
            "test_unseen": splits["test_unseen"][splits["test_unseen"] != 45],
        }
        _dataset(split_indices=moved)
    with pytest.raises(SplitError, match="outside"):
        _dataset(split_indices={**splits, "train": np.array([0, 60])})
    with pytest.raises(SplitError, match="empty"):
        _dataset(split_indices={**splits, "test_unseen": np.array([], dtype=int)})


def test_semantics_of_wrong_shape_and_empty_unseen_set():
    with pytest.raises(DataError, match="transpose"):
        ClassTable(("a", "b", "c"), np.array([True, True, False]), np.zeros((5, 3)), "att")
    table = ClassTable(tuple("abcdef"), np.ones(6, dtype=bool), np.zeros((6, 2)), "att")
    with pytest.raises(SplitError):
        _dataset(classes=table)


def test_train_set_is_a_private_copy_of_training_rows_only():
    d = _dataset()
    ts = d.train_set()
    assert not np.shares_memory(ts.labels, d.labels)
    assert not np.shares_memory(ts.features, d.features)
    assert set(ts.labels.tolist()) <= set(d.classes.seen_ids.tolist())
    np.testing.assert_array_equal(ts.labels, d.labels[d.indices("train")])


def test_validation_task_uses_train_split_only_and_renumbers_classes():
    d = _dataset()
    v = d.validation_task(seed=0)
    train_rows = {tuple(r) for r in d.features[d.indices("train")]}
    assert all(tuple(r) in train_rows for r in v.features)
    assert v.classes.n_classes == 4  # the four seen classes, no real unseen class
    assert v.classes.seen.sum() == 3 and (~v.classes.seen).sum() == 1
    assert set(v.classes.names) <= {"c0", "c1", "c2", "c3"}
    assert v.validation_task(seed=0).hash == d.validation_task(seed=0).validation_task(seed=0).hash


def test_validation_task_honours_dataset_validation_classes():
    d = _dataset(val_classes=np.array([1, 3]))
    v = d.validation_task(seed=5)
    unseen_names = {v.classes.names[i] for i in v.classes.unseen_ids}
    assert unseen_names == {"c1", "c3"}
    with pytest.raises(SplitError, match="seen classes"):
        _dataset(val_classes=np.array([4]))
