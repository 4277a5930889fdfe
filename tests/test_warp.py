"""imkern.transform.warp_affine / warp_perspective / rotate against the NumPy reference and
OpenCV, on the CPU and (with a GPU) CUDA."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import HAS_GPU, random_array, to_numpy
from imkern.reference import transform as R
from imkern.transform import rotate, warp_affine, warp_perspective

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
INTERPS = ["nearest", "bilinear", "bicubic"]
BORDERS = ["constant", "replicate", "reflect", "reflect101", "wrap"]
AFFINES = [
    np.array([[0.9, 0.3, 4.2], [-0.25, 1.1, -3.7]]),
    np.array([[1.0, 0.0, 0.3], [0.0, 1.0, -0.6]]),  # sub-pixel shift
    np.array([[2.5, 0.0, -3.0], [0.0, 0.4, 2.0]]),  # zoom / shrink
    np.array([[-1.0, 0.0, 20.0], [0.0, 1.0, 0.0]]),  # mirror
]
PERSPECTIVES = [
    np.array([[0.9, 0.1, 3.0], [-0.05, 1.05, -2.0], [0.001, -0.0007, 1.0]]),
    np.array([[1.2, 0.2, -5.0], [0.1, 0.8, 4.0], [-0.002, 0.003, 1.1]]),
]
LAYOUTS = [(), (1,), (2,), (3,), (4,), "batch"]


def _shape(hw, layout):
    return (2,) + hw + (3,) if layout == "batch" else hw + layout


def _close(got, ref, dtype, x, cval=0.0):
    got = to_numpy(got).astype(np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    if np.dtype(dtype).kind == "u":
        d = np.abs(got - ref).max(initial=0)
        assert d <= 1, f"max |diff| {d}"
    else:
        # float32 coordinates and lerps (as OpenCV): relative to the data's range
        scale = max(1.0, float(np.abs(x.astype(np.float64)).max()), abs(cval))
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * scale)


# ---- against the reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("border", BORDERS)
def test_affine_matches_reference(xp, rng, dtype, interp, border):
    for layout in LAYOUTS:
        x = random_array(rng, _shape((23, 31), layout), dtype)
        for m in AFFINES:
            cval = float(rng.uniform(0, 200))
            got = warp_affine(xp.asarray(x), m, (19, 37), interpolation=interp, border=border, cval=cval)
            assert got.dtype == x.dtype and type(got) is type(xp.asarray(x))
            ref = R.warp_affine(x, m, (19, 37), interpolation=interp, border=border, cval=cval)
            _close(got, ref, dtype, x, cval)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("border", BORDERS)
def test_perspective_matches_reference(xp, rng, dtype, interp, border):
    for layout in [(), (2,), (3,), "batch"]:
        x = random_array(rng, _shape((29, 33), layout), dtype)
        for m in PERSPECTIVES:
            got = warp_perspective(xp.asarray(x), m, (31, 27), interpolation=interp, border=border, cval=5)
            ref = R.warp_perspective(x, m, (31, 27), interpolation=interp, border=border, cval=5)
            _close(got, ref, dtype, x, 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotate_matches_reference(xp, rng, dtype):
    x = random_array(rng, (21, 34, 3), dtype)
    for angle in [0, 17.5, -45, 90, 180, 271]:
        for interp in INTERPS:
            got = rotate(xp.asarray(x), angle, interpolation=interp, cval=3)
            _close(got, R.rotate(x, angle, interpolation=interp, cval=3), dtype, x)


# ---- against OpenCV -------------------------------------------------------------------------------
_CVI = {"nearest": "INTER_NEAREST", "bilinear": "INTER_LINEAR", "bicubic": "INTER_CUBIC"}
_CVB = {"constant": "BORDER_CONSTANT", "replicate": "BORDER_REPLICATE", "reflect": "BORDER_REFLECT",
        "reflect101": "BORDER_REFLECT_101", "wrap": "BORDER_WRAP"}


def _near_ties(m_inv, h, w, perspective=False):
    """Output pixels whose source point is within 1e-3 of a half-integer: OpenCV's float32
    coordinate arithmetic there is not reproducible bit for bit (it rounds such points either
    way, depending on its code path), so nearest may pick the neighbour."""
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    M = np.eye(3)
    M[: m_inv.shape[0]] = m_inv
    wv = M[2, 0] * xs + M[2, 1] * ys + M[2, 2] if perspective else 1.0
    sx = (M[0, 0] * xs + M[0, 1] * ys + M[0, 2]) / wv
    sy = (M[1, 0] * xs + M[1, 1] * ys + M[1, 2]) / wv
    near = lambda v: np.abs(v - np.floor(v) - 0.5) < 1e-3
    return near(sx) | near(sy)


def _cv_close(got, expect, dtype, x, interp="bilinear", ties=None):
    got = to_numpy(got).astype(np.float64)
    expect = np.asarray(expect, np.float64).reshape(got.shape)
    if interp == "nearest":
        px = np.any(got != expect, axis=-1) if got.ndim == 3 else got != expect
        if ties is not None:
            px &= ~ties
        assert not px.any(), f"{px.sum()} pixels differ away from ties"
        return
    if np.dtype(dtype) == np.uint8:
        assert np.abs(got - expect).max(initial=0) <= 1
    elif np.dtype(dtype) == np.uint16:
        assert np.abs(got - expect).max(initial=0) <= 1
    else:
        scale = max(1.0, float(np.abs(x.astype(np.float64)).max()), 17.0)
        np.testing.assert_allclose(got, expect, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_affine_matches_opencv(xp, rng, dtype, interp, border, channels):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (37, 53, channels), dtype, 0, 255 if np.dtype(dtype).kind == "u" else None)
    flags = getattr(cv2, _CVI[interp])
    bmode = getattr(cv2, _CVB[border])
    for k, m in enumerate(AFFINES):
        if k == 2 and border in ("reflect", "reflect101", "wrap"):
            # samples more than one image away: OpenCV's fast border rule is only valid within
            # one period there (imkern reflects/wraps any distance, as imkern.filters)
            continue
        for inverse in (False, True):
            got = warp_affine(xp.asarray(x), m, (41, 47), interpolation=interp, border=border, cval=17,
                              inverse=inverse)
            exp = cv2.warpAffine(x, m, (47, 41), flags=flags | (cv2.WARP_INVERSE_MAP if inverse else 0),
                                 borderMode=bmode, borderValue=(17,) * 4)
            ties = _near_ties(m if inverse else cv2.invertAffineTransform(m), 41, 47)
            _cv_close(got, exp, dtype, x, interp, ties)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_perspective_matches_opencv(xp, rng, dtype, interp, border, channels):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (37, 53, channels), dtype, 0, 255 if np.dtype(dtype).kind == "u" else None)
    flags = getattr(cv2, _CVI[interp]) | cv2.WARP_INVERSE_MAP
    for m in PERSPECTIVES:
        got = warp_perspective(xp.asarray(x), m, (41, 47), interpolation=interp, border=border, cval=9, inverse=True)
        exp = cv2.warpPerspective(x, m, (47, 41), flags=flags, borderMode=getattr(cv2, _CVB[border]),
                                  borderValue=(9,) * 4)
        _cv_close(got, exp, dtype, x, interp, _near_ties(m, 41, 47, perspective=True))


def test_perspective_forward_matrix_matches_opencv(xp, rng):
    """With a forward matrix OpenCV inverts it with its own LU, NumPy with LAPACK's: the same
    but for the last bit, so at most a handful of pixels may land a step apart."""
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (60, 80, 3), np.uint8)
    for m in PERSPECTIVES:
        got = to_numpy(warp_perspective(xp.asarray(x), m, (50, 70))).astype(int)
        exp = cv2.warpPerspective(x, m, (70, 50)).astype(int)
        d = np.abs(got - exp)
        assert (d > 1).mean() < 1e-3


def test_rotate_matches_opencv_and_skimage(xp):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    for img in [data.astronaut(), data.camera(), data.coffee()]:
        h, w = img.shape[:2]
        for angle in [30, -12.5, 90]:
            m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
            for interp in INTERPS:
                exp = cv2.warpAffine(img, m, (w, h), flags=getattr(cv2, _CVI[interp]))
                _cv_close(rotate(xp.asarray(img), angle, interpolation=interp), exp, np.uint8, img, interp,
                          _near_ties(cv2.invertAffineTransform(m), h, w))
    tf = pytest.importorskip("skimage.transform")
    f = data.camera().astype(np.float64) / 255
    sk = tf.rotate(f, 30, order=1, mode="constant", cval=0)
    got = to_numpy(rotate(xp.asarray(f), 30))
    inner = (slice(40, -40), slice(40, -40))
    np.testing.assert_allclose(got[inner], sk[inner], atol=0.03)  # different sub-pixel rounding only


def test_real_photograph_affine_matches_opencv(xp):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = data.chelsea()
    m = np.array([[0.8, -0.2, 30.5], [0.15, 0.9, -10.25]])
    for interp in INTERPS:
        for border in BORDERS:
            exp = cv2.warpAffine(img, m, (400, 250), flags=getattr(cv2, _CVI[interp]),
                                 borderMode=getattr(cv2, _CVB[border]))
            _cv_close(warp_affine(xp.asarray(img), m, (250, 400), interpolation=interp, border=border), exp,
                      np.uint8, img, interp, _near_ties(cv2.invertAffineTransform(m), 250, 400))


# ---- layouts, views, out= -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_negative_views(xp, rng, dtype):
    base = random_array(rng, (40, 50, 4), dtype)
    m = AFFINES[0]
    for name, v in {"flipped rows": base[::-1], "flipped cols": base[:, ::-1], "strided": base[::2, ::3],
                    "channel slice": base[..., 1:4], "fortran": np.asfortranarray(base)}.items():
        before = v.copy()
        for interp in INTERPS:
            np.testing.assert_array_equal(
                to_numpy(warp_affine(xp.asarray(v), m, (21, 33), interpolation=interp)),
                to_numpy(warp_affine(xp.asarray(np.ascontiguousarray(v)), m, (21, 33), interpolation=interp)),
                err_msg=name)
        np.testing.assert_array_equal(v, before)


def test_batch_equals_per_image(xp, rng):
    x = random_array(rng, (3, 21, 19, 3), np.uint8)
    for interp in INTERPS:
        got = to_numpy(warp_perspective(xp.asarray(x), PERSPECTIVES[0], (15, 25), interpolation=interp))
        for i in range(3):
            np.testing.assert_array_equal(
                got[i], to_numpy(warp_perspective(xp.asarray(x[i]), PERSPECTIVES[0], (15, 25), interpolation=interp)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out(xp, rng, dtype):
    x = random_array(rng, (2, 15, 16, 3), dtype)
    expect = to_numpy(warp_affine(xp.asarray(x), AFFINES[0], (7, 9)))
    out = xp.asarray(random_array(rng, (2, 7, 9, 3), dtype))
    assert warp_affine(xp.asarray(x), AFFINES[0], (7, 9), out=out) is out
    np.testing.assert_array_equal(to_numpy(out), expect)
    big = xp.asarray(random_array(rng, (2, 7, 18, 3), dtype))
    view = big[:, :, ::2]
    assert warp_affine(xp.asarray(x), AFFINES[0], (7, 9), out=view) is view
    np.testing.assert_array_equal(to_numpy(view), expect)
    out2 = xp.asarray(random_array(rng, (2, 15, 16, 3), dtype))
    assert rotate(xp.asarray(x), 10, out=out2) is out2
    np.testing.assert_array_equal(to_numpy(out2), to_numpy(rotate(xp.asarray(x), 10)))


def test_one_pixel_and_zero_batch(xp, rng):
    x = random_array(rng, (1, 1, 3), np.uint8)
    got = to_numpy(warp_affine(xp.asarray(x), [[1, 0, 0], [0, 1, 0]], (2, 3), border="replicate"))
    assert (got == x[0, 0]).all()
    z = xp.zeros((0, 5, 6, 3), np.uint8)
    assert warp_affine(z, AFFINES[0], (3, 4)).shape == (0, 3, 4, 3)


def test_bad_arguments(xp):
    x = xp.zeros((5, 6, 3), np.uint8)
    m = [[1, 0, 0], [0, 1, 0]]
    for size in [(0, 3), (3, -1), (3,)]:
        with pytest.raises(ValueError, match="size"):
            warp_affine(x, m, size)
    with pytest.raises(TypeError, match="size"):
        warp_affine(x, m, 5)
    for bad in [np.eye(3), [[1, 0], [0, 1]], [1, 2, 3], np.zeros((2, 3, 1))]:
        with pytest.raises(ValueError, match="matrix"):
            warp_affine(x, bad, (3, 3))
    with pytest.raises(ValueError, match="matrix"):
        warp_affine(x, [[1, 0, np.nan], [0, 1, 0]], (3, 3))
    with pytest.raises(TypeError, match="matrix"):
        warp_affine(x, "abc", (3, 3))
    with pytest.raises(ValueError, match="matrix"):
        warp_perspective(x, np.eye(2), (3, 3))
    with pytest.raises(ValueError, match="matrix"):
        warp_perspective(x, np.zeros((3, 3)), (3, 3))
    with pytest.raises(ValueError, match="interpolation"):
        warp_affine(x, m, (3, 3), interpolation="area")
    with pytest.raises(ValueError, match="interpolation"):
        rotate(x, 10, interpolation="lanczos")
    with pytest.raises(ValueError, match="border"):
        warp_affine(x, m, (3, 3), border="bogus")
    with pytest.raises(TypeError, match="cval"):
        warp_affine(x, m, (3, 3), cval="red")
    with pytest.raises(TypeError, match="angle"):
        rotate(x, "90")
    with pytest.raises(ValueError, match="angle"):
        rotate(x, float("inf"))
    with pytest.raises(TypeError, match="image"):
        warp_affine(xp.zeros((5, 6), np.int8), m, (3, 3))
    with pytest.raises(ValueError, match="out"):
        warp_affine(x, m, (3, 3), out=xp.zeros((3, 4, 3), np.uint8))


# ---- ISA levels, threads, devices -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_level(rng, isa, dtype):
    x = random_array(rng, (33, 45, 3), dtype)
    for interp in INTERPS:
        _close(warp_affine(x, AFFINES[0], (30, 40), interpolation=interp, border="reflect"),
               R.warp_affine(x, AFFINES[0], (30, 40), interpolation=interp, border="reflect"), dtype, x)


def test_same_bits_on_every_isa_level_and_thread_count(rng):
    x = random_array(rng, (2, 70, 90, 3), np.uint8)
    xf = random_array(rng, (70, 90, 2), np.float32)
    results = []
    for isa in imkern.info()["cpu_isa_available"]:
        for n in (1, 3):
            before_isa, before_n = imkern.get_cpu_isa(), imkern.get_num_threads()
            imkern.set_cpu_isa(isa)
            imkern.set_num_threads(n)
            try:
                r = []
                for interp in INTERPS:
                    r.append(warp_affine(x, AFFINES[0], (60, 100), interpolation=interp))
                    r.append(warp_perspective(x, PERSPECTIVES[1], (60, 100), interpolation=interp, border="wrap"))
                    r.append(rotate(xf, 33, interpolation=interp))
                results.append(r)
            finally:
                imkern.set_cpu_isa(before_isa)
                imkern.set_num_threads(before_n)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU, a CUDA build of imkern and CuPy")
@pytest.mark.cuda
def test_uint8_same_bits_on_cpu_and_cuda(rng):
    import cupy

    for channels in (1, 2, 3):
        x = random_array(rng, (2, 81, 67, channels), np.uint8)
        for interp in INTERPS:
            for border in BORDERS:
                for fn, m in [(warp_affine, AFFINES[0]), (warp_perspective, PERSPECTIVES[0])]:
                    cpu = fn(x, m, (70, 90), interpolation=interp, border=border, cval=40)
                    gpu = fn(cupy.asarray(x), m, (70, 90), interpolation=interp, border=border, cval=40)
                    np.testing.assert_array_equal(cupy.asnumpy(gpu), cpu, err_msg=f"{fn.__name__} {interp} {border}")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bilinear_vector_rows_same_bits_on_every_isa_level(rng, channels, dtype):
    """The AVX2/AVX-512 rows of the float-scheme bilinear uint8 and float32 warp (gathered
    chunks of 8/16 pixels, the scalar loop for chunks that touch the border) give the scalar
    path's bits: rotations, shrinking, enlarging, shifts off the image, every border, odd sizes,
    strided and negative-stride views, batches; and stay within 1 (uint8) or the float32
    tolerance of OpenCV."""
    cv2 = pytest.importorskip("cv2")
    big = random_array(rng, (2, 131, 157, channels), dtype)
    views = [big[0], big[1, ::-1], big[0, 1:100:2, 3:140], big]
    mats = [np.array([[0.96, -0.17, 6.5], [0.17, 0.96, -12.25]]), np.array([[1.7, 0.3, -20.0], [-0.2, 1.4, 3.0]]),
            np.array([[0.45, 0.0, 0.3], [0.0, 0.52, 0.7]]), np.array([[1.0, 0.0, -150.0], [0.0, 1.0, 0.0]]),
            np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])]
    before = imkern.get_cpu_isa()
    try:
        for v in views:
            for m in mats:
                for border in ("constant", "replicate", "reflect"):
                    res = []
                    for isa in imkern.info()["cpu_isa_available"]:
                        imkern.set_cpu_isa(isa)
                        res.append(warp_affine(v, m, (97, 131), border=border, cval=7))
                    for r in res[1:]:
                        np.testing.assert_array_equal(r, res[0])
                    if v.ndim == 3 and border == "constant":
                        exp = cv2.warpAffine(np.ascontiguousarray(v), m, (131, 97), flags=cv2.INTER_LINEAR,
                                             borderValue=(7,) * 4)
                        _cv_close(res[0], exp, dtype, v)
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bilinear_vector_rows_edge_cases_same_bits_on_every_isa_level(rng, channels, dtype):
    """Chunks of the vector rows that are partly inside (the vector lanes kept, float_row for
    the rest), images too small for any vector load, coordinates far outside, every border:
    the scalar path's bits on every ISA level."""
    shapes = [(1, 1), (2, 2), (2, 3), (3, 2), (5, 3), (2, 40), (40, 2), (17, 19), (64, 80)]
    mats = [
        np.array([[0.96, -0.17, 1.5], [0.17, 0.96, -2.25]]),
        np.array([[0.5, 0.0, 0.25], [0.0, 0.5, 0.75]]),
        np.array([[3.0, 0.1, -1.0], [-0.1, 2.5, -0.5]]),
        np.array([[1.0, 0.0, -0.999], [0.0, 1.0, -0.999]]),
        np.array([[1e-6, 0.0, 0.5], [0.0, 1e-6, 0.5]]),
        np.array([[1e6, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        np.array([[-1.0, 0.0, 30.0], [0.0, -1.0, 20.0]]),
        # floored coordinates at int32's limits (the inside test compares them as unsigned
        # integers: just below 2^31, and past it either way, where the conversion gives 0x80000000)
        np.array([[1.0, 0.0, 2147483000.0], [0.0, 1.0, 0.0]]),
        np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -2147483000.0]]),
        np.array([[1.0, 0.0, 2.2e9], [0.0, 1.0, -2.2e9]]),
    ]
    perspectives = [
        np.array([[1.0, 0.0, -10.0], [0.0, 1.0, 0.0], [-0.1, 0.0, 1.0]]),
        np.array([[0.5, 0.1, 2.0], [0.0, 1.0, -10.0], [0.0, -0.1, 1.0]]),
    ]
    before = imkern.get_cpu_isa()
    try:
        for hw in shapes:
            x = random_array(rng, hw + (channels,), dtype)
            for m in mats:
                for border in BORDERS:
                    res = []
                    for isa in imkern.info()["cpu_isa_available"]:
                        imkern.set_cpu_isa(isa)
                        res.append(warp_affine(x, m, (23, 37), border=border, cval=201, inverse=True))
                    for r in res[1:]:
                        np.testing.assert_array_equal(r, res[0], err_msg=f"{hw} {m.tolist()} {border}")
            # perspective maps through w = 0: infinite and NaN coordinates (0 / 0 at x = 10)
            for p in perspectives:
                for border in ("constant", "reflect"):
                    res = []
                    for isa in imkern.info()["cpu_isa_available"]:
                        imkern.set_cpu_isa(isa)
                        res.append(warp_perspective(x, p, (23, 37), border=border, cval=201, inverse=True))
                    for r in res[1:]:
                        np.testing.assert_array_equal(r, res[0], err_msg=f"{hw} {p.tolist()} {border}")
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_bilinear_wide_rows_same_bits_on_every_isa_level(rng, channels, dtype):
    """Rows wide enough for several 256-pixel blocks of the vector rows: blocks whose chunks are
    all inside (the loop of chunks alone, with its prefetches 64 pixels ahead), blocks that
    leave the image part way, the tail after the last whole chunk (odd widths); affine and
    perspective, contiguous and negative-stride views, 2 channels (no vector rows) alongside:
    uint8 and float32, the scalar path's bits on every ISA level, and within 1 (float32: the
    float32 tolerance) of OpenCV (1, 3, 4 channels: the 2-channel fixed scheme's uint8
    perspective differs from OpenCV by up to 6 at a pixel or two here)."""
    cv2 = pytest.importorskip("cv2")
    big = random_array(rng, (181, 803, channels), dtype)
    views = [big, big[::-1, 1:]]
    affines = [
        np.array([[0.96, -0.17, 12.5], [0.17, 0.96, -30.25]]),  # rotation: corners outside
        np.array([[1.1, 0.0, 3.3], [0.0, 0.9, 2.6]]),  # every block inside but the right edge
        np.array([[1.0, 0.02, 400.7], [-0.01, 1.0, 5.2]]),  # leaves the image mid-row
    ]
    perspectives = [
        np.array([[0.96, -0.17, 12.5], [0.17, 0.96, -30.25], [1e-5, 2e-5, 1.0]]),
        np.array([[1.0, 0.05, 1.5], [0.02, 1.0, 2.5], [4e-4, -1e-4, 1.0]]),
        # every block inside: each block's source points computed during the block before
        np.array([[0.5, 0.01, 10.3], [0.02, 0.5, 5.1], [1e-5, 2e-5, 1.0]]),
    ]
    out_hw = (67, 777)
    before = imkern.get_cpu_isa()
    try:
        for v in views:
            for fn, mats in ((warp_affine, affines), (warp_perspective, perspectives)):
                for m in mats:
                    for border in ("constant", "replicate", "reflect"):
                        res = []
                        for isa in imkern.info()["cpu_isa_available"]:
                            imkern.set_cpu_isa(isa)
                            res.append(fn(v, m, out_hw, border=border, cval=9))
                        for r in res[1:]:
                            np.testing.assert_array_equal(r, res[0], err_msg=f"{fn.__name__} {m.tolist()} {border}")
                        # (float32 perspective: OpenCV's source points differ from the float
                        # scheme's by an ulp at some pixels of the steep second map and the
                        # zoom of the third, 1e-3 where cval meets the data; the scalar path's
                        # bits have always differed there)
                        cv_ulp = dtype == np.float32 and any(m is p for p in perspectives[1:])
                        if border == "constant" and channels != 2 and not cv_ulp:
                            cv = cv2.warpAffine if fn is warp_affine else cv2.warpPerspective
                            exp = cv(np.ascontiguousarray(v), m, out_hw[::-1], flags=cv2.INTER_LINEAR,
                                     borderValue=(9,) * 4)
                            _cv_close(res[0], exp, dtype, v)
    finally:
        imkern.set_cpu_isa(before)


def _all_isas(fn):
    """fn() on every ISA level available (baseline first: the scalar float_row path)."""
    before = imkern.get_cpu_isa()
    try:
        res = []
        for isa in imkern.info()["cpu_isa_available"]:
            imkern.set_cpu_isa(isa)
            res.append(to_numpy(fn()))
        return res
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_vector_rows_every_border_same_bits_on_every_isa_level(rng, interp, dtype, channels):
    """The vector rows of the float scheme for lanes outside the image under every border rule
    (taps mapped by the rule's closed forms within a period; lanes farther out, not finite or
    straddling are float_row's), nearest for 1-4 channels (dword gathers for pixels of up to 4
    bytes, reads at the image's last bytes shifted down; wider pixels copied) and bilinear
    (uint8 / float32, 1, 3, 4 channels: gathers per tap): the scalar path's bits on every ISA
    level, for rotations leaving the image, shifts beyond one period, mirrors onto the last
    pixel, tiny images, views with negative strides, perspective maps through w = 0."""
    mats = [
        np.array([[0.96, -0.17, 6.5], [0.17, 0.96, -12.25]]),  # rotation, corners outside
        np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),  # identity: the last pixel, dword reads
        np.array([[-1.0, 0.0, 40.0], [0.0, -1.0, 30.0]]),  # mirror through the image's end
        np.array([[1.3, 0.2, -35.0], [-0.1, 1.2, -20.0]]),  # a period and more outside
        np.array([[0.5, 0.0, -0.75], [0.0, 0.5, -0.5]]),  # half-pixel ties, left/top edge
        np.array([[3.0, 0.1, -1.0], [-0.1, 2.5, -0.5]]),
        np.array([[1e6, 0.0, 0.0], [0.0, 1.0, 0.0]]),  # far outside
    ]
    perspectives = [
        np.array([[1.0, 0.0, -10.0], [0.0, 1.0, 0.0], [-0.1, 0.0, 1.0]]),  # w = 0 at x = 10
        np.array([[0.96, -0.17, 12.5], [0.17, 0.96, -10.25], [1e-3, 2e-3, 1.0]]),
    ]
    big = random_array(rng, (37, 45, channels), dtype)
    images = [big, big[::-1, ::-1], big[3:30:2, 1:44], random_array(rng, (1, 1, channels), dtype),
              random_array(rng, (1, 2, channels), dtype), random_array(rng, (2, 1, channels), dtype),
              random_array(rng, (3, 3, channels), dtype), random_array(rng, (2, 5, channels), dtype)]
    for x in images:
        for border in BORDERS:
            for m in mats:
                res = _all_isas(lambda x=x, m=m, border=border: warp_affine(x, m, (33, 41), interpolation=interp,
                                                                              border=border, cval=77, inverse=True))
                for r in res[1:]:
                    np.testing.assert_array_equal(r, res[0], err_msg=f"{x.shape} {m.tolist()} {border}")
            for p in perspectives:
                res = _all_isas(lambda x=x, p=p, border=border: warp_perspective(x, p, (33, 41), interpolation=interp,
                                                                                   border=border, cval=77, inverse=True))
                for r in res[1:]:
                    np.testing.assert_array_equal(r, res[0], err_msg=f"{x.shape} {p.tolist()} {border}")


@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_vector_rows_every_border_wide_rows_match_opencv(rng, interp, dtype, channels):
    """Wide rows (several 256-pixel blocks, odd widths) of a rotation under every border rule:
    the same bits on every ISA level, and cv2's result (nearest: exact away from half-pixel
    ties; bilinear: within 1 for uint8, the float32 tolerance)."""
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (181, 803, channels), dtype, 0, 255 if dtype == np.uint8 else None)
    m = np.array([[0.96, -0.17, 12.5], [0.17, 0.96, -30.25]])
    p = np.array([[0.96, -0.17, 12.5], [0.17, 0.96, -30.25], [1e-5, 2e-5, 1.0]])
    for border in BORDERS:
        for fn, cvfn, mat in ((warp_affine, cv2.warpAffine, m), (warp_perspective, cv2.warpPerspective, p)):
            res = _all_isas(lambda fn=fn, mat=mat, border=border: fn(x, mat, (167, 777), interpolation=interp, border=border,
                                                                 cval=9, inverse=True))
            for r in res[1:]:
                np.testing.assert_array_equal(r, res[0], err_msg=f"{fn.__name__} {border}")
            exp = cvfn(x, mat, (777, 167), flags=getattr(cv2, _CVI[interp]) | cv2.WARP_INVERSE_MAP,
                       borderMode=getattr(cv2, _CVB[border]), borderValue=(9,) * 4)
            ties = _near_ties(mat, 167, 777, perspective=fn is warp_perspective)
            _cv_close(res[-1], exp, dtype, x, interp, ties)
