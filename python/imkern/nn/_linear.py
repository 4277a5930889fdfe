"""linear (fully connected) forward and backward with PyTorch's semantics.

NumPy arrays run on the C++ GEMM (float32 / float64), CuPy arrays on the CUDA GEMM (float32,
float16, bfloat16). Inputs are never modified; other layouts are copied to C-contiguous
arrays first.
"""

from __future__ import annotations

import numpy as np

from .. import _arrays as A
from .. import _core, _runtime
from .. import _driver as D
from . import _checks as K

__all__ = ["linear", "linear_backward"]


_FAST_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def _linear_check(x, weight, name_x="x"):
    if x.ndim < 1:
        raise ValueError(f"{name_x}: expected shape (..., in_features), got shape {tuple(x.shape)}")
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (out_features, in_features), got shape {tuple(weight.shape)}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"weight: in_features {weight.shape[1]} (weight shape {tuple(weight.shape)}) differs from the last "
            f"dimension of {name_x} (shape {tuple(x.shape)})"
        )


@K.torch_names(input="x")
def linear(x, weight, bias=None, *, out=None):
    """Affine map ``x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    Args:
        x: ``(..., in_features)``; float32 or float64 (CPU), float32, float16 or bfloat16 (CUDA).
            ``input=`` (torch's name) is accepted too.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None.
        out: optional ``(..., out_features)`` array to write into.

    Returns:
        ``(..., out_features)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.linear(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), np.arange(4, dtype=np.float32))
        array([[3., 4., 5., 6.],
               [3., 4., 5., 6.]], dtype=float32)
    """
    if (
        out is None
        and type(x) is np.ndarray
        and type(weight) is np.ndarray
        and x.dtype in _FAST_DTYPES
        and weight.dtype == x.dtype
        and x.ndim == 2
        and weight.ndim == 2
        and x.shape[1] == weight.shape[1]
        and x.flags.c_contiguous
        and weight.flags.c_contiguous
        and (
            bias is None
            or (
                type(bias) is np.ndarray
                and bias.dtype == x.dtype
                and bias.shape == (weight.shape[0],)
                and bias.flags.c_contiguous
            )
        )
    ):
        # The common NumPy call (a batch of rows, contiguous parameters of its dtype) in one
        # step: the checks below would all pass, and run_op would make the same output.
        y = D.new_numpy((x.shape[0], weight.shape[0]), x.dtype, x.shape[0] * weight.shape[0] * x.itemsize)
        if y.size:
            _core.linear(x, weight, bias, y)
        return y
    kind, dname = K.kind_dtype(x, "x")
    K.input_like_params(x, "x", kind, dname, ((weight, "weight"), (bias, "bias")))
    _linear_check(x, weight)
    of, inf = weight.shape
    if bias is not None and tuple(bias.shape) != (of,):
        raise ValueError(
            f"bias: expected shape ({of},) for weight of shape {tuple(weight.shape)}, got {tuple(bias.shape)}"
        )
    shape = tuple(x.shape[:-1]) + (of,)

    m = K.prod(x.shape[:-1])  # explicit: reshape(-1, 0) is ambiguous (in_features = 0)

    def cpu(x2, wc, bc, y):
        # in_features = 0 is an empty sum: the GEMM writes the bias (or zeros), as torch.
        _core.linear(x2.reshape(m, inf), wc, bc, y.reshape(m, of))

    def cuda(x2, wc, bc, y, stream):
        _core.cuda_linear(
            A.DTYPE_CODES[x2.dtype],
            K.prod(x2.shape[:-1]),
            inf,
            of,
            D.ptr(x2),
            D.ptr(wc),
            D.ptr(bc),
            D.ptr(y),
            _runtime.allow_tf32,
            stream,
        )

    return D.run_op(kind, [x, weight, bias], out, cpu, cuda, shape=shape, dtype=x.dtype)


def linear_backward(grad_output, x, weight):
    """Gradients of :func:`linear`.

    Args:
        grad_output: ``(..., out_features)``, the gradient with respect to the output.
        x: ``(..., in_features)``, the input given to :func:`linear`.
        weight: ``(out_features, in_features)``.

    Returns:
        ``(grad_input, grad_weight, grad_bias)`` of shapes ``x.shape``,
        ``(out_features, in_features)`` and ``(out_features,)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> gi, gw, gb = F.linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((4, 3)))
        >>> gi[0].tolist(), gw.shape, gb.tolist()
        ([4.0, 4.0, 4.0], (4, 3), [2.0, 2.0, 2.0, 2.0])
    """
    kind, dname = K.kind_dtype(x, "x")
    K.input_like_params(x, "x", kind, dname, ((weight, "weight"),))
    K.same_as(grad_output, "grad_output", kind, dname)
    _linear_check(x, weight)
    of, inf = weight.shape
    expect = tuple(x.shape[:-1]) + (of,)
    if tuple(grad_output.shape) != expect:
        raise ValueError(
            f"grad_output: expected shape {expect} for x of shape {tuple(x.shape)} and weight of shape "
            f"{tuple(weight.shape)}, got {tuple(grad_output.shape)}"
        )
    m = K.prod(x.shape[:-1])  # explicit: reshape(-1, 0) is ambiguous (in_features or out_features = 0)
    x2 = D.contiguous(x, kind).reshape(m, inf)
    go2 = D.contiguous(grad_output, kind).reshape(m, of)
    wc = D.contiguous(weight, kind)
    if kind == "cupy" and (x2.shape[0] == 0 or of == 0 or inf == 0):
        gi = D.zeros(kind, x2, x2.shape, x.dtype)
        gw = D.zeros(kind, x2, weight.shape, x.dtype)
        gb = D.zeros(kind, x2, (of,), x.dtype)
        if x2.shape[0] and of:
            gb[...] = go2.sum(axis=0)
        return gi.reshape(x.shape), gw, gb
    gi = D.empty(kind, x2, x2.shape, x.dtype)
    gw = D.empty(kind, x2, weight.shape, x.dtype)
    gb = D.empty(kind, x2, (of,), x.dtype)

    def cpu():
        if gi.size or gw.size or gb.size:
            _core.linear_backward(go2, x2, wc, gi, gw, gb)

    def cuda(stream):
        _core.cuda_linear_backward(
            A.DTYPE_CODES[x2.dtype],
            x2.shape[0],
            inf,
            of,
            D.ptr(go2),
            D.ptr(x2),
            D.ptr(wc),
            D.ptr(gi),
            D.ptr(gw),
            D.ptr(gb),
            _runtime.allow_tf32,
            stream,
        )

    D.launch(kind, x2, cpu, cuda)
    return gi.reshape(x.shape), gw, gb
