"""gaussian / sep_filter with long symmetric kernels (13 ... 31 taps, float32 accumulation).

The AVX2 kernels keep a mirrored ring (every window of ring rows at one stride, read from four
base pointers: vfilter_long2_strided) and read the one-channel horizontal windows that would
straddle cache lines from a shifted copy (hfilter_long_c1_avx2). Both form every element's sum
in the order of hfilter_long / vfilter_long, so the bits do not depend on where an element lies
in its row (block, chunk, strip, tail), on the row pairing, on threads, or on the view: these
tests check that (shifted crops, reversed views, odd widths and heights, 1-pixel images,
channels 1/3/4) at every ISA level, and the reference within the float32 tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern import filters as F
from imkern.reference import filters as R

# widths around the horizontal kernel's blocks (32 outputs) and chunks (256), odd ones included
WIDTHS = [1, 7, 31, 32, 33, 63, 257, 300, 513, 1031]
KERNELS = [((31, 31), 5.0), ((13, 13), 2.0), ((29, 15), 4.0), ((17, 31), 3.5)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_long_kernels_match_reference(rng, isa, width, channels):
    shape = (37, width) if channels == 1 else (37, width, channels)
    x = random_array(rng, shape, np.float32)
    for ksize, sigma in KERNELS:
        for border in ("reflect101", "constant", "replicate"):
            got = F.gaussian(x, sigma, ksize=ksize, border=border, cval=0.25)
            want = R.gaussian(x, sigma, ksize=ksize, border=border, cval=0.25)
            assert_close(got, want, np.float32, scale=1.0)


@pytest.mark.parametrize("height", [1, 2, 3, 33, 34])
def test_long_kernels_one_pixel_and_short_images(rng, isa, height):
    for width in (1, 2, 40):
        x = random_array(rng, (height, width), np.float32)
        got = F.gaussian(x, 5.0, ksize=31)
        assert_close(got, R.gaussian(x, 5.0, ksize=31), np.float32, scale=1.0)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_long_kernels_same_bits_wherever_an_element_lies(rng, isa, channels):
    # An element's sum does not depend on its column or row offset in the image: crops that
    # shift it (by 1 ... 37 columns, 1 ... 5 rows) give it the same bits once its window no
    # longer touches the changed border (15 pixels for 31 taps).
    shape = (71, 640) if channels == 1 else (71, 300, channels)
    x = random_array(rng, shape, np.float32)
    full = F.gaussian(x, 5.0, ksize=31)
    for dx in (1, 3, 8, 9, 16, 37):
        got = F.gaussian(x[:, dx:], 5.0, ksize=31)
        np.testing.assert_array_equal(got[:, 15:], full[:, dx + 15 :], err_msg=f"dx={dx}")
    for dy in (1, 2, 5):
        got = F.gaussian(x[dy:], 5.0, ksize=31)
        np.testing.assert_array_equal(got[15:], full[dy + 15 :], err_msg=f"dy={dy}")


@pytest.mark.parametrize("channels", [1, 3])
def test_long_kernels_reversed_and_strided_views(rng, isa, channels):
    # Symmetric taps and a symmetric border: reversing the image reverses the result bit for
    # bit (each pair of mirrored taps is summed, in the same order of pairs, either way).
    shape = (45, 333) if channels == 1 else (45, 333, channels)
    x = random_array(rng, shape, np.float32)
    for ksize in ((31, 31), (15, 21)):
        full = F.gaussian(x, 4.0, ksize=ksize)
        np.testing.assert_array_equal(F.gaussian(x[:, ::-1], 4.0, ksize=ksize), full[:, ::-1])
        np.testing.assert_array_equal(F.gaussian(x[::-1], 4.0, ksize=ksize), full[::-1])
        np.testing.assert_array_equal(F.gaussian(x[::-1, ::-1], 4.0, ksize=ksize), full[::-1, ::-1])
        # a strided view equals its contiguous copy
        v = x[::2, 1::2]
        np.testing.assert_array_equal(
            F.gaussian(v, 4.0, ksize=ksize), F.gaussian(np.ascontiguousarray(v), 4.0, ksize=ksize)
        )


def test_long_kernels_same_bits_threads_and_output_alignment(rng, isa):
    x = random_array(rng, (97, 1030), np.float32)
    before = imkern.get_num_threads()
    try:
        imkern.set_num_threads(1)
        want = F.gaussian(x, 5.0, ksize=31)
        for threads in (2, 3, 7):
            imkern.set_num_threads(threads)
            for off in (0, 1, 8):
                raw = np.empty(x.size + 64, np.float32)
                a0 = (-raw.ctypes.data % 64) // 4 + off
                out = raw[a0 : a0 + x.size].reshape(x.shape)
                F.gaussian(x, 5.0, ksize=31, out=out)
                np.testing.assert_array_equal(out, want, err_msg=f"threads={threads} off={off}")
    finally:
        imkern.set_num_threads(before)


def test_long_kernels_integer_images_keep_float32_arithmetic(rng, isa):
    # uint8 / uint16 images through sep_filter's float path: the float32 image's bits, rounded
    from imkern._kernels import gaussian_kernel_cv

    k = gaussian_kernel_cv(31, 5.0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        x = random_array(rng, (40, 301), dtype)
        got = F.sep_filter(x, k, k)
        ref32 = F.sep_filter(x.astype(np.float32), k.astype(np.float32), k.astype(np.float32))
        np.testing.assert_array_equal(got, np.clip(np.rint(ref32), 0, top).astype(dtype))
