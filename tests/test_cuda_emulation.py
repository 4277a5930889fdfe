"""The CUDA kernels' index math emulated on the CPU, and the Python -> C++ plumbing of every
CUDA call: both run without a GPU (the device cases of each op are in the op's own tests,
through the ``xp`` fixture)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import pool_out_size as _pool_out


def _torch():
    return pytest.importorskip("torch")




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
    """Every nn op's CUDA half reaches its _core.cuda_* binding with arguments pybind11 accepts
    (arity, types) and the launcher fails only at the CUDA runtime (no device here). Fake
    "CuPy" arrays (NumPy arrays with a bogus device pointer) go through the public API.
    Runs on CUDA builds without a GPU; skipped with a GPU (bogus pointers would be launched)."""
    import contextlib
    import types

    from conftest import HAS_GPU
    from imkern import _arrays, _core
    from imkern.nn import functional as F

    if not _core.cuda_built or HAS_GPU:
        pytest.skip("needs a CUDA build on a machine without a GPU")

    class _Data:
        ptr = 0x7F0000000000

    class _Device:
        id = 0

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    class FakeArr(np.ndarray):
        @property
        def data(self):
            return _Data()

        @property
        def device(self):
            return _Device()

    def fa(a):
        return (np.ascontiguousarray(a) if np.ndim(a) else np.asarray(a).copy()).view(FakeArr)

    fake = types.SimpleNamespace(
        empty=lambda shape, dtype=np.float32: fa(np.empty(shape, dtype)),
        ones=lambda shape, dtype=np.float32: fa(np.ones(shape, dtype)),
        asarray=lambda a, dtype=None: fa(np.asarray(a, dtype)),
        ascontiguousarray=lambda a, dtype=None: fa(np.ascontiguousarray(a, dtype)),
        copyto=np.copyto, may_share_memory=np.may_share_memory,
        int64=np.int64, float32=np.float32)
    real_xp_of = _arrays.xp_of
    monkeypatch.setattr(_arrays, "xp_of", lambda kind: fake if kind == "cupy" else real_xp_of(kind))
    monkeypatch.setattr(_arrays, "is_cupy", lambda x: isinstance(x, FakeArr))
    real_kind = _arrays.array_kind
    monkeypatch.setattr(_arrays, "array_kind", lambda x, name: "cupy" if isinstance(x, FakeArr) else real_kind(x, name))

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
             "cuda_linear", "cuda_linear_backward", "cuda_max_pool2d", "cuda_max_pool2d_backward",
             "cuda_softmax"]  # the nn ops' CUDA bindings
    for n in names:
        monkeypatch.setattr(_core, n, wrap(n, getattr(_core, n)))

    f32 = np.float32
    rnd = np.random.default_rng(0)
    x = fa(rnd.random((2, 4, 9, 9), dtype=f32))
    w = fa(rnd.random((6, 2, 3, 3), dtype=f32))
    assert F.conv2d(x, w, fa(np.ones(6, f32)), 1, 1, 1, 2, activation="relu").shape == (2, 6, 9, 9)
    gi, gw, gb = F.conv2d_backward(fa(np.ones((2, 6, 9, 9), f32)), x, w, 1, 1, 1, 2)
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (6,)
    xl, wl = fa(rnd.random((5, 7), dtype=f32)), fa(rnd.random((3, 7), dtype=f32))
    assert F.linear(xl, wl, fa(np.ones(3, f32))).shape == (5, 3)
    assert [a.shape for a in F.linear_backward(fa(np.ones((5, 3), f32)), xl, wl)] == [(5, 7), (3, 7), (3,)]
    o, ind = F.max_pool2d(x, 2, return_indices=True)
    ind[...] = 0
    F.max_pool2d_backward(fa(np.ones(o.shape, f32)), ind, x.shape)
    o = F.avg_pool2d(x, 2)
    F.avg_pool2d_backward(fa(np.ones(o.shape, f32)), x.shape, 2)
    o = F.adaptive_avg_pool2d(x, (4, 4))
    F.adaptive_avg_pool2d_backward(fa(np.ones(o.shape, f32)), x.shape)
    for nm in ("relu", "leaky_relu", "sigmoid", "tanh", "gelu"):
        getattr(F, nm)(x)
        getattr(F, nm + "_backward")(x, x, x)
    F.log_softmax(x, 1)
    lg, t = fa(rnd.random((4, 5), dtype=f32)), fa(np.array([0, 1, 2, -100]))
    for red in ("none", "mean", "sum"):
        assert F.cross_entropy(lg, t, reduction=red, label_smoothing=0.1).shape == ((4,) if red == "none" else ())
        assert F.cross_entropy_backward(lg, t, reduction=red, label_smoothing=0.1).shape == lg.shape
    rm, rv = fa(np.zeros(4, f32)), fa(np.ones(4, f32))
    F.batch_norm2d(x, fa(np.ones(4, f32)), fa(np.zeros(4, f32)), rm, rv, training=True)
    r = F.batch_norm2d_backward(x, x, fa(np.ones(4, f32)), rm, rv, training=False)
    assert [a.shape for a in r] == [x.shape, (4,), (4,)]
    F.dropout(x, 0.5, seed=2 ** 64 + 5)
    assert called == set(names), set(names) - called


# ---- CUDA reduction order (issue 9, item 2 on CUDA) -----------------------------------------------
# The order in which csrc/cuda/nn/channel_reduce.cuh (per-channel statistics of batch norm, the
# conv2d / linear bias gradients) and the average pools of pool2d.cu add their elements,
# replayed in NumPy with the kernels' accumulator types: each thread's run in order, the
# warp butterfly (__shfl_xor 16, 8, 4, 2, 1), the block tree over the 8 warp sums, then the
# chunk partials in order. float32 accumulators (the kernels before this fix) drift with the
# length; float64 ones (now) stay within a float32 ulp of the exact sum.
_KT = 256  # kThreads


def _block_tree(v, acc):
    """common.cuh block_sum over the threads' values v[..., 256] (the last axis), in acc."""
    v = v.astype(acc)
    w = v.reshape(v.shape[:-1] + (_KT // 32, 32))
    for o in (16, 8, 4, 2, 1):
        w = w + w[..., np.arange(32) ^ o]  # lane i adds lane i ^ o (commutative: same in both lanes)
    t = np.zeros(v.shape[:-1] + (32,), acc)
    t[..., : _KT // 32] = w[..., 0]
    for o in (16, 8, 4, 2, 1):
        t = t + t[..., np.arange(32) ^ o]
    return t[..., 0]


def _thread_runs(x, acc):
    """Thread t adds elements t, t + 256, ... of x[..., L] in order (rows of a C-contiguous view)."""
    L = x.shape[-1]
    steps = _cdiv(max(L, 1), _KT)
    pad = np.zeros(x.shape[:-1] + (steps * _KT,), acc)
    pad[..., :L] = x
    runs = np.cumsum(pad.reshape(x.shape[:-1] + (steps, _KT)), axis=-2, dtype=acc)  # sequential
    return runs[..., -1, :]


def _emulate_channel_sum(x, acc):
    """channel_reduce.cuh over one channel's len = N * HW elements (the hw < 64 path: element e of
    chunk p goes to thread (e - beg) % 256; the row path assigns the same elements to threads in
    an order that differs only at row ends). Returns the float32 result and the partial count."""
    n = x.size
    parts = min(max(_cdiv(n, 8192), 1), 1024)
    chunk = max(_cdiv(n, parts), 1)
    partials = np.zeros(parts, np.float32)
    for p in range(parts):
        seg = x[p * chunk: min(p * chunk + chunk, n)].astype(acc)
        partials[p] = np.float32(_block_tree(_thread_runs(seg, acc), acc))  # stored as float
    total = np.cumsum(partials.astype(acc), dtype=acc)[-1]  # stage 2: one thread, chunk order
    return np.float32(total), parts


@pytest.mark.parametrize("n", [100, 8192 * 3 + 17, 2**22 + 5, 2**24])
def test_emulated_channel_reduce_order(rng, n):
    for const, x in ((True, np.full(n, 0.1, np.float32)), (False, rng.standard_normal(n).astype(np.float32) + 3)):
        exact = x.astype(np.float64).sum()
        got, parts = _emulate_channel_sum(x, np.float64)
        assert abs(got - exact) <= 2 * np.spacing(np.float32(abs(exact))), (n, got, exact)
        if n >= 2**22 and const:
            # The float32 accumulators of the kernels before: a run of n / (256 parts) elements
            # per thread, then up to 1024 partials in a row; on a constant the rounding errors
            # all have one sign and add up.
            old, _ = _emulate_channel_sum(x, np.float32)
            assert abs(old - exact) > 2 * np.spacing(np.float32(abs(exact))), (n, old, exact)


def _avg_win(H, W, OH, OW, k, s, p, include_pad, idx):
    """pool2d.cu avg_win, line by line."""
    ow, t = idx % OW, idx // OW
    oh, plane = t % OH, t // OH
    hs, ws = oh * s[0] - p[0], ow * s[1] - p[1]
    he, we = min(hs + k[0], H + p[0]), min(ws + k[1], W + p[1])
    pool = (he - hs) * (we - ws)
    hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
    return plane, hs, he, ws, we, (pool if include_pad else (he - hs) * (we - ws))


def _adaptive_win(H, W, OH, OW, idx):
    """pool2d.cu adaptive_win, line by line."""
    ow, t = idx % OW, idx // OW
    oh, plane = t % OH, t // OH
    hs, he = (oh * H) // OH, _cdiv((oh + 1) * H, OH)
    ws, we = (ow * W) // OW, _cdiv((ow + 1) * W, OW)
    return plane, hs, he, ws, we, (he - hs) * (we - ws)


def _emulate_avg(x, OH, OW, win, window):
    """launch_avg: the per-thread kernel (float up to 64 elements, else double) or, from 4096
    elements, the block kernel (row-major elements strided over 256 threads, double tree)."""
    planes, H, W = x.shape
    y = np.empty(planes * OH * OW, np.float32)
    for idx in range(y.size):
        plane, hs, he, ws, we, div = win(idx)
        if hs >= he or ws >= we:
            y[idx] = 0
            continue
        vals = x[plane, hs:he, ws:we].ravel()  # row-major, as both kernels walk the window
        if window >= 4096:
            s = _block_tree(_thread_runs(vals, np.float64), np.float64)
            y[idx] = np.float32(s / np.float64(div))
        else:
            acc = np.float64 if window > 64 else np.float32
            y[idx] = np.float32(np.cumsum(vals.astype(acc), dtype=acc)[-1] / acc(div))
    return y.reshape(planes, OH, OW)


@pytest.mark.parametrize("cfg", [((9, 11), (3, 2), (2, 1), (1, 0), False, True),
                                 ((13, 8), (5, 3), (3, 2), (2, 1), True, False),
                                 ((7, 7), (2, 2), (2, 2), (1, 1), True, True),
                                 ((20, 19), (9, 9), (4, 5), (4, 3), False, False)])
def test_emulated_avg_pool_windows(rng, cfg):
    """avg_win's ranges and divisors against the CPU kernel (torch's semantics)."""
    from imkern.nn import functional as F

    (H, W), k, s, p, ceil, cip = cfg
    x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
    OH, OW = _pool_out(H, k[0], s[0], p[0], 1, ceil), _pool_out(W, k[1], s[1], p[1], 1, ceil)
    want = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
    got = _emulate_avg(x.reshape(6, H, W), OH, OW, lambda i: _avg_win(H, W, OH, OW, k, s, p, cip, i), k[0] * k[1])
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6, atol=1e-6)


def test_emulated_adaptive_pool_windows_and_accuracy(rng):
    """adaptive_win and the launcher's largest-bin bound; a constant 0.1 plane pools to 0.1 within
    an ulp through the block kernel (the float per-thread sum gave 0.0960 at 2048^2)."""
    from imkern.nn import functional as F

    for H, W, OH, OW in ((10, 7, 3, 4), (9, 9, 9, 9), (17, 5, 4, 5), (5, 6, 7, 8), (64, 80, 3, 1)):
        bins = [_adaptive_win(H, W, OH, OW, i) for i in range(OH * OW)]
        bound = (_cdiv(H, OH) + 1) * (_cdiv(W, OW) + 1)  # adaptive_avg_pool2d_cuda's window
        assert max(b[5] for b in bins) <= bound
        x = rng.standard_normal((1, 1, H, W)).astype(np.float32)
        got = _emulate_avg(x[0], OH, OW, lambda i, H=H, W=W, OH=OH, OW=OW: _adaptive_win(H, W, OH, OW, i), bound)
        np.testing.assert_allclose(got[None], F.adaptive_avg_pool2d(x, (OH, OW)), rtol=1e-6, atol=1e-6)
    n = 2048
    x = np.full((1, n, n), 0.1, np.float32)
    got = _emulate_avg(x, 1, 1, lambda i: _adaptive_win(n, n, 1, 1, i), (n + 1) ** 2)
    assert abs(float(got[0, 0, 0]) - 0.1) <= np.spacing(np.float32(0.1))
    old = np.cumsum(x.ravel(), dtype=np.float32)[-1] / np.float32(n * n)  # one thread, float: before
    assert abs(float(old) - 0.1) > 1e-3
