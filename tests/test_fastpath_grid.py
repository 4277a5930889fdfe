"""The one-step paths against the general paths they shortcut, over a grid of inputs.

color's one-step branch in ``_color`` (``cpu_image_op``, also behind ``_convert``), and the
nn activations' / softmax's ``_driver.cpu_tensor_out``, each take a common case and decline
the rest. For every input kind in the grid (dtypes, byte orders, layouts and views, empty and
1-pixel arrays, more than 8 axes, non-arrays, ``out=`` arrays good and bad, axes of every
type) the public function with its one-step path gives what it gives with that path off
(patched to decline, as for an input it does not take): the same result (type, dtype, shape,
bits) or the same exception (type and message), and the input unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from imkern import _driver, color
from imkern.nn import functional as F


class Sub(np.ndarray):
    """An ndarray subclass: the one-step paths decline it."""


def _counting(monkeypatch, mod, name):
    """Wrap mod.name to count the calls it takes (returns other than None)."""
    real, taken = getattr(mod, name), []

    def wrapper(*a, **k):
        r = real(*a, **k)
        if r is not None:
            taken.append(1)
        return r

    monkeypatch.setattr(mod, name, wrapper)
    return taken


DTYPES = ["u1", "u2", "f4", "f8", "f2", "i1", "i4", "?", "c8", ">f4", ">u2", ">f8", "O", "M8[s]"]


def _outcome(f, x, kw):
    keep = x.copy() if isinstance(x, np.ndarray) else None
    try:
        r = f(x, **kw)
    except Exception as e:  # (the exception is the outcome compared)
        res = ("raise", type(e), str(e))
    else:
        res = ("return", type(r), r.dtype.str, r.shape, r.tobytes())
    if keep is not None:
        assert keep.tobytes() == x.tobytes(), "input changed"
    return res


def _make(rng, shape, dt):
    dt = np.dtype(dt)
    if dt.kind in "uif":
        hi = 256 if dt.kind == "u" and dt.itemsize == 1 else (65536 if dt.kind == "u" else 1)
        a = rng.random(shape) * (hi - 1) if dt.kind == "u" else rng.standard_normal(shape)
        return a.astype(dt)
    if dt.kind == "O":
        return np.zeros(shape, dt)
    return np.zeros(shape, dt)


def _views(a):
    """a and views of it: Fortran order, reversed axes, strided, channel subsets, broadcast
    (zero strides), read-only."""
    out = [a]
    if a.ndim >= 1 and a.size:
        out += [a[::-1], np.asfortranarray(a), a[..., ::-1]]
        if a.shape[-1] > 1:
            out.append(a[..., ::2])
        if a.ndim >= 2:
            out += [a[:, ::-1], a[::2, 1:]]
            out.append(np.broadcast_to(a[:1], a.shape))
        r = a.copy()
        r.flags.writeable = False
        out.append(r)
    return out


def _slow_color(monkeypatch):
    decline = lambda *a, **k: None
    monkeypatch.setattr(color, "cpu_image_op", decline)
    monkeypatch.setattr(_driver, "cpu_image_op", decline)


# every conversion but the two without a one-step branch
_COLOR = [n for n in color.__all__ if n not in ("gray_to_rgb", "rgba_to_rgb")]
_IMAGE_SHAPES = [
    (1, 1, 3),
    (5, 7, 3),
    (3, 6, 4),
    (2, 3, 5, 3),
    (1, 1, 1, 4),
    (0, 4, 3),
    (4, 0, 3),
    (5, 7),
    (5, 7, 1),
    (5, 7, 2),
    (3,),
    (1, 2, 2, 2, 3),
]


def _grid(rng, shapes, viewed):
    """One fresh array per shape and dtype, as its _views for the dtypes in `viewed`."""
    xs = []
    for shape in shapes:
        for dt in DTYPES:
            a = _make(rng, shape, dt)
            xs += _views(a) if dt in viewed else [a]
    return xs


def _color_inputs(rng):
    xs = _grid(rng, _IMAGE_SHAPES, ("u1", "f4", ">u2"))
    xs += [
        [[[1, 2, 3]]],
        7,
        None,
        np.ones((2, 3, 3), np.uint8).view(Sub),
        np.zeros((2, 2, 3), np.uint8).view(np.recarray),
    ]
    return xs


@pytest.mark.parametrize("name", _COLOR)
def test_color_fast_path_equals_checked_path(isa, monkeypatch, name):
    f = getattr(color, name)
    rng = np.random.default_rng(7)
    xs = _color_inputs(rng)

    def outcomes():
        got = []
        for x in xs:
            got.append(_outcome(f, x, {}))
            if isinstance(x, np.ndarray) and x.ndim in (3, 4) and x.size:
                like = got[-1]
                if like[0] == "return":  # out= (the checked path on both sides) and a bad out=
                    shape, dt = like[3], np.dtype(like[2])
                    got.append(_outcome(f, x, {"out": np.full(shape, 3, dt)}))
                    got.append(_outcome(f, x, {"out": np.zeros(shape, np.int16)}))
                    got.append(_outcome(f, x, {"out": np.zeros(shape + (1,), dt)}))
        return got

    taken = _counting(monkeypatch, color, "cpu_image_op")
    fast = outcomes()
    assert len(taken) > 30  # the one-step path was reached
    _slow_color(monkeypatch)
    slow = outcomes()
    n_ok = 0
    for i, (a, b) in enumerate(zip(fast, slow)):
        assert a == b, (name, i, a[:3], b[:3])
        n_ok += a[0] == "return"
    assert len(fast) == len(slow)
    assert n_ok > 50  # the grid reaches the kernels, not only the errors


_NN_SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 0, 4), (2, 3, 4), (1,) * 9 + (3,), (2,) * 10]
_AXES = [0, -1, 2, -3, 9, -11, np.int64(1), True, 1.0, None]


def _nn_inputs(rng):
    xs = _grid(rng, _NN_SHAPES, ("f4", "f8", ">f8"))
    xs += [[1.0, -2.0], 3.0, None, np.ones((2, 3), np.float32).view(Sub)]
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30, 5e-39], np.float32)
    xs += [x, x.astype(np.float64)]
    return xs


def _nn_calls():
    calls = [
        ("relu", lambda x, **k: F.relu(x, **k)),
        ("leaky_relu", lambda x, **k: F.leaky_relu(x, 0.2, **k)),
        ("sigmoid", lambda x, **k: F.sigmoid(x, **k)),
        ("tanh", lambda x, **k: F.tanh(x, **k)),
        ("gelu", lambda x, **k: F.gelu(x, **k)),
    ]
    for ax in _AXES:
        calls.append((f"softmax{ax!r}", lambda x, ax=ax, **k: F.softmax(x, ax, **k)))
        calls.append((f"log_softmax{ax!r}", lambda x, ax=ax, **k: F.log_softmax(x, ax, **k)))
    return calls


def _nn_outcomes(f, xs):
    res = []
    for x in xs:
        res.append(_outcome(f, x, {}))
        if isinstance(x, np.ndarray) and res[-1][0] == "return":
            shape, dt = res[-1][3], np.dtype(res[-1][2])
            res.append(_outcome(f, x, {"out": np.full(shape, 3, dt)}))
            res.append(_outcome(f, x, {"out": np.zeros(shape, np.float16)}))
            res.append(_outcome(f, x, {"out": np.zeros(shape + (2,), dt)}))
    return res


def test_nn_fast_path_equals_checked_path(isa, monkeypatch):
    xs = _nn_inputs(np.random.default_rng(8))
    calls = _nn_calls()
    taken = _counting(monkeypatch, _driver, "cpu_tensor_out")
    fast = {}
    for name, f in calls:
        n = len(taken)
        fast[name] = _nn_outcomes(f, xs)
        if not any(t in name for t in ("None", "True", "1.0", "int64", "9", "-11")):  # plain ints in range
            assert len(taken) - n > 20, name  # the one-step path was reached
    monkeypatch.setattr(_driver, "cpu_tensor_out", lambda *a, **k: None)
    for name, f in calls:
        slow = _nn_outcomes(f, xs)
        for i, (a, b) in enumerate(zip(fast[name], slow)):
            assert a == b, (name, i, a[:3], b[:3])
        assert len(slow) == len(fast[name]), name
    assert sum(r[0] == "return" for r in fast["relu"]) > 50
    assert sum(r[0] == "return" for r in fast["softmax-1"]) > 50


# ---- bind.hpp: HostVec read in place (a C-contiguous array of its type) or converted ---------
def test_hostvec_in_place_equals_converted(isa):
    """Footprints (HostVec<uint8>) and fixed-point taps (HostVec<int32>): the in-place read of a
    C-contiguous array of the element type gives what the converting read gives for the same
    values in any other form (dtype, byte order, Fortran order, views, lists), asymmetric
    footprints included (an index-order mistake would show)."""
    from imkern import _core

    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    fp = np.array([[1, 0, 0, 1], [0, 1, 1, 1], [1, 1, 0, 0]], np.uint8)  # asymmetric, 3 x 4

    def morph(f):
        y = np.full_like(x, 7)
        _core.morphology(x, y, f, 1, 2, True, 0, 0.0)
        return y

    want = morph(fp)
    np.testing.assert_array_equal(want, morph(fp.copy()))
    for f in (
        fp.astype(bool),
        fp.astype(np.int64),
        np.asfortranarray(fp),
        fp.T.copy().T,
        fp.tolist(),
        np.ascontiguousarray(fp[::-1])[::-1],
        fp.astype(np.float32),
    ):
        np.testing.assert_array_equal(morph(f), want)
    assert not np.array_equal(morph(fp[::-1].copy()), want)  # the footprint's orientation matters

    taps_y = np.array([1, 14, 226, 14, 1], np.int32)  # sums to 256, asymmetric neither way needed
    taps_x = np.array([5, 60, 126, 60, 5], np.int32)

    def gauss(ky, kx):
        y = np.full_like(x, 7)
        _core.gaussian_u8(x, y, ky, kx, 0, 0)
        return y

    want = gauss(taps_y, taps_x)
    for ky, kx in (
        (taps_y.astype(np.int64), taps_x.tolist()),
        (taps_y.astype(">i4"), np.repeat(taps_x, 2)[::2]),
        (taps_y[::-1], taps_x[::-1].copy()),
    ):
        np.testing.assert_array_equal(gauss(ky, kx), want)
    for bad in (np.array([1, 254, 1, 0], np.int32), np.array([1, 253, 1], np.int32), [300, -44, 0]):
        with pytest.raises(ValueError, match="kernel_y"):
            gauss(bad, taps_x)
        with pytest.raises(ValueError, match="kernel_y"):
            gauss(np.asarray(bad, np.int64), taps_x)
