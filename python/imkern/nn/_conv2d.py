"""conv2d forward and backward with PyTorch's semantics.

NumPy arrays run on the C++ kernels (implicit GEMM / im2col + blocked GEMM, Winograd for
float32 3x3 stride-1 convolutions; float32 / float64), CuPy arrays on the CUDA kernels
(float32, float16, bfloat16). Inputs are never modified; layouts the kernels cannot read
(strided, reversed, Fortran-ordered) are copied to C-contiguous arrays first.
"""

from __future__ import annotations

import numpy as np

from .. import _arrays as A
from .. import _core, _runtime
from .. import _driver as D
from . import _checks as K

__all__ = ["conv2d", "conv2d_backward"]


def _conv_geometry(x, weight, stride, padding, dilation, groups):
    """Validate shapes and arguments; return (stride, pads (t, b, l, r), dilation, groups, (OH, OW))."""
    if x.ndim != 4:
        raise ValueError(f"x: expected a tensor of shape (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"weight: expected shape (K, C/groups, R, S), got shape {tuple(weight.shape)}")
    # Every int argument is range-checked here, naming it (the kernels take int64).
    groups = A.int_in_range(groups, "groups", 1, _INT64_MAX)
    n, c, h, w = x.shape
    k, cg, r, s = weight.shape
    if c % groups or k % groups:
        raise ValueError(
            f"groups: {groups} must divide the input channels and the output channels; "
            f"x shape {tuple(x.shape)}, weight shape {tuple(weight.shape)}"
        )
    if cg != c // groups:
        hint = ""
        if w == cg * groups:
            hint = (
                f"; x looks channels-last (N, H, W, C) with C = {w}: conv2d takes (N, C, H, W), "
                "transpose it (x.transpose(0, 3, 1, 2)) or use imkern.transform.to_tensor"
            )
        raise ValueError(
            f"weight: expected shape ({k}, {c // groups}, R, S) for x of shape {tuple(x.shape)} and "
            f"groups={groups}, got shape {tuple(weight.shape)}{hint}"
        )
    if r < 1 or s < 1:
        raise ValueError(f"weight: kernel size must be positive, got shape {tuple(weight.shape)}")
    st = A.pair_in_range(stride, "stride", 1, _INT64_MAX)
    dil = A.pair_in_range(dilation, "dilation", 1, _INT64_MAX)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if st != (1, 1):
                raise ValueError(f"padding: 'same' requires stride 1 (as torch), got stride {stride!r}")
            th, tw = dil[0] * (r - 1), dil[1] * (s - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"padding: expected an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        ph, pw = A.pair_in_range(padding, "padding", 0, _INT64_MAX)
        pads = (ph, ph, pw, pw)
    eh = h + pads[0] + pads[1] - dil[0] * (r - 1) - 1
    ew = w + pads[2] + pads[3] - dil[1] * (s - 1) - 1
    if eh < 0 or ew < 0:
        raise ValueError(
            f"weight: the dilated kernel ({dil[0] * (r - 1) + 1}, {dil[1] * (s - 1) + 1}) is larger than the padded "
            f"input ({h + pads[0] + pads[1]}, {w + pads[2] + pads[3]}); x shape {tuple(x.shape)}"
        )
    oh, ow = eh // st[0] + 1, ew // st[1] + 1
    _check_sizes(n, c, h, w, k, cg, r, s, st, pads, dil, oh, ow)
    return st, pads, dil, groups, (oh, ow)


_INT64_MAX = 2**63 - 1


def _check_sizes(n, c, h, w, k, cg, r, s, st, pads, dil, oh, ow):
    """Every size product the kernels form must fit in int64: OverflowError before any kernel
    runs (a wrapped product once sized a buffer at 0 elements and the copy into it crashed)."""
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    sizes = {
        "the padded height and width": max(hp, wp),
        "a block of padded rows (C * (W + pad) * dilated R)": c * wp * ((r - 1) * dil[0] + 1),
        "the output (N * K * OH * OW)": n * k * oh * ow,
        "the weight (K * C/groups * R * S)": k * cg * r * s,
        "the im2col matrix (C/groups * R * S * OH * OW)": cg * r * s * oh * ow,
        "the strided extent (OH * stride + R * dilation)": max(oh * st[0] + r * dil[0], ow * st[1] + s * dil[1]),
    }
    for what, v in sizes.items():
        if v > _INT64_MAX:
            raise OverflowError(f"conv2d: {what} = {v} elements does not fit in 64 bits")


@K.torch_names(input="x")
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None, out=None):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    ``out[n, k, oh, ow] = bias[k] + sum_{c, r, s} weight[k, c, r, s] *
    x[n, g * C/groups + c, oh * sh - top + r * dh, ow * sw - left + s * dw]`` where ``g`` is
    output channel ``k``'s group and ``x`` is zero outside the image.

    On the CPU, float32 3x3 stride-1 convolutions (dilation 1, groups 1, C and K >= 16, a few
    hundred output pixels or more per call) use Winograd F(4x4, 3x3) by default: about 4x
    fewer multiplications, error ~1e-6 relative to the output's scale (about three times the
    direct path's), and a NaN or Inf input pixel spreads to the whole 4x4 output tiles
    whose 6x6 windows contain it. :func:`imkern.set_allow_winograd` ``(False)`` gives the
    direct path. float64 is always direct.

    Args:
        x: ``(N, C, H, W)``; float32 or float64 (CPU), float32, float16 or bfloat16 (CUDA).
            ``input=`` (torch's name) is accepted too.
        weight: ``(K, C / groups, R, S)``, same dtype and kind as ``x``.
        bias: ``(K,)`` or None.
        stride: int or ``(sh, sw)``, positive.
        padding: int, ``(ph, pw)``, ``"valid"`` (no padding) or ``"same"`` (stride 1 only; the
            total ``dilation * (kernel - 1)`` is split with the extra pixel at the bottom/right).
        dilation: int or ``(dh, dw)``, positive.
        groups: splits C and K into ``groups`` independent convolutions (``groups == C == K``:
            depthwise).
        activation: None or ``"relu"`` (fused into the output write).
        out: optional ``(N, K, OH, OW)`` array of ``x``'s dtype and kind to write into.

    Returns:
        ``(N, K, OH, OW)`` with ``OH = (H + top + bottom - dh * (R - 1) - 1) // sh + 1`` (OW
        likewise).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.ones((1, 2, 4, 4), np.float32)
        >>> w = np.ones((3, 2, 3, 3), np.float32)
        >>> y = F.conv2d(x, w, padding=1)
        >>> y.shape, float(y[0, 0, 1, 1]), float(y[0, 0, 0, 0])
        ((1, 3, 4, 4), 18.0, 8.0)
    """
    kind, dname = K.kind_dtype(x, "x")
    K.input_like_params(x, "x", kind, dname, ((weight, "weight"), (bias, "bias")))
    if activation not in (None, "relu"):
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    st, pads, dil, groups, (oh, ow) = _conv_geometry(x, weight, stride, padding, dilation, groups)
    k = weight.shape[0]
    if bias is not None and tuple(bias.shape) != (k,):
        raise ValueError(
            f"bias: expected shape ({k},) for weight of shape {tuple(weight.shape)}, got {tuple(bias.shape)}"
        )
    relu = activation == "relu"

    shape = _shape(x, weight, st, pads, dil, groups, oh, ow)

    def cpu(xc, wc, bc, y):
        _core.conv2d(xc, wc, bc, y, shape, relu, _runtime.winograd_mode)

    def cuda(xc, wc, bc, y, stream):
        _core.cuda_conv2d(
            A.DTYPE_CODES[xc.dtype], shape, D.ptr(xc), D.ptr(wc), D.ptr(bc), relu, D.ptr(y), _runtime.allow_tf32, stream
        )

    return D.run_op(kind, [x, weight, bias], out, cpu, cuda, shape=(x.shape[0], k, oh, ow), dtype=x.dtype)


def _shape(x, w, st, pads, dil, groups, oh, ow):
    """The conv descriptor both devices' kernels take (imkern::Conv2dShape)."""
    n, c, h, wd = (int(v) for v in x.shape)
    k, _, r, s = (int(v) for v in w.shape)
    return _core.Conv2dShape(
        n=n,
        c=c,
        h=h,
        w=wd,
        k=k,
        r=r,
        s=s,
        groups=groups,
        sh=st[0],
        sw=st[1],
        pt=pads[0],
        pb=pads[1],
        pl=pads[2],
        pr=pads[3],
        dh=dil[0],
        dw=dil[1],
        oh=oh,
        ow=ow,
    )


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *, output_mask=None):
    """Gradients of :func:`conv2d` (as torch.autograd computes them).

    For a float32 3x3 stride-1 convolution (dilation 1, groups 1, C and K >= 16, enough
    pixels), grad_input (for padding <= 2) and grad_weight (for images wide enough, or many
    channels) are computed with Winograd F(4x4, 3x3) on the CPU by default (error ~1e-6
    relative, about three times the direct path's for grad_input, about the same for
    grad_weight); :func:`imkern.set_allow_winograd` ``(False)`` gives the direct path.
    grad_bias and float64 are always direct.

    Args:
        grad_output: ``(N, K, OH, OW)``, the gradient of the loss with respect to the output.
        x, weight, stride, padding, dilation, groups: as given to :func:`conv2d`.

    ``output_mask=(False, True, True)`` skips grad_input (returned as ``None``), as
    ``torch.ops.aten.convolution_backward``'s output mask does when the input needs no gradient
    (the first layer of a network); grad_weight and grad_bias are always computed.

    Returns:
        ``(grad_input, grad_weight, grad_bias)`` of shapes ``(N, C, H, W)``,
        ``(K, C / groups, R, S)`` and ``(K,)``. (With a fused ReLU, mask ``grad_output`` by
        ``out > 0`` first.)

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.ones((1, 1, 3, 3)); w = np.ones((1, 1, 3, 3))
        >>> gi, gw, gb = F.conv2d_backward(np.ones((1, 1, 3, 3)), x, w, padding=1)
        >>> float(gi[0, 0, 1, 1]), float(gw[0, 0, 1, 1]), float(gb[0])
        (9.0, 9.0, 9.0)
    """
    kind, dname = K.kind_dtype(x, "x")
    K.input_like_params(x, "x", kind, dname, ((weight, "weight"),))
    K.same_as(grad_output, "grad_output", kind, dname)
    st, pads, dil, groups, (oh, ow) = _conv_geometry(x, weight, stride, padding, dilation, groups)
    n, k = x.shape[0], weight.shape[0]
    if tuple(grad_output.shape) != (n, k, oh, ow):
        raise ValueError(
            f"grad_output: expected shape {(n, k, oh, ow)} for x of shape {tuple(x.shape)} and weight of shape "
            f"{tuple(weight.shape)}, got {tuple(grad_output.shape)}"
        )
    if output_mask is None:
        want_gi = True
    else:
        if len(output_mask) != 3 or not all(isinstance(m, (bool, np.bool_)) for m in output_mask):
            raise ValueError(f"output_mask: expected 3 bools (grad_input, grad_weight, grad_bias), got {output_mask!r}")
        want_gi = bool(output_mask[0])
    gi = D.empty(kind, x, x.shape, x.dtype) if want_gi else None
    gw = D.empty(kind, x, weight.shape, x.dtype)
    gb = D.empty(kind, x, (k,), x.dtype)
    if x.size == 0 or grad_output.size == 0 or weight.size == 0:
        if gi is not None:
            gi[...] = 0
        gw[...] = 0
        gb[...] = grad_output.sum(axis=(0, 2, 3)) if grad_output.size else 0
        return gi, gw, gb
    goc, xc, wc = D.contiguous(grad_output, kind), D.contiguous(x, kind), D.contiguous(weight, kind)
    shape = _shape(x, weight, st, pads, dil, groups, oh, ow)

    def cpu():
        _core.conv2d_backward(goc, xc, wc, gi, gw, gb, shape, _runtime.winograd_mode)

    def cuda(stream):
        code = A.DTYPE_CODES[xc.dtype]
        if gi is not None:
            _core.cuda_conv2d_backward_data(code, shape, D.ptr(goc), D.ptr(wc), D.ptr(gi), _runtime.allow_tf32, stream)
        _core.cuda_conv2d_backward_weight(code, shape, D.ptr(goc), D.ptr(xc), D.ptr(gw), _runtime.allow_tf32, stream)
        _core.cuda_channel_sum(code, n, k, oh * ow, D.ptr(goc), D.ptr(gb), stream)

    D.launch(kind, xc, cpu, cuda)
    return gi, gw, gb
