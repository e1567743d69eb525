"""The knowledge-graph methods on hand-checkable graphs: propagation, Loki's Fréchet mean, ConSE,
the oracle, and GCNZ / DGP recovering held-out classifier rows from the graph alone."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from unseen.core.errors import DataError, NotFittedError
from unseen.data.class_graph import class_graph, gcn_adjacency
from unseen.data.wordnet import NounSynset, WordNet
from unseen.methods import KG
from unseen.methods.kg.base import KGTask, sparse_tensor
from unseen.methods.kg.dgp import DenseGraphConvolution
from unseen.methods.kg.gcnz import GCNZNetwork
from unseen.methods.kg.loki import frechet_scores


def tiny_wordnet(parents: dict[str, tuple[str, ...]]) -> WordNet:
    return WordNet({k: NounSynset(k, (k,), v, "") for k, v in parents.items()}, "tiny")


def path_task() -> KGTask:
    """x <- y -> z; x and z seen with rows [1, 0] and [-1, 0] (1-d features plus bias); y held out."""
    graph = class_graph(tiny_wordnet({"y": (), "x": ("y",), "z": ("y",)}), ["x", "z", "y"])
    return KGTask(
        graph=graph,
        word_vectors=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        seen=np.array([0, 1]),
        seen_rows=np.array([[1.0, 0.0], [-1.0, 0.0]]),
        candidates=np.array([0, 1, 2]),
    )


def test_loki_predicts_the_frechet_mean_on_a_three_node_path():
    # p = (1/2, 1/2) on x and z: sum_i p_i d(y, y_i)^2 is 1/2*0 + 1/2*4 = 2 at x and z, 1 at y.
    loki = KG["loki"]().fit(path_task())
    np.testing.assert_allclose(loki.scores(np.array([[0.0]])), [[-2.0, -2.0, -1.0]])
    # Confident on x (p = (0.8808, 0.1192) at logits +-1): the mean stays at x (0.48 < 1 < 3.52).
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(loki.scores(np.array([[1.0]])), [[-4 * (1 - p), -4 * p, -1.0]])
    assert loki.scores(np.array([[1.0]])).argmax() == 0
    np.testing.assert_allclose(
        frechet_scores(np.array([[0.25, 0.75]]), np.array([[0, 2], [2, 0]])), [[-3, -1]]
    )


def test_conse_scores_candidates_by_cosine_to_the_weighted_word_vectors():
    conse = KG["conse"](top_k=2).fit(path_task())
    # p = (1/2, 1/2): the mean of (1, 0) and (0, 1), whose cosine with x, z, y is 0.7071, 0.7071, 1.
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(conse.scores(np.array([[0.0]])), [[s, s, 1.0]])
    top1 = KG["conse"](top_k=1).fit(path_task()).scores(np.array([[3.0]]))
    np.testing.assert_allclose(top1, [[1.0, 0.0, s]])


def test_the_oracle_scores_with_the_revealed_rows_only():
    task = path_task()
    with pytest.raises(DataError, match="reveal"):
        KG["oracle"]().fit(task)
    with pytest.raises(NotFittedError):
        KG["oracle"]().scores(np.zeros((1, 1)))
    rows = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5]])
    oracle = KG["oracle"]().reveal(rows).fit(task)
    np.testing.assert_allclose(oracle.scores(np.array([[2.0], [-1.0]])), [[2, -2, 0.5], [-1, 1, 0.5]])


def test_one_gcn_layer_is_the_normalised_adjacency_times_the_inputs():
    task = path_task()
    adjacency = sparse_tensor(gcn_adjacency(task.graph), torch.device("cpu"))
    network = GCNZNetwork(adjacency, [2, 2], 0.5, 0.2, torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.eye(2))
        out = network(torch.tensor(task.word_vectors, dtype=torch.float32)).numpy()
    s = 1 / np.sqrt(6)  # by hand: A = [[1/2, 0, s], [0, 1/2, s], [s, s, 1/3]] (nodes x, z, y)
    by_hand = np.array([[1 / 2 + s, s], [s, 1 / 2 + s], [s + 1 / 3, s + 1 / 3]])
    np.testing.assert_allclose(out, by_hand / np.linalg.norm(by_hand, axis=1, keepdims=True), rtol=1e-6)


def test_a_dense_layer_mixes_its_distance_groups_by_the_softmax_weights():
    eye = torch.eye(3).to_sparse()
    mean = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]).to_sparse()
    layer = DenseGraphConvolution([eye, mean], 2, 2, 0.0, torch.nn.Identity(), torch.Generator())
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
        layer.alpha.copy_(torch.tensor([0.0, np.log(3.0)]))  # softmax: 1/4 and 3/4
        h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
        out = layer(h).numpy()
    np.testing.assert_allclose(out, [[0.25 + 1.5, 1.5], [1.5, 0.25 + 1.5], [0.5, 0.5]])


@functools.cache
def family_task() -> tuple[KGTask, np.ndarray]:
    """Four families of four leaves under one root; each leaf's row is its family's prototype plus
    small noise. Three leaves of each family are seen, one is held out. Only the families' names
    have word vectors (random ones); the leaves' are zero, so only the graph can tell a held-out
    leaf's family."""
    rng = np.random.default_rng(0)
    parents = {"root": ()}
    for f in range(4):
        parents[f"p{f}"] = ("root",)
        for j in range(4):
            parents[f"l{f}{j}"] = (f"p{f}",)
    seen = [f"l{f}{j}" for f in range(4) for j in range(3)]
    held = [f"l{f}3" for f in range(4)]
    graph = class_graph(tiny_wordnet(parents), seen + held)
    prototypes = rng.normal(size=(4, 8))
    rows = np.array([prototypes[int(w[1])] + 0.1 * rng.normal(size=8) for w in seen + held])
    vectors = np.array([rng.normal(size=16) if w[0] != "l" else np.zeros(16) for w in graph.nodes])
    task = KGTask(
        graph=graph,
        word_vectors=vectors,
        seen=np.arange(12),
        seen_rows=rows[:12],
        candidates=np.arange(16),
    )
    return task, rows[12:]


@pytest.mark.parametrize(
    ("name", "hparams"),
    [("gcnz", {"hidden": "32,32,32,32,32", "epochs": 200}), ("dgp", {"hidden": 32, "epochs": 400})],
)
def test_graph_networks_recover_the_held_out_rows_from_the_graph(name, hparams):
    task, held_rows = family_task()
    method = KG[name](seed=0, device="cpu", **hparams).fit(task)
    predicted = method.rows[12:]
    cosine = (predicted / np.linalg.norm(predicted, axis=1, keepdims=True)) @ (
        held_rows / np.linalg.norm(held_rows, axis=1, keepdims=True)
    ).T
    assert (cosine.argmax(axis=1) == np.arange(4)).all()  # each held-out leaf gets its family's row
    assert np.diag(cosine).min() > 0.85  # measured: 0.98 (gcnz), 0.93 (dgp)
    np.testing.assert_allclose(np.linalg.norm(method.rows, axis=1), 1.0, rtol=1e-5)
    again = KG[name](seed=0, device="cpu", **hparams).fit(task)
    np.testing.assert_array_equal(again.rows, method.rows)
    assert method.scores(np.ones((3, 7))).shape == (3, 16)
