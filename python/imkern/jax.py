"""imkern's linear filters inside JAX: XLA FFI custom calls, differentiable, jit- and vmap-able.

The C++ handlers (csrc/bindings/jax_ffi.cpp, built into imkern's extension against the
vendored header-only XLA FFI API) are registered with ``jax.ffi.register_ffi_target`` for the
CPU platform (and CUDA in CUDA builds) when this module is imported; ``jax.ffi.ffi_call`` puts
them into the XLA program, so they run inside ``jax.jit`` on XLA's buffers (no host round trip,
no Python at run time).

* ``jax.vmap``: the handlers fold every leading dimension into the image batch, so a vmapped
  call is one kernel call over the whole batch (``vmap_method="expand_dims"``).
* Gradients (``jax.custom_vjp``): the exact adjoint of the filter with respect to the image,
  for every border mode: the gradient zero-padded by the kernel's extent, correlated with the
  flipped kernel (the same FFI handler), then the padded rows and columns added onto the image
  pixels the border rule maps them to (nothing for the constant border). The kernel taps are
  static (not differentiated).

Images are ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64 (JAX
needs ``jax_enable_x64`` for float64). CUDA builds of imkern also register CUDA handlers (the
same kernels as CuPy arrays get, on XLA's stream; tests/test_jax.py passed on an H200 with JAX's
GPU backend, results within float rounding of the CPU kernels).

Example:
    >>> import numpy as np, jax, jax.numpy as jnp, imkern, imkern.jax as ikj
    >>> x = np.random.default_rng(0).random((16, 16), np.float32)
    >>> bool(np.array_equal(jax.jit(lambda a: ikj.gaussian(a, 1.5))(jnp.asarray(x)),
    ...                     imkern.filters.gaussian(x, 1.5)))
    True
"""

from __future__ import annotations

import functools
from typing import Tuple

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as e:  # pragma: no cover - exercised without jax
    raise ImportError("imkern.jax needs JAX (pip install jax)") from e

from . import _core
from ._borders import BORDER_CODES, parse_border
from ._kernels import gaussian_kernels
from .filters._linear import _gaussian_args, _kernel1d, _kernel2d
from .reference.filters import _NP_PAD

__all__ = ["gaussian", "sep_filter", "correlate"]

_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))


def _register():
    handlers = getattr(_core, "jax_ffi_handlers", None)
    if handlers is None:  # pragma: no cover - an extension built without jax_ffi.cpp
        raise ImportError("imkern.jax: this imkern build has no XLA FFI handlers (_core.jax_ffi_handlers)")
    for platform, targets in handlers().items():
        for name, capsule in targets.items():
            try:
                jax.ffi.register_ffi_target(name, capsule, platform=platform)
            except Exception:  # pragma: no cover - a jaxlib without this platform (CUDA)
                if platform == "cpu":
                    raise


_register()


def _image_rank(x) -> int:
    if x.ndim not in (2, 3, 4):
        raise ValueError(
            f"image: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(x.shape)}"
        )
    if np.dtype(x.dtype) not in _DTYPES:
        raise TypeError(
            f"image: dtype {np.dtype(x.dtype)} is not supported; expected one of {', '.join(str(d) for d in _DTYPES)}"
        )
    return 2 if x.ndim == 2 else 3


def _hw_axes(ndim: int) -> Tuple[int, int]:
    return (1, 2) if ndim == 4 else (0, 1)


def _border_map(n: int, before: int, after: int, border: str) -> np.ndarray:
    mode = _NP_PAD[border]
    if mode == "constant":
        return np.pad(np.arange(n), (before, after), mode="constant", constant_values=-1)
    return np.pad(np.arange(n), (before, after), mode=mode)


def _fold(g, axis: int, idx: np.ndarray, n: int):
    keep = np.nonzero(idx >= 0)[0]
    gm = jnp.moveaxis(g, axis, 0)
    res = jnp.zeros((n,) + gm.shape[1:], g.dtype).at[idx[keep]].add(gm[keep])
    return jnp.moveaxis(res, 0, axis)


def _taps(k: np.ndarray, x):
    """The taps as an operand of the accumulation dtype (what the CUDA handlers read on the
    device; float64 for float64 images, else float32)."""
    return jnp.asarray(k, jnp.float64 if np.dtype(x.dtype) == np.float64 else jnp.float32)


# vmap: unbatched operands (the taps) get size-1 leading dimensions, the image a batch
# dimension, which the handlers fold into N: one kernel call for the whole batch.
def _ffi_sep(x, ky: Tuple[float, ...], kx: Tuple[float, ...], rank: int, border: str, cval: float):
    call = jax.ffi.ffi_call("imkern_sep_filter", jax.ShapeDtypeStruct(x.shape, x.dtype), vmap_method="expand_dims")
    ya, xa = np.asarray(ky, np.float64), np.asarray(kx, np.float64)
    return call(
        x,
        _taps(ya, x),
        _taps(xa, x),
        kernel_y=ya,
        kernel_x=xa,
        image_rank=np.int64(rank),
        border=np.int64(BORDER_CODES[border]),
        cval=np.float64(cval),
    )


def _ffi_corr(x, k: Tuple[Tuple[float, ...], ...], rank: int, border: str, cval: float):
    ka = np.asarray(k, np.float64)
    call = jax.ffi.ffi_call("imkern_correlate", jax.ShapeDtypeStruct(x.shape, x.dtype), vmap_method="expand_dims")
    return call(
        x,
        _taps(ka.ravel(), x),
        kernel=ka.ravel(),
        kh=np.int64(ka.shape[0]),
        kw=np.int64(ka.shape[1]),
        image_rank=np.int64(rank),
        border=np.int64(BORDER_CODES[border]),
        cval=np.float64(cval),
    )


def _adjoint(g, ksizes, border, filt):
    """Exact adjoint of an anchored (size // 2) filter under ``border``; ``filt`` correlates a
    zero-padded gradient with the flipped kernel (zero border)."""
    axes = _hw_axes(g.ndim)
    pads = [(0, 0)] * g.ndim
    for a, k in zip(axes, ksizes):
        pads[a] = (k - 1 - k // 2, k // 2)
    full = filt(jnp.pad(g, pads))
    for a, k in zip(axes, ksizes):
        n = g.shape[a]
        full = _fold(full, a, _border_map(n, k // 2, k - 1 - k // 2, border), n)
    return full


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4, 5))
def _sep(x, ky, kx, rank, border, cval):
    return _ffi_sep(x, ky, kx, rank, border, cval)


def _sep_fwd(x, ky, kx, rank, border, cval):
    return _ffi_sep(x, ky, kx, rank, border, cval), None


def _sep_bwd(ky, kx, rank, border, cval, _, g):
    fy, fx = tuple(ky[::-1]), tuple(kx[::-1])
    gi = _adjoint(g, (len(ky), len(kx)), border, lambda p: _ffi_sep(p, fy, fx, rank, "constant", 0.0))
    return (gi,)


_sep.defvjp(_sep_fwd, _sep_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _corr(x, k, rank, border, cval):
    return _ffi_corr(x, k, rank, border, cval)


def _corr_fwd(x, k, rank, border, cval):
    return _ffi_corr(x, k, rank, border, cval), None


def _corr_bwd(k, rank, border, cval, _, g):
    ka = np.asarray(k, np.float64)
    kf = tuple(tuple(r) for r in ka[::-1, ::-1].tolist())
    gi = _adjoint(g, ka.shape, border, lambda p: _ffi_corr(p, kf, rank, "constant", 0.0))
    return (gi,)


_corr.defvjp(_corr_fwd, _corr_bwd)


def sep_filter(image, kernel_y, kernel_x, *, border="reflect101", cval=0.0):
    """:func:`imkern.filters.sep_filter` as an XLA custom call (differentiable in ``image``)."""
    rank = _image_rank(image)
    ky = tuple(_kernel1d(kernel_y, "kernel_y").tolist())
    kx = tuple(_kernel1d(kernel_x, "kernel_x").tolist())
    return _sep(image, ky, kx, rank, parse_border(border), float(cval))


def gaussian(image, sigma, *, ksize=None, truncate=4.0, border="reflect101", cval=0.0):
    """:func:`imkern.filters.gaussian` as an XLA custom call (same kernels, same results;
    differentiable in ``image``, jit- and vmap-able)."""
    rank = _image_rank(image)
    sig, ks, truncate = _gaussian_args(sigma, ksize, truncate)
    ky, kx = gaussian_kernels(sig, ks, truncate)
    return _sep(image, tuple(ky.tolist()), tuple(kx.tolist()), rank, parse_border(border), float(cval))


def correlate(image, kernel, *, border="reflect101", cval=0.0):
    """:func:`imkern.filters.correlate` as an XLA custom call (the kernel is static; differentiable
    in ``image``)."""
    rank = _image_rank(image)
    k = _kernel2d(kernel)
    return _corr(image, tuple(tuple(r) for r in k.tolist()), rank, parse_border(border), float(cval))
