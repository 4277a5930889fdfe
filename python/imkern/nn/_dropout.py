"""Dropout, as torch.nn.functional.dropout, with a reproducible counter-based mask.

The mask is the hash of docs/design.md, identical on the CPU, on CUDA and in
:mod:`imkern.reference.nn`: element ``i`` of the flat (C-order) array is kept when
``u(i) >= p``, ``u(i) = (splitmix64(seed + i * 0x9E3779B97F4A7C15) >> 40) * 2**-24``, and
kept values are scaled by ``1 / (1 - p)``.
"""

from __future__ import annotations

from .. import _arrays as A
from .. import _core, _random
from .. import _driver as D
from . import _checks as K

__all__ = ["dropout", "dropout_backward"]


def _seed(seed) -> int:
    if seed is None:
        raise TypeError(
            "seed: required (an int): the gradient needs the forward's mask, a function of "
            "(seed, element index); pass the seed given to dropout"
        )
    return A.as_int(seed, "seed") % (1 << 64)


@K.torch_names(input="x")
def dropout(x, p=0.5, training=True, *, seed=None, out=None):
    """Dropout with a reproducible counter-based mask, as ``torch.nn.functional.dropout``
    (same arguments and defaults; ``input=`` accepted).

    Without ``seed=`` the mask's seed is drawn from the package's global generator
    (:func:`imkern.manual_seed`, as torch's masks come from ``torch.manual_seed``); pass
    ``seed=`` to pin the mask, e.g. to apply the same one in :func:`dropout_backward`.

    Element ``i`` of the flat C-order array is zeroed when ``u(i) < p`` (see the module
    docstring) and kept elements are scaled by ``1 / (1 - p)``; ``p == 1`` zeroes everything.
    The same ``seed`` and shape give the same mask on the CPU, on CUDA and in the reference.

    Args:
        x: array of any shape; float32 or float64 (NumPy), float32/float16/bfloat16 (CuPy).
        p: drop probability in ``[0, 1]``.
        training: when False, returns a copy of ``x`` (default True, as torch).
        seed: int (taken modulo 2**64), or None: drawn from the global generator.
        out: optional array of ``x``'s shape and dtype.

    Returns:
        An array of ``x``'s shape and dtype.

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> y = F.dropout(np.ones(1000, np.float32), 0.5, seed=7)
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
    """
    kind, dt = K.check_float(x, "x")
    p = K.as_prob(p, "p")
    training = K.as_bool(training, "training")
    seed = _random.next_seed() if seed is None and training else _seed(0 if seed is None else seed)
    if not training:
        target, final = D.output(out, [x], kind, dt, x.shape)
        if x.size:
            A.xp_of(kind).copyto(target, x)
        return D.finish(target, final)

    def cpu(xc, y):
        _core.dropout(xc, y, seed, p)

    def cuda(xc, y, stream):
        _core.cuda_dropout(A.DTYPE_CODES[dt], xc.size, D.ptr(xc), D.ptr(y), p, seed, stream)

    return D.run_op(kind, [x], out, cpu, cuda, shape=x.shape, dtype=dt)


def dropout_backward(grad_output, p, *, seed, out=None):
    """Gradient of :func:`dropout`: ``grad_output`` through the same mask and scale (same seed).

    Example:
        >>> import numpy as np
        >>> from imkern.nn import functional as F
        >>> x = np.ones(8)
        >>> bool((F.dropout_backward(x, 0.5, seed=3) == F.dropout(x, 0.5, seed=3)).all())
        True
    """
    return dropout(grad_output, p, seed=_seed(seed), training=True, out=out)
