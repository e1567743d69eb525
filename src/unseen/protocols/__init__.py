"""Protocols own the splits and the metrics; they are the only code that reads test labels.

The package imports its protocols lazily: ``unseen.protocols.kg_semantics`` (a data-spec provider
that every spec lookup imports) must not pull in the GZSL protocol and its metrics.
"""

__all__ = ["PROTOCOLS", "GZSLProtocol", "TransductiveGZSLProtocol"]


def __getattr__(name: str):
    if name in __all__:
        # gzsl_transductive imports gzsl and adds its variant to gzsl's PROTOCOLS registry
        from unseen.protocols import gzsl_transductive

        return getattr(gzsl_transductive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
