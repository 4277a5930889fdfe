"""2-D pooling (max, average, adaptive average) and the backward passes, as
torch.nn.functional: tensors ``(N, C, H, W)`` (or ``(C, H, W)``, pooled as a batch of one, as
torch does), float32/float64 on the CPU (NumPy), float32/float16/bfloat16 on CUDA (CuPy).

Output size per axis (torch's rule)::

    out = floor((in + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) / stride) + 1

and with ``ceil_mode`` the last window must start inside the input or the left padding
(``(out - 1) * stride < in + padding``, else ``out -= 1``). ``padding`` may be at most half
the kernel size.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _arrays as A
from .. import _core
from .. import _driver as D
from . import _checks as K

__all__ = [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
]


def _unbatched(a) -> bool:
    """True for a 3-D ``(C, H, W)`` array, which torch pools as a batch of one."""
    return getattr(a, "ndim", None) == 3


def _batch1(out):
    """``out`` viewed as a batch of one (validated by the callee)."""
    return out[None] if getattr(out, "ndim", None) == 3 else out


def _shape1(input_shape):
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3:
        return (1,) + tuple(input_shape)
    return input_shape


def _out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _geometry(shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalized (kernel, stride, padding, dilation) pairs and the output (OH, OW)."""
    k, s, p, d, ceil_mode = window_args(kernel_size, stride, padding, dilation, ceil_mode)
    h, w = int(shape[2]), int(shape[3])
    oh = _out_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = _out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"input: spatial size {(h, w)} is too small for kernel_size={k}, stride={s}, padding={p}, "
            f"dilation={d} (output would be {(oh, ow)})"
        )
    return k, s, p, d, ceil_mode, (oh, ow)


def window_args(kernel_size, stride, padding, dilation, ceil_mode):
    """The pooling window's arguments, validated without an input (the layers check them at
    construction): normalized (kernel, stride, padding, dilation) pairs and ceil_mode."""
    # The kernels take these as C ints: each is range-checked here, naming the argument.
    k = A.pair_in_range(kernel_size, "kernel_size", 1, A.INT32_MAX)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        s = k
    else:
        s = A.pair_in_range(stride, "stride", 1, A.INT32_MAX)
    p = A.pair_in_range(padding, "padding", 0, A.INT32_MAX)
    d = A.pair_in_range(dilation, "dilation", 1, A.INT32_MAX)
    ceil_mode = K.as_bool(ceil_mode, "ceil_mode")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"padding: {p} must be at most half the kernel size: kernel {k} allows at most {(k[0] // 2, k[1] // 2)}"
        )
    return k, s, p, d, ceil_mode


def _input_shape(input_shape, name="input_shape") -> Tuple[int, int, int, int]:
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 4:
        raise ValueError(f"{name}: expected (N, C, H, W), got {input_shape!r}")
    shp = tuple(A.as_int(v, name) for v in input_shape)
    if min(shp) < 0:
        raise ValueError(f"{name}: expected non-negative sizes, got {shp}")
    return shp  # type: ignore[return-value]  # four ints: the length is checked above


@K.torch_names(input="x")
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *, out=None):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Padding acts as -inf. NaN propagates (a window holding NaN gives NaN and, with
    ``return_indices``, the position of its last NaN); ties go to the first maximum in
    row-major window order; a window of only -inf gives -inf and a valid position.

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        kernel_size: int or ``(kh, kw)``.
        stride: int or pair; None (default) means ``kernel_size``.
        padding: int or pair, at most half the kernel size.
        dilation: int or pair.
        ceil_mode: round the output size up (see the module docstring).
        return_indices: also return the int64 position ``ih * W + iw`` of each maximum within
            its ``(H, W)`` plane (what :func:`max_pool2d_backward` takes).
        out: optional array of the output's shape and dtype to write into.

    Returns:
        ``(N, C, OH, OW)``, or ``(output, indices)`` with ``return_indices``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> F.max_pool2d(x, 2)[0, 0]
        array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    if _unbatched(x):
        res = max_pool2d(x[None], kernel_size, stride, padding, dilation, ceil_mode, return_indices, out=_batch1(out))
        if return_indices:
            return (res[0][0] if out is None else out), res[1][0]
        return res[0] if out is None else out
    kind, dt = K.check_float(x, "x", ndim=(3, 4))
    k, s, p, d, ceil_mode, (oh, ow) = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = K.as_bool(return_indices, "return_indices")
    shape = (x.shape[0], x.shape[1], oh, ow)
    idx = D.empty(kind, x, shape, np.int64) if return_indices else None

    ps = _shape(x.shape, shape, k, s, p, d)

    def cpu(xc, y):
        if xc.size:
            _core.max_pool2d(xc, y, idx, ps)

    def cuda(xc, y, stream):
        if xc.size:
            _core.cuda_max_pool2d(A.DTYPE_CODES[xc.dtype], ps, D.ptr(xc), D.ptr(y), D.ptr(idx), stream)

    res = D.run_op(kind, [x], out, cpu, cuda, shape=shape, dtype=dt)
    return (res, idx) if return_indices else res


_SHAPES: dict = {}


def _shape(in_shape, out_shape, k=(1, 1), s=(1, 1), p=(0, 0), d=(1, 1)):
    """The pooling descriptor both devices' kernels take (imkern::Pool2dShape), built once per
    problem and kept: constructing one from 13 keywords cost ~5 us, a third of a small global
    pool's call. The kernels only read it."""
    key = (tuple(in_shape), tuple(out_shape), k, s, p, d)
    ps = _SHAPES.get(key)
    if ps is None:
        if len(_SHAPES) >= 512:
            _SHAPES.clear()
        n, c, h, w = (int(v) for v in in_shape)
        oh, ow = int(out_shape[2]), int(out_shape[3])
        ps = _SHAPES[key] = _core.Pool2dShape(
            planes=n * c,
            h=h,
            w=w,
            oh=oh,
            ow=ow,
            kh=k[0],
            kw=k[1],
            sh=s[0],
            sw=s[1],
            ph=p[0],
            pw=p[1],
            dh=d[0],
            dw=d[1],
        )
    return ps


def max_pool2d_backward(grad_output, indices, input_shape, *, out=None, _trusted=False):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Each output gradient is added to the input position its index names (positions chosen by
    several windows accumulate).

    Args:
        grad_output: ``(N, C, OH, OW)``.
        indices: ``(N, C, OH, OW)`` integer positions from ``max_pool2d(..., return_indices=True)``.
        input_shape: ``(N, C, H, W)`` of the forward input.
        out: optional ``(N, C, H, W)`` array to write into.

    Returns:
        grad_input, ``(N, C, H, W)``, the dtype of ``grad_output``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.array([[[[1., 2.], [4., 3.]]]])
        >>> y, i = F.max_pool2d(x, 2, return_indices=True)
        >>> F.max_pool2d_backward(np.ones_like(y), i, x.shape)[0, 0]
        array([[0., 0.],
               [1., 0.]])
    """
    if _unbatched(grad_output) and _unbatched(indices):
        res = max_pool2d_backward(
            grad_output[None], indices[None], _shape1(input_shape), out=_batch1(out), _trusted=_trusted
        )
        return res[0] if out is None else out
    kind, dt = K.check_float(grad_output, "grad_output", ndim=(3, 4))
    shp = _input_shape(input_shape)
    ikind = A.array_kind(indices, "indices")
    if ikind != kind:
        raise TypeError(f"indices: expected a {kind} array like grad_output, got a {ikind} array")
    if np.dtype(indices.dtype).kind not in "iu":
        raise TypeError(f"indices: expected an integer array (int64), got {indices.dtype}")
    if tuple(indices.shape) != tuple(grad_output.shape):
        raise ValueError(
            f"indices: expected shape {tuple(grad_output.shape)} like grad_output, got {tuple(indices.shape)}"
        )
    if tuple(grad_output.shape[:2]) != shp[:2]:
        raise ValueError(f"grad_output: N, C of shape {tuple(grad_output.shape)} differ from input_shape {shp}")
    hw = shp[2] * shp[3]
    if indices.size and not _trusted:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= hw:
            raise ValueError(f"indices: positions must lie in [0, H*W) = [0, {hw}), got values in [{lo}, {hi}]")
    ic = A.xp_of(kind).ascontiguousarray(indices, dtype=np.int64)

    ps = _shape(shp, grad_output.shape)

    def cpu(g, ic, gi):
        if g.size == 0:
            gi[...] = 0
        else:
            _core.max_pool2d_backward(g, ic, gi, ps)

    def cuda(g, ic, gi, stream):
        # Without the window parameters one thread per (n, c) plane scatters that plane's
        # gradients in output order: deterministic, no atomics.
        if g.size == 0:
            gi[...] = 0
        else:
            _core.cuda_max_pool2d_backward(A.DTYPE_CODES[g.dtype], ps, False, D.ptr(g), D.ptr(ic), D.ptr(gi), stream)

    return D.run_op(kind, [grad_output, ic], out, cpu, cuda, shape=shp, dtype=dt, out_inputs=[grad_output, indices])


def _avg_args(ceil_mode, count_include_pad, divisor_override):
    count_include_pad = K.as_bool(count_include_pad, "count_include_pad")
    dov = 0
    if divisor_override is not None:
        dov = A.as_int(divisor_override, "divisor_override")
        if dov == 0:
            raise ValueError("divisor_override: must be non-zero (or None)")
        dov = A.int_in_range(dov, "divisor_override", 1, A.INT64_MAX)
    return count_include_pad, dov


@K.torch_names(input="x")
def avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None, *, out=None
):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Each output is the window sum divided by ``divisor_override`` when given, else by the
    window size clipped to the padded input (``count_include_pad=True``; with ``ceil_mode``
    windows running past the padding count only up to it) or to the input
    (``count_include_pad=False``). Sums accumulate in the input dtype (as torch).

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        kernel_size, stride, padding, ceil_mode: as :func:`max_pool2d` (no dilation).
        count_include_pad: count zero padding in the divisor.
        divisor_override: a positive int divisor for every window (CPU only).
        out: optional array of the output's shape and dtype to write into.

    Returns:
        ``(N, C, OH, OW)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
        >>> F.avg_pool2d(x, 2)[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
    """
    if _unbatched(x):
        res = avg_pool2d(
            x[None], kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out=_batch1(out)
        )
        return res[0] if out is None else out
    kind, dt = K.check_float(x, "x", ndim=(3, 4))
    k, s, p, d, ceil_mode, (oh, ow) = _geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    cip, dov = _avg_args(ceil_mode, count_include_pad, divisor_override)
    shape = (x.shape[0], x.shape[1], oh, ow)
    if kind == "cupy" and dov and x.size:
        raise NotImplementedError("avg_pool2d: divisor_override is not supported on CUDA")

    ps = _shape(x.shape, shape, k, s, p)

    def cpu(xc, y):
        if xc.size:
            _core.avg_pool2d(xc, y, ps, cip, dov)

    def cuda(xc, y, stream):
        if xc.size:
            _core.cuda_avg_pool2d(A.DTYPE_CODES[xc.dtype], ps, cip, D.ptr(xc), D.ptr(y), stream)

    return D.run_op(kind, [x], out, cpu, cuda, shape=shape, dtype=dt)


def avg_pool2d_backward(
    grad_output,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
    *,
    out=None,
):
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Every output gradient, divided by its window's divisor, is added to each input position
    of its window (the part inside the input).

    Args:
        grad_output: ``(N, C, OH, OW)`` with OH, OW as the forward computed them.
        input_shape: ``(N, C, H, W)`` of the forward input.
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as the forward.
        out: optional ``(N, C, H, W)`` array to write into.

    Returns:
        grad_input, ``(N, C, H, W)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2)[0, 0]
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    if _unbatched(grad_output):
        res = avg_pool2d_backward(
            grad_output[None],
            _shape1(input_shape),
            kernel_size,
            stride,
            padding,
            ceil_mode,
            count_include_pad,
            divisor_override,
            out=_batch1(out),
        )
        return res[0] if out is None else out
    kind, dt = K.check_float(grad_output, "grad_output", ndim=(3, 4))
    shp = _input_shape(input_shape)
    k, s, p, d, ceil_mode, (oh, ow) = _geometry(shp, kernel_size, stride, padding, 1, ceil_mode)
    cip, dov = _avg_args(ceil_mode, count_include_pad, divisor_override)
    want = (shp[0], shp[1], oh, ow)
    if tuple(grad_output.shape) != want:
        raise ValueError(f"grad_output: expected shape {want} for input_shape {shp}, got {tuple(grad_output.shape)}")
    if kind == "cupy" and dov and K.prod(shp):
        raise NotImplementedError("avg_pool2d_backward: divisor_override is not supported on CUDA")

    ps = _shape(shp, want, k, s, p)

    def cpu(g, gi):
        _core.avg_pool2d_backward(g, gi, ps, cip, dov)

    def cuda(g, gi, stream):
        _core.cuda_avg_pool2d_backward(A.DTYPE_CODES[g.dtype], ps, cip, D.ptr(g), D.ptr(gi), stream)

    return D.run_op(kind, [grad_output], out, cpu, cuda, shape=shp, dtype=dt)


def _adaptive_size(output_size, shape):
    if type(output_size) is int and 1 <= output_size <= A.INT32_MAX:
        return output_size, output_size  # the common case (global pooling: 1), checked below
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size: expected an int or a pair, got {output_size!r}")
        vals = [shape[2 + i] if v is None else A.as_int(v, "output_size") for i, v in enumerate(output_size)]
    else:
        v = A.as_int(output_size, "output_size")
        vals = [v, v]
    if min(vals) < 1:
        raise ValueError(f"output_size: expected positive sizes, got {output_size!r}")
    for v in vals:
        A.int_in_range(v, "output_size", 1, A.INT32_MAX)
    return int(vals[0]), int(vals[1])


@K.torch_names(input="x")
def adaptive_avg_pool2d(x, output_size, *, out=None):
    """Adaptive average pooling to ``output_size``, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output row ``i`` averages input rows ``floor(i * H / OH)`` to ``ceil((i + 1) * H / OH)``
    (exclusive), likewise for columns: windows overlap when ``H`` is not a multiple of ``OH``.
    Global pooling (1x1) of float32 on the CPU sums each plane in float32 blocks of 64 values
    combined in float64 (error at most ``3 * 2**-24 * sum(|x|) / (H * W)``; the same bits on
    every ISA and thread count); float64 sums in float64.

    Args:
        x: ``(N, C, H, W)`` with ``H, W >= 1``.
        output_size: int or ``(OH, OW)``; a None entry keeps that input size.
        out: optional ``(N, C, OH, OW)`` array to write into.

    Returns:
        ``(N, C, OH, OW)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
        >>> F.adaptive_avg_pool2d(x, 1)[0, 0]
        array([[7.5]])
    """
    if _unbatched(x):
        res = adaptive_avg_pool2d(x[None], output_size, out=_batch1(out))
        return res[0] if out is None else out
    kind, dt = K.check_float(x, "x", ndim=(3, 4))
    oh, ow = _adaptive_size(output_size, x.shape)
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"x: expected H, W >= 1, got shape {tuple(x.shape)}")
    shape = (x.shape[0], x.shape[1], oh, ow)

    ps = _shape(x.shape, shape)

    def cpu(xc, y):
        if xc.size:
            _core.adaptive_avg_pool2d(xc, y, ps)

    def cuda(xc, y, stream):
        if xc.size:
            _core.cuda_adaptive_avg_pool2d(A.DTYPE_CODES[xc.dtype], ps, D.ptr(xc), D.ptr(y), stream)

    return D.run_op(kind, [x], out, cpu, cuda, shape=shape, dtype=dt)


def adaptive_avg_pool2d_backward(grad_output, input_shape, *, out=None):
    """Gradient of :func:`adaptive_avg_pool2d` with respect to its input.

    Args:
        grad_output: ``(N, C, OH, OW)``.
        input_shape: ``(N, C, H, W)`` of the forward input.
        out: optional ``(N, C, H, W)`` array to write into.

    Returns:
        grad_input, ``(N, C, H, W)``.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> F.adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2))[0, 0]
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    if _unbatched(grad_output):
        res = adaptive_avg_pool2d_backward(grad_output[None], _shape1(input_shape), out=_batch1(out))
        return res[0] if out is None else out
    kind, dt = K.check_float(grad_output, "grad_output", ndim=(3, 4))
    shp = _input_shape(input_shape)
    if tuple(grad_output.shape[:2]) != shp[:2] or min(grad_output.shape[2:]) < 1:
        raise ValueError(f"grad_output: shape {tuple(grad_output.shape)} does not match input_shape {shp}")
    if shp[2] < 1 or shp[3] < 1:
        raise ValueError(f"input_shape: expected H, W >= 1, got {shp}")

    ps = _shape(shp, grad_output.shape)

    def cpu(g, gi):
        _core.adaptive_avg_pool2d_backward(g, gi, ps)

    def cuda(g, gi, stream):
        _core.cuda_adaptive_avg_pool2d_backward(A.DTYPE_CODES[g.dtype], ps, D.ptr(g), D.ptr(gi), stream)

    return D.run_op(kind, [grad_output], out, cpu, cuda, shape=shp, dtype=dt)
