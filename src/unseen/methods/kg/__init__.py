"""Zero-shot methods over a knowledge graph of classes (:mod:`unseen.methods.kg.base`). Each module
registers its methods in ``KG``; the registry imports every module of this package at its first
lookup."""
