"""Prompt templates: named sets of sentences that turn a class name into text to encode.

A template is a :meth:`str.format` pattern whose positional field ``{}`` receives the class name,
as in CLIP's prompts; templates for class *descriptions* also hold a ``{description}`` field.
Sets are looked up by name in :data:`TEMPLATE_SETS`:

- ``imagenet80`` - the 80 prompts of CLIP's ImageNet zero-shot evaluation (Radford et al.,
  *Learning Transferable Visual Models From Natural Language Supervision*, ICML 2021; the
  notebook ``Prompt_Engineering_for_ImageNet.ipynb`` of the CLIP repository).
- ``imagenet7`` - the 7 of them that Tip-Adapter ensembles (Zhang et al., *Tip-Adapter:
  Training-free Adaption of CLIP for Few-shot Classification*, ECCV 2022), chosen in that
  notebook by forward selection on ImageNet.
- ``photo`` - the single prompt ``"a photo of a {}."`` (CLIP's default, CoOp's baseline).
- ``description`` - ``"{}, which {description}."``: a class name joined to one of its
  descriptions, the form of Menon & Vondrick (*Visual Classification via Description from Large
  Language Models*, ICLR 2023), who prompt with "{category} which (is/has/etc) {descriptor}".
  Write descriptions to follow "which": ``"has a long neck"``, ``"is a large grey mammal"``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from unseen.core.errors import SpecError
from unseen.core.registry import Registry

DESCRIPTION_FIELD = "description"


@dataclass(frozen=True)
class TemplateSet:
    """Named prompt templates; ``for_descriptions`` sets also take a ``{description}`` field."""

    name: str
    templates: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.templates:
            raise SpecError(f"template set '{self.name}' is empty; give at least one template.")
        kinds = {_fields(t, self.name) for t in self.templates}
        if len(kinds) > 1:
            raise SpecError(
                f"template set '{self.name}' mixes templates with and without '{{{DESCRIPTION_FIELD}}}'; "
                "keep class-name templates and description templates in separate sets."
            )

    @property
    def for_descriptions(self) -> bool:
        return _fields(self.templates[0], self.name)

    def fill(self, class_name: str, description: str | None = None) -> list[str]:
        """Every template of the set with ``class_name`` (and ``description``) filled in."""
        if self.for_descriptions != (description is not None):
            need = "a description" if self.for_descriptions else "no description"
            raise SpecError(
                f"template set '{self.name}' takes {need}; use class-name sets (e.g. 'photo') for "
                "templates and description sets (e.g. 'description') for description_templates."
            )
        extra = {DESCRIPTION_FIELD: description} if description is not None else {}
        return [t.format(class_name, **extra) for t in self.templates]


def _fields(template: str, set_name: str) -> bool:
    """Whether ``template`` takes a description; raises unless its fields are ``{}`` [+ description]."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise SpecError(
            f"template '{template}' of set '{set_name}' is not a valid pattern ({exc})."
        ) from None
    positional = [f for f in fields if f == ""]
    named = set(fields) - {""}
    if len(positional) != 1 or named - {DESCRIPTION_FIELD}:
        raise SpecError(
            f"template '{template}' of set '{set_name}' must contain the class-name field '{{}}' "
            f"exactly once and no other field than '{{{DESCRIPTION_FIELD}}}'; e.g. 'a photo of a {{}}.'."
        )
    return DESCRIPTION_FIELD in named


IMAGENET80 = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

IMAGENET7 = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

TEMPLATE_SETS: Registry[TemplateSet] = Registry(
    "template set", fix="Or give one template with '{}' for the class name, e.g. 'a photo of the digit {}.'."
)


def register_template_set(template_set: TemplateSet) -> TemplateSet:
    """Make ``template_set`` available by its name; names are unique."""
    return TEMPLATE_SETS.register(template_set.name)(template_set)


for _set in (
    TemplateSet("imagenet80", IMAGENET80),
    TemplateSet("imagenet7", IMAGENET7),
    TemplateSet("photo", ("a photo of a {}.",)),
    TemplateSet("description", ("{}, which {description}.",)),
):
    register_template_set(_set)


def template_set(name: str | TemplateSet) -> TemplateSet:
    """The set registered as ``name``; a string holding ``{}`` is a one-template set of its own."""
    if isinstance(name, TemplateSet):
        return name
    if "{" in name and name not in TEMPLATE_SETS:
        return TemplateSet(name, (name,))
    return TEMPLATE_SETS[name]
