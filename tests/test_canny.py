"""imkern.filters.canny: the same edge map as cv2.Canny on photographs and random images, on
every device and ISA, and against the NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

THRESHOLDS = [(50, 150), (100, 200), (10, 30), (0, 0), (200, 600), (30.7, 90.2)]


def _photos():
    data = pytest.importorskip("skimage.data")
    return {"camera": data.camera(), "coins": data.coins(), "astronaut": data.astronaut(),
            "astronaut_gray": np.ascontiguousarray(data.astronaut()[..., 1])}


def _scaled(lo, hi, k):
    return (lo * 16, hi * 16) if k == 7 else (lo, hi)


@pytest.mark.parametrize("ksize", [3, 5, 7])
@pytest.mark.parametrize("l2", [False, True])
def test_canny_matches_opencv_on_photos(xp, ksize, l2):
    cv2 = pytest.importorskip("cv2")
    for name, img in _photos().items():
        X = xp.asarray(img)
        for lo, hi in THRESHOLDS:
            lo, hi = _scaled(lo, hi, ksize)
            ref = cv2.Canny(img, lo, hi, apertureSize=ksize, L2gradient=l2)
            got = F.canny(X, lo, hi, ksize=ksize, l2gradient=l2)
            assert got.dtype == np.uint8 and got.shape == img.shape[:2] and type(got) is type(X)
            diff = int((to_numpy(got) != ref).sum())
            assert diff == 0, f"{name} k={ksize} l2={l2} ({lo}, {hi}): {diff} pixels differ"


@pytest.mark.parametrize("ksize", [3, 5, 7])
def test_canny_matches_opencv_random(xp, rng, ksize):
    cv2 = pytest.importorskip("cv2")
    for shape in [(1, 1), (1, 9), (7, 1), (2, 2), (3, 257), (64, 61), (101, 97, 3), (40, 33, 2), (17, 19, 4)]:
        img = random_array(rng, shape, np.uint8)
        if shape[0] > 8 and shape[1] > 8:
            img = cv2.GaussianBlur(img, (5, 5), 1.5)  # structured edges too, not only noise
        X = xp.asarray(img)
        for l2 in (False, True):
            for lo, hi in THRESHOLDS:
                lo, hi = _scaled(lo, hi, ksize)
                ref = cv2.Canny(img, lo, hi, apertureSize=ksize, L2gradient=l2)
                got = to_numpy(F.canny(X, lo, hi, ksize=ksize, l2gradient=l2))
                assert np.array_equal(got, ref), f"{shape} k={ksize} l2={l2} ({lo}, {hi})"


def test_canny_matches_reference(xp, rng):
    for shape in [(1, 1), (5, 6), (23, 29), (13, 17, 3), (2, 11, 14, 3)]:
        img = random_array(rng, shape, np.uint8)
        for ksize in (3, 5, 7):
            for l2 in (False, True):
                lo, hi = _scaled(40, 120, ksize)
                got = to_numpy(F.canny(xp.asarray(img), lo, hi, ksize=ksize, l2gradient=l2))
                assert np.array_equal(got, R.canny(img, lo, hi, ksize=ksize, l2gradient=l2)), (shape, ksize, l2)


def test_canny_isa_threads(rng, isa, threads):
    cv2 = pytest.importorskip("cv2")
    img = cv2.GaussianBlur(random_array(rng, (517, 389), np.uint8), (7, 7), 2.0)
    for ksize, l2 in [(3, False), (5, True), (7, False)]:
        lo, hi = _scaled(5, 20, ksize)
        assert np.array_equal(F.canny(img, lo, hi, ksize=ksize, l2gradient=l2),
                              cv2.Canny(img, lo, hi, apertureSize=ksize, L2gradient=l2))


def test_canny_batch_views_out(xp, rng):
    cv2 = pytest.importorskip("cv2")
    imgs = np.stack([cv2.GaussianBlur(random_array(rng, (45, 52, 3), np.uint8), (5, 5), 1.0) for _ in range(3)])
    X = xp.asarray(imgs)
    got = to_numpy(F.canny(X, 20, 60))
    assert got.shape == (3, 45, 52)
    for i in range(3):
        assert np.array_equal(got[i], cv2.Canny(imgs[i], 20, 60))
    for view in (lambda a: a[0, ::-1], lambda a: a[0, :, ::2], lambda a: a[1, ..., 1:]):
        v = view(imgs)
        before = v.copy()
        assert np.array_equal(to_numpy(F.canny(view(X), 20, 60)), cv2.Canny(np.ascontiguousarray(v), 20, 60))
        assert np.array_equal(v, before)
    out = xp.full((45, 52), 7, np.uint8)
    assert F.canny(X[0], 20, 60, out=out) is out
    assert np.array_equal(to_numpy(out), cv2.Canny(imgs[0], 20, 60))
    big = xp.full((45, 104), 7, np.uint8)
    F.canny(X[0], 20, 60, out=big[:, ::2])
    assert np.array_equal(to_numpy(big[:, ::2]), cv2.Canny(imgs[0], 20, 60)) and (to_numpy(big[:, 1::2]) == 7).all()
    assert F.canny(xp.zeros((0, 5), np.uint8), 1, 2).shape == (0, 5)
    e = F.canny(xp.zeros((4, 5, 0), np.uint8), 1, 2)
    assert e.shape == (4, 5) and not to_numpy(e).any()


def test_canny_bad_arguments():
    x = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="low"):
        F.canny(x, 100, 50)
    with pytest.raises(ValueError, match="ksize"):
        F.canny(x, 10, 50, ksize=4)
    with pytest.raises(ValueError, match="ksize"):
        F.canny(x, 10, 50, ksize=9)
    with pytest.raises(TypeError, match="image"):
        F.canny(x.astype(np.float32), 10, 50)
    with pytest.raises(TypeError, match="image"):
        F.canny(x.astype(np.uint16), 10, 50)
    with pytest.raises(ValueError, match="image"):
        F.canny(np.zeros(8, np.uint8), 10, 50)
    with pytest.raises(TypeError, match="low"):
        F.canny(x, "a", 50)
    with pytest.raises(ValueError, match="out"):
        F.canny(x, 10, 50, out=np.zeros((8, 8, 1), np.uint8))
    with pytest.raises(TypeError, match="out"):
        F.canny(x, 10, 50, out=np.zeros((8, 8), np.float32))


def test_canny_full_hd_photo_threads(threads):
    # the benchmark's case: many chunks, so the hysteresis continues across chunk borders
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    img = cv2.resize(gray, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    for lo, hi in ((50, 150), (10, 30), (100, 200), (5, 250)):
        assert np.array_equal(F.canny(img, lo, hi), cv2.Canny(img, lo, hi)), (lo, hi)
        assert np.array_equal(F.canny(img, lo, hi, l2gradient=True), cv2.Canny(img, lo, hi, L2gradient=True)), (lo, hi)
