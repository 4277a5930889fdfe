"""Arrays of other frameworks in and out of every public op, zero-copy, through DLPack.

The ops themselves (and :mod:`imkern._driver`) take NumPy arrays (CPU kernels) and CuPy arrays
(CUDA kernels). Everything else that speaks DLPack (``__dlpack__`` / ``__dlpack_device__``:
PyTorch tensors on the CPU or CUDA, JAX arrays, ...) or the CUDA array interface
(``__cuda_array_interface__``: Numba, ...) is converted here, once, at the entry of each public
function, and the results go back as the caller's kind:

* in: a CPU array becomes a NumPy view of the same memory (``np.from_dlpack``); a CUDA array a
  CuPy view (``cupy.from_dlpack``, which hands the producer the consumer's stream so the
  producer orders its pending work before ours; ``cupy.asarray`` for the CUDA array interface,
  which synchronizes on the interface's ``stream`` by default). Strides are kept: a
  non-contiguous tensor is a strided view, copied only where the op's kernels cannot read it
  (as for a strided NumPy array).
* PyTorch CUDA tensors: the op runs on PyTorch's current stream of the tensor's device (as a
  ``cupy.cuda.ExternalStream``), so it is ordered with the caller's PyTorch work without a
  device synchronization.
* out: NumPy/CuPy results go back through ``torch.from_dlpack`` / ``jax.dlpack.from_dlpack``
  (zero-copy where the consumer allows) when the first foreign argument was a PyTorch tensor /
  a JAX array. An ``out=`` tensor is written in place (it is a view of the same memory) and
  returned itself. Other producers get NumPy / CuPy arrays back.
* PyTorch tensors that require grad are detached: the plain functions are not recorded by
  autograd, and their results never require grad. For gradients use :mod:`imkern.torch`,
  whose ops are registered with ``torch.library`` and have backward formulas.

:func:`install` wraps the public functions of the families (filters, color, transform,
nn.functional) in their package namespaces; the wrapper costs one type lookup per argument
when nothing foreign is passed.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Dict

import numpy as np

from . import _arrays as A

_KDL_CPU, _KDL_CUDA, _KDL_CUDA_HOST, _KDL_CUDA_MANAGED = 1, 2, 3, 13

# type -> True (foreign: convert), False (native or not an array); filled lazily
_FOREIGN: Dict[type, bool] = {
    np.ndarray: False,
    int: False,
    float: False,
    bool: False,
    str: False,
    type(None): False,
    tuple: False,
    list: False,
    dict: False,
    bytes: False,
}


def is_foreign(x: Any) -> bool:
    """True for an array of another framework (DLPack or CUDA array interface producer)."""
    t = type(x)
    f = _FOREIGN.get(t)
    if f is None:
        f = (
            not isinstance(x, (np.ndarray, np.generic))
            and not A.is_cupy(x)
            and (hasattr(t, "__dlpack__") or hasattr(x, "__cuda_array_interface__"))
        )
        _FOREIGN[t] = f
    return f


def _framework(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def _is_torch(x: Any) -> bool:
    return _framework(x) == "torch"


def _is_jax(x: Any) -> bool:
    return _framework(x) in ("jax", "jaxlib")


def to_native(x: Any):
    """A NumPy (CPU) or CuPy (CUDA) view of a foreign array, sharing its memory.

    PyTorch tensors are detached first (``__dlpack__`` refuses tensors that require grad) and
    their conjugate / negative bits resolved. Raises TypeError for an array on a device that
    imkern has no kernels for.
    """
    if _is_torch(x):
        if x.requires_grad:
            x = x.detach()
        if x.is_conj():
            x = x.resolve_conj()
        if x.is_neg():
            x = x.resolve_neg()
        if x.device.type == "cpu":
            return x.numpy()  # the same view as np.from_dlpack, a few times cheaper
    if hasattr(x, "__dlpack_device__"):
        dev, dev_id = (int(v) for v in x.__dlpack_device__())
        if dev == _KDL_CPU or dev == _KDL_CUDA_HOST:
            return np.from_dlpack(x)
        if dev in (_KDL_CUDA, _KDL_CUDA_MANAGED):
            cupy = _cupy(x)
            with cupy.cuda.Device(dev_id):
                return cupy.from_dlpack(x)
        raise TypeError(
            f"{type(x).__module__}.{type(x).__name__} on DLPack device type {dev}: imkern has kernels "
            "for CPU (NumPy) and CUDA (CuPy) memory only"
        )
    if hasattr(x, "__cuda_array_interface__"):
        return _cupy(x).asarray(x)
    return np.from_dlpack(x)


def _cupy(x):
    try:
        import cupy
    except ImportError:
        raise TypeError(
            f"{type(x).__module__}.{type(x).__name__} lives on a CUDA device; imkern's CUDA kernels "
            "need CuPy (pip install cupy-cuda13x) and a CUDA build of imkern"
        ) from None
    return cupy


def from_native(r: Any, like: Any):
    """``r`` (NumPy / CuPy, or tuples/lists of them) as the framework of ``like``."""
    if isinstance(r, tuple):
        return tuple(from_native(v, like) for v in r)
    if isinstance(r, list):
        return [from_native(v, like) for v in r]
    if not (isinstance(r, np.ndarray) or A.is_cupy(r)):
        return r
    if _is_torch(like):
        import torch

        try:
            if isinstance(r, np.ndarray) and r.flags.writeable:
                return torch.from_numpy(r)  # zero-copy, cheaper than the DLPack round trip
            return torch.from_dlpack(r)
        except (BufferError, TypeError, RuntimeError, ValueError):
            # read-only NumPy arrays (DLPack < 1.0 consumers), dtypes DLPack has no code for
            if isinstance(r, np.ndarray):
                return torch.from_numpy(np.array(r))
            raise
    if _is_jax(like):
        import jax

        try:
            return jax.dlpack.from_dlpack(r)
        except Exception:
            if isinstance(r, np.ndarray):
                return jax.numpy.asarray(r)
            raise
    return r


@contextlib.contextmanager
def _producer_stream(like):
    """CuPy's current device and stream set to the CUDA tensor ``like``'s device and PyTorch's
    current stream there."""
    import cupy
    import torch

    dev = like.device.index if like.device.index is not None else torch.cuda.current_device()
    s = torch.cuda.current_stream(dev)
    with cupy.cuda.Device(dev):
        cs = None
        from_external = getattr(cupy.cuda.Stream, "from_external", None)  # CuPy >= 14
        if from_external is not None:
            try:
                cs = from_external(s)
            except Exception:
                cs = None
        if cs is None:
            cs = cupy.cuda.ExternalStream(s.cuda_stream, dev)
        with cs:
            yield


def call(fn: Callable, args, kwargs):
    """``fn(*args, **kwargs)`` with foreign arrays converted in and the result converted back."""
    lead = next((v for v in (*args, *kwargs.values()) if is_foreign(v)), None)
    if lead is not None and _is_torch(lead) and lead.is_cuda:
        # convert and run on PyTorch's current stream: the DLPack handshake then orders nothing
        with _producer_stream(lead):
            return _call(fn, args, kwargs, lead)
    return _call(fn, args, kwargs, lead)


def _call(fn, args, kwargs, like):
    originals = {}  # id(native view) -> the foreign object it views (for out=)

    def conv(v):
        if not is_foreign(v):
            return v
        n = to_native(v)
        originals[id(n)] = v
        return n

    r = fn(*[conv(v) for v in args], **({k: conv(v) for k, v in kwargs.items()} if kwargs else kwargs))
    out = kwargs.get("out") if kwargs else None
    if out is not None and is_foreign(out):
        # an out= tensor is a view of the same memory: written in place, returned itself
        if any(id(r) == i for i, o in originals.items() if o is out):
            return out
    return from_native(r, like)


def accepts_foreign(fn: Callable) -> Callable:
    """Wrap a public op so that foreign arrays are accepted and returned (see the module doc)."""
    if getattr(fn, "_imkern_interop", False):
        return fn

    known = _FOREIGN  # type -> foreign?, looked up inline: this runs on every call of every op

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # a type known not foreign (False) is passed over in one test; is_foreign answers the
        # others (True for a known foreign type) and records the new ones
        for v in args:
            if known.get(type(v)) is not False and is_foreign(v):
                return call(fn, args, kwargs)
        if kwargs:
            for v in kwargs.values():
                if known.get(type(v)) is not False and is_foreign(v):
                    return call(fn, args, kwargs)
            return fn(*args, **kwargs)
        return fn(*args)

    wrapper._imkern_interop = True  # type: ignore[attr-defined]
    return wrapper


def install(*modules) -> None:
    """Wrap every public function (``__all__``, or public names) of ``modules`` in place."""
    import inspect

    for m in modules:
        names = getattr(m, "__all__", None) or [n for n in vars(m) if not n.startswith("_")]
        for n in names:
            f = getattr(m, n, None)
            if inspect.isfunction(f) and not getattr(f, "_imkern_interop", False):
                w = accepts_foreign(f)
                # pickle finds functions by module and name: point it at the wrapper
                w.__module__, w.__qualname__ = m.__name__, n
                setattr(m, n, w)
