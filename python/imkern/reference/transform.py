"""NumPy reference for imkern.transform (plain NumPy, float64 inside where there is arithmetic;
results cast like the kernels: integers rounded to nearest and saturated)."""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

from .._borders import parse_border

__all__ = ["resize", "warp_affine", "warp_perspective", "rotate"]


# ============================================================================================
# resize, warp_affine, warp_perspective, rotate (the geometry of branch prep-b)
# ============================================================================================
def _as_nhwc(image):
    a = np.asarray(image)
    if a.ndim == 2:
        return a[None, :, :, None]
    if a.ndim == 3:
        return a[None]
    if a.ndim == 4:
        return a
    raise ValueError(f"image: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {a.shape}")


def _cast_shape(acc, like, shape, out=None):
    dt = np.asarray(like).dtype
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        acc = np.clip(np.rint(acc), info.min, info.max)
    res = acc.astype(dt).reshape(shape)
    if out is not None:
        out[...] = res
        return out
    return res


def _out_shape(image, h, w):
    a = np.asarray(image)
    if a.ndim == 2:
        return (h, w)
    if a.ndim == 3:
        return (h, w, a.shape[2])
    return (a.shape[0], h, w, a.shape[3])


def _cubic(t, a):
    t = abs(t)
    if t < 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return 0.0


def _lanczos4(t):
    if t == 0:
        return 1.0
    if abs(t) >= 4:
        return 0.0
    return 4 * math.sin(math.pi * t) * math.sin(math.pi * t / 4) / (math.pi * math.pi * t * t)


def _resize_matrix(src, dst, mode, antialias, area_shrink):
    """Dense (dst, src) float64 matrix of one axis; out-of-image taps go to the edge pixel."""
    m = np.zeros((dst, src))
    scale = src / dst
    for i in range(dst):
        if mode in ("nearest", "nearest-exact"):
            # nearest: OpenCV's formula, floor(i * (1 / (dst / src))) in float64;
            # nearest-exact: floor((i + 0.5) * src / dst) in exact integers
            j = math.floor(i * (1.0 / (dst / src))) if mode == "nearest" else ((2 * i + 1) * src) // (2 * dst)
            m[i, min(j, src - 1)] = 1.0
        elif antialias and mode in ("bilinear", "bicubic"):
            # Pillow / torch antialias: the filter stretched by the shrink factor
            support = (1.0 if mode == "bilinear" else 2.0) * max(scale, 1.0)
            center = (i + 0.5) * scale
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), src)
            ws = []
            for j in range(lo, hi):
                t = (j - center + 0.5) / max(scale, 1.0)
                ws.append(max(0.0, 1 - abs(t)) if mode == "bilinear" else _cubic(t, -0.5))
            total = sum(ws)
            for j, wv in zip(range(lo, hi), ws):
                m[i, j] += wv / total if total else wv
        elif mode == "area" and area_shrink:
            # the mean over the cell [i * scale, (i + 1) * scale), partial pixels by coverage
            a, b = i * scale, min((i + 1) * scale, src)
            for j in range(int(math.floor(a)), int(math.ceil(b))):
                cover = min(b, j + 1) - max(a, j)
                if cover > 1e-3:
                    m[i, min(j, src - 1)] += cover
            m[i] /= m[i].sum()
        elif mode == "area":
            # OpenCV's area upscaling: linear, the fraction of the output cell [i, i+1)/inv
            # that the source pixel sx covers
            # (positions rounded to float32 as cv2 computes them)
            sx = math.floor(i * scale)
            f = float(np.float32((i + 1) - (sx + 1) * (dst / src)))
            f = 0.0 if f <= 0 else float(np.float32(f - math.floor(f)))
            if sx >= src - 1:
                sx, f = src - 1, 0.0
            m[i, sx] += 1 - f
            m[i, min(sx + 1, src - 1)] += f
        else:
            # the source position in float32, as cv2.resize computes it (for every dtype)
            c = np.float32((i + 0.5) * (1.0 / (dst / src)) - 0.5)
            sx = math.floor(c)
            f = float(c - np.float32(sx))
            if mode == "bilinear":
                if sx < 0:
                    sx, f = 0, 0.0
                if sx >= src - 1:
                    sx, f = src - 1, 0.0
                taps = [(sx, 1 - f), (sx + 1, f)]
            elif mode == "bicubic":
                taps = [(sx + k, _cubic(f - k, -0.75)) for k in range(-1, 3)]
            else:
                ws = [_lanczos4(f - k) for k in range(-3, 5)]
                s = sum(ws)
                taps = [(sx + k, wv / s) for k, wv in zip(range(-3, 5), ws)]
            for j, wv in taps:
                m[i, min(max(j, 0), src - 1)] += wv
    return m


def resize(image, size, *, interpolation="bilinear", antialias=False, out=None):
    """Reference of :func:`imkern.transform.resize`: dense per-axis weight matrices in float64
    (the formulas of cv2.resize, and of torch/Pillow for ``antialias=True``)."""
    h, w = int(size[0]), int(size[1])
    mode = {"linear": "bilinear", "cubic": "bicubic", "lanczos4": "lanczos"}.get(interpolation, interpolation)
    x = _as_nhwc(image).astype(np.float64)
    _, sh, sw, _ = x.shape
    shrink = mode == "area" and sh >= h and sw >= w
    my = _resize_matrix(sh, h, mode, antialias, shrink)
    mx = _resize_matrix(sw, w, mode, antialias, shrink)
    if np.asarray(image).dtype == np.uint8 and antialias and mode == "bicubic":
        # Pillow / torch: rows first, the intermediate rounded and clamped to uint8
        mid = np.clip(np.rint(np.einsum("nijc,xj->nixc", x, mx, optimize=True)), 0, 255)
        acc = np.einsum("yi,nixc->nyxc", my, mid, optimize=True)
    else:
        acc = np.einsum("yi,nijc,xj->nyxc", my, x, mx, optimize=True)
    return _cast_shape(acc, image, _out_shape(image, h, w), out)


__all__ += ["crop", "center_crop", "pad", "flip", "rotate90", "to_tensor", "from_tensor"]

_NP_PAD: Dict[str, Any] = {
    "reflect101": "reflect",
    "reflect": "symmetric",
    "replicate": "edge",
    "constant": "constant",
    "wrap": "wrap",
}


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
    return np.flip(a, tuple(o + ax for ax in axes)).copy()


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
        x = x[:, top : top + h, left : left + w]
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


def _border_idx(p, n, border):
    """Vectorized border rule: index inside [0, n) or -1 (constant)."""
    p = np.asarray(p, np.int64)
    inside = (p >= 0) & (p < n)
    if border == "constant":
        return np.where(inside, p, -1)
    if border == "replicate":
        return np.clip(p, 0, n - 1)
    if border == "wrap":
        return np.mod(p, n)
    if border == "reflect":
        m = np.mod(p, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    if n == 1:
        return np.zeros_like(p)
    m = np.mod(p, 2 * n - 2)
    return np.where(m < n, m, 2 * n - 2 - m)


def _cubic_w(t):
    a = -0.75
    t1 = t + 1
    return [
        ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
        None,
    ]


def _sample(x, ix, iy, wx, wy, border, cval):
    """sum_ij wy[i] * wx[j] * x[iy + i, ix + j] over the taps, border applied; x is (N, H, W, C)."""
    _, H, W, _ = x.shape
    acc = 0.0
    for i, wyi in enumerate(wy):
        yy = _border_idx(iy + i, H, border)
        for j, wxj in enumerate(wx):
            xx = _border_idx(ix + j, W, border)
            ok = (yy >= 0) & (xx >= 0)
            v = x[:, np.where(ok, yy, 0), np.where(ok, xx, 0), :]
            v = np.where(ok[None, :, :, None], v, cval)
            acc = acc + (wyi * wxj)[None, :, :, None] * v
    return acc


def _warp_ref(image, m_inv, perspective, size, interpolation, border, cval, out):
    from ..transform._warp import uses_fixed_scheme

    h, w = int(size[0]), int(size[1])
    border = parse_border(border)
    img = np.asarray(image)
    x = _as_nhwc(img).astype(np.float64)
    dt = img.dtype
    if dt.kind == "u":
        info = np.iinfo(dt)
        cval = float(np.clip(np.rint(cval), info.min, info.max))
    else:
        cval = float(dt.type(cval))
    M = np.eye(3)
    M[: m_inv.shape[0]] = m_inv
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    if uses_fixed_scheme(dt, x.shape[3], interpolation):
        # OpenCV's remap tables: coordinates rounded to 1/32 pixel in fixed point
        nearest = interpolation == "nearest"
        if not perspective:
            delta = 512 if nearest else 16
            cx = np.rint(M[0, 0] * xs * 1024) + np.rint((M[0, 1] * ys + M[0, 2]) * 1024) + delta
            cy = np.rint(M[1, 0] * xs * 1024) + np.rint((M[1, 1] * ys + M[1, 2]) * 1024) + delta
            sh = 10 if nearest else 5
            X = np.floor(cx / 2**sh).astype(np.int64)
            Y = np.floor(cy / 2**sh).astype(np.int64)
        else:
            bh0 = min(16, h)
            bw = min(1024 // bh0, w)
            xb = (xs // bw) * bw
            x1 = xs - xb
            X0 = M[0, 0] * xb + M[0, 1] * ys + M[0, 2]
            Y0 = M[1, 0] * xb + M[1, 1] * ys + M[1, 2]
            W0 = M[2, 0] * xb + M[2, 1] * ys + M[2, 2]
            Wd = W0 + M[2, 0] * x1
            with np.errstate(divide="ignore"):
                Wd = np.where(Wd != 0, (1.0 if nearest else 32.0) / np.where(Wd != 0, Wd, 1), 0.0)
            X = np.rint(np.clip((X0 + M[0, 0] * x1) * Wd, -(2**31), 2**31 - 1)).astype(np.int64)
            Y = np.rint(np.clip((Y0 + M[1, 0] * x1) * Wd, -(2**31), 2**31 - 1)).astype(np.int64)
        if nearest:
            acc = _sample(x, X, Y, [np.ones((h, w))], [np.ones((h, w))], border, cval)
        else:
            fx, fy = (X & 31) / 32.0, (Y & 31) / 32.0
            ix, iy = X >> 5, Y >> 5
            if interpolation == "bilinear":
                acc = _sample(x, ix, iy, [1 - fx, fx], [1 - fy, fy], border, cval)
            else:
                cwx, cwy = _cubic_w(fx), _cubic_w(fy)
                cwx[3] = 1 - cwx[0] - cwx[1] - cwx[2]
                cwy[3] = 1 - cwy[0] - cwy[1] - cwy[2]
                acc = _sample(x, ix - 1, iy - 1, cwx, cwy, border, cval)
    else:
        # OpenCV's warp kernels: the source point in float32
        f32 = np.float32
        mx = (ys * M[0, 1] + M[0, 2]).astype(f32).astype(np.float64)
        my = (ys * M[1, 1] + M[1, 2]).astype(f32).astype(np.float64)
        sx = (float(f32(M[0, 0])) * xs + mx).astype(f32)
        sy = (float(f32(M[1, 0])) * xs + my).astype(f32)
        if perspective:
            mw = (ys * M[2, 1] + M[2, 2]).astype(f32).astype(np.float64)
            wv = (float(f32(M[2, 0])) * xs + mw).astype(f32)
            sx, sy = (sx / wv).astype(f32), (sy / wv).astype(f32)
        sx, sy = sx.astype(np.float64), sy.astype(np.float64)
        if interpolation == "nearest":
            # halves rounded up, as OpenCV (the + 0.5 in float32)
            rx = np.floor((sx.astype(f32) + f32(0.5)).astype(f32)).astype(np.int64)
            ry = np.floor((sy.astype(f32) + f32(0.5)).astype(f32)).astype(np.int64)
            acc = _sample(x, rx, ry, [np.ones((h, w))], [np.ones((h, w))], border, cval)
        else:
            ix, iy = np.floor(sx), np.floor(sy)
            fx, fy = sx - ix, sy - iy
            ix, iy = ix.astype(np.int64), iy.astype(np.int64)
            if interpolation == "bilinear":
                acc = _sample(x, ix, iy, [1 - fx, fx], [1 - fy, fy], border, cval)
            else:
                cwx, cwy = _cubic_w(fx), _cubic_w(fy)
                cwx[3] = 1 - cwx[0] - cwx[1] - cwx[2]
                cwy[3] = 1 - cwy[0] - cwy[1] - cwy[2]
                acc = _sample(x, ix - 1, iy - 1, cwx, cwy, border, cval)
    return _cast_shape(acc, image, _out_shape(image, h, w), out)


def _inv_affine(m):
    d = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22, a12, a21 = m[1, 1] * d, m[0, 0] * d, -m[0, 1] * d, -m[1, 0] * d
    return np.array([[a11, a12, -a11 * m[0, 2] - a12 * m[1, 2]], [a21, a22, -a21 * m[0, 2] - a22 * m[1, 2]]])


def warp_affine(image, matrix, size, *, interpolation="bilinear", border="constant", cval=0, inverse=False, out=None):
    """Reference of :func:`imkern.transform.warp_affine` (OpenCV's coordinate rounding,
    float64 interpolation)."""
    m = np.asarray(matrix, np.float64)
    return _warp_ref(image, m if inverse else _inv_affine(m), False, size, interpolation, border, cval, out)


def warp_perspective(
    image, matrix, size, *, interpolation="bilinear", border="constant", cval=0, inverse=False, out=None
):
    """Reference of :func:`imkern.transform.warp_perspective`."""
    m = np.asarray(matrix, np.float64)
    return _warp_ref(image, m if inverse else np.linalg.inv(m), True, size, interpolation, border, cval, out)


def rotate(image, angle, *, interpolation="bilinear", border="constant", cval=0, out=None):
    """Reference of :func:`imkern.transform.rotate`: cv2.getRotationMatrix2D about the pixel
    grid's center, counter-clockwise degrees."""
    a = np.asarray(image)
    o = 1 if a.ndim == 4 else 0
    h, w = a.shape[o], a.shape[o + 1]
    t = angle * (math.pi / 180)
    al, be = math.cos(t), math.sin(t)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    m = np.array([[al, be, (1 - al) * cx - be * cy], [-be, al, be * cx + (1 - al) * cy]])
    return warp_affine(image, m, (h, w), interpolation=interpolation, border=border, cval=cval, out=out)
