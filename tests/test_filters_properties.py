"""Property tests (hypothesis) for the linear filters: linearity, shift equivariance under the
wrap border, layout independence, and the output-shape/dtype contract."""
from __future__ import annotations

import numpy as np
import pytest

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from imkern import filters as F  # noqa: E402

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]

shapes = st.tuples(st.integers(1, 24), st.integers(1, 24), st.sampled_from([None, 1, 3, 4]))
ksizes = st.tuples(st.integers(1, 9), st.integers(1, 9))


def _image(seed, shape, dtype=np.float64):
    h, w, c = shape
    rng = np.random.default_rng(seed)
    s = (h, w) if c is None else (h, w, c)
    return rng.standard_normal(s).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, ks=ksizes, border=st.sampled_from(BORDERS), seed=st.integers(0, 2**31),
       a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linearity(shape, ks, border, seed, a, b):
    x, y = _image(seed, shape), _image(seed + 1, shape)
    k = np.random.default_rng(seed + 2).standard_normal(ks)
    lhs = F.correlate(a * x + b * y, k, border=border)  # cval 0 keeps the constant border linear
    rhs = a * F.correlate(x, k, border=border) + b * F.correlate(y, k, border=border)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9 * (1 + np.abs(k).sum() * 6))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, ks=ksizes, seed=st.integers(0, 2**31), dy=st.integers(-30, 30), dx=st.integers(-30, 30))
def test_shift_equivariance_wrap(shape, ks, seed, dy, dx):
    x = _image(seed, shape)
    k = np.random.default_rng(seed + 2).standard_normal(ks)
    shifted = np.roll(x, (dy, dx), axis=(0, 1))
    np.testing.assert_allclose(F.correlate(shifted, k, border="wrap"),
                               np.roll(F.correlate(x, k, border="wrap"), (dy, dx), axis=(0, 1)), rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, border=st.sampled_from(BORDERS), seed=st.integers(0, 2**31),
       dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]), sigma=st.floats(0.3, 4.0))
def test_layout_independence(shape, border, seed, dtype, sigma):
    x = _image(seed, shape) * 50 + 100
    x = np.clip(x, 0, 255).astype(dtype)
    expect = F.gaussian(x, sigma, border=border)
    assert expect.shape == x.shape and expect.dtype == x.dtype
    np.testing.assert_array_equal(F.gaussian(np.asfortranarray(x), sigma, border=border), expect)
    flipped = F.gaussian(x[::-1].copy()[::-1], sigma, border=border)
    np.testing.assert_array_equal(flipped, expect)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, ks=ksizes, border=st.sampled_from(BORDERS), seed=st.integers(0, 2**31))
def test_box_equals_correlate_with_ones(shape, ks, border, seed):
    x = _image(seed, shape)
    np.testing.assert_allclose(F.box(x, ks, border=border, cval=0.5),
                               F.correlate(x, np.full(ks, 1.0 / (ks[0] * ks[1])), border=border, cval=0.5),
                               rtol=1e-9, atol=1e-12)
    ky = np.random.default_rng(seed).standard_normal(ks[0])
    kx = np.random.default_rng(seed + 1).standard_normal(ks[1])
    np.testing.assert_allclose(F.sep_filter(x, ky, kx, border=border, cval=0.5),
                               F.correlate(x, np.outer(ky, kx), border=border, cval=0.5), rtol=1e-9, atol=1e-9)
