"""Content hashes for arrays, datasets and splits (stable across runs and machines)."""

import hashlib

import numpy as np


def hash_arrays(*arrays: np.ndarray, extra: str = "") -> str:
    """SHA-256 (hex, first 16 chars) over dtype, shape and bytes of each array, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(extra.encode())
    return h.hexdigest()[:16]
