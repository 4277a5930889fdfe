"""resize: OpenCV's interpolations (cv2.resize) and the antialiased filters of PyTorch / Pillow.

How it runs: the weights are computed once on the host, per axis, into a coefficient table
(for each output row or column: the first source index and ``k`` weights over ``k``
consecutive source indices, out-of-image taps folded onto the edge pixel as OpenCV's
replicated border does). The same table drives the CPU kernel (csrc/cpu/transform/resize.cpp)
and the CUDA kernel (csrc/cuda/transform/resize.cu). uint8 tables hold fixed-point integer
weights and both kernels do the same integer arithmetic, so uint8 results are identical on
both devices, bit for bit. uint16 and float32 use float32 weights, float64 float64 weights.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _arrays as A
from .. import _core
from .._driver import cpu_image_op
from .._driver import run_image_op as _run
from ._basic import _finish

__all__ = ["resize"]

INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "area", "lanczos")
_ALIASES = {"linear": "bilinear", "cubic": "bicubic", "lanczos4": "lanczos"}

# cv2's INTER_RESIZE_COEF_BITS: the fixed-point weights of its uint8 paths (11 bits).
_CV_BITS = 11
# Tables that OpenCV does not define in fixed point (area downscaling, antialias) use 14-bit
# weights that sum exactly to 2**14 per output, so no drift for large factors.
_FINE_BITS = 14
_INT32_MAX = 2**31 - 1


def parse_interpolation(interpolation, allowed=INTERPOLATIONS) -> str:
    if not isinstance(interpolation, str):
        raise TypeError(f"interpolation: expected a string, got {type(interpolation).__name__}")
    name = _ALIASES.get(interpolation, interpolation)
    if name not in allowed:
        raise ValueError(f"interpolation: expected one of {', '.join(map(repr, allowed))}; got {interpolation!r}")
    return name


# ---- per-axis source positions and weights (float64; the definition of every mode) ----------
def _cv_cubic(x):
    # cv2 interpolateCubic (A = -0.75), in float32 as OpenCV computes it
    A_ = np.float32(-0.75)
    x = x.astype(np.float32)
    one = np.float32(1)
    c0 = ((A_ * (x + one) - np.float32(5) * A_) * (x + one) + np.float32(8) * A_) * (x + one) - np.float32(4) * A_
    c1 = ((A_ + np.float32(2)) * x - (A_ + np.float32(3))) * x * x + one
    c2 = ((A_ + np.float32(2)) * (one - x) - (A_ + np.float32(3))) * (one - x) * (one - x) + one
    c3 = one - c0 - c1 - c2
    return np.stack([c0, c1, c2, c3], axis=1)


def _cv_lanczos4(x):
    # cv2 interpolateLanczos4: sin/cos in float64, taps in float32, normalized in float32
    s45 = 0.70710678118654752440084436210485
    cs = np.array([[1, 0], [-s45, -s45], [0, 1], [s45, -s45], [-1, 0], [s45, s45], [0, -1], [-s45, s45]])
    x64 = x.astype(np.float64)
    y0 = -(x64 + 3) * np.pi * 0.25
    s0, c0 = np.sin(y0), np.cos(y0)
    out = np.empty((x.shape[0], 8), np.float32)
    for i in range(8):
        y = -(x64 + 3 - i) * np.pi * 0.25
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, i] = ((cs[i, 0] * s0 + cs[i, 1] * c0) / (y * y)).astype(np.float32)
    ssum = np.zeros(x.shape[0], np.float32)
    for i in range(8):
        ssum = ssum + out[:, i]
    inv = (np.float32(1) / np.where(ssum == 0, np.float32(1), ssum)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        out *= inv[:, None]
    small = x < np.finfo(np.float32).eps
    out[small] = 0
    out[small, 3] = 1
    return out


def _cv_taps(src: int, dst: int, mode: str):
    """cv2.resize's (first tap index, weights) per output index for the separable modes
    (bilinear, bicubic, lanczos, and area when it does not downscale both axes)."""
    inv_scale = dst / src
    scale = 1.0 / inv_scale
    d = np.arange(dst, dtype=np.float64)
    if mode == "area":  # OpenCV's "area" when not shrinking: linear with these fractions
        sx = np.floor(d * scale).astype(np.int64)
        fx = ((d + 1) - (sx + 1) * inv_scale).astype(np.float32)
        fx = np.where(fx <= 0, np.float32(0), fx - np.floor(fx)).astype(np.float32)
    else:
        f = ((d + 0.5) * scale - 0.5).astype(np.float32)
        sx = np.floor(f).astype(np.int64)
        fx = (f - sx.astype(np.float32)).astype(np.float32)
    if mode in ("bilinear", "area"):
        lo = sx < 0
        fx[lo], sx[lo] = 0, 0
        hi = sx >= src - 1
        fx[hi], sx[hi] = 0, src - 1
        w = np.stack([np.float32(1) - fx, fx], axis=1)
        first = sx
    elif mode == "bicubic":
        w = _cv_cubic(fx)
        first = sx - 1
    else:  # lanczos
        w = _cv_lanczos4(fx)
        first = sx - 3
    return first, w


def _aa_taps(src: int, dst: int, mode: str):
    """PyTorch's interpolate(antialias=True) / Pillow's resize filters: the support scaled by
    the shrink factor; (first index, weights normalized to 1), weights padded to the longest."""
    scale = src / dst
    support = (1.0 if mode == "bilinear" else 2.0) * max(scale, 1.0)
    invscale = 1.0 / max(scale, 1.0)
    firsts, rows = [], []
    for i in range(dst):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), src)
        t = (np.arange(xmin, xmax, dtype=np.float64) - center + 0.5) * invscale
        a = np.abs(t)
        if mode == "bilinear":
            w = np.maximum(0.0, 1.0 - a)
        else:
            aa = -0.5
            w = np.where(
                a < 1, ((aa + 2) * a - (aa + 3)) * a * a + 1, np.where(a < 2, (((a - 5) * a + 8) * a - 4) * aa, 0.0)
            )
        total = w.sum()
        if total != 0:
            w = w / total
        firsts.append(xmin)
        rows.append(w)
    k = max(len(r) for r in rows)
    wt = np.zeros((dst, k))
    for i, r in enumerate(rows):
        wt[i, : len(r)] = r
    return np.array(firsts, np.int64), wt


def _area_taps(src: int, dst: int):
    """cv2 INTER_AREA when shrinking (computeResizeAreaTab): each output averages the source
    pixels its cell covers, partly covered pixels weighted by the covered fraction."""
    scale = src / dst
    firsts, rows = [], []
    for dx in range(dst):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, src - fsx1)
        sx1 = int(np.ceil(fsx1))
        sx2 = int(np.floor(fsx2))
        sx2 = min(sx2, src - 1)
        sx1 = min(sx1, sx2)
        idx, ws = [], []
        if sx1 - fsx1 > 1e-3:
            idx.append(sx1 - 1)
            ws.append((sx1 - fsx1) / cell)
        for sx in range(sx1, sx2):
            idx.append(sx)
            ws.append(1.0 / cell)
        if fsx2 - sx2 > 1e-3:
            idx.append(sx2)
            ws.append(min(min(fsx2 - sx2, 1.0), cell) / cell)
        firsts.append(idx[0])
        rows.append(np.array(ws))
    k = max(len(r) for r in rows)
    wt = np.zeros((dst, k))
    for i, r in enumerate(rows):
        wt[i, : len(r)] = r
    return np.array(firsts, np.int64), wt


def axis_taps(src: int, dst: int, mode: str, antialias: bool, area_shrink: bool):
    """(first, weights[dst, k]) in float64 for one axis, before folding onto the image."""
    if antialias and mode in ("bilinear", "bicubic"):
        return _aa_taps(src, dst, mode)
    if mode == "area" and area_shrink:
        return _area_taps(src, dst)
    first, w = _cv_taps(src, dst, mode)
    return first, w.astype(np.float64)


def _fold(first, w, src: int, wdtype):
    """Fold taps outside [0, src) onto the edge pixel (replicated border) and lay the weights
    over k' = min(k, src) consecutive source indices starting at start[i] (0 <= start <= src-k')."""
    dst, k = w.shape
    kk = min(k, src)
    start = np.clip(first, 0, src - kk)
    out = np.zeros((dst, kk), dtype=wdtype)
    idx = np.clip(first[:, None] + np.arange(k)[None, :], 0, src - 1) - start[:, None]
    rows = np.repeat(np.arange(dst), k)
    np.add.at(out, (rows, idx.ravel()), w.ravel().astype(wdtype))
    return start.astype(np.int64), out


def _fixed(w, bits: int, exact_sum: bool):
    """Weights as integers scaled by 2**bits: rounded one by one as cv2 does (saturate_cast of
    float32 products), or, with exact_sum, corrected so each output's weights sum to 2**bits."""
    if not exact_sum:
        return np.rint(w.astype(np.float32) * np.float32(1 << bits)).astype(np.int64)
    q = np.rint(w * (1 << bits)).astype(np.int64)
    err = (1 << bits) - q.sum(axis=1)
    j = np.argmax(np.abs(w), axis=1)
    q[np.arange(w.shape[0]), j] += err
    return q


def _cv_fixed(mode: str, antialias: bool, area_shrink: bool) -> bool:
    """Whether the mode's uint8 weights are cv2's 11-bit ones (else 14-bit, exact sums)."""
    return not (antialias and mode in ("bilinear", "bicubic")) and not (mode == "area" and area_shrink)


def _narrow(start, wt, src: int):
    """The table without the taps that are zero in every output's band: each output keeps the
    span from its first to its last nonzero weight, and k shrinks to the widest span (starts
    clamped to the image as in _fold). Bilinear, bicubic and lanczos sample pixel centres at
    odd integer shrinks, weights (1, 0), (0, 1, 0, 0), ..., so 3x and 5x keep one tap and read a
    third or a fifth of the rows. cv2 sums the zero taps too, which differs only where such a
    neighbour is infinite or NaN, or in the sign of a zero sum."""
    n, k = wt.shape
    nz = wt != 0
    any_nz = nz.any(axis=1)
    lo = np.where(any_nz, np.argmax(nz, axis=1), 0)
    hi = np.where(any_nz, k - np.argmax(nz[:, ::-1], axis=1), 1)
    kk = int(max(1, (hi - lo).max(initial=1)))
    if kk >= k:
        return start, wt
    first = start + lo
    st = np.minimum(first, src - kk)
    col = np.arange(kk)[None, :] - (first - st)[:, None] + lo[:, None]
    ok = (col >= 0) & (col < k)
    out = np.where(ok, wt[np.arange(n)[:, None], np.clip(col, 0, k - 1)], 0).astype(wt.dtype)
    return st.astype(np.int64), out


@functools.lru_cache(maxsize=256)
def _axis_table(src: int, dst: int, mode: str, antialias: bool, area_shrink: bool, kind: str):
    """Cached coefficient table of one axis: (start int64[dst], weights[dst, k], bits, sum|w|).

    kind: "u8" (int32 fixed-point weights), "f32" (float32), "f64" (float64).
    """
    first, w = axis_taps(src, dst, mode, antialias, area_shrink)
    cv_fixed = _cv_fixed(mode, antialias, area_shrink)
    abs_sum: float  # an int for the fixed-point weights
    if kind == "u8":
        bits = _CV_BITS if cv_fixed else _FINE_BITS
        if cv_fixed:
            # cv2 rounds each float32 weight to 11 bits after the taps are computed, then
            # clamps indices; folding integer weights is exact, so fold after rounding.
            q = _fixed(w, bits, exact_sum=False)
            start, wt = _fold(first, q, src, np.int64)
        else:
            start, wf = _fold(first, w, src, np.float64)
            wt = _fixed(wf, bits, exact_sum=True)
        abs_sum = int(np.abs(wt).sum(axis=1).max())
        wt = wt.astype(np.int32)
    else:
        bits = 0
        wdt = np.float32 if kind == "f32" else np.float64
        if cv_fixed and kind == "f32":
            w = w.astype(np.float32)
        start, wt = _fold(first, w, src, np.float64)
        wt = wt.astype(wdt)
        abs_sum = float(np.abs(wt.astype(np.float64)).sum(axis=1).max())
    start, wt = _narrow(start, wt, src)
    start.setflags(write=False)
    wt = np.ascontiguousarray(wt)
    wt.setflags(write=False)
    return start, wt, bits, abs_sum


@functools.lru_cache(maxsize=256)
def _nearest_table(src: int, dst: int, exact: bool):
    if exact:
        # floor((i + 0.5) * src / dst) in exact integer arithmetic (no fixed-point drift)
        i = np.arange(dst, dtype=np.int64)
        idx = ((2 * i + 1) * src) // (2 * dst)
    else:
        # cv2 INTER_NEAREST: floor(i * (1 / (dst / src))) in float64, clamped
        ifx = 1.0 / (dst / src)
        idx = np.minimum(np.floor(np.arange(dst, dtype=np.float64) * ifx).astype(np.int64), src - 1)
    idx.setflags(write=False)
    return idx


def _vshift(ay_sum: int, ax_sum: int) -> int:
    """Right shift applied to the vertical sums of uint8 data so the horizontal sums fit int32:
    255 * sum|wy| * sum|wx| / 2**shift must stay below 2**31 (0 for cv2's bilinear and
    bicubic tables, so those round exactly once)."""
    sh = 0
    while (255 * ay_sum * ax_sum) >> sh > _INT32_MAX - (1 << 20):
        sh += 1
    return sh


def _out_shape(image, h: int, w: int):
    s = tuple(image.shape)
    if image.ndim == 2:
        return (h, w)
    if image.ndim == 3:
        return (h, w, s[2])
    return (s[0], h, w, s[3])


def _kind_of(dt) -> str:
    dt = np.dtype(dt)
    if dt == np.uint8:
        return "u8"
    if dt == np.float64:
        return "f64"
    return "f32"


def resize(image, size, *, interpolation="bilinear", antialias=False, out=None):
    """Resize images to ``size = (h, w)``.

    Without ``antialias`` the result equals cv2.resize(image, (w, h), interpolation=...) with

    ================  =====================  =============================================
    interpolation     OpenCV                 notes
    ================  =====================  =============================================
    "nearest"         INTER_NEAREST          source index floor(i * src / dst)
    "nearest-exact"   INTER_NEAREST_EXACT    floor((i + 0.5) * src / dst), computed exactly
                                             (OpenCV's 16-bit fixed point drifts by one
                                             pixel for some sizes, opencv#27191; PyTorch's
                                             "nearest-exact" is this formula too)
    "bilinear"        INTER_LINEAR           half-pixel centers, edge pixels replicated
    "bicubic"         INTER_CUBIC            a = -0.75, 4 x 4 taps
    "area"            INTER_AREA             see below
    "lanczos"         INTER_LANCZOS4         8 x 8 taps
    ================  =====================  =============================================

    uint8 results are within 1 of OpenCV's (the same 11-bit fixed-point weights; OpenCV's
    SIMD paths round some intermediate sums differently) and identical on the CPU and on
    CUDA. Other dtypes compute in float32 (float64 for float64 images).

    At an unchanged size the result is a copy of the image (as cv2.resize makes: every mode's
    taps there are the identity), so infinities, NaNs and signed zeros stay where they are.
    An axis whose size does not change is not filtered either (its taps are one weight of 1;
    OpenCV sums the zero taps too, which differs only where a neighbor is infinite or NaN).
    Likewise taps of weight 0 in every output are not read: at an odd integer shrink (3x, 5x)
    bilinear, bicubic and lanczos sample each block's centre pixel, and the result is that
    pixel, read from a third or a fifth of the rows.

    "area" follows OpenCV exactly, including its two regimes (opencv#21472): when both axes
    shrink, each output pixel is the mean of the source cell it covers, partly covered pixels
    weighted by the covered fraction (for integer factors, the mean of each block); when
    either axis grows, it is OpenCV's bilinear variant whose weights are the fraction of the
    output cell each source pixel covers (so for upscaling, a sharp-edged, nearly nearest
    result), on both axes.

    With ``antialias=True`` ("bilinear" and "bicubic", and "area" which is already
    antialiased) the filter's support is scaled by the shrink factor, as
    torch.nn.functional.interpolate(..., antialias=True) and Pillow's resize do (bicubic with
    a = -0.5 there), for any factor (no limit on the support, unlike pytorch#103589); when an
    axis grows it is the plain filter, normalized over the taps inside the image.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64.
        size: ``(h, w)``, the output height and width, positive ints.
        interpolation: one of the names above ("linear", "cubic" are accepted too).
        antialias: scale the filter with the shrink factor (bilinear, bicubic).
        out: optional array of the output's shape, dtype and kind to write into.

    Returns:
        ``(h, w)``, ``(h, w, C)`` or ``(N, h, w, C)``: same kind and dtype as ``image``.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.array([[0, 100], [200, 255]], np.uint8)
        >>> imkern.transform.resize(img, (4, 4))
        array([[  0,  25,  75, 100],
               [ 50,  72, 117, 139],
               [150, 167, 200, 216],
               [200, 214, 241, 255]], dtype=uint8)
        >>> imkern.transform.resize(img, (1, 1), interpolation="area")
        array([[139]], dtype=uint8)
    """
    ck = None
    if type(image) is np.ndarray and type(interpolation) is str and type(antialias) is bool:
        # The whole call, once its arguments were checked on a NumPy image of this shape and
        # dtype: a small image's call would otherwise spend most of its time parsing them again.
        ck = (A.int_key(size), interpolation, antialias, image.dtype, image.shape)
        call = _CALLS.get(ck)
        if call is not None:
            r = cpu_image_op(image, out, call[0], call[1], call[2])
            if r is not None:
                return r
    kind, dt = A.check_image(image, "image")
    A.check_dtype(image, "image", kind, A.IMAGE_DTYPES_CPU)  # no float16 tables on CUDA
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__"):
        raise TypeError(f"size: expected a pair of ints (h, w), got {type(size).__name__}")
    if len(size) != 2:
        raise ValueError(f"size: expected (h, w), got {tuple(size)!r}")
    h, w = A.as_int(size[0], "size"), A.as_int(size[1], "size")
    if h <= 0 or w <= 0:
        raise ValueError(f"size: expected positive (h, w), got {(h, w)}")
    mode = parse_interpolation(interpolation)
    if not isinstance(antialias, (bool, np.bool_)):
        raise TypeError(f"antialias: expected a bool, got {type(antialias).__name__}")
    antialias = bool(antialias)
    if antialias and mode not in ("bilinear", "bicubic", "area"):
        raise ValueError(f"antialias: only 'bilinear', 'bicubic' and 'area' are antialiased, got {mode!r}")
    oshape = _out_shape(image, h, w)
    o = 1 if image.ndim == 4 else 0
    sh, sw = int(image.shape[o]), int(image.shape[o + 1])
    if sh == 0 or sw == 0:
        raise ValueError(f"image: cannot resize an image of size {sh} x {sw}")
    if sh == h and sw == w:
        # every mode's taps at an unchanged size are the identity (one tap of weight 1): a
        # copy, as cv2.resize makes (so infinities and NaNs stay where they are)
        return _finish(image, image, kind, out)

    if mode in ("nearest", "nearest-exact"):
        exact = mode == "nearest-exact"
        iy, ix = _nearest_table(sh, h, exact), _nearest_table(sw, w, exact)
        call = (_core.resize_nearest, (iy, ix), oshape)
        if ck is not None and ck[0] is not A.UNCACHED and kind == "numpy":
            A.bounded_put(_CALLS, ck, call)
        r = cpu_image_op(image, out, *call)
        if r is not None:
            return r

        def cpu(src, dst):
            _core.resize_nearest(src, dst, iy, ix)

        def cuda(code, src, dst, stream):
            import cupy

            diy, dix = cupy.asarray(iy), cupy.asarray(ix)
            _core.cuda_resize_nearest(
                code,
                src.data.ptr,
                A.image_desc(src),
                dst.data.ptr,
                A.image_desc(dst),
                diy.data.ptr,
                dix.data.ptr,
                stream,
            )

        return _run(image, out, cpu, cuda, out_shape=oshape)

    tkind = _kind_of(dt)
    ytab, xtab = resize_tables(sh, sw, h, w, mode, antialias, tkind)
    if tkind == "u8" and antialias and mode == "bicubic" and (sh != h or sw != w):
        # Pillow and torch resize uint8 in two passes, rows first, each rounded and clamped
        # to uint8: the clamp of the intermediate matters where bicubic overshoots, so do the
        # same (each pass is one call with the other axis's identity table).
        mid = (sh, w)
        tmp = _separable(image, None, _out_shape(image, *mid), _identity_table(sh, tkind), xtab, tkind)
        return _separable(tmp, out, oshape, ytab, _identity_table(w, tkind), tkind)
    return _separable(image, out, oshape, ytab, xtab, tkind, ck)


def resize_tables(sh: int, sw: int, h: int, w: int, mode: str, antialias: bool, tkind: str):
    """The (y, x) coefficient tables of a separable resize from (sh, sw) to (h, w). An axis
    whose size does not change gets the identity: every mode's taps there are one weight of 1
    and zeros ((1, 0) bilinear, (0, 1, 0, 0) bicubic, ...), taken as one tap (cv2 sums the zero
    taps too, which differs only where a neighbor is infinite or NaN); uint8 at the bits the
    mode's table has (cv2's 11, or 14), so the vertical shift, and every integer, stay those of
    the mode's tables."""
    area_shrink = mode == "area" and sh >= h and sw >= w
    bits = _CV_BITS if _cv_fixed(mode, antialias, area_shrink) else _FINE_BITS
    ytab = _identity_table(sh, tkind, bits) if sh == h else _axis_table(sh, h, mode, antialias, area_shrink, tkind)
    xtab = _identity_table(sw, tkind, bits) if sw == w else _axis_table(sw, w, mode, antialias, area_shrink, tkind)
    return ytab, xtab


# (size key, interpolation, antialias, image dtype, image shape) -> the checked CPU call
# (kernel, its arguments after (src, dst), output shape) of a one-pass resize
_CALLS: dict = {}


@functools.lru_cache(maxsize=64)
def _identity_table(n: int, kind: str, u8_bits: int = _FINE_BITS):
    start = np.arange(n, dtype=np.int64)
    abs_sum: float  # an int for the fixed-point weights
    if kind == "u8":
        w = np.full((n, 1), 1 << u8_bits, np.int32)
        bits, abs_sum = u8_bits, 1 << u8_bits
    else:
        w = np.ones((n, 1), np.float32 if kind == "f32" else np.float64)
        bits, abs_sum = 0, 1.0
    start.setflags(write=False)
    w.setflags(write=False)
    return start, w, bits, abs_sum


@functools.lru_cache(maxsize=256)
def adjoint_table(src: int, dst: int, mode: str, antialias: bool, area_shrink: bool, kind: str):
    """The table of the transposed axis map: forward out[i] = sum_k w[i, k] src[start[i] + k]
    (nearest: one weight 1 at the index) as a (dst x src) matrix W; the adjoint's table is
    W.T's band, over the consecutive outputs that read each source pixel (zero weights pad the
    band; a pixel nothing reads gets zeros). Same weight values as the forward table."""
    if mode in ("nearest", "nearest-exact"):
        start = _nearest_table(src, dst, mode == "nearest-exact")
        w = np.ones((dst, 1), np.float64)
    else:
        start, w, _, _ = _axis_table(src, dst, mode, antialias, area_shrink, kind)
    k = w.shape[1]
    mat = np.zeros((dst, src), np.float64)
    mat[np.repeat(np.arange(dst), k), (start[:, None] + np.arange(k)).ravel()] = w.astype(np.float64).ravel()
    mt = mat.T  # (src, dst)
    nz = mt != 0
    used = nz.any(axis=1)
    first = np.where(used, np.argmax(nz, axis=1), 0)
    last = np.where(used, dst - 1 - np.argmax(nz[:, ::-1], axis=1), 0)
    kk = int(max(1, (last - first + 1)[used].max(initial=1)))
    st = np.clip(first, 0, dst - kk).astype(np.int64)
    wt = mt[np.arange(src)[:, None], st[:, None] + np.arange(kk)[None, :]]
    wt = np.ascontiguousarray(wt.astype(np.float32 if kind == "f32" else np.float64))
    return st, wt, 0, float(np.abs(wt).sum(axis=1).max(initial=0))


def resize_adjoint(grad, in_hw, interpolation, antialias=False):
    """The adjoint (backward) of :func:`resize` with respect to a float image: ``grad`` of the
    resized shape -> the input's shape ``in_hw``. A separable resize's adjoint is a separable
    resize with the transposed (banded) tables, so this is imkern's resize kernel again on
    either device (exact up to float rounding; tables cached per size)."""
    mode = parse_interpolation(interpolation)
    tkind = _kind_of(grad.dtype)
    if tkind not in ("f32", "f64"):
        raise TypeError(f"grad: expected a float32 or float64 array, got {grad.dtype}")
    o = 1 if grad.ndim == 4 else 0
    h, w = int(grad.shape[o]), int(grad.shape[o + 1])
    sh, sw = int(in_hw[0]), int(in_hw[1])
    area_shrink = mode == "area" and sh >= h and sw >= w
    aty = adjoint_table(sh, h, mode, bool(antialias), area_shrink, tkind)
    atx = adjoint_table(sw, w, mode, bool(antialias), area_shrink, tkind)
    return _separable(grad, None, _out_shape(grad, sh, sw), aty, atx, tkind)


def _separable(image, out, oshape, ytab, xtab, tkind, ck=None):
    """``ck``: resize's key of this call (its checked arguments), None when not cacheable."""
    ys, yw, ybits, ysum = ytab
    xs, xw, xbits, xsum = xtab
    shift = _vshift(ysum, xsum) if tkind == "u8" else 0
    ky, kx = yw.shape[1], xw.shape[1]
    call = (_core.resize, (ys, yw, xs, xw, ybits, xbits, shift), oshape)
    if ck is not None and ck[0] is not A.UNCACHED and type(image) is np.ndarray:
        A.bounded_put(_CALLS, ck, call)
    r = cpu_image_op(image, out, *call)
    if r is not None:
        return r

    def cpu(src, dst):
        _core.resize(src, dst, ys, yw, xs, xw, ybits, xbits, shift)

    def cuda(code, src, dst, stream):
        import cupy

        d = [cupy.asarray(a) for a in (ys, yw, xs, xw)]
        _core.cuda_resize(
            code,
            src.data.ptr,
            A.image_desc(src),
            dst.data.ptr,
            A.image_desc(dst),
            d[0].data.ptr,
            d[1].data.ptr,
            ky,
            d[2].data.ptr,
            d[3].data.ptr,
            kx,
            ybits,
            xbits,
            shift,
            stream,
        )

    return _run(image, out, cpu, cuda, out_shape=oshape)
