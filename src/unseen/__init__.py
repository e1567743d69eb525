"""unseen: recognition beyond the training distribution.

Zero-shot and generalized zero-shot learning (unseen classes), domain generalization and
test-time adaptation (unseen domains) on one data model: embeddings, class semantics, domains
and typed splits.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unseen")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
