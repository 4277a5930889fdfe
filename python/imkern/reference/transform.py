"""NumPy reference for imkern.transform (plain NumPy; float64 inside where there is arithmetic)."""
from __future__ import annotations

import numpy as np

from .._borders import parse_border

__all__ = ["crop", "center_crop", "pad", "flip", "rotate90", "to_tensor", "from_tensor"]

_NP_PAD = {"reflect101": "reflect", "reflect": "symmetric", "replicate": "edge", "constant": "constant", "wrap": "wrap"}


def _hw(a):
    return 1 if a.ndim == 4 else 0


def crop(image, top, left, height, width, *, out=None):
    a = np.asarray(image)
    o = _hw(a)
    sl = (slice(None),) * o + (slice(top, top + height), slice(left, left + width))
    return a[sl].copy()


def center_crop(image, size, *, out=None):
    a = np.asarray(image)
    o = _hw(a)
    h, w = (size, size) if np.isscalar(size) else size
    H, W = a.shape[o], a.shape[o + 1]
    return crop(a, int(round((H - h) / 2.0)), int(round((W - w) / 2.0)), h, w)


def pad(image, pad, *, border="constant", cval=0, out=None):
    """numpy.pad with the mode matching ``border`` (pad widths as imkern.transform.pad)."""
    a = np.asarray(image)
    o = _hw(a)
    if isinstance(pad, (tuple, list)) and len(pad) == 2 and isinstance(pad[0], (tuple, list)):
        t, b, l, r = pad[0][0], pad[0][1], pad[1][0], pad[1][1]
    elif isinstance(pad, (tuple, list)) and len(pad) == 2:
        t, b, l, r = pad[0], pad[0], pad[1], pad[1]
    elif isinstance(pad, (tuple, list)):
        t, b, l, r = pad
    else:
        t = b = l = r = pad
    widths = [(0, 0)] * a.ndim
    widths[o], widths[o + 1] = (t, b), (l, r)
    mode = _NP_PAD[parse_border(border)]
    if mode == "constant":
        cv = float(cval)
        if a.dtype.kind == "u":
            info = np.iinfo(a.dtype)
            cv = np.clip(np.rint(cv), info.min, info.max)
        return np.pad(a, widths, mode="constant", constant_values=np.asarray(cv).astype(a.dtype))
    return np.pad(a, widths, mode=mode)


def flip(image, axis=1, *, out=None):
    a = np.asarray(image)
    o = _hw(a)
    axes = (0, 1) if axis is None else (tuple(axis) if isinstance(axis, (tuple, list)) else (axis,))
    return np.flip(a, [o + ax for ax in axes]).copy()


def rotate90(image, k=1, *, out=None):
    a = np.asarray(image)
    o = _hw(a)
    return np.rot90(a, k, axes=(o, o + 1)).copy()


def to_tensor(images, *, mean=None, std=None, crop=None, flip=False, dtype="float32", out=None):
    """torchvision's ToTensor + Normalize (+ crop and mirror) in float64, cast to ``dtype``."""
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[:, :, None]
    batch = a.ndim == 4
    x = a if batch else a[None]
    N, H, W, C = x.shape
    if crop is not None:
        if len(crop) == 2:
            h, w = crop
            top, left = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
        else:
            top, left, h, w = crop
        x = x[:, top:top + h, left:left + w]
    if flip:
        x = x[:, :, ::-1]
    f = x.astype(np.float64)
    if a.dtype.kind in "ui":
        f = f / float(np.iinfo(a.dtype).max)
    m = np.broadcast_to(np.asarray(0.0 if mean is None else mean, np.float64).ravel(), (C,))
    s = np.broadcast_to(np.asarray(1.0 if std is None else std, np.float64).ravel(), (C,))
    t = ((f - m) / s).transpose(0, 3, 1, 2).astype(dtype)
    return t if batch else t[0]


def from_tensor(tensor, *, mean=None, std=None):
    t = np.asarray(tensor, np.float64)
    c = t.shape[-3]
    m = np.broadcast_to(np.asarray(0.0 if mean is None else mean, np.float64).ravel(), (c,)).reshape(c, 1, 1)
    s = np.broadcast_to(np.asarray(1.0 if std is None else std, np.float64).ravel(), (c,)).reshape(c, 1, 1)
    x = np.rint(np.clip((t * s + m) * 255.0, 0, 255)).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(x, -3, -1))
