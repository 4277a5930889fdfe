"""softmax and log_softmax along one axis, as torch.softmax / torch.log_softmax.

float32/float64 on the CPU (NumPy), float32/float16/bfloat16 on CUDA (CuPy).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _arrays as A
from .. import _core
from .. import _driver as D
from . import _checks as K

__all__ = ["softmax", "log_softmax"]


def _axis(axis, ndim) -> int:
    if axis is None:  # torch's implicit dim (deprecated there) is not guessed here
        raise TypeError("axis (dim): expected an int, got None; name the axis to normalize over")
    a = A.as_int(axis, "axis")
    if not -ndim <= a < ndim:
        raise ValueError(f"axis: {a} is out of range for an array of {ndim} dimensions")
    return a % ndim


def _softmax(x, axis, log, out):
    fast = None
    if type(axis) is int and type(x) is np.ndarray:
        nd = x.ndim
        if -nd <= axis < nd:  # (run_op's common case in one step; nd >= 1 here)
            fast = D.cpu_tensor_out(x, out, K.FLOAT_CPU_SET)
    if fast is None:
        kind, dt = K.check_float(x, "x", min_ndim=1)
        ax = _axis(axis, x.ndim)
    else:
        ax = axis % nd
    # the elements before, along and after the axis: one place for both paths, and no call or
    # closure cell on the common one (a small tensor's call is mostly Python)
    shape = x.shape
    outer, length, inner = math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1 :])
    if fast is None:
        return _run(kind, dt, x, out, outer, length, inner, log)
    xc, y = fast
    if y.size:
        _core.softmax(xc, y, outer, length, inner, log)
    return y


def _run(kind, dt, x, out, outer, length, inner, log):
    """The checked path: run_op with the CPU and CUDA kernels."""

    def cpu(xc, y):
        _core.softmax(xc, y, outer, length, inner, log)

    def cuda(xc, y, stream):
        _core.cuda_softmax(A.DTYPE_CODES[dt], outer, length, inner, D.ptr(xc), D.ptr(y), log, stream)

    return D.run_op(kind, [x], out, cpu, cuda, shape=x.shape, dtype=dt)


@K.torch_names(input="x", dim="axis")
def softmax(x, axis=-1, *, out=None):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``, as ``torch.softmax(x, dim=axis)``.

    Stable for large logits (max subtraction). A slice holding NaN or +inf gives NaN.

    Args:
        x: array with at least 1 dimension; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        axis: the axis to normalize over (negative counts from the end); ``dim=`` (torch's
            name) is accepted too, as is ``input=`` for ``x``.
        out: optional array of ``x``'s shape and dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.softmax(np.array([[0.0, 0.0], [1000.0, 1000.0]]))
        array([[0.5, 0.5],
               [0.5, 0.5]])
    """
    return _softmax(x, axis, False, out)


@K.torch_names(input="x", dim="axis")
def log_softmax(x, axis=-1, *, out=None):
    """``x - max - log(sum(exp(x - max)))`` along ``axis``, as ``torch.log_softmax``
    (arguments as :func:`softmax`: ``dim=`` and ``input=`` are accepted too).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.log_softmax(np.array([0.0, 0.0]))
        array([-0.69314718, -0.69314718])
    """
    return _softmax(x, axis, True, out)
