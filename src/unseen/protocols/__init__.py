"""Protocols own the splits and the metrics; they are the only code that reads test labels."""

from unseen.protocols.gzsl import PROTOCOLS, GZSLProtocol
from unseen.protocols.gzsl_transductive import TransductiveGZSLProtocol

__all__ = ["PROTOCOLS", "GZSLProtocol", "TransductiveGZSLProtocol"]
