"""hit@k, the metric of the knowledge-graph zero-shot papers, on a score matrix or straight from
features and classifier rows in bounded memory.

hit@k is the percentage of samples whose true class is among the ``k`` best-scored classes; a
class scored exactly as high as the true one counts against it (rank = how many classes score at
least as high as the true class, as DGP's evaluation does). With ImageNet-21K's 21,841 classes
the full score matrix of 50,000 samples is 4.4 GB of float32: :func:`chunked_hits_at_k` scores
blocks of samples whose score block fits ``max_bytes`` and keeps only the ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def true_class_ranks(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row, how many columns score at least as high as column ``truth[row]`` (1 = best)."""
    true_scores = scores[np.arange(len(truth)), truth][:, None]
    return (scores >= true_scores).sum(axis=1)


def hits_from_ranks(ranks: np.ndarray, ks: Sequence[int], n_classes: int) -> dict[str, float]:
    """``{"hit@k": percent}`` for each ``k`` up to ``n_classes`` (a larger ``k`` is always 100)."""
    return {f"hit@{k}": float(100.0 * np.mean(ranks <= k)) for k in ks if k <= n_classes}


def hits_at_k(scores: np.ndarray, truth: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """hit@k of a full ``(n, n_classes)`` score matrix."""
    return hits_from_ranks(true_class_ranks(scores, truth), ks, scores.shape[1])


def chunk_rows(n_classes: int, max_bytes: int, itemsize: int = 4) -> int:
    """How many samples' scores fit in ``max_bytes`` (at least one)."""
    return max(1, int(max_bytes // (n_classes * itemsize)))


def chunked_hits_at_k(
    features: np.ndarray,
    rows: np.ndarray,
    truth: np.ndarray,
    ks: Sequence[int],
    bias: np.ndarray | None = None,
    max_bytes: int = 256 * 2**20,
) -> dict[str, float]:
    """hit@k of the scores ``features @ rows.T (+ bias)`` without ever holding more than
    ``max_bytes`` of them: blocks of samples are scored in ``features``' dtype and reduced to
    their true classes' ranks."""
    n_classes = rows.shape[0]
    step = chunk_rows(n_classes, max_bytes, np.dtype(features.dtype).itemsize)
    ranks = np.empty(len(features), dtype=np.int64)
    block = np.empty((min(step, len(features)), n_classes), dtype=features.dtype)
    for start in range(0, len(features), step):
        stop = min(start + step, len(features))
        out = block[: stop - start]
        np.matmul(features[start:stop], rows.T, out=out)
        if bias is not None:
            out += bias
        ranks[start:stop] = true_class_ranks(out, truth[start:stop])
    return hits_from_ranks(ranks, ks, n_classes)
