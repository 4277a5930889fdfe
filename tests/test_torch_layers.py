"""imkern.torch's nn layers beyond Conv2d/Linear/pooling: BatchNorm1d/2d, the activations,
Softmax/LogSoftmax, Dropout and CrossEntropyLoss as drop-in replacements. A torchvision-style
model (ResNet basic blocks with BatchNorm) trains with the same loss curve, parameters and
running statistics as torch.nn from the same init; replace_layers swaps the new layers in.
Skipped without PyTorch."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import imkern.torch as itorch  # noqa: E402
from _ddp import run_ddp  # noqa: E402

nn = torch.nn


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, with the layer classes taken from ``layers``."""

    def __init__(self, layers, cin, cout, stride=1):
        super().__init__()
        self.conv1 = layers.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = layers.BatchNorm2d(cout)
        self.relu = layers.ReLU(inplace=True)
        self.conv2 = layers.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = layers.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(layers.Conv2d(cin, cout, 1, stride, bias=False), layers.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    def __init__(self, layers, classes=5):
        super().__init__()
        self.stem = nn.Sequential(
            layers.Conv2d(3, 8, 3, 1, 1, bias=False), layers.BatchNorm2d(8), layers.ReLU(), layers.MaxPool2d(2)
        )
        self.layer1 = BasicBlock(layers, 8, 8)
        self.layer2 = BasicBlock(layers, 8, 16, stride=2)
        self.pool = layers.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            layers.Linear(16, 12), layers.BatchNorm1d(12), layers.GELU(), layers.Linear(12, classes)
        )

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.head(torch.flatten(self.pool(x), 1))


def _batches(steps=4, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, 3, 12, 12, generator=g), torch.randint(0, 5, (n,), generator=g)) for _ in range(steps)]


def _train(model, loss_fn, batches):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    model.train()
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_resnet_with_batchnorm_trains_like_torch_nn():
    torch.manual_seed(0)
    native = TinyResNet(nn)
    torch.manual_seed(0)
    ours = TinyResNet(itorch)
    assert isinstance(ours.layer1.bn1, itorch.BatchNorm2d) and isinstance(ours.head[2], itorch.GELU)
    batches = _batches(1) * 5  # one batch fitted a few steps: the loss must go down
    ln = _train(native, nn.CrossEntropyLoss(label_smoothing=0.05), batches)
    lo = _train(ours, itorch.CrossEntropyLoss(label_smoothing=0.05), batches)
    np.testing.assert_allclose(lo, ln, rtol=1e-4, atol=1e-5)
    assert lo[-1] < lo[0]
    sn, so = native.state_dict(), ours.state_dict()
    assert sn.keys() == so.keys()
    for k in sn:  # parameters, running statistics and num_batches_tracked
        torch.testing.assert_close(so[k], sn[k], rtol=1e-3, atol=1e-4, msg=k)
    native.eval()
    ours.eval()
    x = batches[0][0]
    torch.testing.assert_close(ours(x), native(x), rtol=1e-3, atol=1e-4)


def test_replace_layers_swaps_the_new_layers():
    torch.manual_seed(2)
    model = TinyResNet(nn)
    model.extra = nn.Sequential(
        nn.Sigmoid(),
        nn.Tanh(),
        nn.LeakyReLU(0.2),
        nn.Softmax(dim=1),
        nn.LogSoftmax(1),
        nn.Dropout(0.3),
        nn.GELU(approximate="tanh"),
        nn.Softmax(),
    )
    x = torch.rand(4, 3, 12, 12)
    model.eval()
    ref = model(x)
    ids = {k: id(v) for k, v in model.state_dict(keep_vars=True).items()}
    itorch.replace_layers(model)
    assert {k: id(v) for k, v in model.state_dict(keep_vars=True).items()} == ids
    assert isinstance(model.layer2.downsample[1], itorch.BatchNorm2d)
    assert isinstance(model.head[1], itorch.BatchNorm1d)
    assert isinstance(model.layer1.relu, itorch.ReLU)
    kinds = [type(m) for m in model.extra]
    assert kinds[:6] == [
        itorch.Sigmoid,
        itorch.Tanh,
        itorch.LeakyReLU,
        itorch.Softmax,
        itorch.LogSoftmax,
        itorch.Dropout,
    ]
    assert kinds[6:] == [nn.GELU, nn.Softmax]  # tanh GELU and an implicit softmax dim stay torch's
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)


def test_activation_layers_equal_torch():
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    for ours, theirs in [
        (itorch.ReLU(), nn.ReLU()),
        (itorch.LeakyReLU(0.3), nn.LeakyReLU(0.3)),
        (itorch.GELU(), nn.GELU()),
        (itorch.Sigmoid(), nn.Sigmoid()),
        (itorch.Tanh(), nn.Tanh()),
        (itorch.Softmax(1), nn.Softmax(1)),
        (itorch.LogSoftmax(2), nn.LogSoftmax(2)),
    ]:
        a = ours(x)
        b = theirs(x)
        torch.testing.assert_close(a, b)
        w = torch.randn_like(a)
        torch.testing.assert_close(torch.autograd.grad(a, x, w)[0], torch.autograd.grad(b, x, w)[0])
    with pytest.raises(ValueError, match="approximate"):
        itorch.GELU("tanh")
    with pytest.raises(ValueError, match="weight"):
        itorch.CrossEntropyLoss(weight=torch.ones(3))


def test_dropout_layer():
    torch.manual_seed(0)
    d = itorch.Dropout(0.25)
    x = torch.ones(20000, dtype=torch.float64, requires_grad=True)
    y = d(x)
    kept = y != 0
    assert abs(kept.double().mean().item() - 0.75) < 0.02
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # the same mask in the backward
    d.eval()
    assert d(x) is x


def test_batchnorm_momentum_none_and_no_tracking():
    x = torch.randn(6, 3, 4, 4)
    for kw in (dict(momentum=None), dict(track_running_stats=False), dict(affine=False)):
        torch.manual_seed(0)
        a, b = nn.BatchNorm2d(3, **kw), itorch.BatchNorm2d(3, **kw)
        for _ in range(3):
            torch.testing.assert_close(b(x), a(x))
        torch.testing.assert_close(b.state_dict(), a.state_dict())
        a.eval()
        b.eval()
        torch.testing.assert_close(b(x), a(x))


def test_torch_compile_train_step_fullgraph():
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    torch.manual_seed(0)
    model = TinyResNet(itorch)
    torch.manual_seed(0)
    twin = TinyResNet(itorch)
    loss_fn = itorch.CrossEntropyLoss()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x, y = _batches(1)[0]
    loss = loss_fn(compiled(x), y)
    loss.backward()
    ref = loss_fn(twin(x), y)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    for (k, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=k)
    torch.testing.assert_close(model.state_dict(), twin.state_dict())  # running statistics updated once


_DDP_WORKER = textwrap.dedent("""
    import os, sys, numpy as np, torch, torch.distributed as dist
    import imkern.torch as itorch
    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    nn = torch.nn
    result = {}
    for name, layers in (("torch", nn), ("imkern", itorch)):
        torch.manual_seed(0)
        model = nn.Sequential(layers.Conv2d(3, 4, 3, padding=1), layers.BatchNorm2d(4), layers.ReLU(),
                              layers.AdaptiveAvgPool2d(1), nn.Flatten(), layers.Linear(4, 3)).double()
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.3)
        g = torch.Generator().manual_seed(42 + rank)  # each rank its own data
        for _ in range(3):
            x = torch.rand(4, 3, 6, 6, generator=g, dtype=torch.float64)
            y = torch.randint(0, 3, (4,), generator=g)
            opt.zero_grad()
            layers.CrossEntropyLoss()(ddp(x), y).backward()
            opt.step()
        result[name] = torch.cat([t.detach().double().flatten() for t in model.state_dict().values()]).numpy()
    np.savez(out, **result)
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: torch's gloo threads can abort there ("terminate called")
""")


def test_ddp_batchnorm_two_cpu_processes(tmp_path):
    # DDP with BatchNorm: buffers broadcast from rank 0, gradients all-reduced; the imkern layers
    # end each rank with the same state as torch.nn's layers under the same DDP run
    out0, out1 = run_ddp(tmp_path, _DDP_WORKER, suffix=".npz")
    r0, r1 = np.load(out0), np.load(out1)
    np.testing.assert_allclose(r0["imkern"], r0["torch"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r1["imkern"], r1["torch"], rtol=1e-10, atol=1e-12)
