"""Runtime: info, threads, ISA capping, GIL release, fork safety, coexistence with torch."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import imkern


def test_info_fields():
    i = imkern.info()
    assert i["version"] == imkern.__version__
    assert i["cpu_isa"] in ("baseline", "avx2", "avx512")
    assert i["cpu_isa"] in i["cpu_isa_available"]
    assert i["cpu_isa_available"][0] == "baseline"
    assert i["num_threads"] >= 1
    assert i["cpu_l3_bytes"] >= 64 << 10
    assert isinstance(i["cuda_built"], bool)
    assert isinstance(i["gpus"], list)
    for g in i["gpus"]:
        assert {"id", "name", "compute_capability", "memory_bytes"} <= set(g)


def test_cli_info():
    r = subprocess.run([sys.executable, "-m", "imkern", "info"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "cpu_isa" in r.stdout and "cuda_built" in r.stdout and "gpus" in r.stdout


def test_set_num_threads_validation():
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(3)
        assert imkern.get_num_threads() == 3
        imkern.set_num_threads(0)  # back to the default
        assert imkern.get_num_threads() >= 1
    finally:
        imkern.set_num_threads(before)
    with pytest.raises(ValueError, match="n: expected a thread count"):
        imkern.set_num_threads(-1)
    with pytest.raises(TypeError, match="n: expected an int"):
        imkern.set_num_threads(2.5)
    with pytest.raises(TypeError, match="n: expected an int"):
        imkern.set_num_threads(True)


def _run(code, env=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=e)


def test_omp_num_threads_sets_default():
    r = _run("import imkern; print(imkern.get_num_threads())", {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_env_caps_isa(level):
    r = _run("import imkern; print(imkern.get_cpu_isa())", {"IMKERN_CPU_ISA": level})
    assert r.returncode == 0, r.stderr
    avail = imkern.info()["cpu_isa_available"]
    expect = level if level in avail else avail[-1]
    assert r.stdout.strip() == expect


def test_unknown_isa_env_warns():
    r = _run("import warnings; warnings.simplefilter('always'); import imkern; print(imkern.get_cpu_isa())",
             {"IMKERN_CPU_ISA": "sse9"})
    assert r.returncode == 0
    assert "IMKERN_CPU_ISA" in r.stderr


def test_set_cpu_isa_validation():
    with pytest.raises(ValueError, match="isa: expected one of"):
        imkern.set_cpu_isa("neon")


def test_gil_released_during_kernels():
    """A Python thread keeps running while a kernel runs (the GIL is released): with the GIL
    held, the ticker below would stall for a whole kernel call."""
    x = np.random.default_rng(0).random((1200, 1200), dtype=np.float32)
    k = np.ones((25, 25)) / 625
    before = imkern.get_num_threads()
    imkern.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        imkern.filters.correlate(x, k)
        d = time.perf_counter() - t0  # one kernel call
        ticks = []
        stop = threading.Event()

        def ticker():
            while not stop.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.001)

        t = threading.Thread(target=ticker)
        t.start()
        end = time.perf_counter() + max(0.3, 5 * d)
        calls = 0
        while time.perf_counter() < end or calls < 3:
            imkern.filters.correlate(x, k)
            calls += 1
        stop.set()
        t.join()
        gaps = np.diff(ticks)
        # With the GIL held the ticker would run only between kernel calls: about one tick per
        # call, every gap about one call long. Released, it ticks every ~1 ms throughout. The
        # median (not the maximum) gap: a loaded machine may deschedule the ticker now and then.
        assert len(ticks) > max(20, 3 * calls), (len(ticks), calls)
        assert np.median(gaps) < max(0.25 * d, 0.005), (np.median(gaps), d)
    finally:
        imkern.set_num_threads(before)


def test_concurrent_calls_from_python_threads():
    rng = np.random.default_rng(1)
    xs = [rng.random((301, 257, 3), dtype=np.float32) for _ in range(6)]
    expect = [imkern.filters.gaussian(x, 2.0) for x in xs]
    results = [None] * 6

    def work(i):
        for _ in range(3):
            results[i] = imkern.filters.gaussian(xs[i], 2.0)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r, e in zip(results, expect):
        np.testing.assert_array_equal(r, e)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_can_use_imkern():
    code = """
import os, sys, numpy as np, imkern
imkern.set_num_threads(2)
x = np.random.default_rng(0).random((400, 400), dtype=np.float32)
a = imkern.filters.gaussian(x, 1.0)          # parent starts its thread pool
pid = os.fork()
if pid == 0:
    b = imkern.filters.gaussian(x, 1.0)      # the child must not hang on the parent's pool
    os._exit(0 if np.array_equal(a, b) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    r = _run(code, timeout=60)
    assert r.returncode == 0, r.stderr


def test_import_with_torch():
    pytest.importorskip("torch")
    code = """
import torch, numpy as np, imkern
x = np.random.default_rng(0).random((256, 256), dtype=np.float32)
t = torch.nn.functional.avg_pool2d(torch.from_numpy(x)[None, None], 3, 1, 1)
y = imkern.filters.box(x, 3, border="constant")
print("ok")
"""
    r = _run(code, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_import_without_gpu_reports_none():
    r = _run("import imkern; print(len(imkern.info()['gpus']) >= 0)", {"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr


@pytest.mark.parametrize("threads", [1, 2, 3, 5, 40])
def test_parallel_for_runs_every_chunk_once(threads):
    """The pool's scheduler (home ranges per thread, then stealing): every chunk runs exactly
    once with the right bounds, for thread counts below, at and above the 32 home ranges; an
    exception in one chunk reaches Python after the others ran."""
    from imkern import _core

    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(threads)
        for begin, end, grain in [(0, 1, 1), (0, 2, 1), (5, 6, 3), (-7, 100, 9), (0, 1000, 1), (3, 4099, 64)]:
            for _ in range(3):
                got = _core._parallel_probe(begin, end, grain)
                n = -(-(end - begin) // grain)
                assert [(lo, hi) for lo, hi, _, _ in got] == [
                    (begin + c * grain, min(end, begin + (c + 1) * grain)) for c in range(n)]
                assert all(runs == 1 for _, _, runs, _ in got)
                assert all(0 <= tid < threads for _, _, _, tid in got)
        with pytest.raises(RuntimeError, match="on purpose"):
            _core._parallel_probe(0, 100, 10, throw_at=55)
        got = _core._parallel_probe(0, 100, 10)  # the pool still works after the exception
        assert [runs for _, _, runs, _ in got] == [1] * 10
    finally:
        imkern.set_num_threads(before)


def test_thread_local_limit():
    """A thread-local limit (load_folder's decoding threads set 1): that thread's kernels use at
    most that many threads (1: the caller alone) and get_num_threads says so there; other threads
    keep the global count; results do not change."""
    from imkern import _core

    before = imkern.get_num_threads()
    x = np.random.default_rng(7).random((67, 301, 3), dtype=np.float32)
    res = {}

    def body(limit):
        _core.set_thread_local_num_threads(limit)
        try:
            probes = [_core._parallel_probe(0, 4000, 1) for _ in range(3)]
            res[limit] = (imkern.get_num_threads(), _core.get_thread_local_num_threads(), probes,
                          imkern.filters.gaussian(x, 3.0))
        finally:
            _core.set_thread_local_num_threads(0)

    try:
        imkern.set_num_threads(4)
        want = imkern.filters.gaussian(x, 3.0)
        for limit in (1, 2, 9):
            t = threading.Thread(target=body, args=(limit,))
            t.start()
            t.join()
        for limit, threads in ((1, 1), (2, 2), (9, 4)):
            n, local, probes, got = res[limit]
            assert (n, local) == (threads, limit)
            assert all(0 <= tid < threads for p in probes for _, _, runs, tid in p)
            assert all(runs == 1 for p in probes for _, _, runs, _ in p)
            assert np.array_equal(got, want)
        assert {tid for p in res[1][2] for *_, tid in p} == {0}
        # this thread was never limited
        assert imkern.get_num_threads() == 4 and _core.get_thread_local_num_threads() == 0
    finally:
        imkern.set_num_threads(before)


def test_set_num_threads_cap():
    """issue 9, item 8: a documented cap, the argument named, no pybind11 signature error."""
    cap = imkern.max_num_threads()
    assert cap >= 256 and imkern.info()["max_num_threads"] == cap
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(cap)
        assert imkern.get_num_threads() == cap
    finally:
        imkern.set_num_threads(before)
    for bad in (cap + 1, 2**31, 2**64):
        with pytest.raises(ValueError, match=r"n: expected a thread count of at most"):
            imkern.set_num_threads(bad)
    assert imkern.get_num_threads() == before


def test_pool_survives_thread_creation_failure():
    """issue 9, item 8: when the system refuses threads (an address-space limit), the call
    runs with the threads that started (or serially) instead of hanging."""
    code = r"""
import resource, numpy as np, imkern
from imkern import filters
x = np.random.default_rng(0).random((64, 16 * 64, 64)).astype(np.float32)
ref = filters.box(x, 3)  # pool of the default size, pages touched
imkern.set_num_threads(1)
ref = filters.gaussian(x, 1.0)
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (300 << 20), resource.RLIM_INFINITY))
imkern.set_num_threads(200)  # 199 stacks of 8 MB do not fit in 300 MB
got = filters.gaussian(x, 1.0)
assert np.array_equal(got, ref)
imkern.set_num_threads(1)
imkern.set_num_threads(150)
assert np.array_equal(filters.gaussian(x, 1.0), ref)
print("ok")
"""
    r = _run(code, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


def test_import_stays_light():
    """`import imkern` imports none of the optional heavy packages (ml_dtypes alone took most of
    a second: bfloat16 is recognized lazily, once the caller has imported ml_dtypes)."""
    code = ("import sys, imkern; heavy = [m for m in ('ml_dtypes', 'torch', 'cv2', 'scipy', 'sklearn', "
            "'matplotlib', 'PIL', 'cupy') if m in sys.modules]; print(heavy)")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(imkern.__file__))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
