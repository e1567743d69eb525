"""Image files as DG data: folder: and manifest: decoded once, sorted domains, clear errors, and
`unseen dg` end to end on a tiny generated image tree."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unseen.cli import main
from unseen.core.errors import DataFormatError, SpecError
from unseen.data.domains import load_domains

OFFICE = Path(__file__).resolve().parents[3] / "shared" / "data" / "office-caltech10-images"
DOMAINS = ("sketch", "art", "photo")  # created in this order; numbered in sorted order
CLASSES = {"cat": (220, 40, 40), "dog": (40, 40, 220)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tree(root: Path, domains=DOMAINS, per_class: int = 3) -> Path:
    """``root/domain/class/i.png``: 80x60 images of the class colour, shaded by domain and index."""
    for d, domain in enumerate(domains):
        for name, colour in CLASSES.items():
            (root / domain / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shade = np.array(colour) - 30 * d - 10 * i
                Image.new("RGB", (80, 60), tuple(int(v) for v in shade)).save(
                    root / domain / name / f"{i}.png"
                )
    return root


def test_folder_decodes_every_image_at_the_requested_size_with_sorted_domains(tmp_path):
    data = load_domains(f"folder:{_tree(tmp_path / 'toy')}?size=40")
    assert data.name == "toy" and data.inputs.shape == (18, 3, 40, 40) and data.inputs.dtype == np.float32
    assert data.domain_names == ("art", "photo", "sketch") and data.class_names == ("cat", "dog")
    assert data.domains.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1] * 3
    # art was created second (shade 30): its first cat image is (190, 10, 10) everywhere, in [0, 1]
    np.testing.assert_allclose(data.inputs[0, :, 7, 31], np.array([190, 10, 10]) / 255, atol=1e-6)
    assert data.source.endswith("?size=40")


def test_default_size_is_the_networks_224_pixels_and_domains_option_keeps_sorted_numbering(tmp_path):
    root = _tree(tmp_path / "toy", per_class=1)
    data = load_domains(f"folder:{root}?domains=sketch,art&per_class=1")
    assert data.inputs.shape == (4, 3, 224, 224)
    assert data.domain_names == ("art", "sketch") and data.domains.tolist() == [0, 0, 1, 1]
    in_sorted_order = load_domains(f"folder:{root}?domains=art,sketch&per_class=1")
    assert data.hash == in_sorted_order.hash


def test_manifest_gives_the_same_dataset_as_the_folder(tmp_path):
    root = _tree(tmp_path / "toy")
    folder = load_domains(f"folder:{root}?size=36")
    manifest = root / "images.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "class", "domain"])
        for domain in sorted(DOMAINS):
            for name in CLASSES:
                writer.writerows([f"{domain}/{name}/{i}.png", name, domain] for i in range(3))
    listed = load_domains(f"manifest:{manifest}?size=36")
    np.testing.assert_array_equal(listed.inputs, folder.inputs)
    assert listed.domain_names == folder.domain_names and listed.hash == folder.hash


def test_unseen_dg_trains_on_an_image_folder_and_records_large_image_hyperparameters(tmp_path):
    out = tmp_path / "run.json"
    args = ["dg", "--data", f"folder:{_tree(tmp_path / 'toy')}?size=64", "--algorithm", "erm"]
    args += ["--test-env", "0", "--steps", "2", "--hparams", '{"batch_size": 4}', "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["data"]["domains"] == ["art", "photo", "sketch"] and record["test_envs"] == [0]
    assert "0 art" in result.output and "training-val: test accuracy" in result.output
    last = record["checkpoints"][-1]
    for k in range(3):
        for part in ("in", "out"):
            assert 0.0 <= last[f"env{k}_{part}_acc"] <= 1.0
    hp = record["hparams"]
    assert hp["lr"] == 5e-5 and hp["batch_size"] == 4 and hp["weight_decay"] == 0.0
    assert hp["backbone_dropout"] == 0.0 and hp["freeze_bn"] is True


def test_a_domain_without_some_class_is_an_error_naming_it(tmp_path):
    root = _tree(tmp_path / "toy")
    manifest = root / "images.csv"
    rows = [["path", "class", "domain"], ["art/cat/0.png", "cat", "art"], ["art/dog/0.png", "dog", "art"]]
    rows.append(["photo/cat/0.png", "cat", "photo"])
    with open(manifest, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(DataFormatError, match=r"domain 'photo' has no sample of class\(es\) \['dog'\]"):
        load_domains(f"manifest:{manifest}?size=36")
    shutil.rmtree(root / "photo" / "dog")
    with pytest.raises(DataFormatError, match=r"domain 'photo' lacks class folder\(s\) \['dog'\]"):
        load_domains(f"folder:{root}?size=36")


def test_empty_domains_and_single_domains_are_errors_with_the_fix(tmp_path):
    root = _tree(tmp_path / "toy")
    (root / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"class folder\(s\) \['cat'\] under .*empty hold no images"):
        load_domains(f"folder:{root}?size=36")
    with pytest.raises(DataFormatError, match=r"one domain \('art'\).*at least two.*domain/class/image"):
        load_domains(f"folder:{root / 'art'}?size=36")


def test_an_unreadable_image_is_named(tmp_path):
    root = _tree(tmp_path / "toy")
    broken = root / "photo" / "dog" / "1.png"
    broken.write_bytes(b"not a png")
    message = rf"{re.escape(str(broken))}.*cannot be decoded.*replace or remove it"
    with pytest.raises(DataFormatError, match=message):
        load_domains(f"folder:{root}?size=36")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("size=0", "size must be a positive"),
        ("size=big", "'size' must be an integer"),
        ("normalize=l2", r"unknown option\(s\) \['normalize'\]"),
    ],
)
def test_bad_options_are_spec_errors(tmp_path, option, message):
    with pytest.raises(SpecError, match=message):
        load_domains(f"folder:{tmp_path}?{option}")


@pytest.mark.skipif(not OFFICE.is_dir(), reason=f"Office-Caltech10 images not found at {OFFICE}")
def test_office_caltech10_images_load_as_four_domains():
    data = load_domains(f"folder:{OFFICE}?size=40&per_class=1")
    assert data.domain_names == ("amazon", "caltech10", "dslr", "webcam")
    assert data.n_classes == 10 and data.inputs.shape == (40, 3, 40, 40)
    assert np.bincount(data.domains).tolist() == [10] * 4
    assert 0.0 <= data.inputs.min() and data.inputs.max() <= 1.0 and data.inputs.std() > 0.1
