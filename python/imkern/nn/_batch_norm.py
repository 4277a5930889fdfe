"""Batch normalization over ``(N, C, H, W)``, as torch.nn.functional.batch_norm.

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

__all__ = ['batch_norm', 'batch_norm2d', 'batch_norm2d_backward']


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


def _f32(a):
    """A CUDA per-channel parameter as the float32 C-contiguous vector the launchers read."""
    if a is None:
        return None
    return A.xp_of("cupy").ascontiguousarray(a.astype(np.float32, copy=False).reshape(-1))


def _stat_buffer(a):
    """(float32 C-contiguous array the CUDA launcher updates, write-back needed?) for a running stat."""
    if a is None:
        return None, False
    if a.dtype == np.float32 and a.flags.c_contiguous and a.ndim == 1:
        return a, False
    return A.xp_of("cupy").ascontiguousarray(a.astype(np.float32).reshape(-1)), True


def _f64(v, c, default):
    if v is None:
        return np.full(c, default, dtype=np.float64)
    return np.asarray(v, dtype=np.float64)


@K.torch_names(input="x")
def batch_norm2d(x, weight, bias, running_mean, running_var, *, training=False, momentum=0.1, eps=1e-5,
                 out=None):
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
    training = K.as_bool(training, "training")
    if momentum is None:
        raise ValueError("momentum: None (cumulative moving average) is not supported; give a number")
    momentum = K.as_finite(momentum, "momentum")
    eps = K.as_finite(eps, "eps")
    if eps < 0:
        raise ValueError(f"eps: expected a non-negative number, got {eps!r}")
    n, c, h, w_ = (int(v) for v in x.shape)
    weight = _param(weight, "weight", kind, c)
    bias = _param(bias, "bias", kind, c)
    # Eval mode only reads the running statistics: read-only arrays are fine there.
    running_mean = _param(running_mean, "running_mean", kind, c, writable=training)
    running_var = _param(running_var, "running_var", kind, c, writable=training)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean, running_var: required when training=False")
    m = n * h * w_
    if training and m == 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got shape {tuple(x.shape)}")
    target, final = D.output(out, [x, weight, bias, running_mean, running_var], kind, dt, x.shape)
    if x.size == 0:
        return final
    xc = D.contiguous(x, kind)
    if kind == "cupy":
        # One fused launcher: statistics, normalization and the running update on the GPU, in
        # float32 parameters (copies when the caller's are another dtype or layout).
        w, b = _f32(weight), _f32(bias)
        rm, rm_back = _stat_buffer(running_mean)
        rv, rv_back = _stat_buffer(running_var)

        def cuda(stream):
            _core.cuda_batch_norm2d(A.DTYPE_CODES[dt], n, c, h * w_, D.ptr(xc), D.ptr(w), D.ptr(b), D.ptr(rm),
                                    D.ptr(rv), training, momentum, eps, D.ptr(target), stream)
            if training:
                if rm_back:
                    running_mean[...] = rm.reshape(running_mean.shape).astype(running_mean.dtype)
                if rv_back:
                    running_var[...] = rv.reshape(running_var.shape).astype(running_var.dtype)

        D.launch(kind, xc, None, cuda)
        return D.finish(target, final)
    if training:
        mean, var = _core.batch_norm_stats(xc)
    else:
        mean, var = _f64(running_mean, c, 0.0), _f64(running_var, c, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        invstd = 1.0 / np.sqrt(var + eps)
    scale = _f64(weight, c, 1.0) * invstd
    _core.batch_norm_apply(xc, target, mean, scale, _f64(bias, c, 0.0))
    if training:
        if running_mean is not None:
            running_mean[...] = momentum * mean + (1.0 - momentum) * _f64(running_mean, c, 0.0)
        if running_var is not None:
            running_var[...] = momentum * (var * (m / (m - 1))) + (1.0 - momentum) * _f64(running_var, c, 1.0)
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
    training = K.as_bool(training, "training")
    eps = K.as_finite(eps, "eps")
    if eps < 0:
        raise ValueError(f"eps: expected a non-negative number, got {eps!r}")
    n, c, h, w = (int(v) for v in x.shape)
    weight = _param(weight, "weight", kind, c)
    running_mean = _param(running_mean, "running_mean", kind, c)
    running_var = _param(running_var, "running_var", kind, c)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean, running_var: required when training=False")
    m = n * h * w
    if training and m == 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got shape {tuple(x.shape)}")
    if kind == "cupy":
        gc, xc = D.contiguous(grad_output, kind), D.contiguous(x, kind)
        w32, rm, rv = _f32(weight), _f32(running_mean), _f32(running_var)
        gi = D.empty(kind, xc, x.shape, dt)
        gw = D.empty(kind, xc, (c,), np.float32)
        gb = D.empty(kind, xc, (c,), np.float32)

        def cuda(stream):
            if c:
                _core.cuda_batch_norm2d_backward(A.DTYPE_CODES[dt], n, c, h * w, D.ptr(gc), D.ptr(xc), D.ptr(w32),
                                                 D.ptr(rm), D.ptr(rv), training, eps, D.ptr(gi), D.ptr(gw), D.ptr(gb),
                                                 stream)

        D.launch(kind, xc, None, cuda)
        pdt = weight.dtype if weight is not None else x.dtype
        with xc.device:
            return gi, gw.astype(pdt, copy=False), gb.astype(pdt, copy=False)
    gi = np.empty(x.shape, dtype=dt)
    if m == 0:
        return gi, np.zeros(c, dt), np.zeros(c, dt)
    gc, xc = D.contiguous(grad_output, kind), D.contiguous(x, kind)
    if training:
        mean, var = _core.batch_norm_stats(xc)
    else:
        mean, var = _f64(running_mean, c, 0.0), _f64(running_var, c, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        invstd = 1.0 / np.sqrt(var + eps)
    sum_g, sum_gx = _core.batch_norm_backward_reduce(gc, xc, mean)
    k = _f64(weight, c, 1.0) * invstd
    if training:
        mgy = sum_g / m
        q = invstd * invstd * sum_gx / m
    else:
        mgy = np.zeros(c)
        q = np.zeros(c)
    _core.batch_norm_backward_input(gc, xc, gi, k, mgy, mean, q)
    return gi, (sum_gx * invstd).astype(dt), sum_g.astype(dt)


@K.torch_names(input="x")
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5, *,
               out=None):
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
