"""NumPy references for :mod:`imkern.nn.functional` (same names and signatures)."""

from ._nn_conv import conv2d, conv2d_backward, linear, linear_backward  # noqa: F401

# Pooling, activations, softmax / cross entropy, batch norm, dropout (nn-ops).
from ._nn_ops import (  # noqa: F401
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm2d,
    batch_norm2d_backward,
    cross_entropy,
    cross_entropy_backward,
    dropout,
    dropout_backward,
    dropout_mask,
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    tanh,
    tanh_backward,
)
