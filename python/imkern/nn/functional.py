"""Functional CNN ops with PyTorch semantics (torch.nn.functional): tensors ``(N, C, H, W)``,
NumPy arrays on the C++ kernels, CuPy arrays on the CUDA kernels."""

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
