"""imkern's kernels as PyTorch operators (``torch.ops.imkern.*``).

Each op is a ``torch.library.custom_op`` whose implementation is the imkern function of the
same name (CPU tensors -> the C++ kernels, CUDA tensors -> the CUDA kernels on PyTorch's current
stream; zero-copy through DLPack, see :mod:`imkern._interop`), with a fake (meta) kernel for
``torch.compile`` and a backward registered with ``torch.library.register_autograd``. The
backward passes are custom ops too (``imkern::conv2d_backward``, ...), so AOTAutograd traces
them like any other op.

Gradients:

* conv2d, linear, max_pool2d, avg_pool2d: imkern.nn.functional's ``*_backward`` kernels.
* gaussian, correlate: the adjoint of the filter. Inside the image that is a correlation of
  the gradient with the flipped kernel; the border modes send the weights of outside taps to
  pixels inside the image (reflect101, reflect, replicate, wrap) or nowhere (constant), so the
  exact adjoint is: a full correlation (the gradient zero-padded by the kernel's extent) with
  the flipped kernel, then each padded row and column added onto the image pixel the border
  rule maps it to ("fold"). Exact for every border mode. correlate's kernel gradient is
  ``sum over pixels of grad * border-padded image``, one imkern conv2d.
* resize: the transpose of the per-axis coefficient tables the forward uses (nearest modes:
  the index tables), applied as two matrix products.
"""

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .. import filters as _filters
from .. import transform as _transform
from .._borders import parse_border
from .._kernels import gaussian_kernels
from ..nn import functional as _F
from ..reference.filters import _NP_PAD

__all__ = [
    "gaussian",
    "correlate",
    "sobel",
    "resize",
    "conv2d",
    "linear",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
]


def _hw_axes(ndim: int) -> Tuple[int, int]:
    return (1, 2) if ndim == 4 else (0, 1)


def _border_map(n: int, before: int, after: int, border: str) -> np.ndarray:
    """Source index of each of the ``before + n + after`` positions of a padded axis under the
    border rule (-1 where the constant border supplies the value): the reference's padding."""
    mode = _NP_PAD[parse_border(border)]
    if mode == "constant":
        return np.pad(np.arange(n), (before, after), mode="constant", constant_values=-1)
    return np.pad(np.arange(n), (before, after), mode=mode)


def _fold(g: Tensor, axis: int, idx: np.ndarray, n: int) -> Tensor:
    """Sum the slices of ``g`` along ``axis`` onto ``n`` slices, slice ``p`` going to ``idx[p]``."""
    shape = list(g.shape)
    shape[axis] = n
    res = g.new_zeros(shape)
    keep = np.nonzero(idx >= 0)[0]
    dst = torch.as_tensor(idx[keep], dtype=torch.int64, device=g.device)
    src = torch.as_tensor(keep, dtype=torch.int64, device=g.device)
    return res.index_add_(axis, dst, g.index_select(axis, src))


def _zero_pad(g: Tensor, axes, pads) -> Tensor:
    shape = list(g.shape)
    sl = [slice(None)] * g.ndim
    for a, (lo, hi) in zip(axes, pads):
        shape[a] += lo + hi
        sl[a] = slice(lo, lo + g.shape[a])
    p = g.new_zeros(shape)
    p[tuple(sl)] = g
    return p


def _border_pad(x: Tensor, axes, pads, border: str, cval: float) -> Tensor:
    """``x`` padded by the border rule on its H and W axes (as the kernels read it)."""
    for a, (lo, hi) in zip(axes, pads):
        idx = _border_map(x.shape[a], lo, hi, border)
        sel = torch.as_tensor(np.maximum(idx, 0), dtype=torch.int64, device=x.device)
        x = x.index_select(a, sel)
        if (idx < 0).any():
            shape = [1] * x.ndim
            shape[a] = idx.shape[0]
            m = torch.as_tensor(idx < 0, device=x.device).reshape(shape)
            x = torch.where(m, torch.as_tensor(cval, dtype=x.dtype, device=x.device), x)
    return x


def _adjoint(grad: Tensor, ksizes, anchors, border: str, filt) -> Tensor:
    """Adjoint of a filter with kernel sizes ``ksizes`` and anchors ``anchors`` under ``border``;
    ``filt(padded_grad)`` correlates with the flipped kernel (anchors at size // 2, zero border)."""
    axes = _hw_axes(grad.ndim)
    # full correlation with the flipped kernel: zero-pad so the anchored filter of the padded
    # gradient gives every padded position p (source coordinate p - anchor)
    pads = [(k - 1 - k // 2, k // 2) for k in ksizes]
    full = filt(_zero_pad(grad, axes, pads))
    for a, k, an in zip(axes, ksizes, anchors):
        n = grad.shape[a]
        full = _fold(full, a, _border_map(n, an, k - 1 - an, border), n)
    return full


# ---- gaussian ---------------------------------------------------------------------------------
@torch.library.custom_op("imkern::gaussian", mutates_args=())
def _gaussian_op(
    image: Tensor, sigma_y: float, sigma_x: float, ksize_y: int, ksize_x: int, truncate: float, border: str, cval: float
) -> Tensor:
    ksize = None if ksize_y <= 0 else (ksize_y, ksize_x)
    return _filters.gaussian(image, (sigma_y, sigma_x), ksize=ksize, truncate=truncate, border=border, cval=cval)


@_gaussian_op.register_fake
def _(image, sigma_y, sigma_x, ksize_y, ksize_x, truncate, border, cval):
    return torch.empty_like(image, memory_format=torch.contiguous_format)


@torch.library.custom_op("imkern::sep_filter_adjoint", mutates_args=())
def _sep_adjoint_op(grad: Tensor, kernel_y: List[float], kernel_x: List[float], border: str) -> Tensor:
    """The adjoint of ``sep_filter(image, kernel_y, kernel_x, border=border)`` (anchors len // 2)
    applied to ``grad``: the gradient with respect to the image."""
    ky, kx = np.asarray(kernel_y, np.float64), np.asarray(kernel_x, np.float64)

    def filt(p):
        return _filters.sep_filter(p, ky[::-1].copy(), kx[::-1].copy(), border="constant", cval=0.0)

    return _adjoint(grad, (len(ky), len(kx)), (len(ky) // 2, len(kx) // 2), border, filt).contiguous()


@_sep_adjoint_op.register_fake
def _(grad, kernel_y, kernel_x, border):
    return torch.empty_like(grad, memory_format=torch.contiguous_format)


def _gaussian_setup(ctx, inputs, output):
    image, sy, sx, kh, kw, truncate, border, cval = inputs
    ky, kx = gaussian_kernels((sy, sx), None if kh <= 0 else (kh, kw), truncate)
    ctx.kernels = (ky.tolist(), kx.tolist())
    ctx.border = border


def _gaussian_backward(ctx, grad):
    gi = torch.ops.imkern.sep_filter_adjoint(grad, ctx.kernels[0], ctx.kernels[1], ctx.border)
    return gi, None, None, None, None, None, None, None


_gaussian_op.register_autograd(_gaussian_backward, setup_context=_gaussian_setup)


def gaussian(
    image: Tensor, sigma, *, ksize=None, truncate: float = 4.0, border: str = "reflect101", cval: float = 0.0
) -> Tensor:
    """:func:`imkern.filters.gaussian` as the differentiable operator ``torch.ops.imkern.gaussian``.

    ``image`` is ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` (imkern's image layouts; permute
    an ``(N, C, H, W)`` batch with ``x.permute(0, 2, 3, 1)``). Gradients flow to ``image`` for
    every border mode (the exact adjoint; see the module docstring).
    """
    # plain Python here (torch.compile traces this function); the op validates the values
    sy, sx = (float(sigma[0]), float(sigma[1])) if isinstance(sigma, (tuple, list)) else (float(sigma),) * 2
    kh, kw = (0, 0) if ksize is None else tuple(_pair(ksize))
    return torch.ops.imkern.gaussian(image, sy, sx, kh, kw, float(truncate), parse_border(border), float(cval))


# ---- correlate ------------------------------------------------------------------------------
@torch.library.custom_op("imkern::correlate", mutates_args=())
def _correlate_op(image: Tensor, kernel: Tensor, border: str, cval: float) -> Tensor:
    return _filters.correlate(image, kernel.detach().cpu().double().numpy(), border=border, cval=cval)


@_correlate_op.register_fake
def _(image, kernel, border, cval):
    torch._check(kernel.dim() == 2, lambda: f"kernel: expected a 2-D kernel, got shape {tuple(kernel.shape)}")
    return torch.empty_like(image, memory_format=torch.contiguous_format)


@torch.library.custom_op("imkern::correlate_backward", mutates_args=())
def _correlate_backward_op(
    grad: Tensor, image: Tensor, kernel: Tensor, border: str, cval: float, need_image: bool, need_kernel: bool
) -> Tuple[Tensor, Tensor]:
    """(grad_image, grad_kernel) of :func:`correlate` (zeros where not needed)."""
    k = kernel.detach().cpu().double().numpy()
    kh, kw = k.shape
    ay, ax = kh // 2, kw // 2
    if need_image:
        kf = k[::-1, ::-1].copy()

        def filt(p):
            return _filters.correlate(p, kf, border="constant", cval=0.0)

        gi = _adjoint(grad, (kh, kw), (ay, ax), border, filt).contiguous()
    else:
        gi = torch.zeros_like(image, dtype=grad.dtype, memory_format=torch.contiguous_format)
    if need_kernel:
        axes = _hw_axes(image.ndim)
        p = _border_pad(image.to(grad.dtype), axes, [(ay, kh - 1 - ay), (ax, kw - 1 - ax)], border, cval)

        # every (image, channel) plane a channel of one conv2d: (1, P, Hp, Wp) * (1, P, H, W)
        def planes(t):
            t4 = t[None, :, :, None] if t.ndim == 2 else (t[None] if t.ndim == 3 else t)
            return t4.permute(0, 3, 1, 2).reshape(1, -1, t4.shape[1], t4.shape[2]).contiguous()

        gk = _F.conv2d(planes(p), planes(grad))[0, 0].to(kernel.dtype).contiguous()
    else:
        gk = torch.zeros_like(kernel, memory_format=torch.contiguous_format)
    return gi, gk


@_correlate_backward_op.register_fake
def _(grad, image, kernel, border, cval, need_image, need_kernel):
    return (
        torch.empty_like(grad, memory_format=torch.contiguous_format),
        torch.empty_like(kernel, memory_format=torch.contiguous_format),
    )


def _correlate_setup(ctx, inputs, output):
    image, kernel, border, cval = inputs
    ctx.save_for_backward(image, kernel)
    ctx.border, ctx.cval = border, cval


def _correlate_backward(ctx, grad):
    image, kernel = ctx.saved_tensors
    need_i, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    gi, gk = torch.ops.imkern.correlate_backward(grad, image, kernel, ctx.border, ctx.cval, need_i, need_k)
    return (gi if need_i else None), (gk if need_k else None), None, None


_correlate_op.register_autograd(_correlate_backward, setup_context=_correlate_setup)


def correlate(image: Tensor, kernel: Tensor, *, border: str = "reflect101", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.correlate` as ``torch.ops.imkern.correlate``, differentiable with
    respect to the image and the kernel (a 2-D tensor), for every border mode."""
    if not isinstance(kernel, Tensor):
        kernel = torch.as_tensor(np.asarray(kernel, np.float64))
    return torch.ops.imkern.correlate(image, kernel, parse_border(border), float(cval))


# ---- resize ---------------------------------------------------------------------------------
@torch.library.custom_op("imkern::resize", mutates_args=())
def _resize_op(image: Tensor, h: int, w: int, interpolation: str, antialias: bool) -> Tensor:
    return _transform.resize(image, (h, w), interpolation=interpolation, antialias=antialias)


def _resized_shape(shape, h, w):
    s = list(shape)
    a, b = _hw_axes(len(s))
    s[a], s[b] = h, w
    return s


@_resize_op.register_fake
def _(image, h, w, interpolation, antialias):
    return image.new_empty(_resized_shape(image.shape, h, w))


@torch.library.custom_op("imkern::resize_backward", mutates_args=())
def _resize_backward_op(grad: Tensor, in_h: int, in_w: int, interpolation: str, antialias: bool) -> Tensor:
    # The adjoint is imkern's resize kernel with the transposed tables (either device).
    from .. import _interop
    from ..transform._resize import resize_adjoint

    return _interop.call(resize_adjoint, (grad.contiguous(), (in_h, in_w), interpolation, antialias), {})


@_resize_backward_op.register_fake
def _(grad, in_h, in_w, interpolation, antialias):
    return grad.new_empty(_resized_shape(grad.shape, in_h, in_w))


def _resize_setup(ctx, inputs, output):
    image, h, w, interpolation, antialias = inputs
    a, b = _hw_axes(image.ndim)
    ctx.in_hw = (image.shape[a], image.shape[b])
    ctx.mode = (interpolation, antialias)


def _resize_backward(ctx, grad):
    gi = torch.ops.imkern.resize_backward(grad, ctx.in_hw[0], ctx.in_hw[1], ctx.mode[0], ctx.mode[1])
    return gi, None, None, None, None


_resize_op.register_autograd(_resize_backward, setup_context=_resize_setup)


def resize(image: Tensor, size, *, interpolation: str = "bilinear", antialias: bool = False) -> Tensor:
    """:func:`imkern.transform.resize` as ``torch.ops.imkern.resize`` (image layouts as
    :func:`gaussian`); differentiable for float images: the backward is the transpose of the
    forward's coefficient tables (exact)."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueError(f"size: expected (h, w), got {size!r}")
    return torch.ops.imkern.resize(image, int(size[0]), int(size[1]), str(interpolation), bool(antialias))


# ---- conv2d ---------------------------------------------------------------------------------
def _pair(v) -> List[int]:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return [int(v[0])] * 2
        return [int(v[0]), int(v[1])]
    return [int(v), int(v)]


def _conv_padding(padding):
    """(padding ints, padding_mode str): "same"/"valid" passed by name, ints as a pair."""
    if isinstance(padding, str):
        return [0, 0], padding
    return _pair(padding), ""


def _conv_pad_arg(padding: List[int], padding_mode: str):
    return padding_mode if padding_mode else tuple(padding)


@torch.library.custom_op("imkern::conv2d", mutates_args=())
def _conv2d_op(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: List[int],
    padding: List[int],
    padding_mode: str,
    dilation: List[int],
    groups: int,
) -> Tensor:
    return _F.conv2d(x, weight, bias, tuple(stride), _conv_pad_arg(padding, padding_mode), tuple(dilation), groups)


def _conv_out(n, k, d, s, p_total):
    return (n + p_total - d * (k - 1) - 1) // s + 1


@_conv2d_op.register_fake
def _(x, weight, bias, stride, padding, padding_mode, dilation, groups):
    n, _, h, w = x.shape
    kk, _, r, s = weight.shape
    if padding_mode == "same":
        oh, ow = h, w
    else:
        ph, pw = (0, 0) if padding_mode == "valid" else padding
        oh = _conv_out(h, r, dilation[0], stride[0], 2 * ph)
        ow = _conv_out(w, s, dilation[1], stride[1], 2 * pw)
    return x.new_empty((n, kk, oh, ow))


@torch.library.custom_op("imkern::conv2d_backward", mutates_args=())
def _conv2d_backward_op(
    grad: Tensor,
    x: Tensor,
    weight: Tensor,
    stride: List[int],
    padding: List[int],
    padding_mode: str,
    dilation: List[int],
    groups: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    return _F.conv2d_backward(
        grad, x, weight, tuple(stride), _conv_pad_arg(padding, padding_mode), tuple(dilation), groups
    )


@_conv2d_backward_op.register_fake
def _(grad, x, weight, stride, padding, padding_mode, dilation, groups):
    return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty((weight.shape[0],))


def _conv2d_setup(ctx, inputs, output):
    x, weight, bias, stride, padding, padding_mode, dilation, groups = inputs
    ctx.save_for_backward(x, weight)
    ctx.args = (stride, padding, padding_mode, dilation, groups)
    ctx.has_bias = bias is not None


def _conv2d_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    gi, gw, gb = torch.ops.imkern.conv2d_backward(grad.contiguous(), x, weight, *ctx.args)
    return gi, gw, (gb if ctx.has_bias else None), None, None, None, None, None


_conv2d_op.register_autograd(_conv2d_backward, setup_context=_conv2d_setup)


def conv2d(
    x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1, groups: int = 1
) -> Tensor:
    """``torch.nn.functional.conv2d`` on imkern's kernels (``torch.ops.imkern.conv2d``),
    differentiable through :func:`imkern.nn.functional.conv2d_backward`.
    ``x`` is ``(N, C, H, W)``; float32/float64 on the CPU, float32/float16/bfloat16 on CUDA."""
    pad, mode = _conv_padding(padding)
    return torch.ops.imkern.conv2d(x, weight, bias, _pair(stride), pad, mode, _pair(dilation), int(groups))


# ---- linear ---------------------------------------------------------------------------------
@torch.library.custom_op("imkern::linear", mutates_args=())
def _linear_op(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    return _F.linear(x, weight, bias)


@_linear_op.register_fake
def _(x, weight, bias):
    return x.new_empty(tuple(x.shape[:-1]) + (weight.shape[0],))


@torch.library.custom_op("imkern::linear_backward", mutates_args=())
def _linear_backward_op(grad: Tensor, x: Tensor, weight: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    return _F.linear_backward(grad, x, weight)


@_linear_backward_op.register_fake
def _(grad, x, weight):
    return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty((weight.shape[0],))


def _linear_setup(ctx, inputs, output):
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _linear_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    gi, gw, gb = torch.ops.imkern.linear_backward(grad.contiguous(), x, weight)
    return gi, gw, (gb if ctx.has_bias else None)


_linear_op.register_autograd(_linear_backward, setup_context=_linear_setup)


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``torch.nn.functional.linear`` on imkern's GEMM (``torch.ops.imkern.linear``), differentiable."""
    return torch.ops.imkern.linear(x, weight, bias)


# ---- pooling --------------------------------------------------------------------------------
def _pool_out(n, k, s, p, d, ceil_mode):
    # torch's pooling_output_shape
    o = (n + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o = o - 1
    return o


def _pool_shape(x, k, s, p, d, ceil_mode):
    h, w = x.shape[-2], x.shape[-1]
    oh = _pool_out(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = _pool_out(w, k[1], s[1], p[1], d[1], ceil_mode)
    return tuple(x.shape[:-2]) + (oh, ow)


@torch.library.custom_op("imkern::max_pool2d", mutates_args=())
def _max_pool2d_op(
    x: Tensor, kernel_size: List[int], stride: List[int], padding: List[int], dilation: List[int], ceil_mode: bool
) -> Tuple[Tensor, Tensor]:
    return _F.max_pool2d(
        x, tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation), ceil_mode, return_indices=True
    )


@_max_pool2d_op.register_fake
def _(x, kernel_size, stride, padding, dilation, ceil_mode):
    shape = _pool_shape(x, kernel_size, stride, padding, dilation, ceil_mode)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


@torch.library.custom_op("imkern::max_pool2d_backward", mutates_args=())
def _max_pool2d_backward_op(grad: Tensor, indices: Tensor, input_shape: List[int]) -> Tensor:
    return _F.max_pool2d_backward(grad, indices, tuple(input_shape))


@_max_pool2d_backward_op.register_fake
def _(grad, indices, input_shape):
    return grad.new_empty(input_shape)


def _max_pool2d_setup(ctx, inputs, output):
    ctx.input_shape = list(inputs[0].shape)
    ctx.save_for_backward(output[1])


def _max_pool2d_backward(ctx, grad, grad_indices):
    (indices,) = ctx.saved_tensors
    gi = torch.ops.imkern.max_pool2d_backward(grad.contiguous(), indices, ctx.input_shape)
    return gi, None, None, None, None, None


_max_pool2d_op.register_autograd(_max_pool2d_backward, setup_context=_max_pool2d_setup)


# Without autograd (inference, or an input that needs no gradient) the indices are not needed:
# they are an int64 tensor twice the output's size, so computing and allocating them cost as
# much again as the pooling (a fresh 50 MB allocation per call, zeroed by the kernel, in the
# 32x64x112x112 3x3 benchmark). torch's own kernels skip them the same way. Under torch.compile
# the choice is made when tracing (dynamo guards on the grad mode and on requires_grad).
@torch.library.custom_op("imkern::max_pool2d_values", mutates_args=())
def _max_pool2d_values_op(
    x: Tensor, kernel_size: List[int], stride: List[int], padding: List[int], dilation: List[int], ceil_mode: bool
) -> Tensor:
    return _F.max_pool2d(x, tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation), ceil_mode)


@_max_pool2d_values_op.register_fake
def _(x, kernel_size, stride, padding, dilation, ceil_mode):
    return x.new_empty(_pool_shape(x, kernel_size, stride, padding, dilation, ceil_mode))


def _max_pool2d_values_setup(ctx, inputs, output):
    x, ctx.kernel_size, ctx.stride, ctx.padding, ctx.dilation, ctx.ceil_mode = inputs
    ctx.save_for_backward(x)


def _max_pool2d_values_backward(ctx, grad):
    # differentiable for completeness (max_pool2d() uses this op only without autograd): the
    # indices are recomputed from the saved input
    (x,) = ctx.saved_tensors
    _, indices = torch.ops.imkern.max_pool2d(x, ctx.kernel_size, ctx.stride, ctx.padding, ctx.dilation, ctx.ceil_mode)
    gi = torch.ops.imkern.max_pool2d_backward(grad.contiguous(), indices, list(x.shape))
    return gi, None, None, None, None, None


_max_pool2d_values_op.register_autograd(_max_pool2d_values_backward, setup_context=_max_pool2d_values_setup)


def max_pool2d(
    x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, return_indices: bool = False
):
    """``torch.nn.functional.max_pool2d`` on imkern's kernels (``torch.ops.imkern.max_pool2d``),
    differentiable; ``x`` is ``(N, C, H, W)`` or ``(C, H, W)``."""
    k = _pair(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride)
    p, d, c = _pair(padding), _pair(dilation), bool(ceil_mode)
    if not return_indices and not (x.requires_grad and torch.is_grad_enabled()):
        return torch.ops.imkern.max_pool2d_values(x, k, s, p, d, c)
    y, i = torch.ops.imkern.max_pool2d(x, k, s, p, d, c)
    return (y, i) if return_indices else y


@torch.library.custom_op("imkern::avg_pool2d", mutates_args=())
def _avg_pool2d_op(
    x: Tensor,
    kernel_size: List[int],
    stride: List[int],
    padding: List[int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
) -> Tensor:
    return _F.avg_pool2d(
        x, tuple(kernel_size), tuple(stride), tuple(padding), ceil_mode, count_include_pad, divisor_override
    )


@_avg_pool2d_op.register_fake
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return x.new_empty(_pool_shape(x, kernel_size, stride, padding, (1, 1), ceil_mode))


@torch.library.custom_op("imkern::avg_pool2d_backward", mutates_args=())
def _avg_pool2d_backward_op(
    grad: Tensor,
    input_shape: List[int],
    kernel_size: List[int],
    stride: List[int],
    padding: List[int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
) -> Tensor:
    return _F.avg_pool2d_backward(
        grad,
        tuple(input_shape),
        tuple(kernel_size),
        tuple(stride),
        tuple(padding),
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


@_avg_pool2d_backward_op.register_fake
def _(grad, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return grad.new_empty(input_shape)


def _avg_pool2d_setup(ctx, inputs, output):
    x, *args = inputs
    ctx.input_shape = list(x.shape)
    ctx.args = args


def _avg_pool2d_backward(ctx, grad):
    gi = torch.ops.imkern.avg_pool2d_backward(grad.contiguous(), ctx.input_shape, *ctx.args)
    return gi, None, None, None, None, None, None


_avg_pool2d_op.register_autograd(_avg_pool2d_backward, setup_context=_avg_pool2d_setup)


def avg_pool2d(
    x: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> Tensor:
    """``torch.nn.functional.avg_pool2d`` on imkern's kernels (``torch.ops.imkern.avg_pool2d``),
    differentiable."""
    k = _pair(kernel_size)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride)
    return torch.ops.imkern.avg_pool2d(
        x,
        k,
        s,
        _pair(padding),
        bool(ceil_mode),
        bool(count_include_pad),
        None if divisor_override is None else int(divisor_override),
    )


# ---- sobel ----------------------------------------------------------------------------------
@torch.library.custom_op("imkern::sobel", mutates_args=())
def _sobel_op(
    image: Tensor, dx: int, dy: int, ksize: int, scale: float, delta: float, border: str, cval: float
) -> Tensor:
    return _filters.sobel(image, dx, dy, ksize=ksize, scale=scale, delta=delta, border=border, cval=cval)


@_sobel_op.register_fake
def _(image, dx, dy, ksize, scale, delta, border, cval):
    dt = torch.float64 if image.dtype == torch.float64 else torch.float32
    return torch.empty_like(image, dtype=dt, memory_format=torch.contiguous_format)


def _sobel_setup(ctx, inputs, output):
    from ..filters._derivatives import sobel_kernels

    image, dx, dy, ksize, scale, delta, border, cval = inputs
    kx, ky = sobel_kernels(dx, dy, ksize)
    ctx.kernels = ((ky * scale).tolist(), kx.tolist())
    ctx.border = border


def _sobel_backward(ctx, grad):
    gi = torch.ops.imkern.sep_filter_adjoint(grad, ctx.kernels[0], ctx.kernels[1], ctx.border)
    return gi, None, None, None, None, None, None, None


_sobel_op.register_autograd(_sobel_backward, setup_context=_sobel_setup)


def sobel(
    image: Tensor,
    dx: int = 1,
    dy: int = 0,
    *,
    ksize: int = 3,
    scale: float = 1.0,
    delta: float = 0.0,
    border: str = "reflect101",
    cval: float = 0.0,
) -> Tensor:
    """:func:`imkern.filters.sobel` as ``torch.ops.imkern.sobel`` (float32 result, float64 for
    float64 images), differentiable in ``image`` for every border mode."""
    return torch.ops.imkern.sobel(
        image, int(dx), int(dy), int(ksize), float(scale), float(delta), parse_border(border), float(cval)
    )


# ---- adaptive_avg_pool2d ------------------------------------------------------------------------
@torch.library.custom_op("imkern::adaptive_avg_pool2d", mutates_args=())
def _adaptive_avg_pool2d_op(x: Tensor, output_size: List[int]) -> Tensor:
    return _F.adaptive_avg_pool2d(x, tuple(output_size))


@_adaptive_avg_pool2d_op.register_fake
def _(x, output_size):
    return x.new_empty(tuple(x.shape[:-2]) + tuple(output_size))


@torch.library.custom_op("imkern::adaptive_avg_pool2d_backward", mutates_args=())
def _adaptive_avg_pool2d_backward_op(grad: Tensor, input_shape: List[int]) -> Tensor:
    return _F.adaptive_avg_pool2d_backward(grad, tuple(input_shape))


@_adaptive_avg_pool2d_backward_op.register_fake
def _(grad, input_shape):
    return grad.new_empty(input_shape)


def _adaptive_setup(ctx, inputs, output):
    ctx.input_shape = list(inputs[0].shape)


def _adaptive_backward(ctx, grad):
    return torch.ops.imkern.adaptive_avg_pool2d_backward(grad.contiguous(), ctx.input_shape), None


_adaptive_avg_pool2d_op.register_autograd(_adaptive_backward, setup_context=_adaptive_setup)


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool2d`` on imkern's kernels, differentiable."""
    if isinstance(output_size, (tuple, list)):
        size = [x.shape[-2 + i] if v is None else int(v) for i, v in enumerate(output_size)]
    else:
        size = [int(output_size)] * 2
    return torch.ops.imkern.adaptive_avg_pool2d(x, size)
