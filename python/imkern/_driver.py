"""The one path every op takes: validate, handle empty input and ``out=``, route NumPy to the
CPU kernel and CuPy to the CUDA kernel (device guard + the caller's current stream), finish.

An op's module defines its CPU and CUDA calls side by side and hands them to a driver here;
user-facing validation happens once, in Python, before the first kernel launch. Bindings
and launchers only assert.

Two drivers share the steps:

* :func:`run_image_op` for image -> image ops (``(H, W)``, ``(H, W, C)``, ``(N, H, W, C)``;
  the kernels read any row and image stride, so only unpacked pixels are copied);
* :func:`run_op` for tensor ops (the nn family: C-contiguous tensors, non-contiguous inputs
  copied deliberately, an ``out`` the kernel cannot write, or one overlapping an input,
  filled by copy).

Ops with several outputs (the backward passes) use the steps directly: :func:`contiguous`,
:func:`output` / :func:`empty`, :func:`launch`, :func:`finish`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _arrays as A

_IMAGE_DTYPES = A._IMAGE_DTYPES_CPU_SET


def launch(kind: str, like, cpu_call: Optional[Callable[[], Any]], cuda_call: Callable[[int], Any]):
    """Call the kernel of the array's device and return what it returns.

    ``cpu_call()`` for NumPy; ``cuda_call(stream)`` for CuPy, under a device guard for
    ``like``'s device, with the handle of that device's current CuPy stream. ``cpu_call`` may
    be None on a path only CuPy arrays reach.
    """
    if kind == "numpy":
        assert cpu_call is not None, "a NumPy array reached a CUDA-only path"
        return cpu_call()
    with A.cuda_launch(like) as stream:
        return cuda_call(stream)


def contiguous(a, kind: str):
    """``a`` itself when C-contiguous (or None), else a deliberate C-contiguous copy."""
    if a is None or a.flags.c_contiguous:
        return a
    return A.xp_of(kind).ascontiguousarray(a)


empty = A.empty  # a new array on the device of ``like``: empty(kind, like, shape, dtype)


def zeros(kind: str, like, shape, dtype):
    a = empty(kind, like, shape, dtype)
    a[...] = 0
    return a


def output(out, inputs: Sequence[Any], kind: str, dtype, shape, name: str = "out"):
    """(target, final): the C-contiguous array the kernel writes and the array returned.

    ``out`` is validated (kind, dtype, shape, device, writeable); when it is not C-contiguous
    or shares memory with any input the kernel writes a temporary copied into it by
    :func:`finish`.
    """
    like = inputs[0]
    target, final = A.prepare_out(out, like, kind, dtype, shape, name)
    if out is not None and target is final:
        xp = A.xp_of(kind)
        if not target.flags.c_contiguous or any(i is not None and xp.may_share_memory(target, i) for i in inputs):
            target = empty(kind, like, shape, dtype)
    return target, final


def finish(target, final):
    """Copy the kernel's result into the user's ``out`` when it could not be written directly."""
    return A.finish_out(target, final)


def ptr(a) -> int:
    """Device pointer of a CuPy array (0 for None), for the CUDA bindings."""
    return 0 if a is None else int(a.data.ptr)


def run_op(
    kind: str,
    inputs: Sequence[Any],
    out,
    cpu_call,
    cuda_call,
    *,
    shape,
    dtype,
    out_inputs: Optional[Sequence[Any]] = None,
    name: str = "out",
):
    """Run a tensor op with one output.

    ``inputs`` (None entries allowed) are made C-contiguous; ``cpu_call(*inputs, target)`` runs
    on NumPy, ``cuda_call(*inputs, target, stream)`` on CuPy. Nothing runs when the output is
    empty. ``out_inputs`` (default ``inputs``) are the arrays ``out`` must not overlap.
    """
    if out is None and kind == "numpy":
        # a new NumPy output (the common case) in as few steps as possible: same result
        target = A.empty(kind, None, shape, dtype)
        if target.size:
            cpu_call(*[a if a is None or a.flags.c_contiguous else np.ascontiguousarray(a) for a in inputs], target)
        return target
    target, final = output(out, list(out_inputs if out_inputs is not None else inputs), kind, dtype, shape, name)
    if target.size == 0:
        return final
    args = [contiguous(a, kind) for a in inputs]
    launch(kind, args[0], lambda: cpu_call(*args, target), lambda stream: cuda_call(*args, target, stream))
    return finish(target, final)


_CACHE_MIN = A.output_cache_min  # (a list: imkern.set_output_cache changes its one element)
_ALIGN_MIN = A._ALIGN_MIN  # below: a plain np.empty (A.numpy_empty)


def new_numpy(shape, dtype: np.dtype, nbytes: int):
    """A new NumPy output of ``nbytes`` bytes: :func:`empty` for a NumPy array, one comparison
    before :func:`A.numpy_empty` for the smaller ones (the output cache holds only large blocks),
    np.empty itself for the small ones (what A.numpy_empty gives them, a call sooner)."""
    if nbytes >= _CACHE_MIN[0]:
        return A.empty("numpy", None, shape, dtype)
    if nbytes < _ALIGN_MIN:
        return np.empty(shape, dtype)
    return A.numpy_empty(shape, dtype, nbytes)


def cpu_tensor_out(x, out, dtypes):
    """The common case of :func:`run_op` for one input, or None: when ``x`` is a NumPy array of
    a dtype in ``dtypes`` (a set: a non-native byte order is no member) and ``out`` is None,
    (x or its C-contiguous copy, a new output of its shape and dtype), as run_op would pass
    them to its CPU call (which the op then makes, unless the output is empty). Anything else
    returns None and the op takes its checks and run_op: one call instead of run_op's closures
    and list, where a small tensor's call is mostly Python."""
    if out is not None or type(x) is not np.ndarray or x.dtype not in dtypes:
        return None
    y = new_numpy(x.shape, x.dtype, x.nbytes)
    return (x if x.flags.c_contiguous else np.ascontiguousarray(x)), y


def cpu_image_op(image, out, kernel, args=(), out_shape=None, out_dtype=None):
    """The common case of :func:`run_image_op` in one step, or None.

    When ``image`` is a NumPy array of a kernel dtype with 2-4 axes (native byte order): with
    ``out`` None, a new output of ``out_shape`` / ``out_dtype`` (an np.dtype; default the
    input's); with an ``out`` the kernel can write in place (a NumPy array of exactly that
    shape and dtype, C-contiguous, writeable, sharing no memory with the image), that array;
    ``kernel(src, dst, *args)`` unless either is empty, and the output returned, exactly as
    :func:`run_image_op` would. Anything else (errors included) returns None, and the op takes
    :func:`run_image_op`. A small image's call is mostly Python: this one skips the per-call
    closures and the generic checks (an op calls it with its validated arguments).
    """
    if type(image) is not np.ndarray:
        return None
    dt = image.dtype
    if dt not in _IMAGE_DTYPES or not 2 <= image.ndim <= 4:
        return None
    if out is not None:
        # a buffer the caller reuses: written in place where prepare_out would write it so (a
        # strided out, one over the image, a wrong one: run_image_op copies or says why)
        if (
            type(out) is not np.ndarray
            or out.dtype != (dt if out_dtype is None else out_dtype)
            or out.shape != (image.shape if out_shape is None else out_shape)
        ):
            return None
        flags = out.flags
        if not flags.c_contiguous or not flags.writeable or np.may_share_memory(out, image):
            return None
        dst, empty_out = out, out.size == 0
    else:
        if out_shape is None:
            out_shape = image.shape
            nbytes = image.nbytes if out_dtype is None else image.size * out_dtype.itemsize
        else:
            nbytes = math.prod(out_shape) * (dt if out_dtype is None else out_dtype).itemsize
        dst, empty_out = new_numpy(out_shape, dt if out_dtype is None else out_dtype, nbytes), nbytes == 0
    if not empty_out and image.size:
        kernel(
            image if image.flags.c_contiguous or A._pixels_packed(image) else np.ascontiguousarray(image), dst, *args
        )
    return dst


def run_image_op(image, out, cpu_call, cuda_call, *, out_shape=None, out_dtype=None, name="image"):
    """Run an image -> image op.

    ``cpu_call(src, dst)`` gets NumPy arrays the kernel can read and write in place;
    ``cuda_call(dtype_code, src, dst, stream)`` gets CuPy arrays and the current stream's handle.
    ``out_shape`` / ``out_dtype`` default to the input's.
    """
    # The common case (a NumPy image of a kernel dtype, a new output) in one step.
    done = cpu_image_op(image, out, cpu_call, (), out_shape, None if out_dtype is None else np.dtype(out_dtype))
    if done is not None:
        return done
    kind, dt = A.check_image(image, name)
    odt = dt if out_dtype is None else out_dtype
    target, final = A.prepare_out(out, image, kind, odt, shape=out_shape)
    if image.size == 0 or target.size == 0:
        return final
    src = A.packed_image(image, kind)
    if kind == "numpy":
        cpu_call(src, target)
    else:
        with A.cuda_launch(src) as stream:
            cuda_call(A.DTYPE_CODES[dt], src, target, stream)
    return finish(target, final)
