"""Image datasets: DomainBed folders, manifests, built-in digits as images, content hashes, clear errors."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseen.core import images as core_images
from unseen.core.errors import DataFileNotFound, DataFormatError, SpecError, UnknownNameError
from unseen.data.digit_domains import builtin_domains
from unseen.data.images import load_images

OFFICE = Path(__file__).resolve().parents[3] / "shared" / "data" / "office-caltech10-images"


def _image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _domainbed(root: Path) -> Path:
    """photo: cat x2, dog x1; sketch: cat x1, dog x1 (and a stray text file)."""
    _image(root / "sketch" / "dog" / "d1.png", (0, 0, 255))
    _image(root / "sketch" / "cat" / "c1.png", (0, 255, 0))
    _image(root / "photo" / "cat" / "b.png", (255, 0, 0))
    _image(root / "photo" / "cat" / "a.png", (10, 20, 30))
    _image(root / "photo" / "dog" / "x.jpg", (200, 200, 200))
    (root / "photo" / "dog" / "notes.txt").write_text("not an image")
    return root


def test_domainbed_folder_numbers_domains_classes_and_files_in_sorted_order(tmp_path):
    data = load_images(f"folder:{_domainbed(tmp_path / 'toy')}")
    assert (
        data.name == "toy" and data.domain_names == ("photo", "sketch") and data.class_names == ("cat", "dog")
    )
    assert data.source.paths == (
        "photo/cat/a.png",
        "photo/cat/b.png",
        "photo/dog/x.jpg",
        "sketch/cat/c1.png",
        "sketch/dog/d1.png",
    )
    assert data.labels.tolist() == [0, 0, 1, 0, 1] and data.domains.tolist() == [0, 0, 0, 1, 1]
    image = data.load(1)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 0, 0)


def test_domains_option_selects_and_orders_domains(tmp_path):
    root = _domainbed(tmp_path / "toy")
    data = load_images(f"folder:{root}?domains=sketch,photo")
    assert data.domain_names == ("sketch", "photo") and data.domains.tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(UnknownNameError, match=r"unknown domain\(s\) \['clipart'\].*'photo', 'sketch'"):
        load_images(f"folder:{root}?domains=clipart")


def test_a_single_domain_class_folder_layout_is_detected(tmp_path):
    root = tmp_path / "flowers"
    _image(root / "rose" / "1.png", (255, 0, 0))
    _image(root / "tulip" / "1.png", (255, 255, 0))
    _image(root / "tulip" / "2.png", (255, 255, 0))
    data = load_images(f"folder:{root}")
    assert data.domain_names == ("flowers",) and data.class_names == ("rose", "tulip")
    assert data.labels.tolist() == [0, 1, 1] and data.source.paths[0] == "rose/1.png"
    assert load_images(f"folder:{root}?layout=classes").hash == data.hash


def test_folder_errors_name_the_domain_or_folder_and_the_fix(tmp_path):
    root = _domainbed(tmp_path / "toy")
    (root / "sketch" / "dog" / "d1.png").unlink()
    (root / "sketch" / "dog").rmdir()
    with pytest.raises(DataFormatError, match=r"domain 'sketch' lacks class folder\(s\) \['dog'\]"):
        load_images(f"folder:{root}")
    (root / "sketch" / "dog").mkdir()
    with pytest.raises(DataFormatError, match=r"class folder\(s\) \['dog'\] under .*sketch hold no images"):
        load_images(f"folder:{root}")
    _image(root / "loose.png", (0, 0, 0))
    _image(root / "flat" / "1.png", (0, 0, 0))
    with pytest.raises(DataFormatError, match="layout is ambiguous; add \\?layout=domains"):
        load_images(f"folder:{root}")
    with pytest.raises(DataFileNotFound, match="missing does not exist"):
        load_images(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(SpecError, match="unknown option"):
        load_images(f"folder:{root}?domain=photo")


def test_content_hash_survives_a_move_and_sees_an_edited_image(tmp_path):
    root = _domainbed(tmp_path / "toy")
    before = load_images(f"folder:{root}")
    moved = shutil.copytree(root, tmp_path / "elsewhere" / "toy")
    assert load_images(f"folder:{moved}").hash == before.hash
    _image(moved / "photo" / "cat" / "a.png", (10, 20, 31))
    edited = load_images(f"folder:{moved}")
    assert edited.images_hash != before.images_hash and edited.hash != before.hash


def test_manifest_csv_and_json_give_the_same_dataset(tmp_path):
    _domainbed(tmp_path / "toy")
    rows = [
        ("toy/photo/dog/x.jpg", "dog", "photo"),
        ("toy/sketch/cat/c1.png", "cat", "sketch"),
        ("toy/photo/cat/a.png", "cat", "photo"),
    ]
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("path,class,domain\n" + "".join(f"{p},{c},{d}\n" for p, c, d in rows))
    json_file = tmp_path / "list.json"
    json_file.write_text(json.dumps([{"path": p, "class": c, "domain": d} for p, c, d in rows]))
    data = load_images(f"manifest:{csv_file}")
    assert data.class_names == ("cat", "dog") and data.domain_names == ("photo", "sketch")
    assert data.labels.tolist() == [1, 0, 0] and data.domains.tolist() == [0, 1, 0]
    assert data.load(2).getpixel((0, 0)) == (10, 20, 30)
    assert load_images(f"manifest:{json_file}").hash == data.hash


def test_manifest_without_a_domain_column_is_one_domain(tmp_path):
    _image(tmp_path / "a.png", (1, 2, 3))
    manifest = tmp_path / "shots.csv"
    manifest.write_text("path,class\na.png,cat\n")
    data = load_images(f"manifest:{manifest}")
    assert data.domain_names == ("shots",) and data.class_names == ("cat",)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("path,label\na.png,cat\n", DataFormatError, r"header must name the columns.*\['class'\]"),
        ("path,class,domain\na.png,cat,p\na.png,,p\n", DataFormatError, "row 3: field 'class' must be"),
        ("path,class,domain\nb.png,cat,p\n", DataFileNotFound, "row 2: field 'path': image .*b.png does not"),
        ("path,class,domain\n", DataFormatError, "lists no images"),
        ("path,class\nsub/../../a.png,cat\n", DataFormatError, "row 2: field 'path': 'sub/../../a.png' "),
    ],
)
def test_manifest_errors_name_the_file_row_and_field(tmp_path, content, error, message):
    _image(tmp_path / "a.png", (1, 2, 3))
    manifest = tmp_path / "bad.csv"
    manifest.write_text(content)
    with pytest.raises(error, match=message) as info:
        load_images(f"manifest:{manifest}")
    assert "bad.csv" in str(info.value)


def test_manifest_paths_may_be_absolute(tmp_path):
    image = tmp_path / "outside" / "a.png"
    _image(image, (4, 5, 6))
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text(f"path,class\n{image.resolve()},cat\n")
    assert load_images(f"manifest:{manifest}").load(0).getpixel((0, 0)) == (4, 5, 6)


def test_json_manifest_must_be_a_list_of_objects(tmp_path):
    manifest = tmp_path / "bad.json"
    manifest.write_text('{"path": "a.png"}')
    with pytest.raises(DataFormatError, match="bad.json: a JSON manifest is a list of objects"):
        load_images(f"manifest:{manifest}")


def test_an_undecodable_image_is_named_when_loaded(tmp_path):
    root = _domainbed(tmp_path / "toy")
    (root / "photo" / "cat" / "a.png").write_bytes(b"garbage")
    data = load_images(f"folder:{root}")
    with pytest.raises(DataFormatError, match="a.png cannot be decoded"):
        data.load(0)


def _claim_size(png: Path, width: int, height: int) -> None:
    """Rewrite a PNG's header (IHDR) to claim ``width x height`` pixels, with a valid checksum."""
    data = bytearray(png.read_bytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    png.write_bytes(bytes(data))


def test_an_image_claiming_a_huge_size_is_a_clean_error(tmp_path):
    root = _domainbed(tmp_path / "toy")
    _claim_size(root / "photo" / "cat" / "a.png", 60000, 60000)
    data = load_images(f"folder:{root}")
    with pytest.raises(DataFormatError, match="a.png is too large to decode safely"):
        data.load(0)


def test_large_jpegs_are_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    monkeypatch.setattr(core_images, "DRAFT_SIDE", 64)
    path = tmp_path / "big.jpg"
    Image.new("RGB", (320, 256), (120, 30, 200)).save(path)
    decoded = core_images.open_rgb(path)
    assert decoded.size == (80, 64) and decoded.mode == "RGB"  # scale 1/4: the smallest >= 64
    small = tmp_path / "small.jpg"
    Image.new("RGB", (60, 40), (1, 2, 3)).save(small)
    assert core_images.open_rgb(small).size == (60, 40)


def test_builtin_domain_digits_become_rgb_images_in_memory():
    data = load_images("builtin:rotated-digits?per_class=2")
    source = builtin_domains("rotated-digits")
    assert data.domain_names == source.domain_names and data.class_names == source.class_names
    assert len(data) == 6 * 10 * 2
    assert np.bincount(data.domains * 10 + data.labels).tolist() == [2] * 60
    first = np.asarray(data.load(0))
    assert first.shape == (8, 8, 3) and (first[..., 0] == first[..., 2]).all()  # grey
    # The first image of domain 0 is the first of its class, so it is kept, first.
    assert data.labels[0] == source.labels[0]
    np.testing.assert_array_equal(first[..., 1], np.rint(source.inputs[0, 0] * 255))


def test_builtin_colored_digits_are_red_or_green_and_mnist_is_one_domain():
    colored = load_images("builtin:colored-mnist?per_class=1")
    pixels = np.stack([np.asarray(colored.load(i)) for i in range(len(colored))])
    assert pixels.shape == (6, 14, 14, 3) and (pixels[..., 2] == 0).all()
    mnist = load_images("builtin:mnist")
    assert len(mnist) == 5000 and mnist.domain_names == ("mnist",) and mnist.load(0).size == (28, 28)


def test_builtin_and_per_class_errors():
    with pytest.raises(UnknownNameError, match="unknown built-in image dataset 'cifar'; known: mnist"):
        load_images("builtin:cifar")
    with pytest.raises(SpecError, match="per_class must be a positive integer"):
        load_images("builtin:digits?per_class=0")
    with pytest.raises(SpecError, match="per_class' must be an integer"):
        load_images("builtin:digits?per_class=all")


@pytest.mark.skipif(not OFFICE.is_dir(), reason=f"Office-Caltech10 images not found at {OFFICE}")
def test_office_caltech10_folder_matches_its_source_notes():
    data = load_images(f"folder:{OFFICE}")
    assert data.summary()["domains"] == {"amazon": 958, "caltech10": 1123, "dslr": 157, "webcam": 295}
    assert data.class_names == (
        "backpack",
        "bike",
        "calculator",
        "headphones",
        "keyboard",
        "laptop",
        "monitor",
        "mouse",
        "mug",
        "projector",
    )
