"""``python -m imkern info`` prints the build/runtime facts; ``python -m imkern bench`` runs the
benchmark cases against the peers installed and prints a table."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imkern")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="print version, CPU ISA, threads, CUDA build and GPUs")
    b = sub.add_parser("bench", help="time imkern against the peers installed (OpenCV, PyTorch, ...)")
    b.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    b.add_argument("--quick", action="store_true", help="fewer repetitions (for smoke tests)")
    b.add_argument("-k", dest="filter", default=None, help="only cases whose name contains this")
    b.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    if args.cmd == "info":
        from . import info

        for key, value in info().items():
            if key == "gpus":
                print(f"{'gpus':18s} {len(value)}")
                for g in value:
                    cc = ".".join(map(str, g["compute_capability"]))
                    print(f"  [{g['id']}] {g['name']} (sm_{cc.replace('.', '')}, {g['memory_bytes'] / 2**30:.1f} GiB)")
            else:
                print(f"{key:18s} {value}")
        return 0
    from ._bench import run

    return run(device=args.device, quick=args.quick, name_filter=args.filter, markdown=args.markdown)


if __name__ == "__main__":
    sys.exit(main())
