"""GZSL methods on embeddings; importing a module registers its method in ``GZSL``."""
