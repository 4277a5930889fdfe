"""Benchmark cases: the CUDA CNN kernels (imkern.nn on CuPy arrays) against PyTorch on CUDA.

Every function synchronizes before returning, so wall time is device time. imkern's float32
cases run with TF32 allowed (the default, like torch's cuDNN default); the peer gets the same
setting. flops = 2 * MACs of one call; bytes = input + output bytes (pooling).
"""
from __future__ import annotations

import numpy as np

from . import Case, optional_import


def _sync():
    import cupy

    cupy.cuda.get_current_stream().synchronize()


def _torch_cuda():
    torch = optional_import("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return torch
    except Exception:
        pass
    return None


def _torch_sync(torch, f):
    def g():
        r = f()
        torch.cuda.synchronize()
        return r

    return g


def _conv_setup(N, C, K, H, W, R, pad):
    def setup():
        import cupy

        from ..nn import _cuda

        rng = np.random.default_rng(0)
        x = cupy.asarray(rng.standard_normal((N, C, H, W), dtype=np.float32))
        w = cupy.asarray(rng.standard_normal((K, C, R, R), dtype=np.float32) * 0.1)
        OH, OW = H + 2 * pad - R + 1, W + 2 * pad - R + 1
        out = cupy.empty((N, K, OH, OW), dtype=cupy.float32)

        def fn():
            _cuda.conv2d(x, w, None, (1, 1), (pad, pad, pad, pad), (1, 1), 1, None, out)
            _sync()

        peers = {}
        torch = _torch_cuda()
        if torch is not None:
            torch.backends.cudnn.allow_tf32 = _cuda.get_allow_tf32()
            torch.backends.cudnn.benchmark = True
            tx, tw = torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda")
            peers["torch cuDNN"] = _torch_sync(torch, lambda: torch.nn.functional.conv2d(tx, tw, padding=pad))
        return fn, peers

    return setup


def _gemm_setup(n, dtype):
    def setup():
        import cupy

        from ..nn import _cuda

        rng = np.random.default_rng(0)
        a = cupy.asarray(rng.standard_normal((n, n), dtype=np.float32).astype(dtype))
        b = cupy.asarray(rng.standard_normal((n, n), dtype=np.float32).astype(dtype))
        c = cupy.empty((n, n), dtype=dtype)

        def fn():
            _cuda.matmul(a, b, out=c)
            _sync()

        peers = {}
        torch = _torch_cuda()
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = _cuda.get_allow_tf32()
            ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
            peers["torch.matmul"] = _torch_sync(torch, lambda: torch.matmul(ta, tb))
        return fn, peers

    return setup


def _maxpool_setup(shape):
    def setup():
        import cupy

        from ..nn import _cuda

        rng = np.random.default_rng(0)
        x = cupy.asarray(rng.standard_normal(shape, dtype=np.float32))
        N, C, H, W = shape
        out = cupy.empty((N, C, H // 2, W // 2), dtype=cupy.float32)

        def fn():
            _cuda.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), out, None)
            _sync()

        peers = {}
        torch = _torch_cuda()
        if torch is not None:
            tx = torch.as_tensor(x, device="cuda")
            peers["torch"] = _torch_sync(torch, lambda: torch.nn.functional.max_pool2d(tx, 2))
        return fn, peers

    return setup


_N, _C, _H = 32, 64, 56
_POOL = (32, 64, 112, 112)
CASES = [
    Case("conv2d forward 3x3 k64 float32/tf32 32x64x56x56", "cuda", _conv_setup(_N, _C, _C, _H, _H, 3, 1),
         flops=2 * _N * _C * _C * 9 * _H * _H, note="implicit GEMM, TF32 allowed"),
    Case("gemm float32/tf32 4096x4096x4096", "cuda", _gemm_setup(4096, np.float32), flops=2 * 4096 ** 3),
    Case("gemm float16 4096x4096x4096", "cuda", _gemm_setup(4096, np.float16), flops=2 * 4096 ** 3),
    Case("max_pool2d 2x2 s2 float32 32x64x112x112", "cuda", _maxpool_setup(_POOL),
         bytes=int(np.prod(_POOL)) * 4 * 5 // 4),
]
