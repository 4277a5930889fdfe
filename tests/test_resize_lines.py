"""Streamed output row pairs of the upscaling resize (csrc/cpu/transform/resize.cpp: vsum2_u8
and vsum_out2_f32) go out a whole 64-byte line of one row, then of the other, where a vector
is narrower than a line (AVX2; uint16 on AVX-512 too). The line order must not change a bit:
every output start within a line (each element offset), rows pitched to whole lines so that
both rows of a pair stream, placements 1 KiB apart (the float sums walk a row forward or
backward depending on the output's position modulo 4 KiB), rows shorter than a line, one line,
and lines plus vectors plus elements; against the same resize without streaming, for uint8,
uint16 and float32, channels 1/3/4, 1 and 2 threads, strided and negative-stride inputs, every
ISA level."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern.transform import resize

# (src h, src w) -> (dst h, dst w): 2x (mirrored pairs for uint8, same-window pairs for floats),
# 4x (pairs in the middle rows), rows from a few elements to several lines, odd widths, 1 pixel
SIZES = [
    ((5, 37), (10, 74)),
    ((6, 50), (12, 100)),
    ((4, 9), (8, 18)),
    ((3, 61), (12, 244)),
    ((1, 1), (2, 2)),
    ((2, 5), (4, 10)),
]


def _streamed(fn):
    imkern.set_cpu_params(stream_bytes=0)
    try:
        return fn()
    finally:
        imkern.set_cpu_params(stream_bytes=None)


def _plain(fn):
    imkern.set_cpu_params(stream_bytes=1 << 40)
    try:
        return fn()
    finally:
        imkern.set_cpu_params(stream_bytes=None)


def _placed_outputs(shape, dtype):
    """Output views of `shape` (h, w, c) whose rows are pitched to whole 64-byte lines (every row
    at the same offset within its line: pairs stream) starting at each element offset within a
    line, at four positions 1 KiB apart modulo 4 KiB; each with its poisoned buffer."""
    h, w, c = shape
    item = np.dtype(dtype).itemsize
    row = w * c * item
    pitch = (row + 64 + 63) // 64 * 64  # bytes, a whole number of lines past the row
    outs = []
    for k in range(4):
        for s in range(0, 64, item):
            buf = np.full(h * pitch + 8192, 0xA5, np.uint8)
            base = (-buf.ctypes.data) % 4096 + 1024 * k + s
            raw = buf[base:base + h * pitch].reshape(h, pitch)
            out = raw[:, :row].view(dtype).reshape(h, w, c)
            outs.append((out, buf, base, pitch, row))
    return outs


def _check_placed(x, dst, mode, dtype, channels):
    h, w = dst
    expect = _plain(lambda: resize(x, dst, interpolation=mode))
    for out, buf, base, pitch, row in _placed_outputs((h, w, channels), dtype):
        o = out if channels > 1 else out[..., 0]
        _streamed(lambda o=o: resize(x, dst, interpolation=mode, out=o))
        np.testing.assert_array_equal(o, expect, err_msg=f"{mode} {x.shape}->{dst} at +{base % 4096}")
        # nothing written outside the rows: before, between and after them
        raw = buf[base:base + h * pitch].reshape(h, pitch)
        assert (buf[:base] == 0xA5).all() and (buf[base + h * pitch:] == 0xA5).all()
        assert (raw[:, row:] == 0xA5).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_streamed_pairs_in_whole_lines_every_isa_level(rng, isa, dtype, channels, mode):
    for src, dst in SIZES:
        x = random_array(rng, src + (channels,), dtype)
        if channels == 1:
            x = x[..., 0]
        _check_placed(x, dst, mode, dtype, channels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_streamed_pairs_in_whole_lines_views_threads(rng, isa, dtype):
    """Strided, negative-stride and reversed-column inputs, 1 and 2 threads (pairs split at
    chunk edges): the streamed line order gives the plain contiguous result."""
    before = imkern.get_num_threads()
    try:
        for (sh, sw), (h, w) in [((6, 50), (12, 100)), ((3, 61), (12, 244))]:
            big = random_array(rng, (2, sh, 2 * sw + 3, 3), dtype)
            views = [big[0, :, :sw], big[1, ::-1, sw:2 * sw], big[0, :, 1:2 * sw + 1:2], big[1, :, sw - 1::-1]]
            for v in views:
                for threads in (1, 2):
                    imkern.set_num_threads(threads)
                    expect = _plain(lambda v=v, hw=(h, w): resize(np.ascontiguousarray(v), hw, interpolation="bicubic"))
                    got = _streamed(lambda v=v, hw=(h, w): resize(v, hw, interpolation="bicubic"))
                    np.testing.assert_array_equal(got, expect, err_msg=f"{v.strides} t={threads}")
                    for out, *_ in _placed_outputs((h, w, 3), dtype)[::7]:
                        _streamed(lambda v=v, out=out, hw=(h, w): resize(v, hw, interpolation="bicubic", out=out))
                        np.testing.assert_array_equal(out, expect, err_msg=f"{v.strides} t={threads}")
    finally:
        imkern.set_num_threads(before)
