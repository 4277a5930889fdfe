"""Runtime configuration, the package's global switches in one place: threads, CPU
instruction set, the Winograd path of the CPU conv2d, TF32 on CUDA, build and device
information. Every switch is read by the ops at call time."""

from __future__ import annotations

import os
import platform
import re
import threading
import warnings

from . import _arrays, _core

_ISAS = ("baseline", "avx2", "avx512")

_env_isa = os.environ.get("IMKERN_CPU_ISA", "")
if _env_isa and _env_isa not in _ISAS:
    warnings.warn(
        f"IMKERN_CPU_ISA={_env_isa!r} is not one of {', '.join(_ISAS)}; ignoring it",
        RuntimeWarning,
        stacklevel=2,
    )

# IMKERN_CPU_DISABLE (read by the C++ side at the first kernel that asks): items naming no
# feature change nothing, so say so (blanks and case are ignored there, and here)
_env_disable = [n.strip().lower() for n in os.environ.get("IMKERN_CPU_DISABLE", "").split(",")]
_unknown_disable = [n for n in _env_disable if n and n not in _core.cpu_feature_names()]
if _unknown_disable:
    warnings.warn(
        f"IMKERN_CPU_DISABLE names {', '.join(map(repr, _unknown_disable))}, not among "
        f"{', '.join(_core.cpu_feature_names())}; ignoring {'it' if len(_unknown_disable) == 1 else 'them'}",
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
        >>> imkern.set_num_threads(0)  # back to the default: one per usable core
        >>> imkern.get_num_threads() >= 1
        True
        >>> imkern.set_num_threads(before)
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


# ---- CPU parameters (csrc/include/imkern/cpu_params.hpp) -------------------------------------
# The keys of set_cpu_params, in the order of the C++ CpuParamKey enum, with their ranges.
_PARAMS = {
    "gemm_mc": (1, 1 << 16, "GEMM rows per packed A block (elements)"),
    "gemm_kc": (1, 1 << 16, "GEMM reduction block (elements; changes the rounding of GEMM sums)"),
    "gemm_nc": (1, 1 << 20, "GEMM columns per packed B panel, at most (elements)"),
    "l2_block": (4096, 1 << 40, "bytes of the conv2d and Winograd L2 blocks"),
    "wino_m": (4096, 1 << 40, "bytes of the Winograd output-transform chunk"),
    "strip_l1": (1024, 1 << 40, "bytes of the filters' row ring (kernels up to 8 rows), strided softmax blocks"),
    "strip_l2": (1024, 1 << 40, "bytes of the filters' row ring, taller kernels; rotate90's bands"),
    "stream_bytes": (0, 1 << 62, "input + output bytes above which outputs are streamed (0: always)"),
    "gelu_table": (0, 1, "float32 gelu's form: 1 the piecewise table, 0 one fit (changes gelu's rounding)"),
    "resize_phases": (0, 1, "integer float resize factors: 1 phase and even/odd sums, 0 permutes or per-pixel sums"),
}
_ALIASES = {"mc": "gemm_mc", "kc": "gemm_kc", "nc": "gemm_nc", "stream": "stream_bytes"}
_params_lock = threading.Lock()
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _check_param(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key}: expected an int, got {type(value).__name__}")
    lo, hi, what = _PARAMS[key]
    if not lo <= value <= hi:
        raise ValueError(f"{key}: expected {lo} <= {key} <= {hi} ({what}), got {value}")
    return value


def _param_key(key: str) -> str:
    key = _ALIASES.get(key, key)
    if key not in _PARAMS:
        raise ValueError(f"{key}: not a CPU parameter; expected one of {', '.join(list(_PARAMS) + list(_ALIASES))}")
    return key


def set_cpu_params(**params) -> dict:
    """Override the CPU kernels' cache-derived parameters (for experiments and tests).

    By default every parameter comes from a model of this machine's caches (see
    ``info()["cpu_caches"]``), computed once per process: the GEMM blocking ``gemm_mc``,
    ``gemm_kc``, ``gemm_nc`` (aliases ``mc``, ``kc``, ``nc``; elements, for float32 and
    float64 alike when set), ``l2_block`` and ``wino_m`` (bytes of the conv2d / Winograd
    blocks), ``strip_l1`` and ``strip_l2`` (bytes of the filters' row rings; ``strip_l1``
    also sizes the blocks of a float32 softmax over a strided axis, ``strip_l2`` rotate90's
    bands), ``stream_bytes`` (alias ``stream``: outputs whose input plus output bytes exceed it are
    written with non-temporal stores; 0 streams every output that can be), ``gelu_table``
    (float32 gelu and its gradient with FMA: 1 the piecewise table, 0 one fit for every lane;
    by default 0 on the cores whose lane-crossing permutes share the FMA pipes, AMD Zen 1 to 3,
    from cpuid), and ``resize_phases`` (float32 and uint16 resize by an integer factor whose
    weights repeat exactly (2x, 4x; 1 or 2 channels 2x) in width, bicubic or wider, at AVX2: 1 sums
    each phase's pixels from plain loads and interleaves them, 0 takes one lane permute per
    tap; and width shrunk by exactly 2, 1 to 4 channels, vertical pass first, at AVX2: 1 sums
    the even and odd source pixels from plain loads with the weights in registers, 0 sums pixel
    by pixel with weights from the tables (or by lane permutes); the same bits). A value of None
    restores that parameter's default; :func:`reset_cpu_params` restores all of them. The
    environment variable ``IMKERN_CPU_PARAMS`` (e.g. ``"kc=128,mc=512,stream_bytes=16M"``)
    sets overrides at import. Only ``gemm_kc`` (the rounding of GEMM sums, as any blocked GEMM)
    and ``gelu_table`` (gelu's rounding; both forms within ~6 ulp) change results; the rest
    changes speed only. Do not call while kernels run in other
    threads.

    Returns:
        The parameters now in effect for the active ISA (:func:`get_cpu_params`).

    Raises:
        TypeError: a value is not an int (or None).
        ValueError: an unknown parameter, or a value out of its range.

    Example:
        >>> import imkern
        >>> imkern.set_cpu_params(kc=128, stream=0)["gemm_kc"]
        128
        >>> imkern.reset_cpu_params()
    """
    _override_cpu_params(params)
    return get_cpu_params()


def _override_cpu_params(params: dict) -> None:
    """set_cpu_params without reading the parameters back (which would compute the machine
    model, and run its cache probe, at import when ``IMKERN_CPU_PARAMS`` is set)."""
    over = list(_core.cpu_params_overrides())
    names = list(_core.cpu_param_names())
    new = dict(zip(names, over))
    for k, v in params.items():
        key = _param_key(k)
        new[key] = -1 if v is None else _check_param(key, v)
    with _params_lock:
        _core.cpu_params_override([new[n] for n in names])


def reset_cpu_params() -> None:
    """Restore every CPU parameter to the machine model's value (drops ``IMKERN_CPU_PARAMS``'s
    overrides too).

    Example:
        >>> import imkern
        >>> default = imkern.get_cpu_params()
        >>> _ = imkern.set_cpu_params(mc=64)
        >>> imkern.reset_cpu_params()
        >>> imkern.get_cpu_params() == default
        True
    """
    with _params_lock:
        _core.cpu_params_override([-1] * len(_core.cpu_param_names()))


def get_cpu_params(isa: str | None = None) -> dict:
    """The CPU parameters in effect for ``isa`` (default: the active ISA): the GEMM blocking
    in elements for float32 (``gemm_mc``, ``gemm_kc``, ``gemm_nc``) and float64 (``*_f64``), and
    the byte sizes ``l2_block``, ``wino_m``, ``strip_l1``, ``strip_l2``, ``stream_bytes``,
    ``gelu_table`` and ``resize_phases`` (see :func:`set_cpu_params`).

    Example:
        >>> import imkern
        >>> p = imkern.get_cpu_params()
        >>> p["gemm_kc"] > 0 and p["stream_bytes"] >= 0
        True
    """
    if isa is not None and isa not in _ISAS:
        raise ValueError(f"isa: expected one of {', '.join(map(repr, _ISAS))}, got {isa!r}")
    return dict(_core.cpu_params(isa or ""))


def _parse_env_params(text: str) -> dict:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        k, sep, v = item.partition("=")
        key = _param_key(k.strip())
        v = v.strip().lower()
        if not sep or not v:
            raise ValueError(f"{key}: expected {key}=<int>, got {item!r}")
        m = re.fullmatch(r"(\d+)([kmg]?)", v)
        if not m:
            raise ValueError(f"{key}: expected an integer (optionally with K, M or G), got {v!r}")
        out[key] = int(m.group(1)) * _UNITS[m.group(2)]
    return out


_env_params = os.environ.get("IMKERN_CPU_PARAMS", "")
if _env_params.strip():
    try:
        _override_cpu_params(_parse_env_params(_env_params))
    except (TypeError, ValueError) as _e:
        warnings.warn(f"IMKERN_CPU_PARAMS={_env_params!r}: {_e}; ignoring it", RuntimeWarning, stacklevel=2)


# ---- the output cache -------------------------------------------------------------------------
def _default_output_cache_bytes() -> int:
    """512 MiB, or a sixteenth of the machine's memory where that is less."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        ram = 8 << 30
    return int(min(512 << 20, max(ram, 0) // 16))


def set_output_cache(max_bytes: int, *, min_bytes: int | None = None) -> dict:
    """Set the cache of large output arrays (NumPy outputs the ops allocate themselves).

    A new array of tens of megabytes costs the operating system as much time as many ops
    take to fill it: every page is mapped and zeroed on first touch (about 8 ms per 100 MB on
    one core), and with glibc a new mapping is made for every such array, however often the
    same size repeats. The memory of an output of at least ``min_bytes`` (default 32 MiB) is
    kept when the array and all its views are gone, up to ``max_bytes`` in all (default
    512 MiB, or a sixteenth of the machine's memory if less; the oldest blocks are freed
    first), and the next output of about the same size reuses it. The environment variable
    ``IMKERN_OUTPUT_CACHE`` (bytes, with K, M or G; 0 turns the cache off) sets ``max_bytes``
    at import. Results do not depend on it; arrays given with ``out=`` never touch it.

    Args:
        max_bytes: the most memory kept for reuse; 0 keeps none (and frees what is kept).
        min_bytes: outputs of at least this many bytes use the cache (None: unchanged).

    Returns:
        :func:`get_output_cache` after the change.

    Raises:
        TypeError: a value is not an int.
        ValueError: a negative value.

    Example:
        >>> import imkern
        >>> old = imkern.get_output_cache()
        >>> imkern.set_output_cache(0)["held_bytes"]
        0
        >>> _ = imkern.set_output_cache(old["max_bytes"])
    """
    mx = _check_bytes(max_bytes, "max_bytes")
    mn = None if min_bytes is None else _check_bytes(min_bytes, "min_bytes")
    with _params_lock:
        _core.output_cache_set_max_bytes(mx)
        if mn is not None:
            _arrays.output_cache_min[0] = max(mn, 1)
    return get_output_cache()


def get_output_cache() -> dict:
    """The output cache's settings and state (see :func:`set_output_cache`): ``max_bytes``,
    ``min_bytes``, ``held_bytes`` and ``held_blocks`` (memory kept for reuse now), ``hits`` and
    ``misses`` (requests served from it or newly allocated, since import).

    Example:
        >>> import imkern
        >>> c = imkern.get_output_cache()
        >>> c["held_bytes"] <= c["max_bytes"]
        True
    """
    d = dict(_core.output_cache_stats())
    d["min_bytes"] = _arrays.output_cache_min[0]
    return d


def _check_bytes(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int (bytes), got {type(value).__name__}")
    if not 0 <= value < 2**62:
        raise ValueError(f"{name}: expected 0 <= {name} < 2**62 bytes, got {value}")
    return value


_env_cache = os.environ.get("IMKERN_OUTPUT_CACHE", "").strip().lower()
_cache_bytes = _default_output_cache_bytes()
if _env_cache:
    _m = re.fullmatch(r"(\d+)([kmg]?)", _env_cache)
    if _m:
        _cache_bytes = int(_m.group(1)) * _UNITS[_m.group(2)]
    else:
        warnings.warn(
            f"IMKERN_OUTPUT_CACHE={_env_cache!r}: expected bytes (optionally with K, M or G); ignoring it",
            RuntimeWarning,
            stacklevel=2,
        )
_core.output_cache_set_max_bytes(min(_cache_bytes, 2**62 - 1))


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
    """Build and runtime facts: version, CPU ISA in use and available, the extensions beyond
    the ISA levels that some kernels use where the CPU has them (``cpu_features``: ``avx512vnni``
    and ``avx512vbmi`` with the avx512 level, ``avxvnni`` (AVX-VNNI, not an AVX-512 extension:
    kept under ``IMKERN_CPU_ISA=avx2``) with the avx2 level; ``IMKERN_CPU_DISABLE``, a
    comma-separated list of these names read at import, hides them; a name that is none of
    them warns), threads, the L3 cache size the OS reports (``cpu_l3_bytes``), the detected
    caches (``cpu_caches``: size, ways,
    line, sets and sharing per level from sysfs / cpuid, the CPUs usable, the nominal L3 share,
    ``l3_inclusive`` (cpuid's bit: True, False, or None where unknown; a non-inclusive L3 adds
    the L2 to the nominal size) and the effective L3 with how it was chosen: ``l3_reason``, ``hypervisor`` (cpuid's
    hypervisor bit: the sharing counts are the VM's), the probe's readings ``probe`` in bytes
    and bytes per second, and its cost ``probe_ms`` (wall) and ``probe_cpu_ms``, ``l3_from``:
    ``"probe"`` or ``"cache"`` and ``cache_file``: the per-machine file of the probe's answer
    read or written, or None), the
    parameters the CPU kernels derive from them (``cpu_params``, see :func:`set_cpu_params`),
    CUDA support built, and the GPUs found (an empty list is a valid answer). The first call
    measures the effective L3 (~15 ms of CPU, once per machine: later processes read the
    answer from ``llc-*.txt`` under ``$IMKERN_CACHE_DIR``, else ``$XDG_CACHE_HOME/imkern``,
    else ``~/.cache/imkern``; ``IMKERN_CACHE_DIR=off`` (or a relative path) disables that file, and a directory
    that cannot be written just means every process probes). ``python -m imkern info``
    prints it.

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
        "cpu_features": list(_core.cpu_features()),
        "num_threads": _core.get_num_threads(),
        "max_num_threads": _core.max_num_threads(),
        "cpu_l3_bytes": int(_core.l3_cache_bytes()),
        "cpu_caches": dict(_core.cpu_caches()),
        "cpu_params": get_cpu_params(),
        "cuda_built": bool(_core.cuda_built),
        "gpus": list(_core.cuda_devices()),
        "output_cache": get_output_cache(),
    }
