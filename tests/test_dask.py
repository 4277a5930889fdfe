"""imkern.dask: every function equals the in-memory imkern result (pixel for pixel where the kernels
compute exactly; float sums within float32 rounding), for chunkings
with small, odd and single chunks (dask#6688: chunks smaller than the overlap depth), every
border mode, 2-D / HWC / NHWC images; a 2-process LocalCluster run; CuPy chunks stay CuPy.
Skipped without Dask."""
from __future__ import annotations

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import imkern  # noqa: E402
import imkern.dask as ikd  # noqa: E402
from conftest import HAS_GPU, assert_close, random_array  # noqa: E402

F = imkern.filters
BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
CHUNKS = [(7, 9), (3, 50), (100, 100), ((5, 1, 54, 1, 10), (2, 48, 11))]

OPS = {
    "gaussian": (lambda d, b: ikd.gaussian(d, 2.2, border=b, cval=0.5), lambda a, b: F.gaussian(a, 2.2, border=b,
                                                                                                 cval=0.5)),
    "gaussian_ksize": (lambda d, b: ikd.gaussian(d, (0, 1.5), ksize=(5, 9), border=b),
                       lambda a, b: F.gaussian(a, (0, 1.5), ksize=(5, 9), border=b)),
    "correlate": (lambda d, b: ikd.correlate(d, np.arange(12.0).reshape(3, 4) - 5, border=b),
                  lambda a, b: F.correlate(a, np.arange(12.0).reshape(3, 4) - 5, border=b)),
    "median": (lambda d, b: ikd.median(d, 5, border=b), lambda a, b: F.median(a, 5, border=b)),
    "erode": (lambda d, b: ikd.erode(d, F.footprint("ellipse", (5, 7)), border=None if b == "reflect101" else b),
              lambda a, b: F.erode(a, F.footprint("ellipse", (5, 7)), border=None if b == "reflect101" else b)),
    "dilate": (lambda d, b: ikd.dilate(d, 3, iterations=2, border=b), lambda a, b: F.dilate(a, 3, iterations=2,
                                                                                          border=b)),
    "sobel": (lambda d, b: ikd.sobel(d, 1, 1, ksize=5, border=b), lambda a, b: F.sobel(a, 1, 1, ksize=5, border=b)),
}


@pytest.mark.parametrize("chunks", CHUNKS, ids=str)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("op", sorted(OPS))
def test_filters_equal_in_memory(rng, op, border, chunks):
    dfn, fn = OPS[op]
    a = random_array(rng, (71, 61), np.float32 if op in ("gaussian", "correlate") else np.uint8)
    d = da.from_array(a, chunks=chunks)
    r = dfn(d, border)
    assert isinstance(r, da.Array)
    got = r.compute()
    want = fn(a, border)
    assert got.dtype == want.dtype
    _same(got, want, a)


def _same(got, want, a, exact=None):
    """Bit for bit where the kernels compute exactly (selections, integer arithmetic); float sums
    within float32 rounding (integer outputs of float sums within 1): a pixel near a chunk edge
    takes the kernels' edge path, which sums in another order than the vector body that computes
    it in memory."""
    if exact is None:
        exact = np.dtype(a.dtype).kind != "f"
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        assert_close(got, want, scale=float(np.abs(a).max()) * 64, int_atol=1)


@pytest.mark.parametrize("shape,chunks", [((40, 33, 3), (9, 10, 3)), ((3, 30, 31, 2), (1, 8, 7, 1)),
                                          ((30, 31, 4), (10, 10, 2))])
def test_channels_and_batches(rng, shape, chunks):
    a = random_array(rng, shape, np.uint16)
    d = da.from_array(a, chunks=chunks)
    _same(ikd.gaussian(d, 1.5).compute(), F.gaussian(a, 1.5), a, exact=False)  # float32 sums
    _same(ikd.median(d, 3).compute(), F.median(a, 3), a)
    _same(ikd.resize(d, (17, 50)).compute(), imkern.transform.resize(a, (17, 50)), a, exact=False)


def test_small_chunks_are_rechunked_not_failed(rng):
    # radius 13 with 4-pixel chunks: plain map_overlap raises (dask#6688)
    a = random_array(rng, (50, 45), np.float32)
    d = da.from_array(a, chunks=4)
    r = ikd.gaussian(d, 3.2)
    _same(r.compute(), F.gaussian(a, 3.2), a)
    m = ikd.rechunk_for_depth(d, {0: 13, 1: 0})
    assert min(m.chunks[0]) >= 13 and m.chunks[1] == d.chunks[1]


def test_image_smaller_than_the_kernel(rng):
    a = random_array(rng, (6, 5), np.float64)
    d = da.from_array(a, chunks=(2, 3))
    _same(ikd.gaussian(d, 4.0, border="reflect").compute(), F.gaussian(a, 4.0, border="reflect"), a)


@pytest.mark.parametrize("interpolation,antialias", [("nearest", False), ("nearest-exact", False),
                                                      ("bilinear", False), ("bicubic", False), ("area", False),
                                                      ("lanczos", False), ("bilinear", True), ("bicubic", True)])
@pytest.mark.parametrize("size", [(23, 97), (140, 31), (300, 250)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_resize_equals_in_memory(rng, interpolation, antialias, size, dtype):
    a = random_array(rng, (81, 67, 3), dtype)
    d = da.from_array(a, chunks=(20, (30, 7, 30), 3))
    r = ikd.resize(d, size, interpolation=interpolation, antialias=antialias)
    assert r.shape == size + (3,)
    _same(r.compute(), imkern.transform.resize(a, size, interpolation=interpolation, antialias=antialias), a)


def test_bad_arguments_raise_before_compute(rng):
    d = da.from_array(random_array(rng, (20, 20), np.uint8), chunks=10)
    with pytest.raises(ValueError, match="border"):
        ikd.gaussian(d, 1.0, border="bogus")
    with pytest.raises(ValueError, match="sigma"):
        ikd.gaussian(d, -1.0)
    with pytest.raises(TypeError, match="image"):
        ikd.gaussian(np.zeros((4, 4)), 1.0)
    with pytest.raises(ValueError, match="size"):
        ikd.resize(d, (0, 3))
    with pytest.raises(TypeError, match="dtype"):
        ikd.median(da.zeros((8, 8), dtype=np.int32, chunks=4), 3)


def test_local_cluster_two_processes(rng):
    distributed = pytest.importorskip("distributed")
    a = random_array(rng, (300, 260), np.float32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        # Two worker processes, neither of them this one (asked before the work: on a loaded
        # machine the scheduler may drop workers that miss heartbeats once they are idle).
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        d = da.from_array(a, chunks=(64, 100))
        assert d.numblocks[0] * d.numblocks[1] > 1
        g, r, m = client.compute([ikd.gaussian(d, 3.0), ikd.resize(d, (123, 411), interpolation="bicubic"),
                                  ikd.erode(d, 5)], sync=True)
    _same(g, F.gaussian(a, 3.0), a)
    _same(r, imkern.transform.resize(a, (123, 411), interpolation="bicubic"), a)
    np.testing.assert_array_equal(m, F.erode(a, 5))


@pytest.mark.cuda
def test_cupy_chunks_stay_cupy(rng):
    if not HAS_GPU:
        pytest.skip("needs a CUDA GPU, a CUDA build of imkern and CuPy")
    import cupy

    a = random_array(rng, (90, 70), np.float32)
    d = da.from_array(cupy.asarray(a), chunks=(30, 30), asarray=False)
    r = ikd.gaussian(d, 2.0)
    assert isinstance(r._meta, cupy.ndarray)
    got = r.compute()
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(got), F.gaussian(a, 2.0), rtol=1e-5, atol=1e-6)
    rr = ikd.resize(d, (45, 140))
    assert isinstance(rr._meta, cupy.ndarray) and isinstance(rr.compute(), cupy.ndarray)
