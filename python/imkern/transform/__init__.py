"""Geometric transforms and the conversion to CNN input tensors.

Images are ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` NumPy arrays (C++ kernels / NumPy)
or CuPy arrays (CUDA kernels / CuPy), and every function returns the kind it was given.
"""

from ._basic import center_crop, crop, flip, pad, rotate90
from ._resize import resize
from ._tensor import from_tensor, to_tensor
from ._warp import rotate, warp_affine, warp_perspective

__all__ = [
    "resize",
    "warp_affine",
    "warp_perspective",
    "rotate",
    "crop",
    "center_crop",
    "pad",
    "flip",
    "rotate90",
    "to_tensor",
    "from_tensor",
]
