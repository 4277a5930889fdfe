"""imkern.filters.gaussian on uint8 and uint16 with ksize: cv2.GaussianBlur's fixed-point algorithms
(8 and 16 fractional bits), bit for bit (against OpenCV, the integer NumPy reference, every ISA,
thread counts, views and batches)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import imkern
from conftest import random_array, to_numpy
from imkern import _core
from imkern import filters as F
from imkern._kernels import gaussian_kernel_cv_exact, gaussian_kernel_q8, gaussian_kernel_q16
from imkern.reference import filters as R

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
DTYPES = [np.uint8, np.uint16]
# (kh, kw), (sigma_y, sigma_x): imkern's order; cv2 takes ksize=(kw, kh), sigmaX=sx, sigmaY=sy
KSIZES = [
    (1, 1),
    (3, 3),
    (5, 5),
    (7, 7),
    (9, 9),
    (3, 1),
    (1, 7),
    (5, 3),
    (7, 11),
    (13, 5),
    (15, 15),
    (21, 3),
    (31, 31),
    (29, 9),
]
SIGMAS = [(0.0, 0.0), (1.0, 1.0), (1.7, 0.6), (-1.0, 2.5), (0.35, 4.0), (6.0, 6.0)]
SHAPES = [(1, 1), (1, 9), (7, 1), (2, 3), (13, 17), (24, 33, 3), (9, 70, 4), (40, 129, 1), (3, 5, 3)]


def _cv2():
    return pytest.importorskip("cv2")


def _cv_border(cv2, border):
    return {
        "reflect101": cv2.BORDER_REFLECT101,
        "reflect": cv2.BORDER_REFLECT,
        "replicate": cv2.BORDER_REPLICATE,
        "constant": cv2.BORDER_CONSTANT,
        "wrap": cv2.BORDER_WRAP,
    }[border]


def _cv_blur(x, ksize, sigma, border):
    """cv2.GaussianBlur in imkern's conventions, image by image for (N, H, W, C) batches."""
    cv2 = _cv2()
    (kh, kw), (sy, sx) = ksize, sigma
    b = _cv_border(cv2, border)
    if x.ndim == 4:
        return np.stack([_cv_blur(im, ksize, sigma, border) for im in x])
    if x.ndim == 3 and x.shape[2] == 1:
        return _cv_blur(x[..., 0], ksize, sigma, border)[..., None]
    # cv2 takes sigmaY <= 0 as sigmaX; imkern derives each sigma <= 0 from its own size, which is
    # cv2 with both <= 0 or with sigmaY > 0 (the callers leave out the other combination)
    assert not sy <= 0 < sx
    return cv2.GaussianBlur(np.ascontiguousarray(x), (kw, kh), sigmaX=sx, sigmaY=sy, borderType=b)


# ---- the taps -------------------------------------------------------------------------------------
def test_kernel_is_opencvs_to_the_bit():
    cv2 = _cv2()
    rng = np.random.default_rng(0)
    sigmas = [0.0, -1.0, 1e-3, 0.1, 0.3, 0.8, 1.0, 1.5, 2.0, 5.0, 12.5, 100.0, *rng.uniform(0.05, 20.0, 300)]
    for sigma in sigmas:
        for n in (1, 3, 5, 7, 9, 11, 13, 15, 21, 31, 33, 51):
            want = cv2.getGaussianKernel(n, float(sigma), cv2.CV_64F).ravel()
            got = np.array(gaussian_kernel_cv_exact(n, float(sigma)))
            assert np.array_equal(got, want), (n, sigma, np.abs(got - want).max())


def test_q8_taps_sum_to_256_and_are_symmetric():
    for n in (1, 3, 5, 7, 9, 15, 31, 63, 101):
        for sigma in (0.0, 0.2, 1.0, 3.0, 50.0):
            k = gaussian_kernel_q8(n, sigma)
            assert k.dtype == np.int32 and k.sum() == 256 and (k >= 0).all() and (k == k[::-1]).all()
    assert gaussian_kernel_q8(5, 0).tolist() == [16, 64, 96, 64, 16]
    assert gaussian_kernel_q8(3, 0.1).tolist() == [0, 256, 0]


def test_q16_taps_sum_to_65536_and_are_symmetric():
    for n in (1, 3, 5, 7, 9, 15, 31, 63, 101):
        for sigma in (0.0, 0.3, 1.0, 2.5, 9.0):
            k = gaussian_kernel_q16(n, sigma)
            assert k.sum() == 65536 and np.array_equal(k, k[::-1]) and k.min() >= 0
            assert k[: n // 2].max(initial=0) <= 32768  # what the kernels' folded sums need
    assert gaussian_kernel_q16(3, 0.1).tolist() == [0, 65536, 0]


def test_q8_taps_are_cv2s(rng):
    # a delta image through cv2 (rows: kh = 1, so the output is round(kx * 255 / 256)) would lose
    # bits; instead compare whole blurs of random images over many sigmas, where one wrong tap
    # changes many pixels
    x = random_array(rng, (60, 60), np.uint8)
    for sigma in np.concatenate([rng.uniform(0.05, 15.0, 60), [0.0]]):
        for n in (3, 5, 7, 9, 11, 17, 25, 31):
            got = F.gaussian(x, float(sigma), ksize=n)
            assert np.array_equal(got, _cv_blur(x, (n, n), (float(sigma), float(sigma)), "reflect101")), (n, sigma)


# ---- against OpenCV -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_opencv(rng, isa, border, shape, dtype):
    x = random_array(rng, shape, dtype)
    for ksize in KSIZES:
        for sigma in SIGMAS:
            if sigma[0] <= 0 < sigma[1]:
                continue
            got = F.gaussian(x, sigma, ksize=ksize, border=border)
            want = _cv_blur(x, ksize, sigma, border)
            assert got.dtype == dtype and got.shape == x.shape
            assert np.array_equal(got, want), (isa, border, shape, ksize, sigma)


@pytest.mark.parametrize("shape", [(2160 // 4, 3840 // 4, 3), (301, 1283, 1), (130, 517, 4)])
@pytest.mark.parametrize("ksize,sigma", [((5, 5), 1.0), ((3, 3), 0.0), ((31, 31), 5.0), ((7, 15), (1.2, 3.1))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_opencv_big(rng, isa, threads, shape, ksize, sigma, dtype):
    x = random_array(rng, shape, dtype)
    sig = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    assert np.array_equal(F.gaussian(x, sigma, ksize=ksize), _cv_blur(x, ksize, sig, "reflect101"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batches_match_opencv_per_image(rng, isa, dtype):
    x = random_array(rng, (3, 21, 34, 3), dtype)
    for ksize, sigma in (((5, 5), (1.0, 1.0)), ((9, 3), (2.0, 0.7)), ((1, 11), (0.0, 0.0))):
        got = F.gaussian(x, sigma, ksize=ksize, border="reflect")
        assert np.array_equal(got, _cv_blur(x, ksize, sigma, "reflect"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_match_opencv(rng, isa, dtype):
    base = random_array(rng, (40, 60, 4), dtype)
    views = {
        "strided rows": base[::2],
        "strided cols": base[:, ::3],
        "channel slice": base[:, :, 1:],
        "negative rows": base[::-1],
        "negative cols": base[:, ::-1],
        "fortran": np.asfortranarray(base[:, :, 0]),
        "transposed": base[:, :, 2].T,
    }
    for name, v in views.items():
        before = v.copy()
        got = F.gaussian(v, (1.3, 0.9), ksize=(7, 5), border="replicate")
        assert np.array_equal(got, _cv_blur(np.ascontiguousarray(v), (7, 5), (1.3, 0.9), "replicate")), name
        assert np.array_equal(v, before), name


# ---- against the reference, every device -----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_matches_reference(xp, rng, border, dtype):
    for shape in [(1, 1), (5, 3), (17, 40, 3), (2, 9, 70, 4), (33, 70, 1)]:
        x = random_array(rng, shape, dtype)
        for ksize, sigma in (
            ((5, 5), 1.0),
            ((3, 7), (0.0, 2.0)),
            ((11, 1), (3.0, 0.0)),
            ((25, 25), 4.0),
            ((3, 3), 0.1),
        ):
            got = to_numpy(F.gaussian(xp.asarray(x), sigma, ksize=ksize, border=border, cval=7))
            want = R.gaussian(x, sigma, ksize=ksize, border=border, cval=7)
            assert np.array_equal(got, want), (shape, ksize, sigma)


def _q8_taps(rng, n, peak=None):
    """n non-negative taps summing to 256, not symmetric; peak: a tap of that weight in the middle."""
    if peak is None:
        return rng.multinomial(256, rng.dirichlet(np.ones(n))).astype(np.int32)
    k = np.zeros(n, np.int32)
    k[n // 2] = peak
    k += rng.multinomial(256 - peak, np.ones(n) / n).astype(np.int32)
    return k


@pytest.mark.parametrize("shape", [(1, 1), (6, 5, 3), (11, 21, 1), (9, 70, 4), (23, 130, 3), (2, 17, 47, 2)])
def test_any_taps_match_reference(rng, isa, shape):
    # the kernel's own contract (any odd taps in [0, 256] summing to 256, symmetric or not): the
    # pmaddubsw term plans (mirrored pairs, greedy splits of taps over 127, long lists) and the
    # row-pair counts of every parity, on short rows (the scalar loops) and long ones
    x = random_array(rng, shape, np.uint8)
    cases = [
        (np.array([256], np.int32), np.array([256], np.int32)),
        (np.array([27, 202, 27], np.int32), np.array([70, 116, 70], np.int32)),
        (np.array([0, 256, 0], np.int32), np.array([2, 53, 146, 53, 2], np.int32)),
        (_q8_taps(rng, 5), _q8_taps(rng, 3, peak=250)),
        (_q8_taps(rng, 7, peak=129), _q8_taps(rng, 9)),
        (_q8_taps(rng, 11), _q8_taps(rng, 13, peak=128)),
        (_q8_taps(rng, 1), _q8_taps(rng, 31)),
        (_q8_taps(rng, 33), _q8_taps(rng, 141)),
    ]
    for border in BORDERS:
        b = imkern._borders.BORDER_CODES[border]
        for ky, kx in cases:
            got = np.empty_like(x)
            _core.gaussian_u8(x, got, ky, kx, b, 200)
            want = R.gaussian_fixed_u8(x, ky, kx, border=border, cval=200)
            assert np.array_equal(got, want), (border, ky.tolist(), kx.tolist())


def test_without_vnni_matches_opencv():
    # IMKERN_CPU_DISABLE=avx512vnni: the AVX-512 vertical pass by pmaddwd + vpaddd instead of
    # vpdpwssd (read once per process, hence a child process)
    _cv2()
    code = """
import numpy as np, cv2, imkern
rng = np.random.default_rng(5)
for shape in [(40, 129, 3), (130, 517, 1), (17, 300, 4)]:
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    for ks, s in [(5, 1.0), (3, 0.0), (7, 1.3), (31, 5.0), (9, 0.6)]:
        for threads in (1, 2):
            imkern.set_num_threads(threads)
            got = imkern.filters.gaussian(x, s, ksize=ks)
            want = cv2.GaussianBlur(x, (ks, ks), s, borderType=cv2.BORDER_REFLECT101)
            assert np.array_equal(got, want.reshape(got.shape)), (shape, ks, s)
print("ok")
"""
    env = dict(os.environ, IMKERN_CPU_DISABLE="avx512vnni")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.parametrize("strip_l1", [1024, 5000, 1 << 20])
def test_strips_and_streaming_match_opencv(rng, strip_l1):
    # narrow and wide column strips, streamed output (aligned and misaligned rows) or not
    x = random_array(rng, (37, 700, 3), np.uint8)
    try:
        for stream in (0, 1 << 62):
            imkern.set_cpu_params(strip_l1=strip_l1, stream_bytes=stream)
            for view in (x, x[:, 3:], x[1:, :-5]):
                got = F.gaussian(view, 1.0, ksize=(5, 5))
                assert np.array_equal(got, _cv_blur(view, (5, 5), (1.0, 1.0), "reflect101")), (strip_l1, stream)
                out = np.empty((view.shape[0], view.shape[1] + 3, 3), np.uint8)[:, 1:-2]
                F.gaussian(view, 1.0, ksize=(5, 5), out=out)
                assert np.array_equal(out, got)
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_and_isas_agree(rng, dtype):
    x = random_array(rng, (97, 203, 3), dtype)
    results = []
    before = (imkern.get_cpu_isa(), imkern.get_num_threads())
    try:
        from conftest import ISA_LEVELS

        for level in ISA_LEVELS:
            for n in (1, 2, 5):
                imkern.set_cpu_isa(level)
                imkern.set_num_threads(n)
                results.append(F.gaussian(x, 2.0, ksize=(9, 13)))
    finally:
        imkern.set_cpu_isa(before[0])
        imkern.set_num_threads(before[1])
    assert all(np.array_equal(r, results[0]) for r in results)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_and_input_unchanged(xp, rng, dtype):
    x = random_array(rng, (19, 23, 3), dtype)
    xd = xp.asarray(x)
    out = xp.full(x.shape, 77, dtype)
    r = F.gaussian(xd, 1.0, ksize=(5, 5), out=out)
    assert r is out
    assert np.array_equal(to_numpy(out), R.gaussian(x, 1.0, ksize=(5, 5)))
    assert np.array_equal(to_numpy(xd), x)
    # out sharing memory with the image
    y = xd.copy()
    F.gaussian(y, 1.0, ksize=(5, 5), out=y)
    assert np.array_equal(to_numpy(y), R.gaussian(x, 1.0, ksize=(5, 5)))


def test_empty(xp):
    x = xp.zeros((0, 5, 3), np.uint8)
    assert F.gaussian(x, 1.0, ksize=5).shape == (0, 5, 3)


# ---- what stays on the float path --------------------------------------------------------------------
def test_other_modes_keep_the_float_path(rng):
    x = random_array(rng, (20, 30), np.uint8)
    k = np.array(gaussian_kernel_cv_exact(5, 1.0))
    # no ksize: scipy-compatible, float32 sums rounded
    ks = R.gaussian_kernels((1.0, 1.0), None, 4.0)
    assert np.array_equal(F.gaussian(x, 1.0), F.sep_filter(x, *ks))
    # a float output dtype: the exact (unquantized) kernel
    got = F.gaussian(x, 1.0, ksize=5, dtype=np.float32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, F.sep_filter(x, k, k, dtype=np.float32), rtol=1e-5, atol=1e-4)
    # constant border with a cval that is no uint8 value
    got = F.gaussian(x, 1.0, ksize=5, border="constant", cval=300.5)
    want = R.sep_filter(x, k, k, border="constant", cval=300.5)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # uint16 with a cval beyond its range
    x16 = random_array(rng, (20, 30), np.uint16)
    got = F.gaussian(x16, 1.0, ksize=5, border="constant", cval=70000)
    want = R.sep_filter(x16, k, k, border="constant", cval=70000)
    assert got.dtype == np.uint16 and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_binding_rejects_bad_taps():
    x = np.zeros((4, 4), np.uint8)
    o = np.empty_like(x)
    b = 0
    with pytest.raises(ValueError, match="sum to 256"):
        _core.gaussian_u8(x, o, np.array([1, 2, 1], np.int32), np.array([256], np.int32), b, 0)
    with pytest.raises(ValueError, match="odd"):
        _core.gaussian_u8(x, o, np.array([128, 128], np.int32), np.array([256], np.int32), b, 0)
    with pytest.raises(ValueError, match="0, 256"):
        _core.gaussian_u8(x, o, np.array([-1, 258, -1], np.int32), np.array([256], np.int32), b, 0)
    with pytest.raises(TypeError):
        _core.gaussian_u8(
            x.astype(np.uint16), o.astype(np.uint16), np.array([256], np.int32), np.array([256], np.int32), b, 0
        )
    y = np.zeros((4, 4), np.uint16)
    p = np.empty_like(y)
    with pytest.raises(ValueError, match="sum to 65536"):
        _core.gaussian_u16(y, p, np.array([1, 2, 1], np.int32), np.array([65536], np.int32), b, 0)
    with pytest.raises(ValueError, match="symmetric"):
        _core.gaussian_u16(y, p, np.array([16384, 32768, 16383, 1, 0], np.int32), np.array([65536], np.int32), b, 0)
    with pytest.raises(ValueError, match="cval"):
        _core.gaussian_u16(y, p, np.array([65536], np.int32), np.array([65536], np.int32), b, 65536)
    with pytest.raises(TypeError):
        _core.gaussian_u16(x, o, np.array([65536], np.int32), np.array([65536], np.int32), b, 0)
