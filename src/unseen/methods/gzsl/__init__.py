"""GZSL methods on embeddings; importing a module registers its method in ``GZSL``."""

from unseen.methods.gzsl import (  # noqa: F401
    ale,
    cada_vae,
    ce_gzsl,
    cosmo,
    dap,
    devise,
    eszsl,
    f_clswgan,
    f_vaegan,
    gating,
    latem,
    sae,
    sje,
)
