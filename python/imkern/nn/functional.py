"""Functional CNN ops on NCHW tensors, with PyTorch's semantics (``torch.nn.functional``).

NumPy arrays run on the CPU kernels (float32, float64), CuPy arrays on the CUDA kernels
(float32, float16, bfloat16). Each forward op has a ``*_backward`` giving its gradients.

- convolution and linear (``_conv.py``): conv2d, conv2d_backward, linear, linear_backward
- pooling (``_pool.py``): max_pool2d, avg_pool2d, adaptive_avg_pool2d (+ backward)
- activations, softmax, cross entropy (``_act.py``)
- batch norm and dropout (``_norm.py``)
"""
from ._conv import conv2d, conv2d_backward, linear, linear_backward  # noqa: F401

# Pooling, activations, softmax / cross entropy, batch norm, dropout (nn-ops).
from ._pool import (  # noqa: F401
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from ._act import (  # noqa: F401
    cross_entropy,
    cross_entropy_backward,
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    tanh,
    tanh_backward,
)
from ._norm import batch_norm2d, batch_norm2d_backward, dropout, dropout_backward  # noqa: F401
