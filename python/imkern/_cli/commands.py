"""The ``imkern`` commands (argparse namespaces in, exit status out); see imkern/__main__.py."""

from __future__ import annotations

import ast
import glob
import inspect
import json
import os
import sys
from typing import List

import numpy as np

from . import CLIError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def demo(args) -> int:
    from . import demo as d

    return d.run(args)


def _io():
    import imkern

    io = getattr(imkern, "io", None)
    if io is None:
        raise CLIError("this imkern lacks imkern.io (image files need Pillow: pip install pillow)")
    return io


def _check_gpu(device):
    import imkern

    if device == "cuda" and not imkern.info()["gpus"]:
        raise CLIError("--device cuda: no CUDA GPU is visible (or this imkern was built without CUDA)")


# ---- filter ----------------------------------------------------------------------------------------


def _filter_ops():
    import imkern

    f = imkern.filters
    return {n: getattr(f, n) for n in getattr(f, "__all__", []) if callable(getattr(f, n, None))}


def _inputs(spec: str) -> List[str]:
    if os.path.isdir(spec):
        files = sorted(
            os.path.join(spec, n) for n in os.listdir(spec) if n.lower().endswith(IMAGE_EXTS) and not n.startswith(".")
        )
        if not files:
            raise CLIError(f"{spec}: no image files ({', '.join(IMAGE_EXTS)}) in the folder")
        return files
    if os.path.exists(spec):
        return [spec]
    files = sorted(p for p in glob.glob(spec) if os.path.isfile(p))
    if not files:
        raise CLIError(f"{spec}: no such file or folder, and no file matches it as a glob")
    return files


def _parse_params(extra: List[str], op, name: str) -> dict:
    sig = inspect.signature(op)
    accepted = [p for p in sig.parameters if p not in ("image", "out")]
    kw = {}
    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--"):
            raise CLIError(f"unexpected argument {tok!r} (parameters are --name value)")
        key = tok[2:].replace("-", "_")
        if "=" in key:
            key, val = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise CLIError(f"--{key}: missing a value")
            val = extra[i + 1]
            i += 2
        if key not in accepted:
            raise CLIError(f"--op {name} has no parameter {key!r}; it takes: " + ", ".join(accepted))
        try:
            kw[key] = ast.literal_eval(val)
        except (ValueError, SyntaxError):
            kw[key] = val  # a string: border="reflect", kind="binary", ...
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("image", "out")
        and p.default is inspect.Parameter.empty
        and p.kind is not p.VAR_KEYWORD
        and p.name not in kw
    ]
    if missing:
        raise CLIError(f"--op {name} needs " + ", ".join(f"--{m}" for m in missing))
    return kw


def _to_u8(y, normalize: bool):
    if isinstance(y, tuple):
        raise CLIError("this op returns several images; pick an op that returns one image")
    if y.dtype == np.uint8:
        return y
    if y.dtype == np.uint16 and not normalize:
        return y
    y = y.astype(np.float64)
    if normalize:
        lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
        y = (y - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(y)
    else:
        y = np.abs(y)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def filter(args, extra=None) -> int:
    ops = _filter_ops()
    if args.list:
        for n, op in ops.items():
            params = [str(p) for p in inspect.signature(op).parameters.values() if p.name not in ("image", "out")]
            print(f"{n}({', '.join(params)})")
        return 0
    extra = list(extra or [])
    if not args.input or not args.output or not args.op:
        raise CLIError("usage: imkern filter IN OUT --op NAME [--param value ...] (--list shows the ops)")
    if args.op not in ops:
        raise CLIError(f"--op {args.op!r}: not an imkern.filters op; choose from " + ", ".join(ops))
    op = ops[args.op]
    kw = _parse_params(extra, op, args.op)
    io = _io()
    files = _inputs(args.input)
    single = (
        len(files) == 1
        and not os.path.isdir(args.input)
        and not args.output.endswith(os.sep)
        and not os.path.isdir(args.output)
    )
    if single:
        outs = [args.output]
    else:
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise CLIError(f"{args.output}: several inputs need an output folder, and this is a file")
        os.makedirs(args.output, exist_ok=True)
        outs = [os.path.join(args.output, os.path.basename(p)) for p in files]
    if not args.force:
        clash = [o for o in outs if os.path.exists(o)]
        if clash:
            raise CLIError(
                f"{clash[0]} exists{' (and %d more)' % (len(clash) - 1) if len(clash) > 1 else ''}; "
                "pass --force to overwrite"
            )
    from ..nn._fit import _bar

    bar = _bar(not args.no_progress and len(files) > 1, total=len(files), desc=args.op, unit="image")
    failed = []
    try:
        for src, dst in zip(files, outs):
            try:
                img = io.imread(src, mode=args.mode)
            except (OSError, ValueError) as e:
                failed.append(f"{src}: {e}")
                bar.update(1)
                continue
            try:
                y = op(img, **kw)
            except (TypeError, ValueError) as e:
                raise CLIError(f"--op {args.op} on {src}: {e}") from None
            io.imwrite(dst, _to_u8(y, args.normalize))
            bar.update(1)
    finally:
        bar.close()
    for f in failed:
        print(f"imkern filter: skipped unreadable {f}", file=sys.stderr)
    done = len(files) - len(failed)
    print(f"{args.op}: wrote {done} image{'s' if done != 1 else ''} to {args.output}")
    return 1 if failed and not done else 0


# ---- train / predict ---------------------------------------------------------------------------------


def build_folder_model(channels: int, classes: int, seed=None):
    """The CNN of ``imkern train``: conv-BN-relu-pool x3, global average pool, dense; any input size."""
    from .. import nn

    def s(k):
        return None if seed is None else seed + k

    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1, seed=s(0)),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, seed=s(1)),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, seed=s(2)),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(128, classes, seed=s(3)),
    )


def train(args) -> int:
    import imkern

    from .. import nn, optim
    from ..data import ColorJitter, DataLoader, RandomCrop, RandomHorizontalFlip

    _check_gpu(args.device)
    for name, v in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--size", args.size)):
        if v < 1:
            raise CLIError(f"{name}: expected a positive number, got {v}")
    if os.path.exists(args.out) and not args.force:
        raise CLIError(f"{args.out} exists; pass --force to overwrite it")
    png = os.path.splitext(args.out)[0] + ".png"
    if os.path.exists(png) and not args.force:
        raise CLIError(f"{png} exists; pass --force to overwrite it")
    io = _io()
    if not os.path.exists(args.dir):
        raise CLIError(f"{args.dir}: no such folder")
    if not os.path.isdir(args.dir):
        raise CLIError(f"{args.dir}: not a folder (expected one subfolder per class)")
    try:
        images, labels, classes = io.load_folder(
            args.dir, size=(args.size, args.size), mode=args.mode, progress=not args.no_progress
        )
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    if len(classes) < 2:
        raise CLIError(f"{args.dir}: found {len(classes)} class folder; training needs at least 2")
    if images.ndim == 3:
        images = images[..., None]
    imkern.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(labels))
    n_val = max(1, len(labels) // 10) if len(labels) >= 20 else 0
    val_idx, tr_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    x_tr = images[tr_idx].astype(np.float64) / 255.0
    mean = [float(v) for v in x_tr.mean(axis=(0, 1, 2))]
    std = [float(max(v, 1e-3)) for v in x_tr.std(axis=(0, 1, 2))]
    aug = (
        None
        if args.no_augment
        else [
            RandomCrop(args.size, padding=max(1, args.size // 8), border="reflect101"),
            RandomHorizontalFlip(),
            ColorJitter(0.2, 0.2),
        ]
    )
    loader = DataLoader(
        images[tr_idx], labels[tr_idx], args.batch_size, shuffle=True, augment=aug, seed=args.seed, mean=mean, std=std
    )
    val = None
    if n_val:
        val = DataLoader(images[val_idx], labels[val_idx], 256, mean=mean, std=std, seed=0)
    model = build_folder_model(images.shape[-1], len(classes)).to(args.device)
    opt = optim.AdamW(model.parameters(), lr=args.lr)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    print(
        f"imkern train: {len(tr_idx)} training / {n_val} validation images, {len(classes)} classes "
        f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''}), {args.size}x{args.size}"
    )
    hist = nn.fit(
        model, loader, epochs=args.epochs, optimizer=opt, scheduler=sched, val=val, progress=not args.no_progress
    )
    nn.save(
        model,
        args.out,
        metadata={
            "classes": list(classes),
            "size": [args.size, args.size],
            "mode": args.mode,
            "mean": mean,
            "std": std,
        },
    )
    _curve(png, hist)
    last = {k: v[-1] for k, v in hist.items()}
    msg = f"train accuracy {last['accuracy']:.2%}"
    if "val_accuracy" in last:
        msg += f", validation accuracy {last['val_accuracy']:.2%}"
    print(f"{msg}; wrote {args.out} and {png}")
    return 0


def _curve(path, hist):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no training-curve figure)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    ep = np.arange(1, len(hist["loss"]) + 1)
    ax.plot(ep, hist["loss"], "o-", label="train loss")
    if "val_loss" in hist:
        ax.plot(ep, hist["val_loss"], "s-", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(ep, hist["accuracy"], "--", color="tab:green", label="train accuracy")
    if "val_accuracy" in hist:
        ax2.plot(ep, hist["val_accuracy"], "-", color="tab:red", label="validation accuracy")
    ax2.set_ylabel("accuracy")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predict(args) -> int:
    import imkern

    from .. import nn
    from ..nn import functional as F

    _check_gpu(args.device)
    if args.top < 1:
        raise CLIError(f"--top: expected a positive number, got {args.top}")
    try:
        model = nn.load(args.model, device=args.device)
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    meta = getattr(model, "metadata", {}) or {}
    need = [k for k in ("classes", "size", "mode") if k not in meta]
    if need:
        raise CLIError(
            f"{args.model}: the model has no {', '.join(need)} metadata (save it with "
            "imkern.nn.save(..., metadata={'classes': [...], 'size': [h, w], 'mode': 'RGB'}))"
        )
    io = _io()
    classes, (h, w), mode = meta["classes"], meta["size"], meta["mode"]
    batch, names = [], []
    for path in args.images:
        try:
            img = io.imread(path, mode=mode)
        except (OSError, ValueError) as e:
            raise CLIError(f"{path}: cannot read the image ({e})") from None
        if img.shape[:2] != (h, w):
            img = imkern.transform.resize(
                img, (h, w), interpolation="area" if img.shape[0] > h and img.shape[1] > w else "bilinear"
            )
        batch.append(img if img.ndim == 3 else img[..., None])
        names.append(path)
    x = imkern.transform.to_tensor(np.stack(batch), mean=meta.get("mean"), std=meta.get("std"))
    logits = nn.predict(model, x)
    if hasattr(logits, "get"):
        logits = logits.get()
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise CLIError(f"{args.model}: the model gives {logits.shape[1:]} outputs for {len(classes)} classes")
    probs = F.softmax(logits.astype(np.float64), 1)
    rows = []
    for path, p in zip(names, probs):
        top = np.argsort(-p, kind="stable")[: args.top]
        rows.append({"image": path, "predictions": [{"class": classes[i], "probability": float(p[i])} for i in top]})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(r["image"] + ": " + ", ".join(f"{q['class']} ({q['probability']:.3f})" for q in r["predictions"]))
    return 0
