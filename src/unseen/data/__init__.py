"""Data model, loaders and data specs."""

from unseen.data.model import ClassTable, Split, SplitName, TrainSet, ZSLDataset
from unseen.data.specs import load_dataset, parse_spec

__all__ = [
    "ClassTable",
    "Split",
    "SplitName",
    "TrainSet",
    "ZSLDataset",
    "load_dataset",
    "parse_spec",
]
