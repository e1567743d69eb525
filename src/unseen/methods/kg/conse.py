"""ConSE over a trained head: its seen-class softmax mapped into the word-vector space."""

from __future__ import annotations

import numpy as np

from unseen.core.arrays import unit_rows
from unseen.core.registry import HParam
from unseen.methods.gzsl.conse import conse_embedding
from unseen.methods.kg.base import KGMethod, KGTask, softmax, with_bias_input
from unseen.methods.registry import KG


@KG.register("conse")
class KGConSE(KGMethod):
    """ConSE (Norouzi, Mikolov, Bengio, Singer, Shlens, Frome, Corrado, Dean, *Zero-Shot Learning by
    Convex Combination of Semantic Embeddings*, ICLR 2014) as the paper runs it on ImageNet: the
    trained CNN's own softmax over the seen classes, the probability-weighted mean of the word
    vectors of its ``top_k`` (T = 10) most probable seen classes, and every candidate class scored
    by the cosine of its word vector to that mean. No graph edge is used; the baseline of the
    GCNZ and DGP papers."""

    paper = (
        "Norouzi, Mikolov, Bengio, Singer, Shlens, Frome, Corrado, Dean. Zero-Shot Learning by Convex "
        "Combination of Semantic Embeddings. ICLR 2014."
    )
    hparams = (HParam("top_k", 10, help="seen classes whose word vectors are combined (T)"),)

    def _fit(self, task: KGTask) -> None:
        vectors = unit_rows(np.asarray(task.word_vectors, dtype=np.float64))
        self._seen_vectors = vectors[task.seen]
        self._prototypes = vectors[task.candidates]

    def _scores(self, X: np.ndarray) -> np.ndarray:
        probs = softmax(with_bias_input(X) @ self._task.seen_logit_rows.T)
        embedded = conse_embedding(probs, self._seen_vectors, self.params["top_k"])
        return unit_rows(embedded) @ self._prototypes.T
