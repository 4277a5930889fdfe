"""Row ends at page boundaries: inputs and outputs placed right after and right before an
inaccessible page (PROT_NONE), so a read or write one byte outside the array faults instead of
landing in the allocator's slack, where the other tests cannot see it. The paths whose loads
run closest to a row's end: resize's strided 2x2 means (resize_decimate.cpp: pshufb windows,
VBMI windows, single vectors, the scalar tail), its two-pixel float sums (the last pixel's
lanes) and nearest's wide pixel copies, rgb_to_hsv's uint8 rows (buffered heads and tails),
rgb_to_gray (uint8 32-pixel blocks with 4 bytes of slack either side, float runs in chunks),
float YCbCr (one run), Sobel / Laplacian 5 and 7 (lane-shift rows) and bilateral's
packed uint8 RGB rows; every ISA level (in one child process per group), streaming forced on
and off."""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern import color as K
from imkern import filters as F
from imkern import transform as T

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes: Linux")

_PAGE = mmap.PAGESIZE


def _guarded(shape, dtype, at_end):
    """An uninitialised C-contiguous array with an inaccessible page right before and right after
    its pages; the array ends at the second one (at_end) or starts after the first."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    pages = (nbytes + _PAGE - 1) // _PAGE
    mm = mmap.mmap(-1, (pages + 2) * _PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    for page in (0, pages + 1):
        assert libc.mprotect(base + page * _PAGE, _PAGE, 0) == 0, ctypes.get_errno()
    start = _PAGE + (pages * _PAGE - nbytes if at_end else 0)
    return np.frombuffer(mm, np.uint8)[start:start + nbytes].view(dt).reshape(shape)


def _case(rng, op, shape, dtype, out_shape, out_dtype):
    x = random_array(rng, shape, dtype)
    return op, x, out_shape, out_dtype


def _compare(cases):
    """Each case's op(x, None) and op(x, o) with x and o guarded (at either end), streaming on
    and off, equal to op on ordinary arrays."""
    for op, x0, out_shape, out_dtype in cases:
        want = op(x0, None)
        for stream in (None, 0):
            imkern.set_cpu_params(stream_bytes=stream)
            for at_end in (True, False):
                msg = f"{x0.shape} {x0.dtype} -> {out_shape}, stream={stream} at_end={at_end}"
                print(msg, file=sys.stderr, flush=True)  # the case a fault ends on
                x = _guarded(x0.shape, x0.dtype, at_end)
                x[...] = x0
                np.testing.assert_array_equal(op(x, None), want, err_msg=msg)
                o = _guarded(out_shape, out_dtype, at_end)
                op(x0, o)
                np.testing.assert_array_equal(o, want, err_msg="out= " + msg)
        imkern.set_cpu_params(stream_bytes=None)


def _check(rng, cases):
    """_compare(cases(rng)) at every ISA level in a fresh process, so that a fault fails the test
    (exit code -11) instead of ending the session."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import numpy as np, imkern, test_guard_pages as t\n"
        f"for isa in imkern.info()['cpu_isa_available']:\n"
        f"    imkern.set_cpu_isa(isa); print(isa, file=sys.stderr)\n"
        f"    t._compare(t.{cases.__name__}(np.random.default_rng({int(rng.integers(2**62))})))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    tail = "\n".join(r.stderr.splitlines()[-12:])
    assert r.returncode == 0, f"exit code {r.returncode} (-11: an access outside an array):\n{tail}"


def _resize_cases(rng):
    cases = [
        _case(rng, lambda x, o, w=w: T.resize(x, (2, w), interpolation="bilinear", out=o), (8, 4 * w, c), np.uint8,
              (2, w, c), np.uint8)
        for w in (1, 2, 3, 5, 8, 17, 33, 97, 250)
        for c in (1, 2, 3, 4, 8)
    ]
    cases.append(_case(rng, lambda x, o: T.resize(x, (10, 30), interpolation="bilinear", out=o), (40, 60, 3),
                       np.uint8, (10, 30, 3), np.uint8))
    # float32 / uint16 with the height kept (the horizontal pass reads the source rows in place:
    # permute windows, the even/odd sums of 2x shrinks) or the width kept (vertical sums only)
    for c in (1, 2, 3, 4):
        for w in (16, 33, 97):
            for dt in (np.float32, np.uint16):
                for mode in ("bilinear", "bicubic", "lanczos"):
                    for dw in (2 * w, 3 * w, 4 * w // 3):
                        cases.append(_case(rng, lambda x, o, dw=dw, mode=mode: T.resize(x, (5, dw), interpolation=mode,
                                                                                     out=o),
                                           (5, 4 * w, c), dt, (5, dw, c), dt))
                for h in (7, 29):  # the width kept, the height shrunk or grown
                    cases.append(_case(rng, lambda x, o, w=w, h=h: T.resize(x, (h, 2 * w), interpolation="bicubic",
                                                                              out=o),
                                       (12, 2 * w, c), dt, (h, 2 * w, c), dt))
    # 3 and 4 channels shrunk by non-integer factors (two pixels per vector: the row's last
    # pixel is stored as whole lanes only); the height shrunk, kept or shrunk 3x (one source row
    # per output row, read in place), or grown (the source rows read in place, uint16 widened)
    for c in (3, 4):
        for w in (1, 2, 17, 40):
            for dt in (np.float32, np.uint16):
                for sw in (3 * w, 5 * w):
                    for sh, h in ((5, 3), (5, 5), (9, 3), (3, 7)):
                        for mode, aa in (("bicubic", False), ("lanczos", False), ("bilinear", True)):
                            cases.append(_case(rng, lambda x, o, w=w, h=h, mode=mode, aa=aa: T.resize(
                                x, (h, 2 * w), interpolation=mode, antialias=aa, out=o), (sh, sw, c), dt, (h, 2 * w, c),
                                dt))
    # nearest: 3-, 6- and 12-byte pixels copied as 4, 8 and 16 bytes but near the rows' ends
    for dt in (np.uint8, np.uint16, np.float32):
        for w in (1, 2, 5, 33):
            for dw in (1, w, 2 * w + 1, max(1, w // 2)):
                cases.append(_case(rng, lambda x, o, dw=dw: T.resize(x, (4, dw), interpolation="nearest", out=o),
                                   (3, w, 3), dt, (4, dw, 3), dt))
    return cases


def _color_cases(rng):
    cases = []
    for w in (1, 5, 9, 31, 33, 63, 65, 97, 130, 271):
        cases.append(_case(rng, lambda x, o: K.rgb_to_hsv(x, out=o), (3, w, 3), np.uint8, (3, w, 3), np.uint8))
        for c in (3, 4):
            cases.append(_case(rng, lambda x, o: K.rgb_to_gray(x, out=o), (3, w, c), np.uint8, (3, w), np.uint8))
        for dt in (np.float32, np.float64):
            cases.append(_case(rng, lambda x, o: K.rgb_to_gray(x, out=o), (3, w, 3), dt, (3, w), dt))
            cases.append(_case(rng, lambda x, o: K.rgb_to_ycbcr(x, out=o), (3, w, 3), dt, (3, w, 3), dt))
    return cases


def _sobel_cases(rng):
    cases = []
    for dtype in (np.uint8, np.float32):
        for w, c in ((3, 1), (40, 1), (261, 1), (37, 3), (33, 4), (50, 2)):
            shape = (7, w, c) if c > 1 else (7, w)
            for k in (5, 7):
                cases.append(_case(rng, lambda x, o, k=k: F.sobel(x, 1, 0, ksize=k, out=o), shape, dtype, shape,
                                   np.float32))
                cases.append(_case(rng, lambda x, o, k=k: F.laplacian(x, ksize=k, out=o), shape, dtype, shape,
                                   np.float32))
    return cases


def _bilateral_cases(rng):
    return [_case(rng, lambda x, o: F.bilateral(x, 9, 30.0, 5.0, out=o), (9, w, 3), np.uint8, (9, w, 3), np.uint8)
            for w in (1, 3, 17, 61)]


@pytest.mark.parametrize("cases", [_resize_cases, _color_cases, _sobel_cases, _bilateral_cases],
                         ids=["resize_strided_means", "color", "sobel_wide", "bilateral_rgb"])
def test_guard_pages(rng, cases):
    _check(rng, cases)
