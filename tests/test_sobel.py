"""imkern.filters derivatives (sobel, scharr, prewitt, laplacian, gradient, gradient_magnitude)
and unsharp_mask: against the reference, OpenCV and SciPy, on every device, ISA and dtype."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(1, 1), (1, 7), (6, 1), (3, 257), (17, 13), (9, 11, 3), (5, 8, 4), (2, 7, 9, 3), (3, 5, 6, 1)]
KSIZES = [1, 3, 5, 7, -1]
ORDERS = [(1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (2, 1), (3, 0), (1, 3)]


def _valid(dx, dy, k):
    if k == -1:
        return dx + dy == 1
    if k == 1:
        return dx <= 2 and dy <= 2
    return dx < k and dy < k


def _odt(dt):
    return np.float64 if np.dtype(dt) == np.float64 else np.float32


def _mag(x):
    return max(1.0, float(np.abs(to_numpy(x).astype(np.float64)).max()))


def _ksum(ksize):
    # sum of |taps| of the 2-D kernel (bounds the float32 rounding of a derivative)
    return {1: 4.0, 3: 16.0, 5: 256.0, 7: 4096.0, -1: 64.0}[ksize]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_sobel_matches_reference(xp, rng, dtype, shape):
    x = random_array(rng, shape, dtype)
    for k in KSIZES:
        for dx, dy in ORDERS:
            if not _valid(dx, dy, k):
                continue
            border = BORDERS[int(rng.integers(len(BORDERS)))]
            got = F.sobel(xp.asarray(x), dx, dy, ksize=k, scale=0.75, delta=-2.0, border=border, cval=3.0)
            assert got.dtype == _odt(dtype) and got.shape == x.shape and type(got) is type(xp.asarray(x))
            ref = R.sobel(x, dx, dy, ksize=k, scale=0.75, delta=-2.0, border=border, cval=3.0)
            assert_close(got, ref.astype(np.float64), _odt(dtype), scale=_ksum(k) * (_mag(x) + 3),
                         err_msg=f"k={k} d=({dx},{dy}) {border}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_derivatives_match_reference(xp, rng, dtype, shape, border):
    x = random_array(rng, shape, dtype)
    X = xp.asarray(x)
    m = _mag(x) + 2
    for dx, dy in [(1, 0), (0, 1)]:
        assert_close(F.scharr(X, dx, dy, scale=2.0, border=border, cval=2.0),
                     R.scharr(x, dx, dy, scale=2.0, border=border, cval=2.0), _odt(dtype), scale=64 * 2 * m)
        assert_close(F.prewitt(X, dx, dy, delta=1.5, border=border, cval=2.0),
                     R.prewitt(x, dx, dy, delta=1.5, border=border, cval=2.0), _odt(dtype), scale=9 * m)
    for k in (1, 3, 5, 7):
        assert_close(F.laplacian(X, ksize=k, scale=0.5, delta=3.0, border=border, cval=2.0),
                     R.laplacian(x, ksize=k, scale=0.5, delta=3.0, border=border, cval=2.0), _odt(dtype),
                     scale=_ksum(k) * 2 * m, err_msg=f"laplacian {k}")
    for k in KSIZES:
        gx, gy = F.gradient(X, ksize=k, border=border, cval=2.0)
        rx, ry = R.gradient(x, ksize=k, border=border, cval=2.0)
        assert gx.dtype == gy.dtype == _odt(dtype)
        assert_close(gx, rx, _odt(dtype), scale=_ksum(k) * m)
        assert_close(gy, ry, _odt(dtype), scale=_ksum(k) * m)
        for l2 in (True, False):
            assert_close(F.gradient_magnitude(X, ksize=k, l2=l2, border=border, cval=2.0),
                         R.gradient_magnitude(x, ksize=k, l2=l2, border=border, cval=2.0), _odt(dtype),
                         scale=2 * _ksum(k) * m, err_msg=f"magnitude k={k} l2={l2}")


def test_integer_results_are_exact(xp, rng):
    # uint8 / uint16 sums of integer taps are exact in float32: equal bits to the reference
    for dtype in (np.uint8, np.uint16):
        x = random_array(rng, (19, 23, 3), dtype, high=(255 if dtype == np.uint8 else 1000))
        X = xp.asarray(x)
        for k in (1, 3, 5):
            for dx, dy in [(1, 0), (0, 1), (1, 1), (2, 0)]:
                assert np.array_equal(to_numpy(F.sobel(X, dx, dy, ksize=k)), R.sobel(x, dx, dy, ksize=k))
            assert np.array_equal(to_numpy(F.laplacian(X, ksize=k)), R.laplacian(x, ksize=k))
        gx, gy = F.gradient(X)
        assert np.array_equal(to_numpy(gx), R.sobel(x, 1, 0)) and np.array_equal(to_numpy(gy), R.sobel(x, 0, 1))
        assert np.array_equal(to_numpy(F.gradient_magnitude(X, l2=False)), R.gradient_magnitude(x, l2=False))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_unsharp_mask_matches_reference(xp, rng, dtype, border):
    for shape in [(1, 1), (4, 1), (17, 23), (9, 11, 3), (2, 6, 7, 2)]:
        x = random_array(rng, shape, dtype)
        scale = float(np.abs(x.astype(float)).max()) + 1
        for kw in ({"sigma": 1.0}, {"sigma": (0.6, 2.0), "amount": 2.5, "threshold": 0.1 * scale},
                   {"sigma": 0, "ksize": (5, 3), "amount": -0.5}):
            got = to_numpy(F.unsharp_mask(xp.asarray(x), border=border, cval=1.0, **kw))
            assert got.dtype == x.dtype and got.shape == x.shape
            ref = R.unsharp_mask(x, border=border, cval=1.0, **kw)
            if "threshold" in kw:
                # |x - blur| within rounding of the threshold may take either side of the select
                # (the kernel's blur is float32): there, either side's value; elsewhere, the
                # reference's
                blur = R.unsharp_mask(x, border=border, cval=1.0, **{**kw, "amount": -1.0, "threshold": 0.0})
                d = x.astype(np.float64) - blur.astype(np.float64)
                near = np.abs(np.abs(d) - kw["threshold"]) <= 1e-4 * scale
                sharp = R.unsharp_mask(x, border=border, cval=1.0, **{**kw, "threshold": 0.0})
                g64 = got.astype(np.float64)
                side = np.where(np.abs(g64 - x) < np.abs(g64 - sharp), x, sharp)
                ref = np.where(near, side, ref)
            if np.dtype(dtype).kind == "u":
                assert_close(got, ref, dtype, err_msg=str(kw))
            else:
                assert_close(got, ref, dtype, scale=4 * scale, err_msg=str(kw))


# ---- ISA levels and threads: identical bits to the baseline ----------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_isa_levels_and_threads_agree(rng, isa, threads, dtype):
    x = random_array(rng, (67, 301, 3), dtype)
    imkern.set_cpu_isa("baseline")
    base = [F.sobel(x, 1, 0, ksize=5), F.laplacian(x, ksize=3), F.gradient_magnitude(x), *F.gradient(x, ksize=7),
            F.unsharp_mask(x, 1.3, 1.5)]
    imkern.set_cpu_isa(isa)
    got = [F.sobel(x, 1, 0, ksize=5), F.laplacian(x, ksize=3), F.gradient_magnitude(x), *F.gradient(x, ksize=7),
           F.unsharp_mask(x, 1.3, 1.5)]
    for g, b in zip(got, base):
        if np.dtype(dtype).kind == "u" and g.dtype == x.dtype:
            assert np.abs(g.astype(int) - b.astype(int)).max() <= 1
        else:
            assert_close(g, b.astype(np.float64), g.dtype, scale=4096 * _mag(x))


def test_threads_give_identical_bits(rng):
    x = random_array(rng, (257, 190, 3), np.float32)
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        one = [F.sobel(x, 1, 1, ksize=5), F.gradient_magnitude(x), F.unsharp_mask(x, 2.0)]
        imkern.set_num_threads(3)
        many = [F.sobel(x, 1, 1, ksize=5), F.gradient_magnitude(x), F.unsharp_mask(x, 2.0)]
    finally:
        imkern.set_num_threads(before)
    for a, b in zip(one, many):
        assert np.array_equal(a, b)


# ---- peers -----------------------------------------------------------------------------------
_CV_BORDERS = {"reflect101": 4, "reflect": 2, "replicate": 1, "constant": 0, "wrap": 3}


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_opencv(xp, rng, dtype):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (41, 57, 3), dtype)
    X = xp.asarray(x)
    dd = cv2.CV_64F if dtype == np.float64 else cv2.CV_32F
    m = _mag(x)
    for border in ("reflect101", "reflect", "replicate"):
        cb = _CV_BORDERS[border]
        for k in KSIZES:
            for dx, dy in ORDERS:
                if not _valid(dx, dy, k) or (k == 1 and dx + dy > 2 and dx and dy):
                    continue
                ref = cv2.Sobel(x, dd, dx, dy, ksize=k, scale=1.25, delta=0.5, borderType=cb)
                got = to_numpy(F.sobel(X, dx, dy, ksize=k, scale=1.25, delta=0.5, border=border))
                assert_close(got, ref.astype(np.float64), _odt(dtype), scale=_ksum(k) * 2 * m,
                             err_msg=f"sobel k={k} ({dx},{dy}) {border}")
                if dtype == np.uint8 and k != -1:
                    assert np.array_equal(got, ref)  # exact integers, exact scale 1.25
        for dx, dy in [(1, 0), (0, 1)]:
            assert_close(F.scharr(X, dx, dy, border=border), cv2.Scharr(x, dd, dx, dy, borderType=cb),
                         _odt(dtype), scale=64 * m)
        for k in (1, 3, 5, 7):
            ref = cv2.Laplacian(x, dd, ksize=k, scale=2.0, delta=-1.0, borderType=cb)
            assert_close(F.laplacian(X, ksize=k, scale=2.0, delta=-1.0, border=border), ref, _odt(dtype),
                         scale=_ksum(k) * 2 * m, err_msg=f"laplacian {k} {border}")
    gx, gy = cv2.Sobel(x, dd, 1, 0), cv2.Sobel(x, dd, 0, 1)
    assert_close(F.gradient_magnitude(X), cv2.magnitude(gx, gy), _odt(dtype), scale=32 * m)


def test_derivative_kernels_match_opencv():
    cv2 = pytest.importorskip("cv2")
    from imkern.filters._derivatives import sobel_kernels

    for k in (1, 3, 5, 7, -1):
        for dx, dy in ORDERS:
            if not _valid(dx, dy, k):
                continue
            kx, ky = sobel_kernels(dx, dy, k)
            cx, cy = cv2.getDerivKernels(dx, dy, k)
            assert np.array_equal(kx, cx.ravel()) and np.array_equal(ky, cy.ravel()), (k, dx, dy)


def test_prewitt_matches_scipy(rng):
    ndi = pytest.importorskip("scipy.ndimage")
    x = random_array(rng, (33, 41), np.float64)
    for border, mode in [("reflect101", "mirror"), ("reflect", "reflect"), ("replicate", "nearest"),
                         ("wrap", "grid-wrap")]:
        assert_close(F.prewitt(x, 1, 0, border=border), ndi.prewitt(x, axis=1, mode=mode), np.float64, scale=9)
        assert_close(F.prewitt(x, 0, 1, border=border), ndi.prewitt(x, axis=0, mode=mode), np.float64, scale=9)
        assert_close(F.sobel(x, 1, 0, border=border), ndi.sobel(x, axis=1, mode=mode), np.float64, scale=16)


# ---- layouts, views, out= --------------------------------------------------------------------
_VIEWS = [
    ("reversed rows", lambda a: a[::-1]),
    ("reversed cols", lambda a: a[:, ::-1]),
    ("strided", lambda a: a[::2, ::3]),
    ("fortran", lambda a: (np if isinstance(a, np.ndarray) else __import__("cupy")).asfortranarray(a)),
    ("channel slice", lambda a: a[..., 1:]),
    ("reversed channels", lambda a: a[..., ::-1]),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_and_input_unchanged(xp, rng, dtype):
    base = random_array(rng, (21, 26, 3), dtype)
    for name, view in _VIEWS:
        v = view(base)
        V = view(xp.asarray(base))
        before = v.copy()
        for fn, ref in [(lambda a: F.sobel(a, 1, 1), lambda a: R.sobel(a, 1, 1)),
                        (lambda a: F.laplacian(a, ksize=5), lambda a: R.laplacian(a, ksize=5)),
                        (F.gradient_magnitude, R.gradient_magnitude),
                        (lambda a: F.unsharp_mask(a, 1.0, 2.0), lambda a: R.unsharp_mask(a, 1.0, 2.0))]:
            got = fn(V)
            assert_close(got, ref(v), got.dtype, scale=256 * _mag(v), err_msg=name)
        assert np.array_equal(to_numpy(V), before), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(xp, rng, dtype):
    x = xp.asarray(random_array(rng, (13, 17, 2), dtype))
    odt = _odt(dtype)
    out = xp.full(x.shape, np.nan, dtype=odt)
    r = F.sobel(x, 0, 1, ksize=5, out=out)
    assert r is out
    assert np.array_equal(to_numpy(out), to_numpy(F.sobel(x, 0, 1, ksize=5)))
    # a strided out receives the result by copy
    big = xp.full((13, 34, 2), -7.0, dtype=odt)
    r = F.gradient_magnitude(x, out=big[:, ::2])
    assert np.array_equal(to_numpy(big[:, ::2]), to_numpy(F.gradient_magnitude(x)))
    assert (to_numpy(big[:, 1::2]) == -7).all()
    ox, oy = xp.zeros(x.shape, odt), xp.zeros(x.shape, odt)
    gx, gy = F.gradient(x, out=(ox, oy))
    assert gx is ox and gy is oy
    rx, ry = F.gradient(x)
    assert np.array_equal(to_numpy(ox), to_numpy(rx)) and np.array_equal(to_numpy(oy), to_numpy(ry))
    u = xp.zeros(x.shape, x.dtype)
    assert F.unsharp_mask(x, 1.0, out=u) is u
    with pytest.raises(TypeError, match="out"):
        F.sobel(x, out=xp.zeros(x.shape, x.dtype if odt != x.dtype else np.uint8))
    with pytest.raises(ValueError, match="out"):
        F.sobel(x, out=xp.zeros((13, 16, 2), odt))
    with pytest.raises(ValueError, match="out"):
        F.gradient(x, out=(ox, ox))


def test_empty_and_big(rng):
    for shape in [(0, 5), (4, 0), (0, 3, 3), (2, 0, 5, 1)]:
        x = np.zeros(shape, np.uint8)
        assert F.sobel(x).shape == shape and F.sobel(x).dtype == np.float32
        assert F.gradient_magnitude(x).shape == shape
    x = random_array(rng, (300, 1200), np.uint8)
    assert np.array_equal(F.sobel(x, 1, 0), R.sobel(x, 1, 0))


def test_nan_propagates(rng):
    x = random_array(rng, (9, 9), np.float32)
    x[4, 4] = np.nan
    g = F.sobel(x, 1, 0)
    assert np.isnan(g[3:6, 3]).all() and np.isnan(g[3:6, 5]).all() and not np.isnan(g[0, 0])


# ---- bad arguments ---------------------------------------------------------------------------
def test_bad_arguments():
    x = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="ksize"):
        F.sobel(x, ksize=4)
    with pytest.raises(ValueError, match="ksize"):
        F.sobel(x, ksize=9)
    with pytest.raises(ValueError, match="dx, dy"):
        F.sobel(x, 0, 0)
    with pytest.raises(ValueError, match="dx, dy"):
        F.sobel(x, 3, 0, ksize=3)
    with pytest.raises(ValueError, match="dx, dy"):
        F.sobel(x, 3, 0, ksize=1)
    with pytest.raises(ValueError, match="dx, dy"):
        F.sobel(x, 1, 1, ksize=-1)
    with pytest.raises(ValueError, match="dx"):
        F.sobel(x, -1, 1)
    with pytest.raises(TypeError, match="dx"):
        F.sobel(x, 1.5, 0)
    with pytest.raises(ValueError, match="dx, dy"):
        F.scharr(x, 1, 1)
    with pytest.raises(ValueError, match="dx, dy"):
        F.prewitt(x, 2, 0)
    with pytest.raises(ValueError, match="ksize"):
        F.laplacian(x, ksize=-1)
    with pytest.raises(ValueError, match="border"):
        F.sobel(x, border="foo")
    with pytest.raises(TypeError, match="scale"):
        F.sobel(x, scale="2")
    with pytest.raises(TypeError, match="image"):
        F.sobel(x.astype(np.int32))
    with pytest.raises(TypeError, match="image"):
        F.gradient_magnitude([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="image"):
        F.sobel(np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="sigma"):
        F.unsharp_mask(x, -1.0)
    with pytest.raises(ValueError, match="threshold"):
        F.unsharp_mask(x, 1.0, threshold=-1)
    with pytest.raises(ValueError, match="amount"):
        F.unsharp_mask(x, 1.0, amount=np.inf)
    with pytest.raises(TypeError, match="out"):
        F.gradient(x, out=np.zeros((8, 8), np.float32))


# ---- laplacian ksize 1 / 3: the fused 3x3 pass --------------------------------------------------
# Float images at least one vector of interior pixels wide (and C <= 4) read the source rows
# directly, the first and last pixel by the border rule; narrower rows, C > 4 and integer
# images take the ring of converted rows. The shapes cover both on every ISA (16, 8, 4 lanes).
_LAP_SHAPES = [(1, 1), (1, 2), (2, 1), (3, 3), (4, 6), (5, 18), (7, 19, 1), (6, 35), (9, 37, 3), (4, 70, 4),
               (5, 23, 5), (3, 11, 3), (2, 3, 41, 3)]


def _check_paths(rng, shapes, ops, dtype, border, uint8_scaled_exact=False, high=None):
    # every op of ops (name, the op of a module with keyword arguments, sum of |taps|) on every
    # shape, with and without scale and delta, against the reference: integer images exactly
    # where the sums are exact (uint8's scaled sums too where uint8_scaled_exact; `high` bounds
    # integer images where the full range would not sum exactly in float32)
    for shape in shapes:
        hi = min(high, np.iinfo(dtype).max) if high is not None and np.dtype(dtype).kind == "u" else None
        x = random_array(rng, shape, dtype, high=hi)
        m = _mag(x)
        for name, op, ks in ops:
            for scale, delta in ((1.0, 0.0), (0.75, -2.5)):
                kw = dict(scale=scale, delta=delta, border=border, cval=3.0)
                got = op(F, x, **kw)
                ref = op(R, x, **kw)
                assert got.dtype == _odt(dtype) and got.shape == x.shape
                msg = f"{shape} {name} {scale} {border}"
                if np.dtype(dtype).kind == "u" and (scale == 1.0 or (uint8_scaled_exact and dtype == np.uint8)):
                    assert np.array_equal(got, ref), msg  # exact integer sums
                else:
                    assert_close(got, ref, _odt(dtype), scale=ks * (m + 3), err_msg=msg)


def _same_bits_any_threads(rng, dtype, shapes, ops):
    # one thread and three: the chunking (the row pairs within each chunk) never changes a bit
    before = imkern.get_num_threads()
    for shape in shapes:
        x = random_array(rng, shape, dtype)
        try:
            imkern.set_num_threads(1)
            one = [op(x) for op in ops]
            imkern.set_num_threads(3)
            many = [op(x) for op in ops]
        finally:
            imkern.set_num_threads(before)
        for i, (a, b) in enumerate(zip(one, many)):
            a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
            assert all(np.array_equal(p, q) for p, q in zip(a, b)), (shape, i)


_LAP3_OPS = [(f"k={k}", lambda m, a, k=k, **kw: m.laplacian(a, ksize=k, **kw), _ksum(k)) for k in (1, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_laplacian_3x3_paths(rng, isa, threads, dtype, border):
    _check_paths(rng, _LAP_SHAPES, _LAP3_OPS, dtype, border)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_laplacian_3x3_views_and_opencv(rng, isa, dtype):
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (29, 45, 3), dtype)
    dd = cv2.CV_64F if dtype == np.float64 else cv2.CV_32F
    for name, view in _VIEWS:
        v = view(base)
        before = v.copy()
        for k in (1, 3):
            got = F.laplacian(v, ksize=k)
            assert_close(got, R.laplacian(v, ksize=k), got.dtype, scale=_ksum(k) * _mag(v), err_msg=name)
            if v.shape[-1] <= 4:
                ref = cv2.Laplacian(np.ascontiguousarray(v), dd, ksize=k)
                if dtype == np.uint8:
                    assert np.array_equal(got, ref), name
                else:
                    assert_close(got, ref, got.dtype, scale=_ksum(k) * _mag(v), err_msg=name)
        assert np.array_equal(v, before), name
    # a misaligned, padded out= (the stores start mid-vector)
    x = base[:, 1:, :1].copy()[..., 0]
    buf = np.full((x.shape[0], x.shape[1] + 5), np.nan, _odt(dtype))
    out = buf[:, 3:3 + x.shape[1]]
    F.laplacian(x, ksize=3, out=out)
    assert np.array_equal(out, F.laplacian(x, ksize=3))
    assert np.isnan(buf[:, :3]).all() and np.isnan(buf[:, 3 + x.shape[1]:]).all()


def test_laplacian_3x3_large_streams(rng):
    # past the streaming threshold: non-temporal stores from the first aligned element
    x = random_array(rng, (300, 1000, 3), np.float32)
    imkern.set_cpu_params(stream_bytes=1 << 20)
    try:
        got = F.laplacian(x, ksize=1, delta=0.5)
    finally:
        imkern.reset_cpu_params()
    assert np.array_equal(got, F.laplacian(x, ksize=1, delta=0.5))
    assert_close(got, R.laplacian(x, ksize=1, delta=0.5), np.float32, scale=4)


# ---- laplacian ksize 5 / 7: both kernels of each pass fused (hsum2_sym, vsum_sym) -------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_laplacian_5x5_7x7_fused_passes(rng, isa, dtype):
    for shape in [(1, 1), (2, 5), (6, 1), (9, 15), (8, 17, 3), (11, 40), (7, 33, 4), (5, 70, 3), (2, 4, 19, 1)]:
        x = random_array(rng, shape, dtype)
        for k in (5, 7):
            for border in BORDERS:
                got = F.laplacian(x, ksize=k, scale=0.5, delta=1.5, border=border, cval=2.0)
                ref = R.laplacian(x, ksize=k, scale=0.5, delta=1.5, border=border, cval=2.0)
                assert_close(got, ref, _odt(dtype), scale=_ksum(k) * (_mag(x) + 2), err_msg=f"{shape} k={k} {border}")
                if np.dtype(dtype).kind == "u" and k == 5:
                    assert np.array_equal(F.laplacian(x, ksize=k, border=border), R.laplacian(x, ksize=k, border=border))


# ---- sobel / scharr / prewitt 3x3: the vertical-first passes -----------------------------------
# Rows of at least 3 vectors of elements (48 float32 on AVX-512, 24 on AVX2, 12 on baseline;
# half that for float64) with 1, 3 or 4 channels take the fused pass (both passes in
# registers, the border columns by lane shifts); narrower rows, other channel counts and the
# rows next to a constant border take the two-pass path. Widths around those limits on every ISA.
_SEP3_SHAPES = [(1, 1), (1, 5), (5, 1), (2, 2, 3), (4, 11), (5, 12), (3, 23), (4, 24), (6, 25), (3, 47), (5, 48),
                (4, 49), (7, 65), (6, 97), (4, 15, 3), (5, 16, 3), (3, 17, 3), (6, 33, 3), (4, 11, 4), (5, 12, 4),
                (3, 13, 4), (4, 30, 2), (3, 20, 5), (2, 3, 50, 1), (2, 4, 19, 3)]


def _sep3_ops():
    # (name, the op with keyword arguments, sum of |taps|)
    for dx, dy in [(1, 0), (0, 1), (1, 1), (2, 0), (0, 2)]:
        yield f"sobel {dx}{dy}", lambda m, a, dx=dx, dy=dy, **kw: m.sobel(a, dx, dy, **kw), 16.0
    for dx, dy in [(1, 0), (0, 1)]:
        yield f"scharr {dx}{dy}", lambda m, a, dx=dx, dy=dy, **kw: m.scharr(a, dx, dy, **kw), 64.0
        yield f"prewitt {dx}{dy}", lambda m, a, dx=dx, dy=dy, **kw: m.prewitt(a, dx, dy, **kw), 9.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_sobel_3x3_paths(rng, isa, threads, dtype, border):
    _check_paths(rng, _SEP3_SHAPES, list(_sep3_ops()), dtype, border)


# The fused pass reads each source row's border pixels from vectors built for a block of 32
# output rows before the block runs (rows outside the block, a wrapped border's far rows, built
# on demand): tall images and batches whose rows cross those blocks and the images' ends, on
# every border, split in 1, 2 and 3 threads.
_BLOCK_SHAPES = [(101, 24), (33, 49), (34, 97), (2, 45, 25, 3), (3, 34, 24, 4), (2, 67, 49, 1), (5, 3, 30, 3)]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("border", BORDERS)
def test_3x3_border_columns_over_row_blocks(rng, isa, dtype, border):
    ops = [o for o in _sep3_ops() if o[0] in ("sobel 10", "sobel 01", "scharr 10")] + _LAP3_OPS
    before = imkern.get_num_threads()
    try:
        for nt in (1, 2, 3):
            imkern.set_num_threads(nt)
            _check_paths(rng, _BLOCK_SHAPES, ops, dtype, border)
            for shape in _BLOCK_SHAPES:
                x = random_array(rng, shape, dtype)
                kw = dict(border=border, cval=3.0)
                gx, gy = F.gradient(x, ksize=3, **kw)
                sx, sy = _grad_pair_ref(x, 3, **kw)
                m = _mag(x) + 3
                assert_close(gx, sx, _odt(dtype), scale=16 * m, err_msg=f"{shape} {nt}")
                assert_close(gy, sy, _odt(dtype), scale=16 * m, err_msg=f"{shape} {nt}")
    finally:
        imkern.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_sobel_3x3_views_streaming_and_opencv(rng, isa, dtype):
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (29, 57, 3), dtype)
    dd = cv2.CV_64F if dtype == np.float64 else cv2.CV_32F
    for name, view in _VIEWS:
        v = view(base)
        before = v.copy()
        for dx, dy in [(1, 0), (0, 1)]:
            got = F.sobel(v, dx, dy)
            assert_close(got, R.sobel(v, dx, dy), got.dtype, scale=16 * _mag(v), err_msg=name)
            if v.shape[-1] <= 4:
                ref = cv2.Sobel(np.ascontiguousarray(v), dd, dx, dy)
                if dtype == np.uint8:
                    assert np.array_equal(got, ref), name
                else:
                    assert_close(got, ref, got.dtype, scale=16 * _mag(v), err_msg=name)
                assert_close(F.scharr(v, dx, dy), cv2.Scharr(np.ascontiguousarray(v), dd, dx, dy), got.dtype,
                             scale=64 * _mag(v), err_msg=name)
        assert np.array_equal(v, before), name
    # misaligned, padded out= (the stores start mid-vector), 1 and 3 channels
    for x in (base[:, 1:, 0].copy(), base[:, 1:].copy()):
        buf = np.full((x.shape[0], x.shape[1] + 5) + x.shape[2:], np.nan, _odt(dtype))
        out = buf[:, 3:3 + x.shape[1]]
        F.sobel(x, 1, 0, out=out)
        assert np.array_equal(out, F.sobel(x, 1, 0))
        assert np.isnan(buf[:, :3]).all() and np.isnan(buf[:, 3 + x.shape[1]:]).all()
    # past the streaming threshold: non-temporal stores from the first aligned element, the
    # same bits; every alignment of the output rows
    imkern.set_cpu_params(stream_bytes=1 << 10)
    try:
        for x in (base[:, :, 0].copy(), base[:, 1:].copy(), base[:, :50, :1].copy()):
            plain = []
            for off in range(4):
                buf = np.full((x.shape[0], x.shape[1] + 8) + x.shape[2:], np.nan, _odt(dtype))
                out = buf[:, off:off + x.shape[1]]
                F.sobel(x, 1, 0, delta=0.5, out=out)
                plain.append(out)
            imkern.reset_cpu_params()
            ref = F.sobel(x, 1, 0, delta=0.5)
            imkern.set_cpu_params(stream_bytes=1 << 10)
            for o in plain:
                assert np.array_equal(o, ref)
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_3x3_paths_threads_give_identical_bits(rng, isa, dtype):
    # the fused pass pairs output rows within each thread's chunk
    ops = [lambda a: F.sobel(a, 1, 0, scale=0.3, delta=0.1), lambda a: F.sobel(a, 0, 1), F.scharr,
           lambda a: F.laplacian(a, ksize=1), lambda a: F.laplacian(a, ksize=3, scale=0.7),
           lambda a: F.sobel(a, 1, 0, border="constant", cval=2.0)]
    _same_bits_any_threads(rng, dtype, [(257, 190, 3), (301, 67), (2, 37, 50, 4)], ops)


# ---- gradient / gradient_magnitude 3x3: both derivatives in the fused pass ----------------------
# ksize 1, 3 and Scharr (-1) take the fused 3x3 pass where sobel does (rows of at least 3
# vectors, 1 / 3 / 4 channels): both derivatives from the same columns, the magnitude formed in
# registers and stored once; float rows whose stride is a whole number of vectors two at a
# time. Other images: the pair by sobel's two-pass path, magnitudes by the ring. Either way the
# pair equals the two sobel calls bit for bit, and the magnitudes equal their formula on it.
_GRAD_SHAPES = _SEP3_SHAPES + [(9, 64), (5, 32, 3), (6, 16, 4), (7, 96), (3, 40, 4), (2, 5, 64, 1), (4, 70, 2),
                               (2, 3, 7)]


def _grad_pair_ref(x, k, **kw):
    if k == -1:
        return F.scharr(x, 1, 0, **kw), F.scharr(x, 0, 1, **kw)
    return F.sobel(x, 1, 0, ksize=k, **kw), F.sobel(x, 0, 1, ksize=k, **kw)


def _l2_of(gx, gy):
    return np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2)


def _fused3(shape, dtype, isa):
    # whether the fused 3x3 pass takes the image (fused3_fits): rows of >= 3 vectors, C in 1 / 3 / 4
    lanes = {"avx512": 64, "avx2": 32, "baseline": 16}[isa] // np.dtype(_odt(dtype)).itemsize
    c = shape[-1] if len(shape) >= 3 else 1
    n = shape[-2] * c if len(shape) >= 3 else shape[-1]
    return n >= 3 * lanes and c in (1, 3, 4) and c < lanes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_gradient_3x3_paths(rng, isa, threads, dtype, border):
    odt = _odt(dtype)
    for shape in _GRAD_SHAPES:
        x = random_array(rng, shape, dtype)
        m = _mag(x) + 3
        for k in (1, 3, -1):
            kw = dict(border=border, cval=3.0)
            gx, gy = F.gradient(x, ksize=k, **kw)
            assert gx.dtype == gy.dtype == odt and gx.shape == gy.shape == x.shape
            sx, sy = _grad_pair_ref(x, k, **kw)
            assert np.array_equal(gx, sx) and np.array_equal(gy, sy), f"{shape} k={k} {border}"
            rx, ry = R.gradient(x, ksize=k, **kw)
            if np.dtype(dtype).kind == "u":
                assert np.array_equal(gx, rx) and np.array_equal(gy, ry), f"{shape} k={k} {border}"
            else:
                assert_close(gx, rx, odt, scale=_ksum(k) * m, err_msg=f"{shape} k={k} {border}")
                assert_close(gy, ry, odt, scale=_ksum(k) * m, err_msg=f"{shape} k={k} {border}")
            # the magnitudes of the pair above: exactly on the fused pass (the ring's sums round
            # rows first: within their rounding elsewhere)
            fused = _fused3(shape, dtype, isa) or np.dtype(dtype).kind == "u"
            l1 = F.gradient_magnitude(x, ksize=k, l2=False, **kw)
            assert l1.dtype == odt
            if fused:
                assert np.array_equal(l1, np.abs(gx) + np.abs(gy)), f"{shape} k={k} {border}"
            else:
                assert_close(l1, np.abs(rx) + np.abs(ry), odt, scale=2 * _ksum(k) * m, err_msg=f"{shape} k={k}")
            l2 = F.gradient_magnitude(x, ksize=k, **kw)
            assert l2.dtype == odt
            if dtype == np.uint8 and k != -1:
                # |g| <= 1020: the squares' sum is exact in float32, the sqrt correctly rounded
                assert np.array_equal(l2, _l2_of(gx, gy).astype(np.float32)), f"{shape} k={k} {border}"
            elif fused:
                assert_close(l2, _l2_of(gx, gy), odt, scale=1.0, err_msg=f"{shape} k={k} {border}")
            assert_close(l2, R.gradient_magnitude(x, ksize=k, **kw), odt, scale=2 * _ksum(k) * m)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_gradient_3x3_views_out_and_opencv(rng, isa, dtype):
    cv2 = pytest.importorskip("cv2")
    odt = _odt(dtype)
    dd = cv2.CV_64F if dtype == np.float64 else cv2.CV_32F
    base = random_array(rng, (23, 70, 3), dtype)
    for name, view in _VIEWS + [("1 channel", lambda a: a[..., 1]), ("4 channels", lambda a: np.dstack([a, a[..., :1]]))]:
        v = view(base)
        before = v.copy()
        c = np.ascontiguousarray(v)
        gx, gy = F.gradient(v)
        cx, cy = F.gradient(c)
        assert np.array_equal(gx, cx) and np.array_equal(gy, cy), name
        for l2 in (True, False):
            assert np.array_equal(F.gradient_magnitude(v, l2=l2), F.gradient_magnitude(c, l2=l2)), name
        if c.ndim == 2 or c.shape[-1] <= 4:
            ox, oy = cv2.Sobel(c, dd, 1, 0), cv2.Sobel(c, dd, 0, 1)
            mag = cv2.magnitude(ox, oy)
            if dtype == np.uint8:
                # (cv2.magnitude's sqrt is within a few ulps; imkern's is correctly rounded)
                assert np.array_equal(gx, ox) and np.array_equal(gy, oy), name
                assert_close(F.gradient_magnitude(v), mag, odt, scale=1.0, err_msg=name)
            else:
                m = 16 * _mag(v)
                assert_close(gx, ox, odt, scale=m, err_msg=name)
                assert_close(gy, oy, odt, scale=m, err_msg=name)
                assert_close(F.gradient_magnitude(v), mag, odt, scale=2 * m, err_msg=name)
        assert np.array_equal(v, before), name
    # out= pairs at every relative alignment (the second output's differing from the first's),
    # with and without streaming stores: the same bits
    for x in (base[..., 0].copy(), base[:, 1:].copy(), np.dstack([base, base[..., :1]])):
        rx, ry = F.gradient(x)
        rm = F.gradient_magnitude(x)
        for stream_bytes in (None, 1 << 10):
            if stream_bytes:
                imkern.set_cpu_params(stream_bytes=stream_bytes)
            try:
                for ox_off, oy_off in ((0, 0), (1, 3), (2, 2), (3, 0)):
                    bx = np.full((x.shape[0], x.shape[1] + 8) + x.shape[2:], np.nan, odt)
                    by = np.full_like(bx, np.nan)
                    ox, oy = bx[:, ox_off:ox_off + x.shape[1]], by[:, oy_off:oy_off + x.shape[1]]
                    gx, gy = F.gradient(x, out=(ox, oy))
                    assert gx is ox and gy is oy
                    assert np.array_equal(ox, rx) and np.array_equal(oy, ry), (x.shape, ox_off, oy_off)
                    assert np.isnan(bx[:, :ox_off]).all() and np.isnan(bx[:, ox_off + x.shape[1]:]).all()
                    assert np.isnan(by[:, :oy_off]).all() and np.isnan(by[:, oy_off + x.shape[1]:]).all()
                    om = bx[:, oy_off:oy_off + x.shape[1]]
                    F.gradient_magnitude(x, out=om)
                    assert np.array_equal(om, rm), (x.shape, oy_off)
            finally:
                imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_gradient_3x3_threads_give_identical_bits(rng, isa, dtype):
    ops = [F.gradient, lambda a: F.gradient(a, ksize=-1, border="constant", cval=2.0), F.gradient_magnitude,
           lambda a: F.gradient_magnitude(a, l2=False, ksize=1, border="wrap")]
    _same_bits_any_threads(rng, dtype, [(257, 190, 3), (301, 67), (2, 37, 50, 4), (64, 128)], ops)


def test_gradient_magnitude_nan_propagates(rng):
    for shape in [(9, 9), (12, 64), (10, 40, 3)]:
        x = random_array(rng, shape, np.float32)
        x[4, 4] = np.nan
        for l2 in (True, False):
            g = F.gradient_magnitude(x, l2=l2)
            ring = np.isnan(g[3:6, 3:6])
            ring[1, 1] = True  # the centre's own taps are zero in both kernels
            assert ring.all() and not np.isnan(g[:2]).any() and not np.isnan(g[7:]).any(), (shape, l2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_3x3_float_bits_independent_of_output_alignment(rng, isa, dtype):
    # every element by the same roundings (explicit fused multiply-adds), whether the fused pass
    # forms it in its aligned loop or by the direct loads before and after it
    ops = [lambda a, **k: F.scharr(a, 1, 0, **k), lambda a, **k: F.sobel(a, 1, 0, scale=0.3, delta=0.7, **k),
           lambda a, **k: F.sobel(a, 1, 1, scale=0.3, **k), lambda a, **k: F.laplacian(a, ksize=3, scale=0.3, **k),
           lambda a, **k: F.gradient_magnitude(a, ksize=-1, **k),
           lambda a, **k: F.gradient(a, ksize=-1, out=(k["out"], np.empty_like(k["out"])))[0],
           lambda a, **k: F.gradient(a, out=(np.empty_like(k["out"]), k["out"]))[1]]
    for shape in [(4, 48), (6, 64), (3, 101), (5, 30, 3), (5, 40, 4)]:
        x = (random_array(rng, shape, dtype) * 100).astype(dtype)
        for i, op in enumerate(ops):
            res = []
            for off in range(8):
                buf = np.zeros((shape[0], shape[1] + 8) + shape[2:], dtype)
                o = buf[:, off:off + shape[1]]
                op(x, out=o)
                res.append(o)
            for off, r in enumerate(res):
                assert np.array_equal(r, res[0]), (shape, i, off)


# ---- sobel 5x5: the vertical-first pass ----------------------------------------------------------
# Every ksize-5 Sobel kernel is symmetric or antisymmetric: single-mode 5x5 derivatives take
# the vertical-first pass (sep_impl<5>: v = ky (x) rows into an L1 row, then kx (x) v), two output
# rows from six source rows where both rows' source rows lie inside the image (a constant
# border's rows one at a time), the horizontal pass by lane shifts for 1 / 3 / 4 channels
# where two pixels fit a vector (by direct loads otherwise, and for rows under two vectors).
# Widths around one and two vectors of every ISA (16, 8, 4 float32 lanes), 1 to 5 channels.
_SEP5_SHAPES = [(1, 1), (1, 6), (6, 1), (2, 2, 3), (3, 3), (4, 7), (5, 8), (6, 9), (7, 15), (5, 16), (4, 17), (6, 31),
                (7, 32), (5, 33), (8, 47), (6, 49), (9, 65), (4, 5, 3), (5, 6, 3), (6, 11, 3), (7, 17, 3), (5, 4, 4),
                (6, 9, 4), (4, 13, 4), (5, 10, 2), (6, 20, 2), (4, 9, 5), (2, 3, 50, 1), (2, 6, 19, 3), (3, 1, 40, 4)]
_SEP5_ORDERS = [(1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (2, 1), (1, 2), (2, 2), (3, 0), (0, 3), (4, 0), (3, 1)]


_SEP5_OPS = [(f"({dx},{dy})", lambda m, a, dx=dx, dy=dy, **kw: m.sobel(a, dx, dy, ksize=5, **kw), _ksum(5))
             for dx, dy in _SEP5_ORDERS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_sobel_5x5_paths(rng, isa, threads, dtype, border):
    # uint8 exactly with scale 0.75 too (multiples of 1/4 under 2^22)
    _check_paths(rng, _SEP5_SHAPES, _SEP5_OPS, dtype, border, uint8_scaled_exact=True)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_sobel_5x5_views_alignment_and_opencv(rng, isa, dtype):
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (27, 61, 3), dtype)
    dd = cv2.CV_64F if dtype == np.float64 else cv2.CV_32F
    views = _VIEWS + [("1 channel", lambda a: a[..., 1]), ("4 channels", lambda a: np.dstack([a, a[..., :1]])),
                      ("reversed 1 channel", lambda a: a[::-1, ::-1, 0])]
    for name, view in views:
        v = view(base)
        before = v.copy()
        c = np.ascontiguousarray(v)
        for dx, dy in [(1, 0), (0, 1), (2, 1)]:
            got = F.sobel(v, dx, dy, ksize=5, scale=1.25, delta=0.5)
            # every element by the same expression: a view gives its contiguous copy's bits
            assert np.array_equal(got, F.sobel(c, dx, dy, ksize=5, scale=1.25, delta=0.5)), name
            if c.ndim == 2 or c.shape[-1] <= 4:
                ref = cv2.Sobel(c, dd, dx, dy, ksize=5, scale=1.25, delta=0.5)
                if dtype == np.uint8:
                    assert np.array_equal(got, ref), name  # cv2's bits
                else:
                    assert_close(got, ref, got.dtype, scale=256 * 2 * _mag(v), err_msg=name)
        assert np.array_equal(v, before), name
    # every alignment of the output rows, with and without streaming stores: the same bits
    odt = _odt(dtype)
    for x in (base[..., 0].copy(), base[:, 1:].copy(), np.dstack([base, base[..., :1]]), base[:, :9, :1].copy()):
        ref = F.sobel(x, 1, 2, ksize=5, scale=0.3, delta=0.7)
        for stream_bytes in (None, 1 << 10):
            if stream_bytes:
                imkern.set_cpu_params(stream_bytes=stream_bytes)
            try:
                for off in range(8):
                    buf = np.full((x.shape[0], x.shape[1] + 8) + x.shape[2:], np.nan, odt)
                    out = buf[:, off:off + x.shape[1]]
                    assert F.sobel(x, 1, 2, ksize=5, scale=0.3, delta=0.7, out=out) is out
                    assert np.array_equal(out, ref), (x.shape, off, stream_bytes)
                    assert np.isnan(buf[:, :off]).all() and np.isnan(buf[:, off + x.shape[1]:]).all()
            finally:
                imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_sobel_5x5_threads_give_identical_bits(rng, isa, dtype):
    # rows are paired within each thread's chunk
    ops = [lambda a: F.sobel(a, 1, 0, ksize=5, scale=0.3, delta=0.1), lambda a: F.sobel(a, 0, 2, ksize=5),
           lambda a: F.sobel(a, 1, 1, ksize=5, border="constant", cval=2.0),
           lambda a: F.sobel(a, 2, 0, ksize=5, border="wrap")]
    _same_bits_any_threads(rng, dtype, [(257, 190, 3), (301, 67), (2, 37, 50, 4), (33, 9, 2)], ops)


def test_sobel_5x5_nan_propagates(rng):
    for shape in [(11, 11), (12, 70), (10, 40, 3)]:
        x = random_array(rng, shape, np.float32)
        x[5, 5] = np.nan
        g = F.sobel(x, 1, 0, ksize=5)
        nan = np.isnan(g if g.ndim == 2 else g[..., 0])
        # the 5x5 window's columns 5 -+ 1, 2 (the kernel's zero column is x = 5)
        assert nan[3:8, [3, 4, 6, 7]].all() and not nan[:3].any() and not nan[8:].any(), shape


# ---- sobel 7x7 and laplacian 5x5 / 7x7: the vertical-first passes ---------------------------------
# Every ksize-7 Sobel kernel is symmetric or antisymmetric: single-mode 7x7 derivatives take
# sep_impl<7> (as the 5x5 ones: v = ky (x) rows into an L1 row, row pairs, the horizontal pass by
# lane shifts for 1 / 3 / 4 channels where three pixels fit a vector: 1 and 3 channels on
# AVX-512 float32, 1 on AVX2, by direct loads otherwise). The Laplacian ksize 5 / 7 (four
# symmetric kernels) takes sum_sep_impl: both columns' values from one load of each source
# vector into two L1 rows, then both horizontal kernels summed in registers (lane shifts for 1 /
# 3 / 4 channels where h pixels fit a vector, direct loads otherwise). Widths around one and two
# vectors of every ISA (16, 8, 4 float32 lanes; 8, 4, 2 float64), 1 to 5 channels, images
# narrower and shorter than the kernel. uint16 images are bounded so that the sums stay exact
# in float32 (4000 * 4096 < 2^24).
_SEP7_SHAPES = _SEP5_SHAPES + [(7, 2), (8, 3), (9, 7, 3), (3, 64), (10, 95), (11, 130), (6, 21, 4), (7, 5, 4)]
_SEP7_ORDERS = [(1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (3, 0), (0, 3), (2, 3), (4, 1), (6, 0), (0, 5), (1, 6)]
_SEP7_OPS = [(f"({dx},{dy})", lambda m, a, dx=dx, dy=dy, **kw: m.sobel(a, dx, dy, ksize=7, **kw), _ksum(7))
             for dx, dy in _SEP7_ORDERS]
_LAP57_OPS = [(f"laplacian k={k}", lambda m, a, k=k, **kw: m.laplacian(a, ksize=k, **kw), _ksum(k)) for k in (5, 7)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_sobel_7x7_paths(rng, isa, threads, dtype, border):
    # uint8 exactly with scale 0.75 too (multiples of 1/4 under 2^22)
    _check_paths(rng, _SEP7_SHAPES, _SEP7_OPS, dtype, border, uint8_scaled_exact=True, high=4000)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_laplacian_5x5_7x7_paths(rng, isa, threads, dtype, border):
    _check_paths(rng, _SEP7_SHAPES, _LAP57_OPS, dtype, border, uint8_scaled_exact=True, high=4000)


_SEP7_VIEW_OPS = [
    ("sobel 7 (1,0)", lambda a, **kw: F.sobel(a, 1, 0, ksize=7, **kw), lambda c, dd, **kw: __import__("cv2").Sobel(
        c, dd, 1, 0, ksize=7, **kw), 4096),
    ("sobel 7 (2,3)", lambda a, **kw: F.sobel(a, 2, 3, ksize=7, **kw), lambda c, dd, **kw: __import__("cv2").Sobel(
        c, dd, 2, 3, ksize=7, **kw), 4096),
    ("laplacian 5", lambda a, **kw: F.laplacian(a, ksize=5, **kw), lambda c, dd, **kw: __import__("cv2").Laplacian(
        c, dd, ksize=5, **kw), 256),
    ("laplacian 7", lambda a, **kw: F.laplacian(a, ksize=7, **kw), lambda c, dd, **kw: __import__("cv2").Laplacian(
        c, dd, ksize=7, **kw), 4096),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_sobel_7x7_laplacian_5x5_7x7_views_alignment_and_opencv(rng, isa, dtype):
    cv2 = pytest.importorskip("cv2")
    high = 4000 if dtype == np.uint16 else None
    base = random_array(rng, (27, 61, 3), dtype, high=high)
    dd = cv2.CV_64F if dtype == np.float64 else cv2.CV_32F
    views = _VIEWS + [("1 channel", lambda a: a[..., 1]), ("4 channels", lambda a: np.dstack([a, a[..., :1]])),
                      ("reversed 1 channel", lambda a: a[::-1, ::-1, 0])]
    for name, view in views:
        v = view(base)
        before = v.copy()
        c = np.ascontiguousarray(v)
        for oname, op, cvop, ks in _SEP7_VIEW_OPS:
            for cvb, border in ((cv2.BORDER_REFLECT101, "reflect101"), (cv2.BORDER_REPLICATE, "replicate")):
                got = op(v, scale=1.25, delta=0.5, border=border)
                # every element by the same expression: a view gives its contiguous copy's bits
                assert np.array_equal(got, op(c, scale=1.25, delta=0.5, border=border)), (name, oname, border)
                if c.ndim == 2 or c.shape[-1] <= 4:
                    ref = cvop(c, dd, scale=1.25, delta=0.5, borderType=cvb)
                    if dtype == np.uint8:
                        assert np.array_equal(got, ref), (name, oname, border)  # cv2's bits
                    else:
                        assert_close(got, ref, got.dtype, scale=ks * 2 * _mag(v), err_msg=f"{name} {oname} {border}")
        assert np.array_equal(v, before), name
    # every alignment of the output rows, with and without streaming stores: the same bits
    odt = _odt(dtype)
    for x in (base[..., 0].copy(), base[:, 1:].copy(), np.dstack([base, base[..., :1]]), base[:, :9, :1].copy(),
              base[:, :, :2].copy()):
        for oname, op, _, _ in _SEP7_VIEW_OPS:
            ref = op(x, scale=0.3, delta=0.7)
            for stream_bytes in (None, 1 << 10):
                if stream_bytes:
                    imkern.set_cpu_params(stream_bytes=stream_bytes)
                try:
                    for off in range(8):
                        buf = np.full((x.shape[0], x.shape[1] + 8) + x.shape[2:], np.nan, odt)
                        out = buf[:, off:off + x.shape[1]]
                        assert op(x, scale=0.3, delta=0.7, out=out) is out
                        assert np.array_equal(out, ref), (x.shape, oname, off, stream_bytes)
                        assert np.isnan(buf[:, :off]).all() and np.isnan(buf[:, off + x.shape[1]:]).all()
                finally:
                    imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_sobel_7x7_laplacian_5x5_7x7_threads_give_identical_bits(rng, isa, dtype):
    ops = [lambda a: F.sobel(a, 1, 0, ksize=7, scale=0.3, delta=0.1), lambda a: F.sobel(a, 0, 3, ksize=7),
           lambda a: F.sobel(a, 1, 1, ksize=7, border="constant", cval=2.0),
           lambda a: F.laplacian(a, ksize=5, scale=0.3, delta=0.1), lambda a: F.laplacian(a, ksize=7, border="wrap"),
           lambda a: F.laplacian(a, ksize=5, border="constant", cval=2.0)]
    _same_bits_any_threads(rng, dtype, [(257, 190, 3), (301, 67), (2, 37, 50, 4), (33, 9, 2)], ops)
