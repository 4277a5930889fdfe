"""imkern.transform.resize against the NumPy reference, OpenCV, PyTorch and Pillow, on the CPU
and (with a GPU) CUDA."""
from __future__ import annotations

import math

import numpy as np
import pytest

import imkern
from conftest import HAS_GPU, assert_close, random_array, to_numpy
from imkern.reference import transform as R
from imkern.transform import _resize as _RZ
from imkern.transform import resize

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
MODES = ["nearest", "nearest-exact", "bilinear", "bicubic", "area", "lanczos"]
# (src h, src w) -> (dst h, dst w): down, up, non-integer, mixed, 1-pixel in and out
SIZES = [
    ((17, 23), (5, 7)),
    ((5, 7), (17, 23)),
    ((64, 48), (32, 24)),
    ((30, 40), (11, 60)),
    ((1, 1), (3, 4)),
    ((9, 9), (1, 1)),
    ((100, 77), (33, 12)),
    ((6, 5), (13, 2)),
    ((2, 300), (3, 7)),
]
LAYOUTS = [(), (3,), (1,), (4,), "batch"]


def _shape(hw, layout):
    if layout == "batch":
        return (2,) + hw + (3,)
    return hw + layout


def _scale(x):
    return 2.0 * max(1.0, float(np.abs(x.astype(np.float64)).max()))


def _cmp(got, ref, dtype, x, mode, int_atol=1):
    # weights are float32 for float32/uint16 (as OpenCV's); float64 images use float32-valued
    # cv2 weights too, so compare floats at float32 precision
    tol_dtype = np.float32 if np.dtype(dtype).kind == "f" else dtype
    k = {"lanczos": 3.0, "bicubic": 1.6}.get(mode, 1.0)
    assert_close(got, ref, tol_dtype, scale=k * _scale(x), int_atol=int_atol)


# ---- against the reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_matches_reference(xp, rng, dtype, mode, sizes):
    src, dst = sizes
    for layout in LAYOUTS:
        x = random_array(rng, _shape(src, layout), dtype)
        got = resize(xp.asarray(x), dst, interpolation=mode)
        assert type(got) is type(xp.asarray(x))
        ref = R.resize(x, dst, interpolation=mode)
        assert got.shape == ref.shape and got.dtype == x.dtype
        _cmp(got, ref, dtype, x, mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("sizes", SIZES + [((300, 1000), (7, 3))], ids=str)
def test_antialias_matches_reference(xp, rng, dtype, mode, sizes):
    src, dst = sizes
    x = random_array(rng, src + (3,), dtype)
    got = resize(xp.asarray(x), dst, interpolation=mode, antialias=True)
    # uint8 bicubic: two passes each rounded to uint8 (as Pillow/torch); an intermediate
    # within a hair of .5 may round the other way, and the lobes can double that
    atol = 2 if (mode == "bicubic" and np.dtype(dtype) == np.uint8) else 1
    _cmp(got, R.resize(x, dst, interpolation=mode, antialias=True), dtype, x, mode, atol)


# ---- against OpenCV -------------------------------------------------------------------------------
_CV = {"nearest": "INTER_NEAREST", "nearest-exact": "INTER_NEAREST_EXACT", "bilinear": "INTER_LINEAR",
       "bicubic": "INTER_CUBIC", "area": "INTER_AREA", "lanczos": "INTER_LANCZOS4"}


def _cv2_resize(cv2, x, dst, mode):
    flag = getattr(cv2, _CV[mode])
    if x.ndim == 4:
        return np.stack([_cv2_resize(cv2, im, dst, mode) for im in x])
    r = cv2.resize(x, (dst[1], dst[0]), interpolation=flag)
    return r.reshape(dst + x.shape[2:])


def _cv_tol(got, expect, dtype):
    got = to_numpy(got)
    if np.dtype(dtype).kind == "u":
        d = np.abs(got.astype(np.int64) - expect.astype(np.int64))
        # uint16: OpenCV (IPP underneath for some sizes) rounds its float32 weights differently;
        # a few units of 65535 apart (the reference test holds us within 1 of the exact value)
        lim = 1 if np.dtype(dtype) == np.uint8 else 4
        assert d.max(initial=0) <= lim, f"max |diff| {d.max()} vs OpenCV"
    else:
        # OpenCV's float paths go through IPP for some sizes, which computes the source
        # positions in float64 where OpenCV's own code (and imkern) rounds them to float32
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4 * max(1, np.abs(expect).max()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [m for m in MODES if m != "nearest-exact"])
@pytest.mark.parametrize("sizes", SIZES + [((480, 640), (224, 224)), ((224, 224), (480, 640)),
                                           ((600, 800), (300, 400)), ((601, 799), (150, 200)),
                                           ((101, 203), (100, 200))], ids=str)
def test_matches_opencv(xp, rng, dtype, mode, sizes):
    cv2 = pytest.importorskip("cv2")
    src, dst = sizes
    for layout in [(), (3,), (4,)]:
        x = random_array(rng, src + layout, dtype)
        _cv_tol(resize(xp.asarray(x), dst, interpolation=mode), _cv2_resize(cv2, x, dst, mode), dtype)


def test_nearest_exact_is_exact_where_opencv_drifts(xp):
    """floor((i + 0.5) * src / dst) exactly: OpenCV's 16-bit fixed point picks the pixel to the
    left at exact ties for some sizes (opencv#27191); PyTorch's nearest-exact agrees with us."""
    x = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    got = to_numpy(resize(xp.asarray(x), (11, 60), interpolation="nearest-exact"))
    cols = (got[0] % 40).astype(np.int64)
    np.testing.assert_array_equal(cols, ((2 * np.arange(60) + 1) * 40) // 120)
    assert cols[4] == 3  # (4 + 0.5) * 40 / 60 = 3 exactly; cv2 gives 2
    torch = pytest.importorskip("torch")
    t = torch.nn.functional.interpolate(torch.from_numpy(x)[None, None], size=(11, 60), mode="nearest-exact")
    np.testing.assert_array_equal(got, t[0, 0].numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [((64, 48), (32, 24)), ((60, 90), (20, 30)), ((17, 23), (34, 46))], ids=str)
def test_nearest_exact_matches_opencv_without_ties(xp, rng, dtype, sizes):
    cv2 = pytest.importorskip("cv2")
    src, dst = sizes
    x = random_array(rng, src + (3,), dtype)
    np.testing.assert_array_equal(to_numpy(resize(xp.asarray(x), dst, interpolation="nearest-exact")),
                                  _cv2_resize(cv2, x, dst, "nearest-exact"))


def _photos():
    data = pytest.importorskip("skimage.data")
    return [data.astronaut(), data.chelsea(), data.camera(), data.coffee()]


@pytest.mark.parametrize("mode", [m for m in MODES if m != "nearest-exact"])
def test_real_photographs_match_opencv(xp, mode):
    cv2 = pytest.importorskip("cv2")
    for img in _photos():
        h, w = img.shape[:2]
        for dst in [(h // 2, w // 2), (224, 224), (h * 3 // 2 + 1, w * 5 // 4), (h // 7, w // 3)]:
            got = resize(xp.asarray(img), dst, interpolation=mode)
            _cv_tol(got, _cv2_resize(cv2, img, dst, mode), np.uint8)
            f = img.astype(np.float32) / 255
            _cv_tol(resize(xp.asarray(f), dst, interpolation=mode), _cv2_resize(cv2, f, dst, mode), np.float32)


# ---- antialias against PyTorch and Pillow -----------------------------------------------------------
AA_SIZES = [((64, 48), (32, 24)), ((100, 77), (33, 12)), ((480, 640), (224, 224)), ((1000, 50), (7, 49)),
            ((2000, 3000), (5, 9)), ((37, 41), (80, 90)), ((50, 60), (50, 20))]


def _torch_aa(torch, x, dst, mode):
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    r = torch.nn.functional.interpolate(t, size=dst, mode=mode, antialias=True, align_corners=False)
    return r[0].numpy().transpose(1, 2, 0)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("sizes", AA_SIZES, ids=str)
def test_antialias_matches_torch(xp, rng, mode, sizes):
    torch = pytest.importorskip("torch")
    src, dst = sizes
    x = random_array(rng, src + (3,), np.float32)
    got = to_numpy(resize(xp.asarray(x), dst, interpolation=mode, antialias=True))
    # torch computes the weights in float32 (imkern in float64, then rounds them to float32)
    np.testing.assert_allclose(got, _torch_aa(torch, x, dst, mode), rtol=1e-5, atol=1e-4)
    u = random_array(rng, src + (3,), np.uint8)
    got = to_numpy(resize(xp.asarray(u), dst, interpolation=mode, antialias=True)).astype(np.int64)
    d = np.abs(got - _torch_aa(torch, u, dst, mode).astype(np.int64))
    if mode == "bilinear":
        assert d.max() <= 1
    else:
        # both round the row pass to uint8 (their fixed points differ), and bicubic's
        # negative lobes can double a 1-unit difference of the intermediate
        assert d.max() <= 2 and (d > 1).mean() < 1e-3


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialias_matches_pillow(xp, mode):
    Image = pytest.importorskip("PIL.Image")
    flt = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[mode]
    for img in _photos():
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        h, w = img.shape[:2]
        for dst in [(224, 224), (h // 3, w // 5), (h // 10 + 1, w // 17 + 1)]:
            ref = np.asarray(Image.fromarray(img).resize((dst[1], dst[0]), flt, reducing_gap=None))
            got = to_numpy(resize(xp.asarray(img), dst, interpolation=mode, antialias=True))
            assert np.abs(got.astype(np.int64) - ref.astype(np.int64)).max() <= 1


def test_antialias_very_large_factor(xp, rng):
    """4000 -> 3 per axis (pytorch#103589: the support is ~2700 taps): still the mean-like
    filter of the reference, for every dtype."""
    x = random_array(rng, (4000, 6), np.float32)
    got = resize(xp.asarray(x), (3, 2), interpolation="bilinear", antialias=True)
    assert_close(got, R.resize(x, (3, 2), interpolation="bilinear", antialias=True), np.float32, scale=2)
    u = random_array(rng, (4000, 6), np.uint8)
    got = resize(xp.asarray(u), (3, 2), interpolation="bicubic", antialias=True)
    assert_close(got, R.resize(u, (3, 2), interpolation="bicubic", antialias=True), np.uint8)


def test_area_integer_factor_is_block_mean(xp, rng):
    x = random_array(rng, (12, 18, 3), np.float64)
    got = to_numpy(resize(xp.asarray(x), (4, 6), interpolation="area"))
    np.testing.assert_allclose(got, x.reshape(4, 3, 6, 3, 3).mean(axis=(1, 3)), rtol=1e-6)
    # antialias=True is accepted for "area" (already antialiased) and changes nothing
    np.testing.assert_array_equal(to_numpy(resize(xp.asarray(x), (4, 6), interpolation="area", antialias=True)), got)


def test_identity_size_is_a_copy(xp, rng):
    for mode in MODES:
        for dtype in DTYPES:
            x = random_array(rng, (7, 9, 3), dtype)
            np.testing.assert_array_equal(to_numpy(resize(xp.asarray(x), (7, 9), interpolation=mode)), x)


# ---- layouts, views, out= -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_negative_views(xp, rng, dtype):
    base = random_array(rng, (40, 50, 4), dtype)
    views = {
        "flipped rows": base[::-1],
        "flipped cols": base[:, ::-1],
        "strided": base[::2, ::3],
        "channel slice": base[..., 1:3],
        "fortran": np.asfortranarray(base),
        "transposed": base.transpose(1, 0, 2),
    }
    for name, v in views.items():
        before = v.copy()
        for mode in ["bilinear", "area", "nearest", "bicubic"]:
            got = resize(xp.asarray(v), (13, 17), interpolation=mode)
            np.testing.assert_array_equal(to_numpy(got), to_numpy(resize(xp.asarray(np.ascontiguousarray(v)),
                                                                         (13, 17), interpolation=mode)),
                                          err_msg=name)
        np.testing.assert_array_equal(v, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_equals_per_image(xp, rng, dtype):
    x = random_array(rng, (3, 21, 19, 3), dtype)
    for mode in ["bilinear", "area", "lanczos", "nearest-exact"]:
        got = to_numpy(resize(xp.asarray(x), (9, 30), interpolation=mode))
        for i in range(3):
            np.testing.assert_array_equal(got[i], to_numpy(resize(xp.asarray(x[i]), (9, 30), interpolation=mode)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out(xp, rng, dtype):
    x = random_array(rng, (2, 15, 16, 3), dtype)
    expect = to_numpy(resize(xp.asarray(x), (7, 9)))
    out = xp.asarray(random_array(rng, (2, 7, 9, 3), dtype))
    r = resize(xp.asarray(x), (7, 9), out=out)
    assert r is out
    np.testing.assert_array_equal(to_numpy(out), expect)
    big = xp.asarray(random_array(rng, (2, 7, 18, 3), dtype))
    view = big[:, :, ::2]  # not writable directly: written through a temporary
    assert resize(xp.asarray(x), (7, 9), out=view) is view
    np.testing.assert_array_equal(to_numpy(view), expect)


def test_zero_batch(xp):
    x = xp.zeros((0, 5, 6, 3), np.uint8)
    assert resize(x, (3, 4)).shape == (0, 3, 4, 3)


def test_bad_arguments(xp):
    x = xp.zeros((5, 6, 3), np.uint8)
    for size in [(0, 3), (3, -1), (3, 4, 5), (3,)]:
        with pytest.raises(ValueError, match="size"):
            resize(x, size)
    for size in [3, "ab", (3.5, 2), None]:
        with pytest.raises(TypeError, match="size"):
            resize(x, size)
    with pytest.raises(ValueError, match="interpolation"):
        resize(x, (3, 3), interpolation="bogus")
    with pytest.raises(TypeError, match="interpolation"):
        resize(x, (3, 3), interpolation=1)
    with pytest.raises(ValueError, match="antialias"):
        resize(x, (3, 3), interpolation="nearest", antialias=True)
    with pytest.raises(TypeError, match="antialias"):
        resize(x, (3, 3), antialias="yes")
    with pytest.raises(TypeError, match="image"):
        resize(xp.zeros((5, 6), np.int32), (3, 3))
    with pytest.raises(TypeError, match="image"):
        resize([[1, 2]], (3, 3))
    with pytest.raises(ValueError, match="image"):
        resize(xp.zeros((5,), np.uint8), (3, 3))
    with pytest.raises(ValueError, match="image"):
        resize(xp.zeros((0, 6), np.uint8), (3, 3))
    with pytest.raises(ValueError, match="out"):
        resize(x, (3, 3), out=xp.zeros((3, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="out"):
        resize(x, (3, 3), out=xp.zeros((3, 3, 3), np.float32))


# ---- ISA levels, threads, devices -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_level(rng, isa, dtype):
    assert imkern.get_cpu_isa() == isa
    x = random_array(rng, (45, 67, 3), dtype)
    for mode in MODES:
        for dst in [(20, 30), (90, 101)]:
            _cmp(resize(x, dst, interpolation=mode), R.resize(x, dst, interpolation=mode), dtype, x, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_gray_float_sums_every_isa_level(rng, isa, dtype):
    """One channel with float sums: the lane-permute horizontal pass (windows up to two vectors)
    and its fallbacks (wider windows, row ends), both pass orders, against the reference."""
    x = random_array(rng, (37, 211), dtype)
    for mode in ("bilinear", "bicubic", "lanczos"):
        for dst in [(30, 150), (20, 105), (13, 70), (74, 422), (40, 213), (37, 9)]:
            _cmp(resize(x, dst, interpolation=mode), R.resize(x, dst, interpolation=mode), dtype, x, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [2, 3, 4])
@pytest.mark.parametrize("stream", [False, True])
def test_float_sums_channels_every_isa_level(rng, isa, dtype, channels, stream):
    """Several channels with float sums: the lane-permute horizontal taps (windows of 2 or 4
    vectors, blocks that fall back to the scalar formula, rows' first elements before the
    first aligned block, row ends), the per-pixel fallback of sparse shrinks, both pass
    orders, plain and streaming stores, into aligned and misaligned outputs."""
    x = random_array(rng, (41, 263, channels), dtype)
    imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
    try:
        for mode in ("bilinear", "bicubic", "lanczos"):
            for dst in [(20, 131), (20, 130), (13, 70), (10, 61), (82, 526), (40, 200), (41, 9), (7, 263)]:
                ref = R.resize(x, dst, interpolation=mode)
                _cmp(resize(x, dst, interpolation=mode), ref, dtype, x, mode)
                # an output view starting 1 element past an aligned address
                buf = np.empty(dst[0] * dst[1] * channels + 1, dtype)
                out = buf[1:].reshape(dst + (channels,))
                resize(x, dst, interpolation=mode, out=out)
                _cmp(out, ref, dtype, x, mode)
    finally:
        imkern.set_cpu_params(stream_bytes=None)


def _phases_same_bits(rng, dtype, channels, cases, modes):
    """For each (source (h, w), destination) of cases and each mode (a name, or (name,
    antialias)): resize of three views of a
    random image (a slice, a strided batch, a flipped one) with resize_phases 0 and 1, on one and
    three threads, into new arrays and misaligned out= arrays, all bit-identical, and within the
    tolerance of the reference."""
    before = imkern.get_num_threads()
    try:
        for (sh, sw), dst in cases:
            base = random_array(rng, (2, sh, 2 * sw + 1, channels + 1), dtype)
            views = [base[0, :, :sw, :channels], base[:, :, 1::2, 1:], base[1, ::-1, sw - 1::-1, :channels]]
            for x in views:
                for mode in modes:
                    mode, aa = mode if isinstance(mode, tuple) else (mode, False)
                    ref = R.resize(x, dst, interpolation=mode, antialias=aa)
                    got = []
                    for phases, threads in ((0, 1), (1, 1), (1, 3)):
                        imkern.set_cpu_params(resize_phases=phases)
                        imkern.set_num_threads(threads)
                        shape = x.shape[:-3] + dst + (channels,)
                        buf = np.empty(math.prod(shape) + 1, dtype)
                        mis = buf[1:].reshape(shape)  # one element past an aligned address
                        got += [resize(x, dst, interpolation=mode, antialias=aa),
                                resize(x, dst, interpolation=mode, antialias=aa, out=mis)]
                    for g in got[1:]:
                        np.testing.assert_array_equal(g, got[0], err_msg=f"{x.shape} -> {dst} {mode} {aa}")
                    _cmp(got[0], ref, dtype, x, mode)
    finally:
        imkern.set_cpu_params(resize_phases=None)
        imkern.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_integer_upscale_phases_same_bits_every_isa_level(rng, isa, dtype, channels):
    """Widths grown by 2 or 4 with the height growing (horizontal first), bicubic and lanczos:
    the phase sums with pixel copies (resize_phases=1, AVX2) give the lane permutes' bits
    (resize_phases=0) and match the reference; odd widths, one-row and one-pixel-wide sources,
    batches, strided and negative-stride views, misaligned outputs, one and three threads."""
    cases = [((5, 67), (10, 134)), ((3, 131), (7, 524)), ((1, 40), (2, 80)), ((4, 1), (8, 2)),
             ((6, 257), (12, 514)), ((2, 333), (9, 1332)), ((7, 33), (14, 66))]
    _phases_same_bits(rng, dtype, channels, cases, ("bicubic", "lanczos"))


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_integer_shrink_same_bits_every_isa_level(rng, isa, dtype, channels):
    """Widths shrunk by exactly 2 (and by 3 and 4 with 3 or 4 channels), the height kept, shrunk
    or shrunk by another factor (vertical first), bicubic, lanczos, bilinear and area: the sums
    from plain loads with the weights in registers (resize_phases=1, AVX2: even/odd pixel splits
    for 1, 2 and 4 channels at 2x, a pixel per 4-lane vector otherwise) give the per-pixel and
    lane-permute paths' bits (resize_phases=0) and match the reference; odd and near-2x widths
    that do not take them, one-row sources, batches, strided and negative-stride views,
    misaligned outputs, one and three threads."""
    cases = [((9, 134), (9, 67)), ((12, 600), (6, 300)), ((10, 130), (7, 65)), ((1, 200), (1, 100)),
             ((6, 66), (3, 33)), ((5, 257), (5, 128)), ((4, 90), (2, 44)), ((3, 70), (4, 35)),
             ((9, 201), (9, 67)), ((12, 600), (4, 150)), ((5, 400), (3, 100)), ((4, 302), (4, 100))]
    _phases_same_bits(rng, dtype, channels, cases, ("bicubic", "lanczos", "bilinear", "area"))


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [3, 4])
def test_pixel_pairs_same_bits_every_isa_level(rng, isa, dtype, channels):
    """Widths shrunk by non-integer factors (1.5, 1.2, 2.5, 1.07) with no lane-permute plan, the
    height kept or shrunk (vertical first), bicubic, lanczos, area, bilinear and antialiased
    bicubic / bilinear (run-time tap counts): the sums of two pixels per vector (resize_phases=1,
    AVX2) give the one-pixel-per-vector bits (resize_phases=0) and match the reference; output
    widths of 1, 2 and 3 pixels and odd and even ones (the last pixel's three lanes), one-row
    sources, batches, strided and negative-stride views, misaligned outputs, one and three
    threads."""
    cases = [((9, 150), (6, 100)), ((6, 301), (6, 201)), ((5, 120), (4, 100)), ((4, 250), (3, 100)),
             ((3, 107), (3, 100)), ((1, 91), (1, 61)), ((5, 6), (3, 4)), ((4, 3), (2, 2)), ((3, 5), (3, 3)),
             ((4, 2), (2, 1)), ((7, 64), (5, 43))]
    modes = ("bicubic", "lanczos", "area", "bilinear", ("bicubic", True), ("bilinear", True))
    _phases_same_bits(rng, dtype, channels, cases, modes)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_nearest_copies_the_source_pixels_every_size(rng, isa, dtype):
    """nearest and nearest-exact copy whole pixels (1-6 channels: every pixel size the row loops
    take at compile time, 1 to 32 bytes, and the memcpy of the others): the source pixels the
    tables name, bit for bit (NaN, infinities, signed zeros kept), and the reference's values,
    for shrinks, upscales, the width kept (rows
    copied whole), repeated rows, one-pixel sources and outputs, strided, batched and
    negative-stride views, misaligned out= arrays, one and three threads; cv2.resize's
    INTER_NEAREST where it is installed (1-4 channels)."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    before = imkern.get_num_threads()
    try:
        for c in (1, 2, 3, 4, 5, 6):
            base = random_array(rng, (2, 23, 41, c + 1), dtype)
            if np.dtype(dtype).kind == "f":
                base[0, 3, 5, 0], base[1, 7, 9, c - 1], base[0, 11, 2, 0] = np.nan, -np.inf, -0.0
            views = [base[0, :, :, :c], base[:, 1::2, ::3, 1:], base[1, ::-1, ::-2, :c], base[0, :1, :1, :c]]
            for x in views:
                sh, sw = x.shape[-3:-1]
                for dst in ((sh, sw), (max(1, sh // 2), max(1, sw // 3)), (2 * sh + 1, 3 * sw), (sh, 2 * sw + 1),
                            (3 * sh, sw), (1, 1), (7, 1), (1, 9)):
                    for mode in ("nearest", "nearest-exact"):
                        iy = _RZ._nearest_table(sh, dst[0], mode == "nearest-exact")
                        ix = _RZ._nearest_table(sw, dst[1], mode == "nearest-exact")
                        ref = np.ascontiguousarray(x[..., iy[:, None], ix[None, :], :])  # the pixels themselves
                        if np.isfinite(x).all():  # (the dense float64 reference spreads NaN through 0 x NaN)
                            np.testing.assert_array_equal(ref, R.resize(x, dst, interpolation=mode))
                        for threads in (1, 3):
                            imkern.set_num_threads(threads)
                            got = resize(x, dst, interpolation=mode)
                            msg = f"{x.shape} -> {dst} {mode} threads={threads}"
                            np.testing.assert_array_equal(got.view(np.uint8), ref.view(np.uint8), err_msg=msg)
                            buf = np.empty(got.size + 1, dtype)
                            mis = buf[1:].reshape(got.shape)
                            assert resize(x, dst, interpolation=mode, out=mis) is mis
                            np.testing.assert_array_equal(mis.view(np.uint8), ref.view(np.uint8), err_msg="out= " + msg)
                        if cv2 is not None and mode == "nearest" and x.ndim == 3 and c <= 4 and dtype != np.float64:
                            want = cv2.resize(np.ascontiguousarray(x), dst[::-1], interpolation=cv2.INTER_NEAREST)
                            np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg="cv2 " + msg)
    finally:
        imkern.set_num_threads(before)


@pytest.mark.parametrize("kind", ["u8", "f32", "f64"])
def test_narrowed_tables_are_the_same_map(kind):
    """The coefficient tables drop the taps that are zero in every output's band (odd integer
    shrinks keep one tap): as a dense matrix each table equals the unnarrowed one (the taps
    folded onto the image as before), its starts keep every tap inside the image, it is no
    wider, and those shrinks keep one tap."""
    for mode in ("bilinear", "bicubic", "lanczos", "area"):
        for aa in (False, True) if mode in ("bilinear", "bicubic") else (False,):
            for src, dst in ((9, 3), (15, 3), (21, 7), (10, 2), (100, 20), (60, 40), (61, 40), (7, 7), (5, 11),
                             (3, 1), (1, 1), (2, 1), (13, 5)):
                shrink = mode == "area" and src >= dst
                start, w, _, _ = _RZ._axis_table(src, dst, mode, aa, shrink, kind)
                first, taps = _RZ.axis_taps(src, dst, mode, aa, shrink)
                wdt = np.float32 if kind == "f32" else np.float64
                if kind == "u8":
                    bits = _RZ._CV_BITS if _RZ._cv_fixed(mode, aa, shrink) else _RZ._FINE_BITS
                    if _RZ._cv_fixed(mode, aa, shrink):
                        s0, w0 = _RZ._fold(first, _RZ._fixed(taps, bits, exact_sum=False), src, np.int64)
                    else:
                        s0, w0 = _RZ._fold(first, taps, src, np.float64)
                        w0 = _RZ._fixed(w0, bits, exact_sum=True)
                else:
                    s0, w0 = _RZ._fold(first, taps.astype(np.float32) if kind == "f32" and not aa and not shrink
                                       else taps, src, np.float64)
                    w0 = w0.astype(wdt)
                dense = np.zeros((dst, src))
                dense0 = np.zeros((dst, src))
                for i in range(dst):
                    dense[i, start[i]:start[i] + w.shape[1]] += w[i]
                    dense0[i, s0[i]:s0[i] + w0.shape[1]] += w0[i]
                msg = f"{mode} aa={aa} {src} -> {dst} {kind}"
                np.testing.assert_array_equal(dense, dense0, err_msg=msg)
                assert start.min() >= 0 and (start + w.shape[1]).max() <= src, msg
                odd = src % dst == 0 and (src // dst) % 2 == 1
                assert w.shape[1] <= w0.shape[1], msg
                if odd and not aa and mode != "area":
                    assert w.shape[1] == 1, msg


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_odd_integer_shrinks_pick_the_centre_pixels(xp, rng, dtype):
    """Bilinear, bicubic and lanczos at 3x and 5x sample the centre pixel of each block
    (weights (1, 0), (0, 1, 0, 0), ...): the result is that pixel exactly (the tables keep one
    tap, read in place); an infinity or NaN in a pixel no output reads does not spread; the
    same as cv2.resize where it is installed (uint8 and float32 bit for bit)."""
    cv2 = None
    try:
        import cv2
    except ImportError:
        pass
    for f in (3, 5):
        for c in (1, 2, 3, 4):
            x = random_array(rng, (2, 4 * f, 7 * f, c), dtype)
            if np.dtype(dtype).kind == "f":
                x[:, 0, 0, 0] = np.nan
                x[:, f + 1, f + 2, c - 1] = np.inf
                x[:, -1, -1, 0] = -np.inf
            h = f // 2
            for v in (x, x[1, ::-1, ::-1], x[0, :, :, :1]):
                want = v[..., h::f, h::f, :]
                for mode in ("bilinear", "bicubic", "lanczos"):
                    got = to_numpy(resize(xp.asarray(v), want.shape[-3:-1], interpolation=mode))
                    np.testing.assert_array_equal(got, want, err_msg=f"{f}x {mode} {v.shape}")
                    if cv2 is not None and v.ndim == 3 and dtype in (np.uint8, np.float32) and c != 2:
                        flag = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                                "lanczos": cv2.INTER_LANCZOS4}[mode]
                        # (finite: cv2 sums the zero taps, so it spreads an infinity or NaN)
                        vf = np.ascontiguousarray(np.where(np.isfinite(v), v, 0) if v.dtype.kind == "f" else v)
                        ref = cv2.resize(vf, want.shape[-2:-4:-1], interpolation=flag)
                        got = resize(vf, want.shape[-3:-1], interpolation=mode)
                        np.testing.assert_array_equal(got.reshape(ref.shape), ref, err_msg=f"cv2 {f}x {mode}")


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.float64, np.uint8])
def test_two_channels_every_mode_every_isa_level(rng, isa, dtype):
    """Gray + alpha images (2 channels: the per-pixel passes with 2 channels known at compile
    time) shrunk and grown by non-integer factors on one or both axes, every mode: within the
    tolerance of the reference, and the same on one and three threads."""
    before = imkern.get_num_threads()
    try:
        for (sh, sw), dst in [((40, 300), (27, 200)), ((40, 300), (40, 131)), ((33, 97), (50, 150)),
                              ((30, 200), (30, 77)), ((9, 64), (4, 21))]:
            x = random_array(rng, (sh, sw, 2), dtype)
            for mode in ("bilinear", "bicubic", "lanczos", "area"):
                imkern.set_num_threads(1)
                got = resize(x, dst, interpolation=mode)
                _cmp(got, R.resize(x, dst, interpolation=mode), dtype, x, mode)
                imkern.set_num_threads(3)
                np.testing.assert_array_equal(resize(x, dst, interpolation=mode), got)
    finally:
        imkern.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_same_size_is_a_copy(xp, rng, dtype):
    """At an unchanged size every mode (antialiased or not) returns a copy of the image, as
    cv2.resize does: infinities, NaNs and signed zeros stay where they are; a new array, or out=
    filled; the input unchanged."""
    x = random_array(rng, (2, 7, 9, 3), dtype)
    if np.dtype(dtype).kind == "f":
        x[0, 3, 4, 1], x[1, 0, 0, 0], x[0, 6, 8, 2], x[1, 2, 5, 0] = np.inf, np.nan, -0.0, -np.inf
    views = [x[0], x[1, ::-1, ::-1], x[:, :, ::2], x[0, :, :, 1]]
    for v in views:
        src = xp.asarray(v)
        before = to_numpy(src).copy()
        for mode in MODES:
            for aa in ((False, True) if mode in ("bilinear", "bicubic", "area") else (False,)):
                got = resize(src, v.shape[-3:-1] if v.ndim == 4 else v.shape[:2], interpolation=mode, antialias=aa)
                assert type(got) is type(src) and got is not src
                np.testing.assert_array_equal(to_numpy(got), v, err_msg=f"{mode} {aa} {v.shape}")
                assert np.array_equal(np.signbit(to_numpy(got)), np.signbit(v))
                out = xp.zeros(v.shape, dtype)
                assert resize(src, v.shape[-3:-1] if v.ndim == 4 else v.shape[:2], interpolation=mode, out=out) is out
                np.testing.assert_array_equal(to_numpy(out), v)
        np.testing.assert_array_equal(to_numpy(src), before)
    cv2 = pytest.importorskip("cv2")
    for v in views[:3]:
        c = np.ascontiguousarray(v if v.ndim == 3 else v[0])
        for mode in ("bilinear", "bicubic", "area", "lanczos"):
            ref = _cv2_resize(cv2, c, c.shape[:2], mode)
            np.testing.assert_array_equal(resize(c, c.shape[:2], interpolation=mode), ref)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("mode,antialias", [("bilinear", False), ("bicubic", False), ("lanczos", False),
                                            ("area", False), ("bilinear", True), ("bicubic", True)])
def test_unchanged_axis_takes_the_identity(rng, dtype, mode, antialias):
    """One axis resized, the other kept: that axis's taps are one weight of 1 (resize_tables),
    which gives the bits of the mode's own table with its zero taps (finite data; the same
    vertical shift for uint8), grown and shrunk, both axes; a neighbor's infinity stays out of
    a pixel (cv2 would sum it with weight 0: NaN)."""
    from imkern.transform import _resize as RZ

    tkind = RZ._kind_of(dtype)
    sizes = [((13, 40), (13, 17)), ((13, 40), (13, 97)), ((40, 13), (17, 13)), ((21, 9), (50, 9)),
             ((1, 30), (1, 12)), ((30, 1), (12, 1)), ((9, 300), (9, 200)), ((9, 300), (9, 150)),
             ((9, 301), (9, 100)), ((40, 130), (27, 130)), ((20, 130), (47, 130))]
    for (sh, sw), (h, w) in sizes:
        x = random_array(rng, (sh, sw, 3), dtype)
        got = resize(x, (h, w), interpolation=mode, antialias=antialias)
        try:
            imkern.set_cpu_params(stream_bytes=0)  # every output streamed
            np.testing.assert_array_equal(resize(x, (h, w), interpolation=mode, antialias=antialias), got)
            for v in (x[::-1, ::-1], x[:, :, :1], x[..., 1]):
                np.testing.assert_array_equal(resize(v, (h, w), interpolation=mode, antialias=antialias),
                                              resize(np.ascontiguousarray(v), (h, w), interpolation=mode,
                                                     antialias=antialias))
        finally:
            imkern.set_cpu_params(stream_bytes=None)
        shrink = mode == "area" and sh >= h and sw >= w
        ytab = RZ._axis_table(sh, h, mode, antialias, shrink, tkind)
        xtab = RZ._axis_table(sw, w, mode, antialias, shrink, tkind)
        if tkind == "u8" and antialias and mode == "bicubic":
            tmp = RZ._separable(x, None, (sh, w, 3), RZ._identity_table(sh, tkind), xtab, tkind)
            full = RZ._separable(tmp, None, (h, w, 3), ytab, RZ._identity_table(w, tkind), tkind)
        else:
            full = RZ._separable(x, None, (h, w, 3), ytab, xtab, tkind)
        np.testing.assert_array_equal(got, full, err_msg=f"{(sh, sw)} -> {(h, w)}")
        if dtype is np.float32 and sh == h and sh > 2:
            y = x.copy()
            y[1, :, 0] = np.inf  # row 1 infinite: rows 0 and 2 stay finite
            r = resize(y, (h, w), interpolation=mode, antialias=antialias)
            assert np.isfinite(r[[0, 2], :, 0]).all() and np.isfinite(r[:, :, 1:]).all()


def test_same_bits_on_every_isa_level_and_thread_count(rng):
    x = random_array(rng, (2, 130, 170, 3), np.uint8)
    results = []
    for isa in imkern.info()["cpu_isa_available"]:
        for n in (1, 3):
            before_isa, before_n = imkern.get_cpu_isa(), imkern.get_num_threads()
            imkern.set_cpu_isa(isa)
            imkern.set_num_threads(n)
            try:
                results.append([resize(x, (61, 250), interpolation=m) for m in MODES] +
                               [resize(x, (40, 33), interpolation="bicubic", antialias=True)])
            finally:
                imkern.set_cpu_isa(before_isa)
                imkern.set_num_threads(before_n)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


def test_threads(rng, threads):
    x = random_array(rng, (3, 200, 150, 3), np.float32)
    _cmp(resize(x, (77, 311)), R.resize(x, (77, 311)), np.float32, x, "bilinear")


@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU, a CUDA build of imkern and CuPy")
@pytest.mark.cuda
def test_uint8_same_bits_on_cpu_and_cuda(rng):
    import cupy

    x = random_array(rng, (2, 211, 173, 3), np.uint8)
    for mode in MODES:
        for dst in [(64, 80), (400, 333), (1, 1)]:
            for aa in ([False, True] if mode in ("bilinear", "bicubic") else [False]):
                cpu = resize(x, dst, interpolation=mode, antialias=aa)
                gpu = resize(cupy.asarray(x), dst, interpolation=mode, antialias=aa)
                np.testing.assert_array_equal(cupy.asnumpy(gpu), cpu, err_msg=f"{mode} {dst} aa={aa}")


def _integer_formula(x, ytab, xtab, shift):
    """The uint8 arithmetic of the CUDA kernel (csrc/cuda/transform/resize.cu), in NumPy:
    column sums over the ky rows, shifted with rounding, then the kx-weighted sum, rounded."""
    ys, yw, yb, _ = ytab
    xs, xw, xb, _ = xtab
    xi = x.astype(np.int64)
    v = sum(yw[:, k][:, None, None] * xi[ys + k] for k in range(yw.shape[1]))
    if shift:
        v = (v + (1 << (shift - 1))) >> shift
    acc = sum(xw[:, j][None, :, None] * v[:, xs + j] for j in range(xw.shape[1]))
    r = yb + xb - shift
    assert np.abs(acc).max() < 2**31  # the kernels sum in int32
    return np.clip((acc + (1 << (r - 1))) >> r, 0, 255).astype(np.uint8)


def _assert_integer_formula_on_every_isa(rng, sizes, mode, antialias, channels):
    """resize of uint8 views (contiguous, negative-stride rows, strided columns of a batch) of
    random images equals _integer_formula bit for bit on every ISA level, for each
    ((src h, src w), (dst h, dst w)) of sizes."""
    before = imkern.get_cpu_isa()
    try:
        for (sh, sw), (h, w) in sizes:
            shrink = mode == "area" and sh >= h and sw >= w
            ytab = _RZ._axis_table(sh, h, mode, antialias, shrink, "u8")
            xtab = _RZ._axis_table(sw, w, mode, antialias, shrink, "u8")
            shift = _RZ._vshift(ytab[3], xtab[3])
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


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "area", "lanczos"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("sizes", [((13, 17), (40, 33)), ((40, 33), (13, 17)), ((64, 30), (17, 61)),
                                   ((120, 301), (23, 37))], ids=str)
def test_uint8_cpu_equals_the_cuda_integer_formula(rng, mode, antialias, sizes):
    """uint8 on the CPU (vertical-first or, when the height grows, horizontal-first with a ring)
    gives exactly the integer formula the CUDA kernel computes, so the devices agree bit for
    bit even before a GPU runs the CUDA tests."""
    from imkern.transform import _resize as RZ

    if antialias and mode in ("area", "lanczos"):
        pytest.skip("not antialiased")
    (sh, sw), (h, w) = sizes
    x = random_array(rng, (sh, sw, 3), np.uint8)
    shrink = mode == "area" and sh >= h and sw >= w
    ytab = RZ._axis_table(sh, h, mode, antialias, shrink, "u8")
    xtab = RZ._axis_table(sw, w, mode, antialias, shrink, "u8")
    got = resize(x, (h, w), interpolation=mode, antialias=antialias)
    if antialias and mode == "bicubic":
        mid = _integer_formula(x, RZ._identity_table(sh, "u8"), xtab,
                               RZ._vshift(RZ._identity_table(sh, "u8")[3], xtab[3]))
        itab = RZ._identity_table(w, "u8")
        expect = _integer_formula(mid, ytab, itab, RZ._vshift(ytab[3], itab[3]))
    else:
        expect = _integer_formula(x, ytab, xtab, RZ._vshift(ytab[3], xtab[3]))
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "area", "lanczos"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_uint8_horizontal_first_paths_equal_the_integer_formula(rng, mode, channels):
    """uint8 resizes with no intermediate shift run horizontally first on the CPU (16-bit
    multiply-adds over byte windows: 16-byte pshufb windows, or 64-byte vpermb windows on
    AVX-512 VBMI machines; shrinking by 2 or more with 2 taps fuses both rows straight to the
    output), with the general path where the windows do not fit (shrinking by more than ~4x,
    rows narrower than a window). Every one of them must give the exact integer formula, on
    every ISA level: odd widths, 1-pixel images and outputs, strided and negative-stride
    views, batches."""
    sizes = [((64, 96), (32, 48)), ((67, 131), (33, 65)), ((50, 77), (23, 19)), ((41, 63), (29, 47)),
             ((13, 17), (40, 33)), ((30, 200), (61, 401)), ((1, 1), (3, 5)), ((1, 70), (1, 33)), ((90, 1), (45, 1)),
             ((7, 9), (1, 1)), ((40, 300), (20, 21)), ((9, 23), (9, 23))]
    _assert_integer_formula_on_every_isa(rng, sizes, mode, False, channels)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
def test_uint8_large_outputs_same_bits_on_every_isa_level(rng, mode):
    """Outputs larger than the caches (over 8 MiB) are written with streaming stores on AVX-512,
    aligned 16-byte pieces with the unaligned head and tail of each row written normally:
    the same bits as the other ISA levels; odd widths so the rows start unaligned."""
    x = random_array(rng, (731, 1013, 3), np.uint8)
    before = imkern.get_cpu_isa()
    try:
        res = []
        for isa in imkern.info()["cpu_isa_available"]:
            imkern.set_cpu_isa(isa)
            res.append(resize(x, (1501, 2047), interpolation=mode))
        for r in res[1:]:
            np.testing.assert_array_equal(r, res[0])
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_uint8_periodic_tables_equal_the_integer_formula(rng, mode, channels):
    """Rational factors with a short period (2x, 3x, 1.5x, 4/3, 2.5x, and shrinking by 2 and
    3) let the horizontal pass read the tables of one period for the blocks away from the
    edges: the exact integer formula on every ISA level, on rows long enough to have such a
    period and short ones that do not."""
    from imkern.transform import _resize as RZ

    sizes = [
        ((9, 160), (18, 320)),
        ((5, 101), (15, 303)),
        ((6, 96), (9, 144)),
        ((7, 150), (9, 200)),
        ((4, 88), (10, 220)),
        ((12, 400), (6, 200)),
        ((9, 333), (3, 111)),
        ((5, 12), (10, 24)),
    ]
    before = imkern.get_cpu_isa()
    try:
        for (sh, sw), (h, w) in sizes:
            x = random_array(rng, (sh, sw, channels), np.uint8)
            ytab = RZ._axis_table(sh, h, mode, False, False, "u8")
            xtab = RZ._axis_table(sw, w, mode, False, False, "u8")
            expect = _integer_formula(x, ytab, xtab, RZ._vshift(ytab[3], xtab[3]))
            for isa in imkern.info()["cpu_isa_available"]:
                imkern.set_cpu_isa(isa)
                got = resize(x, (h, w), interpolation=mode)
                np.testing.assert_array_equal(got, expect, err_msg=f"{isa} {(sh, sw)}->{(h, w)}")
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("strip", [1024, None])
def test_uint8_periodic_windows_across_strips_equal_the_integer_formula(rng, mode, channels, strip):
    """Whole periods of the uint8 horizontal pass (periods of 1 to 3 blocks: 2x, 4x; 1.5x where
    the channels make the period short) run from one source pointer moving by the period's
    bytes (U8Hpass::run_periods), the blocks before the first period start and after the last
    one by one: the exact integer formula
    on every ISA level and 1 and 2 threads, for rows split into column strips that start at
    every phase of the period (a small ``strip_l1``: 8 KiB rings) and the machine's strips,
    on negative-stride views; rows too short for a period as controls."""
    from imkern.transform import _resize as RZ

    sizes = [((7, 700), (14, 1400)), ((5, 301), (10, 602)), ((4, 257), (9, 1028)), ((6, 400), (9, 600)),
             ((5, 13), (10, 26))]
    before_isa, before_n = imkern.get_cpu_isa(), imkern.get_num_threads()
    imkern.set_cpu_params(strip_l1=strip)
    try:
        for (sh, sw), (h, w) in sizes:
            ytab = RZ._axis_table(sh, h, mode, False, False, "u8")
            xtab = RZ._axis_table(sw, w, mode, False, False, "u8")
            assert RZ._vshift(ytab[3], xtab[3]) == 0
            x = random_array(rng, (sh, sw, channels), np.uint8)[::-1]
            expect = _integer_formula(np.ascontiguousarray(x), ytab, xtab, 0)
            for isa in imkern.info()["cpu_isa_available"]:
                imkern.set_cpu_isa(isa)
                for threads in (1, 2):
                    imkern.set_num_threads(threads)
                    got = resize(x, (h, w), interpolation=mode)
                    np.testing.assert_array_equal(got, expect, err_msg=f"{isa} t={threads} {(sh, sw)}->{(h, w)}")
    finally:
        imkern.set_cpu_isa(before_isa)
        imkern.set_num_threads(before_n)
        imkern.set_cpu_params(strip_l1=None)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("stream", [False, True])
def test_uint8_mirrored_row_pairs_equal_the_integer_formula(rng, mode, channels, stream):
    """Upscaling uint8 (no intermediate shift), consecutive output rows with the same window
    and mirrored weights (2x: rows 2i + 1, 2i + 2; the middle rows of 4x) are summed together
    from the sums and differences of the mirrored ring rows, in wrapping int32 with an offset
    (vsum2_u8): the exact integer formula on every ISA level, for random and 0/255 images
    (the largest overshoots), aligned and misaligned output rows (heads, 16-byte steps, wide
    steps, tails), plain and streaming stores (pairs stream when both rows share an alignment
    modulo 64 bytes, else go as single rows), 1 and 2 threads (pairs split between chunks),
    negative-stride and strided views; 3x (no pairs) and 1-row outputs as controls."""
    from imkern.transform import _resize as RZ

    sizes = [((9, 100), (18, 200)), ((7, 45), (14, 90)), ((5, 37), (20, 148)), ((11, 33), (22, 67)),
             ((6, 50), (18, 150)), ((1, 40), (2, 80)), ((8, 3), (16, 6)),
             # rows of a multiple of 64 bytes: streamed pairs (rows at one alignment)
             ((9, 64), (18, 128)), ((6, 96), (12, 192)), ((5, 40), (10, 320))]
    before_isa, before_n = imkern.get_cpu_isa(), imkern.get_num_threads()
    imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
    try:
        for (sh, sw), (h, w) in sizes:
            ytab = RZ._axis_table(sh, h, mode, False, False, "u8")
            xtab = RZ._axis_table(sw, w, mode, False, False, "u8")
            assert RZ._vshift(ytab[3], xtab[3]) == 0
            big = random_array(rng, (2, sh, 2 * sw + 3, channels), np.uint8)
            big[1] = np.where(big[1] & 1, 255, 0)
            views = [big[0, :, :sw], big[1, ::-1, sw:2 * sw], big[:, :, 1:2 * sw + 1:2]]
            for v in views:
                vv = np.ascontiguousarray(v)
                expect = (np.stack([_integer_formula(im, ytab, xtab, 0) for im in vv]) if vv.ndim == 4
                          else _integer_formula(vv, ytab, xtab, 0))
                for isa in imkern.info()["cpu_isa_available"]:
                    imkern.set_cpu_isa(isa)
                    for threads in (1, 2):
                        imkern.set_num_threads(threads)
                        for shift in (0, 5):  # output rows at another alignment
                            buf = np.full(expect.size + 64, 77, np.uint8)
                            out = buf[shift:shift + expect.size].reshape(expect.shape)
                            got = resize(v, (h, w), interpolation=mode, out=out)
                            np.testing.assert_array_equal(
                                got, expect, err_msg=f"{isa} t={threads} {(sh, sw)}->{(h, w)} {v.shape} +{shift}")
                            assert (buf[:shift] == 77).all() and (buf[shift + expect.size:] == 77).all()
    finally:
        imkern.set_cpu_isa(before_isa)
        imkern.set_num_threads(before_n)
        imkern.set_cpu_params(stream_bytes=None)


def _split_base(ytab, xtab):
    """The split digits' base B of csrc/cpu/transform/resize.cpp split_plan (0: none) for
    uint8 tables with no intermediate shift: weights multiples of 2^ax and 2^ay, the digits'
    window sums (doubled) and B times the vertical weights within int16."""
    ys, yw, yb, _ = ytab
    xs, xw, xb, _ = xtab
    if yw.shape[1] not in (2, 4):
        return 0
    ox, oy = int(np.bitwise_or.reduce(xw.ravel())), int(np.bitwise_or.reduce(yw.ravel()))
    if ox == 0 or oy == 0:
        return 0
    ax, ay = (ox & -ox).bit_length() - 1, (oy & -oy).bit_length() - 1
    r2 = yb + xb - ax - ay
    u, v = yw.astype(np.int64) >> ay, xw.astype(np.int64) >> ax
    if r2 < 1 or r2 > 22 or 2 * (255 * np.abs(u).sum(1).max() * np.abs(v).sum(1).max() + (1 << (r2 - 1))) >= 2**31:
        return 0
    umax = (np.abs(u) + np.abs(u[:, ::-1])).max()
    for b in (128, 64, 32, 16, 8, 4, 2):
        lo = ((v + b // 2) & (b - 1)) - b // 2
        hi = (v - lo) // b
        if b * umax > 32767 or np.abs(hi).max() > 127:
            continue
        sums = [np.where(d > 0, d, 0).sum(1) for d in (lo, hi)] + [np.where(d < 0, -d, 0).sum(1) for d in (lo, hi)]
        if 510 * max(int(a.max()) for a in sums) <= 32767:
            return b
    return 0


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_uint8_split_digit_rings_equal_the_integer_formula(rng, mode, channels):
    """Upscaling uint8 with tables whose weights share power-of-two factors (cv2's bilinear and
    bicubic at 2x) runs the horizontal-first order on split digits (AVX2 and AVX-512: each ring
    element as two 16-bit digits from pmaddubsw, the vertical sums by pmaddwd with the weight
    pairs (u, B u); split_plan): the exact integer formula on every ISA level, for random
    images, 0/255 ones and ones whose columns alternate 0 and 255 in the weights' period (the
    digits' extreme sums), single rows and mirrored pairs (odd heights, pairs split between
    the chunks of 2 threads), short column strips (8 KiB rings) and the machine's, plain and
    streamed outputs, negative-stride views; 1.5x bicubic (no split) as a control."""
    from imkern.transform import _resize as RZ

    sizes = [((9, 100), (18, 200)), ((7, 45), (14, 90)), ((6, 301), (12, 602)), ((5, 64), (10, 128)),
             ((1, 40), (2, 80)), ((3, 8), (6, 16)), ((6, 96), (9, 144))]
    before_isa, before_n = imkern.get_cpu_isa(), imkern.get_num_threads()
    try:
        for (sh, sw), (h, w) in sizes:
            ytab = RZ._axis_table(sh, h, mode, False, False, "u8")
            xtab = RZ._axis_table(sw, w, mode, False, False, "u8")
            assert RZ._vshift(ytab[3], xtab[3]) == 0
            if h == 2 * sh and ytab[1].shape[1] in (2, 4):  # (short sources: other tap counts, no split)
                assert _split_base(ytab, xtab) > 0, ((sh, sw), (h, w))
            if (sh, h) == (6, 9) and mode == "bicubic":
                assert _split_base(ytab, xtab) == 0
            big = random_array(rng, (3, sh, sw, channels), np.uint8)
            big[1] = np.where(big[1] & 1, 255, 0)
            big[2] = np.where((np.arange(sw) // 2 % 2 == 0)[None, :, None], 255, 0)
            for v in (big[0], big[1][::-1], big[2]):
                expect = _integer_formula(np.ascontiguousarray(v), ytab, xtab, 0)
                for isa in imkern.info()["cpu_isa_available"]:
                    imkern.set_cpu_isa(isa)
                    for threads, strip, stream in ((1, None, False), (2, 1024, True), (2, None, True)):
                        imkern.set_num_threads(threads)
                        imkern.set_cpu_params(strip_l1=strip, stream_bytes=0 if stream else 1 << 40)
                        got = resize(v, (h, w), interpolation=mode)
                        np.testing.assert_array_equal(
                            got, expect, err_msg=f"{isa} t={threads} strip={strip} {(sh, sw)}->{(h, w)}")
    finally:
        imkern.set_cpu_isa(before_isa)
        imkern.set_num_threads(before_n)
        imkern.set_cpu_params(strip_l1=None, stream_bytes=None)



@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 6, 8])
def test_uint8_strided_2x2_means_equal_the_integer_formula(rng, channels):
    """uint8 bilinear tables with two equal taps on both axes and the row's windows F pixels
    apart (an exact 4x shrink; 4x down with 2x along the row, and the reverse) take the 2x2
    means at a stride (resize_decimate.cpp: pshufb lanes of 4 outputs, the VBMI windows of 16,
    the single vectors and the scalar formula at the row's end; 5 and 6 channels the generic
    path): the exact integer formula on every ISA level, on rows of every tail length, 1-pixel
    outputs, negative-stride and strided views, batches; cv2 bit for bit; threads."""
    widths = [1, 2, 3, 5, 7, 8, 11, 16, 17, 24, 31, 33, 48, 49, 64, 97, 250]
    sizes = [((8, 4 * w), (2, w)) for w in widths] + [((4, 4), (1, 1)), ((40, 60), (10, 30)), ((20, 200), (10, 50)),
                                                      ((12, 8), (3, 2))]
    _assert_integer_formula_on_every_isa(rng, sizes, "bilinear", False, channels)
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (64, 4 * 123, channels), np.uint8)
    want = cv2.resize(x, (123, 16), interpolation=cv2.INTER_LINEAR).reshape(16, 123, channels)
    before, before_n = imkern.get_cpu_isa(), imkern.get_num_threads()
    try:
        for isa in imkern.info()["cpu_isa_available"]:
            imkern.set_cpu_isa(isa)
            for threads in (1, 2, 3):
                imkern.set_num_threads(threads)
                np.testing.assert_array_equal(resize(x, (16, 123), interpolation="bilinear"), want,
                                              err_msg=f"{isa} {threads} threads")
    finally:
        imkern.set_cpu_isa(before)
        imkern.set_num_threads(before_n)


def test_uint8_hfirst_rings_without_vbmi():
    """The uint8 horizontal-first passes of AVX-512 cores without VBMI (U8Hpass's pshufb blocks
    and run_periods at 512 bits, split digits and plain sums): on a core with VBMI (Zen 4, Xeon
    from Ice Lake on) every AVX-512 call takes the vpermb blocks, so only IMKERN_CPU_DISABLE
    reaches these; in a fresh process, the split-digit and mirrored-pair cases above."""
    if "avx512" not in imkern.info()["cpu_isa_available"]:
        pytest.skip("needs AVX-512")
    from test_color import _run_without  # (the fresh-process helper, tests/ on sys.path)

    code = (
        "import numpy as np, test_resize as t\n"
        "for mode in ('bilinear', 'bicubic'):\n"
        "    for ch in (1, 3, 4):\n"
        "        t.test_uint8_split_digit_rings_equal_the_integer_formula(np.random.default_rng(7), mode, ch)\n"
        "        t.test_uint8_strided_2x2_means_equal_the_integer_formula(np.random.default_rng(9), ch)\n"
        "        for stream in (False, True):\n"
        "            t.test_uint8_mirrored_row_pairs_equal_the_integer_formula(np.random.default_rng(8), mode, ch, stream)\n"
        "print('ok')\n"
    )
    _run_without("avx512vbmi", code, timeout=600)

# ---- float32 exact 2x shrink (bilinear and area: 0.5 / 0.5 taps), one pass -------------------------
def _mean2x2(x):
    """The halving path's formula, in float32 and its order: 0.25 ((a + c) + (b + d))."""
    r0, r1 = x[..., 0::2, :, :], x[..., 1::2, :, :]
    a, b = r0[..., 0::2, :] + r1[..., 0::2, :], r0[..., 1::2, :] + r1[..., 1::2, :]
    return np.float32(0.25) * (a + b)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 7, 8, 16, 17, 20])
@pytest.mark.parametrize("stream", [False, True])
def test_float32_halving_every_isa_level(rng, isa, channels, stream):
    """Sizes that take the exact-2x path (vector blocks of every residue of the channel count,
    windows of one or two halves, the row-sum grid for 2 to 8 (AVX2) or 16 (AVX-512) channels,
    the even and odd lanes for one channel, the last block of a row, the scalar formula for wide
    pixels and row ends; aligned and misaligned outputs, plain and streaming stores): the 2x2
    mean bit for bit, and the reference."""
    imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
    try:
        for mode in ("bilinear", "area"):
            for h, w in [(1, 1), (1, 20), (20, 1), (3, 37), (8, 64), (5, 131), (4, 263)]:
                x = random_array(rng, (2 * h, 2 * w, channels), np.float32)
                expect = _mean2x2(x)
                got = resize(x, (h, w), interpolation=mode)
                np.testing.assert_array_equal(got, expect, err_msg=f"{mode} {(h, w)}")
                _cmp(got, R.resize(x, (h, w), interpolation=mode), np.float32, x, "bilinear")
                buf = np.full(h * w * channels + 1, np.nan, np.float32)
                out = buf[1:].reshape(h, w, channels)
                assert resize(x, (h, w), interpolation=mode, out=out) is out
                np.testing.assert_array_equal(out, expect)
    finally:
        imkern.set_cpu_params(stream_bytes=None)


@pytest.mark.parametrize("stream", [False, True])
def test_float32_halving_rgb_blocks_every_phase(rng, isa, stream):
    """Three channels (AVX2: 24 outputs a step from six vectors of pair sums, from a pixel; the
    streamed part from the first whole line that starts on one): widths around the step and its
    row-end margin, rows starting at every 4-byte phase of a cache line, near-end data: the 2x2
    mean bit for bit, and nothing written outside the output."""
    imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
    try:
        for h, w in [(1, 1), (2, 8), (1, 9), (3, 16), (2, 17), (2, 25), (3, 40), (2, 56), (2, 333)]:
            x = random_array(rng, (2 * h, 2 * w, 3), np.float32)
            x[:, -2:] = rng.uniform(1e3, 2e3, (2 * h, 2, 3)).astype(np.float32)  # the row ends stand out
            expect = _mean2x2(x)
            np.testing.assert_array_equal(resize(x, (h, w)), expect, err_msg=f"{(h, w)}")
            for phase in range(0, 64, 4 if w in (17, 333) else 28):
                buf, off, out = _aligned_out((h, w, 3), np.float32, phase)
                assert resize(x, (h, w), interpolation="area", out=out) is out
                np.testing.assert_array_equal(out, expect, err_msg=f"{(h, w)} phase {phase}")
                assert (buf[:off] == 0xA5).all() and (buf[off + out.nbytes:] == 0xA5).all()
    finally:
        imkern.set_cpu_params(stream_bytes=None)


def test_float32_halving_layouts_batches_threads(rng, isa, threads):
    """2-D and batched images, flipped (negative-stride) rows and columns, strided views and a
    strided out=: the same bits as the 2x2 mean of the contiguous copy."""
    x = random_array(rng, (3, 34, 90, 3), np.float32)
    np.testing.assert_array_equal(resize(x, (17, 45)), _mean2x2(x))
    g = x[0, :, :, 0]
    np.testing.assert_array_equal(resize(g, (17, 45)), _mean2x2(g[..., None])[..., 0])
    base = random_array(rng, (68, 180, 4), np.float32)
    views = {"flipped rows": base[::-1], "flipped cols": base[:, ::-1], "strided": base[::2, ::2],
             "channel slice": base[..., 1:4], "fortran": np.asfortranarray(base)}
    for name, v in views.items():
        before = v.copy()
        hw = (v.shape[0] // 2, v.shape[1] // 2)
        np.testing.assert_array_equal(resize(v, hw), _mean2x2(np.ascontiguousarray(v)), err_msg=name)
        np.testing.assert_array_equal(v, before)
    big = np.zeros((3, 17, 90, 3), np.float32)
    view = big[:, :, ::2]
    assert resize(x, (17, 45), out=view) is view
    np.testing.assert_array_equal(view, _mean2x2(x))


def test_halving_path_only_where_it_applies(rng, isa):
    """Sizes near 2x that do not take it (odd source sizes, only one axis halved, bicubic) and
    other dtypes at 2x: the reference, as before."""
    x = random_array(rng, (41, 67, 3), np.float32)
    for src, dst, mode in [((41, 67), (20, 33), "bilinear"), ((40, 67), (20, 33), "bilinear"),
                           ((41, 66), (20, 33), "area"), ((40, 66), (20, 66), "bilinear"),
                           ((40, 66), (40, 33), "bilinear"), ((40, 66), (20, 33), "bicubic")]:
        v = x[: src[0], : src[1]]
        _cmp(resize(v, dst, interpolation=mode), R.resize(v, dst, interpolation=mode), np.float32, v, mode)
    for dtype in (np.uint8, np.uint16, np.float64):
        u = random_array(rng, (40, 66, 3), dtype)
        _cmp(resize(u, (20, 33)), R.resize(u, (20, 33)), dtype, u, "bilinear")


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_float_sums_upscale_every_isa_level(rng, isa, dtype, channels):
    """Upscaling by 2 and by non-integer factors (AVX2: the one-vector permute per tap where a
    block's taps fit one vector, the two-vector windows at the row ends) against the reference."""
    x = random_array(rng, (23, 131, channels), dtype)
    for mode in ("bilinear", "bicubic", "lanczos"):
        for dst in [(46, 262), (50, 300), (46, 393)]:
            _cmp(resize(x, dst, interpolation=mode), R.resize(x, dst, interpolation=mode), dtype, x, mode)


# ---- uint16 / uint8 exact 2x shrink on integer sums (resize_int_halve) -------------------------------
def _int_mean2x2(x):
    """The generic paths' bits at exactly 2x: s = the 2x2 block's sum; uint16 (float32 sums, exact)
    s / 4 rounded to nearest-even = (s + 1 + ((s >> 2) & 1)) >> 2; uint8 (11-bit fixed point, no
    vertical shift) (s 2^20 + 2^21) >> 22 = (s + 2) >> 2."""
    v = x.astype(np.int64)
    s = v[..., 0::2, 0::2, :] + v[..., 1::2, 0::2, :] + v[..., 0::2, 1::2, :] + v[..., 1::2, 1::2, :]
    if x.dtype == np.uint16:
        return ((s + 1 + ((s >> 2) & 1)) >> 2).astype(np.uint16)
    return ((s + 2) >> 2).astype(np.uint8)


def test_int_halving_rounding_formula():
    """Every sum of four uint16: the shift formula is round-half-even of s / 4 (what the float32
    path's exact s / 4 and rint give); uint8: round half up."""
    s = np.arange(4 * 65535 + 1, dtype=np.int64)
    np.testing.assert_array_equal((s + 1 + ((s >> 2) & 1)) >> 2, np.rint(s / 4.0).astype(np.int64))
    s8 = np.arange(4 * 255 + 1, dtype=np.int64)
    np.testing.assert_array_equal((s8 * (1 << 20) + (1 << 21)) >> 22, (s8 + 2) >> 2)


def _int_image(rng, shape, dtype, kind):
    hi = np.iinfo(dtype).max
    if kind == "random":
        return random_array(rng, shape, dtype)
    if kind == "extremes":  # 0 and the maximum only
        return (rng.integers(0, 2, size=shape) * hi).astype(dtype)
    # near the ends: every residue of the sums modulo 4 and 8, and the largest sums
    return (hi - rng.integers(0, 9, size=shape)).astype(dtype) if rng.random() < 0.5 else rng.integers(
        0, 9, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 7, 17, 41])
@pytest.mark.parametrize("stream", [False, True])
def test_int_halving_every_isa_level(rng, isa, dtype, channels, stream):
    """Sizes that take the exact-2x path (pair sums: one block or two per step, the int32-lane
    permutes, the scalar formula for wide pixels and row ends; aligned and misaligned outputs,
    plain and streaming stores) for random, 0/max-only and near-end data: the generic paths' bits,
    and within the tolerance of the reference."""
    imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
    try:
        for mode in ("bilinear", "area"):
            for h, w in [(1, 1), (1, 20), (20, 1), (3, 37), (8, 64), (5, 131), (4, 263), (2, 97)]:
                for kind in ("random", "extremes", "ends"):
                    x = _int_image(rng, (2 * h, 2 * w, channels), dtype, kind)
                    expect = _int_mean2x2(x)
                    got = resize(x, (h, w), interpolation=mode)
                    assert got.dtype == dtype
                    np.testing.assert_array_equal(got, expect, err_msg=f"{mode} {kind} {(h, w)}")
                _cmp(got, R.resize(x, (h, w), interpolation=mode), dtype, x, mode)
                buf = np.zeros(h * w * channels + 1, dtype)
                out = buf[1:].reshape(h, w, channels)
                assert resize(x, (h, w), interpolation=mode, out=out) is out
                np.testing.assert_array_equal(out, expect)
                assert buf[0] == 0
    finally:
        imkern.set_cpu_params(stream_bytes=None)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_int_halving_layouts_batches_threads(rng, isa, threads, dtype):
    """2-D and batched images, flipped (negative-stride) rows and columns, strided views, channel
    slices and a strided out=: the same bits as the formula on the contiguous copy."""
    x = random_array(rng, (3, 34, 90, 3), dtype)
    np.testing.assert_array_equal(resize(x, (17, 45)), _int_mean2x2(x))
    g = x[0, :, :, 0]
    np.testing.assert_array_equal(resize(g, (17, 45)), _int_mean2x2(g[..., None])[..., 0])
    np.testing.assert_array_equal(resize(x[..., :1], (17, 45), interpolation="area"), _int_mean2x2(x[..., :1]))
    base = random_array(rng, (68, 180, 4), dtype)
    views = {"flipped rows": base[::-1], "flipped cols": base[:, ::-1], "strided": base[::2, ::2],
             "channel slice": base[..., 1:4], "one channel": base[..., 2:3], "fortran": np.asfortranarray(base),
             "flipped 2-D": base[::-1, ::-1, 0]}
    for name, v in views.items():
        before = v.copy()
        hw = (v.shape[0] // 2, v.shape[1] // 2)
        c = np.ascontiguousarray(v)
        expect = _int_mean2x2(c) if c.ndim == 3 else _int_mean2x2(c[..., None])[..., 0]
        np.testing.assert_array_equal(resize(v, hw), expect, err_msg=name)
        np.testing.assert_array_equal(v, before)
    big = np.zeros((3, 17, 90, 3), dtype)
    view = big[:, :, ::2]
    assert resize(x, (17, 45), out=view) is view
    np.testing.assert_array_equal(view, _int_mean2x2(x))
    np.testing.assert_array_equal(big[:, :, 1::2], 0)
    big1 = np.zeros((3, 17, 45, 2), dtype)
    view1 = big1[..., ::-1][..., :1]
    assert resize(x[..., :1], (17, 45), out=view1) is view1
    np.testing.assert_array_equal(view1, _int_mean2x2(x[..., :1]))


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_int_halving_only_where_it_applies(rng, isa, dtype):
    """Sizes near 2x that do not take it (odd source sizes, one axis halved, bicubic): the
    reference, as before."""
    x = random_array(rng, (41, 67, 3), dtype)
    for src, dst, mode in [((41, 67), (20, 33), "bilinear"), ((40, 67), (20, 33), "bilinear"),
                           ((41, 66), (20, 33), "area"), ((40, 66), (20, 66), "bilinear"),
                           ((40, 66), (40, 33), "bilinear"), ((40, 66), (20, 33), "bicubic"),
                           ((3, 3), (1, 1), "bilinear")]:
        v = x[: src[0], : src[1]]
        _cmp(resize(v, dst, interpolation=mode), R.resize(v, dst, interpolation=mode), dtype, v, mode)


def test_uint8_halving_matches_cv2(rng, isa):
    """uint8 at exactly 2x: cv2.resize's bits (INTER_LINEAR and INTER_AREA: the 2x2 mean, half up)."""
    cv2 = pytest.importorskip("cv2")
    for shape in [(224, 224, 3), (64, 130), (30, 62, 4)]:
        x = random_array(rng, shape, np.uint8)
        hw = (shape[0] // 2, shape[1] // 2)
        for mode, flag in (("bilinear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA)):
            np.testing.assert_array_equal(resize(x, hw, interpolation=mode),
                                          cv2.resize(x, hw[::-1], interpolation=flag), err_msg=f"{shape} {mode}")


# ---- uint8 / uint16 exact 2x shrink, 2 to 8 channels: pshufb pixel pairs in 128-bit lanes (AVX2) ---
def _aligned_out(shape, dtype, phase):
    """An output array whose first element sits `phase` bytes past a 64-byte boundary (rows of
    other lengths then start at every phase in turn), the bytes around it poisoned."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.full(n + 192, 0xA5, np.uint8)
    off = (phase - buf.ctypes.data) % 64 + 64
    return buf, off, buf[off: off + n].view(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("stream", [False, True])
def test_int_halving_lane_pairs_every_isa_level(rng, isa, dtype, channels, stream):
    """Widths that take the lane-pair blocks (AVX2, uint8: 32 outputs a step for 2, 4, 8
    channels; 24 and 96 for 3, 6, the 96 ones streamed from a whole line on a pixel; uint16: 16
    outputs a step for 2, 4 channels, 12 and 48 for 3, the 48 ones streamed likewise) and their
    ends, rows starting at every phase of a cache line (the streamed head found on a pixel, or
    none for 6 channels at odd phases), 0/max-only and near-end data: the 2x2 mean rounded as
    the generic paths do, bit for bit, and nothing written outside the output."""
    imkern.set_cpu_params(stream_bytes=0 if stream else 1 << 40)
    size = np.dtype(dtype).itemsize
    try:
        for h, w in [(1, 1), (2, 5), (3, 16), (2, 33), (4, 48), (3, 97), (2, 200), (2, 333)]:
            for kind in ("random", "extremes", "ends"):
                x = _int_image(rng, (2 * h, 2 * w, channels), dtype, kind)
                expect = _int_mean2x2(x)
                np.testing.assert_array_equal(resize(x, (h, w)), expect, err_msg=f"{kind} {(h, w)}")
            for phase in range(0, 64, size * (1 if w == 200 else 13)):
                buf, off, out = _aligned_out((h, w, channels), dtype, phase)
                assert resize(x, (h, w), interpolation="area", out=out) is out
                np.testing.assert_array_equal(out, expect, err_msg=f"{(h, w)} phase {phase}")
                assert (buf[:off] == 0xA5).all() and (buf[off + out.nbytes:] == 0xA5).all()
    finally:
        imkern.set_cpu_params(stream_bytes=None)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [2, 3, 4])
def test_int_halving_lane_pairs_views_threads(rng, isa, threads, dtype, channels):
    """Flipped (negative-stride) rows and columns, strided and channel-sliced inputs, a batch, a
    strided out= and a 1-pixel image: the formula on the contiguous copy, and cv2's bits."""
    cv2 = pytest.importorskip("cv2")
    base = random_array(rng, (2, 132, 412, channels + 1), dtype)
    x = base[0, ..., :channels]
    views = {"contiguous": np.ascontiguousarray(x), "flipped rows": x[::-1], "flipped cols": x[:, ::-1],
             "strided": base[0, ::2, ::2, :channels], "channel slice": x}
    for name, v in views.items():
        before = v.copy()
        hw = (v.shape[0] // 2, v.shape[1] // 2)
        expect = _int_mean2x2(np.ascontiguousarray(v))
        np.testing.assert_array_equal(resize(v, hw), expect, err_msg=name)
        if channels != 2:  # (cv2 takes another formula for 2 channels: not its 2x2 mean)
            np.testing.assert_array_equal(resize(v, hw), cv2.resize(np.ascontiguousarray(v), hw[::-1],
                                                                    interpolation=cv2.INTER_LINEAR), err_msg=name)
        np.testing.assert_array_equal(v, before)
    xb = np.ascontiguousarray(base[..., :channels])
    np.testing.assert_array_equal(resize(xb, (66, 206)), _int_mean2x2(xb))
    big = np.zeros((2, 66, 412, channels), dtype)
    view = big[:, ::-1, ::2]
    assert resize(xb, (66, 206), out=view) is view
    np.testing.assert_array_equal(view, _int_mean2x2(xb))
    np.testing.assert_array_equal(big[:, :, 1::2], 0)
    one = random_array(rng, (2, 2, channels), dtype)
    np.testing.assert_array_equal(resize(one, (1, 1)), _int_mean2x2(one))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 97])
def test_halving_streamed_row_ends_every_isa_level(rng, isa, dtype, channels):
    """Streamed rows: the plain head up to the first whole line and the tail after the last one
    (through a small buffer, or in place for pixels too wide for it), at every phase of a line
    and row lengths around the vector blocks: the same bits as unstreamed, nothing written
    outside the output."""
    imkern.set_cpu_params(stream_bytes=0)
    try:
        for w in [1, 15, 16, 17, 40, 129]:
            x = _int_image(rng, (4, 2 * w, channels), dtype, "random") if dtype != np.float32 else \
                random_array(rng, (4, 2 * w, channels), dtype)
            expect = _int_mean2x2(x) if dtype != np.float32 else _mean2x2(x)
            for phase in range(0, 64, np.dtype(dtype).itemsize * (1 if w == 129 else 5)):
                buf, off, out = _aligned_out((2, w, channels), dtype, phase)
                assert resize(x, (2, w), out=out) is out
                np.testing.assert_array_equal(out, expect, err_msg=f"w {w} phase {phase}")
                assert (buf[:off] == 0xA5).all() and (buf[off + out.nbytes:] == 0xA5).all()
    finally:
        imkern.set_cpu_params(stream_bytes=None)


# ---- uint8 resizes whose fixed-point weights need an intermediate shift (area shrinking by a
# non-integer factor, antialiased shrinking, lanczos): the general vertical-first path, whose
# horizontal pass takes plain loads per pixel for 3 and 4 channels at every tap count (1, 3,
# 5, 6, 7, ... taps; 2, 4 and 8 have their own unrolled loops) and gathers otherwise. Each must
# give the CUDA kernel's integer formula exactly, on every ISA level.
# (source, destination): area by non-integer factors (1 to 4 horizontal taps, 1 where the
# width is kept), antialiased shrinks (5 to 9 taps), and small / 1-pixel images
SHIFTED_SIZES = [((240, 320), (224, 224)), ((240, 320), (224, 320)), ((240, 320), (240, 224)), ((50, 77), (20, 23)),
                 ((31, 101), (17, 29)), ((64, 200), (30, 41)), ((5, 9), (1, 1)), ((3, 40), (2, 13)),
                 ((1, 33), (1, 7)), ((30, 96), (20, 64))]


@pytest.mark.parametrize("mode,antialias", [("area", False), ("bilinear", True), ("bicubic", False),
                                            ("lanczos", False)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shifted_uint8_resize_equals_the_integer_formula(rng, mode, antialias, channels):
    _assert_integer_formula_on_every_isa(rng, SHIFTED_SIZES, mode, antialias, channels)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shifted_uint8_lanczos_streamed_equals_the_integer_formula(rng, channels):
    """Lanczos shrinking by non-integer factors (8 taps, an intermediate shift), every output
    streamed: the integer formula on every ISA level, as unstreamed."""
    imkern.set_cpu_params(stream_bytes=0)
    try:
        _assert_integer_formula_on_every_isa(rng, SHIFTED_SIZES, "lanczos", False, channels)
    finally:
        imkern.set_cpu_params(stream_bytes=None)


def test_the_sizes_cover_the_shifted_path_and_its_tap_counts():
    """The cases above reach the shifted path (shift > 0) with the tap counts it has loops for."""
    taps = set()
    for (sh, sw), (h, w) in SHIFTED_SIZES:
        shrink = sh >= h and sw >= w
        ytab = _RZ._axis_table(sh, h, "area", False, shrink, "u8")
        xtab = _RZ._axis_table(sw, w, "area", False, shrink, "u8")
        if shrink:
            assert _RZ._vshift(ytab[3], xtab[3]) > 0
        taps.add(xtab[1].shape[1])
        taps.add(_RZ._axis_table(sw, w, "bilinear", True, False, "u8")[1].shape[1])
    assert {1, 2, 3}.issubset(taps) and any(k > 4 and k != 8 for k in taps), taps
