"""The contract of the knowledge-graph methods: a trained classifier's rows for the seen classes,
a class graph, and scores for the held-out classes too.

A :class:`KGTask` is what such a method may use: the class graph (:mod:`unseen.data.class_graph`), a
word embedding of every node's name, which graph nodes are the seen classes and their classifier
rows (the weights of a trained head with its bias as the last column), and which nodes are the
candidate classes to score - the seen ones and the held-out ones. The held-out rows are never in
the task (only the oracle gets them, explicitly). ``scores(X)`` takes backbone features (the input
of that head) and returns ``(n, n_candidates)`` scores, higher meaning more likely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unseen.core.device import fork_rng
from unseen.core.errors import DataError, NotFittedError
from unseen.core.method import Method
from unseen.data.class_graph import ClassGraph


@dataclass(frozen=True)
class KGTask:
    """``word_vectors`` ``(n_nodes, k)``; ``seen`` node ids of the seen classes with ``seen_rows``
    ``(n_seen, d + 1)`` (head weights, bias last); ``candidates`` node ids of every class scored,
    the seen ones included where the task is generalized."""

    graph: ClassGraph
    word_vectors: np.ndarray
    seen: np.ndarray
    seen_rows: np.ndarray
    candidates: np.ndarray

    def __post_init__(self) -> None:
        n = self.graph.n_nodes
        if self.word_vectors.shape[0] != n:
            raise DataError(f"word_vectors has {self.word_vectors.shape[0]} rows for a graph of {n} nodes.")
        if self.seen_rows.shape[0] != len(self.seen):
            raise DataError(
                f"seen_rows has {self.seen_rows.shape[0]} rows for {len(self.seen)} seen classes."
            )
        for name in ("seen", "candidates"):
            ids = np.asarray(getattr(self, name))
            if ids.size and (ids.min() < 0 or ids.max() >= n or len(np.unique(ids)) != len(ids)):
                raise DataError(f"{name} must list distinct node ids of the graph (0..{n - 1}).")

    @property
    def seen_logit_rows(self) -> np.ndarray:
        return np.asarray(self.seen_rows, dtype=np.float64)


def with_bias_input(X: np.ndarray) -> np.ndarray:
    """``[X, 1]``: features with a constant column, so that rows ``[w, b]`` give ``w.x + b``."""
    X = np.asarray(X, dtype=np.float64)
    return np.hstack([X, np.ones((len(X), 1))])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class KGMethod(Method):
    """``fit(task) -> self``; ``scores(X) -> (n, n_candidates)``. Subclasses implement :meth:`_fit`
    and :meth:`_scores`; methods that predict classifier rows derive from :class:`RowPredictor`."""

    role = "knowledge-graph method"

    def __init__(self, seed: int = 0, device: str | None = None, **hparams) -> None:
        self._set_params(hparams, seed, device)
        self._task: KGTask | None = None

    def fit(self, task: KGTask) -> KGMethod:
        self._task = task
        self._fit(task)
        return self

    def scores(self, X: np.ndarray) -> np.ndarray:
        if self._task is None:
            raise NotFittedError(f"knowledge-graph method '{self.name}' must be fitted before it can score.")
        return self._checked_scores(self._scores(np.asarray(X)), len(X), len(self._task.candidates))

    def _fit(self, task: KGTask) -> None:
        raise NotImplementedError

    def _scores(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class RowPredictor(KGMethod):
    """A method that predicts one classifier row ``[w, b]`` per candidate class (:attr:`rows`);
    a sample's score is ``w.x + b``."""

    rows: np.ndarray

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return with_bias_input(X) @ self.rows.T

    def _fit_rows(self, task: KGTask, network, inputs, targets, loss_fn, device) -> None:
        """Train a graph network on the seen rows (:func:`train_rows`, dropout seeded by the
        method's seed) and keep its predictions for the candidate classes as :attr:`rows`."""
        p = self.params
        seen = torch.as_tensor(task.seen, device=device)
        with fork_rng(device):
            torch.manual_seed(self.seed)
            train_rows(network, inputs, seen, targets, loss_fn, p["epochs"], p["lr"], p["weight_decay"])
        with torch.no_grad():
            self.rows = network(inputs)[torch.as_tensor(task.candidates)].double().cpu().numpy()


def train_rows(
    network: torch.nn.Module,
    inputs: torch.Tensor,
    seen: torch.Tensor,
    targets: torch.Tensor,
    loss_fn,
    epochs: int,
    lr: float,
    weight_decay: float,
) -> None:
    """Full-batch Adam (L2 ``weight_decay`` in the gradient, as both papers' code) of ``network``
    on ``loss_fn(outputs[seen], targets)``; the caller seeds the dropout draws."""
    optimizer = torch.optim.Adam(network.parameters(), lr=lr, weight_decay=weight_decay)
    network.train()
    for _ in range(epochs):
        loss = loss_fn(network(inputs)[seen], targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()


def sparse_tensor(matrix, device: torch.device) -> torch.Tensor:
    """A scipy sparse matrix as a float32 torch sparse COO tensor on ``device``."""
    coo = matrix.tocoo()
    indices = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.int64)
    values = torch.as_tensor(coo.data, dtype=torch.float32)
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True).coalesce().to(device)


def unit_word_vectors(task: KGTask, device: torch.device) -> torch.Tensor:
    """The task's word vectors, L2-normalised per node, as a float32 tensor."""
    vectors = torch.as_tensor(np.asarray(task.word_vectors), dtype=torch.float32, device=device)
    return torch.nn.functional.normalize(vectors, dim=1)
