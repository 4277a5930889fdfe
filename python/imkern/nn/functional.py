"""Functional CNN ops on NCHW tensors, with PyTorch's semantics (``torch.nn.functional``).

NumPy arrays run on the CPU kernels (float32, float64), CuPy arrays on the CUDA kernels
(float32, float16, bfloat16), from the same function. Each forward op has a ``*_backward``
giving its gradients. One module per op family, named as its kernels in csrc/:

- ``_conv2d.py``: conv2d, conv2d_backward
- ``_linear.py``: linear, linear_backward
- ``_pool2d.py``: max_pool2d, avg_pool2d, adaptive_avg_pool2d (+ backward)
- ``_activations.py``: relu, leaky_relu, sigmoid, tanh, gelu (+ backward)
- ``_softmax.py``: softmax, log_softmax
- ``_cross_entropy.py``: cross_entropy, cross_entropy_backward
- ``_batch_norm.py``: batch_norm2d, batch_norm2d_backward, batch_norm (torch's argument order)
- ``_dropout.py``: dropout, dropout_backward
"""

from ._activations import (  # noqa: F401
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
)
from ._batch_norm import batch_norm, batch_norm2d, batch_norm2d_backward  # noqa: F401
from ._conv2d import conv2d, conv2d_backward  # noqa: F401
from ._cross_entropy import cross_entropy, cross_entropy_backward  # noqa: F401
from ._dropout import dropout, dropout_backward  # noqa: F401
from ._linear import linear, linear_backward  # noqa: F401
from ._pool2d import (  # noqa: F401
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from ._softmax import log_softmax, softmax  # noqa: F401
