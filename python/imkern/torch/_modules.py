"""Drop-in replacements for torch.nn layers (and CrossEntropyLoss), computing on imkern's kernels.

Each class subclasses its torch.nn counterpart, so construction, parameter initialization,
``state_dict`` keys, ``repr`` and everything else are PyTorch's; only ``forward`` calls the
imkern operator (``torch.ops.imkern.*``, differentiable, traceable by torch.compile). A model
built from the torch.nn layers can swap them in with :func:`replace_layers`.
"""

from __future__ import annotations

from typing import Any

import torch

from . import _nn_ops, _ops

__all__ = [
    "Conv2d",
    "Linear",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "ReLU",
    "LeakyReLU",
    "GELU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "CrossEntropyLoss",
    "replace_layers",
]


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` on :func:`imkern.torch.conv2d` (``padding_mode="zeros"`` only)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError(f"padding_mode: only 'zeros' is supported, got {self.padding_mode!r}")

    def forward(self, x):
        return _ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Linear(torch.nn.Linear):
    """``torch.nn.Linear`` on :func:`imkern.torch.linear`."""

    def forward(self, x):
        return _ops.linear(x, self.weight, self.bias)


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` on :func:`imkern.torch.max_pool2d`."""

    def forward(self, x):
        return _ops.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class AvgPool2d(torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` on :func:`imkern.torch.avg_pool2d`."""

    def forward(self, x):
        return _ops.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` on :func:`imkern.torch.adaptive_avg_pool2d`."""

    def forward(self, x):
        return _ops.adaptive_avg_pool2d(x, self.output_size)


class _BatchNormMixin:
    """torch's ``_BatchNorm.forward`` (the momentum / cumulative-average bookkeeping and the
    choice of statistics) with :func:`imkern.torch.batch_norm` doing the work."""

    def forward(self: Any, x):  # self: the torch.nn batch-norm class this is mixed into
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return _nn_ops.batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )


class BatchNorm1d(_BatchNormMixin, torch.nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` (``(N, C)`` or ``(N, C, L)``) on :func:`imkern.torch.batch_norm`."""


class BatchNorm2d(_BatchNormMixin, torch.nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` on :func:`imkern.torch.batch_norm` (training and eval, the
    running statistics updated as torch does)."""


class ReLU(torch.nn.ReLU):
    """``torch.nn.ReLU`` on :func:`imkern.torch.relu` (``inplace=True`` computes out of place)."""

    def forward(self, x):
        return _nn_ops.relu(x)


class LeakyReLU(torch.nn.LeakyReLU):
    """``torch.nn.LeakyReLU`` on :func:`imkern.torch.leaky_relu` (out of place)."""

    def forward(self, x):
        return _nn_ops.leaky_relu(x, self.negative_slope)


class GELU(torch.nn.GELU):
    """``torch.nn.GELU`` (``approximate="none"`` only) on :func:`imkern.torch.gelu`."""

    def __init__(self, approximate: str = "none"):
        if approximate != "none":
            raise ValueError(f"approximate: only 'none' is supported, got {approximate!r}")
        super().__init__(approximate)

    def forward(self, x):
        return _nn_ops.gelu(x)


class Sigmoid(torch.nn.Sigmoid):
    """``torch.nn.Sigmoid`` on :func:`imkern.torch.sigmoid`."""

    def forward(self, x):
        return _nn_ops.sigmoid(x)


class Tanh(torch.nn.Tanh):
    """``torch.nn.Tanh`` on :func:`imkern.torch.tanh`."""

    def forward(self, x):
        return _nn_ops.tanh(x)


class Softmax(torch.nn.Softmax):
    """``torch.nn.Softmax`` on :func:`imkern.torch.softmax` (``dim`` must be given)."""

    def forward(self, x):
        if self.dim is None:
            raise ValueError("dim: give the axis to normalize over (torch's implicit choice is not guessed)")
        return _nn_ops.softmax(x, self.dim)


class LogSoftmax(torch.nn.LogSoftmax):
    """``torch.nn.LogSoftmax`` on :func:`imkern.torch.log_softmax` (``dim`` must be given)."""

    def forward(self, x):
        if self.dim is None:
            raise ValueError("dim: give the axis to normalize over (torch's implicit choice is not guessed)")
        return _nn_ops.log_softmax(x, self.dim)


class Dropout(torch.nn.Dropout):
    """``torch.nn.Dropout`` on :func:`imkern.torch.dropout` (imkern's mask, seeded from torch's
    generator: the same statistics, not torch's exact mask)."""

    def forward(self, x):
        return _nn_ops.dropout(x, self.p, self.training)


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` (class-index targets, no class ``weight``) on
    :func:`imkern.torch.cross_entropy`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.weight is not None:
            raise ValueError("weight: class weights are not supported by imkern's cross_entropy")

    def forward(self, logits, target):
        return _nn_ops.cross_entropy(
            logits,
            target,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index,
        )


_REPLACE = {
    torch.nn.Conv2d: Conv2d,
    torch.nn.Linear: Linear,
    torch.nn.MaxPool2d: MaxPool2d,
    torch.nn.AvgPool2d: AvgPool2d,
    torch.nn.AdaptiveAvgPool2d: AdaptiveAvgPool2d,
    torch.nn.BatchNorm1d: BatchNorm1d,
    torch.nn.BatchNorm2d: BatchNorm2d,
    torch.nn.ReLU: ReLU,
    torch.nn.LeakyReLU: LeakyReLU,
    torch.nn.GELU: GELU,
    torch.nn.Sigmoid: Sigmoid,
    torch.nn.Tanh: Tanh,
    torch.nn.Softmax: Softmax,
    torch.nn.LogSoftmax: LogSoftmax,
    torch.nn.Dropout: Dropout,
    torch.nn.CrossEntropyLoss: CrossEntropyLoss,
}


def _replaceable(child) -> bool:
    """False for the settings imkern's op does not implement (the torch layer is kept)."""
    t = type(child)
    if t is torch.nn.Conv2d:
        return child.padding_mode == "zeros"
    if t is torch.nn.GELU:
        return child.approximate == "none"
    if t in (torch.nn.Softmax, torch.nn.LogSoftmax):
        return child.dim is not None
    if t is torch.nn.CrossEntropyLoss:
        return child.weight is None
    return True


def replace_layers(model: torch.nn.Module) -> torch.nn.Module:
    """Swap, in place, every torch.nn Conv2d (zero padding), Linear, MaxPool2d, AvgPool2d,
    AdaptiveAvgPool2d, BatchNorm1d/2d, ReLU, LeakyReLU, GELU (erf form), Sigmoid, Tanh,
    Softmax/LogSoftmax (with ``dim``), Dropout and CrossEntropyLoss (no class weights) of
    ``model`` for its imkern counterpart, keeping the parameters and buffers (the same tensors)
    and settings; layers with settings imkern lacks stay torch's. Returns ``model``."""
    for _name, child in list(model.named_children()):
        cls = _REPLACE.get(type(child))
        if cls is not None and _replaceable(child):
            child.__class__ = cls
        else:
            replace_layers(child)
    return model
