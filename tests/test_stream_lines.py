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


# The 5- and 7-tap rows (sobel.cpp sep_impl / sum_sep_impl): the horizontal pass by lane shifts
# (sep_hpass_lanes, sum_hpass_lanes_seq: 1, 3, 4 channels) streams only hpass_span's whole
# lines, the aligned vectors before and after them and the overlapping last vector plain; two
# channels take the direct-load rows (sep_hpass, sum_hpass_seq). Row pairs (pad 0, 16: rows
# a whole number of lines apart) and single rows (pad 5), delta on and off, integer sources.
_WIDE_OPS = {
    "sobel5_dx": lambda x, o: F.sobel(x, 1, 0, ksize=5, out=o),
    "sobel7_dy_delta": lambda x, o: F.sobel(x, 0, 1, ksize=7, delta=0.5, out=o),
    "sobel5_dxdy": lambda x, o: F.sobel(x, 1, 1, ksize=5, out=o),
    "laplacian5": lambda x, o: F.laplacian(x, ksize=5, out=o),
    "laplacian7_delta": lambda x, o: F.laplacian(x, ksize=7, delta=-1.0, out=o),
}


@pytest.mark.parametrize("op", sorted(_WIDE_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_stream_lines_sobel_wide(isa, rng, op, dtype):
    for w, c in ((7, 1), (40, 1), (100, 1), (261, 1), (37, 3), (75, 3), (33, 4), (61, 4), (50, 2)):
        shape = (7, w, c) if c > 1 else (7, w)
        x = random_array(rng, shape, dtype)
        _check(_WIDE_OPS[op], x, shape, np.float32, pads=(0, 5, 16))


@pytest.mark.parametrize("w", _WIDTHS)
def test_stream_lines_sobel_two_channels(isa, rng, w):
    # channel counts the fused rows do not take: the two-pass 3x3 (sep_hpass) and the 5-tap
    # Laplacian stencil (stencil3_row), both through sobel.cpp's store_row_vectors
    shape = (6, w, 2)
    x = random_array(rng, shape, np.float32)
    _check(lambda x, o: F.sobel(x, 1, 0, out=o), x, shape, np.float32, pads=(0, 5))
    _check(lambda x, o: F.laplacian(x, ksize=1, out=o), x, shape, np.float32, pads=(0, 5))
    _check(lambda x, o: F.laplacian(x, ksize=3, out=o), x, shape, np.float32, pads=(0, 5))


# The fused 3x3 rows (sobel.cpp fused3_rows): rows a whole number of lines apart take two
# rows per pass (pads 0 and 16 with these widths), so the pair's shared span is reached too;
# every head / tail class of the span at every output offset, the tail empty (whole rows of
# lines) included; integer sources single rows.
_FUSED_OPS = {
    "sobel_dx": lambda x, o: F.sobel(x, 1, 0, out=o),
    "sobel_dy_delta": lambda x, o: F.sobel(x, 0, 1, delta=0.25, out=o),
    "scharr": lambda x, o: F.scharr(x, 1, 0, out=o),
    "laplacian1": lambda x, o: F.laplacian(x, ksize=1, out=o),
    "laplacian3": lambda x, o: F.laplacian(x, ksize=3, out=o),
    "magnitude_l2": lambda x, o: F.gradient_magnitude(x, out=o),
    "magnitude_l1": lambda x, o: F.gradient_magnitude(x, l2=False, out=o),
}


@pytest.mark.parametrize("op", sorted(_FUSED_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_stream_lines_sobel_fused(isa, rng, op, dtype):
    for w, c in ((128, 1), (144, 1), (213, 1), (64, 3), (75, 3), (48, 4)):
        shape = (7, w, c) if c > 1 else (7, w)
        x = random_array(rng, shape, dtype)
        _check(_FUSED_OPS[op], x, shape, np.float32, pads=(0, 16) if dtype == np.float32 else (0, 5))


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_stream_lines_gradient_pair(isa, rng, dtype):
    # both outputs of gradient stream when they share their line phase: the second output at
    # the first's offset (streamed) and 4 bytes further (plain); same bits as unstreamed
    for w, c in ((128, 1), (213, 1), (64, 3)):
        shape = (7, w, c) if c > 1 else (7, w)
        x = random_array(rng, shape, dtype)
        wx, wy = F.gradient(x)
        imkern.set_cpu_params(stream_bytes=0)
        try:
            for pad in (0, 16):
                for shift in (0, 4):
                    for (ob, bx, vx, *_), (_, by, vy, *_) in zip(
                        _views(shape, np.float32, range(0, 64, 4), pad),
                        _views(shape, np.float32, [(o + shift) % 64 for o in range(0, 64, 4)], pad),
                    ):
                        gx, gy = F.gradient(x, out=(vx, vy))
                        assert gx is vx and gy is vy
                        for got, want in ((vx, wx), (vy, wy)):
                            np.testing.assert_array_equal(
                                np.asarray(got).view(np.uint32), want.view(np.uint32), err_msg=f"offset {ob}, pad {pad}"
                            )
                        # every poisoned byte outside the views untouched
                        assert np.isnan(bx).sum() == bx.size - vx.size
                        assert np.isnan(by).sum() == by.size - vy.size
        finally:
            imkern.reset_cpu_params()


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


def test_stream_lines_resize_uint8_strided_means(isa, rng):
    # resize_decimate.cpp: rows through a buffer, streamed on whole lines
    for src, dst in (((8, 160, 3), (2, 40)), ((8, 1044), (2, 261)), ((4, 400, 4), (1, 100))):
        x = random_array(rng, src, np.uint8)
        shape = dst + src[2:]
        _check(lambda x, o, dst=dst: T.resize(x, dst, interpolation="bilinear", out=o), x, shape, np.uint8, pads=(0, 5))


def test_stream_lines_flip(isa, rng):
    for dtype in (np.uint8, np.float32):
        x = random_array(rng, (6, 300, 3), dtype)
        _check(lambda x, o: T.flip(x, 0, out=o), x, x.shape, dtype, pads=(0, 5))


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_stream_lines_gelu(isa, rng, threads):
    # nn.functional.gelu's float32 loop (activations.cpp map1_n): the flat run in chunks of
    # the thread split, each streaming its whole lines; every head / tail length at every
    # output offset, one vector and one line short and long, and runs of several chunks
    from imkern.nn import functional as NF

    for n in (5, 8, 16, 23, 40, 999, 70001):
        x = random_array(rng, (1, n), np.float32, -6, 6)
        x[0, ::7] = random_array(rng, x[0, ::7].shape, np.float32, -15, 15)  # far lanes too
        _check(lambda x, o: NF.gelu(x, out=o), x, x.shape, np.float32, pads=(0,))


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_stream_lines_gray_flat_chunks(isa, rng, threads):
    # packed float rows -> gray as one run in chunks placed on the output's lines (gray.cpp
    # gray_float): several chunks, split between the threads, every output offset
    from imkern import color as K

    for dtype in (np.float32, np.float64):
        x = random_array(rng, (3, 20011, 3), dtype)
        _check(lambda x, o: K.rgb_to_gray(x, out=o), x, (3, 20011), dtype, pads=(0,))


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_stream_lines_ycbcr_flat_chunks(isa, rng, threads):
    # packed float 3-channel rows as one run in chunks placed on the output's lines
    # (pixel_map.hpp map_pixels_run): several chunks, split between the threads, every output
    # offset; a batch of images is one run too
    from imkern import color as K

    for dtype in (np.float32, np.float64):
        for shape in ((3, 20011, 3), (2, 2, 9001, 3)):
            x = random_array(rng, shape, dtype)
            _check(lambda x, o: K.rgb_to_ycbcr(x, out=o), x, shape, dtype, pads=(0,))
            _check(lambda x, o: K.ycbcr_to_rgb(x, out=o), x, shape, dtype, pads=(0,))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_stream_lines_color(isa, rng, dtype):
    # gray.cpp's uint8 rows (AVX2: pairs of 32-byte streams per line, the rest plain from a
    # line boundary) and pixel_map.hpp's float rows (stream_row: the whole lines of 1- and
    # 3-element pixels streamed, plain vectors before and after them ending at the span's ends;
    # Row3F's blocks left to the functor streamed through a buffer: hsv_to_rgb's far hues);
    # packed rows (gray uint8: one run in line-placed chunks) and rows with gaps
    from imkern import color as K

    # (uint8 width 103: tails of 1-7 pixels after the streamed lines of AVX2 rows at every head)
    for w in (5, 37, 100, 103, 261):
        for c in (3, 4) if dtype == np.uint8 else (3,):
            x = random_array(rng, (4, w, c), dtype)
            _check(lambda x, o: K.rgb_to_gray(x, out=o), x, (4, w), dtype, pads=(0, 5))
            _check(lambda x, o: K.bgr_to_gray(x, out=o), x, (4, w), dtype, pads=(0,))
        if dtype == np.uint8:
            # rgb_to_hsv's uint8 rows (hsv.cpp; not on the whole-line rule: AVX2 streams pairs of
            # steps from the first 16-byte aligned output, a buffered head and tail around them;
            # AVX-512 VBMI from the first 64-byte aligned one): the poison after each row and
            # after the last one too, and rows with gaps
            x = random_array(rng, (4, w, 3), dtype)
            _check(lambda x, o: K.rgb_to_hsv(x, out=o), x, (4, w, 3), dtype, pads=(0, 5))
        else:
            x = random_array(rng, (4, w, 3), dtype)
            _check(lambda x, o: K.rgb_to_ycbcr(x, out=o), x, (4, w, 3), dtype, pads=(0, 5))
            _check(lambda x, o: K.rgb_to_hsv(x, out=o), x, (4, w, 3), dtype, pads=(0, 5))
            h = x.copy()
            h[:, ::3, 0] = random_array(rng, h[:, ::3, 0].shape, dtype, 1e6, 1e7)  # far hues: functor blocks
            _check(lambda x, o: K.hsv_to_rgb(x, out=o), h, (4, w, 3), dtype, pads=(0, 5))
