"""NumPy reference for the non-GEMM nn ops (pooling, activations, softmax, cross entropy, batch
norm, dropout): plain loops and vectorized NumPy, float64 inside, the result cast to the
input's dtype. Same names and signatures as :mod:`imkern.nn.functional`; they define the
semantics (PyTorch's) that the kernels must reproduce."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "relu_backward",
    "leaky_relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "gelu_backward",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "cross_entropy_backward",
    "batch_norm2d",
    "batch_norm2d_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
]


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _finish(res, like_dtype, out):
    res = np.asarray(res).astype(like_dtype)
    if out is not None:
        out[...] = res
        return out
    return res


def _out_size(n, k, s, p, d, ceil_mode):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _geometry(shape, kernel_size, stride, padding, dilation, ceil_mode):
    k = _pair(kernel_size)
    s = k if stride is None else _pair(stride)
    p, d = _pair(padding), _pair(dilation)
    oh = _out_size(shape[2], k[0], s[0], p[0], d[0], ceil_mode)
    ow = _out_size(shape[3], k[1], s[1], p[1], d[1], ceil_mode)
    return k, s, p, d, oh, ow


# ---- pooling -----------------------------------------------------------------------------------
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *, out=None):
    """Scan each window row-major; a value replaces the running max when larger or NaN."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    k, s, p, d, oh, ow = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, oh, ow))
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    xf = x.astype(np.float64)
    for oy in range(oh):
        rows = [oy * s[0] - p[0] + i * d[0] for i in range(k[0])]
        rows = [r for r in rows if 0 <= r < h]
        for ox in range(ow):
            cols = [ox * s[1] - p[1] + j * d[1] for j in range(k[1])]
            cols = [q for q in cols if 0 <= q < w]
            best = np.full((n, c), -np.inf)
            bidx = np.full((n, c), rows[0] * w + cols[0], dtype=np.int64)
            for r in rows:
                for q in cols:
                    v = xf[:, :, r, q]
                    upd = (v > best) | np.isnan(v)
                    best = np.where(upd, v, best)
                    bidx = np.where(upd, r * w + q, bidx)
            y[:, :, oy, ox] = best
            idx[:, :, oy, ox] = bidx
    res = _finish(y, x.dtype, out)
    return (res, idx) if return_indices else res


def max_pool2d_backward(grad_output, indices, input_shape, *, out=None):
    """Add each output gradient at the input position its index names."""
    g = np.asarray(grad_output, dtype=np.float64)
    n, c, h, w = input_shape
    gi = np.zeros((n, c, h * w))
    ind = np.asarray(indices).reshape(n, c, -1)
    gg = g.reshape(n, c, -1)
    for a in range(n):
        for b in range(c):
            np.add.at(gi[a, b], ind[a, b], gg[a, b])
    return _finish(gi.reshape(n, c, h, w), np.asarray(grad_output).dtype, out)


def _avg_windows(shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Yield (oy, ox, y0, y1, x0, x1, divisor) as torch's avg_pool2d defines the windows."""
    k, s, p, _, oh, ow = _geometry(shape, kernel_size, stride, padding, 1, ceil_mode)
    h, w = shape[2], shape[3]
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * s[0] - p[0], ox * s[1] - p[1]
            y1, x1 = min(y0 + k[0], h + p[0]), min(x0 + k[1], w + p[1])
            pool = (y1 - y0) * (x1 - x0)
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = pool
            else:
                div = (y1 - y0) * (x1 - x0)
            yield oy, ox, y0, y1, x0, x1, div
    return


def avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None, *, out=None
):
    x = np.asarray(x)
    n, c = x.shape[:2]
    k, s, p, _, oh, ow = _geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    xf = x.astype(np.float64)
    y = np.zeros((n, c, oh, ow))
    for oy, ox, y0, y1, x0, x1, div in _avg_windows(
        x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ):
        if y0 < y1 and x0 < x1:
            y[:, :, oy, ox] = xf[:, :, y0:y1, x0:x1].sum(axis=(2, 3)) / div
    return _finish(y, x.dtype, out)


def avg_pool2d_backward(
    grad_output,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
    *,
    out=None,
):
    g = np.asarray(grad_output, dtype=np.float64)
    gi = np.zeros(tuple(input_shape))
    for oy, ox, y0, y1, x0, x1, div in _avg_windows(
        tuple(input_shape), kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ):
        if y0 < y1 and x0 < x1:
            gi[:, :, y0:y1, x0:x1] += (g[:, :, oy, ox] / div)[:, :, None, None]
    return _finish(gi, np.asarray(grad_output).dtype, out)


def _adaptive_bounds(i, out, size):
    return (i * size) // out, -((-(i + 1) * size) // out)


def adaptive_avg_pool2d(x, output_size, *, out=None):
    x = np.asarray(x)
    n, c, h, w = x.shape
    oh, ow = (
        _pair(output_size)
        if not isinstance(output_size, (tuple, list))
        else (
            h if output_size[0] is None else int(output_size[0]),
            w if output_size[1] is None else int(output_size[1]),
        )
    )
    xf = x.astype(np.float64)
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        y0, y1 = _adaptive_bounds(i, oh, h)
        for j in range(ow):
            x0, x1 = _adaptive_bounds(j, ow, w)
            y[:, :, i, j] = xf[:, :, y0:y1, x0:x1].mean(axis=(2, 3))
    return _finish(y, x.dtype, out)


def adaptive_avg_pool2d_backward(grad_output, input_shape, *, out=None):
    g = np.asarray(grad_output, dtype=np.float64)
    n, c, h, w = input_shape
    oh, ow = g.shape[2:]
    gi = np.zeros((n, c, h, w))
    for i in range(oh):
        y0, y1 = _adaptive_bounds(i, oh, h)
        for j in range(ow):
            x0, x1 = _adaptive_bounds(j, ow, w)
            gi[:, :, y0:y1, x0:x1] += (g[:, :, i, j] / ((y1 - y0) * (x1 - x0)))[:, :, None, None]
    return _finish(gi, np.asarray(grad_output).dtype, out)


# ---- activations -------------------------------------------------------------------------------
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def relu(x, *, out=None):
    x = np.asarray(x)
    xf = x.astype(np.float64)
    return _finish(np.where(xf < 0, 0.0, xf), x.dtype, out)


def leaky_relu(x, negative_slope=0.01, *, out=None):
    x = np.asarray(x)
    xf = x.astype(np.float64)
    return _finish(np.where(xf > 0, xf, xf * negative_slope), x.dtype, out)


def _sigmoid64(xf):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(xf))
    return np.where(xf >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid(x, *, out=None):
    x = np.asarray(x)
    return _finish(_sigmoid64(x.astype(np.float64)), x.dtype, out)


def tanh(x, *, out=None):
    x = np.asarray(x)
    return _finish(np.tanh(x.astype(np.float64)), x.dtype, out)


def gelu(x, approximate="none", *, out=None):
    """0.5 * x * erfc(-x / sqrt(2)) = x * Phi(x)."""
    x = np.asarray(x)
    xf = x.astype(np.float64)
    return _finish(0.5 * xf * _erfc(-xf / math.sqrt(2.0)), x.dtype, out)


def relu_backward(grad_output, x, y=None, *, out=None):
    g = np.asarray(grad_output)
    src = x if x is not None else y
    xf = np.asarray(src, dtype=np.float64)
    return _finish(np.where(xf <= 0, 0.0, g.astype(np.float64)), g.dtype, out)


def leaky_relu_backward(grad_output, x, y=None, negative_slope=0.01, *, out=None):
    g = np.asarray(grad_output)
    gf, xf = g.astype(np.float64), np.asarray(x, dtype=np.float64)
    return _finish(np.where(xf > 0, gf, gf * negative_slope), g.dtype, out)


def sigmoid_backward(grad_output, x=None, y=None, *, out=None):
    g = np.asarray(grad_output)
    s = _sigmoid64(np.asarray(x, dtype=np.float64)) if y is None else np.asarray(y, dtype=np.float64)
    return _finish(g.astype(np.float64) * s * (1.0 - s), g.dtype, out)


def tanh_backward(grad_output, x=None, y=None, *, out=None):
    g = np.asarray(grad_output)
    t = np.tanh(np.asarray(x, dtype=np.float64)) if y is None else np.asarray(y, dtype=np.float64)
    return _finish(g.astype(np.float64) * (1.0 - t * t), g.dtype, out)


def gelu_backward(grad_output, x, y=None, *, out=None):
    g = np.asarray(grad_output)
    xf = np.asarray(x, dtype=np.float64)
    cdf = 0.5 * _erfc(-xf / math.sqrt(2.0))
    pdf = np.exp(-0.5 * xf * xf) / math.sqrt(2.0 * math.pi)
    return _finish(g.astype(np.float64) * (cdf + xf * pdf), g.dtype, out)


# ---- softmax and cross entropy -----------------------------------------------------------------
def _log_softmax64(xf, axis):
    m = np.max(xf, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        z = xf - m
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax(x, axis=-1, *, out=None):
    x = np.asarray(x)
    return _finish(np.exp(_log_softmax64(x.astype(np.float64), axis)), x.dtype, out)


def log_softmax(x, axis=-1, *, out=None):
    x = np.asarray(x)
    return _finish(_log_softmax64(x.astype(np.float64), axis), x.dtype, out)


def _ce_parts(logits, target, label_smoothing, ignore_index):
    """Per-element losses (float64, 0 where ignored) and the non-ignored mask."""
    xf = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target).astype(np.int64)
    c = xf.shape[1]
    logp = _log_softmax64(xf, 1)
    keep = t != ignore_index
    tt = np.where(keep, t, 0)
    nll = -np.take_along_axis(logp, tt[:, None], axis=1)[:, 0]
    smooth = -logp.sum(axis=1)
    loss = (1.0 - label_smoothing) * nll + label_smoothing / c * smooth
    return np.where(keep, loss, 0.0), keep, logp, tt


def cross_entropy(logits, target, *, reduction="mean", label_smoothing=0.0, ignore_index=-100, out=None):
    """torch.nn.functional.cross_entropy with class-index targets (mean over non-ignored)."""
    dt = np.asarray(logits).dtype
    loss, keep, _, _ = _ce_parts(logits, target, label_smoothing, ignore_index)
    if reduction == "none":
        res = loss
    elif reduction == "sum":
        res = loss.sum()
    else:
        cnt = keep.sum()
        res = loss.sum() / cnt if cnt else np.nan
    return _finish(np.asarray(res), dt, out)


def cross_entropy_backward(logits, target, *, reduction="mean", label_smoothing=0.0, ignore_index=-100, out=None):
    dt = np.asarray(logits).dtype
    _, keep, logp, tt = _ce_parts(logits, target, label_smoothing, ignore_index)
    c = logp.shape[1]
    onehot = np.zeros_like(logp)
    np.put_along_axis(onehot, tt[:, None], 1.0, axis=1)
    g = np.exp(logp) - (1.0 - label_smoothing) * onehot - label_smoothing / c
    g = g * np.expand_dims(keep, 1)
    if reduction == "mean":
        cnt = keep.sum()
        g = g / cnt if cnt else np.zeros_like(g)
    return _finish(g, dt, out)


# ---- batch norm --------------------------------------------------------------------------------
def batch_norm2d(x, weight, bias, running_mean, running_var, *, training=False, momentum=0.1, eps=1e-5, out=None):
    """Normalize per channel; in training update running stats in place (unbiased variance)."""
    x = np.asarray(x)
    xf = x.astype(np.float64)
    c = x.shape[1]
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    b = np.zeros(c) if bias is None else np.asarray(bias, dtype=np.float64)
    if training:
        mean = xf.mean(axis=(0, 2, 3))
        var = xf.var(axis=(0, 2, 3))
        m = xf.size // c
        if running_mean is not None:
            running_mean[...] = momentum * mean + (1 - momentum) * np.asarray(running_mean, dtype=np.float64)
        if running_var is not None:
            running_var[...] = momentum * var * m / (m - 1) + (1 - momentum) * np.asarray(running_var, dtype=np.float64)
    else:
        mean = np.asarray(running_mean, dtype=np.float64)
        var = np.asarray(running_var, dtype=np.float64)
    sh = (1, c, 1, 1)
    y = (xf - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) * w.reshape(sh) + b.reshape(sh)
    return _finish(y, x.dtype, out)


def batch_norm2d_backward(grad_output, x, weight, running_mean, running_var, *, training, eps=1e-5):
    x = np.asarray(x)
    xf, g = x.astype(np.float64), np.asarray(grad_output, dtype=np.float64)
    c = x.shape[1]
    sh = (1, c, 1, 1)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    if training:
        mean, var = xf.mean(axis=(0, 2, 3)), xf.var(axis=(0, 2, 3))
    else:
        mean, var = np.asarray(running_mean, dtype=np.float64), np.asarray(running_var, dtype=np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (xf - mean.reshape(sh)) * invstd.reshape(sh)
    gb = g.sum(axis=(0, 2, 3))
    gw = (g * xhat).sum(axis=(0, 2, 3))
    if training:
        m = xf.size // c
        gi = (w * invstd).reshape(sh) * (g - gb.reshape(sh) / m - xhat * gw.reshape(sh) / m)
    else:
        gi = (w * invstd).reshape(sh) * g
    return gi.astype(x.dtype), gw.astype(x.dtype), gb.astype(x.dtype)


# ---- dropout -----------------------------------------------------------------------------------
_M64 = (1 << 64) - 1


def dropout_mask(n, p, seed):
    """Keep-mask of n flat elements: u(i) = (splitmix64(seed + i * golden) >> 40) * 2**-24 >= p."""
    with np.errstate(over="ignore"):
        z = np.uint64(int(seed) & _M64) + np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z ^ (z >> np.uint64(30))
        z = z * np.uint64(0xBF58476D1CE4E5B9)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) * 2.0**-24
    return u >= p


def dropout(x, p, *, seed, training=True, out=None):
    x = np.asarray(x)
    if not training:
        return _finish(x.copy(), x.dtype, out)
    xf = x.astype(np.float64).ravel()
    if p >= 1:
        return _finish((xf * 0.0).reshape(x.shape), x.dtype, out)
    keep = dropout_mask(xf.size, p, seed)
    scale = x.dtype.type(1.0 / (1.0 - p))  # the kernels scale in the input dtype
    y = x.ravel() * np.where(keep, scale, x.dtype.type(0))
    return _finish(y.reshape(x.shape), x.dtype, out)


def dropout_backward(grad_output, p, *, seed, out=None):
    return dropout(grad_output, p, seed=seed, training=True, out=out)
