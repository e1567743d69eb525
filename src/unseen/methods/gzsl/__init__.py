"""GZSL methods on embeddings; importing a module registers its method in ``GZSL``."""

from unseen.methods.gzsl import (  # noqa: F401
    ale,
    cada_vae,
    dap,
    devise,
    eszsl,
    f_clswgan,
    f_vaegan,
    latem,
    sae,
    sje,
)
