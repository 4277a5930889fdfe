"""The one path every op takes: validate, handle empty input and ``out=``, route NumPy to the
CPU kernel and CuPy to the CUDA kernel (device guard + the caller's current stream), finish.

An op's module defines its CPU and CUDA calls side by side and hands them to a driver here;
user-facing validation happens once, in Python, before the first kernel launch.
"""
from __future__ import annotations

from . import _arrays as A


def run_image_op(image, out, cpu_call, cuda_call, *, out_shape=None, out_dtype=None, name="image"):
    """Run an image -> image op.

    ``cpu_call(src, dst)`` gets NumPy arrays the kernel can read and write in place;
    ``cuda_call(dtype_code, src, dst, stream)`` gets CuPy arrays and the current stream's handle.
    ``out_shape`` / ``out_dtype`` default to the input's.
    """
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
    return A.finish_out(target, final)
