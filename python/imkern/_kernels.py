"""Filter-kernel construction shared by the public API and the reference (the tests check
these against cv2.getGaussianKernel and scipy.ndimage's kernels)."""

from __future__ import annotations

import numpy as np

# cv2.getGaussianKernel uses these fixed kernels when sigma <= 0 and ksize <= 9 (OpenCV 5).
_CV_SMALL_GAUSSIAN = {
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    # OpenCV 5 adds a fixed 9-tap kernel (OpenCV 4 derives sigma = 1.7 from the size instead)
    9: [4 / 256, 13 / 256, 30 / 256, 51 / 256, 60 / 256, 51 / 256, 30 / 256, 13 / 256, 4 / 256],
}


def gaussian_kernel_cv(ksize: int, sigma: float) -> np.ndarray:
    """cv2.getGaussianKernel(ksize, sigma) in float64."""
    if sigma <= 0 and ksize in _CV_SMALL_GAUSSIAN:
        return np.array(_CV_SMALL_GAUSSIAN[ksize], dtype=np.float64)
    if sigma <= 0:
        sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) * 0.5
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def gaussian_kernel_scipy(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter's kernel: radius int(truncate * sigma + 0.5)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 / (sigma * sigma) * x * x)
    return k / k.sum()


def gaussian_kernels(sigma, ksize, truncate):
    """(kernel_y, kernel_x) for gaussian(); arguments already validated."""
    sy, sx = sigma
    if ksize is not None:
        kh, kw = ksize
        return gaussian_kernel_cv(kh, sy), gaussian_kernel_cv(kw, sx)
    return gaussian_kernel_scipy(sy, truncate), gaussian_kernel_scipy(sx, truncate)
