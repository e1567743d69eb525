"""``gzsl-transductive-v1``: ``gzsl-ps-v1`` for methods that also train on unlabelled test features.

Transductive zero-shot learning (Fu et al., TPAMI 2015; in GZSL e.g. Xian et al., f-VAEGAN-D2,
CVPR 2019; Wang et al., Bi-VAEGAN, CVPR 2023) lets a method see the test features, never their
labels. The rule is ``gzsl-ps-v1``'s (:mod:`unseen.protocols.gzsl`: selection on a validation
task built from ``train``, refit on ``train``, one evaluation on test) with one addition: every
fit of a ``transductive`` method also receives ``unlabelled``, an array of features and nothing
else, built by :func:`unlabelled_features` from the task being fitted:

* on the validation task, its own held-out rows (pseudo-seen holdout and pseudo-unseen classes,
  all drawn from ``train``), so selection never sees a real test row;
* on the final refit, the real ``test_seen`` and ``test_unseen`` features.

Which test features: both parts, pooled and shuffled with the protocol seed. The papers' codes
pass the ``test_unseen`` features alone, which tells the method which test rows are unseen (a
label bit per row that a deployed GZSL system would not have); pooling gives no labels, no
seen/unseen flags and no order. Methods therefore model the unlabelled set as a mixture over all
classes, which is harder than the papers' setting and not comparable to their numbers.

Only ``transductive`` methods run here; an inductive one is refused when first fitted (it would
only repeat its ``gzsl-ps-v1`` number under another protocol name, inviting comparisons between
tables). Records carry ``"transductive": true`` and the protocol's name, so result tables
(``unseen results``) keep these runs in a table of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from unseen.data.model import SplitName, ZSLDataset
from unseen.methods.base import GZSLMethod
from unseen.protocols.gzsl import PROTOCOLS, FitCache, GZSLProtocol

UNLABELLED_PARTS = (SplitName.TEST_SEEN, SplitName.TEST_UNSEEN)
"""The splits of a task whose features (only) a transductive fit receives."""


def unlabelled_features(task: ZSLDataset, seed: int) -> np.ndarray:
    """``task``'s ``test_seen`` and ``test_unseen`` features, pooled and shuffled with ``seed``:
    a fresh ``(m, d)`` array that carries no labels, no roles and no order."""
    rows = np.concatenate([task.indices(part) for part in UNLABELLED_PARTS])
    order = np.random.default_rng([seed, 0x7A5D]).permutation(len(rows))
    return np.array(task.features[rows[order]], dtype=np.float32)


@dataclass(frozen=True)
class TransductiveGZSLProtocol(GZSLProtocol):
    """:class:`GZSLProtocol` whose fits also receive the fitted task's unlabelled test features."""

    name = "gzsl-transductive-v1"
    transductive = True

    def _fit(
        self,
        cache: FitCache,
        cls: type[GZSLMethod],
        params: Mapping[str, Any],
        device: str | None,
        task: ZSLDataset,
        monitor_on: ZSLDataset | None = None,
    ) -> tuple[GZSLMethod, list[dict[str, Any]] | None]:
        unlabelled = unlabelled_features(task, self.seed)
        return cache.fit(cls, params, self.seed, device, task, monitor_on, unlabelled=unlabelled)

    def _record(
        self, dataset, method, fixed, chosen, gamma, test, trials, val_task, timing
    ) -> dict[str, Any]:
        record = super()._record(dataset, method, fixed, chosen, gamma, test, trials, val_task, timing)
        parts = [p.value for p in UNLABELLED_PARTS]
        record["transductive"] = self.transductive
        record["unlabelled"] = {
            "parts": parts,
            "n": sum(len(dataset.indices(p)) for p in UNLABELLED_PARTS),
            "validation": "the validation task's own " + " + ".join(parts) + " rows (from train)",
        }
        return record


PROTOCOLS[TransductiveGZSLProtocol.name] = TransductiveGZSLProtocol
