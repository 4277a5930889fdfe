"""Argument checks shared by the nn ops (the array plumbing is :mod:`imkern._driver`).

Kinds and dtypes: NumPy float32/float64 run on the C++ kernels, CuPy float32/float16 (and
bfloat16 when ``ml_dtypes`` provides it) on the CUDA kernels. Wrong kind or dtype ->
TypeError naming the accepted dtypes; shapes and values -> ValueError naming the argument.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .. import _arrays as A
from .. import _core

FLOAT_CPU = (np.dtype(np.float32), np.dtype(np.float64))


class _CudaFloats(tuple):
    """float32, float16 and (when the caller has imported ml_dtypes, the only way to make such
    an array) bfloat16; ml_dtypes is never imported here (its import takes most of a second)."""

    def __contains__(self, dt) -> bool:
        # bfloat16 through the dtype table's one lazy lookup (_arrays.DTYPE_CODES)
        return tuple.__contains__(self, dt) or A.DTYPE_CODES.get(dt) == int(_core.DType.bfloat16)

    def __iter__(self):  # for messages: the names a user may pass
        yield from tuple.__iter__(self)
        yield "bfloat16"


FLOAT_CUDA = _CudaFloats((np.dtype(np.float32), np.dtype(np.float16)))


FLOAT_CPU_SET = frozenset(FLOAT_CPU)  # a non-native byte order is not a member


def check_float(x: Any, name: str, ndim: Optional[Sequence[int]] = None, min_ndim: int = 0) -> Tuple[str, np.dtype]:
    """Kind ('numpy' / 'cupy') and dtype of a floating-point tensor argument."""
    if type(x) is np.ndarray and x.dtype in FLOAT_CPU_SET and ndim is None and x.ndim >= min_ndim:
        return "numpy", x.dtype  # the common case in one test (same result)
    kind = A.array_kind(x, name)
    dt = A.check_dtype(x, name, kind, FLOAT_CPU, FLOAT_CUDA)
    if ndim is not None and x.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name}: expected a {want} array, got shape {tuple(x.shape)}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    return kind, dt


def check_like(a: Any, name: str, kind: str, dtype: np.dtype, shape=None) -> None:
    """``a`` must be the same kind and dtype as the main input (and have ``shape`` when given)."""
    k = A.array_kind(a, name)
    if k != kind:
        raise TypeError(f"{name}: expected a {kind} array like the other inputs, got a {k} array")
    if np.dtype(a.dtype) != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} like the input, got {a.dtype}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(a.shape)}")


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")


def as_prob(value: Any, name: str, allow_one: bool = True) -> float:
    v = A.as_float(value, name)
    if not (0.0 <= v <= 1.0) or (not allow_one and v == 1.0):
        hi = "1]" if allow_one else "1)"
        raise ValueError(f"{name}: expected a probability in [0, {hi}, got {value!r}")
    return v


def as_finite(value: Any, name: str) -> float:
    v = A.as_float(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


def prod(shape) -> int:
    p = 1
    for s in shape:
        p *= int(s)
    return p


def kind_dtype(a, name: str) -> Tuple[str, str]:
    """Array kind ('numpy' / 'cupy') and dtype name; TypeError naming the accepted dtypes.

    The dtype itself is checked (through :func:`check_float`), never its name: a byte-swapped
    ``>f4`` is named ``float32`` too, and was once read as native."""
    kind, dt = check_float(a, name)
    return kind, dtype_name(dt)


@functools.lru_cache(maxsize=None)
def dtype_name(dt: np.dtype) -> str:
    """``dt.name``, cached: NumPy 2 computes the name in Python (~8 us), once per dtype here."""
    return dt.name


def same_as(a, name: str, kind: str, dname: str, ref_name: str = "x") -> None:
    k, d = kind_dtype(a, name)
    if k != kind:
        raise TypeError(f"{name}: expected a {kind} array like {ref_name}, got {type(a).__module__}.{type(a).__name__}")
    if d != dname:
        raise TypeError(f"{name}: dtype {d} differs from {ref_name}'s dtype {dname}")


def input_like_params(x, name: str, kind: str, dname: str, params) -> None:
    """The parameters ``params`` ((array or None, name) pairs: weight, bias) must be of ``x``'s
    kind and dtype. A dtype mismatch names the input and suggests the cast: the parameters are
    what a layer was built with (float32 by default), the input is what usually differs."""
    for p, pname in params:
        if p is None:
            continue
        k, d = kind_dtype(p, pname)
        if k != kind:
            raise TypeError(
                f"{pname}: expected a {kind} array like {name}, got {type(p).__module__}.{type(p).__name__}"
            )
        if d != dname:
            raise TypeError(
                f"{name}: dtype {dname} differs from the {pname}'s dtype {d}; cast the input "
                f"({name}.astype({d!r})), or build the layer / parameters with dtype {dname}"
            )


def torch_names(**aliases: str):
    """Accept PyTorch's keyword names as aliases of ours, so ``torch.nn.functional`` calls port
    by changing the import: ``@torch_names(input="x", dim="axis")`` makes ``f(input=a, dim=1)``
    mean ``f(x=a, axis=1)``. Giving both names of one argument is a TypeError."""

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            if not kwargs:
                return f(*args)
            for alias, ours in aliases.items():
                if alias in kwargs:
                    if ours in kwargs:
                        raise TypeError(f"{f.__name__}: got both {alias}= and {ours}= (the same argument)")
                    kwargs[ours] = kwargs.pop(alias)
            return f(*args, **kwargs)

        wrapper.torch_aliases = dict(aliases)  # type: ignore[attr-defined]
        return wrapper

    return deco
