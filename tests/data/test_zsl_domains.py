"""Zero-shot multi-domain data: the digit built-ins and the checks that pair samples with classes."""

from __future__ import annotations

import re

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


def _write_feature_domains(folder, class_names=("bike", "mug", "pen", "cup", "hat")):
    rng = np.random.default_rng(0)
    n = 40
    np.savez(
        folder / "features.npz",
        features=rng.normal(size=(n, 6)).astype(np.float32),
        labels=np.arange(n) % len(class_names),
        domains=(np.arange(n) // (n // 2)),
        class_names=np.array(class_names),
        domain_names=np.array(["amazon", "webcam"]),
    )
    rows = ["class,round,metal"] + [f"{c},{i % 2},{i / 4}" for i, c in enumerate(reversed(class_names))]
    (folder / "attributes.csv").write_text("\n".join(rows) + "\n")


def test_a_descriptor_adds_semantics_and_roles_to_any_multi_domain_spec(tmp_path):
    _write_feature_domains(tmp_path)
    (tmp_path / "oc.toml").write_text(
        'data = "npz-domains:features.npz"\nsemantics = "attributes.csv"\nunseen = ["mug", "hat"]\n'
        'validation = ["pen"]\n'
    )
    data = load_zsl_domains(f"zsl-domains:{tmp_path / 'oc.toml'}")
    assert data.classes.names == ("bike", "mug", "pen", "cup", "hat")
    assert data.classes.unseen_ids.tolist() == [1, 4] and data.val_classes.tolist() == [2]
    # CSV rows are matched by name, whatever their order: "hat" is the first row (0, 0.0)
    assert data.classes.semantics[4].tolist() == [0.0, 0.0] and data.classes.semantics[0].tolist() == [
        0.0,
        1.0,
    ]
    assert data.classes.semantics_kind == "attributes:attributes.csv" and data.domain_names == (
        "amazon",
        "webcam",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('data = "npz-domains:features.npz"\nsemantics = "attributes.csv"\n', "missing key(s) ['unseen']"),
        ('data = "npz-domains:features.npz"\nsemantics = "attributes.csv"\nunseen = ["mugg"]\n', "lacks"),
        (
            'data = "npz-domains:features.npz"\nsemantics = "nope.csv"\nunseen = ["mug"]\n',
            "nope.csv does not exist",
        ),
        (
            'data = "npz-domains:features.npz"\nsemantics = "attributes.csv"\nunseen = "mug"\n',
            "list of class names",
        ),
        (
            'data = "npz-domains:features.npz"\nsemantics = "attributes.csv"\nunseen = ["mug"]\nx = 1\n',
            "unknown key",
        ),
    ],
)
def test_descriptor_mistakes_name_the_key_and_the_fix(tmp_path, text, message):
    _write_feature_domains(tmp_path)
    (tmp_path / "d.toml").write_text(text)
    with pytest.raises(DataError, match=re.escape(message)):
        load_zsl_domains(f"zsl-domains:{tmp_path / 'd.toml'}")


def test_a_semantics_file_must_cover_every_class(tmp_path):
    _write_feature_domains(tmp_path)
    (tmp_path / "attributes.csv").write_text("class,round\nbike,1\nmug,x\n")
    (tmp_path / "d.toml").write_text(
        'data = "npz-domains:features.npz"\nsemantics = "attributes.csv"\nunseen = ["mug"]\n'
    )
    with pytest.raises(DataError, match="line 3 \\('mug'\\) holds a value that is not a number"):
        load_zsl_domains(f"zsl-domains:{tmp_path / 'd.toml'}")
    (tmp_path / "attributes.csv").write_text("class,round\nbike,1\nmug,0\n")
    with pytest.raises(DataError, match="no semantics for class\\(es\\) \\['pen', 'cup', 'hat'\\]"):
        load_zsl_domains(f"zsl-domains:{tmp_path / 'd.toml'}")
