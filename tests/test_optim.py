"""imkern.optim: each optimizer's steps equal torch.optim's on the same gradients (float32 to 1e-6,
float64 to 1e-12), on every ISA level and thread count; schedules equal torch's learning rates;
bad options raise naming the argument."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import to_numpy
from imkern import nn, optim

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=5e-4)),
    ("SGD", dict(lr=0.05, momentum=0.9, maximize=True)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=1e-2)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, betas=(0.3, 0.9), maximize=True)),  # lerp weight >= 0.5 branch
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
]


def _run(name, kw, dtype, rng, xp, shapes=((7, 3, 3, 3), (7,), (1000, 33), (1,)), steps=5):
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    ps = [nn.Parameter(xp.asarray(a.copy())) for a in init]
    tps = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt = getattr(optim, name)(ps, **kw)
    topt = getattr(torch.optim, name)(tps, foreach=False, **kw)
    for step in range(steps):
        for p, tp, g in zip(ps, tps, grads[step]):
            p.grad = xp.asarray(g)
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        opt.zero_grad()
        topt.zero_grad()
    return ps, tps


@pytest.mark.parametrize("name,kw", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_steps_equal_torch(name, kw, dtype, rng, xp):
    if xp is not np and dtype == np.float64:
        pytest.skip("CUDA optimizers take float32/float16/bfloat16")
    ps, tps = _run(name, kw, dtype, rng, xp)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for p, tp in zip(ps, tps):
        assert p.data.dtype == dtype
        np.testing.assert_allclose(to_numpy(p.data), tp.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name,kw", [CASES[3], CASES[7], CASES[10]])
def test_every_isa_and_thread_count(name, kw, rng, isa, threads):
    ps, tps = _run(name, kw, np.float32, rng, np, shapes=((70001,), (5, 3)), steps=3)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_skips_parameters_without_grad_and_empty(rng):
    a = nn.Parameter(np.ones(3, np.float32))
    b = nn.Parameter(np.ones((0, 4), np.float32))
    opt = optim.SGD([a, b], lr=1.0, momentum=0.9)
    opt.step()  # no gradients yet
    assert (a.data == 1).all()
    b.grad = np.ones((0, 4), np.float32)
    opt.step()


def test_param_groups_and_model_parameters(rng):
    m = nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1))
    opt = optim.SGD([{"params": m[0].parameters(), "lr": 0.0}, {"params": m[2].parameters()}], lr=0.1)
    w0, w2 = m[0].weight.data.copy(), m[2].weight.data.copy()
    x = rng.standard_normal((5, 4)).astype(np.float32)
    m(x)
    m.backward(np.ones((5, 2), np.float32))
    opt.step()
    assert np.array_equal(m[0].weight.data, w0)
    assert not np.array_equal(m[2].weight.data, w2)


@pytest.mark.parametrize("sched,kw,epochs", [
    ("StepLR", dict(step_size=3, gamma=0.5), 10),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=1e-3), 23),
    ("CosineAnnealingLR", dict(T_max=1), 5),
])
def test_schedules_equal_torch(sched, kw, epochs):
    p = nn.Parameter(np.zeros(1, np.float32))
    tp = torch.nn.Parameter(torch.zeros(1))
    opt, topt = optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    s, ts = getattr(optim, sched)(opt, **kw), getattr(torch.optim.lr_scheduler, sched)(topt, **kw)
    for _ in range(epochs):
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12, abs=1e-15)
        opt.step()
        topt.step()
        s.step()
        ts.step()


def test_bad_arguments():
    p = [nn.Parameter(np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="params"):
        optim.Adam([])
    with pytest.raises(TypeError, match="Parameter"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(TypeError, match="lr"):
        optim.SGD(p, lr="0.1")
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(optim.SGD(p, lr=0.1), step_size=0)
    q = nn.Parameter(np.zeros(2, np.float32))
    q.grad = np.zeros(2, np.float64)
    with pytest.raises(TypeError, match="dtype"):
        optim.SGD([q], lr=0.1).step()
    q.grad = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="shape"):
        optim.SGD([q], lr=0.1).step()


def test_update_is_in_place_and_training_step_equals_torch(rng):
    """One training step of a small CNN with Adam equals torch's to 1e-5 (same weights, batch)."""
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, seed=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(4 * 4 * 4, 3, seed=1))
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                            torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with torch.no_grad():
        for (_, a), b in zip(m.named_parameters(), t.parameters()):
            b.copy_(torch.from_numpy(a.data))
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    ids = [id(p.data) for p in m.parameters()]
    opt, topt = optim.Adam(m.parameters(), lr=1e-2), torch.optim.Adam(t.parameters(), lr=1e-2, foreach=False)
    loss = nn.CrossEntropyLoss()
    for _ in range(2):
        loss(m(x), y)
        m.backward(loss.backward())
        opt.step()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(t(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
        topt.zero_grad()
    assert [id(p.data) for p in m.parameters()] == ids
    for a, b in zip(m.parameters(), t.parameters()):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-5, atol=1e-5)
