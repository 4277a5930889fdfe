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


# ---- uint8 L*a*b*: OpenCV's integer algorithm ---------------------------------------------------
#
# cv2.cvtColor's 8-bit RGB2Lab / Lab2RGB (its bit-exact paths) are integer pipelines over a few
# tables that OpenCV builds once in float32/float64. The tables below are built the same way
# (float32 rounding emulated with NumPy scalars, fused multiply-adds and cube roots correctly
# rounded with exact rationals), and csrc/include/imkern/color_lab_tables.hpp is generated from
# them (_lab8_header), so the kernels on both devices and this reference share every entry.
# Checked against cv2 on all 2**24 inputs of each direction: equal bit for bit.

_F32 = np.float32
# OpenCV's sRGB -> XYZ (D65) matrix, its inverse and the D65 white as the doubles it stores.
_CV_RGB2XYZ = (
    0.412453, 0.357580, 0.180423,
    0.212671, 0.715160, 0.072169,
    0.019334, 0.119193, 0.950227,
)  # fmt: skip
_CV_XYZ2RGB = (
    3.240479, -1.53715, -0.498535,
    -0.969256, 1.875991, 0.041556,
    0.055648, -0.204043, 1.057311,
)  # fmt: skip
_CV_D65 = (0.950456, 1.0, 1.088754)


def _f32_nearest(q):
    """The float32 nearest to the rational q (ties to even): one correctly rounded operation."""
    from fractions import Fraction

    c = _F32(float(q))
    cands = (np.nextafter(c, _F32(-np.inf)), c, np.nextafter(c, _F32(np.inf)))
    key = [(abs(Fraction(float(v)) - q), int(np.array(v).view(np.uint32)) & 1) for v in cands]
    return cands[min(range(3), key=key.__getitem__)]


def _cbrt_f32(x):
    """The correctly rounded float32 cube root of the float32 x > 0."""
    from fractions import Fraction

    fx = Fraction(float(x))
    c = _F32(np.cbrt(float(x)))
    while True:  # move to the float whose rounding interval holds cbrt(x)
        nxt, prv = np.nextafter(c, _F32(np.inf)), np.nextafter(c, _F32(0))
        if ((Fraction(float(c)) + Fraction(float(nxt))) / 2) ** 3 < fx:
            c = nxt
        elif ((Fraction(float(prv)) + Fraction(float(c))) / 2) ** 3 > fx:
            c = prv
        else:
            return c


def _srgb_to_linear(x):  # OpenCV's applyGamma: float32 in, double inside, float32 out
    xd = float(x)
    return _F32(xd / 12.92 if xd <= 0.04045 else ((xd + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):  # OpenCV's applyInvGamma
    xd = float(x)
    return _F32(xd * 12.92 if xd <= 0.0031308 else xd ** (1 / 2.4) * 1.055 - 0.055)


def _lab8_tables():
    """The tables and Q12 matrices of the uint8 L*a*b* conversions (cached)."""
    if _LAB8:
        return _LAB8
    from fractions import Fraction

    rint = lambda v: int(np.rint(v))  # cvRound: half to even
    t = {}
    # RGB -> XYZ / white, Q12 (rows X, Y, Z; columns R, G, B); XYZ * white -> RGB, Q12.
    t["rgb_to_xyz"] = [rint(4096 * _CV_RGB2XYZ[3 * i + j] / _CV_D65[i]) for i in range(3) for j in range(3)]
    t["xyz_to_rgb"] = [rint(4096 * _CV_XYZ2RGB[3 * i + j] * _CV_D65[j]) for i in range(3) for j in range(3)]
    # sRGB level -> linear light times 2040 (255 << 3).
    t["gamma"] = [rint(_F32(2040) * _srgb_to_linear(_F32(i) / _F32(255))) for i in range(256)]
    # f(t) times 2**15 at t = i / 2040: 7.787 t + 16/116 (fused) below (6/29)**3, else cbrt(t).
    thresh, scale, bias = _F32(216) / _F32(24389), _F32(841) / _F32(108), _F32(16) / _F32(116)
    step = _F32(1) / _F32(2040)
    cbrt = []
    for i in range(2041):  # X, Y, Z index at most 2040 (rows of rgb_to_xyz sum to 4096)
        x = step * _F32(i)
        if x < thresh:
            f = _f32_nearest(Fraction(float(x)) * Fraction(float(scale)) + Fraction(float(bias)))
        else:
            f = _cbrt_f32(x)
        cbrt.append(rint(_F32(32768) * f))
    # OpenCV's software cube root returns the float below the correctly rounded one at i = 324,
    # where 2**15 f lands exactly on 17745.5 otherwise.
    cbrt[324] = 17745
    t["cbrt"] = cbrt
    # linear light i / 4096 -> sRGB level.
    t["inv_gamma"] = [rint(_F32(255) * _linear_to_srgb(_F32(1) / _F32(4096) * _F32(i))) for i in range(4096)]
    # L (0..255) -> y (Q14) and f(y) (Q14), packed y | f(y) << 16.
    yf = []
    for i in range(256):
        if i <= 20:
            y = rint(_F32(i * 16384 * 20 * 9) / _F32(17 * 29 * 29 * 29))
            fy = rint(_F32(16384) * (_F32(16) / _F32(116) + _F32(i * 5) / _F32(3 * 17 * 29)))
        else:
            f = _F32(i * 100 * 16384) / _F32(255 * 116) + _F32(16 * 16384) / _F32(116)
            fy, y = rint(f), rint(f * f * f / _F32(16384 * 16384))
        yf.append(y | fy << 16)
    t["l_to_y_fy"] = yf
    _LAB8.update({k: np.array(v, np.int64) for k, v in t.items()})
    return _LAB8


_LAB8: dict = {}


def _lab8_f_inv(i):
    """f^-1 on Q14: (i - 16/116) / 7.787 at or below 6/29, else i**3 (OpenCV's abToXZ_b)."""
    i = np.asarray(i, np.int64)
    lo = np.sign(i * 108) * (np.abs(i * 108) // 841) - 290  # C division: truncation toward zero
    hi = (i * i // 16384) * i // 16384
    return np.where(i <= 3390, lo, hi)


def _rgb_to_lab_u8(a):
    t = _lab8_tables()
    m = t["rgb_to_xyz"].reshape(3, 3)
    lin = t["gamma"][a.astype(np.int64)]
    f = t["cbrt"][(lin @ m.T + 2048) >> 12]
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    L = (296 * fy - 1336934 + (1 << 14)) >> 15
    A = (500 * (fx - fy) + (128 << 15) + (1 << 14)) >> 15
    B = (200 * (fy - fz) + (128 << 15) + (1 << 14)) >> 15
    return np.clip(np.stack([L, A, B], -1), 0, 255).astype(np.uint8)


def _lab_to_rgb_u8(a):
    t = _lab8_tables()
    m = t["xyz_to_rgb"].reshape(3, 3)
    L, A, B = (a[..., k].astype(np.int64) for k in range(3))
    yf = t["l_to_y_fy"][L]
    y, fy = yf & 0xFFFF, yf >> 16
    fx = fy + ((5 * A * 53687 + (1 << 7)) >> 13) - 4194  # fy + a / 500, Q14
    fz = fy - ((B * 41943 + (1 << 4)) >> 9) + 10484  # fy - b / 200, Q14
    xyz = np.stack([_lab8_f_inv(fx), y, _lab8_f_inv(fz)], -1)
    lin = np.clip((xyz @ m.T + (1 << 13)) >> 14, 0, 4095)
    return t["inv_gamma"][lin].astype(np.uint8)


def _lab8_header():
    """The text of csrc/include/imkern/color_lab_tables.hpp (the tables of _lab8_tables)."""
    t = _lab8_tables()
    fields = (  # C type, name, padding entries, comment
        ("int32_t", "rgb_to_xyz", 0, "RGB -> XYZ / white, Q12 (rows X, Y, Z; columns R, G, B)"),
        ("int32_t", "xyz_to_rgb", 0, "XYZ * white -> linear RGB, Q12 (rows R, G, B; columns X, Y, Z)"),
        ("uint32_t", "l_to_y_fy", 0, "L level -> y | f(y) << 16, both Q14"),
        ("uint16_t", "gamma", 1, "sRGB level -> linear light * 2040"),
        ("uint16_t", "cbrt", 1, "f(i / 2040) * 2^15: cube root above (6/29)^3, 7.787 t + 16/116 below"),
        ("uint16_t", "inv_gamma", 1, "linear light i / 4096 -> sRGB level"),
    )
    decl, init = [], []
    for ctype, name, pad, note in fields:
        vals = [str(int(v)) for v in t[name]] + ["0"] * pad
        decl.append(f"  {ctype} {name}[{len(vals)}];  // {note}\n")
        rows = [", ".join(vals[k : k + 16]) for k in range(0, len(vals), 16)]
        init.append("    {  // " + name + "\n        " + ",\n        ".join(rows) + "},\n")
    return (
        "// Generated by imkern.reference.color._lab8_header(); do not edit (tests/test_color_exhaustive.py\n"
        '// checks it). Regenerate: PYTHONPATH=python python -c "from imkern.reference.color import _lab8_header;\n'
        "// print(_lab8_header(), end='')\" > csrc/include/imkern/color_lab_tables.hpp\n"
        "//\n"
        "// The tables of OpenCV's 8-bit RGB <-> L*a*b* algorithm (see imkern/color_pixel.hpp). Each uint16\n"
        "// table ends with one zero entry, so a 32-bit gather at its last index stays inside the table.\n"
        "#pragma once\n#include <cstdint>\n\nnamespace imkern {\nnamespace color {\n\n"
        "struct Lab8Tables {\n" + "".join(decl) + "};\n\n"
        "inline constexpr Lab8Tables kLab8 = {\n" + "".join(init) + "};\n\n"
        "}  // namespace color\n}  // namespace imkern\n"
    )


def rgb_to_lab(image, *, out=None):
    """Floats as skimage; uint8 as cv2.cvtColor(COLOR_RGB2Lab), bit for bit: OpenCV's integer
    algorithm (sRGB -> linear table, Q12 matrix, cube-root table, (L * 255 / 100, a + 128,
    b + 128) rounded in Q15)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return _rgb_to_lab_u8(a)
    return _lab_float(a.astype(np.float64)).astype(a.dtype)


def lab_to_rgb(image, *, out=None):
    """Floats as skimage; uint8 as cv2.cvtColor(COLOR_Lab2RGB), bit for bit: OpenCV's integer
    algorithm (L -> y, f(y) table, a / 500 and b / 200 in Q14, f^-1, Q12 matrix, linear ->
    sRGB table of 4096 entries)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return _lab_to_rgb_u8(a)
    return _rgb_from_lab_float(a.astype(np.float64)).astype(a.dtype)
