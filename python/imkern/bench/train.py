"""Benchmark cases for training and inference (CPU): one epoch of the demo's CNN
(``python -m imkern demo``: conv-relu-pool x2, dense x2 on 1437 32x32 images, batch 32, Adam)
in imkern against the same model, weights, batches, optimizer and thread count in PyTorch; and
predict throughput of the same model (batches of 256) against torch under ``no_grad``."""

from __future__ import annotations

import numpy as np

from . import Case, optional_import

N_TRAIN, N_TEST, BATCH = 1437, 360, 32  # the demo's split of scikit-learn's 1,797 digits


def _torch():
    torch = optional_import("torch")
    if torch is not None:
        import imkern

        torch.set_num_threads(imkern.get_num_threads())
    return torch


def _data(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 32, 32), dtype=np.float32), rng.integers(0, 10, n)


def _epoch_setup():
    import imkern
    from imkern import nn, optim
    from imkern._cli.demo import build_model, build_torch_model

    x, y = _data(N_TRAIN)
    order = np.random.default_rng(1).permutation(N_TRAIN)
    batches = [
        (np.ascontiguousarray(x[order[i : i + BATCH]]), y[order[i : i + BATCH]]) for i in range(0, N_TRAIN, BATCH)
    ]
    imkern.manual_seed(0)
    model = build_model()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    loss = nn.CrossEntropyLoss()

    def fn():
        model.train()
        for xb, yb in batches:
            loss(model(xb), yb)
            model.backward_params(loss.backward())
            opt.step()
            opt.zero_grad()

    peers = {}
    torch = _torch()
    if torch is not None:
        t = build_torch_model(torch, model)
        topt = torch.optim.Adam(t.parameters(), lr=2e-3)
        tb = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches]

        def peer():
            t.train()
            for xb, yb in tb:
                topt.zero_grad()
                torch.nn.functional.cross_entropy(t(xb), yb).backward()
                topt.step()

        peers["torch"] = peer
    return fn, peers


def _predict_setup():
    import imkern
    from imkern import nn
    from imkern._cli.demo import build_model, build_torch_model

    x, _ = _data(N_TEST)
    imkern.manual_seed(0)
    model = build_model().eval()

    def fn():
        return nn.predict(model, x, batch_size=256)

    peers = {}
    torch = _torch()
    if torch is not None:
        t = build_torch_model(torch, model).eval()
        xt = torch.from_numpy(x)

        def peer():
            with torch.no_grad():
                return torch.cat([t(xt[i : i + 256]) for i in range(0, N_TEST, 256)])

        peers["torch"] = peer
    return fn, peers


CASES = [
    Case(
        f"train_epoch demo_cnn batch{BATCH} float32 {N_TRAIN}x1x32x32",
        "cpu",
        _epoch_setup,
        note="one epoch: forward, cross entropy, backward, Adam step per batch",
    ),
    Case(
        f"predict demo_cnn batch256 float32 {N_TEST}x1x32x32",
        "cpu",
        _predict_setup,
        note="eval-mode forward in batches of 256 (images/s = 360 / time)",
    ),
]
