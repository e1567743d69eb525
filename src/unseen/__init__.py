"""unseen: recognition beyond the training distribution.

Zero-shot and generalized zero-shot learning (unseen classes), domain generalization and
test-time adaptation (unseen domains) on one data model: embeddings, class semantics, domains
and typed splits.
"""

from unseen.core.version import VERSION as __version__

__all__ = ["__version__"]
