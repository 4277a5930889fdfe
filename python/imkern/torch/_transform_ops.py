"""imkern.transform as PyTorch operators (``torch.ops.imkern.*``), beyond resize.

Images are ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; results keep the dtype.

Gradients (float images), exact:

* crop, center_crop: the gradient placed into zeros at the region.
* pad: the padded gradient's border rows and columns added back onto the pixels they copy
  (the transform's own border rule; nothing for the constant border).
* flip, rotate90: the inverse permutation (flip again, rotate by ``-k``).
* to_tensor (float images): per-channel ``1 / std`` (``1 / (range * std)``), the CHW -> HWC
  transpose, the mirror and the crop undone.

No autograd: rotate, warp_affine, warp_perspective (imkern has no adjoint kernel for the warps'
sampling), from_tensor (uint8 result).
"""

from typing import List, Optional

import numpy as np
import torch
from torch import Tensor

from .. import transform as _transform
from ..transform import _basic, _tensor
from ._filter_ops import _fresh
from ._ops import _fold, _hw_axes

__all__ = [
    "crop",
    "center_crop",
    "pad",
    "flip",
    "rotate90",
    "rotate",
    "warp_affine",
    "warp_perspective",
    "to_tensor",
    "from_tensor",
]


def _with_hw(shape, h: int, w: int) -> List[int]:
    s = list(shape)
    a, b = _hw_axes(len(s))
    s[a], s[b] = h, w
    return s


# ---- crop / center_crop ---------------------------------------------------------------------
@torch.library.custom_op("imkern::crop", mutates_args=())
def _crop_op(image: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    return _fresh(_transform.crop(image, top, left, height, width), image)


@_crop_op.register_fake
def _(image, top, left, height, width):
    return image.new_empty(_with_hw(image.shape, height, width))


def _uncrop(grad: Tensor, in_shape, top: int, left: int) -> Tensor:
    a, b = _hw_axes(grad.ndim)
    gi = grad.new_zeros(in_shape)
    sl = [slice(None)] * grad.ndim
    sl[a] = slice(top, top + grad.shape[a])
    sl[b] = slice(left, left + grad.shape[b])
    gi[tuple(sl)] = grad
    return gi


def _crop_setup(ctx, inputs, output):
    image, top, left, height, width = inputs
    ctx.args = (list(image.shape), top, left)


def _crop_backward(ctx, grad):
    return _uncrop(grad, *ctx.args), None, None, None, None


_crop_op.register_autograd(_crop_backward, setup_context=_crop_setup)


def crop(image: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """:func:`imkern.transform.crop` as ``torch.ops.imkern.crop``, differentiable."""
    return torch.ops.imkern.crop(image, int(top), int(left), int(height), int(width))


def _center_box(shape, h: int, w: int):
    a, b = _hw_axes(len(shape))
    H, W = shape[a], shape[b]
    return int(round((H - h) / 2.0)), int(round((W - w) / 2.0))


@torch.library.custom_op("imkern::center_crop", mutates_args=())
def _center_crop_op(image: Tensor, height: int, width: int) -> Tensor:
    return _fresh(_transform.center_crop(image, (height, width)), image)


@_center_crop_op.register_fake
def _(image, height, width):
    return image.new_empty(_with_hw(image.shape, height, width))


def _center_crop_setup(ctx, inputs, output):
    image, height, width = inputs
    ctx.args = (list(image.shape),) + _center_box(image.shape, height, width)


def _center_crop_backward(ctx, grad):
    return _uncrop(grad, *ctx.args), None, None


_center_crop_op.register_autograd(_center_crop_backward, setup_context=_center_crop_setup)


def center_crop(image: Tensor, size) -> Tensor:
    """:func:`imkern.transform.center_crop` as ``torch.ops.imkern.center_crop``, differentiable."""
    if isinstance(size, (tuple, list)):
        h, w = int(size[0]), int(size[1])
    else:
        h = w = int(size)
    return torch.ops.imkern.center_crop(image, h, w)


# ---- pad ------------------------------------------------------------------------------------
@torch.library.custom_op("imkern::pad", mutates_args=())
def _pad_op(image: Tensor, pad: List[int], border: str, cval: float) -> Tensor:
    return _fresh(_transform.pad(image, tuple(pad), border=border, cval=cval), image)


@_pad_op.register_fake
def _(image, pad, border, cval):
    a, b = _hw_axes(image.ndim)
    return image.new_empty(_with_hw(image.shape, image.shape[a] + pad[0] + pad[1], image.shape[b] + pad[2] + pad[3]))


@torch.library.custom_op("imkern::pad_backward", mutates_args=())
def _pad_backward_op(grad: Tensor, in_h: int, in_w: int, pad: List[int], border: str) -> Tensor:
    a, b = _hw_axes(grad.ndim)
    g = _fold(grad, a, _basic._border_indices_np(in_h, pad[0], pad[1], border), in_h)
    return _fold(g, b, _basic._border_indices_np(in_w, pad[2], pad[3], border), in_w).contiguous()


@_pad_backward_op.register_fake
def _(grad, in_h, in_w, pad, border):
    return grad.new_empty(_with_hw(grad.shape, in_h, in_w))


def _pad_setup(ctx, inputs, output):
    image, pad, border, cval = inputs
    a, b = _hw_axes(image.ndim)
    ctx.args = (image.shape[a], image.shape[b], pad, border)


def _pad_backward(ctx, grad):
    return torch.ops.imkern.pad_backward(grad.contiguous(), *ctx.args), None, None, None


_pad_op.register_autograd(_pad_backward, setup_context=_pad_setup)


def pad(image: Tensor, pad, *, border: str = "constant", cval: float = 0.0) -> Tensor:
    """:func:`imkern.transform.pad` as ``torch.ops.imkern.pad`` (``pad``: int, ``(py, px)``,
    ``(top, bottom, left, right)`` or ``((top, bottom), (left, right))``), differentiable for
    every border mode."""
    from .._borders import parse_border

    w = [int(v) for v in _basic._pad_widths(pad)]
    return torch.ops.imkern.pad(image, w, parse_border(border), float(cval))


# ---- flip / rotate90 ------------------------------------------------------------------------
@torch.library.custom_op("imkern::flip", mutates_args=())
def _flip_op(image: Tensor, axes: List[int]) -> Tensor:
    return _fresh(_transform.flip(image, tuple(axes)), image)


@_flip_op.register_fake
def _(image, axes):
    return torch.empty_like(image, memory_format=torch.contiguous_format)


def _flip_setup(ctx, inputs, output):
    ctx.axes = inputs[1]


def _flip_backward(ctx, grad):
    return torch.ops.imkern.flip(grad.contiguous(), ctx.axes), None


_flip_op.register_autograd(_flip_backward, setup_context=_flip_setup)


def flip(image: Tensor, axis=1) -> Tensor:
    """:func:`imkern.transform.flip` as ``torch.ops.imkern.flip`` (``axis`` 0, 1, ``(0, 1)`` or
    None), differentiable."""
    if axis is None:
        axes = [0, 1]
    elif isinstance(axis, (tuple, list)):
        axes = [int(a) for a in axis]
    else:
        axes = [int(axis)]
    return torch.ops.imkern.flip(image, axes)


@torch.library.custom_op("imkern::rotate90", mutates_args=())
def _rotate90_op(image: Tensor, k: int) -> Tensor:
    return _fresh(_transform.rotate90(image, k), image)


@_rotate90_op.register_fake
def _(image, k):
    if k % 2 == 0:
        return torch.empty_like(image, memory_format=torch.contiguous_format)
    a, b = _hw_axes(image.ndim)
    return image.new_empty(_with_hw(image.shape, image.shape[b], image.shape[a]))


def _rotate90_setup(ctx, inputs, output):
    ctx.k = inputs[1]


def _rotate90_backward(ctx, grad):
    return torch.ops.imkern.rotate90(grad.contiguous(), (-ctx.k) % 4), None


_rotate90_op.register_autograd(_rotate90_backward, setup_context=_rotate90_setup)


def rotate90(image: Tensor, k: int = 1) -> Tensor:
    """:func:`imkern.transform.rotate90` as ``torch.ops.imkern.rotate90``, differentiable."""
    return torch.ops.imkern.rotate90(image, int(k) % 4)


# ---- rotate / warps (forward only) ----------------------------------------------------------
@torch.library.custom_op("imkern::rotate", mutates_args=())
def _rotate_op(image: Tensor, angle: float, interpolation: str, border: str, cval: float) -> Tensor:
    return _transform.rotate(image, angle, interpolation=interpolation, border=border, cval=cval)


@_rotate_op.register_fake
def _(image, angle, interpolation, border, cval):
    return torch.empty_like(image, memory_format=torch.contiguous_format)


def rotate(
    image: Tensor, angle: float, *, interpolation: str = "bilinear", border: str = "constant", cval: float = 0.0
) -> Tensor:
    """:func:`imkern.transform.rotate` as ``torch.ops.imkern.rotate`` (no gradient)."""
    return torch.ops.imkern.rotate(image, float(angle), str(interpolation), str(border), float(cval))


def _register_warp(name: str, mshape):
    fn = getattr(_transform, name)

    @torch.library.custom_op(f"imkern::{name}", mutates_args=())
    def op(
        image: Tensor, matrix: Tensor, h: int, w: int, interpolation: str, border: str, cval: float, inverse: bool
    ) -> Tensor:
        m = matrix.detach().cpu().double().numpy()
        return fn(image, m, (h, w), interpolation=interpolation, border=border, cval=cval, inverse=inverse)

    @op.register_fake
    def _(image, matrix, h, w, interpolation, border, cval, inverse):
        torch._check(tuple(matrix.shape) == mshape, lambda: f"matrix: expected shape {mshape}")
        return image.new_empty(_with_hw(image.shape, h, w))


_register_warp("warp_affine", (2, 3))
_register_warp("warp_perspective", (3, 3))


def _matrix_tensor(m) -> Tensor:
    return m if isinstance(m, Tensor) else torch.as_tensor(np.asarray(m, np.float64))


def warp_affine(
    image: Tensor, matrix, size, *, interpolation: str = "bilinear", border: str = "constant", cval: float = 0.0,
    inverse: bool = False,
) -> Tensor:  # fmt: skip
    """:func:`imkern.transform.warp_affine` as ``torch.ops.imkern.warp_affine`` (``size`` is
    ``(h, w)``; no gradient)."""
    return torch.ops.imkern.warp_affine(
        image, _matrix_tensor(matrix), int(size[0]), int(size[1]), str(interpolation), str(border), float(cval),
        bool(inverse),
    )  # fmt: skip


def warp_perspective(
    image: Tensor, matrix, size, *, interpolation: str = "bilinear", border: str = "constant", cval: float = 0.0,
    inverse: bool = False,
) -> Tensor:  # fmt: skip
    """:func:`imkern.transform.warp_perspective` as ``torch.ops.imkern.warp_perspective`` (no gradient)."""
    return torch.ops.imkern.warp_perspective(
        image, _matrix_tensor(matrix), int(size[0]), int(size[1]), str(interpolation), str(border), float(cval),
        bool(inverse),
    )  # fmt: skip


# ---- to_tensor / from_tensor ----------------------------------------------------------------
def _to_tensor_geometry(shape, crop: Optional[List[int]]):
    o = 1 if len(shape) == 4 else 0
    H, W = shape[o], shape[o + 1]
    C = 1 if len(shape) == 2 else shape[-1]
    if crop is None or not (H > 0 and W > 0):
        top, left, h, w = 0, 0, H, W
    else:
        top, left, h, w = _tensor._crop_box(tuple(crop), H, W)
    return o, C, top, left, h, w


@torch.library.custom_op("imkern::to_tensor", mutates_args=())
def _to_tensor_op(
    images: Tensor, mean: Optional[List[float]], std: Optional[List[float]], crop: Optional[List[int]], flip: bool,
    dtype: str,
) -> Tensor:  # fmt: skip
    return _transform.to_tensor(
        images, mean=mean, std=std, crop=None if crop is None else tuple(crop), flip=flip, dtype=dtype
    )


@_to_tensor_op.register_fake
def _(images, mean, std, crop, flip, dtype):
    o, C, top, left, h, w = _to_tensor_geometry(images.shape, crop)
    shape = ((images.shape[0],) if o else ()) + (C, h, w)
    return images.new_empty(shape, dtype=torch.float64 if dtype == "float64" else torch.float32)


@torch.library.custom_op("imkern::to_tensor_backward", mutates_args=())
def _to_tensor_backward_op(
    grad: Tensor, in_shape: List[int], std: Optional[List[float]], crop: Optional[List[int]], flip: bool
) -> Tensor:
    o, C, top, left, h, w = _to_tensor_geometry(in_shape, crop)
    s = _tensor._per_channel(std, C, "std", 1.0)
    g = grad * torch.as_tensor(1.0 / s, dtype=grad.dtype, device=grad.device).reshape(C, 1, 1)
    g = g.permute(0, 2, 3, 1) if o else g.permute(1, 2, 0)  # (.., h, w, C)
    if flip:
        g = g.flip(-2)
    if len(in_shape) == 2:
        g = g[..., 0]
    return _uncrop(g, in_shape, top, left).contiguous()


@_to_tensor_backward_op.register_fake
def _(grad, in_shape, std, crop, flip):
    return grad.new_empty(in_shape)


def _to_tensor_setup(ctx, inputs, output):
    images, mean, std, crop, flip, dtype = inputs
    ctx.args = (list(images.shape), std, crop, flip)
    ctx.in_dtype = images.dtype


def _to_tensor_backward(ctx, grad):
    gi = torch.ops.imkern.to_tensor_backward(grad.contiguous(), *ctx.args).to(ctx.in_dtype)
    return gi, None, None, None, None, None


_to_tensor_op.register_autograd(_to_tensor_backward, setup_context=_to_tensor_setup)


def _floats(v) -> Optional[List[float]]:
    return None if v is None else [float(x) for x in np.asarray(v, np.float64).ravel()]


def to_tensor(images: Tensor, *, mean=None, std=None, crop=None, flip: bool = False, dtype: str = "float32") -> Tensor:
    """:func:`imkern.transform.to_tensor` as ``torch.ops.imkern.to_tensor``: NHWC images to a
    normalized NCHW tensor; differentiable for float images (float images are not rescaled, so
    the gradient is ``grad / std`` moved back to the pixels)."""
    c = None if crop is None else [int(v) for v in crop]
    return torch.ops.imkern.to_tensor(images, _floats(mean), _floats(std), c, bool(flip), str(dtype))


@torch.library.custom_op("imkern::from_tensor", mutates_args=())
def _from_tensor_op(tensor: Tensor, mean: Optional[List[float]], std: Optional[List[float]]) -> Tensor:
    return _transform.from_tensor(tensor, mean=mean, std=std)


@_from_tensor_op.register_fake
def _(tensor, mean, std):
    shape = list(tensor.shape)
    shape = shape[1:] + shape[:1] if len(shape) == 3 else [shape[0], shape[2], shape[3], shape[1]]
    return tensor.new_empty(shape, dtype=torch.uint8)


def from_tensor(tensor: Tensor, *, mean=None, std=None) -> Tensor:
    """:func:`imkern.transform.from_tensor` as ``torch.ops.imkern.from_tensor`` (uint8 images, no gradient)."""
    return torch.ops.imkern.from_tensor(tensor, _floats(mean), _floats(std))
