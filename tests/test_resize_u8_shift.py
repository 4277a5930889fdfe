"""uint8 resizes whose fixed-point weights need an intermediate shift (area shrinking by a
non-integer factor, antialiased shrinking, lanczos): the general vertical-first path, whose
horizontal pass takes plain loads per pixel for 3 and 4 channels at every tap count (1, 3, 5,
6, 7, ... taps; 2, 4 and 8 have their own unrolled loops) and gathers otherwise. Every one of
them must give the exact integer formula of the CUDA kernel on every ISA level, so the two
devices agree bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern.transform import _resize as RZ
from imkern.transform import resize


def _integer_formula(x, ytab, xtab, shift):
    """The CUDA kernel's uint8 arithmetic (csrc/cuda/transform/resize.cu) in NumPy: the ky-row
    column sums, shifted with rounding, then the kx-tap row sums, rounded and saturated."""
    ys, yw, yb, _ = ytab
    xs, xw, xb, _ = xtab
    xi = x.astype(np.int64)
    v = sum(yw[:, k][:, None, None] * xi[ys + k] for k in range(yw.shape[1]))
    if shift:
        v = (v + (1 << (shift - 1))) >> shift
    acc = sum(xw[:, j][None, :, None] * v[:, xs + j] for j in range(xw.shape[1]))
    r = yb + xb - shift
    assert np.abs(acc).max() < 2**31
    return np.clip((acc + (1 << (r - 1))) >> r, 0, 255).astype(np.uint8)


# (source, destination): area by non-integer factors (1 to 4 horizontal taps, 1 where the
# width is kept), antialiased shrinks (5 to 9 taps), and small / 1-pixel images
SIZES = [((240, 320), (224, 224)), ((240, 320), (224, 320)), ((240, 320), (240, 224)), ((50, 77), (20, 23)),
         ((31, 101), (17, 29)), ((64, 200), (30, 41)), ((5, 9), (1, 1)), ((3, 40), (2, 13)), ((1, 33), (1, 7))]


@pytest.mark.parametrize("mode,antialias", [("area", False), ("bilinear", True), ("bicubic", False),
                                            ("lanczos", False)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shifted_uint8_resize_equals_the_integer_formula(rng, mode, antialias, channels):
    before = imkern.get_cpu_isa()
    try:
        for (sh, sw), (h, w) in SIZES:
            shrink = mode == "area" and sh >= h and sw >= w
            ytab = RZ._axis_table(sh, h, mode, antialias, shrink, "u8")
            xtab = RZ._axis_table(sw, w, mode, antialias, shrink, "u8")
            shift = RZ._vshift(ytab[3], xtab[3])
            big = random_array(rng, (2, sh, 2 * sw + 3, channels), np.uint8)
            views = [big[0, :, :sw], big[1, ::-1, sw:2 * sw], big[:, :, 1:2 * sw + 1:2]]
            for v in views:
                vv = np.ascontiguousarray(v)
                expect = (np.stack([_integer_formula(im, ytab, xtab, shift) for im in vv]) if vv.ndim == 4
                          else _integer_formula(vv, ytab, xtab, shift))
                for isa in imkern.info()["cpu_isa_available"]:
                    imkern.set_cpu_isa(isa)
                    got = resize(v, (h, w), interpolation=mode, antialias=antialias)
                    np.testing.assert_array_equal(
                        got, expect, err_msg=f"{isa} {(sh, sw)}->{(h, w)} {v.shape} shift={shift}")
    finally:
        imkern.set_cpu_isa(before)


def test_the_sizes_cover_the_shifted_path_and_its_tap_counts():
    """The cases above reach the shifted path (shift > 0) with the tap counts it has loops for."""
    taps = set()
    for (sh, sw), (h, w) in SIZES:
        shrink = sh >= h and sw >= w
        ytab = RZ._axis_table(sh, h, "area", False, shrink, "u8")
        xtab = RZ._axis_table(sw, w, "area", False, shrink, "u8")
        if shrink:
            assert RZ._vshift(ytab[3], xtab[3]) > 0
        taps.add(xtab[1].shape[1])
        taps.add(RZ._axis_table(sw, w, "bilinear", True, False, "u8")[1].shape[1])
    assert {1, 2, 3}.issubset(taps) and any(k > 4 and k != 8 for k in taps), taps
