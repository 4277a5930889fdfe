"""imkern.jax's image ops (median, erode/dilate, sobel, color conversions, resize): equal to the
NumPy imkern functions bit for bit under jit and vmap (forward only; no adjoint kernels). Skipped
without JAX."""

from __future__ import annotations

import functools

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import imkern  # noqa: E402
import imkern.jax as ikj  # noqa: E402
from conftest import random_array  # noqa: E402

ON_CPU = jax.default_backend() == "cpu"
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(13, 17), (9, 10, 3), (2, 7, 8, 3), (1, 1)]


def _eq(got, want, atol_int=1):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if ON_CPU:
        np.testing.assert_array_equal(got, want)
    elif want.dtype.kind in "ui":
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max(initial=0) <= atol_int
    else:
        scale = float(np.abs(want).max(initial=0)) or 1.0
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_median_morphology_sobel_equal_imkern(rng, dtype, shape):
    a = random_array(rng, shape, dtype)
    x = jnp.asarray(a)
    for size, border in ((3, "replicate"), (5, "reflect"), (1, "wrap"), (7, "constant")):
        _eq(
            jax.jit(functools.partial(ikj.median, size=size, border=border, cval=2.0))(x),
            imkern.filters.median(a, size, border=border, cval=2.0),
        )
    fp = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 1]])
    for kw in (
        dict(),
        dict(footprint=fp),
        dict(footprint=(2, 3), iterations=2),
        dict(border="reflect"),
        dict(footprint=fp, iterations=2, border="constant", cval=7.0),
    ):
        _eq(jax.jit(functools.partial(ikj.erode, **kw))(x), imkern.filters.erode(a, **kw))
        _eq(jax.jit(functools.partial(ikj.dilate, **kw))(x), imkern.filters.dilate(a, **kw))
    for kw in (
        dict(),
        dict(dx=0, dy=1, ksize=5, scale=0.5, delta=1.0),
        dict(dx=2, dy=1, ksize=7, border="wrap"),
        dict(ksize=-1),
        dict(dx=1, dy=1, ksize=1, border="constant", cval=3.0),
    ):
        _eq(jax.jit(functools.partial(ikj.sobel, **kw))(x), imkern.filters.sobel(a, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", ["nearest", "nearest-exact", "bilinear", "bicubic", "area", "lanczos4"])
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_equal_imkern(rng, dtype, interpolation, antialias):
    if antialias and interpolation not in ("bilinear", "bicubic", "area"):
        pytest.skip("antialias applies to bilinear, bicubic and area")
    a = random_array(rng, (2, 13, 11, 3), dtype)
    for size in ((5, 4), (20, 23), (13, 11), (1, 1)):
        got = jax.jit(functools.partial(ikj.resize, size=size, interpolation=interpolation, antialias=antialias))(
            jnp.asarray(a)
        )
        _eq(got, imkern.transform.resize(a, size, interpolation=interpolation, antialias=antialias))
    _eq(
        ikj.resize(jnp.asarray(a[0, :, :, 0]), (6, 9), interpolation=interpolation, antialias=antialias),
        imkern.transform.resize(a[0, :, :, 0], (6, 9), interpolation=interpolation, antialias=antialias),
    )


COLOR = [
    ("rgb_to_gray", 3),
    ("bgr_to_gray", 4),
    ("gray_to_rgb", 1),
    ("rgb_to_bgr", 4),
    ("bgr_to_rgb", 3),
    ("rgba_to_rgb", 4),
    ("rgb_to_hsv", 3),
    ("hsv_to_rgb", 3),
    ("rgb_to_ycbcr", 3),
    ("ycbcr_to_rgb", 3),
    ("rgb_to_lab", 3),
    ("lab_to_rgb", 3),
]


@pytest.mark.parametrize("name,c", COLOR)
@pytest.mark.parametrize("dtype", DTYPES)
def test_color_equal_imkern(rng, name, c, dtype):
    ref = getattr(imkern.color, name)
    for shape in ((9, 7, c), (2, 5, 6, c)):
        if dtype == np.float64 or dtype == np.float32:
            a = random_array(rng, shape, dtype, 0.0, 1.0)
            if name in ("hsv_to_rgb",):
                a[..., 0] *= 360
            if name == "lab_to_rgb":
                a = a * np.array([100, 200, 200], dtype) - np.array([0, 100, 100], dtype)
        else:
            a = random_array(rng, shape, dtype)
        try:
            want = ref(a)
        except TypeError:  # a dtype this conversion does not take (HSV: no uint16)
            with pytest.raises(TypeError):
                ikj.__dict__[name](jnp.asarray(a))
            continue
        _eq(jax.jit(getattr(ikj, name))(jnp.asarray(a)), want)
    if name == "gray_to_rgb":
        a = random_array(rng, (5, 6), dtype)
        _eq(ikj.gray_to_rgb(jnp.asarray(a)), imkern.color.gray_to_rgb(a))
    if name == "rgba_to_rgb":
        a = random_array(rng, (4, 5, 4), dtype)
        bg = (10, 20, 30) if np.dtype(dtype).kind == "u" else (0.1, 0.2, 0.3)
        _eq(ikj.rgba_to_rgb(jnp.asarray(a), background=bg), imkern.color.rgba_to_rgb(a, background=bg))


def test_vmap_folds_the_batch(rng):
    a = random_array(rng, (3, 2, 9, 8, 3), np.uint8)
    x = jnp.asarray(a)
    flat = a.reshape((6, 9, 8, 3))
    _eq(jax.jit(jax.vmap(lambda t: ikj.median(t, 3)))(x), imkern.filters.median(flat, 3).reshape(a.shape))
    _eq(jax.vmap(lambda t: ikj.erode(t, 3))(x), imkern.filters.erode(flat, 3).reshape(a.shape))
    _eq(jax.vmap(ikj.sobel)(x), imkern.filters.sobel(flat).reshape(a.shape))
    _eq(jax.vmap(ikj.rgb_to_hsv)(x), imkern.color.rgb_to_hsv(flat).reshape(a.shape))
    _eq(jax.vmap(lambda t: ikj.resize(t, (5, 12)))(x), imkern.transform.resize(flat, (5, 12)).reshape((3, 2, 5, 12, 3)))
    want = np.stack([[imkern.color.rgb_to_gray(a[i, j]) for j in range(2)] for i in range(3)])
    _eq(jax.vmap(jax.vmap(ikj.rgb_to_gray))(x), want)


def test_bad_arguments():
    x = jnp.zeros((6, 6, 3), jnp.float32)
    with pytest.raises(ValueError, match="size"):
        ikj.median(x, 4)
    with pytest.raises(TypeError, match="image"):
        ikj.median(jnp.zeros((4, 4), jnp.int32), 3)
    with pytest.raises(ValueError, match="border"):
        ikj.erode(x, border="bogus")
    with pytest.raises(ValueError, match="dx, dy"):
        ikj.sobel(x, 0, 0)
    with pytest.raises(ValueError, match="image"):
        ikj.rgb_to_hsv(jnp.zeros((4, 4, 4), jnp.float32))
    with pytest.raises(ValueError, match="size"):
        ikj.resize(x, (0, 3))
    with pytest.raises(ValueError, match="interpolation"):
        ikj.resize(x, (3, 3), interpolation="bogus")


@pytest.mark.parametrize("interpolation", ["nearest", "nearest-exact", "bilinear", "bicubic", "area", "lanczos4"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("size", [(5, 4), (20, 23), (9, 1)])
def test_resize_vjp_is_the_adjoint(rng, interpolation, antialias, size):
    if antialias and interpolation not in ("bilinear", "bicubic", "area"):
        pytest.skip("antialias applies to bilinear, bicubic and area")
    f = functools.partial(ikj.resize, size=size, interpolation=interpolation, antialias=antialias)
    x = jnp.asarray(random_array(rng, (2, 13, 11, 3), np.float64))
    y, pull = jax.vjp(f, x)
    g = jnp.asarray(random_array(rng, y.shape, np.float64))
    (aty,) = pull(g)
    lhs, rhs = float(jnp.vdot(y, g)), float(jnp.vdot(x, aty))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    # float32 too (the transposed float32 tables), against the float64 adjoint
    (a32,) = jax.vjp(f, x.astype(jnp.float32))[1](g.astype(jnp.float32))
    assert a32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(a32), np.asarray(aty), rtol=1e-4, atol=1e-4 * float(jnp.abs(aty).max()))


def test_resize_grad_numerical_and_jit_vmap_grad(rng):
    from jax.test_util import check_grads

    x = jnp.asarray(random_array(rng, (7, 6, 2), np.float64))
    check_grads(lambda t: ikj.resize(t, (10, 4), interpolation="bicubic"), (x,), order=1, modes=("rev",))
    loss = lambda t: jnp.sum(ikj.resize(t, (4, 9), interpolation="area") ** 2)
    xb = jnp.asarray(random_array(rng, (3, 7, 6), np.float64))
    gb = jax.jit(jax.vmap(jax.grad(loss)))(xb)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(gb[i]), np.asarray(jax.grad(loss)(xb[i])), rtol=1e-12, atol=1e-12)
