"""CUDA back end of :mod:`imkern.nn.functional` (CuPy arrays).

The public functions (``_conv.py``, ``_pool.py``, ``_act.py``, ``_norm.py``) validate their
inputs and call these with already-normalized arguments:

* arrays are C-contiguous CuPy arrays (NCHW), dtype float32, float16 or bfloat16 (when CuPy
  exposes it), all on one device; sums accumulate in float32;
* pairs are ``(h, w)`` tuples of ints; conv padding is ``(top, bottom, left, right)``;
* ``out`` arrays are preallocated with the right shape and dtype.

Every function launches on the current CuPy stream of the array's device (under a device
guard, ``imkern._arrays.cuda_launch``) and returns without synchronizing. Results are
deterministic: reductions run in a fixed order that depends on the sizes only (the one
exception, :func:`max_pool2d_backward` without the window parameters, is documented there).

float32 GEMMs and convolutions use TF32 tensor cores while :func:`get_allow_tf32` is True (the
default, like ``torch.backends.cudnn.allow_tf32``); ``set_allow_tf32(False)`` selects exact
float32 FMA. float16 and bfloat16 always use tensor cores with float32 accumulation.

This module imports without CuPy and without a CUDA build; CuPy is imported on first use.
"""
from __future__ import annotations

import math
import threading
from typing import Optional, Sequence, Tuple

import numpy as np

from .. import _arrays, _core

__all__ = [
    "set_allow_tf32", "get_allow_tf32",
    "conv2d", "conv2d_backward", "linear", "linear_backward", "matmul",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "activation", "activation_backward", "softmax", "cross_entropy", "cross_entropy_backward",
    "batch_norm2d", "batch_norm2d_backward", "dropout",
]

_lock = threading.Lock()
_allow_tf32 = True


def set_allow_tf32(flag: bool) -> None:
    """Allow (True, default) or forbid TF32 tensor cores for float32 conv2d/linear/matmul."""
    global _allow_tf32
    with _lock:
        _allow_tf32 = bool(flag)


def get_allow_tf32() -> bool:
    return _allow_tf32


# dtype codes of csrc/include/imkern/common.hpp (DType)
_F32, _F16, _BF16 = 2, 4, 5
_ACTIVATIONS = {"relu": 0, "leaky_relu": 1, "sigmoid": 2, "tanh": 3, "gelu": 4}
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _cupy():
    import cupy

    return cupy


def _code(a) -> int:
    dt = np.dtype(a.dtype)
    if dt == np.float32:
        return _F32
    if dt == np.float16:
        return _F16
    if dt.name == "bfloat16":
        return _BF16
    raise TypeError(f"expected a float32, float16 or bfloat16 CuPy array, got dtype {dt}")


def _ptr(a) -> int:
    return 0 if a is None else int(a.data.ptr)


def _contig(a):
    """The array itself when C-contiguous, else a deliberate contiguous copy (guards callers)."""
    return a if a.flags.c_contiguous else _cupy().ascontiguousarray(a)


def _pair(v, name: str) -> Tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _pool_padding(v) -> Tuple[int, int]:
    """(ph, pw) from a pair, an int, or (top, bottom, left, right) with top == bottom, left == right."""
    if isinstance(v, (tuple, list)) and len(v) == 4:
        if v[0] != v[1] or v[2] != v[3]:
            raise ValueError(f"padding: pooling takes symmetric padding, got {tuple(v)}")
        return int(v[0]), int(v[2])
    return _pair(v, "padding")


def _prod(seq: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in seq))


# ---- GEMM / linear -------------------------------------------------------------------------
def _gemm(a, b, c, M, N, K, lda, trans_a, ldb, trans_b, ldc, bias=None, bias_mode=0, relu=False) -> None:
    if M == 0 or N == 0:
        return
    with _arrays.cuda_launch(c) as stream:
        _core.cuda_gemm(_code(c), M, N, K, _ptr(a), lda, trans_a, _ptr(b), ldb, trans_b, _ptr(c), ldc,
                        _ptr(bias), bias_mode, relu, _allow_tf32, stream)


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays (M, K) x (K, N) of one dtype; returns ``out`` (M, N)."""
    a, b = _contig(a), _contig(b)
    M, K = a.shape
    K2, N = b.shape
    if K2 != K:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    if out is None:
        with a.device:
            out = _cupy().empty((M, N), dtype=a.dtype)
    _gemm(a, b, out, M, N, K, K, False, N, False, N)
    return out


def linear(x, weight, bias, out) -> None:
    """``out = x @ weight.T + bias``; x (M, in) (or (..., in)), weight (out, in), bias (out,) or None."""
    x, weight = _contig(x), _contig(weight)
    fo, fi = weight.shape
    M = _prod(x.shape[:-1])
    _gemm(x, weight, out, M, fo, fi, fi, False, fi, True, fo, bias=None if bias is None else _contig(bias),
          bias_mode=0 if bias is None else 2)


def linear_backward(grad_output, x, weight):
    """Gradients of :func:`linear`: (grad_input like x, grad_weight like weight, grad_bias (out,))."""
    cp = _cupy()
    go, x, weight = _contig(grad_output), _contig(x), _contig(weight)
    fo, fi = weight.shape
    M = _prod(x.shape[:-1])
    with x.device:
        gi = cp.empty(x.shape, dtype=x.dtype)
        gw = cp.empty(weight.shape, dtype=weight.dtype)
        gb = cp.empty((fo,), dtype=go.dtype)
    # grad_input (M, in) = go (M, out) @ W (out, in)
    _gemm(go, weight, gi, M, fi, fo, fo, False, fi, False, fi)
    # grad_weight (out, in) = go^T (out, M) @ x (M, in); split-K over M, deterministic
    _gemm(go, x, gw, fo, fi, M, fo, True, fi, False, fi)
    if fo:
        with _arrays.cuda_launch(go) as stream:
            _core.cuda_channel_sum(_code(go), M, fo, 1, _ptr(go), _ptr(gb), stream)
    return gi, gw, gb


# ---- conv2d --------------------------------------------------------------------------------
def _conv_shape(x_shape, w_shape, out_hw, stride, padding, dilation, groups):
    N, C, H, W = (int(v) for v in x_shape)
    K, _, R, S = (int(v) for v in w_shape)
    OH, OW = (int(v) for v in out_hw)
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        pt, pl = int(padding[0]), int(padding[2])
    else:
        pt, pl = _pair(padding, "padding")
    return (N, C, H, W, K, R, S, OH, OW, sh, sw, pt, pl, dh, dw, int(groups))


def conv2d(x, weight, bias, stride, padding, dilation, groups, activation, out) -> None:
    """Implicit-GEMM conv2d into ``out`` (N, K, OH, OW); activation None or "relu" is fused."""
    if activation not in (None, "relu"):
        raise ValueError(f"conv2d: fused activation must be None or 'relu', got {activation!r}")
    x, weight = _contig(x), _contig(weight)
    shape = _conv_shape(x.shape, weight.shape, out.shape[2:], stride, padding, dilation, groups)
    if out.size == 0:
        return
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_conv2d(_code(x), shape, _ptr(x), _ptr(weight), _ptr(None if bias is None else _contig(bias)),
                          activation == "relu", _ptr(out), _allow_tf32, stream)


def conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups):
    """(grad_input (N, C, H, W), grad_weight (K, C/groups, R, S), grad_bias (K,)) of :func:`conv2d`
    (without a fused activation: pass the gradient through the activation first)."""
    cp = _cupy()
    go, x, weight = _contig(grad_output), _contig(x), _contig(weight)
    shape = _conv_shape(x.shape, weight.shape, go.shape[2:], stride, padding, dilation, groups)
    N, K = shape[0], shape[4]
    with x.device:
        gi = cp.empty(x.shape, dtype=x.dtype)
        gw = cp.empty(weight.shape, dtype=weight.dtype)
        gb = cp.empty((K,), dtype=go.dtype)
    code = _code(x)
    with _arrays.cuda_launch(x) as stream:
        if gi.size:
            _core.cuda_conv2d_backward_data(code, shape, _ptr(go), _ptr(weight), _ptr(gi), _allow_tf32, stream)
        if gw.size:
            _core.cuda_conv2d_backward_weight(code, shape, _ptr(go), _ptr(x), _ptr(gw), _allow_tf32, stream)
        if K:
            _core.cuda_channel_sum(code, N, K, _prod(go.shape[2:]), _ptr(go), _ptr(gb), stream)
    return gi, gw, gb


# ---- pooling -------------------------------------------------------------------------------
def _pool_shape(in_shape, out_hw, kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    N, C, H, W = (int(v) for v in in_shape)
    OH, OW = (int(v) for v in out_hw)
    kh, kw = _pair(kernel, "kernel_size")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pool_padding(padding)
    dh, dw = _pair(dilation, "dilation")
    return (N * C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw)


def max_pool2d(x, kernel, stride, padding, dilation, out, indices) -> None:
    """Max pooling into ``out`` (N, C, OH, OW) and, when given, ``indices`` (int64, torch's flat
    index ``ih * W + iw`` within each plane). NaN propagates; an all -inf window gives -inf."""
    x = _contig(x)
    shape = _pool_shape(x.shape, out.shape[2:], kernel, stride, padding, dilation)
    if out.size == 0:
        return
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_max_pool2d(_code(x), shape, _ptr(x), _ptr(out), _ptr(indices), stream)


def max_pool2d_backward(grad_output, indices, input_shape, kernel=None, stride=None, padding=None, dilation=None):
    """grad_input (input_shape) of :func:`max_pool2d` from its indices.

    With ``kernel`` (and stride, padding, dilation) given, each input pixel gathers the
    gradients of the windows that can contain it. Without them, one thread per (n, c) plane
    scatters that plane's gradients in output order. Both are deterministic (no atomics).
    """
    cp = _cupy()
    go, indices = _contig(grad_output), _contig(indices)
    with go.device:
        gi = cp.empty(tuple(int(v) for v in input_shape), dtype=go.dtype)
    if gi.size == 0:
        return gi
    with_window = kernel is not None
    if with_window:
        stride = kernel if stride is None else stride
        shape = _pool_shape(gi.shape, go.shape[2:], kernel, stride, padding or 0, dilation or 1)
    else:
        shape = _pool_shape(gi.shape, go.shape[2:])
    with _arrays.cuda_launch(go) as stream:
        _core.cuda_max_pool2d_backward(_code(go), shape, with_window, _ptr(go), _ptr(indices), _ptr(gi), stream)
    return gi


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, out) -> None:
    """Average pooling into ``out``; ``ceil_mode`` only decides OH/OW (already in out.shape), the
    divisor never counts the part of a window past the padded input (torch)."""
    x = _contig(x)
    shape = _pool_shape(x.shape, out.shape[2:], kernel, stride, padding)
    if out.size == 0:
        return
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_avg_pool2d(_code(x), shape, bool(count_include_pad), _ptr(x), _ptr(out), stream)


def avg_pool2d_backward(grad_output, input_shape, kernel, stride, padding, ceil_mode, count_include_pad):
    cp = _cupy()
    go = _contig(grad_output)
    with go.device:
        gi = cp.empty(tuple(int(v) for v in input_shape), dtype=go.dtype)
    if gi.size == 0:
        return gi
    shape = _pool_shape(gi.shape, go.shape[2:], kernel, stride, padding)
    with _arrays.cuda_launch(go) as stream:
        _core.cuda_avg_pool2d_backward(_code(go), shape, bool(count_include_pad), _ptr(go), _ptr(gi), stream)
    return gi


def adaptive_avg_pool2d(x, out) -> None:
    x = _contig(x)
    shape = _pool_shape(x.shape, out.shape[2:])
    if out.size == 0:
        return
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_adaptive_avg_pool2d(_code(x), shape, _ptr(x), _ptr(out), stream)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    cp = _cupy()
    go = _contig(grad_output)
    with go.device:
        gi = cp.empty(tuple(int(v) for v in input_shape), dtype=go.dtype)
    if gi.size == 0:
        return gi
    shape = _pool_shape(gi.shape, go.shape[2:])
    if go.size == 0:
        gi.fill(0)
        return gi
    with _arrays.cuda_launch(go) as stream:
        _core.cuda_adaptive_avg_pool2d_backward(_code(go), shape, _ptr(go), _ptr(gi), stream)
    return gi


# ---- activations, softmax, cross entropy -----------------------------------------------------
def _act_code(name: str) -> int:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {name!r}") from None


def activation(name, x, out, negative_slope=0.01) -> None:
    """Element-wise relu, leaky_relu, sigmoid, tanh or gelu (exact erf) into ``out``."""
    code = _act_code(name)
    x = _contig(x)
    if x.size == 0:
        return
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_activation(_code(x), code, x.size, _ptr(x), _ptr(out), float(negative_slope), stream)


def activation_backward(name, grad_output, x, y, out, negative_slope=0.01) -> None:
    """``out = grad_output * f'(.)``; relu/leaky_relu/gelu use ``x``, sigmoid/tanh use ``y`` when
    given (either may be None when the other suffices)."""
    code = _act_code(name)
    go = _contig(grad_output)
    x = None if x is None else _contig(x)
    y = None if y is None else _contig(y)
    if go.size == 0:
        return
    with _arrays.cuda_launch(go) as stream:
        _core.cuda_activation_backward(_code(go), code, go.size, _ptr(go), _ptr(x), _ptr(y), _ptr(out),
                                       float(negative_slope), stream)


def _axis_split(shape, axis: int):
    return _prod(shape[:axis]), int(shape[axis]), _prod(shape[axis + 1:])


def softmax(x, axis, log, out) -> None:
    """softmax (or log_softmax with ``log``) of ``x`` along ``axis`` (a non-negative int) into ``out``."""
    x = _contig(x)
    if x.size == 0:
        return
    outer, length, inner = _axis_split(x.shape, int(axis))
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_softmax(_code(x), outer, length, inner, _ptr(x), _ptr(out), bool(log), stream)


def _ce_dims(logits, target):
    if logits.ndim == 1:  # unbatched (C,) with a 0-d target
        return 1, int(logits.shape[0]), 1
    return int(logits.shape[0]), int(logits.shape[1]), _prod(logits.shape[2:])


def _reduction_code(reduction: str) -> int:
    try:
        return _REDUCTIONS[reduction]
    except KeyError:
        raise ValueError(f"reduction: expected 'none', 'mean' or 'sum', got {reduction!r}") from None


def cross_entropy(logits, target, reduction="mean", label_smoothing=0.0, ignore_index=-100):
    """torch.nn.functional.cross_entropy on class indices: logits (N, C) or (N, C, d1, ...),
    target int64 (N,) or (N, d1, ...). Returns a 0-d array for "mean"/"sum" (the mean over
    non-ignored samples; NaN when all are ignored) or the per-sample losses for "none"."""
    cp = _cupy()
    red = _reduction_code(reduction)
    logits = _contig(logits)
    target = _contig(target.astype(cp.int64, copy=False))
    n, c, inner = _ce_dims(logits, target)
    with logits.device:
        loss = cp.empty(tuple(target.shape) if red == 0 else (), dtype=logits.dtype)
    if red == 0 and loss.size == 0:
        return loss
    with _arrays.cuda_launch(logits) as stream:
        _core.cuda_cross_entropy(_code(logits), n, c, inner, _ptr(logits), _ptr(target), red,
                                 float(label_smoothing), int(ignore_index), _ptr(loss), stream)
    return loss


def cross_entropy_backward(logits, target, reduction="mean", label_smoothing=0.0, ignore_index=-100,
                           grad_output=None):
    """Gradient of :func:`cross_entropy` with respect to the logits (shape and dtype of logits).

    ``grad_output``: the upstream gradient of the loss: None (1), a number or 0-d array for
    "mean"/"sum", an array of the per-sample loss shape for "none".
    """
    cp = _cupy()
    red = _reduction_code(reduction)
    logits = _contig(logits)
    target = _contig(target.astype(cp.int64, copy=False))
    n, c, inner = _ce_dims(logits, target)
    with logits.device:
        gl = cp.empty(logits.shape, dtype=logits.dtype)
        if gl.size == 0:
            return gl
        if grad_output is None:
            g = cp.ones((n * inner if red == 0 else 1,), dtype=cp.float32)
        else:
            g = cp.asarray(grad_output, dtype=cp.float32).reshape(-1)
            g = cp.ascontiguousarray(g)
            want = n * inner if red == 0 else 1
            if g.size != want:
                raise ValueError(f"grad_output: expected {want} values for reduction {reduction!r}, got {g.size}")
    with _arrays.cuda_launch(logits) as stream:
        _core.cuda_cross_entropy_backward(_code(logits), n, c, inner, _ptr(logits), _ptr(target), red,
                                          float(label_smoothing), int(ignore_index), _ptr(g), _ptr(gl), stream)
    return gl


# ---- batch norm, dropout ---------------------------------------------------------------------
def _f32(a):
    if a is None:
        return None
    cp = _cupy()
    return cp.ascontiguousarray(a.astype(cp.float32, copy=False).reshape(-1))


def _stat_buffer(a):
    """(float32 C-contiguous array the kernel updates, write-back needed?) for a running stat."""
    cp = _cupy()
    if a is None:
        return None, False
    if a.dtype == cp.float32 and a.flags.c_contiguous and a.ndim == 1:
        return a, False
    return cp.ascontiguousarray(a.astype(cp.float32).reshape(-1)), True


def batch_norm2d(x, weight, bias, running_mean, running_var, training, momentum, eps, out) -> None:
    """Batch normalization over (N, H, W) per channel into ``out``; in training mode the batch
    statistics normalize and the running stats (when given) are updated in place:
    ``r = (1 - momentum) * r + momentum * stat`` with the unbiased variance."""
    if momentum is None:
        raise ValueError("batch_norm2d: momentum=None (cumulative average) is not supported on CUDA")
    x = _contig(x)
    n, c = int(x.shape[0]), int(x.shape[1])
    hw = _prod(x.shape[2:])
    if x.size == 0:
        return
    w, b = _f32(weight), _f32(bias)
    rm, rm_back = _stat_buffer(running_mean)
    rv, rv_back = _stat_buffer(running_var)
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_batch_norm2d(_code(x), n, c, hw, _ptr(x), _ptr(w), _ptr(b), _ptr(rm), _ptr(rv), bool(training),
                                float(momentum), float(eps), _ptr(out), stream)
        if training:
            if rm_back:
                running_mean[...] = rm.reshape(running_mean.shape).astype(running_mean.dtype)
            if rv_back:
                running_var[...] = rv.reshape(running_var.shape).astype(running_var.dtype)


def batch_norm2d_backward(grad_output, x, weight, running_mean, running_var, training, eps):
    """(grad_input, grad_weight, grad_bias) of :func:`batch_norm2d`. Training mode recomputes the
    batch statistics from ``x``; evaluation mode uses the running stats. grad_weight/grad_bias
    have weight's dtype (x's when weight is None)."""
    cp = _cupy()
    go, x = _contig(grad_output), _contig(x)
    n, c = int(x.shape[0]), int(x.shape[1])
    hw = _prod(x.shape[2:])
    w = _f32(weight)
    rm = _f32(running_mean)
    rv = _f32(running_var)
    with x.device:
        gi = cp.empty(x.shape, dtype=x.dtype)
        gw = cp.empty((c,), dtype=cp.float32)
        gb = cp.empty((c,), dtype=cp.float32)
    if c:
        with _arrays.cuda_launch(x) as stream:
            _core.cuda_batch_norm2d_backward(_code(x), n, c, hw, _ptr(go), _ptr(x), _ptr(w), _ptr(rm), _ptr(rv),
                                             bool(training), float(eps), _ptr(gi), _ptr(gw), _ptr(gb), stream)
    pdt = weight.dtype if weight is not None else x.dtype
    with x.device:
        return gi, gw.astype(pdt, copy=False), gb.astype(pdt, copy=False)


def dropout(x, p, seed, out) -> None:
    """Dropout with the counter hash of docs/design.md (same mask as the CPU kernel and the
    reference for the same ``seed``): kept elements scaled by 1 / (1 - p)."""
    x = _contig(x)
    if x.size == 0:
        return
    with _arrays.cuda_launch(x) as stream:
        _core.cuda_dropout(_code(x), x.size, _ptr(x), _ptr(out), float(p), int(seed) & 0xFFFFFFFFFFFFFFFF, stream)
