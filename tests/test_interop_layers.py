"""Arrays of other frameworks in and out of imkern.nn's layers and imkern.io: PyTorch tensors
(CPU; CUDA with a GPU) and JAX arrays give the same forward outputs, input gradients and
parameter gradients as NumPy, come back as the caller's kind, are read zero-copy, and torch
state dicts load. Skipped without the framework."""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import HAS_GPU, random_array
from imkern import nn, optim

torch = pytest.importorskip("torch")

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not (HAS_GPU and torch.cuda.is_available()):
        pytest.skip("needs a CUDA GPU, a CUDA build of imkern, CuPy and CUDA PyTorch")
    return request.param


def _np(t):
    return t.detach().cpu().numpy()


def _match(got, want, exact):
    got, want = np.asarray(got), np.asarray(want)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        scale = float(np.abs(want).max(initial=0)) or 1.0
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * scale)


# (layer factory, input shape)
LAYERS = {
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1, seed=1), (2, 3, 9, 8)),
    "Linear": (lambda: nn.Linear(5, 3, seed=2), (4, 5)),
    "ReLU": (nn.ReLU, (2, 3, 4, 5)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (2, 3, 4, 5)),
    "Sigmoid": (nn.Sigmoid, (3, 7)),
    "Tanh": (nn.Tanh, (3, 7)),
    "GELU": (nn.GELU, (3, 7)),
    "Softmax": (lambda: nn.Softmax(1), (3, 7)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (2, 3, 8, 7)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 8, 7)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 8, 7)),
    "Flatten": (nn.Flatten, (2, 3, 4, 5)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), (4, 3, 5, 6)),
    "Dropout": (lambda: nn.Dropout(0.3, seed=5), (4, 9)),
    "Identity": (nn.Identity, (2, 3)),
    "Sequential": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, seed=3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5, seed=4)
        ),
        (2, 3, 8, 8),
    ),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_forward_backward_torch_equals_numpy(rng, device, name):
    make, shape = LAYERS[name]
    a = random_array(rng, shape, np.float32)
    ref, lay = make(), make()
    if device == "cuda":
        ref.to("cuda"), lay.to("cuda")
    xa = a if device == "cpu" else __import__("cupy").asarray(a)
    want = ref(xa)
    x = torch.from_numpy(a.copy()).to(device)
    before = _np(x).copy()
    got = lay(x)
    assert isinstance(got, torch.Tensor) and got.device.type == device
    exact = device == "cpu"
    _match(_np(got), want if device == "cpu" else want.get(), exact)
    g = random_array(rng, tuple(got.shape), np.float32)
    gwant = ref.backward(g if device == "cpu" else __import__("cupy").asarray(g))
    ggot = lay.backward(torch.from_numpy(g).to(device))
    assert isinstance(ggot, torch.Tensor)
    _match(_np(ggot), gwant if device == "cpu" else gwant.get(), exact)
    for (n, p), (_, q) in zip(ref.named_parameters(), lay.named_parameters()):
        assert type(q.data) is type(p.data), n  # the parameters stay NumPy / CuPy
        _match(A_host(q.grad), A_host(p.grad), exact)
    np.testing.assert_array_equal(_np(x), before)  # input unchanged


def A_host(a):
    return a.get() if hasattr(a, "get") else a


def test_zero_copy_strided_and_requires_grad(rng):
    conv = nn.Conv2d(2, 3, 3, seed=0)
    t = torch.randn(2, 2, 9, 10, requires_grad=True)
    y = conv(t)
    assert isinstance(y, torch.Tensor) and not y.requires_grad
    # the layer kept a view of the tensor's memory for its backward, not a copy
    assert np.shares_memory(conv._cache["x"], t.detach().numpy())
    ts = torch.randn(2, 9, 10, 4).permute(0, 3, 1, 2)[:, 1:3]  # non-contiguous
    _match(_np(conv(ts)), conv(np.ascontiguousarray(ts.numpy())), True)


def test_loss_and_training_steps_torch_equal_numpy(rng):
    """A few SGD steps fed torch tensors leave the same parameters as NumPy-fed steps."""
    a = random_array(rng, (6, 3, 8, 8), np.float32)
    t = rng.integers(0, 5, 6)

    def run(x, target):
        net = LAYERS["Sequential"][0]()
        loss_fn, opt = nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1)
        losses = []
        for _ in range(3):
            loss = loss_fn(net(x), target)
            losses.append(float(loss))
            net.backward(loss_fn.backward())
            opt.step()
            opt.zero_grad()
        return losses, [A_host(p.data) for p in net.parameters()]

    l1, p1 = run(a, t)
    l2, p2 = run(torch.from_numpy(a), torch.from_numpy(t))
    assert l1 == l2
    for u, v in zip(p1, p2):
        np.testing.assert_array_equal(u, v)


def test_load_torch_state_dict(rng):
    tnet = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.BatchNorm2d(4))
    tnet.eval()
    with torch.no_grad():
        tnet[2].running_mean.uniform_(-0.5, 0.5)
        tnet[2].running_var.uniform_(0.5, 1.5)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4))
    sd = {k: v for k, v in tnet.state_dict().items() if not k.endswith("num_batches_tracked")}
    net.load_state_dict(sd)
    net.eval()
    assert all(isinstance(p.data, np.ndarray) for p in net.parameters())
    x = torch.from_numpy(random_array(rng, (2, 3, 7, 6), np.float32))
    with torch.no_grad():
        want = tnet(x)
    got = net(x)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-5)


def test_layers_with_jax_arrays(rng):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    net = LAYERS["Sequential"][0]()
    a = random_array(rng, (2, 3, 8, 8), np.float32)
    got = net(jnp.asarray(a))
    assert isinstance(got, jax.Array)
    np.testing.assert_array_equal(np.asarray(got), LAYERS["Sequential"][0]()(a))
    g = net.backward(jnp.ones(got.shape, jnp.float32))
    assert isinstance(g, jax.Array) and g.shape == a.shape


def test_imwrite_foreign_arrays(rng, tmp_path):
    pytest.importorskip("PIL")
    a = random_array(rng, (9, 11, 3), np.uint8)
    imkern.io.imwrite(tmp_path / "t.png", torch.from_numpy(a))
    np.testing.assert_array_equal(imkern.io.imread(tmp_path / "t.png"), a)
    g = random_array(rng, (7, 5), np.uint16)
    imkern.io.imwrite(tmp_path / "t16.png", torch.from_numpy(g.astype(np.int32)).to(torch.uint16))
    np.testing.assert_array_equal(imkern.io.imread(tmp_path / "t16.png", mode="unchanged"), g)
    try:
        import jax.numpy as jnp
    except ImportError:
        return
    imkern.io.imwrite(tmp_path / "j.bmp", jnp.asarray(a))
    np.testing.assert_array_equal(imkern.io.imread(tmp_path / "j.bmp"), a)
    with pytest.raises(TypeError, match="image"):
        imkern.io.imwrite(tmp_path / "bad.png", torch.zeros((3, 3), dtype=torch.int64))
