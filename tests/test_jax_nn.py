"""imkern.jax's CNN ops: equal to imkern.nn.functional bit for bit under jit (forward and, through
the custom VJPs, the backward kernels), under vmap (shared and per-example parameters), with
gradients checked numerically (jax.test_util.check_grads, float64) and under jit(vmap(grad)); a
small CNN trained with imkern.jax ops follows the same loss curve as the pure jax.lax model.
Skipped without JAX."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import imkern.jax as ikj  # noqa: E402
from conftest import random_array  # noqa: E402
from imkern.nn import functional as F  # noqa: E402

# On a GPU backend the CUDA handlers run: CUDA's rounding, not the CPU kernels' bits.
ON_CPU = jax.default_backend() == "cpu"
DTYPES = [np.float32, np.float64] if ON_CPU else [np.float32]


def _eq(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if ON_CPU:
        np.testing.assert_array_equal(got, want)
    else:
        scale = float(np.abs(want).max(initial=0)) or 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _vjp(f, *args):
    y, pull = jax.vjp(f, *args)
    return y, pull


CONV_CASES = [
    # x shape, weight shape, kwargs
    ((2, 3, 9, 8), (4, 3, 3, 3), dict(padding=1)),
    ((1, 4, 11, 7), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ((3, 4, 6, 6), (4, 1, 3, 3), dict(padding="same", groups=4)),
    ((2, 2, 7, 5), (3, 2, 1, 1), dict(stride=2)),
    ((1, 16, 12, 12), (16, 16, 3, 3), dict(padding=1)),  # Winograd on the CPU (float32)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_forward_and_backward_equal_imkern(rng, dtype, case, with_bias):
    xs, ws, kw = case
    x, w = random_array(rng, xs, dtype), random_array(rng, ws, dtype)
    b = random_array(rng, (ws[0],), dtype) if with_bias else None
    f = jax.jit(lambda a, c, d: ikj.conv2d(a, c, d, **kw))
    y = f(x, w, b)
    _eq(y, F.conv2d(x, w, b, **kw))
    g = random_array(rng, y.shape, dtype)
    _, pull = _vjp(lambda a, c, d: ikj.conv2d(a, c, d, **kw), x, w, b)
    gi, gw, gb = pull(jnp.asarray(g))
    wi, ww, wb = F.conv2d_backward(g, x, w, **kw)
    _eq(gi, wi)
    _eq(gw, ww)
    if with_bias:
        _eq(gb, wb)
    else:
        assert gb is None
    # the fused ReLU: forward as imkern's, backward = relu_backward(g, y) then conv2d_backward
    yr = jax.jit(lambda a, c, d: ikj.conv2d(a, c, d, activation="relu", **kw))(x, w, b)
    want_r = F.conv2d(x, w, b, activation="relu", **kw)
    _eq(yr, want_r)
    _, pull = _vjp(lambda a, c, d: ikj.conv2d(a, c, d, activation="relu", **kw), x, w, b)
    gi, gw, _ = pull(jnp.asarray(g))
    wi, ww, _ = F.conv2d_backward(F.relu_backward(g, want_r), x, w, **kw)
    _eq(gi, wi)
    _eq(gw, ww)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 6), (1, 1)])
def test_linear_equal_imkern(rng, dtype, shape):
    x = random_array(rng, shape, dtype)
    w = random_array(rng, (4, shape[-1]), dtype)
    b = random_array(rng, (4,), dtype)
    y = jax.jit(ikj.linear)(x, w, b)
    _eq(y, F.linear(x, w, b))
    g = random_array(rng, y.shape, dtype)
    _, pull = _vjp(ikj.linear, x, w, b)
    gi, gw, gb = pull(jnp.asarray(g))
    wi, ww, wb = F.linear_backward(g, x, w)
    _eq(gi, wi)
    _eq(gw, ww)
    _eq(gb, wb)
    _eq(ikj.linear(x, w), F.linear(x, w))


POOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(1, 2), ceil_mode=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", POOL_CASES)
def test_pooling_equal_imkern(rng, dtype, kw):
    x = random_array(rng, (2, 3, 9, 8), dtype)
    y = jax.jit(lambda a: ikj.max_pool2d(a, **kw))(x)
    want, idx = F.max_pool2d(x, return_indices=True, **kw)
    _eq(y, want)
    g = random_array(rng, y.shape, dtype)
    _, pull = _vjp(lambda a: ikj.max_pool2d(a, **kw), x)
    _eq(pull(jnp.asarray(g))[0], F.max_pool2d_backward(g, idx, x.shape))
    ya = jax.jit(lambda a: ikj.avg_pool2d(a, count_include_pad=False, **kw))(x)
    _eq(ya, F.avg_pool2d(x, count_include_pad=False, **kw))
    _, pull = _vjp(lambda a: ikj.avg_pool2d(a, **kw), x)
    _eq(pull(jnp.asarray(g))[0], F.avg_pool2d_backward(g, x.shape, **kw))
    # dilation (max only), unbatched (C, H, W), divisor_override
    _eq(ikj.max_pool2d(x, 2, dilation=2), F.max_pool2d(x, 2, dilation=2))
    _eq(ikj.max_pool2d(x[0], 3), F.max_pool2d(x[0], 3))
    _eq(ikj.avg_pool2d(x, 2, divisor_override=3), F.avg_pool2d(x, 2, divisor_override=3))


ACTS = [
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("gelu", {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ACTS)
def test_activations_equal_imkern(rng, dtype, name, kw):
    x = random_array(rng, (3, 5, 7), dtype, -4, 4)
    f = getattr(ikj, name)
    y = jax.jit(lambda a: f(a, **kw))(x)
    want = getattr(F, name)(x, **kw)
    _eq(y, want)
    g = random_array(rng, x.shape, dtype)
    _, pull = _vjp(lambda a: f(a, **kw), x)
    _eq(pull(jnp.asarray(g))[0], getattr(F, name + "_backward")(g, x, want, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_equal_imkern(rng, dtype, axis):
    x = random_array(rng, (4, 5, 6), dtype, -5, 5)
    _eq(jax.jit(lambda a: ikj.softmax(a, axis))(x), F.softmax(x, axis))
    _eq(jax.jit(lambda a: ikj.log_softmax(a, axis))(x), F.log_softmax(x, axis))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (6, 3), (2, 3, 7)])
def test_batch_norm_equal_imkern(rng, dtype, training, shape):
    x = random_array(rng, shape, dtype)
    c = shape[1]
    w, b = random_array(rng, (c,), dtype, 0.5, 1.5), random_array(rng, (c,), dtype)
    rm, rv = random_array(rng, (c,), dtype), random_array(rng, (c,), dtype, 0.5, 2.0)
    y, nm, nv = jax.jit(
        lambda a, m, v, ww, bb: ikj.batch_norm(a, m, v, ww, bb, training=training, momentum=0.3, eps=1e-3)
    )(x, rm, rv, w, b)
    m2, v2 = rm.copy(), rv.copy()
    want = F.batch_norm(x, m2, v2, w, b, training=training, momentum=0.3, eps=1e-3)
    _eq(y, want)
    _eq(nm, m2)
    _eq(nv, v2)
    x4 = x.reshape(shape + (1,) * (4 - len(shape)))
    g = random_array(rng, shape, dtype)
    _, pull = _vjp(lambda a, ww, bb: ikj.batch_norm(a, rm, rv, ww, bb, training=training, eps=1e-3)[0], x, w, b)
    gx, gw, gb = pull(jnp.asarray(g))
    wx, ww_, wb = F.batch_norm2d_backward(g.reshape(x4.shape), x4, w, rm, rv, training=training, eps=1e-3)
    _eq(gx, wx.reshape(shape))
    _eq(gw, ww_)
    _eq(gb, wb)
    if training:  # no running statistics, no weight or bias
        y0, n0, v0 = ikj.batch_norm(x, None, None, training=True)
        _eq(y0, F.batch_norm(x, None, None, training=True))
        assert n0 is None and v0 is None


def test_vmap_shared_and_per_example_parameters(rng):
    xb = random_array(rng, (3, 2, 3, 8, 7), np.float32)
    w = random_array(rng, (4, 3, 3, 3), np.float32)
    b = random_array(rng, (4,), np.float32)
    # shared weights: one call with the batch folded into N
    y = jax.jit(jax.vmap(lambda a: ikj.conv2d(a, w, b, padding=1)))(xb)
    _eq(y, np.stack([F.conv2d(xb[i], w, b, padding=1) for i in range(3)]))
    # per-example weights: one call per example
    wb = random_array(rng, (3,) + w.shape, np.float32)
    y2 = jax.vmap(lambda a, ww: ikj.conv2d(a, ww, b, stride=2))(xb, wb)
    _eq(y2, np.stack([F.conv2d(xb[i], wb[i], b, stride=2) for i in range(3)]))
    lw = random_array(rng, (3, 5, 7), np.float32)
    y3 = jax.vmap(ikj.linear, in_axes=(0, 0, None))(xb[:, 0, 0], lw, b[:1].repeat(5))
    _eq(y3, np.stack([F.linear(xb[i, 0, 0], lw[i], b[:1].repeat(5)) for i in range(3)]))
    # pooling, activations, softmax, batch norm (per-example statistics)
    _eq(jax.vmap(lambda a: ikj.max_pool2d(a, 2))(xb), np.stack([F.max_pool2d(xb[i], 2) for i in range(3)]))
    _eq(jax.vmap(ikj.gelu)(xb), F.gelu(xb))
    _eq(jax.vmap(lambda a: ikj.log_softmax(a, 1))(xb), np.stack([F.log_softmax(xb[i], 1) for i in range(3)]))
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    yb = jax.vmap(lambda a: ikj.batch_norm(a, zeros, ones, training=True)[0])(xb)
    _eq(yb, np.stack([F.batch_norm(xb[i], zeros.copy(), ones.copy(), training=True) for i in range(3)]))


def _small_net(params, x):
    y = ikj.conv2d(x, params["w1"], params["b1"], padding=1, activation="relu")
    y = ikj.max_pool2d(y, 2)
    y, _, _ = ikj.batch_norm(y, None, None, params["g"], params["beta"], training=True)
    y = ikj.gelu(ikj.conv2d(y, params["w2"], None, stride=2, padding=1, groups=2))
    y = ikj.avg_pool2d(y, 2)
    y = ikj.linear(y.reshape(y.shape[0], -1), params["wl"], params["bl"])
    return ikj.log_softmax(y, -1)


def test_grads_numerical_float64(rng):
    params = _params(rng, np.float64)
    x = random_array(rng, (2, 2, 8, 8), np.float64)
    # a small step: the network has ReLU and max-pool kinks, which a step of check_grads'
    # default size (1e-4 for float64) crosses for about 1 seed in 20
    check_grads(lambda p: _small_net(p, x), (params,), order=1, modes=("rev",), atol=1e-5, rtol=1e-5, eps=1e-7)
    check_grads(lambda a: _small_net(params, a), (x,), order=1, modes=("rev",), atol=1e-5, rtol=1e-5, eps=1e-7)
    for f in (ikj.sigmoid, ikj.tanh, lambda a: ikj.leaky_relu(a, 0.1), lambda a: ikj.softmax(a, 0)):
        check_grads(f, (random_array(rng, (3, 4), np.float64, -2, 2),), order=1, modes=("rev",))
    rm, rv = jnp.asarray(random_array(rng, (2,), np.float64)), jnp.ones(2)
    check_grads(lambda a: ikj.batch_norm(a, rm, rv, params["g"][:2], training=False)[0], (x,), order=1, modes=("rev",))
    check_grads(
        lambda a: ikj.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False), (x,), order=1, modes=("rev",)
    )


def test_jit_vmap_grad_per_example(rng):
    params = _params(rng, np.float64)
    xb = random_array(rng, (3, 1, 2, 8, 8), np.float64)
    labels = jnp.asarray(rng.integers(0, 5, (3, 1)))

    def loss(p, x, t):
        return -jnp.take_along_axis(_small_net(p, x), t[:, None], 1).sum()

    per_ex = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(params, xb, labels)
    for i in range(3):
        gi = jax.grad(loss)(params, xb[i], labels[i])
        for k in params:
            np.testing.assert_allclose(np.asarray(per_ex[k][i]), np.asarray(gi[k]), rtol=1e-12, atol=1e-12)


def _params(rng, dtype):
    return {
        "w1": jnp.asarray(random_array(rng, (4, 2, 3, 3), dtype) * 0.5),
        "b1": jnp.asarray(random_array(rng, (4,), dtype) * 0.1),
        "g": jnp.asarray(random_array(rng, (4,), dtype, 0.5, 1.5)),
        "beta": jnp.asarray(random_array(rng, (4,), dtype) * 0.1),
        "w2": jnp.asarray(random_array(rng, (4, 2, 3, 3), dtype) * 0.5),
        "wl": jnp.asarray(random_array(rng, (5, 4), dtype) * 0.5),
        "bl": jnp.asarray(random_array(rng, (5,), dtype) * 0.1),
    }


def _lax_net(params, x):
    """The same network in pure jax.lax / jax.nn (the reference of the training test)."""
    dn = ("NCHW", "OIHW", "NCHW")
    y = jax.lax.conv_general_dilated(x, params["w1"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)
    y = jax.nn.relu(y + params["b1"][None, :, None, None])
    y = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    mean = y.mean(axis=(0, 2, 3), keepdims=True)
    var = y.var(axis=(0, 2, 3), keepdims=True)
    y = (y - mean) / jnp.sqrt(var + 1e-5) * params["g"][None, :, None, None] + params["beta"][None, :, None, None]
    y = jax.lax.conv_general_dilated(
        y, params["w2"], (2, 2), ((1, 1), (1, 1)), dimension_numbers=dn, feature_group_count=2
    )
    y = jax.nn.gelu(y, approximate=False)
    y = jax.lax.reduce_window(y, 0.0, jax.lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4
    y = y.reshape(y.shape[0], -1) @ params["wl"].T + params["bl"]
    return jax.nn.log_softmax(y, -1)


def test_training_small_cnn_matches_lax_model(rng):
    """A few SGD steps on the same data and initial weights: the imkern.jax model's loss curve
    equals the pure jax.lax model's within float32 tolerance (same structure, same gradients)."""
    jax.config.update("jax_enable_x64", False)
    params = _params(rng, np.float32)
    x = jnp.asarray(random_array(rng, (8, 2, 8, 8), np.float32))
    t = jnp.asarray(rng.integers(0, 5, 8))

    def make_step(net):
        def loss(p):
            return -jnp.mean(jnp.take_along_axis(net(p, x), t[:, None], 1))

        @jax.jit
        def step(p):
            val, g = jax.value_and_grad(loss)(p)
            return jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g), val

        return step

    curves = []
    for net in (_small_net, _lax_net):
        step, p, losses = make_step(net), params, []
        for _ in range(8):
            p, val = step(p)
            losses.append(float(val))
        curves.append(losses)
    np.testing.assert_allclose(curves[0], curves[1], rtol=2e-4, atol=2e-5)
    assert curves[0][-1] < curves[0][0]  # it trains


def test_bad_arguments():
    x = jnp.zeros((1, 2, 4, 4), jnp.float32)
    with pytest.raises(TypeError, match="x"):
        ikj.conv2d(x.astype(jnp.int32), jnp.zeros((1, 2, 3, 3), jnp.int32))
    with pytest.raises(TypeError, match="weight"):
        ikj.conv2d(x, jnp.zeros((1, 2, 3, 3), jnp.float64))
    with pytest.raises(ValueError, match="weight"):
        ikj.conv2d(x, jnp.zeros((1, 3, 3, 3), jnp.float32))
    with pytest.raises(ValueError, match="x"):
        ikj.conv2d(x[0], jnp.zeros((1, 2, 3, 3), jnp.float32))
    with pytest.raises(ValueError, match="bias"):
        ikj.conv2d(x, jnp.zeros((1, 2, 3, 3), jnp.float32), jnp.zeros(2, jnp.float32))
    with pytest.raises(ValueError, match="padding"):
        ikj.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="running_mean"):
        ikj.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="activation"):
        ikj.conv2d(x, jnp.zeros((1, 2, 3, 3), jnp.float32), activation="gelu")
    with pytest.raises(ValueError, match="axis"):
        ikj.softmax(x, 4)
    with pytest.raises(ValueError, match="x, weight"):
        ikj.linear(x, jnp.zeros((3, 5), jnp.float32))
