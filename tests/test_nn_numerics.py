"""nn numerics and size checks from issue 9: long reductions keep float32 accuracy (item 2),
log-softmax / cross entropy do not cancel for large logits (item 3), the depthwise conv path
is independent of the padding and size products are checked (item 7)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import to_numpy
from imkern.nn import functional as F


# ---- item 3: large logits ------------------------------------------------------------------
@pytest.mark.parametrize("big", [1e4, 1e6, 1e8])
def test_log_softmax_non_last_axis_large_logits(xp, big):
    exact = -np.log(37.0)
    for shape, axis in (((1, 37, 1), 1), ((2, 37, 5), 1), ((37, 3), 0), ((1, 37), 1)):
        x = xp.asarray(np.full(shape, big, np.float32))
        y = to_numpy(F.log_softmax(x, axis=axis))
        np.testing.assert_allclose(y, exact, rtol=1e-6)
    if xp is np:  # float64 is a CPU dtype of the nn ops (CUDA: float32, float16, bfloat16)
        x = np.full((2, 37, 5), big, np.float64)
        np.testing.assert_allclose(F.log_softmax(x, axis=1), exact, rtol=1e-14)


@pytest.mark.parametrize("big", [1e4, 1e6, 1e8])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_large_logits(xp, big, smoothing):
    exact = np.log(37.0)
    x = xp.asarray(np.full((4, 37), big, np.float32))
    t = xp.asarray(np.zeros(4, np.int64))
    assert abs(float(F.cross_entropy(x, t, label_smoothing=smoothing)) - exact) < 1e-5
    x = xp.asarray(np.full((4, 37, 3), big, np.float32))
    t = xp.asarray(np.zeros((4, 3), np.int64))
    assert abs(float(F.cross_entropy(x, t, label_smoothing=smoothing)) - exact) < 1e-5
    # a spread around a large offset: the same loss as without the offset
    rng = np.random.default_rng(int(big))
    z = rng.standard_normal((6, 37, 2)).astype(np.float32)
    tz = rng.integers(0, 37, (6, 2))
    ref = float(F.cross_entropy(z.astype(np.float64), tz, label_smoothing=smoothing))
    got = float(F.cross_entropy(xp.asarray(z + np.float32(big)), xp.asarray(tz), label_smoothing=smoothing))
    assert abs(got - ref) < 2e-6 + 4 * float(np.spacing(np.float32(big)))


# ---- item 2: long reductions ---------------------------------------------------------------
@pytest.mark.parametrize("n", [224, 1024, 2048])
def test_adaptive_avg_pool_constant_plane(xp, n):
    x = xp.asarray(np.full((1, 2, n, n), 0.1, np.float32))
    y = to_numpy(F.adaptive_avg_pool2d(x, 1))
    assert np.abs(y.astype(np.float64) - np.float64(np.float32(0.1))).max() <= np.spacing(np.float32(0.1))


def test_avg_pool_big_window(xp, rng):
    x = (rng.random((1, 1, 1024, 1024)) + 0.05).astype(np.float32)
    y = to_numpy(F.avg_pool2d(xp.asarray(x), 512))
    ref = x.astype(np.float64).reshape(2, 512, 2, 512).mean(axis=(1, 3))
    np.testing.assert_allclose(y[0, 0], ref, rtol=2e-7)


def test_softmax_long_row_sums(xp, rng):
    x = rng.standard_normal((2, 1 << 20)).astype(np.float32)
    y = to_numpy(F.softmax(xp.asarray(x), axis=1)).astype(np.float64)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    xt = np.ascontiguousarray(x.T[:, :1].repeat(3, 1))  # the same values along a non-last axis
    yt = to_numpy(F.softmax(xp.asarray(xt), axis=0)).astype(np.float64)
    np.testing.assert_allclose(yt.sum(axis=0), 1.0, rtol=1e-5)


def test_bias_gradients_long_sums(xp):
    go = np.full((1 << 18, 3), 0.1, np.float32)
    x = np.ones((1 << 18, 2), np.float32)
    w = np.ones((3, 2), np.float32)
    gb = to_numpy(F.linear_backward(xp.asarray(go), xp.asarray(x), xp.asarray(w))[2])
    np.testing.assert_allclose(gb, (1 << 18) * np.float64(np.float32(0.1)), rtol=1e-6)
    go = np.full((4, 2, 512, 512), 0.1, np.float32)
    xc = np.ones((4, 1, 512, 512), np.float32)
    wc = np.ones((2, 1, 1, 1), np.float32)
    gbc = to_numpy(F.conv2d_backward(xp.asarray(go), xp.asarray(xc), xp.asarray(wc))[2])
    np.testing.assert_allclose(gbc, 4 * 512 * 512 * np.float64(np.float32(0.1)), rtol=1e-6)


# ---- item 7: depthwise conv and size products ----------------------------------------------
def test_depthwise_huge_stride_and_padding(xp):
    x = xp.asarray(np.ones((1, 2, 2, 2), np.float32))
    w = xp.asarray(np.ones((2, 1, 1, 1), np.float32))
    y = to_numpy(F.conv2d(x, w, stride=2**31, padding=2**31 - 1, groups=2))
    assert y.shape == (1, 2, 2, 2)
    assert np.array_equal(y[0, 0], [[0, 0], [0, 1]])
    t = time.perf_counter()
    y = to_numpy(F.conv2d(x, w, stride=10000, padding=10000, groups=2))
    assert y.shape == (1, 2, 3, 3) and y.sum() == 2 and (y[0, :, 1, 1] == 1).all()
    assert time.perf_counter() - t < 1.0  # was 4.6 s and 1.5 GB for the padded plane


def test_depthwise_matches_torch_with_padding(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 9, 11)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 4)).astype(np.float32)
    for st, pd, dl in ((1, 0, 1), (2, 3, 1), (3, 5, 2), ((1, 2), (4, 1), (2, 1)), (1, 20, 1)):
        a = F.conv2d(x, w, stride=st, padding=pd, dilation=dl, groups=4)
        b = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=st, padding=pd,
                                       dilation=dl, groups=4).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_conv_size_products_overflow():
    x = np.ones((1, 2, 2, 2), np.float32)
    w = np.ones((2, 1, 1, 1), np.float32)
    for groups, wt in ((2, w), (1, np.ones((2, 2, 1, 1), np.float32))):
        with pytest.raises(OverflowError, match="64 bits"):
            F.conv2d(x, wt, padding=2**62, groups=groups)
        with pytest.raises(OverflowError, match="64 bits"):
            F.conv2d(x, wt, padding=(0, 2**62 - 1), groups=groups)
