"""The source model of image-level test-time adaptation: a pretrained backbone and a linear probe.

The backbone (e.g. EfficientNet-Lite0, whose BatchNorm layers the BN-level methods adapt) stays
as pretrained; a linear head is fitted on its features of the source domains' images. Its L2
strength is chosen on a held-out part of the source domains (DomainBed's training-domain
validation: each source domain's ``out`` split, drawn from the trial seed), never on a target
domain. TTA methods then wrap ``(featurizer, head)`` like any trained DG model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from unseen.core.errors import SpecError
from unseen.data.domains import DomainDataset
from unseen.methods.tta.base import SourceModel
from unseen.nn.linear_head import select_linear_head


def probe_source(
    featurizer: nn.Module,
    features: DomainDataset,
    target_domains: Sequence[int],
    trial_seed: int = 0,
    holdout_fraction: float = 0.2,
) -> SourceModel:
    """Fit the head on ``features`` (the backbone's, one row per image) of the non-target domains.

    ``features`` holds every image's backbone features with its label and domain; the head is
    fitted on the source domains' ``in`` splits and chosen on their ``out`` splits, which are
    also the source memory.
    """
    sources = [k for k in range(features.n_domains) if k not in set(target_domains)]
    if not sources:
        raise SpecError(f"{features.name}: every domain is a target; leave at least one as the source.")
    splits = features.in_out_split(trial_seed, holdout_fraction)
    rows_in = np.concatenate([splits[k][0] for k in sources])
    rows_out = np.concatenate([splits[k][1] for k in sources])
    head, weight_decay, accuracy = select_linear_head(
        (features.inputs[rows_in], features.labels[rows_in]),
        (features.inputs[rows_out], features.labels[rows_out]),
        features.n_classes,
    )
    memory = (features.inputs[rows_in], features.labels[rows_in])
    return SourceModel(
        featurizer=featurizer,
        classifier=head,
        memory=lambda: memory,
        info={
            "source_domains": [features.domain_names[k] for k in sources],
            "weight_decay": weight_decay,
            "source_val_accuracy": {str(k): 100.0 * v for k, v in accuracy.items()},
            "trial_seed": trial_seed,
            "holdout_fraction": holdout_fraction,
        },
    )
