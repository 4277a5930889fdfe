"""Runtime configuration: threads, CPU instruction set, build and device information."""
from __future__ import annotations

import os
import platform
import warnings

from . import _core

_ISAS = ("baseline", "avx2", "avx512")

_env_isa = os.environ.get("IMKERN_CPU_ISA", "")
if _env_isa and _env_isa not in _ISAS:
    warnings.warn(
        f"IMKERN_CPU_ISA={_env_isa!r} is not one of {', '.join(_ISAS)}; ignoring it",
        RuntimeWarning,
        stacklevel=2,
    )


def set_num_threads(n: int) -> None:
    """Set the number of threads the CPU kernels use (like ``cv2.setNumThreads``).

    Args:
        n: a thread count from 1 to :func:`max_num_threads` (``max(256, 4 x the CPUs this
            process may run on)``: beyond the CPUs, threads only add overhead), or 0 to
            restore the default (``OMP_NUM_THREADS`` when set, capped the same way, else the
            CPUs this process may run on).

    Raises:
        TypeError: ``n`` is not an int.
        ValueError: ``n`` is negative or above the cap.

    If the system refuses to start some threads (process or address-space limits), the
    kernels run with the threads that did start (at worst in the calling thread alone).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n: expected a thread count >= 0, got {n}")
    cap = max_num_threads()
    if n > cap:
        raise ValueError(f"n: expected a thread count of at most {cap} (max_num_threads()), got {n}")
    _core.set_num_threads(n)


def max_num_threads() -> int:
    """The largest value :func:`set_num_threads` accepts: ``max(256, 4 x usable CPUs)``."""
    return _core.max_num_threads()


def get_num_threads() -> int:
    """The number of threads the CPU kernels use."""
    return _core.get_num_threads()


def get_cpu_isa() -> str:
    """The CPU instruction-set level in use: ``"baseline"``, ``"avx2"`` or ``"avx512"``."""
    return _core.isa_active()


def set_cpu_isa(isa: str) -> str:
    """Cap the CPU instruction-set level (as ``IMKERN_CPU_ISA`` does at import).

    The level used is the lower of ``isa`` and what the processor supports; it is returned.
    """
    if isa not in _ISAS:
        raise ValueError(f"isa: expected one of {', '.join(map(repr, _ISAS))}, got {isa!r}")
    _core.isa_set_cap(isa)
    return _core.isa_active()


def info() -> dict:
    """Build and runtime facts: version, CPU ISA in use and available, threads, the L3 cache
    size a thread can use (filters whose input plus output exceed it write their output with
    streaming stores), CUDA support built, and the GPUs found (an empty list is a valid
    answer)."""
    supported = _core.isa_supported()
    available = list(_ISAS[: _ISAS.index(supported) + 1]) if supported in _ISAS else ["baseline"]
    return {
        "version": _core.__version__,
        "machine": platform.machine(),
        "cpu_isa": _core.isa_active(),
        "cpu_isa_available": available,
        "num_threads": _core.get_num_threads(),
        "max_num_threads": _core.max_num_threads(),
        "cpu_l3_bytes": int(_core.l3_cache_bytes()),
        "cuda_built": bool(_core.cuda_built),
        "gpus": list(_core.cuda_devices()),
    }
