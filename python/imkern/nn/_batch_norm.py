"""Batch normalization over ``(N, C, H, W)``, as torch.nn.functional.batch_norm.

Both devices run the same steps, one fused kernel each way (csrc/cpu/nn/batch_norm.cpp,
csrc/cuda/nn/batch_norm.cu): the forward computes the statistics (training) or reads the
running ones, normalizes, and updates the running statistics; the backward recomputes the
statistics, reduces sum(g) and sum(g * (x - mean)) per channel, and writes grad_input.

Training mode normalizes with the batch statistics (biased variance) and updates
``running_mean`` / ``running_var`` IN PLACE (the only inputs imkern ever modifies):
``running = (1 - momentum) * running + momentum * batch_stat``, with the unbiased variance for
``running_var``. Statistics and parameter gradients are reduced in a fixed order
(bit-identical for any thread count).
"""

from __future__ import annotations

import numpy as np

from .. import _arrays as A
from .. import _core
from .. import _driver as D
from . import _checks as K

__all__ = ["batch_norm", "batch_norm2d", "batch_norm2d_backward"]


def _param(v, name, kind, c, writable=False):
    """A per-channel vector (weight, bias, running stats): None or a float array of shape (C,)."""
    if v is None:
        return None
    k = A.array_kind(v, name)
    if k != kind:
        raise TypeError(f"{name}: expected a {kind} array like x, got a {k} array")
    A.check_dtype(v, name, kind, K.FLOAT_CPU, K.FLOAT_CUDA)
    if tuple(v.shape) != (c,):
        raise ValueError(f"{name}: expected shape ({c},) for {c} channels, got {tuple(v.shape)}")
    if writable and kind == "numpy" and not v.flags.writeable:
        raise ValueError(f"{name}: array is read-only (it is updated in place in training mode)")
    return v


# The per-channel parameter type of each device's kernel: the CPU kernel reads and updates
# float64 vectors, the CUDA launchers float32 ones (imkern/nn.hpp).
_PARAM_DTYPE = {"numpy": np.float64, "cupy": np.float32}


def _vec(a, kind):
    """A per-channel parameter as the C-contiguous vector of the device's parameter type (None stays None)."""
    if a is None:
        return None
    return A.xp_of(kind).ascontiguousarray(a.astype(_PARAM_DTYPE[kind], copy=False).reshape(-1))


def _stat_buffer(a, kind, training):
    """(vector the kernel reads and, in training mode, updates; write-back needed?) for a running stat."""
    if a is None:
        return None, False
    direct = a.dtype == _PARAM_DTYPE[kind] and a.flags.c_contiguous and a.ndim == 1
    if direct and (not training or kind == "cupy" or a.flags.writeable):
        return a, False
    return A.xp_of(kind).ascontiguousarray(a.astype(_PARAM_DTYPE[kind]).reshape(-1)), training


@K.torch_names(input="x")
def _common_args(kind, c, training, eps, weight, running_mean, running_var, *, stats_writable):
    """The arguments forward and backward share, checked once: training, eps, the (C,) weight
    and running statistics (written by a training forward, so writable there)."""
    training = K.as_bool(training, "training")
    eps = K.as_finite(eps, "eps")
    if eps < 0:
        raise ValueError(f"eps: expected a non-negative number, got {eps!r}")
    weight = _param(weight, "weight", kind, c)
    writable = stats_writable and training
    running_mean = _param(running_mean, "running_mean", kind, c, writable=writable)
    running_var = _param(running_var, "running_var", kind, c, writable=writable)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean, running_var: required when training=False")
    return training, eps, weight, running_mean, running_var


def batch_norm2d(x, weight, bias, running_mean, running_var, *, training=False, momentum=0.1, eps=1e-5, out=None):
    """Batch normalization of ``(N, C, H, W)``, as ``torch.nn.functional.batch_norm``.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel, with the batch mean and
    biased variance in training mode and the running statistics in eval mode.

    Args:
        x: ``(N, C, H, W)``; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        weight, bias: ``(C,)`` or None (1 and 0).
        running_mean, running_var: ``(C,)``; required in eval mode; in training mode updated in
            place when given (may be None). Any float dtype of the same kind as ``x``.
        training: use batch statistics and update the running ones (default False, as torch).
        momentum: weight of the batch statistic in the running update.
        eps: added to the variance.
        out: optional array of ``x``'s shape and dtype.

    Returns:
        The normalized array, ``x``'s shape and dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.array([1.0, 3.0]).reshape(2, 1, 1, 1)
        >>> rm, rv = np.zeros(1), np.ones(1)
        >>> F.batch_norm2d(x, None, None, rm, rv, training=True, eps=0.0).ravel()
        array([-1.,  1.])
        >>> rm, rv
        (array([0.2]), array([1.1]))
    """
    kind, dt = K.check_float(x, "x", ndim=(4,))
    if momentum is None:
        raise ValueError("momentum: None (cumulative moving average) is not supported; give a number")
    momentum = K.as_finite(momentum, "momentum")
    n, c, h, w_ = (int(v) for v in x.shape)
    bias = _param(bias, "bias", kind, c)
    # Eval mode only reads the running statistics: read-only arrays are fine there.
    training, eps, weight, running_mean, running_var = _common_args(
        kind, c, training, eps, weight, running_mean, running_var, stats_writable=True
    )
    m = n * h * w_
    if training and m == 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got shape {tuple(x.shape)}")
    target, final = D.output(out, [x, weight, bias, running_mean, running_var], kind, dt, x.shape)
    if x.size == 0:
        return final
    xc = D.contiguous(x, kind)
    # One fused kernel on either device: statistics (training) or the running ones, the
    # normalization, and the running update, on the device's parameter vectors (copies when
    # the caller's are another dtype or layout, written back after the update).
    w, b = _vec(weight, kind), _vec(bias, kind)
    rm, rm_back = _stat_buffer(running_mean, kind, training)
    rv, rv_back = _stat_buffer(running_var, kind, training)

    def write_back():  # the running statistics the kernel updated in a copy
        if rm_back:
            running_mean[...] = rm.reshape(running_mean.shape).astype(running_mean.dtype)
        if rv_back:
            running_var[...] = rv.reshape(running_var.shape).astype(running_var.dtype)

    def cpu():
        _core.batch_norm2d(xc, w, b, rm, rv, training, momentum, eps, target)
        write_back()

    def cuda(stream):
        _core.cuda_batch_norm2d(
            A.DTYPE_CODES[dt],
            n,
            c,
            h * w_,
            D.ptr(xc),
            D.ptr(w),
            D.ptr(b),
            D.ptr(rm),
            D.ptr(rv),
            training,
            momentum,
            eps,
            D.ptr(target),
            stream,
        )
        write_back()

    D.launch(kind, xc, cpu, cuda)
    return D.finish(target, final)


def batch_norm2d_backward(grad_output, x, weight, running_mean, running_var, *, training, eps=1e-5):
    """Gradients of :func:`batch_norm2d` with respect to x, weight and bias.

    Training mode recomputes the batch statistics from ``x``:
    ``gi = w * invstd * (g - mean(g) - (x - mean) * invstd**2 * mean(g * (x - mean)))``;
    eval mode: ``gi = w * g / sqrt(running_var + eps)``. In both,
    ``grad_weight = sum(g * (x - mean) * invstd)`` and ``grad_bias = sum(g)`` over N, H, W.

    Args:
        grad_output: ``(N, C, H, W)``, gradient with respect to the output.
        x: the forward input, same shape and dtype.
        weight: ``(C,)`` or None (ones).
        running_mean, running_var: ``(C,)``; required in eval mode, not read in training mode.
        training: as in the forward call.
        eps: as in the forward call.

    Returns:
        ``(grad_input, grad_weight, grad_bias)``: ``x``'s shape, ``(C,)``, ``(C,)``, ``x``'s dtype
        (grad_weight is returned even when ``weight`` is None).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.array([1.0, 3.0]).reshape(2, 1, 1, 1)
        >>> gi, gw, gb = F.batch_norm2d_backward(np.ones_like(x), x, None, None, None, training=True)
        >>> gi.ravel(), gb
        (array([0., 0.]), array([2.]))
    """
    kind, dt = K.check_float(grad_output, "grad_output", ndim=(4,))
    K.check_like(x, "x", kind, dt, grad_output.shape)
    n, c, h, w_ = (int(v) for v in x.shape)
    training, eps, weight, running_mean, running_var = _common_args(
        kind, c, training, eps, weight, running_mean, running_var, stats_writable=False
    )
    m = n * h * w_
    if training and m == 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got shape {tuple(x.shape)}")
    gc, xc = D.contiguous(grad_output, kind), D.contiguous(x, kind)
    w, rm, rv = _vec(weight, kind), _vec(running_mean, kind), _vec(running_var, kind)
    pdt = _PARAM_DTYPE[kind]
    gi = D.empty(kind, xc, x.shape, dt)
    gw = D.empty(kind, xc, (c,), pdt)
    gb = D.empty(kind, xc, (c,), pdt)
    # The parameter gradients come back in x's dtype on the CPU, in the weight's (else x's) on CUDA.
    rdt = dt if kind == "numpy" or weight is None else weight.dtype

    def cpu():
        _core.batch_norm2d_backward(gc, xc, w, rm, rv, training, eps, gi, gw, gb)
        return gi, gw.astype(rdt), gb.astype(rdt)

    def cuda(stream):
        if c:
            _core.cuda_batch_norm2d_backward(
                A.DTYPE_CODES[dt],
                n,
                c,
                h * w_,
                D.ptr(gc),
                D.ptr(xc),
                D.ptr(w),
                D.ptr(rm),
                D.ptr(rv),
                training,
                eps,
                D.ptr(gi),
                D.ptr(gw),
                D.ptr(gb),
                stream,
            )
        return gi, gw.astype(rdt, copy=False), gb.astype(rdt, copy=False)

    return D.launch(kind, xc, cpu, cuda)


@K.torch_names(input="x")
def batch_norm(
    x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5, *, out=None
):
    """``torch.nn.functional.batch_norm``'s argument order and defaults (``input=`` accepted),
    over ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``: :func:`batch_norm2d` on the input seen
    as ``(N, C, H, W)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.batch_norm(np.array([[1.0], [3.0]]), np.zeros(1), np.ones(1), training=True, eps=0.0).ravel()
        array([-1.,  1.])
    """
    kind, _ = K.check_float(x, "x", ndim=(2, 3, 4))
    x4 = x.reshape(tuple(x.shape) + (1,) * (4 - x.ndim))
    kw = dict(training=training, momentum=momentum, eps=eps)
    if out is None or x.ndim == 4:
        y = batch_norm2d(x4, weight, bias, running_mean, running_var, out=out, **kw)
        return y.reshape(x.shape) if out is None else out
    target, final = D.output(out, [x, weight, bias, running_mean, running_var], kind, x.dtype, x.shape)
    A.xp_of(kind).copyto(target, batch_norm2d(x4, weight, bias, running_mean, running_var, **kw).reshape(x.shape))
    return D.finish(target, final)
