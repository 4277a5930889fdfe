"""NumPy reference for imkern.filters (float64 inside; the result is cast like the kernels:
integers rounded to nearest-even and saturated)."""
from __future__ import annotations

import numpy as np

from .._borders import parse_border
from .._kernels import gaussian_kernels

__all__ = ["correlate", "convolve", "sep_filter", "box", "gaussian"]

# our border names -> numpy.pad modes
_NP_PAD = {"reflect101": "reflect", "reflect": "symmetric", "replicate": "edge", "constant": "constant", "wrap": "wrap"}


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
    kh, kw = (size, size) if np.isscalar(size) else size
    k = np.ones((kh, kw))
    if normalize:
        k /= kh * kw
    return _correlate(image, k, kh // 2, kw // 2, border, cval, out)


def gaussian(image, sigma, *, ksize=None, truncate=4.0, border="reflect101", cval=0.0, out=None):
    """Separable Gaussian; kernels as cv2.getGaussianKernel (ksize given) or scipy (truncate)."""
    sig = tuple(sigma) if isinstance(sigma, (tuple, list)) else (sigma, sigma)
    if ksize is not None and np.isscalar(ksize):
        ksize = (ksize, ksize)
    ky, kx = gaussian_kernels(sig, ksize, truncate)
    return sep_filter(image, ky, kx, border=border, cval=cval, out=out)


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
