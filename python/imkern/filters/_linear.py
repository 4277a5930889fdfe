"""Linear filters: correlate, convolve, sep_filter, box, gaussian (see the package docstring)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .. import _arrays as A
from .. import _core
from .._borders import BORDER_CODES, parse_border
from .._driver import cpu_image_op
from .._driver import run_image_op as _run
from .._kernels import gaussian_kernels, gaussian_kernels_q8, gaussian_kernels_q16

__all__ = ["correlate", "convolve", "sep_filter", "box", "gaussian"]


def _acc_dtype(dt: np.dtype, odt=None) -> np.dtype:
    """The accumulation type: float64 when the input or the output is float64, else float32."""
    return np.dtype(np.float64) if np.float64 in (dt, odt) else np.dtype(np.float32)


def _out_dtype(image, dtype):
    """The output dtype for ``dtype=`` (cv2's ddepth): None (the input's), float32 or float64.

    Validated before anything runs; the kernels write this dtype directly (no second pass).
    """
    if dtype is None:
        return None
    try:
        odt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype: expected None, float32 or float64, got {dtype!r}") from e
    idt = np.dtype(image.dtype) if hasattr(image, "dtype") else None
    if odt == idt:
        return None
    if odt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected None (the image's dtype), float32 or float64, got {odt}")
    return odt


def _kernel2d(kernel, name="kernel") -> np.ndarray:
    k = A.host_array(kernel, name)
    if k.ndim != 2 or k.shape[0] < 1 or k.shape[1] < 1:
        raise ValueError(f"{name}: expected a non-empty 2-D kernel, got shape {k.shape}")
    return np.ascontiguousarray(k)


def _kernel1d(kernel, name) -> np.ndarray:
    k = A.host_array(kernel, name)
    if k.ndim != 1 or k.shape[0] < 1:
        raise ValueError(f"{name}: expected a non-empty 1-D kernel, got shape {k.shape}")
    return np.ascontiguousarray(k)


def _device_weights(k: np.ndarray, dt, odt=None):
    """The kernel as a device array of the accumulation type (on the current device and stream)."""
    import cupy

    return cupy.asarray(k.astype(_acc_dtype(dt, odt)).ravel())


def _correlate(image, k: np.ndarray, ay: int, ax: int, border: str, cval: float, out, dtype=None):
    b = BORDER_CODES[parse_border(border)]
    cval = A.as_float(cval, "cval")
    odt = _out_dtype(image, dtype)
    kh, kw = k.shape

    def cpu(src, dst):
        _core.correlate(src, dst, k, ay, ax, b, cval)

    def cuda(code, src, dst, stream):
        w = _device_weights(k, src.dtype, dst.dtype)
        _core.cuda_correlate(
            code,
            src.data.ptr,
            A.image_desc(src),
            A.DTYPE_CODES[np.dtype(dst.dtype)],
            dst.data.ptr,
            A.image_desc(dst),
            w.data.ptr,
            kh,
            kw,
            ay,
            ax,
            b,
            cval,
            stream,
        )

    return _run(image, out, cpu, cuda, out_dtype=odt)


def correlate(image, kernel, *, border="reflect101", cval=0.0, dtype=None, out=None):
    """2-D correlation with an arbitrary kernel.

    ``out[y, x] = sum_{i, j} kernel[i, j] * image[y + i - kh // 2, x + j - kw // 2]``; the anchor
    is the kernel's center ``kernel.shape // 2`` (scipy.ndimage.correlate with origin 0,
    cv2.filter2D with the default anchor), for odd and even kernel sizes.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64.
        kernel: 2-D array of weights (any size; converted to the accumulation type).
        border: border mode (see the module docstring).
        cval: the value outside the image for ``border="constant"``.
        dtype: the output dtype: None (the input's), float32 or float64, as cv2's ``ddepth``.
            A uint8 image with a derivative kernel keeps its negative half as float32
            (accumulation in float32; float64 when the input or the output is float64).
        out: optional array of the input's shape and kind, of the output dtype, to write into.

    Returns:
        The filtered image: same kind and shape as ``image``, dtype ``dtype`` or the image's.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(16, dtype=np.float32).reshape(4, 4)
        >>> float(imkern.filters.correlate(img, np.ones((3, 3)) / 9)[1, 1])
        5.0
    """
    k = _kernel2d(kernel)
    return _correlate(image, k, k.shape[0] // 2, k.shape[1] // 2, border, cval, out, dtype)


def convolve(image, kernel, *, border="reflect101", cval=0.0, dtype=None, out=None):
    """2-D convolution: :func:`correlate` with the kernel flipped on both axes.

    The center of the unflipped kernel, ``kernel.shape // 2``, lands on the output pixel, as in
    scipy.ndimage.convolve with origin 0 (for even sizes too). ``dtype`` as in :func:`correlate`.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.zeros((5, 5)); img[2, 2] = 1
        >>> k = np.arange(9.0).reshape(3, 3)
        >>> bool((imkern.filters.convolve(img, k)[1:4, 1:4] == k).all())
        True
    """
    k = _kernel2d(kernel)
    kh, kw = k.shape
    return _correlate(image, k[::-1, ::-1].copy(), kh - 1 - kh // 2, kw - 1 - kw // 2, border, cval, out, dtype)


def _sep_call(image, ky: np.ndarray, kx: np.ndarray, border: str, cval, dtype):
    """(CPU kernel, its arguments after (src, dst), output dtype or None) of a separable
    filter, every argument checked."""
    b = BORDER_CODES[parse_border(border)]
    cval = A.as_float(cval, "cval")
    odt = _out_dtype(image, dtype)
    return _core.sep_filter, (ky, ky.shape[0] // 2, kx, kx.shape[0] // 2, b, cval), odt


def _sep(image, ky: np.ndarray, kx: np.ndarray, border: str, cval: float, out, dtype=None, call=None):
    """``call``: what :func:`_sep_call` returned for these arguments (or None: computed here)."""
    kernel, args, odt = call or _sep_call(image, ky, kx, border, cval, dtype)
    r = cpu_image_op(image, out, kernel, args, None, odt)
    if r is not None:
        return r
    _, ay, _, ax, b, cval = args
    kh, kw = ky.shape[0], kx.shape[0]

    def cpu(src, dst):
        _core.sep_filter(src, dst, ky, ay, kx, ax, b, cval)

    def cuda(code, src, dst, stream):
        wy = _device_weights(ky, src.dtype, dst.dtype)
        wx = _device_weights(kx, src.dtype, dst.dtype)
        _core.cuda_sep_filter(
            code,
            src.data.ptr,
            A.image_desc(src),
            A.DTYPE_CODES[np.dtype(dst.dtype)],
            dst.data.ptr,
            A.image_desc(dst),
            wy.data.ptr,
            kh,
            ay,
            wx.data.ptr,
            kw,
            ax,
            b,
            cval,
            stream,
        )

    return _run(image, out, cpu, cuda, out_dtype=odt)


def sep_filter(image, kernel_y, kernel_x, *, border="reflect101", cval=0.0, dtype=None, out=None):
    """Separable filter: ``kernel_y`` down the columns, then ``kernel_x`` along the rows.

    Equals ``correlate(image, np.outer(kernel_y, kernel_x))`` (anchors at ``len // 2``) and
    cv2.sepFilter2D(image, ddepth, kernel_x, kernel_y), in one pass over the image. ``dtype``
    (None, float32 or float64) is the output dtype, as cv2's ``ddepth``: a Sobel kernel on
    uint8 with ``dtype=np.float32`` keeps the negative half.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(25, dtype=np.float64).reshape(5, 5)
        >>> float(imkern.filters.sep_filter(img, [0, 1, 0], [0.5, 0, 0.5])[2, 2])
        12.0
    """
    ky = _kernel1d(kernel_y, "kernel_y")
    kx = _kernel1d(kernel_x, "kernel_x")
    return _sep(image, ky, kx, border, cval, out, dtype)


# (size, border, cval keys, normalize) -> the checked arguments of box's CPU kernel (dtype=None)
_BOX_ARGS: dict = {}


def box(image, size, *, normalize=True, border="reflect101", cval=0.0, dtype=None, out=None):
    """Box filter: the mean (``normalize=True``) or sum of each ``size`` window.

    Equals cv2.blur / cv2.boxFilter (anchor at the window's center ``size // 2``). The cost
    does not grow with the window size: running sums for integer images (exact), block
    prefix/suffix sums for float images, so a NaN, an Inf or a huge value changes only the
    windows that contain it (unlike running sums, cv2 and scipy). Integer sums that exceed
    the dtype's range saturate (``normalize=False``) unless ``dtype`` asks for floats.

    Args:
        size: int or ``(h, w)``, positive.
        dtype: the output dtype: None (the input's), float32 or float64 (cv2's ``ddepth``).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(9, dtype=np.uint8).reshape(3, 3)
        >>> int(imkern.filters.box(img, 3, normalize=False)[1, 1])
        36
    """
    ck = None
    if dtype is None and type(image) is np.ndarray and type(border) is str and type(normalize) is bool:
        # the checked arguments of the call (a small image's call is mostly their parsing)
        ck = (A.int_key(size), border, A.cache_key(cval), normalize)
        args = _BOX_ARGS.get(ck)
        if args is not None:
            r = cpu_image_op(image, out, _core.box, args)
            if r is not None:
                return r
    kh, kw = A.as_pair(size, "size")
    if kh < 1 or kw < 1:
        raise ValueError(f"size: expected positive window sizes, got {(kh, kw)}")
    b = BORDER_CODES[parse_border(border)]
    cval = A.as_float(cval, "cval")
    normalize = bool(normalize)
    ay, ax = kh // 2, kw // 2
    odt = None if dtype is None else _out_dtype(image, dtype)
    if ck is not None and ck[0] is not A.UNCACHED and ck[2] is not A.UNCACHED:
        A.bounded_put(_BOX_ARGS, ck, (kh, kw, ay, ax, normalize, b, cval))
    r = cpu_image_op(image, out, _core.box, (kh, kw, ay, ax, normalize, b, cval), None, odt)
    if r is not None:
        return r

    def cpu(src, dst):
        _core.box(src, dst, kh, kw, ay, ax, normalize, b, cval)

    def cuda(code, src, dst, stream):
        _core.cuda_box(
            code,
            src.data.ptr,
            A.image_desc(src),
            A.DTYPE_CODES[np.dtype(dst.dtype)],
            dst.data.ptr,
            A.image_desc(dst),
            kh,
            kw,
            ay,
            ax,
            normalize,
            b,
            cval,
            stream,
        )

    return _run(image, out, cpu, cuda, out_dtype=odt)


def _gaussian_args(sigma, ksize, truncate):
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise ValueError(f"sigma: expected a number or (sigma_y, sigma_x), got {sigma!r}")
        sig = (A.as_float(sigma[0], "sigma"), A.as_float(sigma[1], "sigma"))
    else:
        s = A.as_float(sigma, "sigma")
        sig = (s, s)
    if not (math.isfinite(sig[0]) and math.isfinite(sig[1])):
        raise ValueError(f"sigma: expected finite values, got {sigma!r}")
    truncate = A.as_float(truncate, "truncate")
    if ksize is not None:
        kh, kw = A.as_pair(ksize, "ksize")
        if kh < 1 or kw < 1 or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"ksize: expected odd positive sizes (as cv2.GaussianBlur), got {(kh, kw)}")
        ksize = (kh, kw)
    else:
        if min(sig) <= 0:
            raise ValueError(f"sigma: expected positive values (or give ksize), got {sigma!r}")
        if not (truncate > 0 and math.isfinite(truncate)):
            raise ValueError(f"truncate: expected a positive number, got {truncate!r}")
    return sig, ksize, truncate


def gaussian(image, sigma, *, ksize=None, truncate=4.0, border="reflect101", cval=0.0, dtype=None, out=None):
    """Gaussian blur.

    With ``ksize=(kh, kw)`` (odd) the kernels are cv2.getGaussianKernel's, so the result
    matches cv2.GaussianBlur (note cv2 takes ksize as (width, height)); a sigma <= 0 is then
    derived from the size as OpenCV does. Without ``ksize`` the radius is
    ``int(truncate * sigma + 0.5)`` per axis, as scipy.ndimage.gaussian_filter.

    A uint8 or uint16 image with ``ksize`` (and an output of its dtype) takes cv2.GaussianBlur's
    own fixed-point algorithm and equals it bit for bit: for uint8 the taps in 8 fractional
    bits (summing to 256), a 16-bit horizontal pass, a 32-bit vertical pass and
    ``(v + 2**15) >> 16``; for uint16 the taps in 16 fractional bits, a 32-bit horizontal pass,
    a 64-bit vertical pass and ``(v + 2**31) >> 32``; all sums exact. With
    ``border="constant"`` this needs a ``cval`` that is an integer the dtype holds (cv2's is 0);
    another cval, another output dtype, or no ``ksize`` take the float32 separable filter
    (rounded to nearest at the end). ``sigma=(sy, sx)`` is cv2's ``sigmaY=sy, sigmaX=sx``, each
    sigma <= 0 derived from its own size.

    Args:
        sigma: a number or ``(sigma_y, sigma_x)``.
        ksize: None or ``(kh, kw)`` / an int, odd.
        truncate: radius in sigmas when ``ksize`` is None.
        dtype: the output dtype: None (the input's), float32 or float64 (cv2's ``ddepth``).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.full((8, 8), 100, np.uint8)
        >>> int(imkern.filters.gaussian(img, 1.0, ksize=(5, 5))[4, 4])
        100
    """
    ck = None
    if dtype is None and type(image) is np.ndarray and type(border) is str:
        # The whole call, once its arguments were checked on a NumPy image of this dtype: a
        # small image's call would otherwise spend most of its time parsing them again.
        ck = (A.cache_key(sigma), A.int_key(ksize), A.cache_key(truncate), border, A.cache_key(cval), image.dtype)
        call = _CALLS.get(ck)
        if call is not None:
            r = cpu_image_op(image, out, call[0], call[1], None, call[2])
            if r is not None:
                return r
    fixed = np.dtype(image.dtype) if ksize is not None and _fixed(image, dtype, border, cval) else None
    # (ksize by int_key: a ksize of 3.0 is a TypeError, never a hit on 3's entry)
    key = (A.cache_key(sigma), A.int_key(ksize), A.cache_key(truncate))
    plan = (
        _gaussian_plan.__wrapped__(sigma, ksize, truncate, fixed) if A.UNCACHED in key else _gaussian_plan(*key, fixed)
    )
    if plan[0] == "fixed":
        call = _gaussian_fixed_call(image, plan[1], plan[2], border, cval)
    else:
        call = _sep_call(image, plan[1], plan[2], border, cval, dtype)
    if ck is not None and image.dtype in _CALL_DTYPES and not any(v is A.UNCACHED for v in ck[:5]):
        A.bounded_put(_CALLS, ck, call)
    if plan[0] == "fixed":
        return _gaussian_fixed(image, plan[1], plan[2], border, cval, out, call)
    return _sep(image, plan[1], plan[2], border, cval, out, dtype, call)


# (sigma, ksize, truncate, border, cval keys (A.cache_key), image dtype) -> the checked CPU call
# (kernel, arguments, output dtype) of gaussian with dtype=None
_CALLS: dict = {}
_CALL_DTYPES = A._IMAGE_DTYPES_CPU_SET


@lru_cache(maxsize=512)
def _gaussian_plan(sigma, ksize, truncate, fixed):
    """("fixed", ky, kx): cv2's uint8 / uint16 fixed-point taps (zero pairs trimmed), or
    ("sep", ky, kx): the float taps; validated arguments, read-only arrays (cached: a call on a
    small image would otherwise spend most of its time here)."""
    sig, ksize, truncate = _gaussian_args(sigma, ksize, truncate)
    if ksize is not None and fixed is not None:
        ky, kx = (gaussian_kernels_q8 if fixed == np.uint8 else gaussian_kernels_q16)(sig, ksize)
        if ky.min() >= 0 and kx.min() >= 0:  # (a negative center tap needs ksize in the hundreds)
            return "fixed", A.read_only(_trim_zeros(ky)), A.read_only(_trim_zeros(kx))
    ky, kx = gaussian_kernels(sig, ksize, truncate)
    return "sep", A.read_only(np.asarray(ky)), A.read_only(np.asarray(kx))


# imkern::cuda::kMaxGaussU8Taps / kMaxGaussU16Taps (taps passed by value; 32-bit shared rows)
_CUDA_MAX_GAUSS_FIXED_TAPS = {np.dtype(np.uint8): 63, np.dtype(np.uint16): 33}


def _fixed(image, dtype, border, cval) -> bool:
    """Whether gaussian with ksize takes cv2's uint8 / uint16 fixed-point algorithm (see its
    docstring)."""
    dt = getattr(image, "dtype", None)
    if dt is None or np.dtype(dt) not in _CUDA_MAX_GAUSS_FIXED_TAPS or _out_dtype(image, dtype) is not None:
        return False
    if parse_border(border) != "constant":
        return True
    c = A.as_float(cval, "cval")
    return 0 <= c <= np.iinfo(dt).max and c == int(c)


def _trim_zeros(k: np.ndarray) -> np.ndarray:
    """The taps without the zero pairs at both ends (large ksize for the sigma): exact, since
    they weigh nothing whatever the border brings, and cheaper."""
    k = np.asarray(k, dtype=np.int32)
    n = 0
    while 2 * n + 1 < len(k) and k[n] == 0 and k[len(k) - 1 - n] == 0:
        n += 1
    return np.ascontiguousarray(k[n : len(k) - n])


def _gaussian_fixed_call(image, ky: np.ndarray, kx: np.ndarray, border: str, cval):
    """(CPU kernel, its arguments after (src, dst), None) of the fixed-point Gaussian."""
    b = BORDER_CODES[parse_border(border)]
    c = int(A.as_float(cval, "cval")) if parse_border(border) == "constant" else 0
    cpu_kernel = _core.gaussian_u8 if np.dtype(image.dtype) == np.uint8 else _core.gaussian_u16
    return cpu_kernel, (ky, kx, b, c), None


def _gaussian_fixed(image, ky: np.ndarray, kx: np.ndarray, border: str, cval, out, call):
    """``ky``, ``kx``: the fixed-point taps, their zero pairs trimmed (_trim_zeros); ``call``:
    what :func:`_gaussian_fixed_call` returned for them."""
    cpu_kernel, args, _ = call
    r = cpu_image_op(image, out, cpu_kernel, args)
    if r is not None:
        return r
    b, c = args[2], args[3]
    dt = np.dtype(image.dtype)
    u8 = dt == np.uint8

    def cpu(src, dst):
        cpu_kernel(src, dst, ky, kx, b, c)

    def cuda(code, src, dst, stream):
        most = _CUDA_MAX_GAUSS_FIXED_TAPS[dt]
        if max(len(ky), len(kx)) > most:
            raise ValueError(f"ksize: at most {most} for {dt} images on CUDA, got {(len(ky), len(kx))}")
        kernel = _core.cuda_gaussian_u8 if u8 else _core.cuda_gaussian_u16
        kernel(src.data.ptr, A.image_desc(src), dst.data.ptr, A.image_desc(dst), ky, kx, b, c, stream)

    return _run(image, out, cpu, cuda)
