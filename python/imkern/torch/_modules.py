"""Drop-in replacements for torch.nn layers, computing on imkern's kernels.

Each class subclasses its torch.nn counterpart, so construction, parameter initialization,
``state_dict`` keys, ``repr`` and everything else are PyTorch's; only ``forward`` calls the
imkern operator (``torch.ops.imkern.*``, differentiable, traceable by torch.compile). A model
built from the torch.nn layers can swap them in with :func:`replace_layers`.
"""

from __future__ import annotations

import torch

from . import _ops

__all__ = ["Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "replace_layers"]


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


_REPLACE = {
    torch.nn.Conv2d: Conv2d,
    torch.nn.Linear: Linear,
    torch.nn.MaxPool2d: MaxPool2d,
    torch.nn.AvgPool2d: AvgPool2d,
    torch.nn.AdaptiveAvgPool2d: AdaptiveAvgPool2d,
}


def replace_layers(model: torch.nn.Module) -> torch.nn.Module:
    """Swap, in place, every torch.nn Conv2d (zero padding), Linear, MaxPool2d, AvgPool2d and
    AdaptiveAvgPool2d of ``model`` for its imkern counterpart, keeping the parameters (the same
    tensors) and settings; returns ``model``."""
    for _name, child in list(model.named_children()):
        cls = _REPLACE.get(type(child))
        if cls is not None and not (cls is Conv2d and child.padding_mode != "zeros"):
            child.__class__ = cls
        else:
            replace_layers(child)
    return model
