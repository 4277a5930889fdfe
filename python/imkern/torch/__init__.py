"""imkern inside PyTorch: operators registered with ``torch.library`` and torch.nn layers.

* Functions (``imkern.torch.conv2d``, ``gaussian``, ...) call the operators
  ``torch.ops.imkern.<name>``: custom ops (``torch.library.custom_op``) with fake kernels for
  ``torch.compile`` and backward formulas on imkern's kernels (``register_autograd``), checked
  with ``torch.library.opcheck`` and ``torch.autograd.gradcheck``. CPU tensors run on the C++
  kernels, CUDA tensors on the CUDA kernels, on PyTorch's current stream.
* Layers (``imkern.torch.Conv2d``, ``Linear``, ``MaxPool2d``, ``AvgPool2d``,
  ``AdaptiveAvgPool2d``) subclass the
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

from ._modules import AdaptiveAvgPool2d, AvgPool2d, Conv2d, Linear, MaxPool2d, replace_layers
from ._ops import adaptive_avg_pool2d, avg_pool2d, conv2d, correlate, gaussian, linear, max_pool2d, resize, sobel

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
    "Conv2d",
    "Linear",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "replace_layers",
]
