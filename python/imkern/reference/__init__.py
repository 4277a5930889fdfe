"""NumPy oracles for every imkern op: same names and signatures as the public API, plain and
readable, float64 inside. They define what the fast kernels must compute."""
from . import filters, nn
from . import color, transform

__all__ = ["filters", "nn", "color", "transform"]
