"""The foundation layer: what every other package of unseen builds on, importing none of them.

- :mod:`~unseen.core.errors` — the exception hierarchy of bad input;
- :mod:`~unseen.core.registry` — name -> entry registries and declared hyperparameters;
- :mod:`~unseen.core.method` — the contract every method of every family keeps;
- :mod:`~unseen.core.device` — device choice, seeded random streams and chunked scoring for torch code;
- :mod:`~unseen.core.arrays` — the one row normalisation;
- :mod:`~unseen.core.io` — atomic file writes;
- :mod:`~unseen.core.record` — run ids and the header every run record starts with;
- :mod:`~unseen.core.images` — decoding images and cropping them to an encoder's geometry.

Importing this package loads none of them (nor torch).
"""
