"""CNN layers: :mod:`imkern.nn.functional` (tensors NCHW, PyTorch semantics) and the modules
over it in :mod:`imkern.nn.layers` (parameters, forward, backward, SGD)."""
from . import functional, layers

__all__ = ["functional", "layers"]
