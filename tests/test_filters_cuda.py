"""CUDA linear filters (CuPy arrays) against the NumPy reference and cupyx.scipy.ndimage.

Skipped (never failed) without a GPU, a CUDA build of imkern and CuPy (the ``cp`` fixture).
"""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from imkern import filters as F
from imkern.reference import filters as R

from conftest import assert_close, random_array, to_numpy

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
DTYPES = [np.uint8, np.uint16, np.float16, np.float32, np.float64]
# scipy.ndimage mode names for our borders
SCIPY_MODE = {"reflect101": "mirror", "reflect": "reflect", "replicate": "nearest", "constant": "constant",
              "wrap": "wrap"}  # ndimage filters: "wrap" is periodic (= "grid-wrap")


def _image(rng, shape, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return random_array(rng, shape, dt, -2.0, 2.0)
    return random_array(rng, shape, dt)


def _scale(x, weight_abs_sum):
    """Bound on the magnitude of the terms summed (for the float tolerance)."""
    m = float(np.max(np.abs(x.astype(np.float64)))) if x.size else 1.0
    return max(m, 1.0) * max(float(weight_abs_sum), 1.0)


def _check(actual, expected, x, weight_abs_sum, cp, err=""):
    assert isinstance(actual, cp.ndarray), type(actual)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert_close(actual, expected, dtype=expected.dtype, scale=_scale(x, weight_abs_sum), err_msg=err)


def _poisoned_out(cp, shape, dtype):
    out = cp.empty(shape, dtype=dtype)
    if np.dtype(dtype).kind == "f":
        out.fill(np.nan)
    else:
        out.fill(np.iinfo(dtype).max // 3)
    return out


# ---- every dtype x border on an odd size ----------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_sep_filter_dtypes_borders(cp, rng, dtype, border):
    x = _image(rng, (2, 19, 37, 3), dtype)
    xd = cp.asarray(x)
    # (5, 3) and (20, 9): register-weight variants (kh <= 16, <= 32); (35, 4): shared weights
    for kh, kw in ((5, 3), (20, 9), (35, 4)):
        ky = rng.random(kh) - 0.3
        kx = rng.random(kw) - 0.3
        got = F.sep_filter(xd, ky, kx, border=border, cval=0.75)
        exp = R.sep_filter(x, ky, kx, border=border, cval=0.75)
        _check(got, exp, x, np.abs(ky).sum() * np.abs(kx).sum(), cp, f"{dtype} {border} {kh}x{kw}")
    assert cp.array_equal(xd, cp.asarray(x)), "input modified"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_gaussian_dtypes_borders(cp, rng, dtype, border):
    # 5x5 and 7x7 take the fixed-size kernels, sigma 2.5 (21 taps) the runtime-size one
    x = _image(rng, (23, 41, 3), dtype)
    xd = cp.asarray(x)
    for sigma, ksize in ((1.0, (5, 5)), (1.3, (7, 7)), (0.8, (3, 3)), (2.5, None), ((1.0, 2.0), None)):
        got = F.gaussian(xd, sigma, ksize=ksize, border=border, cval=3.0)
        exp = R.gaussian(x, sigma, ksize=ksize, border=border, cval=3.0)
        _check(got, exp, x, 1.0, cp, f"{dtype} {border} sigma={sigma} ksize={ksize}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_correlate_dtypes_borders(cp, rng, dtype, border):
    x = _image(rng, (2, 17, 29, 2), dtype)
    k = rng.random((3, 4)) - 0.4
    got = F.correlate(cp.asarray(x), k, border=border, cval=-1.5)
    exp = R.correlate(x, k, border=border, cval=-1.5)
    _check(got, exp, x, np.abs(k).sum(), cp, f"{dtype} {border}")
    got = F.convolve(cp.asarray(x), k, border=border, cval=2.0)
    exp = R.convolve(x, k, border=border, cval=2.0)
    _check(got, exp, x, np.abs(k).sum(), cp, f"convolve {dtype} {border}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("normalize", [True, False])
def test_box_dtypes_borders(cp, rng, dtype, border, normalize):
    x = _image(rng, (2, 21, 33, 3), dtype)
    if np.dtype(dtype) == np.uint8 and not normalize:
        x //= 16  # keep some sums below the saturation limit
    for size in ((3, 3), (5, 2), (4, 19), (1, 1), (40, 3)):  # 19 > 16: the prefix-scan row pass
        got = F.box(cp.asarray(x), size, normalize=normalize, border=border, cval=1.25)
        exp = R.box(x, size, normalize=normalize, border=border, cval=1.25)
        w = 1.0 if normalize else size[0] * size[1]
        _check(got, exp, x, w, cp, f"{dtype} {border} size={size} normalize={normalize}")


# ---- sizes: 1x1, 1xN, Nx1, 3x257, kernels larger than the image ------------------------------
SIZES = [(1, 1), (1, 9), (9, 1), (3, 257), (2, 300), (70, 5)]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("border", BORDERS)
def test_odd_sizes(cp, rng, hw, border):
    x = _image(rng, hw, np.float32)
    xd = cp.asarray(x)
    for ky, kx in ((rng.random(5), rng.random(5)), (rng.random(7), rng.random(2)), (rng.random(31), rng.random(31)),
                   (rng.random(16), rng.random(3)), (rng.random(33), rng.random(4))):
        got = F.sep_filter(xd, ky, kx, border=border, cval=0.5)
        exp = R.sep_filter(x, ky, kx, border=border, cval=0.5)
        _check(got, exp, x, ky.sum() * kx.sum(), cp, f"sep {hw} {border} {len(ky)}x{len(kx)}")
    for kshape in ((3, 3), (1, 6), (9, 9), (31, 31)):
        k = rng.random(kshape) - 0.5
        got = F.correlate(xd, k, border=border, cval=0.5)
        exp = R.correlate(x, k, border=border, cval=0.5)
        _check(got, exp, x, np.abs(k).sum(), cp, f"correlate {hw} {border} {kshape}")
    for size in ((3, 3), (7, 1), (25, 33)):
        got = F.box(xd, size, border=border, cval=0.5)
        exp = R.box(x, size, border=border, cval=0.5)
        _check(got, exp, x, 1.0, cp, f"box {hw} {border} {size}")


@pytest.mark.parametrize("border", BORDERS)
def test_kernel_larger_than_image(cp, rng, border):
    x = _image(rng, (2, 4, 5, 3), np.float64)
    xd = cp.asarray(x)
    ky, kx = rng.random(11), rng.random(13)
    _check(F.sep_filter(xd, ky, kx, border=border), R.sep_filter(x, ky, kx, border=border), x,
           ky.sum() * kx.sum(), cp, border)
    k = rng.random((9, 12))
    _check(F.correlate(xd, k, border=border), R.correlate(x, k, border=border), x, k.sum(), cp, border)
    _check(F.box(xd, (13, 17), border=border), R.box(x, (13, 17), border=border), x, 1.0, cp, border)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_fallback_paths(cp, rng, dtype):
    """Tiles that do not fit in shared memory: sep_filter's two-pass path, correlate's opt-in
    and direct paths, box's direct row pass (wide kernels times many channels)."""
    x = _image(rng, (2, 9, 11, 40), dtype)
    xd = cp.asarray(x)
    ky, kx = rng.random(3), rng.random(150)  # (kw - 1) * C = 5960 columns of halo
    _check(F.sep_filter(xd, ky, kx, border="reflect"), R.sep_filter(x, ky, kx, border="reflect"), x,
           ky.sum() * kx.sum(), cp, "sep two-pass")
    x100 = _image(rng, (1, 10, 6, 100), dtype)  # 7x7 with 100 channels: the runtime-size tile, not the fixed one
    k7 = rng.random(7)
    _check(F.sep_filter(cp.asarray(x100), k7, k7, border="replicate"), R.sep_filter(x100, k7, k7, border="replicate"),
           x100, k7.sum() ** 2, cp, "sep 7x7 C=100")
    for kshape in ((5, 60), (3, 200)):  # opt-in shared memory, then too large for any tile
        k = rng.random(kshape) - 0.5
        _check(F.correlate(xd, k, border="wrap"), R.correlate(x, k, border="wrap"), x, np.abs(k).sum(), cp,
               f"correlate {kshape}")
    _check(F.box(xd, (3, 90), border="constant", cval=0.25), R.box(x, (3, 90), border="constant", cval=0.25),
           x, 1.0, cp, "box direct row pass")


# ---- layouts, views, out=, streams, devices --------------------------------------------------
@pytest.mark.parametrize("shape", [(13, 17), (13, 17, 1), (13, 17, 4), (3, 13, 17, 3)])
def test_layouts(cp, rng, shape):
    x = _image(rng, shape, np.float32)
    xd = cp.asarray(x)
    k = rng.random((3, 5))
    _check(F.correlate(xd, k), R.correlate(x, k), x, k.sum(), cp, str(shape))
    _check(F.gaussian(xd, 1.0, ksize=5), R.gaussian(x, 1.0, ksize=5), x, 1.0, cp, str(shape))
    _check(F.box(xd, (3, 4)), R.box(x, (3, 4)), x, 1.0, cp, str(shape))


def test_strided_and_negative_views(cp, rng):
    base = _image(rng, (4, 30, 40, 3), np.float32)
    based = cp.asarray(base)
    views = {
        "rows reversed": (lambda a: a[:, ::-1]),
        "batch reversed": (lambda a: a[::-1]),
        "row step 2": (lambda a: a[:, ::2]),
        "crop": (lambda a: a[1:3, 3:25, 5:33]),
        "cols reversed (copied)": (lambda a: a[:, :, ::-1]),
        "channel slice (copied)": (lambda a: a[..., 1:]),
        "fortran": (lambda a: a[0].transpose(1, 0, 2)),
    }
    k = rng.random((5, 3))
    for name, f in views.items():
        x, xd = f(base), f(based)
        _check(F.correlate(xd, k, border="reflect"), R.correlate(x, k, border="reflect"), x, k.sum(), cp, name)
        _check(F.gaussian(xd, 1.2, ksize=7, border="wrap"), R.gaussian(x, 1.2, ksize=7, border="wrap"), x, 1.0,
               cp, name)
        _check(F.box(xd, 5, border="replicate"), R.box(x, 5, border="replicate"), x, 1.0, cp, name)
    assert cp.array_equal(based, cp.asarray(base)), "input modified"


def test_out(cp, rng):
    x = _image(rng, (2, 25, 31, 3), np.uint8)
    xd = cp.asarray(x)
    k = rng.random((3, 3))
    exp = R.correlate(x, k)
    out = _poisoned_out(cp, x.shape, np.uint8)
    res = F.correlate(xd, k, out=out)
    assert res is out
    _check(out, exp, x, k.sum(), cp, "out")
    # a strided out (rows reversed: written directly) and a non-packed one (via a temporary)
    big = _poisoned_out(cp, (2, 50, 31, 3), np.uint8)
    view = big[:, ::-2]
    assert F.gaussian(xd, 1.0, ksize=5, out=view) is view
    _check(view, R.gaussian(x, 1.0, ksize=5), x, 1.0, cp, "strided out")
    wide = _poisoned_out(cp, (2, 25, 62, 3), np.uint8)
    view = wide[:, :, ::2]
    assert F.box(xd, 3, out=view) is view
    _check(view, R.box(x, 3), x, 1.0, cp, "non-packed out")
    # out aliasing the input: the result still equals the reference
    xa = xd.copy()
    F.gaussian(xa, 1.0, ksize=5, out=xa)
    _check(xa, R.gaussian(x, 1.0, ksize=5), x, 1.0, cp, "in-place")


def test_empty(cp):
    for shape in ((0, 5), (5, 0), (0, 4, 4, 3), (2, 4, 4, 0)):
        x = cp.zeros(shape, np.float32)
        for r in (F.gaussian(x, 1.0), F.correlate(x, np.ones((3, 3))), F.box(x, 3)):
            assert isinstance(r, cp.ndarray) and r.shape == shape


def test_non_default_stream(cp, rng):
    x = _image(rng, (3, 120, 130, 3), np.uint8)
    xd = cp.asarray(x)
    k = rng.random((5, 5))
    cp.cuda.Device().synchronize()  # xd was written on the default stream
    with cp.cuda.Stream(non_blocking=True) as s:
        a = F.correlate(xd, k)
        b = F.gaussian(xd, 1.5, ksize=5)
        c = F.box(xd, 9)
        d = F.gaussian(xd, 3.0)  # runtime-size kernel
        s.synchronize()
    _check(a, R.correlate(x, k), x, k.sum(), cp, "stream correlate")
    _check(b, R.gaussian(x, 1.5, ksize=5), x, 1.0, cp, "stream gaussian")
    _check(c, R.box(x, 9), x, 1.0, cp, "stream box")
    _check(d, R.gaussian(x, 3.0), x, 1.0, cp, "stream gaussian 3")
    assert cp.array_equal(xd, cp.asarray(x)), "input modified"


def test_device_and_type(cp, rng):
    x = _image(rng, (9, 10), np.float32)
    for dev in range(cp.cuda.runtime.getDeviceCount()):
        with cp.cuda.Device(dev):
            xd = cp.asarray(x)
        for r in (F.gaussian(xd, 1.0), F.correlate(xd, np.ones((2, 2))), F.box(xd, 2), F.sep_filter(xd, [1], [1])):
            assert isinstance(r, cp.ndarray)
            assert r.device.id == dev
        _check(F.sep_filter(xd, [1], [1]), x, x, 1.0, cp, "identity")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_multi_tile(cp, rng, dtype):
    """Several tiles in x and y with partial last tiles, for every sep/correlate/box path."""
    x = _image(rng, (2, 150, 331, 3), dtype)
    xd = cp.asarray(x)
    for ksize in ((3, 3), (5, 5), (7, 7), (9, 9), (31, 31)):
        _check(F.gaussian(xd, 2.0, ksize=ksize, border="reflect"), R.gaussian(x, 2.0, ksize=ksize, border="reflect"),
               x, 1.0, cp, f"gaussian {ksize}")
    k = rng.random((7, 5)) - 0.3
    _check(F.correlate(xd, k, border="wrap"), R.correlate(x, k, border="wrap"), x, np.abs(k).sum(), cp, "correlate")
    for size in ((5, 5), (33, 41)):
        _check(F.box(xd, size, border="constant", cval=7.0), R.box(x, size, border="constant", cval=7.0), x, 1.0,
               cp, f"box {size}")


def test_large_batch_grid(cp, rng):
    """Many tiles (batch folded into the 1-D grid): the last image is filtered too."""
    x = _image(rng, (70, 8, 300, 1), np.float32)
    xd = cp.asarray(x)
    got = F.gaussian(xd, 1.0, ksize=3)
    exp = R.gaussian(x, 1.0, ksize=3)
    _check(got, exp, x, 1.0, cp, "batch")


def test_nan_propagates_and_saturation(cp, rng):
    x = _image(rng, (12, 12), np.float32)
    x[5, 5] = np.nan
    got = to_numpy(F.gaussian(cp.asarray(x), 1.0, ksize=3))
    assert np.isnan(got[4:7, 4:7]).all() and not np.isnan(got[0, 0])
    u = np.full((8, 8), 250, np.uint8)
    got = to_numpy(F.correlate(cp.asarray(u), np.full((3, 3), 0.5)))
    assert (got == 255).all()
    got = to_numpy(F.correlate(cp.asarray(u), -np.ones((3, 3))))
    assert (got == 0).all()


# ---- against the peer ------------------------------------------------------------------------
@pytest.mark.parametrize("border", ["reflect101", "reflect", "replicate", "constant", "wrap"])
def test_vs_cupyx(cp, rng, border):
    ndi = pytest.importorskip("cupyx.scipy.ndimage")
    x = _image(rng, (37, 45), np.float32)
    xd = cp.asarray(x)
    mode = SCIPY_MODE[border]
    k = (rng.random((5, 4)) - 0.3).astype(np.float32)
    exp = ndi.correlate(xd.astype(cp.float64), cp.asarray(k, dtype=cp.float64), mode=mode, cval=0.5)
    _check(F.correlate(xd, k, border=border, cval=0.5), exp.get().astype(np.float32), x, np.abs(k).sum(), cp,
           f"correlate {border}")
    exp = ndi.gaussian_filter(xd.astype(cp.float64), 1.5, mode=mode, cval=0.5)
    _check(F.gaussian(xd, 1.5, border=border, cval=0.5), exp.get().astype(np.float32), x, 1.0, cp,
           f"gaussian {border}")
    exp = ndi.uniform_filter(xd.astype(cp.float64), 5, mode=mode, cval=0.5)
    _check(F.box(xd, 5, border=border, cval=0.5), exp.get().astype(np.float32), x, 1.0, cp, f"box {border}")


def test_cuda_matches_cpu(cp, rng):
    x = _image(rng, (2, 31, 47, 3), np.uint8)
    k = rng.random((3, 3))
    a = to_numpy(F.correlate(cp.asarray(x), k))
    b = F.correlate(x, k)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert imkern.info()["cuda_built"]
