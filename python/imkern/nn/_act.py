"""Activations (relu, leaky_relu, sigmoid, tanh, gelu) with their backward passes, softmax /
log_softmax, and cross entropy with class-index targets, as torch.nn.functional.

Arrays of any shape; float32/float64 on the CPU (NumPy), float32/float16/bfloat16 on CUDA
(CuPy). Each ``<name>_backward(grad_output, x, y)`` returns ``grad_output * d<name>/dx``:
relu, leaky_relu and gelu read ``x`` (``y`` may be None), sigmoid and tanh read the forward
output ``y`` (``x`` may be None; it is then recomputed from ``x``).
"""
from __future__ import annotations

import numpy as np

from .. import _arrays as A
from .. import _core
from . import _checks as K

__all__ = [
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "relu_backward",
    "leaky_relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "gelu_backward",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "cross_entropy_backward",
]

_REDUCTIONS = ("none", "mean", "sum")


def _activation(name, x, out, slope=0.0):
    kind, dt = K.check_float(x, "x")
    target, final = K.out_for(out, [x], kind, dt, x.shape)
    if x.size:
        xc = K.contiguous(x, kind)
        if kind == "numpy":
            _core.activation(name, xc, target, slope)
        else:
            with A.cuda_launch(xc):
                K.cuda_module().activation(name, xc, target, slope)
    return K.finish(target, final)


def _activation_backward(name, grad_output, x, y, out, slope=0.0):
    kind, dt = K.check_float(grad_output, "grad_output")
    shape = tuple(grad_output.shape)
    if x is not None:
        K.check_like(x, "x", kind, dt, shape)
    if y is not None:
        K.check_like(y, "y", kind, dt, shape)
    needs_y = name in ("sigmoid", "tanh")
    if needs_y and y is None:
        if x is None:
            raise ValueError(f"{name}_backward: give x or y (the forward output)")
        y = _activation(name, x, None)
    if not needs_y and x is None:
        if name == "relu" and y is not None:
            x = y  # relu(x) > 0 exactly where x > 0
        else:
            raise ValueError(f"x: required by {name}_backward")
    target, final = K.out_for(out, [grad_output, x, y], kind, dt, shape)
    if grad_output.size:
        g = K.contiguous(grad_output, kind)
        xc = None if x is None else K.contiguous(x, kind)
        yc = None if y is None else K.contiguous(y, kind)
        if kind == "numpy":
            _core.activation_backward(name, g, xc, yc, target, slope)
        else:
            with A.cuda_launch(g):
                K.cuda_module().activation_backward(name, g, xc, yc, target, slope)
    return K.finish(target, final)


def relu(x, *, out=None):
    """``max(x, 0)`` elementwise (NaN stays NaN), as ``torch.nn.functional.relu``.

    Args:
        x: array of any shape; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        out: optional array of ``x``'s shape and dtype to write into.

    Returns:
        An array of ``x``'s shape and dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.relu(np.array([-1.0, 0.5]))
        array([0. , 0.5])
    """
    return _activation("relu", x, out)


def leaky_relu(x, negative_slope=0.01, *, out=None):
    """``x if x > 0 else negative_slope * x``, as ``torch.nn.functional.leaky_relu``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.leaky_relu(np.array([-2.0, 3.0]), 0.1)
        array([-0.2,  3. ])
    """
    return _activation("leaky_relu", x, out, K.as_finite(negative_slope, "negative_slope"))


def sigmoid(x, *, out=None):
    """``1 / (1 + exp(-x))``, as ``torch.sigmoid`` (float32: a vectorized exp within ~2 ulp).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.sigmoid(np.array([0.0]))
        array([0.5])
    """
    return _activation("sigmoid", x, out)


def tanh(x, *, out=None):
    """Hyperbolic tangent, as ``torch.tanh``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.tanh(np.array([0.0, 100.0]))
        array([0., 1.])
    """
    return _activation("tanh", x, out)


def gelu(x, approximate="none", *, out=None):
    """GELU, exact form ``x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2))`` (torch's default
    ``approximate='none'``; the erfc form keeps relative accuracy for negative x).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> round(float(F.gelu(np.array([1.0]))[0]), 6)
        0.841345
    """
    if approximate != "none":
        raise ValueError(f"approximate: only 'none' (the exact erf form) is supported, got {approximate!r}")
    return _activation("gelu", x, out)


def relu_backward(grad_output, x, y=None, *, out=None):
    """``grad_output`` where ``x > 0``, else 0 (NaN inputs pass the gradient, as torch).

    Args:
        grad_output: gradient of the loss with respect to ``relu(x)``.
        x: the forward input (or None with ``y`` given).
        y: the forward output (optional).
        out: optional array to write into.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.relu_backward(np.ones(2), np.array([-1.0, 2.0]))
        array([0., 1.])
    """
    return _activation_backward("relu", grad_output, x, y, out)


def leaky_relu_backward(grad_output, x, y=None, negative_slope=0.01, *, out=None):
    """``grad_output`` where ``x > 0``, else ``negative_slope * grad_output``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.leaky_relu_backward(np.ones(2), np.array([-1.0, 2.0]), None, 0.1)
        array([0.1, 1. ])
    """
    return _activation_backward("leaky_relu", grad_output, x, y, out, K.as_finite(negative_slope, "negative_slope"))


def sigmoid_backward(grad_output, x=None, y=None, *, out=None):
    """``grad_output * y * (1 - y)`` with ``y = sigmoid(x)`` (recomputed when not given).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.sigmoid_backward(np.ones(1), None, np.array([0.5]))
        array([0.25])
    """
    return _activation_backward("sigmoid", grad_output, x, y, out)


def tanh_backward(grad_output, x=None, y=None, *, out=None):
    """``grad_output * (1 - y**2)`` with ``y = tanh(x)`` (recomputed when not given).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.tanh_backward(np.ones(1), np.zeros(1))
        array([1.])
    """
    return _activation_backward("tanh", grad_output, x, y, out)


def gelu_backward(grad_output, x, y=None, *, out=None):
    """``grad_output * (Phi(x) + x * phi(x))`` (exact GELU derivative; reads ``x``).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.gelu_backward(np.ones(1), np.zeros(1))
        array([0.5])
    """
    return _activation_backward("gelu", grad_output, x, y, out)


def _axis(axis, ndim) -> int:
    a = A.as_int(axis, "axis")
    if not -ndim <= a < ndim:
        raise ValueError(f"axis: {a} is out of range for an array of {ndim} dimensions")
    return a % ndim


def _softmax(x, axis, log, out):
    kind, dt = K.check_float(x, "x", min_ndim=1)
    ax = _axis(axis, x.ndim)
    target, final = K.out_for(out, [x], kind, dt, x.shape)
    if x.size:
        xc = K.contiguous(x, kind)
        if kind == "numpy":
            outer = K.prod(x.shape[:ax])
            inner = K.prod(x.shape[ax + 1:])
            _core.softmax(xc, target, outer, int(x.shape[ax]), inner, log)
        else:
            with A.cuda_launch(xc):
                K.cuda_module().softmax(xc, ax, log, target)
    return K.finish(target, final)


def softmax(x, axis=-1, *, out=None):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``, as ``torch.softmax(x, dim=axis)``.

    Stable for large logits (max subtraction). A slice holding NaN or +inf gives NaN.

    Args:
        x: array with at least 1 dimension; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        axis: the axis to normalize over (negative counts from the end).
        out: optional array of ``x``'s shape and dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.softmax(np.array([[0.0, 0.0], [1000.0, 1000.0]]))
        array([[0.5, 0.5],
               [0.5, 0.5]])
    """
    return _softmax(x, axis, False, out)


def log_softmax(x, axis=-1, *, out=None):
    """``x - max - log(sum(exp(x - max)))`` along ``axis``, as ``torch.log_softmax``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.log_softmax(np.array([0.0, 0.0]))
        array([-0.69314718, -0.69314718])
    """
    return _softmax(x, axis, True, out)


def _unbatched_ce(logits, target) -> bool:
    """torch's unbatched form: logits (C,) with a 0-d target."""
    return getattr(logits, "ndim", None) == 1 and getattr(target, "ndim", None) == 0


def _ce_args(logits, target, reduction, label_smoothing, ignore_index):
    kind, dt = K.check_float(logits, "logits", min_ndim=2)
    tk = A.array_kind(target, "target")
    if tk != kind:
        raise TypeError(f"target: expected a {kind} array like logits, got a {tk} array")
    if np.dtype(target.dtype).kind not in "iu":
        raise TypeError(
            f"target: expected integer class indices (int64, int32, ...), got {target.dtype}; "
            "class-probability targets are not supported"
        )
    n, c = int(logits.shape[0]), int(logits.shape[1])
    want = (n,) + tuple(logits.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(f"target: expected shape {want} for logits of shape {tuple(logits.shape)}, got {tuple(target.shape)}")
    if c < 1:
        raise ValueError(f"logits: expected at least one class, got shape {tuple(logits.shape)}")
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected 'none', 'mean' or 'sum', got {reduction!r}")
    eps = K.as_prob(label_smoothing, "label_smoothing")
    ignore = A.as_int(ignore_index, "ignore_index")
    if not -(2**63) <= ignore < 2**63:
        raise ValueError(f"ignore_index: expected a value in the int64 range, got {ignore}")
    if target.size:
        t = target.astype(np.int64, copy=False)
        bad = ((t < 0) | (t >= c)) & (t != ignore)
        if bool(bad.any()):
            v = int(t[bad].ravel()[0])
            raise ValueError(f"target: class index {v} is outside [0, {c}) and is not ignore_index={ignore}")
    s = K.prod(logits.shape[2:])
    return kind, dt, n, c, s, reduction, eps, ignore


def cross_entropy(logits, target, *, reduction="mean", label_smoothing=0.0, ignore_index=-100, out=None):
    """Cross entropy of logits against class indices, as ``torch.nn.functional.cross_entropy``.

    Per element ``loss = (1 - eps) * (lse - x[t]) + eps / C * sum_c (lse - x[c])`` with
    ``lse = log(sum_c exp(x[c]))`` computed stably and ``eps = label_smoothing``; elements whose
    target is ``ignore_index`` contribute 0. ``reduction="mean"`` divides the sum by the number
    of non-ignored elements (NaN when there are none, as torch); ``"sum"`` sums; ``"none"``
    returns the per-element losses.

    Args:
        logits: ``(N, C)`` or ``(N, C, d1, ...)`` (or ``(C,)`` with a 0-d target); float32 or
            float64 (NumPy), float32/float16/bfloat16 (CuPy).
        target: integers ``(N,)`` or ``(N, d1, ...)``, each in ``[0, C)`` or ``ignore_index``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: in ``[0, 1]``.
        ignore_index: target value that is skipped.
        out: optional array of the result's shape (``()`` or ``target.shape``) and logits' dtype.

    Returns:
        A 0-d array (mean, sum) or an array of ``target``'s shape (none), logits' dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> round(float(F.cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))), 6)
        0.693147
    """
    if _unbatched_ce(logits, target):
        kw = dict(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index)
        if reduction == "none":
            res = cross_entropy(logits[None], target.reshape(1), out=None if out is None else out.reshape(1), **kw)
            return res.reshape(()) if out is None else out
        return cross_entropy(logits[None], target.reshape(1), out=out, **kw)
    kind, dt, n, c, s, red, eps, ignore = _ce_args(logits, target, reduction, label_smoothing, ignore_index)
    shape = tuple(target.shape) if red == "none" else ()
    target_arr, final = K.out_for(out, [logits, target], kind, dt, shape)
    xp = A.xp_of(kind)
    if kind == "numpy":
        lc = K.contiguous(logits, kind)
        tc = np.ascontiguousarray(target, dtype=np.int64)
        if red == "none":
            if target_arr.size:
                _core.cross_entropy(lc, tc, target_arr, n, c, s, ignore, eps, red)
        else:
            v = _core.cross_entropy(lc, tc, None, n, c, s, ignore, eps, red) if n * s else (
                float("nan") if red == "mean" else 0.0)
            target_arr[...] = v
    else:
        lc = K.contiguous(logits, kind)
        tc = xp.ascontiguousarray(target, dtype=np.int64)
        with A.cuda_launch(lc):
            res = K.cuda_module().cross_entropy(lc, tc, red, eps, ignore)
        xp.copyto(target_arr, res.reshape(shape).astype(dt, copy=False))
    return K.finish(target_arr, final)


def cross_entropy_backward(logits, target, *, reduction="mean", label_smoothing=0.0, ignore_index=-100, out=None):
    """Gradient of :func:`cross_entropy` with respect to ``logits``.

    ``scale * (softmax(x) - (1 - eps) * onehot(t) - eps / C)`` per non-ignored element (0 for
    ignored ones), ``scale = 1 / count`` for ``"mean"`` (0 when every element is ignored) and 1
    for ``"sum"``; ``"none"`` gives the gradient of the sum of the per-element losses.

    Args:
        logits, target, reduction, label_smoothing, ignore_index: as :func:`cross_entropy`.
        out: optional array of ``logits``' shape and dtype.

    Returns:
        An array of ``logits``' shape and dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.cross_entropy_backward(np.array([[0.0, 0.0]]), np.array([1]))
        array([[ 0.5, -0.5]])
    """
    if _unbatched_ce(logits, target):
        res = cross_entropy_backward(logits[None], target.reshape(1), reduction=reduction,
                                     label_smoothing=label_smoothing, ignore_index=ignore_index,
                                     out=None if out is None else out[None])
        return res[0] if out is None else out
    kind, dt, n, c, s, red, eps, ignore = _ce_args(logits, target, reduction, label_smoothing, ignore_index)
    target_arr, final = K.out_for(out, [logits, target], kind, dt, logits.shape)
    if logits.size == 0:
        return final
    xp = A.xp_of(kind)
    lc = K.contiguous(logits, kind)
    tc = xp.ascontiguousarray(target, dtype=np.int64)
    if kind == "numpy":
        _core.cross_entropy_backward(lc, tc, target_arr, n, c, s, ignore, eps, red)
    else:
        with A.cuda_launch(lc):
            g = K.cuda_module().cross_entropy_backward(lc, tc, red, eps, ignore)
        xp.copyto(target_arr, g)
    return K.finish(target_arr, final)
