"""CNN layers: :mod:`imkern.nn.functional` (tensors NCHW, PyTorch semantics), the modules over it
in :mod:`imkern.nn.layers` (exported here: ``imkern.nn.Conv2d``, ...), the training loop
(:func:`fit`, :func:`predict`) and model files (:func:`save`, :func:`load`)."""
from . import functional, layers
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from ._fit import fit, evaluate, predict, History
from ._serialize import save, load

__all__ = ["functional", "layers", "fit", "evaluate", "predict", "History", "save", "load"] + list(_layers_all)
