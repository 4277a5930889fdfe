"""Tests of the non-GEMM nn ops (imkern.nn.functional): pooling, activations, softmax, cross
entropy, batch norm, dropout. Each op against the NumPy reference on fresh random inputs,
against torch.nn.functional when importable, finite-difference gradients in float64, every
ISA level, 1 vs 3 threads (bit-identical), layouts, out=, input unchanged, bad arguments."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import NN_DTYPES, assert_close, device_array, on_device, random_array, to_numpy
from conftest import pool_out_size as _pool_out
from imkern.nn import functional as F
from imkern.reference import nn as R

FLOATS = [np.float32, np.float64]


def _torch():
    return pytest.importorskip("torch")


def _t(a):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


# ---- pooling configurations: (shape, kernel, stride, padding, dilation, ceil_mode) -------------
POOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 9, 7), 3, 2, 1, 1, False),
    ((2, 1, 9, 7), 3, 2, 1, 1, True),
    ((1, 2, 10, 11), (3, 2), (2, 1), (1, 0), 1, False),
    ((1, 1, 12, 13), 3, 1, 1, 2, False),
    ((1, 2, 11, 10), (2, 3), (3, 2), (1, 1), (2, 1), True),
    ((3, 2, 5, 5), 5, 1, 2, 1, False),
    ((1, 1, 1, 1), 1, 1, 0, 1, False),
    ((1, 3, 6, 40), 2, 2, 0, 1, True),
    ((1, 2, 7, 37), 3, 1, 1, 1, False),
    ((2, 2, 16, 70), 2, 2, 1, 1, False),
    ((1, 1, 5, 33), 4, 3, 2, 1, True),
    ((1, 2, 9, 45), (3, 2), 2, (1, 1), (2, 1), True),
    ((2, 1, 6, 67), (1, 2), (1, 2), 0, 1, False),
]
POOL_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-{'ceil' if c[5] else 'floor'}" for c in POOL_CASES]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_matches_reference(rng, xp, case, dtype):
    shape, k, s, p, d, ceil = case
    x = random_array(rng, shape, dtype)
    (dx,) = on_device(xp, x)
    y, i = F.max_pool2d(dx, k, s, p, d, ceil, return_indices=True)
    ry, ri = R.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(to_numpy(y), ry)
    np.testing.assert_array_equal(to_numpy(i), ri)
    assert y.dtype == dtype and i.dtype == np.int64
    np.testing.assert_array_equal(to_numpy(F.max_pool2d(dx, k, s, p, d, ceil)), ry)
    np.testing.assert_array_equal(to_numpy(dx), x)
    g = random_array(rng, y.shape, dtype)
    assert_close(F.max_pool2d_backward(xp.asarray(g), i, shape), R.max_pool2d_backward(g, ri, shape), dtype)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_matches_torch(rng, case):
    torch = _torch()
    shape, k, s, p, d, ceil = case
    x = random_array(rng, shape, np.float32)
    y, i = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(_t(x), k, s if s is not None else k, p, d, ceil, True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(i, ti.numpy())


@pytest.mark.parametrize("dtype", FLOATS)
def test_max_pool2d_nan_and_inf(rng, dtype):
    x = random_array(rng, (2, 3, 12, 40), dtype)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan  # two NaNs in one window: the last one in scan order wins
    x[1, 2, 5, 7] = np.nan
    x[0, 1, 2:4, 4:6] = -np.inf  # an all -inf window
    x[1, 1, :, 20:] = -np.inf
    x[1, 0, 6:8, 0:2] = [[5, 5], [5, 5]]  # ties: the first wins
    for args in [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 1, False), (2, 1, 0, 2, False)]:
        y, i = F.max_pool2d(x, *args, return_indices=True)
        ry, ri = R.max_pool2d(x, *args, return_indices=True)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(i, ri)
    y, i = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and i[0, 0, 0, 0] == 40
    assert y[0, 1, 1, 2] == -np.inf and i[0, 1, 1, 2] == 2 * 40 + 4


def test_max_pool2d_nan_matches_torch(rng):
    torch = _torch()
    x = random_array(rng, (2, 3, 12, 40), np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.3] = -np.inf
    for args in [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)]:
        y, i = F.max_pool2d(x, *args, return_indices=True)
        ty, ti = torch.nn.functional.max_pool2d(_t(x), *args, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(i, ti.numpy())


AVG_CASES = [c[:4] + (c[5],) for c in POOL_CASES if c[4] == 1]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("case", AVG_CASES, ids=[str(c) for c in AVG_CASES])
def test_avg_pool2d_matches_reference(rng, xp, case, cip, dtype):
    shape, k, s, p, ceil = case
    x = random_array(rng, shape, dtype)
    (dx,) = on_device(xp, x)
    y = F.avg_pool2d(dx, k, s, p, ceil, cip)
    assert_close(y, R.avg_pool2d(x, k, s, p, ceil, cip), dtype)
    g = random_array(rng, y.shape, dtype)
    assert_close(F.avg_pool2d_backward(xp.asarray(g), shape, k, s, p, ceil, cip),
                 R.avg_pool2d_backward(g, shape, k, s, p, ceil, cip), dtype)
    if xp is np:  # divisor_override: CPU only (NotImplementedError on CUDA)
        assert_close(F.avg_pool2d(x, k, s, p, ceil, cip, divisor_override=3),
                     R.avg_pool2d(x, k, s, p, ceil, cip, divisor_override=3), dtype)


@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("case", AVG_CASES, ids=[str(c) for c in AVG_CASES])
def test_avg_pool2d_matches_torch(rng, case, cip):
    torch = _torch()
    shape, k, s, p, ceil = case
    x = random_array(rng, shape, np.float64)
    tx = _t(x).requires_grad_()
    ty = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil, cip)
    y = F.avg_pool2d(x, k, s, p, ceil, cip)
    assert_close(y, ty.detach().numpy(), np.float64)
    g = random_array(rng, y.shape, np.float64)
    ty.backward(_t(g))
    assert_close(F.avg_pool2d_backward(g, shape, k, s, p, ceil, cip), tx.grad.numpy(), np.float64)
    tx.grad = None
    ty = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil, cip, divisor_override=3)
    assert_close(F.avg_pool2d(x, k, s, p, ceil, cip, divisor_override=3), ty.detach().numpy(), np.float64)
    ty.backward(_t(g))
    assert_close(F.avg_pool2d_backward(g, shape, k, s, p, ceil, cip, divisor_override=3), tx.grad.numpy(),
                 np.float64)


ADAPTIVE = [((2, 3, 7, 5), (3, 2)), ((1, 2, 5, 5), 5), ((1, 1, 4, 6), 1), ((2, 1, 10, 3), (4, 4)),
            ((1, 2, 13, 17), (5, None))]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,osize", ADAPTIVE)
def test_adaptive_avg_pool2d(rng, xp, shape, osize, dtype):
    x = random_array(rng, shape, dtype)
    (dx,) = on_device(xp, x)
    y = F.adaptive_avg_pool2d(dx, osize)
    assert_close(y, R.adaptive_avg_pool2d(x, osize), dtype)
    g = random_array(rng, y.shape, dtype)
    dg = xp.asarray(g)
    assert_close(F.adaptive_avg_pool2d_backward(dg, shape), R.adaptive_avg_pool2d_backward(g, shape), dtype)
    torch = pytest.importorskip("torch")
    tx = _t(x.astype(np.float64)).requires_grad_()
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, osize)
    assert_close(y, ty.detach().numpy(), dtype)
    ty.backward(_t(g.astype(np.float64)))
    assert_close(F.adaptive_avg_pool2d_backward(dg, shape), tx.grad.numpy(), dtype)


def test_pool_unbatched_input(rng):
    # (C, H, W) is pooled as a batch of one, as torch does.
    x = random_array(rng, (3, 9, 11), np.float32)
    y, i = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    y4, i4 = F.max_pool2d(x[None], 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, y4[0])
    np.testing.assert_array_equal(i, i4[0])
    np.testing.assert_array_equal(F.max_pool2d_backward(y, i, x.shape), F.max_pool2d_backward(y4, i4, (1,) + x.shape)[0])
    out = np.empty_like(y)
    assert F.max_pool2d(x, 3, 2, 1, out=out) is out
    np.testing.assert_array_equal(out, y)
    a = F.avg_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(a, F.avg_pool2d(x[None], 2, ceil_mode=True)[0])
    np.testing.assert_array_equal(F.avg_pool2d_backward(a, x.shape, 2, ceil_mode=True),
                                  F.avg_pool2d_backward(a[None], (1,) + x.shape, 2, ceil_mode=True)[0])
    b = F.adaptive_avg_pool2d(x, (4, 5))
    np.testing.assert_array_equal(b, F.adaptive_avg_pool2d(x[None], (4, 5))[0])
    np.testing.assert_array_equal(F.adaptive_avg_pool2d_backward(b, x.shape),
                                  F.adaptive_avg_pool2d_backward(b[None], (1,) + x.shape)[0])
    torch = pytest.importorskip("torch")
    ty, ti = torch.nn.functional.max_pool2d(_t(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(i, ti.numpy())


# ---- finite differences (float64) ------------------------------------------------------------
def _fd_check(f, x, g, grad, h=1e-6, n=12, rng=None, rtol=1e-5, atol=1e-7):
    """Compare <g, (f(x + h e_i) - f(x - h e_i)) / 2h> with grad[i] at n random positions."""
    flat = np.flatnonzero(np.ones(x.shape, bool))
    picks = rng.choice(flat, size=min(n, flat.size), replace=False)
    for p in picks:
        xp, xm = x.copy(), x.copy()
        xp.flat[p] += h
        xm.flat[p] -= h
        num = float(np.sum(g * (f(xp) - f(xm)))) / (2 * h)
        assert abs(num - grad.flat[p]) <= atol + rtol * abs(num), (p, num, grad.flat[p])


def test_pool_gradients_finite_difference(rng):
    x = random_array(rng, (2, 2, 9, 8), np.float64)
    y, i = F.max_pool2d(x, 3, 2, 1, 1, True, return_indices=True)
    g = random_array(rng, y.shape, np.float64)
    _fd_check(lambda z: F.max_pool2d(z, 3, 2, 1, 1, True), x, g, F.max_pool2d_backward(g, i, x.shape), rng=rng)
    for cip in (True, False):
        y = F.avg_pool2d(x, 3, 2, 1, True, cip)
        g = random_array(rng, y.shape, np.float64)
        _fd_check(lambda z, cip=cip: F.avg_pool2d(z, 3, 2, 1, True, cip), x, g,
                  F.avg_pool2d_backward(g, x.shape, 3, 2, 1, True, cip), rng=rng)
    y = F.adaptive_avg_pool2d(x, (4, 3))
    g = random_array(rng, y.shape, np.float64)
    _fd_check(lambda z: F.adaptive_avg_pool2d(z, (4, 3)), x, g, F.adaptive_avg_pool2d_backward(g, x.shape), rng=rng)


# ---- activations -------------------------------------------------------------------------------
ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"]


def _act_input(rng, dtype, n=3001):
    x = random_array(rng, (n,), dtype, -12, 12)
    x[:200] = random_array(rng, (200,), dtype, -0.5, 0.5)
    x[200:220] = random_array(rng, (20,), dtype, -120, 120)
    x[220:230] = [0.0, -0.0, 1e-30, -1e-30, 88.5, -88.5, 104, -104, 1e-8, -1e-8]
    return x


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ACTS)
def test_activation_matches_reference(rng, xp, name, dtype):
    base = _act_input(rng, dtype, 3003).reshape(3, 1001, 1)
    x = base[:, ::-1]  # negative-stride view
    x0 = x.copy()
    dx = on_device(xp, base)[0][:, ::-1]  # the same view on the device
    y = getattr(F, name)(dx)
    ry = getattr(R, name)(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, ry, dtype)
    np.testing.assert_array_equal(to_numpy(dx), x0)
    g = random_array(rng, x.shape, dtype)
    gi = getattr(F, name + "_backward")(xp.asarray(g), dx, y)
    assert_close(gi, getattr(R, name + "_backward")(g, x, ry), dtype, scale=4.0)


@pytest.mark.parametrize("name", ACTS)
def test_activation_special_values(name):
    x = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)
    y = getattr(F, name)(x)
    assert np.isnan(y[0])
    torch = pytest.importorskip("torch")
    ty = getattr(torch.nn.functional, name)(_t(x)).numpy()
    if name == "gelu":  # torch's vectorized gelu gives NaN at +inf; the limit (and ours) is +inf
        assert y[1] == np.inf
        ty[1] = np.inf
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ty))
    np.testing.assert_allclose(y[1:], ty[1:])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ACTS)
def test_activation_matches_torch(rng, name, dtype):
    torch = _torch()
    x = _act_input(rng, dtype)
    tx = _t(x).requires_grad_()
    ty = getattr(torch.nn.functional, name)(tx)
    y = getattr(F, name)(x)
    assert_close(y, ty.detach().numpy(), dtype, scale=2.0)
    g = random_array(rng, x.shape, dtype)
    ty.backward(_t(g))
    assert_close(getattr(F, name + "_backward")(g, x, y), tx.grad.numpy(), dtype, scale=4.0)


@pytest.mark.parametrize("name", ACTS)
def test_activation_gradient_finite_difference(rng, name):
    x = random_array(rng, (50,), np.float64, -4, 4)
    x[np.abs(x) < 1e-3] = 0.5  # away from relu's kink
    g = random_array(rng, x.shape, np.float64)
    f = getattr(F, name)
    _fd_check(f, x, g, getattr(F, name + "_backward")(g, x, f(x)), rng=rng, n=20)


def test_activation_float32_ulp(rng):
    # The float32 polynomials: within a few ulp of the float64 result over a wide range.
    x = np.concatenate([np.linspace(-90, 90, 200001, dtype=np.float32), random_array(rng, (10000,), np.float32, -1, 1)])
    for name, ref in [("sigmoid", R.sigmoid), ("tanh", R.tanh)]:
        y = getattr(F, name)(x).astype(np.float64)
        e = ref(x.astype(np.float64))
        ulp = np.spacing(np.abs(e).astype(np.float32)).astype(np.float64)
        err = np.abs(y - e) / np.maximum(ulp, np.finfo(np.float32).smallest_subnormal)
        assert np.max(err[np.abs(e) > 1e-30]) <= 4, name
    # softmax's exp: a -inf logit next to any finite one contributes exactly 0
    y = F.softmax(np.stack([x, np.full(x.size, -np.inf, np.float32)], 1))
    assert np.all(y[:, 0] == 1.0) and np.all(y[:, 1] == 0.0)


@pytest.fixture(params=[0, 1], ids=["one_fit", "table"])
def gelu_form(request):
    """float32 gelu's two forms with FMA (CpuParams gelu_table: 1 the table of pieces, 0 one
    fit for every lane; the machine picks one from cpuid): every gelu test runs both."""
    imkern.set_cpu_params(gelu_table=request.param)
    yield request.param
    imkern.set_cpu_params(gelu_table=None)


def test_gelu_float32_ulp(rng, gelu_form):
    # gelu in float32 lanes (with FMA a table of polynomial pieces for |x| <= 4.2 and exp(-x^2 / 2)
    # times pieces beyond, or one fit for every lane; exp(-x^2 / 2) times a fitted tail factor
    # without FMA): within 6 ulp (4.12 measured with the table, 4.13 with the one fit, 5.09
    # without FMA), the negative tail included, down to where it underflows
    x = np.concatenate([np.linspace(-90, 90, 200001, dtype=np.float32), random_array(rng, (10000,), np.float32, -1, 1)])
    xg = np.concatenate([x, np.linspace(-15, 15, 300001, dtype=np.float32)])
    y = F.gelu(xg).astype(np.float64)
    e = R.gelu(xg.astype(np.float64))
    ulp = np.spacing(np.abs(e).astype(np.float32)).astype(np.float64)
    err = np.abs(y - e) / np.maximum(ulp, np.finfo(np.float32).smallest_subnormal)
    assert np.max(err[np.abs(e) > 1e-30]) <= 6, "gelu"


def _same_bits(a, b, msg=""):
    """The same float32 bits (assert_array_equal takes -0 for +0 and any NaN for any other)."""
    np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32), err_msg=msg)


def test_gelu_central_and_tail_fits(rng, isa, gelu_form):
    # vm::gelu runs a block of vectors whose lanes all have |x| <= 5 through the central fit
    # alone, any other block through both fits (the central one kept per lane where |x| <= 5):
    # a central value gets the same bits whether its neighbours are central or not, and both
    # fits (and the switch at |x| = 5) stay within 6 ulp of the float64 result at every ISA.
    # With FMA (AVX2, AVX-512) the forward's central interval is |x| <= 4.2 (a table of 8
    # polynomial pieces of width 9/16 centred on multiples of 9/16): its edge, the pieces'
    # edges and the end of the last piece (4.21875) likewise.
    edge = []
    for b in [5.0, 4.2, 7.5 * 0.5625] + [(j + 0.5) * 0.5625 for j in range(7)]:
        b = np.float32(b)
        edge += [np.nextafter(b, np.float32(0)), b, np.nextafter(b, np.float32(9))]
    edge = np.array(edge, np.float32)
    # (signed zeros and subnormals too: a mixed block keeps the sign of a zero result)
    tiny = np.array([0.0, -0.0, 1e-40, -1e-40, 1e-45, -1e-45, 1e-30, -1e-30], np.float32)
    x = np.concatenate([random_array(rng, (4096,), np.float32, -5, 5), edge, np.negative(edge), tiny,
                        np.linspace(-4.99, 4.99, 997, dtype=np.float32)]).astype(np.float32)
    mixed = np.repeat(x, 2)
    mixed[1::2] = random_array(rng, (x.size,), np.float32, 5.5, 14)  # a far lane next to each central one
    mixed[1::4] *= -1
    y, g = F.gelu(x), F.gelu_backward(np.ones_like(x), x)
    _same_bits(F.gelu(mixed)[::2], y)
    _same_bits(F.gelu_backward(np.ones_like(mixed), mixed)[::2], g)
    xs = np.concatenate([x, mixed, np.linspace(-15, 15, 100001, dtype=np.float32)])
    e = R.gelu(xs.astype(np.float64))
    ulp = np.spacing(np.abs(e).astype(np.float32)).astype(np.float64)
    err = np.abs(F.gelu(xs).astype(np.float64) - e) / np.maximum(ulp, np.finfo(np.float32).smallest_subnormal)
    assert np.max(err[np.abs(e) > 1e-30]) <= 6, isa
    eg = R.gelu_backward(np.ones(xs.size), xs.astype(np.float64))
    gb = F.gelu_backward(np.ones_like(xs), xs)
    assert_close(gb, eg, np.float32, scale=4.0)
    # absolute error (the derivative crosses 0 at x = -0.7518, where ulps mean nothing): the
    # table's k (FMA) measured 7.1e-8, the exp form 1.6e-7 (1.9e-7 on the baseline ISA)
    assert np.max(np.abs(gb.astype(np.float64) - eg)) <= 3e-7, isa


def test_gelu_far_pieces(rng, isa, gelu_form):
    # With FMA, forward lanes with 4.2 < |x| (clamped at 14.6) take t Q(t) = P(t) exp(-t^2 / 2)
    # with P from 8 pieces of width 1.4f centred on i * 1.4f (i = 3..10): their edges, both
    # signs, stay within 6 ulp, and a far value gets the same bits next to near lanes (the
    # mixed blocks), next to far ones and next to NaN / inf; gelu_backward's far pieces too.
    edge = []
    # (13: the one-fit form's bound for scaling by 2^n in the exponent bits, see below)
    for b in [(i + 0.5) * np.float32(1.4) for i in range(3, 10)] + [4.2, 13.0, 14.6]:
        b = np.float32(b)
        edge += [np.nextafter(b, np.float32(0)), b, np.nextafter(b, np.float32(20))]
    far = np.concatenate([edge, random_array(rng, (4000,), np.float32, 4.2, 15.0)]).astype(np.float32)
    far = np.concatenate([far, -far])
    e = R.gelu(far.astype(np.float64))
    ulp = np.spacing(np.abs(e).astype(np.float32)).astype(np.float64)
    y = F.gelu(far)
    err = np.abs(y.astype(np.float64) - e) / np.maximum(ulp, np.finfo(np.float32).smallest_subnormal)
    assert np.max(err[np.abs(e) > 1e-30]) <= 6, isa
    mixed = np.repeat(far, 2)
    mixed[1::2] = random_array(rng, (far.size,), np.float32, -4, 4)
    _same_bits(F.gelu(mixed)[::2], y)
    special = np.repeat(far, 2)
    special[1::2] = np.resize(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1e-45], np.float32), far.size)
    _same_bits(F.gelu(special)[::2], y)
    # gelu_backward's far lanes likewise (its own pieces of k / exp(-x^2 / 2)): relative error
    # on the negative side (3.6 * 2^-24 measured), absolute on the positive one
    g = F.gelu_backward(np.ones_like(far), far)
    eg = R.gelu_backward(np.ones(far.size), far.astype(np.float64))
    neg = (far < 0) & (np.abs(eg) > 1e-30)
    assert np.max(np.abs(g[neg] - eg[neg]) / np.abs(eg[neg])) <= 5 * 2.0**-24, isa
    assert np.max(np.abs(g - eg)) <= 1.2e-7, isa
    _same_bits(F.gelu_backward(np.ones_like(mixed), mixed)[::2], g)
    _same_bits(F.gelu_backward(np.ones_like(special), special)[::2], g)
    # and the special and tiny lanes next to far ones: the bits they get alone
    _same_bits(F.gelu(special)[1::2], F.gelu(special[1::2]))
    # The one-fit form (gelu_table 0) scales (u G) e by 2^n with an integer add to its exponent
    # bits in blocks whose lanes all have |x| <= 13 (where that is exact), and per lane in any
    # other block (beyond 13: e 2^n rounded once, also where it is subnormal): a lane within 13
    # gets the same bits in a block of its own kind as next to a lane beyond 13 (every block of
    # `beside` has one), at either sign and up to the bound
    inside = np.concatenate([far[np.abs(far) <= 13], np.linspace(-13, 13, 4001, dtype=np.float32)])
    beside = np.repeat(inside, 2)
    beside[1::2] = np.resize(np.array([13.5, -13.01, 14.6, -20.0], np.float32), inside.size)
    _same_bits(F.gelu(beside)[::2], F.gelu(inside))
    # and gelu_backward's (its E = e 2^n by the same integer add where every lane is within 13)
    gb = F.gelu_backward(np.ones_like(beside), beside)
    _same_bits(gb[::2], F.gelu_backward(np.ones_like(inside), inside))
    _same_bits(F.gelu_backward(np.ones_like(special), special)[1::2], F.gelu_backward(np.ones_like(far), special[1::2]))


@pytest.mark.parametrize("stream", [False, True])
def test_gelu_bits_independent_of_position(rng, isa, stream, gelu_form):
    # float32 gelu / gelu_backward take two vectors per step, then single vectors, then the
    # padded tail (plain or streaming stores): an element gets the same bits on every path, so
    # shifting the array by a few elements (its elements cross those boundaries) changes nothing.
    x = _act_input(rng, np.float32, 1001)
    x[230:236] = [np.nan, np.inf, -np.inf, 14.7, -14.7, -13.5]
    g = random_array(rng, x.shape, np.float32)
    imkern.set_cpu_params(stream_bytes=0 if stream else None)
    try:
        y, gx = F.gelu(x), F.gelu_backward(g, x)
        for off in (1, 3, 8, 13, 16, 24, 31, 33):
            _same_bits(F.gelu(x[off:]), y[off:], f"{isa} {off}")
            _same_bits(F.gelu_backward(g[off:], x[off:]), gx[off:], f"{isa} {off}")
            _same_bits(F.gelu(x[: x.size - off]), y[: x.size - off], f"{isa} {off}")
    finally:
        imkern.set_cpu_params(stream_bytes=None)
    assert np.isnan(y[230]) and y[231] == np.inf and np.isnan(y[232]) and y[233] == np.float32(14.7)
    assert y[234] == 0 and np.signbit(y[234]) and y[235] < 0  # -0 where x Phi(x) underflows; subnormal above
    assert np.isnan(gx[231]) and np.isnan(gx[232])


def test_gelu_same_bits_avx2_avx512(rng, gelu_form):
    # AVX-512 applies exp's 2^n by VSCALEFPS and tests the central interval in mask registers,
    # AVX2 by a shift and a multiply and a movemask, and the forward's table lookups read 8
    # entries (AVX2) or 16 (AVX-512: the near and far pieces in one Horner, AVX2 apart): the
    # same arithmetic, so the same bits
    # (central and far lanes, the negative tail down to subnormal results, special values).
    if not {"avx2", "avx512"} <= set(imkern.info()["cpu_isa_available"]):
        pytest.skip("needs AVX2 and AVX-512")
    x = np.concatenate([random_array(rng, (20000,), np.float32, -6, 6), np.linspace(-15, 15, 60001, dtype=np.float32),
                        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 3e38, -3e38], np.float32)])
    g = random_array(rng, x.shape, np.float32)
    before = imkern.get_cpu_isa()
    out = {}
    try:
        for isa in ("avx2", "avx512"):
            imkern.set_cpu_isa(isa)
            out[isa] = (F.gelu(x), F.gelu_backward(g, x))
    finally:
        imkern.set_cpu_isa(before)
    for a, b in zip(out["avx2"], out["avx512"]):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


# ---- softmax -----------------------------------------------------------------------------------
SOFTMAX_CASES = [((5, 37), -1), ((3, 4, 5), 1), ((2, 300, 7), 1), ((2, 3, 4, 5), 0), ((1, 1000), 1), ((64,), 0),
                 ((2, 5, 3, 3), 1)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
def test_softmax_matches_reference(rng, xp, shape, axis, dtype):
    x = random_array(rng, shape, dtype, -20, 20)
    x.flat[0] = 5000.0  # large logits must not overflow
    (dx,) = on_device(xp, x)
    assert_close(F.softmax(dx, axis), R.softmax(x, axis), dtype)
    assert_close(F.log_softmax(dx, axis), R.log_softmax(x, axis), dtype, scale=100.0)
    torch = pytest.importorskip("torch")
    assert_close(F.softmax(dx, axis), torch.softmax(_t(x), axis).numpy(), dtype)
    assert_close(F.log_softmax(dx, axis), torch.log_softmax(_t(x), axis).numpy(), dtype, scale=100.0)


def test_softmax_nan_inf():
    x = np.array([[1.0, np.nan, 2.0], [1.0, np.inf, 0.0], [-np.inf, 0.0, 1.0]], np.float32)
    y = F.softmax(x)
    assert np.isnan(y[0]).all() and np.isnan(y[1]).any()
    assert y[2, 0] == 0.0 and np.isfinite(y[2]).all()


# ---- cross entropy -----------------------------------------------------------------------------
CE_SHAPES = [(8, 5), (3, 4, 6), (2, 3, 4, 5), (1, 1000), (16, 2)]


def _ce_inputs(rng, shape, dtype, ignore=-100, frac_ignored=0.2):
    x = random_array(rng, shape, dtype, -8, 8)
    x.flat[0] = 300.0
    t = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    t[rng.random(t.shape) < frac_ignored] = ignore
    return x, t


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_matches_reference_and_torch(rng, xp, shape, reduction, ls, dtype):
    x, t = _ce_inputs(rng, shape, dtype, ignore=1 if shape[1] > 1 else -100)
    kw = dict(reduction=reduction, label_smoothing=ls, ignore_index=1)
    dx, dt = on_device(xp, x, t)
    loss = F.cross_entropy(dx, dt, **kw)
    assert loss.dtype == dtype and loss.shape == (t.shape if reduction == "none" else ())
    scale = 1000.0 if reduction == "sum" else 10.0
    assert_close(loss, R.cross_entropy(x, t, **kw), dtype, scale=scale)
    g = F.cross_entropy_backward(dx, dt, **kw)
    assert_close(g, R.cross_entropy_backward(x, t, **kw), dtype)
    torch = pytest.importorskip("torch")
    tx = _t(x).requires_grad_()
    tl = torch.nn.functional.cross_entropy(tx, _t(t), **kw)
    assert_close(loss, tl.detach().numpy(), dtype, scale=scale)
    tl.sum().backward()
    assert_close(g, tx.grad.numpy(), dtype)


def test_cross_entropy_unbatched(rng):
    x = random_array(rng, (7,), np.float64, -3, 3)
    t = np.array(4)
    for red in ("mean", "sum", "none"):
        loss = F.cross_entropy(x, t, reduction=red, label_smoothing=0.1)
        assert loss.shape == ()
        assert_close(loss, F.cross_entropy(x[None], t.reshape(1), reduction="sum", label_smoothing=0.1).reshape(()),
                     np.float64)
        g = F.cross_entropy_backward(x, t, reduction=red, label_smoothing=0.1)
        assert g.shape == (7,)
        assert_close(g, F.cross_entropy_backward(x[None], t.reshape(1), reduction="sum", label_smoothing=0.1)[0],
                     np.float64)
    torch = pytest.importorskip("torch")
    tl = torch.nn.functional.cross_entropy(_t(x), torch.tensor(4), label_smoothing=0.1)
    assert_close(F.cross_entropy(x, t, label_smoothing=0.1), tl.numpy(), np.float64)


def test_cross_entropy_all_ignored():
    x = np.random.default_rng(0).random((4, 3))
    t = np.full(4, -100)
    torch = pytest.importorskip("torch")
    tl = torch.nn.functional.cross_entropy(_t(x), _t(t))
    assert np.isnan(float(F.cross_entropy(x, t))) and np.isnan(tl.item())
    np.testing.assert_array_equal(F.cross_entropy_backward(x, t), np.zeros_like(x))
    assert float(F.cross_entropy(x, t, reduction="sum")) == 0.0


def test_cross_entropy_gradient_finite_difference(rng):
    x, t = _ce_inputs(rng, (4, 5, 3), np.float64, ignore=2)
    x.flat[0] = 3.0
    for red in ("mean", "sum"):
        kw = dict(reduction=red, label_smoothing=0.2, ignore_index=2)
        _fd_check(lambda z, kw=kw: F.cross_entropy(z, t, **kw), x, np.ones(()), F.cross_entropy_backward(x, t, **kw),
                  rng=rng, n=15)


# ---- batch norm --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (1, 2, 300, 300), (7, 1, 1, 3), (2, 5, 1, 1)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm2d_training(rng, xp, shape, affine, dtype):
    c = shape[1]
    x = random_array(rng, shape, dtype, -3, 3) + dtype(10)  # offset: stats must not cancel
    w = random_array(rng, (c,), dtype, 0.5, 2) if affine else None
    b = random_array(rng, (c,), dtype) if affine else None
    rm, rv = random_array(rng, (c,), dtype), random_array(rng, (c,), dtype, 0.5, 2)
    rm2, rv2 = rm.copy(), rv.copy()
    dx, dw, db, drm, drv = on_device(xp, x, w, b, rm, rv)
    y = F.batch_norm2d(dx, dw, db, drm, drv, training=True, momentum=0.2, eps=1e-4)
    ry = R.batch_norm2d(x, w, b, rm2, rv2, training=True, momentum=0.2, eps=1e-4)
    assert_close(y, ry, dtype, scale=10.0)
    assert_close(drm, rm2, dtype, scale=10.0)
    assert_close(drv, rv2, dtype, scale=10.0)
    g = random_array(rng, shape, dtype)
    gi, gw, gb = F.batch_norm2d_backward(xp.asarray(g), dx, dw, None, None, training=True, eps=1e-4)
    rgi, rgw, rgb = R.batch_norm2d_backward(g, x, w, None, None, training=True, eps=1e-4)
    m = x.size // c
    assert_close(gi, rgi, dtype, scale=10.0)
    assert_close(gw, rgw, dtype, scale=np.sqrt(m) * 10)
    assert_close(gb, rgb, dtype, scale=np.sqrt(m) * 10)


@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_norm2d_eval(rng, xp, dtype):
    x = random_array(rng, (3, 4, 6, 5), dtype)
    w, b = random_array(rng, (4,), dtype), random_array(rng, (4,), dtype)
    rm, rv = random_array(rng, (4,), dtype), random_array(rng, (4,), dtype, 0.5, 2)
    rm0, rv0 = rm.copy(), rv.copy()
    dx, dw, db, drm, drv = on_device(xp, x, w, b, rm, rv)
    y = F.batch_norm2d(dx, dw, db, drm, drv, training=False)
    assert_close(y, R.batch_norm2d(x, w, b, rm, rv, training=False), dtype, scale=10.0)
    np.testing.assert_array_equal(to_numpy(drm), rm0)
    np.testing.assert_array_equal(to_numpy(drv), rv0)
    g = random_array(rng, x.shape, dtype)
    for a, e in zip(F.batch_norm2d_backward(xp.asarray(g), dx, dw, drm, drv, training=False),
                    R.batch_norm2d_backward(g, x, w, rm, rv, training=False)):
        assert_close(a, e, dtype, scale=100.0)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_matches_torch(rng, training):
    torch = _torch()
    x = random_array(rng, (4, 3, 6, 5), np.float64, -2, 4)
    w, b = random_array(rng, (3,), np.float64), random_array(rng, (3,), np.float64)
    rm, rv = random_array(rng, (3,), np.float64), random_array(rng, (3,), np.float64, 0.5, 2)
    trm, trv = _t(rm.copy()), _t(rv.copy())
    tx, tw, tb = (_t(a).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=0.3, eps=1e-3)
    y = F.batch_norm2d(x, w, b, rm, rv, training=training, momentum=0.3, eps=1e-3)
    assert_close(y, ty.detach().numpy(), np.float64, scale=10.0)
    assert_close(rm, trm.numpy(), np.float64)
    assert_close(rv, trv.numpy(), np.float64)
    g = random_array(rng, x.shape, np.float64)
    ty.backward(_t(g))
    rm_in = None if training else rm
    rv_in = None if training else rv
    gi, gw, gb = F.batch_norm2d_backward(g, x, w, rm_in, rv_in, training=training, eps=1e-3)
    assert_close(gi, tx.grad.numpy(), np.float64, scale=10.0)
    assert_close(gw, tw.grad.numpy(), np.float64, scale=100.0)
    assert_close(gb, tb.grad.numpy(), np.float64, scale=100.0)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_gradient_finite_difference(rng, training):
    x = random_array(rng, (3, 2, 4, 3), np.float64)
    w, b = random_array(rng, (2,), np.float64, 0.5, 2), random_array(rng, (2,), np.float64)
    rm, rv = random_array(rng, (2,), np.float64), random_array(rng, (2,), np.float64, 0.5, 2)
    g = random_array(rng, x.shape, np.float64)

    def fwd(z, ww=w, bb=b):
        return F.batch_norm2d(z, ww, bb, rm.copy(), rv.copy(), training=training)

    gi, gw, gb = F.batch_norm2d_backward(g, x, w, rm, rv, training=training)
    _fd_check(fwd, x, g, gi, rng=rng, n=15)
    _fd_check(lambda ww: fwd(x, ww=ww), w, g, gw, rng=rng, n=2)
    _fd_check(lambda bb: fwd(x, bb=bb), b, g, gb, rng=rng, n=2)


# ---- dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_dropout_matches_reference(rng, xp, p, dtype):
    x = random_array(rng, (3, 7, 11, 13), dtype)
    seed = int(rng.integers(0, 2**63))
    (dx,) = on_device(xp, x)
    y = to_numpy(F.dropout(dx, p, seed=seed))
    np.testing.assert_array_equal(y, R.dropout(x, p, seed=seed))
    np.testing.assert_array_equal(y, to_numpy(F.dropout(dx, p, seed=seed)))  # reproducible
    np.testing.assert_array_equal(to_numpy(F.dropout_backward(dx, p, seed=seed)), y)
    # the kept share within 6 standard deviations of the binomial's (a false failure once in
    # ~5e8 runs; a fixed 0.03 failed one run in a few hundred at p = 0.5 on these 3003 elements);
    # exact at p = 0 and p = 1
    nz = x != 0
    kept = np.mean(y[nz] != 0)
    assert abs(kept - (1 - p)) <= 6 * np.sqrt(p * (1 - p) / nz.sum()) + 1e-12
    if 0 < p < 1:
        np.testing.assert_array_equal(y[y != 0], (x * dtype(1 / (1 - p)))[y != 0])
        assert not np.array_equal(y, to_numpy(F.dropout(dx, p, seed=seed + 1)))
    np.testing.assert_array_equal(to_numpy(F.dropout(dx, p, seed=seed, training=False)), x)


def test_dropout_mask_known_values():
    # splitmix64(0) = 0xE220A8397B1DCDAF (the published first output for state 0 after one step
    # is for state = golden; here z = seed + 0 * golden = 0 hashes to 0).
    m = R.dropout_mask(4, 0.5, 0)
    z = 0x9E3779B97F4A7C15
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    z ^= z >> 31
    assert m[1] == ((z >> 40) / 2**24 >= 0.5)
    assert z == 0xE220A8397B1DCDAF


def test_dropout_seed_range():
    x = np.ones(100, np.float32)
    np.testing.assert_array_equal(F.dropout(x, 0.5, seed=-1), F.dropout(x, 0.5, seed=2**64 - 1))
    np.testing.assert_array_equal(F.dropout(x, 0.5, seed=-1), R.dropout(x, 0.5, seed=2**64 - 1))


# ---- layouts, out=, zero sizes ------------------------------------------------------------------
def _ops(rng, dtype):
    """(name, fn(x) -> array) over an (N, C, H, W) input, for the layout and threads tests."""
    t = rng.integers(0, 5, size=(3, 9, 10))
    w = random_array(rng, (5,), dtype)
    return [
        ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1, 1, True, True)),
        ("max_pool2d_2x2", lambda x: F.max_pool2d(x, 2)),
        ("max_pool2d_backward", lambda x: F.max_pool2d_backward(
            x[:, :, :4, :5], F.max_pool2d(np.ascontiguousarray(x), 2, return_indices=True)[1],
            x.shape)),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, True, False)),
        ("avg_pool2d_backward", lambda x: F.avg_pool2d_backward(x[:, :, :5, :6], (3, 5, 9, 10), 2, 2, 1)),
        ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (4, 3))),
        ("adaptive_avg_pool2d_backward", lambda x: F.adaptive_avg_pool2d_backward(x, (3, 5, 20, 21))),
        ("relu", F.relu), ("leaky_relu", lambda x: F.leaky_relu(x, 0.2)), ("sigmoid", F.sigmoid),
        ("tanh", F.tanh), ("gelu", F.gelu),
        ("gelu_backward", lambda x: F.gelu_backward(x, x[::-1])),
        ("tanh_backward", lambda x: F.tanh_backward(x, None, x * 0.5)),
        ("softmax1", lambda x: F.softmax(x, 1)), ("softmax", F.softmax), ("log_softmax", lambda x: F.log_softmax(x, 2)),
        ("cross_entropy", lambda x: F.cross_entropy(x, t, label_smoothing=0.1)),
        ("cross_entropy_none", lambda x: F.cross_entropy(x, t, reduction="none")),
        ("cross_entropy_backward", lambda x: F.cross_entropy_backward(x, t)),
        ("batch_norm2d", lambda x: F.batch_norm2d(x, w, w, None, None, training=True)),
        ("batch_norm2d_backward", lambda x: F.batch_norm2d_backward(x, x * 2, w, None, None, training=True)),
        ("dropout", lambda x: F.dropout(x, 0.3, seed=5)),
    ]


def _flat(r):
    return r if isinstance(r, (tuple, list)) else (r,)


@pytest.mark.parametrize("dtype", FLOATS)
def test_threads_bit_identical(rng, dtype):
    x = random_array(rng, (3, 5, 9, 10), dtype)
    big = random_array(rng, (2, 8, 130, 131), dtype)
    before = imkern.get_num_threads()
    try:
        for name, fn in _ops(rng, dtype):
            res = {}
            for n in (1, 3):
                imkern.set_num_threads(n)
                res[n] = [a.copy() for a in _flat(fn(x))]
                if name in ("batch_norm2d", "softmax1", "max_pool2d", "avg_pool2d", "relu", "tanh"):
                    res[n] += [a.copy() for a in _flat(fn(big) if name != "batch_norm2d" else
                                                         F.batch_norm2d(big, None, None, None, None, training=True))]
            for a, b in zip(res[1], res[3]):
                np.testing.assert_array_equal(a, b, err_msg=name)
    finally:
        imkern.set_num_threads(before)


def test_reductions_threads_bit_identical(rng, threads):
    # Reductions (batch-norm stats and parameter gradients, the loss mean) use a fixed chunking:
    # the same bits as one thread whatever the thread count.
    x = random_array(rng, (3, 2, 300, 301), np.float32)
    g = random_array(rng, x.shape, np.float32)
    t = rng.integers(0, 2, size=(3, 300, 301))

    def run():
        return [F.batch_norm2d(x, None, None, None, None, training=True),
                *F.batch_norm2d_backward(g, x, None, None, None, training=True),
                F.cross_entropy(x, t, label_smoothing=0.1)]

    got = run()
    imkern.set_num_threads(1)
    ref = run()
    imkern.set_num_threads(threads)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", FLOATS)
def test_layouts_out_and_inputs_unchanged(rng, dtype):
    base = random_array(rng, (3, 5, 9, 10), dtype)
    views = {
        "fortran": np.asfortranarray(base),
        "reversed": base[::-1, :, ::-1, ::-1].copy()[::-1, :, ::-1, ::-1],
        "strided": np.repeat(base, 2, axis=3)[:, :, :, ::2],
    }
    for name, fn in _ops(rng, dtype):
        expect = [a.copy() for a in _flat(fn(base))]
        for vname, v in views.items():
            np.testing.assert_array_equal(v, base)
            v0 = v.copy()
            got = _flat(fn(v))
            for a, e in zip(got, expect):
                np.testing.assert_array_equal(a, e, err_msg=f"{name} {vname}")
            np.testing.assert_array_equal(v, v0, err_msg=f"{name} modified its input")


@pytest.mark.parametrize("dtype", FLOATS)
def test_out_argument(rng, dtype):
    x = random_array(rng, (2, 3, 8, 9), dtype)
    t = rng.integers(0, 3, size=(2, 8, 9))
    cases = [
        (lambda **k: F.max_pool2d(x, 2, **k), (2, 3, 4, 4)),
        (lambda **k: F.avg_pool2d(x, 3, 2, 1, **k), (2, 3, 4, 5)),
        (lambda **k: F.adaptive_avg_pool2d(x, 3, **k), (2, 3, 3, 3)),
        (lambda **k: F.relu(x, **k), x.shape),
        (lambda **k: F.sigmoid_backward(x, None, x, **k), x.shape),
        (lambda **k: F.softmax(x, 1, **k), x.shape),
        (lambda **k: F.cross_entropy(x, t, **k), ()),
        (lambda **k: F.cross_entropy(x, t, reduction="none", **k), t.shape),
        (lambda **k: F.cross_entropy_backward(x, t, **k), x.shape),
        (lambda **k: F.batch_norm2d(x, None, None, None, None, training=True, **k), x.shape),
        (lambda **k: F.dropout(x, 0.5, seed=1, **k), x.shape),
    ]
    for fn, shape in cases:
        expect = fn()
        out = np.full(shape, np.nan, dtype)
        assert fn(out=out) is out
        np.testing.assert_array_equal(out, expect)
        if len(shape) >= 2:  # a non-contiguous out receives the result by copy
            big = np.full(shape[:-1] + (2 * shape[-1],), np.nan, dtype)
            o2 = big[..., ::2]
            assert fn(out=o2) is o2
            np.testing.assert_array_equal(o2, expect)
            assert np.isnan(big[..., 1::2]).all()
    # out aliasing the input
    y = x.copy()
    F.relu(y, out=y)
    np.testing.assert_array_equal(y, F.relu(x))
    with pytest.raises(TypeError):
        F.relu(x, out=np.empty(x.shape, np.float16))
    with pytest.raises(ValueError):
        F.relu(x, out=np.empty((1,), dtype))


def test_zero_size():
    e = np.empty((0, 3, 8, 8), np.float32)
    assert F.max_pool2d(e, 2).shape == (0, 3, 4, 4)
    y, i = F.max_pool2d(e, 2, return_indices=True)
    assert i.shape == (0, 3, 4, 4)
    assert F.max_pool2d_backward(y, i, e.shape).shape == e.shape
    assert F.avg_pool2d(e, 2).shape == (0, 3, 4, 4)
    assert F.avg_pool2d_backward(np.empty((0, 3, 4, 4), np.float32), e.shape, 2).shape == e.shape
    assert F.adaptive_avg_pool2d(e, 2).shape == (0, 3, 2, 2)
    assert F.adaptive_avg_pool2d_backward(np.empty((0, 3, 2, 2), np.float32), e.shape).shape == e.shape
    for name in ACTS:
        assert getattr(F, name)(np.empty((0, 4))).shape == (0, 4)
        assert getattr(F, name + "_backward")(np.empty((0, 4)), np.empty((0, 4)), np.empty((0, 4))).shape == (0, 4)
    assert F.softmax(np.empty((0, 4), np.float32)).shape == (0, 4)
    assert F.softmax(np.empty((3, 0), np.float32)).shape == (3, 0)
    assert F.cross_entropy(np.empty((0, 4)), np.empty(0, np.int64), reduction="none").shape == (0,)
    assert np.isnan(F.cross_entropy(np.empty((0, 4)), np.empty(0, np.int64)))
    assert F.cross_entropy_backward(np.empty((0, 4)), np.empty(0, np.int64)).shape == (0, 4)
    assert F.batch_norm2d(np.empty((2, 0, 3, 3)), None, None, None, None, training=True).shape == (2, 0, 3, 3)
    assert F.dropout(np.empty((0,), np.float32), 0.5, seed=1).shape == (0,)


# ---- ISA levels --------------------------------------------------------------------------------
def test_every_isa_matches_reference(rng, isa):
    x = random_array(rng, (2, 3, 17, 45), np.float32)
    x[0, 0, 3, 3] = np.nan
    for args in [(2, 2, 0, 1, False), (3, 1, 1, 1, False), (3, 2, 1, 2, True)]:
        y, i = F.max_pool2d(x, *args, return_indices=True)
        ry, ri = R.max_pool2d(x, *args, return_indices=True)
        np.testing.assert_array_equal(y, ry, err_msg=isa)
        np.testing.assert_array_equal(i, ri, err_msg=isa)
        y = F.max_pool2d(x, *args)
        np.testing.assert_array_equal(y, ry, err_msg=isa)
    xf = np.nan_to_num(x)
    for args in [(3, 2, 1), (2,), (2, 2, 1, True), (2, 1, 1, False, False)]:
        assert_close(F.avg_pool2d(xf, *args), R.avg_pool2d(xf, *args), np.float32, err_msg=f"{args} {isa}")
    for dt in FLOATS:
        xa = _act_input(rng, dt)
        for name in ACTS:
            assert_close(getattr(F, name)(xa), getattr(R, name)(xa), dt, err_msg=f"{name} {isa}")
        xs = random_array(rng, (6, 77), dt, -30, 30)
        assert_close(F.softmax(xs), R.softmax(xs), dt)
        assert_close(F.softmax(xs, 0), R.softmax(xs, 0), dt)
        xb = random_array(rng, (3, 4, 5, 6), dt)
        assert_close(F.batch_norm2d(xb, None, None, None, None, training=True),
                     R.batch_norm2d(xb, None, None, None, None, training=True), dt, scale=10)
        np.testing.assert_array_equal(F.dropout(xb, 0.4, seed=9), R.dropout(xb, 0.4, seed=9))


# ---- bad arguments -----------------------------------------------------------------------------
def test_bad_arguments():
    x = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(TypeError, match="float32"):
        F.max_pool2d(x.astype(np.int32), 2)
    with pytest.raises(TypeError):
        F.relu([1.0, 2.0])
    with pytest.raises(TypeError, match="float32"):
        F.softmax(np.zeros(3, np.float16))
    with pytest.raises(ValueError, match="x"):
        F.max_pool2d(np.zeros((6, 6), np.float32), 2)
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="kernel_size"):
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride"):
        F.avg_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match="dilation"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match="too small"):
        F.max_pool2d(x, 7)
    with pytest.raises(TypeError):
        F.max_pool2d(x, 2.5)
    with pytest.raises(OverflowError):
        F.max_pool2d(x, 2, stride=2**40)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    y, i = F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="indices"):
        F.max_pool2d_backward(y, i + 100, x.shape)
    with pytest.raises(TypeError, match="indices"):
        F.max_pool2d_backward(y, i.astype(np.float32), x.shape)
    with pytest.raises(ValueError, match="input_shape"):
        F.max_pool2d_backward(y, i, (1, 2, 6))
    with pytest.raises(ValueError, match="grad_output"):
        F.avg_pool2d_backward(y, (1, 2, 8, 8), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="axis"):
        F.softmax(x, 4)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="tanh")
    with pytest.raises(TypeError, match="dtype"):
        F.relu_backward(x, x.astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        F.relu_backward(x, x[0])
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="target"):
        F.cross_entropy(logits, np.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.zeros(4, np.int64), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, np.zeros(4, np.int64), label_smoothing=1.5)
    with pytest.raises(ValueError, match="logits"):
        F.cross_entropy(np.zeros(3), np.zeros(1, np.int64))
    rm = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm2d(x, None, None, None, None, training=False)
    with pytest.raises(ValueError, match="weight"):
        F.batch_norm2d(x, np.ones(3, np.float32), None, None, None, training=True)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm2d(np.zeros((1, 2, 1, 1)), None, None, None, None, training=True)
    ro = rm.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.batch_norm2d(x, None, None, ro, rm, training=True)
    with pytest.raises(TypeError, match="training"):
        F.batch_norm2d(x, None, None, rm, rm, training=1)
    with pytest.raises(ValueError, match="p"):
        F.dropout(x, 1.5, seed=1)
    with pytest.raises(TypeError, match="seed"):  # dropout draws one (torch's API); the gradient needs it
        F.dropout_backward(x, 0.5, seed=None)
    with pytest.raises(TypeError, match="seed"):
        F.dropout(x, 0.5, seed=1.5)


# ---- CUDA (CuPy arrays routed to imkern.nn._cuda; skipped without a GPU) ------------------------
def test_cuda_matches_cpu(rng, cp):
    x = random_array(rng, (2, 3, 17, 20), np.float32)
    gx = cp.asarray(x)[:, :, :, ::-1]  # a strided view: copied deliberately
    xr = x[:, :, :, ::-1]
    y, i = F.max_pool2d(gx, 3, 2, 1, 1, True, return_indices=True)
    ry, ri = F.max_pool2d(xr, 3, 2, 1, 1, True, return_indices=True)
    np.testing.assert_array_equal(y.get(), ry)
    np.testing.assert_array_equal(i.get(), ri)
    assert_close(F.max_pool2d_backward(y, i, x.shape), F.max_pool2d_backward(ry, ri, x.shape), np.float32)
    assert_close(F.avg_pool2d(gx, 3, 2, 1, True, False), F.avg_pool2d(xr, 3, 2, 1, True, False), np.float32)
    g = F.avg_pool2d(xr, 2)
    assert_close(F.avg_pool2d_backward(cp.asarray(g), x.shape, 2), F.avg_pool2d_backward(g, x.shape, 2), np.float32)
    assert_close(F.adaptive_avg_pool2d(gx, (4, 3)), F.adaptive_avg_pool2d(xr, (4, 3)), np.float32)
    g = F.adaptive_avg_pool2d(xr, (4, 3))
    assert_close(F.adaptive_avg_pool2d_backward(cp.asarray(g), x.shape),
                 F.adaptive_avg_pool2d_backward(g, x.shape), np.float32)
    for name in ACTS:
        assert_close(getattr(F, name)(gx), getattr(F, name)(xr), np.float32, scale=2)
        yy = getattr(F, name)(xr)
        assert_close(getattr(F, name + "_backward")(gx, gx, cp.asarray(yy)),
                     getattr(F, name + "_backward")(xr, xr, yy), np.float32, scale=4)
    for ax in (1, -1):
        assert_close(F.softmax(gx, ax), F.softmax(xr, ax), np.float32)
        assert_close(F.log_softmax(gx, ax), F.log_softmax(xr, ax), np.float32, scale=10)
    t = rng.integers(0, 3, size=(2, 17, 20))
    t[0, 0, :5] = -100
    for red in ("mean", "sum", "none"):
        kw = dict(reduction=red, label_smoothing=0.1)
        assert_close(F.cross_entropy(gx, cp.asarray(t), **kw), F.cross_entropy(xr, t, **kw), np.float32, scale=100)
        assert_close(F.cross_entropy_backward(gx, cp.asarray(t), **kw), F.cross_entropy_backward(xr, t, **kw),
                     np.float32)
    w = random_array(rng, (3,), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    grm, grv = cp.asarray(rm), cp.asarray(rv)
    assert_close(F.batch_norm2d(gx, cp.asarray(w), cp.asarray(w), grm, grv, training=True),
                 F.batch_norm2d(xr, w, w, rm, rv, training=True), np.float32, scale=10)
    assert_close(grm, rm, np.float32)
    assert_close(grv, rv, np.float32)
    for a, b in zip(F.batch_norm2d_backward(gx, gx, cp.asarray(w), None, None, training=True),
                    F.batch_norm2d_backward(xr, xr, w, None, None, training=True)):
        assert_close(a, b, np.float32, scale=100)
    np.testing.assert_array_equal(F.dropout(gx, 0.3, seed=11).get(), F.dropout(xr, 0.3, seed=11))


# ---- one list of cases for both devices, every nn dtype (from the former test_nn_cuda.py) -------
# PyTorch in float64 on the CPU is the oracle; float16/bfloat16 run on CUDA only, float64 on the
# CPU only (device_array skips the rest).
def _t64(a):
    _torch()
    return _t(np.ascontiguousarray(a, dtype=np.float64))


def _check(actual, expected, scale=1.0, msg=""):
    """assert_close with the tolerance of the result's dtype; matching infinities are equal."""
    a = to_numpy(actual).astype(np.float64)
    e = np.array(expected, dtype=np.float64)
    same_inf = np.isinf(e) & (a == e)
    a, e = np.where(same_inf, 0.0, a), np.where(same_inf, 0.0, e)
    assert_close(a, e, dtype=np.dtype(actual.dtype), scale=scale, err_msg=msg)




MAXPOOL_DEVICE_CASES = [  # (N, C, H, W, k, s, p, d, ceil)
    (2, 3, 8, 8, (2, 2), (2, 2), (0, 0), (1, 1), False),
    (1, 4, 9, 7, (3, 3), (1, 1), (1, 1), (1, 1), False),
    (2, 2, 11, 10, (3, 2), (2, 1), (1, 0), (2, 1), True),
    (1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), False),
    (1, 2, 13, 13, (5, 5), (3, 3), (2, 2), (1, 1), True),
]


@pytest.mark.parametrize("case", MAXPOOL_DEVICE_CASES, ids=str)
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_max_pool2d_every_dtype(xp, rng, case, dtype):
    torch = _torch()
    N, C, H, W, k, s, p, d, ceil = case
    xn = random_array(rng, (N, C, H, W), np.float32)
    xn[0, 0, 0, 0] = np.nan
    xn[-1, -1, :, :] = -np.inf  # all -inf planes: -inf with a valid index
    x, x64 = device_array(xp, xn, dtype)
    out, ind = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    OH, OW = _pool_out(H, k[0], s[0], p[0], d[0], ceil), _pool_out(W, k[1], s[1], p[1], d[1], ceil)
    assert out.shape == (N, C, OH, OW)
    ry, ri = torch.nn.functional.max_pool2d(_t64(x64), k, s, p, d, ceil_mode=ceil, return_indices=True)
    _check(out, ry.numpy())
    assert (to_numpy(ind) == ri.numpy()).all()
    go, go64 = device_array(xp, random_array(rng, (N, C, OH, OW), np.float32), dtype)
    # gradients follow the indices; compare against a scatter of the reference indices
    ref = np.zeros((N * C, H * W))
    for pl, (g, i) in enumerate(zip(go64.reshape(N * C, -1), ri.numpy().reshape(N * C, -1))):
        np.add.at(ref[pl], i, g)
    gi = F.max_pool2d_backward(go, ind, (N, C, H, W))
    _check(gi, ref.reshape(N, C, H, W), scale=k[0] * k[1])
    assert (to_numpy(gi) == to_numpy(F.max_pool2d_backward(go, ind, (N, C, H, W)))).all()  # deterministic


AVGPOOL_DEVICE_CASES = [  # (N, C, H, W, k, s, p, ceil, include_pad)
    (2, 3, 8, 8, (2, 2), (2, 2), (0, 0), False, True),
    (1, 2, 9, 7, (3, 3), (2, 2), (1, 1), True, True),
    (1, 2, 9, 7, (3, 3), (2, 2), (1, 1), True, False),
    (2, 1, 10, 11, (3, 2), (1, 2), (1, 1), False, False),
    (1, 1, 5, 5, (4, 4), (3, 3), (2, 2), True, True),
]


@pytest.mark.parametrize("case", AVGPOOL_DEVICE_CASES, ids=str)
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_avg_pool2d_every_dtype(xp, rng, case, dtype):
    torch = _torch()
    N, C, H, W, k, s, p, ceil, inc = case
    x, x64 = device_array(xp, random_array(rng, (N, C, H, W), np.float32), dtype)
    out = F.avg_pool2d(x, k, s, p, ceil, inc)
    xt = _t64(x64).requires_grad_()
    y = torch.nn.functional.avg_pool2d(xt, k, s, p, ceil_mode=ceil, count_include_pad=inc)
    assert tuple(y.shape) == out.shape
    _check(out, y.detach().numpy())
    go, go64 = device_array(xp, random_array(rng, out.shape, np.float32), dtype)
    y.backward(_t64(go64))
    _check(F.avg_pool2d_backward(go, (N, C, H, W), k, s, p, ceil, inc), xt.grad.numpy(), scale=k[0] * k[1])


@pytest.mark.parametrize("sizes", [((7, 9), (3, 4)), ((8, 8), (1, 1)), ((5, 5), (7, 6)), ((6, 10), (6, 10))])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_adaptive_avg_pool2d_every_dtype(xp, rng, sizes, dtype):
    torch = _torch()
    (H, W), (OH, OW) = sizes
    x, x64 = device_array(xp, random_array(rng, (2, 3, H, W), np.float32), dtype)
    out = F.adaptive_avg_pool2d(x, (OH, OW))
    xt = _t64(x64).requires_grad_()
    y = torch.nn.functional.adaptive_avg_pool2d(xt, (OH, OW))
    _check(out, y.detach().numpy())
    go, go64 = device_array(xp, random_array(rng, (2, 3, OH, OW), np.float32), dtype)
    y.backward(_t64(go64))
    _check(F.adaptive_avg_pool2d_backward(go, (2, 3, H, W)), xt.grad.numpy(), scale=4)


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_activation_every_dtype(xp, rng, name, dtype):
    torch = _torch()
    tF = torch.nn.functional
    xn = random_array(rng, (3, 5, 7, 11), np.float32, -4, 4)
    xn.flat[0] = np.nan
    x, x64 = device_array(xp, xn, dtype)
    fwd = {"leaky_relu": lambda a: F.leaky_relu(a, 0.1)}.get(name, getattr(F, name))
    out = fwd(x)
    fn = {"relu": tF.relu, "leaky_relu": lambda t: tF.leaky_relu(t, 0.1), "sigmoid": torch.sigmoid,
          "tanh": torch.tanh, "gelu": tF.gelu}[name]
    xt = _t64(x64).requires_grad_()
    y = fn(xt)
    _check(out, y.detach().numpy())
    go, go64 = device_array(xp, random_array(rng, x.shape, np.float32), dtype)
    y.backward(_t64(go64))
    if name == "leaky_relu":
        gx = F.leaky_relu_backward(go, x, out, negative_slope=0.1)
    else:
        gx = getattr(F, name + "_backward")(go, x, out)
    fin = ~np.isnan(x64)
    _check(to_numpy(gx)[fin], xt.grad.numpy()[fin], scale=2)


@pytest.mark.parametrize("shape_axis", [((4, 10), 1), ((3, 2000), 1), ((2, 5, 3, 4), 1), ((6, 7, 33), 0),
                                        ((5, 1), 1), ((2, 3, 1025), 2)])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_softmax_every_dtype(xp, rng, shape_axis, log, dtype):
    torch = _torch()
    shape, axis = shape_axis
    x, x64 = device_array(xp, random_array(rng, shape, np.float32, -20, 20), dtype)
    out = (F.log_softmax if log else F.softmax)(x, axis)
    fn = torch.log_softmax if log else torch.softmax
    _check(out, fn(_t64(x64), axis).numpy(), scale=4)


@pytest.mark.parametrize("shape", [(8, 5), (3, 1000), (2, 4, 3, 5), (1, 3)], ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_cross_entropy_every_dtype(xp, rng, shape, reduction, smoothing, dtype):
    torch = _torch()
    N, C = shape[:2]
    xn = random_array(rng, shape, np.float32, -5, 5)
    xn.reshape(-1)[:3] += 3000.0  # large logits must not overflow
    x, x64 = device_array(xp, xn, dtype)
    tn = rng.integers(0, C, size=(N,) + shape[2:]).astype(np.int64)
    tn.reshape(-1)[-1] = -100  # ignored
    t = xp.asarray(tn)
    kw = dict(reduction=reduction, label_smoothing=smoothing, ignore_index=-100)
    loss = F.cross_entropy(x, t, **kw)
    xt = _t64(x64).requires_grad_()
    ref = torch.nn.functional.cross_entropy(xt, torch.from_numpy(tn), **kw)
    _check(loss, ref.detach().numpy(), scale=8 * (C if reduction == "sum" else 1))
    # An upstream gradient: the public backward is that of the loss (or of the sum of the
    # per-element losses), scaled here as autograd would.
    gout = random_array(rng, tuple(ref.shape), np.float32).astype(np.float64) if reduction == "none" else 0.7
    ref.backward(torch.as_tensor(np.asarray(gout, dtype=np.float64)))
    g = to_numpy(F.cross_entropy_backward(x, t, **kw)).astype(np.float64)
    g = g * (np.expand_dims(gout, 1) if reduction == "none" else gout)
    assert_close(g, xt.grad.numpy(), dtype=np.dtype(x.dtype), scale=2)


def test_cross_entropy_all_ignored_every_device(xp):
    x = xp.zeros((3, 4), dtype=np.float32)
    t = xp.full((3,), -100, dtype=np.int64)
    assert np.isnan(float(F.cross_entropy(x, t)))
    assert float(F.cross_entropy(x, t, reduction="sum")) == 0.0


@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (2, 5, 64, 65), (300, 4, 1, 1), (1, 2, 3, 3)], ids=str)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_batch_norm2d_every_dtype(xp, rng, shape, training, affine, dtype):
    torch = _torch()
    C = shape[1]
    x, x64 = device_array(xp, random_array(rng, shape, np.float32, -2, 3), dtype)
    wn = random_array(rng, (C,), np.float32, 0.5, 1.5) if affine else None
    bn = random_array(rng, (C,), np.float32) if affine else None
    rmn = random_array(rng, (C,), np.float32)
    rvn = random_array(rng, (C,), np.float32, 0.5, 2.0)
    rm, rv = xp.array(rmn, copy=True), xp.array(rvn, copy=True)  # updated in place; rmn, rvn stay
    w = None if wn is None else xp.asarray(wn)
    b = None if bn is None else xp.asarray(bn)
    out = F.batch_norm2d(x, w, b, rm, rv, training=training, momentum=0.1, eps=1e-5)
    xt = _t64(x64).requires_grad_()
    wt = _t64(wn).requires_grad_() if affine else None
    bt = _t64(bn).requires_grad_() if affine else None
    rmt, rvt = _t64(rmn), _t64(rvn)
    y = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.1, eps=1e-5)
    _check(out, y.detach().numpy(), scale=8)
    assert_close(rm, rmt.numpy(), dtype=np.float32, scale=4)
    assert_close(rv, rvt.numpy(), dtype=np.float32, scale=4)
    go, go64 = device_array(xp, random_array(rng, shape, np.float32), dtype)
    y.backward(_t64(go64))
    gi, gw, gb = F.batch_norm2d_backward(go, x, w, xp.asarray(rmn), xp.asarray(rvn), training=training, eps=1e-5)
    _check(gi, xt.grad.numpy(), scale=16)
    if affine:
        L = shape[0] * shape[2] * shape[3]
        pdt = np.float32 if dtype == "float32" else (np.float64 if dtype == "float64" else np.float16)
        assert_close(gw, wt.grad.numpy(), dtype=pdt, scale=L)
        assert_close(gb, bt.grad.numpy(), dtype=pdt, scale=L)


def test_batch_norm_deterministic(xp, rng):
    (x,) = on_device(xp, random_array(rng, (16, 8, 33, 31), np.float32))
    outs = [to_numpy(F.batch_norm2d(x, None, None, None, None, training=True)) for _ in range(2)]
    assert (outs[0] == outs[1]).all()


def _hash_keep(n, p, seed):
    """docs/design.md's mask, in NumPy (uint64 wraps modulo 2**64)."""
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24
    return u >= p


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", NN_DTYPES)
def test_dropout_every_dtype(xp, rng, p, dtype):
    x, x64 = device_array(xp, random_array(rng, (3, 4, 17, 19), np.float32, 0.5, 1.5), dtype)
    seed = 0x1234567890ABCDEF
    out = F.dropout(x, p, seed=seed)
    keep = _hash_keep(x.size, p, seed).reshape(x.shape)
    o = to_numpy(out).astype(np.float64)
    assert ((o != 0) == keep).all(), "mask differs from the reference hash"
    if p < 1:
        _check(out, np.where(keep, x64 / (1 - p), 0.0))
    ref = np.asarray(R.dropout(x64.astype(np.float32), p, seed=seed))
    assert ((ref != 0) == keep).all(), "mask differs from imkern.reference.nn.dropout"


def test_empty_inputs_every_device(xp):
    x = xp.empty((0, 3, 5, 5), dtype=np.float32)
    w = xp.ones((4, 3, 3, 3), dtype=np.float32)
    assert F.conv2d(x, w, padding=1).shape == (0, 4, 5, 5)
    gi, gw, gb = F.conv2d_backward(xp.empty((0, 4, 5, 5), dtype=np.float32), x, w, padding=1)
    assert float(abs(gw).max()) == 0.0 and float(abs(gb).max()) == 0.0
    assert F.max_pool2d(x, 2).shape == (0, 3, 2, 2)
    assert F.softmax(x, 1).shape == x.shape
    assert F.relu(x).shape == x.shape
    assert F.dropout(x, 0.5, seed=1).shape == x.shape


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm2d_bitwise_for_any_thread_count(rng, training, dtype):
    """The fused CPU kernels (statistics, normalization, running update; the backward sums and
    grad_input) give the same bits for 1 and N threads: planes of 90,000 values span two
    fixed segments, so the partials are combined across chunks."""
    x = random_array(rng, (3, 4, 300, 300), dtype, -2, 3) + dtype(5)
    g = random_array(rng, x.shape, dtype)
    w, b = random_array(rng, (4,), dtype, 0.5, 2), random_array(rng, (4,), dtype)
    stats0 = random_array(rng, (4,), dtype), random_array(rng, (4,), dtype, 0.5, 2)
    before = imkern.get_num_threads()
    runs = []
    try:
        for n in (1, 4):
            imkern.set_num_threads(n)
            rm, rv = stats0[0].copy(), stats0[1].copy()
            y = F.batch_norm2d(x, w, b, rm, rv, training=training, momentum=0.3)
            grads = F.batch_norm2d_backward(g, x, w, stats0[0], stats0[1], training=training)
            runs.append((y, rm, rv) + tuple(grads))
    finally:
        imkern.set_num_threads(before)
    for a, e in zip(*runs):
        np.testing.assert_array_equal(a, e)
