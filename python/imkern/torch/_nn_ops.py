"""imkern.nn.functional's activations, softmax, cross_entropy, batch_norm and dropout as
PyTorch operators (``torch.ops.imkern.*``), with torch.nn.functional's semantics.

Gradients (``register_autograd``):

* relu, leaky_relu, gelu: imkern's ``*_backward`` kernels on the saved input; sigmoid, tanh:
  on the saved output.
* softmax, log_softmax: the exact formulas on the saved output, ``y * (g - sum(g * y))`` and
  ``g - exp(y) * sum(g)`` (torch ops: imkern has no softmax backward kernel).
* cross_entropy: imkern's ``cross_entropy_backward`` (softmax minus the smoothed one-hot),
  times the incoming gradient (per element for ``reduction="none"``).
* batch_norm: imkern's ``batch_norm2d_backward`` (batch statistics recomputed from the saved
  input in training mode; the running ones in eval mode). The operator is functional: it
  returns the updated running statistics instead of writing them, and :func:`batch_norm`
  copies them into the buffers (so torch.compile sees no mutation inside the op).
* dropout: imkern's counter-based mask regenerated from the seed (``dropout_backward``). The
  seed is a tensor drawn from torch's generator (``torch.manual_seed`` reproduces the masks,
  and a compiled graph draws a new one each call).
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..nn import functional as _F

__all__ = [
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "batch_norm",
    "dropout",
]


def _like(x: Tensor) -> Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


# ---- activations ----------------------------------------------------------------------------
def _activation(name: str, forward, backward, *, saves: str, slope: bool = False):
    """Register ``imkern::<name>`` and ``imkern::<name>_backward`` with autograd: ``forward(x,
    *args)``, ``backward(grad, saved, *args)`` where ``saved`` is the op's input or output
    (``saves``) and ``args`` is ``(negative_slope,)`` when ``slope`` else empty."""

    def fwd_slope(x: Tensor, negative_slope: float) -> Tensor:
        return forward(x, negative_slope)

    def bwd_slope(grad: Tensor, saved: Tensor, negative_slope: float) -> Tensor:
        return backward(grad, saved, negative_slope)

    def fwd_plain(x: Tensor) -> Tensor:
        return forward(x)

    def bwd_plain(grad: Tensor, saved: Tensor) -> Tensor:
        return backward(grad, saved)

    fwd, bwd = (fwd_slope, bwd_slope) if slope else (fwd_plain, bwd_plain)
    op = torch.library.custom_op(f"imkern::{name}", fwd, mutates_args=())
    op.register_fake(lambda x, *args: _like(x))
    backward_op = torch.library.custom_op(f"imkern::{name}_backward", bwd, mutates_args=())
    backward_op.register_fake(lambda grad, saved, *args: _like(grad))
    overload = getattr(torch.ops.imkern, f"{name}_backward")

    def setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0] if saves == "input" else output)
        ctx.args = inputs[1:]

    def grad_fn(ctx, grad):
        (saved,) = ctx.saved_tensors
        return (overload(grad.contiguous(), saved, *ctx.args), *(None,) * len(ctx.args))

    op.register_autograd(grad_fn, setup_context=setup)


_activation("relu", _F.relu, _F.relu_backward, saves="input")
_activation(
    "leaky_relu",
    _F.leaky_relu,
    lambda g, x, s: _F.leaky_relu_backward(g, x, None, s),
    saves="input",
    slope=True,
)
_activation("sigmoid", _F.sigmoid, lambda g, y: _F.sigmoid_backward(g, None, y), saves="output")
_activation("tanh", _F.tanh, lambda g, y: _F.tanh_backward(g, None, y), saves="output")
_activation("gelu", _F.gelu, _F.gelu_backward, saves="input")


def relu(x: Tensor) -> Tensor:
    """``torch.nn.functional.relu`` on imkern's kernel (``torch.ops.imkern.relu``), differentiable."""
    return torch.ops.imkern.relu(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``torch.nn.functional.leaky_relu`` on imkern's kernel, differentiable."""
    return torch.ops.imkern.leaky_relu(x, float(negative_slope))


def sigmoid(x: Tensor) -> Tensor:
    """``torch.sigmoid`` on imkern's kernel, differentiable (the backward reads the output)."""
    return torch.ops.imkern.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """``torch.tanh`` on imkern's kernel, differentiable (the backward reads the output)."""
    return torch.ops.imkern.tanh(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """``torch.nn.functional.gelu`` (the exact erf form) on imkern's kernel, differentiable.
    ``approximate="tanh"`` is not supported (ValueError), as in :func:`imkern.nn.functional.gelu`."""
    if approximate != "none":
        raise ValueError(f"approximate: only 'none' (the exact erf form) is supported, got {approximate!r}")
    return torch.ops.imkern.gelu(x)


# ---- softmax / log_softmax ------------------------------------------------------------------
@torch.library.custom_op("imkern::softmax", mutates_args=())
def _softmax_op(x: Tensor, dim: int) -> Tensor:
    return _F.softmax(x, dim)


@_softmax_op.register_fake
def _(x, dim):
    return _like(x)


def _softmax_setup(ctx, inputs, output):
    ctx.save_for_backward(output)
    ctx.dim = inputs[1]


def _softmax_backward(ctx, grad):
    (y,) = ctx.saved_tensors
    return y * (grad - (grad * y).sum(ctx.dim, keepdim=True)), None


_softmax_op.register_autograd(_softmax_backward, setup_context=_softmax_setup)


@torch.library.custom_op("imkern::log_softmax", mutates_args=())
def _log_softmax_op(x: Tensor, dim: int) -> Tensor:
    return _F.log_softmax(x, dim)


@_log_softmax_op.register_fake
def _(x, dim):
    return _like(x)


def _log_softmax_backward(ctx, grad):
    (y,) = ctx.saved_tensors
    return grad - torch.exp(y) * grad.sum(ctx.dim, keepdim=True), None


_log_softmax_op.register_autograd(_log_softmax_backward, setup_context=_softmax_setup)


def softmax(x: Tensor, dim: int) -> Tensor:
    """``torch.softmax(x, dim)`` on imkern's kernel (``torch.ops.imkern.softmax``), differentiable."""
    return torch.ops.imkern.softmax(x, int(dim))


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``torch.log_softmax(x, dim)`` on imkern's kernel, differentiable."""
    return torch.ops.imkern.log_softmax(x, int(dim))


# ---- cross_entropy --------------------------------------------------------------------------
@torch.library.custom_op("imkern::cross_entropy", mutates_args=())
def _cross_entropy_op(
    logits: Tensor, target: Tensor, reduction: str, label_smoothing: float, ignore_index: int
) -> Tensor:
    return _F.cross_entropy(
        logits, target, reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index
    )


@_cross_entropy_op.register_fake
def _(logits, target, reduction, label_smoothing, ignore_index):
    if reduction == "none":
        return logits.new_empty(target.shape)
    return logits.new_empty(())


@torch.library.custom_op("imkern::cross_entropy_backward", mutates_args=())
def _cross_entropy_backward_op(
    grad: Tensor, logits: Tensor, target: Tensor, reduction: str, label_smoothing: float, ignore_index: int
) -> Tensor:
    g = _F.cross_entropy_backward(
        logits, target, reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index
    )
    # the class axis is 1 (0 for one unbatched sample); the incoming gradient has the others
    scale = grad if (reduction != "none" or logits.ndim == 1) else grad.unsqueeze(1)
    return (g * scale.to(g.dtype)).contiguous()


@_cross_entropy_backward_op.register_fake
def _(grad, logits, target, reduction, label_smoothing, ignore_index):
    return _like(logits)


def _cross_entropy_setup(ctx, inputs, output):
    logits, target, *args = inputs
    ctx.save_for_backward(logits, target)
    ctx.args = args


def _cross_entropy_backward(ctx, grad):
    logits, target = ctx.saved_tensors
    gi = torch.ops.imkern.cross_entropy_backward(grad.contiguous(), logits, target, *ctx.args)
    return gi, None, None, None, None


_cross_entropy_op.register_autograd(_cross_entropy_backward, setup_context=_cross_entropy_setup)


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight=None,
    *,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """``torch.nn.functional.cross_entropy`` with class-index targets on imkern's kernels,
    differentiable in ``logits``. ``weight`` (class weights) is not supported (ValueError)."""
    if weight is not None:
        raise ValueError("weight: class weights are not supported by imkern's cross_entropy")
    return torch.ops.imkern.cross_entropy(logits, target, str(reduction), float(label_smoothing), int(ignore_index))


# ---- batch_norm -----------------------------------------------------------------------------
@torch.library.custom_op("imkern::batch_norm", mutates_args=())
def _batch_norm_op(
    x: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    training: bool,
    momentum: float,
    eps: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    """(y, new running_mean, new running_var) of (N, C, H, W) ``x`` (empty statistics when None)."""
    rm = None if running_mean is None else running_mean.detach().clone()
    rv = None if running_var is None else running_var.detach().clone()
    y = _F.batch_norm2d(x, weight, bias, rm, rv, training=training, momentum=momentum, eps=eps)
    return y, (x.new_empty((0,)) if rm is None else rm), (x.new_empty((0,)) if rv is None else rv)


@_batch_norm_op.register_fake
def _(x, weight, bias, running_mean, running_var, training, momentum, eps):
    torch._check(x.dim() == 4, lambda: f"x: expected (N, C, H, W), got shape {tuple(x.shape)}")
    rm = x.new_empty((0,)) if running_mean is None else torch.empty_like(running_mean)
    rv = x.new_empty((0,)) if running_var is None else torch.empty_like(running_var)
    return _like(x), rm, rv


@torch.library.custom_op("imkern::batch_norm_backward", mutates_args=())
def _batch_norm_backward_op(
    grad: Tensor,
    x: Tensor,
    weight: Optional[Tensor],
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    training: bool,
    eps: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    gi, gw, gb = _F.batch_norm2d_backward(grad, x, weight, running_mean, running_var, training=training, eps=eps)
    pdt = weight.dtype if weight is not None else x.dtype
    return gi, gw.to(pdt).contiguous(), gb.to(pdt).contiguous()


@_batch_norm_backward_op.register_fake
def _(grad, x, weight, running_mean, running_var, training, eps):
    c = x.shape[1]
    pdt = weight.dtype if weight is not None else x.dtype
    return _like(x), x.new_empty((c,), dtype=pdt), x.new_empty((c,), dtype=pdt)


def _batch_norm_setup(ctx, inputs, output):
    x, weight, bias, running_mean, running_var, training, momentum, eps = inputs
    # eval mode normalizes with the statistics as given (the op does not change them then)
    ctx.save_for_backward(x, weight, None if training else running_mean, None if training else running_var)
    ctx.training, ctx.eps = training, eps
    ctx.has = (weight is not None, bias is not None)


def _batch_norm_backward(ctx, grad, _grad_rm, _grad_rv):
    x, weight, rm, rv = ctx.saved_tensors
    gi, gw, gb = torch.ops.imkern.batch_norm_backward(grad.contiguous(), x, weight, rm, rv, ctx.training, ctx.eps)
    return gi, (gw if ctx.has[0] else None), (gb if ctx.has[1] else None), None, None, None, None, None


_batch_norm_op.register_autograd(_batch_norm_backward, setup_context=_batch_norm_setup)


def batch_norm(
    x: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """``torch.nn.functional.batch_norm`` on imkern's kernels (``torch.ops.imkern.batch_norm``):
    ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``, training (batch statistics; the running ones
    updated in place with the unbiased variance, as torch) or eval; differentiable in ``x``,
    ``weight`` and ``bias``."""
    if x.dim() not in (2, 3, 4):
        raise ValueError(f"x: expected (N, C), (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")
    x4 = x.reshape(tuple(x.shape) + (1,) * (4 - x.dim()))
    y, rm, rv = torch.ops.imkern.batch_norm(
        x4, weight, bias, running_mean, running_var, bool(training), float(momentum), float(eps)
    )
    if training:
        with torch.no_grad():
            if running_mean is not None:
                running_mean.copy_(rm)
            if running_var is not None:
                running_var.copy_(rv)
    return y.reshape(x.shape)


# ---- dropout --------------------------------------------------------------------------------
@torch.library.custom_op("imkern::dropout", mutates_args=())
def _dropout_op(x: Tensor, p: float, seed: Tensor) -> Tensor:
    return _F.dropout(x, p, True, seed=int(seed))


@_dropout_op.register_fake
def _(x, p, seed):
    return _like(x)


@torch.library.custom_op("imkern::dropout_backward", mutates_args=())
def _dropout_backward_op(grad: Tensor, p: float, seed: Tensor) -> Tensor:
    return _F.dropout_backward(grad, p, seed=int(seed))


@_dropout_backward_op.register_fake
def _(grad, p, seed):
    return _like(grad)


def _dropout_setup(ctx, inputs, output):
    x, p, seed = inputs
    ctx.save_for_backward(seed)
    ctx.p = p


def _dropout_backward(ctx, grad):
    (seed,) = ctx.saved_tensors
    return torch.ops.imkern.dropout_backward(grad.contiguous(), ctx.p, seed), None, None


_dropout_op.register_autograd(_dropout_backward, setup_context=_dropout_setup)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, *, seed: Optional[int] = None) -> Tensor:
    """``torch.nn.functional.dropout`` on imkern's counter-based mask (``torch.ops.imkern.dropout``),
    differentiable (the backward regenerates the mask from the seed). Without ``seed`` one is
    drawn from torch's default generator (reproducible under ``torch.manual_seed``; drawn
    inside a compiled graph too). Not training: ``x`` itself, as torch."""
    if not training or p == 0.0:
        return x
    if seed is None:
        s = torch.randint(0, 2**62, (), dtype=torch.int64)
    else:
        s = torch.tensor(int(seed) % (2**63), dtype=torch.int64)
    return torch.ops.imkern.dropout(x, float(p), s)
