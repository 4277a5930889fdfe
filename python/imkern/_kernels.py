"""Filter-kernel construction shared by the public API and the reference (the tests check
these against cv2.getGaussianKernel and scipy.ndimage's kernels)."""

from __future__ import annotations

import functools
import math
import struct
from decimal import Decimal, getcontext
from fractions import Fraction

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


# ---- cv2.GaussianBlur's bit-exact uint8 kernels --------------------------------------------------
# OpenCV computes its Gaussian taps in soft (IEEE, correctly rounded) double arithmetic, with its
# own exp: x * log2(e) * 64 split into an integer k and a fraction f, 2^(k // 64) times a table
# entry 2^((k % 64) / 64) times a degree-5 polynomial in f / 64. Python floats do the same IEEE
# operations in the same order, so the taps below are cv2.getGaussianKernel's to the bit (the
# tests compare them); the polynomial's coefficients are OpenCV's (bit patterns below), the table
# is computed here (2^(k/64) correctly rounded, which is what OpenCV's table holds).


def _f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def _exp2_table():
    getcontext().prec = 60
    ln2 = Decimal(2).ln()
    return tuple(float((Decimal(k) / 64 * ln2).exp()) for k in range(64))


_EXP_TAB = _exp2_table()
_EXP_P0 = _f64(0x3F83CE0F3E46F431)
# highest degree first; each divided by _EXP_P0 (softdouble division = IEEE division)
_EXP_POLY = tuple(
    _f64(b) / _EXP_P0
    for b in (0x3F55E7AA1566C2A4, 0x3F83B2A72B4F3CD3, 0x3FAC6B08D81FEC75, 0x3FCEBFBDFF82A45A, 0x3FE62E42FEFA39F1)
) + (1.0 / _EXP_P0,)
_EXP_PRESCALE = _f64(0x3FF71547652B82FE) * 64.0  # log2(e) * 64


def _cv_exp(x: float) -> float:
    """OpenCV's softdouble exp (for the finite, non-positive arguments the kernels take)."""
    if (struct.unpack("<Q", struct.pack("<d", x))[0] >> 52) & 0x7FF > 1023 + 10:
        x0 = math.copysign(3000.0 * 64, x)
    else:
        x0 = x * _EXP_PRESCALE
    k = round(x0)  # ties to even, as cvRound(softdouble)
    e = min(max((k >> 6) + 1023, 0), 2047)
    scale = math.ldexp(1.0, e - 1023) if e > 0 else 0.0
    f = (x0 - float(k)) * (1.0 / 64)
    p = _EXP_POLY[0]
    for c in _EXP_POLY[1:]:
        p = p * f + c
    return scale * _EXP_P0 * _EXP_TAB[k & 63] * p


def _fma(a: float, b: float, c: float) -> float:
    """a * b + c rounded once (softdouble mulAdd)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def gaussian_kernel_cv_exact(ksize: int, sigma: float) -> list:
    """cv2.getGaussianKernel(ksize, sigma, CV_64F) to the bit, as Python floats (ksize odd)."""
    if sigma <= 0 and ksize in _CV_SMALL_GAUSSIAN:
        return list(_CV_SMALL_GAUSSIAN[ksize])
    s = float(sigma) if sigma > 0 else _fma(float(ksize), _f64(0x3FC3333333333333), _f64(0x3FD6666666666666))
    scale = -0.125 / (s * s)
    half = (ksize - 1) // 2
    vals = [_cv_exp(float((2 * i + 1 - ksize) ** 2) * scale) for i in range(half)]
    total = 0.0
    for v in vals:
        total += v
    total = total * 2.0 + 1.0
    mul = 1.0 / total
    k = [0.0] * ksize
    for i, v in enumerate(vals):
        k[i] = k[ksize - 1 - i] = v * mul
    k[half] = mul
    return k


@functools.lru_cache(maxsize=256)
def _gaussian_fixed(ksize: int, sigma: float, one: int) -> tuple:
    k = gaussian_kernel_cv_exact(ksize, sigma)
    half = ksize // 2
    q = [0] * ksize
    err, total = 0.0, 0
    for i in range(half):  # error diffusion from the tails inwards; the center takes the rest
        v = k[i] * float(one) + err
        r = round(v)
        err = v - float(r)
        q[i] = q[ksize - 1 - i] = r
        total += r
    q[half] = one - 2 * total
    return tuple(q)


def gaussian_kernel_q8(ksize: int, sigma: float) -> np.ndarray:
    """cv2.GaussianBlur's uint8 taps: the bit-exact kernel in 8 fractional bits (ufixedpoint16),
    rounded with error diffusion so that the taps sum to exactly 256. int32, ksize odd."""
    return np.array(_gaussian_fixed(int(ksize), max(float(sigma), 0.0), 256), dtype=np.int32)


def gaussian_kernel_q16(ksize: int, sigma: float) -> np.ndarray:
    """cv2.GaussianBlur's uint16 taps: the bit-exact kernel in 16 fractional bits
    (ufixedpoint32), rounded with error diffusion so that the taps sum to exactly 65536.
    int32, ksize odd."""
    return np.array(_gaussian_fixed(int(ksize), max(float(sigma), 0.0), 65536), dtype=np.int32)


def gaussian_kernels_q8(sigma, ksize):
    """(kernel_y, kernel_x) of the uint8 fixed-point Gaussian for sigma (sigma_y, sigma_x) and ksize
    (kh, kw); a sigma <= 0 is derived from its own size, as in gaussian_kernels."""
    sy, sx = sigma
    kh, kw = ksize
    return gaussian_kernel_q8(kh, sy), gaussian_kernel_q8(kw, sx)


def gaussian_kernels_q16(sigma, ksize):
    """(kernel_y, kernel_x) of the uint16 fixed-point Gaussian, as gaussian_kernels_q8."""
    sy, sx = sigma
    kh, kw = ksize
    return gaussian_kernel_q16(kh, sy), gaussian_kernel_q16(kw, sx)
