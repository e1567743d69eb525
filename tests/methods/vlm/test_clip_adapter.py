"""CLIP-Adapter: the official bottleneck, and the residual ratio's end points."""

from __future__ import annotations

import numpy as np
import torch

from methods.vlm.planted import planted_pairs
from unseen.methods.vlm.clip_adapter import Bottleneck, CLIPAdapter
from unseen.methods.vlm.zero_shot import ZeroShot


def test_bottleneck_has_no_biases_a_quarter_width_and_is_positively_homogeneous():
    adapter = Bottleneck(64, 4, torch.Generator().manual_seed(0))
    assert [tuple(p.shape) for p in adapter.parameters()] == [(16, 64), (64, 16)]
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(adapter(3.0 * x), 3.0 * adapter(x))


def test_ratio_zero_is_zero_shot_and_training_changes_the_scores_otherwise():
    data = planted_pairs()
    support, _ = data.shots(4)
    X = data.test_features
    untouched = CLIPAdapter(ratio=0.0, epochs=3, device="cpu").fit(support)
    np.testing.assert_allclose(untouched.scores(X), ZeroShot().fit(support).scores(X), atol=1e-4)
    adapted = CLIPAdapter(epochs=3, device="cpu").fit(support)
    assert not np.allclose(adapted.scores(X), untouched.scores(X), atol=1e-2)
