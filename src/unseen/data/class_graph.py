"""A class graph from the WordNet hierarchy, and the propagation matrices the graph methods use.

The graph's nodes are the classes of a task (listed first, in the task's order) and every
hypernym above them; its edges are the hypernym links among them (child -> parent, ``@`` and
``@i``). GCNZ propagates over the undirected graph with Kipf & Welling's normalisation
(:func:`gcn_adjacency`); DGP connects each node to all its ancestors and descendants, grouped
by distance (:func:`dense_groups`); Loki measures labels by the shortest-path distance of the
undirected graph (:func:`path_distances`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from unseen.data.wordnet import WordNet


@dataclass(frozen=True)
class ClassGraph:
    """``nodes[i]`` the wnid of node ``i``, ``names[i]`` its name; ``edges`` ``(m, 2)`` rows
    ``(child, parent)``."""

    nodes: tuple[str, ...]
    names: tuple[str, ...]
    edges: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def index(self, wnids: Sequence[str]) -> np.ndarray:
        where = {w: i for i, w in enumerate(self.nodes)}
        return np.array([where[w] for w in wnids], dtype=np.int64)

    def parent_matrix(self) -> sp.csr_matrix:
        """``P[child, parent] = 1`` for each hypernym edge."""
        n = self.n_nodes
        ones = np.ones(len(self.edges))
        return sp.csr_matrix((ones, (self.edges[:, 0], self.edges[:, 1])), shape=(n, n))


def class_graph(wordnet: WordNet, classes: Sequence[str]) -> ClassGraph:
    """The graph of ``classes`` (wnids, first and in this order) and all their WordNet ancestors."""
    nodes = tuple(wordnet.ancestors(classes))
    where = {w: i for i, w in enumerate(nodes)}
    edges = [(where[w], where[p]) for w in nodes for p in wordnet[w].hypernyms]
    array = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return ClassGraph(nodes, tuple(wordnet[w].name for w in nodes), array)


def gcn_adjacency(graph: ClassGraph) -> sp.csr_matrix:
    """``D^-1/2 (A + I) D^-1/2`` of the undirected graph (Kipf & Welling, ICLR 2017; GCNZ)."""
    parents = graph.parent_matrix()
    a = ((parents + parents.T) > 0).astype(np.float64) + sp.identity(graph.n_nodes, format="csr")
    inv_sqrt = 1.0 / np.sqrt(np.asarray(a.sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(inv_sqrt) @ a @ sp.diags(inv_sqrt))


def ancestor_distances(graph: ClassGraph) -> sp.csr_matrix:
    """``D[u, x] = k + 1`` where ``x`` is ``u`` itself (``k = 0``) or an ancestor of ``u`` whose
    shortest upward path from ``u`` has ``k`` edges; zero elsewhere (sparse)."""
    up = graph.parent_matrix()
    hops = shortest_path(up, directed=True, unweighted=True)
    rows, cols = np.nonzero(np.isfinite(hops))
    return sp.csr_matrix((hops[rows, cols] + 1, (rows, cols)), shape=up.shape)


def dense_groups(graph: ClassGraph, groups: int) -> tuple[list[sp.csr_matrix], list[sp.csr_matrix]]:
    """DGP's dense connections (Kampffmeyer et al., CVPR 2019), one matrix per distance group.

    Group ``k < groups - 1`` holds the pairs (node, ancestor at distance ``k``), ``k = 0`` the node
    itself; the last group every ancestor at distance ``groups - 1`` or more. Returns
    ``(from_descendants, from_ancestors)``: in ``from_descendants[k]`` row ``x`` averages the
    nodes that have ``x`` as an ancestor at that distance (``D^-1 A^T``), in ``from_ancestors[k]``
    row ``u`` averages ``u``'s ancestors at that distance (``D^-1 A``).
    """
    distances = ancestor_distances(graph).tocoo()
    hop = np.minimum(distances.data.astype(np.int64) - 1, groups - 1)
    shape = distances.shape
    down, up = [], []
    for k in range(groups):
        keep = hop == k
        a = sp.csr_matrix((np.ones(keep.sum()), (distances.row[keep], distances.col[keep])), shape=shape)
        up.append(_row_mean(a))
        down.append(_row_mean(sp.csr_matrix(a.T)))
    return down, up


def _row_mean(a: sp.csr_matrix) -> sp.csr_matrix:
    """Rows divided by their sums (empty rows stay zero)."""
    sums = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(inv) @ a)


def path_distances(graph: ClassGraph, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(len(sources), len(targets))`` shortest-path lengths (edges) in the undirected graph."""
    hops = shortest_path(graph.parent_matrix(), directed=False, unweighted=True, indices=sources)
    return hops[:, targets]
