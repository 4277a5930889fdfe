"""crop, center_crop, pad, flip, rotate90: pure data movement.

These are copies, never views: the result owns its memory, so writing to it never changes
the input. flip and rotate90 run imkern's byte-moving kernels on the CPU (csrc/cpu/transform/
basic.cpp: NumPy's copy of a reversed or transposed view moves one element at a time) and
CuPy's copy kernels on the GPU; pad runs one kernel on each device (csrc/cpu/transform/
basic.cpp: a memcpy per row plus the border pixels by index; csrc/cuda/transform/basic.cu:
one thread per element through the same row and column tables); crop is a NumPy / CuPy
copy. ``pad`` applies the border rules of :mod:`imkern.filters` (``border=``, ``cval=``) to
any width, even a pad wider than the image (the rule is applied repeatedly, as the filters
do).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np

from .. import _arrays as A
from .. import _core
from .._borders import parse_border
from .._driver import cpu_image_op, new_numpy, run_image_op

_CACHE_MIN = A.output_cache_min

__all__ = ["crop", "center_crop", "pad", "flip", "rotate90"]


def _image(image, name="image"):
    """(kind, xp, o): o is the index of the H axis (1 for a batch)."""
    kind, _ = A.check_image(image, name)
    return kind, A.xp_of(kind), 1 if image.ndim == 4 else 0


def _finish(result, image, kind, out):
    """Copy ``result`` (a view of the input) into a new array or into ``out``."""
    if out is None and kind == "numpy":  # a new NumPy array (the common case, in few steps)
        nbytes = result.nbytes
        if nbytes < _CACHE_MIN[0] and type(result) is np.ndarray:
            return result.copy()  # (C order: what np.empty + np.copyto make, in one step)
        target = new_numpy(result.shape, result.dtype, nbytes)
        if result.size:
            np.copyto(target, result)
        return target
    xp = A.xp_of(kind)
    target, final = A.prepare_out(out, image, kind, image.dtype, shape=result.shape)
    if result.size:
        xp.copyto(target, result)
    return A.finish_out(target, final)


def crop(image, top, left, height, width, *, out=None):
    """The ``height x width`` region whose top-left pixel is ``(top, left)``, as a new array.

    Equals ``image[..., top:top + height, left:left + width, :]`` copied (a batch is cropped
    image by image at the same place). The region must lie inside the image.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
        top, left: the region's first row and column (>= 0).
        height, width: the region's size (>= 1).
        out: optional array of the result's shape and dtype.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(16, dtype=np.uint8).reshape(4, 4)
        >>> imkern.transform.crop(img, 1, 2, 2, 2).tolist()
        [[6, 7], [10, 11]]
    """
    kind, xp, o = _image(image)
    H, W = image.shape[o], image.shape[o + 1]
    if not (type(top) is int and type(left) is int and type(height) is int and type(width) is int):
        # (plain ints, the common case, are what as_int returns them as: one test for the four)
        top, left = A.as_int(top, "top"), A.as_int(left, "left")
        height, width = A.as_int(height, "height"), A.as_int(width, "width")
    if height < 1 or width < 1:
        raise ValueError(f"height, width: expected positive sizes, got {(height, width)}")
    if top < 0 or left < 0 or top + height > H or left + width > W:
        raise ValueError(
            f"crop: region (top={top}, left={left}, height={height}, width={width}) is not inside the {H}x{W} image"
        )
    if o:
        return _finish(image[:, top : top + height, left : left + width], image, kind, out)
    return _finish(image[top : top + height, left : left + width], image, kind, out)


def center_crop(image, size, *, out=None):
    """The central ``size = (h, w)`` region (an int means square), as a new array.

    The offset is ``round((H - h) / 2)``, ``round((W - w) / 2)`` (Python's rounding), as
    torchvision.transforms.functional.center_crop; the region must fit in the image.

    Example:
        >>> import numpy as np, imkern
        >>> img = np.arange(25, dtype=np.uint8).reshape(5, 5)
        >>> imkern.transform.center_crop(img, (3, 2)).tolist()
        [[7, 8], [12, 13], [17, 18]]
    """
    _, _, o = _image(image)
    h, w = A.as_pair(size, "size")
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive sizes, got {(h, w)}")
    H, W = image.shape[o], image.shape[o + 1]
    if h > H or w > W:
        raise ValueError(f"size: {(h, w)} is larger than the {H}x{W} image")
    return crop(image, int(round((H - h) / 2.0)), int(round((W - w) / 2.0)), h, w, out=out)


def _pad_widths(pad):
    """int | (py, px) | (top, bottom, left, right) | ((top, bottom), (left, right))."""
    if isinstance(pad, (tuple, list)):
        if len(pad) == 2 and all(isinstance(p, (tuple, list)) for p in pad):
            if len(pad[0]) != 2 or len(pad[1]) != 2:
                raise ValueError(f"pad: expected ((top, bottom), (left, right)), got {pad!r}")
            w = (pad[0][0], pad[0][1], pad[1][0], pad[1][1])
        elif len(pad) == 2:
            w = (pad[0], pad[0], pad[1], pad[1])
        elif len(pad) == 4:
            w = tuple(pad)
        else:
            raise ValueError(
                f"pad: expected an int, (pad_y, pad_x), (top, bottom, left, right) or "
                f"((top, bottom), (left, right)), got {pad!r}"
            )
    else:
        w = (pad,) * 4
    w = tuple(A.as_int(v, "pad") for v in w)  # type: ignore[assignment]  # four ints, checked above
    if min(w) < 0:
        raise ValueError(f"pad: expected non-negative widths, got {w}")
    return w


@lru_cache(maxsize=256)
def _border_indices_np(n, before, after, border):
    """Source index of every padded position (-1: the constant), by the filters' border rule
    (read-only: the arrays are cached)."""
    p = np.arange(-before, n + after, dtype=np.int64)
    if border == "constant":
        idx = np.where((p >= 0) & (p < n), p, -1)
    elif border == "replicate":
        idx = np.clip(p, 0, n - 1)
    elif border == "wrap":
        idx = np.mod(p, n)
    elif border == "reflect":
        m = np.mod(p, 2 * n)
        idx = np.where(m < n, m, 2 * n - 1 - m)
    else:  # reflect101
        if n == 1:
            idx = np.zeros_like(p)
        else:
            m = np.mod(p, 2 * n - 2)
            idx = np.where(m < n, m, 2 * n - 2 - m)
    idx.flags.writeable = False
    return idx


def _cval_of(cval, dtype):
    """``cval`` cast like a kernel result (integers rounded and saturated), as a NumPy scalar."""
    key = A.cache_key(cval)
    return (
        _cval_cached(key, np.dtype(dtype)) if key is not A.UNCACHED else _cval_cached.__wrapped__(cval, np.dtype(dtype))
    )


@lru_cache(maxsize=256)
def _cval_cached(cval, dt):
    v = A.as_float(cval, "cval")
    if dt.kind == "u":
        info = np.iinfo(dt)
        return dt.type(np.clip(np.rint(v), info.min, info.max)) if np.isfinite(v) else dt.type(0)
    return dt.type(v)


@lru_cache(maxsize=256)
def _const_pixel(cv, dt, channels: int):
    """The constant pixel (``channels`` copies of the NumPy scalar ``cv`` of dtype ``dt``: the
    dtype is part of the key, np.uint8(3) == np.float32(3)), read-only."""
    return A.read_only(np.full(channels, cv, dtype=dt))


@lru_cache(maxsize=256)
def _pad_plan(pad, border, cval, in_shape, o, dtype):
    """(out_shape, left, row table, column table, constant pixel) of a pad call: every argument
    checked here (errors are not cached, so they are raised on every call)."""
    top, bottom, left, right = _pad_widths(pad)
    b = parse_border(border)
    cv = _cval_of(cval, dtype)
    H, W = in_shape[o], in_shape[o + 1]
    shape = list(in_shape)
    shape[o] = H + top + bottom
    shape[o + 1] = W + left + right
    rows, cols = _border_indices_np(H, top, bottom, b), _border_indices_np(W, left, right, b)
    cpix = _const_pixel(cv, cv.dtype, in_shape[-1] if len(in_shape) >= 3 else 1)
    return tuple(shape), left, rows, cols, cpix


# (pad, border, cval keys, image dtype, image shape) -> the checked CPU call (the kernel's
# arguments, output shape) of pad on a non-empty image
_PAD_CALLS: dict = {}


def pad(image, pad, *, border="constant", cval=0, out=None):
    """Pad the H and W axes of an image by a border rule.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
        pad: the widths: an int (all sides), ``(pad_y, pad_x)``, ``(top, bottom, left, right)``
            (cv2.copyMakeBorder's order) or ``((top, bottom), (left, right))`` (numpy.pad's).
        border: every mode of :mod:`imkern.filters`: "constant" (``cval``), "reflect101",
            "reflect", "replicate", "wrap" (and their aliases), for widths of any size.
        cval: the value of "constant" padding, cast like a kernel result (integers rounded
            and saturated).

    Returns:
        ``(H + top + bottom, W + left + right, ...)``, the input's dtype. Equal to
        cv2.copyMakeBorder and to numpy.pad with the matching mode.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.transform.pad(np.array([[1, 2, 3]], np.uint8), (0, 2), border="reflect101").tolist()
        [[3, 2, 1, 2, 3, 2, 1]]
    """
    call_key = None
    if type(image) is np.ndarray and type(border) is str:
        # The whole call, once its arguments were checked on a non-empty NumPy image of this
        # shape and dtype (a small image's call would otherwise be mostly argument parsing).
        call_key = (A.int_key(pad), border, A.cache_key(cval), image.dtype, image.shape)
        call = _PAD_CALLS.get(call_key)
        if call is not None:
            r = cpu_image_op(image, out, _core.pad, call[0], call[1])
            if r is not None:
                return r
    kind, _, o = _image(image)
    if image.size == 0:
        top, bottom, left, right = _pad_widths(pad)
        b = parse_border(border)
        cv = _cval_of(cval, image.dtype)
        shape = list(image.shape)
        shape[o] += top + bottom
        shape[o + 1] += left + right
        target, final = A.prepare_out(out, image, kind, image.dtype, shape=tuple(shape))
        if target.size and b != "constant":
            raise ValueError(f"border: {b!r} needs a non-empty image; got shape {tuple(image.shape)}")
        target[...] = cv
        return A.finish_out(target, final)
    pk, ck = A.int_key(pad), A.cache_key(cval)
    plan = _pad_plan if pk is not A.UNCACHED and ck is not A.UNCACHED and type(border) is str else _pad_plan.__wrapped__
    shape, left, rows, cols, cpix = plan(
        pad if pk is A.UNCACHED else pk, border, cval if ck is A.UNCACHED else ck, image.shape, o, image.dtype
    )

    if call_key is not None and kind == "numpy" and A.UNCACHED not in (call_key[0], call_key[2]):
        A.bounded_put(_PAD_CALLS, call_key, ((rows, cols, left, cpix), shape))
    r = cpu_image_op(image, out, _core.pad, (rows, cols, left, cpix), shape)
    if r is not None:
        return r

    def cpu(src, dst):
        # per output row one memcpy of the source span and the border pixels by the column table
        _core.pad(src, dst, rows, cols, left, cpix)

    def cuda(dtc, src, dst, stream):
        import cupy

        d = [cupy.asarray(a) for a in (rows, cols, cpix)]
        _core.cuda_pad(
            src.dtype.itemsize,
            src.data.ptr,
            A.image_desc(src),
            dst.data.ptr,
            A.image_desc(dst),
            d[0].data.ptr,
            d[1].data.ptr,
            d[2].data.ptr,
            stream,
        )

    return run_image_op(image, out, cpu, cuda, out_shape=shape)


def flip(image, axis=1, *, out=None):
    """Mirror an image: ``axis=1`` left-right (horizontal flip), ``axis=0`` upside down
    (vertical), ``axis=(0, 1)`` or ``None`` both (a 180-degree rotation).

    The axes are the image's (H = 0, W = 1) whatever the layout, so a batch flips every image
    (cv2.flip codes 1, 0, -1).

    Example:
        >>> import numpy as np, imkern
        >>> imkern.transform.flip(np.array([[1, 2, 3]], np.uint8)).tolist()
        [[3, 2, 1]]
    """
    if type(axis) is int and (axis == 0 or axis == 1):
        r = cpu_image_op(image, out, _core.flip, (axis == 1, axis == 0))  # the common call, in one step
        if r is not None:
            return r
    kind, _, o = _image(image)
    axes: Tuple[int, ...]
    if type(axis) is int and (axis == 0 or axis == 1):
        axes = (axis,)  # the common call, decided in one test
    elif axis is None:
        axes = (0, 1)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(A.as_int(a, "axis") for a in axis)
    else:
        axes = (A.as_int(axis, "axis"),)
    if not axes or any(a not in (0, 1) for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axis: expected 0 (vertical), 1 (horizontal), (0, 1) or None, got {axis!r}")
    fx, fy = 1 in axes, 0 in axes

    def cpu(src, dst):
        _core.flip(src, dst, fx, fy)

    def cuda(dtc, src, dst, stream):
        xp = A.xp_of(kind)
        sl = [slice(None)] * src.ndim
        for a in axes:
            sl[o + a] = slice(None, None, -1)
        xp.copyto(dst, src[tuple(sl)])

    return run_image_op(image, out, cpu, cuda)


def rotate90(image, k=1, *, out=None):
    """Rotate by ``k`` quarter turns counter-clockwise (numpy.rot90 on the H, W axes).

    ``k`` may be any int (taken modulo 4; negative turns clockwise). ``k = 1`` equals
    cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE). Odd ``k`` swaps H and W.

    Example:
        >>> import numpy as np, imkern
        >>> imkern.transform.rotate90(np.array([[1, 2], [3, 4]], np.uint8)).tolist()
        [[2, 4], [1, 3]]
    """
    kind, xp, o = _image(image)
    k = A.as_int(k, "k") % 4
    if k == 0:
        return _finish(image, image, kind, out)
    if k == 2:
        return flip(image, None, out=out)
    shape = list(image.shape)
    shape[o], shape[o + 1] = shape[o + 1], shape[o]

    def cpu(src, dst):
        _core.rotate90(src, dst, k)

    def cuda(dtc, src, dst, stream):
        xp.copyto(dst, xp.rot90(src, k, axes=(o, o + 1)))

    return run_image_op(image, out, cpu, cuda, out_shape=tuple(shape))
