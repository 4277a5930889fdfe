"""NumPy reference for conv2d and linear, forward and backward (PyTorch semantics).

Plain float64 NumPy: a convolution is a loop over the kernel taps, each tap adding a strided
window of the zero-padded input times that tap's (K, C/groups) weights. Results are cast to
the input's dtype at the end, like the kernels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv2d", "conv2d_backward", "linear", "linear_backward"]


def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _geometry(x_shape, w_shape, stride, padding, dilation):
    """(sh, sw), (top, bottom, left, right), (dh, dw), (OH, OW) as torch computes them."""
    _, _, h, w = x_shape
    _, _, r, s = w_shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        else:  # "same": total dilation * (k - 1), the extra pixel on the bottom / right
            th, tw = dh * (r - 1), dw * (s - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = _pair(padding)
        pads = (ph, ph, pw, pw)
    oh = (h + pads[0] + pads[1] - dh * (r - 1) - 1) // sh + 1
    ow = (w + pads[2] + pads[3] - dw * (s - 1) - 1) // sw + 1
    return (sh, sw), pads, (dh, dw), (oh, ow)


def _window(xp, r, s, stride, dilation, out_hw):
    """The (N, C, OH, OW) view of padded input xp that kernel tap (r, s) multiplies."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    return xp[:, :, r * dh : r * dh + (oh - 1) * sh + 1 : sh, s * dw : s * dw + (ow - 1) * sw + 1 : sw]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None, out=None):
    """Reference for :func:`imkern.nn.functional.conv2d`."""
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    w64 = np.asarray(weight, dtype=np.float64)
    n, c, _, _ = x64.shape
    k, cg, r, s = w64.shape
    kg = k // groups
    st, (pt, pb, pl, pr), dil, (oh, ow) = _geometry(x64.shape, w64.shape, stride, padding, dilation)
    xp = np.pad(x64, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    acc = np.zeros((n, k, oh, ow))
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        wg = w64[g * kg : (g + 1) * kg]
        for i in range(r):
            for j in range(s):
                win = _window(xs, i, j, st, dil, (oh, ow))
                acc[:, g * kg : (g + 1) * kg] += np.einsum("nchw,kc->nkhw", win, wg[:, :, i, j])
    if bias is not None:
        acc += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    if activation == "relu":
        acc = np.where(acc < 0, 0.0, acc)
    res = acc.astype(x.dtype)
    if out is not None:
        out[...] = res
        return out
    return res


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Reference for :func:`imkern.nn.functional.conv2d_backward`: (grad_input, grad_weight, grad_bias)."""
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    w64 = np.asarray(weight, dtype=np.float64)
    go = np.asarray(grad_output, dtype=np.float64)
    n, c, h, w = x64.shape
    k, cg, r, s = w64.shape
    kg = k // groups
    st, (pt, pb, pl, pr), dil, (oh, ow) = _geometry(x64.shape, w64.shape, stride, padding, dilation)
    xp = np.pad(x64, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w64)
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        gxs = gxp[:, g * cg : (g + 1) * cg]
        gog = go[:, g * kg : (g + 1) * kg]
        wg = w64[g * kg : (g + 1) * kg]
        for i in range(r):
            for j in range(s):
                win = _window(xs, i, j, st, dil, (oh, ow))
                gw[g * kg : (g + 1) * kg, :, i, j] = np.einsum("nkhw,nchw->kc", gog, win)
                _window(gxs, i, j, st, dil, (oh, ow))[...] += np.einsum("nkhw,kc->nchw", gog, wg[:, :, i, j])
    gi = gxp[:, :, pt : pt + h, pl : pl + w]
    gb = go.sum(axis=(0, 2, 3))
    dt = x.dtype
    return gi.astype(dt), gw.astype(dt), gb.astype(dt)


def linear(x, weight, bias=None):
    """Reference for :func:`imkern.nn.functional.linear`: ``x @ weight.T + bias``."""
    x = np.asarray(x)
    y = x.astype(np.float64) @ np.asarray(weight, dtype=np.float64).T
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)
    return y.astype(x.dtype)


def linear_backward(grad_output, x, weight):
    """Reference for :func:`imkern.nn.functional.linear_backward`: (grad_input, grad_weight, grad_bias)."""
    x = np.asarray(x)
    w64 = np.asarray(weight, dtype=np.float64)
    x2 = x.astype(np.float64).reshape(-1, w64.shape[1])
    go2 = np.asarray(grad_output, dtype=np.float64).reshape(-1, w64.shape[0])
    gi = (go2 @ w64).reshape(x.shape)
    return gi.astype(x.dtype), (go2.T @ x2).astype(x.dtype), go2.sum(axis=0).astype(x.dtype)
