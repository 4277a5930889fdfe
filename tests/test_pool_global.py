"""adaptive_avg_pool2d fast paths and their backward.

Global pooling (output 1x1) sums float32 planes in blocks of 64 values (16 float32 lanes of 4
values each, converted to float64 per block; planes of <= 64 values without branches, 8
planes sharing one reduction at AVX-512) and float64 planes in 32 float64 lanes: within 4 ulps
of the float64 mean (values of one sign: 2 ulps at most, by the error bound), and the same bits
at every ISA level, thread count, batch split and memory layout. Disjoint windows of at most
64 values (14x14 -> 7x7, 56x56 -> 7x7) take avg_pool2d's vector rows; disjoint windows'
backward writes each input's share directly. Every case against the float64 reference, and
torch when installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern.nn import functional as F
from imkern.reference import nn as R

# Plane sizes around the paths' edges: 1 pixel, rows, columns, < 16, 49 (7x7), 64 (the small
# path's limit), 65, several blocks with a tail, and large planes.
PLANES = [
    (1, 1),
    (1, 7),
    (9, 1),
    (3, 5),
    (4, 4),
    (7, 7),
    (8, 8),
    (5, 13),
    (9, 9),
    (16, 16),
    (32, 32),
    (33, 65),
    (300, 300),
]
# Plane counts: fewer than 4, a group of 4 / 8 and a remainder, several groups.
COUNTS = [(1, 1), (1, 3), (1, 8), (3, 3), (2, 9), (4, 17)]


def _every_isa_and_threads():
    before, threads = imkern.get_cpu_isa(), imkern.get_num_threads()
    try:
        for isa in imkern.info()["cpu_isa_available"]:
            for t in (1, 2):
                imkern.set_cpu_isa(isa)
                imkern.set_num_threads(t)
                yield isa, t
    finally:
        imkern.set_cpu_isa(before)
        imkern.set_num_threads(threads)


def _global_results(x):
    """{(isa, threads): adaptive_avg_pool2d(x, 1)} over every ISA level and 1 and 2 threads."""
    return {k: F.adaptive_avg_pool2d(x, 1) for k in _every_isa_and_threads()}


def _assert_mean(y, x, err_msg=""):
    """y within 4 ulps of the float64 mean of x's planes, plus the sums' error bound where the
    values cancel: float32 blocks round at most 3 times per lane and block, each time by at most
    2^-24 of the partial sum, so the sum is within 3 * 2^-24 * sum|x| (values of one sign: the
    mean within 2 ulps); the float64 sums' own rounding is ~n 2^-53 sum|x| (a 4x4 plane's mean
    of 0.007 from values of +-1 is 2e-15 off relative)."""
    exact = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    eps = np.finfo(y.dtype).eps
    mean_abs = np.abs(x.astype(np.float64)).mean(axis=(2, 3), keepdims=True)
    tol = 4 * eps * np.abs(exact) + (2 * eps if y.dtype == np.float32 else 4 * eps) * mean_abs
    assert (np.abs(y - exact) <= tol).all(), f"{err_msg}: max |y - mean| {np.abs(y - exact).max()}"


def _check_same(results, err_msg=""):
    first = next(iter(results.values()))
    for k, y in results.items():
        np.testing.assert_array_equal(y, first, err_msg=f"{k} {err_msg}")
    return first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw", PLANES)
def test_global_pool_mean_every_isa(rng, dtype, hw):
    for nc in COUNTS:
        if hw == (300, 300) and nc[0] * nc[1] > 3:
            continue
        x = random_array(rng, nc + hw, dtype) + dtype(0.25)
        y = _check_same(_global_results(x), f"{nc + hw}")
        assert y.shape == nc + (1, 1) and y.dtype == dtype
        _assert_mean(y, x, f"{nc + hw}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_pool_one_sign_within_two_ulps(rng, dtype):
    """Values of one sign over many magnitudes: the float32 blocks' bound (3 roundings of at
    most 2^-24 per lane and block, then the final rounding) keeps the mean within 2 ulps."""
    for hw in [(7, 7), (8, 8), (33, 65), (128, 128)]:
        x = np.exp(rng.uniform(-12, 12, (2, 9) + hw)).astype(dtype)
        x[1] = -x[1]
        n = hw[0] * hw[1]
        # The exact mean (math.fsum): NumPy's float64 mean is itself ~1 ulp off, which made the
        # float64 case fail in about 1 run in 20 against it.
        exact = np.array([[math.fsum(p.ravel().tolist()) / n for p in q] for q in x.astype(np.float64)])
        y = _check_same(_global_results(x))[:, :, 0, 0]
        eps = np.finfo(dtype).eps
        # float32: the blocks' bound (2 ulps); float64: recursive summation in 32 lanes of up to
        # ceil(n / 32) values each, then the lanes' reduction and the division.
        rtol = 2 * eps if dtype == np.float32 else (-(-n // 32) + 7) * eps
        np.testing.assert_allclose(y, exact, rtol=rtol, atol=0, err_msg=f"{hw}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw", [(1, 1), (3, 3), (7, 7), (8, 8), (9, 9), (32, 32)])
def test_global_pool_batch_split_and_layouts(rng, dtype, hw):
    """The same bits whether a plane is pooled in a group of 8 (or 4), alone, first or last in
    the array (masked or plain loads), or from a strided, reversed or sliced view."""
    x = random_array(rng, (3, 7) + hw, dtype) * 3 + dtype(0.5)
    y = F.adaptive_avg_pool2d(x, 1)
    for k in _every_isa_and_threads():
        np.testing.assert_array_equal(F.adaptive_avg_pool2d(x, 1), y, err_msg=str(k))
        for i in range(3):
            for j in (0, 3, 6):
                np.testing.assert_array_equal(
                    F.adaptive_avg_pool2d(x[i : i + 1, j : j + 1], 1), y[i : i + 1, j : j + 1]
                )
        # Views: the kernel sees a contiguous copy with the same values in the same order
        for view in (x[::-1], x[:, ::-1], x[:, ::2]):
            np.testing.assert_array_equal(F.adaptive_avg_pool2d(view, 1), F.adaptive_avg_pool2d(view.copy(), 1))
        rev = x[:, :, ::-1, ::-1]
        _assert_mean(F.adaptive_avg_pool2d(rev, 1), rev, str(k))
        big = np.full((3, 7) + (hw[0] + 2, hw[1] + 3), np.nan, dtype)  # a window of a larger array
        big[:, :, 1 : 1 + hw[0], 2 : 2 + hw[1]] = x
        np.testing.assert_array_equal(F.adaptive_avg_pool2d(big[:, :, 1 : 1 + hw[0], 2 : 2 + hw[1]], 1), y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_pool_special_values(dtype):
    for hw in [(1, 1), (7, 7), (8, 8), (9, 9), (32, 32)]:
        x = np.full((2, 9) + hw, -0.0, dtype)  # -0 planes average to +0, as the float64 sum does
        x[1, 1] = 1.0
        x[1, 2, -1, -1] = np.nan
        x[1, 3, 0, 0] = np.inf
        x[1, 4, 0, 0], x[1, 4, -1, -1] = np.inf, -np.inf
        # float32 blocks overflow here; such planes are summed again in float64 (as before)
        x[1, 5] = np.finfo(np.float32).max
        y = _check_same(_global_results(x), str(hw))
        assert not np.signbit(y[0]).any() and (y[0] == 0).all()
        assert not np.signbit(y[1, 0]) and y[1, 0] == 0
        assert y[1, 1] == 1 and np.isnan(y[1, 2]) and y[1, 3] == np.inf
        assert np.isnan(y[1, 4]) == (hw != (1, 1))
        assert y[1, 5] == np.finfo(np.float32).max


# Disjoint windows (H % OH == 0, W % OW == 0) and others, incl. 1 pixel and odd sizes
ADAPTIVE = [
    ((2, 3, 14, 14), 7),
    ((1, 4, 56, 56), 7),
    ((2, 3, 32, 32), 4),
    ((1, 2, 9, 15), (3, 5)),
    ((2, 3, 8, 8), (8, 8)),
    ((1, 3, 16, 48), (2, 3)),
    ((1, 2, 1, 1), 1),
    ((1, 2, 5, 1), (5, 1)),
    ((1, 2, 6, 40), (1, 5)),
    ((2, 3, 7, 5), (3, 2)),
    ((1, 2, 13, 17), (5, None)),
    ((1, 1, 80, 80), 8),
    ((1, 2, 96, 90), (2, 3)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,osize", ADAPTIVE)
def test_adaptive_forward_backward_every_isa(rng, dtype, shape, osize):
    x = random_array(rng, shape, dtype)
    ref = R.adaptive_avg_pool2d(x, osize)
    g = random_array(rng, ref.shape, dtype)
    gref = R.adaptive_avg_pool2d_backward(g, shape)
    first = None
    for k in _every_isa_and_threads():
        y = F.adaptive_avg_pool2d(x, osize)
        assert_close(y, ref, dtype, err_msg=str(k))
        gi = F.adaptive_avg_pool2d_backward(g, shape)
        assert_close(gi, gref, dtype, err_msg=str(k))
        # views give the contiguous copy's bits
        np.testing.assert_array_equal(
            F.adaptive_avg_pool2d(x[:, ::-1], osize), F.adaptive_avg_pool2d(x[:, ::-1].copy(), osize)
        )
        gv = np.concatenate([g, g], axis=3)[..., ::2][:, ::-1]
        np.testing.assert_array_equal(
            F.adaptive_avg_pool2d_backward(gv, shape), F.adaptive_avg_pool2d_backward(gv.copy(), shape)
        )
        if first is None:
            first = (y, gi)
        np.testing.assert_array_equal(y, first[0], err_msg=str(k))
        np.testing.assert_array_equal(gi, first[1], err_msg=str(k))
    oh, ow = ref.shape[2:]
    if shape[2] % oh == 0 and shape[3] % ow == 0:
        # Disjoint windows: every input gets exactly 0 + g / (kh kw), computed in the dtype
        kh, kw = shape[2] // oh, shape[3] // ow
        share = (g / dtype(kh * kw)).astype(dtype) + dtype(0)
        np.testing.assert_array_equal(first[1], share.repeat(kh, axis=2).repeat(kw, axis=3))


def test_adaptive_backward_negative_zero_and_out(rng):
    g = np.full((2, 3, 2, 2), -0.0, np.float32)
    for shape in [(2, 3, 4, 4), (2, 3, 2, 2), (2, 3, 5, 3)]:
        out = np.full(shape, np.nan, np.float32)
        r = F.adaptive_avg_pool2d_backward(g, shape, out=out)
        assert r is out and (out == 0).all() and not np.signbit(out).any()
    out = np.full((2, 3, 7, 7), np.nan, np.float32)
    F.adaptive_avg_pool2d_backward(np.ones((2, 3, 1, 1), np.float32), out.shape, out=out)
    np.testing.assert_array_equal(out, np.float32(1) / np.float32(49))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    for shape, osize in ADAPTIVE + [((4, 16, 7, 7), 1), ((2, 5, 32, 32), 1), ((3, 2, 9, 9), 1)]:
        x = random_array(rng, shape, dtype)
        tx = torch.from_numpy(x.copy()).requires_grad_()
        ty = torch.nn.functional.adaptive_avg_pool2d(tx, osize)
        y = F.adaptive_avg_pool2d(x, osize)
        assert_close(y, ty.detach().numpy(), dtype)
        g = random_array(rng, y.shape, dtype)
        ty.backward(torch.from_numpy(g))
        assert_close(F.adaptive_avg_pool2d_backward(g, shape), tx.grad.numpy(), dtype)
