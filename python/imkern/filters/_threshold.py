"""Thresholds: threshold (cv2.threshold's five kinds), threshold_otsu, threshold_triangle."""

from __future__ import annotations

import math

import numpy as np

from .. import _arrays as A
from .. import _core
from .._driver import cpu_image_op
from .._driver import run_image_op as _run

__all__ = ["threshold", "threshold_otsu", "threshold_triangle", "adaptive_threshold"]

# ThreshKind of csrc/include/imkern/filters.hpp (the values of cv2.THRESH_*), exported by the bindings
THRESHOLD_KINDS = {name: int(v) for name, v in _core.ThreshKind.__members__.items()}
_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))
_DTYPE_SET = frozenset(_DTYPES)  # (a non-native byte order is not a member)


def _check(image, name="image"):
    kind = A.array_kind(image, name)
    if image.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name}: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(image.shape)}"
        )
    dt = A.check_dtype(image, name, kind, _DTYPES, _DTYPES)
    return kind, dt


def threshold(image, thresh, maxval, kind="binary", *, out=None):
    """Fixed-level threshold, element by element, as cv2.threshold.

    ========== ============================================
    kind       out (x > thresh) / out (otherwise)
    ========== ============================================
    binary     maxval / 0
    binary_inv 0 / maxval
    trunc      thresh / x
    tozero     x / 0
    tozero_inv 0 / x
    ========== ============================================

    For uint8 / uint16 images the level is ``floor(thresh)`` and ``maxval`` is rounded and
    saturated, exactly as cv2 does; float32 images compare with ``float32(thresh)``. NaN
    pixels give 0 for the binary kinds and stay NaN for the others (cv2's float32 results,
    except that its trunc gives ``thresh`` where the data is 8-byte aligned; its float64 path
    differs for trunc / tozero / tozero_inv).

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64.
        thresh: the level (a number).
        maxval: the value set by the binary kinds.
        kind: "binary", "binary_inv", "trunc", "tozero" or "tozero_inv".
        out: optional array of the image's shape, dtype and kind.

    Returns:
        The thresholded image, the image's dtype.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.filters.threshold(np.array([[10, 100, 200]], np.uint8), 99.5, 255)
        array([[  0, 255, 255]], dtype=uint8)
    """
    k = THRESHOLD_KINDS.get(kind) if isinstance(kind, str) else None
    if k is None:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, THRESHOLD_KINDS))}; got {kind!r}")
    if not (type(image) is np.ndarray and image.dtype in _DTYPE_SET and 2 <= image.ndim <= 4):
        _check(image)  # (the common case decided in one test, with the same result)
    thresh = A.as_float(thresh, "thresh")
    maxval = A.as_float(maxval, "maxval")
    if math.isnan(thresh):
        raise ValueError("thresh: NaN is not a level")
    if math.isnan(maxval):
        raise ValueError("maxval: expected a number, got NaN")
    r = cpu_image_op(image, out, _core.threshold, (k, thresh, maxval))  # the common call, in one step
    if r is not None:
        return r

    def cpu(src, dst):
        _core.threshold(src, dst, k, thresh, maxval)

    def cuda(code, src, dst, stream):
        _core.cuda_threshold(
            code, src.data.ptr, A.image_desc(src), dst.data.ptr, A.image_desc(dst), k, thresh, maxval, stream
        )

    return _run(image, out, cpu, cuda)


def _int_histogram(image, kind, dt):
    """Value counts of a uint8 / uint16 image (256 / 65536 int64 bins), on the host."""
    src = A.packed_image(image, kind)
    if kind == "numpy":
        return _core.histogram_int(src)
    import cupy

    nb = 256 if dt == np.uint8 else 65536
    with A.cuda_launch(src) as stream:
        h = cupy.zeros(nb, dtype=cupy.uint64)
        _core.cuda_histogram_int(A.DTYPE_CODES[dt], src.data.ptr, A.image_desc(src), h.data.ptr, stream)
        return h.get().astype(np.int64)


def _skimage_otsu(image, kind, nbins=256):
    """skimage.filters.threshold_otsu's computation (256-bin histogram over [min, max])."""
    if kind == "cupy":
        # NumPy's binning (edges in the image's float type, its edge corrections) is what
        # skimage's level depends on; the image is brought to the host to bin it identically.
        image = image.get()
    flat = image.reshape(-1)
    first = flat[0]
    if bool(np.all(image == first)):
        return float(first)
    lo, hi = image.min(), image.max()
    counts, edges = np.histogram(flat, bins=nbins, range=(lo, hi))
    # skimage (0.26) sums float32 counts: for a float32 image its class weights, means and
    # variances are float32, and its argmax follows their rounding in near ties
    counts = counts.astype(np.float32)
    centers = (edges[:-1] + edges[1:]) / 2.0
    w1 = np.cumsum(counts)
    w2 = np.cumsum(counts[::-1])[::-1]
    m1 = np.cumsum(counts * centers) / w1
    m2 = (np.cumsum((counts * centers)[::-1]) / w2[::-1])[::-1]
    var12 = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return float(centers[np.argmax(var12)])


def threshold_otsu(image):
    """Otsu's threshold level (the level maximizing the between-class variance).

    uint8 and uint16: exactly the level cv2.threshold(image, 0, maxval, THRESH_OTSU) returns
    (its histogram of every value and its float64 loop); float32 / float64: exactly
    skimage.filters.threshold_otsu (256 bins over [min, max], float32 counts as scikit-image 0.26
    sums them, the bin center; an image of one
    value returns that value). All channels and images of the array are pooled. NaN in a float
    image gives an undefined level (as skimage). Float images are binned by NumPy (a CuPy float
    image is copied to the host for it); integer images by imkern's histogram kernels.

    Returns:
        The level as a Python float (pixels > level are the foreground, as cv2.threshold).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[10, 12, 11, 200, 205, 199]], np.uint8)
        >>> imkern.filters.threshold_otsu(img)
        12.0
    """
    kind, dt = _check(image)
    if image.size == 0:
        raise ValueError("image: empty image has no threshold")
    if dt.kind == "u":
        return float(_core.otsu_level(_int_histogram(image, kind, dt)))
    return _skimage_otsu(image, kind)


def threshold_triangle(image):
    """The triangle method's threshold level on a uint8 image, exactly as
    cv2.threshold(image, 0, maxval, THRESH_TRIANGLE) computes it (channels pooled).

    Returns:
        The level as a Python float.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.concatenate([np.full(90, 20), np.arange(100, 110)]).astype(np.uint8).reshape(10, 10)
        >>> imkern.filters.threshold_triangle(img)
        22.0
    """
    kind = A.array_kind(image, "image")
    if image.ndim not in (2, 3, 4):
        raise ValueError(
            f"image: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(image.shape)}"
        )
    dt = A.check_dtype(image, "image", kind, (np.dtype(np.uint8),))
    if image.size == 0:
        raise ValueError("image: empty image has no threshold")
    return float(_core.triangle_level(_int_histogram(image, kind, dt)))


def adaptive_threshold(image, maxval, method="mean", block_size=3, c=0.0, *, kind="binary", out=None):
    """Threshold against the local mean: cv2.adaptiveThreshold, pixel for pixel.

    ``out = maxval`` where ``image - mean > -ceil(c)`` (kind "binary"; "binary_inv": where
    ``image - mean <= -floor(c)``), else 0. ``mean`` is the ``block_size`` window's mean
    (``method="mean"``: :func:`box`) or Gaussian-weighted mean (``"gaussian"``: :func:`gaussian`
    with cv2's kernel for ``ksize=block_size``, sigma from the size), rounded to uint8, with
    replicated borders, as OpenCV computes it. Two passes: the mean, then the compare.
    Channels are thresholded independently. ``"mean"`` is exact (an integer window sum, rounded
    once); ``"gaussian"`` rounds a float32 weighted sum whose order of additions differs from
    OpenCV's, so a mean within ~1e-5 of a .5 tie can round the other way and flip a pixel that
    sits exactly at the threshold (2 of the camera image's 262144 pixels at block_size 11).

    Args:
        image: uint8 ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
        maxval: the value of the pixels that pass (rounded, saturated to 0..255).
        method: "mean" or "gaussian".
        block_size: odd window size > 1.
        c: the constant subtracted from the mean.
        kind: "binary" or "binary_inv".

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[10, 10, 10, 50, 10, 10, 10]], np.uint8)
        >>> imkern.filters.adaptive_threshold(img, 255, "mean", 3, 5)
        array([[255, 255,   0, 255,   0, 255, 255]], dtype=uint8)
    """
    from .._kernels import gaussian_kernel_cv
    from ._linear import box, sep_filter

    kind_ = A.array_kind(image, "image")
    if image.ndim not in (2, 3, 4):
        raise ValueError(
            f"image: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(image.shape)}"
        )
    A.check_dtype(image, "image", kind_, (np.dtype(np.uint8),))
    if method not in ("mean", "gaussian"):
        raise ValueError(f"method: expected 'mean' or 'gaussian', got {method!r}")
    if kind not in ("binary", "binary_inv"):
        raise ValueError(f"kind: expected 'binary' or 'binary_inv', got {kind!r}")
    bs = A.as_int(block_size, "block_size")
    if bs < 3 or bs % 2 == 0:
        raise ValueError(f"block_size: expected an odd size > 1, got {bs}")
    maxval = A.as_float(maxval, "maxval")
    c = A.as_float(c, "c")
    if not (math.isfinite(maxval) and math.isfinite(c)):
        raise ValueError("maxval, c: expected finite numbers")
    inv = kind == "binary_inv"
    idelta = int(np.floor(c)) if inv else int(np.ceil(c))
    idelta = max(-256, min(256, idelta))  # |image - mean| <= 255: larger levels compare alike
    mv = int(min(255, max(0, np.rint(maxval))))
    target, final = A.prepare_out(out, image, kind_, np.uint8)
    if image.size == 0:
        return final
    src = A.packed_image(image, kind_)
    # On the CPU the local mean is written into the output and compared in place (the compare
    # reads each mean byte before writing it): a temporary of the image's size would be freed
    # at return, the heap trimmed, and its ~500 pages faulted in again on every call.
    scratch = target if kind_ == "numpy" else None
    if method == "mean":
        mean = box(src, bs, border="replicate", out=scratch)
    else:
        # cv2 blurs a float32 copy here (not its uint8 fixed-point GaussianBlur): float32 sums
        k = gaussian_kernel_cv(bs, 0.0)
        mean = sep_filter(src, k, k, border="replicate", out=scratch)
    if kind_ == "numpy":
        _core.adaptive_compare(src, mean, target, idelta, mv, inv)
    else:
        with A.cuda_launch(src) as stream:
            _core.cuda_adaptive_compare(
                src.data.ptr,
                A.image_desc(src),
                mean.data.ptr,
                A.image_desc(mean),
                target.data.ptr,
                A.image_desc(target),
                idelta,
                mv,
                inv,
                stream,
            )
    return A.finish_out(target, final)
