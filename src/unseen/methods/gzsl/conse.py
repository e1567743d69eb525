"""ConSE: a seen-class classifier's top predictions, mapped into the semantic space."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from unseen.core.arrays import unit_rows
from unseen.core.registry import HParam
from unseen.data.model import TrainSet
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.preprocessing import (
    FEATURE_NORMS,
    SEMANTIC_NORMS,
    FeatureNorm,
    normalize_semantics,
    seen_local_labels,
)
from unseen.methods.registry import GZSL


def conse_embedding(probs: np.ndarray, seen_semantics: np.ndarray, top_k: int) -> np.ndarray:
    """``(n, k)``: per row of ``probs`` (``(n, z)`` seen-class probabilities), the semantics of its
    ``top_k`` most probable seen classes averaged with those probabilities as weights
    (renormalised to sum to one): ConSE's ``f(x) = 1/Z sum_t p(y_t | x) s(y_t)``."""
    top_k = min(top_k, probs.shape[1])
    top = np.argpartition(-probs, top_k - 1, axis=1)[:, :top_k]
    weights = np.take_along_axis(probs, top, axis=1)
    weights = weights / weights.sum(axis=1, keepdims=True)
    return np.einsum("nt,ntk->nk", weights, seen_semantics[top])


@GZSL.register("conse")
class ConSE(GZSLMethod):
    """ConSE (Norouzi, Mikolov, Bengio, Singer, Shlens, Frome, Corrado, Dean, *Zero-Shot Learning by
    Convex Combination of Semantic Embeddings*, ICLR 2014).

    No projection is learned: a softmax classifier over the seen classes (here multinomial
    logistic regression on the embeddings, L2 strength ``1 / C``; the paper uses the ImageNet
    CNN's own softmax) gives ``p(y | x)``, and an image is embedded as the probability-weighted
    mean of the semantics of its ``top_k`` most probable seen classes (the paper's ``T``, 10).
    Every class, seen or unseen, is scored by the cosine similarity of its semantics to that
    embedding. ``top_k`` and ``C`` are chosen on the validation task.
    """

    paper = (
        "Norouzi, Mikolov, Bengio, Singer, Shlens, Frome, Corrado, Dean. Zero-Shot Learning by Convex "
        "Combination of Semantic Embeddings. ICLR 2014."
    )
    hparams = (
        HParam("top_k", 10, grid=(1, 3, 10), help="seen classes whose semantics are combined (T)"),
        HParam("C", 1.0, grid=(0.1, 1.0, 10.0), help="inverse L2 strength of the seen-class classifier"),
        HParam("max_iter", 1000, help="L-BFGS iterations of the classifier"),
        HParam("feature_norm", "l2", help="feature normalisation", choices=FEATURE_NORMS),
        HParam("semantic_norm", "l2", help="class-semantics normalisation", choices=SEMANTIC_NORMS),
    )

    def _fit(self, train: TrainSet) -> None:
        p = self.params
        self._feature_norm = FeatureNorm.fit(p["feature_norm"], train.features)
        semantics = normalize_semantics(train.classes.semantics, p["semantic_norm"])
        seen = train.classes.seen_ids
        labels = seen_local_labels(np.asarray(train.labels), seen)
        self._classifier = LogisticRegression(C=p["C"], max_iter=p["max_iter"]).fit(
            self._feature_norm(train.features), labels
        )
        self._seen_semantics = semantics[seen].astype(np.float64)
        self._prototypes = unit_rows(semantics.astype(np.float64))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        probs = self._classifier.predict_proba(self._feature_norm(X))
        embedded = conse_embedding(probs, self._seen_semantics, self.params["top_k"])
        return unit_rows(embedded) @ self._prototypes.T
