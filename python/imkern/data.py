"""Batches for training: :class:`DataLoader` turns images and labels into shuffled, augmented
``(N, C, H, W)`` float32 batches (through :func:`imkern.transform.to_tensor`), preparing the next
batch in a background thread while the current one trains.

Augmentations work on the images (``(N, H, W, C)``, any dtype) before the conversion to a
tensor, on :mod:`imkern.transform`: :class:`RandomCrop` (with padding), :class:`RandomHorizontalFlip`,
:class:`ColorJitter` (brightness, contrast). Each is a callable ``aug(images, rng) -> images``;
any such callable (or a list of them) can be passed as ``augment``.

Randomness: the loader's seed (``seed=``, else one drawn from the global generator of
:func:`imkern.manual_seed`) fixes the shuffle of epoch ``e`` (``default_rng([seed, e])``) and the
augmentation of batch ``b`` of epoch ``e`` (``default_rng([seed, e, b])``), so batches are
reproducible whatever the prefetching thread's timing.

    >>> import numpy as np
    >>> from imkern.data import DataLoader
    >>> tensors = np.zeros((10, 1, 8, 8), np.float32); labels = np.arange(10)
    >>> dl = DataLoader(tensors, labels, batch_size=4, shuffle=True, seed=0, channels_first=True)
    >>> [(x.shape, y.shape) for x, y in dl][-1]
    ((2, 1, 8, 8), (2,))
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Optional, Sequence

import numpy as np

from . import _random

__all__ = ["DataLoader", "RandomCrop", "RandomHorizontalFlip", "RandomAffine", "ColorJitter", "Compose"]


def _transform():
    from . import transform

    return transform


class Compose:
    """Apply augmentations in order (a list given as ``augment=`` becomes one of these).

    Example:
        >>> import numpy as np
        >>> from imkern import data
        >>> aug = data.Compose([data.RandomHorizontalFlip(1.0), data.RandomCrop(2)])
        >>> aug(np.zeros((3, 4, 4, 1), np.uint8), np.random.default_rng(0)).shape
        (3, 2, 2, 1)
    """

    def __init__(self, augmentations: Sequence[Callable]):
        self.augmentations = list(augmentations)
        for a in self.augmentations:
            if not callable(a):
                raise TypeError(f"augment: {a!r} is not callable (expected aug(images, rng) -> images)")

    def __call__(self, images, rng):
        for a in self.augmentations:
            images = a(images, rng)
        return images


class RandomCrop:
    """Pad each image by ``padding`` pixels (``border`` / ``cval`` as :func:`imkern.transform.pad`)
    and cut a random ``size`` window from it (torchvision's ``RandomCrop(size, padding)``).

    Works on ``(N, H, W, C)`` batches of any dtype; each image gets its own window, drawn from
    the ``rng`` the loader passes.

    Example:
        >>> import numpy as np
        >>> from imkern import data
        >>> crop = data.RandomCrop(32, padding=4)
        >>> crop(np.zeros((2, 32, 32, 3), np.uint8), np.random.default_rng(0)).shape
        (2, 32, 32, 3)
    """

    def __init__(self, size, padding=0, *, border="constant", cval=0):
        self.size = (int(size), int(size)) if np.ndim(size) == 0 else tuple(int(v) for v in size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size: expected a positive int or (h, w), got {size!r}")
        if int(padding) < 0:
            raise ValueError(f"padding: expected a non-negative int, got {padding!r}")
        self.padding, self.border, self.cval = int(padding), border, cval

    def __call__(self, images, rng):
        T = _transform()
        p = self.padding
        padded = T.pad(images, ((p, p), (p, p)), border=self.border, cval=self.cval) if p else images
        n, H, W = padded.shape[:3]
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"RandomCrop: size {self.size} is larger than the padded image ({H}, {W})")
        tops = rng.integers(0, H - h + 1, n)
        lefts = rng.integers(0, W - w + 1, n)
        out = np.empty((n, h, w) + padded.shape[3:], padded.dtype)
        for i in range(n):
            T.crop(padded[i], int(tops[i]), int(lefts[i]), h, w, out=out[i])
        return out


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (torchvision's
    ``RandomHorizontalFlip(p)``), through :func:`imkern.transform.flip`.

    Example:
        >>> import numpy as np
        >>> from imkern import data
        >>> x = np.arange(3, dtype=np.uint8).reshape(1, 1, 3, 1)
        >>> data.RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0)).ravel().tolist()
        [2, 1, 0]
    """

    def __init__(self, p=0.5):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, images, rng):
        sel = np.flatnonzero(rng.random(len(images)) < self.p)
        if sel.size:
            images = np.array(images, copy=True)
            images[sel] = _transform().flip(np.ascontiguousarray(images[sel]), axis=1)
        return images


class RandomAffine:
    """A small random affine warp per image (torchvision's ``RandomAffine(degrees, translate,
    scale)``) through :func:`imkern.transform.warp_affine`: a rotation by an angle in
    ``[-degrees, degrees]`` and a scale factor in ``scale`` (a ``(lo, hi)`` range) about the
    image center, then a shift of up to ``translate[0] * W`` / ``translate[1] * H`` pixels;
    the output keeps the input's size, pixels from outside follow ``border`` / ``cval``.

    Example:
        >>> import numpy as np
        >>> from imkern import data
        >>> aug = data.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
        >>> aug(np.zeros((2, 16, 16, 3), np.uint8), np.random.default_rng(0)).shape
        (2, 16, 16, 3)
        >>> data.RandomAffine().matrices(1, 4, 4, np.random.default_rng(0)).tolist()  # the identity
        [[[1.0, 0.0, 0.0], [-0.0, 1.0, 0.0]]]
    """

    def __init__(
        self,
        degrees=0.0,
        translate=(0.0, 0.0),
        scale=(1.0, 1.0),
        *,
        interpolation="bilinear",
        border="constant",
        cval=0,
    ):
        self.degrees = float(degrees)
        self.translate = tuple(float(t) for t in translate)
        self.scale = tuple(float(v) for v in scale)
        if self.degrees < 0:
            raise ValueError(f"degrees: expected a non-negative number, got {degrees!r}")
        if len(self.translate) != 2 or not all(0.0 <= t <= 1.0 for t in self.translate):
            raise ValueError(f"translate: expected (tx, ty) fractions in [0, 1], got {translate!r}")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale: expected a range (lo, hi) with 0 < lo <= hi, got {scale!r}")
        self.interpolation, self.border, self.cval = interpolation, border, cval

    def matrices(self, n, h, w, rng):
        """The ``(n, 2, 3)`` source-to-output matrices drawn from ``rng`` (what ``__call__`` uses)."""
        angle = np.deg2rad(rng.uniform(-self.degrees, self.degrees, n))
        s = rng.uniform(self.scale[0], self.scale[1], n)
        tx = rng.uniform(-self.translate[0], self.translate[0], n) * w
        ty = rng.uniform(-self.translate[1], self.translate[1], n) * h
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        a, b = s * np.cos(angle), s * np.sin(angle)
        m = np.empty((n, 2, 3))
        m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = a, b, (1 - a) * cx - b * cy + tx
        m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = -b, a, b * cx + (1 - a) * cy + ty
        return m

    def __call__(self, images, rng):
        T = _transform()
        n, h, w = images.shape[:3]
        out = np.empty_like(images)
        for i, m in enumerate(self.matrices(n, h, w, rng)):
            T.warp_affine(
                images[i], m, (h, w), interpolation=self.interpolation, border=self.border, cval=self.cval, out=out[i]
            )
        return out


class ColorJitter:
    """Random brightness and contrast, as torchvision's ``ColorJitter(brightness, contrast)``:
    brightness scales the image by a factor in ``[1 - brightness, 1 + brightness]``; contrast
    blends it with its mean gray level by a factor in ``[1 - contrast, 1 + contrast]``; results
    are clipped to the dtype's range (integers rounded).

    Example:
        >>> import numpy as np
        >>> from imkern import data
        >>> jitter = data.ColorJitter(brightness=0.5)
        >>> y = jitter(np.full((4, 2, 2, 3), 100, np.uint8), np.random.default_rng(0))
        >>> y.dtype, bool(((y >= 50) & (y <= 150)).all())
        (dtype('uint8'), True)
    """

    def __init__(self, brightness=0.0, contrast=0.0):
        self.brightness, self.contrast = float(brightness), float(contrast)
        if self.brightness < 0 or self.contrast < 0:
            raise ValueError("brightness, contrast: expected non-negative numbers")

    def __call__(self, images, rng):
        n = len(images)
        x = images.astype(np.float32)
        hi = float(np.iinfo(images.dtype).max) if images.dtype.kind in "ui" else 1.0
        shape = (n,) + (1,) * (images.ndim - 1)
        if self.brightness:
            x *= rng.uniform(1 - self.brightness, 1 + self.brightness, n).astype(np.float32).reshape(shape)
            np.clip(x, 0, hi, out=x)
        if self.contrast:
            c = rng.uniform(1 - self.contrast, 1 + self.contrast, n).astype(np.float32).reshape(shape)
            if x.ndim == 4 and x.shape[-1] == 3:
                gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
            else:
                gray = x.reshape(n, -1)
            m = gray.reshape(n, -1).mean(axis=1).reshape(shape)
            x = c * x + (1 - c) * m
            np.clip(x, 0, hi, out=x)
        if images.dtype.kind in "ui":
            return np.rint(x).astype(images.dtype)
        return x.astype(images.dtype)


class DataLoader:
    """Shuffled, augmented mini-batches of ``(x, y)``: ``x`` is ``(B, C, H, W)`` float32 from
    :func:`imkern.transform.to_tensor` (with ``mean``/``std``), ``y`` the int64 labels.

    Args:
        images: ``(N, H, W)`` (one channel) or ``(N, H, W, C)`` images of any dtype; or, with
            ``channels_first=True``, an ``(N, C, H, W)`` float tensor used as it is.
        labels: ``(N,)`` integer class indices (or None: batches are ``x`` only).
        batch_size: images per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: a new order every epoch.
        augment: an augmentation ``aug(images, rng) -> images`` or a list of them (images only).
        seed: fixes shuffling and augmentation (default: drawn from :func:`imkern.manual_seed`'s
            global generator).
        mean, std: per-channel normalization in the [0, 1] scale (to_tensor's).
        prefetch: prepare the next batch in a background thread.
        drop_last: drop the last, smaller batch.
        channels_first: ``images`` is already an ``(N, C, H, W)`` float tensor (used as it is,
            then normalized by ``mean``/``std``; no augmentation).

    Example:
        >>> import numpy as np
        >>> from imkern.data import DataLoader, RandomHorizontalFlip
        >>> images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
        >>> dl = DataLoader(images, np.arange(10) % 2, batch_size=4, shuffle=True, seed=0,
        ...                 mean=0.5, std=0.25, augment=[RandomHorizontalFlip()])
        >>> len(dl), [(x.shape, x.dtype.name, y.dtype.name) for x, y in dl][0]
        (3, ((4, 3, 8, 8), 'float32', 'int64'))
    """

    def __init__(
        self,
        images,
        labels=None,
        batch_size: int = 32,
        *,
        shuffle: bool = False,
        augment=None,
        seed: Optional[int] = None,
        mean=None,
        std=None,
        drop_last: bool = False,
        prefetch: bool = True,
        channels_first: bool = False,
    ):
        if not hasattr(images, "shape") or not hasattr(images, "dtype"):
            raise TypeError(f"images: expected an array, got {type(images).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if channels_first:
            if images.ndim != 4 or images.dtype.kind != "f":
                raise ValueError(
                    f"images: channels_first needs an (N, C, H, W) float tensor, got "
                    f"{tuple(images.shape)} {images.dtype}"
                )
            if augment is not None:
                raise ValueError("augment: augmentations work on (N, H, W, C) images, not on channels_first tensors")
        elif images.ndim == 3:
            images = images[..., None]
        elif images.ndim != 4:
            raise ValueError(f"images: expected (N, H, W) or (N, H, W, C), got shape {tuple(images.shape)}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.ndim != 1 or labels.dtype.kind not in "iu":
                raise ValueError(f"labels: expected a 1-D integer array, got shape {labels.shape} {labels.dtype}")
            if len(labels) != len(images):
                raise ValueError(f"labels: {len(labels)} labels for {len(images)} images")
            if (
                not np.can_cast(labels.dtype, np.int64, "safe")
                and len(labels)
                and labels.max() > np.iinfo(np.int64).max
            ):
                # uint64 values past int64 would wrap (2**64 - 100 becomes ignore_index -100).
                raise ValueError(f"labels: {int(labels.max())} does not fit in int64 (the labels' type)")
            labels = labels.astype(np.int64)
        if isinstance(augment, (list, tuple)):
            augment = Compose(augment)
        elif augment is not None and not callable(augment):
            raise TypeError("augment: expected a callable aug(images, rng) -> images, or a list of them")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.augment = int(batch_size), bool(shuffle), augment
        self.seed = _random.resolve_seed(seed)
        self.mean, self.std = mean, std
        self.drop_last, self.prefetch, self.channels_first = bool(drop_last), bool(prefetch), bool(channels_first)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.images)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(n)
        return np.arange(n)

    def _batch(self, epoch: int, b: int, idx: np.ndarray):
        if self.channels_first:
            x = np.ascontiguousarray(self.images[idx], dtype=np.float32)
            if self.mean is not None or self.std is not None:
                c = x.shape[1]
                m = np.broadcast_to(np.asarray(0.0 if self.mean is None else self.mean, np.float32), (c,))
                s = np.broadcast_to(np.asarray(1.0 if self.std is None else self.std, np.float32), (c,))
                x = (x - m[:, None, None]) / s[:, None, None]
        else:
            imgs = self.images[idx]
            if self.augment is not None:
                imgs = self.augment(imgs, np.random.default_rng([self.seed, epoch, b]))
            x = _transform().to_tensor(np.ascontiguousarray(imgs), mean=self.mean, std=self.std)
        if self.labels is None:
            return x
        return x, self.labels[idx]

    def _plan(self, epoch: int):
        order = self._order(epoch)
        bs = self.batch_size
        for b in range(len(self)):
            yield b, order[b * bs : (b + 1) * bs]

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        if not self.prefetch:
            for b, idx in self._plan(epoch):
                yield self._batch(epoch, b, idx)
            return
        q: "queue.Queue" = queue.Queue(maxsize=2)
        stop = threading.Event()
        done = object()

        def work():
            try:
                for b, idx in self._plan(epoch):
                    item = self._batch(epoch, b, idx)
                    while not stop.is_set():
                        try:
                            q.put(("ok", item), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(("ok", done))
            except BaseException as e:  # handed to the consumer, raised there
                q.put(("err", e))

        t = threading.Thread(target=work, name="imkern-dataloader", daemon=True)
        t.start()
        try:
            while True:
                kind, item = q.get()
                if kind == "err":
                    raise item
                if item is done:
                    break
                yield item
        finally:
            stop.set()
            while t.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                t.join(timeout=0.05)
