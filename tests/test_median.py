"""imkern.filters.median against the NumPy reference, OpenCV and SciPy, on the CPU and (where a
GPU is present) the CUDA kernels."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import image_views, random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

BORDERS = ["replicate", "reflect101", "reflect", "constant", "wrap"]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(1, 1), (1, 9), (7, 1), (2, 3), (17, 13), (33, 70), (9, 11, 3), (6, 8, 4), (2, 7, 9, 3), (3, 5, 6, 1)]
# sizes on every path: networks (3, 5, 7), histograms / selection (9 and up)
SIZES_INT = [1, 3, 5, 7, 9, 11, 15, 25]
SIZES_FLOAT = [1, 3, 5, 7, 9, 15]
SCIPY_MODE = {"replicate": "nearest", "reflect101": "mirror", "reflect": "reflect", "constant": "constant",
              "wrap": "grid-wrap"}


def _sizes(dtype):
    return SIZES_INT if np.dtype(dtype).kind == "u" else SIZES_FLOAT


def _data(rng, shape, dtype, few_values=False):
    if few_values:  # many ties
        return random_array(rng, shape, dtype, 0, 5) if np.dtype(dtype).kind == "u" else \
            rng.integers(0, 5, size=shape).astype(dtype)
    return random_array(rng, shape, dtype)


# ---- against the reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_matches_reference(xp, rng, dtype, shape, border):
    for few in (False, True):
        x = _data(rng, shape, dtype, few)
        for k in _sizes(dtype):
            got = F.median(xp.asarray(x), k, border=border, cval=3.0)
            assert type(got) is type(xp.asarray(x)) and got.dtype == x.dtype and got.shape == x.shape
            np.testing.assert_array_equal(to_numpy(got), R.median(x, k, border=border, cval=3.0),
                                          err_msg=f"k={k} few={few}")


def test_histogram_path_large(xp, rng):
    # wide enough for several column strips, tall enough for several row chunks; OpenCV as the
    # oracle for uint8, and for uint16 through the monotone map v -> 257 v (median commutes
    # with it), which exercises every fine bin
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (150, 1100), np.uint8)
    for k in (9, 13, 25, 41):
        expect = cv2.medianBlur(x, k)
        np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(x), k)), expect, err_msg=f"k={k}")
        x16 = x.astype(np.uint16) * 257
        np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(x16), k)), expect.astype(np.uint16) * 257,
                                      err_msg=f"uint16 k={k}")
    y = random_array(rng, (40, 130), np.uint16)
    np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(y), 25)), R.median(y, 25))


def test_histogram_extremes(xp, rng):
    for dtype in (np.uint8, np.uint16):
        hi = np.iinfo(dtype).max
        x = rng.choice(np.array([0, 1, hi - 1, hi], dtype), size=(40, 37, 2))
        for k in (3, 9, 17):
            np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(x), k, border="constant", cval=hi)),
                                          R.median(x, k, border="constant", cval=hi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf(xp, rng, dtype):
    x = random_array(rng, (23, 29), dtype)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[rng.random(x.shape) < 0.1] = np.inf
    x[rng.random(x.shape) < 0.1] = -np.inf
    x[rng.random(x.shape) < 0.1] = -0.0
    for k in (3, 5, 7, 9):
        got = to_numpy(F.median(xp.asarray(x), k))
        ref = R.median(x, k)
        np.testing.assert_array_equal(got, ref, err_msg=f"k={k}")  # NaN positions equal too
    allnan = np.full((5, 6), np.nan, dtype)
    assert np.isnan(to_numpy(F.median(xp.asarray(allnan), 3))).all()


def test_large_float_size(rng):
    x = random_array(rng, (20, 24, 2), np.float32)
    np.testing.assert_array_equal(F.median(x, 21, border="reflect"), R.median(x, 21, border="reflect"))


# ---- against the peers --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [3, 5, 7, 9, 11, 15, 21, 25])
@pytest.mark.parametrize("shape", [(37, 53), (64, 81, 3), (19, 23, 4), (300, 401)])
def test_matches_opencv_uint8(xp, rng, k, shape):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, shape, np.uint8)
    np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(x), k)), cv2.medianBlur(x, k))


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize("k", [3, 5])
def test_matches_opencv_uint16_float32(xp, rng, dtype, k):
    cv2 = pytest.importorskip("cv2")  # cv2.medianBlur takes these dtypes for ksize 3 and 5 only
    x = random_array(rng, (45, 67, 3), dtype)
    np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(x), k)), cv2.medianBlur(x, k))


@pytest.mark.parametrize("name", ["camera", "coins", "astronaut"])
def test_photographs_match_opencv(xp, name):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = np.ascontiguousarray(getattr(data, name)())
    for k in (3, 5, 7, 9, 15, 25):
        np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(img), k)), cv2.medianBlur(img, k),
                                      err_msg=f"{name} k={k}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_matches_scipy(xp, rng, dtype, border):
    ndi = pytest.importorskip("scipy.ndimage")
    x = random_array(rng, (21, 26, 2), dtype)
    for k in _sizes(dtype)[1:5]:
        ref = ndi.median_filter(x, size=(k, k, 1), mode=SCIPY_MODE[border], cval=4.0)
        np.testing.assert_array_equal(to_numpy(F.median(xp.asarray(x), k, border=border, cval=4.0)), ref,
                                      err_msg=f"k={k}")


# ---- layouts, views, out= -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_negative_views(rng, dtype):
    base = random_array(rng, (31, 36, 3), dtype)
    for name, v in image_views(base):
        before = v.copy()
        for k in (3, 9):
            np.testing.assert_array_equal(F.median(v, k), R.median(np.ascontiguousarray(v), k), err_msg=name)
        np.testing.assert_array_equal(v, before)


def test_batch_equals_per_image(rng):
    x = random_array(rng, (3, 17, 19, 2), np.uint8)
    for k in (5, 11):
        got = F.median(x, k)
        for i in range(3):
            np.testing.assert_array_equal(got[i], F.median(x[i], k))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out(xp, rng, dtype):
    x = xp.asarray(random_array(rng, (19, 22, 3), dtype))
    expect = to_numpy(F.median(x, 5))
    out = xp.asarray(random_array(rng, x.shape, dtype))  # poisoned
    assert F.median(x, 5, out=out) is out
    np.testing.assert_array_equal(to_numpy(out), expect)
    big = xp.zeros((19, 44, 3), dtype)
    view = big[:, ::2]  # a strided out is written through a temporary
    assert F.median(x, 5, out=view) is view
    np.testing.assert_array_equal(to_numpy(view), expect)
    y = x.copy()
    F.median(y, 5, out=y)  # in place (the driver copies through a temporary)
    np.testing.assert_array_equal(to_numpy(y), expect)


def test_zero_size():
    for shape in [(0, 5), (4, 0), (0, 3, 3, 1)]:
        x = np.zeros(shape, np.uint8)
        assert F.median(x, 3).shape == shape


def test_bad_arguments():
    x = np.zeros((8, 8), np.uint8)
    for size in (0, 2, 4, -3, 257):
        with pytest.raises(ValueError, match="size"):
            F.median(x, size)
    for size in (3.0, "3", True, (3, 3)):
        with pytest.raises((TypeError, ValueError), match="size"):
            F.median(x, size)
    with pytest.raises(ValueError, match="border"):
        F.median(x, 3, border="nope")
    with pytest.raises(TypeError, match="image"):
        F.median(x.astype(np.int32), 3)
    with pytest.raises(TypeError, match="image"):
        F.median(x.astype(np.float16), 3)
    with pytest.raises(TypeError, match="image"):
        F.median(x.tolist(), 3)
    with pytest.raises(ValueError, match="image"):
        F.median(np.zeros(5, np.uint8), 3)
    with pytest.raises(TypeError, match="out"):
        F.median(x, 3, out=np.zeros((8, 8), np.uint16))
    with pytest.raises(ValueError, match="out"):
        F.median(x, 3, out=np.zeros((8, 9), np.uint8))
    with pytest.raises(TypeError, match="cval"):
        F.median(x, 3, cval="a")


# ---- ISA levels and threads ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_level(rng, isa, dtype):
    assert imkern.get_cpu_isa() == isa
    x = random_array(rng, (29, 75, 3), dtype)
    for k in (3, 5, 7, 9, 13):
        np.testing.assert_array_equal(F.median(x, k, border="reflect101"), R.median(x, k, border="reflect101"),
                                      err_msg=f"{isa} k={k}")


def test_threads_do_not_change_results(rng, threads):
    x = random_array(rng, (300, 257, 2), np.uint16)
    for k in (5, 11):
        np.testing.assert_array_equal(F.median(x, k), R.median(x, k))


# ---- the 3 x 3 path (sorted rows, groups of 4 output rows, padded edge spans) ------------------
def _keys(x):
    """The kernels' order as integers: -0.0 below +0.0, every NaN the canonical quiet NaN, last."""
    it = np.int32 if x.dtype == np.float32 else np.int64
    b = np.ascontiguousarray(x).view(it).copy()
    b[np.isnan(x)] = np.array(np.nan, x.dtype).view(it)
    return b ^ ((b >> (8 * b.itemsize - 1)) & np.iinfo(it).max)


def _from_keys(k, dtype):
    return (k ^ ((k >> (8 * k.itemsize - 1)) & np.iinfo(k.dtype).max)).view(dtype)


def _median3_exact(x, border, cval):
    """R.median for size 3, bit for bit for floats (signed zeros and NaN payloads included)."""
    if x.dtype.kind == "u":
        return R.median(x, 3, border=border, cval=cval)
    kc = int(_keys(np.array([cval], x.dtype))[0])
    return _from_keys(R.median(_keys(x), 3, border=border, cval=kc), x.dtype)


def _assert_bits(got, ref, msg):
    u = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[ref.dtype.itemsize]
    np.testing.assert_array_equal(np.ascontiguousarray(got).view(u), np.ascontiguousarray(ref).view(u), err_msg=msg)


def _special(rng, x):
    if x.dtype.kind == "f":
        for v, p in ((np.nan, 0.15), (-np.nan, 0.05), (np.inf, 0.05), (-np.inf, 0.05), (0.0, 0.05), (-0.0, 0.05)):
            x[rng.random(x.shape) < p] = v
    return x


# widths (pixels) around every vector length (8 to 64 lanes) for 1 to 4 channels, heights around
# the groups of 4 (and 2, 1) output rows
M3_WIDTHS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 22, 23, 31, 33, 34, 63, 65, 66, 67, 129]
M3_HEIGHTS = [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_size3_widths_channels_borders(rng, isa, dtype, channels):
    for i, w in enumerate(M3_WIDTHS):
        h = M3_HEIGHTS[i % len(M3_HEIGHTS)]
        x = _special(rng, random_array(rng, (h, w, channels), dtype))
        for border in BORDERS:
            ref = _median3_exact(x, border, 0.25 if dtype in (np.float32, np.float64) else 7.0)
            got = F.median(x, 3, border=border, cval=0.25 if dtype in (np.float32, np.float64) else 7.0)
            _assert_bits(got, ref, f"{isa} {x.shape} {border}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_size3_tiny_images(rng, isa, dtype):
    for shape in [(1, 1), (1, 2), (2, 1), (2, 2), (1, 1, 3), (2, 2, 4), (1, 2, 2), (2, 1, 3), (3, 1, 1), (1, 3, 1)]:
        x = _special(rng, random_array(rng, shape, dtype))
        for border in BORDERS:
            _assert_bits(F.median(x, 3, border=border, cval=2.0), _median3_exact(x, border, 2.0), f"{shape} {border}")


def _views_batches_threads(rng, dtype, size, exact):
    """Views, a batch of images of 13 rows (row groups / pairs split at image ends: no pair
    crosses an image) and a tall image of several row chunks, bit for bit."""
    base = _special(rng, random_array(rng, (61, 83, 3), dtype))
    for name, v in image_views(base):
        _assert_bits(F.median(v, size, border="reflect101"), exact(np.ascontiguousarray(v), "reflect101", 0.0), name)
    batch = _special(rng, random_array(rng, (3, 13, 70, 2), dtype))
    _assert_bits(F.median(batch, size, border="wrap"), exact(batch, "wrap", 0.0), "batch")
    tall = _special(rng, random_array(rng, (203, 37, 1), dtype))
    _assert_bits(F.median(tall, size), exact(tall, "replicate", 0.0), "tall")


@pytest.mark.parametrize("dtype", DTYPES)
def test_size3_views_batches_threads(rng, threads, dtype):
    _views_batches_threads(rng, dtype, 3, _median3_exact)


def test_size3_many_channels(rng, isa):
    # more channels than vector lanes: every vector reads through the padded spans
    for dtype in DTYPES:
        x = _special(rng, random_array(rng, (6, 5, 70), dtype))
        for border in ("reflect", "constant"):
            _assert_bits(F.median(x, 3, border=border, cval=1.0), _median3_exact(x, border, 1.0), f"{dtype} {border}")


# ---- the 5 x 5 path (pairs of output rows sharing 4 source rows; a last odd row alone) ----------
def _median5_exact(x, border, cval):
    """R.median for size 5, bit for bit for floats (signed zeros and NaN payloads included)."""
    if x.dtype.kind == "u":
        return R.median(x, 5, border=border, cval=cval)
    kc = int(_keys(np.array([cval], x.dtype))[0])
    return _from_keys(R.median(_keys(x), 5, border=border, cval=kc), x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_size5_pairs_widths_channels_borders(rng, isa, dtype, channels):
    # heights 1 .. 11: pairs only, pairs and a last single row; widths around the vector lengths
    for i, w in enumerate(M3_WIDTHS):
        h = 1 + i % 11
        for few in (False, True):
            x = _special(rng, _data(rng, (h, w, channels), dtype, few))
            for border in BORDERS:
                cval = 0.25 if dtype in (np.float32, np.float64) else 7.0
                _assert_bits(F.median(x, 5, border=border, cval=cval), _median5_exact(x, border, cval),
                             f"{isa} {x.shape} {border} few={few}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_size5_views_batches_threads(rng, threads, dtype):
    _views_batches_threads(rng, dtype, 5, _median5_exact)
    gray = _data(rng, (123, 517), dtype, few_values=True)
    _assert_bits(F.median(gray, 5, border="constant", cval=3.0), _median5_exact(gray, "constant", 3.0), "gray")
