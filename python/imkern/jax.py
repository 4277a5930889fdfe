"""imkern inside JAX: XLA FFI custom calls, differentiable, jit- and vmap-able.

Ops: the linear filters (:func:`gaussian`, :func:`sep_filter`, :func:`correlate`); the CNN
ops (:func:`conv2d`, :func:`linear`, :func:`max_pool2d`, :func:`avg_pool2d`, :func:`relu`,
:func:`leaky_relu`, :func:`sigmoid`, :func:`tanh`, :func:`gelu`, :func:`softmax`,
:func:`log_softmax`, :func:`batch_norm`), each a ``jax.custom_vjp`` whose backward pass is
imkern's backward kernel through FFI too (softmax's is written in jax.numpy: imkern has no
softmax backward kernel); the image ops :func:`median`, :func:`erode`, :func:`dilate`,
:func:`sobel` and the color conversions (:func:`rgb_to_gray`, ...), forward only (imkern has
no adjoint kernels for them: ``jax.grad`` through them raises), and :func:`resize`,
differentiable for float images (its adjoint is imkern's resize kernel with the transposed
tables). Each equals
the NumPy path of the same imkern function bit for bit on the CPU (the same kernels with the
same parameters: winograd selection, tables, rounding).

The C++ handlers (csrc/bindings/jax_ffi.cpp, built into imkern's extension against the
vendored header-only XLA FFI API) are registered with ``jax.ffi.register_ffi_target`` for the
CPU platform (and CUDA in CUDA builds) when this module is imported; ``jax.ffi.ffi_call`` puts
them into the XLA program, so they run inside ``jax.jit`` on XLA's buffers (no host round trip,
no Python at run time).

* ``jax.vmap``: the handlers fold every leading dimension into the image batch, so a vmapped
  call is one kernel call over the whole batch (``vmap_method="expand_dims"``); the CNN ops
  fold it into N where their parameters are shared and otherwise (per-example weights, the
  backward passes' per-example parameter gradients, batch norm's per-example statistics) call
  the kernel once per batch element.
* Gradients (``jax.custom_vjp``): the exact adjoint of the filter with respect to the image,
  for every border mode: the gradient zero-padded by the kernel's extent, correlated with the
  flipped kernel (the same FFI handler), then the padded rows and columns added onto the image
  pixels the border rule maps them to (nothing for the constant border). The kernel taps are
  static (not differentiated).

Images are ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16, float32, float64 (JAX
needs ``jax_enable_x64`` for float64). CUDA builds of imkern also register CUDA handlers (the
same kernels as CuPy arrays get, on XLA's stream; the filters' tests/test_jax.py passed on an
H200 with JAX's GPU backend, results within float rounding of the CPU kernels; the CNN and image
handlers compile but have not yet run on a GPU).

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

from . import _core, _runtime
from ._borders import BORDER_CODES, parse_border
from ._kernels import gaussian_kernels
from .filters._derivatives import _ksize as _deriv_ksize
from .filters._derivatives import _order as _deriv_order
from .filters._derivatives import _out_dtype as _deriv_out_dtype
from .filters._derivatives import _scaled as _deriv_scaled
from .filters._derivatives import sobel_kernels
from .filters._linear import _gaussian_args, _kernel1d, _kernel2d
from .filters._median import _MAX_SIZE as _MEDIAN_MAX
from .filters._morphology import _as_footprint
from .filters._morphology import _border as _morph_border
from .filters._morphology import _identity as _morph_identity
from .nn._conv2d import _conv_geometry
from .nn._pool2d import _avg_args
from .nn._pool2d import _geometry as _pool_geometry
from .nn._softmax import _axis as _softmax_axis
from .reference.filters import _NP_PAD
from .transform import _resize as _rz

__all__ = [
    "gaussian",
    "sep_filter",
    "correlate",
    "conv2d",
    "linear",
    "max_pool2d",
    "avg_pool2d",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    "log_softmax",
    "batch_norm",
    "median",
    "erode",
    "dilate",
    "sobel",
    "resize",
    "rgb_to_gray",
    "bgr_to_gray",
    "gray_to_rgb",
    "rgb_to_bgr",
    "bgr_to_rgb",
    "rgba_to_rgb",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "rgb_to_lab",
    "lab_to_rgb",
]

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


# ---- shared plumbing of the CNN and image ops ----------------------------------------------------


def _ffi(target: str, results, *operands, **attrs):
    """One XLA FFI custom call; vmap adds a leading dimension to every operand and result (size 1
    where unbatched), which the handlers fold or loop over (see the module docstring)."""
    return jax.ffi.ffi_call(target, results, vmap_method="expand_dims")(*operands, **attrs)


def _sds(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(int(v) for v in shape), dtype)


def _i64(v) -> np.int64:
    return np.int64(int(v))


def _nn_dtypes():
    # The CPU kernels take float32 and float64, the CUDA ones float32, float16 and bfloat16.
    if jax.default_backend() == "cpu":
        return (np.dtype(np.float32), np.dtype(np.float64))
    return (np.dtype(np.float32), np.dtype(jnp.float16), np.dtype(jnp.bfloat16))


def _nn_float(x, name: str, ndim=None) -> np.dtype:
    dt = np.dtype(getattr(x, "dtype", np.float64))
    allowed = _nn_dtypes()
    if dt not in allowed:
        raise TypeError(f"{name}: dtype {dt} is not supported; expected one of {', '.join(str(d) for d in allowed)}")
    if ndim is not None and x.ndim not in ndim:
        raise ValueError(f"{name}: expected {' or '.join(str(n) for n in ndim)} dimensions, got shape {tuple(x.shape)}")
    return dt


def _like(v, name: str, dt: np.dtype, shape=None):
    """A parameter of x's dtype (TypeError otherwise) and, when given, this shape."""
    if v is None:
        return None
    if np.dtype(v.dtype) != dt:
        raise TypeError(f"{name}: dtype {np.dtype(v.dtype)} differs from x's {dt}")
    if shape is not None and tuple(v.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(v.shape)}")
    return v


def _device_attrs():
    # Read at trace time: a jitted function keeps the settings it was traced with.
    return dict(winograd=_i64(_runtime.winograd_mode), allow_tf32=_i64(bool(_runtime.allow_tf32)))


# ---- conv2d ------------------------------------------------------------------------------------


def _conv_attrs(cfg):
    st, pads, dil, groups, _ = cfg
    return dict(
        stride=np.asarray(st, np.int64),
        padding=np.asarray(pads, np.int64),
        dilation=np.asarray(dil, np.int64),
        groups=_i64(groups),
        **_device_attrs(),
    )


def _conv_out(x, w, cfg):
    st, pads, dil, _, _ = cfg
    n, _, h, wd = x.shape
    k, _, r, s = w.shape
    oh = (h + pads[0] + pads[1] - dil[0] * (r - 1) - 1) // st[0] + 1
    ow = (wd + pads[2] + pads[3] - dil[1] * (s - 1) - 1) // st[1] + 1
    return (n, k, oh, ow)


def _conv_call(x, w, b, cfg):
    ops = (x, w) if b is None else (x, w, b)
    return _ffi(
        "imkern_conv2d",
        _sds(_conv_out(x, w, cfg), x.dtype),
        *ops,
        has_bias=_i64(b is not None),
        relu=_i64(cfg[4]),
        **_conv_attrs(cfg),
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _conv(x, w, b, cfg):
    return _conv_call(x, w, b, cfg)


def _conv_fwd(x, w, b, cfg):
    y = _conv_call(x, w, b, cfg)
    return y, (x, w, b, y if cfg[4] else None)


def _conv_bwd(cfg, res, g):
    x, w, b, y = res
    if y is not None:  # the fused ReLU: relu(y) > 0 exactly where y > 0 (as imkern.nn's layer)
        g = _ffi(
            "imkern_activation_backward",
            _sds(g.shape, g.dtype),
            g,
            y,
            y,
            activation=_i64(_ACTIVATIONS["relu"]),
            slope=np.float64(0.0),
        )
    gi, gw, gb = _ffi(
        "imkern_conv2d_backward",
        (_sds(x.shape, x.dtype), _sds(w.shape, w.dtype), _sds((w.shape[0],), w.dtype)),
        g,
        x,
        w,
        **_conv_attrs(cfg),
    )
    return gi, gw, (None if b is None else gb)


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None):
    """:func:`imkern.nn.functional.conv2d` as an XLA custom call: ``(N, C, H, W)`` input,
    ``(K, C / groups, R, S)`` weight, ``(K,)`` bias or None; stride, padding (int, pair,
    ``"valid"``, ``"same"``), dilation, groups as torch; ``activation="relu"`` fuses the ReLU
    into the output write. Differentiable in x, weight and bias (imkern's conv2d backward
    kernels, after the ReLU's backward kernel when fused). The CPU's Winograd selection
    (:func:`imkern.set_allow_winograd`) and CUDA's TF32 setting are read when the call is traced.

    Example:
        >>> import numpy as np, jax.numpy as jnp, imkern.jax as ikj
        >>> y = ikj.conv2d(jnp.ones((1, 2, 4, 4)), jnp.ones((3, 2, 3, 3)), padding=1)
        >>> y.shape, float(y[0, 0, 1, 1]), float(y[0, 0, 0, 0])
        ((1, 3, 4, 4), 18.0, 8.0)
    """
    dt = _nn_float(x, "x", (4,))
    _like(weight, "weight", dt)
    st, pads, dil, groups, _ = _conv_geometry(x, weight, stride, padding, dilation, groups)
    _like(bias, "bias", dt, (weight.shape[0],))
    if activation not in (None, "relu"):
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    return _conv(x, weight, bias, (tuple(st), tuple(pads), tuple(dil), int(groups), activation == "relu"))


# ---- linear ------------------------------------------------------------------------------------


def _lin_call(x, w, b):
    ops = (x, w) if b is None else (x, w, b)
    return _ffi(
        "imkern_linear",
        _sds((x.shape[0], w.shape[0]), x.dtype),
        *ops,
        has_bias=_i64(b is not None),
        **_device_attrs(),
    )


@jax.custom_vjp
def _lin(x, w, b):
    return _lin_call(x, w, b)


def _lin_fwd(x, w, b):
    return _lin_call(x, w, b), (x, w, b)


def _lin_bwd(res, g):
    x, w, b = res
    gi, gw, gb = _ffi(
        "imkern_linear_backward",
        (_sds(x.shape, x.dtype), _sds(w.shape, w.dtype), _sds((w.shape[0],), w.dtype)),
        g,
        x,
        w,
        **_device_attrs(),
    )
    return gi, gw, (None if b is None else gb)


_lin.defvjp(_lin_fwd, _lin_bwd)


def linear(x, weight, bias=None):
    """:func:`imkern.nn.functional.linear` as an XLA custom call: ``x @ weight.T + bias`` for x
    ``(..., in_features)``; differentiable in x, weight and bias (imkern's linear backward)."""
    dt = _nn_float(x, "x")
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"x, weight: shapes {tuple(x.shape)} and {tuple(weight.shape)} do not match (..., IN), (OUT, IN)"
        )
    _like(weight, "weight", dt)
    _like(bias, "bias", dt, (weight.shape[0],))
    lead = tuple(x.shape[:-1])
    y = _lin(x.reshape((int(np.prod(lead, dtype=np.int64)), int(x.shape[-1]))), weight, bias)
    return y.reshape(lead + (int(weight.shape[0]),))


# ---- pooling -----------------------------------------------------------------------------------


def _pool_attrs(k, s, p, d=(1, 1)):
    return dict(
        kernel_size=np.asarray(k, np.int64),
        stride=np.asarray(s, np.int64),
        padding=np.asarray(p, np.int64),
        dilation=np.asarray(d, np.int64),
    )


def _maxpool_call(x, cfg):
    k, s, p, d, (oh, ow) = cfg
    shape = tuple(x.shape[:2]) + (oh, ow)
    return _ffi(
        "imkern_max_pool2d",
        (_sds(shape, x.dtype), _sds(shape + (2,), jnp.int32)),
        x,
        **_pool_attrs(k, s, p, d),
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _maxpool(x, cfg):
    return _maxpool_call(x, cfg)[0]


def _maxpool_fwd(x, cfg):
    y, idx = _maxpool_call(x, cfg)
    return y, (idx, jnp.zeros((0,), x.dtype), x.shape)


def _maxpool_bwd(cfg, res, g):
    idx, _, shape = res
    return (_ffi("imkern_max_pool2d_backward", _sds(shape, g.dtype), g, idx),)


_maxpool.defvjp(_maxpool_fwd, _maxpool_bwd)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """:func:`imkern.nn.functional.max_pool2d` as an XLA custom call (``(N, C, H, W)`` or
    ``(C, H, W)``); differentiable (the positions of the maxima, kept from the forward pass as
    int32 pairs holding imkern's int64 indices, drive imkern's max_pool2d backward kernel)."""
    if getattr(x, "ndim", None) == 3:
        return max_pool2d(x[None], kernel_size, stride, padding, dilation, ceil_mode)[0]
    _nn_float(x, "x", (3, 4))
    k, s, p, d, _, out = _pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return _maxpool(x, (tuple(k), tuple(s), tuple(p), tuple(d), tuple(out)))


def _avgpool_attrs(cfg):
    k, s, p, cip, dov, _ = cfg
    return dict(_pool_attrs(k, s, p), count_include_pad=_i64(cip), divisor_override=_i64(dov))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _avgpool(x, cfg):
    shape = tuple(x.shape[:2]) + cfg[5]
    return _ffi("imkern_avg_pool2d", _sds(shape, x.dtype), x, **_avgpool_attrs(cfg))


def _avgpool_fwd(x, cfg):
    return _avgpool(x, cfg), (jnp.zeros((0,), x.dtype), x.shape)


def _avgpool_bwd(cfg, res, g):
    _, shape = res
    return (_ffi("imkern_avg_pool2d_backward", _sds(shape, g.dtype), g, **_avgpool_attrs(cfg)),)


_avgpool.defvjp(_avgpool_fwd, _avgpool_bwd)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """:func:`imkern.nn.functional.avg_pool2d` as an XLA custom call; differentiable (imkern's
    avg_pool2d backward kernel)."""
    if getattr(x, "ndim", None) == 3:
        return avg_pool2d(x[None], kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)[0]
    _nn_float(x, "x", (3, 4))
    k, s, p, _, _, out = _pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    cip, dov = _avg_args(ceil_mode, count_include_pad, divisor_override)
    return _avgpool(x, (tuple(k), tuple(s), tuple(p), bool(cip), int(dov), tuple(out)))


# ---- activations and softmax -------------------------------------------------------------------

_ACTIVATIONS = {name: int(v) for name, v in _core.Activation.__members__.items()}


def _act_call(x, name, slope):
    return _ffi(
        "imkern_activation", _sds(x.shape, x.dtype), x, activation=_i64(_ACTIVATIONS[name]), slope=np.float64(slope)
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _act(x, name, slope):
    return _act_call(x, name, slope)


def _act_fwd(x, name, slope):
    y = _act_call(x, name, slope)
    return y, (x, y)


def _act_bwd(name, slope, res, g):
    x, y = res
    gx = _ffi(
        "imkern_activation_backward",
        _sds(x.shape, x.dtype),
        g,
        x,
        y,
        activation=_i64(_ACTIVATIONS[name]),
        slope=np.float64(slope),
    )
    return (gx,)


_act.defvjp(_act_fwd, _act_bwd)


def relu(x):
    """:func:`imkern.nn.functional.relu` as an XLA custom call (any shape; differentiable)."""
    _nn_float(x, "x")
    return _act(x, "relu", 0.0)


def leaky_relu(x, negative_slope=0.01):
    """:func:`imkern.nn.functional.leaky_relu` as an XLA custom call (differentiable)."""
    _nn_float(x, "x")
    return _act(x, "leaky_relu", float(negative_slope))


def sigmoid(x):
    """:func:`imkern.nn.functional.sigmoid` as an XLA custom call (differentiable)."""
    _nn_float(x, "x")
    return _act(x, "sigmoid", 0.0)


def tanh(x):
    """:func:`imkern.nn.functional.tanh` as an XLA custom call (differentiable)."""
    _nn_float(x, "x")
    return _act(x, "tanh", 0.0)


def gelu(x, approximate="none"):
    """:func:`imkern.nn.functional.gelu` (exact erf form) as an XLA custom call (differentiable)."""
    if approximate != "none":
        raise ValueError(f"approximate: only 'none' (the exact erf form) is supported, got {approximate!r}")
    _nn_float(x, "x")
    return _act(x, "gelu", 0.0)


def _smax_call(x, inner_rank, log):
    return _ffi("imkern_softmax", _sds(x.shape, x.dtype), x, inner_rank=_i64(inner_rank), log=_i64(log))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _smax(x, inner_rank, log):
    return _smax_call(x, inner_rank, log)


def _smax_fwd(x, inner_rank, log):
    y = _smax_call(x, inner_rank, log)
    return y, y


def _smax_bwd(inner_rank, log, y, g):
    # imkern has no softmax backward kernel: the two-line adjoint in jax.numpy.
    axis = -1 - inner_rank
    if log:
        return (g - jnp.exp(y) * jnp.sum(g, axis=axis, keepdims=True),)
    return (y * (g - jnp.sum(g * y, axis=axis, keepdims=True)),)


_smax.defvjp(_smax_fwd, _smax_bwd)


def softmax(x, axis=-1):
    """:func:`imkern.nn.functional.softmax` as an XLA custom call; differentiable (the backward
    pass is jax.numpy: ``y * (g - sum(g * y))``)."""
    _nn_float(x, "x")
    ax = _softmax_axis(axis, x.ndim)
    return _smax(x, x.ndim - 1 - ax, False)


def log_softmax(x, axis=-1):
    """:func:`imkern.nn.functional.log_softmax` as an XLA custom call; differentiable (backward
    in jax.numpy: ``g - exp(y) * sum(g)``)."""
    _nn_float(x, "x")
    ax = _softmax_axis(axis, x.ndim)
    return _smax(x, x.ndim - 1 - ax, True)


# ---- batch norm --------------------------------------------------------------------------------


def _bn_attrs(cfg):
    has_w, has_b, has_s, training, momentum, eps = cfg
    return dict(
        has_weight=_i64(has_w),
        has_bias=_i64(has_b),
        has_stats=_i64(has_s),
        training=_i64(training),
        momentum=np.float64(momentum),
        eps=np.float64(eps),
    )


def _bn_call(x, w, b, rm, rv, cfg):
    c = (_sds(rm.shape, rm.dtype), _sds(rv.shape, rv.dtype))
    return tuple(_ffi("imkern_batch_norm", (_sds(x.shape, x.dtype),) + c, x, w, b, rm, rv, **_bn_attrs(cfg)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _bn(x, w, b, rm, rv, cfg):
    return _bn_call(x, w, b, rm, rv, cfg)


def _bn_fwd(x, w, b, rm, rv, cfg):
    return _bn_call(x, w, b, rm, rv, cfg), (x, w, rm, rv)


def _bn_bwd(cfg, res, gs):
    x, w, rm, rv = res
    attrs = _bn_attrs(cfg)
    del attrs["has_bias"], attrs["momentum"]
    gx, gw, gb = _ffi(
        "imkern_batch_norm_backward",
        (_sds(x.shape, x.dtype), _sds(w.shape, w.dtype), _sds(w.shape, w.dtype)),
        gs[0],
        x,
        w,
        rm,
        rv,
        **attrs,
    )
    # The running statistics are state, not differentiated (as torch).
    return gx, gw, gb, jnp.zeros_like(rm), jnp.zeros_like(rv)


_bn.defvjp(_bn_fwd, _bn_bwd)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """:func:`imkern.nn.functional.batch_norm` as an XLA custom call, functional: returns
    ``(y, new_running_mean, new_running_var)`` (the updated statistics in training mode, the
    given ones in eval mode; ``None, None`` when none were given) instead of updating in place.

    x: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``. Differentiable in x, weight and bias
    (imkern's batch-norm backward kernel); the running statistics are not differentiated. The
    per-channel vectors are float32 (float64 for float64 x), as the kernels read them.

    Example:
        >>> import jax.numpy as jnp, imkern.jax as ikj
        >>> y, m, v = ikj.batch_norm(jnp.array([[1.0], [3.0]]), jnp.zeros(1), jnp.ones(1), training=True, eps=0.0)
        >>> y.ravel().tolist(), m.tolist(), v.tolist()
        ([-1.0, 1.0], [0.20000000298023224], [1.100000023841858])
    """
    dt = _nn_float(x, "x", (2, 3, 4))
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: give both or neither")
    has_s = running_mean is not None
    training = bool(training)
    if not training and not has_s:
        raise ValueError("running_mean, running_var: required when training=False")
    eps, momentum = float(eps), float(momentum)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps: expected a non-negative number, got {eps!r}")
    if not np.isfinite(momentum):
        raise ValueError(f"momentum: expected a finite number, got {momentum!r}")
    c = int(x.shape[1])
    x4 = x.reshape(tuple(x.shape) + (1,) * (4 - x.ndim))
    if training and x4.shape[0] * x4.shape[2] * x4.shape[3] == 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got shape {tuple(x.shape)}")
    pdt = jnp.float64 if dt == np.float64 else jnp.float32

    def vec(v, name):
        if v is None:
            return jnp.zeros((c,), pdt)
        if tuple(v.shape) != (c,):
            raise ValueError(f"{name}: expected shape ({c},) for {c} channels, got {tuple(v.shape)}")
        return jnp.asarray(v).astype(pdt)

    w, b = vec(weight, "weight"), vec(bias, "bias")
    rm, rv = vec(running_mean, "running_mean"), vec(running_var, "running_var")
    cfg = (weight is not None, bias is not None, has_s, training, momentum, eps)
    y, nm, nv = _bn(x4, w, b, rm, rv, cfg)
    y = y.reshape(x.shape)
    if not has_s:
        return y, None, None
    return y, nm.astype(running_mean.dtype), nv.astype(running_var.dtype)


# ---- image ops (forward only) ------------------------------------------------------------------


def _image_call(target, image, shape, dtype, **attrs):
    rank = _image_rank(image)
    return _ffi(target, _sds(shape, dtype), image, image_rank=_i64(rank), **attrs)


def median(image, size, *, border="replicate", cval=0.0):
    """:func:`imkern.filters.median` as an XLA custom call (forward only)."""
    _image_rank(image)
    k = int(size)
    if k < 1 or k % 2 == 0 or k > _MEDIAN_MAX:
        raise ValueError(f"size: expected an odd window size from 1 to {_MEDIAN_MAX}, got {size!r}")
    b = BORDER_CODES[parse_border(border)]
    return _image_call(
        "imkern_median", image, image.shape, image.dtype, size=_i64(k), border=_i64(b), cval=np.float64(cval)
    )


def _morph(image, fp, iterations, dilate, border, cval):
    _image_rank(image)
    f = _as_footprint(fp)
    n = int(iterations)
    if n < 0:
        raise ValueError(f"iterations: expected a non-negative int, got {iterations!r}")
    b, cval, ignore = _morph_border(border, cval)
    fh, fw = f.shape
    ay, ax = fh // 2, fw // 2
    if n > 1 and f.all():  # as imkern.filters (and OpenCV): one pass of the enlarged rectangle
        f = np.ones((fh + (n - 1) * (fh - 1), fw + (n - 1) * (fw - 1)), np.uint8)
        ay, ax, n = ay * n, ax * n, 1
    c = _morph_identity(image.dtype, dilate) if ignore else cval
    x = image
    for _ in range(n):
        x = _image_call(
            "imkern_morphology",
            x,
            x.shape,
            x.dtype,
            footprint=np.ascontiguousarray(f, np.uint8).ravel(),
            fh=_i64(f.shape[0]),
            fw=_i64(f.shape[1]),
            ay=_i64(ay),
            ax=_i64(ax),
            dilate=_i64(dilate),
            border=_i64(b),
            cval=np.float64(c),
        )
    return x


def erode(image, footprint=3, *, iterations=1, border=None, cval=0.0):
    """:func:`imkern.filters.erode` as an XLA custom call (forward only)."""
    return _morph(image, footprint, iterations, False, border, cval)


def dilate(image, footprint=3, *, iterations=1, border=None, cval=0.0):
    """:func:`imkern.filters.dilate` as an XLA custom call (forward only)."""
    return _morph(image, footprint, iterations, True, border, cval)


def sobel(image, dx=1, dy=0, *, ksize=3, scale=1.0, delta=0.0, border="reflect101", cval=0.0):
    """:func:`imkern.filters.sobel` as an XLA custom call (forward only): float32 result (float64
    for float64 images)."""
    _image_rank(image)
    dx, dy = _deriv_order(dx, "dx"), _deriv_order(dy, "dy")
    k = _deriv_ksize(ksize)
    if dx + dy == 0:
        raise ValueError("dx, dy: at least one derivative order must be positive")
    if k == -1 and dx + dy != 1:
        raise ValueError(f"dx, dy: Scharr (ksize=-1) takes dx + dy == 1, got dx={dx}, dy={dy}")
    if k == 1 and (dx > 2 or dy > 2):
        raise ValueError(f"dx, dy: ksize=1 takes orders up to 2, got dx={dx}, dy={dy}")
    if k > 1 and (dx >= k or dy >= k):
        raise ValueError(f"dx, dy: orders must be below ksize={k}, got dx={dx}, dy={dy}")
    odt = _deriv_out_dtype(np.dtype(image.dtype))
    kx, ky = sobel_kernels(dx, dy, k)
    if dx == 0:
        kx = _deriv_scaled(kx, float(scale), odt)
    else:
        ky = _deriv_scaled(ky, float(scale), odt)
    return _image_call(
        "imkern_deriv_filter",
        image,
        image.shape,
        odt,
        kernel_x=np.ascontiguousarray(kx, np.float64),
        kernel_y=np.ascontiguousarray(ky, np.float64),
        delta=np.float64(delta),
        border=_i64(BORDER_CODES[parse_border(border)]),
        cval=np.float64(cval),
    )


_COLOR_OPS = {name: int(v) for name, v in _core.ColorOp.__members__.items()}


# HSV and Lab take no uint16 (as imkern.color).
_NO_U16 = ("rgb_to_hsv", "hsv_to_rgb", "rgb_to_lab", "lab_to_rgb")


def _color(op, image, cin, cout, *, blend=False, bg=(0.0, 0.0, 0.0), allow_2d=False, squeeze=False):
    dt = np.dtype(getattr(image, "dtype", np.float64))
    if dt not in _DTYPES or (op in _NO_U16 and dt == np.uint16):
        allowed = [str(d) for d in _DTYPES if not (op in _NO_U16 and d == np.uint16)]
        raise TypeError(f"image: dtype {dt} is not supported by {op}; expected one of {', '.join(allowed)}")
    ok_nd = (2, 3, 4) if allow_2d else (3, 4)
    if image.ndim not in ok_nd or (image.ndim >= 3 and image.shape[-1] not in cin):
        want = " or ".join(str(c) for c in cin)
        raise ValueError(
            f"image: {op} expects (H, W, C) or (N, H, W, C) with C = {want}, got shape {tuple(image.shape)}"
        )
    x = image[..., None] if image.ndim == 2 else image
    y = _ffi(
        "imkern_color_convert",
        _sds(tuple(x.shape[:-1]) + (cout,), x.dtype),
        x,
        image_rank=_i64(3),
        op=_i64(_COLOR_OPS[op]),
        blend=_i64(blend),
        bg=np.asarray(bg, np.float64),
    )
    return y[..., 0] if squeeze and image.ndim == 3 else y


def rgb_to_gray(image):
    """:func:`imkern.color.rgb_to_gray` as an XLA custom call (forward only)."""
    return _color("rgb_to_gray", image, (3, 4), 1, squeeze=True)


def bgr_to_gray(image):
    """:func:`imkern.color.bgr_to_gray` as an XLA custom call (forward only)."""
    return _color("bgr_to_gray", image, (3, 4), 1, squeeze=True)


def gray_to_rgb(image):
    """:func:`imkern.color.gray_to_rgb` as an XLA custom call (forward only)."""
    return _color("gray_to_rgb", image, (1,), 3, allow_2d=True)


def rgb_to_bgr(image):
    """:func:`imkern.color.rgb_to_bgr` as an XLA custom call (forward only)."""
    return _color("swap_rb", image, (3, 4), int(image.shape[-1]))


bgr_to_rgb = rgb_to_bgr


def rgba_to_rgb(image, *, background=None):
    """:func:`imkern.color.rgba_to_rgb` as an XLA custom call (forward only)."""
    if background is None:
        return _color("rgba_to_rgb", image, (4,), 3)
    bg = np.asarray(background, np.float64).ravel()
    if bg.size == 1:
        bg = np.repeat(bg, 3)
    if bg.size != 3 or not np.isfinite(bg).all():
        raise ValueError(f"background: expected 1 or 3 finite numbers, got {bg.tolist()}")
    dt = np.dtype(image.dtype)
    if dt.kind == "u":
        hi = np.iinfo(dt).max
        if (bg < 0).any() or (bg > hi).any():
            raise ValueError(f"background: expected values in [0, {hi}] for {dt} images, got {bg.tolist()}")
        bg = np.rint(bg)
    return _color("rgba_to_rgb", image, (4,), 3, blend=True, bg=bg)


def _color3(op):
    def f(image):
        return _color(op, image, (3,), 3)

    f.__name__ = op
    f.__doc__ = f":func:`imkern.color.{op}` as an XLA custom call (forward only)."
    return f


rgb_to_hsv = _color3("rgb_to_hsv")
hsv_to_rgb = _color3("hsv_to_rgb")
rgb_to_ycbcr = _color3("rgb_to_ycbcr")
ycbcr_to_rgb = _color3("ycbcr_to_rgb")
rgb_to_lab = _color3("rgb_to_lab")
lab_to_rgb = _color3("lab_to_rgb")


def _table_attrs(axis, tab):
    start, w, bits, _ = tab
    return {
        f"{axis}_start": np.ascontiguousarray(start, np.int64),
        f"{axis}_taps": _i64(w.shape[1]),
        f"{axis}_weights": np.ascontiguousarray(w).ravel(),
        f"{axis}_bits": _i64(bits),
    }


def _resize_pass(image, oshape, ytab, xtab, tkind):
    shift = _rz._vshift(ytab[3], xtab[3]) if tkind == "u8" else 0
    return _image_call(
        "imkern_resize",
        image,
        oshape,
        image.dtype,
        nearest=_i64(0),
        shift=_i64(shift),
        **_table_attrs("y", ytab),
        **_table_attrs("x", xtab),
    )


def _resize_impl(image, key):
    sh, sw, h, w, mode, antialias = key
    oshape = _rz._out_shape(image, h, w)
    if mode in ("nearest", "nearest-exact"):
        exact = mode == "nearest-exact"
        return _image_call(
            "imkern_resize",
            image,
            oshape,
            image.dtype,
            nearest=_i64(1),
            y_index=np.ascontiguousarray(_rz._nearest_table(sh, h, exact), np.int64),
            x_index=np.ascontiguousarray(_rz._nearest_table(sw, w, exact), np.int64),
        )
    tkind = _rz._kind_of(image.dtype)
    ytab, xtab = _rz.resize_tables(sh, sw, h, w, mode, antialias, tkind)
    if tkind == "u8" and antialias and mode == "bicubic" and (sh != h or sw != w):
        # two rounded uint8 passes, rows first, as imkern.transform (and Pillow, torch)
        tmp = _resize_pass(image, _rz._out_shape(image, sh, w), _rz._identity_table(sh, tkind), xtab, tkind)
        return _resize_pass(tmp, oshape, ytab, _rz._identity_table(w, tkind), tkind)
    return _resize_pass(image, oshape, ytab, xtab, tkind)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _resize_diff(image, key):
    return _resize_impl(image, key)


def _resize_diff_fwd(image, key):
    return _resize_impl(image, key), None


def _resize_diff_bwd(key, _, g):
    # The adjoint is a resize too: imkern's resize kernel with the transposed tables.
    sh, sw, h, w, mode, antialias = key
    tkind = _rz._kind_of(g.dtype)
    area_shrink = mode == "area" and sh >= h and sw >= w
    aty = _rz.adjoint_table(sh, h, mode, antialias, area_shrink, tkind)
    atx = _rz.adjoint_table(sw, w, mode, antialias, area_shrink, tkind)
    return (_resize_pass(g, _rz._out_shape(g, sh, sw), aty, atx, tkind),)


_resize_diff.defvjp(_resize_diff_fwd, _resize_diff_bwd)


def resize(image, size, *, interpolation="bilinear", antialias=False):
    """:func:`imkern.transform.resize` as an XLA custom call (uint8, uint16, float32, float64;
    every interpolation and antialias mode, the same tables, bit for bit).

    Differentiable for float images: the adjoint of a separable resize is a separable resize
    with the transposed (banded) tables, so the backward pass is imkern's resize kernel again
    (exact adjoint up to float rounding; tables cached per size).
    """
    _image_rank(image)
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueError(f"size: expected a pair of ints (h, w), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"size: expected positive (h, w), got {(h, w)}")
    mode = _rz.parse_interpolation(interpolation)
    antialias = bool(antialias)
    if antialias and mode not in ("bilinear", "bicubic", "area"):
        raise ValueError(f"antialias: only 'bilinear', 'bicubic' and 'area' are antialiased, got {mode!r}")
    o = 1 if image.ndim == 4 else 0
    sh, sw = int(image.shape[o]), int(image.shape[o + 1])
    if sh == 0 or sw == 0:
        raise ValueError(f"image: cannot resize an image of size {sh} x {sw}")
    key = (sh, sw, h, w, mode, antialias)
    if np.dtype(image.dtype).kind == "f":
        return _resize_diff(image, key)
    return _resize_impl(image, key)
