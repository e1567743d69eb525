"""Class semantics from text: prompt-ensembled embeddings of class names and descriptions.

:func:`class_text_embeddings` follows CLIP's prompt ensembling (Radford et al., ICML 2021, Sec.
3.1.4): every template is filled with the class name, each prompt is encoded and L2-normalised,
the class's prompt embeddings are averaged and the mean is normalised again. Optional per-class
descriptions (Menon & Vondrick, ICLR 2023) join the same ensemble through a description
template. :func:`with_text_semantics` puts the result into a dataset's class table (a
:class:`~unseen.data.model.ZSLDataset` or a multi-domain
:class:`~unseen.data.zsl_domains.ZSLDomainDataset`) as its class semantics, so every GZSL
method can use text instead of (or beside) attributes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import numpy as np

from unseen.backbones.base import TextEncoder, encoder_identity
from unseen.backbones.cache import FeatureCache
from unseen.core.arrays import unit_rows
from unseen.core.errors import DataError, EncoderError, UnknownNameError
from unseen.data.model import ClassTable
from unseen.semantics.templates import TemplateSet, template_set


class _HasClasses(Protocol):
    classes: ClassTable


WithClasses = TypeVar("WithClasses", bound=_HasClasses)
"""A dataset dataclass with a ``classes`` field: :class:`~unseen.data.model.ZSLDataset`, or
:class:`~unseen.data.zsl_domains.ZSLDomainDataset` for multi-domain data."""

CACHE_VERSION = 1  # bump when the ensembling changes without the cache key noticing
Descriptions = Mapping[str, str | Sequence[str]]


def class_words(name: str) -> str:
    """A dataset class name as words: ``"002.Laysan_Albatross"`` -> ``"Laysan Albatross"``.

    Drops a leading number with a dot (CUB's ``NNN.`` prefix) and reads ``_`` and ``+`` (AwA's
    ``grizzly+bear``) as spaces.
    """
    words = re.sub(r"^\d+\.", "", name.strip())
    return " ".join(re.split(r"[\s_+]+", words)).strip()


def class_prompts(
    class_names: Sequence[str],
    templates: str | TemplateSet = "imagenet80",
    descriptions: Descriptions | None = None,
    description_templates: str | TemplateSet = "description",
) -> list[list[str]]:
    """The prompts of each class, in class order: templates first, then its descriptions' prompts."""
    names = template_set(templates)
    described = template_set(description_templates)
    descriptions = dict(descriptions or {})
    unknown = sorted(set(descriptions) - set(class_names))
    if unknown:
        raise DataError(
            f"descriptions name classes the dataset does not have: {unknown[:5]}. Use the dataset's "
            f"class names, e.g. {list(class_names)[:3]}."
        )
    prompts = []
    for name in class_names:
        words = class_words(name)
        extra = descriptions.get(name, ())
        extra = [extra] if isinstance(extra, str) else list(extra)
        prompts.append(names.fill(words) + [p for d in extra for p in described.fill(words, d)])
    return prompts


def _ensemble(encoder: TextEncoder, prompts: list[list[str]], batch_size: int) -> np.ndarray:
    flat = [p for group in prompts for p in group]
    owner = np.repeat(np.arange(len(prompts)), [len(group) for group in prompts])
    embeddings = unit_rows(encoder.encode_texts(flat, batch_size=batch_size).astype(np.float64))
    sums = np.zeros((len(prompts), embeddings.shape[1]))
    np.add.at(sums, owner, embeddings)
    return unit_rows(sums).astype(np.float32)  # the mean's direction; its length drops out


def class_text_embeddings(
    encoder: TextEncoder,
    class_names: Sequence[str],
    templates: str | TemplateSet = "imagenet80",
    descriptions: Descriptions | None = None,
    description_templates: str | TemplateSet = "description",
    batch_size: int = 256,
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """``(n_classes, encoder.dim)`` unit-norm prompt-ensemble embeddings of ``class_names``.

    ``templates`` and ``description_templates`` are template-set names (see
    :mod:`unseen.semantics.templates`), a single template holding ``{}``, or :class:`TemplateSet`
    objects; ``descriptions`` maps class names to one or more descriptions. All prompts are
    encoded in one batched pass. With a ``cache``, embeddings are stored under (encoder id,
    weights hash, every prompt) and reused.
    """
    if not isinstance(encoder, TextEncoder):
        raise EncoderError(
            f"encoder '{getattr(encoder, 'id', encoder)}' does not encode text; class semantics need a "
            "text encoder such as minilm, hf-text or open-clip-text."
        )
    prompts = class_prompts(class_names, templates, descriptions, description_templates)
    key = None
    if cache is not None:
        prompts_text = json.dumps(prompts, ensure_ascii=False, separators=(",", ":"))
        key = {
            "version": CACHE_VERSION,
            "kind": "class-text-ensemble",
            **encoder_identity(encoder),
            "prompts": hashlib.sha256(prompts_text.encode()).hexdigest(),
        }
        cached = cache.get(key)
        if cached is not None:
            return cached
    embeddings = _ensemble(encoder, prompts, batch_size)
    if cache is not None:
        cache.put(key, embeddings)
    return embeddings


def _replace(classes: ClassTable, text: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    return text, kind


def _concat(classes: ClassTable, text: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    # Each block has unit norm per class, so attributes and text weigh equally in distances.
    unit = unit_rows(classes.semantics.astype(np.float64)).astype(np.float32)
    return np.concatenate([unit, text], axis=1), f"{classes.semantics_kind}+{kind}"


MODES: dict[str, Callable[[ClassTable, np.ndarray, str], tuple[np.ndarray, str]]] = {
    "replace": _replace,
    "concat": _concat,
}
"""How text embeddings become the class semantics: instead of the old ones, or beside them."""


def with_text_semantics(
    dataset: WithClasses,
    encoder: TextEncoder,
    templates: str | TemplateSet = "imagenet80",
    mode: str = "replace",
    descriptions: Descriptions | None = None,
    cache: FeatureCache | None = None,
) -> WithClasses:
    """``dataset`` with text class semantics; everything else (features, splits; for multi-domain
    data the samples, domains and validation classes) unchanged.

    ``mode="replace"`` uses the text embeddings alone (kind ``text:ENCODER:TEMPLATES``);
    ``"concat"`` appends them to the old semantics, L2-normalised per class first (kind
    ``OLD+text:ENCODER:TEMPLATES``).
    """
    if mode not in MODES:
        raise UnknownNameError(f"unknown semantics mode '{mode}'; choose one of {', '.join(MODES)}.")
    names = template_set(templates)
    text = class_text_embeddings(
        encoder, dataset.classes.names, names, descriptions=descriptions, cache=cache
    )
    kind = f"text:{encoder.id}:{names.name}" + ("+descriptions" if descriptions else "")
    semantics, kind = MODES[mode](dataset.classes, text, kind)
    classes = dataclasses.replace(dataset.classes, semantics=semantics, semantics_kind=kind)
    return dataclasses.replace(dataset, classes=classes)
