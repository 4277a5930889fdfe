"""imkern.jax: the XLA FFI handlers equal imkern.filters bit for bit, under jit and vmap, and their
custom VJPs are the exact adjoints (checked against jax.jvp / numerical gradients and the
transpose identity <A x, y> = <x, A^T y> in float64). Skipped without JAX."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import imkern  # noqa: E402
import imkern.jax as ikj  # noqa: E402
from conftest import random_array  # noqa: E402

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
# On a GPU backend the CUDA handlers run: CUDA's float rounding, not the CPU kernels' bits.
ON_CPU = jax.default_backend() == "cpu"


def _eq(got, want):
    got, want = np.asarray(got), np.asarray(want)
    if ON_CPU:
        np.testing.assert_array_equal(got, want)
    elif want.dtype.kind in "ui":
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max(initial=0) <= 1
    else:
        scale = float(np.abs(want).max(initial=0)) or 1.0
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(17, 23), (9, 12, 3), (2, 7, 8, 1), (1, 1)])
@pytest.mark.parametrize("border", BORDERS)
def test_equal_imkern_under_jit(rng, dtype, shape, border):
    a = random_array(rng, shape, dtype)
    x = jnp.asarray(a)
    g = jax.jit(lambda t: ikj.gaussian(t, (1.3, 0.7), border=border, cval=3.0))(x)
    assert g.dtype == a.dtype and g.shape == a.shape
    _eq(g, imkern.filters.gaussian(a, (1.3, 0.7), border=border, cval=3.0))
    k = np.arange(6.0).reshape(2, 3) - 2
    c = jax.jit(lambda t: ikj.correlate(t, k, border=border))(x)
    _eq(c, imkern.filters.correlate(a, k, border=border))
    s = ikj.sep_filter(x, [1, 2, 1], [-1, 0, 1, 2], border=border)
    _eq(s, imkern.filters.sep_filter(a, [1, 2, 1], [-1, 0, 1, 2], border=border))


@pytest.mark.parametrize("shape", [(10, 11), (10, 11, 2), (3, 10, 11, 2)])
def test_vmap_is_one_batched_call(rng, shape):
    a = random_array(rng, (4,) + shape, np.float32)
    f = jax.jit(jax.vmap(lambda t: ikj.gaussian(t, 1.1, border="reflect")))
    got = np.asarray(f(jnp.asarray(a)))
    want = np.stack([imkern.filters.gaussian(a[i], 1.1, border="reflect") for i in range(4)])
    _eq(got, want)
    # nested vmap folds two leading dimensions
    b = random_array(rng, (2, 3) + shape, np.float32)
    got2 = np.asarray(jax.vmap(jax.vmap(lambda t: ikj.correlate(t, np.ones((3, 2)))))(jnp.asarray(b)))
    want2 = np.stack([[imkern.filters.correlate(b[i, j], np.ones((3, 2))) for j in range(3)] for i in range(2)])
    _eq(got2, want2)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape", [(6, 7), (2, 3, 5, 2)])
def test_vjp_is_the_exact_adjoint(rng, border, shape):
    x = jnp.asarray(random_array(rng, shape, np.float64))
    y = jnp.asarray(random_array(rng, shape, np.float64))
    k = random_array(rng, (3, 4), np.float64)
    for f in (
        lambda t: ikj.gaussian(t, (1.2, 0.9), border=border, cval=0.4),
        lambda t: ikj.correlate(t, k, border=border, cval=-1.0),
    ):
        lin = lambda t, f=f: f(t) - f(jnp.zeros_like(t))
        _, vjp = jax.vjp(f, x)
        (aty,) = vjp(y)
        lhs = float(jnp.vdot(lin(x), y))
        rhs = float(jnp.vdot(x, aty))
        assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_grad_matches_numerical_and_jit_vmap_of_grad(rng):
    from jax.test_util import check_grads

    x = jnp.asarray(random_array(rng, (7, 6, 2), np.float64))
    check_grads(lambda t: ikj.gaussian(t, 1.0, border="wrap"), (x,), order=1, modes=("rev",))
    check_grads(
        lambda t: ikj.correlate(t, np.arange(6.0).reshape(3, 2), border="reflect"), (x,), order=1, modes=("rev",)
    )
    loss = lambda t: jnp.sum(ikj.gaussian(t, 0.8) ** 2)
    xb = jnp.asarray(random_array(rng, (3, 7, 6), np.float64))
    gb = jax.jit(jax.vmap(jax.grad(loss)))(xb)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(gb[i]), np.asarray(jax.grad(loss)(xb[i])), rtol=1e-12, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(TypeError, match="image"):
        ikj.gaussian(jnp.zeros((4, 4), jnp.int32), 1.0)
    with pytest.raises(ValueError, match="image"):
        ikj.gaussian(jnp.zeros((4,), jnp.float32), 1.0)
    with pytest.raises(ValueError, match="border"):
        ikj.gaussian(jnp.zeros((4, 4), jnp.float32), 1.0, border="bogus")
