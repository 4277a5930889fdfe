"""Derivative filters: sobel, scharr, prewitt, laplacian, gradient, gradient_magnitude, and
unsharp_mask (see the package docstring for shapes and borders).

The derivative filters take uint8, uint16, float32, float64 images and return float32 (float64
for float64 images): the cv2 call with ``ddepth=cv2.CV_32F`` (``CV_64F``). Each runs as one
fused pass over the image (``_core.deriv_filter``): every op is one or two separable filters
combined per pixel, so ``gradient`` and ``gradient_magnitude`` read the image once.
"""

from __future__ import annotations

import math
from functools import lru_cache
from math import comb

import numpy as np

from .. import _arrays as A
from .. import _core
from .._borders import BORDER_CODES, parse_border
from .._driver import cpu_image_op
from .._driver import run_image_op as _run
from .._kernels import gaussian_kernels

__all__ = ["sobel", "scharr", "prewitt", "laplacian", "gradient", "gradient_magnitude", "unsharp_mask"]

_copysign = math.copysign

# DerivMode of csrc/include/imkern/filters.hpp, exported by the bindings
_SINGLE, _SUM, _PAIR, _MAG_L1, _MAG_L2 = (int(v) for v in _core.DerivMode.__members__.values())
_KSIZES = (1, 3, 5, 7)


def _out_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _order(v, name) -> int:
    v = A.as_int(v, name)
    if v < 0:
        raise ValueError(f"{name}: expected a non-negative derivative order, got {v}")
    return v


def _ksize(ksize, allowed=_KSIZES, scharr_ok=True) -> int:
    k = A.as_int(ksize, "ksize")
    if k in allowed or (scharr_ok and k == -1):
        return k
    valid = ", ".join(str(v) for v in allowed) + (" or -1 (Scharr)" if scharr_ok else "")
    raise ValueError(f"ksize: expected {valid}, got {k}")


def _deriv_kernel(order: int, ksize: int) -> np.ndarray:
    """cv2.getDerivKernels' 1-D kernel (unnormalized): a binomial smoothing of size ksize - order
    differenced `order` times."""
    if ksize == 1:
        return np.ones(1)
    if ksize == 3 and order <= 2:
        return np.array([[1.0, 2.0, 1.0], [-1.0, 0.0, 1.0], [1.0, -2.0, 1.0]][order])
    n = ksize - order - 1
    k = np.array([float(comb(n, i)) for i in range(n + 1)])
    for _ in range(order):
        k = np.convolve(k, [-1.0, 1.0])
    return k


def sobel_kernels(dx: int, dy: int, ksize: int):
    """(kx, ky) of cv2.getDerivKernels(dx, dy, ksize) (ksize -1: Scharr's), float64."""
    if ksize == -1:
        sm, dv = np.array([3.0, 10.0, 3.0]), np.array([-1.0, 0.0, 1.0])
        return (dv if dx else sm), (dv if dy else sm)
    kx_size = 3 if (ksize == 1 and dx > 0) else ksize
    ky_size = 3 if (ksize == 1 and dy > 0) else ksize
    return _deriv_kernel(dx, kx_size), _deriv_kernel(dy, ky_size)


def _scaled(k: np.ndarray, scale: float, acc: np.dtype) -> np.ndarray:
    """k * scale rounded to the kernel type cv2 uses (float32 unless the output is float64)."""
    if scale == 1.0:
        return k
    return (k.astype(acc) * acc.type(scale)).astype(np.float64)


def _pad_to(k: np.ndarray, n: int) -> np.ndarray:
    # k centred in n taps (zeros around it). Not np.pad: ~12 us a call, four per laplacian,
    # which was most of a 224x224 laplacian's time.
    if k.size == n:
        return k
    p = (n - k.size) // 2
    out = np.zeros(n, dtype=k.dtype)
    out[p : p + k.size] = k
    return out


def _check_common(image, border, cval, name="image"):
    kind, dt = A.check_image(image, name)
    b = BORDER_CODES[parse_border(border)]
    cval = A.as_float(cval, "cval")
    return kind, dt, b, cval


# (op name, image dtype, its arguments, their types) -> the checked CPU call of that op on a
# NumPy image: deriv_filter's arguments after (src, dst), and the output dtype
_CALLS: dict = {}


def _call_key(op, image, args):
    """The call cache's key of op on a NumPy image, or None (not cacheable): the
    arguments with their types (1, 1.0 and True parse differently: no hit on another's entry;
    an unhashable argument finds nothing), none of them -0.0 (equal to 0.0, another value)."""
    if type(image) is not np.ndarray:
        return None
    for v in args:
        if v == 0.0 and type(v) is float and _copysign(1.0, v) < 0:
            return None
    return (op, image.dtype, args, tuple(map(type, args)))


def _cached(key, image, out):
    """The op's result from the call cache (key from _call_key), or None (also where ``out`` is
    not an array the kernel writes in place: cpu_image_op)."""
    if key is None:
        return None
    try:
        call = _CALLS.get(key)
    except TypeError:  # an unhashable argument: the checks say what is wrong with it
        return None
    if call is None:
        return None
    return cpu_image_op(image, out, _core.deriv_filter, call[0], None, call[1])


def _deriv(image, kx0, ky0, kx1, ky1, mode, delta, border, cval, out, ck=None):
    """One call of the fused derivative kernel (modes single, sum, mag_l1, mag_l2); ``ck``: the
    call cache's key (None: not cached), under which the checked call is kept."""
    kind, dt, b, cval = _check_common(image, border, cval)
    odt = _out_dtype(dt)
    kx0, ky0 = np.ascontiguousarray(kx0, np.float64), np.ascontiguousarray(ky0, np.float64)
    if mode == _SINGLE:
        kx1, ky1 = kx0, ky0
    else:
        kw, kh = max(kx0.size, kx1.size), max(ky0.size, ky1.size)
        kx0, kx1 = _pad_to(kx0, kw), _pad_to(np.asarray(kx1, np.float64), kw)
        ky0, ky1 = _pad_to(ky0, kh), _pad_to(np.asarray(ky1, np.float64), kh)
    delta = A.as_float(delta, "delta")
    if ck is not None and kind == "numpy":
        # (reached with every argument checked; a hashing failure was a miss, so no key here
        # fails to hash)
        A.bounded_put(_CALLS, ck, ((None, kx0, ky0, kx1, ky1, mode, delta, b, cval), odt))

    def cpu(src, dst):
        _core.deriv_filter(src, dst, None, kx0, ky0, kx1, ky1, mode, delta, b, cval)

    def cuda(code, src, dst, stream):
        d = A.image_desc(dst)
        _core.cuda_deriv_filter(
            code,
            src.data.ptr,
            A.image_desc(src),
            dst.data.ptr,
            d,
            0,
            d,
            kx0,
            ky0,
            kx1,
            ky1,
            mode,
            delta,
            b,
            cval,
            stream,
        )

    return _run(image, out, cpu, cuda, out_dtype=odt)


def _first_order(image, dx, dy, ksize, scale, delta, border, cval, out, allowed=_KSIZES, scharr_ok=True, ck=None):
    dx, dy = _order(dx, "dx"), _order(dy, "dy")
    k = _ksize(ksize, allowed, scharr_ok)
    if dx + dy == 0:
        raise ValueError("dx, dy: at least one derivative order must be positive")
    if k == -1 and not (dx + dy == 1):
        raise ValueError(f"dx, dy: Scharr (ksize=-1) takes dx + dy == 1, got dx={dx}, dy={dy}")
    if k == 1 and (dx > 2 or dy > 2):
        raise ValueError(f"dx, dy: ksize=1 takes orders up to 2, got dx={dx}, dy={dy}")
    if k > 1 and (dx >= k or dy >= k):
        raise ValueError(f"dx, dy: orders must be below ksize={k}, got dx={dx}, dy={dy}")
    scale = A.as_float(scale, "scale")
    kind, dt = A.check_image(image)
    kx, ky = _first_order_kernels(dx, dy, k, scale, _out_dtype(dt))
    return _deriv(image, kx, ky, None, None, _SINGLE, delta, border, cval, out, ck)


@lru_cache(maxsize=128)
def _first_order_kernels(dx: int, dy: int, k: int, scale: float, acc: np.dtype):
    """(kx, ky) with the scale folded in as cv2 folds it, read-only (cached per arguments:
    building them was a third of a small image's call)."""
    kx, ky = sobel_kernels(dx, dy, k)
    if dx == 0:
        kx = _scaled(kx, scale, acc)
    else:
        ky = _scaled(ky, scale, acc)
    return A.read_only(np.ascontiguousarray(kx, np.float64)), A.read_only(np.ascontiguousarray(ky, np.float64))


def sobel(image, dx=1, dy=0, *, ksize=3, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    """Sobel derivative of order (dx, dy): cv2.Sobel with ``ddepth=CV_32F`` (CV_64F for float64).

    ``out = scale * (ky (x) kx) * image + delta`` with cv2.getDerivKernels(dx, dy, ksize)
    (ksize 1 uses a 3-tap derivative and no smoothing; ksize -1 is Scharr's 3x3). As cv2, the
    scale is folded into the smoothing kernel (into ky when dx > 0), so float results round like
    cv2's up to the order of the taps; integer images give exact integer sums.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64.
        dx, dy: derivative orders along x (columns) and y (rows); dx + dy >= 1, each < ksize
            (<= 2 for ksize 1).
        ksize: 1, 3, 5, 7, or -1 (Scharr).
        scale, delta: the result is ``scale * derivative + delta``.
        border, cval: border mode (the package docstring); cv2's default is "reflect101".
        out: optional float32 (float64) array of the image's shape.

    Returns:
        float32 array (float64 for float64 images) of the image's shape and kind.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.tile(np.arange(5, dtype=np.uint8) * 10, (3, 1))
        >>> imkern.filters.sobel(img)[1]
        array([ 0., 80., 80., 80.,  0.], dtype=float32)
    """
    ck = _call_key("sobel", image, (dx, dy, ksize, scale, delta, border, cval))
    r = _cached(ck, image, out)
    if r is not None:
        return r
    return _first_order(image, dx, dy, ksize, scale, delta, border, cval, out, ck=ck)


def scharr(image, dx=1, dy=0, *, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    """Scharr derivative (dx + dy == 1): cv2.Scharr with ``ddepth=CV_32F`` (CV_64F for float64).

    Kernels ``[-1, 0, 1]`` and ``[3, 10, 3]``; arguments as :func:`sobel`.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.tile(np.arange(4, dtype=np.float64), (3, 1))
        >>> float(imkern.filters.scharr(img)[1, 1])
        32.0
    """
    ck = _call_key("scharr", image, (dx, dy, scale, delta, border, cval))
    r = _cached(ck, image, out)
    if r is not None:
        return r
    dx, dy = _order(dx, "dx"), _order(dy, "dy")
    if dx + dy != 1:
        raise ValueError(f"dx, dy: Scharr takes dx + dy == 1, got dx={dx}, dy={dy}")
    return _first_order(image, dx, dy, -1, scale, delta, border, cval, out, ck=ck)


def prewitt(image, dx=1, dy=0, *, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    """Prewitt derivative (dx + dy == 1): kernels ``[-1, 0, 1]`` and ``[1, 1, 1]`` (unnormalized).

    Equals scipy.ndimage.prewitt(image, axis=1 for dx / 0 for dy) in float with the matching
    mode (``border="reflect101"`` is SciPy's "mirror"); output dtype and arguments as :func:`sobel`.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.tile(np.arange(4, dtype=np.float32), (3, 1))
        >>> float(imkern.filters.prewitt(img)[1, 1])
        6.0
    """
    ck = _call_key("prewitt", image, (dx, dy, scale, delta, border, cval))
    r = _cached(ck, image, out)
    if r is not None:
        return r
    dx, dy = _order(dx, "dx"), _order(dy, "dy")
    if dx + dy != 1:
        raise ValueError(f"dx, dy: Prewitt takes dx + dy == 1, got dx={dx}, dy={dy}")
    scale = A.as_float(scale, "scale")
    kind, dt = A.check_image(image)
    acc = _out_dtype(dt)
    dv, sm = np.array([-1.0, 0.0, 1.0]), np.ones(3)
    kx, ky = (dv, _scaled(sm, scale, acc)) if dx else (_scaled(sm, scale, acc), dv)
    return _deriv(image, kx, ky, None, None, _SINGLE, delta, border, cval, out, ck)


def laplacian(image, *, ksize=1, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    """Laplacian d2/dx2 + d2/dy2: cv2.Laplacian with ``ddepth=CV_32F`` (CV_64F for float64).

    ksize 1: the 3x3 kernel [[0, 1, 0], [1, -4, 1], [0, 1, 0]]; ksize 3: [[2, 0, 2], [0, -8, 0],
    [2, 0, 2]]; ksize 5, 7: the sum of the two second-order Sobel filters, as cv2. Computed
    as two separable filters summed in one pass.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.zeros((5, 5), np.uint8); img[2, 2] = 1
        >>> imkern.filters.laplacian(img)[1:4, 1:4]
        array([[ 0.,  1.,  0.],
               [ 1., -4.,  1.],
               [ 0.,  1.,  0.]], dtype=float32)
    """
    ck = _call_key("laplacian", image, (ksize, scale, delta, border, cval))
    r = _cached(ck, image, out)
    if r is not None:
        return r
    k = _ksize(ksize, scharr_ok=False)
    scale = A.as_float(scale, "scale")
    kind, dt = A.check_image(image)
    acc = _out_dtype(dt)
    if k == 1:
        d2, sm = np.array([1.0, -2.0, 1.0]), np.array([0.0, 1.0, 0.0])
    else:
        d2, sm = _deriv_kernel(2, k), _deriv_kernel(0, k)
    # d2x = sm (y) x d2 (x); d2y = d2 (y) x sm (x); the scale goes into the y kernels
    return _deriv(image, d2, _scaled(sm, scale, acc), sm, _scaled(d2, scale, acc), _SUM, delta, border, cval, out, ck)


def _grad_kernels(ksize):
    k = _ksize(ksize)
    kx0, ky0 = sobel_kernels(1, 0, k)
    kx1, ky1 = sobel_kernels(0, 1, k)
    n = max(kx0.size, ky0.size, kx1.size, ky1.size)
    return _pad_to(kx0, n), _pad_to(ky0, n), _pad_to(kx1, n), _pad_to(ky1, n)


def gradient_magnitude(image, *, ksize=3, l2=True, border="reflect101", cval=0.0, out=None):
    """Gradient magnitude from the Sobel derivatives, in one pass over the image.

    ``sqrt(gx**2 + gy**2)`` (``l2=True``) or ``|gx| + |gy|`` with ``gx = sobel(image, 1, 0)``,
    ``gy = sobel(image, 0, 1)`` (ksize 1, 3, 5, 7 or -1 for Scharr): cv2.magnitude of the two
    cv2.Sobel results, computed without writing them. float32 output (float64 for float64).

    Example:
        >>> import numpy as np, imkern
        >>> img = np.tile(np.arange(4, dtype=np.uint8), (4, 1)).T.copy()  # a ramp along y
        >>> float(imkern.filters.gradient_magnitude(img)[1, 1])
        8.0
    """
    ck = _call_key("gradient_magnitude", image, (ksize, l2, border, cval))
    r = _cached(ck, image, out)
    if r is not None:
        return r
    kx0, ky0, kx1, ky1 = _grad_kernels(ksize)
    return _deriv(image, kx0, ky0, kx1, ky1, _MAG_L2 if l2 else _MAG_L1, 0.0, border, cval, out, ck)


def gradient(image, *, ksize=3, border="reflect101", cval=0.0, out=None):
    """Both Sobel derivatives ``(gx, gy)`` (dx=1 and dy=1), computed in one pass over the image.

    Equal to ``(sobel(image, 1, 0, ksize=ksize), sobel(image, 0, 1, ksize=ksize))``.

    Args:
        out: None or a pair of float32 (float64) arrays of the image's shape.

    Returns:
        ``(gx, gy)``.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.tile(np.arange(4, dtype=np.float32), (3, 1))
        >>> gx, gy = imkern.filters.gradient(img)
        >>> float(gx[1, 1]), float(gy[1, 1])
        (8.0, 0.0)
    """
    kx0, ky0, kx1, ky1 = _grad_kernels(ksize)
    kind, dt, b, cval = _check_common(image, border, cval)
    odt = _out_dtype(dt)
    if out is None:
        out0 = out1 = None
    else:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("out: expected None or a pair (gx_out, gy_out)")
        out0, out1 = out
        if out0 is not None and out1 is not None and A.xp_of(kind).may_share_memory(out0, out1):
            raise ValueError("out: the two output arrays overlap")
    t0, f0 = A.prepare_out(out0, image, kind, odt, name="out[0]")
    t1, f1 = A.prepare_out(out1, image, kind, odt, name="out[1]")
    if image.size == 0:
        return f0, f1
    src = A.packed_image(image, kind)
    if kind == "numpy":
        _core.deriv_filter(src, t0, t1, kx0, ky0, kx1, ky1, _PAIR, 0.0, b, cval)
    else:
        with A.cuda_launch(src) as stream:
            _core.cuda_deriv_filter(
                A.DTYPE_CODES[dt],
                src.data.ptr,
                A.image_desc(src),
                t0.data.ptr,
                A.image_desc(t0),
                t1.data.ptr,
                A.image_desc(t1),
                kx0,
                ky0,
                kx1,
                ky1,
                _PAIR,
                0.0,
                b,
                cval,
                stream,
            )
    return A.finish_out(t0, f0), A.finish_out(t1, f1)


def unsharp_mask(
    image, sigma, amount=1.0, *, threshold=0.0, ksize=None, truncate=4.0, border="reflect101", cval=0.0, out=None
):
    """Unsharp mask: ``image + amount * (image - gaussian(image, sigma))`` where
    ``|image - blur| > threshold`` (else the pixel is kept), in one pass with the blur.

    The blur is :func:`imkern.filters.gaussian`'s (same ``sigma``, ``ksize``, ``truncate``,
    ``border``), kept in float32 (float64 for float64 images), never rounded; integer results
    are rounded to nearest and saturated. Output: the image's dtype.

    Args:
        sigma: a number or ``(sigma_y, sigma_x)``, > 0 (or give ``ksize``).
        amount: the sharpening strength (any real; negative blurs).
        threshold: >= 0, in the image's units.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.full((5, 5), 100, np.uint8); img[2, 2] = 120
        >>> int(imkern.filters.unsharp_mask(img, 1.0, 2.0)[2, 2]) > 120
        True
    """
    from ._linear import _gaussian_args

    kind, dt, b, cval = _check_common(image, border, cval)
    sig, ksize, truncate = _gaussian_args(sigma, ksize, truncate)
    amount = A.as_float(amount, "amount")
    threshold = A.as_float(threshold, "threshold")
    if not math.isfinite(amount):
        raise ValueError(f"amount: expected a finite number, got {amount}")
    if not threshold >= 0:
        raise ValueError(f"threshold: expected a non-negative number, got {threshold}")
    ky, kx = gaussian_kernels(sig, ksize, truncate)
    ky, kx = np.ascontiguousarray(ky, np.float64), np.ascontiguousarray(kx, np.float64)

    def cpu(src, dst):
        _core.unsharp_mask(src, dst, ky, kx, amount, threshold, b, cval)

    def cuda(code, src, dst, stream):
        _core.cuda_unsharp_mask(
            code,
            src.data.ptr,
            A.image_desc(src),
            dst.data.ptr,
            A.image_desc(dst),
            ky,
            kx,
            amount,
            threshold,
            b,
            cval,
            stream,
        )

    return _run(image, out, cpu, cuda)
