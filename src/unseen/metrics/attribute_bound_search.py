"""The bound of Mazzetto et al. (NeurIPS 2022) for matrices with too many attributes for the
exact program: column generation with certified brackets.

The exact program of :mod:`unseen.metrics.attribute_bound` has a variable ``D_y(v)`` for every class
and each of the ``2^m`` attribute vectors. An optimal adversary, however, needs few vectors (a
basic solution has at most ``k (m + 1)`` non-zero ``D_y(v)``), so the program can be solved over a
growing set of (class, vector) pairs: the *master* program.

- **Lower end (valid at every round).** The master's optimum is a set of class distributions
  consistent with the matrix, so every map errs at least ``1 - Q_master`` on them: a lower bound
  on ``L(M)``, and on the worst-case error of any zero-shot map. It starts from each class's
  comonotone distribution (``v_i = [U < M[y, i]]`` for one uniform ``U``: ``m + 1`` vectors).
- **Pricing.** With the master's duals ``mu_y`` (class total) and ``lambda_y`` (class marginals),
  a vector ``v`` can improve the master only if ``F(v) = sum_y max(0, mu_y + lambda_y . v) > 1/k``.
  Candidates come from an alternating search (active classes -> best vector for them -> active
  classes) refined by single-attribute flips, started from every class.
- **Upper end (certificate).** ``F*`` = ``max_v F(v)`` over all ``2^m`` vectors is a mixed-integer
  program (``m`` binary attributes, ``k`` binary "class active" indicators), solved by HiGHS
  within a time limit; its dual bound ``F_ub >= F*`` makes the master's duals, scaled by
  ``1 / (k F_ub)``, feasible for the full dual, so the best randomized map is right with
  probability at least ``Q_master / (k F_ub)`` on every consistent distribution:
  ``L(M) <= 1 - Q_master / (k F_ub)``. When ``F_ub <= 1/k`` the two ends meet: the bound is exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from unseen.core.errors import UnseenError
from unseen.metrics.attribute_bound import check_class_attribute_matrix

__all__ = ["BoundBracket", "bracket_lower_bound"]

_TOL = 1e-9


@dataclass(frozen=True)
class BoundBracket:
    """``lower <= L(M) <= upper`` (``upper`` is 1 when no certificate was reached)."""

    lower: float
    upper: float
    rounds: int
    pairs: int
    certified: bool
    seconds: float


def _comonotone(row: np.ndarray) -> list[np.ndarray]:
    """The support of ``v_i = [U < row_i]``: vectors with the j largest entries set, j = 0..m."""
    known = np.where(np.isnan(row), 0.0, row)
    order = np.argsort(-known, kind="stable")
    vectors = []
    v = np.zeros(len(row), dtype=bool)
    vectors.append(v.copy())
    for i in order:
        v[i] = True
        vectors.append(v.copy())
    return vectors


class _Master:
    """The program over the (class, vector) pairs found so far."""

    def __init__(self, matrix: np.ndarray):
        self.M = matrix
        self.k, self.m = matrix.shape
        self.known = ~np.isnan(matrix)
        self.vectors: list[np.ndarray] = []
        self.index: dict[bytes, int] = {}
        self.pairs: list[tuple[int, int]] = []
        self.pair_set: set[tuple[int, int]] = set()

    def add(self, y: int, v: np.ndarray) -> bool:
        key = np.packbits(v).tobytes()
        c = self.index.get(key)
        if c is None:
            c = self.index[key] = len(self.vectors)
            self.vectors.append(v.copy())
        if (y, c) in self.pair_set:
            return False
        self.pair_set.add((y, c))
        self.pairs.append((y, c))
        return True

    def solve(self):
        k, n_p, n_c = self.k, len(self.pairs), len(self.vectors)
        ys = np.array([p[0] for p in self.pairs])
        cs = np.array([p[1] for p in self.pairs])
        V = np.array(self.vectors, dtype=np.float64)  # (n_c, m)
        # Equality rows: class totals (k), then marginals (k * m, unknown ones dropped).
        rows_total = sparse.csr_matrix((np.ones(n_p), (ys, np.arange(n_p))), shape=(k, n_p))
        pv = sparse.csr_matrix(V[cs])  # (n_p, m): the vector of each pair
        # Marginal (y, i) row gets pair p when ys[p] == y and v_i = 1.
        coo = pv.tocoo()
        r = ys[coo.row] * self.m + coo.col
        marg = sparse.csr_matrix((coo.data, (r, coo.row)), shape=(k * self.m, n_p))
        keep = np.flatnonzero(self.known.ravel())
        a_eq = sparse.vstack([rows_total, marg[keep]]).tocsr()
        a_eq = sparse.hstack([a_eq, sparse.csr_matrix((a_eq.shape[0], n_c))]).tocsr()
        b_eq = np.concatenate([np.ones(k), self.M.ravel()[keep]])
        a_ub = sparse.hstack(
            [
                sparse.identity(n_p, format="csr"),
                -sparse.csr_matrix((np.ones(n_p), (np.arange(n_p), cs)), shape=(n_p, n_c)),
            ]
        ).tocsr()
        c = np.concatenate([np.zeros(n_p), np.full(n_c, 1.0 / k)])
        bounds = [(0, None)] * n_p + [(None, None)] * n_c
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n_p), A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if res.status != 0:
            raise UnseenError(f"bracket_lower_bound: the master program failed ({res.message}).")
        duals = res.eqlin.marginals
        mu = duals[:k]
        lam = np.zeros(k * self.m)
        lam[keep] = duals[k:]
        lam = lam.reshape(k, self.m)
        # The dual objective (= the optimum up to the solver's tolerance): the certificate uses it.
        dual_value = float(mu.sum() + np.where(self.known, lam * np.nan_to_num(self.M), 0.0).sum())
        return float(res.fun), dual_value, mu, lam


def _scores(mu: np.ndarray, lam: np.ndarray, V: np.ndarray) -> np.ndarray:
    return mu[None, :] + V.astype(np.float64) @ lam.T  # (n, k)


def _local_search(mu: np.ndarray, lam: np.ndarray, starts: np.ndarray, sweeps: int = 30) -> np.ndarray:
    """Vectors with high ``F``: alternate active classes and the best vector for them, then flips."""
    V = starts.copy()
    for _ in range(sweeps):
        active = _scores(mu, lam, V) > 0
        new = (active.astype(np.float64) @ lam) > 0
        if np.array_equal(new, V):
            break
        V = new
    for row in range(len(V)):  # first-improvement single flips, a few passes
        v = V[row]
        s = mu + lam @ v
        for _ in range(5):
            sign = np.where(v, -1.0, 1.0)  # flipping i adds sign_i * lam[:, i]
            gains = np.maximum(0, s[None, :] + (sign[:, None] * lam.T)).sum(axis=1) - np.maximum(0, s).sum()
            i = int(np.argmax(gains))
            if gains[i] <= _TOL:
                break
            v[i] = ~v[i]
            s = s + sign[i] * lam[:, i]
        V[row] = v
    return V


def _exact_pricing(mu: np.ndarray, lam: np.ndarray, time_limit: float) -> tuple[float, np.ndarray | None]:
    """An upper bound on ``max_v sum_y max(0, mu_y + lam_y . v)`` and the best vector found."""
    k, m = lam.shape
    top = np.maximum(0.0, mu + np.maximum(lam, 0).sum(axis=1))  # max of the score of each class
    low = np.minimum(0.0, mu + np.minimum(lam, 0).sum(axis=1))
    # x = [v (m), z (k), s (k)]; maximise sum s.
    c = np.concatenate([np.zeros(m + k), -np.ones(k)])
    eye = sparse.identity(k, format="csr")
    # s_y <= mu_y + lam_y . v when z_y = 1 (slack -low_y >= 0 frees it when z_y = 0), s_y <= top_y z_y.
    a1 = sparse.hstack([-sparse.csr_matrix(lam), sparse.diags(-low), eye]).tocsr()
    b1 = mu - low
    a2 = sparse.hstack([sparse.csr_matrix((k, m)), -sparse.diags(top), eye]).tocsr()
    cons = [LinearConstraint(a1, -np.inf, b1), LinearConstraint(a2, -np.inf, np.zeros(k))]
    integrality = np.concatenate([np.ones(m + k), np.zeros(k)])
    bounds = Bounds(np.zeros(m + 2 * k), np.concatenate([np.ones(m + k), top]))
    res = milp(
        c, constraints=cons, integrality=integrality, bounds=bounds, options={"time_limit": time_limit}
    )
    if res.x is None:
        return float(top.sum()), None
    dual = getattr(res, "mip_dual_bound", None)
    upper = -dual if dual is not None and np.isfinite(dual) else float(top.sum())
    return max(float(upper), -float(res.fun)), res.x[:m] > 0.5


def bracket_lower_bound(
    matrix: np.ndarray,
    allow_missing: bool = False,
    max_rounds: int = 200,
    new_per_round: int | None = None,
    pricing_time: float = 30.0,
    certify_rounds: int = 3,
    max_seconds: float | None = None,
) -> BoundBracket:
    """Certified bracket ``[lower, upper]`` around the bound ``L(M)`` for any number of attributes.

    Column generation (module docstring): heuristic pricing until it finds no improving vector or
    ``max_rounds`` pass, then up to ``certify_rounds`` exact pricings (each at most
    ``pricing_time`` seconds) that either certify the bound or add the vector they find.
    ``new_per_round`` caps the new vectors added per round (default ``k``). Past ``max_seconds``
    the search stops after one exact pricing: ``lower`` is then still a valid bound, and ``upper``
    is whatever that pricing certifies within ``pricing_time``.
    """
    arr = check_class_attribute_matrix(matrix, allow_missing=allow_missing)
    start = time.perf_counter()
    k, m = arr.shape
    master = _Master(arr)
    for y in range(k):
        for v in _comonotone(arr[y]):
            master.add(y, v)
    cap = new_per_round or k
    rounds = 0
    certified = False
    upper = 1.0
    exact_tries = 0
    while True:
        rounds += 1
        q, dual_value, mu, lam = master.solve()
        V = np.array(master.vectors)
        scores = _scores(mu, lam, V)
        # Pairs of known vectors with a negative reduced cost: the most negative first, at most a
        # basis's worth (k (m + 1)) a round, so the master grows by steps of its own size.
        cand_c, cand_y = np.nonzero(scores > _TOL)
        best_first = np.argsort(-scores[cand_c, cand_y], kind="stable")[: k * (m + 1)]
        added = sum(master.add(int(cand_y[i]), V[cand_c[i]]) for i in best_first)
        starts = np.vstack([lam > 0, V[np.argsort(-np.maximum(scores, 0).sum(axis=1))[:k]]])
        found = _local_search(mu, lam, starts)
        f = np.maximum(0, _scores(mu, lam, found)).sum(axis=1)
        order = np.argsort(-f)
        seen: set[bytes] = set()
        for idx in order:
            if f[idx] <= 1.0 / k + _TOL or len(seen) >= cap:
                break
            key = np.packbits(found[idx]).tobytes()
            if key in seen:
                continue
            seen.add(key)
            for y in np.flatnonzero(_scores(mu, lam, found[idx][None])[0] > 0):
                added += master.add(int(y), found[idx])
        out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
        if added and rounds < max_rounds and not out_of_time:
            continue
        if exact_tries >= (1 if out_of_time else certify_rounds):
            break
        exact_tries += 1
        f_ub, best = _exact_pricing(mu, lam, pricing_time)
        upper = min(upper, 1.0 - dual_value / (k * max(f_ub, 1.0 / k)))
        if f_ub <= 1.0 / k * (1 + 1e-7):
            certified = True
            break
        if best is None:
            break
        new = sum(master.add(int(y), best) for y in np.flatnonzero(_scores(mu, lam, best[None])[0] > 0))
        if not new:
            break
    if not certified:
        q = master.solve()[0]
    lower = 1.0 - q
    return BoundBracket(
        lower=float(lower),
        upper=float(max(upper, lower)),
        rounds=rounds,
        pairs=len(master.pairs),
        certified=certified,
        seconds=time.perf_counter() - start,
    )
