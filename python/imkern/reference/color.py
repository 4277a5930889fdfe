"""NumPy reference for imkern.color: the conversions in float64, integers rounded to nearest
and saturated at the end. Float images in [0, 1]; integer images in [0, dtype max]."""

from __future__ import annotations

import numpy as np

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


def _cast(v, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "u":
        info = np.iinfo(dt)
        return np.clip(np.rint(v), info.min, info.max).astype(dt)
    return v.astype(dt)


def _gray(x, order):
    a = np.asarray(x)
    f = a.astype(np.float64)
    r, g, b = f[..., order[0]], f[..., 1], f[..., order[1]]
    y = _cast(0.299 * r + 0.587 * g + 0.114 * b, a.dtype)
    return y if a.ndim == 3 else y[..., None]


def rgb_to_gray(image, *, out=None):
    return _gray(image, (0, 2))


def bgr_to_gray(image, *, out=None):
    return _gray(image, (2, 0))


def gray_to_rgb(image, *, out=None):
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    return np.repeat(a, 3, axis=-1)


def rgb_to_bgr(image, *, out=None):
    a = np.array(image)
    a[..., [0, 2]] = a[..., [2, 0]]
    return a


bgr_to_rgb = rgb_to_bgr


def rgba_to_rgb(image, *, background=None, out=None):
    a = np.asarray(image)
    if background is None:
        return a[..., :3].copy()
    m = float(np.iinfo(a.dtype).max) if a.dtype.kind == "u" else 1.0
    bg = np.broadcast_to(np.asarray(background, np.float64).ravel(), (3,))
    if a.dtype.kind == "u":
        bg = np.rint(bg)  # an integer image's background is an integer color
    f = a.astype(np.float64)
    al = f[..., 3:4] / m
    return _cast(f[..., :3] * al + bg * (1.0 - al), a.dtype)


def _hsv_float(f):
    """skimage.color.rgb2hsv in float64 (ties of the maximum: blue, then green, then red)."""
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    v = f.max(-1)
    delta = v - f.min(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(delta == 0, 0.0, delta / np.where(v == 0, 1, v))
        h = np.where(r == v, (g - b) / delta, 0.0)
        h = np.where(g == v, 2.0 + (b - r) / delta, h)
        h = np.where(b == v, 4.0 + (r - g) / delta, h)
    h = np.where(delta == 0, 0.0, (h / 6.0) % 1.0)
    return np.stack([h, s, v], -1)


def _rgb_float(f):
    """skimage.color.hsv2rgb in float64."""
    h, s, v = f[..., 0], f[..., 1], f[..., 2]
    hi = np.floor(h * 6)
    fr = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - fr * s)
    t = v * (1 - (1 - fr) * s)
    sector = np.mod(hi, 6).astype(np.int64)
    choices = [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    out = np.zeros(f.shape)
    for k, c in enumerate(choices):
        out = np.where((sector == k)[..., None], c, out)
    return out


def rgb_to_hsv(image, *, out=None):
    """Floats as skimage; uint8 as OpenCV: H = hue in degrees / 2 in [0, 180), S, V in [0, 255]."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        hsv = _hsv_float(a.astype(np.float64) / 255.0)
        h = np.rint(hsv[..., 0] * 180.0) % 180
        return np.stack([h, np.rint(hsv[..., 1] * 255.0), np.rint(hsv[..., 2] * 255.0)], -1).astype(np.uint8)
    return _hsv_float(a.astype(np.float64)).astype(a.dtype)


def hsv_to_rgb(image, *, out=None):
    a = np.asarray(image)
    if a.dtype == np.uint8:
        f = a.astype(np.float64)
        hsv = np.stack([(f[..., 0] % 180) / 180.0, f[..., 1] / 255.0, f[..., 2] / 255.0], -1)
        return _cast(_rgb_float(hsv) * 255.0, np.uint8)
    return _rgb_float(a.astype(np.float64)).astype(a.dtype)


_YCC = np.array([[0.299, 0.587, 0.114], [-0.299 / 1.772, -0.587 / 1.772, 0.5], [0.5, -0.587 / 1.402, -0.114 / 1.402]])


def _offset(dt):
    return {np.dtype(np.uint8): 128.0, np.dtype(np.uint16): 32768.0}.get(np.dtype(dt), 0.5)


def rgb_to_ycbcr(image, *, out=None):
    a = np.asarray(image)
    y = a.astype(np.float64) @ _YCC.T + np.array([0.0, 1.0, 1.0]) * _offset(a.dtype)
    return _cast(y, a.dtype)


def ycbcr_to_rgb(image, *, out=None):
    a = np.asarray(image)
    f = a.astype(np.float64) - np.array([0.0, 1.0, 1.0]) * _offset(a.dtype)
    return _cast(f @ np.linalg.inv(_YCC).T, a.dtype)


_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _lab_float(rgb):
    """skimage.color.rgb2lab in float64."""
    c = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    t = (c @ _XYZ_FROM_RGB.T) / _WHITE
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def _rgb_from_lab_float(lab):
    """skimage.color.lab2rgb in float64."""
    y = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([lab[..., 1] / 500.0 + y, y, np.maximum(y - lab[..., 2] / 200.0, 0)], -1)
    t = np.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787) * _WHITE
    c = t @ np.linalg.inv(_XYZ_FROM_RGB).T
    with np.errstate(invalid="ignore"):
        v = np.where(c > 0.0031308, 1.055 * np.abs(c) ** (1 / 2.4) - 0.055, c * 12.92)
    return np.clip(v, 0, 1)


def rgb_to_lab(image, *, out=None):
    """Floats as skimage; uint8 in OpenCV's encoding (L * 255 / 100, a + 128, b + 128)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        lab = _lab_float(a.astype(np.float64) / 255.0)
        return _cast(np.stack([lab[..., 0] * 255.0 / 100.0, lab[..., 1] + 128, lab[..., 2] + 128], -1), np.uint8)
    return _lab_float(a.astype(np.float64)).astype(a.dtype)


def lab_to_rgb(image, *, out=None):
    a = np.asarray(image)
    if a.dtype == np.uint8:
        f = a.astype(np.float64)
        lab = np.stack([f[..., 0] * 100.0 / 255.0, f[..., 1] - 128, f[..., 2] - 128], -1)
        return _cast(_rgb_from_lab_float(lab) * 255.0, np.uint8)
    return _rgb_from_lab_float(a.astype(np.float64)).astype(a.dtype)
