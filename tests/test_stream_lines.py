"""Streaming stores write whole 64-byte output lines only (common/simd.hpp, stream_span): the
elements before the first line boundary of a row and after the last are stored plainly, and no
plain store reaches a streamed line. These tests force streaming (stream_bytes=0) and write into
output views that start at every 4-byte offset within a line, with row strides that are and are
not whole lines, so every head / tail split of the row loops is reached at every ISA level; the
results must be the bits of the unstreamed run, and the poisoned bytes around the view must
stay untouched."""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern import filters as F
from imkern import transform as T

_K3 = np.array([[0.1, 0.2, 0.05], [0.15, 0.3, 0.1], [0.02, 0.03, 0.05]])
_K5 = np.outer(np.arange(1.0, 6.0), np.arange(5.0, 0.0, -1.0)) / 100.0


def _views(shape, dtype, offsets_bytes, pad_rows):
    """Output views of `shape` (H, W[, C]) into a poisoned flat buffer: the first element at
    each byte offset, rows `pad_rows` elements apart beyond the row's own (0: packed rows)."""
    dt = np.dtype(dtype)
    h = shape[0]
    row = int(np.prod(shape[1:]))
    stride = row + pad_rows
    poison = np.iinfo(dt).max if dt.kind == "u" else np.nan
    for ob in offsets_bytes:
        off = ob // dt.itemsize
        n = 64 // dt.itemsize + off + h * stride + 64
        raw = np.empty(n * dt.itemsize + 64, np.uint8)
        start = (-raw.ctypes.data) % 64  # buf[0] on a line
        buf = raw[start:start + n * dt.itemsize].view(dt)
        buf[...] = poison
        v = buf[off:off + h * stride].reshape(h, stride)[:, :row].reshape(shape)
        yield ob, buf, v, off, stride, row


def _check(fn, x, shape, dtype, offsets=None, pads=(0, 5, 16)):
    """fn(x, out) streamed into every view equals fn(x, None) unstreamed, bit for bit."""
    dt = np.dtype(dtype)
    if offsets is None:
        offsets = range(0, 64, 4) if dt.itemsize >= 4 else sorted(set(range(0, 64, 4)) | {1, 3, 33})
    want = fn(x, None)
    assert want.shape == tuple(shape)
    imkern.set_cpu_params(stream_bytes=0)
    try:
        for pad in pads:
            for ob, buf, v, off, stride, row in _views(shape, dt, offsets, pad):
                fn(x, v)
                got = np.asarray(v)
                if dt.kind == "f":
                    np.testing.assert_array_equal(got.view(f"u{dt.itemsize}"), want.view(f"u{dt.itemsize}"),
                                                  err_msg=f"offset {ob} bytes, row pad {pad}")
                else:
                    np.testing.assert_array_equal(got, want, err_msg=f"offset {ob} bytes, row pad {pad}")
                # nothing written outside the view
                mask = np.ones(buf.shape, bool)
                idx = off + np.arange(shape[0])[:, None] * stride + np.arange(row)[None, :]
                mask[idx.ravel()] = False
                rest = buf[mask]
                if dt.kind == "f":
                    assert np.isnan(rest).all(), f"offset {ob} bytes, row pad {pad}: written outside"
                else:
                    assert (rest == np.iinfo(dt).max).all(), f"offset {ob} bytes, row pad {pad}: written outside"
    finally:
        imkern.reset_cpu_params()


# widths: rows shorter than a line, about two lines, and long rows with every tail length class
_WIDTHS = [7, 37, 100, 261]


@pytest.mark.parametrize("w", _WIDTHS)
@pytest.mark.parametrize("c", [1, 3])
def test_stream_lines_gaussian_f32(isa, rng, w, c):
    shape = (6, w, c) if c > 1 else (6, w)
    x = random_array(rng, shape, np.float32)
    for ks in (3, 5, 31):
        _check(lambda x, o, ks=ks: F.gaussian(x, 1.5, ksize=(ks, ks), out=o), x, shape, np.float32)


@pytest.mark.parametrize("w", _WIDTHS)
@pytest.mark.parametrize("c", [1, 3])
def test_stream_lines_gaussian_u8(isa, rng, w, c):
    shape = (7, w, c) if c > 1 else (7, w)
    x = random_array(rng, shape, np.uint8)
    for ks in (5, 31):
        _check(lambda x, o, ks=ks: F.gaussian(x, 1.0 if ks == 5 else 5.0, ksize=(ks, ks), out=o), x, shape, np.uint8)


@pytest.mark.parametrize("w", _WIDTHS + [4 * 32 + 40])
@pytest.mark.parametrize("c", [1, 3])
def test_stream_lines_correlate_f32(isa, rng, w, c):
    shape = (6, w, c) if c > 1 else (6, w)
    x = random_array(rng, shape, np.float32)
    _check(lambda x, o: F.correlate(x, _K3, out=o), x, shape, np.float32)
    _check(lambda x, o: F.correlate(x, _K5, out=o), x, shape, np.float32, pads=(0, 5))


@pytest.mark.parametrize("w", _WIDTHS)
@pytest.mark.parametrize("c", [1, 3])
def test_stream_lines_sobel_f32(isa, rng, w, c):
    shape = (6, w, c) if c > 1 else (6, w)
    x = random_array(rng, shape, np.float32)
    _check(lambda x, o: F.sobel(x, 1, 0, out=o), x, shape, np.float32)
    _check(lambda x, o: F.sobel(x, 0, 1, ksize=5, out=o), x, shape, np.float32, pads=(0, 5))
    _check(lambda x, o: F.laplacian(x, ksize=5, out=o), x, shape, np.float32, pads=(0, 5))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_stream_lines_threshold_morphology(isa, rng, dtype):
    for w in (37, 261):
        shape = (5, w, 3)
        x = random_array(rng, shape, dtype)
        t = 100 if dtype == np.uint8 else 0.5
        _check(lambda x, o, t=t: F.threshold(x, t, 200 if dtype == np.uint8 else 1.0, out=o), x, shape, dtype)
        _check(lambda x, o: F.dilate(x, 5, out=o), x, shape, dtype, pads=(0, 5))
        _check(lambda x, o: F.erode(x, (3, 7), out=o), x, shape, dtype, pads=(0, 5))


def test_stream_lines_threshold_flat(isa, rng):
    # the flat path: one contiguous run, chunks from the first output line on
    for dtype in (np.uint8, np.float32):
        x = random_array(rng, (40, 999), dtype)
        t = 100 if dtype == np.uint8 else 0.5
        _check(lambda x, o, t=t: F.threshold(x, t, 1, out=o), x, x.shape, dtype, pads=(0,))


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_stream_lines_resize(isa, rng, dtype):
    for src, dst in (((9, 40, 3), (18, 80)), ((12, 100, 3), (6, 50)), ((7, 33), (15, 131))):
        x = random_array(rng, src, dtype)
        shape = dst + src[2:]
        for interp in ("bilinear", "bicubic"):
            _check(lambda x, o, dst=dst, interp=interp: T.resize(x, dst, interpolation=interp, out=o), x, shape, dtype, pads=(0, 5))


def test_stream_lines_flip(isa, rng):
    for dtype in (np.uint8, np.float32):
        x = random_array(rng, (6, 300, 3), dtype)
        _check(lambda x, o: T.flip(x, 0, out=o), x, x.shape, dtype, pads=(0, 5))


@pytest.mark.parametrize("threads", [1, 2])
def test_stream_lines_gelu(isa, rng, threads):
    # nn.functional.gelu's float32 loop (activations.cpp map1_n): the flat run in chunks of
    # the thread split, each streaming its whole lines; every head / tail length at every
    # output offset, one vector and one line short and long, and runs of several chunks
    from imkern.nn import functional as NF

    before = imkern.get_num_threads()
    imkern.set_num_threads(threads)
    try:
        for n in (5, 8, 16, 23, 40, 999, 70001):
            x = random_array(rng, (1, n), np.float32, -6, 6)
            x[0, ::7] = random_array(rng, x[0, ::7].shape, np.float32, -15, 15)  # far lanes too
            _check(lambda x, o: NF.gelu(x, out=o), x, x.shape, np.float32, pads=(0,))
    finally:
        imkern.set_num_threads(before)
