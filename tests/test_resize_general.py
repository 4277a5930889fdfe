"""The general separable resize with float sums (csrc/cpu/transform/resize.cpp) when the
height grows: consecutive output rows with the same source window summed in one pass (each
ring row loaded once for both), and horizontal tables that repeat along the row (rational
factors: 2x, 3x, 1.5x, 4/3, 2.5x) read from their first period, whole periods at once.
Against the reference on every ISA level, and bit for bit against the same resize where
neither applies (outputs whose rows are misaligned to each other, so no pairs with
streaming stores), for odd widths, 1-pixel images, channels 1-5, strided and negative-stride
views, batches and threads."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern.reference import transform as R
from imkern.transform import resize

# (src h, src w) -> (dst h, dst w): periodic rows long enough for a period (2x, 3x, 1.5x, 4/3,
# 2.5x), non-integer factors without a period, short rows, 1-pixel inputs, odd sizes
SIZES = [
    ((23, 131), (46, 262)),
    ((9, 200), (27, 600)),
    ((12, 160), (18, 240)),
    ((9, 150), (12, 200)),
    ((8, 88), (20, 220)),
    ((19, 67), (26, 90)),
    ((17, 224), (23, 300)),
    ((5, 12), (10, 24)),
    ((1, 1), (2, 2)),
    ((1, 9), (2, 18)),
    ((7, 1), (14, 2)),
    ((2, 3), (5, 7)),
]
MODES = ["bilinear", "bicubic", "lanczos"]


def _cmp(got, x, dst, mode, dtype):
    ref = R.resize(x, dst, interpolation=mode)
    k = {"lanczos": 3.0, "bicubic": 1.6}.get(mode, 1.0)
    scale = 2.0 * max(1.0, float(np.abs(x.astype(np.float64)).max()))
    assert_close(got, ref, np.float32 if np.dtype(dtype).kind == "f" else dtype, scale=k * scale,
                 err_msg=f"{mode} {x.shape} -> {dst}")


def _misaligned_rows_out(dst, channels, dtype):
    """An output whose consecutive rows start at different offsets modulo any vector size
    (row pitch one element longer than the row): with streaming stores the rows are summed
    one at a time."""
    h, w = dst
    buf = np.full((h, w + 1, channels), 7, dtype)
    return buf[:, :w]


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mode", MODES)
def test_upscale_matches_reference_every_isa_level(rng, isa, dtype, channels, mode):
    for src, dst in SIZES:
        x = random_array(rng, src + (channels,), dtype)
        _cmp(resize(x, dst, interpolation=mode), x, dst, mode, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("mode", MODES)
def test_row_pairs_equal_single_rows(rng, isa, dtype, channels, mode):
    """The paired sums (2 and 4 taps) give the single-row sums' bits: a contiguous output
    (pairs, with and without streaming) against an output with misaligned rows and streaming
    (no pairs), and the rows of an output view with its own alignment. Lanczos (8 taps, never
    paired): the scalar head of a streamed row (1 .. L - 1 elements here) gives the vector
    body's bits (the same products in the same order, fused alike)."""
    for src, dst in SIZES:
        x = random_array(rng, src + (channels,), dtype)
        res = {}
        for stream in (False, True):
            imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
            try:
                res[stream] = resize(x, dst, interpolation=mode)
                single = _misaligned_rows_out(dst, channels, dtype)
                resize(x, dst, interpolation=mode, out=single)
                # one element past an aligned address: pairs again, heads of 1 .. L - 1 elements
                buf = np.empty(dst[0] * dst[1] * channels + 1, dtype)
                shifted = buf[1:].reshape(dst + (channels,))
                resize(x, dst, interpolation=mode, out=shifted)
            finally:
                imkern.set_cpu_params(stream_bytes=None)
            np.testing.assert_array_equal(single, res[stream], err_msg=f"{src}->{dst} stream={stream}")
            np.testing.assert_array_equal(shifted, res[stream], err_msg=f"{src}->{dst} stream={stream}")
            assert (single.base[:, dst[1]:] == 7).all()  # nothing written past the rows
        np.testing.assert_array_equal(res[True], res[False])
        _cmp(res[True], x, dst, mode, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_views_batches_threads(rng, isa, threads, dtype):
    """Strided and negative-stride inputs, batches (no pair across two images), and thread
    counts that split pairs at chunk edges: equal to the contiguous single-image results."""
    for (sh, sw), (h, w) in [((23, 131), (46, 262)), ((9, 150), (12, 200)), ((1, 9), (2, 18)), ((19, 67), (26, 90))]:
        big = random_array(rng, (2, sh, 2 * sw + 3, 3), dtype)
        for mode in ("bilinear", "bicubic"):
            for v in (big[0, :, :sw], big[1, ::-1, sw:2 * sw], big[0, :, 1:2 * sw + 1:2], big[1, :, sw - 1::-1]):
                before = v.copy()
                got = resize(v, (h, w), interpolation=mode)
                np.testing.assert_array_equal(got, resize(np.ascontiguousarray(v), (h, w), interpolation=mode))
                np.testing.assert_array_equal(v, before)
                _cmp(got, np.ascontiguousarray(v), (h, w), mode, dtype)
            batch = big[:, :, :sw]
            got = resize(batch, (h, w), interpolation=mode)
            for i in range(2):
                np.testing.assert_array_equal(got[i], resize(np.ascontiguousarray(batch[i]), (h, w), interpolation=mode))


def test_large_periodic_upscale_every_isa_level(rng, isa):
    """Rows long enough for the tables to leave the L1 (the periodic path on every ISA level)
    and outputs streamed: 2x and 3x, gray and RGB, float32."""
    for channels in (1, 3):
        for (sh, sw), (h, w) in [((6, 1500), (12, 3000)), ((5, 1001), (15, 3003)), ((7, 1203), (14, 1604))]:
            x = random_array(rng, (sh, sw, channels), np.float32)
            for mode in ("bilinear", "bicubic"):
                imkern.set_cpu_params(stream_bytes=0)
                try:
                    got = resize(x, (h, w), interpolation=mode)
                finally:
                    imkern.set_cpu_params(stream_bytes=None)
                _cmp(got, x, (h, w), mode, np.float32)
                np.testing.assert_array_equal(got, resize(x, (h, w), interpolation=mode))


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_lanczos_row_heads_equal_the_vector_body(rng, isa, dtype, channels):
    """Lanczos (8 taps) shrinking (vertical first: the elements before the first block aligned
    for the stores take the scalar formula) and growing (horizontal first: the scalar head of a
    streamed row), with and without streaming stores: outputs whose first element sits 0 .. 16
    elements past an aligned address (so every element of a row is in turn a scalar head and
    part of a vector) give the same bits."""
    for src, dst in [((40, 300), (23, 171)), ((31, 257), (17, 100)), ((23, 131), (46, 262)), ((9, 150), (12, 200)),
                     ((5, 33), (3, 17))]:
        x = random_array(rng, src + (channels,), dtype)
        expect = resize(x, dst, interpolation="lanczos")
        _cmp(expect, x, dst, "lanczos", dtype)
        n = dst[0] * dst[1] * channels
        for stream in (False, True):
            imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
            try:
                for k in range(17):
                    buf = np.empty(n + 64, dtype)
                    lead = (-buf.ctypes.data // buf.itemsize) % 16 + k
                    out = buf[lead: lead + n].reshape(dst + (channels,))
                    resize(x, dst, interpolation="lanczos", out=out)
                    np.testing.assert_array_equal(out, expect, err_msg=f"{src}->{dst} stream={stream} k={k}")
            finally:
                imkern.set_cpu_params(stream_bytes=None)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize(("factor", "mode"), [(2, "bilinear"), (2, "bicubic"), (3, "bicubic"), (1.5, "bilinear")])
def test_periodic_rows_equal_short_rows(rng, isa, dtype, channels, factor, mode):
    """Small upscales whose horizontal tables fit the L1 and repeat (on AVX-512 the periodic
    blocks run there for 3 and more channels; AVX2 has them at every size): a row long enough
    for whole periods gives, away from its right edge, the same bits as a row with the permute
    plan but too short for a period (the blocks read the table rows), whose taps and weights are
    the same there. And rows whose length leaves elements after the last whole vector (plain
    stores: one vector ending at the row's end) equal the streamed rows (scalar tails)."""
    h = 5
    short = {1: 40, 2: 20, 3: 12, 4: 10}[channels]  # 32 elements or more, fewer than 8 + 4 periods of blocks
    for wide in (96, 150):
        x = random_array(rng, (h, wide, channels), dtype)
        dst = (int(h * factor), int(wide * factor))
        got = resize(x, dst, interpolation=mode)
        _cmp(got, x, dst, mode, dtype)
        part = resize(np.ascontiguousarray(x[:, :short]), (dst[0], int(short * factor)), interpolation=mode)
        keep = int(short * factor) - 8
        np.testing.assert_array_equal(part[:, :keep], got[:, :keep], err_msg=f"{wide}->{short} {mode} x{factor}")
        imkern.set_cpu_params(stream_bytes=0)
        try:
            streamed = resize(x, dst, interpolation=mode)
        finally:
            imkern.set_cpu_params(stream_bytes=None)
        np.testing.assert_array_equal(streamed, got)
