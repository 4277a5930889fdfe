"""conv2d / linear (forward, backward) and the GEMM against the NumPy reference, PyTorch,
finite differences, every ISA level and thread count."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import imkern
from conftest import ISA_LEVELS, NN_DTYPES, assert_close, device_array, on_device, random_array, to_numpy
from imkern import _core
from imkern.nn import functional as F
from imkern.reference import nn as R

DTYPES = [np.float32, np.float64]

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CONFIGS = [
    (2, 3, 8, 9, 4, 3, 3, 1, 1, 1, 1),
    (1, 4, 7, 7, 6, 3, 3, 2, 0, 1, 1),
    (2, 5, 11, 6, 3, 3, 2, (2, 1), (1, 2), (1, 2), 1),
    (1, 6, 9, 10, 4, 3, 3, 1, "same", 2, 2),
    (2, 3, 6, 8, 5, 2, 4, 1, "same", 1, 1),  # even kernel: extra pad on the bottom/right
    (1, 4, 5, 9, 4, 1, 1, 1, 0, 1, 1),  # pointwise
    (3, 8, 6, 5, 16, 1, 1, 1, 0, 1, 4),  # grouped pointwise
    (1, 3, 9, 9, 2, 1, 1, 2, 1, 1, 1),  # 1x1 with stride and padding
    (2, 6, 10, 7, 6, 3, 3, 1, 1, 1, 6),  # depthwise
    (1, 5, 12, 11, 5, 5, 3, (2, 3), (2, 0), (1, 2), 5),  # depthwise, strided, dilated
    (2, 8, 7, 7, 16, 3, 3, 1, 1, 1, 8),  # grouped with multiplier 2
    (3, 1, 13, 12, 7, 3, 3, 1, 1, 1, 1),  # C = 1 first layer
    (1, 2, 15, 14, 3, 7, 7, 1, 3, 1, 1),  # big kernel
    (1, 3, 4, 5, 2, 5, 5, 1, 3, 1, 1),  # padding wider than the image
    (2, 4, 9, 8, 3, 3, 3, 3, "valid", 1, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),  # 1 pixel
    (1, 20, 17, 19, 70, 3, 3, 1, 1, 1, 1),  # several GEMM tiles
    (2, 3, 5, 6, 4, 1, 1, 1, 1, 1, 1),  # 1x1 with padding: grad_input padding > kernel extent
    (1, 20, 6, 7, 5, 2, 2, 1, 2, 1, 1),  # implicit GEMM forward, grad_input through col2im
    (1, 140, 6, 6, 9, 3, 3, 1, 1, 1, 1),  # reduction > 1152: k blocks, implicit GEMM
    (1, 130, 7, 7, 10, 3, 3, 2, 1, 1, 1),  # reduction > 1152: k blocks, im2col
    (2, 4, 9, 40, 3, 3, 3, 1, (0, 2), (2, 1), 1),  # wide rows
    (2, 64, 37, 56, 48, 3, 3, 1, 1, 1, 1),  # implicit GEMM over several row blocks per image
    (1, 96, 23, 30, 40, 3, 3, 1, (2, 1), (2, 1), 2),  # row blocks with dilation and groups
]


def _args(cfg):
    n, c, h, w, k, r, s, st, pad, dil, g = cfg
    return (n, c, h, w), (k, c // g, r, s), dict(stride=st, padding=pad, dilation=dil, groups=g)


def _scale(x, w):
    """Bound on the magnitude of the summed terms (for the fp32 tolerance)."""
    return max(1.0, float(np.prod(w.shape[1:])) * float(np.abs(x).max(initial=0)) * float(np.abs(w).max(initial=0)))


def _inputs(rng, cfg, dtype, bias=True):
    xs, ws, kw = _args(cfg)
    x = random_array(rng, xs, dtype)
    w = random_array(rng, ws, dtype)
    b = random_array(rng, (ws[0],), dtype) if bias else None
    return x, w, b, kw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"c{i}" for i in range(len(CONFIGS))])
def test_conv2d_matches_reference(rng, xp, tf32_off, cfg, dtype):
    x, w, b, kw = _inputs(rng, cfg, dtype, bias=hash(cfg) % 2 == 0)
    dx, dw, db = on_device(xp, x, w, b)
    for act in (None, "relu"):
        y = F.conv2d(dx, dw, db, activation=act, **kw)
        assert y.dtype == dtype
        assert_close(y, R.conv2d(x, w, b, activation=act, **kw), dtype, scale=_scale(x, w), err_msg=str(cfg))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"c{i}" for i in range(len(CONFIGS))])
def test_conv2d_backward_matches_reference(rng, xp, tf32_off, cfg, dtype):
    x, w, _, kw = _inputs(rng, cfg, dtype, bias=False)
    y = R.conv2d(x, w, **kw)
    go = random_array(rng, y.shape, dtype)
    got = F.conv2d_backward(*on_device(xp, go, x, w), **kw)
    exp = R.conv2d_backward(go, x, w, **kw)
    oh, ow = y.shape[2:]
    scales = [_scale(go, w), _scale(go, x) * oh * ow * x.shape[0], max(1.0, go[:, 0].size)]
    for name, a, e, sc in zip(("grad_input", "grad_weight", "grad_bias"), got, exp, scales):
        assert a.dtype == dtype and a.shape == e.shape
        assert_close(a, e, dtype, scale=sc, err_msg=f"{name} {cfg}")


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d_matches_torch(rng):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    for cfg in CONFIGS[::2]:
        for dtype in DTYPES:
            x, w, b, kw = _inputs(rng, cfg, dtype)
            xt = torch.from_numpy(x.copy()).requires_grad_()
            wt = torch.from_numpy(w.copy()).requires_grad_()
            bt = torch.from_numpy(b.copy()).requires_grad_()
            yt = tF.conv2d(xt, wt, bt, **kw)
            go = random_array(rng, tuple(yt.shape), dtype)
            yt.backward(torch.from_numpy(go))
            y = F.conv2d(x, w, b, **kw)
            sc = _scale(x, w)
            assert_close(y, yt.detach().numpy().astype(np.float64), dtype, scale=sc, err_msg=str(cfg))
            gi, gw, gb = F.conv2d_backward(go, x, w, **kw)
            big = _scale(go, x) * go[0, 0].size * x.shape[0]
            assert_close(gi, xt.grad.numpy().astype(np.float64), dtype, scale=_scale(go, w), err_msg=str(cfg))
            assert_close(gw, wt.grad.numpy().astype(np.float64), dtype, scale=big, err_msg=str(cfg))
            assert_close(gb, bt.grad.numpy().astype(np.float64), dtype, scale=go[:, 0].size, err_msg=str(cfg))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (3, 4, 33), (2, 3, 4, 65), (200, 100), (7,)])
def test_linear_matches_reference(rng, xp, tf32_off, shape, dtype):
    of = 1 + shape[-1] * 3 % 53
    x = random_array(rng, shape, dtype)
    w = random_array(rng, (of, shape[-1]), dtype)
    b = random_array(rng, (of,), dtype)
    dx, dw, db = on_device(xp, x, w, b)
    sc = max(1.0, shape[-1])
    assert_close(F.linear(dx, dw, db), R.linear(x, w, b), dtype, scale=sc)
    assert_close(F.linear(dx, dw), R.linear(x, w), dtype, scale=sc)
    go = random_array(rng, shape[:-1] + (of,), dtype)
    rows = int(np.prod(shape[:-1]))
    for a, e, s in zip(F.linear_backward(*on_device(xp, go, x, w)), R.linear_backward(go, x, w), (of, rows, rows)):
        assert a.shape == e.shape and a.dtype == dtype
        assert_close(a, e, dtype, scale=max(1.0, s))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_small_batch_dot_path(rng, isa, dtype):
    # Batches of <= 32 rows (or <= 64 with <= 64 outputs) take the packing-free dot-product
    # kernel (csrc/cpu/nn/linear.cpp, use_dot), the others the GEMM: both sides of each bound,
    # edge tiles in both directions (4 rows x 6 or 3 outputs per tile), k with and without a
    # vector tail and long enough for several L1 chunks (~336 .. 1364 elements per chunk).
    before = imkern.get_num_threads()
    try:
        for m, n in [(1, 1), (1, 130), (2, 5), (3, 7), (4, 6), (5, 13), (7, 65), (31, 3), (32, 66), (33, 64),
                     (33, 65), (64, 10), (64, 65), (65, 10)]:
            for k in (1, 15, 17, 700, 3001):
                x = random_array(rng, (m, k), dtype)
                w = random_array(rng, (n, k), dtype)
                b = random_array(rng, (n,), dtype)
                exp = R.linear(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
                outs = []
                for t in (1, 3):
                    imkern.set_num_threads(t)
                    out = np.full((m, n), np.nan, dtype)
                    assert F.linear(x, w, b, out=out) is out
                    outs.append(out)
                msg = f"{m}x{k} -> {n} {isa}"
                assert_close(outs[0], exp, dtype, scale=k, err_msg=msg)
                np.testing.assert_array_equal(outs[0], outs[1], err_msg=msg)  # thread count: same bits
                assert_close(F.linear(x, w), exp - b, dtype, scale=k, err_msg=msg)
                # Strided and reversed views give the same bits as contiguous copies.
                xr, wr = x[::-1].copy()[::-1], np.asfortranarray(w)
                np.testing.assert_array_equal(F.linear(xr, wr, b[::-1].copy()[::-1]), outs[0], err_msg=msg)
                if m > 1:
                    np.testing.assert_array_equal(F.linear(x[::-1], w, b), outs[0][::-1], err_msg=msg)
    finally:
        imkern.set_num_threads(before)


def test_linear_small_batch_nan_inf(rng):
    # A NaN or inf in x or W spreads to exactly the outputs whose sums include it (dot path).
    x = random_array(rng, (5, 40), np.float32)
    w = random_array(rng, (7, 40), np.float32)
    x[2, 17] = np.nan
    w[4, 33] = np.inf
    y = F.linear(x, w)
    e = R.linear(x.astype(np.float64), w.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(e))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(e))


def test_linear_matches_torch(rng):
    torch = pytest.importorskip("torch")
    for dtype in DTYPES:
        x = random_array(rng, (3, 9, 50), dtype)
        w = random_array(rng, (31, 50), dtype)
        b = random_array(rng, (31,), dtype)
        xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
        yt = torch.nn.functional.linear(xt, wt, bt)
        go = random_array(rng, tuple(yt.shape), dtype)
        yt.backward(torch.from_numpy(go))
        assert_close(F.linear(x, w, b), yt.detach().numpy().astype(np.float64), dtype, scale=50)
        gi, gw, gb = F.linear_backward(go, x, w)
        assert_close(gi, xt.grad.numpy().astype(np.float64), dtype, scale=31)
        assert_close(gw, wt.grad.numpy().astype(np.float64), dtype, scale=27)
        assert_close(gb, bt.grad.numpy().astype(np.float64), dtype, scale=27)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_transposes_alpha_beta(rng, dtype):
    for m, n, k in [(1, 1, 1), (7, 5, 3), (33, 97, 300), (130, 50, 257), (17, 1600, 20)]:
        for ta in (False, True):
            for tb in (False, True):
                a = random_array(rng, (k, m) if ta else (m, k), dtype)
                b = random_array(rng, (n, k) if tb else (k, n), dtype)
                c = random_array(rng, (m, n), dtype)
                exp = 1.5 * (a.T if ta else a).astype(np.float64) @ (b.T if tb else b) - 0.5 * c
                _core.gemm(a, b, c, ta, tb, 1.5, -0.5)
                assert_close(c, exp, dtype, scale=2 * k, err_msg=f"{m}x{n}x{k} ta={ta} tb={tb}")
    # beta == 0 never reads C (NaN there must not leak)
    a, b = random_array(rng, (9, 11), dtype), random_array(rng, (11, 50), dtype)
    c = np.full((9, 50), np.nan, dtype)
    _core.gemm(a, b, c, False, False, 1.0, 0.0)
    assert_close(c, a.astype(np.float64) @ b, dtype, scale=11)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_edge_tiles_same_bits(rng, isa, dtype):
    # Edge tiles (fewer rows than the register tile, or fewer columns: whole vectors run a
    # smaller microkernel on C itself, others a padded copy) sum every element's products in the
    # same order as full tiles: each row and column prefix of a product equals that part of the
    # whole product, bit for bit, and all of them match the float64 reference.
    k = 97
    a = random_array(rng, (19, k), dtype)
    b = random_array(rng, (k, 200), dtype)
    c0 = random_array(rng, (19, 200), dtype)
    for ta, tb, alpha, beta in ((False, False, 1.0, 0.0), (False, True, 1.5, -0.5), (True, False, 1.0, 1.0)):
        aa = np.ascontiguousarray(a.T) if ta else a
        bb = np.ascontiguousarray(b.T) if tb else b
        full = c0.copy()
        _core.gemm(aa, bb, full, ta, tb, alpha, beta)
        exp = alpha * a.astype(np.float64) @ b + beta * c0
        assert_close(full, exp, dtype, scale=2 * k, err_msg=f"{isa} ta={ta} tb={tb}")
        for m, n in [(1, 200), (2, 200), (3, 200), (4, 16), (5, 32), (6, 48), (7, 8), (9, 96), (13, 17), (19, 1),
                     (19, 24), (19, 64), (19, 100), (19, 144)]:
            sa = np.ascontiguousarray(aa[:, :m]) if ta else np.ascontiguousarray(aa[:m])
            sb = np.ascontiguousarray(bb[:n]) if tb else np.ascontiguousarray(bb[:, :n])
            c = c0[:m, :n].copy()
            _core.gemm(sa, sb, c, ta, tb, alpha, beta)
            np.testing.assert_array_equal(c, full[:m, :n], err_msg=f"{m}x{n} {isa} ta={ta} tb={tb}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_c_buffer_same_bits(rng, isa, dtype):
    # One row block (m <= MC), several k blocks, beta == 0: each task sums its C tile in a
    # thread-local buffer and copies it to C at the end (csrc/cpu/nn/ukernels/gemm.cpp, c_local).
    # beta == 1 on a zero C writes C directly with the same sums: the same bits, at 1 and 3
    # threads, with edge tiles in both directions; the NaN in C is never read; k <= KC (one k
    # block, no buffer) and linear's bias, strided and reversed views too.
    p = imkern.get_cpu_params()
    kc = p["gemm_kc"] if dtype == np.float32 else p["gemm_kc_f64"]
    before = imkern.get_num_threads()
    try:
        for m, n, k in [(1, 5, 2 * kc + 1), (6, 16, kc + 1), (7, 33, 2 * kc + 3), (19, 200, 3 * kc), (37, 1030, kc + 17),
                        (256, 130, 2 * kc + 5), (19, 40, kc)]:
            for ta, tb, alpha in ((False, True, 1.0), (False, False, 1.5), (True, True, 1.0)):
                a = random_array(rng, (k, m) if ta else (m, k), dtype)
                b = random_array(rng, (n, k) if tb else (k, n), dtype)
                exp = alpha * (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
                direct = np.zeros((m, n), dtype)
                _core.gemm(a, b, direct, ta, tb, alpha, 1.0)
                msg = f"{m}x{n}x{k} {isa} ta={ta} tb={tb}"
                assert_close(direct, exp, dtype, scale=2 * k, err_msg=msg)
                for t in (1, 3):
                    imkern.set_num_threads(t)
                    c = np.full((m, n), np.nan, dtype)
                    _core.gemm(a, b, c, ta, tb, alpha, 0.0)
                    np.testing.assert_array_equal(c, direct, err_msg=f"{msg} threads={t}")
        m, n, k = 37, 70, 2 * kc + 3
        x = random_array(rng, (m, k), dtype)
        w = random_array(rng, (n, k), dtype)
        bias = random_array(rng, (n,), dtype)
        direct = np.zeros((m, n), dtype)
        _core.gemm(x, w, direct, False, True, 1.0, 1.0)
        want = direct + bias  # the epilogue adds the bias to the finished sum: one rounding
        assert_close(want, R.linear(x.astype(np.float64), w.astype(np.float64), bias.astype(np.float64)), dtype,
                     scale=k)
        for t in (1, 3):
            imkern.set_num_threads(t)
            np.testing.assert_array_equal(F.linear(x, w, bias), want, err_msg=f"linear {isa} threads={t}")
            np.testing.assert_array_equal(F.linear(x[::-1], w, bias), want[::-1], err_msg=f"linear reversed {isa}")
            xs = np.zeros((m, 2 * k), dtype)[:, ::2]
            xs[...] = x
            np.testing.assert_array_equal(F.linear(xs, np.asfortranarray(w), bias), want, err_msg=f"strided {isa}")
    finally:
        imkern.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_huge_page_scratch_same_bits(rng, isa, dtype):
    # Packing buffers of half a huge page or more are 2 MiB-aligned whole huge pages
    # (gemm_kernel.hpp's Scratch): the x panel packed once for all column tasks (m <= MC) here
    # is 1.1 MiB (float32) / 2.2 MiB (float64), with several k blocks (the C buffer) under
    # kc 256; a smaller product after it reuses the grown buffers. Same bits at 1 and 3
    # threads, and the reference.
    x = random_array(rng, (256, 1100), dtype)
    w = random_array(rng, (400, 1100), dtype)
    b = random_array(rng, (400,), dtype)
    before = imkern.get_num_threads()
    try:
        for params in ({}, dict(kc=256)):
            imkern.reset_cpu_params()
            imkern.set_cpu_params(**params)
            ys = []
            for t in (1, 3):
                imkern.set_num_threads(t)
                ys.append(F.linear(x, w, b))
                small = F.linear(x[:40, :300], w[:, :300], b)
                assert_close(small, R.linear(x[:40, :300], w[:, :300], b), dtype, scale=300)
            np.testing.assert_array_equal(ys[1], ys[0], err_msg=f"{isa} {params}")
            assert_close(ys[0], R.linear(x, w, b), dtype, scale=1100)
    finally:
        imkern.reset_cpu_params()
        imkern.set_num_threads(before)


def test_gemm_peak_shape(rng):
    # Large enough for several MC x NC tiles and KC blocks.
    a = random_array(rng, (300, 700), np.float32)
    b = random_array(rng, (700, 3300), np.float32)
    c = np.empty((300, 3300), np.float32)
    _core.gemm(a, b, c, False, False, 1.0, 0.0)
    assert_close(c, a.astype(np.float64) @ b, np.float32, scale=700)


def test_isa_levels(rng, isa):
    for cfg in (CONFIGS[0], CONFIGS[2], CONFIGS[8], CONFIGS[16]):
        for dtype in DTYPES:
            x, w, b, kw = _inputs(rng, cfg, dtype)
            assert_close(F.conv2d(x, w, b, **kw), R.conv2d(x, w, b, **kw), dtype, scale=_scale(x, w), err_msg=isa)
            go = random_array(rng, R.conv2d(x, w, **kw).shape, dtype)
            gi, gw, gb = F.conv2d_backward(go, x, w, **kw)
            ei, ew, eb = R.conv2d_backward(go, x, w, **kw)
            assert_close(gi, ei, dtype, scale=_scale(go, w), err_msg=isa)
            assert_close(gw, ew, dtype, scale=_scale(go, x) * go[0, 0].size * x.shape[0], err_msg=isa)
    x = random_array(rng, (37, 70), np.float32)
    w = random_array(rng, (45, 70), np.float32)
    assert_close(F.linear(x, w), R.linear(x, w), np.float32, scale=70, err_msg=isa)


def test_threads_match_reference(rng, threads):
    x, w, b, kw = _inputs(rng, CONFIGS[16], np.float32)
    assert_close(F.conv2d(x, w, b, **kw), R.conv2d(x, w, b, **kw), np.float32, scale=_scale(x, w))


def _all_outputs(x, w, b, go, lx, lw, lgo, kw):
    return (F.conv2d(x, w, b, activation="relu", **kw),) + F.conv2d_backward(go, x, w, **kw) + (
        F.linear(lx, lw),) + F.linear_backward(lgo, lx, lw)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[9], (12, 16, 20, 20, 24, 3, 3, 1, 1, 1, 1), (1, 32, 30, 30, 64, 3, 3, 1, 1, 1, 1)])
def test_threads_bit_identical(rng, cfg):
    x, w, b, kw = _inputs(rng, cfg, np.float32)
    go = random_array(rng, R.conv2d(x, w, **kw).shape, np.float32)
    lx = random_array(rng, (300, 513), np.float32)
    lw = random_array(rng, (257, 513), np.float32)
    lgo = random_array(rng, (300, 257), np.float32)
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        one = _all_outputs(x, w, b, go, lx, lw, lgo, kw)
        imkern.set_num_threads(3)
        three = _all_outputs(x, w, b, go, lx, lw, lgo, kw)
    finally:
        imkern.set_num_threads(before)
    for a, c in zip(one, three):
        assert np.array_equal(a, c)


def _numeric_grad(f, a, idx, eps=1e-6):
    a_p, a_m = a.copy(), a.copy()
    a_p[idx] += eps
    a_m[idx] -= eps
    return (f(a_p) - f(a_m)) / (2 * eps)


@pytest.mark.parametrize("cfg", [CONFIGS[2], CONFIGS[3], CONFIGS[9], CONFIGS[13]])
def test_conv2d_backward_finite_differences(rng, cfg):
    x, w, b, kw = _inputs(rng, cfg, np.float64)
    go = random_array(rng, F.conv2d(x, w, b, **kw).shape, np.float64)
    gi, gw, gb = F.conv2d_backward(go, x, w, **kw)
    for _ in range(6):
        i = tuple(int(rng.integers(s)) for s in x.shape)
        num = _numeric_grad(lambda a: float((F.conv2d(a, w, b, **kw) * go).sum()), x, i)
        assert abs(num - gi[i]) <= 1e-6 * max(1.0, abs(num))
        j = tuple(int(rng.integers(s)) for s in w.shape)
        num = _numeric_grad(lambda a: float((F.conv2d(x, a, b, **kw) * go).sum()), w, j)
        assert abs(num - gw[j]) <= 1e-6 * max(1.0, abs(num))
        k = int(rng.integers(b.shape[0]))
        num = _numeric_grad(lambda a: float((F.conv2d(x, w, a, **kw) * go).sum()), b, k)
        assert abs(num - gb[k]) <= 1e-6 * max(1.0, abs(num))


def test_linear_backward_finite_differences(rng):
    x = random_array(rng, (4, 3, 6), np.float64)
    w = random_array(rng, (5, 6), np.float64)
    b = random_array(rng, (5,), np.float64)
    go = random_array(rng, (4, 3, 5), np.float64)
    gi, gw, gb = F.linear_backward(go, x, w)
    for _ in range(5):
        i = tuple(int(rng.integers(s)) for s in x.shape)
        assert abs(_numeric_grad(lambda a: float((F.linear(a, w, b) * go).sum()), x, i) - gi[i]) < 1e-6
        j = tuple(int(rng.integers(s)) for s in w.shape)
        assert abs(_numeric_grad(lambda a: float((F.linear(x, a, b) * go).sum()), w, j) - gw[j]) < 1e-6
        k = int(rng.integers(5))
        assert abs(_numeric_grad(lambda a: float((F.linear(x, w, a) * go).sum()), b, k) - gb[k]) < 1e-6


def test_relu_fusion_and_nan(rng):
    x, w, b, kw = _inputs(rng, CONFIGS[0], np.float32)
    y = F.conv2d(x, w, b, **kw)
    assert (y < 0).any()
    assert np.array_equal(F.conv2d(x, w, b, activation="relu", **kw), np.where(y < 0, 0, y))
    xd, wd, bd, kwd = _inputs(rng, CONFIGS[8], np.float32)  # depthwise path
    yd = F.conv2d(xd, wd, bd, **kwd)
    assert np.array_equal(F.conv2d(xd, wd, bd, activation="relu", **kwd), np.where(yd < 0, 0, yd))
    x[0, 0, 3, 4] = np.nan
    y = F.conv2d(x, w, b, activation="relu", **kw)
    assert np.isnan(y[0, :, 3, 4]).all() and not np.isnan(y[1]).any()


@pytest.mark.parametrize("kc", [None, 64])
def test_gemm_full_tiles_epilogue(rng, isa, kc):
    # A pointwise conv is one GEMM per image (W packed, K = 16 rows: whole 8-row tiles at AVX-512;
    # 144 columns: whole 48-wide slivers) with the row bias and ReLU in the epilogue; C = 300 runs several k blocks under kc = 64 and the C tile
    # tail (k > 32) in each. ReLU keeps NaN (v < 0 ? 0 : v), and the result matches the
    # reference at every ISA.
    x = random_array(rng, (2, 300, 12, 12), np.float32)
    w = random_array(rng, (16, 300, 1, 1), np.float32)
    b = random_array(rng, (16,), np.float32)
    x[1, 7, 5, 6] = np.nan
    try:
        if kc:
            imkern.set_cpu_params(kc=kc)
        y = F.conv2d(x, w, b)
        yr = F.conv2d(x, w, b, activation="relu")
    finally:
        imkern.reset_cpu_params()
    assert np.array_equal(yr, np.where(y < 0, 0, y), equal_nan=True)
    assert np.isnan(yr[1, :, 5, 6]).all() and np.isnan(yr).sum() == 16
    ok = ~np.isnan(y)
    exp = R.conv2d(x, w, b)
    assert_close(y[ok], exp[ok], np.float32, scale=_scale(np.nan_to_num(x), w), err_msg=isa)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_negative_views(rng, dtype):
    cfg = CONFIGS[2]
    x, w, b, kw = _inputs(rng, cfg, dtype)
    exp = F.conv2d(x, w, b, **kw)
    big = random_array(rng, (x.shape[0], x.shape[1], 2 * x.shape[2], x.shape[3] + 3), dtype)
    big[:, :, ::2, 3:] = x
    views = [big[:, :, ::2, 3:], np.asfortranarray(x), x[::-1][::-1], x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]]
    rev = x[:, :, :, ::-1]
    for v in views:
        assert np.array_equal(F.conv2d(v, np.asfortranarray(w), b[::-1].copy()[::-1], **kw), exp)
    assert_close(F.conv2d(rev, w, b, **kw), R.conv2d(np.ascontiguousarray(rev), w, b, **kw), dtype, scale=_scale(x, w))
    go = random_array(rng, exp.shape, dtype)
    g_ref = F.conv2d_backward(go, x, w, **kw)
    for a, e in zip(F.conv2d_backward(np.asfortranarray(go), big[:, :, ::2, 3:], w[::-1][::-1], **kw), g_ref):
        assert np.array_equal(a, e)
    lx = random_array(rng, (40, 30), dtype)
    lw = random_array(rng, (20, 30), dtype)
    assert np.array_equal(F.linear(lx[::-1].T.T, lw.T.copy().T), F.linear(lx[::-1].copy(), lw))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(rng, dtype):
    x, w, b, kw = _inputs(rng, CONFIGS[0], dtype)
    exp = F.conv2d(x, w, b, **kw)
    out = np.full(exp.shape, np.nan, dtype)
    assert F.conv2d(x, w, b, out=out, **kw) is out
    assert np.array_equal(out, exp)
    buf = np.full(exp.shape[:3] + (2 * exp.shape[3],), np.nan, dtype)
    view = buf[..., ::2]
    assert F.conv2d(x, w, b, out=view, **kw) is view
    assert np.array_equal(view, exp) and np.isnan(buf[..., 1::2]).all()
    chans = np.full((exp.shape[0], exp.shape[1] + 2) + exp.shape[2:], np.nan, dtype)
    assert np.array_equal(F.conv2d(x, w, b, out=chans[:, 1:-1], **kw), exp)
    with pytest.raises(ValueError, match="out"):
        F.conv2d(x, w, b, out=np.empty((1, 2, 3, 4), dtype), **kw)
    with pytest.raises(TypeError, match="out"):
        F.conv2d(x, w, b, out=np.empty(exp.shape, np.float16), **kw)
    lx, lw = random_array(rng, (6, 5), dtype), random_array(rng, (4, 5), dtype)
    lo = np.empty((6, 4), dtype)
    assert F.linear(lx, lw, out=lo) is lo and np.array_equal(lo, F.linear(lx, lw))


def test_inputs_unchanged(rng):
    for cfg in (CONFIGS[0], CONFIGS[8]):
        x, w, b, kw = _inputs(rng, cfg, np.float32)
        go = random_array(rng, R.conv2d(x, w, **kw).shape, np.float32)
        copies = [a.copy() for a in (x, w, b, go)]
        F.conv2d(x, w, b, activation="relu", **kw)
        F.conv2d_backward(go, x, w, **kw)
        for a, c in zip((x, w, b, go), copies):
            assert np.array_equal(a, c)
    lx, lw, lgo = (random_array(rng, s, np.float64) for s in ((5, 6), (3, 6), (5, 3)))
    copies = [a.copy() for a in (lx, lw, lgo)]
    F.linear(lx, lw)
    F.linear_backward(lgo, lx, lw)
    for a, c in zip((lx, lw, lgo), copies):
        assert np.array_equal(a, c)


def test_zero_size(rng):
    w = random_array(rng, (4, 3, 3, 3), np.float32)
    b = random_array(rng, (4,), np.float32)
    assert F.conv2d(np.empty((0, 3, 5, 5), np.float32), w, b, padding=1).shape == (0, 4, 5, 5)
    y = F.conv2d(np.empty((2, 0, 5, 5), np.float32), np.empty((4, 0, 3, 3), np.float32), b)
    assert y.shape == (2, 4, 3, 3) and np.array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))
    gi, gw, gb = F.conv2d_backward(np.empty((0, 4, 5, 5), np.float32), np.empty((0, 3, 5, 5), np.float32), w, padding=1)
    assert gi.shape == (0, 3, 5, 5) and gw.shape == w.shape and not gw.any() and not gb.any()
    assert F.linear(np.empty((0, 5), np.float32), np.ones((3, 5), np.float32)).shape == (0, 3)
    gi, gw, gb = F.linear_backward(np.empty((0, 3)), np.empty((0, 5)), np.ones((3, 5)))
    assert gi.shape == (0, 5) and not gw.any() and not gb.any()


def test_conv2d_empty_out_channels(rng):
    x = random_array(rng, (2, 3, 5, 5), np.float32)
    assert F.conv2d(x, np.empty((0, 3, 3, 3), np.float32)).shape == (2, 0, 3, 3)


def test_bad_arguments(rng):
    x = random_array(rng, (2, 4, 8, 8), np.float32)
    w = random_array(rng, (6, 4, 3, 3), np.float32)
    b = random_array(rng, (6,), np.float32)
    with pytest.raises(TypeError, match="float32"):
        F.conv2d(x.astype(np.int32), w)
    with pytest.raises(TypeError, match="x"):
        F.conv2d(x.tolist(), w)
    with pytest.raises(TypeError, match="weight"):
        F.conv2d(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="bias"):
        F.conv2d(x, w, b.astype(np.float64))
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, stride=1.5)
    with pytest.raises(ValueError, match=r"\(4, 8, 8\)"):
        F.conv2d(x[0], w)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x, w[:, :3])
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, w[:, :2], groups=3)
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match="same"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, w, stride=(1, 0))
    with pytest.raises(ValueError, match="dilation"):
        F.conv2d(x, w, dilation=0)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="larger"):
        F.conv2d(x, random_array(rng, (6, 4, 9, 3), np.float32))
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, w, b[:5])
    with pytest.raises(ValueError, match="activation"):
        F.conv2d(x, w, activation="gelu")
    with pytest.raises(ValueError, match="grad_output"):
        F.conv2d_backward(np.ones((2, 6, 8, 8), np.float32), x, w)
    with pytest.raises(TypeError, match="grad_output"):
        F.conv2d_backward(np.ones((2, 6, 6, 6)), x, w)
    with pytest.raises(ValueError, match="in_features"):
        F.linear(np.ones((3, 5), np.float32), np.ones((4, 6), np.float32))
    with pytest.raises(ValueError, match="weight"):
        F.linear(np.ones((3, 5), np.float32), np.ones((5,), np.float32))
    with pytest.raises(ValueError, match="bias"):
        F.linear(np.ones((3, 5), np.float32), np.ones((4, 5), np.float32), np.ones(3, np.float32))
    with pytest.raises(TypeError, match="float64"):
        F.linear(np.ones((3, 5), np.float16), np.ones((4, 5), np.float16))
    with pytest.raises(ValueError, match="grad_output"):
        F.linear_backward(np.ones((3, 5)), np.ones((3, 5)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty((2, 6, 6, 6), np.float32)
        ro.flags.writeable = False
        F.conv2d(x, w, out=ro)


def test_out_overlapping_input(rng):
    x = random_array(rng, (1, 2, 4, 4), np.float64)
    w = random_array(rng, (2, 2, 1, 1), np.float64)
    exp = R.conv2d(x, w)
    assert_close(F.conv2d(x, w, out=x), exp, np.float64, scale=4)


def test_docstrings():
    from imkern.nn import _conv2d, _linear

    res = doctest.testmod(_conv2d, optionflags=doctest.NORMALIZE_WHITESPACE)
    res2 = doctest.testmod(_linear, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res2.failed == 0 and res.attempted + res2.attempted >= 4


# ---- Winograd F(4x4, 3x3): float32, 3x3, stride 1, dilation 1, groups 1 ------------------------
# (N, C, H, W, K, padding); the sizes are not multiples of the 4x4 tiles nor of the lanes.
WINO = [
    (1, 16, 8, 8, 16, 1),
    (2, 17, 9, 11, 19, 1),
    (1, 16, 1, 1, 20, 1),  # 1-pixel image
    (3, 20, 2, 3, 33, 1),  # 2x3 image
    (2, 24, 13, 7, 18, 0),
    (1, 18, 10, 6, 16, (0, 1)),
    (3, 16, 15, 22, 24, "same"),
    (1, 40, 23, 5, 36, 2),  # grad_input through the complementary padding 0
    (2, 33, 30, 37, 17, 1),  # several tile blocks, one crossing images
    (1, 530, 6, 5, 20, 1),  # reduction over C in blocks of 256
]


@pytest.fixture
def winograd_always():
    """Winograd wherever the shape allows it, also where the direct path would be chosen."""
    from imkern import _runtime as _conv

    before = _conv.winograd_mode
    _conv.winograd_mode = 2
    yield
    _conv.winograd_mode = before


def _wino_inputs(rng, cfg, bias=True):
    n, c, h, w, k, pad = cfg
    x = random_array(rng, (n, c, h, w), np.float32)
    wt = random_array(rng, (k, c, 3, 3), np.float32)
    b = random_array(rng, (k,), np.float32) if bias else None
    return x, wt, b, pad


def _direct(fn, *args, **kw):
    from imkern import _runtime as _conv

    before = _conv.winograd_mode
    _conv.winograd_mode = 0
    try:
        return fn(*args, **kw)
    finally:
        _conv.winograd_mode = before


@pytest.mark.parametrize("cfg", WINO, ids=[f"w{i}" for i in range(len(WINO))])
def test_winograd_matches_reference_and_direct(rng, cfg, winograd_always):
    x, w, b, pad = _wino_inputs(rng, cfg, bias=hash(cfg) % 2 == 0)
    sc = _scale(x, w)
    for act in (None, "relu"):
        y = F.conv2d(x, w, b, padding=pad, activation=act)
        exp = R.conv2d(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                       padding=pad, activation=act)
        assert_close(y, exp, np.float32, scale=sc, err_msg=f"{cfg} {act}")
        assert_close(y, _direct(F.conv2d, x, w, b, padding=pad, activation=act), np.float32, scale=sc)
    go = random_array(rng, exp.shape, np.float32)
    gi, gw, gb = F.conv2d_backward(go, x, w, padding=pad)
    ei, ew, eb = R.conv2d_backward(go.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=pad)
    di, dw, db = _direct(F.conv2d_backward, go, x, w, padding=pad)
    sw = _scale(go, x) * go[0, 0].size * x.shape[0]
    for a, e, d, sc in ((gi, ei, di, _scale(go, w)), (gw, ew, dw, sw)):
        assert_close(a, e, np.float32, scale=sc, err_msg=str(cfg))
        assert_close(a, d, np.float32, scale=sc, err_msg=str(cfg))
    assert np.array_equal(gb, db)  # not Winograd


def test_winograd_path_taken(rng):
    # Default mode: an eligible, large-enough shape gives other bits than the direct path;
    # set_allow_winograd(False) gives the direct path's; float64 never uses Winograd.
    x, w, b, pad = _wino_inputs(rng, (2, 24, 32, 60, 24, 1))
    go = random_array(rng, (2, 24, 32, 60), np.float32)
    assert imkern.get_allow_winograd()
    y, (gi, gw, _) = F.conv2d(x, w, b, padding=pad), F.conv2d_backward(go, x, w, padding=pad)
    yd, (gid, gwd, _) = _direct(F.conv2d, x, w, b, padding=pad), _direct(F.conv2d_backward, go, x, w, padding=pad)
    assert not np.array_equal(y, yd) and not np.array_equal(gi, gid) and not np.array_equal(gw, gwd)
    try:
        imkern.set_allow_winograd(False)
        assert not imkern.get_allow_winograd()
        assert np.array_equal(F.conv2d(x, w, b, padding=pad), yd)
        gi_off, gw_off, _ = F.conv2d_backward(go, x, w, padding=pad)
        assert np.array_equal(gi_off, gid) and np.array_equal(gw_off, gwd)
    finally:
        imkern.set_allow_winograd(True)
    x64, w64, go64 = x.astype(np.float64), w.astype(np.float64), go.astype(np.float64)
    from imkern import _runtime as _conv

    before = _conv.winograd_mode
    _conv.winograd_mode = 2
    try:
        y64, g64 = F.conv2d(x64, w64, padding=pad), F.conv2d_backward(go64, x64, w64, padding=pad)
    finally:
        _conv.winograd_mode = before
    assert np.array_equal(y64, _direct(F.conv2d, x64, w64, padding=pad))
    for a, e in zip(g64, _direct(F.conv2d_backward, go64, x64, w64, padding=pad)):
        assert np.array_equal(a, e)


def test_winograd_accuracy(rng):
    # N(0, 1) data: max error ~3e-6 of the output's scale (direct 9e-7), RMS error ~3x the
    # direct path's (measured 1.1e-6 vs 4.2e-7); likewise for grad_input and grad_weight.
    x = rng.standard_normal((2, 64, 28, 28)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    ref = R.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    yw, yd = F.conv2d(x, w, padding=1), _direct(F.conv2d, x, w, padding=1)
    go = rng.standard_normal(ref.shape).astype(np.float32)
    eg = R.conv2d_backward(go.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=1)[:2]
    gw_, gd_ = F.conv2d_backward(go, x, w, padding=1)[:2], _direct(F.conv2d_backward, go, x, w, padding=1)[:2]
    for a, d, e in zip((yw,) + gw_, (yd,) + gd_, (ref,) + eg):
        rms = lambda v, e=e: float(np.sqrt(np.mean(v**2) / np.mean(e**2)))
        assert np.abs(a - e).max() / np.abs(e).max() < 1e-5
        assert rms(a - e) < 5 * rms(d - e), (rms(a - e), rms(d - e))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_winograd_matches_torch(rng, winograd_always):
    torch = pytest.importorskip("torch")
    for cfg in WINO[::2]:
        x, w, b, pad = _wino_inputs(rng, cfg)
        xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
        wt = torch.from_numpy(w.astype(np.float64)).requires_grad_()
        yt = torch.nn.functional.conv2d(xt, wt, torch.from_numpy(b.astype(np.float64)), padding=pad)
        go = random_array(rng, tuple(yt.shape), np.float32)
        yt.backward(torch.from_numpy(go.astype(np.float64)))
        assert_close(F.conv2d(x, w, b, padding=pad), yt.detach().numpy(), np.float32, scale=_scale(x, w), err_msg=str(cfg))
        gi, gw, _ = F.conv2d_backward(go, x, w, padding=pad)
        assert_close(gi, xt.grad.numpy(), np.float32, scale=_scale(go, w), err_msg=str(cfg))
        assert_close(gw, wt.grad.numpy(), np.float32, scale=_scale(go, x) * go[0, 0].size * x.shape[0], err_msg=str(cfg))


def test_winograd_isa_levels(rng, isa, winograd_always):
    for cfg in (WINO[1], WINO[3], WINO[6], WINO[8]):
        x, w, b, pad = _wino_inputs(rng, cfg)
        y = F.conv2d(x, w, b, padding=pad, activation="relu")
        exp = R.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=pad, activation="relu")
        assert_close(y, exp, np.float32, scale=_scale(x, w), err_msg=f"{isa} {cfg}")
        go = random_array(rng, exp.shape, np.float32)
        ei, ew, _ = R.conv2d_backward(go.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=pad)
        gi, gw, _ = F.conv2d_backward(go, x, w, padding=pad)
        assert_close(gi, ei, np.float32, scale=_scale(go, w), err_msg=isa)
        assert_close(gw, ew, np.float32, scale=_scale(go, x) * go[0, 0].size * x.shape[0], err_msg=isa)


@pytest.mark.parametrize("cfg", [WINO[6], WINO[8], (5, 16, 33, 29, 40, 1)])
def test_winograd_threads_bit_identical(rng, cfg, winograd_always):
    x, w, b, pad = _wino_inputs(rng, cfg)
    go = random_array(rng, R.conv2d(x, w, padding=pad).shape, np.float32)
    before = imkern.get_num_threads()
    res = []
    try:
        for t in (1, 2, 3):
            imkern.set_num_threads(t)
            res.append((F.conv2d(x, w, b, padding=pad, activation="relu"),) + F.conv2d_backward(go, x, w, padding=pad))
    finally:
        imkern.set_num_threads(before)
    for r in res[1:]:
        assert all(np.array_equal(a, e) for a, e in zip(r, res[0]))


def test_winograd_views_and_nan(rng, winograd_always):
    x, w, b, pad = _wino_inputs(rng, WINO[1])
    exp = F.conv2d(x, w, b, padding=pad)
    big = random_array(rng, (x.shape[0], x.shape[1], 2 * x.shape[2], x.shape[3] + 5), np.float32)
    big[:, :, ::2, 5:] = x
    for v in (big[:, :, ::2, 5:], np.asfortranarray(x), x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]):
        assert np.array_equal(F.conv2d(v, w[::-1].copy()[::-1], b, padding=pad), exp)
    go = random_array(rng, exp.shape, np.float32)
    for a, e in zip(F.conv2d_backward(np.asfortranarray(go), big[:, :, ::2, 5:], w, padding=pad),
                    F.conv2d_backward(go, x, w, padding=pad)):
        assert np.array_equal(a, e)
    # A NaN input pixel makes (at least) every output it reaches NaN; its 4x4 tiles may spread it.
    x[1, 3, 4, 6] = np.nan
    nan_d = np.isnan(_direct(F.conv2d, x, w, b, padding=pad))
    nan_w = np.isnan(F.conv2d(x, w, b, padding=pad))
    assert nan_d.any() and (nan_w | ~nan_d).all() and not nan_w[0].any()


def test_winograd_grad_weight_many_blocks(rng):
    # Enough tiles (> 32 blocks of 1024) that each chunk of grad_weight sums several blocks.
    x = random_array(rng, (33, 16, 128, 128), np.float32)
    w = random_array(rng, (16, 16, 3, 3), np.float32)
    go = random_array(rng, (33, 16, 128, 128), np.float32)
    gw = F.conv2d_backward(go, x, w, padding=1)[1]
    gwd = _direct(F.conv2d_backward, go, x, w, padding=1)[1]
    assert not np.array_equal(gw, gwd)
    assert_close(gw, gwd, np.float32, scale=_scale(go, x) * go[0, 0].size * x.shape[0])
    # and against float64 for a few entries
    x64, go64 = x.astype(np.float64), go.astype(np.float64)
    xp = np.pad(x64, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for k, c, r, s in ((0, 0, 0, 0), (3, 7, 1, 2), (15, 15, 2, 1)):
        e = np.einsum("nhw,nhw->", go64[:, k], xp[:, c, r : r + 128, s : s + 128])
        assert abs(gw[k, c, r, s] - e) <= 1e-5 * (np.abs(go64[:, k]).sum() + abs(e))


# ---- single-channel 3x3 / 5x5 direct path (conv2d_small.cpp) ------------------------------------
# (N, H, W, K, R, padding): widths below, at and above multiples of every ISA's vector width
# (4, 8, 16 floats; 2, 4, 8 doubles), heights not a multiple of the 7-row block, 1-row images,
# planes cut into several row bands (64x64, 40x100), K not a multiple of anything (the AVX-512
# flattened kernel takes 3 channels per pass, then 2 or 1).
SMALL = [
    (5, 28, 28, 7, 3, 1),
    (1, 28, 28, 32, 3, 1),
    (5, 16, 16, 3, 3, 1),
    (2, 9, 17, 5, 3, 0),
    (3, 13, 31, 6, 3, 2),
    (2, 11, 33, 4, 3, "same"),
    (2, 40, 100, 3, 3, 1),
    (1, 64, 64, 5, 3, 1),
    (2, 1, 40, 3, 3, 1),
    (3, 5, 20, 2, 3, 1),
    (4, 28, 28, 6, 5, 0),
    (2, 12, 29, 5, 5, 2),
    (1, 7, 64, 9, 5, "same"),
    (2, 18, 24, 5, 3, 1),  # 27 vectors of 16: blocks of 4 (3 channels) and of 6 (2) both leave 3
]


def _small_inputs(rng, cfg, dtype, bias=True):
    n, h, w, k, r, pad = cfg
    x = random_array(rng, (n, 1, h, w), dtype)
    wt = random_array(rng, (k, 1, r, r), dtype)
    b = random_array(rng, (k,), dtype) if bias else None
    return x, wt, b, pad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", SMALL, ids=[f"s{i}" for i in range(len(SMALL))])
def test_conv2d_c1_matches_reference(rng, cfg, dtype):
    for bias in (True, False):
        x, w, b, pad = _small_inputs(rng, cfg, dtype, bias)
        exp = R.conv2d(x, w, b, padding=pad)
        y = F.conv2d(x, w, b, padding=pad)
        assert y.dtype == dtype
        assert_close(y, exp, dtype, scale=_scale(x, w), err_msg=str(cfg))
        out = np.full(exp.shape, np.nan, dtype)  # poisoned: every element must be written
        F.conv2d(x, w, b, padding=pad, activation="relu", out=out)
        assert_close(out, np.maximum(exp, 0), dtype, scale=_scale(x, w), err_msg=str(cfg))
        assert np.array_equal(out, np.where(y < 0, 0, y))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d_c1_matches_torch(rng):
    torch = pytest.importorskip("torch")
    for cfg in SMALL:
        for dtype in DTYPES:
            x, w, b, pad = _small_inputs(rng, cfg, dtype)
            exp = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=pad)
            assert_close(F.conv2d(x, w, b, padding=pad), exp.numpy().astype(np.float64), dtype, scale=_scale(x, w),
                         err_msg=str(cfg))


def test_conv2d_c1_isa_levels(rng, isa):
    for cfg in SMALL:
        for dtype in DTYPES:
            x, w, b, pad = _small_inputs(rng, cfg, dtype)
            for act in (None, "relu"):
                assert_close(F.conv2d(x, w, b, padding=pad, activation=act),
                             R.conv2d(x, w, b, padding=pad, activation=act), dtype, scale=_scale(x, w),
                             err_msg=f"{isa} {cfg}")


def test_conv2d_c1_same_bits_on_every_isa(rng):
    """The AVX-512 3x3 kernel (flattened plane, nine shifted copies) and the tiled kernel of the
    other ISAs sum every output in the same order (bias, then the taps in (r, s) order, one FMA
    chain): the same bits, where the ISAs fuse multiply-adds (AVX2 and up)."""
    fma_isas = [i for i in ISA_LEVELS if i in ("avx2", "avx512")]
    if len(fma_isas) < 2:
        pytest.skip("needs AVX2 and AVX-512")
    before = imkern.get_cpu_isa()
    try:
        for cfg in SMALL:
            for dtype in DTYPES:
                x, w, b, pad = _small_inputs(rng, cfg, dtype)
                ow = R.conv2d(x[:1, :, :, :], w[:1], padding=pad).shape[3]
                if cfg[4] != 3 or ow < 16:  # both ISAs take the direct kernel: 3x3, a whole zmm of floats
                    continue
                outs = []
                for isa in fma_isas:
                    imkern.set_cpu_isa(isa)
                    outs.append(F.conv2d(x, w, b, padding=pad, activation="relu"))
                for o in outs[1:]:
                    assert np.array_equal(o, outs[0]), (cfg, dtype)
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_c1_deterministic(rng, dtype):
    """1 vs 3 threads, one image alone vs in a batch, aligned vs misaligned buffers: same bits."""
    before = imkern.get_num_threads()
    for cfg in (SMALL[0], SMALL[4], SMALL[6], SMALL[7], SMALL[10], SMALL[13], (128, 28, 28, 32, 3, 1)):
        x, w, b, pad = _small_inputs(rng, cfg, dtype)
        try:
            imkern.set_num_threads(1)
            one = F.conv2d(x, w, b, padding=pad, activation="relu")
            imkern.set_num_threads(3)
            three = F.conv2d(x, w, b, padding=pad, activation="relu")
        finally:
            imkern.set_num_threads(before)
        assert np.array_equal(one, three)
        i = x.shape[0] - 1
        assert np.array_equal(F.conv2d(x[i:], w, b, padding=pad, activation="relu"), one[i:])
        # Buffers shifted by one element from their usual 64-byte alignment.
        item = np.dtype(dtype).itemsize
        raw = np.empty(x.size * item + 64 + item, np.uint8)
        xs = np.frombuffer(raw.data, dtype, x.size, offset=(-raw.ctypes.data % 64) + item).reshape(x.shape)
        xs[...] = x
        oraw = np.empty(one.size * item + 64 + item, np.uint8)
        outs = np.frombuffer(oraw.data, dtype, one.size, offset=(-oraw.ctypes.data % 64) + item).reshape(one.shape)
        F.conv2d(xs, w, b, padding=pad, activation="relu", out=outs)
        assert np.array_equal(outs, one)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_c1_views_and_nan(rng, dtype):
    x, w, b, pad = _small_inputs(rng, SMALL[4], dtype)
    exp = F.conv2d(x, w, b, padding=pad)
    big = random_array(rng, (x.shape[0], 2, 2 * x.shape[2], x.shape[3] + 3), dtype)
    big[:, 1:, ::2, 3:] = x
    for v in (big[:, 1:, ::2, 3:], np.asfortranarray(x), x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]):
        assert np.array_equal(F.conv2d(v, w[::-1].copy()[::-1], b, padding=pad), exp)
    rev = x[:, :, :, ::-1]
    assert_close(F.conv2d(rev, w, b, padding=pad), R.conv2d(np.ascontiguousarray(rev), w, b, padding=pad), dtype,
                 scale=_scale(x, w))
    x[1, 0, 5, 7] = np.nan
    y = F.conv2d(x, w, b, padding=pad, activation="relu")
    nan = np.isnan(y)
    assert nan[1, :, 5:8, 7:10].all() and nan.sum() == 9 * w.shape[0]  # pad 2: rows/cols 5..7 + 2


# ---- one list of cases for both devices, every nn dtype (from the former test_nn_cuda.py) -------
# PyTorch in float64 on the CPU is the oracle; float16/bfloat16 run on CUDA only, float64 on the
# CPU only (device_array skips the rest).
def _t64(a):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _check(actual, expected, dtype, scale=1.0, msg=""):
    """assert_close with the tolerance of the kernel's dtype; matching infinities are equal."""
    a = to_numpy(actual).astype(np.float64)
    e = np.array(expected, dtype=np.float64)
    same_inf = np.isinf(e) & (a == e)
    a, e = np.where(same_inf, 0.0, a), np.where(same_inf, 0.0, e)
    assert_close(a, e, dtype=np.dtype(actual.dtype), scale=scale, err_msg=msg)


def _same_pads(R, S, dil):
    th, tw = dil[0] * (R - 1), dil[1] * (S - 1)
    return th // 2, th - th // 2, tw // 2, tw - tw // 2


# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
DEVICE_CONV_CASES = [
    (2, 3, 9, 11, 5, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (1, 8, 7, 7, 8, 3, 3, (2, 2), (1, 2), (1, 1), 2),
    (2, 4, 10, 10, 6, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    (1, 6, 12, 9, 6, 3, 3, (1, 1), (2, 2), (2, 2), 6),
    (3, 16, 5, 5, 130, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    (2, 5, 8, 8, 7, 5, 3, (2, 3), (2, 1), (1, 1), 1),
    (1, 4, 6, 7, 4, 2, 4, (1, 1), "same", (1, 1), 2),  # asymmetric padding (0, 1, 1, 2)
    (1, 40, 13, 13, 36, 3, 3, (3, 2), (1, 1), (1, 1), 4),
]


def _torch_conv(x64, w64, b64, case):
    torch = pytest.importorskip("torch")
    N, C, H, W, K, R, S, stride, pad, dil, groups = case
    t, bo, l, r = _same_pads(R, S, dil) if pad == "same" else (pad[0], pad[0], pad[1], pad[1])
    xt, wt = _t64(x64).requires_grad_(), _t64(w64).requires_grad_()
    bt = _t64(b64).requires_grad_() if b64 is not None else torch.zeros(K, dtype=torch.float64, requires_grad=True)
    tF = torch.nn.functional
    y = tF.conv2d(tF.pad(xt, (l, r, t, bo)), wt, bt, stride=stride, dilation=dil, groups=groups)
    return y, xt, wt, bt


@pytest.mark.parametrize("case", DEVICE_CONV_CASES, ids=[f"d{i}" for i in range(len(DEVICE_CONV_CASES))])
@pytest.mark.parametrize("dtype", NN_DTYPES)
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_forward_every_dtype(xp, rng, tf32_off, case, dtype, relu):
    N, C, H, W, K, R, S, stride, pad, dil, groups = case
    x, x64 = device_array(xp, random_array(rng, (N, C, H, W), np.float32), dtype)
    w, w64 = device_array(xp, random_array(rng, (K, C // groups, R, S), np.float32), dtype)
    b, b64 = device_array(xp, random_array(rng, (K,), np.float32), dtype)
    out = F.conv2d(x, w, b, stride, pad, dil, groups, activation="relu" if relu else None)
    ref = _torch_conv(x64, w64, b64, case)[0].detach().numpy()
    if relu:
        ref = np.maximum(ref, 0)
    _check(out, ref, dtype, scale=(C // groups) * R * S + 1)


@pytest.mark.parametrize("case", DEVICE_CONV_CASES, ids=[f"d{i}" for i in range(len(DEVICE_CONV_CASES))])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_conv2d_backward_every_dtype(xp, rng, tf32_off, case, dtype):
    N, C, H, W, K, R, S, stride, pad, dil, groups = case
    x, x64 = device_array(xp, random_array(rng, (N, C, H, W), np.float32), dtype)
    w, w64 = device_array(xp, random_array(rng, (K, C // groups, R, S), np.float32), dtype)
    y, xt, wt, bt = _torch_conv(x64, w64, None, case)
    OH, OW = y.shape[2:]
    go, go64 = device_array(xp, random_array(rng, tuple(y.shape), np.float32), dtype)
    gi, gw, gb = F.conv2d_backward(go, x, w, stride, pad, dil, groups)
    y.backward(_t64(go64))
    _check(gi, xt.grad.numpy(), dtype, scale=(K // groups) * R * S, msg="grad_input")
    _check(gw, wt.grad.numpy(), dtype, scale=N * OH * OW, msg="grad_weight")
    _check(gb, bt.grad.numpy(), dtype, scale=N * OH * OW, msg="grad_bias")


def test_conv2d_deterministic(xp, rng, tf32_off):
    x, w, go = on_device(xp, *(random_array(rng, s, np.float32) for s in [(8, 16, 24, 24), (16, 16, 3, 3),
                                                                           (8, 16, 24, 24)]))
    a = F.conv2d_backward(go, x, w, 1, 1)
    b = F.conv2d_backward(go, x, w, 1, 1)
    for u, v in zip(a, b):
        assert (to_numpy(u) == to_numpy(v)).all()


@pytest.mark.parametrize("mnk", [(1, 1, 1), (17, 33, 9), (130, 70, 300), (64, 256, 1000), (5, 3, 0)])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_linear_every_dtype(xp, rng, tf32_off, mnk, dtype):
    M, N, K = mnk
    x, x64 = device_array(xp, random_array(rng, (M, K), np.float32), dtype)
    w, w64 = device_array(xp, random_array(rng, (N, K), np.float32), dtype)
    b, b64 = device_array(xp, random_array(rng, (N,), np.float32), dtype)
    _check(F.linear(x, w, b), x64 @ w64.T + b64, dtype, scale=K + 1)
    go, go64 = device_array(xp, random_array(rng, (M, N), np.float32), dtype)
    gi, gw, gb = F.linear_backward(go, x, w)
    _check(gi, go64 @ w64, dtype, scale=N, msg="grad_input")
    _check(gw, go64.T @ x64, dtype, scale=M, msg="grad_weight")
    _check(gb, go64.sum(0), dtype, scale=M, msg="grad_bias")


@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_linear_long_reduction(xp, rng, tf32_off, dtype):
    """a @ b through linear(a, b.T): the GEMM with a long reduction (the former matmul case)."""
    a, a64 = device_array(xp, random_array(rng, (129, 257), np.float32), dtype)
    bt, bt64 = device_array(xp, random_array(rng, (131, 257), np.float32), dtype)
    _check(F.linear(a, bt), a64 @ bt64.T, dtype, scale=257)


@pytest.mark.cuda
def test_conv2d_and_linear_tf32(cp, rng):
    """TF32 tensor cores (the CUDA default): 10-bit mantissa products, float32 sums; looser tolerance."""
    before = imkern.get_allow_tf32()
    imkern.set_allow_tf32(True)
    try:
        x = random_array(rng, (2, 32, 14, 14), np.float32)
        w = random_array(rng, (48, 32, 3, 3), np.float32)
        out = F.conv2d(cp.asarray(x), cp.asarray(w), padding=1)
        ref = R.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
        assert np.abs(to_numpy(out) - ref).max() <= 2e-3 * 32 * 9 ** 0.5 * 3
        a = random_array(rng, (256, 512), np.float32)
        b = random_array(rng, (128, 512), np.float32)
        c = to_numpy(F.linear(cp.asarray(a), cp.asarray(b)))
        assert np.abs(c - a.astype(np.float64) @ b.astype(np.float64).T).max() <= 1e-3 * 512 ** 0.5 * 4
    finally:
        imkern.set_allow_tf32(before)


@pytest.mark.cuda
def test_conv2d_matches_torch_cuda(cp, rng, tf32_off):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x = cp.asarray(random_array(rng, (4, 16, 20, 20), np.float32))
    w = cp.asarray(random_array(rng, (32, 16, 3, 3), np.float32))
    out = F.conv2d(x, w, stride=2, padding=1)
    ref = torch.nn.functional.conv2d(torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda"),
                                     stride=2, padding=1)
    assert_close(out, ref.cpu().numpy().astype(np.float64), dtype=np.float32, scale=16 * 9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS[::3], ids=[f"c{i}" for i in range(0, len(CONFIGS), 3)])
def test_conv2d_backward_output_mask_skips_grad_input(rng, xp, tf32_off, cfg, dtype):
    """output_mask=(False, True, True) (the first layer's backward): grad_input is None and the
    parameter gradients are the same bits as the full backward's."""
    x, w, _, kw = _inputs(rng, cfg, dtype, bias=False)
    go = random_array(rng, R.conv2d(x, w, **kw).shape, dtype)
    dgo, dx, dw = on_device(xp, go, x, w)
    gi, gw, gb = F.conv2d_backward(dgo, dx, dw, **kw)
    gi2, gw2, gb2 = F.conv2d_backward(dgo, dx, dw, output_mask=(False, True, True), **kw)
    assert gi2 is None
    np.testing.assert_array_equal(to_numpy(gw2), to_numpy(gw))
    np.testing.assert_array_equal(to_numpy(gb2), to_numpy(gb))
    gi3, _, _ = F.conv2d_backward(dgo, dx, dw, output_mask=(True, True, True), **kw)
    np.testing.assert_array_equal(to_numpy(gi3), to_numpy(gi))
    with pytest.raises(ValueError, match="output_mask"):
        F.conv2d_backward(dgo, dx, dw, output_mask=(False, True), **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_gemm_schedules_same_bits(rng, isa, dtype):
    """The CPU GEMM's task schedules (one MC x NC tile per task, or a whole column of C per
    task with its packed B reused by every MC row block, chosen by the thread count and the
    column count; B packed a sliver at a time when a task has one row block, columns split
    between tasks in whole slivers) and the transposed-B packing give the same bits for any
    thread count, and match the reference, under forced small blocking (m > MC), m <= MC with
    several k blocks (the shared A panel packed by all threads) and many column tasks, and the
    model's."""
    x = random_array(rng, (301, 203), dtype)
    w = random_array(rng, (1205, 203), dtype)
    b = random_array(rng, (1205,), dtype)
    before = imkern.get_num_threads()
    try:
        for params in (dict(mc=16, kc=64), dict(mc=64, nc=200), dict(kc=64), dict(kc=40, nc=100), {}):
            imkern.reset_cpu_params()
            imkern.set_cpu_params(**params)
            ys = []
            for n in (1, 2, 3, 5):
                imkern.set_num_threads(n)
                ys.append(F.linear(x, w, b))
            for n, y in zip((2, 3, 5), ys[1:]):
                np.testing.assert_array_equal(y, ys[0], err_msg=f"{params} threads={n}")
            assert_close(ys[0], R.linear(x, w, b), dtype, scale=203)
    finally:
        imkern.reset_cpu_params()
        imkern.set_num_threads(before)
