"""Shared test machinery: fresh random inputs, one tolerance helper per dtype, ISA levels,
thread counts, CUDA availability (CUDA tests are skipped, never failed, without a GPU)."""
from __future__ import annotations

import hashlib
import os
import secrets

import numpy as np
import pytest

# The tests probe the effective L3 in every process (and never write to the user's cache
# directory): the per-machine file of its answer is tested on its own, in a temp directory.
os.environ["IMKERN_CACHE_DIR"] = "off"

import imkern
from imkern import _core

# ---- random inputs: a fresh seed per run, printed on failure so it can be replayed -----------
_SEED = int(os.environ.get("IMKERN_TEST_SEED", secrets.randbits(32)))


def pytest_report_header(config):
    i = imkern.info()
    return [
        f"imkern {i['version']}: cpu_isa={i['cpu_isa']} available={i['cpu_isa_available']} "
        f"threads={i['num_threads']} cuda_built={i['cuda_built']} gpus={len(i['gpus'])}",
        f"random seed: IMKERN_TEST_SEED={_SEED}",
    ]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # the header is not shown under -q: name the seed again when something failed
    if exitstatus != 0:
        terminalreporter.write_line(f"random seed: IMKERN_TEST_SEED={_SEED} (replays this run's random inputs)")


@pytest.fixture
def rng(request):
    # Per-test stream derived from the session seed and a digest of the whole test id: fresh
    # every run, reproducible with IMKERN_TEST_SEED, and its own for every test and
    # parametrization (the id's last 4 bytes alone gave the suite's 15,751 tests 1,260 streams).
    h = int.from_bytes(hashlib.blake2b(request.node.nodeid.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([_SEED, h & 0xFFFFFFFF, h >> 32])


def random_array(rng, shape, dtype, low=None, high=None):
    """Random data covering the dtype's useful range (never zeros)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        info = np.iinfo(dtype)
        lo = info.min if low is None else low
        hi = info.max if high is None else high
        return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)
    lo = -1.0 if low is None else low
    hi = 1.0 if high is None else high
    return (rng.random(shape) * (hi - lo) + lo).astype(dtype)


# ---- tolerances ------------------------------------------------------------------------------
# (rtol, atol per unit of `scale`): fp32 1e-5, fp16 1e-3, bf16 1.6e-2 (CONVENTIONS.md).
_TOL = {
    np.dtype(np.float64): (1e-12, 1e-12),
    np.dtype(np.float32): (1e-5, 1e-5),
    np.dtype(np.float16): (1e-3, 1e-3),
}


def assert_close(actual, expected, dtype=None, scale=1.0, int_atol=1, err_msg=""):
    """Compare a kernel's result with the float64 reference.

    Integer dtypes: at most ``int_atol`` apart (rounding of a float32 sum near .5).
    Floats: |a - e| <= atol * scale + rtol * |e|, where ``scale`` bounds the magnitude of the
    terms summed (e.g. sum|k| * max|x| for a filter, K * max|x| * max|w| for a conv), since
    float32 accumulation error grows with it.
    """
    a = to_numpy(actual)
    e = np.asarray(expected)
    dtype = np.dtype(dtype or a.dtype)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape} {err_msg}"
    if dtype.kind in "ui":
        diff = np.abs(a.astype(np.int64) - np.rint(e.astype(np.float64)).astype(np.int64))
        assert diff.max(initial=0) <= int_atol, f"max |diff| {diff.max()} > {int_atol} {err_msg}"
        return
    rtol, atol = _TOL.get(dtype, (1.6e-2, 1.6e-2))
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    same_nan = np.isnan(a64) == np.isnan(e64)
    assert same_nan.all(), f"NaN positions differ {err_msg}"
    fin = ~np.isnan(e64)
    err = np.abs(a64[fin] - e64[fin])
    bound = atol * scale + rtol * np.abs(e64[fin])
    if err.size and not (err <= bound).all():
        i = np.argmax(err - bound)
        raise AssertionError(
            f"max excess error: |{a64[fin][i]} - {e64[fin][i]}| = {err[i]:.3g} > {bound[i]:.3g} "
            f"(rtol={rtol}, atol={atol}*scale={scale:.3g}) {err_msg}"
        )


def to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def image_views(x):
    """(name, view) pairs of an image for the layout tests: reversed rows and columns, a strided
    view, a Fortran-order copy and, for (H, W, C) images, a channel slice and reversed channels."""
    yield "reversed rows", x[::-1]
    yield "reversed cols", x[:, ::-1]
    yield "strided", x[::2, ::3]
    yield "fortran", np.asfortranarray(x)
    if x.ndim == 3:
        yield "channel slice", x[..., 1:]
        yield "reversed channels", x[..., ::-1]


# ---- ISA levels and threads ------------------------------------------------------------------
ISA_LEVELS = imkern.info()["cpu_isa_available"]


@pytest.fixture(params=ISA_LEVELS)
def isa(request):
    """Run the test under each CPU ISA level this machine supports."""
    before = imkern.get_cpu_isa()
    imkern.set_cpu_isa(request.param)
    yield request.param
    imkern.set_cpu_isa(before)


@pytest.fixture(params=[1, 3])
def threads(request):
    before = imkern.get_num_threads()
    imkern.set_num_threads(request.param)
    yield request.param
    imkern.set_num_threads(before)


# ---- CUDA ------------------------------------------------------------------------------------
def _gpu_available():
    if not _core.cuda_built or not _core.cuda_devices():
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


HAS_GPU = _gpu_available()
requires_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU, a CUDA build of imkern and CuPy")


@pytest.fixture
def cp():
    if not HAS_GPU:
        pytest.skip("needs a CUDA GPU, a CUDA build of imkern and CuPy")
    import cupy

    return cupy


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.cuda)])
def xp(request):
    """The array module of the device under test: one list of cases runs on the CPU kernels
    (NumPy) and, where a GPU is present, on the CUDA kernels (CuPy); skipped, never failed,
    without one. Build inputs with NumPy and move them with ``xp.asarray``; compare with
    ``to_numpy``."""
    if request.param == "numpy":
        return np
    if not HAS_GPU:
        pytest.skip("needs a CUDA GPU, a CUDA build of imkern and CuPy")
    import cupy

    return cupy


# ---- one dtype list for both devices -----------------------------------------------------------
def _bfloat16():
    try:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    except Exception:
        return None


# The nn kernels' float dtypes: float32 and float64 on the CPU; float32, float16 and bfloat16
# (when ml_dtypes provides it) on CUDA. Parametrize over NN_DTYPES and move inputs with
# device_array, which skips the combinations a device does not take.
NN_DTYPES = ["float32", "float64", "float16", "bfloat16"]
_NN_DEVICE_DTYPES = {"numpy": ("float32", "float64"), "cupy": ("float32", "float16", "bfloat16")}


def device_array(xp, a, dtype):
    """(array of ``xp`` in ``dtype``, the float64 NumPy array of the same rounded values);
    skips the test where the device does not take the dtype."""
    kind = "numpy" if xp is np else "cupy"
    if dtype not in _NN_DEVICE_DTYPES[kind]:
        pytest.skip(f"{dtype} is not an nn dtype on {kind}")
    dt = _bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
    if dt is None:
        pytest.skip("bfloat16 needs ml_dtypes")
    h = np.asarray(a).astype(dt)
    return xp.asarray(h), h.astype(np.float64)


@pytest.fixture
def tf32_off():
    """Exact float32 on CUDA (no TF32 tensor cores) for the test; the CPU is not affected."""
    before = imkern.get_allow_tf32()
    imkern.set_allow_tf32(False)
    yield
    imkern.set_allow_tf32(before)


def on_device(xp, *arrays):
    """The arrays moved to ``xp``'s device (None stays None); skips float64 on CUDA, which the
    nn kernels there do not take."""
    if xp is not np and any(a is not None and a.dtype == np.float64 for a in arrays):
        pytest.skip("float64 is not an nn dtype on CUDA")
    return tuple(None if a is None else xp.asarray(a) for a in arrays)


def pool_out_size(H, k, s, p, d, ceil):
    """Pooling output length along one axis, as torch (a ceil_mode window must start inside
    the padded input)."""
    num = H + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= H + p:
        o -= 1
    return o
