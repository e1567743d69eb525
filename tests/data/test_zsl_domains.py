"""Zero-shot multi-domain data: the digit built-ins and the checks that pair samples with classes."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.core.errors import DataError, SpecError, SplitError, UnknownNameError
from unseen.data.domains import DomainDataset, load_domains
from unseen.data.mnist_zsl import attribute_table, mnist_zsl_dataset
from unseen.data.model import ClassTable
from unseen.data.zsl_domains import ZSLDomainDataset, load_zsl_domains


def test_rotated_digits_zsl_is_rotated_digits_with_the_mnist_zsl_class_table():
    data = load_zsl_domains("builtin:rotated-digits-zsl")
    plain = load_domains("builtin:rotated-digits")
    assert np.array_equal(data.samples.inputs, plain.inputs)
    assert np.array_equal(data.samples.labels, plain.labels)
    assert np.array_equal(data.samples.domains, plain.domains)
    assert data.domain_names == plain.domain_names
    assert data.classes.names[:3] == ("zero", "one", "two")
    assert data.classes.unseen_ids.tolist() == [0, 3, 7]
    assert data.val_classes.tolist() == [5, 9]
    assert np.array_equal(data.classes.semantics, attribute_table())
    assert data.classes.semantics_kind == "attributes:mnist-zsl-v1"
    for k in range(data.n_domains):  # every domain holds seen and unseen digits
        assert set(data.samples.labels[data.samples.domains == k].tolist()) == set(range(10))
    assert load_zsl_domains("builtin:rotated-digits-zsl").hash == data.hash


def test_rotated_mnist_zsl_puts_mnist_zsl_roles_on_the_six_rotated_domains():
    data = load_zsl_domains("builtin:rotated-mnist-zsl")
    zsl = mnist_zsl_dataset()
    assert data.samples.input_shape == (1, 28, 28) and data.n_domains == 6
    assert data.domain_names == ("0deg", "15deg", "30deg", "45deg", "60deg", "75deg")
    assert data.classes.hash == zsl.classes.hash  # the same names, roles and attributes
    assert data.val_classes.tolist() == zsl.val_classes.tolist()
    assert len(data.samples.labels) == 5000
    summary = data.summary()
    assert summary["unseen"] == ["zero", "three", "seven"] and summary["hash"] == data.hash


def test_bad_specs_and_mismatched_tables_are_refused_with_the_fix():
    with pytest.raises(UnknownNameError, match="rotated-mnist-zsl"):
        load_zsl_domains("builtin:rotated-mnist")
    with pytest.raises(SpecError, match="unknown option"):
        load_zsl_domains("builtin:rotated-digits-zsl?size=3")
    samples = DomainDataset(
        "tiny", np.zeros((8, 2)), np.arange(8) % 4, np.arange(8) // 4, tuple("abcd"), ("x", "y")
    )
    semantics = np.eye(4, dtype=np.float32)
    with pytest.raises(DataError, match="in the samples' class order"):
        ZSLDomainDataset(samples, ClassTable(tuple("abdc"), np.array([1, 1, 1, 0], bool), semantics, "k"))
    with pytest.raises(SplitError, match="some classes seen and some unseen"):
        ZSLDomainDataset(samples, ClassTable(tuple("abcd"), np.ones(4, bool), semantics, "k"))
    table = ClassTable(tuple("abcd"), np.array([1, 1, 1, 0], bool), semantics, "k")
    with pytest.raises(SplitError, match="validation classes must be seen classes"):
        ZSLDomainDataset(samples, table, val_classes=np.array([3]))
    with pytest.raises(SplitError, match="leaving at least two seen"):
        ZSLDomainDataset(samples, table, val_classes=np.array([0, 1]))
    lacking = DomainDataset(
        "tiny", np.zeros((6, 2)), [0, 1, 2, 3, 0, 1], [0, 0, 0, 0, 1, 1], tuple("abcd"), ("x", "y")
    )
    with pytest.raises(DataError, match="domain 'y' has no sample of class"):
        ZSLDomainDataset(lacking, table)
    assert ZSLDomainDataset(samples, table, val_classes=np.array([1])).val_classes.tolist() == [1]
