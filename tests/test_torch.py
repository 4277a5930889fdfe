"""imkern.torch: the torch.library operators (opcheck, gradcheck in float64 against the exact
adjoints, forward equal to imkern and to torch), the nn layers as drop-in replacements (the
same loss curve as torch.nn from the same init), torch.compile, and DDP over two CPU
processes. Skipped without PyTorch."""
from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import imkern  # noqa: E402
import imkern.torch as itorch  # noqa: E402
from _ddp import run_ddp  # noqa: E402
from conftest import random_array  # noqa: E402

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]


def _t(rng, shape, dtype=torch.float64, grad=True):
    return torch.from_numpy(random_array(rng, shape, np.float64)).to(dtype).requires_grad_(grad)


def _opcheck(op, args, kwargs=None):
    torch.library.opcheck(op, args, kwargs or {})


# ---- forward values ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(9, 11), (7, 8, 3), (2, 6, 5, 2)])
def test_filters_forward_equal_imkern(rng, shape):
    x = _t(rng, shape, torch.float32, grad=False)
    a = x.numpy()
    np.testing.assert_array_equal(itorch.gaussian(x, 1.3).numpy(), imkern.filters.gaussian(a, 1.3))
    k = random_array(rng, (3, 4), np.float64)
    np.testing.assert_array_equal(itorch.correlate(x, torch.from_numpy(k), border="wrap").numpy(),
                                  imkern.filters.correlate(a, k, border="wrap"))
    np.testing.assert_array_equal(itorch.resize(x, (5, 13), interpolation="bicubic").numpy(),
                                  imkern.transform.resize(a, (5, 13), interpolation="bicubic"))


def test_cnn_forward_equal_torch(rng):
    F = torch.nn.functional
    x = _t(rng, (2, 3, 11, 9), grad=False)
    w = _t(rng, (4, 3, 3, 3), grad=False)
    b = _t(rng, (4,), grad=False)
    torch.testing.assert_close(itorch.conv2d(x, w, b, 2, 1), F.conv2d(x, w, b, 2, 1))
    torch.testing.assert_close(itorch.conv2d(x, w, None, 1, "same"), F.conv2d(x, w, None, 1, "same"))
    torch.testing.assert_close(itorch.max_pool2d(x, 3, 2, 1, ceil_mode=True), F.max_pool2d(x, 3, 2, 1, ceil_mode=True))
    y, i = itorch.max_pool2d(x, 2, return_indices=True)
    ty, ti = F.max_pool2d(x, 2, return_indices=True)
    torch.testing.assert_close(y, ty)
    assert torch.equal(i, ti)
    torch.testing.assert_close(itorch.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                               F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))
    lw = _t(rng, (5, 9), grad=False)
    torch.testing.assert_close(itorch.linear(x, lw, None), F.linear(x, lw, None))


# ---- opcheck: schema, fake tensors, autograd registration, AOT dispatch -------------------------
def test_opcheck_filters(rng):
    x = _t(rng, (7, 9, 2))
    _opcheck(torch.ops.imkern.gaussian.default, (x, 1.0, 1.5, 0, 0, 4.0, "reflect101", 0.0))
    _opcheck(torch.ops.imkern.gaussian.default, (x, 0.0, 0.0, 5, 3, 4.0, "wrap", 0.0))
    k = _t(rng, (3, 2))
    _opcheck(torch.ops.imkern.correlate.default, (x, k, "constant", 0.5))
    _opcheck(torch.ops.imkern.resize.default, (x, 4, 13, "bilinear", False))
    _opcheck(torch.ops.imkern.resize.default, (_t(rng, (2, 9, 9, 1)), 5, 3, "area", False))


def test_opcheck_cnn(rng):
    x = _t(rng, (2, 3, 8, 7))
    w = _t(rng, (4, 3, 3, 3))
    b = _t(rng, (4,))
    _opcheck(torch.ops.imkern.conv2d.default, (x, w, b, [1, 2], [1, 0], "", [1, 1], 1))
    _opcheck(torch.ops.imkern.conv2d.default, (x, w, None, [1, 1], [0, 0], "same", [1, 1], 1))
    _opcheck(torch.ops.imkern.max_pool2d.default, (x, [2, 2], [2, 1], [1, 0], [1, 1], True))
    _opcheck(torch.ops.imkern.max_pool2d_values.default, (x, [2, 2], [2, 1], [1, 0], [1, 1], True))
    _opcheck(torch.ops.imkern.max_pool2d_values.default, (x, [3, 3], [2, 2], [1, 1], [1, 1], False))
    _opcheck(torch.ops.imkern.avg_pool2d.default, (x, [3, 2], [2, 2], [1, 1], False, False, None))
    _opcheck(torch.ops.imkern.linear.default, (x, _t(rng, (5, 7)), _t(rng, (5,))))


# ---- gradcheck (float64): the backward formulas are the exact adjoints ---------------------------
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape", [(5, 6), (2, 4, 3, 1)])
def test_gradcheck_gaussian(rng, border, shape):
    x = _t(rng, shape)
    # sigma 1.2 -> radius 5: larger than the image, so the borders reflect/wrap several times
    assert torch.autograd.gradcheck(lambda t: itorch.gaussian(t, (1.2, 0.8), border=border, cval=0.3), (x,))
    assert torch.autograd.gradcheck(lambda t: itorch.gaussian(t, 0, ksize=(3, 5), border=border), (x,))


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("kshape", [(3, 3), (2, 5)])
def test_gradcheck_correlate(rng, border, kshape):
    x = _t(rng, (5, 4, 2))
    k = _t(rng, kshape)
    assert torch.autograd.gradcheck(lambda t, kk: itorch.correlate(t, kk, border=border, cval=0.7), (x, k))


@pytest.mark.parametrize("mode,antialias", [("bilinear", False), ("bicubic", False), ("area", False),
                                            ("lanczos", False), ("nearest", False), ("nearest-exact", False),
                                            ("bilinear", True), ("bicubic", True)])
@pytest.mark.parametrize("size", [(4, 11), (9, 3)])
def test_gradcheck_resize(rng, mode, antialias, size):
    x = _t(rng, (2, 7, 6, 1))
    assert torch.autograd.gradcheck(lambda t: itorch.resize(t, size, interpolation=mode, antialias=antialias), (x,))


def test_max_pool2d_indices_only_with_autograd(rng):
    # without autograd (no_grad, or an input without requires_grad) imkern.torch.max_pool2d
    # runs the values-only op; with it, the op with indices; the values are the same
    F = torch.nn.functional
    x = _t(rng, (2, 3, 13, 12), torch.float32, grad=False)
    xg = x.clone().requires_grad_()
    ops = []

    class Log(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if "imkern" in str(func):
                ops.append(str(func))
            return func(*args, **(kwargs or {}))

    want = F.max_pool2d(x, 3, 2, 1)
    with Log():
        torch.testing.assert_close(itorch.max_pool2d(x, 3, 2, 1), want, rtol=0, atol=0)
        with torch.no_grad():
            torch.testing.assert_close(itorch.max_pool2d(xg, 3, 2, 1), want, rtol=0, atol=0)
        assert "max_pool2d_values" in ops[0] and "max_pool2d_values" in ops[1], ops
        y = itorch.max_pool2d(xg, 3, 2, 1)
        assert "max_pool2d_values" not in ops[2], ops
        y2, i2 = itorch.max_pool2d(x, 3, 2, 1, return_indices=True)
        assert "max_pool2d_values" not in ops[3], ops
    torch.testing.assert_close(y.detach(), want, rtol=0, atol=0)
    assert torch.equal(i2, F.max_pool2d(x, 3, 2, 1, return_indices=True)[1])
    y.sum().backward()
    xt = x.clone().requires_grad_()
    F.max_pool2d(xt, 3, 2, 1).sum().backward()
    torch.testing.assert_close(xg.grad, xt.grad, rtol=0, atol=0)


def test_gradcheck_cnn(rng):
    x = _t(rng, (2, 3, 7, 6))
    w = _t(rng, (4, 3, 3, 2))
    b = _t(rng, (4,))
    assert torch.autograd.gradcheck(lambda *a: itorch.conv2d(*a, stride=(2, 1), padding=1), (x, w, b))
    wg = _t(rng, (6, 1, 3, 3))
    assert torch.autograd.gradcheck(lambda a, c: itorch.conv2d(a, c, None, 1, "same", 1, 3), (x, wg))
    # distinct values: max pooling is differentiable away from ties
    xd = torch.randperm(2 * 3 * 7 * 6, dtype=torch.float64).reshape(2, 3, 7, 6).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: itorch.max_pool2d(a, 3, 2, 1), (xd,))
    assert torch.autograd.gradcheck(
        lambda a: torch.ops.imkern.max_pool2d_values(a, [3, 3], [2, 2], [1, 1], [1, 1], False), (xd,)
    )
    assert torch.autograd.gradcheck(lambda a: itorch.avg_pool2d(a, 3, 2, 1, ceil_mode=True), (x,))
    assert torch.autograd.gradcheck(lambda a, c, d: itorch.linear(a, c, d), (x, _t(rng, (5, 6)), _t(rng, (5,))))


@pytest.mark.parametrize("border", BORDERS)
def test_gradcheck_sobel(rng, border):
    x = _t(rng, (6, 5))
    assert torch.autograd.gradcheck(lambda t: itorch.sobel(t, 1, 2, ksize=5, scale=0.5, delta=1.0, border=border),
                                    (x,))


def test_opcheck_and_gradcheck_more(rng):
    x = _t(rng, (7, 6, 2))
    _opcheck(torch.ops.imkern.sobel.default, (x, 0, 1, 3, 2.0, 0.5, "reflect", 0.0))
    xa = _t(rng, (2, 3, 7, 5))
    _opcheck(torch.ops.imkern.adaptive_avg_pool2d.default, (xa, [3, 2]))
    assert torch.autograd.gradcheck(lambda t: itorch.adaptive_avg_pool2d(t, (3, None)), (xa,))
    torch.testing.assert_close(itorch.adaptive_avg_pool2d(xa, 2), torch.nn.functional.adaptive_avg_pool2d(xa, 2))
    a = x.detach().numpy()
    np.testing.assert_array_equal(itorch.sobel(x, 1, 1, ksize=5).detach().numpy(),
                                  imkern.filters.sobel(a, 1, 1, ksize=5))


def test_gradients_equal_torch(rng):
    # the same gradients as torch's own ops, in float32
    F = torch.nn.functional
    x = _t(rng, (2, 3, 12, 10), torch.float32)
    w = _t(rng, (8, 3, 3, 3), torch.float32)
    xs, ws = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    itorch.max_pool2d(itorch.conv2d(x, w, None, 1, 1), 2).square().sum().backward()
    F.max_pool2d(F.conv2d(xs, ws, None, 1, 1), 2).square().sum().backward()
    torch.testing.assert_close(x.grad, xs.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(w.grad, ws.grad, rtol=1e-4, atol=1e-4)


def test_integer_images_are_not_differentiable_but_run(rng):
    x = torch.from_numpy(random_array(rng, (9, 9), np.uint8))
    r = itorch.gaussian(x, 1.0)
    assert r.dtype == torch.uint8 and not r.requires_grad
    np.testing.assert_array_equal(r.numpy(), imkern.filters.gaussian(x.numpy(), 1.0))


# ---- layers: drop-in replacements ----------------------------------------------------------------
def _model(layers):
    nn = torch.nn
    return nn.Sequential(
        layers.Conv2d(1, 8, 3, padding=1), nn.ReLU(), layers.MaxPool2d(2),
        layers.Conv2d(8, 16, 3, padding="same"), nn.ReLU(), layers.AvgPool2d(2),
        nn.Flatten(), layers.Linear(16 * 4 * 4, 32), nn.ReLU(), layers.Linear(32, 10),
    )


def _data(seed, n=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def _train(model, steps=8, seed=0, dtype=torch.float32):
    model = model.to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = _data(seed)  # one batch, fitted a few steps: the loss must go down
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x.to(dtype)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_layers_train_like_torch_nn():
    torch.manual_seed(0)
    native = _model(torch.nn)
    torch.manual_seed(0)
    ours = _model(itorch)  # same constructor calls, same random init
    for a, b in zip(native.parameters(), ours.parameters()):
        assert torch.equal(a, b)
    ln, lo = _train(native), _train(ours)
    np.testing.assert_allclose(lo, ln, rtol=1e-4, atol=1e-5)
    assert lo[-1] < lo[0]
    for a, b in zip(native.parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_replace_layers_keeps_parameters():
    torch.manual_seed(1)
    native = _model(torch.nn)
    x, _ = _data(5, 4)
    ref = native(x)
    ids = [id(p) for p in native.parameters()]
    itorch.replace_layers(native)
    assert isinstance(native[0], itorch.Conv2d) and isinstance(native[-1], itorch.Linear)
    assert [id(p) for p in native.parameters()] == ids
    torch.testing.assert_close(native(x), ref, rtol=1e-4, atol=1e-5)
    assert native.state_dict().keys() == _model(torch.nn).state_dict().keys()


def test_conv2d_rejects_other_padding_modes():
    with pytest.raises(ValueError, match="padding_mode"):
        itorch.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")


def _compile_or_skip(model, **kw):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    return torch.compile(model, **kw)


def test_torch_compile_model_fullgraph():
    torch.manual_seed(0)
    model = _model(itorch)
    compiled = _compile_or_skip(model, backend="aot_eager", fullgraph=True)
    x, y = _data(3, 8)
    ref = model(x)
    out = compiled(x)
    torch.testing.assert_close(out, ref)
    torch.nn.functional.cross_entropy(out, y).backward()
    g = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    for a, p in zip(g, model.parameters()):
        torch.testing.assert_close(a, p.grad)


@pytest.mark.skipif(not os.environ.get("IMKERN_SLOW_TESTS"),
                    reason="inductor compiles C++ (minutes on a small machine); IMKERN_SLOW_TESTS=1 runs it")
def test_torch_compile_inductor_filters(rng):
    compiled = _compile_or_skip(lambda t: itorch.gaussian(t, 1.0).relu() + itorch.resize(t, (9, 9)).mean(),
                                fullgraph=True)
    x = _t(rng, (9, 9, 2), torch.float32, grad=False)
    try:
        got = compiled(x)
    except Exception as e:  # no C++ toolchain for inductor here
        if "inductor" in type(e).__module__ or "Compil" in type(e).__name__:
            pytest.skip(f"inductor unavailable: {e}")
        raise
    torch.testing.assert_close(got, itorch.gaussian(x, 1.0).relu() + itorch.resize(x, (9, 9)).mean())


_DDP_WORKER = textwrap.dedent("""
    import os, sys, numpy as np, torch, torch.distributed as dist
    import imkern.torch as itorch
    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(itorch.Conv2d(1, 4, 3, padding=1), nn.ReLU(), itorch.MaxPool2d(2), nn.Flatten(),
                          itorch.Linear(4 * 4 * 4, 3)).double()
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(42)
    for step in range(3):
        x = torch.rand(8, 1, 8, 8, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (8,), generator=g)
        xs, ys = x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]  # each rank its half
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp(xs), ys).backward()
        opt.step()
    np.save(out, torch.cat([p.detach().flatten() for p in model.parameters()]).numpy())
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: torch's gloo threads can abort there ("terminate called")
""")


def test_ddp_two_cpu_processes(tmp_path):
    out0, out1 = run_ddp(tmp_path, _DDP_WORKER)
    p0, p1 = np.load(out0), np.load(out1)
    np.testing.assert_array_equal(p0, p1)  # gradients were all-reduced: the replicas agree
    # and equal one process training on the whole batch (DDP averages the two halves' gradients)
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(42)
    for _ in range(3):
        x = torch.rand(8, 1, 8, 8, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        loss = 0.5 * (torch.nn.functional.cross_entropy(model(x[:4]), y[:4])
                      + torch.nn.functional.cross_entropy(model(x[4:]), y[4:]))
        loss.backward()
        opt.step()
    ref = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
    np.testing.assert_allclose(p0, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.cuda
def test_cuda_tensors_equal_cpu(rng):
    from conftest import HAS_GPU

    if not (HAS_GPU and torch.cuda.is_available()):
        pytest.skip("needs a CUDA GPU, a CUDA build of imkern, CuPy and CUDA PyTorch")
    x = _t(rng, (2, 3, 12, 10), torch.float32)
    w = _t(rng, (4, 3, 3, 3), torch.float32)
    xc, wc = x.detach().cuda().requires_grad_(), w.detach().cuda().requires_grad_()
    tf32 = imkern.get_allow_tf32()
    imkern.set_allow_tf32(False)  # full float32 on the GPU, to compare with the CPU closely
    try:
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):  # the ops run on PyTorch's current stream, not CuPy's
            y = itorch.max_pool2d(itorch.conv2d(xc, wc, None, 1, 1), 2)
            y.square().sum().backward()
        torch.cuda.synchronize()
    finally:
        imkern.set_allow_tf32(tf32)
    xs, ws = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    yr = itorch.max_pool2d(itorch.conv2d(xs, ws, None, 1, 1), 2)
    yr.square().sum().backward()
    torch.testing.assert_close(y.cpu(), yr, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(xc.grad.cpu(), xs.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(wc.grad.cpu(), ws.grad, rtol=1e-4, atol=1e-4)
    img = _t(rng, (2, 20, 17, 3), torch.float32, grad=False)
    g = itorch.gaussian(img.cuda(), 1.5, border="reflect")
    assert g.is_cuda
    torch.testing.assert_close(g.cpu(), itorch.gaussian(img, 1.5, border="reflect"), rtol=1e-5, atol=1e-5)
    gi = img.cuda().requires_grad_()
    itorch.gaussian(gi, 1.5, border="wrap").sum().backward()
    gc = img.clone().requires_grad_()
    itorch.gaussian(gc, 1.5, border="wrap").sum().backward()
    torch.testing.assert_close(gi.grad.cpu(), gc.grad, rtol=1e-5, atol=1e-5)
    r = itorch.resize(img.cuda(), (9, 31), interpolation="bicubic")
    torch.testing.assert_close(r.cpu(), itorch.resize(img, (9, 31), interpolation="bicubic"), rtol=1e-5, atol=1e-5)
