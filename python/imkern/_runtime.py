"""Runtime configuration, the package's global switches in one place: threads, CPU
instruction set, the Winograd path of the CPU conv2d, TF32 on CUDA, build and device
information. Every switch is read by the ops at call time."""
from __future__ import annotations

import os
import platform
import threading
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
    Results do not depend on the thread count: every kernel gives the same bits for 1 and N
    threads.

    Example:
        >>> import imkern
        >>> before = imkern.get_num_threads()
        >>> imkern.set_num_threads(1); imkern.get_num_threads()
        1
        >>> imkern.set_num_threads(0)  # back to the default
        >>> imkern.get_num_threads() == before
        True
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
    """The largest value :func:`set_num_threads` accepts: ``max(256, 4 x usable CPUs)``.

    Example:
        >>> import imkern
        >>> imkern.max_num_threads() >= 256
        True
    """
    return _core.max_num_threads()


def get_num_threads() -> int:
    """The number of threads the CPU kernels use (see :func:`set_num_threads`).

    Example:
        >>> import imkern
        >>> imkern.get_num_threads() >= 1
        True
    """
    return _core.get_num_threads()


def get_cpu_isa() -> str:
    """The CPU instruction-set level in use: ``"baseline"``, ``"avx2"`` or ``"avx512"``.

    Example:
        >>> import imkern
        >>> imkern.get_cpu_isa() in ("baseline", "avx2", "avx512")
        True
    """
    return _core.isa_active()


def set_cpu_isa(isa: str) -> str:
    """Cap the CPU instruction-set level (as ``IMKERN_CPU_ISA`` does at import).

    The level used is the lower of ``isa`` and what the processor supports; it is returned.
    Every level computes the same results (the tests run each one); only the speed differs.

    Raises:
        ValueError: ``isa`` is not one of "baseline", "avx2", "avx512".

    Example:
        >>> import imkern
        >>> before = imkern.get_cpu_isa()
        >>> imkern.set_cpu_isa("baseline")
        'baseline'
        >>> imkern.set_cpu_isa(before) == before  # the previous cap back
        True
    """
    if isa not in _ISAS:
        raise ValueError(f"isa: expected one of {', '.join(map(repr, _ISAS))}, got {isa!r}")
    _core.isa_set_cap(isa)
    return _core.isa_active()


# ---- algorithm switches ----------------------------------------------------------------------
_lock = threading.Lock()
# CPU conv2d: 0 never Winograd, 1 where it is faster than the direct path (the default,
# set_allow_winograd(True)), 2 wherever the shape allows (tests only: exercises the path on tiny
# images). The value is the ConvWinograd code of csrc/include/imkern/nn.hpp.
winograd_mode = 1
# CUDA: float32 GEMMs and convolutions on TF32 tensor cores (torch.backends.cudnn.allow_tf32).
allow_tf32 = True


def set_allow_winograd(flag: bool) -> None:
    """Allow (True, default) or forbid the Winograd F(4x4, 3x3) path of the CPU conv2d.

    While allowed, float32 convolutions with a 3x3 kernel, stride 1, dilation 1, groups 1, at
    least 16 input and output channels and enough output pixels (a few hundred per image and
    batch) use Winograd for :func:`imkern.nn.functional.conv2d` and for grad_input and
    grad_weight in :func:`imkern.nn.functional.conv2d_backward` (about 4x fewer
    multiplications; error ~1e-6 relative to the output's scale, about three times the direct
    path's). ``set_allow_winograd(False)`` selects the direct (implicit GEMM) path. float64
    never uses Winograd; CUDA arrays are not affected. Both paths are deterministic and give
    the same bits for any thread count.

    Example:
        >>> import imkern
        >>> imkern.set_allow_winograd(False); imkern.get_allow_winograd()
        False
        >>> imkern.set_allow_winograd(True)
    """
    global winograd_mode
    with _lock:
        winograd_mode = 1 if flag else 0


def get_allow_winograd() -> bool:
    """Whether the CPU conv2d may use Winograd F(4x4, 3x3) (see :func:`set_allow_winograd`).

    Example:
        >>> import imkern
        >>> imkern.get_allow_winograd()
        True
    """
    return winograd_mode != 0


def set_allow_tf32(flag: bool) -> None:
    """Allow (True, default) or forbid TF32 tensor cores for float32 conv2d/linear on CUDA.

    Like ``torch.backends.cudnn.allow_tf32``: TF32 rounds the products' operands to a 10-bit
    mantissa and sums in float32; ``set_allow_tf32(False)`` selects exact float32 FMA. float16
    and bfloat16 always use tensor cores with float32 accumulation. The CPU is not affected.

    Example:
        >>> import imkern
        >>> imkern.set_allow_tf32(False); imkern.get_allow_tf32()
        False
        >>> imkern.set_allow_tf32(True)
    """
    global allow_tf32
    with _lock:
        allow_tf32 = bool(flag)


def get_allow_tf32() -> bool:
    """Whether float32 CUDA GEMMs and convolutions may use TF32 (see :func:`set_allow_tf32`).

    Example:
        >>> import imkern
        >>> imkern.get_allow_tf32()
        True
    """
    return allow_tf32


def info() -> dict:
    """Build and runtime facts: version, CPU ISA in use and available, threads, the L3 cache
    size a thread can use (filters whose input plus output exceed it write their output with
    streaming stores), CUDA support built, and the GPUs found (an empty list is a valid
    answer). ``python -m imkern info`` prints it.

    Example:
        >>> import imkern
        >>> facts = imkern.info()
        >>> {"version", "cpu_isa", "cpu_isa_available", "num_threads", "cuda_built", "gpus"} <= set(facts)
        True
        >>> facts["version"] == imkern.__version__, facts["cpu_isa"] in facts["cpu_isa_available"]
        (True, True)
    """
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
