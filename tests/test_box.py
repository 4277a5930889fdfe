"""imkern.filters.box, uint8 windows whose sums fit 16 bits (issue 13): the running-sum path
in uint16 lanes (csrc/cpu/filters/box.cpp, box_u8_run) against an exact integer reference and
OpenCV, on every ISA, with the shapes that take the path and those that do not."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern import filters as F
from imkern.reference import filters as R

BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
_NP_MODE = {"reflect101": "reflect", "reflect": "symmetric", "replicate": "edge", "wrap": "wrap"}
_CV = {"reflect101": cv2.BORDER_REFLECT_101, "reflect": cv2.BORDER_REFLECT, "replicate": cv2.BORDER_REPLICATE,
       "constant": cv2.BORDER_CONSTANT}

# (kh, kw): odd areas of 129..255 take the uint16 running-sum path (those with a 16-bit
# divider), kw past 35 its run-time tap loop; the rest go to the small-window or int32 paths.
RUN_SIZES = [(15, 15), (11, 13), (13, 17), (17, 15), (9, 19), (3, 61), (5, 51), (1, 151), (151, 1), (255, 1),
             (1, 255), (43, 3)]
OTHER_SIZES = [(7, 29), (16, 15), (17, 17), (14, 14), (5, 5), (3, 3), (7, 9)]
SHAPES = [(1, 1), (1, 7), (6, 1), (3, 257), (17, 13), (9, 11, 3), (5, 8, 4), (2, 7, 9, 3), (40, 37, 3), (33, 70),
          (24, 129, 4), (2, 19, 23, 1), (3, 45, 1)]


def _divider(d, umax):
    """Python twin of box16::divider: (m, sh) with floor(u / d) == (u * m >> 16) >> sh for every
    u <= umax, or None."""
    for sh in range(16):
        k = 1 << (16 + sh)
        m = -(-k // d)
        if m > 65535:
            break
        if umax * (m * d - k) < k:
            return m, sh
    return None


def _ref(x, kh, kw, border, cval, sums=False):
    """Correctly rounded window means of integer data from int64 sums (or the sums), the borders padded as the NumPy reference pads them."""
    xi = x.astype(np.int64).reshape((1,) * (4 - x.ndim) + x.shape if x.ndim == 4 else
                                    (1,) + x.shape[:2] + (x.shape[2] if x.ndim == 3 else 1,))
    ay, ax = kh // 2, kw // 2
    width = ((0, 0), (ay, kh - 1 - ay), (ax, kw - 1 - ax), (0, 0))
    if border == "constant":
        p = np.pad(xi, width, mode="constant", constant_values=int(cval))
    else:
        p = np.pad(xi, width, mode=_NP_MODE[border])
    n, h, w, c = xi.shape
    cs = np.zeros((n, h + kh, w + kw, c), np.int64)
    cs[:, 1:, 1:] = p.cumsum(1).cumsum(2)
    s = cs[:, kh:, kw:] - cs[:, :h, kw:] - cs[:, kh:, :w] + cs[:, :h, :w]
    if sums:
        return s.reshape(x.shape)
    area = kh * kw
    q, r = np.divmod(s, area)
    q += (2 * r > area) | ((2 * r == area) & (q % 2 == 1))  # round half to even (ties: even area)
    return q.astype(x.dtype).reshape(x.shape)


def test_divider_exhaustive():
    """The fixed-point division of the uint16 path is exact for every possible window sum: for
    each odd area it takes, every sum 0..255 area gives round(sum / area)."""
    taken = 0
    for area in range(3, 258, 2):
        half = (area - 1) // 2
        umax = 255 * area + half
        if umax > 65535:
            continue
        r = _divider(area, umax)
        if r is None:
            continue
        taken += 1
        m, sh = r
        v = np.arange(255 * area + 1, dtype=np.int64)
        got = (((v + half) * m) >> 16) >> sh
        # correctly rounded: odd area, so never a tie
        exp = np.floor(v / area + 0.5).astype(np.int64)
        np.testing.assert_array_equal(got, exp, err_msg=f"area {area}")
        assert got.max() <= 255
    assert taken > 100
    assert _divider(225, 255 * 225 + 112) is not None  # 15x15


def test_all_sums_15x15(isa):
    """Window sums across the whole range 0..57375 (smooth random levels), exact."""
    rng = np.random.default_rng(13)
    h, w = 600, 700
    lv = rng.integers(0, 256, (h // 20 + 2, w // 20 + 2))
    base = np.kron(lv, np.ones((20, 20)))[:h, :w]
    x = np.clip(base + rng.integers(-3, 4, (h, w)), 0, 255).astype(np.uint8)
    x[:40, :40] = 255  # the largest sum
    x[-40:, -40:] = 0
    for border in ("reflect101", "constant"):
        got = F.box(x, 15, border=border, cval=0.0)
        np.testing.assert_array_equal(got, _ref(x, 15, 15, border, 0.0), err_msg=f"{isa} {border}")
        np.testing.assert_array_equal(got, cv2.blur(x, (15, 15), borderType=_CV[border]), err_msg=f"{isa} {border}")
    assert F.box(x, 15)[5, 5] == 255 and F.box(x, 15)[-5, -5] == 0


@pytest.mark.parametrize("size", RUN_SIZES + OTHER_SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_box_u8_exact(isa, rng, size, shape):
    kh, kw = size
    x = random_array(rng, shape, np.uint8)
    for border in BORDERS:
        cval = float(rng.integers(0, 256))
        got = F.box(x, size, border=border, cval=cval)
        assert got.dtype == np.uint8 and got.shape == x.shape
        np.testing.assert_array_equal(got, _ref(x, kh, kw, border, cval), err_msg=f"{isa} {size} {shape} {border}")


@pytest.mark.parametrize("size", [(15, 15), (3, 61), (17, 15)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_box_u8_matches_cv2(isa, rng, size, channels):
    x = random_array(rng, (67, 131, channels), np.uint8)
    for border, b in _CV.items():
        got = F.box(x, size, border=border, cval=0.0)
        exp = cv2.blur(x, size[::-1], borderType=b)
        np.testing.assert_array_equal(got, exp.reshape(x.shape), err_msg=f"{isa} {size} {border}")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_box_u8_chunks_and_batches(isa, rng, threads):
    """Chunks of rows re-prime their column sums (several chunks per image, images inside one
    chunk): the same bits for every thread count."""
    before = imkern.get_num_threads()
    imkern.set_num_threads(threads)
    try:
        x = random_array(rng, (3, 301, 97, 3), np.uint8)
        for size in ((15, 15), (13, 17), (255, 1)):
            for border in ("reflect101", "wrap", "constant"):
                got = F.box(x, size, border=border, cval=9.0)
                np.testing.assert_array_equal(got, _ref(x, *size, border, 9.0), err_msg=f"{size} {border}")
    finally:
        imkern.set_num_threads(before)


def _views(x):
    yield "rows reversed", x[::-1]
    yield "columns reversed", x[:, ::-1]
    yield "every other column", x[:, ::2]
    yield "every other row, reversed columns", x[::2, ::-3]
    yield "window", x[3:-2, 5:-4]
    if x.ndim == 3:
        yield "channel slice", x[..., 1:]
        yield "reversed channels", x[..., ::-1]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_box_u8_views_and_out(isa, rng, channels):
    base = random_array(rng, (61, 157, channels), np.uint8)
    for name, v in _views(base):
        before = v.copy()
        for size in ((15, 15), (11, 13)):
            exp = _ref(np.ascontiguousarray(v), *size, "reflect101", 0.0)
            np.testing.assert_array_equal(F.box(v, size), exp, err_msg=f"{isa} {name} {size}")
            out = np.full(v.shape, 77, np.uint8)
            r = F.box(v, size, out=out)
            np.testing.assert_array_equal(out, exp, err_msg=f"{isa} {name} {size} out=")
            assert r is out or np.shares_memory(r, out)
            # into a strided, reversed output view
            big = np.full((v.shape[0], 2 * v.shape[1]) + v.shape[2:], 5, np.uint8)
            ov = big[::-1, ::2]
            F.box(v, size, out=ov)
            np.testing.assert_array_equal(ov, exp, err_msg=f"{isa} {name} {size} out view")
            np.testing.assert_array_equal(big[:, 1::2], 5)
        np.testing.assert_array_equal(v, before)


def test_box_u8_fallbacks(isa, rng):
    """Cases the uint16 path must leave to the others: a cval out of the byte range or not an
    integer (constant border), unnormalized sums, float output."""
    x = random_array(rng, (41, 75, 3), np.uint8)
    for cval in (300.0, 2.5, -1.0):
        got = F.box(x, 15, border="constant", cval=cval)
        xf = x.astype(np.float64)
        p = np.pad(xf, [(7, 7), (7, 7), (0, 0)], constant_values=cval)
        c = np.zeros((p.shape[0] + 1, p.shape[1] + 1, 3))
        c[1:, 1:] = p.cumsum(0).cumsum(1)
        s = c[15:, 15:] - c[:-15, 15:] - c[15:, :-15] + c[:-15, :-15]
        exp = np.clip(np.rint(s / 225), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(got, exp, err_msg=f"{isa} cval {cval}")
    un = F.box(x, 15, normalize=False, dtype=np.float32)
    np.testing.assert_array_equal(un, _ref_sum(x, 15, 15))
    fl = F.box(x, 15, dtype=np.float32)
    np.testing.assert_allclose(fl, _ref_sum(x, 15, 15) / 225.0, rtol=1e-6)


def _ref_sum(x, kh, kw):
    xi = x.astype(np.int64)
    p = np.pad(xi, [(kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)], mode="reflect")
    c = np.zeros((p.shape[0] + 1, p.shape[1] + 1, p.shape[2]), np.int64)
    c[1:, 1:] = p.cumsum(0).cumsum(1)
    return (c[kh:, kw:] - c[:-kh, kw:] - c[kh:, :-kw] + c[:-kh, :-kw]).astype(np.float64)


# ---- the int32 path's grouped row sums (box_row_grouped: windows 7 and more wide) -----------------
GROUPED_SIZES = [(31, 31), (7, 7), (9, 8), (4, 19), (33, 47), (1, 64), (3, 71), (17, 17), (2, 150)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", GROUPED_SIZES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 257), (17, 13), (9, 11, 3), (5, 8, 4), (2, 7, 9, 3), (40, 37, 3),
                                   (33, 70), (24, 129, 4), (70, 1100, 1), (3, 45, 1)])
def test_box_int_grouped_exact(isa, rng, dtype, size, shape):
    x = random_array(rng, shape, dtype)
    for border in BORDERS:
        cval = float(rng.integers(0, 256))
        got = F.box(x, size, border=border, cval=cval)
        assert got.dtype == x.dtype and got.shape == x.shape
        area = size[0] * size[1]
        if np.iinfo(dtype).max * area < 2**24:
            exp = _ref(x, *size, border, cval)
        else:
            # sums past 2^24 reach the mean as float32 (the int32 path's rounding, unchanged)
            s32 = _ref(x, *size, border, cval, sums=True).astype(np.float32)
            exp = np.rint(s32 / np.float32(area)).astype(dtype)
        np.testing.assert_array_equal(got, exp, err_msg=f"{isa} {size} {shape} {border}")
    # unnormalized sums and a float32 mean out of the same integer sums
    s = _ref(x, *size, "reflect101", 0.0, sums=True)
    np.testing.assert_array_equal(F.box(x, size, normalize=False, dtype=np.float32), s.astype(np.float32))
    np.testing.assert_allclose(F.box(x, size, dtype=np.float32), s / (size[0] * size[1]), rtol=2e-7, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_box_int_grouped_views_threads(isa, rng, dtype):
    base = random_array(rng, (130, 1030, 3), dtype)
    before = imkern.get_num_threads()
    try:
        for threads in (1, 3):
            imkern.set_num_threads(threads)
            for name, v in _views(base):
                s32 = _ref(np.ascontiguousarray(v), 31, 31, "reflect", 0.0, sums=True).astype(np.float32)
                exp = np.rint(s32 / np.float32(961)).astype(dtype)  # exact sums < 2^24 for uint8
                np.testing.assert_array_equal(F.box(v, 31, border="reflect"), exp, err_msg=f"{isa} {name}")
    finally:
        imkern.set_num_threads(before)


# ---- prefix sums along x (box_row_prefix: int32 column sums, windows 9 and more wide, 1-4 channels) ----
# and the division-free rounded mean (box_mean<3>: odd areas with den * ulp(max mean) < 1, e.g. uint16 15x15)


def _rint_exact(den, maxv):
    """Python twin of box_rint_exact."""
    if den < 3 or den % 2 != 1 or maxv < 1 or den * (maxv + 2) >= 2**24:
        return False
    return den * 2.0 ** (int(np.floor(np.log2(maxv))) - 23) < 1


def test_rint_mean_exhaustive():
    """box_mean<3> (k = rint(a / den by the reciprocal), then k + rint((a - k den) * (1 / den)),
    all float32) equals rint(float32(a) / float32(den)) for every possible integer sum a of the
    uint16 and uint8 windows the condition admits; a den it refuses has sums where it differs."""
    dens = [3, 9, 49, 121, 169, 213, 225, 255]
    for den in dens:
        for maxv in (65535, 255):
            if not _rint_exact(den, maxv):
                continue
            a = np.arange(den * maxv + 1, dtype=np.float32)
            d = np.float32(den)
            rv = np.float32(1) / d
            k = np.rint(a * rv)
            got = k + np.rint((a - k * d) * rv)
            np.testing.assert_array_equal(got, np.rint(a / d), err_msg=f"den {den} maxv {maxv}")
    assert _rint_exact(225, 65535) and not _rint_exact(257, 65535) and not _rint_exact(224, 255)
    assert not _rint_exact(961, 65535)  # 31x31 uint16: the float division stays


def _exp_int(x, size, border, cval):
    area = size[0] * size[1]
    maxv = max(np.iinfo(x.dtype).max, abs(cval))
    if maxv * area < 2**24:
        return _ref(x, *size, border, cval)
    s32 = _ref(x, *size, border, cval, sums=True).astype(np.float32)
    return np.clip(np.rint(s32 / np.float32(area)), 0, np.iinfo(x.dtype).max).astype(x.dtype)


PREFIX_SIZES = [(15, 15), (13, 13), (7, 7), (31, 31), (63, 63), (3, 9), (9, 8), (5, 33), (1, 101), (41, 11)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", PREFIX_SIZES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5, 2), (4, 3, 3), (7, 16), (7, 17), (19, 33, 1), (11, 29, 2),
                                   (23, 41, 3), (13, 37, 4), (9, 21, 5), (2, 12, 47, 3), (70, 333, 3)])
def test_box_prefix_exact(isa, rng, dtype, size, shape):
    """Shapes that take the prefix path (rows of a vector or more, 1-4 channels) and those that
    do not (narrower rows, 5 channels; windows 7-8 wide), windows larger than the image, every
    border: exact sums, the int32 path's rounding."""
    x = random_array(rng, shape, dtype)
    if dtype == np.uint16 and rng.random() < 0.5:
        x |= np.uint16(0xFF00)  # large sums: the rounding near the top of the range
    for border in BORDERS:
        cval = float(rng.integers(0, 256))
        got = F.box(x, size, border=border, cval=cval)
        assert got.dtype == x.dtype and got.shape == x.shape
        np.testing.assert_array_equal(got, _exp_int(x, size, border, cval), err_msg=f"{isa} {size} {shape} {border}")
    s = _ref(x, *size, "replicate", 0.0, sums=True)
    np.testing.assert_array_equal(F.box(x, size, normalize=False, border="replicate", dtype=np.float32),
                                  s.astype(np.float32))
    if dtype == np.uint8:
        np.testing.assert_array_equal(F.box(x, size, normalize=False), np.minimum(s, 255).astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_box_prefix_views_threads_cv2(isa, rng, dtype, channels):
    """Strided and negative-stride views, out= views, thread counts, and OpenCV for uint8 (its
    uint16 means differ by one from the correctly rounded ones now and then, e.g. 15x15)."""
    base = random_array(rng, (83, 301, channels), dtype)
    before = imkern.get_num_threads()
    try:
        for threads in (1, 2, 3):
            imkern.set_num_threads(threads)
            for name, v in _views(base):
                for size in ((15, 15), (9, 13), (31, 31)):
                    exp = _exp_int(np.ascontiguousarray(v), size, "reflect101", 0.0)
                    np.testing.assert_array_equal(F.box(v, size), exp, err_msg=f"{isa} {name} {size} {threads}")
                    big = np.full((v.shape[0], 2 * v.shape[1]) + v.shape[2:], 5, dtype)
                    ov = big[::-1, ::2]
                    F.box(v, size, out=ov)
                    np.testing.assert_array_equal(ov, exp, err_msg=f"{isa} {name} {size} out view")
                    np.testing.assert_array_equal(big[:, 1::2], 5)
    finally:
        imkern.set_num_threads(before)
    if dtype != np.uint8:
        return
    x = base if channels != 2 else base[..., :1]
    for size in ((15, 15), (9, 13), (31, 31), (63, 63)):
        for border, b in _CV.items():
            exp = cv2.blur(x, size[::-1], borderType=b).reshape(x.shape)
            np.testing.assert_array_equal(F.box(x, size, border=border), exp, err_msg=f"{isa} {size} {border}")


# ---- float box rows by level passes (box_row_levels): kw >= 7, floating sums ----------------

LEVEL_KW = [7, 8, 9, 15, 16, 31, 33, 63, 100]  # 3, 1, 2, 4, 1, 5, 2, 6, 3 set bits


def _levels_model(x, kw, border, cval, normalize):
    """The row pass's float arithmetic, bit for bit, for a 1-row window (column sums = the
    row): level b = level b-1 + level b-1 shifted by 2^(b-1) taps, then the levels of kw's
    set bits added lowest first, then the division by kw (all in x's dtype)."""
    ax = kw // 2
    width = ((0, 0), (ax, kw - 1 - ax), (0, 0))
    p = (np.pad(x, width, mode="constant", constant_values=x.dtype.type(cval)) if border == "constant"
         else np.pad(x, width, mode=_NP_MODE[border]))
    levels = [p]
    while 2 ** len(levels) <= kw:
        prev, half = levels[-1], 2 ** (len(levels) - 1)
        levels.append(prev[:, :-half] + prev[:, half:])
    h, off, w = None, 0, x.shape[1]
    for b, lev in enumerate(levels):
        if kw >> b & 1:
            v = lev[:, off:off + w]
            h = v if h is None else h + v
            off += 2 ** b
    return h / x.dtype.type(kw) if normalize else h


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_box_float_levels_bits(isa, rng, dtype, channels):
    """1-row windows: the outputs are the NumPy model's bits, over widths that end chunks of
    the row pass short (rows of 1024 float32 / 512 float64 outputs per chunk), every border,
    with and without the mean."""
    for w in (100, 341, 342, 700, 1023):
        x = (rng.standard_normal((3, w, channels)) * 50).astype(dtype)
        for kw in LEVEL_KW:
            if kw > w:
                continue
            for border in BORDERS:
                for normalize in (True, False):
                    got = F.box(x, (1, kw), border=border, cval=-1.5, normalize=normalize)
                    exp = _levels_model(x, kw, border, -1.5, normalize)
                    np.testing.assert_array_equal(got, exp, err_msg=f"{isa} {w} {kw} {border} {normalize}")
                    if dtype == np.float32 and border == "reflect":  # float64 sums of float32 data
                        got = F.box(x, (1, kw), border=border, normalize=normalize, dtype=np.float64)
                        exp = _levels_model(x.astype(np.float64), kw, border, 0.0, normalize)
                        np.testing.assert_array_equal(got, exp, err_msg=f"{isa} {w} {kw} float64 out")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_float_levels_threads_streams_views(isa, rng, dtype):
    """Level passes with tall windows against the reference; the same bits for 1-3 threads,
    with streamed outputs (stream_bytes=0) and through strided views and out= views."""
    base = (rng.standard_normal((47, 419, 3)) * 10).astype(dtype)
    before = imkern.get_num_threads()
    try:
        for size in ((15, 15), (7, 9), (5, 31), (21, 63)):
            imkern.set_num_threads(1)
            first = F.box(base, size, border="reflect")
            assert_close(first, R.box(base, size, border="reflect"), dtype, scale=10 * np.abs(base).max(),
                         err_msg=f"{isa} {size}")
            for threads in (2, 3):
                imkern.set_num_threads(threads)
                np.testing.assert_array_equal(F.box(base, size, border="reflect"), first, err_msg=f"{threads}")
                imkern.set_cpu_params(stream_bytes=0)
                streamed = np.full_like(first, np.nan)  # every element must be written
                try:
                    F.box(base, size, border="reflect", out=streamed)
                finally:
                    imkern.set_cpu_params(stream_bytes=None)
                np.testing.assert_array_equal(streamed, first, err_msg=f"{isa} {size} streamed")
            for name, v in _views(base):
                exp = F.box(np.ascontiguousarray(v), size, border="wrap")
                np.testing.assert_array_equal(F.box(v, size, border="wrap"), exp, err_msg=f"{name} {size}")
                big = np.full((v.shape[0], 2 * v.shape[1]) + v.shape[2:], 5, dtype)
                F.box(v, size, border="wrap", out=big[::-1, ::2])
                np.testing.assert_array_equal(big[::-1, ::2], exp, err_msg=f"{name} {size} out view")
                np.testing.assert_array_equal(big[:, 1::2], 5)
    finally:
        imkern.set_num_threads(before)
