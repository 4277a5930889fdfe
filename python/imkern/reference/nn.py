"""NumPy references for :mod:`imkern.nn.functional` (same names and signatures)."""
from ._nn_conv import conv2d, conv2d_backward, linear, linear_backward  # noqa: F401
