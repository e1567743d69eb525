"""Multi-domain data: built-ins, Office-Caltech10 SURF files, npz, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from unseen.core.errors import DataFileNotFound, DataFormatError, UnknownNameError
from unseen.data.domains import DomainDataset, load_domains

SURF = Path(__file__).parents[3] / "shared" / "data" / "office-caltech10-surf"


def test_office_caltech10_surf_loads_four_domains_ten_classes():
    if not SURF.is_dir():
        pytest.skip(f"real Office-Caltech10 SURF files not found at {SURF}")
    data = load_domains(f"mat-domains:{SURF}")
    assert data.input_shape == (800,) and data.n_classes == 10
    sizes = {d: int((data.domains == k).sum()) for k, d in enumerate(data.domain_names)}
    assert sizes == {"caltech10": 1123, "amazon": 958, "dslr": 157, "webcam": 295}  # SOURCE.md
    l2 = load_domains(f"mat-domains:{SURF}?normalize=l2")
    assert np.allclose(np.linalg.norm(l2.inputs, axis=1), 1.0, atol=1e-5)
    assert l2.hash != data.hash


def test_rotated_digits_rotate_the_same_kind_of_digit_by_the_domain_angle():
    data = load_domains("builtin:rotated-digits")
    assert data.input_shape == (1, 8, 8) and data.n_domains == 6
    sizes = [len(data.domain_indices(k)) for k in range(6)]
    assert sum(sizes) == 1797 and max(sizes) - min(sizes) <= 1
    assert data.domain_names[1] == "15deg"


def test_colored_digits_follow_the_irm_construction():
    data = load_domains("builtin:colored-digits")
    for k, flip in enumerate((0.1, 0.2, 0.9)):
        idx = data.domain_indices(k)
        colour = data.inputs[idx].sum(axis=(2, 3)).argmax(axis=1)  # which channel holds the digit
        disagreement = np.mean(colour != data.labels[idx])
        assert abs(disagreement - flip) < 0.05


def test_mnist_vs_digits_puts_both_datasets_in_mnist_layout():
    data = load_domains("builtin:mnist-vs-digits")
    assert data.input_shape == (1, 28, 28) and data.domain_names == ("mnist", "digits")
    digits = data.inputs[data.domain_indices(1)]
    assert len(digits) == 1797
    # MNIST centres digits in a 20x20 box: the 4-pixel border of the upsampled digits is empty.
    assert digits[:, :, :4].max() == 0 and digits[:, :, -4:].max() == 0
    assert digits.max() == pytest.approx(1.0)
    # scipy's zoom maps corner pixels to corner pixels: the original 8x8 grid sits at multiples
    # of 19/7 in the 20x20 box.
    from sklearn.datasets import load_digits

    grid = np.round(np.arange(8) * 19 / 7).astype(int) + 4
    original = load_digits().images[0] / 16.0
    assert np.corrcoef(digits[0, 0][np.ix_(grid, grid)].ravel(), original.ravel())[0, 1] > 0.98


def test_npz_domains_round_trip(tmp_path):
    path = tmp_path / "f.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        features=rng.normal(size=(12, 4)).astype(np.float32),
        labels=np.arange(12) % 3,
        domains=np.arange(12) % 2,
        class_names=np.array(["a", "b", "c"]),
        domain_names=np.array(["x", "y"]),
    )
    data = load_domains(f"npz-domains:{path}")
    assert data.n_classes == 3 and data.domain_names == ("x", "y") and data.input_shape == (4,)


def _npz_domains(path, labels, domains):
    np.savez(
        path,
        features=np.random.default_rng(0).normal(size=(len(labels), 4)).astype(np.float32),
        labels=labels,
        domains=domains,
        class_names=np.array(["a", "b", "c"]),
        domain_names=np.array(["x", "y"]),
    )
    return f"npz-domains:{path}"


def test_npz_domains_refuse_fractional_ids_and_a_domain_without_a_class(tmp_path):
    spec = _npz_domains(tmp_path / "f.npz", np.arange(12) % 3 + 0.4, np.arange(12) % 2)
    with pytest.raises(DataFormatError, match=r"'labels' must hold whole numbers .* holds 0.4 at position 0"):
        load_domains(spec)
    whole = _npz_domains(tmp_path / "w.npz", (np.arange(12) % 3).astype(float), np.arange(12) % 2)
    assert load_domains(whole).labels.tolist() == (np.arange(12) % 3).tolist()  # MATLAB-style doubles
    lacking = _npz_domains(tmp_path / "l.npz", np.array([0, 1, 2, 0, 1, 0]), np.array([0, 0, 0, 1, 1, 1]))
    with pytest.raises(DataFormatError, match=r"domain 'y' has no sample of class\(es\) \['c'\]"):
        load_domains(lacking)


def test_mat_domains_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(DataFileNotFound, match="does not exist"):
        load_domains(f"mat-domains:{tmp_path / 'none'}")
    scipy.io.savemat(tmp_path / "a_x.mat", {"fts": np.ones((3, 2)), "labels": np.ones((3, 1))})
    with pytest.raises(DataFormatError, match="at least two"):
        load_domains(f"mat-domains:{tmp_path}")
    scipy.io.savemat(tmp_path / "b_x.mat", {"features_wrong": np.ones((3, 2))})
    with pytest.raises(DataFormatError, match="b_x.mat"):
        load_domains(f"mat-domains:{tmp_path}")
    with pytest.raises(UnknownNameError, match="normalize"):
        load_domains(f"mat-domains:{tmp_path}?normalize=zz")


def test_inconsistent_arrays_are_refused():
    with pytest.raises(DataFormatError, match="labels"):
        DomainDataset("x", np.zeros((3, 2)), np.zeros(2, int), np.zeros(3, int), ("a",), ("d",))
    with pytest.raises(DataFormatError, match="no samples"):
        DomainDataset("x", np.zeros((3, 2)), np.zeros(3, int), np.zeros(3, int), ("a",), ("d", "e"))
    with pytest.raises(DataFormatError, match="NaN"):
        DomainDataset("x", np.full((1, 2), np.nan), np.zeros(1, int), np.zeros(1, int), ("a",), ("d",))


def test_unknown_multi_domain_scheme_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="mat-domains"):
        load_domains("xlsa17:/tmp")
