"""Grey morphology with a flat footprint: erode, dilate, opening, closing, morph_gradient,
tophat, blackhat, footprint(), and SciPy's minimum_filter / maximum_filter."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import _arrays as A
from .. import _core
from .._borders import BORDER_CODES, parse_border
from .._driver import run_image_op as _run

__all__ = [
    "footprint",
    "erode",
    "dilate",
    "opening",
    "closing",
    "morph_gradient",
    "tophat",
    "blackhat",
    "minimum_filter",
    "maximum_filter",
]

_SHAPES = ("rect", "cross", "ellipse")


def footprint(shape, size):
    """A structuring element as cv2.getStructuringElement builds it, as a uint8 0/1 array.

    Args:
        shape: "rect", "cross" or "ellipse".
        size: int or ``(h, w)`` (note cv2 takes ``(width, height)``), positive.

    Returns:
        ``(h, w)`` uint8 array: ``footprint(s, (h, w))`` equals
        ``cv2.getStructuringElement(MORPH_<S>, (w, h))``.

    Example:
        >>> import imkern
        >>> imkern.filters.footprint("cross", 3)
        array([[0, 1, 0],
               [1, 1, 1],
               [0, 1, 0]], dtype=uint8)
    """
    if shape not in _SHAPES:
        raise ValueError(f"shape: expected one of {', '.join(repr(s) for s in _SHAPES)}, got {shape!r}")
    h, w = A.as_pair(size, "size")
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive sizes, got {(h, w)}")
    fp = np.zeros((h, w), np.uint8)
    if shape == "rect":
        fp[:] = 1
        return fp
    ay, ax = h // 2, w // 2
    if shape == "cross":
        fp[ay, :] = 1
        fp[:, ax] = 1
        return fp
    # OpenCV's ellipse: per row i, columns [c - dx, c + dx] with dx = round(c sqrt(1 - (i - r)^2 / r^2))
    r, c = h // 2, w // 2
    inv_r2 = 1.0 / (r * r) if r else 0.0
    for i in range(h):
        dy = i - r
        if abs(dy) <= r:
            dx = int(np.rint(c * np.sqrt((r * r - dy * dy) * inv_r2)))
            j1, j2 = max(c - dx, 0), min(c + dx + 1, w)
            fp[i, j1:j2] = 1
    return fp


@lru_cache(maxsize=64)
def _rect(h: int, w: int) -> np.ndarray:
    """footprint("rect", (h, w)), read-only (cached: a small image's call would spend more
    time building it than filtering)."""
    return A.read_only(footprint("rect", (h, w)))


def _as_footprint(fp, cached: bool = True) -> np.ndarray:
    """int -> square of ones, (h, w) -> rectangle of ones, 2-D array -> its nonzero entries.
    ``cached=False``: a new writable array (imkern.torch, traced by torch.compile, which
    cannot trace the read-only flag)."""
    if isinstance(fp, (int, np.integer)) and not isinstance(fp, bool):
        n = int(fp)
        if n < 1:
            raise ValueError(f"size: expected positive sizes, got {(n, n)}")
        return _rect(n, n) if cached else footprint("rect", n)
    if isinstance(fp, tuple) and len(fp) == 2 and all(isinstance(v, (int, np.integer)) for v in fp):
        h, w = A.as_pair(fp, "size")
        if h < 1 or w < 1:
            raise ValueError(f"size: expected positive sizes, got {(h, w)}")
        return _rect(h, w) if cached else footprint("rect", (h, w))
    if isinstance(fp, bool):
        raise TypeError("footprint: expected an int, an (h, w) pair or a 2-D array, got bool")
    key = None
    if cached and type(fp) is np.ndarray and fp.ndim == 2 and 0 < fp.size <= 4096 and fp.dtype.kind in "biuf":
        # A small footprint array (a structuring element, usually the same one call after
        # call): its normalised form by value, read-only; the checks ran when it was cached.
        key = (fp.dtype.str, fp.shape, fp.tobytes())
        hit = _FOOTPRINTS.get(key)
        if hit is not None:
            return hit
    a = A.host_array(fp, "footprint")
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"footprint: expected a non-empty 2-D array, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError("footprint: contains NaN")
    f = np.ascontiguousarray(a != 0, dtype=np.uint8)
    if not f.any():
        raise ValueError("footprint: has no nonzero element")
    if key is not None:
        f.flags.writeable = False
        if len(_FOOTPRINTS) >= 64:
            _FOOTPRINTS.clear()
        _FOOTPRINTS[key] = f
    return f


_FOOTPRINTS: dict = {}  # (dtype, shape, bytes) of a small footprint array -> its uint8 mask


@lru_cache(maxsize=16)
def _identity(dt, dilate: bool) -> float:
    dt = np.dtype(dt)
    if dt.kind == "u":
        return float(np.iinfo(dt).min if dilate else np.iinfo(dt).max)
    # OpenCV's default border value saturated to the type: the largest finite float
    return float(-np.finfo(dt).max if dilate else np.finfo(dt).max)


def _check_dtype(image):
    if getattr(image, "dtype", None) == np.float16:
        raise TypeError(
            "image: dtype float16 is not supported by morphology; expected uint8, uint16, float32 or float64"
        )


def _border(border, cval):
    """(code, cval, ignore) from border=None ("outside pixels ignored") or a border mode."""
    if border is None:
        return BORDER_CODES["constant"], 0.0, True
    return BORDER_CODES[parse_border(border)], A.as_float(cval, "cval"), False


def _morph1(image, fp, ay, ax, dilate, b, cval, ignore, out):
    def cpu(src, dst):
        c = _identity(src.dtype, dilate) if ignore else cval
        _core.morphology(src, dst, fp, ay, ax, dilate, b, c)

    def cuda(code, src, dst, stream):
        c = _identity(src.dtype, dilate) if ignore else cval
        _core.cuda_morphology(
            code, src.data.ptr, A.image_desc(src), dst.data.ptr, A.image_desc(dst), fp, ay, ax, dilate, b, c, stream
        )

    return _run(image, out, cpu, cuda)


def _iterations(iterations) -> int:
    n = A.as_int(iterations, "iterations")
    if n < 0:
        raise ValueError(f"iterations: expected a non-negative int, got {iterations!r}")
    return n


def _morph(image, fp, iterations, dilate, border, cval, out):
    _check_dtype(image)
    A.check_image(image)
    f = _as_footprint(fp)
    n = _iterations(iterations)
    b, cval, ignore = _border(border, cval)
    fh, fw = f.shape
    ay, ax = fh // 2, fw // 2
    if n == 0:
        kind, dt = A.check_image(image)
        target, final = A.prepare_out(out, image, kind, dt)
        target[...] = image
        return A.finish_out(target, final)
    if n > 1 and f.all():
        # As OpenCV: n passes of a rectangle are one pass of the enlarged rectangle (anchor scaled).
        f = np.ones((fh + (n - 1) * (fh - 1), fw + (n - 1) * (fw - 1)), np.uint8)
        ay, ax, n = ay * n, ax * n, 1
    x = image
    for i in range(n):
        x = _morph1(x, f, ay, ax, dilate, b, cval, ignore, out if i == n - 1 else None)
    return x


_ARGS_DOC = """
    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64
            (channels filtered independently).
        footprint: an int (square), ``(h, w)`` (rectangle of ones) or a 2-D array whose nonzero
            entries form the structuring element (see :func:`footprint`); anchored at its
            center ``(h // 2, w // 2)`` and not mirrored, as OpenCV does.
        iterations: number of passes (a rectangle's passes run as one pass of the enlarged
            rectangle, as OpenCV does); 0 copies the image.
        border: None (default): pixels outside the image are ignored, as OpenCV's default
            border value does (for floats they count as the largest finite value for erode, the
            lowest for dilate, exactly as in OpenCV); or any border mode of imkern.filters.
        cval: the value outside the image for ``border="constant"``.
        out: optional array of the input's shape, dtype and kind to write into.
"""


def erode(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """Grey erosion: the minimum over the footprint around each pixel.

    ``out[y, x] = min over fp[i, j] != 0 of image[y + i - h // 2, x + j - w // 2]``. Equals
    cv2.erode(image, fp, iterations=...) and scipy.ndimage.grey_erosion(image,
    footprint=fp, mode=...) with a matching border. Rectangles cost the same per pixel
    whatever their size (van Herk / Gil-Werman); other footprints cost one vector op per
    horizontal run of ones. Floats: NaN propagates.
    {args}
    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(25, dtype=np.uint8).reshape(5, 5)
        >>> imkern.filters.erode(img, 3)[1:4, 1:4]
        array([[ 0,  1,  2],
               [ 5,  6,  7],
               [10, 11, 12]], dtype=uint8)
    """
    return _morph(image, footprint, iterations, False, border, cval, out)


def dilate(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """Grey dilation: the maximum over the footprint around each pixel (not mirrored).

    ``out[y, x] = max over fp[i, j] != 0 of image[y + i - h // 2, x + j - w // 2]``. Equals
    cv2.dilate(image, fp, iterations=...), and scipy.ndimage.grey_dilation for symmetric
    footprints (SciPy mirrors the footprint: ``dilate(x, fp)`` is
    ``grey_dilation(x, footprint=fp[::-1, ::-1])`` for odd sizes). Floats: NaN propagates.
    {args}
    Example:
        >>> import numpy as np, imkern
        >>> img = np.zeros((5, 5), np.uint8); img[2, 2] = 9
        >>> imkern.filters.dilate(img, imkern.filters.footprint("cross", 3))
        array([[0, 0, 0, 0, 0],
               [0, 0, 9, 0, 0],
               [0, 9, 9, 9, 0],
               [0, 0, 9, 0, 0],
               [0, 0, 0, 0, 0]], dtype=uint8)
    """
    return _morph(image, footprint, iterations, True, border, cval, out)


erode.__doc__ = (erode.__doc__ or "").replace("{args}", _ARGS_DOC)
dilate.__doc__ = (dilate.__doc__ or "").replace("{args}", _ARGS_DOC)


def _combine(image, a, b, out, saturate_sub=True):
    """out = a - b, clipped at 0 for integers (cv2.subtract), into ``out`` like every op."""
    kind, dt = A.check_image(image)
    xp = A.xp_of(kind)
    target, final = A.prepare_out(out, image, kind, dt)
    if dt.kind == "u":
        xp.subtract(xp.maximum(a, b), b, out=target)
    elif kind == "numpy":
        with np.errstate(over="ignore", invalid="ignore"):  # +-max float borders give inf, as in OpenCV
            np.subtract(a, b, out=target)
    else:
        xp.subtract(a, b, out=target)
    return A.finish_out(target, final)


def opening(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """Opening: :func:`erode` then :func:`dilate` (each ``iterations`` times), as
        cv2.morphologyEx(MORPH_OPEN). Same dtypes, layouts, footprints and borders as :func:`erode`;
        the result has the input's shape and dtype (exact: no arithmetic on the values).
    {args}
        Example:
            >>> import numpy as np, imkern
            >>> img = np.zeros((5, 5), np.uint8); img[2, 2] = 9   # an isolated bright dot
            >>> int(imkern.filters.opening(img, 3).max())
            0
    """
    e = erode(image, footprint, iterations=iterations, border=border, cval=cval)
    return dilate(e, footprint, iterations=iterations, border=border, cval=cval, out=out)


def closing(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """Closing: :func:`dilate` then :func:`erode`, as cv2.morphologyEx(MORPH_CLOSE). Same
        dtypes, layouts, footprints and borders as :func:`erode`; exact.
    {args}
        Example:
            >>> import numpy as np, imkern
            >>> img = np.full((5, 5), 9, np.uint8); img[2, 2] = 0   # an isolated dark dot
            >>> int(imkern.filters.closing(img, 3).min())
            9
    """
    dl = dilate(image, footprint, iterations=iterations, border=border, cval=cval)
    return erode(dl, footprint, iterations=iterations, border=border, cval=cval, out=out)


def morph_gradient(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """Morphological gradient: ``dilate - erode`` (saturated at 0 for integers), as
        cv2.morphologyEx(MORPH_GRADIENT).
    {args}
        Example:
            >>> import numpy as np, imkern
            >>> img = np.zeros((1, 5), np.uint8); img[0, 2:] = 7
            >>> imkern.filters.morph_gradient(img, (1, 3))
            array([[0, 7, 7, 0, 0]], dtype=uint8)
    """
    _check_dtype(image)
    kind, _ = A.check_image(image)
    f = _as_footprint(footprint)
    n = _iterations(iterations)
    if kind == "numpy" and (n == 1 or (n > 1 and f.all())):
        # One pass computing both extremes (rectangles; other footprints: two passes in C++).
        b, cv, ignore = _border(border, cval)
        fh, fw = f.shape
        ay, ax = fh // 2, fw // 2
        if n > 1:  # as _morph: n passes of a rectangle are one pass of the enlarged rectangle
            f = np.ones((fh + (n - 1) * (fh - 1), fw + (n - 1) * (fw - 1)), np.uint8)
            ay, ax = ay * n, ax * n

        def cpu(src, dst):
            cx = _identity(src.dtype, True) if ignore else cv
            cn = _identity(src.dtype, False) if ignore else cv
            _core.morph_gradient(src, dst, f, ay, ax, b, cx, cn)

        return _run(image, out, cpu, None)
    kw = dict(iterations=iterations, border=border, cval=cval)
    return _combine(image, dilate(image, footprint, **kw), erode(image, footprint, **kw), out)


def tophat(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """White top-hat: ``image - opening(image)`` (saturated at 0 for integers), as
        cv2.morphologyEx(MORPH_TOPHAT).
    {args}
        Example:
            >>> import numpy as np, imkern
            >>> img = np.zeros((5, 5), np.uint8); img[2, 2] = 9
            >>> int(imkern.filters.tophat(img, 3)[2, 2])
            9
    """
    op = opening(image, footprint, iterations=iterations, border=border, cval=cval)
    return _combine(image, image, op, out)


def blackhat(image, footprint=3, *, iterations=1, border=None, cval=0.0, out=None):
    """Black top-hat: ``closing(image) - image`` (saturated at 0 for integers), as
        cv2.morphologyEx(MORPH_BLACKHAT).
    {args}
        Example:
            >>> import numpy as np, imkern
            >>> img = np.full((5, 5), 9, np.uint8); img[2, 2] = 0
            >>> int(imkern.filters.blackhat(img, 3)[2, 2])
            9
    """
    cl = closing(image, footprint, iterations=iterations, border=border, cval=cval)
    return _combine(image, cl, image, out)


def minimum_filter(image, size=3, *, border="reflect", cval=0.0, out=None):
    """scipy.ndimage.minimum_filter's name: :func:`erode` with a ``size`` rectangle (int or
    ``(h, w)``) and SciPy's default border ("reflect"; SciPy's ``mode`` names are accepted).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[5, 1, 7], [3, 9, 2], [8, 4, 6]], np.float32)
        >>> imkern.filters.minimum_filter(img, 3)
        array([[1., 1., 1.],
               [1., 1., 1.],
               [3., 2., 2.]], dtype=float32)
    """
    h, w = A.as_pair(size, "size")
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive sizes, got {(h, w)}")
    return _morph(image, (h, w), 1, False, parse_border(border), cval, out)


def maximum_filter(image, size=3, *, border="reflect", cval=0.0, out=None):
    """scipy.ndimage.maximum_filter's name: :func:`dilate` with a ``size`` rectangle (int or
    ``(h, w)``) and SciPy's default border ("reflect").

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[5, 1, 7], [3, 9, 2], [8, 4, 6]], np.float32)
        >>> imkern.filters.maximum_filter(img, 3)
        array([[9., 9., 9.],
               [9., 9., 9.],
               [9., 9., 9.]], dtype=float32)
    """
    h, w = A.as_pair(size, "size")
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive sizes, got {(h, w)}")
    return _morph(image, (h, w), 1, True, parse_border(border), cval, out)


for _f in (opening, closing, morph_gradient, tophat, blackhat):
    _f.__doc__ = (_f.__doc__ or "").replace("{args}", _ARGS_DOC)
