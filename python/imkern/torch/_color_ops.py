"""imkern.color as PyTorch operators (``torch.ops.imkern.<conversion>``).

Images are channels-last, ``(H, W, C)`` or ``(N, H, W, C)`` (``(H, W)`` where a conversion
takes one channel), any dtype imkern.color takes; the result has the input's dtype.

Gradients (float images): the conversions that are affine in the pixel, ``y = M x + b`` per
pixel (rgb_to_gray, bgr_to_gray, gray_to_rgb, rgb_to_bgr, bgr_to_rgb, rgb_to_ycbcr,
ycbcr_to_rgb, rgba_to_rgb without a background), get the exact backward ``M^T g``, with ``M``
read off imkern's own float64 conversion of the unit colors (so the backward matches whatever
weights the kernel uses). rgba_to_rgb onto a background, ``rgb * a + bg * (1 - a)``, gets its
exact product-rule backward. The nonlinear ones (rgb_to_hsv, hsv_to_rgb, rgb_to_lab,
lab_to_rgb) have no autograd: imkern has no backward kernels for them (and HSV's hue is not
differentiable at gray pixels).
"""

from functools import lru_cache
from typing import List, Optional

import numpy as np
import torch
from torch import Tensor

from .. import color as _color
from ._filter_ops import _fresh

__all__ = list(_color.__all__)

_AFFINE = ("rgb_to_gray", "bgr_to_gray", "gray_to_rgb", "rgb_to_bgr", "bgr_to_rgb", "rgb_to_ycbcr", "ycbcr_to_rgb")
_NONLINEAR = ("rgb_to_hsv", "hsv_to_rgb", "rgb_to_lab", "lab_to_rgb")


def _out_shape(name: str, shape) -> List[int]:
    s = list(shape)
    if name in ("rgb_to_gray", "bgr_to_gray"):
        return s[:-1] if len(s) == 3 else s[:-1] + [1]
    if name == "gray_to_rgb":
        return (s + [3]) if len(s) == 2 else s[:-1] + [3]
    if name == "rgba_to_rgb":
        return s[:-1] + [3]
    return s


@lru_cache(maxsize=None)
def _matrix(name: str, cin: int) -> np.ndarray:
    """(cout, cin) matrix M of the affine conversion ``y = M x + b``: imkern's float64 result on
    the zero color and the unit colors."""
    fn = getattr(_color, name)
    basis = np.concatenate([np.zeros((1, cin)), np.eye(cin)])[None]  # (1, 1 + cin, cin)
    y = np.asarray(fn(basis), np.float64).reshape(1 + cin, -1)
    return (y[1:] - y[:1]).T.copy()


def _affine_backward_impl(name: str, grad: Tensor, cin: int, in_shape: List[int]) -> Tensor:
    m = torch.as_tensor(_matrix(name, cin), dtype=grad.dtype, device=grad.device)
    g = grad.reshape(-1, m.shape[0])
    return (g @ m).reshape(in_shape).contiguous()


@torch.library.custom_op("imkern::color_affine_backward", mutates_args=())
def _color_affine_backward_op(grad: Tensor, name: str, cin: int, in_shape: List[int]) -> Tensor:
    """``M^T g`` per pixel for the affine conversion ``name`` (``cin`` input channels)."""
    return _affine_backward_impl(name, grad, cin, in_shape)


@_color_affine_backward_op.register_fake
def _(grad, name, cin, in_shape):
    return grad.new_empty(in_shape)


def _register(name: str):
    fn = getattr(_color, name)

    @torch.library.custom_op(f"imkern::{name}", mutates_args=())
    def op(image: Tensor) -> Tensor:
        return _fresh(fn(image), image)

    @op.register_fake
    def _(image):
        return image.new_empty(_out_shape(name, image.shape))

    if name in _AFFINE:

        def setup(ctx, inputs, output):
            image = inputs[0]
            ctx.in_shape = list(image.shape)
            ctx.cin = 1 if (name == "gray_to_rgb" and image.ndim == 2) else int(image.shape[-1])

        def backward(ctx, grad):
            return torch.ops.imkern.color_affine_backward(grad.contiguous(), name, ctx.cin, ctx.in_shape)

        op.register_autograd(backward, setup_context=setup)
    return op


for _name in _AFFINE + _NONLINEAR:
    _register(_name)


# rgba_to_rgb: drop alpha (affine) or blend onto a background (bilinear in rgb and alpha)
@torch.library.custom_op("imkern::rgba_to_rgb", mutates_args=())
def _rgba_op(image: Tensor, background: Optional[List[float]]) -> Tensor:
    return _fresh(_color.rgba_to_rgb(image, background=background), image)


@_rgba_op.register_fake
def _(image, background):
    return image.new_empty(_out_shape("rgba_to_rgb", image.shape))


def _rgba_setup(ctx, inputs, output):
    image, background = inputs
    ctx.background = background
    ctx.save_for_backward(image if background is not None else None)
    ctx.in_shape = list(image.shape)


def _rgba_backward(ctx, grad):
    if ctx.background is None:
        gi = grad.new_zeros(ctx.in_shape)
        gi[..., :3] = grad
        return gi, None
    (image,) = ctx.saved_tensors
    bg = torch.as_tensor(ctx.background, dtype=grad.dtype, device=grad.device)
    if bg.numel() == 1:
        bg = bg.expand(3)
    a = image[..., 3:4]
    g_rgb = grad * a
    g_a = (grad * (image[..., :3] - bg)).sum(-1, keepdim=True)
    return torch.cat([g_rgb, g_a], -1), None


_rgba_op.register_autograd(_rgba_backward, setup_context=_rgba_setup)


def rgba_to_rgb(image: Tensor, *, background=None) -> Tensor:
    """:func:`imkern.color.rgba_to_rgb` as ``torch.ops.imkern.rgba_to_rgb``, differentiable for
    float images (with a background: in the color and in the alpha)."""
    if background is not None:
        background = [float(v) for v in np.asarray(background, np.float64).ravel()]
    return torch.ops.imkern.rgba_to_rgb(image, background)


def _wrapper(name: str):
    def f(image: Tensor) -> Tensor:
        return getattr(torch.ops.imkern, name)(image)

    grad = "differentiable for float images (exact: the conversion is affine)" if name in _AFFINE else "no gradient"
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f":func:`imkern.color.{name}` as ``torch.ops.imkern.{name}``; {grad}."
    return f


rgb_to_gray = _wrapper("rgb_to_gray")
bgr_to_gray = _wrapper("bgr_to_gray")
gray_to_rgb = _wrapper("gray_to_rgb")
rgb_to_bgr = _wrapper("rgb_to_bgr")
bgr_to_rgb = _wrapper("bgr_to_rgb")
rgb_to_ycbcr = _wrapper("rgb_to_ycbcr")
ycbcr_to_rgb = _wrapper("ycbcr_to_rgb")
rgb_to_hsv = _wrapper("rgb_to_hsv")
hsv_to_rgb = _wrapper("hsv_to_rgb")
rgb_to_lab = _wrapper("rgb_to_lab")
lab_to_rgb = _wrapper("lab_to_rgb")
