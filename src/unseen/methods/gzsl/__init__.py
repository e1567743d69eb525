"""GZSL methods on embeddings. Each module registers its methods in ``GZSL``; the registry imports
every module of this package at its first lookup."""
