"""warp_affine, warp_perspective, rotate: OpenCV's warps (cv2.warpAffine, cv2.warpPerspective).

OpenCV (>= 4.11) has two schemes, and imkern follows the same split (uses_fixed_scheme):
uint8, uint16 and float32 images with 1, 3 or 4 channels (and bicubic for every dtype) are
sampled at float32 source coordinates with float32 lerps (OpenCV's warp kernels); float64
images and bilinear on other channel counts go through OpenCV's remap tables, coordinates
rounded to 1/32 pixel (INTER_BITS = 5) and, for uint8, 15-bit integer weights from a 32 x 32
sub-pixel table. The coordinate terms of an affine map and the weight table are built here on
the host; the CPU kernel (csrc/cpu/transform/warp.cpp) and the CUDA kernel
(csrc/cuda/transform/warp.cu) spell out the same float operations and the same integer
arithmetic, so uint8 results are identical on both devices and within 1 of OpenCV's.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import _arrays as A
from .. import _core
from .._borders import BORDER_CODES, parse_border
from .._driver import run_image_op as _run
from ._resize import parse_interpolation

__all__ = ["warp_affine", "warp_perspective", "rotate"]

WARP_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
_INTERP_CODES = {name: int(v) for name, v in _core.Interp.__members__.items()}  # imkern::Interp
_AB_BITS, _AB_SCALE = 10, 1 << 10
_INTER_BITS, _INTER_TAB = 5, 32
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _cv_round_int(v):
    """saturate_cast<int>(double): round half to even, then clamp to int32."""
    return np.clip(np.rint(v), _INT_MIN, _INT_MAX).astype(np.int64)


def _tab1d(interp: str) -> np.ndarray:
    x = (np.arange(_INTER_TAB, dtype=np.float32) * np.float32(1.0 / _INTER_TAB)).astype(np.float32)
    if interp == "bilinear":
        return np.stack([np.float32(1) - x, x], axis=1).astype(np.float32)
    a = np.float32(-0.75)
    one = np.float32(1)
    c0 = ((a * (x + one) - np.float32(5) * a) * (x + one) + np.float32(8) * a) * (x + one) - np.float32(4) * a
    c1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
    c2 = ((a + np.float32(2)) * (one - x) - (a + np.float32(3))) * (one - x) * (one - x) + one
    c3 = one - c0 - c1 - c2
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=16)
def weight_table(interp: str, kind: str) -> np.ndarray:
    """OpenCV's 2-D sub-pixel weight table (initInterTab2D): 32 x 32 entries of K x K
    weights, float32 products of the 1-D taps; for uint8 rounded to 15 bits with OpenCV's
    correction of the sum. Returns int32 ("u8"), float32 ("f32") or float64 ("f64")."""
    if interp == "nearest":
        t = np.zeros((1,), np.int32 if kind == "u8" else (np.float32 if kind == "f32" else np.float64))
        t.setflags(write=False)
        return t
    t1 = _tab1d(interp)
    k = t1.shape[1]
    ftab = np.empty((_INTER_TAB * _INTER_TAB, k * k), np.float32)
    itab = np.empty((_INTER_TAB * _INTER_TAB + 1, k * k), np.int64)  # +1: OpenCV's 2x2 fix reads ahead
    itab[:] = 0
    for i in range(_INTER_TAB):
        for j in range(_INTER_TAB):
            e = i * _INTER_TAB + j
            v = (t1[i][:, None] * t1[j][None, :]).astype(np.float32)
            ftab[e] = v.ravel()
            iv = np.clip(np.rint(v.astype(np.float32) * np.float32(1 << 15)), -32768, 32767).astype(np.int64).ravel()
            itab[e] = iv
            isum = int(iv.sum())
            if isum != (1 << 15):
                # OpenCV's correction, as written there: it looks at the entries
                # [k/2, k/2 + 2) x [k/2, k/2 + 2) of the flattened table from this entry on
                flat = itab.ravel()
                off = e * k * k
                diff = isum - (1 << 15)
                k2 = k // 2
                mk = Mk = (k2, k2)
                for k1 in range(k2, k2 + 2):
                    for kk2 in range(k2, k2 + 2):
                        vv = flat[off + k1 * k + kk2]
                        if vv < flat[off + mk[0] * k + mk[1]]:
                            mk = (k1, kk2)
                        elif vv > flat[off + Mk[0] * k + Mk[1]]:
                            Mk = (k1, kk2)
                if diff < 0:
                    flat[off + Mk[0] * k + Mk[1]] -= diff
                else:
                    flat[off + mk[0] * k + mk[1]] -= diff
    if kind == "u8":
        out = itab[: _INTER_TAB * _INTER_TAB].astype(np.int32)
    else:
        out = ftab.astype(np.float32 if kind == "f32" else np.float64)
    out = np.ascontiguousarray(out)
    out.setflags(write=False)
    return out


def _kind_of(dt) -> str:
    dt = np.dtype(dt)
    return "u8" if dt == np.uint8 else ("f64" if dt == np.float64 else "f32")


def invert_affine(m: np.ndarray) -> np.ndarray:
    """cv2.invertAffineTransform, the same float64 operations (on Python floats: IEEE doubles,
    the same roundings as NumPy's float64 scalars, without their per-operation cost)."""
    (m00, m01, m02), (m10, m11, m12) = np.asarray(m, np.float64).tolist()
    d = m00 * m11 - m01 * m10
    d = 1.0 / d if d != 0 else 0.0
    a11, a22, a12, a21 = m11 * d, m00 * d, -m01 * d, -m10 * d
    b1 = -a11 * m02 - a12 * m12
    b2 = -a21 * m02 - a22 * m12
    return np.array([[a11, a12, b1], [a21, a22, b2]])


def affine_terms(m_inv: np.ndarray, h: int, w: int, interp: str):
    """OpenCV's fixed-point affine coordinates (AB_BITS = 10): per output column
    round(M00 * x * 1024), round(M10 * x * 1024); per output row
    round((M01 * y + M02) * 1024) + delta (and the same for Y). The source coordinate of
    pixel (x, y) is (row + col) >> shift: 5 fractional bits for bilinear/bicubic."""
    M = m_inv.ravel()
    delta = _AB_SCALE // 2 if interp == "nearest" else _AB_SCALE // _INTER_TAB // 2
    x = np.arange(w, dtype=np.float64)
    y = np.arange(h, dtype=np.float64)
    col_x = _cv_round_int(M[0] * x * _AB_SCALE)
    col_y = _cv_round_int(M[3] * x * _AB_SCALE)
    row_x = _cv_round_int((M[1] * y + M[2]) * _AB_SCALE) + delta
    row_y = _cv_round_int((M[4] * y + M[5]) * _AB_SCALE) + delta
    shift = _AB_BITS if interp == "nearest" else _AB_BITS - _INTER_BITS
    # OpenCV adds these in int32: keep them there
    terms = [np.clip(a, _INT_MIN, _INT_MAX).astype(np.int32) for a in (col_x, col_y, row_x, row_y)]
    return terms, shift


def _matrix(matrix, shape, name="matrix") -> np.ndarray:
    m = A.host_array(matrix, name)
    if m.shape != shape:
        raise ValueError(f"{name}: expected a {shape[0]}x{shape[1]} matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name}: expected finite values")
    return m


def _size(size):
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__"):
        raise TypeError(f"size: expected a pair of ints (h, w), got {type(size).__name__}")
    if len(size) != 2:
        raise ValueError(f"size: expected (h, w), got {tuple(size)!r}")
    h, w = A.as_int(size[0], "size"), A.as_int(size[1], "size")
    if h <= 0 or w <= 0:
        raise ValueError(f"size: expected positive (h, w), got {(h, w)}")
    return h, w


def _out_shape(image, h, w):
    if image.ndim == 2:
        return (h, w)
    if image.ndim == 3:
        return (h, w, image.shape[2])
    return (image.shape[0], h, w, image.shape[3])


def _common(image, interpolation, border, cval):
    kind, dt = A.check_image(image, "image")
    A.check_dtype(image, "image", kind, A.IMAGE_DTYPES_CPU)
    interp = parse_interpolation(interpolation, WARP_INTERPOLATIONS)
    b = BORDER_CODES[parse_border(border)]
    cval = A.as_float(cval, "cval")
    if not math.isfinite(cval) and np.dtype(dt).kind == "u":
        raise ValueError(f"cval: expected a finite value for {dt} images, got {cval}")
    o = 1 if image.ndim == 4 else 0
    if image.shape[o] == 0 or image.shape[o + 1] == 0:
        raise ValueError(f"image: cannot warp an image of size {image.shape[o]} x {image.shape[o + 1]}")
    return dt, interp, b, cval


def uses_fixed_scheme(dt, channels: int, interp: str) -> bool:
    """OpenCV (>= 4.11) samples in float32 coordinates (its warp kernels) except float64
    images (nearest, bilinear) and bilinear on channel counts other than 1, 3, 4, which still
    go through its fixed-point remap tables (1/32 pixel); imkern makes the same split so it
    matches either way."""
    if FIXED_OVERRIDE is not None:
        return FIXED_OVERRIDE
    if interp == "bicubic":
        return False
    return np.dtype(dt) == np.float64 or (interp == "bilinear" and channels not in (1, 3, 4))


FIXED_OVERRIDE = None  # tests: force one scheme


@functools.lru_cache(maxsize=64)
def _zeros_i32(n: int) -> np.ndarray:
    """Unused per-column / per-row tables of the float scheme (read-only: cached)."""
    return A.read_only(np.zeros(n, np.int32))


def _launch(image, m_inv, perspective, h, w, interp, b, cval, dt, out):
    channels = 1 if image.ndim == 2 else int(image.shape[-1])
    fixed = uses_fixed_scheme(dt, channels, interp)
    mflat = tuple(m_inv.ravel().tolist()) + ((0.0, 0.0, 1.0) if m_inv.shape[0] == 2 else ())
    if fixed and not perspective:
        (cx, cy, rx, ry), shift = affine_terms(m_inv[:2], h, w, interp)
    else:
        cx = cy = _zeros_i32(w)
        rx = ry = _zeros_i32(h)
        shift = 5
    wt = weight_table(interp, _kind_of(dt))
    code = _INTERP_CODES[interp]

    def cpu(src, dst):
        _core.warp(src, dst, code, perspective, fixed, cx, cy, rx, ry, shift, mflat, wt, b, cval)

    def cuda(dcode, src, dst, stream):
        import cupy

        d = [cupy.asarray(a) for a in (cx, cy, rx, ry, wt)]
        _core.cuda_warp(
            dcode,
            src.data.ptr,
            A.image_desc(src),
            dst.data.ptr,
            A.image_desc(dst),
            code,
            perspective,
            fixed,
            d[0].data.ptr,
            d[1].data.ptr,
            d[2].data.ptr,
            d[3].data.ptr,
            shift,
            mflat,
            d[4].data.ptr,
            b,
            cval,
            stream,
        )

    return _run(image, out, cpu, cuda, out_shape=_out_shape(image, h, w))


def _warp_affine(image, m_inv, h, w, interp, b, cval, dt, out):
    return _launch(image, m_inv, False, h, w, interp, b, cval, dt, out)


def warp_affine(image, matrix, size, *, interpolation="bilinear", border="constant", cval=0, inverse=False, out=None):
    """Affine warp: cv2.warpAffine(image, matrix, (w, h), flags, borderMode, borderValue).

    ``matrix`` (2 x 3) maps source coordinates to output coordinates, as OpenCV's (pixel
    centers at integers, x to the right, y down); with ``inverse=True`` it maps output to
    source (OpenCV's WARP_INVERSE_MAP). Each output pixel samples the source at the mapped
    point, computed as OpenCV computes it (float32, or rounded to 1/32 pixel for float64
    images: see the module notes); points outside the image follow ``border``
    (every border mode of :mod:`imkern.filters`; "constant" fills ``cval``).

    uint8 results are within 1 of OpenCV's and identical on the CPU and CUDA; uint16 and
    float32 use float32 weights (float64 images: float64 sums of the same weights).

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64.
        matrix: 2 x 3 affine matrix (array-like of numbers).
        size: ``(h, w)`` of the output.
        interpolation: "nearest", "bilinear" or "bicubic" (OpenCV's INTER_CUBIC, a = -0.75).
        border: border mode; cval: the value outside for "constant".
        inverse: ``matrix`` maps output to source coordinates.
        out: optional output array.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(16, dtype=np.uint8).reshape(4, 4)
        >>> m = [[1, 0, 1], [0, 1, 0]]  # shift right by one pixel
        >>> imkern.transform.warp_affine(img, m, (4, 4), cval=99)
        array([[99,  0,  1,  2],
               [99,  4,  5,  6],
               [99,  8,  9, 10],
               [99, 12, 13, 14]], dtype=uint8)
    """
    dt, interp, b, cval = _common(image, interpolation, border, cval)
    m = _matrix(matrix, (2, 3))
    h, w = _size(size)
    m_inv = m if inverse else invert_affine(m)
    return _warp_affine(image, m_inv, h, w, interp, b, cval, dt, out)


def rotation_matrix(center, angle: float, scale: float = 1.0) -> np.ndarray:
    """cv2.getRotationMatrix2D: rotation by ``angle`` degrees counter-clockwise about
    ``center = (x, y)``, then scaling."""
    a = angle * (math.pi / 180)
    alpha, beta = math.cos(a) * scale, math.sin(a) * scale
    cx, cy = center
    return np.array([[alpha, beta, (1 - alpha) * cx - beta * cy], [-beta, alpha, beta * cx + (1 - alpha) * cy]])


def rotate(image, angle, *, interpolation="bilinear", border="constant", cval=0, out=None):
    """Rotate images by ``angle`` degrees counter-clockwise about the image center.

    The center is ``((W - 1) / 2, (H - 1) / 2)`` (the middle of the pixel grid, as
    scikit-image's rotate); the output keeps the input's size, corners cut off, uncovered
    areas filled by ``border``/``cval``. Equals cv2.warpAffine with
    cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), angle, 1).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(9, dtype=np.float32).reshape(3, 3)
        >>> imkern.transform.rotate(img, 90).round(3)
        array([[2., 5., 8.],
               [1., 4., 7.],
               [0., 3., 6.]], dtype=float32)
    """
    dt, interp, b, cval = _common(image, interpolation, border, cval)
    angle = A.as_float(angle, "angle")
    if not math.isfinite(angle):
        raise ValueError(f"angle: expected a finite number, got {angle}")
    o = 1 if image.ndim == 4 else 0
    h, w = int(image.shape[o]), int(image.shape[o + 1])
    m = rotation_matrix(((w - 1) / 2, (h - 1) / 2), angle)
    return _warp_affine(image, invert_affine(m), h, w, interp, b, cval, dt, out)


def warp_perspective(
    image, matrix, size, *, interpolation="bilinear", border="constant", cval=0, inverse=False, out=None
):
    """Perspective warp: cv2.warpPerspective(image, matrix, (w, h), flags, borderMode, borderValue).

    ``matrix`` (3 x 3) maps source to output coordinates (homogeneous), as OpenCV's; with
    ``inverse=True`` it maps output to source. The source point of each output pixel is
    computed exactly as OpenCV computes it (float32 divided by the third row, or float64
    rounded to 1/32 pixel for float64 images), then sampled as :func:`warp_affine` samples. A
    forward matrix is inverted with NumPy (OpenCV inverts with its own LU, which can differ in
    the last bit, so a rare pixel can land on the other side of a rounding step; with
    ``inverse=True`` both use the same matrix).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(16, dtype=np.uint8).reshape(4, 4)
        >>> m = np.diag([0.5, 0.5, 1.0])  # shrink by 2 about the origin
        >>> imkern.transform.warp_perspective(img, m, (2, 2), interpolation="nearest")
        array([[ 0,  2],
               [ 8, 10]], dtype=uint8)
    """
    dt, interp, b, cval = _common(image, interpolation, border, cval)
    m = _matrix(matrix, (3, 3))
    h, w = _size(size)
    if inverse:
        m_inv = m
    else:
        try:
            m_inv = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            raise ValueError(
                "matrix: singular, cannot be inverted (pass inverse=True with the output->source map)"
            ) from None
    return _launch(image, m_inv, True, h, w, interp, b, cval, dt, out)
