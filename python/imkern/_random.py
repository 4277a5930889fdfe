"""One seeding story for the whole package: a global generator that :func:`manual_seed` resets,
from which every consumer of randomness that was not given its own seed draws a private stream.

- ``imkern.manual_seed(s)`` reseeds the global generator (as ``torch.manual_seed``).
- A layer (Conv2d/Linear initialization, Dropout masks), an optimizer or a DataLoader created
  without ``seed=`` draws one 64-bit seed from the global generator at construction; its own
  stream (``numpy.random.Generator(PCG64(seed))`` or the counter seed of dropout) derives from it.
  So two ``Dropout(0.5)`` layers get different masks, and the same program after the same
  ``manual_seed`` builds the same model and draws the same masks and batches.
- ``seed=`` given explicitly pins that one object and does not consume the global generator.

The global generator starts from a fixed seed (:data:`DEFAULT_SEED`), as torch's does, so a
program without ``manual_seed`` is reproducible too.
"""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

__all__ = ["manual_seed", "initial_seed", "next_seed", "generator"]

DEFAULT_SEED = 67280421310721  # torch's default_rng_seed_val

_lock = threading.Lock()
_initial = DEFAULT_SEED
_gen = np.random.default_rng(DEFAULT_SEED)


def manual_seed(seed: int) -> None:
    """Reseed the global generator (``torch.manual_seed``): the layers, dropout masks and data
    loaders created afterwards without a ``seed=`` are reproducible for this seed.

    Example:
        >>> import imkern
        >>> from imkern import nn
        >>> imkern.manual_seed(0); a = nn.Linear(3, 2).weight.data
        >>> imkern.manual_seed(0); b = nn.Linear(3, 2).weight.data
        >>> bool((a == b).all())
        True
    """
    global _gen, _initial
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    with _lock:
        _initial = seed
        _gen = np.random.default_rng(seed)


def initial_seed() -> int:
    """The seed the global generator was last reset to (``torch.initial_seed``).

    Example:
        >>> import imkern
        >>> imkern.manual_seed(42); imkern.initial_seed()
        42
    """
    return _initial


def next_seed() -> int:
    """A fresh 63-bit seed drawn from the global generator (thread-safe)."""
    with _lock:
        return int(_gen.integers(0, 2**63 - 1))


def generator(seed: Optional[int] = None) -> np.random.Generator:
    """A private NumPy generator: from ``seed`` when given, else from :func:`next_seed`."""
    return np.random.default_rng(next_seed() if seed is None else resolve_seed(seed))


def resolve_seed(seed: Optional[int], name: str = "seed") -> int:
    """``seed`` validated as a non-negative int, or a fresh one from the global generator."""
    if seed is None:
        return next_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name}: expected an int or None, got {type(seed).__name__}")
    if int(seed) < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {int(seed)}")
    return int(seed)
