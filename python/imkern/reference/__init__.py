"""NumPy oracles for every imkern op: same names and signatures as the public API, plain and
readable, float64 inside. They define what the fast kernels must compute."""
from . import color, filters, nn, transform

__all__ = ["filters", "nn", "color", "transform"]
