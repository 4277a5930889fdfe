"""The output cache (imkern.set_output_cache): large outputs reuse the memory of dead ones.

The threshold is lowered here so that small arrays take the cached path; what is checked:
results equal the uncached ones and the reference, memory is reused only once no view of it
is alive, the byte budget holds, bad settings raise, and threads do not mix outputs.
"""

import gc
import math
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import imkern
from imkern import _arrays as A
from imkern import _core, color, filters, nn, reference, transform


@pytest.fixture
def small_cache():
    """The cache on for outputs of 4 KiB and up, 64 MiB kept; restored afterwards."""
    old = imkern.get_output_cache()
    imkern.set_output_cache(0)  # start empty
    imkern.set_output_cache(64 << 20, min_bytes=4096)
    yield
    imkern.set_output_cache(0)
    imkern.set_output_cache(old["max_bytes"], min_bytes=old["min_bytes"])


def _ops():
    rng = np.random.default_rng()
    u8 = rng.integers(0, 256, (37, 61, 3), dtype=np.uint8)
    f32 = rng.random((2, 29, 33, 3), dtype=np.float32)
    x = rng.standard_normal((3, 4, 17, 19)).astype(np.float32)
    return [
        (lambda: color.rgb_to_hsv(f32), lambda: reference.color.rgb_to_hsv(f32), 1e-5),
        (lambda: filters.gaussian(u8, 1.3), lambda: reference.filters.gaussian(u8, 1.3), 1),
        (lambda: transform.resize(u8, (50, 90)), lambda: reference.transform.resize(u8, (50, 90)), 1),
        (lambda: transform.flip(f32, 1), lambda: f32[:, :, ::-1], 0),
        (lambda: nn.functional.relu(x), lambda: np.maximum(x, 0), 0),
    ]


def test_results_equal_uncached_and_reference(small_cache):
    for op, ref, tol in _ops():
        cached = op()
        imkern.set_output_cache(0, min_bytes=1 << 40)  # off
        plain = op()
        imkern.set_output_cache(64 << 20, min_bytes=4096)
        assert cached.shape == plain.shape and cached.dtype == plain.dtype
        assert cached.flags.c_contiguous and cached.flags.writeable and cached.flags.aligned
        np.testing.assert_array_equal(cached, plain)
        np.testing.assert_allclose(cached.astype(np.float64), np.asarray(ref(), np.float64), atol=tol, rtol=1e-5)


def test_memory_reused_after_the_array_dies(small_cache):
    x = np.random.default_rng().random((64, 80, 3), dtype=np.float32)
    a = transform.flip(x, 0)
    ptr = a.ctypes.data
    del a
    gc.collect()
    before = imkern.get_output_cache()
    assert before["held_blocks"] == 1 and before["held_bytes"] >= x.nbytes
    b = transform.flip(x, 1)
    assert b.ctypes.data == ptr
    after = imkern.get_output_cache()
    assert after["hits"] == before["hits"] + 1 and after["held_blocks"] == 0
    np.testing.assert_array_equal(b, x[:, ::-1])


def test_views_keep_their_memory(small_cache):
    rng = np.random.default_rng()
    x = rng.random((64, 80, 3), dtype=np.float32)
    a = transform.flip(x, 0)
    v = a[5:, ::-2]  # a view: the block must stay with it
    w = a.reshape(-1)
    del a
    gc.collect()
    assert imkern.get_output_cache()["held_blocks"] == 0
    outs = [transform.flip(rng.random(x.shape, dtype=np.float32), 1) for _ in range(3)]
    for o in outs:
        assert not np.shares_memory(o, v) and not np.shares_memory(o, w)
    np.testing.assert_array_equal(v, x[::-1][5:, ::-2])
    np.testing.assert_array_equal(w, x[::-1].reshape(-1))
    del v, w
    gc.collect()
    assert imkern.get_output_cache()["held_blocks"] >= 1


def test_pickle_and_copy_are_independent(small_cache):
    x = np.random.default_rng().random((64, 80), dtype=np.float32)
    a = filters.gaussian(x, 2.0)
    b = pickle.loads(pickle.dumps(a))
    c = a.copy()
    del a
    gc.collect()
    d = filters.gaussian(x * 0, 2.0)  # reuses a's block
    np.testing.assert_array_equal(b, c)
    assert not d.any()


def test_budget_and_clear(small_cache):
    imkern.set_output_cache(1 << 20, min_bytes=4096)
    arrays = [transform.flip(np.zeros((100 * (i + 1), 256), np.float32), 1) for i in range(8)]  # 100-800 KiB
    del arrays
    gc.collect()
    c = imkern.get_output_cache()
    assert 0 < c["held_bytes"] <= 1 << 20 and c["held_blocks"] < 8  # the newest that fit
    assert imkern.set_output_cache(0)["held_bytes"] == 0
    big = transform.flip(np.zeros((512, 512), np.float32), 1)
    del big
    gc.collect()
    assert imkern.get_output_cache()["held_bytes"] == 0  # max_bytes 0 keeps nothing


def test_sizes_far_apart_do_not_share(small_cache):
    a = transform.flip(np.zeros((1024, 1024), np.float32), 1)  # 4 MiB
    del a
    gc.collect()
    b = transform.flip(np.ones((64, 64), np.float32), 1)  # 16 KiB: not served by a 4 MiB block
    assert imkern.get_output_cache()["held_blocks"] == 1
    np.testing.assert_array_equal(b, 1)


def test_out_argument_bypasses_the_cache(small_cache):
    x = np.random.default_rng().random((64, 80), dtype=np.float32)
    out = np.empty_like(x)
    before = imkern.get_output_cache()
    r = transform.flip(x, 1, out=out)
    assert r is out
    after = imkern.get_output_cache()
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


def test_threads_get_their_own_outputs(small_cache):
    rng = np.random.default_rng()
    inputs = [rng.random((48, 50, 3), dtype=np.float32) for _ in range(8)]
    errors = []

    def work(i):
        for _ in range(25):
            x = inputs[i]
            y = transform.flip(x, 1)
            z = color.rgb_to_gray(x)
            if not (np.array_equal(y, x[:, ::-1]) and np.allclose(z, x @ np.array([0.299, 0.587, 0.114]), atol=1e-5)):
                errors.append(i)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


@pytest.mark.parametrize("bad", [1.5, "1M", True, None])
def test_bad_settings_are_type_errors(bad):
    with pytest.raises(TypeError, match="max_bytes"):
        imkern.set_output_cache(bad)
    with pytest.raises(TypeError, match="min_bytes"):
        imkern.set_output_cache(1 << 20, min_bytes=bad if bad is not None else 1.0)


@pytest.mark.parametrize("bad", [-1, 2**62])
def test_bad_settings_are_value_errors(bad):
    old = imkern.get_output_cache()
    with pytest.raises(ValueError, match="max_bytes"):
        imkern.set_output_cache(bad)
    with pytest.raises(ValueError, match="min_bytes"):
        imkern.set_output_cache(1 << 20, min_bytes=bad)
    assert imkern.get_output_cache()["max_bytes"] == old["max_bytes"]


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("3M", 3 << 20), ("12345", 12345)])
def test_environment_variable(value, expected):
    env = dict(os.environ, IMKERN_OUTPUT_CACHE=value)
    code = "import imkern; print(imkern.get_output_cache()['max_bytes'], imkern.info()['output_cache']['max_bytes'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(expected)] * 2


def test_environment_variable_bad_value_warns():
    env = dict(os.environ, IMKERN_OUTPUT_CACHE="lots")
    code = "import warnings, imkern; print(imkern.get_output_cache()['max_bytes'] > 0)"
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert "IMKERN_OUTPUT_CACHE" in out.stderr


def test_default_cache_serves_large_outputs():
    """With the default settings a 32 MiB+ output takes the cache and the next reuses it."""
    c0 = imkern.get_output_cache()
    if c0["max_bytes"] < 40 << 20:
        pytest.skip("the output cache is smaller than the test's array here")
    x = np.zeros((1536, 2048, 3), np.float32)  # 36 MiB
    a = transform.flip(x, 1)
    del a
    gc.collect()
    b = transform.flip(x, 0)
    c1 = imkern.get_output_cache()
    assert c1["hits"] >= c0["hits"] + 1
    assert not b.any()


@pytest.mark.parametrize("shape", [(129, 129), (300, 401, 3), (5, 64, 64)])
def test_new_outputs_below_the_cache_start_on_a_line(shape):
    """Outputs of 64 KiB up that do not come from the cache start on a 64-byte line (NumPy's
    large blocks start 16 bytes into a page, which costs streaming kernels their first and last
    line of every row); they are ordinary writeable C-contiguous arrays with the right values,
    and independent of each other."""
    rng = np.random.default_rng()
    x = rng.random(shape, dtype=np.float32)
    assert x.nbytes >= 1 << 16
    a = filters.gaussian(x, 1.0)
    b = filters.gaussian(x, 1.0)
    for y in (a, b):
        assert y.ctypes.data % 64 == 0
        assert y.flags.c_contiguous and y.flags.writeable and y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, reference.filters.gaussian(x, 1.0), rtol=1e-5, atol=1e-5)
    a[...] = 0
    assert np.all(b == filters.gaussian(x, 1.0))
    y = color.rgb_to_gray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    assert y.ctypes.data % 64 == 0 and y.shape == (300, 400)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(0,), (1,), (70000,), (129, 129), (3, 0, 5), (2, 300, 401, 3)])
def test_aligned_empty_is_a_lined_writeable_array_that_owns_its_block(shape, dtype):
    """_arrays.numpy_empty's native call: an ordinary C-contiguous writeable array of the shape
    and dtype asked for, starting on a 64-byte line, whose memory lives as long as the array
    (its base a NumPy block), and two of them never share memory."""
    dt = np.dtype(dtype)
    a = _core.aligned_empty(shape, dt)
    b = A.numpy_empty(list(shape), dt, math.prod(shape) * dt.itemsize)
    for y in (a, b):
        assert y.shape == shape and y.dtype == dt and y.flags.c_contiguous and y.flags.writeable
        assert y.ctypes.data % 64 == 0 or y.nbytes < (1 << 16) and y is b
        assert not np.shares_memory(a, b)
    a[...] = np.arange(a.size, dtype=dt).reshape(shape)
    ref = a.copy()
    view = a[..., ::-1] if a.ndim else a
    del a
    gc.collect()
    junk = [np.full(shape, 7, dt) for _ in range(4)]  # would overwrite a freed block
    np.testing.assert_array_equal(view[..., ::-1] if view.ndim else view, ref)
    del junk


def test_aligned_empty_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        _core.aligned_empty((4, -1), np.dtype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        _core.aligned_empty((1 << 40, 1 << 30), np.dtype(np.float32))
    with pytest.raises(TypeError):
        _core.aligned_empty((4, 4), "float32")
