"""The probed source model of image-level TTA: fitted and chosen on source domains only."""

import numpy as np
import torch

from unseen.data.domains import DomainDataset
from unseen.methods.tta.pretrained import probe_source
from unseen.nn.linear_head import fit_linear_head


def _features(target_scale: float) -> DomainDataset:
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(3), 40)
    centres = rng.normal(size=(3, 8)) * 3
    inputs = centres[labels] + rng.normal(size=(120, 8))
    domains = np.repeat(np.arange(3), 40)
    inputs[domains == 2] = rng.normal(size=(40, 8)) * target_scale
    return DomainDataset("f", inputs, labels, domains, ("a", "b", "c"), ("s1", "s2", "t"))


def test_target_domain_features_cannot_change_the_source_model():
    one = probe_source(torch.nn.Identity(), _features(1.0), target_domains=[2])
    other = probe_source(torch.nn.Identity(), _features(100.0), target_domains=[2])
    assert torch.equal(one.classifier.weight, other.classifier.weight)
    assert one.info["source_domains"] == ["s1", "s2"]
    assert len(one.memory()[0]) == 64  # the in splits (80%) of the two source domains
    assert max(one.info["source_val_accuracy"].values()) == 100.0


def test_the_head_applies_to_raw_features():
    # The head standardises internally; folded back, it must score raw features like sklearn would.
    data = _features(1.0)
    head = fit_linear_head(data.inputs * 50 + 7, data.labels, 3, weight_decay=1e-3)
    with torch.no_grad():
        predicted = head(torch.as_tensor(data.inputs[:80] * 50 + 7)).argmax(1).numpy()
    assert (predicted == data.labels[:80]).mean() == 1.0
