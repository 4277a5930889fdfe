"""imkern.filters as PyTorch operators (``torch.ops.imkern.*``), beyond gaussian/correlate/sobel.

Every op here is a ``torch.library.custom_op`` whose implementation is the imkern function of
the same name (CPU tensors -> the C++ kernels, CUDA tensors -> the CUDA kernels), with a fake
kernel for ``torch.compile``. Images are imkern's layouts: ``(H, W)``, ``(H, W, C)`` or
``(N, H, W, C)`` (permute an NCHW batch with ``x.permute(0, 2, 3, 1)``).

Gradients (``register_autograd``), all exact adjoints, for float images:

* linear filters (box, sep_filter, convolve, scharr, prewitt, laplacian, gradient) and
  unsharp_mask (linear where ``threshold == 0``; with a threshold the mask of sharpened pixels
  is held fixed, the derivative almost everywhere): the border-folded adjoint of
  :mod:`imkern.torch._ops` (a zero-border correlation with the flipped kernels, then the
  border's outside taps added back onto the pixels they read). sep_filter and convolve also
  give the kernels' gradients.
* gradient_magnitude: the chain rule through the two Sobel adjoints (``gx / |g|``; 0 where the
  magnitude is 0, as torch's ``norm``); the L1 form uses ``sign``.
* threshold: the derivative almost everywhere (identity where the output is ``x``, 0 where it
  is a constant), as torch's ``where``/``relu`` do.

No autograd (backward raises "no autograd formula was registered"): median, erode, dilate,
opening, closing, morph_gradient, tophat, blackhat, minimum_filter, maximum_filter (rank
filters: the subgradient at ties has no agreed convention, and torch has no native op to match),
bilateral (imkern has no backward kernel), and the uint8-only or integer-valued results
(threshold_otsu, threshold_triangle, adaptive_threshold, canny).
"""

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .. import filters as _filters
from .._borders import parse_border
from .._kernels import gaussian_kernels
from ._ops import _adjoint, _pair

__all__ = [
    "box",
    "sep_filter",
    "convolve",
    "scharr",
    "prewitt",
    "laplacian",
    "gradient",
    "gradient_magnitude",
    "unsharp_mask",
    "median",
    "erode",
    "dilate",
    "opening",
    "closing",
    "morph_gradient",
    "tophat",
    "blackhat",
    "minimum_filter",
    "maximum_filter",
    "bilateral",
    "threshold",
    "threshold_otsu",
    "threshold_triangle",
    "adaptive_threshold",
    "canny",
]


def _like(image: Tensor, dtype=None) -> Tensor:
    return torch.empty_like(image, dtype=dtype, memory_format=torch.contiguous_format)


def _deriv_dtype(image: Tensor):
    return torch.float64 if image.dtype == torch.float64 else torch.float32


def _np64(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _sep_adj(grad: Tensor, ky, kx, border: str) -> Tensor:
    """The adjoint of ``sep_filter(., ky, kx, border=border)`` (anchors len // 2) at ``grad``."""
    ky, kx = np.asarray(ky, np.float64), np.asarray(kx, np.float64)
    kyf, kxf = ky[::-1].copy(), kx[::-1].copy()

    def filt(p):
        return _filters.sep_filter(p, kyf, kxf, border="constant", cval=0.0)

    return _adjoint(grad, (len(ky), len(kx)), (len(ky) // 2, len(kx) // 2), border, filt)


def _fresh(result: Tensor, image: Tensor) -> Tensor:
    """A custom op may not return a view of its input: copy when imkern returned one."""
    if (
        isinstance(result, Tensor)
        and result.numel()
        and result.untyped_storage().data_ptr() == (image.untyped_storage().data_ptr())
    ):
        return result.clone(memory_format=torch.contiguous_format)
    return result


# ---- box ----------------------------------------------------------------------------------------
@torch.library.custom_op("imkern::box", mutates_args=())
def _box_op(image: Tensor, size_y: int, size_x: int, normalize: bool, border: str, cval: float) -> Tensor:
    return _filters.box(image, (size_y, size_x), normalize=normalize, border=border, cval=cval)


@_box_op.register_fake
def _(image, size_y, size_x, normalize, border, cval):
    return _like(image)


def _box_setup(ctx, inputs, output):
    image, kh, kw, normalize, border, cval = inputs
    s = 1.0 / (kh * kw) if normalize else 1.0
    ctx.kernels = ([s] * kh, [1.0] * kw)
    ctx.border = border


def _sep_kernels_backward(ctx, grad):
    gi = torch.ops.imkern.sep_filter_adjoint(grad, ctx.kernels[0], ctx.kernels[1], ctx.border)
    return (gi,) + (None,) * ctx.n_rest


def _box_backward(ctx, grad):
    ctx.n_rest = 5
    return _sep_kernels_backward(ctx, grad)


_box_op.register_autograd(_box_backward, setup_context=_box_setup)


def box(image: Tensor, size, *, normalize: bool = True, border: str = "reflect101", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.box` as ``torch.ops.imkern.box``, differentiable for float images."""
    kh, kw = _pair(size)
    return torch.ops.imkern.box(image, kh, kw, bool(normalize), parse_border(border), float(cval))


# ---- sep_filter -----------------------------------------------------------------------------
@torch.library.custom_op("imkern::sep_filter", mutates_args=())
def _sep_filter_op(image: Tensor, kernel_y: Tensor, kernel_x: Tensor, border: str, cval: float) -> Tensor:
    return _filters.sep_filter(image, _np64(kernel_y), _np64(kernel_x), border=border, cval=cval)


@_sep_filter_op.register_fake
def _(image, kernel_y, kernel_x, border, cval):
    torch._check(kernel_y.dim() == 1 and kernel_x.dim() == 1, lambda: "kernel_y, kernel_x: expected 1-D kernels")
    return _like(image)


@torch.library.custom_op("imkern::sep_filter_backward", mutates_args=())
def _sep_filter_backward_op(
    grad: Tensor, image: Tensor, kernel_y: Tensor, kernel_x: Tensor, border: str, cval: float, need_kernels: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    """(grad_image, grad_kernel_y, grad_kernel_x) of :func:`sep_filter`: the image's by the
    separable adjoint; the kernels' from correlate's kernel gradient of the outer product
    ``K = ky kx^T`` (the same filter): ``gky = gK kx``, ``gkx = gK^T ky``."""
    ky, kx = _np64(kernel_y), _np64(kernel_x)
    gi = _sep_adj(grad, ky, kx, border).contiguous()
    if need_kernels:
        k2 = torch.as_tensor(np.outer(ky, kx), dtype=torch.float64)
        _, gk = torch.ops.imkern.correlate_backward(grad, image, k2, border, cval, False, True)
        gk = gk.to(torch.float64)
        gky = (gk @ torch.as_tensor(kx, device=gk.device)).to(kernel_y.device, kernel_y.dtype)
        gkx = (gk.T @ torch.as_tensor(ky, device=gk.device)).to(kernel_x.device, kernel_x.dtype)
    else:
        gky, gkx = torch.zeros_like(kernel_y), torch.zeros_like(kernel_x)
    return gi, gky.contiguous(), gkx.contiguous()


@_sep_filter_backward_op.register_fake
def _(grad, image, kernel_y, kernel_x, border, cval, need_kernels):
    return _like(grad), _like(kernel_y), _like(kernel_x)


def _sep_filter_setup(ctx, inputs, output):
    image, ky, kx, border, cval = inputs
    ctx.save_for_backward(image, ky, kx)
    ctx.border, ctx.cval = border, cval


def _sep_filter_backward(ctx, grad):
    image, ky, kx = ctx.saved_tensors
    need_k = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    gi, gky, gkx = torch.ops.imkern.sep_filter_backward(grad, image, ky, kx, ctx.border, ctx.cval, need_k)
    n = ctx.needs_input_grad
    return (gi if n[0] else None), (gky if n[1] else None), (gkx if n[2] else None), None, None


_sep_filter_op.register_autograd(_sep_filter_backward, setup_context=_sep_filter_setup)


def _kernel_tensor(k, ndim: int) -> Tensor:
    t = k if isinstance(k, Tensor) else torch.as_tensor(np.asarray(k, np.float64))
    if t.dim() != ndim:
        raise ValueError(f"kernel: expected a {ndim}-D kernel, got shape {tuple(t.shape)}")
    return t


def sep_filter(image: Tensor, kernel_y, kernel_x, *, border: str = "reflect101", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.sep_filter` as ``torch.ops.imkern.sep_filter``: differentiable with
    respect to the image and both 1-D kernels (tensors), for every border mode."""
    return torch.ops.imkern.sep_filter(
        image, _kernel_tensor(kernel_y, 1), _kernel_tensor(kernel_x, 1), parse_border(border), float(cval)
    )


# ---- convolve -------------------------------------------------------------------------------
@torch.library.custom_op("imkern::convolve", mutates_args=())
def _convolve_op(image: Tensor, kernel: Tensor, border: str, cval: float) -> Tensor:
    return _filters.convolve(image, _np64(kernel), border=border, cval=cval)


@_convolve_op.register_fake
def _(image, kernel, border, cval):
    torch._check(kernel.dim() == 2, lambda: f"kernel: expected a 2-D kernel, got shape {tuple(kernel.shape)}")
    return _like(image)


@torch.library.custom_op("imkern::convolve_backward", mutates_args=())
def _convolve_backward_op(
    grad: Tensor, image: Tensor, kernel: Tensor, border: str, cval: float, need_kernel: bool
) -> Tuple[Tensor, Tensor]:
    """convolve(I, k) is a correlation with ``k`` flipped, anchored at ``k.shape - 1 - k.shape // 2``:
    its adjoint correlates with ``k`` itself. Mirrored on both axes, the same filter is
    ``R convolve(I, k) = correlate(R I, k)`` anchored at ``k.shape // 2`` (every border rule is
    symmetric), so ``k``'s gradient is correlate's kernel gradient on the mirrored image and
    gradient."""
    k = _np64(kernel)
    kh, kw = k.shape

    def filt(p):
        return _filters.correlate(p, k, border="constant", cval=0.0)

    gi = _adjoint(grad, (kh, kw), (kh - 1 - kh // 2, kw - 1 - kw // 2), border, filt).contiguous()
    if need_kernel:
        a, b = (1, 2) if image.ndim == 4 else (0, 1)
        _, gk = torch.ops.imkern.correlate_backward(
            grad.flip(a, b).contiguous(), image.flip(a, b).contiguous(), torch.as_tensor(k), border, cval, False, True
        )
        gk = gk.to(kernel.device, kernel.dtype).contiguous()
    else:
        gk = torch.zeros_like(kernel)
    return gi, gk


@_convolve_backward_op.register_fake
def _(grad, image, kernel, border, cval, need_kernel):
    return _like(grad), _like(kernel)


def _convolve_setup(ctx, inputs, output):
    image, kernel, border, cval = inputs
    ctx.save_for_backward(image, kernel)
    ctx.border, ctx.cval = border, cval


def _convolve_backward(ctx, grad):
    image, kernel = ctx.saved_tensors
    n = ctx.needs_input_grad
    gi, gk = torch.ops.imkern.convolve_backward(grad, image, kernel, ctx.border, ctx.cval, n[1])
    return (gi if n[0] else None), (gk if n[1] else None), None, None


_convolve_op.register_autograd(_convolve_backward, setup_context=_convolve_setup)


def convolve(image: Tensor, kernel, *, border: str = "reflect101", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.convolve` as ``torch.ops.imkern.convolve``, differentiable with
    respect to the image and the (2-D tensor) kernel."""
    return torch.ops.imkern.convolve(image, _kernel_tensor(kernel, 2), parse_border(border), float(cval))


# ---- derivative filters: scharr, prewitt, laplacian, gradient, gradient_magnitude --------------
def _deriv_fake(image, *args):
    return _like(image, _deriv_dtype(image))


def _first_order_kernels(kind: str, dx: int, dy: int, scale: float):
    """(ky, kx) of the separable derivative filter, ``scale`` folded in (the adjoint's kernels)."""
    from ..filters._derivatives import sobel_kernels

    if kind == "scharr":
        kx, ky = sobel_kernels(dx, dy, -1)
    else:  # prewitt
        dv, sm = np.array([-1.0, 0.0, 1.0]), np.ones(3)
        kx, ky = (dv, sm) if dx else (sm, dv)
    return (np.asarray(ky) * scale).tolist(), np.asarray(kx, np.float64).tolist()


def _register_first_order(kind: str):
    fn = getattr(_filters, kind)

    @torch.library.custom_op(f"imkern::{kind}", mutates_args=())
    def op(image: Tensor, dx: int, dy: int, scale: float, delta: float, border: str, cval: float) -> Tensor:
        return fn(image, dx, dy, scale=scale, delta=delta, border=border, cval=cval)

    op.register_fake(_deriv_fake)

    def setup(ctx, inputs, output):
        image, dx, dy, scale, delta, border, cval = inputs
        ctx.kernels = _first_order_kernels(kind, dx, dy, scale)
        ctx.border = border
        ctx.n_rest = 6

    op.register_autograd(_sep_kernels_backward, setup_context=setup)
    return op


_register_first_order("scharr")
_register_first_order("prewitt")


def scharr(
    image: Tensor, dx: int = 1, dy: int = 0, *, scale: float = 1.0, delta: float = 0.0,
    border: str = "reflect101", cval: float = 0.0,
) -> Tensor:  # fmt: skip
    """:func:`imkern.filters.scharr` as ``torch.ops.imkern.scharr`` (float32 result, float64 for
    float64 images), differentiable in ``image`` for every border mode."""
    return torch.ops.imkern.scharr(
        image, int(dx), int(dy), float(scale), float(delta), parse_border(border), float(cval)
    )


def prewitt(
    image: Tensor, dx: int = 1, dy: int = 0, *, scale: float = 1.0, delta: float = 0.0,
    border: str = "reflect101", cval: float = 0.0,
) -> Tensor:  # fmt: skip
    """:func:`imkern.filters.prewitt` as ``torch.ops.imkern.prewitt``, differentiable as :func:`scharr`."""
    return torch.ops.imkern.prewitt(
        image, int(dx), int(dy), float(scale), float(delta), parse_border(border), float(cval)
    )


@torch.library.custom_op("imkern::laplacian", mutates_args=())
def _laplacian_op(image: Tensor, ksize: int, scale: float, delta: float, border: str, cval: float) -> Tensor:
    return _filters.laplacian(image, ksize=ksize, scale=scale, delta=delta, border=border, cval=cval)


_laplacian_op.register_fake(_deriv_fake)


@torch.library.custom_op("imkern::laplacian_backward", mutates_args=())
def _laplacian_backward_op(grad: Tensor, ksize: int, scale: float, border: str) -> Tensor:
    """The sum of the two second-derivative filters' adjoints."""
    from ..filters._derivatives import _deriv_kernel

    if ksize == 1:
        d2, sm = np.array([1.0, -2.0, 1.0]), np.array([0.0, 1.0, 0.0])
    else:
        d2, sm = _deriv_kernel(2, ksize), _deriv_kernel(0, ksize)
    # d2x = sm (y) x d2 (x), d2y = d2 (y) x sm (x)
    return (_sep_adj(grad, sm * scale, d2, border) + _sep_adj(grad, d2 * scale, sm, border)).contiguous()


@_laplacian_backward_op.register_fake
def _(grad, ksize, scale, border):
    return _like(grad)


def _laplacian_setup(ctx, inputs, output):
    image, ksize, scale, delta, border, cval = inputs
    ctx.args = (ksize, scale, border)


def _laplacian_backward(ctx, grad):
    return (torch.ops.imkern.laplacian_backward(grad, *ctx.args),) + (None,) * 5


_laplacian_op.register_autograd(_laplacian_backward, setup_context=_laplacian_setup)


def laplacian(
    image: Tensor, *, ksize: int = 1, scale: float = 1.0, delta: float = 0.0, border: str = "reflect101",
    cval: float = 0.0,
) -> Tensor:  # fmt: skip
    """:func:`imkern.filters.laplacian` as ``torch.ops.imkern.laplacian``, differentiable in
    ``image`` for every border mode."""
    return torch.ops.imkern.laplacian(image, int(ksize), float(scale), float(delta), parse_border(border), float(cval))


def _grad_pair_kernels(ksize: int):
    from ..filters._derivatives import _grad_kernels

    kx0, ky0, kx1, ky1 = _grad_kernels(ksize)
    return (ky0, kx0), (ky1, kx1)  # (ky, kx) of d/dx and of d/dy


@torch.library.custom_op("imkern::gradient", mutates_args=())
def _gradient_op(image: Tensor, ksize: int, border: str, cval: float) -> Tuple[Tensor, Tensor]:
    return _filters.gradient(image, ksize=ksize, border=border, cval=cval)


@_gradient_op.register_fake
def _(image, ksize, border, cval):
    return _deriv_fake(image), _deriv_fake(image)


@torch.library.custom_op("imkern::gradient_backward", mutates_args=())
def _gradient_backward_op(grad_x: Tensor, grad_y: Tensor, ksize: int, border: str) -> Tensor:
    (kyx, kxx), (kyy, kxy) = _grad_pair_kernels(ksize)
    return (_sep_adj(grad_x, kyx, kxx, border) + _sep_adj(grad_y, kyy, kxy, border)).contiguous()


@_gradient_backward_op.register_fake
def _(grad_x, grad_y, ksize, border):
    return _like(grad_x)


def _gradient_setup(ctx, inputs, output):
    image, ksize, border, cval = inputs
    ctx.args = (ksize, border)


def _gradient_backward(ctx, gx, gy):
    if gx is None:
        gx = torch.zeros_like(gy)
    if gy is None:
        gy = torch.zeros_like(gx)
    return torch.ops.imkern.gradient_backward(gx.contiguous(), gy.contiguous(), *ctx.args), None, None, None


_gradient_op.register_autograd(_gradient_backward, setup_context=_gradient_setup)


def gradient(image: Tensor, *, ksize: int = 3, border: str = "reflect101", cval: float = 0.0):
    """:func:`imkern.filters.gradient` as ``torch.ops.imkern.gradient``: ``(gx, gy)``,
    differentiable in ``image``."""
    return torch.ops.imkern.gradient(image, int(ksize), parse_border(border), float(cval))


@torch.library.custom_op("imkern::gradient_magnitude", mutates_args=())
def _gradient_magnitude_op(image: Tensor, ksize: int, l2: bool, border: str, cval: float) -> Tensor:
    return _filters.gradient_magnitude(image, ksize=ksize, l2=l2, border=border, cval=cval)


_gradient_magnitude_op.register_fake(_deriv_fake)


@torch.library.custom_op("imkern::gradient_magnitude_backward", mutates_args=())
def _gradient_magnitude_backward_op(
    grad: Tensor, image: Tensor, ksize: int, l2: bool, border: str, cval: float
) -> Tensor:
    gx, gy = _filters.gradient(image, ksize=ksize, border=border, cval=cval)
    if l2:
        mag = torch.sqrt(gx * gx + gy * gy)
        inv = torch.where(mag > 0, 1.0 / torch.where(mag > 0, mag, 1.0), 0.0)
        wx, wy = gx * inv, gy * inv
    else:
        wx, wy = torch.sign(gx), torch.sign(gy)
    return torch.ops.imkern.gradient_backward((grad * wx).contiguous(), (grad * wy).contiguous(), ksize, border)


@_gradient_magnitude_backward_op.register_fake
def _(grad, image, ksize, l2, border, cval):
    return _like(grad)


def _gradient_magnitude_setup(ctx, inputs, output):
    image, ksize, l2, border, cval = inputs
    ctx.save_for_backward(image)
    ctx.args = (ksize, l2, border, cval)


def _gradient_magnitude_backward(ctx, grad):
    (image,) = ctx.saved_tensors
    gi = torch.ops.imkern.gradient_magnitude_backward(grad.contiguous(), image, *ctx.args)
    return gi, None, None, None, None


_gradient_magnitude_op.register_autograd(_gradient_magnitude_backward, setup_context=_gradient_magnitude_setup)


def gradient_magnitude(
    image: Tensor, *, ksize: int = 3, l2: bool = True, border: str = "reflect101", cval: float = 0.0
) -> Tensor:
    """:func:`imkern.filters.gradient_magnitude` as ``torch.ops.imkern.gradient_magnitude``,
    differentiable in ``image`` (0 where the magnitude is 0)."""
    return torch.ops.imkern.gradient_magnitude(image, int(ksize), bool(l2), parse_border(border), float(cval))


# ---- unsharp_mask ---------------------------------------------------------------------------
@torch.library.custom_op("imkern::unsharp_mask", mutates_args=())
def _unsharp_op(
    image: Tensor,
    sigma_y: float,
    sigma_x: float,
    amount: float,
    threshold: float,
    ksize_y: int,
    ksize_x: int,
    truncate: float,
    border: str,
    cval: float,
) -> Tensor:
    ksize = None if ksize_y <= 0 else (ksize_y, ksize_x)
    return _filters.unsharp_mask(
        image, (sigma_y, sigma_x), amount, threshold=threshold, ksize=ksize, truncate=truncate, border=border, cval=cval
    )


@_unsharp_op.register_fake
def _(image, *args):
    return _like(image)


@torch.library.custom_op("imkern::unsharp_mask_backward", mutates_args=())
def _unsharp_backward_op(
    grad: Tensor, image: Tensor, kernel_y: List[float], kernel_x: List[float], amount: float, threshold: float,
    border: str, cval: float,
) -> Tensor:  # fmt: skip
    """out = x + amount * m * (x - G x), m the sharpened pixels (all when threshold == 0, where
    the kept pixels have x == G x anyway): grad = g + amount * (m g - G^T (m g))."""
    if threshold > 0:
        blur = _filters.sep_filter(image, np.asarray(kernel_y), np.asarray(kernel_x), border=border, cval=cval)
        mg = grad * ((image - blur).abs() > threshold)
    else:
        mg = grad
    return (grad + amount * (mg - _sep_adj(mg.contiguous(), kernel_y, kernel_x, border))).contiguous()


@_unsharp_backward_op.register_fake
def _(grad, image, kernel_y, kernel_x, amount, threshold, border, cval):
    return _like(grad)


def _unsharp_setup(ctx, inputs, output):
    image, sy, sx, amount, threshold, kh, kw, truncate, border, cval = inputs
    ky, kx = gaussian_kernels((sy, sx), None if kh <= 0 else (kh, kw), truncate)
    ctx.save_for_backward(image)
    ctx.args = (ky.tolist(), kx.tolist(), amount, threshold, border, cval)


def _unsharp_backward(ctx, grad):
    (image,) = ctx.saved_tensors
    gi = torch.ops.imkern.unsharp_mask_backward(grad.contiguous(), image, *ctx.args)
    return (gi,) + (None,) * 9


_unsharp_op.register_autograd(_unsharp_backward, setup_context=_unsharp_setup)


def unsharp_mask(
    image: Tensor, sigma, amount: float = 1.0, *, threshold: float = 0.0, ksize=None, truncate: float = 4.0,
    border: str = "reflect101", cval: float = 0.0,
) -> Tensor:  # fmt: skip
    """:func:`imkern.filters.unsharp_mask` as ``torch.ops.imkern.unsharp_mask``, differentiable
    for float images (exact for ``threshold=0``; with a threshold, almost everywhere)."""
    sy, sx = (float(sigma[0]), float(sigma[1])) if isinstance(sigma, (tuple, list)) else (float(sigma),) * 2
    kh, kw = (0, 0) if ksize is None else tuple(_pair(ksize))
    return torch.ops.imkern.unsharp_mask(
        image, sy, sx, float(amount), float(threshold), kh, kw, float(truncate), parse_border(border), float(cval)
    )


# ---- rank filters and morphology (no autograd) ------------------------------------------------
@torch.library.custom_op("imkern::median", mutates_args=())
def _median_op(image: Tensor, size: int, border: str, cval: float) -> Tensor:
    return _filters.median(image, size, border=border, cval=cval)


@_median_op.register_fake
def _(image, size, border, cval):
    return _like(image)


def median(image: Tensor, size: int, *, border: str = "replicate", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.median` as ``torch.ops.imkern.median`` (no gradient)."""
    return torch.ops.imkern.median(image, int(size), parse_border(border), float(cval))


_MORPH = ("erode", "dilate", "opening", "closing", "morph_gradient", "tophat", "blackhat")


def _register_morph(name: str):
    fn = getattr(_filters, name)

    @torch.library.custom_op(f"imkern::{name}", mutates_args=())
    def op(image: Tensor, footprint: Tensor, iterations: int, border: Optional[str], cval: float) -> Tensor:
        fp = footprint.detach().cpu().numpy()
        return fn(image, fp, iterations=iterations, border=border, cval=cval)

    @op.register_fake
    def _(image, footprint, iterations, border, cval):
        return _like(image)


for _name in _MORPH:
    _register_morph(_name)


def _footprint_tensor(footprint) -> Tensor:
    from ..filters._morphology import _as_footprint

    if isinstance(footprint, Tensor):
        return footprint
    return torch.as_tensor(np.ascontiguousarray(_as_footprint(footprint, cached=False)))


def _morph_call(name, image, footprint, iterations, border, cval):
    b = None if border is None else parse_border(border)
    return getattr(torch.ops.imkern, name)(image, _footprint_tensor(footprint), int(iterations), b, float(cval))


def erode(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.erode` as ``torch.ops.imkern.erode`` (no gradient)."""
    return _morph_call("erode", image, footprint, iterations, border, cval)


def dilate(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.dilate` as ``torch.ops.imkern.dilate`` (no gradient)."""
    return _morph_call("dilate", image, footprint, iterations, border, cval)


def opening(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.opening` as ``torch.ops.imkern.opening`` (no gradient)."""
    return _morph_call("opening", image, footprint, iterations, border, cval)


def closing(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.closing` as ``torch.ops.imkern.closing`` (no gradient)."""
    return _morph_call("closing", image, footprint, iterations, border, cval)


def morph_gradient(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.morph_gradient` as ``torch.ops.imkern.morph_gradient`` (no gradient)."""
    return _morph_call("morph_gradient", image, footprint, iterations, border, cval)


def tophat(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.tophat` as ``torch.ops.imkern.tophat`` (no gradient)."""
    return _morph_call("tophat", image, footprint, iterations, border, cval)


def blackhat(image: Tensor, footprint=3, *, iterations: int = 1, border=None, cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.blackhat` as ``torch.ops.imkern.blackhat`` (no gradient)."""
    return _morph_call("blackhat", image, footprint, iterations, border, cval)


def _register_minmax(name: str):
    fn = getattr(_filters, name)

    @torch.library.custom_op(f"imkern::{name}", mutates_args=())
    def op(image: Tensor, size_y: int, size_x: int, border: str, cval: float) -> Tensor:
        return fn(image, (size_y, size_x), border=border, cval=cval)

    @op.register_fake
    def _(image, size_y, size_x, border, cval):
        return _like(image)


_register_minmax("minimum_filter")
_register_minmax("maximum_filter")


def minimum_filter(image: Tensor, size=3, *, border: str = "reflect", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.minimum_filter` as ``torch.ops.imkern.minimum_filter`` (no gradient)."""
    h, w = _pair(size)
    return torch.ops.imkern.minimum_filter(image, h, w, parse_border(border), float(cval))


def maximum_filter(image: Tensor, size=3, *, border: str = "reflect", cval: float = 0.0) -> Tensor:
    """:func:`imkern.filters.maximum_filter` as ``torch.ops.imkern.maximum_filter`` (no gradient)."""
    h, w = _pair(size)
    return torch.ops.imkern.maximum_filter(image, h, w, parse_border(border), float(cval))


# ---- bilateral ------------------------------------------------------------------------------
@torch.library.custom_op("imkern::bilateral", mutates_args=())
def _bilateral_op(image: Tensor, d: int, sigma_color: float, sigma_space: float, border: str) -> Tensor:
    return _filters.bilateral(image, d, sigma_color, sigma_space, border=border)


@_bilateral_op.register_fake
def _(image, d, sigma_color, sigma_space, border):
    return _like(image)


def bilateral(image: Tensor, d: int, sigma_color: float, sigma_space: float, *, border: str = "reflect101") -> Tensor:
    """:func:`imkern.filters.bilateral` as ``torch.ops.imkern.bilateral`` (no gradient: imkern
    has no bilateral backward kernel)."""
    return torch.ops.imkern.bilateral(image, int(d), float(sigma_color), float(sigma_space), parse_border(border))


# ---- thresholds and edges -------------------------------------------------------------------
@torch.library.custom_op("imkern::threshold", mutates_args=())
def _threshold_op(image: Tensor, thresh: float, maxval: float, kind: str) -> Tensor:
    return _filters.threshold(image, thresh, maxval, kind)


@_threshold_op.register_fake
def _(image, thresh, maxval, kind):
    return _like(image)


def _threshold_setup(ctx, inputs, output):
    image, thresh, maxval, kind = inputs
    ctx.save_for_backward(image)
    ctx.thresh, ctx.kind = thresh, kind


def _threshold_backward(ctx, grad):
    (image,) = ctx.saved_tensors
    above = image > ctx.thresh
    if ctx.kind in ("trunc", "tozero_inv"):
        gi = torch.where(above, 0.0, grad)
    elif ctx.kind == "tozero":
        gi = torch.where(above, grad, 0.0)
    else:  # binary kinds: piecewise constant
        gi = torch.zeros_like(grad)
    return gi, None, None, None


_threshold_op.register_autograd(_threshold_backward, setup_context=_threshold_setup)


def threshold(image: Tensor, thresh: float, maxval: float, kind: str = "binary") -> Tensor:
    """:func:`imkern.filters.threshold` as ``torch.ops.imkern.threshold``; for float images the
    gradient is the derivative almost everywhere (1 where the output is ``x``, else 0)."""
    return torch.ops.imkern.threshold(image, float(thresh), float(maxval), str(kind))


@torch.library.custom_op("imkern::threshold_otsu", mutates_args=())
def _otsu_op(image: Tensor) -> Tensor:
    return torch.tensor(_filters.threshold_otsu(image), dtype=torch.float64, device=image.device)


@_otsu_op.register_fake
def _(image):
    return image.new_empty((), dtype=torch.float64)


@torch.library.custom_op("imkern::threshold_triangle", mutates_args=())
def _triangle_op(image: Tensor) -> Tensor:
    return torch.tensor(_filters.threshold_triangle(image), dtype=torch.float64, device=image.device)


@_triangle_op.register_fake
def _(image):
    return image.new_empty((), dtype=torch.float64)


def threshold_otsu(image: Tensor) -> Tensor:
    """:func:`imkern.filters.threshold_otsu` as ``torch.ops.imkern.threshold_otsu``: the level as
    a 0-d float64 tensor on the image's device (a tensor, so torch.compile keeps it in the
    graph; ``float(level)`` gives the number)."""
    return torch.ops.imkern.threshold_otsu(image)


def threshold_triangle(image: Tensor) -> Tensor:
    """:func:`imkern.filters.threshold_triangle` as ``torch.ops.imkern.threshold_triangle`` (a 0-d
    float64 tensor, as :func:`threshold_otsu`)."""
    return torch.ops.imkern.threshold_triangle(image)


@torch.library.custom_op("imkern::adaptive_threshold", mutates_args=())
def _adaptive_threshold_op(image: Tensor, maxval: float, method: str, block_size: int, c: float, kind: str) -> Tensor:
    return _filters.adaptive_threshold(image, maxval, method, block_size, c, kind=kind)


@_adaptive_threshold_op.register_fake
def _(image, maxval, method, block_size, c, kind):
    return _like(image)


def adaptive_threshold(
    image: Tensor, maxval: float, method: str = "mean", block_size: int = 3, c: float = 0.0, *, kind: str = "binary"
) -> Tensor:
    """:func:`imkern.filters.adaptive_threshold` as ``torch.ops.imkern.adaptive_threshold`` (uint8)."""
    return torch.ops.imkern.adaptive_threshold(image, float(maxval), str(method), int(block_size), float(c), str(kind))


@torch.library.custom_op("imkern::canny", mutates_args=())
def _canny_op(image: Tensor, low: float, high: float, ksize: int, l2gradient: bool) -> Tensor:
    return _filters.canny(image, low, high, ksize=ksize, l2gradient=l2gradient)


@_canny_op.register_fake
def _(image, low, high, ksize, l2gradient):
    # one edge map per image: (H, W, C) -> (H, W), (N, H, W, C) -> (N, H, W)
    shape = image.shape if image.dim() == 2 else image.shape[:-1]
    return image.new_empty(shape, dtype=torch.uint8)


def canny(image: Tensor, low: float, high: float, *, ksize: int = 3, l2gradient: bool = False) -> Tensor:
    """:func:`imkern.filters.canny` as ``torch.ops.imkern.canny`` (uint8 edge map, no gradient)."""
    return torch.ops.imkern.canny(image, float(low), float(high), int(ksize), bool(l2gradient))
