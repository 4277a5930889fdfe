"""imkern.nn.functional and the layers: torch's argument names, integer targets, empty reductions
and the messages of bad arguments (issue 9, items 5, 6, 13, 15)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern import nn
from imkern.nn import functional as F


def _torch():
    return pytest.importorskip("torch")


# ---- item 5: integer targets that do not convert to int64 ------------------------------------
def test_cross_entropy_rejects_uint64_targets(rng):
    logits = random_array(rng, (4, 3), np.float32)
    t = np.full(4, 2**64 - 100, np.uint64)  # once wrapped to -100 = ignore_index: a silent NaN
    for f in (F.cross_entropy, F.cross_entropy_backward):
        with pytest.raises(TypeError, match="target: dtype uint64"):
            f(logits, t)
        with pytest.raises(TypeError, match="target: dtype uint64"):
            f(logits, np.array([0, 1, 2, 0], np.uint64))
    with pytest.raises(TypeError, match="target"):
        nn.CrossEntropyLoss()(logits, t)


@pytest.mark.parametrize("dt", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
def test_cross_entropy_narrow_integer_targets(rng, dt):
    logits = random_array(rng, (6, 5, 3), np.float32)
    t = rng.integers(0, 5, (6, 3)).astype(dt)
    ref = F.cross_entropy(logits, t.astype(np.int64), reduction="none")
    np.testing.assert_array_equal(F.cross_entropy(logits, t, reduction="none"), ref)
    np.testing.assert_array_equal(F.cross_entropy_backward(logits, t), F.cross_entropy_backward(logits, t.astype(np.int64)))


def test_cross_entropy_uint64_rejected_like_torch(rng):
    torch = _torch()
    logits = random_array(rng, (4, 3), np.float32)
    with pytest.raises((RuntimeError, TypeError, NotImplementedError)):
        torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.zeros(4, dtype=torch.uint64))
    with pytest.raises(TypeError, match="target"):  # and imkern as torch
        F.cross_entropy(logits, np.zeros(4, np.uint64))


# ---- item 6: empty reductions (in_features = 0, C_in = 0, empty batch) ---------------------------
@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_in_features_zero(rng, lead, dtype):
    x = np.empty(lead + (0,), dtype)
    w = np.empty((4, 0), dtype)
    b = random_array(rng, (4,), dtype)
    y = F.linear(x, w, b)
    assert y.shape == lead + (4,) and y.dtype == dtype
    np.testing.assert_array_equal(y, np.broadcast_to(b, lead + (4,)))
    np.testing.assert_array_equal(F.linear(x, w), np.zeros(lead + (4,), dtype))
    go = random_array(rng, lead + (4,), dtype)
    gi, gw, gb = F.linear_backward(go, x, w)
    assert gi.shape == x.shape and gw.shape == (4, 0) and gb.shape == (4,)
    np.testing.assert_allclose(gb, go.reshape(-1, 4).sum(0), rtol=1e-6, atol=1e-6)


def test_linear_in_features_zero_matches_torch(rng):
    torch = _torch()
    x = np.empty((3, 0), np.float32)
    w = np.empty((2, 0), np.float32)
    b = random_array(rng, (2,), np.float32)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    yt = torch.nn.functional.linear(xt, wt, bt)
    np.testing.assert_array_equal(F.linear(x, w, b), yt.detach().numpy())
    go = random_array(rng, (3, 2), np.float32)
    yt.backward(torch.from_numpy(go))
    gi, gw, gb = F.linear_backward(go, x, w)
    # a float32 sum of 3 terms in either library's order: the bound of its rounding is relative
    # to the terms' magnitudes, not to the (possibly cancelled) sum
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-6, atol=float(1e-6 * np.abs(go).sum(0).max()))
    assert gi.shape == tuple(xt.grad.shape) and gw.shape == tuple(wt.grad.shape)
    # The layer too: Linear(0, 2) forward and backward.
    layer = nn.Linear(0, 2, seed=1)
    np.testing.assert_array_equal(layer(x), np.broadcast_to(layer.bias.data, (3, 2)))
    assert layer.backward(go).shape == (3, 0)


def test_linear_out_features_zero(rng):
    x = random_array(rng, (3, 5), np.float32)
    w = np.empty((0, 5), np.float32)
    assert F.linear(x, w).shape == (3, 0)
    gi, gw, gb = F.linear_backward(np.empty((3, 0), np.float32), x, w)
    np.testing.assert_array_equal(gi, np.zeros((3, 5), np.float32))
    assert gw.shape == (0, 5) and gb.shape == (0,)


def test_conv2d_empty_channels_and_batch(rng):
    # C_in = 0: an empty sum, the bias broadcast (zeros without bias); gradients zero.
    x = np.empty((2, 0, 5, 5), np.float32)
    w = np.empty((3, 0, 3, 3), np.float32)
    b = random_array(rng, (3,), np.float32)
    y = F.conv2d(x, w, b, padding=1)
    assert y.shape == (2, 3, 5, 5)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))
    go = random_array(rng, y.shape, np.float32)
    gi, gw, gb = F.conv2d_backward(go, x, w, padding=1)
    assert gi.shape == x.shape and gw.shape == w.shape
    np.testing.assert_allclose(gb, go.sum(axis=(0, 2, 3)), rtol=1e-5)
    # N = 0: an empty output; the weight gradient is zero.
    x = np.empty((0, 2, 5, 5), np.float32)
    w = random_array(rng, (3, 2, 3, 3), np.float32)
    y = F.conv2d(x, w, b)
    assert y.shape == (0, 3, 3, 3)
    gi, gw, gb = F.conv2d_backward(np.empty(y.shape, np.float32), x, w)
    np.testing.assert_array_equal(gw, np.zeros_like(w))
    np.testing.assert_array_equal(gb, np.zeros(3, np.float32))


# ---- item 13: torch's argument names -------------------------------------------------------------
def _torch_and_ours(rng):
    x = random_array(rng, (2, 4, 7, 6), np.float32)
    w = random_array(rng, (3, 4, 3, 3), np.float32)
    b = random_array(rng, (3,), np.float32)
    xl = random_array(rng, (5, 6), np.float32)
    wl = random_array(rng, (2, 6), np.float32)
    bl = random_array(rng, (2,), np.float32)
    t = rng.integers(0, 6, 5)
    g = random_array(rng, (4,), np.float32, 0.5, 1.5)
    bb = random_array(rng, (4,), np.float32)
    # Each line is a torch.nn.functional call with keyword arguments, ported verbatim.
    return dict(x=x, w=w, b=b, xl=xl, wl=wl, bl=bl, t=t, g=g, bb=bb), [
        "F.conv2d(input=x, weight=w, bias=b, stride=1, padding=1, dilation=1, groups=1)",
        "F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0))",
        "F.linear(input=xl, weight=wl, bias=bl)",
        "F.linear(xl, weight=wl)",
        "F.softmax(x, dim=1)",
        "F.softmax(input=x, dim=-1)",
        "F.log_softmax(x, dim=1)",
        "F.log_softmax(input=xl, dim=0)",
        "F.max_pool2d(input=x, kernel_size=2, stride=2)",
        "F.max_pool2d(x, kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=True)",
        "F.avg_pool2d(input=x, kernel_size=3, stride=2, padding=1, ceil_mode=False, count_include_pad=False)",
        "F.adaptive_avg_pool2d(input=x, output_size=(2, 3))",
        "F.relu(input=x)",
        "F.leaky_relu(input=x, negative_slope=0.2)",
        "F.gelu(input=x, approximate='none')",
        "F.sigmoid(input=x)",
        "F.tanh(input=x)",
        "F.cross_entropy(input=xl, target=t, reduction='sum', label_smoothing=0.1, ignore_index=-100)",
        "F.cross_entropy(xl, t)",
        "F.dropout(x, p=0.5, training=False)",
        "F.batch_norm(x, None, None, weight=g, bias=bb, training=True, momentum=0.1, eps=1e-5)",
        "F.batch_norm(input=xl[:, :4], running_mean=None, running_var=None, training=True)",
    ]


def test_torch_keyword_calls_port_verbatim(rng):
    torch = _torch()
    arrays, calls = _torch_and_ours(rng)
    ours_env = dict(arrays)
    ours_env["F"] = F
    torch_env = {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
    torch_env["F"] = torch.nn.functional
    for call in calls:
        ours = eval(call, {}, dict(ours_env))
        ref = eval(call, {}, dict(torch_env)).numpy()
        np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=2e-5, err_msg=call)


def test_batch_norm_running_stats_like_torch(rng):
    torch = _torch()
    for shape in ((6, 4), (6, 4, 5), (3, 4, 5, 2)):
        x = random_array(rng, shape, np.float32)
        rm, rv = random_array(rng, (4,), np.float32), random_array(rng, (4,), np.float32, 0.5, 2.0)
        rm_t, rv_t = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
        for training in (True, False):
            y = F.batch_norm(x, rm, rv, training=training, momentum=0.3)
            yt = torch.nn.functional.batch_norm(torch.from_numpy(x), rm_t, rv_t, training=training, momentum=0.3)
            np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(rm, rm_t.numpy(), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(rv, rv_t.numpy(), rtol=1e-6, atol=1e-6)
        # eval is torch's default (training=False): the running statistics are used.
        np.testing.assert_allclose(F.batch_norm(x, rm, rv), torch.nn.functional.batch_norm(
            torch.from_numpy(x), rm_t, rv_t).numpy(), rtol=1e-5, atol=1e-5)


def test_torch_names_without_torch(rng):
    x = random_array(rng, (3, 5), np.float32)
    np.testing.assert_array_equal(F.softmax(x, dim=0), F.softmax(x, axis=0))
    np.testing.assert_array_equal(F.log_softmax(input=x, dim=1), F.log_softmax(x, 1))
    np.testing.assert_array_equal(F.relu(input=x), F.relu(x))
    with pytest.raises(TypeError, match="dim= and axis="):
        F.softmax(x, dim=0, axis=0)
    with pytest.raises(TypeError, match="input= and x="):
        F.relu(input=x, x=x)
    with pytest.raises(TypeError, match="axis"):
        F.softmax(x, dim=None)
    # batch_norm2d: training defaults to False as torch (eval needs the running statistics).
    x4 = random_array(rng, (2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm2d(x4, None, None, None, None)
    y = F.batch_norm2d(x4, None, None, np.zeros(3, np.float32), np.ones(3, np.float32), eps=0.0)
    np.testing.assert_array_equal(y, x4)


def test_dropout_defaults_as_torch(rng):
    x = random_array(rng, (64, 64), np.float32, 0.5, 1.0)
    # p=0.5, training=True by default; no seed needed: the global generator (manual_seed) draws it.
    imkern.manual_seed(123)
    a = F.dropout(x)
    b = F.dropout(input=x)
    imkern.manual_seed(123)
    a2 = F.dropout(x)
    np.testing.assert_array_equal(a, a2)
    assert not (a == b).all()  # a new mask per call
    kept = a != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(a[kept], 2 * x[kept], rtol=1e-6)
    np.testing.assert_array_equal(F.dropout(x, 0.5, False), x)  # torch's positional training
    # With seed= the mask is pinned and the backward reproduces it; the backward needs it.
    np.testing.assert_array_equal(F.dropout(x, 0.3, seed=5), F.dropout(x, 0.3, seed=5))
    np.testing.assert_array_equal(F.dropout_backward(x, 0.3, seed=5), F.dropout(x, 0.3, seed=5))
    with pytest.raises(TypeError, match="seed"):
        F.dropout_backward(x, 0.3, seed=None)


# ---- item 15: messages ------------------------------------------------------------------------------
def test_float64_input_to_float32_layer_names_the_input(rng):
    x = random_array(rng, (2, 3, 8, 8), np.float64)
    for layer, inp in ((nn.Conv2d(3, 4, 3, seed=0), x), (nn.Linear(8, 2, seed=0), x[:, 0, 0])):
        with pytest.raises(TypeError) as e:
            layer(inp)
        msg = str(e.value)
        assert msg.startswith("x: dtype float64 differs from the weight's dtype float32"), msg
        assert "astype('float32')" in msg
    with pytest.raises(TypeError, match=r"^x: dtype float32 differs from the weight's dtype float64"):
        F.conv2d(x.astype(np.float32), random_array(rng, (4, 3, 3, 3), np.float64))
    with pytest.raises(TypeError, match="^grad_output: dtype float64 differs from x's dtype float32"):
        F.linear_backward(np.ones((2, 2)), np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))


def test_nhwc_hints(rng):
    x = random_array(rng, (2, 8, 8, 3), np.float32)  # channels-last
    with pytest.raises(ValueError, match="channels-last"):
        nn.Conv2d(3, 4, 3, seed=0)(x)
    with pytest.raises(ValueError, match=r"channels-last.*transpose"):
        F.conv2d(x, random_array(rng, (4, 3, 3, 3), np.float32))


def test_pool_padding_message():
    x = np.zeros((1, 1, 6, 6), np.float32)
    msg = "padding: (2, 2) must be at most half the kernel size: kernel (2, 2) allows at most (1, 1)"
    for f in (F.max_pool2d, F.avg_pool2d):
        with pytest.raises(ValueError) as e:
            f(x, 2, padding=2)
        assert str(e.value) == msg
    with pytest.raises(ValueError, match=r"kernel \(3, 5\) allows at most \(1, 2\)"):
        F.max_pool2d(x, (3, 5), padding=(1, 3))


def test_sequential_list():
    # A list is unpacked (an earlier fix of this item; torch raises instead): it builds, runs and
    # reports its parameters; anything that is not a Module is a TypeError at construction.
    s = nn.Sequential([nn.Linear(3, 2, seed=0), nn.ReLU()])
    assert len(s) == 2 and len(s.parameters()) == 2
    assert s(np.ones((1, 3), np.float32)).shape == (1, 2)
    with pytest.raises(TypeError, match="not an imkern.nn Module"):
        nn.Sequential([nn.ReLU()], nn.ReLU())
    with pytest.raises(TypeError, match="not an imkern.nn Module"):
        nn.Sequential(nn.ReLU(), F.relu)


HUGE = [2**31, 2**63, 2**64, 2**100]


@pytest.mark.parametrize("v", HUGE)
def test_pool_int_arguments_range_checked(v):
    x = np.zeros((1, 1, 6, 6), np.float32)
    cases = [
        ("kernel_size", lambda: F.max_pool2d(x, v)),
        ("kernel_size", lambda: F.avg_pool2d(x, (2, v))),
        ("stride", lambda: F.max_pool2d(x, 2, stride=v)),
        ("stride", lambda: F.avg_pool2d(x, 2, stride=(v, 1))),
        ("dilation", lambda: F.max_pool2d(x, 2, dilation=v)),
        ("padding", lambda: F.max_pool2d(x, 2, padding=v)),
        ("output_size", lambda: F.adaptive_avg_pool2d(x, v)),
        ("output_size", lambda: F.adaptive_avg_pool2d(x, (2, v))),
        ("kernel_size", lambda: F.avg_pool2d_backward(x, (1, 1, 12, 12), v)),
    ]
    if v >= 2**63:
        cases.append(("divisor_override", lambda: F.avg_pool2d(x, 2, divisor_override=v)))
        cases.append(("divisor_override", lambda: F.avg_pool2d_backward(x[..., :3, :3], x.shape, 2,
                                                                          divisor_override=v)))
    for name, call in cases:
        with pytest.raises(ValueError, match=f"^{name}: ") as e:
            call()
        assert isinstance(e.value, OverflowError)  # also an OverflowError (int beyond the kernels' range)


def test_divisor_override_in_range_works():
    x = np.ones((1, 1, 4, 4), np.float32)
    np.testing.assert_array_equal(F.avg_pool2d(x, 2, divisor_override=2**62), np.full((1, 1, 2, 2), 4 / 2**62, np.float32))
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=-(2**64))


@pytest.mark.parametrize("v", [2**63, 2**64, 2**100])
def test_conv_int_arguments_range_checked(v):
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((2, 2, 1, 1), np.float32)
    for name, kw in (("stride", dict(stride=v)), ("dilation", dict(dilation=(1, v))), ("padding", dict(padding=v)),
                     ("groups", dict(groups=v))):
        for f in (lambda kw=kw: F.conv2d(x, w, **kw),
                  lambda kw=kw: F.conv2d_backward(np.ones((1, 2, 4, 4), np.float32), x, w, **kw)):
            with pytest.raises(ValueError, match=f"^{name}: "):
                f()
    for name, kw in (("stride", dict(stride=0)), ("dilation", dict(dilation=-1)), ("padding", dict(padding=-(2**70))),
                     ("groups", dict(groups=-(2**64)))):
        with pytest.raises(ValueError, match=f"^{name}: "):
            F.conv2d(x, w, **kw)


def test_layers_check_arguments_at_construction():
    cases = [
        ("kernel_size", lambda: nn.Conv2d(3, 4, -1)),
        ("kernel_size", lambda: nn.Conv2d(3, 4, (3, 2**64))),
        ("stride", lambda: nn.Conv2d(3, 4, 3, stride=0)),
        ("padding", lambda: nn.Conv2d(3, 4, 3, padding=-1)),
        ("dilation", lambda: nn.Conv2d(3, 4, 3, dilation=2**64)),
        ("in_channels", lambda: nn.Conv2d(2**64, 4, 3)),
        ("in_features", lambda: nn.Linear(2**70, 4)),
        ("out_features", lambda: nn.Linear(4, -1)),
        ("padding", lambda: nn.MaxPool2d(2, padding=2)),
        ("kernel_size", lambda: nn.MaxPool2d(2**31)),
        ("stride", lambda: nn.AvgPool2d(2, stride=-1)),
        ("output_size", lambda: nn.AdaptiveAvgPool2d(0)),
        ("output_size", lambda: nn.AdaptiveAvgPool2d((2, 2**40))),
    ]
    for name, make in cases:
        with pytest.raises(ValueError, match=f"^{name}: "):
            make()
    # The valid forms still build (padding strings, None in output_size), and pickle.
    for layer in (nn.Conv2d(3, 4, 3, padding="same"), nn.MaxPool2d(3, 1, 1), nn.AvgPool2d((2, 3)),
                  nn.AdaptiveAvgPool2d((None, 2))):
        pickle.loads(pickle.dumps(layer))


def test_dataloader_labels_do_not_wrap(rng):
    from imkern import data

    images = random_array(rng, (4, 5, 5, 1), np.uint8)
    with pytest.raises(ValueError, match="labels"):
        data.DataLoader(images, np.array([0, 1, 2**64 - 100, 3], np.uint64))
    dl = data.DataLoader(images, np.array([0, 1, 2, 3], np.uint64), batch_size=4, prefetch=False)
    (x, y), = list(dl)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3]
