"""Color conversions: gray, channel order, alpha, HSV, YCbCr, CIE L*a*b*.

Every function takes ``(H, W, C)`` or ``(N, H, W, C)`` images (``(H, W)`` where the input is
gray) as a NumPy array (C++ kernels, threads) or a CuPy array (CUDA kernels, on the current
CuPy stream) and returns the same kind. dtypes: uint8, uint16, float32, float64 (HSV and Lab:
uint8, float32, float64). Float images are taken in [0, 1], integer images in [0, dtype max].

Integer results are computed with the same integer / fixed-point formulas on the CPU and on
CUDA (one header, ``csrc/include/imkern/color_pixel.hpp``, compiled for both), so uint8 and
uint16 results are identical bit for bit on both devices and every CPU ISA.

Shapes: a conversion to gray drops the channel axis of a single image, ``(H, W, 3) -> (H, W)``
as cv2.cvtColor does, and keeps it for a batch, ``(N, H, W, 3) -> (N, H, W, 1)``, so the
result is still a batch of images (a 3-D result would read as one ``(H, W, C)`` image).
"""

from __future__ import annotations

import numpy as np

from . import _arrays as A
from . import _core
from ._driver import cpu_image_op
from ._driver import run_image_op as _run

__all__ = [
    "rgb_to_gray",
    "bgr_to_gray",
    "gray_to_rgb",
    "rgb_to_bgr",
    "bgr_to_rgb",
    "rgba_to_rgb",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "rgb_to_lab",
    "lab_to_rgb",
]

# op codes: the ColorOp enum of csrc/include/imkern/color.hpp, exported once by the bindings
_OPS = {name: int(v) for name, v in _core.ColorOp.__members__.items()}
_HSV_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.float64))
# the accepted dtypes as sets, for _check's fast path (a non-native byte order is no member)
_DTYPE_SETS = {id(d): frozenset(d) for d in (A.IMAGE_DTYPES_CPU, _HSV_DTYPES)}


def _channels(image, name="image") -> int:
    return 1 if image.ndim == 2 else int(image.shape[-1])


_NO_BACKGROUND = (0.0, 0.0, 0.0)


_color_cpu = _core.color_convert  # the CPU kernel: (src, dst, code, blend, bg)


def _convert(op, image, out, out_shape, *, blend=False, bg=_NO_BACKGROUND):
    code = _OPS[op]
    if bg is not _NO_BACKGROUND:
        bg = tuple(float(v) for v in bg)
    r = cpu_image_op(image, out, _color_cpu, (code, blend, bg), out_shape)
    if r is not None:
        return r

    def cpu(src, dst):
        _core.color_convert(src, dst, code, blend, bg)

    def cuda(dtc, src, dst, stream):
        _core.cuda_color_convert(
            code, dtc, src.data.ptr, A.image_desc(src), dst.data.ptr, A.image_desc(dst), blend, bg, stream
        )

    return _run(image, out, cpu, cuda, out_shape=out_shape)


_IMAGE_DTYPE_SET = _DTYPE_SETS[id(A.IMAGE_DTYPES_CPU)]
_HSV_DTYPE_SET = _DTYPE_SETS[id(_HSV_DTYPES)]


def _check(image, channels, op, dtypes=A.IMAGE_DTYPES_CPU, allow_2d=False):
    """Kind, dtype, ndim and channel count; returns the kind."""
    if type(image) is np.ndarray and image.dtype in (
        _IMAGE_DTYPE_SET if dtypes is A.IMAGE_DTYPES_CPU else _DTYPE_SETS.get(id(dtypes), ())
    ):
        kind = "numpy"  # a native NumPy image of an accepted dtype (the common case, one test)
    else:
        kind = A.array_kind(image, "image")
        A.check_dtype(image, "image", kind, dtypes)
    ok_nd = (2, 3, 4) if allow_2d else (3, 4)
    if image.ndim not in ok_nd or (image.ndim >= 3 and image.shape[-1] not in channels):
        want = " or ".join(str(c) for c in channels)
        shapes = "(H, W), " if allow_2d else ""
        raise ValueError(
            f"image: {op} expects {shapes}(H, W, C) or (N, H, W, C) with C = {want}, got shape {tuple(image.shape)}"
        )
    return kind


_DTYPES_OF = {id(_IMAGE_DTYPE_SET): A.IMAGE_DTYPES_CPU, id(_HSV_DTYPE_SET): _HSV_DTYPES}


def _color(name, op, image, out, dtypes, channels, gray=False):
    """A conversion of a ``(H, W, C)`` / ``(N, H, W, C)`` image with C in ``channels`` and of a
    dtype in ``dtypes`` (a set: a non-native byte order is no member), whose result has the
    image's shape; ``gray``: the channel axis dropped for one image, kept as 1 for a batch.
    ``name``: the function (in errors); ``op``: the conversion. The common case (a new output
    for a NumPy image) in one step by cpu_image_op: a small image's call is mostly Python, and
    this is one layer where the checked path has three; anything else, errors included, takes
    :func:`_check` and :func:`_convert`."""
    if out is None and type(image) is np.ndarray and image.dtype in dtypes:
        nd = image.ndim
        if (nd == 3 or nd == 4) and image.shape[-1] in channels:
            shape = None
            if gray:
                shape = image.shape[:-1] if nd == 3 else image.shape[:-1] + (1,)
            r = cpu_image_op(image, None, _color_cpu, (_OPS[op], False, _NO_BACKGROUND), shape)
            if r is not None:  # (it declines nothing these tests let through; kept to its contract)
                return r
    _check(image, channels, name, _DTYPES_OF[id(dtypes)])
    if gray:
        shape = image.shape[:-1] if image.ndim == 3 else image.shape[:-1] + (1,)
    else:
        shape = tuple(image.shape)
    return _convert(op, image, out, shape)


def rgb_to_gray(image, *, out=None):
    """RGB (or RGBA, alpha ignored) to gray: BT.601 luma ``0.299 R + 0.587 G + 0.114 B``.

    uint8 and uint16 results equal cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) bit for bit
    (OpenCV's Q15 fixed point: ``(9798 R + 19235 G + 3735 B + 2**14) >> 15``); floats use the
    weights exactly, in the image's type.

    Args:
        image: ``(H, W, 3|4)`` or ``(N, H, W, 3|4)``.
        out: optional array of the result's shape and dtype.

    Returns:
        ``(H, W)`` for one image, ``(N, H, W, 1)`` for a batch; the input's dtype.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
        >>> imkern.color.rgb_to_gray(img)
        array([[ 76, 150,  29]], dtype=uint8)
    """
    return _color("rgb_to_gray", "rgb_to_gray", image, out, _IMAGE_DTYPE_SET, (3, 4), True)


def bgr_to_gray(image, *, out=None):
    """BGR (or BGRA) to gray: :func:`rgb_to_gray` with the channels read in OpenCV's order;
    equal to cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for uint8 and uint16.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.bgr_to_gray(np.array([[[255, 0, 0]]], np.uint8))
        array([[29]], dtype=uint8)
    """
    return _color("bgr_to_gray", "bgr_to_gray", image, out, _IMAGE_DTYPE_SET, (3, 4), True)


def gray_to_rgb(image, *, out=None):
    """Gray to RGB: the one channel repeated three times (cv2.COLOR_GRAY2RGB).

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)``.

    Returns:
        ``(H, W, 3)`` or ``(N, H, W, 3)``.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.gray_to_rgb(np.array([[7, 9]], np.uint8)).tolist()
        [[[7, 7, 7], [9, 9, 9]]]
    """
    _check(image, (1,), "gray_to_rgb", allow_2d=True)
    shape = tuple(image.shape[:2]) + (3,) if image.ndim == 2 else tuple(image.shape[:-1]) + (3,)
    return _convert("gray_to_rgb", image, out, shape)


def rgb_to_bgr(image, *, out=None):
    """Swap the first and third channels: RGB <-> BGR, RGBA <-> BGRA (alpha kept).

    Args:
        image: ``(H, W, 3|4)`` or ``(N, H, W, 3|4)``.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.rgb_to_bgr(np.array([[[1, 2, 3, 4]]], np.uint8)).tolist()
        [[[3, 2, 1, 4]]]
    """
    return _color("rgb_to_bgr", "swap_rb", image, out, _IMAGE_DTYPE_SET, (3, 4))


def bgr_to_rgb(image, *, out=None):
    """BGR to RGB (the same swap as :func:`rgb_to_bgr`; exact, any image dtype), as
    cv2.cvtColor(image, cv2.COLOR_BGR2RGB).

    Args:
        image: ``(H, W, 3|4)`` or ``(N, H, W, 3|4)``; BGRA keeps its alpha.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.bgr_to_rgb(np.array([[[1.0, 0.5, 0.0]]])).tolist()
        [[[0.0, 0.5, 1.0]]]
    """
    return _color("bgr_to_rgb", "swap_rb", image, out, _IMAGE_DTYPE_SET, (3, 4))


def rgba_to_rgb(image, *, background=None, out=None):
    """RGBA to RGB: drop the alpha channel, or blend onto a background color.

    With ``background=(r, g, b)`` (in the image's scale: 0-255 for uint8, 0-1 for floats; a
    single number means gray), ``out = rgb * a + background * (1 - a)`` with ``a`` the alpha
    scaled to [0, 1] (straight, not premultiplied, alpha). uint8/uint16 results are the
    exactly rounded value of that expression.

    Args:
        image: ``(H, W, 4)`` or ``(N, H, W, 4)``.
        background: None (drop alpha) or 1 or 3 numbers.

    Example:
        >>> import numpy as np, imkern
        >>> px = np.array([[[200, 100, 0, 128]]], np.uint8)
        >>> imkern.color.rgba_to_rgb(px).tolist(), imkern.color.rgba_to_rgb(px, background=255).tolist()
        ([[[200, 100, 0]]], [[[227, 177, 127]]])
    """
    kind = _check(image, (4,), "rgba_to_rgb")
    shape = tuple(image.shape[:-1]) + (3,)
    if background is None:
        return _convert("rgba_to_rgb", image, out, shape)
    bg = A.host_array(background, "background").ravel()
    if bg.size == 1:
        bg = np.repeat(bg, 3)
    if bg.size != 3:
        raise ValueError(f"background: expected 1 or 3 numbers, got {bg.size}")
    if not np.isfinite(bg).all():
        raise ValueError(f"background: expected finite values, got {bg.tolist()}")
    dt = np.dtype(image.dtype)
    if dt.kind == "u":
        hi = np.iinfo(dt).max
        if (bg < 0).any() or (bg > hi).any():
            raise ValueError(f"background: expected values in [0, {hi}] for {dt} images, got {bg.tolist()}")
        bg = np.rint(bg)
    del kind
    return _convert("rgba_to_rgb", image, out, shape, blend=True, bg=bg)


def rgb_to_hsv(image, *, out=None):
    """RGB to HSV.

    Floats (float32, float64): H, S, V in [0, 1], as skimage.color.rgb2hsv (H = 0 where the
    pixel is gray; S = 0 where V = 0). uint8: OpenCV's convention, H in [0, 180) (degrees / 2),
    S and V in [0, 255], equal to cv2.cvtColor(image, cv2.COLOR_RGB2HSV) (its fixed-point
    algorithm). uint16 is not supported (as in OpenCV).

    Args:
        image: ``(H, W, 3)`` or ``(N, H, W, 3)``; uint8, float32 or float64.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.rgb_to_hsv(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 128]]], np.uint8)).tolist()
        [[[0, 255, 255], [60, 255, 255], [120, 255, 128]]]
    """
    return _color("rgb_to_hsv", "rgb_to_hsv", image, out, _HSV_DTYPE_SET, (3,))


def hsv_to_rgb(image, *, out=None):
    """HSV to RGB, the inverse of :func:`rgb_to_hsv`.

    Floats as skimage.color.hsv2rgb (H, S, V in [0, 1]); uint8 in OpenCV's convention (H in
    [0, 180), taken modulo 180), within 1 of cv2.cvtColor(image, cv2.COLOR_HSV2RGB): the exact
    rational values of the HSV model, rounded half up, in integer arithmetic.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.hsv_to_rgb(np.array([[[60, 255, 255], [0, 0, 77]]], np.uint8)).tolist()
        [[[0, 255, 0], [77, 77, 77]]]
    """
    return _color("hsv_to_rgb", "hsv_to_rgb", image, out, _HSV_DTYPE_SET, (3,))


def rgb_to_ycbcr(image, *, out=None):
    """RGB to YCbCr, BT.601 full range as JPEG (JFIF):
    ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = (B - Y) / 1.772 + off``, ``Cr = (R - Y) / 1.402 + off``.

    The chroma offset is 128 for uint8, 32768 for uint16 and 0.5 for floats. Integers use Q16
    fixed point (within 1 of Pillow's ``Image.convert("YCbCr")``).

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.rgb_to_ycbcr(np.array([[[255, 255, 255], [255, 0, 0]]], np.uint8)).tolist()
        [[[255, 128, 128], [76, 85, 255]]]
    """
    return _color("rgb_to_ycbcr", "rgb_to_ycbcr", image, out, _IMAGE_DTYPE_SET, (3,))


def ycbcr_to_rgb(image, *, out=None):
    """YCbCr (JPEG full range) to RGB, the inverse of :func:`rgb_to_ycbcr`:
    ``R = Y + 1.402 (Cr - off)``, ``G ~= Y - 0.34414 (Cb - off) - 0.71414 (Cr - off)``,
    ``B = Y + 1.772 (Cb - off)`` (the exact inverse of the forward matrix); integer results are
    rounded and saturated.

    Args:
        image: ``(H, W, 3)`` or ``(N, H, W, 3)``; the dtypes of :func:`rgb_to_ycbcr`.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.ycbcr_to_rgb(np.array([[[76, 85, 255]]], np.uint8)).tolist()
        [[[254, 0, 0]]]
    """
    return _color("ycbcr_to_rgb", "ycbcr_to_rgb", image, out, _IMAGE_DTYPE_SET, (3,))


def rgb_to_lab(image, *, out=None):
    """sRGB to CIE L*a*b* (D65 white, 2-degree observer).

    Floats: as skimage.color.rgb2lab (input in [0, 1]; L in [0, 100], a and b roughly in
    [-128, 127]), computed in the image's type. uint8: OpenCV's encoding
    ``(L * 255 / 100, a + 128, b + 128)`` by OpenCV's own 8-bit integer algorithm (sRGB ->
    linear table, Q12 matrix, cube-root table, Q15 rounding), so the result equals
    cv2.cvtColor(image, cv2.COLOR_RGB2LAB) bit for bit on every input, and is the same on the
    CPU (every ISA) and on CUDA. Its 8-bit fixed point departs from the exactly rounded
    L*a*b* value by up to a few levels on some colors, as OpenCV's does.

    Args:
        image: ``(H, W, 3)`` or ``(N, H, W, 3)``; uint8, float32 or float64.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.rgb_to_lab(np.array([[[255, 255, 255], [255, 0, 0]]], np.uint8)).tolist()
        [[[255, 128, 128], [136, 208, 195]]]
    """
    return _color("rgb_to_lab", "rgb_to_lab", image, out, _HSV_DTYPE_SET, (3,))


def lab_to_rgb(image, *, out=None):
    """CIE L*a*b* (D65) to sRGB, the inverse of :func:`rgb_to_lab`.

    Floats as skimage.color.lab2rgb (z clipped at 0, the result clipped to [0, 1]); uint8 in
    OpenCV's encoding by OpenCV's 8-bit integer algorithm (L -> y table, a / 500 and b / 200
    in Q14, the inverse matrix in Q12, a 4096-entry linear -> sRGB table): equal to
    cv2.cvtColor(image, cv2.COLOR_LAB2RGB) bit for bit on every input, the same on the CPU and
    on CUDA. 8-bit L*a*b* is coarse: a round trip through it moves dark colors by several
    levels.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.color.lab_to_rgb(np.array([[[255, 128, 128], [136, 208, 195]]], np.uint8)).tolist()
        [[[255, 255, 255], [255, 2, 1]]]
    """
    return _color("lab_to_rgb", "lab_to_rgb", image, out, _HSV_DTYPE_SET, (3,))
