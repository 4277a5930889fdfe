"""CNN layers: :mod:`imkern.nn.functional` (tensors NCHW, PyTorch semantics), the modules over it
in :mod:`imkern.nn.layers` (exported here: ``imkern.nn.Conv2d``, ...), the training loop
(:func:`fit`, :func:`predict`) and model files (:func:`save`, :func:`load`)."""

from . import functional, layers
from ._fit import History, evaluate, fit, predict
from ._serialize import load, save
from .layers import *  # noqa: F403
from .layers import __all__ as _layers_all

__all__ = ["functional", "layers", "fit", "evaluate", "predict", "History", "save", "load"] + list(_layers_all)
