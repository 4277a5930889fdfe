"""Benchmark cases shipped with the package, so ``python -m imkern bench`` runs anywhere.

Each family module (``filters``, ``nn_conv``, ``nn_ops``, ``cuda_*``) defines ``CASES``, a list of
:class:`Case`. ``benchmarks/bench_*.py`` run the same cases under pytest-benchmark; the
``python -m imkern bench`` runner (``imkern._bench``) times them itself and prints a table.
A case times imkern and each installed peer on the same input in the same run.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Dict, List, Optional, Tuple

FAMILIES = ("filters", "nn_conv", "nn_ops", "cuda_filters", "cuda_nn", "preprocess")


@dataclasses.dataclass
class Case:
    name: str
    device: str  # "cpu" or "cuda"
    # setup() -> (imkern_fn, {peer_name: peer_fn}); peers that are not installed are left out.
    # Each fn takes no arguments and runs the op once on the prepared input (CUDA fns must
    # synchronize before returning, so wall time is device time).
    setup: Callable[[], Tuple[Callable[[], object], Dict[str, Callable[[], object]]]]
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


def optional_import(name: str) -> Optional[object]:
    try:
        return importlib.import_module(name)
    except Exception:
        return None
