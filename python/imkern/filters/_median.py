"""Median filter (see the package docstring for shapes, dtypes and border modes)."""

from __future__ import annotations

import numpy as np

from .. import _arrays as A
from .. import _core
from .._borders import BORDER_CODES, parse_border
from .._driver import run_image_op as _run

__all__ = ["median"]

_MAX_SIZE = 255


def median(image, size, *, border="replicate", cval=0.0, out=None):
    """Median of each ``size x size`` window (``size`` odd, window centered on the pixel).

    uint8 results equal cv2.medianBlur(image, size) for every size (its border is
    ``"replicate"``, the default here); every dtype equals
    scipy.ndimage.median_filter(image, size=(size, size, 1...), mode=...) with the matching
    mode ("replicate" is SciPy's "nearest", "reflect101" its "mirror"). Values are compared
    exactly, so the result is always one of the window's values.

    NaN (floats): ordered above +inf, as numpy.sort orders it, so the result is
    ``np.sort(window)[size * size // 2]``: NaN when more than half of the window is NaN (or
    NaN and +inf), a number otherwise. -0.0 orders below +0.0.

    Algorithms: size 3 sorts each source row's runs of 3 once and takes the middle of the three
    rows' (largest low, median middle, smallest high) values, four output rows per step; sizes
    5 and 7 run a median selection network on whole SIMD vectors (one lane per pixel); uint8/uint16 from size 9 on use Perreault and Hebert's constant-time
    histogram median (cost per pixel independent of the size); float sizes from 9 on select
    each window's middle element (cost grows with size**2).

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64
            (channels filtered independently).
        size: odd int, 1 to 255.
        border: border mode (see the module docstring); default "replicate" (OpenCV's).
        cval: the value outside the image for ``border="constant"``, converted to the
            image's dtype (rounded and saturated for integers).
        out: optional array of the input's shape, dtype and kind to write into.

    Returns:
        The filtered image: same kind, shape and dtype as ``image``.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[1, 9, 2], [8, 3, 7], [4, 6, 5]], np.uint8)
        >>> int(imkern.filters.median(img, 3)[1, 1])
        5
    """
    if getattr(image, "dtype", None) == np.float16:
        raise TypeError("image: dtype float16 is not supported by median; expected uint8, uint16, float32 or float64")
    k = A.as_int(size, "size")
    if k < 1 or k % 2 == 0 or k > _MAX_SIZE:
        raise ValueError(f"size: expected an odd window size from 1 to {_MAX_SIZE}, got {size!r}")
    b = BORDER_CODES[parse_border(border)]
    cval = A.as_float(cval, "cval")

    def cpu(src, dst):
        _core.median(src, dst, k, b, cval)

    def cuda(code, src, dst, stream):
        _core.cuda_median(code, src.data.ptr, A.image_desc(src), dst.data.ptr, A.image_desc(dst), k, b, cval, stream)

    return _run(image, out, cpu, cuda)
