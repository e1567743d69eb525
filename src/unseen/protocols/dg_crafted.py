"""Crafted-shift validation accuracies of ``dg-lodo-v1`` checkpoints.

Efthymiadis, Tolias & Chum, *Crafting Distribution Shifts for Validation and Training in Single
Source Domain Generalization* (WACV 2025): the validation images are transformed by each
category of a bank of strong augmentations (:mod:`unseen.data.crafted_shifts`), and a model is
scored by its mean accuracy over the categories. Here the validation images are the ``out``
parts of the *training* domains; the held-out test domains are never transformed nor scored.
Each (training domain, category) pair draws its augmentations from a stream seeded by the trial
seed, so every checkpoint and every hyperparameter draw of a trial is scored on the same
shifted images, as the paper's augmented copies are made once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from unseen.core.device import stream
from unseen.core.errors import SpecError
from unseen.data.crafted_shifts import CATEGORIES, craft


def crafted_key(env: int) -> str:
    """The checkpoint field of training domain ``env``'s crafted-shift accuracy."""
    return f"env{env}_crafted_acc"


def check_images(name: str, input_shape: tuple[int, ...]) -> None:
    """Crafted shifts transform images; other inputs are refused with the way out."""
    if len(input_shape) != 3:
        raise SpecError(
            f"{name}: crafted-shift validation transforms images, but the inputs are feature vectors "
            f"of shape {tuple(input_shape)}; the paper defines no feature-space shifts. Run it on an "
            "image dataset, or leave out --crafted-shifts (sweeps: crafted_shifts = false)."
        )


@torch.no_grad()
def crafted_accuracies(
    network: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    out_parts: Mapping[int, np.ndarray],
    trial_seed: int,
    chunk: int,
) -> dict[str, float]:
    """Per training domain ``k`` (``out_parts[k]``: its ``out`` indices), the mean over the bank's
    categories of the accuracy on the part transformed by that category, as ``envK_crafted_acc``."""
    network.eval()
    out = {}
    for env, idx in out_parts.items():
        rows = torch.as_tensor(idx, device=inputs.device)
        accuracies = []
        for category in CATEGORIES:
            generator = stream(trial_seed, f"crafted-shift/{category}/env{env}")
            correct = 0
            for r in rows.split(chunk):
                predictions = network(craft(inputs[r], category, generator)).argmax(1)
                correct += int((predictions == labels[r]).sum())
            accuracies.append(correct / max(len(idx), 1))
        out[crafted_key(env)] = float(np.mean(accuracies))
    return out
