"""CUDA kernels of imkern.nn.functional (python/imkern/nn/_cuda.py, csrc/cuda/*.cu).

Oracles: PyTorch on the CPU in float64 (exact semantics, no TF32), PyTorch on CUDA with TF32 off
when available, and imkern.reference.nn through the public API when those modules exist.
Every CUDA test takes the ``cp`` fixture, so it is skipped (never failed) without a GPU.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from conftest import assert_close, random_array, to_numpy

def _torch():
    return pytest.importorskip("torch")


# ---- dtypes ------------------------------------------------------------------------------
def _bf16():
    try:
        import ml_dtypes  # noqa: F401

        return np.dtype("bfloat16")
    except Exception:
        return None


_DTYPES = [np.float32, np.float16] + ([_bf16()] if _bf16() is not None else [])
_TOL = {"float32": 1e-5, "float16": 1e-3, "bfloat16": 1.6e-2}


@pytest.fixture
def tf32_off():
    from imkern.nn import _cuda

    before = _cuda.get_allow_tf32()
    _cuda.set_allow_tf32(False)
    yield
    _cuda.set_allow_tf32(before)


def _dev(cp, a, dtype):
    """A CuPy array of dtype and the float64 NumPy array of the same (rounded) values."""
    a = np.asarray(a).astype(dtype)
    try:
        d = cp.asarray(a)
    except Exception:
        pytest.skip(f"CuPy cannot hold dtype {np.dtype(dtype)}")
    return d, a.astype(np.float64)


def _t(a):
    return _torch().from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _check(actual, expected, dtype, scale=1.0, msg=""):
    """assert_close with the tolerance of the kernel's dtype (conftest: fp32 1e-5, fp16 1e-3,
    bf16 1.6e-2), ``scale`` ~ the reduction length times the operands' magnitudes."""
    a = to_numpy(actual).astype(np.float64)
    e = np.array(expected, dtype=np.float64)
    same_inf = np.isinf(e) & (a == e)  # matching infinities (max-pool of -inf windows)
    a, e = np.where(same_inf, 0.0, a), np.where(same_inf, 0.0, e)
    assert_close(a, e, dtype=np.dtype(dtype), scale=scale, err_msg=msg)


def _out(cp, shape, dtype):
    o = cp.empty(shape, dtype=dtype)
    if np.dtype(dtype).kind == "f" and np.dtype(dtype).name != "bfloat16":
        o.fill(np.nan)  # poison: every element must be written
    return o


# ---- import works without a GPU ----------------------------------------------------------
def test_cuda_module_imports_without_gpu():
    mod = importlib.import_module("imkern.nn._cuda")
    assert mod.get_allow_tf32() in (True, False)
    mod.set_allow_tf32(mod.get_allow_tf32())


# ---- conv2d --------------------------------------------------------------------------------
# (N, C, H, W, K, R, S, stride, padding (t, b, l, r), dilation, groups)
CONV_CASES = [
    (2, 3, 9, 11, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 8, 7, 7, 8, 3, 3, (2, 2), (1, 1, 2, 2), (1, 1), 2),
    (2, 4, 10, 10, 6, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 6, 12, 9, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 6),
    (3, 16, 5, 5, 130, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (2, 5, 8, 8, 7, 5, 3, (2, 3), (2, 2, 1, 1), (1, 1), 1),
    (1, 4, 6, 7, 4, 3, 2, (1, 2), (0, 2, 1, 0), (1, 2), 2),  # asymmetric padding
    (1, 40, 13, 13, 36, 3, 3, (3, 2), (1, 1, 1, 1), (1, 1), 4),
]


def _conv_ref(x, w, b, stride, pad, dil, groups):
    F = _torch().nn.functional
    t, bo, l, r = pad
    xp = F.pad(_t(x), (l, r, t, bo))
    y = F.conv2d(xp, _t(w), None if b is None else _t(b), stride=stride, dilation=dil, groups=groups)
    return y.numpy()


def _out_hw(H, W, R, S, stride, pad, dil):
    OH = (H + pad[0] + pad[1] - dil[0] * (R - 1) - 1) // stride[0] + 1
    OW = (W + pad[2] + pad[3] - dil[1] * (S - 1) - 1) // stride[1] + 1
    return OH, OW


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_forward(cp, rng, tf32_off, case, dtype, relu):
    from imkern.nn import _cuda

    N, C, H, W, K, R, S, stride, pad, dil, groups = case
    x, x64 = _dev(cp, random_array(rng, (N, C, H, W), np.float32), dtype)
    w, w64 = _dev(cp, random_array(rng, (K, C // groups, R, S), np.float32), dtype)
    b, b64 = _dev(cp, random_array(rng, (K,), np.float32), dtype)
    OH, OW = _out_hw(H, W, R, S, stride, pad, dil)
    out = _out(cp, (N, K, OH, OW), dtype)
    _cuda.conv2d(x, w, b, stride, pad, dil, groups, "relu" if relu else None, out)
    ref = _conv_ref(x64, w64, b64, stride, pad, dil, groups)
    if relu:
        ref = np.maximum(ref, 0)
    _check(out, ref, dtype, scale=(C // groups) * R * S + 1)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_conv2d_backward(cp, rng, tf32_off, case, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    N, C, H, W, K, R, S, stride, pad, dil, groups = case
    x, x64 = _dev(cp, random_array(rng, (N, C, H, W), np.float32), dtype)
    w, w64 = _dev(cp, random_array(rng, (K, C // groups, R, S), np.float32), dtype)
    OH, OW = _out_hw(H, W, R, S, stride, pad, dil)
    go, go64 = _dev(cp, random_array(rng, (N, K, OH, OW), np.float32), dtype)
    gi, gw, gb = _cuda.conv2d_backward(go, x, w, stride, pad, dil, groups)
    xt, wt = _t(x64).requires_grad_(), _t(w64).requires_grad_()
    bt = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    F = torch.nn.functional
    t, bo, l, r = pad
    y = F.conv2d(F.pad(xt, (l, r, t, bo)), wt, bt, stride=stride, dilation=dil, groups=groups)
    y.backward(_t(go64))
    _check(gi, xt.grad.numpy(), dtype, scale=(K // groups) * R * S, msg="grad_input")
    _check(gw, wt.grad.numpy(), dtype, scale=N * OH * OW, msg="grad_weight")
    _check(gb, bt.grad.numpy(), dtype, scale=N * OH * OW, msg="grad_bias")


def test_conv2d_tf32(cp, rng):
    """TF32 tensor cores: 10-bit mantissa products, float32 sums; looser tolerance."""
    from imkern.nn import _cuda

    before = _cuda.get_allow_tf32()
    _cuda.set_allow_tf32(True)
    try:
        x, x64 = _dev(cp, random_array(rng, (2, 32, 14, 14), np.float32), np.float32)
        w, w64 = _dev(cp, random_array(rng, (48, 32, 3, 3), np.float32), np.float32)
        out = _out(cp, (2, 48, 14, 14), np.float32)
        _cuda.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, out)
        ref = _conv_ref(x64, w64, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
        err = np.abs(to_numpy(out) - ref).max()
        assert err <= 2e-3 * 32 * 9 ** 0.5 * 3, err
    finally:
        _cuda.set_allow_tf32(before)


def test_conv2d_matches_torch_cuda(cp, rng, tf32_off):
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    from imkern.nn import _cuda

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x = cp.asarray(random_array(rng, (4, 16, 20, 20), np.float32))
    w = cp.asarray(random_array(rng, (32, 16, 3, 3), np.float32))
    out = _out(cp, (4, 32, 10, 10), np.float32)
    _cuda.conv2d(x, w, None, (2, 2), (1, 1, 1, 1), (1, 1), 1, None, out)
    ref = torch.nn.functional.conv2d(torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda"),
                                     stride=2, padding=1)
    assert_close(out, ref.cpu().numpy().astype(np.float64), dtype=np.float32, scale=16 * 9)


def test_conv2d_deterministic(cp, rng, tf32_off):
    from imkern.nn import _cuda

    x = cp.asarray(random_array(rng, (8, 16, 24, 24), np.float32))
    w = cp.asarray(random_array(rng, (16, 16, 3, 3), np.float32))
    go = cp.asarray(random_array(rng, (8, 16, 24, 24), np.float32))
    a = _cuda.conv2d_backward(go, x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    b = _cuda.conv2d_backward(go, x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    for u, v in zip(a, b):
        assert (to_numpy(u) == to_numpy(v)).all()


# ---- linear / matmul --------------------------------------------------------------------------
@pytest.mark.parametrize("mnk", [(1, 1, 1), (17, 33, 9), (130, 70, 300), (64, 256, 1000), (5, 3, 0)])
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_linear(cp, rng, tf32_off, mnk, dtype):
    from imkern.nn import _cuda

    M, N, K = mnk
    x, x64 = _dev(cp, random_array(rng, (M, K), np.float32), dtype)
    w, w64 = _dev(cp, random_array(rng, (N, K), np.float32), dtype)
    b, b64 = _dev(cp, random_array(rng, (N,), np.float32), dtype)
    out = _out(cp, (M, N), dtype)
    _cuda.linear(x, w, b, out)
    _check(out, x64 @ w64.T + b64, dtype, scale=K + 1)
    go, go64 = _dev(cp, random_array(rng, (M, N), np.float32), dtype)
    gi, gw, gb = _cuda.linear_backward(go, x, w)
    _check(gi, go64 @ w64, dtype, scale=N, msg="grad_input")
    _check(gw, go64.T @ x64, dtype, scale=M, msg="grad_weight")
    _check(gb, go64.sum(0), dtype, scale=M, msg="grad_bias")


@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_matmul(cp, rng, tf32_off, dtype):
    from imkern.nn import _cuda

    a, a64 = _dev(cp, random_array(rng, (129, 257), np.float32), dtype)
    b, b64 = _dev(cp, random_array(rng, (257, 131), np.float32), dtype)
    _check(_cuda.matmul(a, b), a64 @ b64, dtype, scale=257)


def test_matmul_tf32(cp, rng):
    from imkern.nn import _cuda

    before = _cuda.get_allow_tf32()
    _cuda.set_allow_tf32(True)
    try:
        a = random_array(rng, (256, 512), np.float32)
        b = random_array(rng, (512, 128), np.float32)
        c = to_numpy(_cuda.matmul(cp.asarray(a), cp.asarray(b)))
        ref = a.astype(np.float64) @ b.astype(np.float64)
        assert np.abs(c - ref).max() <= 1e-3 * 512 ** 0.5 * 4
    finally:
        _cuda.set_allow_tf32(before)


# ---- pooling --------------------------------------------------------------------------------
def _pool_out(H, k, s, p, d, ceil):
    num = H + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= H + p:
        o -= 1
    return o


MAXPOOL_CASES = [  # (N, C, H, W, k, s, p, d, ceil)
    (2, 3, 8, 8, (2, 2), (2, 2), (0, 0), (1, 1), False),
    (1, 4, 9, 7, (3, 3), (1, 1), (1, 1), (1, 1), False),
    (2, 2, 11, 10, (3, 2), (2, 1), (1, 0), (2, 1), True),
    (1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), False),
    (1, 2, 13, 13, (5, 5), (3, 3), (2, 2), (1, 1), True),
]


@pytest.mark.parametrize("case", MAXPOOL_CASES)
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_pool2d(cp, rng, case, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    N, C, H, W, k, s, p, d, ceil = case
    xn = random_array(rng, (N, C, H, W), np.float32)
    xn[0, 0, 0, 0] = np.nan
    xn[-1, -1, :, :] = -np.inf  # all -inf planes: -inf with a valid index
    x, x64 = _dev(cp, xn, dtype)
    OH, OW = _pool_out(H, k[0], s[0], p[0], d[0], ceil), _pool_out(W, k[1], s[1], p[1], d[1], ceil)
    out = _out(cp, (N, C, OH, OW), dtype)
    ind = cp.full((N, C, OH, OW), -7, dtype=cp.int64)
    _cuda.max_pool2d(x, k, s, p, d, out, ind)
    ry, ri = torch.nn.functional.max_pool2d(_t(x64), k, s, p, d, ceil_mode=ceil, return_indices=True)
    _check(out, ry.numpy(), dtype)
    assert (to_numpy(ind) == ri.numpy()).all()
    go, go64 = _dev(cp, random_array(rng, (N, C, OH, OW), np.float32), dtype)
    # gradients follow the indices; compare against a scatter of the reference indices
    ref = np.zeros((N * C, H * W))
    for pl, (g, i) in enumerate(zip(go64.reshape(N * C, -1), ri.numpy().reshape(N * C, -1))):
        np.add.at(ref[pl], i, g)
    gi = _cuda.max_pool2d_backward(go, ind, (N, C, H, W), kernel=k, stride=s, padding=p, dilation=d)
    _check(gi, ref.reshape(N, C, H, W), dtype, scale=k[0] * k[1])
    gi2 = _cuda.max_pool2d_backward(go, ind, (N, C, H, W))  # per-plane ordered scatter
    _check(gi2, ref.reshape(N, C, H, W), dtype, scale=k[0] * k[1])
    gi3 = _cuda.max_pool2d_backward(go, ind, (N, C, H, W))
    assert (to_numpy(gi2) == to_numpy(gi3)).all()  # deterministic without the window too


AVGPOOL_CASES = [  # (N, C, H, W, k, s, p, ceil, include_pad)
    (2, 3, 8, 8, (2, 2), (2, 2), (0, 0), False, True),
    (1, 2, 9, 7, (3, 3), (2, 2), (1, 1), True, True),
    (1, 2, 9, 7, (3, 3), (2, 2), (1, 1), True, False),
    (2, 1, 10, 11, (3, 2), (1, 2), (1, 1), False, False),
    (1, 1, 5, 5, (4, 4), (3, 3), (2, 2), True, True),
]


@pytest.mark.parametrize("case", AVGPOOL_CASES)
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_avg_pool2d(cp, rng, case, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    N, C, H, W, k, s, p, ceil, inc = case
    x, x64 = _dev(cp, random_array(rng, (N, C, H, W), np.float32), dtype)
    OH, OW = _pool_out(H, k[0], s[0], p[0], 1, ceil), _pool_out(W, k[1], s[1], p[1], 1, ceil)
    out = _out(cp, (N, C, OH, OW), dtype)
    _cuda.avg_pool2d(x, k, s, p, ceil, inc, out)
    xt = _t(x64).requires_grad_()
    y = torch.nn.functional.avg_pool2d(xt, k, s, p, ceil_mode=ceil, count_include_pad=inc)
    assert tuple(y.shape) == (N, C, OH, OW)
    _check(out, y.detach().numpy(), dtype)
    go, go64 = _dev(cp, random_array(rng, (N, C, OH, OW), np.float32), dtype)
    y.backward(_t(go64))
    gi = _cuda.avg_pool2d_backward(go, (N, C, H, W), k, s, p, ceil, inc)
    _check(gi, xt.grad.numpy(), dtype, scale=k[0] * k[1])


@pytest.mark.parametrize("sizes", [((7, 9), (3, 4)), ((8, 8), (1, 1)), ((5, 5), (7, 6)), ((6, 10), (6, 10))])
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_adaptive_avg_pool2d(cp, rng, sizes, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    (H, W), (OH, OW) = sizes
    x, x64 = _dev(cp, random_array(rng, (2, 3, H, W), np.float32), dtype)
    out = _out(cp, (2, 3, OH, OW), dtype)
    _cuda.adaptive_avg_pool2d(x, out)
    xt = _t(x64).requires_grad_()
    y = torch.nn.functional.adaptive_avg_pool2d(xt, (OH, OW))
    _check(out, y.detach().numpy(), dtype)
    go, go64 = _dev(cp, random_array(rng, (2, 3, OH, OW), np.float32), dtype)
    y.backward(_t(go64))
    _check(_cuda.adaptive_avg_pool2d_backward(go, (2, 3, H, W)), xt.grad.numpy(), dtype, scale=4)


# ---- activations ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"])
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_activation(cp, rng, name, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    F = torch.nn.functional
    xn = random_array(rng, (3, 5, 7, 11), np.float32, -4, 4)
    xn.flat[0] = np.nan
    x, x64 = _dev(cp, xn, dtype)
    out = _out(cp, x.shape, dtype)
    _cuda.activation(name, x, out, 0.1)
    fn = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.1), "sigmoid": torch.sigmoid,
          "tanh": torch.tanh, "gelu": F.gelu}[name]
    xt = _t(x64).requires_grad_()
    y = fn(xt)
    _check(out, y.detach().numpy(), dtype)
    go, go64 = _dev(cp, random_array(rng, x.shape, np.float32), dtype)
    y.backward(_t(go64))
    gx = _out(cp, x.shape, dtype)
    _cuda.activation_backward(name, go, x, out, gx, 0.1)
    ref = xt.grad.numpy()
    fin = ~np.isnan(x64)
    _check(to_numpy(gx)[fin], ref[fin], dtype, scale=2)


# ---- softmax / cross entropy -------------------------------------------------------------------
@pytest.mark.parametrize("shape_axis", [((4, 10), 1), ((3, 2000), 1), ((2, 5, 3, 4), 1), ((6, 7, 33), 0),
                                        ((5, 1), 1), ((2, 3, 1025), 2)])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax(cp, rng, shape_axis, log, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    shape, axis = shape_axis
    x, x64 = _dev(cp, random_array(rng, shape, np.float32, -20, 20), dtype)
    out = _out(cp, shape, dtype)
    _cuda.softmax(x, axis, log, out)
    fn = torch.log_softmax if log else torch.softmax
    _check(out, fn(_t(x64), axis).numpy(), dtype, scale=4)


@pytest.mark.parametrize("shape", [(8, 5), (3, 1000), (2, 4, 3, 5), (1, 3)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_cross_entropy(cp, rng, shape, reduction, smoothing, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    N, C = shape[:2]
    xn = random_array(rng, shape, np.float32, -5, 5)
    xn.reshape(-1)[:3] += 3000.0  # large logits must not overflow
    x, x64 = _dev(cp, xn, dtype)
    tn = rng.integers(0, C, size=(N,) + shape[2:]).astype(np.int64)
    tn.reshape(-1)[-1] = -100  # ignored
    t = cp.asarray(tn)
    loss = _cuda.cross_entropy(x, t, reduction, smoothing, -100)
    xt = _t(x64).requires_grad_()
    ref = torch.nn.functional.cross_entropy(xt, torch.from_numpy(tn), reduction=reduction,
                                            label_smoothing=smoothing, ignore_index=-100)
    _check(loss, ref.detach().numpy(), dtype, scale=8 * (C if reduction == "sum" else 1))
    gout = np.asarray(random_array(rng, tuple(ref.shape), np.float32)) if reduction == "none" else np.float32(0.7)
    ref.backward(_t(np.asarray(gout, dtype=np.float64)))
    g = _cuda.cross_entropy_backward(x, t, reduction, smoothing, -100, grad_output=cp.asarray(gout))
    _check(g, xt.grad.numpy(), dtype, scale=2)


def test_cross_entropy_all_ignored(cp):
    from imkern.nn import _cuda

    x = cp.zeros((3, 4), dtype=cp.float32)
    t = cp.full((3,), -100, dtype=cp.int64)
    assert np.isnan(float(_cuda.cross_entropy(x, t, "mean", 0.0, -100)))
    assert float(_cuda.cross_entropy(x, t, "sum", 0.0, -100)) == 0.0


# ---- batch norm ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (2, 5, 64, 65), (300, 4, 1, 1), (1, 2, 3, 3)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_batch_norm2d(cp, rng, shape, training, affine, dtype):
    from imkern.nn import _cuda

    torch = _torch()
    C = shape[1]
    x, x64 = _dev(cp, random_array(rng, shape, np.float32, -2, 3), dtype)
    wn = random_array(rng, (C,), np.float32, 0.5, 1.5) if affine else None
    bn = random_array(rng, (C,), np.float32) if affine else None
    rmn = random_array(rng, (C,), np.float32)
    rvn = random_array(rng, (C,), np.float32, 0.5, 2.0)
    rm, rv = cp.asarray(rmn), cp.asarray(rvn)
    out = _out(cp, shape, dtype)
    _cuda.batch_norm2d(x, None if wn is None else cp.asarray(wn), None if bn is None else cp.asarray(bn),
                       rm, rv, training, 0.1, 1e-5, out)
    xt = _t(x64).requires_grad_()
    wt = _t(wn).requires_grad_() if affine else None
    bt = _t(bn).requires_grad_() if affine else None
    rmt, rvt = _t(rmn), _t(rvn)
    y = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.1, eps=1e-5)
    _check(out, y.detach().numpy(), dtype, scale=8)
    assert_close(rm, rmt.numpy(), dtype=np.float32, scale=4)
    assert_close(rv, rvt.numpy(), dtype=np.float32, scale=4)
    go, go64 = _dev(cp, random_array(rng, shape, np.float32), dtype)
    y.backward(_t(go64))
    gi, gw, gb = _cuda.batch_norm2d_backward(go, x, None if wn is None else cp.asarray(wn), cp.asarray(rmn),
                                             cp.asarray(rvn), training, 1e-5)
    _check(gi, xt.grad.numpy(), dtype, scale=16)
    if affine:
        L = shape[0] * shape[2] * shape[3]
        assert_close(gw, wt.grad.numpy(), dtype=np.float32 if dtype == np.float32 else np.float16, scale=L)
        assert_close(gb, bt.grad.numpy(), dtype=np.float32 if dtype == np.float32 else np.float16, scale=L)


def test_batch_norm_deterministic(cp, rng):
    from imkern.nn import _cuda

    x = cp.asarray(random_array(rng, (16, 8, 33, 31), np.float32))
    outs = []
    for _ in range(2):
        o = cp.empty_like(x)
        _cuda.batch_norm2d(x, None, None, None, None, True, 0.1, 1e-5, o)
        outs.append(to_numpy(o))
    assert (outs[0] == outs[1]).all()


# ---- dropout ---------------------------------------------------------------------------------
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
@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: np.dtype(d).name)
def test_dropout(cp, rng, p, dtype):
    from imkern.nn import _cuda

    x, x64 = _dev(cp, random_array(rng, (3, 4, 17, 19), np.float32, 0.5, 1.5), dtype)
    out = _out(cp, x.shape, dtype)
    seed = 0x1234567890ABCDEF
    _cuda.dropout(x, p, seed, out)
    keep = _hash_keep(x.size, p, seed).reshape(x.shape)
    o = to_numpy(out).astype(np.float64)
    assert ((o != 0) == keep).all(), "mask differs from the reference hash"
    if p < 1:
        _check(out, np.where(keep, x64 / (1 - p), 0.0), dtype)
    try:
        ref_nn = importlib.import_module("imkern.reference.nn")
        ref = np.asarray(ref_nn.dropout(x64.astype(np.float32), p=p, training=True, seed=seed))
        if ref.shape == keep.shape:
            assert ((ref != 0) == keep).all(), "mask differs from imkern.reference.nn.dropout"
    except (ImportError, AttributeError, TypeError):
        pass


# ---- empty inputs ------------------------------------------------------------------------------
def test_empty_inputs(cp):
    from imkern.nn import _cuda

    x = cp.empty((0, 3, 5, 5), dtype=cp.float32)
    w = cp.ones((4, 3, 3, 3), dtype=cp.float32)
    _cuda.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, cp.empty((0, 4, 5, 5), dtype=cp.float32))
    gi, gw, gb = _cuda.conv2d_backward(cp.empty((0, 4, 5, 5), dtype=cp.float32), x, w, (1, 1), (1, 1, 1, 1),
                                       (1, 1), 1)
    assert float(abs(gw).max()) == 0.0 and float(abs(gb).max()) == 0.0
    _cuda.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), cp.empty((0, 3, 2, 2), dtype=cp.float32), None)
    _cuda.softmax(x, 1, False, cp.empty_like(x))
    _cuda.activation("relu", x, cp.empty_like(x))
    _cuda.dropout(x, 0.5, 1, cp.empty_like(x))
    cp.cuda.get_current_stream().synchronize()


# ---- through the public API, against imkern.reference.nn ---------------------------------------
def _public():
    try:
        F = importlib.import_module("imkern.nn.functional")
        R = importlib.import_module("imkern.reference.nn")
    except ImportError:
        pytest.skip("imkern.nn.functional / imkern.reference.nn not available")
    return F, R


@pytest.mark.parametrize("op", ["conv2d", "linear", "max_pool2d", "avg_pool2d", "relu", "gelu", "softmax",
                                "cross_entropy", "batch_norm2d"])
def test_public_api_matches_reference(cp, rng, tf32_off, op):
    F, R = _public()
    if not hasattr(F, op) or not hasattr(R, op):
        pytest.skip(f"{op} not in the public API / reference yet")
    x = random_array(rng, (2, 4, 9, 9), np.float32)
    if op == "conv2d":
        w = random_array(rng, (6, 4, 3, 3), np.float32)
        args, kw, scale = (x, w), dict(stride=1, padding=1), 36
    elif op == "linear":
        x = random_array(rng, (7, 20), np.float32)
        args, kw, scale = (x, random_array(rng, (5, 20), np.float32)), {}, 20
    elif op in ("max_pool2d", "avg_pool2d"):
        args, kw, scale = (x, 2), {}, 4
    elif op == "softmax":
        args, kw, scale = (x,), dict(dim=1), 4
    elif op == "cross_entropy":
        x = random_array(rng, (6, 5), np.float32)
        args, kw, scale = (x, rng.integers(0, 5, size=6).astype(np.int64)), {}, 8
    elif op == "batch_norm2d":
        args, kw, scale = (x, None, None), dict(training=True), 8
    else:
        args, kw, scale = (x,), {}, 2
    try:
        ref = getattr(R, op)(*args, **kw)
        got = getattr(F, op)(*[cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args], **kw)
    except TypeError as e:  # the public signature differs from this guess: not a kernel failure
        pytest.skip(f"signature differs: {e}")
    if isinstance(ref, tuple):
        ref, got = ref[0], got[0]
    assert_close(got, np.asarray(ref, dtype=np.float64), dtype=np.float32, scale=scale)


# ---- CPU emulation of the kernels' index math (runs without a GPU) ----------------------------
# These mirror csrc/cuda/gemm_tiles.cuh (tile mapping, split-K plan) and the conv2d.cu loaders
# line by line (including the incremental (c, r, s) stepping), then check the implicit GEMMs
# they define against torch. They guard the index arithmetic, which review alone can miss.
_NT, _BN, _BK = 256, 128, 32


def _cdiv(a, b):
    return -(-a // b)


def _tile_pos(contig_k, bmn, tid, i):
    e = tid + i * _NT
    return (e // _BK, e % _BK) if contig_k else (e % bmn, e // bmn)


def _split_plan(M, N, K, Z, allow_split):
    bm = 64 if M <= 64 else 128
    tiles = _cdiv(M, bm) * _cdiv(N, _BN)
    splits = 1
    if allow_split and K >= 4 * _BK:
        want = max(1, 256 // max(1, tiles * Z))
        splits = max(1, min(want, K // (4 * _BK), 64))
    k_split = _cdiv(_cdiv(max(K, 1), splits), _BK) * _BK
    splits = _cdiv(K, k_split) if K > 0 else 1
    return bm, splits, k_split


def _emulate_gemm(M, N, K, Z, la, lb, allow_split):
    """C[z] as the CUDA kernel computes it (float64), checking every smem cell is loaded once."""
    bm, splits, k_split = _split_plan(M, N, K, Z, allow_split)
    C = np.zeros((Z, M, N))
    hits = np.zeros((Z, M, N), dtype=np.int64)
    pa, pb = bm * _BK // _NT, _BN * _BK // _NT
    for z in range(Z):
        for tm in range(_cdiv(M, bm)):
            for tn in range(_cdiv(N, _BN)):
                m0, n0 = tm * bm, tn * _BN
                for sp in range(splits):
                    kbeg, kend = sp * k_split, min(sp * k_split + k_split, K)
                    acc = np.zeros((bm, _BN))
                    for k0 in range(kbeg, kend, _BK):
                        As = np.full((_BK, bm), np.nan)
                        Bs = np.full((_BK, _BN), np.nan)
                        for tid in range(_NT):
                            va = la.load(la.init(m0, z, tid), k0, kend, pa, tid, bm)
                            vb = lb.load(lb.init(n0, z, tid), k0, kend, pb, tid, _BN)
                            for i in range(pa):
                                mn, k = _tile_pos(la.contig_k, bm, tid, i)
                                assert np.isnan(As[k, mn])
                                As[k, mn] = va[i]
                            for i in range(pb):
                                mn, k = _tile_pos(lb.contig_k, _BN, tid, i)
                                assert np.isnan(Bs[k, mn])
                                Bs[k, mn] = vb[i]
                        assert not np.isnan(As).any() and not np.isnan(Bs).any()
                        acc += As.T @ Bs
                    mm, nn_ = min(bm, M - m0), min(_BN, N - n0)
                    C[z, m0:m0 + mm, n0:n0 + nn_] += acc[:mm, :nn_]
                    hits[z, m0:m0 + mm, n0:n0 + nn_] += 1
    assert (hits == splits).all()
    return C


class _Mat:
    def __init__(self, p, ld, rows, zstride, contig_k):
        self.p, self.ld, self.rows, self.zs, self.contig_k = p.reshape(-1), ld, rows, zstride, contig_k

    def init(self, mn0, z, tid):
        return (z * self.zs, mn0)

    def load(self, st, k0, kend, per, tid, bmn):
        base, mn0 = st
        out = []
        for i in range(per):
            mn, k = _tile_pos(self.contig_k, bmn, tid, i)
            gm, gk = mn0 + mn, k0 + k
            v = 0.0
            if gm < self.rows and gk < kend:
                v = self.p[base + (gm * self.ld + gk if self.contig_k else gk * self.ld + gm)]
            out.append(v)
        return out


def _step(s, r, c, step, S, R):
    s += step
    while s >= S:
        s -= S
        r += 1
    while r >= R:
        r -= R
        c += 1
    return s, r, c


class _Geo:
    def __init__(self, N, C, H, W, K, R, S, OH, OW, stride, pad, dil, groups):
        self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.OH, self.OW = N, C, H, W, K, R, S, OH, OW
        self.sh, self.sw = stride
        self.pt, self.pl = pad
        self.dh, self.dw = dil
        self.Cg, self.Kg = C // groups, K // groups
        self.RS, self.HW, self.OHW = R * S, H * W, OH * OW


class _Im2col:  # conv2d.cu Im2colLoader
    contig_k = False

    def __init__(self, x, g):
        self.x, self.g, self.ncols = x.reshape(-1), g, g.N * g.OHW

    def init(self, n0, z, tid):
        g, n = self.g, n0 + tid % _BN
        if n >= self.ncols:
            return None
        b, p = divmod(n, g.OHW)
        oh, ow = divmod(p, g.OW)
        return ((b * g.C + z * g.Cg) * g.HW, oh * g.sh - g.pt, ow * g.sw - g.pl)

    def load(self, st, k0, kend, per, tid, bmn):
        g, step = self.g, _NT // bmn
        k = k0 + tid // bmn
        kq = k if k < kend else 0
        c, s = divmod(kq, g.RS)
        r, s = divmod(s, g.S)
        out = []
        for _ in range(per):
            v = 0.0
            if st is not None and k < kend:
                ih, iw = st[1] + r * g.dh, st[2] + s * g.dw
                if 0 <= ih < g.H and 0 <= iw < g.W:
                    v = self.x[st[0] + c * g.HW + ih * g.W + iw]
            out.append(v)
            k += step
            s, r, c = _step(s, r, c, step, g.S, g.R)
        return out


class _WeightT:  # conv2d.cu WeightTLoader
    contig_k = True

    def __init__(self, w, g):
        self.w, self.g = w.reshape(-1), g

    def init(self, m0, z, tid):
        return (z * self.g.Kg * self.g.Cg * self.g.RS, m0)

    def load(self, st, k0, kend, per, tid, bmn):
        g, k = self.g, k0 + tid % _BK
        kk, rs = divmod(k, g.RS) if k < kend else (0, 0)
        out = []
        for i in range(per):
            c = st[1] + tid // _BK + i * (_NT // _BK)
            out.append(self.w[st[0] + (kk * g.Cg + c) * g.RS + rs] if (k < kend and c < g.Cg) else 0.0)
        return out


class _Col2im:  # conv2d.cu Col2imLoader
    contig_k = False

    def __init__(self, gy, g):
        self.gy, self.g, self.ncols = gy.reshape(-1), g, g.N * g.HW

    def init(self, n0, z, tid):
        g, n = self.g, n0 + tid % _BN
        if n >= self.ncols:
            return None
        b, q = divmod(n, g.HW)
        ih, iw = divmod(q, g.W)
        return ((b * g.K + z * g.Kg) * g.OHW, ih + g.pt, iw + g.pl)

    def load(self, st, k0, kend, per, tid, bmn):
        g, step = self.g, _NT // bmn
        k = k0 + tid // bmn
        kq = k if k < kend else 0
        kk, s = divmod(kq, g.RS)
        r, s = divmod(s, g.S)
        out = []
        for _ in range(per):
            v = 0.0
            if st is not None and k < kend:
                th, tw = st[1] - r * g.dh, st[2] - s * g.dw
                if th >= 0 and tw >= 0:
                    oh, ow = th // g.sh, tw // g.sw
                    if oh * g.sh == th and ow * g.sw == tw and oh < g.OH and ow < g.OW:
                        v = self.gy[st[0] + kk * g.OHW + oh * g.OW + ow]
            out.append(v)
            k += step
            s, r, kk = _step(s, r, kk, step, g.S, g.R)
        return out


class _GradOut:  # conv2d.cu GradOutLoader
    contig_k = True

    def __init__(self, gy, g):
        self.gy, self.g = gy.reshape(-1), g

    def init(self, m0, z, tid):
        return (z * self.g.Kg * self.g.OHW, m0)

    def load(self, st, k0, kend, per, tid, bmn):
        g, k = self.g, k0 + tid % _BK
        off = 0
        if k < kend:
            b = k // g.OHW
            off = b * g.K * g.OHW + (k - b * g.OHW)
        out = []
        for i in range(per):
            m = st[1] + tid // _BK + i * (_NT // _BK)
            out.append(self.gy[st[0] + off + m * g.OHW] if (k < kend and m < g.Kg) else 0.0)
        return out


class _Im2colT:  # conv2d.cu Im2colTLoader
    contig_k = True

    def __init__(self, x, g):
        self.x, self.g = x.reshape(-1), g

    def init(self, n0, z, tid):
        return (n0, z)

    def load(self, st, k0, kend, per, tid, bmn):
        g, k = self.g, k0 + tid % _BK
        base = None
        if k < kend:
            b, p = divmod(k, g.OHW)
            oh, ow = divmod(p, g.OW)
            base, ih0, iw0 = (b * g.C + st[1] * g.Cg) * g.HW, oh * g.sh - g.pt, ow * g.sw - g.pl
        ncols, step = g.Cg * g.RS, _NT // _BK
        n = st[0] + tid // _BK
        nq = n if n < ncols else 0
        c, s = divmod(nq, g.RS)
        r, s = divmod(s, g.S)
        out = []
        for _ in range(per):
            v = 0.0
            if base is not None and n < ncols:
                ih, iw = ih0 + r * g.dh, iw0 + s * g.dw
                if 0 <= ih < g.H and 0 <= iw < g.W:
                    v = self.x[base + c * g.HW + ih * g.W + iw]
            out.append(v)
            n += step
            s, r, c = _step(s, r, c, step, g.S, g.R)
        return out


EMU_CASES = [  # (N, C, H, W, K, R, S, stride, padding (t, l) symmetric, dilation, groups)
    (2, 4, 6, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (1, 6, 7, 7, 4, 3, 2, (2, 1), (1, 0), (1, 2), 2),
    (1, 3, 5, 5, 3, 1, 1, (2, 2), (0, 0), (1, 1), 3),
    (3, 2, 9, 8, 2, 5, 3, (3, 2), (2, 1), (1, 1), 1),
    (4, 2, 12, 12, 2, 3, 3, (1, 1), (1, 1), (1, 1), 1),  # weight gradient with split-K
]


@pytest.mark.parametrize("case", EMU_CASES)
def test_emulated_implicit_gemm_index_math(case):
    torch = _torch()
    F = torch.nn.functional
    N, C, H, W, K, R, S, stride, pad, dil, groups = case
    rng = np.random.default_rng(0)
    OH = (H + 2 * pad[0] - dil[0] * (R - 1) - 1) // stride[0] + 1
    OW = (W + 2 * pad[1] - dil[1] * (S - 1) - 1) // stride[1] + 1
    g = _Geo(N, C, H, W, K, R, S, OH, OW, stride, pad, dil, groups)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // groups, R, S))
    gy = rng.standard_normal((N, K, OH, OW))
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    y = F.conv2d(xt, wt, stride=stride, padding=pad, dilation=dil, groups=groups)
    y.backward(torch.from_numpy(gy))
    kdim = g.Cg * g.RS
    # forward: M = Kg, N = B*OH*OW, K = Cg*R*S, Z = groups
    Cf = _emulate_gemm(g.Kg, N * g.OHW, kdim, groups, _Mat(w, kdim, g.Kg, g.Kg * kdim, True), _Im2col(x, g), False)
    yf = Cf.reshape(groups, g.Kg, N, g.OHW).transpose(2, 0, 1, 3).reshape(N, K, OH, OW)
    np.testing.assert_allclose(yf, y.detach().numpy(), rtol=1e-10, atol=1e-10)
    # backward data: M = Cg, N = B*H*W, K = Kg*R*S
    Cd = _emulate_gemm(g.Cg, N * g.HW, g.Kg * g.RS, groups, _WeightT(w, g), _Col2im(gy, g), False)
    gx = Cd.reshape(groups, g.Cg, N, g.HW).transpose(2, 0, 1, 3).reshape(N, C, H, W)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    # backward weight: M = Kg, N = Cg*R*S, K = B*OH*OW (split-K allowed)
    Cw = _emulate_gemm(g.Kg, kdim, N * g.OHW, groups, _GradOut(gy, g), _Im2colT(x, g), True)
    np.testing.assert_allclose(Cw.reshape(K, C // groups, R, S), wt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mnk", [(1, 1, 1), (70, 130, 33), (5, 9, 700), (129, 3, 0)])
@pytest.mark.parametrize("trans", [(False, False), (False, True), (True, False), (True, True)])
def test_emulated_dense_gemm_index_math(mnk, trans):
    M, N, K = mnk
    ta, tb = trans
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    a = A.T.copy() if ta else A  # stored (K, M) when transposed
    b = B.T.copy() if tb else B  # stored (N, K) when transposed
    la = _Mat(a, M if ta else K, M, 0, not ta)
    lb = _Mat(b, K if tb else N, N, 0, tb)
    C = _emulate_gemm(M, N, K, 1, la, lb, True)[0]
    np.testing.assert_allclose(C, A @ B, rtol=1e-10, atol=1e-10)


def test_emulated_epilogue_mappings_cover_tile():
    for bm in (64, 128):
        # SIMT: thread (tx, ty) owns (ty + 16 i, tx + 16 j)
        seen = np.zeros((bm, _BN), dtype=int)
        for tid in range(_NT):
            tx, ty = tid % 16, tid // 16
            for i in range(bm // 16):
                for j in range(_BN // 16):
                    seen[ty + 16 * i, tx + 16 * j] += 1
        assert (seen == 1).all()
        # WMMA: warp (wm, wn), fragment (i, j), lane element e = lane + 32 t of a 16x16 scratch
        seen[:] = 0
        for warp in range(8):
            wm, wn = warp // 4, warp % 4
            for i in range(bm // 32):
                for j in range(2):
                    for lane in range(32):
                        for t in range(8):
                            e = lane + 32 * t
                            seen[wm * (bm // 2) + i * 16 + (e >> 4), wn * 32 + j * 16 + (e & 15)] += 1
        assert (seen == 1).all()


def _maxpool_gather_ranges(H, OH, k, s, p, d):
    """pool2d.cu max_pool2d_backward_gather_kernel: candidate windows of each input row."""
    out = []
    for ih in range(H):
        lo = ih + p - (k - 1) * d
        oh0 = _cdiv(lo, s) if lo > 0 else 0
        oh1 = min((ih + p) // s, OH - 1)
        out.append(set(range(oh0, oh1 + 1)))
    return out


@pytest.mark.parametrize("cfg", [(9, 3, 1, 1, 1), (11, 3, 2, 1, 2), (13, 5, 3, 2, 1), (8, 2, 2, 0, 1), (7, 4, 1, 2, 3)])
def test_emulated_pool_backward_ranges(cfg):
    """Every window that contains an input tap is among the gather candidates (max, avg, adaptive)."""
    H, k, s, p, d = cfg
    for ceil in (False, True):
        OH = _pool_out(H, k, s, p, d, ceil)
        cand = _maxpool_gather_ranges(H, OH, k, s, p, d)
        for oh in range(OH):
            for i in range(k):
                ih = oh * s - p + i * d
                if 0 <= ih < H:
                    assert oh in cand[ih], (cfg, ceil, oh, ih)
        if d == 1:  # avg pool (PyTorch's range formula as in avg_pool2d_backward_kernel)
            OH = _pool_out(H, k, s, p, 1, ceil)
            for ih in range(H):
                h = ih + p
                oh0 = 0 if h < k else (h - k) // s + 1
                oh1 = min(h // s + 1, OH)
                want = {oh for oh in range(OH) if max(oh * s - p, 0) <= ih < min(oh * s - p + k, H + p, H)}
                assert want <= set(range(oh0, oh1)), (cfg, ih)
    # adaptive bins
    for I in range(1, 12):
        for O in range(1, 12):
            for i in range(I):
                o0, o1 = (i * O) // I, min(_cdiv((i + 1) * O, I), O)
                want = {o for o in range(O) if (o * I) // O <= i < _cdiv((o + 1) * I, O)}
                assert want <= set(range(o0, o1)) and want, (I, O, i)


# ---- Python -> C++ plumbing without a GPU ---------------------------------------------------
def test_cuda_bindings_plumbing_without_gpu(monkeypatch):
    """Every _cuda function reaches its _core.cuda_* binding with arguments pybind11 accepts
    (arity, types) and the launcher fails only at the CUDA runtime (no device here).
    Runs on CUDA builds without a GPU; skipped with a GPU (bogus pointers would be launched)."""
    import contextlib
    import types

    from conftest import HAS_GPU
    from imkern import _arrays, _core
    from imkern.nn import _cuda

    if not _core.cuda_built or HAS_GPU:
        pytest.skip("needs a CUDA build on a machine without a GPU")

    class _Data:
        ptr = 0x7F0000000000

    class FakeArr(np.ndarray):
        @property
        def data(self):
            return _Data()

        @property
        def device(self):
            return contextlib.nullcontext()

    def fa(a):
        return (np.ascontiguousarray(a) if np.ndim(a) else np.asarray(a).copy()).view(FakeArr)

    fake = types.SimpleNamespace(
        empty=lambda shape, dtype=np.float32: fa(np.empty(shape, dtype)),
        ones=lambda shape, dtype=np.float32: fa(np.ones(shape, dtype)),
        asarray=lambda a, dtype=None: fa(np.asarray(a, dtype)),
        ascontiguousarray=lambda a: fa(np.ascontiguousarray(a)),
        int64=np.int64, float32=np.float32)
    monkeypatch.setattr(_cuda, "_cupy", lambda: fake)

    @contextlib.contextmanager
    def launch(a):
        yield 0

    monkeypatch.setattr(_arrays, "cuda_launch", launch)
    called = set()

    def wrap(name, f):
        def g(*args):
            called.add(name)
            with pytest.raises(RuntimeError, match="CUDA"):
                f(*args)
        return g

    names = ["cuda_activation", "cuda_activation_backward", "cuda_adaptive_avg_pool2d",
             "cuda_adaptive_avg_pool2d_backward", "cuda_avg_pool2d", "cuda_avg_pool2d_backward", "cuda_batch_norm2d",
             "cuda_batch_norm2d_backward", "cuda_channel_sum", "cuda_conv2d", "cuda_conv2d_backward_data",
             "cuda_conv2d_backward_weight", "cuda_cross_entropy", "cuda_cross_entropy_backward", "cuda_dropout",
             "cuda_gemm", "cuda_max_pool2d", "cuda_max_pool2d_backward", "cuda_softmax"]  # csrc/bindings/nn_cuda.cpp
    for n in names:
        monkeypatch.setattr(_core, n, wrap(n, getattr(_core, n)))

    f32 = np.float32
    rnd = np.random.default_rng(0)
    x = fa(rnd.random((2, 4, 9, 9), dtype=f32))
    w = fa(rnd.random((6, 2, 3, 3), dtype=f32))
    _cuda.conv2d(x, w, fa(np.ones(6, f32)), (1, 1), (1, 1, 1, 1), (1, 1), 2, "relu", fa(np.empty((2, 6, 9, 9), f32)))
    gi, gw, gb = _cuda.conv2d_backward(fa(np.ones((2, 6, 9, 9), f32)), x, w, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (6,)
    xl, wl = fa(rnd.random((5, 7), dtype=f32)), fa(rnd.random((3, 7), dtype=f32))
    _cuda.linear(xl, wl, fa(np.ones(3, f32)), fa(np.empty((5, 3), f32)))
    assert [a.shape for a in _cuda.linear_backward(fa(np.ones((5, 3), f32)), xl, wl)] == [(5, 7), (3, 7), (3,)]
    _cuda.matmul(xl, fa(np.ones((7, 4), f32)))
    o, ind = fa(np.empty((2, 4, 4, 4), f32)), fa(np.empty((2, 4, 4, 4), np.int64))
    _cuda.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), o, ind)
    _cuda.max_pool2d_backward(o, ind, x.shape, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
    _cuda.max_pool2d_backward(o, ind, x.shape)
    _cuda.avg_pool2d(x, (2, 2), (2, 2), (0, 0), False, True, o)
    _cuda.avg_pool2d_backward(o, x.shape, (2, 2), (2, 2), (0, 0), False, True)
    _cuda.adaptive_avg_pool2d(x, o)
    _cuda.adaptive_avg_pool2d_backward(o, x.shape)
    for nm in ("relu", "leaky_relu", "sigmoid", "tanh", "gelu"):
        _cuda.activation(nm, x, fa(np.empty_like(x)), 0.1)
        _cuda.activation_backward(nm, x, x, x, fa(np.empty_like(x)), 0.1)
    _cuda.softmax(x, 1, True, fa(np.empty_like(x)))
    lg, t = fa(rnd.random((4, 5), dtype=f32)), fa(np.array([0, 1, 2, -100]))
    for red in ("none", "mean", "sum"):
        assert _cuda.cross_entropy(lg, t, red, 0.1, -100).shape == ((4,) if red == "none" else ())
        g = _cuda.cross_entropy_backward(lg, t, red, 0.1, -100, grad_output=np.ones(4) if red == "none" else 2.0)
        assert g.shape == lg.shape
    rm, rv = fa(np.zeros(4, f32)), fa(np.ones(4, f32))
    _cuda.batch_norm2d(x, fa(np.ones(4, f32)), fa(np.zeros(4, f32)), rm, rv, True, 0.1, 1e-5, fa(np.empty_like(x)))
    r = _cuda.batch_norm2d_backward(x, x, fa(np.ones(4, f32)), rm, rv, False, 1e-5)
    assert [a.shape for a in r] == [x.shape, (4,), (4,)]
    _cuda.dropout(x, 0.5, 2 ** 64 + 5, fa(np.empty_like(x)))
    assert called == set(names), set(names) - called
