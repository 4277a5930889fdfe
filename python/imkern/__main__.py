"""The ``imkern`` command line (``python -m imkern <command>``, also installed as ``imkern``).

- ``demo``: the whole pipeline on scikit-learn's digits (preprocess, filter, train, evaluate).
- ``filter IN OUT --op NAME [--param value ...]``: any op of :mod:`imkern.filters` on files.
- ``train DIR --out model.npz``: train a small CNN on a folder with one subfolder per class.
- ``predict MODEL IMAGE...``: classify images with a trained model.
- ``info``: build and runtime facts. ``bench``: imkern against the installed peers.

Errors the user can fix (a missing folder, an unreadable image, an existing output without
``--force``, no GPU for ``--device cuda``) print one line to stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys

from imkern._cli import CLIError


def _version() -> str:
    from . import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imkern",
        description="Fast, verified image-processing and CNN kernels: command-line tools.",
        epilog="Start with: python -m imkern demo",
    )
    p.add_argument("--version", action="version", version=f"imkern {_version()}")
    sub = p.add_subparsers(dest="cmd", metavar="<command>")

    d = sub.add_parser(
        "demo",
        help="preprocess, filter, train and evaluate a CNN on scikit-learn's digits",
        description="The whole pipeline on scikit-learn's handwritten digits (shipped with "
        "scikit-learn, nothing is downloaded): resize 8x8 -> 32x32 and normalize with imkern, "
        "show filters, train a small CNN, evaluate on a held-out 20%%, write a figure, the "
        "model and summary.json to --out.",
    )
    d.add_argument("--out", default="imkern-demo", help="output folder (default: ./imkern-demo)")
    d.add_argument("--epochs", type=int, default=12, help="training epochs (default: 12)")
    d.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    d.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the shuffles (default: 0)")
    d.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    d.add_argument("--force", action="store_true", help="overwrite the files of an earlier run in --out")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")

    f = sub.add_parser(
        "filter",
        help="run an imkern.filters op on image files",
        description="Run any op of imkern.filters on an image file, a folder or a glob. "
        "Parameters follow the op's keyword names, e.g. --op gaussian --sigma 2, "
        "--op sobel --dx 1 --dy 0 --ksize 3, --op box --size 5. Float results (derivatives) "
        "are written as uint8 after taking |value| and clipping to 0..255 (--normalize rescales "
        "each image's range to 0..255 instead).",
        epilog="python -m imkern filter --list prints the ops and their parameters.",
    )
    f.add_argument("input", nargs="?", help="image file, folder or glob ('photos/*.jpg')")
    f.add_argument("output", nargs="?", help="output file (one input) or folder")
    f.add_argument("--op", help="the imkern.filters function, e.g. gaussian")
    f.add_argument("--list", action="store_true", help="list the ops and their parameters")
    f.add_argument("--mode", default="unchanged", help="imread mode: RGB, L, RGBA or unchanged (default)")
    f.add_argument("--normalize", action="store_true", help="rescale float results to 0..255 per image")
    f.add_argument("--force", action="store_true", help="overwrite existing output files")
    f.add_argument("--no-progress", action="store_true")

    t = sub.add_parser(
        "train",
        help="train a CNN on a folder with one subfolder per class",
        description="Train a small CNN (conv-relu-pool x3, global average pool, dense) on "
        "DIR/<class>/*.png|jpg|...; images are resized to --size, augmented (random crop with "
        "padding, horizontal flip, brightness/contrast), 10%% held out for validation. Writes "
        "the model (.npz, loadable by 'predict') and a training-curve PNG next to it.",
    )
    t.add_argument("dir", help="dataset folder: one subfolder per class")
    t.add_argument("--out", required=True, help="model file to write (.npz)")
    t.add_argument("--size", type=int, default=64, help="image side after resizing (default: 64)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    t.add_argument("--mode", choices=["RGB", "L"], default="RGB")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--force", action="store_true", help="overwrite an existing model file")
    t.add_argument("--no-progress", action="store_true")

    pr = sub.add_parser(
        "predict",
        help="classify images with a model from 'train'",
        description="Print the class and probability of each image (or JSON with --json).",
    )
    pr.add_argument("model", help="model file written by 'imkern train' or imkern.nn.save")
    pr.add_argument("images", nargs="+", help="image files")
    pr.add_argument("--json", action="store_true", help="print a JSON list")
    pr.add_argument("--top", type=int, default=1, help="classes to show per image (default: 1)")
    pr.add_argument("--device", choices=["cpu", "cuda"], default="cpu")

    sub.add_parser("info", help="print version, CPU ISA, threads, CUDA build and GPUs")

    b = sub.add_parser("bench", help="time imkern against the peers installed (OpenCV, PyTorch, ...)")
    b.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    b.add_argument("--quick", action="store_true", help="fewer repetitions (for smoke tests)")
    b.add_argument("-k", dest="filter", default=None, help="only cases whose name contains this")
    b.add_argument("--list", action="store_true", help="list the case names and exit")
    b.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    b.add_argument("--json", dest="json_path", default=None, help="also write the results as JSON to this file")
    b.add_argument("--png", dest="png_path", default=None, help="also write a bar chart of the ratios (PNG)")
    b.add_argument("--force", action="store_true", help="overwrite --json / --png files")
    b.add_argument(
        "--isa",
        choices=["baseline", "avx2", "avx512"],
        default=None,
        help="hold imkern and the peers to this instruction set (sets IMKERN_CPU_ISA, "
        "ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, OPENCV_CPU_DISABLE "
        "and re-runs the benchmark in a fresh process)",
    )
    return p


def _bench_isa_reexec(isa, argv) -> int:
    """Re-run ``bench`` in a fresh interpreter with the environment that holds imkern and the
    peers to ``isa`` (the peers read it when they are imported, which must come after)."""
    import os
    import subprocess

    from ._bench import ISA_ENV

    env = dict(os.environ)
    env.update(ISA_ENV[isa])
    env["_IMKERN_BENCH_ISA"] = isa
    return subprocess.call([sys.executable, "-m", "imkern"] + list(argv), env=env)


def _info() -> int:
    from . import info

    for key, value in info().items():
        if key == "gpus":
            print(f"{'gpus':18s} {len(value)}")
            for g in value:
                cc = ".".join(map(str, g["compute_capability"]))
                print(f"  [{g['id']}] {g['name']} (sm_{cc.replace('.', '')}, {g['memory_bytes'] / 2**30:.1f} GiB)")
        elif isinstance(value, dict):  # cpu_caches, cpu_params: one line per entry
            print(key)
            for k, v in value.items():
                print(f"  {k:16s} {v}")
        else:
            print(f"{key:18s} {value}")
    return 0


def main(argv=None) -> int:
    parser = _parser()
    # The filter command takes the op's own parameters (--sigma 2, ...), checked against its signature.
    args, extra = parser.parse_known_args(argv)
    if extra and args.cmd != "filter":
        parser.error("unrecognized arguments: " + " ".join(extra))
    if args.cmd is None:
        parser.print_help()
        return 0
    try:
        if args.cmd == "info":
            return _info()
        if args.cmd == "bench":
            import os

            from ._bench import run

            if args.isa and os.environ.get("_IMKERN_BENCH_ISA") != args.isa:
                return _bench_isa_reexec(args.isa, sys.argv[1:] if argv is None else argv)

            return run(
                device=args.device,
                quick=args.quick,
                name_filter=args.filter,
                markdown=args.markdown,
                list_only=args.list,
                json_path=args.json_path,
                png_path=args.png_path,
                force=args.force,
            )
        from ._cli import commands

        if args.cmd == "filter":
            return commands.filter(args, extra)
        return getattr(commands, args.cmd)(args)
    except CLIError as e:
        print(f"imkern {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"imkern {args.cmd}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``imkern`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
