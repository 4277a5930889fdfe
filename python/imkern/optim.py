"""Optimizers and learning-rate schedules for :mod:`imkern.nn` models, with ``torch.optim``'s
update rules: :class:`SGD` (momentum, dampening, Nesterov, weight decay), :class:`Adam`,
:class:`AdamW`, :class:`StepLR`, :class:`CosineAnnealingLR`.

Each step updates a parameter and its state in one fused kernel (CPU: ``csrc/cpu/optim/``,
per ISA and threaded; CUDA: ``csrc/cuda/optim/`` on the caller's current CuPy stream), applying
torch's single-tensor algorithm in the same order of operations and the parameter's precision,
so a step equals torch's on the same gradients (tests/test_optim.py).

    >>> import numpy as np
    >>> from imkern import nn, optim
    >>> lin = nn.Linear(3, 1, seed=0)
    >>> opt = optim.Adam(lin.parameters(), lr=1e-2)
    >>> sched = optim.StepLR(opt, step_size=10, gamma=0.5)
    >>> x = np.ones((4, 3), np.float32)
    >>> _ = lin(x); _ = lin.backward(np.ones((4, 1), np.float32)); opt.step(); opt.zero_grad(); sched.step()
    >>> opt.param_groups[0]["lr"]
    0.01

``params`` is a list of :class:`imkern.nn.Parameter` (``model.parameters()``) or of dicts
``{"params": [...], "lr": ...}`` (parameter groups with their own options), as in torch.
"""

from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

from . import _arrays as A
from . import _core
from . import _driver as D
from .nn.layers import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR"]


def _number(v, name, lo=0.0, hi=None, hi_open=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < lo or (hi is not None and (v >= hi if hi_open else v > hi)):
        rng = f"[{lo}, {hi})" if hi_open else (f"[{lo}, {hi}]" if hi is not None else f">= {lo}")
        raise ValueError(f"{name}: expected a finite number in {rng}, got {v!r}")
    return v


def _kernel_arrays(p: Parameter, i: int):
    """(kind, param array, grad array) checked for the fused kernel."""
    data, grad = p.data, p.grad
    assert grad is not None  # step() passes only parameters that have a gradient
    kind = A.array_kind(data, f"params[{i}].data")
    if A.array_kind(grad, f"params[{i}].grad") != kind:
        raise TypeError(f"params[{i}]: the gradient is on another device than the parameter")
    if grad.dtype != data.dtype:
        raise TypeError(f"params[{i}]: gradient dtype {grad.dtype} differs from the parameter's {data.dtype}")
    if tuple(grad.shape) != tuple(data.shape):
        raise ValueError(
            f"params[{i}]: gradient shape {tuple(grad.shape)} differs from the parameter's {tuple(data.shape)}"
        )
    if not data.flags.c_contiguous:
        raise ValueError(f"params[{i}]: the parameter array must be C-contiguous (it is updated in place)")
    if kind == "numpy":
        if data.dtype not in (np.float32, np.float64) or not data.dtype.isnative:
            raise TypeError(f"params[{i}]: expected float32 or float64 parameters on the CPU, got {data.dtype}")
        if not data.flags.writeable:
            raise ValueError(f"params[{i}]: the parameter array is read-only")
        grad = np.ascontiguousarray(grad)
    else:
        if np.dtype(data.dtype).name not in ("float32", "float16", "bfloat16"):
            raise TypeError(f"params[{i}]: expected float32, float16 or bfloat16 parameters on CUDA, got {data.dtype}")
        import cupy

        grad = cupy.ascontiguousarray(grad)
    return kind, data, grad


class Optimizer:
    """Base class, as ``torch.optim.Optimizer``: parameter groups, per-parameter state,
    ``zero_grad``, ``step``.

    ``params`` is ``model.parameters()`` or a list of dicts ``{"params": [...], "lr": ...}``
    (per-group options override the defaults). Each step updates every parameter that has a
    gradient in place, with one fused kernel per parameter (C++ on NumPy arrays, CUDA on CuPy
    arrays; float32 and float64, the update computed in the parameter's dtype).

    Example:
        >>> import numpy as np
        >>> from imkern import nn, optim
        >>> fc = nn.Linear(2, 1, seed=0)
        >>> opt = optim.SGD([{"params": [fc.weight], "lr": 0.1}, {"params": [fc.bias]}], lr=0.01)
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.01]
    """

    def __init__(self, params, defaults: Dict[str, object]):
        if isinstance(params, Parameter):
            raise TypeError("params: expected an iterable of Parameters (model.parameters()), got one Parameter")
        params = list(params)
        if not params:
            raise ValueError("params: the optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups: List[dict] = []
        self.state: Dict[int, dict] = {}
        seen = set()
        for gi, g in enumerate(groups):
            if not isinstance(g, dict) or "params" not in g:
                raise TypeError(f"params: group {gi} must be a dict with a 'params' list")
            ps = list(g["params"])
            for j, p in enumerate(ps):
                if not isinstance(p, Parameter):
                    raise TypeError(
                        f"params: item {j} of group {gi} is a {type(p).__name__}, not an "
                        "imkern.nn.Parameter (pass model.parameters())"
                    )
                if id(p) in seen:
                    raise ValueError("params: a parameter appears more than once")
                seen.add(id(p))
            group = dict(self.defaults)
            group.update({k: v for k, v in g.items() if k != "params"})
            group["params"] = ps
            self._check_group(group)
            self.param_groups.append(group)

    def _check_group(self, group) -> None:
        group["lr"] = _number(group["lr"], "lr")

    def zero_grad(self) -> None:
        """Drop the gradients of every parameter (``grad = None``)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    kind, data, grad = _kernel_arrays(p, i)
                    if data.size:
                        self._update(kind, data, grad, self.state.setdefault(id(p), {}), group)
                i += 1

    def _update(self, kind, data, grad, state, group) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``::

        g = grad + weight_decay * param
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) or buf
        param -= lr * g

    (``maximize`` ascends.) The same arithmetic, in the parameter's dtype, as torch's
    single-tensor path.

    Example:
        >>> import numpy as np
        >>> from imkern import nn, optim
        >>> p = nn.Parameter(np.array([1.0, 2.0], np.float32))
        >>> p.grad = np.array([1.0, -1.0], np.float32)
        >>> opt = optim.SGD([p], lr=0.5)
        >>> opt.step(); p.data.tolist()
        [0.5, 2.5]
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, maximize=False
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=bool(nesterov),
                maximize=bool(maximize),
            ),
        )

    def _check_group(self, group) -> None:
        super()._check_group(group)
        group["momentum"] = _number(group["momentum"], "momentum")
        group["dampening"] = _number(group["dampening"], "dampening", lo=-math.inf)
        group["weight_decay"] = _number(group["weight_decay"], "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov: requires a momentum > 0 and zero dampening (as torch.optim.SGD)")

    def _update(self, kind, data, grad, state, group) -> None:
        mom = group["momentum"]
        first = mom != 0 and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = A.xp_of(kind).empty_like(data)
        buf = state.get("momentum_buffer")
        args = (
            group["lr"],
            mom,
            group["dampening"],
            group["weight_decay"],
            group["nesterov"],
            group["maximize"],
            first,
        )
        if kind == "numpy":
            _core.sgd_step(data, grad, buf, *args)
        else:
            with A.cuda_launch(data) as stream:
                _core.cuda_sgd_step(
                    A.DTYPE_CODES[np.dtype(data.dtype)], data.size, D.ptr(data), D.ptr(grad), D.ptr(buf), *args, stream
                )


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``weight_decay`` adds ``weight_decay * param`` to the
    gradient; ``amsgrad`` keeps the running maximum of the second moment)::

        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Example:
        >>> import numpy as np
        >>> from imkern import nn, optim
        >>> p = nn.Parameter(np.array([1.0], np.float32))
        >>> p.grad = np.array([3.0], np.float32)
        >>> opt = optim.Adam([p], lr=0.1)
        >>> opt.step(); round(float(p.data[0]), 5)  # the first step moves by lr
        0.9
    """

    _decoupled = False

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *, maximize=False
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=bool(amsgrad),
                maximize=bool(maximize),
            ),
        )

    def _check_group(self, group) -> None:
        super()._check_group(group)
        b = tuple(group["betas"])
        if len(b) != 2:
            raise ValueError(f"betas: expected two numbers, got {group['betas']!r}")
        group["betas"] = (
            _number(b[0], "betas[0]", 0.0, 1.0, hi_open=True),
            _number(b[1], "betas[1]", 0.0, 1.0, hi_open=True),
        )
        group["eps"] = _number(group["eps"], "eps")
        group["weight_decay"] = _number(group["weight_decay"], "weight_decay")

    def _update(self, kind, data, grad, state, group) -> None:
        xp = A.xp_of(kind)
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(data)
            state["exp_avg_sq"] = xp.zeros_like(data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(data)
        state["step"] += 1
        t = float(state["step"])
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        step_size = lr / (1 - beta1**t)
        bias2_sqrt = (1 - beta2**t) ** 0.5
        vmax = state.get("max_exp_avg_sq") if group["amsgrad"] else None
        args = (
            lr,
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            step_size,
            bias2_sqrt,
            self._decoupled,
            group["amsgrad"],
            group["maximize"],
        )
        if kind == "numpy":
            _core.adam_step(data, grad, state["exp_avg"], state["exp_avg_sq"], vmax, *args)
        else:
            with A.cuda_launch(data) as stream:
                _core.cuda_adam_step(
                    A.DTYPE_CODES[np.dtype(data.dtype)],
                    data.size,
                    D.ptr(data),
                    D.ptr(grad),
                    D.ptr(state["exp_avg"]),
                    D.ptr(state["exp_avg_sq"]),
                    D.ptr(vmax),
                    *args,
                    stream,
                )


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay (``param *= 1 - lr *
    weight_decay`` before the update; default ``weight_decay=1e-2``).

    Example:
        >>> import numpy as np
        >>> from imkern import nn, optim
        >>> p = nn.Parameter(np.array([1.0], np.float32))
        >>> p.grad = np.array([0.0], np.float32)
        >>> opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
        >>> opt.step(); round(float(p.data[0]), 5)  # only the decay: 1 - 0.1 * 0.5
        0.95
    """

    _decoupled = True

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *, maximize=False
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


# ---- learning-rate schedules -----------------------------------------------------------------


class LRScheduler:
    """Base class, as ``torch.optim.lr_scheduler.LRScheduler``: call :meth:`step` once per epoch
    after the optimizer's steps; the learning rates follow torch's (chainable) recurrences.
    Subclasses implement ``get_lr()``.

    Example:
        >>> import numpy as np
        >>> from imkern import nn, optim
        >>> opt = optim.SGD(nn.Linear(2, 1, seed=0).parameters(), lr=1.0)
        >>> sched = optim.StepLR(opt, step_size=1, gamma=0.5)
        >>> sched.step(); sched.get_last_lr()
        [0.5]
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an imkern.optim optimizer, got {type(optimizer).__name__}")
        if last_epoch != -1:
            raise ValueError("last_epoch: resuming a schedule is not supported; create it with last_epoch=-1")
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def get_lr(self) -> List[float]:  # pragma: no cover - abstract
        """The learning rate of each group for epoch ``last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set each group's learning rate."""
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> List[float]:
        """The learning rates the last :meth:`step` set, one per group."""
        return list(self._last_lr)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``).

    Example:
        >>> from imkern import nn, optim
        >>> opt = optim.SGD(nn.Linear(2, 1, seed=0).parameters(), lr=1.0)
        >>> sched = optim.StepLR(opt, step_size=2, gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 6)); sched.step()
        >>> lrs
        [1.0, 1.0, 0.1, 0.1]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
            raise ValueError(f"step_size: expected a positive int, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), _number(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [g["lr"] for g in groups]
        return [g["lr"] * self.gamma for g in groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` epochs
    (``torch.optim.lr_scheduler.CosineAnnealingLR``, its recurrence and its restarts):
    ``eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

    Example:
        >>> from imkern import nn, optim
        >>> opt = optim.SGD(nn.Linear(2, 1, seed=0).parameters(), lr=1.0)
        >>> sched = optim.CosineAnnealingLR(opt, T_max=2)
        >>> lrs = []
        >>> for epoch in range(3):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 6)); sched.step()
        >>> lrs
        [1.0, 0.5, 0.0]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)) or T_max < 1:
            raise ValueError(f"T_max: expected a positive int, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), _number(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups, e, T, lo = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if e == 0:
            return [g["lr"] for g in groups]
        if (e - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (base - lo) * (1 - math.cos(math.pi / T)) / 2 for base, g in zip(self.base_lrs, groups)]
        return [
            (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (g["lr"] - lo) + lo
            for g in groups
        ]
