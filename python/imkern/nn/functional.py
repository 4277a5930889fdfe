"""Functional CNN ops on NCHW tensors, with PyTorch's semantics (``torch.nn.functional``).

NumPy arrays run on the CPU kernels (float32, float64), CuPy arrays on the CUDA kernels
(float32, float16, bfloat16). Each forward op has a ``*_backward`` giving its gradients.

Convolution and linear (``_conv.py``):
    conv2d, conv2d_backward, linear, linear_backward
"""
from ._conv import conv2d, conv2d_backward, linear, linear_backward  # noqa: F401
