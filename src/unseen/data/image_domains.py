"""Image files as multi-domain data for domain generalization, decoded once into memory.

Two schemes of :data:`~unseen.data.domains.DOMAIN_SCHEMES`, on top of the image loaders of
:mod:`unseen.data.images` (same layouts, same options, same errors):

- ``folder:ROOT[?size=N&per_class=K&domains=a,b&layout=domains]`` - DomainBed's
  ``ROOT/domain/class/image``
- ``manifest:FILE.csv|FILE.json[?size=N&per_class=K]`` - rows ``path, class, domain``

Every image is decoded once, cropped and resized as the ImageNet EfficientNet-Lite0 expects (the
central region "resize the shorter side, centre-crop" keeps, from
:func:`unseen.core.images.crop_and_resize`) to ``N x N`` pixels (``size``, default
224, the network's input size), and stored as RGB in [0, 1]; the featurizer applies the
weights' normalisation itself. Images larger than 32 pixels train the ImageNet featurizer, 32 or
fewer DomainBed's small CNN (:data:`unseen.nn.networks.FEATURIZERS`). DomainBed's training
augmentation (random resized crops, flips, colour jitter, greyscale) runs on the decoded tensors
of each training minibatch (:mod:`unseen.data.augmentation`, the ``data_augmentation``
hyperparameter), so decoding still happens once.

Memory: the inputs are float32, ``3 * N * N * 4`` bytes per image - 602,112 bytes at 224 px, so
Office-Caltech10's 2,533 images take 1.5 GB, and ``unseen dg`` holds a second copy as a torch
tensor while it trains; ``size=112`` takes a quarter of that, ``per_class=K`` keeps the first
``K`` images of every domain and class.

Domains are numbered in sorted name order (so ``--test-env 0`` is the first domain name in sort
order, whatever ``domains=`` lists), classes too. Every domain must hold every class, as
DomainBed requires: a domain without some class is an error naming the domain and the classes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from unseen.core.errors import DataFormatError, SpecError
from unseen.core.images import EFFICIENTNET_LITE, crop_and_resize
from unseen.data.domains import DomainDataset, register_domain_scheme, require_every_class
from unseen.data.images import ImageDataset, load_folder, load_manifest
from unseen.data.specs import DataSpec

DEFAULT_SIZE = EFFICIENTNET_LITE.crop


def _size(spec: DataSpec) -> int:
    size = spec.int_option("size", DEFAULT_SIZE)
    if size < 1:
        raise SpecError(f"data spec '{spec.text}': size must be a positive number of pixels, got {size}.")
    return size


def _image_spec(spec: DataSpec) -> DataSpec:
    """``spec`` without the options only this module reads, for the image loaders."""
    return dataclasses.replace(spec, options={k: v for k, v in spec.options.items() if k != "size"})


def _sorted_domains(images: ImageDataset) -> ImageDataset:
    """``images`` numbered and ordered by sorted domain name (``domains=`` may list another order)."""
    rank = np.argsort(np.argsort(images.domain_names, kind="stable"))
    domains = rank[images.domains]
    order = np.argsort(domains, kind="stable")
    return dataclasses.replace(
        images.subset(order), domains=domains[order], domain_names=tuple(sorted(images.domain_names))
    )


def _check_domains(images: ImageDataset, where: str) -> None:
    if len(images.domain_names) < 2:
        raise DataFormatError(
            f"{where}: found one domain ({images.domain_names[0]!r}); domain generalization needs "
            "at least two: lay the images out as ROOT/domain/class/image, or give a manifest a "
            "'domain' column."
        )
    require_every_class(images, where)


def decode(images: ImageDataset, size: int) -> np.ndarray:
    """``(n, 3, size, size)`` float32 RGB in [0, 1], each image cropped and resized once."""
    geometry = dataclasses.replace(
        EFFICIENTNET_LITE, crop=size, resize=round(size * EFFICIENTNET_LITE.resize / EFFICIENTNET_LITE.crop)
    )
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i in range(len(images)):
        pixels = crop_and_resize(images.load(i), geometry)
        out[i] = pixels.transpose(2, 0, 1)
    out /= 255.0
    return out


def _domain_dataset(spec: DataSpec, images: ImageDataset, size: int) -> DomainDataset:
    images = _sorted_domains(images)
    _check_domains(images, f"data spec '{spec.text}'")
    return DomainDataset(
        name=images.name,
        inputs=decode(images, size),
        labels=images.labels,
        domains=images.domains,
        class_names=images.class_names,
        domain_names=images.domain_names,
        source=spec.text,
    )


@register_domain_scheme(
    "folder",
    help="folder:ROOT[?size=N&per_class=K&domains=a,b] - DomainBed's ROOT/domain/class/image, decoded "
    "to N x N RGB (default 224)",
)
def load_folder_domains(spec: DataSpec) -> DomainDataset:
    spec.check_options({"size", "per_class", "domains", "layout"})
    size = _size(spec)  # a bad size fails before any image is read
    return _domain_dataset(spec, load_folder(_image_spec(spec)), size)


@register_domain_scheme(
    "manifest",
    help="manifest:FILE.csv|FILE.json[?size=N&per_class=K] - rows path,class,domain; decoded to N x N RGB",
)
def load_manifest_domains(spec: DataSpec) -> DomainDataset:
    spec.check_options({"size", "per_class"})
    size = _size(spec)
    return _domain_dataset(spec, load_manifest(_image_spec(spec)), size)
