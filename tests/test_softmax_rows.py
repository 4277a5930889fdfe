"""Float32 softmax / log-softmax over the last axis: the row kernels (softmax_rows.hpp, texp:
a 2^(j / N) table exp, masked row tails, the next row prefetched; the baseline ISA keeps the
vm::exp_nonpos rows) at every ISA level. Row lengths around the vector widths (8, 16), the sum
blocks (1024) and the scratch-row limit (8192), 1-element rows, -inf / NaN / +inf / huge logits,
arguments near the exp's flush threshold (x - max < -87 gives 0), strided and negative-stride
views, out=, 1 vs 3 threads and streaming vs plain stores bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern.nn import functional as F
from imkern.reference import nn as R

WIDTHS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 1000, 1023, 1024, 1025, 2047, 2049,
          8191, 8192, 8193]


def _grid_logits(rng, shape, lo=-8.0, hi=8.0):
    # Multiples of 2^-10 in [lo, hi]: x - max is exact in float32, so the error measured is the
    # kernel's own (exp, sum, divide), not the rounding of the input difference.
    return (np.round(rng.uniform(lo, hi, size=shape) * 1024) / 1024).astype(np.float32)


def _rel_err(a, e):
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    m = np.abs(e64) > 1e-30
    return np.max(np.abs(a64 - e64)[m] / np.abs(e64)[m], initial=0.0)


@pytest.mark.parametrize("C", WIDTHS)
def test_softmax_rows_match_reference(rng, isa, C):
    rows = max(2, min(40, 40000 // C))
    x = random_array(rng, (rows, C), np.float32, -20, 20)
    x[0, 0] = 5000.0  # large logits must not overflow
    y = F.softmax(x)
    assert_close(y, R.softmax(x), np.float32, err_msg=f"{isa} C={C}")
    assert_close(F.log_softmax(x), R.log_softmax(x), np.float32, scale=100.0, err_msg=f"{isa} C={C}")
    # the kernel's own error, with exact differences: a few ulp of the exp and the divide plus
    # the float32 block sums (float64 reference)
    xg = _grid_logits(rng, (rows, C))
    e = R.softmax(xg.astype(np.float64))
    assert _rel_err(F.softmax(xg), e) < 1e-6, f"{isa} C={C}"
    le = R.log_softmax(xg.astype(np.float64))
    assert np.max(np.abs(F.log_softmax(xg) - le)) < 4e-6, f"{isa} C={C}"
    if C == 1:
        np.testing.assert_array_equal(y, np.ones_like(y))
        np.testing.assert_array_equal(F.log_softmax(x), np.zeros_like(x))
    # every row sums to 1
    np.testing.assert_allclose(y.astype(np.float64).sum(1), 1.0, rtol=0, atol=4e-6 + C * 6e-8)


def test_softmax_exp_accuracy(isa):
    # Rows [0, d] for d over the whole range the exp keeps (d >= -87): d is exact, so
    # softmax(d) = e^d / (1 + e^d) measures the exp and the divide alone.
    d = np.linspace(-87, 0, 400001, dtype=np.float32)
    x = np.stack([np.zeros_like(d), d], 1)
    y = F.softmax(x)
    e = np.exp(d.astype(np.float64))
    ulp = np.spacing((e / (1 + e)).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(y[:, 1] - e / (1 + e)) / ulp) <= 4, isa
    assert np.max(np.abs(y[:, 0] - 1 / (1 + e)) / np.spacing(np.float32(1.0))) <= 4, isa
    ly = F.log_softmax(x)
    assert np.max(np.abs(ly[:, 1] - (d - np.log1p(e)))) < 2e-5, isa


@pytest.mark.parametrize("C", [1, 5, 16, 17, 40, 1000, 1001])
def test_softmax_rows_special_values(rng, isa, C):
    x = random_array(rng, (8, C), np.float32, -5, 5)
    k = C // 2
    x[1, :] = -np.inf
    x[1, k] = 3.0  # one finite logit among -inf: exactly 1 there, exactly 0 elsewhere
    x[2, k] = np.nan  # NaN makes the whole row NaN
    x[3, k] = np.inf  # +inf: inf - inf, NaN (as the reference and torch)
    x[4, :] = 3.0e38  # huge equal logits: uniform
    x[5, k] = -3.0e38
    x[6, :] = -np.inf  # all -inf: NaN
    if C > 1:
        x[7, 0] = 200.0  # the rest underflow (e^-195 and less): exactly 0
    y = F.softmax(x)
    ly = F.log_softmax(x)
    assert np.all(y[1] == np.where(np.arange(C) == k, 1.0, 0.0)), isa
    assert ly[1, k] == 0.0 and np.all(ly[1, np.arange(C) != k] == -np.inf), isa
    assert np.isnan(y[2]).all() and np.isnan(ly[2]).all(), isa
    assert np.isnan(y[3]).all(), isa
    np.testing.assert_allclose(y[4], 1.0 / C, rtol=1e-6)
    assert np.isnan(y[6]).all() and np.isnan(ly[6]).all(), isa
    if C > 1:
        assert y[7, 0] == 1.0 and np.all(y[7, 1:] == 0.0), isa
    ok = [0, 4, 5, 7]
    assert_close(y[ok], R.softmax(x[ok]), np.float32, err_msg=isa)
    assert_close(ly[ok], R.log_softmax(x[ok]), np.float32, scale=100.0, err_msg=isa)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = R.softmax(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))


def test_softmax_flush_threshold(isa):
    # x - max around the table exp's flush point (-87): above it a normal result within a few
    # ulp, below it 0 (e^-87 = 1.65e-38: within any absolute tolerance); the baseline ISA's
    # exp keeps subnormal results down to -104.
    d = np.concatenate([np.linspace(-87.5, -86.5, 2001, dtype=np.float32),
                        np.float32([-87.0, np.nextafter(np.float32(-87), np.float32(0)), -88.0, -103.0, -104.0,
                                    -110.0, -1e30])])
    x = np.stack([np.zeros_like(d), d], 1)
    y = F.softmax(x)[:, 1].astype(np.float64)
    e = np.exp(d.astype(np.float64))
    if isa != "baseline":
        assert np.all(y[d < -87.0] == 0.0), isa
    keep = d >= -87.0
    assert np.max(np.abs(y[keep] - e[keep]) / e[keep]) < 5e-7, isa
    assert np.all(np.abs(y - e) < 1.7e-38), isa
    assert np.all(y[d <= -104.0] == 0.0), isa


@pytest.mark.parametrize("C", [17, 1000])
def test_softmax_rows_views_and_out(rng, isa, C):
    x = random_array(rng, (9, 2 * C + 3), np.float32, -20, 20)
    x0 = x.copy()  # the input, to check it is left unchanged
    for v in [x[:, :C], x[:, 1 : C + 1], x[:, ::2][:, :C], x[::-1, :C], x[:, ::-1][:, :C], x[::2, 3 : C + 3]]:
        c = np.ascontiguousarray(v)
        for f in (F.softmax, F.log_softmax):
            np.testing.assert_array_equal(f(v), f(c), err_msg=f"{isa} {f.__name__}")
            out = np.full(c.shape, np.nan, np.float32)
            assert f(v, out=out) is out
            np.testing.assert_array_equal(out, f(c))
    np.testing.assert_array_equal(x, x0)  # (was x against x.copy(): a check that cannot fail)


@pytest.mark.parametrize("C", [9, 1000, 8193])
def test_softmax_rows_bits_independent_of_threads_position_and_stores(rng, isa, C):
    # A row's bits depend on the row alone: not on the thread count, on where it sits in the
    # array (so which rows share a chunk or get prefetched), or on streaming vs plain stores.
    rows = 64 if C < 8193 else 6
    x = random_array(rng, (rows, C), np.float32, -30, 30)
    x[3, C // 2] = np.nan
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        y1, l1 = F.softmax(x), F.log_softmax(x)
        imkern.set_num_threads(3)
        np.testing.assert_array_equal(F.softmax(x), y1, err_msg=isa)
        np.testing.assert_array_equal(F.log_softmax(x), l1, err_msg=isa)
        for stream in (0, 1 << 40):
            imkern.set_cpu_params(stream_bytes=stream)
            np.testing.assert_array_equal(F.softmax(x), y1, err_msg=f"{isa} stream_bytes={stream}")
        imkern.reset_cpu_params()
        for r in (0, 3, rows - 1):
            np.testing.assert_array_equal(F.softmax(x[r : r + 1]), y1[r : r + 1], err_msg=f"{isa} row {r}")
            np.testing.assert_array_equal(F.log_softmax(x[r : r + 2]), l1[r : r + 2], err_msg=f"{isa} row {r}")
    finally:
        imkern.set_num_threads(before)
        imkern.reset_cpu_params()


# ---- softmax over a middle axis (inner > 1): softmax.cpp softmax_strided ---------------------
# float32 softmax at AVX2 / AVX-512 runs the register-blocked table-exp block (block_softmax_f32):
# inner sizes around the vector widths, its 4-vector chunks (32 / 64 positions) and the
# 256-position blocks, C around the 64-row float32 partial sums, 1-element axes.
STRIDED = [((2, 5, 3), 1), ((3, 70, 300), 1), ((2, 64, 17), 1), ((1, 65, 64), 1), ((2, 129, 257), 1), ((1, 1, 1, 9), 1),
           ((4, 3, 2, 33), 2), ((2, 200, 5, 7), 1), ((1, 7, 1, 1), 1)]


@pytest.mark.parametrize("shape,axis", STRIDED, ids=str)
def test_softmax_strided_matches_reference_and_bits(rng, isa, shape, axis):
    x = random_array(rng, shape, np.float32, -20, 20)
    x.flat[0] = 5000.0
    y = F.softmax(x, axis)
    assert_close(y, R.softmax(x, axis), np.float32, err_msg=f"{isa} {shape}")
    assert_close(F.log_softmax(x, axis), R.log_softmax(x, axis), np.float32, scale=100.0, err_msg=f"{isa} {shape}")
    xg = _grid_logits(rng, shape)
    assert _rel_err(F.softmax(xg, axis), R.softmax(xg.astype(np.float64), axis)) < 1e-6, f"{isa} {shape}"
    np.testing.assert_allclose(y.astype(np.float64).sum(axis), 1.0, rtol=0, atol=4e-6 + shape[axis] * 6e-8)
    # NaN makes its position's slice NaN and nothing else; -inf gives 0
    xn = x.copy()
    xn.reshape(-1)[-1] = np.nan
    xn.reshape(-1)[x.size // 2] = -np.inf
    yn = F.softmax(xn, axis)
    np.testing.assert_array_equal(np.isnan(yn), np.isnan(R.softmax(xn.astype(np.float64), axis)))
    # the same bits for any thread count, streaming or plain stores, and a Fortran-ordered copy
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(3)
        np.testing.assert_array_equal(F.softmax(x, axis), y, err_msg=isa)
        for stream in (0, 1 << 40):
            imkern.set_cpu_params(stream_bytes=stream)
            np.testing.assert_array_equal(F.softmax(x, axis), y, err_msg=f"{isa} stream_bytes={stream}")
        for l1 in (4096, 1 << 20):  # the block width follows the L1d: bits must not
            imkern.set_cpu_params(strip_l1=l1)
            np.testing.assert_array_equal(F.softmax(x, axis), y, err_msg=f"{isa} strip_l1={l1}")
        imkern.reset_cpu_params()
        np.testing.assert_array_equal(F.softmax(np.asfortranarray(x), axis), y, err_msg=isa)
        # a slice along the outer axis gives the same bits (blocks do not depend on position)
        np.testing.assert_array_equal(F.softmax(x[-1:], axis), y[-1:], err_msg=isa)
    finally:
        imkern.set_num_threads(before)
        imkern.reset_cpu_params()


# ---- streamed outputs at every alignment: softmax.cpp scale_store_stream_lines and the
# strided driver's line-aligned blocks (a 64-byte line of y takes streaming or plain stores,
# never both; the first block of a slice ends on a line when inner is a whole number of lines)
STREAMED = [((9, 1000), -1), ((5, 17), -1), ((3, 40), -1), ((2, 24, 7, 16), 1), ((3, 70, 300), 1), ((2, 33, 3, 50), 1),
            ((2, 5, 40), 1), ((1, 3, 16), 1), ((2, 64, 96), 1), ((2, 20, 8), 1)]


@pytest.mark.parametrize("shape,axis", STREAMED, ids=str)
def test_softmax_streamed_any_alignment(rng, isa, shape, axis):
    x = random_array(rng, shape, np.float32, -20, 20)
    n = x.size
    buf = np.empty(n + 64, np.float32)
    base = (-buf.ctypes.data % 64) // 4  # elements to the first 64-byte boundary
    before = imkern.get_num_threads()
    try:
        imkern.set_cpu_params(stream_bytes=1 << 40)
        ref = F.softmax(x, axis)  # plain stores
        imkern.set_cpu_params(stream_bytes=0)
        for threads in (1, 3):
            imkern.set_num_threads(threads)
            for off in range(16):
                buf[:] = np.nan  # poison: every element must be written
                out = buf[base + off : base + off + n].reshape(shape)
                assert F.softmax(x, axis, out=out) is out
                np.testing.assert_array_equal(out, ref, err_msg=f"{isa} offset {off} threads {threads}")
            for l1 in (4096, 1 << 20):  # other block widths
                imkern.set_cpu_params(strip_l1=l1, stream_bytes=0)
                out = buf[base + 5 : base + 5 + n].reshape(shape)
                np.testing.assert_array_equal(F.softmax(x, axis, out=out), ref, err_msg=f"{isa} strip_l1={l1}")
    finally:
        imkern.set_num_threads(before)
        imkern.reset_cpu_params()
