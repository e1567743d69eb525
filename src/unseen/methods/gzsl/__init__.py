"""GZSL methods on embeddings; importing a module registers its method in ``GZSL``."""

from unseen.methods.gzsl import ale, dap, devise, eszsl, latem, sae, sje  # noqa: F401
