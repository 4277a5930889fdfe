"""Canny edge detector (uint8), the same edge map as cv2.Canny."""

from __future__ import annotations

import math

import numpy as np

from .. import _arrays as A
from .. import _core

__all__ = ["canny"]

_INT_MAX = 2**31 - 1


def _int_level(t: float) -> int:
    f = math.floor(t)
    return int(max(-_INT_MAX - 1, min(_INT_MAX, f)))


def canny_levels(low: float, high: float, ksize: int, l2gradient: bool):
    """The integer magnitude levels cv2.Canny compares against (ksize 7 divides by 16, L2
    squares the levels after capping them at 32767, then floor)."""
    if ksize == 7:
        low, high = low / 16.0, high / 16.0
    if l2gradient:
        low, high = min(32767.0, low), min(32767.0, high)
        if low > 0:
            low *= low
        if high > 0:
            high *= high
    return _int_level(low), _int_level(high)


def canny(image, low, high, *, ksize=3, l2gradient=False, out=None):
    """Canny edges: the same edge map as cv2.Canny(image, low, high, apertureSize=ksize,
    L2gradient=l2gradient), pixel for pixel.

    Sobel derivatives with replicated borders (ksize 3, 5, 7; 7 scaled by 1/16 as cv2),
    the magnitude ``|gx| + |gy|`` or ``gx**2 + gy**2`` (``l2gradient``), non-maximum
    suppression in four directions, then hysteresis: a pixel is an edge when it survives the
    suppression with magnitude > ``low`` and is 8-connected through such pixels to one with
    magnitude > ``high``. For C > 1 channels each pixel takes the channel of largest
    magnitude, as OpenCV does for color images. On CUDA the hysteresis runs on the device
    (a union-find over the candidate pixels), with no round trip to the host.

    Args:
        image: uint8 ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
        low, high: hysteresis thresholds, ``low <= high``.
        ksize: Sobel aperture, 3, 5 or 7.
        l2gradient: use the L2 magnitude.
        out: optional uint8 array of shape ``(H, W)`` (``(N, H, W)`` for a batch).

    Returns:
        uint8 edge map (0 or 255) of shape ``(H, W)`` or ``(N, H, W)``.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.zeros((8, 8), np.uint8); img[:, 4:] = 200
        >>> imkern.filters.canny(img, 50, 150)[3]
        array([  0,   0,   0, 255,   0,   0,   0,   0], dtype=uint8)
    """
    kind = A.array_kind(image, "image")
    if image.ndim not in (2, 3, 4):
        raise ValueError(
            f"image: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(image.shape)}"
        )
    A.check_dtype(image, "image", kind, (np.dtype(np.uint8),))
    low = A.as_float(low, "low")
    high = A.as_float(high, "high")
    if math.isnan(low) or math.isnan(high):
        raise ValueError("low, high: NaN is not a threshold")
    if low > high:
        raise ValueError(f"low, high: expected low <= high, got low={low}, high={high}")
    k = A.as_int(ksize, "ksize")
    if k not in (3, 5, 7):
        raise ValueError(f"ksize: expected 3, 5 or 7, got {k}")
    l2 = bool(l2gradient)
    lo, hi = canny_levels(low, high, k, l2)
    if image.ndim == 4:
        shape = tuple(image.shape[:3])
    else:
        shape = tuple(image.shape[:2])
    target, final = A.prepare_out(out, image, kind, np.uint8, shape=shape)
    if image.size == 0:  # no pixels, or pixels without channels: no edges
        final[...] = 0
        return final
    src = A.packed_image(image, kind)
    if kind == "numpy":
        _core.canny(src, target, k, l2, lo, hi)
    else:
        it = 1
        if target.ndim == 2:
            dd = _core.ImageDesc(1, shape[0], shape[1], 1, 0, target.strides[0] // it)
        else:
            dd = _core.ImageDesc(shape[0], shape[1], shape[2], 1, target.strides[0] // it, target.strides[1] // it)
        with A.cuda_launch(src) as stream:
            _core.cuda_canny(src.data.ptr, A.image_desc(src), target.data.ptr, dd, k, l2, lo, hi, stream)
    return A.finish_out(target, final)
