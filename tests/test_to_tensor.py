"""to_tensor / from_tensor against the NumPy reference, the NumPy expression and PyTorch;
CPU and CUDA (xp fixture), every input dtype, crops, flips, ISA levels, threads, out=, errors."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_array, to_numpy
from imkern import transform as T
from imkern.reference import transform as R

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
IN_DTYPES = [np.uint8, np.uint16, np.float32, np.float64, np.int8, np.int16, np.int32, np.bool_, np.float16]
SHAPES = [(1, 1), (5, 7), (1, 1, 3), (9, 13, 3), (17, 33, 1), (6, 5, 2), (11, 19, 4), (7, 8, 5),
          (3, 15, 21, 3), (2, 1, 40, 3), (4, 64, 67, 3)]


def _tol(odt):
    return (1e-6, 2e-6) if np.dtype(odt) == np.float32 else (1e-14, 1e-14)


def _rand(rng, shape, dtype):
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind == "i":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    return random_array(rng, shape, dt, low=0 if dt.kind == "f" else None, high=1 if dt.kind == "f" else None)


@pytest.mark.parametrize("odt", ["float32", "float64"])
@pytest.mark.parametrize("dtype", IN_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference(xp, rng, dtype, shape, odt):
    x = _rand(rng, shape, dtype)
    before = x.copy()
    C = 1 if x.ndim == 2 else x.shape[-1]
    mean = rng.uniform(0.2, 0.6, C) if C > 1 else 0.5
    std = rng.uniform(0.1, 0.4, C) if C > 1 else 0.25
    xd = xp.asarray(x)
    H, W = (x.shape[1:3] if x.ndim == 4 else x.shape[:2])
    crops = [None, (max(1, H // 2), max(1, W - 1)), (H - 1 if H > 1 else 0, 0, 1, W)]
    for crop in crops:
        for flip in (False, True):
            got = T.to_tensor(xd, mean=mean, std=std, crop=crop, flip=flip, dtype=odt)
            exp = R.to_tensor(x, mean=mean, std=std, crop=crop, flip=flip, dtype="float64")
            assert type(got) is type(xd) and got.dtype == np.dtype(odt) and got.shape == exp.shape
            rtol, atol = _tol(odt)
            np.testing.assert_allclose(to_numpy(got), exp, rtol=rtol, atol=atol * np.abs(exp).max(initial=1),
                                       err_msg=f"crop={crop} flip={flip}")
    np.testing.assert_array_equal(x, before)


def test_defaults_scale_integers_only(rng):
    x = random_array(rng, (4, 5, 3), np.uint8)
    t = T.to_tensor(x)
    np.testing.assert_allclose(t, x.transpose(2, 0, 1) / 255.0, rtol=1e-7)
    f = random_array(rng, (4, 5, 3), np.float32, low=-3, high=3)
    np.testing.assert_array_equal(T.to_tensor(f), f.transpose(2, 0, 1))  # floats as they are
    u16 = random_array(rng, (4, 5), np.uint16)
    np.testing.assert_allclose(T.to_tensor(u16, dtype="float64")[0], u16 / 65535.0, rtol=1e-15)


def test_equals_numpy_expression_and_torch(xp, rng):
    x = random_array(rng, (8, 224, 224, 3), np.uint8)
    m, s = np.array(MEAN, np.float32), np.array(STD, np.float32)
    exp = ((x.astype(np.float32) / 255 - m) / s).transpose(0, 3, 1, 2)
    got = to_numpy(T.to_tensor(xp.asarray(x), mean=MEAN, std=STD))
    np.testing.assert_allclose(got, exp, rtol=1e-6, atol=2e-6)
    torch = pytest.importorskip("torch")
    tt = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255)
    tt = (tt - torch.tensor(m).view(1, 3, 1, 1)) / torch.tensor(s).view(1, 3, 1, 1)
    np.testing.assert_allclose(got, tt.numpy(), rtol=1e-6, atol=2e-6)


def test_crop_flip_equal_torchvision(xp, rng):
    torch = pytest.importorskip("torch")
    tvf = pytest.importorskip("torchvision.transforms.functional")
    x = random_array(rng, (2, 224, 224, 3), np.uint8)
    m, s = np.array(MEAN, np.float32), np.array(STD, np.float32)
    tt = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255)
    tt = (tt - torch.tensor(m).view(1, 3, 1, 1)) / torch.tensor(s).view(1, 3, 1, 1)
    ref = tvf.hflip(tvf.center_crop(tt, [200, 190])).numpy()
    np.testing.assert_allclose(to_numpy(T.to_tensor(xp.asarray(x), mean=MEAN, std=STD, crop=(200, 190), flip=True)),
                               ref, rtol=1e-6, atol=2e-6)


def test_real_photographs(xp):
    data = pytest.importorskip("skimage.data")
    imgs = np.stack([data.astronaut(), data.camera()[..., None].repeat(3, -1)])
    got = to_numpy(T.to_tensor(xp.asarray(imgs), mean=MEAN, std=STD, crop=(448, 400), flip=True))
    exp = R.to_tensor(imgs, mean=MEAN, std=STD, crop=(448, 400), flip=True, dtype="float64")
    np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-5)
    back = to_numpy(T.from_tensor(xp.asarray(got), mean=MEAN, std=STD))
    np.testing.assert_array_equal(back, imgs[:, 32:480, 56:456][:, :, ::-1])  # centered crop, mirrored


def test_isa_levels_and_threads(isa, threads, rng):
    x = random_array(rng, (3, 37, 131, 3), np.uint8)
    for dtype in (np.uint8, np.uint16, np.float32, np.float64):
        x = random_array(rng, (3, 37, 131, 3), dtype, low=0 if np.dtype(dtype).kind == "f" else None,
                         high=1 if np.dtype(dtype).kind == "f" else None)
        for flip in (False, True):
            got = T.to_tensor(x, mean=MEAN, std=STD, crop=(2, 3, 30, 101), flip=flip)
            exp = R.to_tensor(x, mean=MEAN, std=STD, crop=(2, 3, 30, 101), flip=flip, dtype="float64")
            np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-5)


def test_strided_views(xp, rng):
    base = random_array(rng, (4, 30, 40, 4), np.uint8)
    for v in (base[..., :3], base[:, ::-1, :, :3], base[:, :, ::-1, :3], base[::-2, 3:20, 5:33, 1:],
              base[0].transpose(1, 0, 2)):
        got = to_numpy(T.to_tensor(xp.asarray(v) if xp is not np else v, mean=0.5, std=0.2, flip=True))
        exp = R.to_tensor(np.ascontiguousarray(v), mean=0.5, std=0.2, flip=True, dtype="float64")
        np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-5)


def test_out_argument(xp, rng):
    x = xp.asarray(random_array(rng, (2, 10, 12, 3), np.uint8))
    out = xp.full((2, 3, 10, 12), np.nan, np.float32)
    assert T.to_tensor(x, mean=MEAN, std=STD, out=out) is out
    np.testing.assert_array_equal(to_numpy(out), to_numpy(T.to_tensor(x, mean=MEAN, std=STD)))
    # planes and images apart in memory (rows contiguous): written in place
    big = xp.full((2, 4, 10, 12), np.nan, np.float32)
    view = big[:, 1:]
    assert T.to_tensor(x, out=view) is view
    np.testing.assert_array_equal(to_numpy(view), to_numpy(T.to_tensor(x)))
    assert np.isnan(to_numpy(big[:, 0])).all()
    # a transposed out receives the result by copy
    tr = xp.empty((2, 3, 12, 10), np.float64).transpose(0, 1, 3, 2)
    T.to_tensor(x, out=tr, dtype="float64")
    np.testing.assert_allclose(to_numpy(tr), to_numpy(T.to_tensor(x, dtype="float64")))
    with pytest.raises(ValueError, match="out"):
        T.to_tensor(x, out=xp.empty((2, 3, 12, 10), np.float32))
    with pytest.raises(TypeError, match="out"):
        T.to_tensor(x, out=xp.empty((2, 3, 10, 12), np.float64))


def test_from_tensor_inverts(xp, rng):
    x = random_array(rng, (3, 21, 17, 3), np.uint8)
    for dt in ("float32", "float64"):
        t = T.to_tensor(xp.asarray(x), mean=MEAN, std=STD, dtype=dt)
        back = T.from_tensor(t, mean=MEAN, std=STD)
        assert type(back) is type(t) and back.dtype == np.uint8 and back.shape == x.shape
        np.testing.assert_array_equal(to_numpy(back), x)
        np.testing.assert_array_equal(to_numpy(T.from_tensor(t[0], mean=MEAN, std=STD)), x[0])
    np.testing.assert_array_equal(T.from_tensor(np.full((1, 2, 2), 9.0)), np.full((2, 2, 1), 255, np.uint8))
    np.testing.assert_array_equal(T.from_tensor(np.full((1, 2, 2), -9.0)), np.zeros((2, 2, 1), np.uint8))
    np.testing.assert_array_equal(R.from_tensor(to_numpy(t), mean=MEAN, std=STD), x)


def test_bad_arguments(rng):
    x = random_array(rng, (2, 6, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="mean"):
        T.to_tensor(x, mean=(0.1, 0.2))
    with pytest.raises(ValueError, match="std"):
        T.to_tensor(x, std=(0.1, 0.0, 0.2))
    with pytest.raises(ValueError, match="std"):
        T.to_tensor(x, std=float("inf"))
    with pytest.raises(TypeError, match="mean"):
        T.to_tensor(x, mean="imagenet")
    with pytest.raises(ValueError, match="crop"):
        T.to_tensor(x, crop=(7, 8))
    with pytest.raises(ValueError, match="crop"):
        T.to_tensor(x, crop=(1, 1, 6, 8))
    with pytest.raises(ValueError, match="crop"):
        T.to_tensor(x, crop=(0, 8))
    with pytest.raises(ValueError, match="crop"):
        T.to_tensor(x, crop=(1, 2, 3))
    with pytest.raises(TypeError, match="dtype"):
        T.to_tensor(x, dtype="int8")
    with pytest.raises(TypeError, match="dtype"):
        T.to_tensor(x, dtype="float128x")
    with pytest.raises(TypeError, match="images"):
        T.to_tensor(x.astype(np.complex64))
    with pytest.raises(TypeError, match="images"):
        T.to_tensor(x.tolist())
    with pytest.raises(ValueError, match="images"):
        T.to_tensor(x[None])
    with pytest.raises(ValueError, match="tensor"):
        T.from_tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="tensor"):
        T.from_tensor(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="mean"):
        T.from_tensor(np.zeros((3, 4, 4), np.float32), mean=(1, 2))


def test_empty(xp):
    assert T.to_tensor(xp.zeros((0, 4, 5, 3), np.uint8)).shape == (0, 3, 4, 5)
    assert T.to_tensor(xp.zeros((4, 0, 3), np.uint8)).shape == (3, 4, 0)
