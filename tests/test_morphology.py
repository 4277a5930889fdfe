"""imkern.filters morphology (erode, dilate, opening, closing, morph_gradient, tophat, blackhat,
footprint, minimum_filter, maximum_filter) against the reference, OpenCV and SciPy."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import image_views, random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

BORDERS = [None, "reflect101", "reflect", "replicate", "constant", "wrap"]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(1, 1), (1, 9), (7, 1), (2, 3), (17, 13), (33, 70), (9, 11, 3), (6, 8, 4), (2, 7, 9, 3)]
SCIPY_MODE = {"replicate": "nearest", "reflect101": "mirror", "reflect": "reflect", "constant": "constant",
              "wrap": "grid-wrap"}


def _footprints(rng):
    """Rectangles (small, even, 1-wide, tall enough for the van Herk path), cross, ellipse, and
    random footprints with holes."""
    fps = [np.ones((3, 3)), np.ones((1, 5)), np.ones((4, 1)), np.ones((2, 6)), np.ones((19, 3)), np.ones((21, 22)),
           F.footprint("cross", (5, 7)), F.footprint("ellipse", 9), F.footprint("ellipse", (6, 11))]
    for shape in [(3, 4), (5, 5), (7, 2)]:
        f = rng.random(shape) < 0.5
        f.flat[rng.integers(f.size)] = True
        fps.append(f.astype(np.uint8))
    ring = np.ones((5, 5), np.uint8)
    ring[1:4, 1:4] = 0
    fps.append(ring)
    return fps


# ---- against the reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_matches_reference(xp, rng, dtype, shape, border):
    x = random_array(rng, shape, dtype)
    for fp in _footprints(rng):
        for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
            got = op(xp.asarray(x), fp, border=border, cval=5.0)
            assert type(got) is type(xp.asarray(x)) and got.dtype == x.dtype and got.shape == x.shape
            np.testing.assert_array_equal(to_numpy(got), ref(x, fp, border=border, cval=5.0),
                                          err_msg=f"{op.__name__} fp={np.asarray(fp).shape}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates(xp, rng, dtype):
    x = random_array(rng, (25, 31, 2), dtype)
    x[rng.random(x.shape) < 0.02] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    for fp in (3, (1, 40), (25, 2), F.footprint("ellipse", 5)):
        for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
            f = F._morphology._as_footprint(fp)
            np.testing.assert_array_equal(to_numpy(op(xp.asarray(x), fp)), ref(x, f), err_msg=f"{op.__name__} {fp}")


def test_long_lines_van_herk(xp, rng):
    x = random_array(rng, (50, 60, 2), np.float32)
    for fp in ((1, 33), (1, 64), (40, 1), (35, 47)):
        f = F._morphology._as_footprint(fp)
        for border in (None, "reflect"):
            np.testing.assert_array_equal(to_numpy(F.dilate(xp.asarray(x), fp, border=border)),
                                          R.dilate(x, f, border=border), err_msg=str(fp))


# ---- against the peers --------------------------------------------------------------------------
def _cv_shapes():
    return [(23, 31), (40, 37, 3), (64, 300), (11, 13, 4)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_matches_opencv(xp, rng, dtype, iterations):
    cv2 = pytest.importorskip("cv2")
    for shape in _cv_shapes():
        x = random_array(rng, shape, dtype)
        for fp in _footprints(rng):
            f = np.asarray(fp, np.uint8)
            xd = xp.asarray(x)
            np.testing.assert_array_equal(to_numpy(F.erode(xd, f, iterations=iterations)),
                                          cv2.erode(x, f, iterations=iterations), err_msg=f"erode {f.shape}")
            np.testing.assert_array_equal(to_numpy(F.dilate(xd, f, iterations=iterations)),
                                          cv2.dilate(x, f, iterations=iterations), err_msg=f"dilate {f.shape}")
            for name, code in (("opening", cv2.MORPH_OPEN), ("closing", cv2.MORPH_CLOSE),
                               ("morph_gradient", cv2.MORPH_GRADIENT), ("tophat", cv2.MORPH_TOPHAT),
                               ("blackhat", cv2.MORPH_BLACKHAT)):
                np.testing.assert_array_equal(to_numpy(getattr(F, name)(xd, f, iterations=iterations)),
                                              cv2.morphologyEx(x, code, f, iterations=iterations),
                                              err_msg=f"{name} {f.shape}")


@pytest.mark.parametrize("border", ["reflect101", "replicate", "constant", "reflect", "wrap"])
def test_matches_opencv_borders(xp, rng, border):
    cv2 = pytest.importorskip("cv2")
    codes = {"reflect101": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE,
             "constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT, "wrap": cv2.BORDER_WRAP}
    x = random_array(rng, (37, 45), np.uint8)
    for fp in (np.ones((5, 5), np.uint8), F.footprint("ellipse", 7), F.footprint("cross", 3)):
        if border == "wrap":  # cv2's morphology does not take BORDER_WRAP
            continue
        kw = dict(borderType=codes[border], borderValue=9)
        np.testing.assert_array_equal(to_numpy(F.erode(xp.asarray(x), fp, border=border, cval=9)),
                                      cv2.erode(x, fp, **kw))
        np.testing.assert_array_equal(to_numpy(F.dilate(xp.asarray(x), fp, border=border, cval=9)),
                                      cv2.dilate(x, fp, **kw))


@pytest.mark.parametrize("border", ["reflect101", "replicate", "constant", "reflect", "wrap"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_scipy(xp, rng, border, dtype):
    ndi = pytest.importorskip("scipy.ndimage")
    x = random_array(rng, (29, 34), dtype)
    mode = SCIPY_MODE[border]
    for fp in _footprints(rng):
        f = np.asarray(fp, np.uint8)
        np.testing.assert_array_equal(to_numpy(F.erode(xp.asarray(x), f, border=border, cval=3)),
                                      ndi.grey_erosion(x, footprint=f, mode=mode, cval=3))
        if f.shape[0] % 2 and f.shape[1] % 2:  # SciPy mirrors the footprint of a dilation
            np.testing.assert_array_equal(to_numpy(F.dilate(xp.asarray(x), f, border=border, cval=3)),
                                          ndi.grey_dilation(x, footprint=f[::-1, ::-1], mode=mode, cval=3))
    for size in (3, (2, 5), (4, 4), 7, (1, 9)):
        np.testing.assert_array_equal(to_numpy(F.minimum_filter(xp.asarray(x), size, border=mode, cval=3)),
                                      ndi.minimum_filter(x, size=size, mode=mode, cval=3))
        np.testing.assert_array_equal(to_numpy(F.maximum_filter(xp.asarray(x), size, border=mode, cval=3)),
                                      ndi.maximum_filter(x, size=size, mode=mode, cval=3))


def test_scipy_default_border(xp, rng):
    ndi = pytest.importorskip("scipy.ndimage")
    x = random_array(rng, (20, 27), np.float32)
    np.testing.assert_array_equal(to_numpy(F.minimum_filter(xp.asarray(x), 5)), ndi.minimum_filter(x, size=5))
    np.testing.assert_array_equal(to_numpy(F.maximum_filter(xp.asarray(x), (3, 6))),
                                  ndi.maximum_filter(x, size=(3, 6)))


def test_footprint_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    shapes = {"rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS, "ellipse": cv2.MORPH_ELLIPSE}
    for name, code in shapes.items():
        for h in range(1, 18):
            for w in range(1, 18):
                np.testing.assert_array_equal(F.footprint(name, (h, w)), cv2.getStructuringElement(code, (w, h)),
                                              err_msg=f"{name} {(h, w)}")
    assert F.footprint("ellipse", 5).dtype == np.uint8


@pytest.mark.parametrize("name", ["camera", "coins", "astronaut"])
def test_photographs_match_opencv(xp, name):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = np.ascontiguousarray(getattr(data, name)())
    for fp in (np.ones((5, 5), np.uint8), np.ones((15, 15), np.uint8), np.ones((31, 25), np.uint8),
               F.footprint("ellipse", 11), F.footprint("cross", 7)):
        np.testing.assert_array_equal(to_numpy(F.erode(xp.asarray(img), fp)), cv2.erode(img, fp))
        np.testing.assert_array_equal(to_numpy(F.dilate(xp.asarray(img), fp)), cv2.dilate(img, fp))


# ---- layouts, views, out= -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_negative_views(rng, dtype):
    base = random_array(rng, (31, 36, 3), dtype)
    for name, v in image_views(base):
        before = v.copy()
        for fp in (3, (19, 4), F.footprint("ellipse", 5)):
            f = F._morphology._as_footprint(fp)
            np.testing.assert_array_equal(F.erode(v, fp), R.erode(np.ascontiguousarray(v), f), err_msg=name)
            np.testing.assert_array_equal(F.tophat(v, fp), F.tophat(np.ascontiguousarray(v), fp), err_msg=name)
        np.testing.assert_array_equal(v, before)


@pytest.mark.parametrize("op", ["erode", "dilate", "opening", "closing", "morph_gradient", "tophat", "blackhat",
                                "minimum_filter", "maximum_filter"])
def test_out(xp, rng, op):
    fn = getattr(F, op)
    x = xp.asarray(random_array(rng, (19, 22, 3), np.uint8))
    expect = to_numpy(fn(x, 3))
    out = xp.asarray(random_array(rng, x.shape, np.uint8))
    assert fn(x, 3, out=out) is out
    np.testing.assert_array_equal(to_numpy(out), expect)
    big = xp.zeros((19, 44, 3), np.uint8)
    view = big[:, ::2]
    assert fn(x, 3, out=view) is view
    np.testing.assert_array_equal(to_numpy(view), expect)
    y = x.copy()
    fn(y, 3, out=y)
    np.testing.assert_array_equal(to_numpy(y), expect)


def test_iterations_zero_copies(rng):
    x = random_array(rng, (5, 6), np.uint8)
    y = F.erode(x, 3, iterations=0)
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_zero_size():
    for shape in [(0, 5), (4, 0), (0, 3, 3, 1)]:
        x = np.zeros(shape, np.uint8)
        assert F.erode(x, 3).shape == shape
        assert F.tophat(x, 3).shape == shape


def test_bad_arguments():
    x = np.zeros((8, 8), np.uint8)
    for fp in (np.ones(3), np.ones((2, 2, 2)), np.zeros((0, 3)), np.zeros((3, 3)), 0, -1, (0, 3), (3, -1)):
        with pytest.raises(ValueError, match="footprint|size"):
            F.erode(x, fp)
    with pytest.raises(TypeError, match="footprint"):
        F.dilate(x, "abc")
    with pytest.raises(TypeError, match="footprint"):
        F.dilate(x, True)
    with pytest.raises(ValueError, match="iterations"):
        F.erode(x, 3, iterations=-1)
    with pytest.raises(TypeError, match="iterations"):
        F.erode(x, 3, iterations=1.5)
    with pytest.raises(ValueError, match="border"):
        F.opening(x, 3, border="nope")
    with pytest.raises(TypeError, match="image"):
        F.erode(x.astype(np.int32), 3)
    with pytest.raises(TypeError, match="image"):
        F.tophat(x.astype(np.float16), 3)
    with pytest.raises(ValueError, match="image"):
        F.erode(np.zeros(4, np.uint8), 3)
    with pytest.raises(TypeError, match="out"):
        F.morph_gradient(x, 3, out=np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="out"):
        F.blackhat(x, 3, out=np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        F.footprint("disk", 3)
    with pytest.raises(ValueError, match="size"):
        F.footprint("rect", 0)
    with pytest.raises(ValueError, match="size"):
        F.minimum_filter(x, 0)


# ---- ISA levels and threads ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_level(rng, isa, dtype):
    x = random_array(rng, (29, 75, 3), dtype)
    for fp in _footprints(rng):
        for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
            np.testing.assert_array_equal(op(x, fp, border="reflect"), ref(x, fp, border="reflect"),
                                          err_msg=f"{isa} {np.asarray(fp).shape}")


def test_threads_do_not_change_results(rng, threads):
    x = random_array(rng, (300, 257, 2), np.uint16)
    for fp in (5, (31, 17), F.footprint("ellipse", 9), F.footprint("ellipse", 5), F.footprint("cross", 5)):
        f = F._morphology._as_footprint(fp)
        np.testing.assert_array_equal(F.dilate(x, fp), R.dilate(x, f))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(23, 700), (13, 301, 3)])
def test_rectangles_in_column_strips(rng, dtype, shape):
    """The rectangle path under the smallest strip budgets: many column strips, whose pads come
    from the neighbouring columns or (wrap) from the far end of the row."""
    x = random_array(rng, shape, dtype)
    try:
        imkern.set_cpu_params(strip_l1=1024, strip_l2=1024)
        for fp in ((3, 3), (5, 5), (8, 3), (9, 9), (19, 7), (2, 40), (1, 33), (40, 1)):
            f = np.ones(fp, np.uint8)
            for border in (None, "reflect", "wrap", "replicate"):
                for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
                    np.testing.assert_array_equal(
                        op(x, f, border=border, cval=3.0),
                        ref(x, f, border=border, cval=3.0),
                        err_msg=f"{op.__name__} {fp} {border}",
                    )
    finally:
        imkern.reset_cpu_params()


# ---- small rectangles: the vertical pair pass and the direct horizontal pass ---------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_small_rectangles_widths(rng, isa, dtype, channels):
    """Rows of every length around the vector sizes (8 to 64 lanes), so the last vector of each
    pass overlaps the one before or the row is shorter than one vector; NaN propagates."""
    fps = [(3, 3), (5, 5), (2, 3), (3, 2), (8, 5), (1, 3), (3, 1), (4, 7)]
    for i, w in enumerate([1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 22, 23, 31, 33, 63, 65, 67, 129]):
        x = random_array(rng, (2 + i % 9, w, channels), dtype)
        if x.dtype.kind == "f":
            x[rng.random(x.shape) < 0.02] = np.nan
        fp = np.ones(fps[i % len(fps)], np.uint8)
        for border in BORDERS:
            for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
                np.testing.assert_array_equal(op(x, fp, border=border, cval=0.5), ref(x, fp, border=border, cval=0.5),
                                              err_msg=f"{isa} {op.__name__} {x.shape} {fp.shape} {border}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_rectangles_views_and_wide_rows(rng, threads, dtype):
    base = random_array(rng, (47, 1100, 3), dtype)  # wide enough for several whole-row strips at small L2
    for name, v in [("whole", base), ("reversed rows", base[::-1]), ("reversed cols", base[:, ::-1]),
                    ("strided", base[::2, ::3]), ("channel slice", base[..., 1:])]:
        for fp in (3, 5, (2, 7)):
            f = F._morphology._as_footprint(fp)
            for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
                np.testing.assert_array_equal(op(v, fp, border="reflect101"),
                                              ref(np.ascontiguousarray(v), f, border="reflect101"), err_msg=name)


# ---- every small rectangle: the lanes' horizontal taps, the four-row vertical pass, streaming ----
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_small_rectangle(rng, isa, dtype):
    """Every rectangle up to 8 x 8 on every channel count 1-4 (the horizontal pass takes its taps
    off 16-byte lanes for C <= 4 and widths 2-8, the vertical pass four rows at a time up to 8
    rows), heights that leave 0-3 rows after the fours and rows around the vector sizes."""
    heights = [1, 2, 3, 4, 5, 6, 7, 9, 11, 13]
    widths = [1, 3, 8, 9, 16, 17, 33, 65, 70]
    k = 0
    for channels in (1, 2, 3, 4):
        for fh in range(1, 9):
            for fw in range(1, 9):
                k += 1
                x = random_array(rng, (heights[k % len(heights)], widths[k % len(widths)], channels), dtype)
                if x.dtype.kind == "f":
                    x[rng.random(x.shape) < 0.02] = np.nan
                fp = np.ones((fh, fw), np.uint8)
                border = BORDERS[k % len(BORDERS)]
                for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
                    np.testing.assert_array_equal(op(x, fp, border=border, cval=0.5),
                                                  ref(x, fp, border=border, cval=0.5),
                                                  err_msg=f"{isa} {op.__name__} {x.shape} {fp.shape} {border}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_streamed_outputs(rng, isa, dtype):
    """Outputs written by non-temporal stores (every output, stream_bytes=0): rows that start on
    a vector boundary and rows that do not (views at any offset, reversed), whole or in strips."""
    base = random_array(rng, (21, 150, 3), dtype)
    try:
        imkern.set_cpu_params(stream_bytes=0)
        for fp in ((3, 3), (5, 5), (2, 7), (1, 4), (12, 3)):
            f = np.ones(fp, np.uint8)
            for name, v in [("whole", base), ("channel slice", base[..., 1:]), ("offset", base[:, 3:]),
                            ("reversed cols", base[:, ::-1]), ("gray", base[..., 0])]:
                expect = R.dilate(np.ascontiguousarray(v), f, border="reflect")
                np.testing.assert_array_equal(F.dilate(v, f, border="reflect"), expect, err_msg=f"{name} {fp}")
                big = np.zeros((v.shape[0], v.shape[1] + 5) + v.shape[2:], dtype)
                for off in (1, 2, 5):
                    out = big[:, off:off + v.shape[1]]
                    F.dilate(v, f, border="reflect", out=out)
                    np.testing.assert_array_equal(out, expect, err_msg=f"{name} {fp} out offset {off}")
        imkern.set_cpu_params(strip_l1=1024, strip_l2=1024)
        np.testing.assert_array_equal(F.erode(base, 3), R.erode(base, np.ones((3, 3), np.uint8)))
    finally:
        imkern.reset_cpu_params()


def _assert_erode_dilate_equal_reference(x, fp, border, cval, msg):
    """erode and dilate of x by fp equal the reference's, bit for bit."""
    for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
        np.testing.assert_array_equal(op(x, fp, border=border, cval=cval), ref(x, fp, border=border, cval=cval),
                                      err_msg=f"{op.__name__} {msg}")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(23, 700), (13, 301, 3), (9, 40, 4)])
def test_rectangle_covers(rng, isa, dtype, shape):
    """Footprints taken as a few rectangles of ones (cross, ellipse, a ring, an L), also under
    the smallest strip budgets (pads of columns outside the strip come from the source rows)."""
    x = random_array(rng, shape, dtype)
    ring = np.ones((5, 5), np.uint8)
    ring[1:4, 1:4] = 0
    ell = np.zeros((4, 6), np.uint8)
    ell[:, 0] = 1
    ell[3, :] = 1
    fps = [F.footprint("cross", 5), F.footprint("ellipse", 5), F.footprint("cross", (3, 7)),
           F.footprint("ellipse", (7, 5)), F.footprint("ellipse", (8, 8)), ring, ell]
    try:
        for budget in (None, 1024):
            if budget:
                imkern.set_cpu_params(strip_l1=budget, strip_l2=budget)
            for fp in fps:
                for border in BORDERS:
                    _assert_erode_dilate_equal_reference(x, fp, border, 3.0, f"{isa} {fp.shape} {border} {budget}")
    finally:
        imkern.reset_cpu_params()


# ---- float rectangles: isolated NaN, infinities and signed zeros ----------------------------------
def _sparse_nan(rng, shape, dtype, k=3):
    """Values with ties of signed zeros and infinities, and a few isolated NaN (most row windows
    hold none, some do, at the edges too)."""
    x = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0, 0.5, np.inf, -np.inf], dtype), size=shape)
    x += (rng.random(shape) * 1e-3).astype(dtype) * (rng.random(shape) < 0.5)
    h, w = shape[0], shape[1]
    for y, xx in [(0, 0), (h - 1, w - 1), (h // 2, w // 2)] + [(int(rng.integers(h)), int(rng.integers(w)))
                                                              for _ in range(k)]:
        x[y, xx] = np.nan
    return x


def _same_bits(a, b, msg=""):
    """Equal including the signs of zeros and the NaN payloads."""
    assert a.dtype == b.dtype and a.shape == b.shape, msg
    u = np.uint32 if a.dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(u), np.ascontiguousarray(b).view(u), err_msg=msg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_float_rectangles_sparse_nan(rng, isa, dtype, channels):
    """Isolated NaN (first and last pixel, middle, random): every border, direct and van Herk
    heights, odd widths and 1-pixel images."""
    fps = [(3, 3), (5, 5), (1, 5), (5, 1), (2, 6), (8, 8), (15, 15), (9, 4)]
    for shape in [(40, 67), (1, 1), (13, 1), (1, 29), (71, 33), (25, 130)]:
        x = _sparse_nan(rng, shape + (channels,), dtype)
        for fp in fps:
            f = np.ones(fp, np.uint8)
            for border in BORDERS:
                for op, ref in ((F.erode, R.erode), (F.dilate, R.dilate)):
                    np.testing.assert_array_equal(op(x, f, border=border, cval=0.5),
                                                  ref(x, f, border=border, cval=0.5),
                                                  err_msg=f"{isa} {op.__name__} {x.shape} {fp} {border}")
            # NaN only in the column pads of other strips (wrap) and NaN constants
            for border, cval in (("wrap", 0.0), ("constant", np.nan)):
                np.testing.assert_array_equal(F.dilate(x, f, border=border, cval=cval),
                                              R.dilate(x, f, border=border, cval=cval), err_msg=f"{fp} {border}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_rectangles_plain_equals_nan_form_bits(rng, isa, dtype):
    """Away from the edges the border's constant never matters, NaN or not, bit for bit (ties of
    +0 and -0 included): a guard for any min/max that treats NaN-free windows differently; also
    in small column strips and views."""
    base = _sparse_nan(rng, (37, 90, 3), dtype, k=0)
    base[np.isnan(base)] = -0.0
    try:
        for budget in (None, 1024):
            if budget:
                imkern.set_cpu_params(strip_l1=budget, strip_l2=budget)
            for name, x in [("whole", base), ("reversed rows", base[::-1]), ("reversed cols", base[:, ::-1]),
                            ("strided", base[::2, ::3]), ("gray", base[..., 0])]:
                for fp in ((3, 3), (5, 5), (4, 7), (15, 15), (11, 2)):
                    ry, rx = fp[0] // 2 + 1, fp[1] // 2 + 1
                    for op in (F.erode, F.dilate):
                        a = op(x, fp, border="constant", cval=np.nan)
                        b = op(x, fp, border="constant", cval=0.25)
                        c = op(x, fp)
                        for r in (a, b, c):
                            assert not np.isnan(r[ry:-ry, rx:-rx]).any()
                        _same_bits(a[ry:-ry, rx:-rx], b[ry:-ry, rx:-rx], f"{name} {fp} {op.__name__} {budget}")
                        _same_bits(a[ry:-ry, rx:-rx], c[ry:-ry, rx:-rx], f"{name} {fp} {op.__name__} {budget}")
    finally:
        imkern.reset_cpu_params()


# ---- morph_gradient in one pass ------------------------------------------------------------------
def _gradient_two_pass(x, fp, **kw):
    """dilate - erode as two calls and a subtraction (the unfused path's result)."""
    a, b = F.dilate(x, fp, **kw), F.erode(x, fp, **kw)
    if x.dtype.kind == "u":
        return np.subtract(np.maximum(a, b), b)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.subtract(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_gradient_one_pass(rng, isa, dtype, channels):
    """The fused gradient (rectangles up to 8 rows; other footprints by two passes in C++) equals
    dilate - erode bit for bit: every border, widths around the vector sizes, 1-pixel images,
    NaN, iterations."""
    fps = [(3, 3), (5, 5), (1, 1), (1, 4), (6, 1), (2, 7), (8, 8), (9, 9), (12, 3), F.footprint("cross", 5),
           F.footprint("ellipse", (5, 7))]
    widths = [1, 2, 7, 9, 16, 17, 33, 65, 70]
    for i, fp in enumerate(fps):
        x = random_array(rng, (1 + 5 * i % 23, widths[i % len(widths)], channels), dtype)
        if x.dtype.kind == "f":
            x = _sparse_nan(rng, x.shape, dtype, k=1)
        for border in BORDERS:
            got = F.morph_gradient(x, fp, border=border, cval=0.5)
            expect = _gradient_two_pass(x, fp, border=border, cval=0.5)
            if x.dtype.kind == "f":
                _same_bits(got, expect, f"{isa} {x.shape} {np.shape(fp)} {border}")
            else:
                np.testing.assert_array_equal(got, expect, err_msg=f"{isa} {x.shape} {np.shape(fp)} {border}")
        for it in (2, 3):
            np.testing.assert_array_equal(F.morph_gradient(x, fp, iterations=it),
                                          _gradient_two_pass(x, fp, iterations=it), err_msg=f"{np.shape(fp)} {it}")
    x = random_array(rng, (9, 10), np.uint8)
    np.testing.assert_array_equal(F.morph_gradient(x, 3, iterations=0), np.zeros_like(x))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_gradient_one_pass_views_strips_streams(rng, threads, dtype):
    """Views (reversed, strided, channel slices), out= views, small column strips and streamed
    outputs; against OpenCV's MORPH_GRADIENT too."""
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (45, 301, 3), dtype)
    try:
        for params in ({}, {"strip_l1": 1024, "strip_l2": 1024}, {"stream_bytes": 0}):
            imkern.reset_cpu_params()
            if params:
                imkern.set_cpu_params(**params)
            for name, v in [("whole", base), ("reversed rows", base[::-1]), ("reversed cols", base[:, ::-1]),
                            ("strided", base[::2, ::3]), ("channel slice", base[..., 1:]), ("gray", base[..., 0])]:
                for fp in ((3, 3), (5, 5), (3, 8)):
                    f = np.ones(fp, np.uint8)
                    expect = _gradient_two_pass(np.ascontiguousarray(v), f, border="reflect")
                    np.testing.assert_array_equal(F.morph_gradient(v, f, border="reflect"), expect,
                                                  err_msg=f"{name} {fp} {params}")
                    big = np.zeros((v.shape[0], v.shape[1] + 3) + v.shape[2:], dtype)
                    out = big[:, 1:1 + v.shape[1]]
                    assert F.morph_gradient(v, f, border="reflect", out=out) is out
                    np.testing.assert_array_equal(out, expect, err_msg=f"{name} {fp} out")
                    c = np.ascontiguousarray(v)
                    if c.ndim == 2 or c.shape[-1] in (1, 3, 4):
                        np.testing.assert_array_equal(F.morph_gradient(c, f),
                                                      cv2.morphologyEx(c, cv2.MORPH_GRADIENT, f), err_msg=name)
    finally:
        imkern.reset_cpu_params()


# ---- crosses in one pass ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_cross_one_pass(rng, isa, dtype, channels):
    """Crosses 3, 5, 7 with C <= 4 take the fused four-row pass (column and row windows in one
    pass); (5, 7), (3, 5) crosses, a plus inside a larger box, a T and C = 5 do not. Heights
    that leave 0-3 rows after the fours, rows shorter than a vector (1 pixel too), rows around
    the vector sizes, every border, NaN; also in small column strips."""
    plus = np.zeros((7, 7), np.uint8)
    plus[1:6, 3] = 1
    plus[3, 1:6] = 1
    tee = np.zeros((3, 3), np.uint8)
    tee[:, 1] = 1
    tee[2, :] = 1
    fps = [F.footprint("cross", 3), F.footprint("cross", 5), F.footprint("cross", 7), F.footprint("cross", (5, 7)),
           F.footprint("cross", (3, 5)), plus, tee]
    shapes = [(1, 1), (4, 1), (8, 3), (5, 7), (9, 16), (10, 17), (11, 33), (12, 65), (13, 70), (7, 129)]
    try:
        for budget in (None, 1024):
            if budget:
                imkern.set_cpu_params(strip_l1=budget, strip_l2=budget)
            for i, shape in enumerate(shapes):
                x = random_array(rng, shape + (channels,), dtype)
                if x.dtype.kind == "f":
                    x[rng.random(x.shape) < 0.02] = np.nan
                for k, fp in enumerate(fps):
                    border = BORDERS[(i + k) % len(BORDERS)]
                    _assert_erode_dilate_equal_reference(x, fp, border, 0.5, f"{isa} {x.shape} {fp.shape} {border}")
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_cross_one_pass_views_and_peers(rng, threads, dtype):
    """The fused cross on views (reversed rows and columns, strided, channel slices, gray) and
    out= views, against the reference, OpenCV (also iterations) and the cover path's bits
    (signed zeros: the same op order)."""
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (45, 301, 3), dtype)
    if base.dtype.kind == "f":
        base = _sparse_nan(rng, base.shape, dtype, k=0)
        base[np.isnan(base)] = -0.0
    for name, v in [("whole", base), ("reversed rows", base[::-1]), ("reversed cols", base[:, ::-1]),
                    ("strided", base[::2, ::3]), ("channel slice", base[..., 1:]), ("gray", base[..., 0])]:
        c = np.ascontiguousarray(v)
        for k in (3, 5, 7):
            fp = F.footprint("cross", k)
            for op, ref, cvop in ((F.erode, R.erode, cv2.erode), (F.dilate, R.dilate, cv2.dilate)):
                expect = ref(c, fp, border="reflect101")
                np.testing.assert_array_equal(op(v, fp, border="reflect101"), expect, err_msg=f"{name} {k}")
                big = np.zeros((v.shape[0], v.shape[1] + 3) + v.shape[2:], dtype)
                out = big[:, 1:1 + v.shape[1]]
                assert op(v, fp, border="reflect101", out=out) is out
                np.testing.assert_array_equal(out, expect, err_msg=f"{name} {k} out")
                if c.ndim == 2 or c.shape[-1] in (1, 3, 4):
                    for it in (1, 2):
                        np.testing.assert_array_equal(op(c, fp, iterations=it), cvop(c, fp, iterations=it),
                                                      err_msg=f"{name} {k} {it}")
            if dtype == np.float32:
                # the fused pass's op order is the cover path's: a footprint the fused pass does
                # not take (the cross in a box one column wider, the anchor one column right of
                # the cross's centre) gives the same bits, one column on
                wide = np.zeros((k, k + 1), np.uint8)
                wide[:, :-1] = fp
                pad = [(0, 0), (1, 1)] + [(0, 0)] * (c.ndim - 2)
                for op in (F.erode, F.dilate):
                    a = op(c, fp, border="constant", cval=0.25)
                    b = op(np.pad(c, pad, constant_values=0.25), wide, border="constant", cval=0.25)[:, 2:]
                    _same_bits(a, b, f"{name} {k} {op.__name__}")
