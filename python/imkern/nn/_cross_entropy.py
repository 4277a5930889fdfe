"""Cross entropy with class-index targets (forward and the gradient with respect to the
logits), as torch.nn.functional.cross_entropy.

float32/float64 on the CPU (NumPy), float32/float16/bfloat16 on CUDA (CuPy).
"""

from __future__ import annotations

import numpy as np

from .. import _arrays as A
from .. import _core
from .. import _driver as D
from . import _checks as K

__all__ = ["cross_entropy", "cross_entropy_backward"]


_REDUCTIONS = tuple(_core.Reduction.__members__)  # "none", "mean", "sum"
_REDUCTION_CODES = dict(_core.Reduction.__members__)  # the enum both bindings take


def _unbatched_ce(logits, target) -> bool:
    """torch's unbatched form: logits (C,) with a 0-d target."""
    return getattr(logits, "ndim", None) == 1 and getattr(target, "ndim", None) == 0


_INT64 = np.dtype(np.int64)  # native byte order


def _check_target_dtype(target, kind):
    tk = A.array_kind(target, "target")
    if tk != kind:
        raise TypeError(f"target: expected a {kind} array like logits, got a {tk} array")
    if np.dtype(target.dtype).kind not in "iu":
        raise TypeError(
            f"target: expected integer class indices (int64, int32, ...), got {target.dtype}; "
            "class-probability targets are not supported"
        )
    if not np.can_cast(target.dtype, np.int64, "safe"):
        # The kernels read int64 class indices; uint64 values above 2**63 - 1 would wrap (2**64 - 100
        # became the default ignore_index -100). torch rejects uint64 targets too.
        raise TypeError(
            f"target: dtype {target.dtype} does not convert to int64 without wrapping; use int64 class indices"
        )


def _ce_args(logits, target, reduction, label_smoothing, ignore_index):
    kind, dt = K.check_float(logits, "logits", min_ndim=2)
    if not (kind == "numpy" and type(target) is np.ndarray and target.dtype == _INT64):
        # (native int64 NumPy targets, the common case, pass every check here)
        _check_target_dtype(target, kind)
    n, c = int(logits.shape[0]), int(logits.shape[1])
    want = (n,) + tuple(logits.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(
            f"target: expected shape {want} for logits of shape {tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if c < 1:
        raise ValueError(f"logits: expected at least one class, got shape {tuple(logits.shape)}")
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected 'none', 'mean' or 'sum', got {reduction!r}")
    eps = K.as_prob(label_smoothing, "label_smoothing")
    ignore = A.as_int(ignore_index, "ignore_index")
    if not -(2**63) <= ignore < 2**63:
        raise ValueError(f"ignore_index: expected a value in the int64 range, got {ignore}")
    if target.size and kind != "numpy":
        # NumPy targets are checked by the binding (csrc/bindings/nn.cpp, targets(): one pass
        # in C++, the same message); the CUDA kernels cannot raise, so CuPy's are checked here.
        t = target.astype(np.int64, copy=False)
        bad = ((t < 0) | (t >= c)) & (t != ignore)
        if bool(bad.any()):
            v = int(t[bad].ravel()[0])
            raise ValueError(f"target: class index {v} is outside [0, {c}) and is not ignore_index={ignore}")
    s = K.prod(logits.shape[2:])
    return kind, dt, n, c, s, reduction, eps, ignore


@K.torch_names(input="logits")
def cross_entropy(logits, target, *, reduction="mean", label_smoothing=0.0, ignore_index=-100, out=None):
    """Cross entropy of logits against class indices, as ``torch.nn.functional.cross_entropy``.

    Per element ``loss = (1 - eps) * (lse - x[t]) + eps / C * sum_c (lse - x[c])`` with
    ``lse = log(sum_c exp(x[c]))`` computed stably and ``eps = label_smoothing``; elements whose
    target is ``ignore_index`` contribute 0. ``reduction="mean"`` divides the sum by the number
    of non-ignored elements (NaN when there are none, as torch); ``"sum"`` sums; ``"none"``
    returns the per-element losses.

    Args:
        logits: ``(N, C)`` or ``(N, C, d1, ...)`` (or ``(C,)`` with a 0-d target); float32 or
            float64 (NumPy), float32/float16/bfloat16 (CuPy). ``input=`` (torch's name) is accepted too.
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
    lc = D.contiguous(logits, kind)
    tc = A.xp_of(kind).ascontiguousarray(target, dtype=np.int64)

    def reduced():  # the CPU kernel's mean / sum
        if not n * s:
            return float("nan") if red == "mean" else 0.0
        return _core.cross_entropy(lc, tc, None, n, c, s, ignore, eps, _REDUCTION_CODES[red])

    if kind == "numpy" and out is None and red != "none":
        # The common call, a new 0-d result: no output to prepare and copy into (the wrapper's
        # time is serial; ~10% of the 4096x1000 call on 2 threads went to it).
        return np.array(reduced(), dt)
    shape = tuple(target.shape) if red == "none" else ()
    target_arr, final = D.output(out, [logits, target], kind, dt, shape)

    def cpu():
        if red == "none":
            if target_arr.size:
                _core.cross_entropy(lc, tc, target_arr, n, c, s, ignore, eps, _REDUCTION_CODES[red])
        else:
            target_arr[...] = reduced()

    def cuda(stream):
        if target_arr.size:  # "mean" / "sum" of no elements: the kernel writes NaN / 0
            _core.cuda_cross_entropy(
                A.DTYPE_CODES[dt],
                n,
                c,
                s,
                D.ptr(lc),
                D.ptr(tc),
                _REDUCTION_CODES[red],
                eps,
                ignore,
                D.ptr(target_arr),
                stream,
            )

    D.launch(kind, lc, cpu, cuda)
    return D.finish(target_arr, final)


@K.torch_names(input="logits")
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
        res = cross_entropy_backward(
            logits[None],
            target.reshape(1),
            reduction=reduction,
            label_smoothing=label_smoothing,
            ignore_index=ignore_index,
            out=None if out is None else out[None],
        )
        return res[0] if out is None else out
    kind, dt, n, c, s, red, eps, ignore = _ce_args(logits, target, reduction, label_smoothing, ignore_index)
    tc = A.xp_of(kind).ascontiguousarray(target, dtype=np.int64)

    def cpu(lc, tc, g):
        _core.cross_entropy_backward(lc, tc, g, n, c, s, ignore, eps, _REDUCTION_CODES[red])

    def cuda(lc, tc, g, stream):
        # The upstream gradient of the loss is 1 (one per element for reduction "none").
        ones = A.xp_of(kind).ones((n * s if red == "none" else 1,), dtype=np.float32)
        _core.cuda_cross_entropy_backward(
            A.DTYPE_CODES[dt],
            n,
            c,
            s,
            D.ptr(lc),
            D.ptr(tc),
            _REDUCTION_CODES[red],
            eps,
            ignore,
            D.ptr(ones),
            D.ptr(g),
            stream,
        )

    return D.run_op(kind, [logits, tc], out, cpu, cuda, shape=logits.shape, dtype=dt, out_inputs=[logits, target])
