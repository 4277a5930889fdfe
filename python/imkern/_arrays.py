"""Array plumbing shared by every public op: kind (NumPy -> CPU, CuPy -> CUDA), dtype and
shape checks with clear errors, layout normalization, ``out=`` validation, and the CUDA
launch context (device guard + the caller's current CuPy stream).

Rules (docs/design.md): inputs are never modified; a layout the kernels cannot take
directly (e.g. a reversed or strided pixel axis) is copied deliberately; an ``out`` the
kernels cannot write directly (or one overlapping the input) receives the result by copy.
"""

from __future__ import annotations

import contextlib
import math
import operator
import sys
from typing import Any, Tuple

import numpy as np

from . import _core


# dtype -> code of csrc/include/imkern/common.hpp (DType), read from the one exported enum
class _DTypeCodes(dict):
    """dtype -> code. bfloat16 exists for NumPy/CuPy only through ml_dtypes, whose import takes
    most of a second: it is never imported here; a bfloat16 array can only exist once its
    user has imported ml_dtypes, so the code is added on the first lookup that needs it."""

    def __missing__(self, dt):
        ml = sys.modules.get("ml_dtypes")
        if ml is not None and dt == np.dtype(ml.bfloat16):
            self[dt] = int(_core.DType.bfloat16)
            return self[dt]
        raise KeyError(dt)

    def __contains__(self, dt):
        try:
            self[dt]
        except (KeyError, TypeError):
            return False
        return True

    def get(self, dt, default=None):
        return self[dt] if dt in self else default


DTYPE_CODES = _DTypeCodes((np.dtype(name), int(v)) for name, v in _core.DType.__members__.items() if name != "bfloat16")
IMAGE_DTYPES_CPU = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))
IMAGE_DTYPES_CUDA = IMAGE_DTYPES_CPU + (np.dtype(np.float16),)
# the same as a set, for the fast path of check_image (a non-native byte order is not a member)
_IMAGE_DTYPES_CPU_SET = frozenset(IMAGE_DTYPES_CPU)


def _dtype_list(dtypes) -> str:
    return ", ".join(str(d) for d in dtypes)


def is_cupy(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "__cuda_array_interface__")


def array_kind(x: Any, name: str) -> str:
    """'numpy' or 'cupy'; anything else is a TypeError that says what is accepted."""
    if isinstance(x, np.ndarray):
        if not x.dtype.isnative:
            # One rule for every op: the kernels read native byte order only, and converting
            # silently would hide a copy (and, for out=, a write that never reaches the array).
            native = x.dtype.newbyteorder("=")
            raise TypeError(
                f"{name}: dtype {x.dtype.str} is in non-native byte order; convert it first "
                f"({name}.astype(np.{native.name}))"
            )
        return "numpy"
    if is_cupy(x):
        if not _core.cuda_built:
            raise TypeError(
                f"{name}: got a CuPy array, but this imkern was built without CUDA support; "
                "pass a numpy.ndarray, or install a CUDA build of imkern"
            )
        return "cupy"
    raise TypeError(
        f"{name}: expected a numpy.ndarray (CPU kernels) or a cupy.ndarray (CUDA kernels), "
        f"got {type(x).__module__}.{type(x).__name__}"
    )


def xp_of(kind: str):
    if kind == "cupy":
        import cupy

        return cupy
    return np


def check_dtype(x: Any, name: str, kind: str, cpu_dtypes, cuda_dtypes=None) -> np.dtype:
    allowed = cpu_dtypes if kind == "numpy" else (cuda_dtypes or cpu_dtypes)
    dt = np.dtype(x.dtype)
    if dt not in allowed:
        where = "on the CPU" if kind == "numpy" else "on CUDA"
        raise TypeError(f"{name}: dtype {dt} is not supported {where}; expected one of {_dtype_list(allowed)}")
    return dt


def check_image(image: Any, name: str = "image") -> Tuple[str, np.dtype]:
    """Validate an image argument: kind, ndim (H, W) / (H, W, C) / (N, H, W, C), dtype."""
    if type(image) is np.ndarray and image.dtype in _IMAGE_DTYPES_CPU_SET and 2 <= image.ndim <= 4:
        return "numpy", image.dtype  # the common case, decided in one test (same result)
    kind = array_kind(image, name)
    if image.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name}: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(image.shape)}"
        )
    dt = check_dtype(image, name, kind, IMAGE_DTYPES_CPU, IMAGE_DTYPES_CUDA)
    return kind, dt


def _pixels_packed(a) -> bool:
    """True when the channels of a pixel and the pixels of a row are adjacent in memory and all
    strides are whole elements (rows and images may have any stride, negative included)."""
    it = a.dtype.itemsize
    if any(s % it for s in a.strides):
        return False
    shape, strides = a.shape, a.strides
    if a.ndim == 2:
        return shape[1] <= 1 or strides[1] == it
    c = shape[-1]
    ok_c = c <= 1 or strides[-1] == it
    ok_w = shape[-2] <= 1 or strides[-2] == c * it
    return ok_c and ok_w


def packed_image(image, kind: str):
    """The image itself when the kernels can read it in place, else a deliberate C-contiguous copy."""
    if image.flags.c_contiguous or _pixels_packed(image):
        return image
    return xp_of(kind).ascontiguousarray(image)


def image_desc(a):
    """The image descriptor (imkern::ImageDesc of common.hpp: n, h, w, c, batch_stride, row_stride,
    strides in elements) the CUDA bindings take."""
    it = a.dtype.itemsize
    if a.ndim == 2:
        return _core.ImageDesc(1, a.shape[0], a.shape[1], 1, 0, a.strides[0] // it)
    if a.ndim == 3:
        return _core.ImageDesc(1, a.shape[0], a.shape[1], a.shape[2], 0, a.strides[0] // it)
    return _core.ImageDesc(a.shape[0], a.shape[1], a.shape[2], a.shape[3], a.strides[0] // it, a.strides[1] // it)


# Large NumPy outputs come from the output cache (csrc/bindings/output_cache.cpp): blocks
# whose pages are mapped already, kept after their array dies. Outputs of at least this many
# bytes use it; imkern.set_output_cache sets it (and the byte budget) at import and after.
output_cache_min = [32 << 20]
_CACHE_MAX_REQUEST = 1 << 62  # beyond: np.empty, which says why it cannot

# NumPy's large blocks start 16 bytes into a page (glibc's mmap header), so a plain np.empty
# output starts mid cache line: a streaming kernel then writes its first and last line of every
# row with plain stores, and a vector store crosses lines. New outputs from this many bytes up
# (below the output cache, whose blocks are page-aligned) start on a 64-byte line instead.
_ALIGN_MIN = 1 << 16


def numpy_empty(shape, dtype: np.dtype, nbytes: int):
    """np.empty(shape, dtype) of ``nbytes`` bytes, starting on a 64-byte line when it is large
    (a C-contiguous view of a NumPy block 64 bytes longer, made in one native call: 0.65 us for a
    224x224 RGB output, where the address and the view from Python took 6.3 us; as the output
    cache's arrays are views). ``shape`` a tuple or list of ints, ``dtype`` an np.dtype."""
    if nbytes < _ALIGN_MIN or nbytes > _CACHE_MAX_REQUEST:
        return np.empty(shape, dtype)
    return _core.aligned_empty(shape, dtype)


def empty(kind: str, like, shape, dtype):
    """A new array of the device of ``like`` (on ``like``'s GPU for CuPy)."""
    if kind == "cupy":
        with like.device:
            return xp_of(kind).empty(tuple(shape), dtype=dtype)
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if output_cache_min[0] <= nbytes <= _CACHE_MAX_REQUEST:
        return _core.cached_empty(nbytes).view(dtype).reshape(shape)
    return numpy_empty(shape, dtype, nbytes)


def _device_id(a) -> int:
    return int(a.device.id)


def prepare_out(out, like, kind: str, dtype, shape=None, name: str = "out"):
    """Return (target, final): the array the kernel writes and the array to return.

    With ``out=None`` both are a new array. A user ``out`` is validated (kind, dtype, shape,
    device, writeable); when the kernel cannot write it directly (layout, or memory shared
    with ``like``) the kernel writes a temporary and the caller copies it into ``out``.
    """
    if out is None:
        t = empty(kind, like, like.shape if shape is None else shape, dtype)
        return t, t
    xp = xp_of(kind)
    shape = tuple(like.shape) if shape is None else tuple(shape)
    dtype = np.dtype(dtype)
    out_kind = "numpy" if isinstance(out, np.ndarray) else ("cupy" if is_cupy(out) else None)
    if out_kind != kind:
        raise TypeError(
            f"{name}: expected a {'numpy' if kind == 'numpy' else 'cupy'}.ndarray like the input, "
            f"got {type(out).__module__}.{type(out).__name__}"
        )
    if np.dtype(out.dtype) != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {out.dtype}")
    if tuple(out.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(out.shape)}")
    if kind == "cupy":
        if _device_id(out) != _device_id(like):
            raise ValueError(f"{name}: on device {_device_id(out)}, but the input is on device {_device_id(like)}")
    elif not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    direct = _pixels_packed(out) if len(shape) in (2, 3, 4) else out.flags.c_contiguous
    if direct and not xp.may_share_memory(out, like):
        return out, out
    return empty(kind, like, shape, dtype), out


def finish_out(target, final):
    """Copy the kernel's result into the user's ``out`` when it could not be written directly."""
    if target is not final:
        xp = np if isinstance(final, np.ndarray) else xp_of("cupy")
        xp.copyto(final, target)
    return final


@contextlib.contextmanager
def cuda_launch(a):
    """Device guard for ``a``'s device; yields the caller's current CuPy stream pointer."""
    import cupy

    with a.device:
        yield cupy.cuda.get_current_stream().ptr


_copysign = math.copysign
UNCACHED = object()  # cache_key's answer for a value that is not a plain number or tuple of them
_PLAIN_NUMBERS = (int, float)


def cache_key(value: Any) -> Any:
    """``value`` as a hashable key for an argument-parsing cache (functools.lru_cache), when
    it is None, a plain int or float, or a tuple / list of them (as a tuple): values that
    parse the same way whatever their key's equality merges (1 and 1.0). Anything else (bools,
    NumPy scalars and arrays, strings, and -0.0, which equals 0.0 but is another value of a
    border constant) is ``UNCACHED``: the caller parses it uncached, so every
    error is raised as without a cache. A small image's call would otherwise spend most of its
    time turning the same arguments into the same taps and tables."""
    t = type(value)
    if value is None or t is int:
        return value
    if t is float:
        return value if value or _copysign(1.0, value) > 0 else UNCACHED  # -0.0 == 0.0: not its key
    if t is tuple or t is list:
        for v in value:  # (a loop: a generator costs more than these few tests)
            tv = type(v)
            if tv is not int and (tv is not float or not v and _copysign(1.0, v) < 0):
                return UNCACHED
        return value if t is tuple else tuple(value)
    return UNCACHED


def int_key(value: Any) -> Any:
    """``value`` as a cache key when it is None, an int or a flat tuple / list of ints (types
    kept strict: sizes of 1.0 are a TypeError, never a hit on 1's entry), else ``UNCACHED``."""
    t = type(value)
    if t is int or value is None:
        return value
    if t is tuple or t is list:
        for v in value:
            if type(v) is not int:
                return UNCACHED
        return value if t is tuple else tuple(value)
    return UNCACHED


_CALL_CACHE_MAX = 1024


def bounded_put(cache: dict, key, value) -> None:
    """``cache[key] = value``, the cache emptied first when full (keys made of user values,
    distinct NaN objects for one, must not grow it without bound)."""
    if len(cache) >= _CALL_CACHE_MAX:
        cache.clear()
    cache[key] = value


def read_only(a):
    """``a`` made read-only (an array a cache hands out to every caller) and returned."""
    a.flags.writeable = False
    return a


def as_int(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}") from None


def as_pair(value: Any, name: str) -> Tuple[int, int]:
    """An int or a pair of ints -> (int, int)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return as_int(value[0], name), as_int(value[1], name)
    v = as_int(value, name)
    return v, v


def as_float(value: Any, name: str) -> float:
    t = type(value)
    if t is float:
        return value
    if t is int:
        return float(value)  # (OverflowError past the float range, as below)
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}") from None


def host_array(value: Any, name: str) -> np.ndarray:
    """A small host-side parameter (a filter kernel, say) as a float64 NumPy array."""
    if is_cupy(value):
        value = value.get()
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an array of numbers, got {type(value).__name__}") from None
    return a


class RangeError(ValueError, OverflowError):
    """An int argument beyond what the kernels take (C int / int64): a ValueError naming the
    argument, and an OverflowError for callers that catch that (as numpy.AxisError is both a
    ValueError and an IndexError)."""


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def int_in_range(value: Any, name: str, lo: int, hi: int) -> int:
    """An int in ``[lo, hi]``: below ``lo`` -> ValueError, above ``hi`` -> :class:`RangeError`,
    both naming the argument, so no out-of-range value reaches a binding (pybind11 would answer
    "incompatible function arguments", or a C cast would wrap)."""
    v = as_int(value, name)
    if v < lo:
        raise ValueError(f"{name}: expected an int >= {lo}, got {v}")
    if v > hi:
        raise RangeError(f"{name}: {v} is too large; the kernels take values up to {hi}")
    return v


def pair_in_range(value: Any, name: str, lo: int, hi: int) -> Tuple[int, int]:
    """An int or a pair of ints, each in ``[lo, hi]`` (errors as :func:`int_in_range`)."""
    a, b = as_pair(value, name)
    for v in (a, b):
        if v < lo:
            raise ValueError(f"{name}: expected values >= {lo}, got {value!r}")
        if v > hi:
            raise RangeError(f"{name}: {value!r} is too large; the kernels take values up to {hi}")
    return a, b
