"""Benchmark cases for conv2d and linear (CPU) against PyTorch on the same threads."""
from __future__ import annotations

import numpy as np

from . import Case, optional_import


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
    Case("conv2d forward 3x3 k64 float32 32x64x56x56", "cpu", _conv_setup(32, 64, 64, 56, 3, 1),
         flops=_conv_flops(32, 64, 64, 56, 3), note="float32, padding 1"),
    Case("conv2d forward+backward 3x3 k64 float32 32x64x56x56", "cpu", _conv_setup(32, 64, 64, 56, 3, 1, backward=True),
         flops=3 * _conv_flops(32, 64, 64, 56, 3), note="forward + grad_input + grad_weight + grad_bias"),
    Case("conv2d forward 3x3 k32 float32 128x1x28x28", "cpu", _conv_setup(128, 1, 32, 28, 3, 1),
         flops=_conv_flops(128, 1, 32, 28, 3), note="first layer, C = 1"),
    Case("linear out4096 float32 256x4096", "cpu", _linear_setup(256, 4096, 4096),
         flops=2 * 256 * 4096 * 4096, note="float32 with bias"),
]
