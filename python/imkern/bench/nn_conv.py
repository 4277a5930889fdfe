"""Benchmark cases for conv2d and linear, one list for both devices: on the CPU against PyTorch
on the same threads, on CUDA against PyTorch (cuDNN, cuBLAS). imkern's float32 CUDA cases run
with TF32 allowed (the default, like torch's cuDNN default); the peer gets the same setting.
flops = 2 * MACs of one call."""

from __future__ import annotations

import numpy as np

from . import Case, cuda_sync, optional_import, torch_cuda, torch_synced


def _torch():
    torch = optional_import("torch")
    if torch is not None:
        import imkern

        torch.set_num_threads(imkern.get_num_threads())
    return torch


def _conv_setup(n, c, k, hw, ksize, pad, backward=False):
    def setup():
        from imkern.nn import functional as F

        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
        w = rng.standard_normal((k, c, ksize, ksize), dtype=np.float32) * 0.1
        b = rng.standard_normal((k,), dtype=np.float32)
        go = rng.standard_normal((n, k, hw, hw), dtype=np.float32)
        if backward:

            def fn():
                F.conv2d(x, w, b, padding=pad)
                return F.conv2d_backward(go, x, w, padding=pad)
        else:

            def fn():
                return F.conv2d(x, w, b, padding=pad)

        peers = {}
        torch = _torch()
        if torch is not None:
            tF = torch.nn.functional
            xt, wt, bt, got = (torch.from_numpy(a) for a in (x, w, b, go))
            if backward:
                xt.requires_grad_()
                wt.requires_grad_()
                bt.requires_grad_()

                def peer():
                    tF.conv2d(xt, wt, bt, padding=pad).backward(got)
            else:

                def peer():
                    with torch.no_grad():
                        return tF.conv2d(xt, wt, bt, padding=pad)

            peers["torch"] = peer
        return fn, peers

    return setup


def _linear_setup(m, inf, of):
    def setup():
        from imkern.nn import functional as F

        rng = np.random.default_rng(0)
        x = rng.standard_normal((m, inf), dtype=np.float32)
        w = rng.standard_normal((of, inf), dtype=np.float32)
        b = rng.standard_normal((of,), dtype=np.float32)
        peers = {}
        torch = _torch()
        if torch is not None:
            xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))

            def peer():
                with torch.no_grad():
                    return torch.nn.functional.linear(xt, wt, bt)

            peers["torch"] = peer
        return (lambda: F.linear(x, w, b)), peers

    return setup


def _conv_flops(n, c, k, hw, ksize):
    return 2 * n * k * hw * hw * c * ksize * ksize


CASES = [
    Case(
        "conv2d forward 3x3 k64 float32 32x64x56x56",
        "cpu",
        _conv_setup(32, 64, 64, 56, 3, 1),
        flops=_conv_flops(32, 64, 64, 56, 3),
        note="float32, padding 1",
    ),
    Case(
        "conv2d forward+backward 3x3 k64 float32 32x64x56x56",
        "cpu",
        _conv_setup(32, 64, 64, 56, 3, 1, backward=True),
        flops=3 * _conv_flops(32, 64, 64, 56, 3),
        note="forward + grad_input + grad_weight + grad_bias",
    ),
    Case(
        "conv2d forward 3x3 k32 float32 128x1x28x28",
        "cpu",
        _conv_setup(128, 1, 32, 28, 3, 1),
        flops=_conv_flops(128, 1, 32, 28, 3),
        # 18 FLOPs per 4-byte output: 4.5 FLOP/byte, under the machine balance, so the 12.8 MB
        # output's writes hold it (input + output + weights)
        bytes=4 * (128 * 28 * 28 + 128 * 32 * 28 * 28 + 32 * 9 + 32),
        note="first layer, C = 1",
    ),
    Case(
        "linear out4096 float32 256x4096",
        "cpu",
        _linear_setup(256, 4096, 4096),
        flops=2 * 256 * 4096 * 4096,
        note="float32 with bias",
    ),
]


# ---- CUDA ----------------------------------------------------------------------------------
def _cuda_conv_setup(N, C, K, H, W, R, pad):
    def setup():
        import cupy

        import imkern

        from ..nn import functional as F

        rng = np.random.default_rng(0)
        x = cupy.asarray(rng.standard_normal((N, C, H, W), dtype=np.float32))
        w = cupy.asarray(rng.standard_normal((K, C, R, R), dtype=np.float32) * 0.1)
        OH, OW = H + 2 * pad - R + 1, W + 2 * pad - R + 1
        out = cupy.empty((N, K, OH, OW), dtype=cupy.float32)

        def fn():
            F.conv2d(x, w, padding=pad, out=out)
            cuda_sync()

        peers = {}
        torch = torch_cuda()
        if torch is not None:
            torch.backends.cudnn.allow_tf32 = imkern.get_allow_tf32()
            torch.backends.cudnn.benchmark = True
            tx, tw = torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda")
            peers["torch cuDNN"] = torch_synced(torch, lambda: torch.nn.functional.conv2d(tx, tw, padding=pad))
        return fn, peers

    return setup


def _cuda_gemm_setup(n, dtype):
    """x (n, n) times W^T (n, n): F.linear against torch's linear (cuBLAS), one GEMM each."""

    def setup():
        import cupy

        import imkern

        from ..nn import functional as F

        rng = np.random.default_rng(0)
        a = cupy.asarray(rng.standard_normal((n, n), dtype=np.float32).astype(dtype))
        b = cupy.asarray(rng.standard_normal((n, n), dtype=np.float32).astype(dtype))
        c = cupy.empty((n, n), dtype=dtype)

        def fn():
            F.linear(a, b, out=c)
            cuda_sync()

        peers = {}
        torch = torch_cuda()
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = imkern.get_allow_tf32()
            ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
            peers["torch.matmul"] = torch_synced(torch, lambda: torch.nn.functional.linear(ta, tb))
        return fn, peers

    return setup


_N, _C, _H = 32, 64, 56
CASES += [
    Case(
        "conv2d forward 3x3 k64 float32/tf32 32x64x56x56",
        "cuda",
        _cuda_conv_setup(_N, _C, _C, _H, _H, 3, 1),
        flops=2 * _N * _C * _C * 9 * _H * _H,
        note="implicit GEMM, TF32 allowed",
    ),
    Case(
        "gemm float32/tf32 4096x4096x4096",
        "cuda",
        _cuda_gemm_setup(4096, np.float32),
        flops=2 * 4096**3,
        note="F.linear: x W^T",
    ),
    Case(
        "gemm float16 4096x4096x4096",
        "cuda",
        _cuda_gemm_setup(4096, np.float16),
        flops=2 * 4096**3,
        note="F.linear: x W^T",
    ),
]
