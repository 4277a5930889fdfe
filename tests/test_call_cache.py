"""The argument-parsing caches of the small-image fast paths (imkern._arrays.cache_key): a
cached call gives what an uncached one gives, every argument error is raised on every call,
and no cached array can be changed by a caller."""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from imkern import _arrays as A
from imkern import filters, transform
from imkern._kernels import gaussian_kernels_q8
from imkern.reference import filters as reference_filters


@pytest.mark.parametrize(
    "value, key",
    [
        (None, None),
        (1, 1),
        (1.5, 1.5),
        ((1, 2.0), (1, 2.0)),
        ([3, 3], (3, 3)),
        ((0.485, 0.456, 0.406), (0.485, 0.456, 0.406)),
        (True, A.UNCACHED),
        ((True, 1.0), A.UNCACHED),
        (np.float64(1.0), A.UNCACHED),
        (np.array([1.0, 2.0]), A.UNCACHED),
        ("1", A.UNCACHED),
        ((1.0, None), A.UNCACHED),
    ],
)
def test_cache_key(value, key):
    got = A.cache_key(value)
    assert got is A.UNCACHED if key is A.UNCACHED else got == key


def test_gaussian_cached_equals_uncached_and_reference():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    f = rng.random((9, 13), dtype=np.float32)
    for sigma, ksize in [(1.0, (5, 5)), ((0.7, 1.3), (3, 7)), (1, 5), ([1.2, 0.9], [5, 3]), (0.0, (3, 3))]:
        a = filters.gaussian(img, sigma, ksize=ksize)
        b = filters.gaussian(
            img,
            np.float64(sigma) if not isinstance(sigma, (list, tuple)) else tuple(np.float64(v) for v in sigma),
            ksize=ksize,
        )
        np.testing.assert_array_equal(a, b)  # the uncached path (NumPy arguments) gives the same bits
        np.testing.assert_array_equal(a, filters.gaussian(img, sigma, ksize=ksize))  # second call: cached
        sy, sx = sigma if isinstance(sigma, (list, tuple)) else (sigma, sigma)
        kh, kw = ksize if isinstance(ksize, (list, tuple)) else (ksize, ksize)
        ky, kx = gaussian_kernels_q8((sy, sx), (kh, kw))
        np.testing.assert_array_equal(a, reference_filters.gaussian_fixed_u8(img, ky, kx))
    for sigma in (0.8, (1.5, 0.6)):
        a = filters.gaussian(f, sigma)
        ref = reference_filters.gaussian(f, sigma)
        np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a, filters.gaussian(f, sigma))


def test_gaussian_errors_raised_every_call():
    img = np.zeros((5, 5), np.uint8)
    filters.gaussian(img, 1.0, ksize=(3, 3))  # 1.0 is cached now; True must still be refused
    for _ in range(2):
        with pytest.raises(TypeError):
            filters.gaussian(img, True, ksize=(3, 3))
        with pytest.raises(ValueError, match="ksize"):
            filters.gaussian(img, 1.0, ksize=(4, 3))
        with pytest.raises(ValueError, match="sigma"):
            filters.gaussian(img, -1.0)
        with pytest.raises(ValueError, match="sigma"):
            filters.gaussian(img, (1.0, 2.0, 3.0))


def test_pad_constant_pixel_per_dtype():
    # the same cval on two dtypes: cast per dtype (uint8 rounds and saturates), never shared
    u = np.zeros((2, 2, 3), np.uint8)
    f = np.zeros((2, 2, 3), np.float32)
    for cval, want_u in [(0.5, 0), (1.5, 2), (300, 255), (-4, 0), (3, 3)]:
        pu = transform.pad(u, 1, cval=cval)
        pf = transform.pad(f, 1, cval=cval)
        assert pu[0, 0].tolist() == [want_u] * 3
        assert pf[0, 0].tolist() == [np.float32(cval)] * 3
        assert transform.pad(u, 1, cval=cval)[0, 0].tolist() == [want_u] * 3
    with pytest.raises(TypeError):
        transform.pad(u, 1, cval="1")


def test_to_tensor_cached_params():
    rng = np.random.default_rng(12)
    img = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    want = ((img.astype(np.float64) / 255 - np.array(mean)) / np.array(std)).transpose(2, 0, 1)
    for m, s in [(mean, std), (list(mean), list(std)), (np.array(mean), np.array(std))]:
        t = transform.to_tensor(img, mean=m, std=s)
        np.testing.assert_allclose(t, want, rtol=1e-5, atol=1e-5)
    for _ in range(2):
        with pytest.raises(ValueError, match="std"):
            transform.to_tensor(img, mean=mean, std=(0.2, 0.0, 0.2))
        with pytest.raises(ValueError, match="mean"):
            transform.to_tensor(img, mean=(0.5, 0.5), std=std)
    # one channel count per key: the same mean/std on a 1-channel image is a broadcast scalar
    g = img[..., 0]
    np.testing.assert_allclose(
        transform.to_tensor(g, mean=0.5, std=0.25)[0], (g / 255 - 0.5) / 0.25, rtol=1e-5, atol=1e-5
    )


def test_fast_path_keeps_checks():
    # the one-test fast path of check_image admits only native NumPy images of the CPU dtypes
    with pytest.raises(TypeError, match="byte order"):
        filters.box(np.zeros((4, 4), ">u2"), 3)
    with pytest.raises(TypeError, match="dtype"):
        filters.box(np.zeros((4, 4), np.int8), 3)
    with pytest.raises(ValueError, match="shape"):
        filters.box(np.zeros(4, np.uint8), 3)
    # a read-only input is fine, an unpacked view is read in place or copied, never changed
    a = np.arange(60, dtype=np.uint8).reshape(5, 4, 3)
    a.flags.writeable = False
    np.testing.assert_array_equal(transform.flip(a, 1), a[:, ::-1])
    v = np.arange(120, dtype=np.uint8).reshape(5, 8, 3)[:, ::2]
    np.testing.assert_array_equal(transform.flip(v, 1), v[:, ::-1])
    assert imkern.transform.flip(np.zeros((0, 3), np.uint8), 1).shape == (0, 3)


def test_morphology_rect_cache():
    """A rectangle given as an int or (h, w) comes from a read-only cache: equal to the array
    footprint, errors raised on every call, and a caller's footprint() stays its own."""
    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    for _ in range(2):
        np.testing.assert_array_equal(filters.erode(x, 3), filters.erode(x, np.ones((3, 3))))
        np.testing.assert_array_equal(filters.dilate(x, (2, 5)), filters.dilate(x, np.ones((2, 5))))
        for bad in (0, -2, (0, 3), (3, -1)):
            with pytest.raises(ValueError, match="size"):
                filters.erode(x, bad)
    fp = filters.footprint("rect", 3)
    assert fp.flags.writeable
    fp[:] = 0
    np.testing.assert_array_equal(filters.erode(x, 3), filters.erode(x, np.ones((3, 3))))
    from imkern.filters._morphology import _rect

    assert not _rect(3, 3).flags.writeable


def test_invert_affine_same_bits_as_float64_scalars():
    """invert_affine on Python floats gives cv2.invertAffineTransform's float64 operations."""
    from imkern.transform._warp import invert_affine

    rng = np.random.default_rng(13)
    for _ in range(200):
        m = rng.standard_normal((2, 3)) * rng.choice([1e-3, 1.0, 1e3])
        d = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
        d = 1.0 / d if d != 0 else 0.0
        a11, a22, a12, a21 = m[1, 1] * d, m[0, 0] * d, -m[0, 1] * d, -m[1, 0] * d
        want = np.array([[a11, a12, -a11 * m[0, 2] - a12 * m[1, 2]], [a21, a22, -a21 * m[0, 2] - a22 * m[1, 2]]])
        assert invert_affine(m).tobytes() == want.tobytes()
    try:
        import cv2
    except ImportError:
        return
    m = rng.standard_normal((2, 3))
    assert invert_affine(m).tobytes() == cv2.invertAffineTransform(m).tobytes()


def test_pad_plan_cache_keeps_types_and_errors():
    """pad's plan is cached per (widths, border, cval, shape, dtype): a cached width of 1 does
    not let a width of 1.0 through, and every bad argument raises on every call."""
    x = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    for _ in range(2):
        got = transform.pad(x, (1, 2), border="reflect101")
        assert got.shape == (4, 9, 3)
        np.testing.assert_array_equal(got, np.pad(x, ((1, 1), (2, 2), (0, 0)), mode="reflect"))
        with pytest.raises(TypeError, match="pad"):
            transform.pad(x, (1.0, 2), border="reflect101")
        with pytest.raises(ValueError, match="pad"):
            transform.pad(x, (1, -2))
        with pytest.raises(ValueError, match="border"):
            transform.pad(x, 1, border="nope")
        np.testing.assert_array_equal(transform.pad(x, 1, cval=7)[0], 7)
        np.testing.assert_array_equal(transform.pad(x, 1, cval=7.0)[0], 7)
    plan = transform._basic._pad_plan(1, "constant", 0, x.shape, 0, x.dtype)
    for table in plan[2:]:
        assert not table.flags.writeable


_DERIV_CALLS = [
    ("sobel", lambda m, x, **kw: m.sobel(x, **kw), dict(dx=1, dy=0, ksize=3)),
    ("sobel 5", lambda m, x, **kw: m.sobel(x, **kw), dict(dx=0, dy=2, ksize=5, scale=0.5, delta=1.5)),
    ("scharr", lambda m, x, **kw: m.scharr(x, **kw), dict(dx=0, dy=1)),
    ("prewitt", lambda m, x, **kw: m.prewitt(x, **kw), dict(dx=1, dy=0, scale=2.0)),
    ("laplacian", lambda m, x, **kw: m.laplacian(x, **kw), dict(ksize=3, delta=-1.0)),
    ("gradient_magnitude", lambda m, x, **kw: m.gradient_magnitude(x, **kw), dict(ksize=3, l2=False)),
]


@pytest.mark.parametrize("name, op, kw", _DERIV_CALLS, ids=[c[0] for c in _DERIV_CALLS])
def test_derivative_call_cache(name, op, kw):
    # the derivative filters keep each checked call (per argument values and types and image
    # dtype): a cached call gives the uncached call's bits and the reference's values, for each
    # dtype its own entry, and equal arguments of other types or -0.0 take their own path
    rng = np.random.default_rng(13)
    for dtype in (np.uint8, np.uint16, np.float32, np.float64):
        x = (rng.random((7, 30, 3)) * (200 if dtype != np.float32 and dtype != np.float64 else 1)).astype(dtype)
        first = op(filters, x, **kw)
        again = op(filters, x, **kw)  # cached
        numpy_args = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in kw.items()}
        uncached = op(filters, x, **numpy_args, border="reflect101")  # NumPy scalars: never cached
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, uncached)
        ref = op(reference_filters, x, **kw)
        np.testing.assert_allclose(first, ref, rtol=1e-5, atol=1e-3 * max(1.0, float(np.abs(ref).max())))
        assert first.dtype == (np.float64 if dtype == np.float64 else np.float32)
    # a batch and a gray image of the same dtype share the entry, each with its own shape
    g = rng.random((9, 11), dtype=np.float32)
    np.testing.assert_array_equal(op(filters, g, **kw), op(filters, g[None, ..., None], **kw)[0, ..., 0])


def test_derivative_call_cache_keeps_errors_and_signed_zeros():
    x = np.random.default_rng(14).random((6, 40), dtype=np.float32) - 0.5
    filters.sobel(x, 1, 0)  # (1, 0) is cached now
    for _ in range(2):
        with pytest.raises(TypeError):
            filters.sobel(x, 1.0, 0)  # 1.0 == 1: no hit on 1's entry
        with pytest.raises(TypeError):
            filters.sobel(x, True, 0)
        with pytest.raises(TypeError):
            filters.sobel(x, [1], 0)  # unhashable: the check says what is wrong
        with pytest.raises(ValueError, match="border"):
            filters.sobel(x, 1, 0, border="nope")
        with pytest.raises(ValueError, match="ksize"):
            filters.sobel(x, 1, 0, ksize=4)
    # -0.0 equals 0.0 but is another value: such a call is never a key (whatever the kernels
    # make of it), and it gives the uncached path's bits
    from imkern.filters import _derivatives as D

    assert D._call_key("sobel", x, (1, 0, 3, 1.0, -0.0, "reflect101", 0.0)) is None
    assert D._call_key("sobel", x, (1, 0, 3, 1.0, 0.0, "reflect101", 0.0)) is not None
    o = np.empty_like(x)
    assert filters.sobel(x, 1, 0, out=o) is o  # a cached call with out= writes it in place
    np.testing.assert_array_equal(o, filters.sobel(x, 1, 0))
    s = np.zeros((6, 80), np.float32)[:, ::2]
    assert filters.sobel(x, 1, 0, out=s).base is s.base  # a strided out: the checked path
    np.testing.assert_array_equal(s, o)
    z = -np.zeros((6, 40), np.float32)
    for scale, delta in ((-1.0, -0.0), (1.0, -0.0), (-0.0, 0.0)):
        a = filters.sobel(z, 1, 0, scale=scale, delta=delta)
        b = filters.sobel(z, 1, 0, scale=np.float64(scale), delta=np.float64(delta))
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
    assert filters.sobel(x, 1, 0) is not filters.sobel(x, 1, 0)  # a new array each call
