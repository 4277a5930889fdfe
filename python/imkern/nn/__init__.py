"""CNN layers: :mod:`imkern.nn.functional` (tensors NCHW, PyTorch semantics)."""
from . import functional

__all__ = ["functional"]
