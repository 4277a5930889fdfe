"""Benchmark cases shipped with the package, so ``python -m imkern bench`` runs anywhere.

Each family module (``filters``, ``nn_conv``, ``nn_ops``) defines ``CASES``, one list of
:class:`Case` for both devices (``Case.device``: "cpu" or "cuda"; ``--device`` selects). ``benchmarks/bench_*.py`` run the same cases under pytest-benchmark; the
``python -m imkern bench`` runner (``imkern._bench``) times them itself and prints a table.
A case times imkern and each installed peer on the same input in the same run.

Case names have one format: ``"<op> [<parameters> ...] <dtype> <shape>"``, words separated by
single spaces: the op's Python name (``gaussian``, ``conv2d``, ``train_epoch``), its parameters
(``5x5``, ``s1`` for sigma 1, ``k64`` output channels, ``p1`` padding, ``batch32``, ...), the
NumPy dtype name (``float32/tf32`` where TF32 tensor cores are allowed), and the input's shape
in array order (``2160x3840x3`` for an (H, W, C) image, ``32x64x56x56`` for NCHW). The device
is not part of the name (it is its own column). ``NAME_FORMAT`` is the pattern tests check.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, List, Tuple

NAME_FORMAT = r"^[a-z][a-z0-9_]*( [^ ]+)* (uint8|uint16|float16|bfloat16|float32|float64)(/tf32)? \d+(x\d+)*$"

FAMILIES = ("filters", "nn_conv", "nn_ops", "preprocess", "transform", "train", "torch_ops", "dask")


@dataclasses.dataclass
class Case:
    name: str
    device: str  # "cpu" or "cuda"
    # setup() -> (imkern_fn, {peer_name: peer_fn}); peers that are not installed are left out.
    # Each fn takes no arguments and runs the op once on the prepared input (CUDA fns must
    # synchronize before returning, so wall time is device time).
    setup: Callable[[], Tuple[Callable[[], object], Dict[str, Callable[[], object]]]]
    # A case may declare both: one whose arithmetic intensity (flops / bytes) is below the
    # machine's balance (FMA peak / copy bandwidth, ~8 FLOP/byte on the 2-vCPU Zen 4) is held by
    # memory, and the bench then shows both rates.
    bytes: int = 0  # bytes read + written by one call (0: not a bandwidth case)
    flops: int = 0  # floating-point operations of one call (0: not a compute case)
    note: str = ""


def all_cases(device: str = "all") -> List[Case]:
    out: List[Case] = []
    for fam in FAMILIES:
        try:
            mod = importlib.import_module(f"{__name__}.{fam}")
        except ImportError:
            continue
        for c in getattr(mod, "CASES", []):
            if device in ("all", c.device):
                out.append(c)
    return out


def optional_import(name: str) -> Any:
    """The module ``name``, or None when it cannot be imported (peers are optional)."""
    try:
        return importlib.import_module(name)
    except Exception:
        return None


# ---- CUDA cases: every timed function synchronizes, so wall time is device time ---------------
def cuda_sync() -> None:
    import cupy

    cupy.cuda.get_current_stream().synchronize()


def cuda_timed(f: Callable[[], object]) -> Callable[[], object]:
    """``f`` followed by a synchronization of the current CuPy stream."""

    def g():
        r = f()
        cuda_sync()
        return r

    return g


def torch_cuda() -> Any:
    """torch when it sees a GPU, else None."""
    torch = optional_import("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return torch
    except Exception:
        pass
    return None


def torch_synced(torch, f: Callable[[], object]) -> Callable[[], object]:
    def g():
        r = f()
        torch.cuda.synchronize()
        return r

    return g
