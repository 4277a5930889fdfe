"""Layers over :mod:`imkern.nn.functional`: modules that hold their parameters, run forward,
and run backward from the gradient of their output (no autograd tape: each layer keeps what
its backward needs from the last forward). Enough to train and run a classic CNN:

    >>> import numpy as np
    >>> from imkern.nn import layers as L
    >>> net = L.Sequential(L.Conv2d(1, 4, 3, padding=1, seed=0), L.ReLU(), L.MaxPool2d(2),
    ...                    L.Flatten(), L.Linear(4 * 4 * 4, 3, seed=1))
    >>> x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    >>> loss_fn, opt = L.CrossEntropyLoss(), L.SGD(net.parameters(), lr=0.1)
    >>> loss = loss_fn(net(x), np.array([0, 2]))
    >>> _ = net.backward(loss_fn.backward()); opt.step(); opt.zero_grad()
    >>> net(x).shape
    (2, 3)

Parameters are initialized as PyTorch initializes them (uniform in +-1/sqrt(fan_in)), from a
seed. Shapes, dtypes and semantics are the functional ops' (NCHW, PyTorch's).
"""
from __future__ import annotations

import math
from typing import Iterator, List, Optional

import numpy as np

from . import functional as F

__all__ = [
    "Parameter", "Module", "Sequential", "Conv2d", "Linear", "ReLU", "MaxPool2d", "AvgPool2d",
    "Flatten", "BatchNorm2d", "Dropout", "CrossEntropyLoss", "SGD",
]


class Parameter:
    """A trainable array and its accumulated gradient (None until a backward ran)."""

    def __init__(self, data):
        self.data = data
        self.grad = None

    def accumulate(self, g) -> None:
        self.grad = g.copy() if self.grad is None else self.grad + g


class Module:
    training = True

    def parameters(self) -> List[Parameter]:
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def __call__(self, x):
        return self.forward(x)

    def _saved(self, name):
        v = getattr(self, name, None)
        if v is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return v


def _uniform(shape, bound, seed, dtype):
    return np.random.default_rng(seed).uniform(-bound, bound, size=shape).astype(dtype)


class Sequential(Module):
    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def parameters(self) -> List[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self, mode: bool = True) -> "Sequential":
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad


class Conv2d(Module):
    """conv2d with weight (K, C/groups, R, S) and bias (K,); optional fused relu."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, *, activation=None, dtype=np.float32, seed=None):
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: {groups} must divide in_channels {in_channels} and out_channels {out_channels}")
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = Parameter(_uniform((out_channels, in_channels // groups, kh, kw), bound, seed, dtype))
        self.bias = Parameter(_uniform((out_channels,), bound, None if seed is None else seed + 1, dtype)) if bias else None
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.activation = activation

    def forward(self, x):
        b = None if self.bias is None else self.bias.data
        y = F.conv2d(x, self.weight.data, b, self.stride, self.padding, self.dilation, self.groups,
                     activation=self.activation)
        self.x, self.y = x, y
        return y

    def backward(self, grad):
        x = self._saved("x")
        if self.activation == "relu":
            grad = F.relu_backward(grad, self.y)
        gi, gw, gb = F.conv2d_backward(grad, x, self.weight.data, self.stride, self.padding, self.dilation, self.groups)
        self.weight.accumulate(gw)
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gi


class Linear(Module):
    """linear with weight (out_features, in_features) and bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, seed=None):
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(_uniform((out_features, in_features), bound, seed, dtype))
        self.bias = Parameter(_uniform((out_features,), bound, None if seed is None else seed + 1, dtype)) if bias else None

    def forward(self, x):
        self.x = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad):
        gi, gw, gb = F.linear_backward(grad, self._saved("x"), self.weight.data)
        self.weight.accumulate(gw)
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gi


class ReLU(Module):
    def forward(self, x):
        self.x = x
        return F.relu(x)

    def backward(self, grad):
        return F.relu_backward(grad, self._saved("x"))


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.args = (kernel_size, stride, padding, dilation, ceil_mode)

    def forward(self, x):
        y, self.indices = F.max_pool2d(x, *self.args, return_indices=True)
        self.shape = x.shape
        return y

    def backward(self, grad):
        return F.max_pool2d_backward(grad, self._saved("indices"), self.shape)


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, x):
        self.shape = x.shape
        return F.avg_pool2d(x, *self.args)

    def backward(self, grad):
        return F.avg_pool2d_backward(grad, self._saved("shape"), *self.args)


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._saved("shape"))


class BatchNorm2d(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        self.x = x
        self.was_training = self.training
        return F.batch_norm2d(x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
                              training=self.training, momentum=self.momentum, eps=self.eps)

    def backward(self, grad):
        # In training mode the backward recomputes the batch statistics from x.
        gi, gw, gb = F.batch_norm2d_backward(grad, self._saved("x"), self.weight.data, self.running_mean,
                                             self.running_var, training=self.was_training, eps=self.eps)
        self.weight.accumulate(gw)
        self.bias.accumulate(gb)
        return gi


class Dropout(Module):
    """Dropout with a counter-based mask: the k-th training forward uses seed + k."""

    def __init__(self, p=0.5, *, seed=0):
        self.p, self.seed, self.calls = p, seed, 0

    def forward(self, x):
        if not self.training or self.p == 0:
            self.used = None
            return x
        self.used = self.seed + self.calls
        self.calls += 1
        return F.dropout(x, self.p, seed=self.used)

    def backward(self, grad):
        if getattr(self, "used", None) is None:
            return grad
        return F.dropout_backward(grad, self.p, seed=self.used)


class CrossEntropyLoss:
    def __init__(self, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        self.kw = dict(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index)

    def __call__(self, logits, target):
        self.logits, self.target = logits, target
        return F.cross_entropy(logits, target, **self.kw)

    def backward(self):
        return F.cross_entropy_backward(self.logits, self.target, **self.kw)


class SGD:
    """SGD with optional momentum and weight decay, as torch.optim.SGD (dampening 0)."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buf: List[Optional[np.ndarray]] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                self.buf[i] = g.copy() if self.buf[i] is None else self.momentum * self.buf[i] + g
                g = self.buf[i]
            p.data -= (self.lr * g).astype(p.data.dtype)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.params)
