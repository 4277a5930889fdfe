"""The vector chunks of the float-scheme bilinear warp rows (warp.cpp's warp_chunk<C> and
warp_chunk8_f32 / warp_chunk_f32: 8 (AVX2) or 16 (AVX-512) output pixels whose 2 x 2 windows lie
inside the image), checked bit for bit against an independent float32 model of float_row (NumPy,
every fma correctly rounded) and against the scalar path (the baseline ISA level) on every ISA
level: uint8 and float32, 1, 3 and 4 channels, output widths that are and are not multiples of 8
and 16 (the tail after the last chunk is float_row's), 1-pixel outputs, windows at the image's
right and bottom edges (the last columns a chunk's 8-byte / 16-byte tap loads may read), strided
and negative-stride views, rotations, zooms in and out, and perspectives."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern.transform import warp_affine, warp_perspective

f32, f64 = np.float32, np.float64


def _fma32(a, b, c):
    """float32 fma(a, b, c), correctly rounded: the float64 product is exact, the sum rounded
    to odd (TwoSum's error decides the last bit), then to float32 (no double rounding)."""
    p = np.asarray(a, f32).astype(f64) * np.asarray(b, f32).astype(f64)
    c = np.asarray(c, f32).astype(f64)
    s = p + c
    bb = s - p
    e = (p - (s - bb)) + (c - bb)
    even = (s.view(np.int64) & 1) == 0
    fix = (e != 0) & even
    s = np.where(fix, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s.astype(f32)


def _points(m, y, w, perspective):
    """float_coords' source points of output row y (m: the inverse map, as the kernel gets it)."""
    t = [f32(f64(y) * m[r, 1] + m[r, 2]) for r in range(3 if perspective else 2)]
    xf = np.arange(w, dtype=f32)
    sx = _fma32(f32(m[0, 0]), xf, t[0])
    sy = _fma32(f32(m[1, 0]), xf, t[1])
    if perspective:
        wv = _fma32(f32(m[2, 0]), xf, t[2])
        with np.errstate(divide="ignore", invalid="ignore"):
            sx, sy = sx / wv, sy / wv
    return sx, sy


def _model(x, m, out_hw, perspective):
    """float_row's bilinear samples of the pixels whose windows lie inside (others: mask False)."""
    h, w = out_hw
    H, W = x.shape[:2]
    img = x.reshape(H, W, -1)
    C = img.shape[2]
    out = np.zeros((h, w, C), x.dtype)
    mask = np.zeros((h, w), bool)
    for y in range(h):
        sx, sy = _points(m, y, w, perspective)
        with np.errstate(invalid="ignore"):
            fx0, fy0 = np.floor(sx), np.floor(sy)
            ok = np.isfinite(sx) & np.isfinite(sy) & (fx0 >= 0) & (fy0 >= 0) & (fx0 + 1 < W) & (fy0 + 1 < H)
        ix, iy = fx0[ok].astype(np.int64), fy0[ok].astype(np.int64)
        ax, ay = (sx - fx0)[ok], (sy - fy0)[ok]
        for c in range(C):
            p00, p01 = img[iy, ix, c].astype(f32), img[iy, ix + 1, c].astype(f32)
            p10, p11 = img[iy + 1, ix, c].astype(f32), img[iy + 1, ix + 1, c].astype(f32)
            v0 = _fma32(ax, p01 - p00, p00)
            v1 = _fma32(ax, p11 - p10, p10)
            v = _fma32(ay, v1 - v0, v0)
            if x.dtype == np.uint8:
                v = np.clip(np.rint(v), 0, 255)  # rint: half to even, as the kernels
            out[y, ok, c] = v.astype(x.dtype)
        mask[y] = ok
    return out.reshape((h, w) + x.shape[2:]), mask


def _every_isa(fn):
    before = imkern.get_cpu_isa()
    try:
        res = {}
        for isa in imkern.info()["cpu_isa_available"]:
            imkern.set_cpu_isa(isa)
            res[isa] = fn()
        return res
    finally:
        imkern.set_cpu_isa(before)


def _check(x, m, out_hw, perspective, what):
    fn = warp_perspective if perspective else warp_affine
    res = _every_isa(lambda: fn(x, m, out_hw, border="constant", cval=17, inverse=True))
    ref, mask = _model(np.ascontiguousarray(x), m, out_hw, perspective)
    for isa, got in res.items():
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got[mask], ref[mask], err_msg=f"{what} at {isa}: vs the float32 model")
        np.testing.assert_array_equal(got, res["baseline"], err_msg=f"{what} at {isa}: vs the scalar path")
    return mask


# inverse maps (output -> source) of a 61 x 83 source, mostly inside it
AFFINE = {
    "rotation": np.array([[0.96, -0.17, 12.3], [0.17, 0.96, 2.6]]),
    "zoom in": np.array([[0.31, 0.02, 9.7], [-0.01, 0.27, 14.2]]),
    "zoom out": np.array([[2.3, 0.1, 0.4], [0.05, 1.9, 0.8]]),
    "shift": np.array([[1.0, 0.0, 0.37], [0.0, 1.0, 0.61]]),
    "mirror": np.array([[-1.0, 0.0, 81.5], [0.0, -1.0, 59.25]]),
}
PERSPECTIVE = {
    "bench-like": np.array([[0.96, -0.17, 12.3], [0.17, 0.96, 2.6], [1e-4, 2e-4, 1.0]]),
    "tilt": np.array([[0.8, 0.05, 3.1], [0.02, 0.7, 4.4], [2e-3, 1e-3, 1.0]]),
}


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_chunks_match_float32_model_and_scalar_path(rng, dtype, channels):
    x = random_array(rng, (61, 83, channels), dtype)
    for width in (1, 7, 8, 9, 15, 16, 17, 31, 33, 48, 50):
        for name, m in AFFINE.items():
            mask = _check(x, m, (13, width), False, f"affine {name} w={width}")
            if width >= 16 and name != "zoom out":
                assert mask.all(), name  # the chunks of these rows are all inside
        for name, m in PERSPECTIVE.items():
            _check(x, m, (13, width), True, f"perspective {name} w={width}")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_chunks_on_views(rng, dtype, channels):
    big = random_array(rng, (2, 70, 97, channels), dtype)
    views = {
        "negative rows": big[0, ::-1],
        "negative columns": big[1, :, ::-1],
        "both negative": big[0, ::-1, ::-1],
        "strided": big[1, 1:69:2, 3:95],
        "2-D": big[0, :, :, 0] if channels == 1 else big[0, 2:, 5:],
    }
    for name, v in views.items():
        for mname, m in (("rotation", AFFINE["rotation"]), ("zoom in", AFFINE["zoom in"])):
            _check(v, m, (11, 41), False, f"{name} {mname}")
        _check(v, PERSPECTIVE["bench-like"], (11, 41), True, f"{name} perspective")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_chunks_at_the_right_and_bottom_edges(rng, dtype, channels):
    """Windows whose right tap is the image's last column and whose lower tap is its last row:
    the last positions a chunk's tap loads may start at (uint8 reads 8 bytes from the left tap,
    float32 the two taps' channels), one column either side of them, and the chunks that end
    there (the scalar path takes the lanes past them)."""
    H, W = 37, 45
    x = random_array(rng, (H, W, channels), dtype)
    for dx in np.arange(-12.0, 0.0, 0.5) + 0.25:
        m = np.array([[0.25, 0.0, W - 1 - 16 * 0.25 + dx], [0.0, 0.125, H - 2.5]])
        _check(x, m, (12, 17), False, f"dx={dx}")
    for w in (8, 16, 24, 32):
        m = np.array([[1.0, 0.0, W - 1.5 - w], [0.0, 1.0, H - 6.4]])
        mask = _check(x, m, (5, w + 3), False, f"w={w}")
        assert mask[:, :w].all()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_chunks_small_images(rng, dtype, channels):
    """Images of 2 x 2 to 2 x 9 pixels and a 1-pixel output: windows inside, too few bytes for a
    chunk's loads (float_row's), both on every ISA level."""
    for hw in ((2, 2), (2, 3), (3, 9), (2, 9), (9, 2)):
        x = random_array(rng, hw + (channels,), dtype)
        m = np.array([[0.05, 0.0, 0.2], [0.0, 0.03, 0.4]])
        _check(x, m, (3, 19), False, f"{hw}")
        _check(x, m, (1, 1), False, f"{hw} 1 pixel")
