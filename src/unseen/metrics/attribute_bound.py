"""Tight lower bounds on the worst-case error of zero-shot learning with attributes.

Mazzetto, Menghini, Yuan, Upfal and Bach, *Tight Lower Bounds on Worst-Case Guarantees for
Zero-Shot Learning with Attributes* (NeurIPS 2022, arXiv 2205.13068).

**Setting.** ``k`` classes, equally likely, and ``m`` binary attributes observed by *perfect*
detectors: an input is seen only through its attribute vector ``v`` in ``{0, 1}^m``. The
class-attribute matrix ``M`` (``k x m``, entries in ``[0, 1]``) is all that is known of the classes:
``M[y, i]`` is the probability that attribute ``i`` is present in an input of class ``y``. Each class
``y`` has some distribution ``D_y`` over attribute vectors; ``D_y`` is *consistent* with ``M`` when
its marginals are the row ``M[y]``. Nothing else about the ``D_y`` (how attributes co-occur) is known.

**The bound.** A map ``h`` from attribute vectors to classes (possibly randomized) has, on
consistent distributions ``D = (D_1..D_k)``, error ``err_D(h) = 1 - (1/k) sum_y P_{v~D_y}(h(v) = y)``.
The lower bound is

    L(M) = min_h max_{D consistent with M} err_D(h)
         = 1 - min_{D consistent} (1/k) sum_v max_y D_y(v)

(the second form: the adversary picks consistent distributions, then the best map for them is
the Bayes map; the two agree by the minimax theorem over randomized maps). No map from
attributes to classes, however it was trained, has worst-case error below ``L(M)`` on every
distribution consistent with ``M``; and ``L(M)`` is tight: the randomized map ``h*`` read off the
dual of the linear program below has worst-case error exactly ``L(M)`` (the paper's tightness
result; :func:`worst_case_error` checks it).

**The linear program** (:func:`attribute_lower_bound`): variables ``D_y(v)`` for every class and
every one of the ``2^m`` attribute vectors plus ``t_v >= D_y(v)``; minimise ``(1/k) sum_v t_v``
subject to each ``D_y`` being a distribution with marginals ``M[y]``. It has ``(k + 1) 2^m``
variables, so it is exact but exponential in the number of attributes: practical up to about
14 attributes. The paper (and its code) therefore evaluates it on a few attributes chosen
greedily (:func:`greedy_attribute_bound`: at each step the attribute that lowers the bound
most). Dropping attributes frees the adversary, so the bound on a subset is **at least** the
bound on the full matrix: the greedy curve approaches ``L(M)`` from above.

**Two classes** (:func:`pairwise_lower_bounds`): the closed form

    L([a; b]) = (1 - max_i |a_i - b_i|) / 2

(consistent distributions of two classes can be made to overlap up to total variation
``max_i |a_i - b_i|`` and no less), which is exact for any number of attributes and costs
``O(k^2 m)`` over all pairs: the pair of classes with the largest two-class bound is the pair
most likely to be confused; identical rows give 1/2, rows differing by 1 in one attribute give 0.

**A polynomial lower bound for k classes** (:func:`matching_lower_bound`): for any pairing of
the classes into disjoint pairs, the adversary can make each pair overlap as above, so
``L(M) >= (2/k) sum_{pairs} L_pair``. Together with the greedy subset bound it brackets
``L(M)`` when ``m`` is too large for the exact program; :mod:`unseen.metrics.attribute_bound_search`
closes the bracket on all attributes by column generation.

Unknown matrix entries (``NaN``, with ``allow_missing=True``) put no constraint on that
attribute of that class: the adversary may choose its frequency.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from unseen.core.errors import DataFormatError, UnseenError

__all__ = [
    "MAX_LP_ATTRIBUTES",
    "AttributeBound",
    "GreedyBound",
    "attribute_lower_bound",
    "check_class_attribute_matrix",
    "greedy_attribute_bound",
    "matching_lower_bound",
    "pairwise_lower_bounds",
    "worst_case_error",
]

#: The most attributes the exact program accepts: it has (k + 1) * 2**m variables.
MAX_LP_ATTRIBUTES = 16


def check_class_attribute_matrix(
    matrix: np.ndarray, name: str = "class-attribute matrix", allow_missing: bool = False
) -> np.ndarray:
    """``matrix`` as a float64 ``(k, m)`` array of probabilities, or a clear error.

    Rows are classes, columns attributes, entries ``P(attribute present | class)`` in ``[0, 1]``.
    ``NaN`` marks an unknown entry and is accepted only with ``allow_missing``.
    """
    arr = np.asarray(matrix)
    if arr.dtype.kind not in "biuf":
        raise DataFormatError(
            f"{name}: must be numeric, got dtype {arr.dtype}. Fix: pass a (k x m) float array."
        )
    arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise DataFormatError(
            f"{name}: must be 2-D (k classes x m attributes), got shape {arr.shape}. Fix: one row per class."
        )
    k, m = arr.shape
    if k < 2 or m < 1:
        raise DataFormatError(
            f"{name}: has shape {arr.shape}; the bound needs at least 2 classes (rows) and 1 attribute "
            "(column). Fix: pass the rows of the classes to tell apart (e.g. the unseen test classes)."
        )
    if np.isinf(arr).any():
        raise DataFormatError(f"{name}: contains infinite entries. Fix: entries are probabilities in [0, 1].")
    nan = np.isnan(arr)
    if nan.any() and not allow_missing:
        rows = np.flatnonzero(nan.any(axis=1))
        raise DataFormatError(
            f"{name}: contains NaN in {int(nan.sum())} entries (rows {rows[:5].tolist()}). Fix: fill them, "
            "or pass allow_missing=True to treat them as unknown (no constraint on that attribute)."
        )
    known = arr[~nan]
    if known.size and (known.min() < 0.0 or known.max() > 1.0):
        lo, hi = float(known.min()), float(known.max())
        if lo >= 0.0 and hi <= 100.0:
            hint = "It looks like percentages: divide by 100."
        else:
            hint = (
                "These are not attribute probabilities (an embedding or normalised semantics?); the bound "
                "needs the raw per-class attribute frequencies (for xlsa17: original_att)."
            )
        raise DataFormatError(f"{name}: entries must lie in [0, 1], found [{lo:g}, {hi:g}]. Fix: {hint}")
    return arr


def pairwise_lower_bounds(matrix: np.ndarray, allow_missing: bool = False) -> np.ndarray:
    """The exact two-class bound for every pair of classes, ``(k, k)``; the diagonal is NaN.

    ``B[a, b] = (1 - max_i |M[a, i] - M[b, i]|) / 2``: the worst-case error (averaged over the two
    classes) of the best map telling class ``a`` from class ``b`` by their attributes. Large values
    flag pairs a zero-shot model is likely to confuse. Attributes unknown for either class are
    skipped (the adversary can match them).
    """
    arr = check_class_attribute_matrix(matrix, allow_missing=allow_missing)
    k = arr.shape[0]
    dist = np.zeros((k, k))
    for a in range(k):  # one row at a time keeps memory at k * m (SUN: 717 x 102)
        diff = np.abs(arr[a][None, :] - arr)
        dist[a] = np.max(np.where(np.isnan(diff), 0.0, diff), axis=1)
    bounds = (1.0 - dist) / 2.0
    np.fill_diagonal(bounds, np.nan)
    return bounds


def matching_lower_bound(pairwise: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
    """A lower bound on the k-class bound from disjoint pairs: ``(2/k) sum_pairs B[a, b]``.

    ``pairwise`` is :func:`pairwise_lower_bounds`' matrix. The pairs are matched greedily, largest
    two-class bound first (any disjoint pairing gives a valid bound; greedy is within a factor 2 of
    the best pairing). Returns the bound and the pairs used.
    """
    b = np.asarray(pairwise, dtype=np.float64)
    k = b.shape[0]
    iu = np.triu_indices(k, 1)
    order = np.argsort(-b[iu], kind="stable")
    used = np.zeros(k, dtype=bool)
    pairs = []
    for idx in order:
        a, c = int(iu[0][idx]), int(iu[1][idx])
        if not (used[a] or used[c]) and b[a, c] > 0.0:
            used[a] = used[c] = True
            pairs.append((a, c))
    return float(2.0 / k * sum(b[a, c] for a, c in pairs)), pairs


@dataclass(frozen=True)
class AttributeBound:
    """The exact bound of one class-attribute matrix and an optimal pair of strategies.

    ``vectors`` ``(2^m, m)`` lists the attribute vectors (row ``v`` is the binary expansion of ``v``,
    attribute 0 the lowest bit). ``adversary`` ``(k, 2^m)``: consistent class distributions that
    make every map err at least ``bound``. ``map`` ``(2^m, k)``: a randomized map whose error is at
    most ``bound`` on every consistent distribution (rows sum to 1). ``confusion`` ``(k, k)``: row
    ``y`` is the distribution of the map's prediction on class ``y`` under the adversary, so
    ``1 - diag`` are the per-class errors at the equilibrium and off-diagonal mass shows which
    classes are confused. One optimal pair of many when the program has several optima.
    """

    bound: float
    vectors: np.ndarray
    adversary: np.ndarray
    map: np.ndarray
    confusion: np.ndarray

    @property
    def per_class_error(self) -> np.ndarray:
        return 1.0 - np.diag(self.confusion)


def _vectors(m: int) -> np.ndarray:
    return ((np.arange(2**m)[:, None] >> np.arange(m)[None, :]) & 1).astype(np.float64)


def _marginal_rows(m: int, known: np.ndarray) -> sparse.csr_matrix:
    """Rows ``[sum_v D(v) = 1, sum_{v: v_i = 1} D(v) = M_i for known i]`` over ``D``'s 2^m entries."""
    vec = _vectors(m)
    return sparse.csr_matrix(np.vstack([np.ones((1, 2**m)), vec[:, known].T]))


def _solve(c, a_ub, b_ub, a_eq, b_eq, bounds, what: str):
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        raise UnseenError(f"{what}: the linear program failed ({res.message}).")
    return res


def _check_lp_size(arr: np.ndarray, max_attributes: int) -> None:
    m = arr.shape[1]
    if m > max_attributes:
        raise DataFormatError(
            f"class-attribute matrix: has {m} attributes; the exact program has (k + 1) * 2^{m} variables "
            f"(limit max_attributes={max_attributes}). Fix: pass a subset of columns, use "
            "greedy_attribute_bound (the paper's greedy selection), or pairwise_lower_bounds / "
            "matching_lower_bound, which are polynomial."
        )


def attribute_lower_bound(
    matrix: np.ndarray, allow_missing: bool = False, max_attributes: int = MAX_LP_ATTRIBUTES
) -> AttributeBound:
    """The exact tight lower bound ``L(M)`` of Mazzetto et al. (NeurIPS 2022) by linear programming.

    See the module docstring for the definition. Exponential in the number of attributes ``m``:
    refuses ``m > max_attributes``.
    """
    arr = check_class_attribute_matrix(matrix, allow_missing=allow_missing)
    _check_lp_size(arr, max_attributes)
    k, m = arr.shape
    n_v = 2**m
    known = ~np.isnan(arr)
    # x = [D_1(.), ..., D_k(.), t(.)]; minimise (1/k) sum_v t_v.
    c = np.concatenate([np.zeros(k * n_v), np.full(n_v, 1.0 / k)])
    blocks = [_marginal_rows(m, known[y]) for y in range(k)]
    a_eq = sparse.hstack(
        [sparse.block_diag(blocks, format="csr"), sparse.csr_matrix((sum(b.shape[0] for b in blocks), n_v))]
    )
    b_eq = np.concatenate([np.concatenate([[1.0], arr[y, known[y]]]) for y in range(k)])
    # D_y(v) - t_v <= 0 for every class and vector.
    eye = sparse.identity(n_v, format="csr")
    a_ub = sparse.hstack([sparse.identity(k * n_v, format="csr"), -sparse.vstack([eye] * k)], format="csr")
    bounds = [(0, None)] * (k * n_v) + [(None, None)] * n_v  # t free: its dual pins sum_y h(y|v) = 1
    res = _solve(c, a_ub, np.zeros(k * n_v), a_eq, b_eq, bounds, "attribute_lower_bound")
    adversary = np.clip(res.x[: k * n_v].reshape(k, n_v), 0.0, None)
    adversary /= adversary.sum(axis=1, keepdims=True)
    # The duals of D_y(v) <= t_v are -(1/k) h(y | v): the minimax map.
    weights = np.clip(-res.ineqlin.marginals.reshape(k, n_v).T, 0.0, None)
    total = weights.sum(axis=1, keepdims=True)
    h = np.where(total > 0, weights / np.where(total > 0, total, 1.0), 1.0 / k)
    return AttributeBound(
        bound=float(1.0 - res.fun),
        vectors=_vectors(m),
        adversary=adversary,
        map=h,
        confusion=adversary @ h,
    )


def worst_case_error(
    matrix: np.ndarray, randomized_map: np.ndarray, allow_missing: bool = False
) -> tuple[float, np.ndarray]:
    """The worst-case error of a randomized map over all distributions consistent with ``matrix``.

    ``randomized_map`` is ``(2^m, k)``: row ``v`` is the distribution of the predicted class for
    attribute vector ``v`` (as :attr:`AttributeBound.vectors` orders them). The worst case
    decouples by class: class ``y``'s worst distribution minimises ``sum_v D_y(v) h(y | v)`` under its
    marginals, one small program per class. Returns the error and the per-class worst-case errors.
    """
    arr = check_class_attribute_matrix(matrix, allow_missing=allow_missing)
    _check_lp_size(arr, MAX_LP_ATTRIBUTES)
    k, m = arr.shape
    h = np.asarray(randomized_map, dtype=np.float64)
    if h.shape != (2**m, k):
        raise DataFormatError(
            f"randomized_map: must have shape (2^m, k) = {(2**m, k)}, got {h.shape}. Fix: one row per "
            "attribute vector, one column per class."
        )
    known = ~np.isnan(arr)
    errors = np.empty(k)
    for y in range(k):
        res = _solve(
            h[:, y],
            None,
            None,
            _marginal_rows(m, known[y]),
            np.concatenate([[1.0], arr[y, known[y]]]),
            (0, None),
            "worst_case_error",
        )
        errors[y] = 1.0 - res.fun
    return float(errors.mean()), errors


@dataclass(frozen=True)
class GreedyBound:
    """The greedy selection: ``attributes[:s]`` and ``bounds[s - 1]``, the exact bound on them."""

    attributes: list[int]
    bounds: list[float]


def greedy_attribute_bound(matrix: np.ndarray, n_attributes: int, allow_missing: bool = False) -> GreedyBound:
    """The paper's greedy attribute selection: add, one at a time, the attribute whose addition
    gives the lowest exact bound, up to ``n_attributes`` attributes.

    Each ``bounds[s - 1]`` is the tight bound for a zero-shot problem restricted to the first ``s``
    selected attributes, and an upper estimate of the bound on the full matrix. Costs
    ``sum_s (m - s + 1)`` programs of ``(k + 1) 2^s`` variables. Ties go to the lowest column.
    """
    arr = check_class_attribute_matrix(matrix, allow_missing=allow_missing)
    if not 1 <= n_attributes <= min(arr.shape[1], MAX_LP_ATTRIBUTES):
        raise DataFormatError(
            f"greedy_attribute_bound: n_attributes={n_attributes} must be between 1 and "
            f"min(m, {MAX_LP_ATTRIBUTES}) = {min(arr.shape[1], MAX_LP_ATTRIBUTES)}. Fix: choose fewer."
        )
    chosen: list[int] = []
    bounds: list[float] = []
    for _ in range(n_attributes):
        best = (np.inf, -1)
        for i in itertools.filterfalse(set(chosen).__contains__, range(arr.shape[1])):
            value = attribute_lower_bound(arr[:, [*chosen, i]], allow_missing=allow_missing).bound
            if value < best[0] - 1e-12:
                best = (value, i)
        chosen.append(best[1])
        bounds.append(best[0])
    return GreedyBound(attributes=chosen, bounds=bounds)
