"""The ``text:`` data-spec scheme: any zero-shot dataset with text embeddings as class semantics.

``text:INNER_SPEC[?encoder=minilm&templates=imagenet80&mode=replace&weights=PATH&descriptions=FILE]``
loads ``INNER_SPEC`` (any zero-shot spec, e.g. ``builtin:mnist-zsl`` or ``xlsa17:DIR``, or any
zero-shot multi-domain spec, e.g. ``builtin:rotated-mnist-zsl`` or ``zsl-domains:FILE.toml``:
the scheme is registered for both kinds, with one loader, :func:`with_text_spec`) and replaces
its class semantics by prompt-ensembled text embeddings of its class names (see
:func:`unseen.semantics.text.with_text_semantics`). The options after ``?`` listed in
:data:`TEXT_OPTIONS` belong to ``text:``; every other option is handed to the inner spec, so
``text:synthetic:CUB?seed=3&templates=photo`` is ``synthetic:CUB?seed=3`` with ``photo`` prompts.
Options named ``encoder.KEY`` are the encoder's own (:mod:`unseen.backbones.options`), e.g.
``encoder=open-clip-text&weights=FILE&encoder.model=ViT-B-32``.

``descriptions`` names a JSON file mapping class names to a description or a list of them.
Embeddings go through the feature cache (``$UNSEEN_CACHE/features``), keyed by encoder, weights
and prompts, so a sweep encodes each class list once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from unseen.backbones.base import ENCODERS
from unseen.backbones.cache import FeatureCache
from unseen.backbones.options import typed_encoder_options
from unseen.core.errors import DataFileNotFound, DataFormatError
from unseen.data.model import ZSLDataset
from unseen.data.specs import DataSpec, load_dataset, register_scheme
from unseen.data.zsl_domains import ZSL_DOMAIN_SCHEMES, ZSLDomainDataset, load_zsl_domains
from unseen.semantics.text import Descriptions, WithClasses, with_text_semantics

TEXT_OPTIONS = {"encoder", "templates", "mode", "weights", "descriptions"}
ENCODER_OPTION_PREFIX = "encoder."


def read_descriptions(path: str | Path) -> Descriptions:
    """``{class name: description or [descriptions]}`` from a JSON file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataFileNotFound(f"descriptions file {path} does not exist; give the path of a JSON file.")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"descriptions file {path} is not valid UTF-8 JSON ({exc}).") from None

    def is_text_list(v: object) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    if not isinstance(content, dict) or not all(
        isinstance(v, str) or is_text_list(v) for v in content.values()
    ):
        raise DataFormatError(
            f"descriptions file {path} must hold one JSON object mapping each class name to a string "
            'or a list of strings, e.g. {"zebra": ["has black and white stripes"]}.'
        )
    return content


TEXT_HELP = (
    "text:SPEC[?encoder=minilm&templates=imagenet80&mode=replace|concat] - class semantics from text "
    "embeddings of SPEC's class names"
)


def with_text_spec(spec: DataSpec, load: Callable[[str], WithClasses]) -> WithClasses:
    """The dataset ``load`` gives for ``spec``'s inner spec, with text class semantics: the one
    path of ``text:`` for every kind of zero-shot data (single-domain and multi-domain)."""
    own = {k: v for k, v in spec.options.items() if k in TEXT_OPTIONS}
    encoder_options = {
        k.removeprefix(ENCODER_OPTION_PREFIX): v
        for k, v in spec.options.items()
        if k.startswith(ENCODER_OPTION_PREFIX)
    }
    passed_on = {
        k: v
        for k, v in spec.options.items()
        if k not in TEXT_OPTIONS and not k.startswith(ENCODER_OPTION_PREFIX)
    }
    name = own.get("encoder", "minilm")
    options = typed_encoder_options(name, encoder_options, reserved={"weights": "weights=PATH"})
    inner = spec.target + (f"?{urlencode(passed_on)}" if passed_on else "")
    dataset = load(inner)
    encoder = ENCODERS.create(name, weights=own.get("weights"), **options)
    descriptions = read_descriptions(own["descriptions"]) if own.get("descriptions") else None
    result = with_text_semantics(
        dataset,
        encoder,
        templates=own.get("templates", "imagenet80"),
        mode=own.get("mode", "replace"),
        descriptions=descriptions,
        cache=FeatureCache(),
    )
    return result.with_source(spec.text)


@register_scheme("text", help=TEXT_HELP)
def load_text_spec(spec: DataSpec) -> ZSLDataset:
    """Loader for ``text:INNER_SPEC[?...]``, ``INNER_SPEC`` a zero-shot spec."""
    return with_text_spec(spec, load_dataset)


@ZSL_DOMAIN_SCHEMES.register("text", help=TEXT_HELP)
def load_text_domains_spec(spec: DataSpec) -> ZSLDomainDataset:
    """Loader for ``text:INNER_SPEC[?...]``, ``INNER_SPEC`` a zero-shot multi-domain spec
    (``builtin:rotated-mnist-zsl``, ``zsl-domains:FILE.toml``)."""
    return with_text_spec(spec, load_zsl_domains)
