"""imkern inside PyTorch: operators registered with ``torch.library`` and torch.nn layers.

* Functions (``imkern.torch.conv2d``, ``gaussian``, ...) call the operators
  ``torch.ops.imkern.<name>``: custom ops (``torch.library.custom_op``) with fake kernels for
  ``torch.compile`` and backward formulas on imkern's kernels (``register_autograd``), checked
  with ``torch.library.opcheck`` and ``torch.autograd.gradcheck``. CPU tensors run on the C++
  kernels, CUDA tensors on the CUDA kernels, on PyTorch's current stream.
* Every public op of imkern.filters, imkern.color, imkern.transform and the CNN ops of
  imkern.nn.functional has its operator (``imkern::<name>``); which ones have gradients, and
  how, is listed in the docstrings of ``_ops``, ``_filter_ops``, ``_color_ops``,
  ``_transform_ops`` and ``_nn_ops`` (rank filters, bilateral, HSV/Lab, the warps and the
  integer-valued results run forward only; backward through them raises).
* Layers (``imkern.torch.Conv2d``, ``Linear``, ``MaxPool2d``, ``AvgPool2d``,
  ``AdaptiveAvgPool2d``, ``BatchNorm1d``/``BatchNorm2d``, ``ReLU``, ``LeakyReLU``, ``GELU``,
  ``Sigmoid``, ``Tanh``, ``Softmax``, ``LogSoftmax``, ``Dropout``, ``CrossEntropyLoss``) subclass the
  torch.nn layers (same init, parameters, state_dict) and compute on those operators; they
  work in DDP and under torch.compile. :func:`replace_layers` swaps them into a model.

The plain imkern functions (``imkern.filters.gaussian(tensor, ...)``) accept tensors too
(zero-copy) but are not recorded by autograd; use this module for gradients.

Example:
    >>> import torch, imkern.torch as itorch
    >>> x = torch.ones(1, 1, 4, 4, requires_grad=True)
    >>> y = itorch.max_pool2d(x, 2)
    >>> y.sum().backward()
    >>> float(x.grad.sum())
    4.0
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised without torch
    raise ImportError("imkern.torch needs PyTorch (pip install torch)") from e

from . import _color_ops, _filter_ops, _modules, _nn_ops, _transform_ops
from ._color_ops import *  # noqa: F403
from ._filter_ops import *  # noqa: F403
from ._modules import *  # noqa: F403
from ._nn_ops import *  # noqa: F403
from ._ops import adaptive_avg_pool2d, avg_pool2d, conv2d, correlate, gaussian, linear, max_pool2d, resize, sobel
from ._transform_ops import *  # noqa: F403

__all__ = [
    "gaussian",
    "correlate",
    "sobel",
    "resize",
    "conv2d",
    "linear",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
]
__all__ += _filter_ops.__all__
__all__ += _color_ops.__all__
__all__ += _transform_ops.__all__
__all__ += _nn_ops.__all__
__all__ += _modules.__all__
