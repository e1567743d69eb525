"""Out-of-distribution scores: higher means more in-distribution. Each cites its paper."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import logsumexp, softmax

from unseen.core.arrays import unit_rows


def msp(logits: np.ndarray) -> np.ndarray:
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017)."""
    return softmax(np.asarray(logits, dtype=np.float64), axis=1).max(axis=1)


def max_logit(logits: np.ndarray) -> np.ndarray:
    """Maximum logit (Hendrycks et al., *Scaling Out-of-Distribution Detection for Real-World
    Settings*, ICML 2022)."""
    return np.asarray(logits, dtype=np.float64).max(axis=1)


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Negative free energy ``T logsumexp(logits / T)`` (Liu et al., *Energy-based
    Out-of-distribution Detection*, NeurIPS 2020)."""
    z = np.asarray(logits, dtype=np.float64)
    return temperature * logsumexp(z / temperature, axis=1)


def mcm(image_features: np.ndarray, class_text_features: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Maximum concept matching: the largest softmax over cosine similarities to the class text
    embeddings, with temperature (Ming et al., *Delving into Out-of-Distribution Detection with
    Vision-Language Representations*, NeurIPS 2022). Zero-shot: needs no training."""
    x = np.asarray(image_features, dtype=np.float64)
    t = np.asarray(class_text_features, dtype=np.float64)
    return softmax((unit_rows(x) @ unit_rows(t).T) / temperature, axis=1).max(axis=1)


LOGIT_SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "msp": msp,
    "max-logit": max_logit,
    "energy": energy,
}
"""Scores computed from a classifier's logits, by name."""
