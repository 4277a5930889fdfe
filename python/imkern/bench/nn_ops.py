"""Benchmark cases for the non-GEMM nn ops, one list for both devices, against PyTorch (on the
CPU on the same thread count; on CUDA every timed function synchronizes).

Bandwidth cases count the bytes one call must move (input read + output written), so GB/s
compares with the machine's copy bandwidth. Both sides allocate their output per call, as a
caller without ``out=`` does.
"""

from __future__ import annotations

import numpy as np

from . import Case, cuda_sync, optional_import, torch_cuda, torch_synced


def _torch():
    torch = optional_import("torch")
    if torch is not None:
        import imkern

        torch.set_num_threads(imkern.get_num_threads())
    return torch


def _unary_setup(shape, imkern_call, torch_call, low=-4.0, high=4.0):
    def setup():
        from imkern.nn import functional as F

        rng = np.random.default_rng(0)
        x = (rng.random(shape, dtype=np.float32) * (high - low) + low).astype(np.float32)
        peers = {}
        torch = _torch()
        if torch is not None:
            xt = torch.from_numpy(x)

            def peer():
                with torch.no_grad():
                    return torch_call(torch, xt)

            peers["torch"] = peer
        return (lambda: imkern_call(F, x)), peers

    return setup


def _ce_setup(n, c):
    def setup():
        from imkern.nn import functional as F

        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c), dtype=np.float32) * 3
        t = rng.integers(0, c, size=n)
        peers = {}
        torch = _torch()
        if torch is not None:
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)

            def peer():
                with torch.no_grad():
                    return torch.nn.functional.cross_entropy(xt, tt)

            peers["torch"] = peer
        return (lambda: F.cross_entropy(x, t)), peers

    return setup


def _nbytes(*shapes, itemsize=4):
    return sum(int(np.prod(s)) * itemsize for s in shapes)


_X = (32, 64, 112, 112)
_X56 = (32, 64, 56, 56)

CASES = [
    Case(
        "max_pool2d 2x2 s2 float32 32x64x112x112",
        "cpu",
        _unary_setup(_X, lambda F, x: F.max_pool2d(x, 2), lambda t, x: t.nn.functional.max_pool2d(x, 2)),
        bytes=_nbytes(_X, _X56),
        note="in + out",
    ),
    Case(
        "max_pool2d 3x3 s2 p1 float32 32x64x112x112",
        "cpu",
        _unary_setup(_X, lambda F, x: F.max_pool2d(x, 3, 2, 1), lambda t, x: t.nn.functional.max_pool2d(x, 3, 2, 1)),
        bytes=_nbytes(_X, _X56),
        note="ResNet stem pool; in + out",
    ),
    Case(
        "max_pool2d 2x2 s2 indices float32 32x64x112x112",
        "cpu",
        _unary_setup(
            _X,
            lambda F, x: F.max_pool2d(x, 2, return_indices=True),
            lambda t, x: t.nn.functional.max_pool2d(x, 2, return_indices=True),
        ),
        bytes=_nbytes(_X, _X56) + _nbytes(_X56, itemsize=8),
        note="in + out + int64 indices",
    ),
    Case(
        "avg_pool2d 2x2 s2 float32 32x64x112x112",
        "cpu",
        _unary_setup(_X, lambda F, x: F.avg_pool2d(x, 2), lambda t, x: t.nn.functional.avg_pool2d(x, 2)),
        bytes=_nbytes(_X, _X56),
        note="in + out",
    ),
    Case(
        "relu float32 32x64x112x112",
        "cpu",
        _unary_setup(_X, lambda F, x: F.relu(x), lambda t, x: t.relu(x)),
        bytes=_nbytes(_X, _X),
        note="in + out",
    ),
    Case(
        "gelu float32 32x64x56x56",
        "cpu",
        _unary_setup(_X56, lambda F, x: F.gelu(x), lambda t, x: t.nn.functional.gelu(x)),
        bytes=_nbytes(_X56, _X56),
        note="in + out",
    ),
    Case(
        # x uniform on [-8, 8]: about half the lanes beyond the central interval's |x| <= 4.2
        # (heavy-tailed pre-activations), where the float32 kernel takes its tail form
        "gelu wide float32 32x64x56x56",
        "cpu",
        _unary_setup(_X56, lambda F, x: F.gelu(x), lambda t, x: t.nn.functional.gelu(x), -8.0, 8.0),
        bytes=_nbytes(_X56, _X56),
        note="in + out; x on [-8, 8]",
    ),
    Case(
        "softmax float32 4096x1000",
        "cpu",
        _unary_setup((4096, 1000), lambda F, x: F.softmax(x, -1), lambda t, x: t.softmax(x, -1), -10, 10),
        bytes=_nbytes((4096, 1000), (4096, 1000)),
        note="in + out, last axis",
    ),
    Case(
        "softmax dim1 float32 32x64x56x56",
        "cpu",
        _unary_setup(_X56, lambda F, x: F.softmax(x, 1), lambda t, x: t.softmax(x, 1), -10, 10),
        bytes=_nbytes(_X56, _X56),
        note="in + out, channel axis",
    ),
    Case(
        "cross_entropy float32 4096x1000",
        "cpu",
        _ce_setup(4096, 1000),
        bytes=_nbytes((4096, 1000)),
        note="logits read once",
    ),
    Case(
        "batch_norm2d train float32 32x64x56x56",
        "cpu",
        _unary_setup(
            _X56,
            lambda F, x: F.batch_norm2d(x, None, None, None, None, training=True),
            lambda t, x: t.nn.functional.batch_norm(x, None, None, training=True),
        ),
        bytes=_nbytes(_X56, _X56, _X56),
        note="stats read + apply read + write",
    ),
]


# ---- CUDA ----------------------------------------------------------------------------------
def _cuda_maxpool_setup(shape):
    def setup():
        import cupy

        from ..nn import functional as F

        rng = np.random.default_rng(0)
        x = cupy.asarray(rng.standard_normal(shape, dtype=np.float32))
        N, C, H, W = shape
        out = cupy.empty((N, C, H // 2, W // 2), dtype=cupy.float32)

        def fn():
            F.max_pool2d(x, 2, out=out)
            cuda_sync()

        peers = {}
        torch = torch_cuda()
        if torch is not None:
            tx = torch.as_tensor(x, device="cuda")
            peers["torch"] = torch_synced(torch, lambda: torch.nn.functional.max_pool2d(tx, 2))
        return fn, peers

    return setup


_POOL = (32, 64, 112, 112)
CASES += [
    Case(
        "max_pool2d 2x2 s2 float32 32x64x112x112",
        "cuda",
        _cuda_maxpool_setup(_POOL),
        bytes=int(np.prod(_POOL)) * 4 * 5 // 4,
    ),
]
