"""Class semantics from text: prompt templates and prompt-ensembled text embeddings."""

from unseen.semantics.templates import TEMPLATE_SETS, TemplateSet, template_set
from unseen.semantics.text import class_text_embeddings, with_text_semantics

__all__ = ["TEMPLATE_SETS", "TemplateSet", "class_text_embeddings", "template_set", "with_text_semantics"]
