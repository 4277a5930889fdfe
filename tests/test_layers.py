"""imkern.nn layer API: recursion through attributes, lists and Sequentials (parameters, train/eval,
state_dict, to), one seeding story, training-only saved state (never pickled), the new layers'
backward against finite differences (float64) and torch, the fused conv+ReLU path, save/load,
fit/predict."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import imkern
from imkern import nn, optim
from imkern.nn import functional as F


class Block(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(2, 3, 3, padding=1, seed=0)
        self.acts = [nn.ReLU(), nn.BatchNorm2d(3)]
        self.extra = {"drop": nn.Dropout(0.5, seed=1)}

    def forward(self, x):
        return self.extra["drop"](self.acts[1](self.acts[0](self.conv(x))))

    def backward(self, g):
        return self.conv.backward(self.acts[0].backward(self.acts[1].backward(self.extra["drop"].backward(g))))


# ---- issue 9, item 9: recursion -----------------------------------------------------------------


def test_parameters_recurse_through_attributes_lists_dicts_and_sequentials():
    b = Block()
    assert len(b.parameters()) == 4  # conv weight, bias, batch-norm weight, bias
    net = nn.Sequential(b, nn.Flatten(), nn.Linear(3 * 4 * 4, 2, seed=2))
    assert len(net.parameters()) == 6
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.conv.weight", "0.conv.bias", "0.acts.1.weight", "0.acts.1.bias", "2.weight", "2.bias"]
    shared = nn.Sequential(net[2], net[2])
    assert len(shared.parameters()) == 2  # each parameter once


def test_train_eval_reach_every_child():
    net = nn.Sequential(Block(), nn.Flatten())
    net.eval()
    assert all(not m.training for m in net.modules())
    assert not net[0].extra["drop"].training and not net[0].acts[1].training
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_recurses_and_round_trips(rng):
    net = nn.Sequential(Block(), nn.Flatten(), nn.Linear(48, 2, seed=2))
    sd = net.state_dict()
    assert "0.acts.1.running_mean" in sd and "0.acts.1.running_var" in sd and "2.weight" in sd
    imkern.manual_seed(123)
    other = nn.Sequential(Block(), nn.Flatten(), nn.Linear(48, 2))
    other.load_state_dict({k: v.copy() for k, v in sd.items()})
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(net.eval()(x), other.eval()(x))
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "2.bias"})
    with pytest.raises(ValueError, match="2.weight"):
        other.load_state_dict({**sd, "2.weight": np.zeros((3, 48), np.float32)})


def test_sgd_updates_a_subclass_model(rng):
    b = Block()
    w = b.conv.weight.data.copy()
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = b(x)
    b.backward(np.ones_like(y))
    optim.SGD(b.parameters(), lr=0.1).step()
    assert not np.array_equal(w, b.conv.weight.data)


def test_sequential_accepts_a_list_and_rejects_non_modules():
    s = nn.Sequential([nn.ReLU(), nn.Flatten()])
    assert len(s) == 2
    with pytest.raises(TypeError, match="not an imkern.nn Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# ---- item 10: one seeding story ------------------------------------------------------------------


def test_manual_seed_makes_models_and_dropout_reproducible():
    x = np.ones((4, 1000), np.float32)
    imkern.manual_seed(7)
    a, d1, d2 = nn.Linear(5, 3), nn.Dropout(0.5), nn.Dropout(0.5)
    m1, m2 = d1(x), d2(x)
    assert not np.array_equal(m1, m2)  # two layers, two streams
    imkern.manual_seed(7)
    b, e1, e2 = nn.Linear(5, 3), nn.Dropout(0.5), nn.Dropout(0.5)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(m1, e1(x))
    np.testing.assert_array_equal(m2, e2(x))
    assert not np.array_equal(d1(x), m1)  # the next call draws a new mask
    assert imkern.initial_seed() == 7
    with pytest.raises(ValueError, match="seed"):
        imkern.manual_seed(-1)
    with pytest.raises(TypeError, match="seed"):
        imkern.manual_seed(1.5)


def test_explicit_seed_does_not_consume_the_global_generator():
    imkern.manual_seed(3)
    nn.Linear(4, 4, seed=99)
    a = nn.Linear(4, 4)
    imkern.manual_seed(3)
    b = nn.Linear(4, 4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


# ---- item 11: no saved state in eval mode, none pickled -----------------------------------------------


def _small_cnn():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, seed=0), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 16 * 16, 4, seed=1))


def test_eval_forward_keeps_nothing_and_pickle_stays_small(rng):
    net = _small_cnn()
    size = len(pickle.dumps(net))
    x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    net.eval()(x)
    assert all(m._cache is None for m in net.modules())
    assert len(pickle.dumps(net)) < size + 2000
    net.train()(x)
    assert any(m._cache is not None for m in net.modules())
    blob = pickle.dumps(net)
    assert len(blob) < size + 2000  # training state is not pickled either
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.eval()(x), net.eval()(x))


def test_backward_after_eval_forward_explains(rng):
    lin = nn.Linear(3, 2, seed=0)
    lin.eval()(np.ones((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="eval mode"):
        lin.backward(np.ones((1, 2), np.float32))


# ---- item 12: batch_norm2d eval with read-only running stats ----------------------------------------


def test_batch_norm_eval_accepts_read_only_stats(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm.flags.writeable = rv.flags.writeable = False
    y = F.batch_norm2d(x, None, None, rm, rv, training=False)
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        F.batch_norm2d(x, None, None, rm, rv, training=True)


# ---- new layers: backward against finite differences and torch --------------------------------------


NEW_LAYERS = [
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda t: t.nn.AdaptiveAvgPool2d((2, 3))),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), lambda t: t.nn.LeakyReLU(0.2)),
    ("Sigmoid", lambda: nn.Sigmoid(), lambda t: t.nn.Sigmoid()),
    ("Tanh", lambda: nn.Tanh(), lambda t: t.nn.Tanh()),
    ("GELU", lambda: nn.GELU(), lambda t: t.nn.GELU()),
    ("Softmax", lambda: nn.Softmax(dim=1), lambda t: t.nn.Softmax(dim=1)),
]


@pytest.mark.parametrize("name,make,_", NEW_LAYERS, ids=[c[0] for c in NEW_LAYERS])
def test_new_layer_backward_matches_finite_differences(name, make, _, rng):
    layer = make()
    x = rng.standard_normal((2, 3, 5, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the LeakyReLU kink
    g = rng.standard_normal(layer(x).shape)
    gx = layer.backward(g)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = ((layer(xp) - layer(xm)) * g).sum() / (2 * eps)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,make,tmake", NEW_LAYERS, ids=[c[0] for c in NEW_LAYERS])
def test_new_layer_matches_torch(name, make, tmake, rng):
    torch = pytest.importorskip("torch")
    layer, tl = make(), tmake(torch)
    x = rng.standard_normal((4, 3, 9, 8)).astype(np.float32)
    y = layer(x)
    g = rng.standard_normal(y.shape).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tl(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---- fused conv + ReLU ------------------------------------------------------------------------------


def test_relu_after_conv_is_fused_and_equals_the_unfused_path(rng, monkeypatch):
    seen = []
    orig = F.conv2d

    def spy(*a, **k):
        seen.append(k.get("activation"))
        return orig(*a, **k)

    monkeypatch.setattr(F, "conv2d", spy)
    fused = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=np.float64, seed=0), nn.ReLU(), nn.Flatten())
    plain = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=np.float64, seed=0), nn.Identity(), nn.ReLU(),
                          nn.Flatten())
    x = rng.standard_normal((3, 2, 6, 6))
    yf, yp = fused(x), plain(x)
    assert seen == ["relu", None]
    np.testing.assert_array_equal(yf, yp)
    g = rng.standard_normal(yf.shape)
    np.testing.assert_allclose(fused.backward(g), plain.backward(g), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fused[0].weight.grad, plain[0].weight.grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fused[0].bias.grad, plain[0].bias.grad, rtol=1e-12)


@pytest.mark.parametrize(
    "shape, pool",
    [
        ((3, 2, 9, 7), dict(kernel_size=2)),  # odd sizes: the last row / column is dropped
        ((2, 3, 8, 8), dict(kernel_size=3, stride=2, padding=1)),  # overlapping windows
        ((2, 2, 7, 5), dict(kernel_size=2, ceil_mode=True)),
        ((1, 1, 1, 1), dict(kernel_size=1)),  # a 1-pixel image
    ],
)
@pytest.mark.parametrize("first", [True, False])
def test_conv_relu_maxpool_backward_masks_the_pooled_gradient_with_the_same_bits(shape, pool, first, isa, threads, rng):
    """Sequential applies a fused conv+ReLU's mask to a following MaxPool2d's pooled gradient
    (before the scatter); the gradients keep every bit of the unfused path's (Identity stops
    both fusions), including NaN inputs, -0 and inf gradients, with and without backward_params,
    the convolution first or after another layer."""
    c = shape[1]

    def make(plain):
        imkern.manual_seed(5)
        head = [] if first else [nn.Conv2d(c, c, 1)]
        conv = [nn.Conv2d(c, 4, 3, padding=1), nn.Identity()] if plain else [nn.Conv2d(c, 4, 3, padding=1)]
        return nn.Sequential(*head, *conv, nn.ReLU(), nn.MaxPool2d(**pool), nn.Flatten())

    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[x.size // 2] = np.nan
    fused, plain = make(False), make(True)
    yf, yp = fused(x), plain(x)
    np.testing.assert_array_equal(yf, yp)
    g = rng.standard_normal(yf.shape).astype(np.float32)
    g.flat[0] = -0.0
    g.flat[-1] = np.inf if g.size > 1 else -0.0
    np.testing.assert_array_equal(fused.backward(g), plain.backward(g))
    fused(x), plain(x)
    assert fused.backward_params(g) is None and plain.backward_params(g) is None
    for (_, pf), (_, pp) in zip(fused.named_parameters(), plain.named_parameters()):
        np.testing.assert_array_equal(pf.grad, pp.grad)  # accumulated over both backward passes
        np.testing.assert_array_equal(np.signbit(pf.grad), np.signbit(pp.grad))


def test_nhwc_input_to_conv_gets_a_hint():
    with pytest.raises(ValueError, match="channels-last"):
        nn.Conv2d(3, 4, 3, seed=0)(np.zeros((2, 8, 8, 3), np.float32))


# ---- save / load -------------------------------------------------------------------------------------


def test_save_load_same_predictions(tmp_path, rng):
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same", seed=0), nn.ReLU(), nn.BatchNorm2d(4),
                        nn.MaxPool2d(2), nn.Conv2d(4, 4, (3, 1), stride=(1, 2), seed=1), nn.LeakyReLU(0.1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 3, seed=2), nn.Softmax())
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    net(x)  # update the running stats
    p = tmp_path / "m.npz"
    nn.save(net, p, metadata={"classes": ["a", "b", "c"]})
    back = nn.load(p)
    np.testing.assert_array_equal(back(x), net.eval()(x))
    assert back.metadata == {"classes": ["a", "b", "c"]}
    assert not back.training
    # weights into an existing model of the same architecture
    imkern.manual_seed(5)
    same = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, (3, 1), stride=(1, 2)), nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 3), nn.Softmax())
    np.testing.assert_array_equal(nn.load(p, model=same)(x), net(x))


def test_load_errors(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, seed=0))
    p = tmp_path / "m.npz"
    nn.save(net, p)
    with pytest.raises(ValueError, match="another architecture"):
        nn.load(p, model=nn.Sequential(nn.Flatten(), nn.Linear(4, 5, seed=0)))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a valid imkern model file"):
        nn.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not written by imkern"):
        nn.load(other)
    with pytest.raises(FileNotFoundError, match="nope"):
        nn.load(tmp_path / "nope.npz")
    with pytest.raises(TypeError, match="not an imkern.nn layer"):
        nn.save(Block(), tmp_path / "b.npz")
    nn.save(Block(), tmp_path / "b.npz", architecture=False)
    with pytest.raises(ValueError, match="weights only"):
        nn.load(tmp_path / "b.npz")
    b = nn.load(tmp_path / "b.npz", model=Block())
    assert isinstance(b, Block)


# ---- fit / predict -----------------------------------------------------------------------------------


def test_fit_and_predict_learn_a_separable_problem(rng):
    imkern.manual_seed(0)
    x = rng.standard_normal((256, 1, 6, 6)).astype(np.float32)
    y = (x[:, 0, :3].mean(axis=(1, 2)) > x[:, 0, 3:].mean(axis=(1, 2))).astype(np.int64)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2))
    opt = optim.Adam(net.parameters(), lr=1e-2)
    seen = []
    hist = nn.fit(net, [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)], epochs=8, optimizer=opt,
                  val=(x, y), scheduler=optim.StepLR(opt, 4), callbacks=[lambda e, logs: seen.append(e)],
                  progress=False)
    assert seen == list(range(8)) and len(hist["loss"]) == 8
    assert hist["loss"][-1] < hist["loss"][0] and hist["val_accuracy"][-1] > 0.75
    logits = nn.predict(net, x, batch_size=50)
    assert logits.shape == (256, 2)
    assert (logits.argmax(1) == y).mean() == pytest.approx(hist["val_accuracy"][-1])
    stop = nn.fit(net, [(x, y)], epochs=5, optimizer=opt, callbacks=[lambda e, logs: False], progress=False)
    assert len(stop["loss"]) == 1


def test_to_device_round_trip(xp, rng):
    """.to() moves parameters, gradients and buffers; outputs agree across devices."""
    net = _small_cnn()
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y_cpu = net.eval()(x)
    dev = "cpu" if xp is np else "cuda"
    if dev == "cuda":
        imkern.set_allow_tf32(False)
    try:
        net.to(dev)
        assert all(type(p.data).__module__.split(".")[0] == xp.__name__ for p in net.parameters())
        assert type(net[2].running_mean).__module__.split(".")[0] == xp.__name__
        y = net(xp.asarray(x))
        np.testing.assert_allclose(y.get() if hasattr(y, "get") else y, y_cpu, rtol=1e-4, atol=1e-5)
        net.to("cpu")
        assert all(isinstance(p.data, np.ndarray) for p in net.parameters())
        np.testing.assert_array_equal(net(x), y_cpu)
    finally:
        if dev == "cuda":
            imkern.set_allow_tf32(True)
    with pytest.raises(ValueError, match="device"):
        net.to("tpu")


def test_backward_params_stores_the_same_gradients_without_the_input_gradient(rng):
    """Sequential.backward_params (what fit() calls): the same parameter gradients as backward,
    the first convolution's grad_input skipped, None returned."""
    def make():
        imkern.manual_seed(3)
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(4 * 4 * 4, 5))
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    g = rng.standard_normal((3, 5)).astype(np.float32)
    a, b = make(), make()
    a(x)
    gi = a.backward(g)
    assert gi.shape == x.shape
    b(x)
    assert b.backward_params(g) is None
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.grad, pb.grad)
