"""The one-step NumPy call path (imkern._driver.cpu_image_op) and the per-op call caches.

A plain call on a native NumPy image with no ``out=`` takes the fast path; ``out=``, array
subclasses, unpacked views and byte-swapped arrays take run_image_op as before. Both must give
the same bits, on every ISA level, for shapes that take the path and shapes that do not (1x1,
odd widths, 1/3/4 channels, batches, strided and negative-stride views), never change the
input, and raise every argument error on every call (a cached call never lets a bad value in).
"""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from imkern import _arrays as A
from imkern import _driver, color, filters, transform
from imkern.filters import _linear
from imkern.transform import _basic, _resize, _tensor

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Sub(np.ndarray):
    """An ndarray subclass: never the fast path (type(image) is np.ndarray fails)."""


def _img(rng, shape, dtype):
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if np.dtype(dtype) == np.uint16:
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    return rng.random(shape).astype(dtype)


def _ops(shape):
    """(name, fn, shape of the result or None for the input's, channel counts it takes)."""
    c = shape[-1] if len(shape) >= 3 else 1
    o = 1 if len(shape) == 4 else 0
    h, w = shape[o], shape[o + 1]
    ops = [
        ("flip1", lambda a, **k: transform.flip(a, 1, **k)),
        ("flip0", lambda a, **k: transform.flip(a, 0, **k)),
        ("threshold", lambda a, **k: filters.threshold(a, 100.5, 200, **k)),
        ("threshold_inv", lambda a, **k: filters.threshold(a, 0.25, 7, "tozero_inv", **k)),
        ("gauss_ksize", lambda a, **k: filters.gaussian(a, 0.8, ksize=(3, 5), **k)),
        ("gauss_sigma", lambda a, **k: filters.gaussian(a, (1.1, 0.6), **k)),
        ("gauss_const", lambda a, **k: filters.gaussian(a, 1.0, ksize=3, border="constant", cval=3, **k)),
        ("box", lambda a, **k: filters.box(a, (3, 2), **k)),
        ("box_sum", lambda a, **k: filters.box(a, 3, normalize=False, border="replicate", **k)),
        ("resize_down", lambda a, **k: transform.resize(a, (max(1, h // 2), max(1, w // 2)), **k)),
        ("resize_up", lambda a, **k: transform.resize(a, (h * 2 + 1, w + 3), interpolation="bicubic", **k)),
        ("resize_nearest", lambda a, **k: transform.resize(a, (h + 1, 2 * w), interpolation="nearest", **k)),
        ("resize_aa", lambda a, **k: transform.resize(a, (max(1, h // 3), w), antialias=True, **k)),
        ("pad", lambda a, **k: transform.pad(a, (1, 2, 0, 3), border="reflect101", **k)),
        ("pad_const", lambda a, **k: transform.pad(a, 2, cval=5, **k)),
        ("crop", lambda a, **k: transform.crop(a, 0, w // 3, h - h // 2, w - w // 3, **k)),
        ("to_tensor", lambda a, **k: transform.to_tensor(a, **k)),
        ("to_tensor_norm", lambda a, **k: transform.to_tensor(a, mean=0.5, std=0.25, crop=(h, max(1, w - 1)), **k)),
        ("to_tensor_flip", lambda a, **k: transform.to_tensor(a, flip=True, dtype="float64", **k)),
    ]
    if c in (3, 4) and len(shape) >= 3:
        ops += [
            ("rgb_to_gray", lambda a, **k: color.rgb_to_gray(a, **k)),
            ("bgr_to_rgb", lambda a, **k: color.bgr_to_rgb(a, **k)),
        ]
    if c == 3 and len(shape) >= 3:
        ops += [("to_tensor_imagenet", lambda a, **k: transform.to_tensor(a, mean=MEAN, std=STD, **k))]
    if c == 4 and len(shape) >= 3:
        ops += [("rgba_to_rgb", lambda a, **k: color.rgba_to_rgb(a, background=(10, 20, 30), **k))]
    return ops


SHAPES = [(1, 1), (1, 1, 3), (1, 1, 4), (7, 5), (8, 8, 3), (9, 13, 1), (6, 11, 4), (2, 5, 7, 3), (3, 1, 1, 1)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fast_equals_slow(isa, shape, dtype):
    """The fast path (plain call) gives the bits of run_image_op (out=, subclass, unpacked view)."""
    rng = np.random.default_rng(sum(shape) * 7 + np.dtype(dtype).itemsize)
    x = _img(rng, shape, dtype)
    keep = x.copy()
    for name, f in _ops(shape):
        fast = f(x)
        fast2 = f(x)  # second call: the call caches answer
        assert type(fast) is np.ndarray and fast.flags.c_contiguous, name
        np.testing.assert_array_equal(fast, fast2, err_msg=name)
        # out=: poisoned; a C-contiguous one written in place by the fast path, a strided one
        # (a view of every other element of a wider array) by run_image_op through a copy
        out = np.full(fast.shape, 77, fast.dtype)
        got = f(x, out=out)
        assert got is out, name
        np.testing.assert_array_equal(out, fast, err_msg=name)
        wide = np.full(fast.shape[:-1] + (2 * fast.shape[-1],), 77, fast.dtype)
        got = f(x, out=wide[..., ::2])
        assert got.base is wide, name
        np.testing.assert_array_equal(wide[..., ::2], fast, err_msg=name)
        assert (wide[..., 1::2] == 77).all(), name
        # a subclass takes the checked path; same values
        np.testing.assert_array_equal(np.asarray(f(x.view(Sub))), fast, err_msg=name)
        # read-only input: the fast path too
        r = x.copy()
        r.flags.writeable = False
        np.testing.assert_array_equal(f(r), fast, err_msg=name)
        np.testing.assert_array_equal(x, keep, err_msg=name)  # input never modified


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_views(isa, dtype):
    """Strided and negative-stride views: read in place (packed pixels) or copied deliberately;
    each equals the op on a contiguous copy of the view."""
    rng = np.random.default_rng(5)
    base = _img(rng, (2, 13, 22, 4), dtype)
    views = [
        base[0, :, ::-1, :3],  # reversed pixels: copied
        base[0, ::-1, :, :3],  # negative row stride, packed pixels: read in place
        base[0, 1::2, 3:17, 1:4],  # strided rows, channels offset
        base[1, :, ::2, 0],  # strided pixels, gray
        base[0, :, :, 0],  # gray with a pixel stride of 4 channels
        base[:, ::-1, 1:20],  # a batch with negative row stride
        base[0, :, :1],  # one column
        base[0, :1, :1, :3],  # 1 pixel
    ]
    for v in views:
        vc = np.ascontiguousarray(v)
        for name, f in _ops(v.shape):
            np.testing.assert_array_equal(f(v), f(vc), err_msg=f"{name} {v.shape} {v.strides}")


def test_empty_images():
    for shape in [(0, 3), (4, 0, 3), (0, 5, 5, 3)]:
        x = np.zeros(shape, np.uint8)
        assert transform.flip(x, 1).shape == shape
        assert filters.threshold(x, 1, 2).shape == shape
        assert filters.box(x, 3).shape == shape
        assert filters.gaussian(x, 1.0, ksize=3).shape == shape
    # pad of an empty image: constant fills, other borders refuse (the checked path, every call)
    x = np.zeros((0, 2, 3), np.uint8)
    for _ in range(2):
        p = transform.pad(x, 1, cval=9)
        assert p.shape == (2, 4, 3) and (p == 9).all()
        with pytest.raises(ValueError, match="border"):
            transform.pad(x, 1, border="reflect101")


def test_byte_swapped_and_bad_kinds_every_call():
    x = np.zeros((4, 4, 3), np.uint8)
    for _ in range(2):  # the cached arguments of the good call never admit a bad image
        filters.gaussian(x, 1.0, ksize=3)
        filters.box(x, 3)
        transform.resize(x, (2, 2))
        transform.to_tensor(x)
        transform.pad(x, 1)
        with pytest.raises(TypeError, match="byte order"):
            filters.gaussian(np.zeros((4, 4), ">u2"), 1.0, ksize=3)
        with pytest.raises(TypeError, match="byte order"):
            filters.box(np.zeros((4, 4), ">f4"), 3)
        with pytest.raises(TypeError, match="byte order"):
            transform.resize(np.zeros((4, 4), ">f8"), (2, 2))
        with pytest.raises(TypeError, match="byte order"):
            transform.flip(np.zeros((4, 4), ">u2"), 1)
        with pytest.raises(TypeError, match="byte order"):
            transform.pad(np.zeros((4, 4), ">u2"), 1)
        with pytest.raises(TypeError, match="byte order"):
            color.rgb_to_gray(np.zeros((4, 4, 3), ">u2"))
        with pytest.raises(TypeError):
            transform.to_tensor(np.zeros((4, 4, 3), ">u2"))
        with pytest.raises(TypeError, match="dtype"):
            filters.threshold(np.zeros((4, 4), np.int16), 1, 2)
        with pytest.raises(TypeError, match="numpy"):
            transform.flip([[1, 2]], 1)
        with pytest.raises(ValueError, match="shape"):
            filters.box(np.zeros(4, np.uint8), 3)


def test_cached_arguments_keep_their_errors():
    """A call cache keyed on an argument's value never lets a value of another type through
    (True == 1, 2.0 == 2), and every bad argument raises on every call."""
    x = np.zeros((6, 7, 3), np.uint8)
    for _ in range(2):
        filters.box(x, 3)
        filters.box(x, (3, 3))
        with pytest.raises(TypeError, match="size"):
            filters.box(x, 3.0)
        with pytest.raises(TypeError, match="size"):
            filters.box(x, (True, 3))
        with pytest.raises(ValueError, match="size"):
            filters.box(x, (0, 3))
        with pytest.raises(ValueError, match="border"):
            filters.box(x, 3, border="nope")
        filters.gaussian(x, 1, ksize=3)
        with pytest.raises(TypeError, match="sigma"):
            filters.gaussian(x, True, ksize=3)
        with pytest.raises(TypeError, match="ksize"):
            filters.gaussian(x, 1, ksize=3.0)
        with pytest.raises(ValueError, match="ksize"):
            filters.gaussian(x, 1, ksize=(3, 4))
        transform.resize(x, (3, 3))
        with pytest.raises(TypeError, match="size"):
            transform.resize(x, (3.0, 3))
        with pytest.raises(ValueError, match="size"):
            transform.resize(x, (0, 3))
        with pytest.raises(ValueError, match="interpolation"):
            transform.resize(x, (3, 3), interpolation="nope")
        with pytest.raises(TypeError, match="antialias"):
            transform.resize(x, (3, 3), antialias=1)
        transform.to_tensor(x, crop=(2, 2))
        with pytest.raises(TypeError, match="crop"):
            transform.to_tensor(x, crop=(2.0, 2))
        with pytest.raises(ValueError, match="crop"):
            transform.to_tensor(x, crop=(9, 2))
        with pytest.raises(TypeError, match="dtype"):
            transform.to_tensor(x, dtype="int8")
        transform.flip(x, 1)
        with pytest.raises(ValueError, match="axis"):
            transform.flip(x, 2)
        with pytest.raises(TypeError, match="axis"):
            transform.flip(x, 1.0)
        filters.threshold(x, 1, 2)
        with pytest.raises(ValueError, match="kind"):
            filters.threshold(x, 1, 2, "nope")
        with pytest.raises(TypeError, match="thresh"):
            filters.threshold(x, True, 2)
        with pytest.raises(ValueError, match="thresh"):
            filters.threshold(x, float("nan"), 2)
        transform.pad(x, 1)
        with pytest.raises(TypeError, match="pad"):
            transform.pad(x, 1.0)


def test_negative_zero_cval_is_its_own_value():
    """-0.0 == 0.0, but a float border constant of -0.0 is another value: never a hit on 0.0's
    cached call (cache_key refuses it)."""
    assert A.cache_key(-0.0) is A.UNCACHED and A.cache_key((1.0, -0.0)) is A.UNCACHED
    assert A.cache_key(0.0) == 0.0
    x = np.full((1, 1), -0.0, np.float32)
    for _ in range(2):
        a = filters.box(x, 3, border="constant", cval=0.0, normalize=False)
        b = filters.box(x, 3, border="constant", cval=-0.0, normalize=False)
        want_a = filters.box(x.view(Sub), 3, border="constant", cval=0.0, normalize=False)
        want_b = filters.box(x.view(Sub), 3, border="constant", cval=-0.0, normalize=False)
        assert a.tobytes() == np.asarray(want_a).tobytes()
        assert b.tobytes() == np.asarray(want_b).tobytes()


def test_call_caches_bounded_and_read_only():
    x = np.zeros((3, 4), np.float32)
    for v in range(A._CALL_CACHE_MAX + 10):
        filters.box(x, 3, border="constant", cval=float(v))
    assert len(_linear._BOX_ARGS) <= A._CALL_CACHE_MAX
    for _ in range(3):
        filters.box(x, 3, cval=float("nan"))  # NaN keys never hit: the cache stays bounded
    assert len(_linear._BOX_ARGS) <= A._CALL_CACHE_MAX
    y = np.zeros((5, 6, 3), np.uint8)
    filters.gaussian(y, 1.0, ksize=5)
    transform.resize(y, (3, 3))
    transform.to_tensor(y, mean=MEAN, std=STD)
    transform.pad(y, 2)
    for cache in (_linear._CALLS, _resize._CALLS, _tensor._CALLS, _basic._PAD_CALLS):
        assert cache
        for entry in cache.values():
            for v in entry if isinstance(entry, tuple) else (entry,):
                for a in v if isinstance(v, tuple) else (v,):
                    if isinstance(a, np.ndarray):
                        assert not a.flags.writeable


def test_output_cache_on_the_fast_path():
    """Outputs at or above the output cache's threshold come from it on the fast path too."""
    before = imkern.get_output_cache()
    try:
        imkern.set_output_cache(before["max_bytes"], min_bytes=1 << 10)
        x = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
        for f in (
            lambda a: transform.flip(a, 1),
            lambda a: filters.gaussian(a, 1.0, ksize=3),
            lambda a: transform.resize(a, (30, 40)),
            lambda a: transform.to_tensor(a),
            lambda a: transform.crop(a, 1, 2, 30, 40),
        ):
            got = f(x)
            assert got.base is not None  # a view of a cached block
            imkern.set_output_cache(before["max_bytes"], min_bytes=before["min_bytes"])
            np.testing.assert_array_equal(got, f(x))
            imkern.set_output_cache(before["max_bytes"], min_bytes=1 << 10)
    finally:
        imkern.set_output_cache(before["max_bytes"], min_bytes=before["min_bytes"])


def test_cpu_image_op_declines():
    x = np.zeros((3, 3), np.uint8)
    calls = []

    def k(src, dst):
        calls.append(1)

    # an out= the kernel cannot write in place, or a wrong one: run_image_op copies or says why
    for bad in (
        np.empty((3, 3), np.int8),  # dtype
        np.empty((3, 3), np.uint16),  # dtype
        np.empty((3, 4), np.uint8),  # shape
        np.empty((3, 6), np.uint8)[:, ::2],  # strided
        np.empty((3, 3), np.uint8, order="F")[::-1],  # not C-contiguous
        x,  # the image itself
        x.view(Sub),  # a subclass
        [[0] * 3] * 3,  # not an array
    ):
        assert _driver.cpu_image_op(x, bad, k) is None
    ro = np.empty_like(x)
    ro.flags.writeable = False
    assert _driver.cpu_image_op(x, ro, k) is None
    rows = np.zeros((4, 3), np.uint8)
    assert _driver.cpu_image_op(rows[:3], rows[1:], k) is None  # C-contiguous, overlapping
    assert not calls
    o = np.empty_like(x)
    assert _driver.cpu_image_op(x, o, k) is o and calls == [1]  # written in place
    calls.clear()
    assert _driver.cpu_image_op(x.view(Sub), None, k) is None
    assert _driver.cpu_image_op(x.astype(np.int8), None, k) is None
    assert _driver.cpu_image_op(x.astype(">u2"), None, k) is None
    assert _driver.cpu_image_op(np.zeros(3, np.uint8), None, k) is None
    assert not calls
    assert _driver.cpu_image_op(x, None, k).shape == (3, 3) and calls == [1]
    assert _driver.cpu_image_op(x, None, k, (), (0, 2)).shape == (0, 2) and calls == [1]


# ---- nn.functional.linear's one-step NumPy path --------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,inf,of", [(8, 512, 10), (1, 1, 1), (0, 5, 3), (4, 0, 3), (3, 5, 0), (33, 70, 129)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_fast_path_equals_the_general_path(dtype, m, inf, of, with_bias):
    from imkern.nn import functional as F

    rng = np.random.default_rng(m * 1000 + inf * 10 + of)
    x = rng.standard_normal((m, inf)).astype(dtype)
    w = rng.standard_normal((of, inf)).astype(dtype)
    b = rng.standard_normal(of).astype(dtype) if with_bias else None
    keep = [a.copy() for a in (x, w) + ((b,) if with_bias else ())]
    got = F.linear(x, w, b)  # the one-step path
    ref = np.full((m, of), np.nan, dtype)
    F.linear(x, w, b, out=ref)  # the general path (out= never takes the one-step path)
    assert got.dtype == dtype and got.shape == (m, of) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, ref)
    want = x.astype(np.float64) @ w.astype(np.float64).T + (b if with_bias else 0)
    np.testing.assert_allclose(
        got, want, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4 if dtype == np.float32 else 1e-12
    )
    for a, k in zip((x, w) + ((b,) if with_bias else ()), keep):
        np.testing.assert_array_equal(a, k)


def test_linear_inputs_off_the_fast_path_keep_their_results_and_errors():
    from imkern.nn import functional as F

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 9)).astype(np.float32)
    w = rng.standard_normal((4, 9)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    want = F.linear(x, w, b)
    # views, Fortran order, 3-D batches, a subclass: the general path, same values
    np.testing.assert_array_equal(F.linear(np.asfortranarray(x), np.asfortranarray(w), b), want)
    np.testing.assert_array_equal(F.linear(x[::-1], w, b), want[::-1])
    np.testing.assert_array_equal(F.linear(x.reshape(2, 3, 9), w, b), want.reshape(2, 3, 4))
    np.testing.assert_array_equal(np.asarray(F.linear(x.view(np.matrix), w, b)), want)
    # errors name the argument as before
    with pytest.raises(TypeError, match="weight"):
        F.linear(x, w.astype(np.float64), b)
    with pytest.raises(TypeError):
        F.linear(x.astype(">f4"), w, b)
    with pytest.raises(ValueError, match="bias"):
        F.linear(x, w, b[:3])
    with pytest.raises(ValueError, match="weight"):
        F.linear(x, w[:, :8], b)
    with pytest.raises(TypeError):
        F.linear(x.astype(np.int32), w, b)


# ---- morphology's footprint cache ---------------------------------------------------------
def test_footprint_cache_by_value_keeps_results_and_errors():
    from imkern.filters import _morphology as M

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    first = filters.erode(img, cross)
    again = filters.erode(img, cross.astype(np.float64))  # another dtype: another key, same mask
    np.testing.assert_array_equal(first, again)
    f = M._as_footprint(cross)
    assert not f.flags.writeable and M._as_footprint(cross.copy()) is f  # by value
    cross[0, 0] = 1  # the caller changes its array: the next call sees the new value
    np.testing.assert_array_equal(filters.erode(img, cross), filters.erode(img, cross.copy().astype(np.int32)))
    assert not np.array_equal(filters.erode(img, cross), first)
    assert cross.flags.writeable  # the caller's array is untouched
    # bad footprints raise on every call (they are never cached)
    for _ in range(2):
        with pytest.raises(ValueError, match="NaN"):
            filters.erode(img, np.array([[1.0, np.nan]]))
        with pytest.raises(ValueError, match="no nonzero"):
            filters.erode(img, np.zeros((3, 3), np.uint8))
    # bounded
    for k in range(200):
        M._as_footprint(np.eye(3, dtype=np.uint8) * (k % 7 + 1) + np.arange(k, k + 9).reshape(3, 3) % 2)
    assert len(M._FOOTPRINTS) <= 64
    # the uncached form (imkern.torch) is a new writable array
    assert M._as_footprint(np.ones((3, 3)), cached=False).flags.writeable


_COLOR_3 = ["rgb_to_hsv", "hsv_to_rgb", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_lab", "lab_to_rgb", "rgb_to_bgr"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_color_fast_equals_checked(isa, dtype):
    """Each conversion's one-step path (color._fast) gives the checked path's bits (out=, a
    subclass), on views too, and the checked path's errors (uint16 HSV / Lab, bad shapes)."""
    rng = np.random.default_rng(11)
    base = _img(rng, (2, 9, 14, 3), dtype)
    for name in _COLOR_3:
        f = getattr(color, name)
        if np.dtype(dtype) == np.uint16 and ("hsv" in name or "lab" in name):
            with pytest.raises(TypeError, match="image: dtype uint16"):
                f(base)
            continue
        for x in (base, base[0], base[0, ::-1, ::2], base[1, :, ::-1], base[:, :1, :1], base[0, :0]):
            fast = f(x)
            out = np.full(fast.shape, 3, fast.dtype)
            assert f(x, out=out) is out
            np.testing.assert_array_equal(out, fast, err_msg=name)
            np.testing.assert_array_equal(np.asarray(f(x.view(Sub))), fast, err_msg=name)
            np.testing.assert_array_equal(f(np.ascontiguousarray(x)), fast, err_msg=name)
        with pytest.raises(ValueError, match=f"image: {name} expects"):
            f(base[..., :2])
        with pytest.raises(ValueError, match="expects"):
            f(base[0, :, :, 0])
        if base.dtype.itemsize > 1:
            with pytest.raises(TypeError, match="non-native byte order"):
                f(base.astype(base.dtype.newbyteorder()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nn_fast_equals_checked(isa, dtype):
    """relu / softmax's one-step path (_driver.cpu_tensor_out) gives run_op's bits (out=, a
    subclass), on views and empty arrays, and keeps every error."""
    from imkern.nn import functional as F

    rng = np.random.default_rng(12)
    base = rng.standard_normal((3, 5, 7)).astype(dtype)
    for x in (base, base[:, ::-1, ::2], base.transpose(2, 0, 1), base[:0], base[0, 0, :1]):
        for f in (F.relu, F.sigmoid, lambda a, **k: F.leaky_relu(a, 0.1, **k), lambda a, **k: F.softmax(a, -1, **k),
                  lambda a, **k: F.log_softmax(a, 0, **k)):
            fast = f(x)
            assert type(fast) is np.ndarray and fast.flags.c_contiguous
            out = np.full(fast.shape, 5, fast.dtype)
            assert f(x, out=out) is out
            np.testing.assert_array_equal(out, fast)
            np.testing.assert_array_equal(np.asarray(f(x.view(Sub))), fast)
    for bad in (True, 3, -4, 1.0, None):
        with pytest.raises((TypeError, ValueError), match="axis"):
            F.softmax(base, bad)
    with pytest.raises(ValueError, match="at least 1"):
        F.softmax(np.ones((), dtype), 0)
    with pytest.raises(TypeError, match="non-native byte order"):
        F.relu(base.astype(base.dtype.newbyteorder()))
    with pytest.raises(TypeError, match="x: dtype int64"):
        F.relu(np.ones(3, np.int64))
