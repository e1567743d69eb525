"""Loki: the Fréchet mean of a trained classifier's softmax under a metric on the labels."""

from __future__ import annotations

import numpy as np

from unseen.core.registry import HParam
from unseen.data.class_graph import path_distances
from unseen.methods.kg.base import KGMethod, KGTask, softmax, with_bias_input
from unseen.methods.registry import KG


def frechet_scores(probs: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """``-sum_i p_i d(y, y_i)^2`` for each candidate ``y``: ``probs`` ``(n, k)`` over the ``k``
    observed classes, ``distances`` ``(k, m)`` from them to the ``m`` candidates. The arg-max is
    the Fréchet mean of the distribution."""
    return -(probs @ (np.asarray(distances, dtype=np.float64) ** 2))


@KG.register("loki")
class Loki(KGMethod):
    """Loki (Roberts, Li, Adila, Cromp, Huang, Zhao, Sala, *Geometry-Aware Adaptation for Pretrained
    Models*, NeurIPS 2023).

    Training-free: a trained classifier's softmax over the classes it knows is read as a
    distribution on a metric space of labels, and the prediction is its Fréchet mean over the
    whole label space, ``argmin_y sum_i p(y_i | x) d(y, y_i)^2`` - so a class never trained on
    can be predicted when it sits between the likely ones: arg max swapped for the Fréchet mean.
    The metric here is an external one, the shortest-path distance in the undirected WordNet
    class graph; the score of a candidate is its negated Fréchet variance, so hit@k ranks by it.
    """

    paper = (
        "Roberts, Li, Adila, Cromp, Huang, Zhao, Sala. Geometry-Aware Adaptation for Pretrained Models "
        "(Loki). NeurIPS 2023."
    )
    hparams = (HParam("temperature", 1.0, help="softmax temperature of the classifier's logits"),)

    def _fit(self, task: KGTask) -> None:
        self._distances = path_distances(task.graph, np.asarray(task.seen), np.asarray(task.candidates))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        logits = with_bias_input(X) @ self._task.seen_logit_rows.T
        return frechet_scores(softmax(logits / self.params["temperature"]), self._distances)
