"""Layers over :mod:`imkern.nn.functional`: modules that hold their parameters, run forward,
and run backward from the gradient of their output (no autograd tape: in training mode each
layer keeps what its backward needs from its last forward; in eval mode it keeps nothing).
Enough to train and run a classic CNN:

    >>> import numpy as np
    >>> import imkern
    >>> from imkern import nn, optim
    >>> imkern.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    >>> x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    >>> loss_fn, opt = nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1)
    >>> loss = loss_fn(net(x), np.array([0, 2]))
    >>> _ = net.backward(loss_fn.backward()); opt.step(); opt.zero_grad()
    >>> net(x).shape
    (2, 3)

As in ``torch.nn``, a :class:`Module` finds its parameters, buffers and sub-modules by walking
its attributes, including lists, tuples and dicts of modules (``parameters()``, ``train()`` /
``eval()``, ``zero_grad()``, ``state_dict()``, ``to()`` all recurse), so a user subclass holding
``self.conv = Conv2d(...)`` needs no registration. Parameters are initialized as PyTorch
initializes them (uniform in +-1/sqrt(fan_in)); a layer created without ``seed=`` draws its
stream from the global generator that :func:`imkern.manual_seed` resets (see
:mod:`imkern._random`). A ReLU that directly follows a Conv2d in a :class:`Sequential` runs fused
into the convolution (one kernel: conv + bias + ReLU). Shapes, dtypes and semantics are the
functional ops' (NCHW, PyTorch's); NumPy parameters run on the CPU, CuPy on the GPU
(:meth:`Module.to`).

Arrays of other frameworks (PyTorch tensors, JAX arrays: any ``__dlpack__`` /
``__cuda_array_interface__`` producer) are accepted by every layer's ``forward`` / ``backward``
(and ``module(x)``) zero-copy, through the same wrapper as the functional ops
(:mod:`imkern._interop`), and the results come back as the caller's kind (torch in, torch out);
the parameters stay NumPy / CuPy arrays. :meth:`Module.load_state_dict` takes such arrays too.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, cast

import numpy as np

from .. import _arrays as A
from .. import _interop, _random
from . import _pool2d
from . import functional as F

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "Identity",
    "Conv2d",
    "Linear",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "GELU",
    "Softmax",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Flatten",
    "BatchNorm2d",
    "Dropout",
    "CrossEntropyLoss",
    "LAYERS",
]


def __getattr__(name):
    # The optimizer lived here before imkern.optim existed; keep the old spelling working.
    if name == "SGD":
        from ..optim import SGD

        return SGD
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- arrays on either device -------------------------------------------------------------------


def _is_cupy(a) -> bool:
    return type(a).__module__.split(".")[0] == "cupy"


def _device_of(a) -> str:
    return "cuda" if _is_cupy(a) else "cpu"


def _parse_device(device) -> str:
    d = str(device)
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        return d
    raise ValueError(f"device: expected 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")


def _move(a, device: str):
    """``a`` (NumPy or CuPy) on ``device``; the same object when it is already there."""
    if a is None:
        return None
    if device == "cpu":
        return a.get() if _is_cupy(a) else a
    try:
        import cupy
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("to('cuda'): CuPy is not installed (pip install 'imkern[cuda]')") from e
    dev = int(device.split(":")[1]) if ":" in device else cupy.cuda.runtime.getDevice()
    if _is_cupy(a) and a.device.id == dev:
        return a
    with cupy.cuda.Device(dev):
        return cupy.asarray(a)


def _xp(a):
    if _is_cupy(a):
        import cupy

        return cupy
    return np


# ---- Parameter and Module ----------------------------------------------------------------------


class Parameter:
    """A trainable array and its accumulated gradient (None until a backward ran).

    ``data`` is a NumPy array (CPU) or a CuPy array (GPU); ``grad`` has its shape, dtype and
    device once a backward ran. Optimizers update ``data`` in place from ``grad``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> p = nn.Parameter(np.zeros(3, np.float32))
        >>> p.accumulate(np.ones(3, np.float32)); p.accumulate(np.ones(3, np.float32))
        >>> p.grad.tolist(), p.shape
        ([2.0, 2.0, 2.0], (3,))
    """

    def __init__(self, data):
        self.data = data
        self.grad = None

    def accumulate(self, g) -> None:
        """Add ``g`` to ``grad`` (a copy of ``g`` when there is none yet)."""
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def _accumulate_new(self, g) -> None:
        # accumulate() for a gradient array nothing else refers to (a layer's backward just
        # made it): the first one becomes grad itself, without accumulate's copy (Linear(2048,
        # 128)'s weight: a 1 MiB copy per batch).
        if self.grad is None:
            self.grad = g
        else:
            self.grad += g

    @property
    def shape(self):
        """The shape of ``data``."""
        return self.data.shape

    @property
    def dtype(self):
        """The dtype of ``data``."""
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype}, device={_device_of(self.data)})"


def _members(obj, prefix: str):
    """(name, value) for Parameters and Modules in ``obj`` (recursing into lists, tuples, dicts)."""
    if isinstance(obj, (Parameter, Module)):
        yield prefix, obj
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _members(v, f"{prefix}.{i}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _members(v, f"{prefix}.{k}")


class Module:
    """Base class of the layers and of user models.

    Subclasses implement ``forward(x)`` and ``backward(grad_output) -> grad_input`` (which
    accumulates parameter gradients into ``Parameter.grad``); ``__init__`` needs no call to
    ``super().__init__()``. Buffers (non-trainable state saved with the model, such as batch
    norm's running statistics) are the attribute names listed in ``_buffers``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> class Residual(nn.Module):
        ...     def __init__(self, c):
        ...         self.conv = nn.Conv2d(c, c, 3, padding=1, seed=0)
        ...     def forward(self, x):
        ...         return x + self.conv(x)
        ...     def backward(self, grad):
        ...         return grad + self.conv.backward(grad)
        >>> m = Residual(2)
        >>> [name for name, _ in m.named_parameters()]
        ['conv.weight', 'conv.bias']
        >>> x = np.ones((1, 2, 4, 4), np.float32)
        >>> m.backward(np.ones_like(m(x))).shape, m.conv.weight.grad.shape
        ((1, 2, 4, 4), (2, 2, 3, 3))
    """

    training = True
    _buffers: Tuple[str, ...] = ()
    _cache = None  # what backward needs, set by a training-mode forward only; never pickled

    # -- tree walking --
    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        """``(name, module)`` for the direct sub-modules (attributes, and lists/dicts of them)."""
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            for n, m in _members(value, name):
                if isinstance(m, Module):
                    yield n, m

    def children(self) -> Iterator["Module"]:
        """The direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """``(dotted name, module)`` for this module and every sub-module, each once."""
        seen = set()

        def walk(mod, pre):
            if id(mod) in seen:
                return
            seen.add(id(mod))
            yield pre, mod
            for n, child in mod.named_children():
                yield from walk(child, f"{pre}.{n}" if pre else n)

        yield from walk(self, prefix)

    def modules(self) -> Iterator["Module"]:
        """This module and every sub-module, each once."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` for every parameter, each once, in definition order."""
        seen = set()
        for mname, mod in self.named_modules(prefix):
            for name, value in vars(mod).items():
                if name.startswith("_"):
                    continue
                for n, p in _members(value, name):
                    if isinstance(p, Parameter) and id(p) not in seen:
                        seen.add(id(p))
                        yield (f"{mname}.{n}" if mname else n), p

    def parameters(self) -> List[Parameter]:
        """Every Parameter of this module and its sub-modules, each once, in definition order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[Tuple[str, object]]:
        """``(dotted name, array)`` for every buffer (state saved with the model, not trained)."""
        for mname, mod in self.named_modules(prefix):
            for b in mod._buffers:
                v = getattr(mod, b, None)
                if v is not None:
                    yield (f"{mname}.{b}" if mname else b), v

    # -- modes and gradients --
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``mode=True``) or eval mode on this module and every sub-module."""
        mode = bool(mode)
        for m in self.modules():
            m.training = mode
            if not mode:
                m._cache = None
        return self

    def eval(self) -> "Module":
        """Eval mode (``train(False)``): nothing is kept for backward, dropout is off, batch norm
        uses its running statistics."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``grad = None``)."""
        for p in self.parameters():
            p.grad = None

    # -- state --
    def state_dict(self) -> "OrderedDict[str, Any]":
        """Parameter and buffer arrays by dotted name (``"0.weight"``, ``"features.1.running_mean"``)."""
        out = OrderedDict()
        for n, p in self.named_parameters():
            out[n] = p.data
        for n, b in self.named_buffers():
            out[n] = b
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers of the same names (kept on this module's
        device and dtype). Missing or unexpected names (``strict``) and different shapes raise
        ValueError naming them."""
        own = self.state_dict()
        state_dict = {k: _interop.to_native(v) if _interop.is_foreign(v) else v for k, v in state_dict.items()}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: the state does not match this model's architecture "
                f"(missing: {missing or 'none'}; unexpected: {unexpected or 'none'})"
            )
        bad = [
            f"{k}: model {tuple(own[k].shape)}, state {tuple(np.shape(state_dict[k]))}"
            for k in own
            if k in state_dict and tuple(own[k].shape) != tuple(np.shape(state_dict[k]))
        ]
        if bad:
            raise ValueError("load_state_dict: shapes differ from this model's: " + "; ".join(bad))
        params = dict(self.named_parameters())
        holders = {}
        for mname, mod in self.named_modules():
            for b in mod._buffers:
                holders[f"{mname}.{b}" if mname else b] = (mod, b)
        for k, cur in own.items():
            if k not in state_dict:
                continue
            src = state_dict[k]
            if _is_cupy(src) and not _is_cupy(cur):
                src = src.get()
            new = _xp(cur).asarray(src, dtype=cur.dtype).copy()
            if k in params:
                params[k].data = new
                params[k].grad = None
            else:
                mod, b = holders[k]
                setattr(mod, b, new)
            self._cache = None

    def to(self, device) -> "Module":
        """Move every parameter, gradient and buffer to ``"cpu"`` (NumPy) or ``"cuda"`` (CuPy),
        in place; returns the module."""
        device = _parse_device(device)
        for p in self.parameters():
            p.data = _move(p.data, device)
            p.grad = _move(p.grad, device)
        for mod in self.modules():
            mod._cache = None
            for b in mod._buffers:
                if getattr(mod, b, None) is not None:
                    setattr(mod, b, _move(getattr(mod, b), device))
        return self

    def cpu(self) -> "Module":
        """``to("cpu")``."""
        return self.to("cpu")

    def cuda(self) -> "Module":
        """``to("cuda")``."""
        return self.to("cuda")

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda"``: where the first parameter lives (``"cpu"`` without any)."""
        ps = self.parameters()
        return _device_of(ps[0].data) if ps else "cpu"

    # -- running --
    def forward(self, x):  # pragma: no cover - abstract
        """The layer's output for ``x`` (also ``module(x)``); in training mode it keeps what
        :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad):  # pragma: no cover - abstract
        """The gradient of the loss with respect to the last training-mode forward's input,
        from ``grad``, the gradient with respect to its output; parameter gradients are
        accumulated into their ``grad``."""
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def backward_params(self, grad) -> None:
        """Backward for the parameter gradients only, when the input's gradient is not needed
        (the network's input: torch computes no input gradient for a tensor that does not
        require one). Stores the same parameter gradients as :meth:`backward`, returns
        ``None``, and skips what only the input gradient needs where a layer can (the first
        convolution's grad_input). :func:`imkern.nn.fit` calls this."""
        self.backward(grad)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __init_subclass__(cls, **kwargs):
        # Foreign arrays (torch, JAX, ...) in and out of every layer's entry points, converted
        # once at the outermost call (inner calls see NumPy / CuPy and pass straight through).
        super().__init_subclass__(**kwargs)
        for name in ("forward", "backward", "backward_params"):
            f = cls.__dict__.get(name)
            if callable(f):
                setattr(cls, name, _interop.accepts_foreign(f))

    def _save(self, **saved) -> None:
        """Keep what backward needs, in training mode only."""
        self._cache = saved if self.training else None

    def _saved(self) -> Dict[str, Any]:
        if self._cache is None:
            why = (
                "the last forward ran in eval mode (call .train() before a forward whose backward you need)"
                if not self.training
                else "called before forward (no training-mode forward since the last state change)"
            )
            raise RuntimeError(f"{type(self).__name__}.backward: nothing saved to differentiate: {why}")
        return self._cache

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # -- architecture (for imkern.nn.save) and printing --
    def _config(self) -> Optional[dict]:
        """Constructor arguments that rebuild this layer (JSON values), or None when the class
        cannot be rebuilt from its name and arguments (a user subclass)."""
        return None

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``."""
        cfg = self._config()
        if not cfg:
            return ""
        return ", ".join(f"{k}={v!r}" for k, v in cfg.items())

    def __repr__(self) -> str:
        kids = list(self.named_children())
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for n, m in kids:
            lines.append("  (" + n + "): " + repr(m).replace("\n", "\n  "))
        lines.append(")")
        return "\n".join(lines)


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(u) for u in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse. A :class:`ReLU` right after a
    :class:`Conv2d` (without its own activation) is fused into the convolution's kernel.

    ``Sequential(a, b, c)`` or ``Sequential([a, b, c])``; indexing, slicing, ``len`` and
    iteration work as on ``torch.nn.Sequential``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> m = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.ReLU(), nn.Flatten())
        >>> len(m), type(m[0]).__name__, m(np.ones((1, 1, 5, 5), np.float32)).shape
        (3, 'Conv2d', (1, 18))
    """

    def __init__(self, *layers: Module):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: layer {i} is a {type(layer).__name__}, not an imkern.nn Module "
                    f"(pass the layers as Sequential(a, b, ...) or Sequential([a, b, ...]))"
                )
        self.layers = list(layers)

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def append(self, layer: Module) -> "Sequential":
        """Add ``layer`` at the end; returns this Sequential."""
        if not isinstance(layer, Module):
            raise TypeError(f"append: expected an imkern.nn Module, got {type(layer).__name__}")
        self.layers.append(layer)
        return self

    def _fusable(self, i: int) -> bool:
        a = self.layers[i]
        return (
            type(a) is Conv2d and a.activation is None and i + 1 < len(self.layers) and type(self.layers[i + 1]) is ReLU
        )

    def forward(self, x):
        fused = []
        i = 0
        while i < len(self.layers):
            if self._fusable(i):
                x = cast(Conv2d, self.layers[i])._forward(x, "relu")
                fused.append(i)
                i += 2
            else:
                x = self.layers[i](x)
                i += 1
        self._save(fused=fused)
        return x

    def backward(self, grad):
        return self._backward(grad, True)

    def backward_params(self, grad) -> None:
        self._backward(grad, False)

    def _backward(self, grad, input_grad: bool):
        fused = set(self._saved()["fused"])
        i = len(self.layers) - 1
        while i >= 0:
            if i - 1 in fused:  # the ReLU ran inside the convolution before it
                i -= 1
            layer = self.layers[i]
            if i - 2 in fused and type(layer) is MaxPool2d:
                # Conv2d + ReLU (fused) + MaxPool2d: the ReLU's mask is applied to the pooled
                # gradient, by the pooled output, before the scatter (4x fewer elements for a
                # 2x2 pool than masking the scattered gradient). The same numbers: each pooled
                # value is the ReLU output at its argmax (NaN included), so each scattered
                # gradient is masked by the same value; elsewhere the scatter writes +0,
                # which the mask keeps.
                grad = layer.backward(F.relu_backward(grad, layer._saved()["y"]))
                conv = cast(Conv2d, self.layers[i - 2])
                if i - 2 == 0 and not input_grad:
                    conv._backward(grad, False, relu_done=True)
                    return None
                grad = conv._backward(grad, True, relu_done=True)
                i -= 3
                continue
            if i == 0 and not input_grad:
                layer.backward_params(grad)
                return None
            grad = layer.backward(grad)
            i -= 1
        return grad

    def _config(self):
        return {}

    def extra_repr(self) -> str:
        return ""


class Identity(Module):
    """Passes its input through (``torch.nn.Identity``).

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.Identity()(np.arange(3.0)).tolist()
        [0.0, 1.0, 2.0]
    """

    def forward(self, x):
        return x

    def backward(self, grad):
        return grad

    def _config(self):
        return {}


class Conv2d(Module):
    """2-D convolution (:func:`imkern.nn.functional.conv2d`), as ``torch.nn.Conv2d``.

    Input ``(N, C, H, W)``, output ``(N, K, OH, OW)`` with PyTorch's output-size formula; weight
    ``(K, C/groups, R, S)`` and bias ``(K,)``, initialized as ``torch.nn.Conv2d`` (uniform in
    ``+-1/sqrt(C/groups * R * S)``) from ``seed`` or the global generator. Zero padding
    (``padding``: int, pair, ``"same"`` or ``"valid"``). float32 (default) or float64 on the
    CPU; float32, float16, bfloat16 on CUDA.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            ``torch.nn.Conv2d``.
        activation: None or ``"relu"`` (fused into the convolution's kernel).
        dtype: the parameters' dtype.
        seed: the initialization's seed (default: drawn from :func:`imkern.manual_seed`'s
            generator).

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> conv = nn.Conv2d(3, 8, 3, padding=1, seed=0)
        >>> conv.weight.shape, conv(np.ones((2, 3, 16, 16), np.float32)).shape
        ((8, 3, 3, 3), (2, 8, 16, 16))
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        *,
        activation=None,
        dtype=np.float32,
        seed=None,
    ):
        # Checked here, naming the argument, rather than at the first forward (or inside NumPy).
        kh, kw = A.pair_in_range(kernel_size, "kernel_size", 1, A.INT64_MAX)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
            A.int_in_range(v, name, 1, A.INT64_MAX)
        A.pair_in_range(stride, "stride", 1, A.INT64_MAX)
        A.pair_in_range(dilation, "dilation", 1, A.INT64_MAX)
        if not isinstance(padding, str):
            A.pair_in_range(padding, "padding", 0, A.INT64_MAX)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: {groups} must divide in_channels {in_channels} and out_channels {out_channels}")
        if activation not in (None, "relu"):
            raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)
        self.activation = activation
        bound = 1.0 / math.sqrt(in_channels // groups * kh * kw)
        rng = _random.generator(seed)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_channels, in_channels // groups, kh, kw)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, (out_channels,)).astype(dtype)) if bias else None

    def _forward(self, x, act):
        if x.ndim == 4 and x.shape[1] != self.in_channels and x.shape[3] == self.in_channels:
            raise ValueError(
                f"x: expected (N, C, H, W) with C = {self.in_channels} channels, got "
                f"{tuple(x.shape)}, which looks channels-last (N, H, W, C): transpose it "
                "(x.transpose(0, 3, 1, 2)) or use imkern.transform.to_tensor"
            )
        b = None if self.bias is None else self.bias.data
        y = F.conv2d(x, self.weight.data, b, self.stride, self.padding, self.dilation, self.groups, activation=act)
        self._save(x=x, y=y if act else None, act=act)
        return y

    def forward(self, x):
        return self._forward(x, self.activation)

    def backward(self, grad):
        return self._backward(grad, True)

    def backward_params(self, grad) -> None:
        self._backward(grad, False)

    def _backward(self, grad, input_grad: bool, relu_done: bool = False):
        s = self._saved()
        if s["act"] == "relu" and not relu_done:
            grad = F.relu_backward(grad, s["y"])
        gi, gw, gb = F.conv2d_backward(
            grad,
            s["x"],
            self.weight.data,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            output_mask=(input_grad, True, True),
        )
        self.weight._accumulate_new(gw)
        if self.bias is not None:
            self.bias._accumulate_new(gb)
        return gi

    def _config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": _jsonable(self.stride),
            "padding": _jsonable(self.padding),
            "dilation": _jsonable(self.dilation),
            "groups": self.groups,
            "bias": self.bias is not None,
            "activation": self.activation,
            "dtype": _dtype_name(self.weight.data.dtype),
        }


class Linear(Module):
    """``y = x W^T + b`` (:func:`imkern.nn.functional.linear`), as ``torch.nn.Linear``.

    Input ``(N, in_features)``, output ``(N, out_features)``; weight ``(out_features,
    in_features)`` and bias ``(out_features,)``, initialized as ``torch.nn.Linear`` (uniform in
    ``+-1/sqrt(in_features)``) from ``seed`` or the global generator.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> fc = nn.Linear(4, 2, seed=0)
        >>> fc(np.ones((3, 4), np.float32)).shape, fc.bias.shape
        ((3, 2), (2,))
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, seed=None):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name}: expected a non-negative int, got {v!r}")
            A.int_in_range(v, name, 0, A.INT64_MAX)
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        rng = _random.generator(seed)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, (out_features,)).astype(dtype)) if bias else None

    def forward(self, x):
        self._save(x=x)
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad):
        gi, gw, gb = F.linear_backward(grad, self._saved()["x"], self.weight.data)
        self.weight._accumulate_new(gw)
        if self.bias is not None:
            self.bias._accumulate_new(gb)
        return gi

    def _config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": _dtype_name(self.weight.data.dtype),
        }


class _SavesOutput(Module):
    """An elementwise activation whose backward reads its output: forward ``_f(x)``, backward
    ``_b(grad, y)`` (each subclass sets both)."""

    _f: Callable[[Any], Any]
    _b: Callable[[Any, Any], Any]

    def forward(self, x):
        y = self._f(x)
        self._save(y=y)
        return y

    def backward(self, grad):
        return self._b(grad, self._saved()["y"])

    def _config(self):
        return {}


class ReLU(_SavesOutput):
    """``max(x, 0)``, as ``torch.nn.ReLU``; fused into a preceding :class:`Conv2d` inside a
    :class:`Sequential`.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.ReLU()(np.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    _f = staticmethod(F.relu)
    _b = staticmethod(F.relu_backward)  # y > 0 exactly where x > 0


class LeakyReLU(Module):
    """``max(x, 0) + negative_slope * min(x, 0)``, as ``torch.nn.LeakyReLU``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.LeakyReLU(0.5)(np.array([-2.0, 2.0])).tolist()
        [-1.0, 2.0]
    """

    def __init__(self, negative_slope=0.01):
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        self._save(x=x)
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad):
        return F.leaky_relu_backward(grad, self._saved()["x"], negative_slope=self.negative_slope)

    def _config(self):
        return {"negative_slope": self.negative_slope}


class Sigmoid(_SavesOutput):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.Sigmoid()(np.array([0.0])).tolist()
        [0.5]
    """

    _f = staticmethod(F.sigmoid)
    _b = staticmethod(lambda grad, y: F.sigmoid_backward(grad, y=y))


class Tanh(_SavesOutput):
    """``tanh(x)``, as ``torch.nn.Tanh``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.Tanh()(np.array([0.0])).tolist()
        [0.0]
    """

    _f = staticmethod(F.tanh)
    _b = staticmethod(lambda grad, y: F.tanh_backward(grad, y=y))


class GELU(Module):
    """Exact GELU ``x * Phi(x)``, as ``torch.nn.GELU()`` (approximate='none').

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.GELU()(np.array([0.0, 10.0])).tolist()
        [0.0, 10.0]
    """

    def __init__(self, approximate="none"):
        if approximate != "none":
            raise ValueError(f"approximate: only 'none' (the exact erf form) is supported, got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        self._save(x=x)
        return F.gelu(x)

    def backward(self, grad):
        return F.gelu_backward(grad, self._saved()["x"])

    def _config(self):
        return {"approximate": self.approximate}


class Softmax(Module):
    """Softmax over ``dim``, as ``torch.nn.Softmax(dim)``. Backward:
    ``y * (g - sum(g * y, dim))``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.Softmax(1)(np.zeros((1, 4))).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim=-1):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
        self.dim = int(dim)

    def forward(self, x):
        y = F.softmax(x, self.dim)
        self._save(y=y)
        return y

    def backward(self, grad):
        y = self._saved()["y"]
        gy = grad * y
        return gy - y * gy.sum(axis=self.dim, keepdims=True)

    def _config(self):
        return {"dim": self.dim}


class MaxPool2d(Module):
    """Max pooling (:func:`imkern.nn.functional.max_pool2d`), as ``torch.nn.MaxPool2d``:
    ``(N, C, H, W) -> (N, C, OH, OW)``, ``stride`` defaults to ``kernel_size``, padding counts
    as -inf, NaN propagates. In training mode the argmax indices are kept for backward.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> nn.MaxPool2d(2)(x).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        _pool2d.window_args(kernel_size, stride, padding, dilation, ceil_mode)  # errors at construction
        self.args = (kernel_size, stride, padding, dilation, ceil_mode)

    def forward(self, x):
        if not self.training:
            return F.max_pool2d(x, *self.args)
        y, indices = F.max_pool2d(x, *self.args, return_indices=True)
        self._save(indices=indices, shape=x.shape, y=y)  # y: for Sequential's fused ReLU mask
        return y

    def backward(self, grad):
        s = self._saved()
        # The indices are this layer's own from its forward: not re-validated (a scan of them
        # per batch); the kernel still refuses one outside the plane.
        return _pool2d.max_pool2d_backward(grad, s["indices"], s["shape"], _trusted=True)

    def _config(self):
        k, s, p, d, c = self.args
        return {
            "kernel_size": _jsonable(k),
            "stride": _jsonable(s),
            "padding": _jsonable(p),
            "dilation": _jsonable(d),
            "ceil_mode": bool(c),
        }


class AvgPool2d(Module):
    """Average pooling (:func:`imkern.nn.functional.avg_pool2d`), as ``torch.nn.AvgPool2d``
    (``count_include_pad`` counts zero padding in the divisor, as torch's default).

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> nn.AvgPool2d(2)(x).tolist()
        [[[[2.5, 4.5], [10.5, 12.5]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        _pool2d.window_args(kernel_size, stride, padding, 1, ceil_mode)  # errors at construction
        _pool2d._avg_args(ceil_mode, count_include_pad, None)
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, x):
        self._save(shape=x.shape)
        return F.avg_pool2d(x, *self.args)

    def backward(self, grad):
        return F.avg_pool2d_backward(grad, self._saved()["shape"], *self.args)

    def _config(self):
        k, s, p, c, i = self.args
        return {
            "kernel_size": _jsonable(k),
            "stride": _jsonable(s),
            "padding": _jsonable(p),
            "ceil_mode": bool(c),
            "count_include_pad": bool(i),
        }


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` (int or (h, w)), as ``torch.nn.AdaptiveAvgPool2d``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.AdaptiveAvgPool2d(1)(np.ones((2, 3, 5, 7), np.float32)).shape
        (2, 3, 1, 1)
    """

    def __init__(self, output_size):
        _pool2d._adaptive_size(output_size, (1, 1, 1, 1))  # errors at construction (None keeps the input's)
        self.output_size = output_size

    def forward(self, x):
        self._save(shape=x.shape)
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad):
        return F.adaptive_avg_pool2d_backward(grad, self._saved()["shape"])

    def _config(self):
        return {"output_size": _jsonable(self.output_size)}


class Flatten(Module):
    """``(N, ...) -> (N, prod(...))``, as ``torch.nn.Flatten()``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> nn.Flatten()(np.ones((2, 3, 4, 5), np.float32)).shape
        (2, 60)
    """

    def forward(self, x):
        self._save(shape=x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._saved()["shape"])

    def _config(self):
        return {}


class BatchNorm2d(Module):
    """Batch normalization over ``(N, C, H, W)`` (:func:`imkern.nn.functional.batch_norm2d`),
    as ``torch.nn.BatchNorm2d``: weight (ones) and bias (zeros) ``(C,)`` are parameters,
    ``running_mean`` and ``running_var`` buffers (updated with ``momentum`` in training mode,
    the unbiased batch variance as torch; used in eval mode).

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> bn = nn.BatchNorm2d(2)
        >>> x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
        >>> y = bn(x)
        >>> bool(abs(float(y.mean())) < 1e-5), [name for name, _ in bn.named_buffers()]
        (True, ['running_mean', 'running_var'])
    """

    _buffers = ("running_mean", "running_var")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
        self.num_features = int(num_features)
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)
        self.eps, self.momentum = float(eps), float(momentum)

    def forward(self, x):
        self._save(x=x)
        return F.batch_norm2d(
            x,
            self.weight.data,
            self.bias.data,
            self.running_mean,
            self.running_var,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )

    def backward(self, grad):
        # The backward recomputes the batch statistics from x.
        gi, gw, gb = F.batch_norm2d_backward(
            grad, self._saved()["x"], self.weight.data, self.running_mean, self.running_var, training=True, eps=self.eps
        )
        self.weight.accumulate(gw)
        self.bias.accumulate(gb)
        return gi

    def _config(self):
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "dtype": _dtype_name(self.weight.data.dtype),
        }


class Dropout(Module):
    """Dropout with a counter-based mask: the k-th training forward uses ``seed + k``. Without
    ``seed=``, the seed is drawn from the global generator (:func:`imkern.manual_seed`), so two
    layers get different masks. Kept elements are scaled by ``1 / (1 - p)`` (as
    ``torch.nn.Dropout``); in eval mode the input passes through.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> d = nn.Dropout(0.5, seed=0)
        >>> sorted(set(d(np.ones(1000, np.float32)).tolist()))
        [0.0, 2.0]
        >>> d.eval()(np.ones(3, np.float32)).tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, p=0.5, *, seed=None):
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p, self.seed, self.calls = p, _random.resolve_seed(seed), 0

    def forward(self, x):
        if not self.training or self.p == 0:
            self._cache = None
            return x
        used = (self.seed + self.calls) & 0xFFFFFFFFFFFFFFFF
        self.calls += 1
        self._save(seed=used)
        return F.dropout(x, self.p, seed=used)

    def backward(self, grad):
        if self.p == 0:
            return grad
        return F.dropout_backward(grad, self.p, seed=self._saved()["seed"])

    def _config(self):
        return {"p": self.p}


class CrossEntropyLoss(Module):
    """Cross entropy of logits against class indices (:func:`imkern.nn.functional.cross_entropy`),
    as ``torch.nn.CrossEntropyLoss`` (``reduction``, ``label_smoothing``, ``ignore_index``);
    ``backward()`` gives d(loss)/d(logits).

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> loss = nn.CrossEntropyLoss()
        >>> round(float(loss(np.zeros((2, 4), np.float32), np.array([0, 3]))), 6)  # log(4)
        1.386294
        >>> loss.backward().shape
        (2, 4)
    """

    def __init__(self, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        self.kw = dict(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index)

    def forward(self, logits, target):  # type: ignore[override]  # a loss takes two inputs, as torch's
        self._cache = {"logits": logits, "target": target}  # a loss is always differentiable
        return F.cross_entropy(logits, target, **self.kw)

    def backward(self, grad=None):
        s = self._saved()
        g = F.cross_entropy_backward(s["logits"], s["target"], **self.kw)
        return g if grad is None else g * grad

    def _config(self):
        return dict(self.kw)


# Layers that imkern.nn.save can rebuild from their name and _config().
LAYERS = {
    cls.__name__: cls
    for cls in (
        Sequential,
        Identity,
        Conv2d,
        Linear,
        ReLU,
        LeakyReLU,
        Sigmoid,
        Tanh,
        GELU,
        Softmax,
        MaxPool2d,
        AvgPool2d,
        AdaptiveAvgPool2d,
        Flatten,
        BatchNorm2d,
        Dropout,
    )
}
