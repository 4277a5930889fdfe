"""imkern.filters on the CPU against the NumPy reference, SciPy and OpenCV."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, image_views, random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(1, 1), (1, 7), (6, 1), (3, 257), (17, 13), (9, 11, 3), (5, 8, 4), (2, 7, 9, 3), (3, 5, 6, 1)]


def _scale(x, k):
    return float(np.abs(np.asarray(k, np.float64)).sum() * max(1.0, float(np.abs(x.astype(np.float64)).max())))


def _kernel(rng, kh, kw):
    return rng.standard_normal((kh, kw))


# ---- against the reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_correlate_matches_reference(rng, dtype, shape, border):
    x = random_array(rng, shape, dtype)
    kh, kw = rng.integers(1, 8, size=2)
    k = _kernel(rng, kh, kw)
    cval = float(rng.uniform(0, 100))
    if np.dtype(dtype).kind == "u":
        k = np.abs(k) / np.abs(k).sum()  # keep integer results mostly in range
    got = F.correlate(x, k, border=border, cval=cval)
    assert got.dtype == x.dtype and got.shape == x.shape and type(got) is np.ndarray
    assert_close(got, R.correlate(x, k, border=border, cval=cval).astype(np.float64), dtype, scale=_scale(x, k) + cval)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_sep_filter_matches_reference(rng, dtype, shape, border):
    x = random_array(rng, shape, dtype)
    ky = rng.standard_normal(rng.integers(1, 10))
    kx = rng.standard_normal(rng.integers(1, 10))
    got = F.sep_filter(x, ky, kx, border=border, cval=-2.5)
    scale = _scale(x, np.outer(ky, kx)) + 2.5
    assert_close(got, R.sep_filter(x, ky, kx, border=border, cval=-2.5), dtype, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("normalize", [True, False])
def test_box_matches_reference(rng, dtype, shape, border, normalize):
    x = random_array(rng, shape, dtype)
    size = tuple(int(s) for s in rng.integers(1, 24, size=2))  # > 16 wide uses the prefix-sum path
    got = F.box(x, size, normalize=normalize, border=border, cval=7.0)
    ref = R.box(x, size, normalize=normalize, border=border, cval=7.0)
    area = size[0] * size[1]
    assert_close(got, ref, dtype, scale=(1.0 if normalize else area) * (float(np.abs(x.astype(float)).max()) + 7))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_gaussian_matches_reference(rng, dtype, border):
    x = random_array(rng, (23, 31, 3), dtype)
    for kwargs in ({"sigma": 1.0, "ksize": (5, 5)}, {"sigma": (0.7, 2.3)}, {"sigma": 0, "ksize": (3, 7)},
                   {"sigma": 5.0, "ksize": 31}, {"sigma": 1.5, "truncate": 2.0}):
        got = F.gaussian(x, border=border, **kwargs)
        assert_close(got, R.gaussian(x, border=border, **kwargs), dtype,
                     scale=float(np.abs(x.astype(float)).max()), err_msg=str(kwargs))


def test_kernel_larger_than_image(rng):
    for border in BORDERS:
        for shape in [(1, 1), (2, 3), (3, 2, 2)]:
            x = random_array(rng, shape, np.float64)
            k = rng.standard_normal((9, 12))
            assert_close(F.correlate(x, k, border=border, cval=1.5), R.correlate(x, k, border=border, cval=1.5),
                         np.float64, scale=_scale(x, k) + 2)
            assert_close(F.box(x, (31, 17), border=border), R.box(x, (31, 17), border=border), np.float64, scale=2)


def test_big_kernels(rng):
    x = random_array(rng, (40, 45, 2), np.float32)
    k = rng.standard_normal((31, 31))
    assert_close(F.correlate(x, k), R.correlate(x, k), np.float32, scale=_scale(x, k))
    assert_close(F.convolve(x, k[:, :30]), R.convolve(x, k[:, :30]), np.float32, scale=_scale(x, k))
    assert_close(F.gaussian(x, 5.0, ksize=31), R.gaussian(x, 5.0, ksize=31), np.float32, scale=1)


@pytest.mark.parametrize("kshape", [(3, 3), (4, 4), (2, 5), (1, 6)])
def test_convolve_even_and_odd(rng, kshape):
    x = random_array(rng, (12, 10), np.float64)
    k = rng.standard_normal(kshape)
    assert_close(F.convolve(x, k), R.convolve(x, k), np.float64, scale=_scale(x, k))


# ---- layouts, views, out= -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_negative_views(rng, dtype):
    base = random_array(rng, (21, 26, 3), dtype)
    k = np.abs(rng.standard_normal((3, 4)))
    k /= k.sum()
    for name, v in image_views(base):
        before = v.copy()
        expect = R.correlate(np.ascontiguousarray(v), k)
        assert_close(F.correlate(v, k), expect, dtype, scale=_scale(v, k), err_msg=name)
        assert_close(F.gaussian(v, 1.2), R.gaussian(np.ascontiguousarray(v), 1.2), dtype, scale=2, err_msg=name)
        assert_close(F.box(v, (3, 5)), R.box(np.ascontiguousarray(v), (3, 5)), dtype, scale=2, err_msg=name)
        np.testing.assert_array_equal(v, before)  # input unchanged


def test_same_result_for_equivalent_layouts(rng):
    x = random_array(rng, (15, 17, 3), np.float32)
    k = rng.standard_normal((5, 3))
    a = F.correlate(x, k)
    np.testing.assert_array_equal(F.correlate(np.asfortranarray(x), k), a)
    np.testing.assert_array_equal(F.correlate(x[::-1].copy()[::-1], k), a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_equals_per_image(rng, dtype):
    x = random_array(rng, (3, 13, 11, 2), dtype)
    k = np.abs(rng.standard_normal((3, 5)))
    k /= k.sum()
    batch = F.correlate(x, k, border="wrap")
    for i in range(3):
        np.testing.assert_array_equal(batch[i], F.correlate(x[i], k, border="wrap"))


def test_channels_independent(rng):
    x = random_array(rng, (9, 10, 4), np.float64)
    k = rng.standard_normal((3, 3))
    full = F.correlate(x, k)
    for c in range(4):
        np.testing.assert_allclose(full[..., c], F.correlate(np.ascontiguousarray(x[..., c]), k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out(rng, dtype):
    x = random_array(rng, (11, 12, 3), dtype)
    k = np.full((3, 3), 1 / 9)
    expect = F.correlate(x, k)
    out = np.full_like(x, 17)  # poisoned
    r = F.correlate(x, k, out=out)
    assert r is out
    np.testing.assert_array_equal(out, expect)
    # an out= the kernels cannot write directly (strided view) still receives the result
    big = np.zeros((11, 24, 3), dtype)
    view = big[:, ::2]
    assert F.correlate(x, k, out=view) is view
    np.testing.assert_array_equal(view, expect)
    assert (big[:, 1::2] == 0).all()
    # out aliasing the input: the result is as if computed out of place
    y = x.copy()
    F.correlate(y, k, out=y)
    np.testing.assert_array_equal(y, expect)
    for fn in (lambda o: F.box(x, 3, out=o), lambda o: F.gaussian(x, 1.0, out=o),
               lambda o: F.sep_filter(x, [1, 2], [3], out=o), lambda o: F.convolve(x, k, out=o)):
        o = np.full_like(x, 3)
        assert fn(o) is o
        np.testing.assert_array_equal(o, fn(None))


def test_zero_size(rng):
    for shape in [(0, 5), (4, 0), (0, 3, 3), (0, 4, 4, 3), (2, 0, 4, 1)]:
        x = np.zeros(shape, np.float32)
        for r in (F.correlate(x, np.ones((3, 3))), F.box(x, 3), F.gaussian(x, 1.0), F.sep_filter(x, [1], [1])):
            assert r.shape == shape and r.dtype == np.float32


# ---- ISA levels and threads ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_level(rng, isa, dtype):
    assert imkern.get_cpu_isa() == isa
    x = random_array(rng, (2, 19, 37, 3), dtype)
    k = np.abs(rng.standard_normal((5, 4)))
    k /= k.sum()
    ky, kx = np.abs(rng.standard_normal(7)), np.abs(rng.standard_normal(3))
    ky /= ky.sum()
    kx /= kx.sum()
    for border in BORDERS:
        assert_close(F.correlate(x, k, border=border), R.correlate(x, k, border=border), dtype, scale=_scale(x, k))
        assert_close(F.sep_filter(x, ky, kx, border=border), R.sep_filter(x, ky, kx, border=border), dtype,
                     scale=_scale(x, k))
        assert_close(F.box(x, (4, 19), border=border), R.box(x, (4, 19), border=border), dtype, scale=_scale(x, k))


def test_isa_levels_agree(rng):
    x = random_array(rng, (31, 45, 3), np.uint8)
    results = []
    before = imkern.get_cpu_isa()
    try:
        for level in imkern.info()["cpu_isa_available"]:
            imkern.set_cpu_isa(level)
            results.append(F.gaussian(x, 1.0, ksize=(5, 5)).astype(int))
    finally:
        imkern.set_cpu_isa(before)
    for r in results[1:]:
        assert np.abs(r - results[0]).max() <= 1


def test_threads_do_not_change_results(rng):
    x = random_array(rng, (3, 301, 97, 3), np.float32)
    k = rng.standard_normal((5, 5))
    before = imkern.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3, 8):
            imkern.set_num_threads(n)
            assert imkern.get_num_threads() == n
            outs.append((F.correlate(x, k), F.gaussian(x, 2.0), F.box(x, 7)))
    finally:
        imkern.set_num_threads(before)
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("c", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stream", [False, True])
def test_correlate_3x3_float32_direct(rng, isa, c, stream):
    """float32 3x3 on rows at least 4 * ceil(32 / c) + 32 pixels and 1024 elements wide: the
    rows whose three source rows are inside the image are filtered straight from the source, the columns at
    each end from a padded strip split at an output line. Against the reference at every
    border, image height (1, 2, 3: border rows only) and alignment of the input and `out`,
    with and without streaming stores, at 1 and 3 threads; and bit for bit against the
    padded-ring path (a crop too narrow for the direct path) on the interior columns."""
    w = max(4 * (-(-32 // c)) + 32, -(-1024 // c)) + 37
    before = imkern.get_num_threads()
    try:
        imkern.set_cpu_params(stream_bytes=0 if stream else None)
        for h in (1, 2, 3, 9):
            base = random_array(rng, (2, h, w + 3, c), np.float32)
            k = rng.standard_normal((3, 3)).astype(np.float32)
            for x in (base[:, :, 1:-2], base[:, ::-1, 3:]):
                for border in BORDERS:
                    outs = []
                    for n, off in ((1, 0), (3, 1), (3, 3)):
                        imkern.set_num_threads(n)
                        o = np.full(x.size + off, np.nan, np.float32)[off:].reshape(x.shape)
                        F.correlate(x, k, border=border, cval=-0.75, out=o)
                        outs.append(o)
                    exp = R.correlate(x, k, border=border, cval=-0.75)
                    assert_close(outs[0], exp, np.float32, scale=_scale(x, k) + 0.75)
                    for o in outs[1:]:
                        np.testing.assert_array_equal(o, outs[0])
                    narrow = F.correlate(x[:, :, 20:70], k, border=border, cval=-0.75)  # the ring path
                    np.testing.assert_array_equal(narrow[:, :, 1:-1], outs[0][:, :, 21:69])
    finally:
        imkern.set_num_threads(before)
        imkern.set_cpu_params(stream_bytes=None)


def _streaming_shape(c, itemsize):
    """An image shape whose input + output exceed the streaming threshold (the L3 this process
    gets; the streaming-store path), or None when that would be too large for a quick test."""
    need = imkern.get_cpu_params()["stream_bytes"] // 2 + (1 << 20)
    if need > (96 << 20):
        return None
    w = 1037  # odd width: row starts at every alignment
    return (-(-need // (w * c * itemsize)), w, c)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_large_output_streaming_stores(rng, dtype):
    """Outputs too large for the caches are written with non-temporal stores from the first
    aligned element of each row on: check rows at the top, bottom and middle against the
    reference (computed on bands), and that the result does not depend on the alignment of
    `out` (a view starting 1 element in)."""
    shape = _streaming_shape(3, np.dtype(dtype).itemsize)
    if shape is None:
        pytest.skip("the L3 cache is too large for a quick streaming test")
    x = random_array(rng, shape, dtype)
    h = shape[0]
    for ksize, sigma in (((5, 5), 1.0), ((3, 7), 1.5)):
        got = F.gaussian(x, sigma, ksize=ksize, border="reflect")
        ry = ksize[0] // 2
        # top and bottom bands touch the real border; the middle band drops its halo rows
        assert_close(got[:20], R.gaussian(x[: 20 + ry], sigma, ksize=ksize, border="reflect")[:20], dtype)
        assert_close(got[-20:], R.gaussian(x[-20 - ry:], sigma, ksize=ksize, border="reflect")[-20:], dtype)
        mid = h // 2
        band = R.gaussian(x[mid - 20 - ry: mid + 20 + ry], sigma, ksize=ksize, border="reflect")
        assert_close(got[mid - 20: mid + 20], band[ry: ry + 40], dtype)
        buf = np.empty((shape[0], shape[1] * shape[2] + 1), dtype)
        shifted = buf[:, 1:].reshape(shape)
        F.gaussian(x, sigma, ksize=ksize, border="reflect", out=shifted)
        np.testing.assert_array_equal(shifted, got)
        # rows on 64-byte lines: float outputs stream too
        line = 64 // np.dtype(dtype).itemsize
        wpad = -(-shape[1] * shape[2] // line) * line
        raw = np.empty(shape[0] * wpad + line, dtype)
        a0 = (-raw.ctypes.data % 64) // np.dtype(dtype).itemsize
        lined = raw[a0: a0 + shape[0] * wpad].reshape(shape[0], wpad)[:, : shape[1] * shape[2]].reshape(shape)
        assert lined.ctypes.data % 64 == 0
        F.gaussian(x, sigma, ksize=ksize, border="reflect", out=lined)
        np.testing.assert_array_equal(lined, got)
    # a non-symmetric separable pair takes the generic vertical kernel, streaming too
    ky, kx = np.array([0.1, 0.5, 0.4]), np.array([0.3, 0.3, 0.2, 0.1, 0.1])
    got = F.sep_filter(x, ky, kx)
    assert_close(got[-10:], R.sep_filter(x[-11:], ky, kx)[-10:], dtype)
    np.testing.assert_array_equal(F.sep_filter(x[:-1], ky, kx)[:-1], got[:-2])  # only the last row differs
    # correlate (3x3 register kernels and the generic one) streams the same way
    for k in (rng.standard_normal((3, 3)), rng.standard_normal((2, 4))):
        got = F.correlate(x, k)
        assert_close(got[-10:], R.correlate(x[-12:], k)[-10:], dtype, scale=_scale(x, k))
        assert_close(got[:10], R.correlate(x[:12], k)[:10], dtype, scale=_scale(x, k))
        F.correlate(x, k, out=lined)
        np.testing.assert_array_equal(lined, got)


# ---- peers --------------------------------------------------------------------------------------
_SCIPY_MODE = {"reflect101": "mirror", "reflect": "reflect", "replicate": "nearest", "constant": "constant",
               "wrap": "grid-wrap"}


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("kshape", [(3, 3), (4, 5), (1, 7), (8, 2)])
def test_against_scipy(rng, border, kshape):
    ndi = pytest.importorskip("scipy.ndimage")
    x = random_array(rng, (19, 23), np.float64)
    k = rng.standard_normal(kshape)
    m = _SCIPY_MODE[border]
    np.testing.assert_allclose(F.correlate(x, k, border=border, cval=0.5),
                               ndi.correlate(x, k, mode=m, cval=0.5), atol=1e-12)
    np.testing.assert_allclose(F.convolve(x, k, border=border, cval=0.5),
                               ndi.convolve(x, k, mode=m, cval=0.5), atol=1e-12)
    np.testing.assert_allclose(F.gaussian(x, (1.3, 0.8), border=border, cval=0.5),
                               ndi.gaussian_filter(x, (1.3, 0.8), mode=m, cval=0.5), atol=1e-12)


_CV_BORDER = {"reflect101": 4, "reflect": 2, "replicate": 1, "constant": 0, "wrap": 3}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", ["reflect101", "reflect", "replicate", "constant"])
def test_against_opencv(rng, dtype, border):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (37, 53, 3), dtype)
    b = _CV_BORDER[border]
    k = np.abs(rng.standard_normal((3, 5))).astype(np.float32)
    k /= k.sum()
    tol = {"int_atol": 1} if np.dtype(dtype).kind == "u" else {}
    # uint8: imkern runs cv2.GaussianBlur's own fixed-point algorithm (equal bit for bit)
    gtol = {"int_atol": 0} if np.dtype(dtype) == np.uint8 else tol
    scale = float(np.abs(x.astype(float)).max())
    if dtype != np.uint16:  # cv2.filter2D has no 16U path with ddepth=-1 on some builds
        assert_close(F.correlate(x, k, border=border), cv2.filter2D(x, -1, k, borderType=b), dtype, scale=scale, **tol)
    assert_close(F.gaussian(x, 1.0, ksize=(5, 5), border=border),
                 cv2.GaussianBlur(x, (5, 5), 1.0, borderType=b), dtype, scale=scale, **gtol)
    assert_close(F.gaussian(x, (2.0, 0.6), ksize=(7, 3), border=border),
                 cv2.GaussianBlur(x, (3, 7), sigmaX=0.6, sigmaY=2.0, borderType=b), dtype, scale=scale, **gtol)
    assert_close(F.gaussian(x, 0, ksize=(5, 5), border=border),
                 cv2.GaussianBlur(x, (5, 5), 0, borderType=b), dtype, scale=scale, **gtol)
    assert_close(F.box(x, (3, 6), border=border), cv2.blur(x, (6, 3), borderType=b), dtype, scale=scale, **tol)
    # and against OpenCV on float64 data, where it is exact
    xf = x.astype(np.float64)
    assert_close(F.gaussian(xf, (2.0, 0.6), ksize=(7, 3), border=border),
                 cv2.GaussianBlur(xf, (3, 7), sigmaX=0.6, sigmaY=2.0, borderType=b), np.float64, scale=scale)
    ky, kx = rng.random(5), rng.random(3)
    ky /= ky.sum()
    kx /= kx.sum()
    if dtype != np.uint16:
        assert_close(F.sep_filter(x, ky, kx, border=border), cv2.sepFilter2D(x, -1, kx, ky, borderType=b),
                     dtype, scale=scale, **tol)


def test_gaussian_kernel_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    from imkern._kernels import gaussian_kernel_cv

    for ksize in (1, 3, 5, 7, 9, 31):
        for sigma in (0, 0.5, 1.0, 5.0):
            np.testing.assert_allclose(gaussian_kernel_cv(ksize, sigma), cv2.getGaussianKernel(ksize, sigma, cv2.CV_64F).ravel(),
                                       rtol=1e-12, atol=1e-15)


# ---- bad input ----------------------------------------------------------------------------------
def test_bad_input():
    x = np.zeros((5, 5), np.float32)
    k = np.ones((3, 3))
    with pytest.raises(TypeError, match="image.*numpy.ndarray"):
        F.correlate([[1.0]], k)
    with pytest.raises(TypeError, match="image: dtype int32"):
        F.correlate(np.zeros((5, 5), np.int32), k)
    with pytest.raises(TypeError, match="image: dtype complex128"):
        F.gaussian(np.zeros((5, 5), complex), 1.0)
    with pytest.raises(ValueError, match="image: expected an image of shape"):
        F.correlate(np.zeros(5, np.float32), k)
    with pytest.raises(ValueError, match="image: expected an image of shape"):
        F.box(np.zeros((1, 2, 3, 4, 5), np.float32), 3)
    with pytest.raises(ValueError, match="kernel: expected a non-empty 2-D"):
        F.correlate(x, np.ones(3))
    with pytest.raises(ValueError, match="kernel: expected a non-empty 2-D"):
        F.correlate(x, np.ones((0, 3)))
    with pytest.raises(ValueError, match="kernel_y"):
        F.sep_filter(x, [], [1])
    with pytest.raises(ValueError, match="border: expected one of"):
        F.correlate(x, k, border="reflect_101")
    with pytest.raises(ValueError, match="border"):
        F.gaussian(x, 1.0, border=3)
    with pytest.raises(ValueError, match="size"):
        F.box(x, 0)
    with pytest.raises(ValueError, match="size"):
        F.box(x, (3, 3, 3))
    with pytest.raises(TypeError, match="size"):
        F.box(x, 2.5)
    with pytest.raises(ValueError, match="sigma"):
        F.gaussian(x, -1.0)
    with pytest.raises(ValueError, match="sigma"):
        F.gaussian(x, float("nan"))
    with pytest.raises(ValueError, match="ksize"):
        F.gaussian(x, 1.0, ksize=(4, 5))
    with pytest.raises(TypeError, match="sigma"):
        F.gaussian(x, "1")
    with pytest.raises(TypeError, match="cval"):
        F.correlate(x, k, border="constant", cval="a")
    with pytest.raises(TypeError, match="out: expected dtype float32"):
        F.correlate(x, k, out=np.zeros((5, 5), np.float64))
    with pytest.raises(ValueError, match=r"out: expected shape \(5, 5\)"):
        F.correlate(x, k, out=np.zeros((5, 4), np.float32))
    with pytest.raises(TypeError, match="out: expected a numpy.ndarray"):
        F.correlate(x, k, out=[[0.0]])
    ro = np.zeros((5, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: array is read-only"):
        F.correlate(x, k, out=ro)


def test_border_aliases(rng):
    x = random_array(rng, (9, 8), np.float64)
    k = rng.standard_normal((3, 3))
    for alias, name in [("mirror", "reflect101"), ("symmetric", "reflect"), ("nearest", "replicate"),
                        ("circular", "wrap"), ("grid-wrap", "wrap")]:
        np.testing.assert_array_equal(F.correlate(x, k, border=alias), F.correlate(x, k, border=name))


def test_read_only_input_accepted(rng):
    x = random_array(rng, (9, 8), np.uint8)
    x.flags.writeable = False
    F.gaussian(x, 1.0)


def test_cupy_input_without_cuda_is_type_error():
    if imkern.info()["cuda_built"]:
        pytest.skip("CUDA support is built")
    cupy = pytest.importorskip("cupy")
    try:
        a = cupy.zeros((4, 4), cupy.float32)
    except Exception:
        pytest.skip("CuPy cannot allocate here (no GPU)")
    with pytest.raises(TypeError, match="without CUDA"):
        F.gaussian(a, 1.0)


# ---- box: non-finite and huge values stay in their windows (issue 9, item 1) -----------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("border", BORDERS)
def test_box_nonfinite_stays_in_windows(xp, rng, dtype, border, threads):
    for size in [(3, 3), (5, 7), (17, 2), (2, 70), (24, 66), (40, 5)]:
        x = random_array(rng, (rng.integers(20, 61), rng.integers(20, 90), 2), dtype)
        idx = [tuple(rng.integers(0, s) for s in x.shape) for _ in range(4)]
        # huge, but a window's sum of it stays finite in the dtype even when a border rule
        # repeats the pixel over the whole window (else +inf from the overflow meets -inf)
        huge = np.finfo(dtype).max / (4 * size[0] * size[1])
        for i, v in zip(idx, [np.nan, np.inf, -np.inf, huge]):
            x[i] = v
        got = F.box(xp.asarray(x), size, border=border, cval=2.0)
        with np.errstate(invalid="ignore", over="ignore"):
            ref = R.box(x, size, border=border, cval=2.0)
        a = to_numpy(got).astype(np.float64)
        # NaN exactly where the reference has NaN (windows holding NaN, or +inf and -inf)
        assert (np.isnan(a) == np.isnan(ref)).all(), (size, border)
        fin = np.isfinite(ref) & (np.abs(ref) < 1e30)
        assert (a[np.isinf(ref)] == ref[np.isinf(ref)]).all(), (size, border)
        assert_close(a[fin], ref[fin], dtype, scale=4.0, err_msg=str((size, border)))


def test_box_issue_examples(xp):
    x = np.ones((8, 8), np.float32)
    x[1, 1] = np.nan
    r = to_numpy(F.box(xp.asarray(x), 3))
    assert np.isnan(r[:3, :3]).all() and not np.isnan(r[3:]).any() and not np.isnan(r[:, 3:]).any()
    x[1, 1] = np.inf
    r = to_numpy(F.box(xp.asarray(x), 3))
    assert np.isinf(r[:3, :3]).all() and (r[3:] == 1).all() and (r[:, 3:] == 1).all()
    x[1, 1] = 1e30
    r = to_numpy(F.box(xp.asarray(x), 3))
    assert (r[4:, 1] == 1).all() and (r[:, 4:] == 1).all()
    x = np.ones((8, 90), np.float64)  # a wide window along x (> 64 taps)
    x[2, 3] = 1e300
    r = to_numpy(F.box(xp.asarray(x), (1, 71), normalize=False))
    assert (r[np.arange(8) != 2] == 71).all() and (r[2, :39] > 1e297).all() and (r[2, 39:] == 71).all()


def test_box_float_threads_bitwise(rng):
    """Blocks are aligned on output rows, not on the chunks: 1 and N threads agree bit for bit."""
    x = random_array(rng, (203, 37, 3), np.float32)
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        a = F.box(x, (9, 70))
        imkern.set_num_threads(3)
        b = F.box(x, (9, 70))
    finally:
        imkern.set_num_threads(before)
    assert np.array_equal(a, b)


# ---- dtype= (output dtype, cv2's ddepth; issue 9, item 14) ----------------------------------
SOBEL_X = (np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("odt", [np.float32, np.float64])
def test_linear_filters_output_dtype(xp, rng, dtype, odt):
    x = random_array(rng, (19, 23, 3), dtype)
    xd = xp.asarray(x)
    k = rng.standard_normal((3, 5))
    ky, kx = SOBEL_X
    scale = float(np.abs(x.astype(np.float64)).max())
    cases = [
        (F.correlate(xd, k, dtype=odt), R.correlate(x.astype(np.float64), k), scale * np.abs(k).sum()),
        (F.convolve(xd, k, dtype=odt), R.convolve(x.astype(np.float64), k), scale * np.abs(k).sum()),
        (F.sep_filter(xd, ky, kx, dtype=odt), R.sep_filter(x.astype(np.float64), ky, kx), 8 * scale),
        (F.box(xd, (4, 5), dtype=odt), R.box(x.astype(np.float64), (4, 5)), scale),
        (F.box(xd, (4, 5), normalize=False, dtype=odt), R.box(x.astype(np.float64), (4, 5), normalize=False),
         20 * scale),
        (F.gaussian(xd, 1.5, dtype=odt), R.gaussian(x.astype(np.float64), 1.5), scale),
    ]
    # the accumulation is float32 unless the input or the output is float64; the tolerance
    # is the coarser of the accumulation's and the output's
    acc = np.float64 if np.float64 in (np.dtype(dtype), np.dtype(odt)) and odt == np.float64 else np.float32
    for i, (got, ref, sc) in enumerate(cases):
        assert got.dtype == odt and type(got) is type(xd), i
        assert_close(got, ref, acc, scale=sc, err_msg=str(i))
    # out= of the requested dtype; the input is unchanged
    x0 = x.copy()
    out = xp.full(x.shape, 123, odt)
    r = F.sep_filter(xd, ky, kx, dtype=odt, out=out)
    assert r is out
    assert_close(out, R.sep_filter(x.astype(np.float64), ky, kx), acc, scale=8 * scale)
    assert np.array_equal(to_numpy(xd), x0)


def test_output_dtype_keeps_negative_derivative():
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 200
    assert F.sep_filter(img, *SOBEL_X).min() == 0  # clipped: the uint8 result
    d = F.sep_filter(img[:, ::-1], *SOBEL_X, dtype=np.float32)
    assert d.dtype == np.float32 and d.min() == -800


def test_output_dtype_bad_arguments():
    x = np.ones((5, 5), np.uint8)
    for bad in (np.uint16, np.int16, np.complex64, "nonsense"):
        with pytest.raises(TypeError, match="dtype"):
            F.sep_filter(x, [1.0], [1.0], dtype=bad)
    with pytest.raises(TypeError, match="dtype"):
        F.box(x, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="out"):
        F.correlate(x, np.ones((3, 3)), dtype=np.float32, out=np.empty((5, 5), np.uint8))
    assert F.correlate(x, np.ones((3, 3)), dtype=np.uint8).dtype == np.uint8  # the input's: fine


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("odt", [np.float32, np.float64])
def test_output_dtype_matches_cv2(rng, dtype, odt):
    cv2 = pytest.importorskip("cv2")
    if (dtype, odt) == (np.float32, np.float64):
        pytest.skip("cv2's linear filters have no float32 -> float64 path")
    x = random_array(rng, (31, 29, 3), dtype)
    depth = cv2.CV_32F if odt == np.float32 else cv2.CV_64F
    k = rng.standard_normal((3, 3))
    scale = float(np.abs(x.astype(np.float64)).max()) * 16
    acc = np.float64 if odt == np.float64 else np.float32
    assert_close(F.correlate(x, k, dtype=odt), cv2.filter2D(x, depth, k), acc, scale=scale)
    ky, kx = SOBEL_X
    assert_close(F.sep_filter(x, ky, kx, dtype=odt), cv2.sepFilter2D(x, depth, kx, ky), acc, scale=scale)
    assert_close(F.sep_filter(x, ky, kx, dtype=odt), cv2.Sobel(x, depth, 1, 0, ksize=3), acc, scale=scale)
    assert_close(F.box(x, (3, 5), dtype=odt), cv2.boxFilter(x, depth, (5, 3)), acc, scale=scale)


# ---- the README's statements about the peers (issue 9, item 17) ------------------------------
def test_readme_gaussian_claims(rng):
    cv2 = pytest.importorskip("cv2")
    ndi = pytest.importorskip("scipy.ndimage")
    img = random_array(rng, (120, 160, 3), np.uint8)
    f = img.astype(np.float64)
    for sigma, k in ((1.0, 5), (8.0, 49)):
        # uint8 with ksize: OpenCV's fixed-point algorithm, equal to cv2 bit for bit
        got = F.gaussian(img, sigma, ksize=(k, k))
        assert np.array_equal(got, cv2.GaussianBlur(img, (k, k), sigma))
        # uint16 too (taps in 16 fractional bits): equal to cv2, a few levels from the exact sums
        img16 = random_array(rng, img.shape, np.uint16)
        got16 = F.gaussian(img16, sigma, ksize=(k, k))
        assert np.array_equal(got16, cv2.GaussianBlur(img16, (k, k), sigma))
        exact = R.gaussian(img16.astype(np.float64), sigma, ksize=(k, k))
        assert np.abs(got16.astype(np.int64) - np.rint(exact)).max() <= 4
        np.testing.assert_allclose(F.gaussian(f, sigma, ksize=(k, k)), cv2.GaussianBlur(f, (k, k), sigma), atol=1e-9)
    for sigma in (1.0, 2.5):
        sp_mirror = np.stack([ndi.gaussian_filter(f[..., c], sigma, mode="mirror") for c in range(3)], -1)
        sp_reflect = np.stack([ndi.gaussian_filter(f[..., c], sigma) for c in range(3)], -1)
        np.testing.assert_allclose(F.gaussian(f, sigma), sp_mirror, atol=1e-9)
        np.testing.assert_allclose(F.gaussian(f, sigma, border="reflect"), sp_reflect, atol=1e-9)
        assert np.abs(F.gaussian(f, sigma) - sp_reflect).max() > 1e-3  # the defaults do differ


# ---- one list of cases for both devices (the former test_filters_cuda.py) ----------------------
# Every case runs on NumPy (the CPU kernels) and, with a GPU, on CuPy (the CUDA kernels) through
# the xp fixture; the CUDA-only checks (streams, devices, cupyx) take the cp fixture.
DEVICE_DTYPES = [np.uint8, np.uint16, np.float16, np.float32, np.float64]
# scipy.ndimage mode names for our borders
SCIPY_MODE = {"reflect101": "mirror", "reflect": "reflect", "replicate": "nearest", "constant": "constant",
              "wrap": "wrap"}  # ndimage filters: "wrap" is periodic (= "grid-wrap")


def _device_dtype(xp, dtype):
    if xp is np and np.dtype(dtype) == np.float16:
        pytest.skip("float16 images: CUDA only")


def _image(rng, shape, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return random_array(rng, shape, dt, -2.0, 2.0)
    return random_array(rng, shape, dt)


def _dev_scale(x, weight_abs_sum):
    """Bound on the magnitude of the terms summed (for the float tolerance)."""
    m = float(np.max(np.abs(x.astype(np.float64)))) if x.size else 1.0
    return max(m, 1.0) * max(float(weight_abs_sum), 1.0)


def _check(actual, expected, x, weight_abs_sum, xp, err=""):
    assert isinstance(actual, xp.ndarray), type(actual)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert_close(actual, expected, dtype=expected.dtype, scale=_dev_scale(x, weight_abs_sum), err_msg=err)


def _poisoned_out(xp, shape, dtype):
    out = xp.empty(shape, dtype=dtype)
    if np.dtype(dtype).kind == "f":
        out.fill(np.nan)
    else:
        out.fill(np.iinfo(dtype).max // 3)
    return out


# ---- every dtype x border on an odd size ----------------------------------------------------
@pytest.mark.parametrize("dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_sep_filter_dtypes_borders(xp, rng, dtype, border):
    _device_dtype(xp, dtype)
    x = _image(rng, (2, 19, 37, 3), dtype)
    xd = xp.asarray(x)
    # (5, 3) and (20, 9): register-weight variants (kh <= 16, <= 32); (35, 4): shared weights
    for kh, kw in ((5, 3), (20, 9), (35, 4)):
        ky = rng.random(kh) - 0.3
        kx = rng.random(kw) - 0.3
        got = F.sep_filter(xd, ky, kx, border=border, cval=0.75)
        exp = R.sep_filter(x, ky, kx, border=border, cval=0.75)
        _check(got, exp, x, np.abs(ky).sum() * np.abs(kx).sum(), xp, f"{dtype} {border} {kh}x{kw}")
    assert xp.array_equal(xd, xp.asarray(x)), "input modified"


@pytest.mark.parametrize("dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_gaussian_dtypes_borders(xp, rng, dtype, border):
    _device_dtype(xp, dtype)
    # 5x5 and 7x7 take the fixed-size kernels, sigma 2.5 (21 taps) the runtime-size one
    x = _image(rng, (23, 41, 3), dtype)
    xd = xp.asarray(x)
    for sigma, ksize in ((1.0, (5, 5)), (1.3, (7, 7)), (0.8, (3, 3)), (2.5, None), ((1.0, 2.0), None)):
        got = F.gaussian(xd, sigma, ksize=ksize, border=border, cval=3.0)
        exp = R.gaussian(x, sigma, ksize=ksize, border=border, cval=3.0)
        _check(got, exp, x, 1.0, xp, f"{dtype} {border} sigma={sigma} ksize={ksize}")


@pytest.mark.parametrize("dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_correlate_dtypes_borders(xp, rng, dtype, border):
    _device_dtype(xp, dtype)
    x = _image(rng, (2, 17, 29, 2), dtype)
    k = rng.random((3, 4)) - 0.4
    got = F.correlate(xp.asarray(x), k, border=border, cval=-1.5)
    exp = R.correlate(x, k, border=border, cval=-1.5)
    _check(got, exp, x, np.abs(k).sum(), xp, f"{dtype} {border}")
    got = F.convolve(xp.asarray(x), k, border=border, cval=2.0)
    exp = R.convolve(x, k, border=border, cval=2.0)
    _check(got, exp, x, np.abs(k).sum(), xp, f"convolve {dtype} {border}")


@pytest.mark.parametrize("dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("normalize", [True, False])
def test_box_dtypes_borders(xp, rng, dtype, border, normalize):
    _device_dtype(xp, dtype)
    x = _image(rng, (2, 21, 33, 3), dtype)
    if np.dtype(dtype) == np.uint8 and not normalize:
        x //= 16  # keep some sums below the saturation limit
    for size in ((3, 3), (5, 2), (4, 19), (1, 1), (40, 3)):  # 19 > 16: the prefix-scan row pass
        got = F.box(xp.asarray(x), size, normalize=normalize, border=border, cval=1.25)
        exp = R.box(x, size, normalize=normalize, border=border, cval=1.25)
        w = 1.0 if normalize else size[0] * size[1]
        _check(got, exp, x, w, xp, f"{dtype} {border} size={size} normalize={normalize}")


# ---- sizes: 1x1, 1xN, Nx1, 3x257, kernels larger than the image ------------------------------
SIZES = [(1, 1), (1, 9), (9, 1), (3, 257), (2, 300), (70, 5)]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("border", BORDERS)
def test_odd_sizes(xp, rng, hw, border):
    x = _image(rng, hw, np.float32)
    xd = xp.asarray(x)
    for ky, kx in ((rng.random(5), rng.random(5)), (rng.random(7), rng.random(2)), (rng.random(31), rng.random(31)),
                   (rng.random(16), rng.random(3)), (rng.random(33), rng.random(4))):
        got = F.sep_filter(xd, ky, kx, border=border, cval=0.5)
        exp = R.sep_filter(x, ky, kx, border=border, cval=0.5)
        _check(got, exp, x, ky.sum() * kx.sum(), xp, f"sep {hw} {border} {len(ky)}x{len(kx)}")
    for kshape in ((3, 3), (1, 6), (9, 9), (31, 31)):
        k = rng.random(kshape) - 0.5
        got = F.correlate(xd, k, border=border, cval=0.5)
        exp = R.correlate(x, k, border=border, cval=0.5)
        _check(got, exp, x, np.abs(k).sum(), xp, f"correlate {hw} {border} {kshape}")
    for size in ((3, 3), (7, 1), (25, 33)):
        got = F.box(xd, size, border=border, cval=0.5)
        exp = R.box(x, size, border=border, cval=0.5)
        _check(got, exp, x, 1.0, xp, f"box {hw} {border} {size}")


@pytest.mark.parametrize("border", BORDERS)
def test_kernel_larger_than_image_devices(xp, rng, border):
    x = _image(rng, (2, 4, 5, 3), np.float64)
    xd = xp.asarray(x)
    ky, kx = rng.random(11), rng.random(13)
    _check(F.sep_filter(xd, ky, kx, border=border), R.sep_filter(x, ky, kx, border=border), x,
           ky.sum() * kx.sum(), xp, border)
    k = rng.random((9, 12))
    _check(F.correlate(xd, k, border=border), R.correlate(x, k, border=border), x, k.sum(), xp, border)
    _check(F.box(xd, (13, 17), border=border), R.box(x, (13, 17), border=border), x, 1.0, xp, border)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_fallback_paths(xp, rng, dtype):
    """Tiles that do not fit in shared memory: sep_filter's two-pass path, correlate's opt-in
    and direct paths, box's direct row pass (wide kernels times many channels)."""
    _device_dtype(xp, dtype)
    x = _image(rng, (2, 9, 11, 40), dtype)
    xd = xp.asarray(x)
    ky, kx = rng.random(3), rng.random(150)  # (kw - 1) * C = 5960 columns of halo
    _check(F.sep_filter(xd, ky, kx, border="reflect"), R.sep_filter(x, ky, kx, border="reflect"), x,
           ky.sum() * kx.sum(), xp, "sep two-pass")
    x100 = _image(rng, (1, 10, 6, 100), dtype)  # 7x7 with 100 channels: the runtime-size tile, not the fixed one
    k7 = rng.random(7)
    _check(F.sep_filter(xp.asarray(x100), k7, k7, border="replicate"), R.sep_filter(x100, k7, k7, border="replicate"),
           x100, k7.sum() ** 2, xp, "sep 7x7 C=100")
    for kshape in ((5, 60), (3, 200)):  # opt-in shared memory, then too large for any tile
        k = rng.random(kshape) - 0.5
        _check(F.correlate(xd, k, border="wrap"), R.correlate(x, k, border="wrap"), x, np.abs(k).sum(), xp,
               f"correlate {kshape}")
    _check(F.box(xd, (3, 90), border="constant", cval=0.25), R.box(x, (3, 90), border="constant", cval=0.25),
           x, 1.0, xp, "box direct row pass")


# ---- layouts, views, out=, streams, devices --------------------------------------------------
@pytest.mark.parametrize("shape", [(13, 17), (13, 17, 1), (13, 17, 4), (3, 13, 17, 3)])
def test_layouts(xp, rng, shape):
    x = _image(rng, shape, np.float32)
    xd = xp.asarray(x)
    k = rng.random((3, 5))
    _check(F.correlate(xd, k), R.correlate(x, k), x, k.sum(), xp, str(shape))
    _check(F.gaussian(xd, 1.0, ksize=5), R.gaussian(x, 1.0, ksize=5), x, 1.0, xp, str(shape))
    _check(F.box(xd, (3, 4)), R.box(x, (3, 4)), x, 1.0, xp, str(shape))


def test_strided_and_negative_views_devices(xp, rng):
    base = _image(rng, (4, 30, 40, 3), np.float32)
    based = xp.asarray(base)
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
        _check(F.correlate(xd, k, border="reflect"), R.correlate(x, k, border="reflect"), x, k.sum(), xp, name)
        _check(F.gaussian(xd, 1.2, ksize=7, border="wrap"), R.gaussian(x, 1.2, ksize=7, border="wrap"), x, 1.0,
               xp, name)
        _check(F.box(xd, 5, border="replicate"), R.box(x, 5, border="replicate"), x, 1.0, xp, name)
    assert xp.array_equal(based, xp.asarray(base)), "input modified"


def test_out_devices(xp, rng):
    x = _image(rng, (2, 25, 31, 3), np.uint8)
    xd = xp.asarray(x)
    k = rng.random((3, 3))
    exp = R.correlate(x, k)
    out = _poisoned_out(xp, x.shape, np.uint8)
    res = F.correlate(xd, k, out=out)
    assert res is out
    _check(out, exp, x, k.sum(), xp, "out")
    # a strided out (rows reversed: written directly) and a non-packed one (via a temporary)
    big = _poisoned_out(xp, (2, 50, 31, 3), np.uint8)
    view = big[:, ::-2]
    assert F.gaussian(xd, 1.0, ksize=5, out=view) is view
    _check(view, R.gaussian(x, 1.0, ksize=5), x, 1.0, xp, "strided out")
    wide = _poisoned_out(xp, (2, 25, 62, 3), np.uint8)
    view = wide[:, :, ::2]
    assert F.box(xd, 3, out=view) is view
    _check(view, R.box(x, 3), x, 1.0, xp, "non-packed out")
    # out aliasing the input: the result still equals the reference
    xa = xd.copy()
    F.gaussian(xa, 1.0, ksize=5, out=xa)
    _check(xa, R.gaussian(x, 1.0, ksize=5), x, 1.0, xp, "in-place")


def test_empty(xp):
    for shape in ((0, 5), (5, 0), (0, 4, 4, 3), (2, 4, 4, 0)):
        x = xp.zeros(shape, np.float32)
        for r in (F.gaussian(x, 1.0), F.correlate(x, np.ones((3, 3))), F.box(x, 3)):
            assert isinstance(r, xp.ndarray) and r.shape == shape


@pytest.mark.cuda
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


@pytest.mark.cuda
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
def test_multi_tile(xp, rng, dtype):
    """Several tiles in x and y with partial last tiles, for every sep/correlate/box path."""
    _device_dtype(xp, dtype)
    x = _image(rng, (2, 150, 331, 3), dtype)
    xd = xp.asarray(x)
    for ksize in ((3, 3), (5, 5), (7, 7), (9, 9), (31, 31)):
        _check(F.gaussian(xd, 2.0, ksize=ksize, border="reflect"), R.gaussian(x, 2.0, ksize=ksize, border="reflect"),
               x, 1.0, xp, f"gaussian {ksize}")
    k = rng.random((7, 5)) - 0.3
    _check(F.correlate(xd, k, border="wrap"), R.correlate(x, k, border="wrap"), x, np.abs(k).sum(), xp, "correlate")
    for size in ((5, 5), (33, 41)):
        _check(F.box(xd, size, border="constant", cval=7.0), R.box(x, size, border="constant", cval=7.0), x, 1.0,
               xp, f"box {size}")


def test_large_batch_grid(xp, rng):
    """Many tiles (batch folded into the 1-D grid): the last image is filtered too."""
    x = _image(rng, (70, 8, 300, 1), np.float32)
    xd = xp.asarray(x)
    got = F.gaussian(xd, 1.0, ksize=3)
    exp = R.gaussian(x, 1.0, ksize=3)
    _check(got, exp, x, 1.0, xp, "batch")


def test_nan_propagates_and_saturation(xp, rng):
    x = _image(rng, (12, 12), np.float32)
    x[5, 5] = np.nan
    got = to_numpy(F.gaussian(xp.asarray(x), 1.0, ksize=3))
    assert np.isnan(got[4:7, 4:7]).all() and not np.isnan(got[0, 0])
    u = np.full((8, 8), 250, np.uint8)
    got = to_numpy(F.correlate(xp.asarray(u), np.full((3, 3), 0.5)))
    assert (got == 255).all()
    got = to_numpy(F.correlate(xp.asarray(u), -np.ones((3, 3))))
    assert (got == 0).all()


# ---- against the peer ------------------------------------------------------------------------
@pytest.mark.parametrize("border", ["reflect101", "reflect", "replicate", "constant", "wrap"])
@pytest.mark.cuda
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


@pytest.mark.cuda
def test_cuda_matches_cpu(cp, rng):
    x = _image(rng, (2, 31, 47, 3), np.uint8)
    k = rng.random((3, 3))
    a = to_numpy(F.correlate(cp.asarray(x), k))
    b = F.correlate(x, k)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert imkern.info()["cuda_built"]


# ---- uint8 rows converted in registers (fused horizontal pass) and the packed uint8 stores -----
# A uint8 image is filtered with exactly the float32 arithmetic of its float32 copy: the uint8
# result is that float32 result rounded half to even and saturated, bit for bit, and the
# float32 output (dtype=float32) equals it. Shapes cover 1-pixel, odd widths (vector tails),
# widths past the 64-byte streaming start, C = 1, 3, 4; every border (constant with a cval
# that is and is not a uint8 value: the latter takes the float path); strided and
# negative-stride views; the symmetric (Gaussian) and general tap orders.
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (7, 1), (5, 17), (6, 33, 3), (4, 45, 4), (3, 67, 1),
                                   (9, 211, 3), (5, 1030, 3), (2, 3, 131, 4)])
@pytest.mark.parametrize("border", BORDERS)
def test_uint8_rows_equal_float32_arithmetic(rng, isa, shape, border):
    x = random_array(rng, shape, np.uint8)
    views = {"contiguous": x, "negative rows": x[..., ::-1, :, :] if x.ndim == 4 else x[::-1],
             "negative columns": x[..., ::-1, :] if x.ndim >= 3 else x[:, ::-1],
             "strided columns": x[..., ::2, :] if x.ndim >= 3 else x[:, ::2]}
    kernels = [(3, 0.8, None), (5, 1.0, None), (7, 1.4, None), (5, 0, None),
               (None, None, (np.array([0.1, -0.3, 0.5, 0.2, 0.7]), np.array([0.25, -0.5, 1.5]))),
               (None, None, (np.array([0.3, 0.4, 0.3]), np.array([0.05, 0.2, 0.3, 0.2, 0.05, 0.1, 0.1])))]
    for cval in ([0.0] if border != "constant" else [7.0, 2.5]):
        for name, v in views.items():
            f = v.astype(np.float32)
            for ks, sig, sep in kernels:
                if sep is None:
                    got = F.gaussian(v, sig, ksize=ks, border=border, cval=cval)
                    got32 = F.gaussian(v, sig, ksize=ks, border=border, cval=cval, dtype=np.float32)
                    ref32 = F.gaussian(f, sig, ksize=ks, border=border, cval=cval)
                else:
                    got = F.sep_filter(v, *sep, border=border, cval=cval)
                    got32 = F.sep_filter(v, *sep, border=border, cval=cval, dtype=np.float32)
                    ref32 = F.sep_filter(f, *sep, border=border, cval=cval)
                msg = f"{name} ksize={ks} sigma={sig} sep={sep is not None} cval={cval}"
                np.testing.assert_array_equal(got32, ref32, err_msg=msg)
                want = np.clip(np.rint(ref32), 0, 255).astype(np.uint8)
                if sep is None and R.gaussian_is_fixed_u8(np.uint8, border, cval):
                    # uint8 with ksize: cv2's fixed-point algorithm (exact integer reference)
                    want = R.gaussian(np.ascontiguousarray(v), sig, ksize=ks, border=border, cval=cval)
                np.testing.assert_array_equal(got, want, err_msg=msg)


def test_uint8_large_rows_stream_like_small(rng):
    # 64-byte streaming start of the uint8 stores (outputs larger than the last-level cache):
    # every row offset modulo 64 against the same rows filtered as a small image.
    x = random_array(rng, (2200, 2900, 3), np.uint8)
    out = np.empty((2200 * 2900 * 3 + 64,), np.uint8)
    small = F.gaussian(x[:40], 1.0, ksize=5)
    for off in (0, 1, 16, 37):
        o = out[off: off + x.size].reshape(x.shape)
        F.gaussian(x, 1.0, ksize=5, out=o)
        np.testing.assert_array_equal(o[:38], small[:38], err_msg=str(off))
        np.testing.assert_array_equal(o[-5:], F.gaussian(x[-40:], 1.0, ksize=5)[-5:], err_msg=str(off))


# ---- strips on output lines, streaming plans, the fused box rows, large symmetric kernels -------
# The strip plan (plan_strips: strip widths, a first strip that puts the later strip starts on
# output lines, streaming stores) and the output's alignment change speed only: every plan
# gives the same bits as plain stores over one strip. Forced here on small images: strips of
# a few vectors, streaming on, outputs starting at several offsets into a line (contiguous rows,
# so the strips can start on lines; and padded rows, whose starts differ row to row).
def _offset_out(shape, dtype, off, pad=0):
    n = int(np.prod(shape[1:]))
    raw = np.empty(shape[0] * (n + pad) + 128, dtype)
    a0 = (-raw.ctypes.data % 64) // raw.itemsize + off
    return raw[a0 : a0 + shape[0] * (n + pad)].reshape(shape[0], n + pad)[:, :n].reshape(shape)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(37, 301), (23, 207, 3), (19, 129, 4)])
def test_strip_plans_give_the_same_bits(rng, dtype, shape):
    x = random_array(rng, shape, dtype)
    ops = [
        lambda out: F.gaussian(x, 1.0, ksize=5, out=out),
        lambda out: F.gaussian(x, 2.0, ksize=(3, 13), out=out),
        lambda out: F.sep_filter(x, np.array([0.1, 0.5, 0.4]), np.array([0.3, 0.3, 0.2, 0.1, 0.1]), out=out),
        lambda out: F.correlate(x, np.array([[0.1, 0.2, 0.05], [0.15, 0.3, 0.1], [0.02, 0.03, 0.05]]), out=out),
        lambda out: F.correlate(x, np.array([[0.1, 0.2, 0.05, 0.3], [0.15, 0.3, 0.1, 0.2]]), out=out),
    ]
    try:
        imkern.set_cpu_params(stream_bytes=1 << 62, strip_l1=1 << 24, strip_l2=1 << 26)
        want = [op(np.empty_like(x)) for op in ops]
        if dtype != np.uint8:
            want.append(F.sobel(x, 1, 0))
        for strip in (1024, 3000, 1 << 24):
            imkern.set_cpu_params(stream_bytes=0, strip_l1=strip, strip_l2=strip)
            for off in (0, 1, 5, 16, 37):
                for pad in (0, 3):
                    msg = f"strip={strip} off={off} pad={pad}"
                    for i, op in enumerate(ops):
                        out = _offset_out(shape, dtype, off % (64 // np.dtype(dtype).itemsize), pad)
                        op(out)
                        np.testing.assert_array_equal(out, want[i], err_msg=f"op {i} {msg}")
                    if dtype != np.uint8:
                        out = _offset_out(shape, np.dtype(dtype), off % (64 // np.dtype(dtype).itemsize), pad)
                        F.sobel(x, 1, 0, out=out)
                        np.testing.assert_array_equal(out, want[-1], err_msg=f"sobel {msg}")
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("size", [(15, 15), (4, 4), (3, 2), (5, 7), (1, 31), (31, 3), (9, 30), (2, 33)])
@pytest.mark.parametrize("border", ["reflect101", "constant"])
def test_box_uint8_mean_is_the_rounded_float32_quotient(rng, size, border):
    # uint8 means: round-half-even of float32(sum) / float32(area), however the kernel forms it
    # (one fused pass with a reciprocal multiply where that is provably the same integer).
    x = random_array(rng, (23, 67, 3), np.uint8)
    kh, kw = size
    cval = 7.0
    got = F.box(x, size, border=border, cval=cval)
    mode = {"reflect101": "reflect", "constant": "constant"}[border]
    kwargs = {"constant_values": int(cval)} if border == "constant" else {}
    widths = ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0))
    p = np.pad(x.astype(np.int64), widths, mode=mode, **kwargs)
    c = np.cumsum(np.cumsum(np.pad(p, ((1, 0), (1, 0), (0, 0))), axis=0), axis=1)
    s = c[kh:, kw:] - c[:-kh, kw:] - c[kh:, :-kw] + c[:-kh, :-kw]
    want = np.clip(np.rint(s.astype(np.float32) / np.float32(kh * kw)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ksize", [13, 31])
def test_large_symmetric_gaussian(rng, ksize):
    # Symmetric kernels past the fixed sizes (the run-time tap loops, their tails included):
    # uint8 keeps the float32 arithmetic bit for bit, and both match the reference. (uint8
    # gaussian with ksize is cv2's fixed-point algorithm: the float path through sep_filter.)
    from imkern._kernels import gaussian_kernel_cv

    x = random_array(rng, (41, 150, 3), np.uint8)
    f = x.astype(np.float32)
    k = gaussian_kernel_cv(ksize, ksize / 6.0)
    got = F.sep_filter(x, k, k)
    ref32 = F.gaussian(f, ksize / 6.0, ksize=ksize)
    np.testing.assert_array_equal(got, np.clip(np.rint(ref32), 0, 255).astype(np.uint8))
    assert_close(ref32, R.gaussian(f, ksize / 6.0, ksize=ksize), np.float32, scale=255.0)
    assert_close(got, R.sep_filter(x, k, k), np.uint8, int_atol=1)
    np.testing.assert_array_equal(F.gaussian(x, ksize / 6.0, ksize=ksize), R.gaussian(x, ksize / 6.0, ksize=ksize))


# Long symmetric kernels (13 ... 31 taps, float32 accumulation: the folded taps and the blocked
# kernels hfilter_long / vfilter_long, two output rows at a time): against the reference, and
# the same bits whatever the threads, strips, row pairing (odd heights, batches, chunk ends),
# output alignment and streaming plan.
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 17), (40, 37), (33, 150, 3), (3, 17, 70), (2, 9, 131, 4)])
def test_long_symmetric_kernels(rng, isa, shape):
    x = random_array(rng, shape, np.float32)
    cases = [((31, 31), 5.0), ((15, 15), 2.5), ((13, 29), 3.0), ((31, 1), 4.0), ((1, 17), 2.0)]
    for ksize, sigma in cases:
        for border in ("reflect101", "constant"):
            got = F.gaussian(x, sigma, ksize=ksize, border=border, cval=0.5)
            want = R.gaussian(x, sigma, ksize=ksize, border=border, cval=0.5)
            assert_close(got, want, np.float32, scale=1.0)
    ky, kx = np.abs(rng.standard_normal(23)), np.abs(rng.standard_normal(19))
    ky, kx = (ky + ky[::-1]) / 2, (kx + kx[::-1]) / 2  # symmetric, not Gaussian
    assert_close(F.sep_filter(x, ky, kx), R.sep_filter(x, ky, kx), np.float32, scale=float(ky.sum() * kx.sum()))


@pytest.mark.parametrize("shape", [(61, 203), (37, 101, 3)])
def test_long_symmetric_kernels_same_bits(rng, shape):
    x = random_array(rng, shape, np.float32)
    ops = [
        lambda out: F.gaussian(x, 5.0, ksize=31, out=out),
        lambda out: F.gaussian(x, 2.5, ksize=(15, 21), out=out),
    ]
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        imkern.set_cpu_params(stream_bytes=1 << 62, strip_l1=1 << 24, strip_l2=1 << 26)
        want = [op(np.empty_like(x)) for op in ops]
        for threads in (2, 3, 8):
            imkern.set_num_threads(threads)
            for strip in (1024, 5000, 1 << 24):
                imkern.set_cpu_params(stream_bytes=0, strip_l1=strip, strip_l2=strip)
                for off in (0, 1, 5):
                    for pad in (0, 3):
                        for i, op in enumerate(ops):
                            out = _offset_out(shape, np.float32, off, pad)
                            op(out)
                            np.testing.assert_array_equal(out, want[i], err_msg=f"op {i} {threads} {strip} {off} {pad}")
        # rows filtered alone (the last row of a chunk or an image) equal rows filtered in pairs
        # (dropping one row shifts the pairing of every row after it; rows 15 away from the
        # changed border are unchanged)
        imkern.reset_cpu_params()
        imkern.set_num_threads(1)
        np.testing.assert_array_equal(F.gaussian(x[:-1], 5.0, ksize=31)[:-16], want[0][:-17])
        np.testing.assert_array_equal(F.gaussian(x[1:], 5.0, ksize=31)[16:], want[0][17:])
        batch = (x[..., None] if x.ndim == 2 else x)[None].repeat(3, 0)  # (N, H, W, C): rows paired per image
        np.testing.assert_array_equal(F.gaussian(batch, 5.0, ksize=31)[1].reshape(x.shape), want[0])
    finally:
        imkern.set_num_threads(before)
        imkern.reset_cpu_params()


# ---- box uint8, small odd windows: the 16-bit path --------------------------------------------
# area odd and <= 127, normalized, uint8 -> uint8: column and row sums in 16-bit lanes, the mean
# by a multiply-high; exactly the correctly rounded mean (cv2.blur's). Even areas, larger ones,
# unnormalized sums and non-uint8 cval take the int32 path; both must give the same bits.
_BOX16_SIZES = [(1, 1), (3, 3), (5, 5), (3, 5), (5, 3), (1, 3), (3, 1), (7, 7), (1, 9), (11, 11), (4, 4), (12, 12)]
_BOX16_SHAPES = [(1, 1), (1, 5), (4, 1), (2, 3), (7, 9), (6, 33), (9, 70, 3), (5, 40, 4), (4, 17, 1), (3, 30, 5),
                 (2, 5, 66, 3)]


def _box_u8_want(x, kh, kw, border, cval):
    # round-half-even of float32(sum) / float32(area) (the sums from the float64 reference, exact)
    s = np.rint(R.box(x.astype(np.float64), (kh, kw), normalize=False, border=border, cval=cval))
    return np.clip(np.rint(s.astype(np.float32) / np.float32(kh * kw)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("border", BORDERS)
def test_box_uint8_small_windows(rng, isa, threads, border):
    for shape in _BOX16_SHAPES:
        x = random_array(rng, shape, np.uint8)
        for kh, kw in _BOX16_SIZES:
            got = F.box(x, (kh, kw), border=border, cval=7.0)
            assert np.array_equal(got, _box_u8_want(x, kh, kw, border, 7.0)), f"{shape} {(kh, kw)} {border}"
    # non-uint8 cval: the int32 path, still exact
    x = random_array(rng, (6, 21, 3), np.uint8)
    for cval in (7.5, 300.0, -4.0):
        got = F.box(x, 3, border=border, cval=cval)
        assert_close(got, R.box(x, 3, border=border, cval=cval), np.uint8, err_msg=str(cval))


@pytest.mark.parametrize("size", [3, 5, (3, 5)])
def test_box_uint8_small_windows_opencv_and_views(rng, isa, size):
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (37, 53, 3), np.uint8)
    ksz = (size, size) if isinstance(size, int) else (size[1], size[0])
    for name, v in [("plain", base), ("reversed rows", base[::-1]), ("reversed cols", base[:, ::-1]),
                    ("strided", base[::2, ::3]), ("channel slice", base[..., 1:]), ("gray", base[..., 0]),
                    ("rgba", np.concatenate([base, base[..., :1]], axis=-1))]:
        before = v.copy()
        for border, cb in [("reflect101", cv2.BORDER_REFLECT_101), ("reflect", cv2.BORDER_REFLECT),
                           ("replicate", cv2.BORDER_REPLICATE), ("constant", cv2.BORDER_CONSTANT)]:
            got = F.box(v, size, border=border)
            assert np.array_equal(got, cv2.blur(np.ascontiguousarray(v), ksz, borderType=cb)), f"{name} {border}"
        assert np.array_equal(v, before), name


# ---- 3x3 / 5x5 in one pass (sep_direct): vertical sums in registers, lane-shifted horizontally --
# Symmetric 3- and 5-tap separable filters (gaussian with ksize 3 / 5, sep_filter with symmetric
# taps) of any image dtype with float32 arithmetic, float32 box 3x3 / 5x5 and uint16 box 3x3 /
# 5x5 (exact integer sums, the same bits as the int32 path) take the direct path when the
# channels' halo fits one vector (C = 1 .. 4; 5x5 with C = 3, 4 on AVX2 and AVX-512 only).
# Shapes: 1 pixel, rows under one vector, exactly one, between one and two, odd widths; every
# border (constant with a cval an integer image cannot hold); views; batches.
_DIRECT_SHAPES = [(1, 1), (1, 5), (4, 1), (2, 3), (3, 7, 3), (5, 16), (6, 4, 4), (4, 6, 4), (7, 17), (5, 9, 2),
                  (9, 11, 3), (6, 33, 1), (8, 45, 4), (2, 5, 23, 3), (3, 130, 3), (40, 37)]


def _direct_ops(x):
    ks = np.array([0.2, 0.6, 0.2])
    k5 = np.array([0.05, 0.3, 0.3, 0.3, 0.05])  # symmetric, not a Gaussian
    return [
        ("gauss3", lambda v, **kw: F.gaussian(v, 0.8, ksize=3, **kw), lambda v, **kw: R.gaussian(v, 0.8, ksize=3, **kw)),
        ("gauss5", lambda v, **kw: F.gaussian(v, 1.1, ksize=5, **kw), lambda v, **kw: R.gaussian(v, 1.1, ksize=5, **kw)),
        ("sep3", lambda v, **kw: F.sep_filter(v, ks, ks, **kw), lambda v, **kw: R.sep_filter(v, ks, ks, **kw)),
        ("sep5", lambda v, **kw: F.sep_filter(v, k5, k5, **kw), lambda v, **kw: R.sep_filter(v, k5, k5, **kw)),
        ("box3", lambda v, **kw: F.box(v, 3, **kw), lambda v, **kw: R.box(v, 3, **kw)),
        ("box5", lambda v, **kw: F.box(v, 5, **kw), lambda v, **kw: R.box(v, 5, **kw)),
        ("box5 sums", lambda v, **kw: F.box(v, 5, normalize=False, **kw),
         lambda v, **kw: R.box(v, 5, normalize=False, **kw)),
    ]


@pytest.mark.parametrize("border", BORDERS)
def test_direct_small_filters_match_reference(rng, isa, border):
    for shape in _DIRECT_SHAPES:
        x = random_array(rng, shape, np.float32)
        for name, f, ref in _direct_ops(x):
            kw = {"border": border, "cval": -1.75}
            scale = 25.0 if "sums" in name else 1.0
            assert_close(f(x, **kw), ref(x.astype(np.float64), **kw), np.float32, scale=scale,
                         err_msg=f"{name} {shape}")
        # views (negative rows and columns, strided) give the contiguous copy's bits
        v = x[::-1, ::-2] if x.ndim == 2 else x[::-1, ::-2, ::-1]
        for name, f, _ in _direct_ops(x):
            np.testing.assert_array_equal(f(v, border=border, cval=0.5), f(np.ascontiguousarray(v), border=border,
                                                                           cval=0.5), err_msg=f"{name} {shape}")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("border", BORDERS)
def test_direct_integer_images_keep_float32_arithmetic(rng, isa, dtype, border):
    # an integer image gets its float32 copy's arithmetic bit for bit (widened as loaded),
    # also with a constant border whose cval the integer type cannot hold
    for shape in _DIRECT_SHAPES:
        x = random_array(rng, shape, dtype)
        f32 = x.astype(np.float32)
        for cval in ([0.0] if border != "constant" else [7.0, 2.5, -3.0]):
            for sigma, ks in ((0.8, 3), (1.2, 5), (0, 5)):
                got = F.gaussian(x, sigma, ksize=ks, border=border, cval=cval, dtype=np.float32)
                want = F.gaussian(f32, sigma, ksize=ks, border=border, cval=cval)
                np.testing.assert_array_equal(got, want, err_msg=f"{shape} {ks} {cval}")
            k5 = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
            got = F.sep_filter(x, k5, k5, border=border, cval=cval)  # the image's dtype: rounded, saturated
            want = F.sep_filter(f32, k5, k5, border=border, cval=cval)
            lim = np.iinfo(dtype).max
            np.testing.assert_array_equal(got, np.clip(np.rint(want), 0, lim).astype(dtype), err_msg=f"{shape} {cval}")


@pytest.mark.parametrize("border", BORDERS)
def test_direct_box_uint16_exact(rng, isa, border):
    # uint16 box 3x3 / 5x5: round-half-even of float32(sum) / float32(area) (the int32 path's
    # bits), saturated; cval any integer (negative, or past 65535), others take the int32 path
    for shape in _DIRECT_SHAPES:
        x = random_array(rng, shape, np.uint16)
        for k in (3, 5):
            for cval in ([0.0] if border != "constant" else [7.0, -4.0, 300000.0, 7.5]):
                got = F.box(x, k, border=border, cval=cval)
                s = np.rint(R.box(x.astype(np.float64), k, normalize=False, border=border, cval=cval))
                if cval == int(cval):
                    want = np.clip(np.rint(s.astype(np.float32) / np.float32(k * k)), 0, 65535).astype(np.uint16)
                    np.testing.assert_array_equal(got, want, err_msg=f"{shape} {k} {cval}")
                else:
                    assert_close(got, R.box(x, k, border=border, cval=cval), np.uint16)
                sums = F.box(x, k, normalize=False, border=border, cval=cval)
                if cval == int(cval):
                    np.testing.assert_array_equal(sums, np.clip(s, 0, 65535).astype(np.uint16))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_direct_same_bits_any_plan(rng, dtype):
    # threads, output alignment (row starts at any offset into a line, padded rows) and
    # streaming stores change speed only
    x = random_array(rng, (29, 203, 3), dtype)
    ops = [lambda out: F.gaussian(x, 0.8, ksize=3, dtype=np.float32 if dtype == np.uint8 else None, out=out),
           lambda out: F.sep_filter(x, [0.1, 0.2, 0.4, 0.2, 0.1], [0.25, 0.5, 0.25], out=out),
           lambda out: F.sep_filter(x, [0.1, 0.2, 0.4, 0.2, 0.1], [0.1, 0.2, 0.4, 0.2, 0.1], out=out),
           lambda out: F.box(x, 5, out=out)]
    odt = [np.float32 if dtype == np.uint8 else dtype, dtype, dtype, dtype]
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        imkern.set_cpu_params(stream_bytes=1 << 62)
        want = [op(np.empty(x.shape, odt[i])) for i, op in enumerate(ops)]
        for threads in (1, 3):
            imkern.set_num_threads(threads)
            imkern.set_cpu_params(stream_bytes=0)
            for off in (0, 1, 5, 16, 37):
                for pad in (0, 3):
                    for i, op in enumerate(ops):
                        dt = np.dtype(odt[i])
                        out = _offset_out(x.shape, dt, off % (64 // dt.itemsize), pad)
                        op(out)
                        np.testing.assert_array_equal(out, want[i], err_msg=f"op {i} {threads} {off} {pad}")
    finally:
        imkern.set_num_threads(before)
        imkern.reset_cpu_params()


@pytest.mark.parametrize("border", BORDERS)
def test_direct_box_nonfinite_stays_in_windows(rng, isa, border):
    for c in (1, 3, 4):
        x = random_array(rng, (23, 41, c), np.float32)
        x[3, 5, 0], x[12, 20, c - 1], x[20, 39, 0] = np.nan, np.inf, -np.inf
        for k in (3, 5):
            got = F.box(x, k, border=border, cval=2.0).astype(np.float64)
            with np.errstate(invalid="ignore"):
                ref = R.box(x.astype(np.float64), k, border=border, cval=2.0)
            assert (np.isnan(got) == np.isnan(ref)).all(), (c, k)
            assert (got[np.isinf(ref)] == ref[np.isinf(ref)]).all(), (c, k)
            fin = np.isfinite(ref)
            assert_close(got[fin], ref[fin], np.float32, scale=2.0)
