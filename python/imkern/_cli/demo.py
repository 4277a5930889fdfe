"""``python -m imkern demo``: the whole pipeline on scikit-learn's handwritten digits (1,797 8x8
images, 10 classes, shipped with scikit-learn: nothing is downloaded).

1. Preprocess with imkern: resize 8x8 -> 32x32 (imkern.transform.resize), normalize to a tensor
   (imkern.transform.to_tensor with the training set's mean/std); filters on samples
   (imkern.filters.gaussian, sobel edges, a morphological opening).
2. Train a small CNN (conv-relu-pool twice, dense twice) with imkern's kernels, on batches
   shifted at random by up to 2 pixels (imkern.data.RandomCrop with padding).
3. Evaluate on a held-out 20% (stratified split fixed by the seed); print a timing table.
4. Write demo.png (samples, filter outputs, training curve, confusion matrix), model.npz and
   summary.json to --out.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from . import CLIError

SIZE = 32
CLASSES = [str(i) for i in range(10)]
OUTPUTS = ("demo.png", "model.npz", "summary.json")


def build_model(seed=None):
    """The demo's CNN: (N, 1, 32, 32) -> 10 logits; conv-relu-pool twice, dense twice (dropout
    before the last)."""
    from .. import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, seed=seed),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, seed=None if seed is None else seed + 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 128, seed=None if seed is None else seed + 2),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 10, seed=None if seed is None else seed + 3),
    )


def build_torch_model(torch, model):
    """The same architecture in PyTorch with ``model``'s weights (for the benchmark)."""
    tnn = torch.nn
    t = tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(32 * 8 * 8, 128),
        tnn.ReLU(),
        tnn.Dropout(0.3),
        tnn.Linear(128, 10),
    )
    with torch.no_grad():
        for (_, p), tp in zip(model.named_parameters(), t.parameters()):
            tp.copy_(torch.from_numpy(np.asarray(p.data)))
    return t


def _need(module_name, what):
    try:
        return __import__(module_name, fromlist=["_"])
    except ImportError:
        raise CLIError(f"{what} needs {module_name.split('.')[0]}: pip install 'imkern[demo]'") from None


def missing_ops():
    """Names of the imkern ops the demo calls that this build lacks."""
    import imkern

    need = {"transform": ("resize", "to_tensor"), "filters": ("gaussian", "sobel", "opening")}
    out = []
    for mod, names in need.items():
        m = getattr(imkern, mod, None)
        out += [f"imkern.{mod}.{n}" for n in names if m is None or not hasattr(m, n)]
    return out


def load_digits_u8():
    """scikit-learn's digits as (1797, 8, 8, 1) uint8 (0..16 scaled to 0..255) and int64 labels."""
    datasets = _need("sklearn.datasets", "the demo")
    d = datasets.load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, d.target.astype(np.int64)


def split(labels, seed, test_fraction=0.2):
    """Stratified train/test indices, fixed by the seed."""
    ms = _need("sklearn.model_selection", "the demo")
    idx = np.arange(len(labels))
    tr, te = ms.train_test_split(idx, test_size=test_fraction, stratify=labels, random_state=seed)
    return np.sort(tr), np.sort(te)


def preprocess(images, train_idx):
    """Resize to 32x32 (uint8) and normalize with the training set's statistics -> (N, 1, 32, 32)."""
    import imkern

    big = imkern.transform.resize(images, (SIZE, SIZE), interpolation="bilinear")
    tr = big[train_idx].astype(np.float64) / 255.0
    mean, std = float(tr.mean()), float(tr.std())
    return big, imkern.transform.to_tensor(big, mean=mean, std=std), mean, std


def filter_samples(big):
    """The filters shown on samples: Gaussian blur, Sobel edge magnitude, opening."""
    import imkern

    f = imkern.filters
    g = f.gaussian(big, sigma=1.0)
    gx, gy = f.sobel(big, 1, 0), f.sobel(big, 0, 1)
    edges = np.hypot(gx, gy)
    opened = f.opening(big, 3)
    return {"gaussian sigma=1": g, "sobel edges": edges, "opening 3x3": opened}


def _figure(path, samples, filtered, hist, cm):
    _need("matplotlib", "the demo figure")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(samples)
    fig = plt.figure(figsize=(12, 10))
    rows = 1 + len(filtered)
    grid = fig.add_gridspec(rows + 4, k)
    panels = [("input (32x32)", samples)] + list(filtered.items())
    for r, (name, imgs) in enumerate(panels):
        for c in range(k):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(np.squeeze(imgs[c]), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    ax = fig.add_subplot(grid[rows:, : k // 2])
    ep = np.arange(1, len(hist["loss"]) + 1)
    ax.plot(ep, hist["loss"], "o-", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(ep, hist["accuracy"], "s--", color="tab:green", label="train accuracy")
    ax2.plot(ep, hist["val_accuracy"], "^-", color="tab:red", label="held-out accuracy")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0.5, 1.0)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    ax.set_title("training curve")
    ax = fig.add_subplot(grid[rows:, k // 2 :])
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                )
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (held-out 20%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    import imkern

    from .. import nn, optim
    from ..data import DataLoader, RandomCrop

    if args.epochs < 1:
        raise CLIError(f"--epochs: expected a positive number, got {args.epochs}")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size: expected a positive number, got {args.batch_size}")
    if args.seed < 0:
        raise CLIError(f"--seed: expected a non-negative number, got {args.seed}")
    missing = missing_ops()
    if missing:
        raise CLIError("this imkern lacks " + ", ".join(missing) + " (the demo's preprocessing and filters)")
    if args.device == "cuda" and not imkern.info()["gpus"]:
        raise CLIError("--device cuda: no CUDA GPU is visible (or this imkern was built without CUDA)")
    _need("matplotlib", "the demo figure")
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out}: exists and is not a folder")
    clash = [n for n in OUTPUTS if os.path.exists(os.path.join(out, n))]
    if clash and not args.force:
        raise CLIError(f"{out} already holds {', '.join(clash)} from an earlier run; pass --force to overwrite")
    os.makedirs(out, exist_ok=True)
    progress = not args.no_progress
    times = {}

    t = time.perf_counter()
    images, labels = load_digits_u8()
    train_idx, test_idx = split(labels, args.seed)
    times["load digits (scikit-learn)"] = time.perf_counter() - t

    t = time.perf_counter()
    big, x, mean, std = preprocess(images, train_idx)
    times["preprocess: resize + to_tensor"] = time.perf_counter() - t

    t = time.perf_counter()
    pick = np.array([np.flatnonzero(labels[test_idx] == c)[0] for c in range(10)])
    samples = big[test_idx][pick]
    filtered = filter_samples(big)
    filtered = {k: v[test_idx][pick] for k, v in filtered.items()}
    times["filters (gaussian, sobel, opening)"] = time.perf_counter() - t

    imkern.manual_seed(args.seed)
    model = build_model().to(args.device)
    y_train = labels[train_idx]
    x_test, y_test = x[test_idx], labels[test_idx]
    # Batches: to_tensor on the resized uint8 images with a random 2-pixel shift (crop with
    # padding), prepared in the loader's background thread.
    loader = DataLoader(
        big[train_idx],
        y_train,
        args.batch_size,
        shuffle=True,
        seed=args.seed,
        mean=mean,
        std=std,
        augment=[RandomCrop(SIZE, padding=2)],
    )
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    print(
        f"imkern demo: digits {len(train_idx)} train / {len(test_idx)} held out, 32x32, device {args.device}, "
        f"{imkern.get_num_threads()} threads"
    )
    t = time.perf_counter()
    hist = nn.fit(
        model, loader, epochs=args.epochs, optimizer=opt, scheduler=sched, val=(x_test, y_test), progress=progress
    )
    train_seconds = time.perf_counter() - t
    times["train"] = train_seconds

    t = time.perf_counter()
    logits = nn.predict(model, x_test, batch_size=256)
    pred = np.asarray(logits.get() if hasattr(logits, "get") else logits).argmax(1)
    predict_seconds = time.perf_counter() - t
    times["predict (held-out)"] = predict_seconds
    acc = float((pred == y_test).mean())
    cm = np.zeros((10, 10), np.int64)
    np.add.at(cm, (y_test, pred), 1)

    t = time.perf_counter()
    _figure(os.path.join(out, "demo.png"), samples, filtered, hist, cm)
    nn.save(
        model,
        os.path.join(out, "model.npz"),
        metadata={
            "classes": CLASSES,
            "size": [SIZE, SIZE],
            "mode": "L",
            "mean": mean,
            "std": std,
            "source": "imkern demo (scikit-learn digits, 8x8 upscaled to 32x32, values 0..255)",
        },
    )
    ips = len(train_idx) * args.epochs / train_seconds
    summary = {
        "accuracy": acc,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_seconds": train_seconds,
        "images_per_second": ips,
        "predict_images_per_second": len(test_idx) / predict_seconds,
        "device": args.device,
        "threads": imkern.get_num_threads(),
        "train_images": int(len(train_idx)),
        "test_images": int(len(test_idx)),
        "history": {k: [float(v) for v in vals] for k, vals in hist.items()},
        "stage_seconds": times,
        "imkern": imkern.__version__,
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    times["write figure, model, summary"] = time.perf_counter() - t

    w = max(len(k) for k in times)
    print()
    print(f"{'stage':{w}s}  seconds")
    for k, v in times.items():
        print(f"{k:{w}s}  {v:7.2f}")
    print(f"{'total':{w}s}  {sum(times.values()):7.2f}")
    print()
    print(f"held-out accuracy {acc:.2%} ({int((pred == y_test).sum())}/{len(y_test)}) after {args.epochs} epochs")
    print(f"train {ips:,.0f} images/s, predict {len(test_idx) / predict_seconds:,.0f} images/s")
    print(
        f"wrote {os.path.join(out, 'demo.png')}, {os.path.join(out, 'model.npz')}, {os.path.join(out, 'summary.json')}"
    )
    return 0
