"""imkern.data: the loader's batches equal a plain NumPy pipeline for a fixed seed, with and without
the background thread; augmentations are reproducible and equal their NumPy definitions; errors
in a worker reach the caller; an abandoned iteration stops the thread."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import imkern
from imkern.data import ColorJitter, DataLoader, RandomAffine, RandomCrop, RandomHorizontalFlip


def _need_transform(*names):
    t = getattr(imkern, "transform", None)
    for n in names:
        if t is None or not hasattr(t, n):
            pytest.skip(f"needs imkern.transform.{n}")


def _numpy_epoch(images, labels, bs, seed, epoch, mean, std, shuffle=True):
    order = np.random.default_rng([seed, epoch]).permutation(len(images)) if shuffle else np.arange(len(images))
    imgs = images if images.ndim == 4 else images[..., None]
    out = []
    for i in range(0, len(images), bs):
        idx = order[i:i + bs]
        x = (imgs[idx].astype(np.float64) / 255.0 - np.asarray(mean)) / np.asarray(std)
        out.append((x.transpose(0, 3, 1, 2), labels[idx]))
    return out


@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("shape", [(23, 7, 5), (23, 6, 4, 3)])
def test_batches_equal_numpy_pipeline(rng, prefetch, shape):
    _need_transform("to_tensor")
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = rng.integers(0, 10, shape[0])
    c = 1 if len(shape) == 3 else shape[-1]
    mean, std = [0.4] * c, [0.25] * c
    dl = DataLoader(images, labels, 5, shuffle=True, seed=11, mean=mean, std=std, prefetch=prefetch)
    assert len(dl) == 5
    for epoch in range(2):
        got = list(dl)
        want = _numpy_epoch(images, labels, 5, 11, epoch, mean, std)
        assert len(got) == len(want)
        for (x, y), (ex, ey) in zip(got, want):
            assert x.dtype == np.float32 and x.shape == ex.shape and y.dtype == np.int64
            np.testing.assert_allclose(x, ex, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(y, ey)


def test_channels_first_tensors_and_options(rng):
    x = rng.standard_normal((10, 2, 3, 3)).astype(np.float32)
    y = np.arange(10)
    dl = DataLoader(x, y, 4, channels_first=True, drop_last=True)
    batches = list(dl)
    assert len(dl) == len(batches) == 2
    np.testing.assert_array_equal(batches[1][0], x[4:8])
    dl = DataLoader(x, None, 3, shuffle=True, seed=2, channels_first=True, mean=1.0, std=2.0)
    xs = list(dl)
    order = np.random.default_rng([2, 0]).permutation(10)
    np.testing.assert_allclose(np.concatenate(xs), (x[order] - 1) / 2, rtol=1e-6)


def test_seed_from_manual_seed(rng):
    x = rng.standard_normal((20, 1, 2, 2)).astype(np.float32)
    imkern.manual_seed(4)
    a = [b[1] for b in DataLoader(x, np.arange(20), 5, shuffle=True, channels_first=True)]
    imkern.manual_seed(4)
    b = [b[1] for b in DataLoader(x, np.arange(20), 5, shuffle=True, channels_first=True)]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))


def test_augmentations_equal_numpy_definitions(rng):
    _need_transform("pad", "crop", "flip")
    images = rng.integers(0, 256, (6, 8, 9, 3), dtype=np.uint8)
    got = RandomCrop((8, 9), padding=2)(images, np.random.default_rng(5))
    r = np.random.default_rng(5)
    tops, lefts = r.integers(0, 5, 6), r.integers(0, 5, 6)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    want = np.stack([padded[i, t:t + 8, l:l + 9] for i, (t, l) in enumerate(zip(tops, lefts))])
    np.testing.assert_array_equal(got, want)
    got = RandomHorizontalFlip(0.5)(images, np.random.default_rng(6))
    sel = np.random.default_rng(6).random(6) < 0.5
    want = np.where(sel[:, None, None, None], images[:, :, ::-1], images)
    np.testing.assert_array_equal(got, want)
    j = ColorJitter(0.5, 0.5)(images, np.random.default_rng(7))
    assert j.dtype == np.uint8 and j.shape == images.shape
    assert np.array_equal(ColorJitter()(images, rng), images)


def test_augmented_loader_is_reproducible(rng):
    _need_transform("to_tensor", "pad", "crop", "flip")
    images = rng.integers(0, 256, (17, 8, 8, 3), dtype=np.uint8)
    aug = [RandomCrop(8, padding=1), RandomHorizontalFlip(), ColorJitter(0.2, 0.2)]
    a = [x for x, _ in DataLoader(images, np.arange(17), 4, shuffle=True, augment=aug, seed=3)]
    b = [x for x, _ in DataLoader(images, np.arange(17), 4, shuffle=True, augment=aug, seed=3, prefetch=False)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_worker_errors_reach_the_caller_and_early_exit_stops_the_thread(rng):
    x = rng.standard_normal((40, 1, 2, 2)).astype(np.float32)

    def bad(images, r):
        raise RuntimeError("augment exploded")

    imgs = rng.integers(0, 256, (8, 4, 4), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="augment exploded"):
        list(DataLoader(imgs, None, 2, augment=bad))
    before = threading.active_count()
    for _ in range(5):
        for _batch in DataLoader(x, None, 2, channels_first=True):
            break
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def test_bad_arguments(rng):
    x = np.zeros((4, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, None, 0)
    with pytest.raises(ValueError, match="labels"):
        DataLoader(x, np.arange(3), 2)
    with pytest.raises(ValueError, match="labels"):
        DataLoader(x, np.zeros(4), 2)
    with pytest.raises(ValueError, match="images"):
        DataLoader(np.zeros(4), None, 2)
    with pytest.raises(TypeError, match="images"):
        DataLoader([1, 2], None, 2)
    with pytest.raises(TypeError, match="augment"):
        DataLoader(x, None, 2, augment=3)
    with pytest.raises(ValueError, match="channels_first"):
        DataLoader(x, None, 2, channels_first=True)


def test_random_affine_equals_warp_affine_per_image(rng):
    _need_transform("warp_affine")
    images = rng.integers(0, 256, (5, 11, 13, 3), dtype=np.uint8)
    before = images.copy()
    aug = RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1))
    got = aug(images, np.random.default_rng(8))
    ms = aug.matrices(5, 11, 13, np.random.default_rng(8))
    for i in range(5):
        want = imkern.transform.warp_affine(images[i], ms[i], (11, 13))
        np.testing.assert_array_equal(got[i], want)
    # the matrix is a rotation + scale about the center, then a shift (as torchvision's)
    a, b = ms[:, 0, 0], ms[:, 0, 1]
    np.testing.assert_allclose(ms[:, 1, 1], a)
    np.testing.assert_allclose(ms[:, 1, 0], -b)
    assert np.all((np.hypot(a, b) >= 0.9 - 1e-12) & (np.hypot(a, b) <= 1.1 + 1e-12))
    assert np.all(np.abs(np.degrees(np.arctan2(b, a))) <= 10 + 1e-9)
    # the identity draws give the input back
    np.testing.assert_array_equal(RandomAffine()(images, np.random.default_rng(1)), images)
    np.testing.assert_array_equal(images, before)


@pytest.mark.parametrize("kwargs", [dict(degrees=-1), dict(translate=(2, 0)), dict(scale=(0, 1)),
                                    dict(scale=(1.2, 1.0)), dict(translate=(0.1,))])
def test_random_affine_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        RandomAffine(**kwargs)
