"""NumPy reference for imkern.filters (float64 inside; the result is cast like the kernels:
integers rounded to nearest-even and saturated)."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .._borders import parse_border
from .._kernels import gaussian_kernel_cv, gaussian_kernels, gaussian_kernels_q8, gaussian_kernels_q16

__all__ = ["correlate", "convolve", "sep_filter", "box", "gaussian"]

# our border names -> numpy.pad modes
_NP_PAD: Dict[str, Any] = {
    "reflect101": "reflect",
    "reflect": "symmetric",
    "replicate": "edge",
    "constant": "constant",
    "wrap": "wrap",
}


def _as_nhwc(image):
    a = np.asarray(image)
    if a.ndim == 2:
        return a[None, :, :, None]
    if a.ndim == 3:
        return a[None]
    if a.ndim == 4:
        return a
    raise ValueError(f"image: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {a.shape}")


def _pad(x, top, bottom, left, right, border, cval):
    """Pad the H and W axes of an (N, H, W, C) float64 array by the border rule."""
    mode = _NP_PAD[parse_border(border)]
    width = ((0, 0), (top, bottom), (left, right), (0, 0))
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=cval)
    return np.pad(x, width, mode=mode)


def _cast(acc, like, out):
    dt = np.asarray(like).dtype
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        acc = np.clip(np.rint(acc), info.min, info.max)
    res = acc.astype(dt).reshape(np.shape(like))
    if out is not None:
        out[...] = res
        return out
    return res


def _correlate(image, k, ay, ax, border, cval, out):
    x = _as_nhwc(image).astype(np.float64)
    k = np.asarray(k, dtype=np.float64)
    kh, kw = k.shape
    _, h, w, _ = x.shape
    p = _pad(x, ay, kh - 1 - ay, ax, kw - 1 - ax, border, cval)
    acc = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            acc += k[i, j] * p[:, i : i + h, j : j + w, :]
    return _cast(acc, image, out)


def correlate(image, kernel, *, border="reflect101", cval=0.0, out=None):
    """out[y, x] = sum_{i,j} kernel[i, j] * image[y + i - kh//2, x + j - kw//2] (borders by rule)."""
    k = np.asarray(kernel, dtype=np.float64)
    return _correlate(image, k, k.shape[0] // 2, k.shape[1] // 2, border, cval, out)


def convolve(image, kernel, *, border="reflect101", cval=0.0, out=None):
    """correlate with the kernel flipped; the unflipped kernel's center lands on the pixel."""
    k = np.asarray(kernel, dtype=np.float64)
    kh, kw = k.shape
    return _correlate(image, k[::-1, ::-1], kh - 1 - kh // 2, kw - 1 - kw // 2, border, cval, out)


def sep_filter(image, kernel_y, kernel_x, *, border="reflect101", cval=0.0, out=None):
    """correlate with np.outer(kernel_y, kernel_x), computed as two 1-D passes."""
    ky = np.asarray(kernel_y, dtype=np.float64).ravel()
    kx = np.asarray(kernel_x, dtype=np.float64).ravel()
    x = _as_nhwc(image).astype(np.float64)
    _, h, w, _ = x.shape
    ay, ax = len(ky) // 2, len(kx) // 2
    p = _pad(x, ay, len(ky) - 1 - ay, ax, len(kx) - 1 - ax, border, cval)
    v = np.zeros((p.shape[0], h, p.shape[2], p.shape[3]))
    for i, c in enumerate(ky):
        v += c * p[:, i : i + h]
    acc = np.zeros_like(x)
    for j, c in enumerate(kx):
        acc += c * v[:, :, j : j + w]
    return _cast(acc, image, out)


def box(image, size, *, normalize=True, border="reflect101", cval=0.0, out=None):
    """Window sum (or mean) over a size window anchored at size // 2 (cv2.blur / boxFilter)."""
    kh, kw = (size, size) if np.ndim(size) == 0 else size
    k = np.ones((kh, kw))
    if normalize:
        k /= kh * kw
    return _correlate(image, k, kh // 2, kw // 2, border, cval, out)


def gaussian(image, sigma, *, ksize=None, truncate=4.0, border="reflect101", cval=0.0, out=None):
    """Separable Gaussian; kernels as cv2.getGaussianKernel (ksize given) or scipy (truncate).

    uint8 / uint16 with ``ksize`` (and, for ``border="constant"``, a cval in the dtype's range
    that is an integer) is cv2.GaussianBlur's fixed-point algorithm (:func:`gaussian_fixed_u8`,
    :func:`gaussian_fixed_u16`)."""
    sig = tuple(sigma) if isinstance(sigma, (tuple, list)) else (sigma, sigma)
    if ksize is not None and np.isscalar(ksize):
        ksize = (ksize, ksize)
    dt = np.asarray(image).dtype
    if ksize is not None and gaussian_is_fixed(dt, border, cval):
        if dt == np.uint8:
            ky, kx = gaussian_kernels_q8(sig, tuple(ksize))
            return gaussian_fixed_u8(image, ky, kx, border=border, cval=cval, out=out)
        ky, kx = gaussian_kernels_q16(sig, tuple(ksize))
        return gaussian_fixed_u16(image, ky, kx, border=border, cval=cval, out=out)
    ky, kx = gaussian_kernels(sig, ksize, truncate)
    return sep_filter(image, ky, kx, border=border, cval=cval, out=out)


def gaussian_is_fixed(dtype, border, cval) -> bool:
    """Whether gaussian (with ksize) takes the fixed-point path for this dtype and border: uint8
    and uint16, with a constant border only for an integer cval the dtype holds."""
    dt = np.dtype(dtype)
    if dt not in (np.uint8, np.uint16):
        return False
    return parse_border(border) != "constant" or (0 <= cval <= np.iinfo(dt).max and float(cval) == int(cval))


def gaussian_is_fixed_u8(dtype, border, cval) -> bool:
    """Whether gaussian (with ksize) takes the uint8 fixed-point path for this dtype and border."""
    return np.dtype(dtype) == np.uint8 and gaussian_is_fixed(dtype, border, cval)


def _gaussian_fixed(image, kernel_y, kernel_x, border, cval, out, bits):
    # taps in `bits` fractional bits; h exact below 2**(2 * bits) (its integer type), the
    # vertical sums in 4 * bits - 2 * bits = 2 * bits fractional bits, rounded half up
    img = np.asarray(image)
    ky = np.asarray(kernel_y, dtype=np.int64).ravel()
    kx = np.asarray(kernel_x, dtype=np.int64).ravel()
    x = _as_nhwc(img).astype(np.int64)
    _, h, w, _ = x.shape
    ay, ax = len(ky) // 2, len(kx) // 2
    p = _pad(x, ay, len(ky) - 1 - ay, ax, len(kx) - 1 - ax, border, int(cval))
    hs = np.zeros((p.shape[0], p.shape[1], w, p.shape[3]), dtype=np.int64)
    for j, c in enumerate(kx):
        hs += c * p[:, :, j : j + w]
    assert hs.max(initial=0) < 1 << (2 * bits)
    v = np.zeros(x.shape, dtype=np.int64)
    for i, c in enumerate(ky):
        v += c * hs[:, i : i + h]
    shift = 2 * bits
    res = ((v + (1 << (shift - 1))) >> shift).astype(img.dtype).reshape(img.shape)
    if out is not None:
        out[...] = res
        return out
    return res


def gaussian_fixed_u8(image, kernel_y, kernel_x, *, border="reflect101", cval=0, out=None):
    """cv2.GaussianBlur's uint8 algorithm in integers: taps in 8 fractional bits (summing to 256),
    ``h = sum_j kx[j] * x[.., x + j - kw//2]`` (exact in 16 bits), ``v = sum_i ky[i] * h[y + i - kh//2]``
    (exact in 32 bits, 16 fractional bits), ``out = (v + 2**15) >> 16``; borders by the rule."""
    return _gaussian_fixed(image, kernel_y, kernel_x, border, cval, out, 8)


def gaussian_fixed_u16(image, kernel_y, kernel_x, *, border="reflect101", cval=0, out=None):
    """cv2.GaussianBlur's uint16 algorithm in integers: taps in 16 fractional bits (summing to
    65536), ``h = sum_j kx[j] * x[.., x + j - kw//2]`` (exact in 32 bits),
    ``v = sum_i ky[i] * h[y + i - kh//2]`` (exact in 64 bits, 32 fractional bits),
    ``out = (v + 2**31) >> 32``; borders by the rule."""
    return _gaussian_fixed(image, kernel_y, kernel_x, border, cval, out, 16)


# ---- rank filters ---------------------------------------------------------------------------------
__all__ += ["median"]


def _cval_as(dtype, cval):
    """cval converted to the image's dtype as the kernels do (rounded, saturated for integers)."""
    dt = np.dtype(dtype)
    if dt.kind == "u":
        info = np.iinfo(dt)
        return dt.type(np.clip(np.rint(cval), info.min, info.max))
    return dt.type(cval)


def _windows(image, kh, kw, ay, ax, border, cval):
    """(N, H, W, C, kh, kw) view of every window of the padded image (its own dtype)."""
    x = _as_nhwc(image)
    mode = _NP_PAD[parse_border(border)]
    width = ((0, 0), (ay, kh - 1 - ay), (ax, kw - 1 - ax), (0, 0))
    if mode == "constant":
        p = np.pad(x, width, mode="constant", constant_values=_cval_as(x.dtype, cval))
    else:
        p = np.pad(x, width, mode=mode)
    return np.lib.stride_tricks.sliding_window_view(p, (kh, kw), axis=(1, 2))


def median(image, size, *, border="replicate", cval=0.0, out=None):
    """The middle element of each sorted size x size window (np.sort order: NaN last)."""
    k = int(size)
    w = _windows(image, k, k, k // 2, k // 2, border, cval)
    n = w.shape[:4]
    flat = w.reshape(*n, k * k)
    res = np.sort(flat, axis=-1)[..., (k * k) // 2].reshape(np.shape(image))
    if out is not None:
        out[...] = res
        return out
    return res


# ---- morphology -----------------------------------------------------------------------------------
__all__ += ["erode", "dilate"]


def _morph_ref(image, footprint, dilate, border, cval):
    fp = np.asarray(footprint) != 0
    fh, fw = fp.shape
    x = np.asarray(image)
    if border is None:  # outside pixels ignored: the op's identity
        dt = x.dtype
        if dt.kind == "u":
            cval = np.iinfo(dt).min if dilate else np.iinfo(dt).max
        else:
            cval = -np.finfo(dt).max if dilate else np.finfo(dt).max  # OpenCV's saturated default
        border = "constant"
    w = _windows(x, fh, fw, fh // 2, fw // 2, border, cval)
    vals = w[..., fp]  # (N, H, W, C, count); NaN propagates through np.max / np.min
    res = vals.max(axis=-1) if dilate else vals.min(axis=-1)
    return res.reshape(x.shape)


def erode(image, footprint, *, border=None, cval=0.0):
    """Minimum over the footprint's nonzero entries, anchored at (h // 2, w // 2), not mirrored;
    border None: outside pixels ignored."""
    return _morph_ref(image, footprint, False, border, cval)


def dilate(image, footprint, *, border=None, cval=0.0):
    """Maximum over the footprint's nonzero entries (not mirrored); border None: outside ignored."""
    return _morph_ref(image, footprint, True, border, cval)


# ---- bilateral ------------------------------------------------------------------------------------
__all__ += ["bilateral"]


def bilateral(image, d, sigma_color, sigma_space, *, border="reflect101"):
    """cv2.bilateralFilter's definition in float64: a disc of radius max(d // 2, 1), Gaussian
    space weights, Gaussian color weights of the L1 color distance (exact exp, as imkern's
    kernels; OpenCV's float32 path interpolates a 4096-bins-per-channel table, within 1e-4 of
    this)."""
    x = _as_nhwc(image).astype(np.float64)
    r = max(int(d) // 2, 1)
    p = _pad(x, r, r, r, r, border, 0.0)
    _, h, w, _ = x.shape
    num = np.zeros_like(x)
    den = np.zeros(x.shape[:3] + (1,))
    for i in range(-r, r + 1):
        for j in range(-r, r + 1):
            if i * i + j * j > r * r:
                continue
            v = p[:, r + i : r + i + h, r + j : r + j + w, :]
            dist = np.abs(v - x).sum(axis=-1, keepdims=True)
            wgt = np.exp(-(i * i + j * j) / (2.0 * sigma_space**2)) * np.exp(-(dist**2) / (2.0 * sigma_color**2))
            num += wgt * v
            den += wgt
    return _cast(num / den, image, None)


# ---- derivatives, thresholds, edges ---------------------------------------------------------
__all__ += [
    "sobel",
    "scharr",
    "prewitt",
    "laplacian",
    "gradient",
    "gradient_magnitude",
    "unsharp_mask",
    "threshold",
    "threshold_otsu",
    "threshold_triangle",
    "canny",
]


def _binomial_deriv(order, ksize):
    """cv2.getDerivKernels' 1-D kernel: binomial smoothing of size ksize - order, differenced."""
    k = np.ones(1)
    for _ in range(ksize - order - 1):
        k = np.convolve(k, [1.0, 1.0])
    for _ in range(order):
        k = np.convolve(k, [-1.0, 1.0])
    return k


def _float_out(acc, image, out):
    dt = np.float64 if np.asarray(image).dtype == np.float64 else np.float32
    res = acc.astype(dt).reshape(np.shape(image))
    if out is not None:
        out[...] = res
        return out
    return res


def _sep64(image, ky, kx, border, cval):
    """float64 separable correlation of an image, (N, H, W, C) result."""
    ky, kx = np.asarray(ky, np.float64), np.asarray(kx, np.float64)
    x = _as_nhwc(image).astype(np.float64)
    _, h, w, _ = x.shape
    ay, ax = len(ky) // 2, len(kx) // 2
    p = _pad(x, ay, len(ky) - 1 - ay, ax, len(kx) - 1 - ax, border, cval)
    v = sum(c * p[:, i : i + h] for i, c in enumerate(ky))
    return sum(c * v[:, :, j : j + w] for j, c in enumerate(kx))


def _sobel_k(dx, dy, ksize):
    if ksize == -1:
        sm, dv = [3.0, 10.0, 3.0], [-1.0, 0.0, 1.0]
        return (dv if dx else sm), (dv if dy else sm)
    kxs = 3 if (ksize == 1 and dx > 0) else ksize
    kys = 3 if (ksize == 1 and dy > 0) else ksize
    return _binomial_deriv(dx, kxs), _binomial_deriv(dy, kys)


def sobel(image, dx=1, dy=0, *, ksize=3, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    """scale * (ky (x) kx) * image + delta with cv2.getDerivKernels(dx, dy, ksize); float32 out
    (float64 for float64 images)."""
    kx, ky = _sobel_k(dx, dy, ksize)
    return _float_out(scale * _sep64(image, ky, kx, border, cval) + delta, image, out)


def scharr(image, dx=1, dy=0, *, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    return sobel(image, dx, dy, ksize=-1, scale=scale, delta=delta, border=border, cval=cval, out=out)


def prewitt(image, dx=1, dy=0, *, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    dv, sm = [-1.0, 0.0, 1.0], [1.0, 1.0, 1.0]
    kx, ky = (dv, sm) if dx else (sm, dv)
    return _float_out(scale * _sep64(image, ky, kx, border, cval) + delta, image, out)


def laplacian(image, *, ksize=1, scale=1.0, delta=0.0, border="reflect101", cval=0.0, out=None):
    """d2/dx2 + d2/dy2 as cv2.Laplacian (ksize 1: the 4-neighbour kernel; 3: [[2,0,2],[0,-8,0],[2,0,2]])."""
    if ksize == 1:
        k = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    elif ksize == 3:
        k = np.array([[2.0, 0.0, 2.0], [0.0, -8.0, 0.0], [2.0, 0.0, 2.0]])
    else:
        d2, sm = _binomial_deriv(2, ksize), _binomial_deriv(0, ksize)
        acc = _sep64(image, sm, d2, border, cval) + _sep64(image, d2, sm, border, cval)
        return _float_out(scale * acc + delta, image, out)
    x = _as_nhwc(image).astype(np.float64)
    _, h, w, _ = x.shape
    p = _pad(x, 1, 1, 1, 1, border, cval)
    acc = sum(k[i, j] * p[:, i : i + h, j : j + w] for i in range(3) for j in range(3))
    return _float_out(scale * acc + delta, image, out)


def gradient(image, *, ksize=3, border="reflect101", cval=0.0, out=None):
    o0, o1 = (None, None) if out is None else out
    return (
        sobel(image, 1, 0, ksize=ksize, border=border, cval=cval, out=o0),
        sobel(image, 0, 1, ksize=ksize, border=border, cval=cval, out=o1),
    )


def gradient_magnitude(image, *, ksize=3, l2=True, border="reflect101", cval=0.0, out=None):
    kx, ky = _sobel_k(1, 0, ksize)
    gx = _sep64(image, ky, kx, border, cval)
    kx, ky = _sobel_k(0, 1, ksize)
    gy = _sep64(image, ky, kx, border, cval)
    mag = np.sqrt(gx * gx + gy * gy) if l2 else np.abs(gx) + np.abs(gy)
    return _float_out(mag, image, out)


def unsharp_mask(
    image, sigma, amount=1.0, *, threshold=0.0, ksize=None, truncate=4.0, border="reflect101", cval=0.0, out=None
):
    """``image + amount * (image - blur)`` where ``|image - blur| > threshold`` (blur: gaussian, unrounded)."""
    sig = tuple(sigma) if isinstance(sigma, (tuple, list)) else (sigma, sigma)
    if ksize is not None and np.isscalar(ksize):
        ksize = (ksize, ksize)
    ky, kx = gaussian_kernels(sig, ksize, truncate)
    x = _as_nhwc(image).astype(np.float64)
    d = x - _sep64(image, ky, kx, border, cval)
    res = np.where(np.abs(d) > threshold, x + amount * d, x)
    return _cast(res, image, out)


_THRESH = ("binary", "binary_inv", "trunc", "tozero", "tozero_inv")


def threshold(image, thresh, maxval, kind="binary", *, out=None):
    """cv2.threshold: integer images compare with floor(thresh), maxval rounded and saturated;
    float32 images compare with float32(thresh)."""
    x = np.asarray(image)
    dt = x.dtype
    if dt.kind == "u":
        top = np.iinfo(dt).max
        t = float(np.floor(thresh))
        mv = float(np.clip(np.rint(maxval), 0, top))
        tv = float(np.clip(t, 0, top))
    else:
        t = float(dt.type(thresh))
        mv = float(dt.type(maxval))
        tv = t
    xf = x.astype(np.float64)
    gt, le = xf > t, xf <= t  # both False for NaN
    res = {
        "binary": np.where(gt, mv, 0.0),
        "binary_inv": np.where(le, mv, 0.0),
        "trunc": np.where(gt, tv, xf),
        "tozero": np.where(le, 0.0, xf),
        "tozero_inv": np.where(gt, 0.0, xf),
    }[kind]
    res = res.astype(dt)
    if out is not None:
        out[...] = res
        return out
    return res


def threshold_otsu(image):
    """cv2's Otsu level for uint8/uint16 (a float64 loop over every value's count), and
    skimage's (256 bins over [min, max]) for floats."""
    x = np.asarray(image)
    if x.dtype.kind == "u":
        n = 256 if x.dtype == np.uint8 else 65536
        h = np.bincount(x.ravel(), minlength=n)
        scale = 1.0 / x.size
        mu = 0.0
        for i in range(n):
            mu += i * float(h[i])
        mu *= scale
        mu1 = q1 = max_sigma = max_val = 0.0
        eps = float(np.finfo(np.float32).eps)
        for i in range(n):
            p = float(h[i]) * scale
            mu1 *= q1
            q1 += p
            q2 = 1.0 - q1
            if min(q1, q2) < eps or max(q1, q2) > 1.0 - eps:
                continue
            mu1 = (mu1 + i * p) / q1
            mu2 = (mu - q1 * mu1) / q2
            sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2)
            if sigma > max_sigma:
                max_sigma, max_val = sigma, float(i)
        return max_val
    if np.all(x == x.ravel()[0]):
        return float(x.ravel()[0])
    counts, edges = np.histogram(x.ravel(), bins=256, range=(x.min(), x.max()))
    counts = counts.astype(np.float32)  # as skimage: float32 arithmetic for float32 images
    centers = (edges[:-1] + edges[1:]) / 2.0
    w1, w2 = np.cumsum(counts), np.cumsum(counts[::-1])[::-1]
    m1 = np.cumsum(counts * centers) / w1
    m2 = (np.cumsum((counts * centers)[::-1]) / w2[::-1])[::-1]
    return float(centers[np.argmax(w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2)])


def threshold_triangle(image):
    """cv2's triangle level of a uint8 image."""
    h = list(np.bincount(np.asarray(image).ravel(), minlength=256))
    n = 256
    left = next((i for i in range(n) if h[i] > 0), 0)
    left = left - 1 if left > 0 else left
    right = next((i for i in range(n - 1, 0, -1) if h[i] > 0), 0)
    right = right + 1 if right < n - 1 else right
    mx = max(h)
    max_ind = h.index(mx)
    flipped = max_ind - left < right - max_ind
    if flipped:
        h = h[::-1]
        left, max_ind = n - 1 - right, n - 1 - max_ind
    thresh, dist = float(left), 0.0
    for i in range(left + 1, max_ind + 1):
        d = float(mx) * i + float(left - max_ind) * float(h[i])
        if d > dist:
            dist, thresh = d, float(i)
    thresh -= 1
    return float(n - 1 - thresh) if flipped else thresh


def canny(image, low, high, *, ksize=3, l2gradient=False, out=None):
    """cv2.Canny's algorithm in plain NumPy: integer Sobel (replicated borders; ksize 7 / 16
    rounded half to even), L1 / L2 magnitude, strongest channel, the fixed-point sector test,
    hysteresis by 8-connected flood fill from the strong pixels."""
    from collections import deque

    x = _as_nhwc(image).astype(np.float64)
    n, h, w, c = x.shape
    kx, ky = _sobel_k(1, 0, ksize)
    gx = _sep64(image, ky, kx, "replicate", 0.0)
    kx, ky = _sobel_k(0, 1, ksize)
    gy = _sep64(image, ky, kx, "replicate", 0.0)
    if ksize == 7:
        gx, gy = np.rint(gx / 16), np.rint(gy / 16)
        low, high = low / 16, high / 16
    gx, gy = gx.astype(np.int64), gy.astype(np.int64)
    if l2gradient:
        low, high = min(32767.0, low), min(32767.0, high)
        low, high = (low * low if low > 0 else low), (high * high if high > 0 else high)
        mag = gx * gx + gy * gy
    else:
        mag = np.abs(gx) + np.abs(gy)
    lo, hi = int(np.floor(low)), int(np.floor(high))
    best = np.argmax(mag, axis=3)[..., None]  # first channel of the largest magnitude
    mag = np.take_along_axis(mag, best, 3)[..., 0]
    gx = np.take_along_axis(gx, best, 3)[..., 0]
    gy = np.take_along_axis(gy, best, 3)[..., 0]
    m = np.pad(mag, ((0, 0), (1, 1), (1, 1)))
    edges = np.zeros((n, h, w), np.uint8)
    for b in range(n):
        state = np.zeros((h, w), np.uint8)
        for y in range(h):
            for xx in range(w):
                v = m[b, y + 1, xx + 1]
                if v <= lo:
                    continue
                xs, ys = int(gx[b, y, xx]), int(gy[b, y, xx])
                ax, ay = abs(xs), abs(ys) << 15
                t22 = ax * 13573
                if ay < t22:
                    keep = v > m[b, y + 1, xx] and v >= m[b, y + 1, xx + 2]
                elif ay > t22 + (ax << 16):
                    keep = v > m[b, y, xx + 1] and v >= m[b, y + 2, xx + 1]
                else:
                    s = -1 if (xs ^ ys) < 0 else 1
                    keep = v > m[b, y, xx + 1 - s] and v > m[b, y + 2, xx + 1 + s]
                if keep:
                    state[y, xx] = 2 if v > hi else 1
        q = deque(zip(*np.nonzero(state == 2)))
        while q:
            y, xx = q.pop()
            for yy in range(max(0, y - 1), min(h, y + 2)):
                for x2 in range(max(0, xx - 1), min(w, xx + 2)):
                    if state[yy, x2] == 1:
                        state[yy, x2] = 2
                        q.append((yy, x2))
        edges[b] = np.where(state == 2, 255, 0)
    res = edges.reshape(np.shape(image)[:2] if np.ndim(image) < 4 else np.shape(image)[:3])
    if out is not None:
        out[...] = res
        return out
    return res


__all__ += ["adaptive_threshold"]


def adaptive_threshold(image, maxval, method="mean", block_size=3, c=0.0, *, kind="binary", out=None):
    """cv2.adaptiveThreshold: the local mean (box or cv2's Gaussian, replicated borders) rounded
    to uint8, then maxval where image - mean > -ceil(c) (binary_inv: <= -floor(c))."""
    if method == "mean":
        mean = box(image, block_size, border="replicate")
    else:
        k = gaussian_kernel_cv(block_size, 0.0)  # cv2 blurs a float32 copy (not the uint8 fixed point)
        mean = sep_filter(image, k, k, border="replicate")
    diff = np.asarray(image).astype(np.int64) - mean.astype(np.int64)
    mv = int(min(255, max(0, np.rint(maxval))))
    if kind == "binary":
        res = np.where(diff > -int(np.ceil(c)), mv, 0)
    else:
        res = np.where(diff <= -int(np.floor(c)), mv, 0)
    res = res.astype(np.uint8)
    if out is not None:
        out[...] = res
        return out
    return res
