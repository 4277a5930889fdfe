"""The float-scheme bilinear vector rows of warp_affine / warp_perspective (uint8 and float32,
1, 3 or 4 channels): pass 1's paths, row by row.

Each case runs at every ISA level this machine has and must give the baseline level's bits
(float_row, the scalar loop), and stay within the tolerance of the float64 reference. The
matrices and widths make rows take each of pass 1's paths: blocks whose chunks are all inside
(and, for perspective rows, blocks whose source points were computed during the block before,
or in pass 1 itself: the row's first block, a block after one that crossed the edge), blocks
left at their first chunk with a lane outside, chunks wholly outside by more than a pixel
(cval, constant border) and next to the edge (the border rule's taps), source points that are
huge, infinite or NaN (a perspective denominator through zero); widths around the 256-pixel
block and the 8- and 16-pixel chunks; contiguous, strided and negative-stride views.
"""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern.reference import transform as R
from imkern.transform import warp_affine, warp_perspective

BORDERS = ["constant", "replicate", "reflect", "reflect101", "wrap"]
WIDTHS = [1, 15, 16, 17, 33, 255, 256, 257, 513, 777]
# output -> source (inverse=True), for a 61 x 530 source
AFFINES = [
    np.array([[0.96, -0.17, 6.5], [0.17, 0.96, -12.25]]),  # a rotation: rows cross the edges
    np.array([[1.0, 0.0, -1.5], [0.0, 1.0, 0.25]]),  # a shift: columns -2, -1, 0, ... W - 1, W
    np.array([[0.6, 0.0, 0.5], [0.0, 0.9, 1.75]]),  # all inside up to ~880 pixels
    np.array([[-1.0, 0.0, 600.5], [0.02, 1.0, -30.0]]),  # mirrored, starts beyond the right edge
    # column W - 1 at lane 0 of a chunk (x = 528), the rest beyond; rows H - 1 and H
    np.array([[1.0, 0.0, 1.5], [0.0, 1.0, 55.25]]),
    np.array([[0.125, 0.0, -1.0625], [0.0, 1.0, -1.5]]),  # columns -2, -1 (x < 8); rows -2, -1
]
PERSPECTIVES = [
    np.array([[1.0, -0.2, -20.5], [0.15, 1.0, -10.25], [2e-4, -1e-4, 1.0]]),  # crosses the edges
    np.array([[0.5, 0.01, 2.25], [0.003, 0.5, 1.5], [1e-5, 1e-5, 1.0]]),  # all inside: whole blocks
    np.array([[0.6, 0.0, 0.5], [0.0, 0.8, 1.5], [1e-4, 0.0, 1.0]]),  # inside, then out on the right
    np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 2.0], [-0.004, 0.0, 1.0]]),  # denominator through 0 at x ~ 250
    np.array([[0.9, 0.0, 5.0], [0.0, 0.9, -100.0], [0.0, 0.0025, 1.0]]),  # rows above the image, then in
    np.array([[1.0, 0.0, 1.5], [0.0, 1.0, 55.25], [0.0, 0.0, 1.0]]),  # as the affine ones: edge lanes
    np.array([[0.125, 0.0, -1.0625], [0.0, 1.0, -1.5], [0.0, 0.0, 1.0]]),
]
ISAS = imkern.info()["cpu_isa_available"]


def _views(x):
    return {
        "c": x,
        "neg": x[::-1, ::-1],
        "str": np.concatenate([x, x], axis=1)[:, ::2],
    }


def _far_points(m, size):
    """Output pixels whose float32 source point is not finite or beyond 2e9: OpenCV (and
    imkern, as it) saturates those, the reference maps them by the border rule."""
    f32 = np.float32
    ys, xs = np.meshgrid(np.arange(size[0], dtype=np.float64), np.arange(size[1], dtype=np.float64), indexing="ij")
    M = np.eye(3)
    M[: m.shape[0]] = m
    with np.errstate(all="ignore"):
        pts = []
        for r in range(2):
            t = (ys * M[r, 1] + M[r, 2]).astype(f32).astype(np.float64)
            pts.append((float(f32(M[r, 0])) * xs + t).astype(f32))
        t = (ys * M[2, 1] + M[2, 2]).astype(f32).astype(np.float64)
        wv = (float(f32(M[2, 0])) * xs + t).astype(f32)
        far = np.zeros(size, bool)
        for p in pts:
            q = p / wv if m.shape[0] == 3 else p
            far |= ~(np.abs(q) < 2e9)
    return far


def _tol_close(got, ref, dtype, x, cval, skip=None):
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    if skip is not None and skip.any():
        keep = ~skip
        got, ref = got[keep], ref[keep]
    if np.dtype(dtype) == np.uint8:
        assert np.abs(got - ref).max(initial=0) <= 1
    else:
        scale = max(1.0, float(np.abs(x.astype(np.float64)).max()), abs(cval))
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * scale)


def _every_isa(fn):
    before = imkern.get_cpu_isa()
    try:
        res = {}
        for isa in ISAS:
            imkern.set_cpu_isa(isa)
            res[isa] = fn()
        return res
    finally:
        imkern.set_cpu_isa(before)


def _check(x, mats, warp, ref_warp, dtype, widths=WIDTHS, rows=7):
    integer = np.dtype(dtype).kind == "u"
    cval = 7.0 if integer else -0.625
    for mi, m in enumerate(mats):
        for border in BORDERS:
            for vn, v in _views(x).items():
                for j, w in enumerate(widths):
                    size = (rows, w)

                    def run(v=v, m=m, size=size, border=border):
                        # the output poisoned: every pixel must be written
                        out = np.full(size + v.shape[2:], np.iinfo(dtype).max if integer else np.nan, dtype)
                        return warp(v, m, size, border=border, cval=cval, inverse=True, out=out)

                    res = _every_isa(run)
                    for isa, r in res.items():
                        np.testing.assert_array_equal(
                            r, res[ISAS[0]], err_msg=f"{isa} vs {ISAS[0]}: matrix {mi} {border} {vn} width {w}"
                        )
                    # the reference for a rotating subset (it is slow)
                    if ref_warp is not None and (mi + j + BORDERS.index(border)) % 4 == 0 and vn != "str":
                        ref = ref_warp(v, m, size, border=border, cval=cval, inverse=True)
                        _tol_close(res[ISAS[-1]], ref, dtype, v, cval, _far_points(m, size))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_affine_rows_same_bits_on_every_isa_level(rng, dtype, channels):
    x = random_array(rng, (61, 530, channels) if channels > 1 else (61, 530), dtype)
    _check(x, AFFINES, warp_affine, R.warp_affine, dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_perspective_rows_same_bits_on_every_isa_level(rng, dtype, channels):
    x = random_array(rng, (61, 530, channels) if channels > 1 else (61, 530), dtype)
    _check(x, PERSPECTIVES, warp_perspective, R.warp_perspective, dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_wide_rows_blocks_inside_then_out(rng, dtype, channels):
    """Rows of several blocks on a wide image: whole blocks inside (perspective: their points
    computed during the block before), a block that leaves the image at one chunk (the rest of
    it with the masks) and the blocks after it (their points computed in pass 1), on rows that
    enter the image lower down; every border."""
    x = random_array(rng, (40, 1500, channels) if channels > 1 else (40, 1500), dtype)
    mats_p = [
        np.array([[1.0, 0.01, 0.5], [0.002, 1.0, 0.25], [2e-5, 0.0, 1.0]]),  # inside to x ~ 1450
        np.array([[1.0, 0.0, -700.25], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]),  # outside, then in at x ~ 700
        np.array([[1.0, 0.0, 0.75], [0.05, 1.0, -20.0], [1e-5, 0.0, 1.0]]),  # rows entering from above
    ]
    mats_a = [m[:2] for m in mats_p]
    for warp, ref, mats in ((warp_perspective, R.warp_perspective, mats_p), (warp_affine, R.warp_affine, mats_a)):
        _check(x, mats, warp, ref, dtype, widths=[1537, 2000], rows=5)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_tiny_images_and_outputs(rng, dtype):
    """Sources of 1 and 2 pixels a side (1 pixel: not the vector rows) and 1-pixel outputs."""
    for shape in [(1, 1), (1, 9), (9, 1), (2, 2), (2, 9, 3), (3, 2, 4), (2, 40, 1)]:
        x = random_array(rng, shape, dtype)
        if len(shape) == 3 and shape[2] == 1:
            x = x[..., 0]
        _check(
            x,
            AFFINES[:2] + [np.array([[0.3, 0.0, 0.1], [0.0, 0.3, 0.2]])],
            warp_affine,
            R.warp_affine,
            dtype,
            widths=[1, 8, 17, 300],
            rows=3,
        )
        _check(
            x,
            PERSPECTIVES[:1] + PERSPECTIVES[3:4],
            warp_perspective,
            R.warp_perspective,
            dtype,
            widths=[1, 8, 17, 300],
            rows=3,
        )


def _nearest(warp):
    def run(*args, **kw):
        return warp(*args, interpolation="nearest", **kw)

    return run


@pytest.mark.parametrize(
    "dtype, channels",
    [(np.uint8, 1), (np.uint8, 2), (np.uint8, 3), (np.uint8, 4), (np.uint16, 1), (np.uint16, 2), (np.float32, 1)],
)
def test_nearest_rows_same_bits_on_every_isa_level(rng, dtype, channels):
    """The nearest rows' runs of chunks all inside (warp_nearest_inside: one unmasked dword
    gather a chunk) and the chunks they leave to the row's loop: runs that start at the row's
    first chunk, after chunks outside (the rows entering the image) and after a chunk whose
    dword reads would pass the image's last byte (row H - 1 of a contiguous image, row 0 of a
    negative-stride view: the columns next to W - 1), runs left at a chunk outside; pixels of
    1-4 bytes, every border, widths around the chunks, contiguous, strided and negative-stride
    views: the baseline level's bits (float_row) on every ISA level (tests/test_warp.py compares
    nearest with cv2 and the reference)."""
    x = random_array(rng, (61, 530, channels) if channels > 1 else (61, 530), dtype)
    _check(x, AFFINES, _nearest(warp_affine), None, dtype)
    _check(x, PERSPECTIVES, _nearest(warp_perspective), None, dtype)
    # rows whose source row is the last one (in memory: the first one of the reversed view) from
    # column W - 30 to W - 1: chunks inside whose last lanes' dwords end past the image
    mats = [np.array([[1.0, 0.0, 500.0], [0.0, 0.0, 60.0]]), np.array([[1.0, 0.0, 500.0], [0.0, 0.0, 0.0]])]
    _check(x, mats, _nearest(warp_affine), None, dtype, widths=[16, 30, 31, 33], rows=2)
    _check(x, [np.vstack([m, [0.0, 0.0, 1.0]]) for m in mats], _nearest(warp_perspective), None, dtype,
           widths=[16, 30, 31, 33], rows=2)
