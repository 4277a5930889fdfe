"""The binding layer (csrc/bindings/): the shared descriptors and enums both devices' bindings
take, and the asserts a caller that reaches imkern._core directly meets (TypeError /
ValueError, never a crash). User-facing validation is the public functions' (their tests)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from imkern import _arrays as A
from imkern import _core


def test_descriptors_are_shared_types():
    d = _core.ImageDesc(2, 5, 7, 3, 105, 21)
    assert (d.n, d.h, d.w, d.c, d.batch_stride, d.row_stride) == (2, 5, 7, 3, 105, 21)
    x = np.zeros((2, 5, 7, 3), np.float32)
    e = A.image_desc(x)
    assert isinstance(e, _core.ImageDesc)
    assert (e.n, e.h, e.w, e.c, e.batch_stride, e.row_stride) == (2, 5, 7, 3, 105, 21)
    s = _core.Conv2dShape(n=1, c=2, h=5, w=5, k=3, r=3, s=3, groups=1, sh=1, sw=1, pt=1, pb=1, pl=1, pr=1, dh=1,
                          dw=1, oh=5, ow=5)
    assert (s.n, s.c, s.k, s.oh, s.ow) == (1, 2, 3, 5, 5)
    p = _core.Pool2dShape(planes=6, h=4, w=4, oh=2, ow=2, kh=2, kw=2, sh=2, sw=2)
    assert (p.planes, p.oh, p.ow) == (6, 2, 2)
    with pytest.raises(TypeError):
        _core.Conv2dShape(1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5)  # keywords only


def test_enum_codes_have_one_source():
    assert {str(k): int(v) for k, v in _core.DType.__members__.items()} == {
        "uint8": 0, "uint16": 1, "float32": 2, "float64": 3, "float16": 4, "bfloat16": 5}
    assert A.DTYPE_CODES[np.dtype(np.float32)] == int(_core.DType.float32)
    # A binding parameter of an exported enum type takes the member or its integer code.
    x = np.linspace(-2, 2, 12, dtype=np.float32)
    y1, y2 = np.empty_like(x), np.empty_like(x)
    _core.activation(_core.Activation.relu, x, y1, 0.0)
    _core.activation(int(_core.Activation.relu), x, y2, 0.0)
    np.testing.assert_array_equal(y1, np.maximum(x, 0))
    np.testing.assert_array_equal(y2, y1)


def test_cpu_bindings_assert_the_descriptor():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    good = dict(n=1, c=2, h=5, w=5, k=3, r=3, s=3, groups=1, sh=1, sw=1, pt=1, pb=1, pl=1, pr=1, dh=1, dw=1)
    out = np.empty((1, 3, 5, 5), np.float32)
    _core.conv2d(x, w, None, out, _core.Conv2dShape(**good, oh=5, ow=5), False, 0)
    assert float(out[0, 0, 2, 2]) == 18.0
    with pytest.raises(ValueError, match="shape formula"):
        _core.conv2d(x, w, None, out, _core.Conv2dShape(**good, oh=4, ow=5), False, 0)
    with pytest.raises(ValueError, match="shape"):
        _core.conv2d(x, w, None, np.empty((1, 3, 4, 5), np.float32), _core.Conv2dShape(**good, oh=5, ow=5), False, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.conv2d(x.astype(">f4"), w, None, out, _core.Conv2dShape(**good, oh=5, ow=5), False, 0)
    y = np.empty((1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="pooling descriptor"):
        _core.max_pool2d(x, y, None, _core.Pool2dShape(planes=2, h=5, w=5, oh=3, ow=2, kh=2, kw=2, sh=2, sw=2))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty((1, 2, 2, 2), np.float32)
        ro.flags.writeable = False
        _core.max_pool2d(x, ro, None, _core.Pool2dShape(planes=2, h=5, w=5, oh=2, ow=2, kh=2, kw=2, sh=2, sw=2))
    with pytest.raises(TypeError):
        _core.max_pool2d([1.0], y, None, _core.Pool2dShape(planes=2, h=5, w=5, oh=2, ow=2))  # not an array


def test_batch_norm_binding_asserts_parameter_vectors():
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    y = np.empty_like(x)
    rm, rv = np.zeros(3), np.ones(3)
    _core.batch_norm2d(x, None, None, rm, rv, True, 0.1, 1e-5, y)
    assert np.abs(y.mean(axis=(0, 2, 3))).max() < 1e-5
    with pytest.raises(TypeError, match="running_mean"):
        _core.batch_norm2d(x, None, None, rm.astype(np.float32), rv, True, 0.1, 1e-5, y)
    with pytest.raises(ValueError, match="elements"):
        _core.batch_norm2d(x, np.ones(2), None, rm, rv, True, 0.1, 1e-5, y)
    ro = rm.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.batch_norm2d(x, None, None, ro, rv, True, 0.1, 1e-5, y)
    _core.batch_norm2d(x, None, None, ro, rv, False, 0.1, 1e-5, y)  # eval mode only reads them


@pytest.mark.parametrize("ndim", [1, 3, 8, 9, 12])
def test_array_caster_any_ndim(ndim):
    # The caster keeps up to 8 extents in place and more on the heap: both read the same.
    shape = (2, 3) + (1,) * (ndim - 2) if ndim >= 2 else (6,)
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(shape)
    y = np.full_like(x, np.nan)
    _core.activation(_core.Activation.relu, x, y, 0.0)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    code = int(_core.ColorOp.swap_rb)
    if not 2 <= ndim <= 4:
        with pytest.raises(ValueError, match="2, 3 or 4 dimensions"):
            _core.color_convert(x, y, code, False, (0.0, 0.0, 0.0))


def test_array_caster_dtype_names():
    # Messages name the dtype: numeric ones built in C++, the others as str(dtype).
    for a, name in [(np.zeros((2, 2, 3), ">f4"), ">f4"), (np.zeros((2, 2, 3), np.int8), "int8"),
                    (np.zeros((2, 2, 3), "M8[s]"), "datetime64[s]"), (np.zeros((2, 2, 3), object), "object")]:
        with pytest.raises(TypeError, match=r"got " + re.escape(name) + "$"):
            _core.color_convert(a, np.zeros((2, 2, 3), np.uint8), int(_core.ColorOp.swap_rb), False, (0.0, 0.0, 0.0))


def test_taps_caster_reads_every_layout():
    # Taps (HostVec<double>): a C-contiguous float64 array is read in place, anything else
    # converted (views, other dtypes, byte order, lists): the same values either way.
    rng = np.random.default_rng(4)
    x = rng.random((6, 7), dtype=np.float32)
    k = np.array([0.25, 0.5, 0.25])
    want = np.empty_like(x)
    _core.sep_filter(x, want, k, 1, k, 1, 0, 0.0)
    wide = np.repeat(k, 2)
    for kk in (k[::-1], wide[::2], k.astype(np.float32), k.astype(">f8"), list(k), np.ascontiguousarray(k)):
        got = np.full_like(x, np.nan)
        _core.sep_filter(x, got, kk, 1, kk, 1, 0, 0.0)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError):
        _core.sep_filter(x, want, "abc", 1, k, 1, 0, 0.0)
