"""imkern.nn.layers: a small CNN's forward, loss, gradients and SGD steps equal PyTorch's with the
same weights; layers equal their functional ops; a model trains on synthetic data."""
from __future__ import annotations

import numpy as np
import pytest

from imkern.nn import functional as F
from imkern.nn import layers as L


def _net(dtype, seed=0):
    return L.Sequential(
        L.Conv2d(2, 6, 3, padding=1, activation="relu", dtype=dtype, seed=seed),
        L.BatchNorm2d(6, dtype=dtype),
        L.MaxPool2d(2),
        L.Conv2d(6, 8, 3, stride=1, padding="same", dtype=dtype, seed=seed + 10),
        L.ReLU(),
        L.AvgPool2d(2),
        L.Flatten(),
        L.Linear(8 * 2 * 2, 5, dtype=dtype, seed=seed + 20),
    )


def _torch_net(torch, net):
    nn = torch.nn
    c1, c2, fc = net.layers[0], net.layers[3], net.layers[7]
    t = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(6), nn.MaxPool2d(2),
                      nn.Conv2d(6, 8, 3, padding="same"), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(32, 5))
    t = t.double()
    with torch.no_grad():
        for tl, ml in ((t[0], c1), (t[4], c2), (t[8], fc)):
            tl.weight.copy_(torch.from_numpy(ml.weight.data))
            tl.bias.copy_(torch.from_numpy(ml.bias.data))
    return t


def test_matches_torch_forward_backward_and_sgd(rng):
    torch = pytest.importorskip("torch")
    net = _net(np.float64)
    tnet = _torch_net(torch, net)
    x = rng.standard_normal((4, 2, 8, 8))
    target = np.array([0, 3, 4, 1])
    loss_fn = L.CrossEntropyLoss(label_smoothing=0.1)
    opt = L.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for step in range(3):
        logits = net(x)
        loss = loss_fn(logits, target)
        gx = net.backward(loss_fn.backward())
        tx = torch.from_numpy(x).requires_grad_(True)
        tlogits = tnet(tx)
        tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(target), label_smoothing=0.1)
        tloss.backward()
        np.testing.assert_allclose(logits, tlogits.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(loss, tloss.item(), rtol=1e-10)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-8, atol=1e-10)
        pairs = [(net.layers[0].weight, tnet[0].weight), (net.layers[0].bias, tnet[0].bias),
                 (net.layers[1].weight, tnet[2].weight), (net.layers[1].bias, tnet[2].bias),
                 (net.layers[3].weight, tnet[4].weight), (net.layers[7].weight, tnet[8].weight),
                 (net.layers[7].bias, tnet[8].bias)]
        for p, tp in pairs:
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=f"step {step}")
        opt.step()
        opt.zero_grad()
        topt.step()
        topt.zero_grad()
        for p, tp in pairs:
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.layers[1].running_mean, tnet[2].running_mean.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.layers[1].running_var, tnet[2].running_var.numpy(), rtol=1e-10)


def test_layers_equal_functional(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    conv = L.Conv2d(3, 4, (3, 2), stride=2, padding=1, seed=3)
    np.testing.assert_array_equal(conv(x), F.conv2d(x, conv.weight.data, conv.bias.data, 2, 1))
    lin = L.Linear(9, 4, seed=4)
    np.testing.assert_array_equal(lin(x), F.linear(x, lin.weight.data, lin.bias.data))
    np.testing.assert_array_equal(L.MaxPool2d(3, 2, 1)(x), F.max_pool2d(x, 3, 2, 1))
    np.testing.assert_array_equal(L.ReLU()(x), F.relu(x))
    d = L.Dropout(0.3, seed=7)
    np.testing.assert_array_equal(d(x), F.dropout(x, 0.3, seed=7))
    assert np.array_equal(d.eval()(x), x)


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        L.Linear(3, 2).backward(np.ones((1, 2), np.float32))


def test_trains_on_synthetic_data():
    """Classify which quadrant holds a bright blob: the loss falls and accuracy gets high."""
    rng = np.random.default_rng(0)
    n = 256
    x = rng.normal(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 4, n)
    for i, q in enumerate(y):
        r, c = divmod(int(q), 2)
        x[i, 0, r * 6 + 1:r * 6 + 5, c * 6 + 1:c * 6 + 5] += 1.5
    net = L.Sequential(L.Conv2d(1, 8, 3, padding=1, activation="relu", seed=1), L.MaxPool2d(2),
                       L.Conv2d(8, 8, 3, padding=1, activation="relu", seed=2), L.MaxPool2d(2),
                       L.Flatten(), L.Linear(8 * 3 * 3, 4, seed=3))
    loss_fn = L.CrossEntropyLoss()
    opt = L.SGD(net.parameters(), lr=0.1, momentum=0.9)
    first = None
    for _epoch in range(8):
        for b in range(0, n, 32):
            loss = loss_fn(net(x[b:b + 32]), y[b:b + 32])
            first = loss if first is None else first
            net.backward(loss_fn.backward())
            opt.step()
            opt.zero_grad()
    acc = (net.eval()(x).argmax(1) == y).mean()
    assert loss < 0.5 * first
    assert acc > 0.9
