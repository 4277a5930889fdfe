"""imkern.filters.threshold, threshold_otsu, threshold_triangle: against the reference,
OpenCV and scikit-image, on every device and ISA."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
KINDS = ["binary", "binary_inv", "trunc", "tozero", "tozero_inv"]
SHAPES = [(1, 1), (1, 7), (6, 1), (3, 257), (17, 13), (9, 11, 3), (2, 7, 9, 3)]
_CV_KIND = {"binary": 0, "binary_inv": 1, "trunc": 2, "tozero": 3, "tozero_inv": 4}


def _levels(dtype):
    if np.dtype(dtype) == np.uint8:
        return [-3.0, -0.5, 0.0, 0.5, 99.5, 128.0, 254.9, 255.0, 300.0]
    if np.dtype(dtype) == np.uint16:
        return [-1.0, 0.0, 1000.5, 40000.0, 65534.5, 65535.0, 1e6]
    return [-2.0, -0.25, 0.0, 0.1, 0.5, 1 / 3, 2.0]


def _maxvals(dtype):
    return [1.0, 77.5, 255.0, 300.4, 65535.6] if np.dtype(dtype).kind == "u" else [1.0, 0.3, -2.5]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_threshold_matches_reference(xp, rng, dtype, shape):
    x = random_array(rng, shape, dtype)
    if np.dtype(dtype).kind == "f" and x.size > 1:
        x.reshape(-1)[1] = np.nan
    X = xp.asarray(x)
    for t in _levels(dtype):
        for mv in _maxvals(dtype):
            for kind in KINDS:
                got = F.threshold(X, t, mv, kind)
                assert got.dtype == x.dtype and got.shape == x.shape and type(got) is type(X)
                assert np.array_equal(to_numpy(got), R.threshold(x, t, mv, kind), equal_nan=True), (t, mv, kind)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_matches_opencv(xp, rng, dtype):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (23, 31, 3), dtype)
    if dtype == np.float32:  # cv2's float64 NaN results differ by kind (see the docstring)
        x[0, 0, 0] = np.nan
    X = xp.asarray(x)
    for t in _levels(dtype):
        for mv in _maxvals(dtype):
            for kind in KINDS:
                ref = cv2.threshold(x, t, mv, _CV_KIND[kind])[1]
                got = to_numpy(F.threshold(X, t, mv, kind))
                # cv2's float32 trunc at a NaN pixel depends on the buffer's alignment (seen with
                # cv2 5.1: thresh where the data is 8-byte aligned, NaN where only 4-byte
                # aligned: flaky by allocation), so NaN pixels are held to the documented rule
                # (the reference) instead
                nan = np.isnan(x)
                assert np.array_equal(got[~nan], ref[~nan]), (t, mv, kind)
                assert np.array_equal(got[nan], R.threshold(x, t, mv, kind)[nan], equal_nan=True), (t, mv, kind)


def test_threshold_isa_threads_views_out(rng, isa, threads):
    for dtype in DTYPES:
        base = random_array(rng, (33, 71, 3), dtype)
        t = float(np.median(base.astype(np.float64)))
        for v in (base, base[::-1], base[:, ::-2], base[..., 1:], np.asfortranarray(base)):
            before = v.copy()
            for kind in KINDS:
                assert np.array_equal(F.threshold(v, t, 3, kind), R.threshold(v, t, 3, kind))
            assert np.array_equal(v, before)
        out = np.empty_like(base)
        assert F.threshold(base, t, 1, out=out) is out
        assert np.array_equal(out, R.threshold(base, t, 1))


def test_otsu_and_triangle_match_opencv_on_photos(xp):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    for name in ("camera", "coins", "moon", "page", "text"):
        img = getattr(data, name)()
        X = xp.asarray(img)
        assert F.threshold_otsu(X) == cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0], name
        assert F.threshold_triangle(X) == cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_TRIANGLE)[0]


def _otsu_variance(img, level):
    """The exact between-class variance (times N^2) of the split at `level` (pixels > level are
    the foreground), as a fraction."""
    from fractions import Fraction

    v = np.asarray(img).ravel().astype(np.int64)
    lo, hi = v[v <= level], v[v > level]
    n1, n2 = lo.size, hi.size
    if n1 == 0 or n2 == 0:
        return Fraction(0)
    return Fraction((n2 * int(lo.sum()) - n1 * int(hi.sum())) ** 2, n1 * n2)


def _assert_otsu_as_cv2(level, img, cv_level):
    # Equal, or an exact tie: two splits with the same between-class variance, where the float64
    # roundings decide (OpenCV 5's loop and the reference's, which imkern follows bit for bit,
    # round some exact ties differently: about 1 in 10^4 small random images).
    assert level == cv_level or _otsu_variance(img, level) == _otsu_variance(img, cv_level), (level, cv_level)


def test_otsu_and_triangle_match_opencv_random(xp, rng):
    cv2 = pytest.importorskip("cv2")
    for _ in range(60):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
        top = int(rng.integers(1, 256))
        img = rng.integers(0, top, size=shape, endpoint=True, dtype=np.uint8)
        X = xp.asarray(img)
        level = F.threshold_otsu(X)
        assert level == R.threshold_otsu(img)
        _assert_otsu_as_cv2(level, img, cv2.threshold(img, 0, 255, cv2.THRESH_OTSU)[0])
        assert F.threshold_triangle(X) == cv2.threshold(img, 0, 255, cv2.THRESH_TRIANGLE)[0] == \
            R.threshold_triangle(img)
        img16 = rng.integers(0, int(rng.integers(1, 65536)), size=shape, endpoint=True, dtype=np.uint16)
        level16 = F.threshold_otsu(xp.asarray(img16))
        assert level16 == R.threshold_otsu(img16)
        _assert_otsu_as_cv2(level16, img16, cv2.threshold(img16, 0, 65535, cv2.THRESH_OTSU)[0])
    # bimodal, constant and two-valued images
    for img in (np.full((5, 7), 9, np.uint8), np.array([[0, 255]], np.uint8),
                np.concatenate([rng.normal(60, 10, 500), rng.normal(180, 20, 700)]).clip(0, 255).astype(np.uint8)
                .reshape(30, 40)):
        X = xp.asarray(img)
        assert F.threshold_otsu(X) == cv2.threshold(img, 0, 255, cv2.THRESH_OTSU)[0]
        assert F.threshold_triangle(X) == cv2.threshold(img, 0, 255, cv2.THRESH_TRIANGLE)[0]


def test_otsu_exact_ties_against_opencv():
    # Images whose two best splits tie exactly, on which OpenCV 5 and the reference pick
    # different levels: imkern is the reference's level, and the tie check accepts OpenCV's.
    cv2 = pytest.importorskip("cv2")
    for img, tie in ((np.array([[10], [25], [10], [49], [31]], np.uint8), (10, 25)),
                     (np.array([[43], [27], [67], [66], [100], [96]], np.uint8), (43, 67))):
        assert _otsu_variance(img, tie[0]) == _otsu_variance(img, tie[1])
        level = F.threshold_otsu(img)
        assert level == R.threshold_otsu(img)
        _assert_otsu_as_cv2(level, img, cv2.threshold(img, 0, 255, cv2.THRESH_OTSU)[0])
    # and the check is not vacuous: a level off the tie fails it
    img = np.array([[10, 12, 11, 200, 205, 199]], np.uint8)
    with pytest.raises(AssertionError):
        _assert_otsu_as_cv2(11.0, img, F.threshold_otsu(img))


def test_otsu_float_matches_skimage(xp, rng):
    skf = pytest.importorskip("skimage.filters")
    for dtype in (np.float32, np.float64):
        for _ in range(30):
            x = (rng.standard_normal((int(rng.integers(1, 50)), int(rng.integers(1, 50)))) * 3).astype(dtype)
            assert F.threshold_otsu(xp.asarray(x)) == skf.threshold_otsu(x) == R.threshold_otsu(x)
        x = np.full((4, 4), 0.25, dtype)
        assert F.threshold_otsu(xp.asarray(x)) == 0.25


def test_otsu_multichannel_and_views(rng):
    x = random_array(rng, (2, 31, 17, 3), np.uint8)
    h = np.bincount(x.ravel(), minlength=256)
    assert F.threshold_otsu(x) == R.threshold_otsu(x)
    assert F.threshold_otsu(x[:, ::-1, ::2]) == R.threshold_otsu(x[:, ::-1, ::2])
    assert np.array_equal(imkern._core.histogram_int(np.ascontiguousarray(x)), h)


def test_histogram_threads_and_isa(rng, isa, threads):
    for dtype in (np.uint8, np.uint16):
        x = random_array(rng, (611, 1733), dtype)
        assert np.array_equal(imkern._core.histogram_int(x), np.bincount(x.ravel(), minlength=256 if dtype == np.uint8
                                                                         else 65536))



def test_histogram_chunks_across_images(rng, isa, threads):
    cv2 = pytest.importorskip("cv2")
    # uint8 chunks of ~256 KiB of pixels: 137 rows of 1901 here, so chunks start inside an
    # image and span two of a batch; a 1-pixel image, an odd-width RGB view and a reversed view
    for shape in ((3, 157, 1901), (1, 1), (5, 300, 401, 3)):
        x = random_array(rng, shape, np.uint8)
        assert np.array_equal(imkern._core.histogram_int(x), np.bincount(x.ravel(), minlength=256))
    x = random_array(rng, (700, 1203, 3), np.uint8)
    for v in (x[::-1], x[:, ::-2], x[1:-1, 3:, 1:]):
        assert F.threshold_otsu(v) == cv2.threshold(np.ascontiguousarray(v).reshape(v.shape[0], -1), 0, 255,
                                                    cv2.THRESH_OTSU)[0]

def test_threshold_bad_arguments():
    x = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="kind"):
        F.threshold(x, 1, 2, "otsu")
    with pytest.raises(ValueError, match="kind"):
        F.threshold(x, 1, 2, 0)
    with pytest.raises(TypeError, match="thresh"):
        F.threshold(x, "1", 2)
    with pytest.raises(ValueError, match="thresh"):
        F.threshold(x, np.nan, 2)
    with pytest.raises(TypeError, match="image"):
        F.threshold(x.astype(np.int16), 1, 2)
    with pytest.raises(TypeError, match="image"):
        F.threshold_otsu(x.astype(np.int8))
    with pytest.raises(TypeError, match="image"):
        F.threshold_triangle(x.astype(np.float32))
    with pytest.raises(ValueError, match="empty"):
        F.threshold_otsu(np.zeros((0, 3), np.uint8))
    with pytest.raises(ValueError, match="image"):
        F.threshold_otsu(np.zeros(5, np.uint8))
    with pytest.raises(TypeError, match="out"):
        F.threshold(x, 1, 2, out=np.zeros((4, 4), np.uint16))


# ---- adaptive_threshold ----------------------------------------------------------------------
def _gaussian_mean_exact(img, bs, y, x):
    """The exact Gaussian-weighted mean of a 2-D uint8 image at (y, x): cv2's kernel for
    ``block_size`` (float64), replicated borders, summed in float64 (error ~1e-13)."""
    from imkern._kernels import gaussian_kernel_cv_exact

    k = np.array(gaussian_kernel_cv_exact(bs, 0.0))
    r = bs // 2
    ys = np.clip(np.arange(y - r, y + r + 1), 0, img.shape[0] - 1)
    xs = np.clip(np.arange(x - r, x + r + 1), 0, img.shape[1] - 1)
    return float(k @ img[np.ix_(ys, xs)].astype(np.float64) @ k)


def _assert_adaptive_gaussian_ties(img, got, ref, bs, c, mv, kind):
    # Equal, or an exact-mean tie: cv2 and imkern both round a float32 separable Gaussian sum to
    # uint8, in different orders of additions (the reference: a float64 sum), so where the exact
    # mean lies within their error bound of a .5 tie (2 (bs + 1) float32 ulps of 1 times 255:
    # 3.6e-4 at bs 11) two of them may round it apart (random 37x53 images at bs 11: 3 in 3,000
    # against OpenCV 5.1, 1 in 3,000 against the reference, means 1.2e-5 and less from the tie).
    # Each differing pixel must be such a tie, and the two values the compare's outcomes for the
    # two roundings of that mean.
    import math

    inv = kind == "binary_inv"
    idelta = math.floor(c) if inv else math.ceil(c)
    mvi = int(min(255, max(0, np.rint(mv))))
    bound = 2 * (bs + 1) * 2.0**-24 * 255
    for y, x in zip(*np.nonzero(got != ref)):
        m = _gaussian_mean_exact(img, bs, y, x)
        lo = math.floor(m)
        where = (img.shape, bs, c, mv, kind, (int(y), int(x)), m)
        assert abs(m - lo - 0.5) <= bound, where
        s = int(img[y, x])
        outs = {mvi if ((s - mean <= -idelta) if inv else (s - mean > -idelta)) else 0 for mean in (lo, lo + 1)}
        assert outs == {int(got[y, x]), int(ref[y, x])}, where


@pytest.mark.parametrize("method", ["mean", "gaussian"])
@pytest.mark.parametrize("kind", ["binary", "binary_inv"])
def test_adaptive_threshold_matches_opencv(xp, rng, method, kind):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    cm = cv2.ADAPTIVE_THRESH_MEAN_C if method == "mean" else cv2.ADAPTIVE_THRESH_GAUSSIAN_C
    ck = cv2.THRESH_BINARY if kind == "binary" else cv2.THRESH_BINARY_INV
    imgs = [data.camera(), data.page(), random_array(rng, (37, 53), np.uint8), random_array(rng, (1, 9), np.uint8),
            random_array(rng, (5, 1), np.uint8)]
    for img in imgs:
        for bs in (3, 5, 7, 11, 31):
            for c in (0, 2, -3.5, 7.2, 300):
                for mv in (255, 1, 127.6):
                    ref = cv2.adaptiveThreshold(img, mv, cm, ck, bs, c)
                    got = to_numpy(F.adaptive_threshold(xp.asarray(img), mv, method, bs, c, kind=kind))
                    if method == "mean":
                        assert np.array_equal(got, ref), (img.shape, bs, c, mv, int((got != ref).sum()))
                    else:
                        _assert_adaptive_gaussian_ties(img, got, ref, bs, c, mv, kind)
                    if img.size < 5000:
                        want = R.adaptive_threshold(img, mv, method, bs, c, kind=kind)
                        if method == "mean":
                            assert np.array_equal(got, want)
                        else:  # the reference sums in float64: the same ties
                            _assert_adaptive_gaussian_ties(img, got, want, bs, c, mv, kind)


def test_adaptive_gaussian_near_ties_against_opencv():
    # Crops of random images (seeds of an earlier run) where the exact Gaussian mean at one pixel
    # lies within 1.2e-5 of a .5 tie: OpenCV 5.1 (AVX-512, this machine) rounds the first two the
    # other way from imkern and the reference, imkern the third the other way from the reference
    # and OpenCV (on every ISA level). The tie check accepts each. OpenCV's order of additions
    # depends on the pixel's position in the row, so the crops keep their columns.
    cv2 = pytest.importorskip("cv2")
    a = np.array([[215, 159, 48, 131, 42, 115, 87, 54, 186, 129, 224],
                  [16, 55, 102, 98, 170, 173, 221, 99, 224, 172, 165],
                  [53, 46, 128, 56, 104, 108, 235, 185, 106, 148, 25],
                  [36, 158, 117, 179, 65, 69, 226, 155, 12, 100, 137],
                  [6, 147, 6, 155, 248, 41, 216, 241, 216, 17, 16],
                  [139, 97, 55, 178, 101, 136, 222, 57, 79, 163, 121]], np.uint8)
    b = np.array([[174, 77, 125, 131, 186, 128, 229, 165, 219, 31, 157],
                  [169, 116, 77, 168, 127, 131, 212, 157, 231, 62, 48],
                  [72, 67, 169, 10, 90, 240, 22, 31, 211, 98, 53],
                  [163, 255, 86, 10, 169, 9, 190, 75, 171, 5, 36],
                  [202, 213, 39, 10, 59, 121, 178, 213, 21, 83, 112],
                  [208, 252, 131, 144, 121, 119, 212, 126, 35, 196, 215],
                  [242, 104, 208, 184, 206, 31, 183, 109, 96, 84, 15],
                  [89, 204, 219, 149, 95, 111, 178, 144, 46, 31, 83],
                  [106, 239, 172, 211, 253, 1, 221, 23, 139, 106, 148],
                  [254, 169, 154, 241, 32, 141, 6, 176, 111, 75, 217],
                  [57, 27, 81, 203, 253, 87, 195, 102, 83, 123, 154]], np.uint8)
    d = np.array([[10, 0, 138, 133, 128, 51, 76, 58, 90, 186, 125],
                  [130, 190, 75, 141, 177, 228, 227, 243, 11, 183, 192],
                  [4, 30, 56, 207, 206, 191, 248, 49, 222, 193, 113],
                  [41, 66, 176, 15, 70, 108, 132, 173, 248, 179, 199],
                  [105, 224, 88, 111, 32, 147, 129, 43, 68, 181, 18],
                  [39, 151, 199, 29, 143, 140, 43, 161, 45, 118, 127],
                  [144, 74, 22, 225, 160, 201, 149, 208, 237, 227, 95],
                  [45, 3, 17, 205, 60, 216, 208, 131, 167, 247, 17],
                  [87, 9, 31, 208, 252, 249, 130, 220, 47, 141, 142],
                  [160, 3, 27, 193, 127, 249, 37, 174, 132, 246, 107],
                  [250, 164, 122, 166, 126, 23, 74, 72, 125, 240, 81]], np.uint8)
    for img, c, (y, x) in ((a, 0.0, (0, 5)), (b, 7.2, (5, 5)), (d, -3.5, (5, 5))):
        m = _gaussian_mean_exact(img, 11, y, x)
        assert abs(m - np.floor(m) - 0.5) < 1.2e-5, m
        got = F.adaptive_threshold(img, 255, "gaussian", 11, c)
        ref = cv2.adaptiveThreshold(img, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 11, c)
        want = R.adaptive_threshold(img, 255, "gaussian", 11, c)
        rest = np.ones(img.shape, bool)
        rest[y, x] = False  # elsewhere the three agree
        assert np.array_equal(got[rest], ref[rest]) and np.array_equal(got[rest], want[rest])
        _assert_adaptive_gaussian_ties(img, got, ref, 11, c, 255, "binary")
        _assert_adaptive_gaussian_ties(img, got, want, 11, c, 255, "binary")
        # and the check is not vacuous: a pixel off the tie, or a value neither rounding gives, fails it
        bad = got.copy()
        bad[y, x + 1] = 255 - got[y, x + 1]
        with pytest.raises(AssertionError):
            _assert_adaptive_gaussian_ties(img, got, bad, 11, c, 255, "binary")
        bad = got.copy()
        bad[y, x] = 7
        with pytest.raises(AssertionError):
            _assert_adaptive_gaussian_ties(img, got, bad, 11, c, 255, "binary")


def test_adaptive_threshold_views_out_channels(rng):
    x = random_array(rng, (2, 23, 29, 3), np.uint8)
    got = F.adaptive_threshold(x, 200, "gaussian", 5, 1.0)
    assert got.shape == x.shape and got.dtype == np.uint8
    assert np.array_equal(got, R.adaptive_threshold(x, 200, "gaussian", 5, 1.0))
    v = x[0, ::-1, ::2]
    before = v.copy()
    assert np.array_equal(F.adaptive_threshold(v, 255, "mean", 7, 2), R.adaptive_threshold(v, 255, "mean", 7, 2))
    assert np.array_equal(v, before)
    out = np.empty(x.shape, np.uint8)
    assert F.adaptive_threshold(x, 255, "mean", 3, 0, out=out) is out
    assert np.array_equal(out, R.adaptive_threshold(x, 255, "mean", 3, 0))


def test_adaptive_threshold_bad_arguments():
    x = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="block_size"):
        F.adaptive_threshold(x, 255, "mean", 4, 0)
    with pytest.raises(ValueError, match="block_size"):
        F.adaptive_threshold(x, 255, "mean", 1, 0)
    with pytest.raises(ValueError, match="method"):
        F.adaptive_threshold(x, 255, "median", 3, 0)
    with pytest.raises(ValueError, match="kind"):
        F.adaptive_threshold(x, 255, "mean", 3, 0, kind="trunc")
    with pytest.raises(TypeError, match="image"):
        F.adaptive_threshold(x.astype(np.float32), 255, "mean", 3, 0)
    with pytest.raises(TypeError, match="block_size"):
        F.adaptive_threshold(x, 255, "mean", 3.0, 0)


def test_threshold_streamed_rows(rng, isa, threads):
    """The non-temporal stores of large outputs (forced by stream_bytes=0; rows of >= 1 KiB):
    outputs aligned, offset by one element (an element-wise head) and by one byte (no vector
    streams), in place, views."""
    import imkern

    imkern.set_cpu_params(stream_bytes=0)
    try:
        for dtype in DTYPES:
            for shape in ((3, 4099), (2, 1501, 3), (2, 3, 1400, 3)):
                base = random_array(rng, shape, dtype)
                t = float(np.median(base.astype(np.float64)))
                for v in (base, base[::-1], base[..., 1:, :] if base.ndim > 2 else base[:, 1:]):
                    for kind in KINDS:
                        exp = R.threshold(v, t, 3, kind)
                        assert np.array_equal(F.threshold(v, t, 3, kind), exp, equal_nan=True), (shape, kind)
                        for off in (np.dtype(dtype).itemsize, 1):
                            buf = np.empty(v.nbytes + 64 + off, np.uint8)
                            a = (-buf.ctypes.data) % 64 + off
                            out = buf[a:a + v.nbytes].view(dtype).reshape(v.shape)
                            assert F.threshold(v, t, 3, kind, out=out) is out
                            assert np.array_equal(out, exp, equal_nan=True), (shape, kind, off)
                        inplace = v.copy()
                        F.threshold(inplace, t, 3, kind, out=inplace)
                        assert np.array_equal(inplace, exp, equal_nan=True), (shape, kind, "in place")
    finally:
        imkern.reset_cpu_params()


def test_adaptive_compare_every_pair(isa, threads):
    """The compare kernel against its integer definition: every (pixel, mean) pair, every
    offset adaptive_threshold passes (-256..256) and a few beyond (to the int limits), both
    kinds, several maxvals; row widths that
    leave vector tails (201, 253) or none (256), 1-pixel rows, and strided / reversed views."""
    v = np.arange(256, dtype=np.uint8)
    src = np.repeat(v, 256).reshape(256, 256)  # src[i, j] = i
    mean = np.ascontiguousarray(src.T)  # mean[i, j] = j
    d = src.astype(np.int32) - mean
    views = [np.s_[:, :], np.s_[:, 3:], np.s_[::-1, :201], np.s_[:, 7:8]]
    for idelta in [*range(-256, 257), -1000, 999, -(2**31), 2**31 - 1]:
        for inv, mv in ((False, 255), (True, 255), (False, 1), (True, 77)):
            exp = np.where((d <= -idelta) if inv else (d > -idelta), mv, 0).astype(np.uint8)
            for sl in views:
                out = np.full(exp[sl].shape, 0xA5, np.uint8)
                imkern._core.adaptive_compare(src[sl], mean[sl], out, idelta, mv, inv)
                assert np.array_equal(out, exp[sl]), (idelta, inv, mv, sl)


def test_adaptive_compare_in_place(rng, isa):
    """The compare may write over its mean (or its image): each element is read before the
    output element at the same index is written (adaptive_threshold can then build the mean
    in its output buffer, with no temporary)."""
    x = random_array(rng, (37, 301), np.uint8)
    mean = random_array(rng, (37, 301), np.uint8)
    for idelta, inv in ((3, False), (-5, True), (0, False), (256, True)):
        exp = np.empty_like(x)
        imkern._core.adaptive_compare(x, mean, exp, idelta, 200, inv)
        m = mean.copy()
        imkern._core.adaptive_compare(x, m, m, idelta, 200, inv)
        assert np.array_equal(m, exp)
        s = x.copy()
        imkern._core.adaptive_compare(s, mean, s, idelta, 200, inv)
        assert np.array_equal(s, exp)


def test_threshold_aligned_body_heads_and_tails(rng, isa):
    """The vector stores start where the output is vector-aligned: outputs at every element
    offset in a 64-byte line, sources at other offsets, lengths around the vector widths and
    over the 64 KiB chunks of contiguous images, in place (no element thresholded twice) and
    into a separate buffer; levels below 0 (the all-pass kinds) as well."""
    for dtype in DTYPES:
        it = np.dtype(dtype).itemsize
        for n in (1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130, 1000, 70001):
            x = random_array(rng, (1, n), dtype)
            t = float(np.median(x.astype(np.float64)))
            for off in range(0, 64, it * 5 if n > 1000 else it):
                buf = np.empty(n * it + 192, np.uint8)
                base = (-buf.ctypes.data) % 64
                out = buf[base + off : base + off + n * it].view(dtype).reshape(1, n)
                sbuf = np.empty(n * it + 192, np.uint8)
                sb = (-sbuf.ctypes.data) % 64 + (off * 5 + it) % 64 // it * it
                src = sbuf[sb : sb + n * it].view(dtype).reshape(1, n)
                for level in (t, -1.0):
                    for kind in KINDS:
                        exp = R.threshold(x, level, 3, kind)
                        src[...] = x
                        out[...] = 0
                        assert F.threshold(src, level, 3, kind, out=out) is out
                        assert np.array_equal(out, exp, equal_nan=True), (dtype, n, off, kind, level)
                        out[...] = x
                        imkern._core.threshold(out, out, _CV_KIND[kind], level, 3.0)
                        assert np.array_equal(out, exp, equal_nan=True), (dtype, n, off, kind, level, "in place")
