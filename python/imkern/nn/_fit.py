"""The training loop a user would otherwise write: :func:`fit`, :func:`evaluate`, :func:`predict`.

Batches come from an :class:`imkern.data.DataLoader` (or any iterable of ``(x, y)`` pairs of NCHW
float arrays and int64 labels) and move to the model's device (NumPy -> CuPy) when needed.
A tqdm progress bar per epoch shows the loss, the accuracy and images/s (``progress=False``
turns it off; without tqdm installed there is no bar).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from . import layers as L

__all__ = ["fit", "evaluate", "predict", "History"]


class History(dict):
    """Per-epoch lists: ``loss``, ``accuracy``, ``seconds``, ``images_per_second`` and, with a
    validation set, ``val_loss``, ``val_accuracy``; also readable as attributes
    (``history.loss``).

    Example:
        >>> from imkern.nn import History
        >>> h = History(loss=[0.9, 0.5], accuracy=[0.6, 0.8])
        >>> h.loss[-1], h["accuracy"][-1]
        (0.5, 0.8)
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _NoBar:
    def __init__(self, *a, **k):
        pass

    def update(self, n=1):
        pass

    def set_postfix_str(self, s, refresh=True):
        pass

    def close(self):
        pass


def _bar(progress: bool, **kw):
    if not progress:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(**kw)


def _to_device(a, device: str):
    if device == "cpu":
        return a.get() if L._is_cupy(a) else np.asarray(a)
    return L._move(a, device)


def _scalar(v) -> float:
    return float(v.get()) if L._is_cupy(v) else float(v)


def _batches(data, batch_size: int):
    """(x, y) batches from a loader / iterable of pairs, or from an ``(x, y)`` tuple of arrays."""
    if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape"):
        x, y = data
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
    else:
        yield from data


def _len(data, batch_size: int) -> Optional[int]:
    if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape"):
        return -(-len(data[0]) // batch_size)
    try:
        return len(data)
    except TypeError:
        return None


def evaluate(model: L.Module, data, *, loss=None, batch_size: int = 256) -> dict:
    """Mean loss and accuracy of ``model`` (in eval mode) over ``data`` (a loader or ``(x, y)``).

    Returns:
        ``{"loss": mean loss, "accuracy": fraction of argmax hits, "n": samples}``; the model's
        mode is restored afterwards.

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, seed=0))
        >>> r = nn.evaluate(m, (np.ones((5, 1, 2, 2), np.float32), np.zeros(5, np.int64)))
        >>> sorted(r), r["n"]
        (['accuracy', 'loss', 'n'], 5)
    """
    loss = loss or L.CrossEntropyLoss()
    was = model.training
    model.eval()
    dev = model.device
    total, correct, n = 0.0, 0, 0
    try:
        for xb, yb in _batches(data, batch_size):
            xb, yb = _to_device(xb, dev), _to_device(yb, dev)
            out = model(xb)
            total += _scalar(loss(out, yb)) * len(yb)
            correct += int(_scalar((out.argmax(1) == yb).sum()))
            n += len(yb)
    finally:
        loss._cache = None
        model.train(was)
    return {"loss": total / max(n, 1), "accuracy": correct / max(n, 1), "n": n}


def fit(
    model: L.Module,
    loader,
    *,
    epochs: int,
    optimizer,
    loss=None,
    val=None,
    scheduler=None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``loader``.

    Each step: forward, loss, backward, ``optimizer.step()``, ``optimizer.zero_grad()``. After
    each epoch: ``scheduler.step()`` (when given), the validation loss and accuracy (``val``: a
    loader or an ``(x, y)`` pair of arrays), then each callback ``cb(epoch, logs)`` with the
    epoch's figures; a callback returning ``False`` stops training (early stopping).

    Args:
        model: an :class:`imkern.nn.Module` ending in class logits ``(N, classes)``.
        loader: iterable of ``(x, y)`` batches (an :class:`imkern.data.DataLoader`).
        epochs: number of passes.
        optimizer: an :mod:`imkern.optim` optimizer over ``model.parameters()``.
        loss: default :class:`CrossEntropyLoss`.
        progress: show a tqdm bar per epoch (loss, accuracy, images/s).

    Returns:
        A :class:`History` of per-epoch figures.

    Example:
        >>> import numpy as np
        >>> import imkern
        >>> from imkern import nn, optim
        >>> from imkern.data import DataLoader
        >>> imkern.manual_seed(0)
        >>> x = np.random.default_rng(0).standard_normal((32, 1, 4, 4)).astype(np.float32)
        >>> y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)      # a learnable rule
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> loader = DataLoader(x, y, batch_size=8, shuffle=True, channels_first=True)
        >>> h = nn.fit(model, loader, epochs=20, optimizer=optim.SGD(model.parameters(), lr=0.5),
        ...            val=(x, y), progress=False)
        >>> len(h.loss), h.loss[-1] < h.loss[0], h.val_accuracy[-1] > 0.9
        (20, True, True)
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs: expected a non-negative int, got {epochs!r}")
    loss = loss or L.CrossEntropyLoss()
    hist = History(loss=[], accuracy=[], seconds=[], images_per_second=[])
    if val is not None:
        hist["val_loss"], hist["val_accuracy"] = [], []
    dev = model.device
    for epoch in range(int(epochs)):
        model.train()
        bar = _bar(
            progress,
            total=_len(loader, 1),
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
            leave=True,
            dynamic_ncols=True,
        )
        t0 = time.perf_counter()
        total, correct, n = 0.0, 0, 0
        try:
            for xb, yb in loader:
                xb, yb = _to_device(xb, dev), _to_device(yb, dev)
                out = model(xb)
                lv = loss(out, yb)
                model.backward_params(loss.backward())  # the input batch needs no gradient
                optimizer.step()
                optimizer.zero_grad()
                b = len(yb)
                total += _scalar(lv) * b
                correct += int(_scalar((out.argmax(1) == yb).sum()))
                n += b
                bar.update(1)
                dt = time.perf_counter() - t0
                bar.set_postfix_str(
                    f"loss={total / n:.4f} acc={correct / n:.3f} {n / max(dt, 1e-9):.0f} img/s", refresh=False
                )
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        logs = {
            "epoch": epoch,
            "loss": total / max(n, 1),
            "accuracy": correct / max(n, 1),
            "seconds": seconds,
            "images_per_second": n / max(seconds, 1e-9),
        }
        if scheduler is not None:
            scheduler.step()
        if val is not None:
            r = evaluate(model, val, loss=loss)
            logs["val_loss"], logs["val_accuracy"] = r["loss"], r["accuracy"]
        for k in hist:
            hist[k].append(logs[k])
        loss._cache = None
        stop = False
        for cb in callbacks:
            if cb(epoch, logs) is False:
                stop = True
        if stop:
            break
    model._cache = None
    for m in model.modules():
        m._cache = None
    return hist


def predict(model: L.Module, images, batch_size: int = 256, *, progress: bool = False):
    """Model outputs for ``images`` (an ``(N, C, H, W)`` array, or a loader of ``(x, y)`` or ``x``
    batches), in eval mode and in batches of ``batch_size``; returns an ``(N, ...)`` array of the
    model's device (argmax over axis 1 gives the classes of a classifier).

    Example:
        >>> import numpy as np
        >>> from imkern import nn
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, seed=0))
        >>> nn.predict(m, np.ones((5, 1, 2, 2), np.float32), batch_size=2).shape
        (5, 3)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    was = model.training
    model.eval()
    dev = model.device
    outs = []
    if hasattr(images, "shape"):
        chunks: Iterable = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        total = -(-len(images) // batch_size)
    else:
        chunks = (b[0] if isinstance(b, tuple) else b for b in images)
        total = _len(images, 1)  # type: ignore[assignment]  # None: a loader of unknown length
    bar = _bar(progress, total=total, desc="predict", unit="batch")
    try:
        for xb in chunks:
            outs.append(model(_to_device(xb, dev)))
            bar.update(1)
    finally:
        bar.close()
        model.train(was)
    if not outs:
        raise ValueError("images: nothing to predict (empty input)")
    xp = L._xp(outs[0])
    return xp.concatenate(outs)
