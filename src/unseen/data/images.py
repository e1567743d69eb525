"""Image datasets for feature extraction: image files or in-memory pixels, with labels and domains.

An :class:`ImageDataset` holds one image source (files under a root, or a uint8 pixel array), an
integer label and domain id per image, and the class and domain names. Data specs name them
through :data:`IMAGE_SCHEMES` (:func:`load_images`):

- ``folder:ROOT[?layout=domains|classes&domains=a,b]`` - DomainBed's ``ROOT/domain/class/image``
  layout, or a single domain ``ROOT/class/image`` (``layout=classes``; detected when the class
  folders hold the images directly)
- ``manifest:FILE.csv`` / ``manifest:FILE.json`` - one row per image: ``path, class, domain``,
  paths relative to the manifest's folder (``domain`` may be left out: one domain)
- ``builtin:mnist``, ``builtin:digits``, ``builtin:rotated-mnist``, ... - the built-in digits as
  RGB images in memory, so extraction works on a fresh machine without any file

Every scheme takes ``per_class=K``: keep the first ``K`` images of every (domain, class) pair.

Classes and domains are numbered in sorted name order (a ``domains=`` option keeps its own
order). The content hash covers each image's path relative to the root and the SHA-256 of its
bytes, so moving or copying the folder keeps the hash and editing any image changes it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from unseen.core.errors import DataFileNotFound, DataFormatError, SpecError, UnknownNameError
from unseen.core.images import open_rgb
from unseen.data.hashing import hash_arrays
from unseen.data.specs import DataSpec, SchemeRegistry

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"})


class ImageSource(Protocol):
    """``n`` images, loadable one at a time, with a content hash."""

    def __len__(self) -> int: ...

    def load(self, i: int) -> Image.Image: ...

    def content_hash(self) -> str: ...

    def subset(self, indices: np.ndarray) -> ImageSource: ...


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """Image files named by paths relative to ``root`` (absolute paths are allowed too)."""

    root: Path
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def file(self, i: int) -> Path:
        return self.root / self.paths[i]

    def load(self, i: int) -> Image.Image:
        return open_rgb(self.file(i))

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for i, rel in enumerate(self.paths):
            try:
                digest = hashlib.sha256(self.file(i).read_bytes()).hexdigest()
            except OSError as exc:
                raise DataFileNotFound(f"image file {self.file(i)} cannot be read ({exc}).") from None
            h.update(f"{rel}\0{digest}\n".encode())
        return h.hexdigest()[:16]

    def subset(self, indices: np.ndarray) -> ImageFiles:
        return ImageFiles(self.root, tuple(self.paths[i] for i in indices))


@dataclass(frozen=True, eq=False)
class ImageArrays:
    """In-memory RGB images: a ``(n, H, W, 3)`` uint8 array."""

    pixels: np.ndarray

    def __post_init__(self) -> None:
        if self.pixels.ndim != 4 or self.pixels.shape[-1] != 3 or self.pixels.dtype != np.uint8:
            raise DataFormatError(
                f"in-memory images must be a (n, H, W, 3) uint8 array; got {self.pixels.dtype} "
                f"{self.pixels.shape}."
            )
        pixels = self.pixels.view()
        pixels.setflags(write=False)  # the content hash is computed once
        object.__setattr__(self, "pixels", pixels)

    def __len__(self) -> int:
        return len(self.pixels)

    def load(self, i: int) -> Image.Image:
        return Image.fromarray(self.pixels[i])

    def content_hash(self) -> str:
        return hash_arrays(self.pixels)

    def subset(self, indices: np.ndarray) -> ImageArrays:
        return ImageArrays(self.pixels[indices])


class LazyImages(Sequence):
    """The images of a dataset as a sequence of PIL images, each decoded when indexed."""

    def __init__(self, source: ImageSource) -> None:
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._source.load(k) for k in range(len(self))[i]]
        return self._source.load(range(len(self))[i])


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with an integer label and domain id each, and the class and domain names."""

    name: str
    source: ImageSource
    labels: np.ndarray
    domains: np.ndarray
    class_names: tuple[str, ...]
    domain_names: tuple[str, ...]
    spec: str = ""

    def __post_init__(self) -> None:
        where = f"image dataset '{self.name}'"
        n = len(self.source)
        labels, domains = np.asarray(self.labels), np.asarray(self.domains)
        if labels.shape != (n,) or domains.shape != (n,):
            raise DataFormatError(
                f"{where}: {n} images need {n} labels and {n} domain ids; got shapes {labels.shape} "
                f"and {domains.shape}."
            )
        if n == 0:
            raise DataFormatError(f"{where}: no images.")
        for field, values, size in (
            ("label", labels, len(self.class_names)),
            ("domain", domains, len(self.domain_names)),
        ):
            if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= size:
                raise DataFormatError(f"{where}: {field} ids must be integers in 0..{size - 1}.")
        for name, arr in (("labels", labels.astype(np.int64)), ("domains", domains.astype(np.int64))):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.source)

    def load(self, i: int) -> Image.Image:
        """Image ``i`` as an RGB PIL image."""
        return self.source.load(i)

    def images(self) -> LazyImages:
        """All images as a lazily decoded sequence (what an encoder's ``encode_images`` takes)."""
        return LazyImages(self.source)

    @functools.cached_property
    def images_hash(self) -> str:
        """Content hash of the images alone (relative paths and bytes, or pixels), in order."""
        return self.source.content_hash()

    @functools.cached_property
    def hash(self) -> str:
        """Content hash of the images, labels, domains and class and domain names."""
        names = "\n".join([self.images_hash, *self.class_names, "|", *self.domain_names])
        return hash_arrays(self.labels, self.domains, extra=names)

    def subset(self, indices: np.ndarray) -> ImageDataset:
        indices = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            self.name,
            self.source.subset(indices),
            self.labels[indices],
            self.domains[indices],
            self.class_names,
            self.domain_names,
            self.spec,
        )

    def first_per_class(self, k: int) -> ImageDataset:
        """The first ``k`` images (in dataset order) of every (domain, class) pair."""
        keep = []
        for d in range(len(self.domain_names)):
            for c in range(len(self.class_names)):
                keep.extend(np.flatnonzero((self.domains == d) & (self.labels == c))[:k].tolist())
        return self.subset(np.sort(np.asarray(keep, dtype=np.int64)))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.spec,
            "images": len(self),
            "classes": len(self.class_names),
            "domains": {d: int((self.domains == k).sum()) for k, d in enumerate(self.domain_names)},
            "hash": self.hash,
        }


IMAGE_SCHEMES: SchemeRegistry[ImageDataset] = SchemeRegistry("image")
register_image_scheme = IMAGE_SCHEMES.register
load_images = IMAGE_SCHEMES.load


def _per_class(spec: DataSpec, dataset: ImageDataset) -> ImageDataset:
    """``dataset`` reduced to its first ``per_class`` images per (domain, class), if the spec asks."""
    if spec.option("per_class") is None:
        return dataset
    k = spec.int_option("per_class", 0)
    if k < 1:
        raise SpecError(f"data spec '{spec.text}': per_class must be a positive integer, got {k}.")
    return dataset.first_per_class(k)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name[0] != "."
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_folders(domain: Path, where: str) -> dict[str, list[Path]]:
    classes = {c.name: _image_files(c) for c in _subfolders(domain)}
    if not classes:
        raise DataFormatError(f"{where}: {domain} holds no class folders; expected {domain}/CLASS/IMAGE.")
    empty = [c for c, files in classes.items() if not files]
    if empty:
        raise DataFormatError(
            f"{where}: class folder(s) {empty} under {domain} hold no images "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folders."
        )
    return classes


def _detect_layout(root: Path, spec: DataSpec) -> str:
    layout = spec.option("layout")
    if layout is not None:
        if layout not in ("domains", "classes"):
            raise SpecError(
                f"data spec '{spec.text}': layout must be 'domains' or 'classes', got '{layout}'."
            )
        return layout
    first = _subfolders(root)
    if not first:
        raise DataFormatError(
            f"data spec '{spec.text}': {root} has no subfolders; expected ROOT/domain/class/image or "
            "ROOT/class/image."
        )
    holds_images = [bool(_image_files(f)) for f in first]
    if all(holds_images):
        return "classes"
    if not any(holds_images):
        return "domains"
    raise DataFormatError(
        f"data spec '{spec.text}': some folders of {root} hold images directly and some do not, so the "
        "layout is ambiguous; add ?layout=domains (ROOT/domain/class/image) or ?layout=classes "
        "(ROOT/class/image)."
    )


@register_image_scheme(
    "folder",
    help="folder:ROOT[?layout=domains|classes&domains=a,b&per_class=K] - ROOT/domain/class/image "
    "(DomainBed) or ROOT/class/image",
)
def load_folder(spec: DataSpec) -> ImageDataset:
    spec.check_options({"layout", "domains", "per_class"})
    root = Path(spec.target)
    if not root.is_dir():
        raise DataFileNotFound(f"data spec '{spec.text}': folder {root} does not exist.")
    where = f"data spec '{spec.text}'"
    if _detect_layout(root, spec) == "classes":
        if spec.option("domains"):
            raise SpecError(f"{where}: option 'domains' needs the ROOT/domain/class/image layout.")
        per_domain = {root.name: _class_folders(root, where)}
    else:
        found = {d.name: d for d in _subfolders(root)}
        wanted = spec.option("domains").split(",") if spec.option("domains") else sorted(found)
        unknown = [d for d in wanted if d not in found]
        if unknown:
            raise UnknownNameError(f"{where}: unknown domain(s) {unknown}; {root} has {sorted(found)}.")
        per_domain = {d: _class_folders(found[d], where) for d in wanted}
    class_names = sorted({c for classes in per_domain.values() for c in classes})
    for domain, classes in per_domain.items():
        missing = sorted(set(class_names) - set(classes))
        if missing:
            raise DataFormatError(
                f"{where}: domain '{domain}' lacks class folder(s) {missing} that other domains have; "
                "every domain needs the same classes (add the folders, or drop the domain with ?domains=)."
            )
    paths, labels, domains = [], [], []
    for k, classes in enumerate(per_domain.values()):
        for c, name in enumerate(class_names):
            for file in classes[name]:
                paths.append(file.relative_to(root).as_posix())
                labels.append(c)
                domains.append(k)
    dataset = ImageDataset(
        name=root.name,
        source=ImageFiles(root, tuple(paths)),
        labels=np.asarray(labels, dtype=np.int64),
        domains=np.asarray(domains, dtype=np.int64),
        class_names=tuple(class_names),
        domain_names=tuple(per_domain),
        spec=spec.text,
    )
    return _per_class(spec, dataset)


def _manifest_rows(path: Path) -> list[tuple[int, dict]]:
    """The manifest's rows as ``(row number as the user counts it, fields)``."""
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{path}: not valid JSON ({exc}).") from None
        if isinstance(rows, dict) and "images" in rows:
            rows = rows["images"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DataFormatError(
                f'{path}: a JSON manifest is a list of objects like {{"path": ..., "class": ..., '
                '"domain": ...}} (or {"images": [...]}).'
            )
        return list(enumerate(rows, start=1))
    if path.suffix.lower() != ".csv":
        raise DataFormatError(f"{path}: a manifest must be a .csv or .json file.")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [f for f in ("path", "class") if f not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(
                f"{path}: the header must name the columns path,class[,domain]; missing {missing} "
                f"(found {reader.fieldnames})."
            )
        return list(enumerate(reader, start=2))  # row 1 is the header


@register_image_scheme(
    "manifest",
    help="manifest:FILE.csv|FILE.json[?per_class=K] - rows path,class[,domain]; paths relative to the file",
)
def load_manifest(spec: DataSpec) -> ImageDataset:
    spec.check_options({"per_class"})
    path = Path(spec.target)
    if not path.is_file():
        raise DataFileNotFound(f"data spec '{spec.text}': manifest {path} does not exist.")
    rows = _manifest_rows(path)
    if not rows:
        raise DataFormatError(f"{path}: the manifest lists no images.")
    entries = []
    for number, row in rows:
        values = {}
        for field in ("path", "class", "domain"):
            value = row.get(field)
            if value is None and field == "domain":
                value = path.stem
            if not isinstance(value, str) or not value.strip():
                raise DataFormatError(
                    f"{path} row {number}: field '{field}' must be a non-empty string, got {value!r}."
                )
            values[field] = value.strip()
        if not Path(values["path"]).is_absolute() and os.path.normpath(values["path"]).startswith(".."):
            raise DataFormatError(
                f"{path} row {number}: field 'path': {values['path']!r} leaves the manifest's folder "
                f"{path.parent}; give a path inside that folder, or an absolute path."
            )
        if not (path.parent / values["path"]).is_file():
            raise DataFileNotFound(
                f"{path} row {number}: field 'path': image {path.parent / values['path']} does not "
                "exist (paths are relative to the manifest's folder)."
            )
        entries.append(values)
    class_names = sorted({e["class"] for e in entries})
    domain_names = sorted({e["domain"] for e in entries})
    dataset = ImageDataset(
        name=path.stem,
        source=ImageFiles(path.parent, tuple(e["path"] for e in entries)),
        labels=np.asarray([class_names.index(e["class"]) for e in entries], dtype=np.int64),
        domains=np.asarray([domain_names.index(e["domain"]) for e in entries], dtype=np.int64),
        class_names=tuple(class_names),
        domain_names=tuple(domain_names),
        spec=spec.text,
    )
    return _per_class(spec, dataset)


def _rgb_uint8(images: np.ndarray) -> np.ndarray:
    """``(n, C, H, W)`` or ``(n, H, W)`` floats in [0, 1] -> ``(n, H, W, 3)`` uint8.

    One channel is grey; two channels (the coloured digits) are red and green, blue stays 0.
    """
    x = images[:, None] if images.ndim == 3 else images
    x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    channels = x.shape[1]
    if channels == 1:
        x = np.repeat(x, 3, axis=1)
    elif channels == 2:
        x = np.concatenate([x, np.zeros_like(x[:, :1])], axis=1)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _single_domain(name: str, images: np.ndarray, labels: np.ndarray) -> ImageDataset:
    return ImageDataset(
        name=name,
        source=ImageArrays(_rgb_uint8(images)),
        labels=labels,
        domains=np.zeros(len(labels), dtype=np.int64),
        class_names=tuple(str(d) for d in range(10)),
        domain_names=(name,),
        spec=f"builtin:{name}",
    )


def _mnist() -> ImageDataset:
    from unseen.data.mnist_zsl import load_mnist_5k

    images, labels = load_mnist_5k()
    return _single_domain("mnist", images.astype(np.float32) / 255.0, labels)


def _digits() -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _single_domain("digits", bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64))


def _domain_digits(name: str) -> ImageDataset:
    from unseen.data.digit_domains import builtin_domains

    data = builtin_domains(name)
    return ImageDataset(
        name=name,
        source=ImageArrays(_rgb_uint8(data.inputs)),
        labels=data.labels,
        domains=data.domains,
        class_names=data.class_names,
        domain_names=data.domain_names,
        spec=f"builtin:{name}",
    )


BUILTIN_IMAGES = {
    "mnist": _mnist,
    "digits": _digits,
    **{
        name: functools.partial(_domain_digits, name)
        for name in ("rotated-mnist", "rotated-digits", "colored-mnist", "colored-digits")
    },
}


@register_image_scheme(
    "builtin",
    help="builtin:NAME[?per_class=K] - digits as in-memory RGB images: " + ", ".join(BUILTIN_IMAGES),
)
def load_builtin_images(spec: DataSpec) -> ImageDataset:
    spec.check_options({"per_class"})
    if spec.target not in BUILTIN_IMAGES:
        raise UnknownNameError(
            f"data spec '{spec.text}': unknown built-in image dataset '{spec.target}'; known: "
            f"{', '.join(BUILTIN_IMAGES)}."
        )
    return _per_class(spec, dataclasses.replace(BUILTIN_IMAGES[spec.target](), spec=spec.text))
