"""Class graphs and their propagation matrices, checked by hand on tiny hierarchies."""

from __future__ import annotations

import numpy as np

from unseen.data.class_graph import class_graph, dense_groups, gcn_adjacency, path_distances
from unseen.data.wordnet import NounSynset, WordNet


def tiny_wordnet(parents: dict[str, tuple[str, ...]]) -> WordNet:
    return WordNet({k: NounSynset(k, (f"name {k}",), v, "") for k, v in parents.items()}, "tiny")


# r <- a <- {c, d};  r <- b <- e  (child <- parent)
TREE = {"r": (), "a": ("r",), "b": ("r",), "c": ("a",), "d": ("a",), "e": ("b",)}


def test_the_graph_lists_the_classes_first_then_their_ancestors():
    graph = class_graph(tiny_wordnet(TREE), ["c", "e", "d"])
    assert graph.nodes == ("c", "e", "d", "a", "b", "r")
    assert graph.names[0] == "name c"
    edges = {(graph.nodes[u], graph.nodes[v]) for u, v in graph.edges}
    assert edges == {("c", "a"), ("e", "b"), ("d", "a"), ("a", "r"), ("b", "r")}


def test_gcn_adjacency_on_a_three_node_path():
    # x <- y -> z: y is the parent of both. With self-loops the degrees are 2, 3, 2.
    graph = class_graph(tiny_wordnet({"y": (), "x": ("y",), "z": ("y",)}), ["x", "z"])
    assert graph.nodes == ("x", "z", "y")
    a = gcn_adjacency(graph).toarray()
    s = 1 / np.sqrt(6)
    expected = np.array([[1 / 2, 0, s], [0, 1 / 2, s], [s, s, 1 / 3]])
    np.testing.assert_allclose(a, expected)


def test_dense_groups_connect_each_node_to_its_ancestors_by_distance():
    graph = class_graph(tiny_wordnet(TREE), ["c", "d", "e"])  # c d e a b r
    down, up = dense_groups(graph, groups=2)
    np.testing.assert_allclose(up[0].toarray(), np.eye(6))  # distance 0: the node itself
    np.testing.assert_allclose(down[0].toarray(), np.eye(6))
    u1 = up[1].toarray()  # distance >= 1: each node averages all its ancestors
    np.testing.assert_allclose(u1[0], [0, 0, 0, 1 / 2, 0, 1 / 2])  # c: a and r
    np.testing.assert_allclose(u1[5], np.zeros(6))  # the root has none
    d1 = down[1].toarray()  # each node averages all its descendants
    np.testing.assert_allclose(d1[5], [1 / 5, 1 / 5, 1 / 5, 1 / 5, 1 / 5, 0])  # r: c d e a b
    np.testing.assert_allclose(d1[3], [1 / 2, 1 / 2, 0, 0, 0, 0])  # a: c d
    _, up3 = dense_groups(graph, groups=3)
    np.testing.assert_allclose(up3[1].toarray()[0], [0, 0, 0, 1, 0, 0])  # c: a at distance 1
    np.testing.assert_allclose(up3[2].toarray()[0], [0, 0, 0, 0, 0, 1])  # c: r at distance 2


def test_path_distances_go_through_the_common_ancestor():
    graph = class_graph(tiny_wordnet(TREE), ["c", "d", "e"])
    d = path_distances(graph, np.array([0]), np.arange(6))
    np.testing.assert_array_equal(d, [[0, 2, 4, 1, 3, 2]])
