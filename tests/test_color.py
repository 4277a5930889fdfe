"""imkern.color against the NumPy reference, OpenCV, scikit-image and Pillow; CPU and CUDA
(the xp fixture), every dtype, layouts, views, out=, bad arguments, ISA levels, threads."""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array, to_numpy
from imkern import color as K
from imkern.reference import color as R

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
HSV_DTYPES = [np.uint8, np.float32, np.float64]
SHAPES3 = [(1, 1, 3), (1, 17, 3), (7, 1, 3), (13, 37, 3), (2, 9, 45, 3), (64, 129, 3)]

# name -> (function, reference, input channels, dtypes)
OPS = {
    "rgb_to_gray": (K.rgb_to_gray, R.rgb_to_gray, (3, 4), DTYPES),
    "bgr_to_gray": (K.bgr_to_gray, R.bgr_to_gray, (3, 4), DTYPES),
    "gray_to_rgb": (K.gray_to_rgb, R.gray_to_rgb, (1,), DTYPES),
    "rgb_to_bgr": (K.rgb_to_bgr, R.rgb_to_bgr, (3, 4), DTYPES),
    "bgr_to_rgb": (K.bgr_to_rgb, R.bgr_to_rgb, (3, 4), DTYPES),
    "rgba_to_rgb": (K.rgba_to_rgb, R.rgba_to_rgb, (4,), DTYPES),
    "rgb_to_hsv": (K.rgb_to_hsv, R.rgb_to_hsv, (3,), HSV_DTYPES),
    "hsv_to_rgb": (K.hsv_to_rgb, R.hsv_to_rgb, (3,), HSV_DTYPES),
    "rgb_to_ycbcr": (K.rgb_to_ycbcr, R.rgb_to_ycbcr, (3,), DTYPES),
    "ycbcr_to_rgb": (K.ycbcr_to_rgb, R.ycbcr_to_rgb, (3,), DTYPES),
    "rgb_to_lab": (K.rgb_to_lab, R.rgb_to_lab, (3,), HSV_DTYPES),
    "lab_to_rgb": (K.lab_to_rgb, R.lab_to_rgb, (3,), HSV_DTYPES),
}


def _input(rng, name, shape, dtype):
    x = random_array(
        rng,
        shape,
        dtype,
        low=0 if np.dtype(dtype).kind == "f" else None,
        high=1 if np.dtype(dtype).kind == "f" else None,
    )
    if name == "hsv_to_rgb" and np.dtype(dtype) == np.uint8:
        x[..., 0] %= 180
    if name == "lab_to_rgb" and np.dtype(dtype).kind == "f":
        x = R.rgb_to_lab(x).astype(dtype)  # valid L*a*b* values
    return x


def _shapes(channels):
    out = []
    for s in SHAPES3:
        for c in channels:
            out.append(s[:-1] + (c,))
    if channels == (1,):
        out += [(5, 7), (1, 1)]
    return out


CASES = [(name, dt, shape) for name, (_, _, ch, dts) in OPS.items() for dt in dts for shape in _shapes(ch)]


def _tol(name, dtype):
    """Integer results vs the float64 reference: 1 (fixed-point rounding); uint16 gray 2
    (OpenCV's Q15 weights are off by up to 1.2e-5, 0.8 at 65535, plus the rounding)."""
    if "lab" in name and np.dtype(dtype) == np.uint8:
        return 0  # the reference is OpenCV's integer algorithm itself
    return 2 if name.endswith("gray") and np.dtype(dtype) == np.uint16 else 1


@pytest.mark.parametrize("name,dtype,shape", CASES, ids=[f"{n}-{np.dtype(d).name}-{s}" for n, d, s in CASES])
def test_matches_reference(xp, rng, name, dtype, shape):
    fn, ref, _, _ = OPS[name]
    x = _input(rng, name, shape, dtype)
    before = x.copy()
    got = fn(xp.asarray(x))
    exp = ref(x)
    assert type(got) is type(xp.asarray(x))
    assert got.dtype == x.dtype and got.shape == exp.shape, (got.shape, exp.shape)
    g = to_numpy(got)
    if name == "rgb_to_hsv" and np.dtype(dtype) == np.uint8:
        # hue is circular: 179 and 0 are neighbours
        d = np.abs(g.astype(int) - exp.astype(int))
        d[..., 0] = np.minimum(d[..., 0], 180 - d[..., 0])
        assert d.max(initial=0) <= 1
    elif name == "rgb_to_lab" and np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(g, exp, rtol=0, atol=2e-4 if np.dtype(dtype) == np.float32 else 1e-10)
    elif name == "rgb_to_hsv":
        d = np.abs(g.astype(np.float64) - exp)
        d[..., 0] = np.minimum(d[..., 0], 1 - d[..., 0])
        assert d.max(initial=0) <= (1e-5 if np.dtype(dtype) == np.float32 else 1e-12)
    else:
        assert_close(g, exp, dtype, int_atol=_tol(name, dtype))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", list(OPS))
def test_cpu_and_cuda_identical_integers(xp, rng, name):
    """uint8/uint16 results: the same bits on every device and CPU ISA (one integer formula)."""
    fn, _, ch, dts = OPS[name]
    for dt in [d for d in dts if np.dtype(d).kind == "u"]:
        x = _input(rng, name, (3, 31, 67, ch[-1]), dt)
        base = fn(x)
        np.testing.assert_array_equal(to_numpy(fn(xp.asarray(x))), base)


@pytest.mark.parametrize("name", list(OPS))
def test_isa_levels_and_threads(isa, threads, rng, name):
    fn, _, ch, dts = OPS[name]
    for dt in dts:
        x = _input(rng, name, (2, 41, 263, ch[0]), dt)
        got = fn(x)
        before = imkern.get_cpu_isa()
        imkern.set_cpu_isa("baseline")
        try:
            nthreads = imkern.get_num_threads()
            imkern.set_num_threads(1)
            base = fn(x)
        finally:
            imkern.set_cpu_isa(before)
            imkern.set_num_threads(nthreads)
        if np.dtype(dt).kind == "u":
            np.testing.assert_array_equal(got, base)
        elif "lab" in name:  # pow/cbrt chains: float32 L*a*b* values up to 100 agree to ~1 ulp * 100
            np.testing.assert_allclose(got, base, rtol=1e-6, atol=2e-4 if np.dtype(dt) == np.float32 else 1e-12)
        else:
            np.testing.assert_allclose(got, base, rtol=1e-6, atol=1e-7)


# ---- peers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_gray_equals_opencv(xp, rng, dtype):
    cv2 = pytest.importorskip("cv2")
    for shape in [(1, 1, 3), (37, 1023, 3), (5, 19, 4), (480, 640, 3)]:
        x = random_array(
            rng,
            shape,
            dtype,
            low=0 if np.dtype(dtype).kind == "f" else None,
            high=1 if np.dtype(dtype).kind == "f" else None,
        )
        for fn, code3, code4 in (
            (K.rgb_to_gray, cv2.COLOR_RGB2GRAY, cv2.COLOR_RGBA2GRAY),
            (K.bgr_to_gray, cv2.COLOR_BGR2GRAY, cv2.COLOR_BGRA2GRAY),
        ):
            exp = cv2.cvtColor(x, code3 if shape[-1] == 3 else code4)
            got = to_numpy(fn(xp.asarray(x)))
            if np.dtype(dtype).kind == "u":
                np.testing.assert_array_equal(got, exp)  # bit for bit
            else:
                np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-6)


def test_gray_real_photographs_equal_opencv(xp):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    for img in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket()):
        np.testing.assert_array_equal(to_numpy(K.rgb_to_gray(xp.asarray(img))), cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        np.testing.assert_array_equal(to_numpy(K.rgb_to_hsv(xp.asarray(img))), cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
        batch = np.stack([img, img[::-1]])
        g = to_numpy(K.rgb_to_gray(xp.asarray(batch)))
        assert g.shape == batch.shape[:-1] + (1,)
        np.testing.assert_array_equal(g[1, ..., 0], cv2.cvtColor(np.ascontiguousarray(img[::-1]), cv2.COLOR_RGB2GRAY))


def test_channel_swaps_equal_opencv(rng):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (33, 65, 3), np.uint8)
    np.testing.assert_array_equal(K.rgb_to_bgr(x), cv2.cvtColor(x, cv2.COLOR_RGB2BGR))
    x4 = random_array(rng, (33, 65, 4), np.uint8)
    np.testing.assert_array_equal(K.rgb_to_bgr(x4), cv2.cvtColor(x4, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(K.rgba_to_rgb(x4), cv2.cvtColor(x4, cv2.COLOR_RGBA2RGB))
    g = random_array(rng, (33, 65), np.uint8)
    np.testing.assert_array_equal(K.gray_to_rgb(g), cv2.cvtColor(g, cv2.COLOR_GRAY2RGB))


def test_hsv_uint8_equals_opencv(xp, rng):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (301, 257, 3), np.uint8)
    # include every gray level and saturated primaries (the ties of the maximum)
    x[0, :256] = np.arange(256)[:, None]
    x[1, :6] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]]
    np.testing.assert_array_equal(to_numpy(K.rgb_to_hsv(xp.asarray(x))), cv2.cvtColor(x, cv2.COLOR_RGB2HSV))
    hsv = random_array(rng, (301, 257, 3), np.uint8)
    hsv[..., 0] %= 180
    got = to_numpy(K.hsv_to_rgb(xp.asarray(hsv))).astype(int)
    assert np.abs(got - cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)).max() <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hsv_float_equals_skimage(xp, rng, dtype):
    skc = pytest.importorskip("skimage.color")
    x = random_array(rng, (61, 83, 3), dtype, low=0, high=1)
    x[0, :4] = [[1, 1, 0], [0, 1, 1], [0.5, 0.5, 0.5], [0, 0, 0]]  # ties, gray, black
    x[1, :3] = [[0.2, 0.2, 0.1], [0.1, 0.3, 0.3], [0.3, 0.1, 0.3]]
    tol = 2e-6 if dtype == np.float32 else 1e-12
    exp = skc.rgb2hsv(x)
    got = to_numpy(K.rgb_to_hsv(xp.asarray(x)))
    d = np.abs(got.astype(np.float64) - exp)
    d[..., 0] = np.minimum(d[..., 0], 1 - d[..., 0])
    assert d.max() <= tol
    h = exp.astype(dtype)
    np.testing.assert_allclose(to_numpy(K.hsv_to_rgb(xp.asarray(h))), skc.hsv2rgb(h), rtol=tol, atol=tol)
    # round trip
    np.testing.assert_allclose(to_numpy(K.hsv_to_rgb(K.rgb_to_hsv(xp.asarray(x)))), x, atol=10 * tol)


def test_ycbcr_uint8_within_one_of_pillow(rng):
    Image = pytest.importorskip("PIL.Image")
    data = pytest.importorskip("skimage.data")
    for x in (random_array(rng, (97, 131, 3), np.uint8), data.astronaut()):
        ycc = np.asarray(Image.fromarray(x).convert("YCbCr"))
        assert np.abs(K.rgb_to_ycbcr(x).astype(int) - ycc).max() <= 1
        back = np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB"))
        assert np.abs(K.ycbcr_to_rgb(ycc).astype(int) - back).max() <= 1


# The uint8 YCbCr rows (AVX2: 8 pixels per step, a last step ending at the row's end, rows
# under 11 pixels per pixel; AVX-512: 16 per step, masked at the row's end, with or without
# VBMI + VNNI): every width up to a few steps, on every ISA, equal to the per-pixel code, and
# every output byte written (the output poisoned first).
_YCC_EXTREMES = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]]


def _rows_equal_per_pixel(fn, rng, widths, gray_pixels=False):
    """fn's uint8 rows of every width equal fn on one-pixel rows, through contiguous, reversed
    and padded views, every output byte written."""
    for w in widths:
        x = random_array(rng, (3, w, 3), np.uint8)
        n = min(w, len(_YCC_EXTREMES))
        x[0, :n] = _YCC_EXTREMES[:n]  # gray, primaries, ties of the maximum
        if gray_pixels:
            x[1, ::2] = x[1, ::2, :1]  # (HSV: V - min = 0)
        x[2, -n:] = _YCC_EXTREMES[:n]
        exp = fn(np.ascontiguousarray(x.reshape(-1, 1, 3))).reshape(x.shape)  # one-pixel rows
        padded = np.pad(x, ((0, 0), (0, 5), (0, 0)))[:, :w]  # rows apart
        for view, want in ((x, exp), (x[:, ::-1], exp[:, ::-1]), (padded, exp)):
            out = np.full(x.shape, 0xA5, np.uint8)
            fn(view, out=out)
            np.testing.assert_array_equal(out, want, err_msg=f"{fn.__name__} w={w}")


def _ycc_rows_equal_per_pixel(rng, widths):
    for fn in (K.rgb_to_ycbcr, K.ycbcr_to_rgb):
        _rows_equal_per_pixel(fn, rng, widths)


_YCC_WIDTHS = list(range(1, 72)) + [127, 128, 129, 255, 263, 1021]


def test_ycbcr_uint8_rows_every_width_equal_per_pixel(isa, rng):
    _ycc_rows_equal_per_pixel(rng, _YCC_WIDTHS)


def _run_without(features, code, timeout):
    """Run ``code`` in a fresh interpreter whose imkern hides the CPU ``features``
    (IMKERN_CPU_DISABLE, read at import; this folder on sys.path); it must print ``ok``."""
    import os
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join([here] + [p for p in sys.path if p])
    env = dict(os.environ, IMKERN_CPU_DISABLE=features, PYTHONPATH=path)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_ycbcr_uint8_rows_without_vbmi_vnni():
    """The AVX-512 rows without the VBMI / VNNI ones (IMKERN_CPU_DISABLE), in a fresh process."""
    code = (
        "import numpy as np, imkern, test_color as t\n"
        "for isa in ('avx512', 'avx2'):\n"
        "    imkern.set_cpu_isa(isa)\n"
        "    t._ycc_rows_equal_per_pixel(np.random.default_rng(5), t._YCC_WIDTHS)\n"
        "print('ok')\n"
    )
    _run_without("avx512vbmi,avx512vnni", code, timeout=300)


# The uint8 HSV and L*a*b* rows (AVX2 / AVX-512: 32 pixels per step, then 16 per step, then the
# per-pixel code): every width up to a few steps and some longer rows, on every ISA, equal to
# the per-pixel code (one-pixel rows), through contiguous, reversed and padded views, every
# output byte written. Hues 180-255 go to hsv_to_rgb too (taken mod 180).
_HSV_WIDTHS = list(range(1, 100)) + [127, 128, 129, 255, 263, 1021]


@pytest.mark.parametrize("name", ["rgb_to_hsv", "hsv_to_rgb", "rgb_to_lab", "lab_to_rgb"])
def test_uint8_rows_every_width_equal_per_pixel(isa, rng, name):
    _rows_equal_per_pixel(getattr(K, name), rng, _HSV_WIDTHS, gray_pixels=True)


def test_hsv_uint8_rows_without_vbmi():
    """rgb_to_hsv's AVX-512 rows without the VBMI ones (IMKERN_CPU_DISABLE: the 32-pixel steps
    of CPUs without VBMI), in a fresh process, on every width and on all 2**24 triples."""
    code = (
        "import numpy as np, imkern, cv2, test_color as t, test_color_exhaustive as e\n"
        "from imkern import color as K\n"
        "x = e._every_triple()\n"
        "for isa in ('avx512', 'avx2'):\n"
        "    imkern.set_cpu_isa(isa)\n"
        "    t._rows_equal_per_pixel(K.rgb_to_hsv, np.random.default_rng(5), t._HSV_WIDTHS, gray_pixels=True)\n"
        "    assert np.array_equal(K.rgb_to_hsv(x), cv2.cvtColor(x, cv2.COLOR_RGB2HSV))\n"
        "print('ok')\n"
    )
    _run_without("avx512vbmi", code, timeout=600)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_ycbcr_round_trip(xp, rng, dtype):
    x = random_array(
        rng,
        (2, 45, 67, 3),
        dtype,
        low=0 if np.dtype(dtype).kind == "f" else None,
        high=1 if np.dtype(dtype).kind == "f" else None,
    )
    back = to_numpy(K.ycbcr_to_rgb(K.rgb_to_ycbcr(xp.asarray(x))))
    if np.dtype(dtype).kind == "u":
        assert np.abs(back.astype(np.int64) - x).max() <= 2  # two roundings, clipped chroma
    else:
        np.testing.assert_allclose(back, x, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rgba_blend(xp, rng, dtype):
    x = random_array(
        rng,
        (2, 23, 29, 4),
        dtype,
        low=0 if np.dtype(dtype).kind == "f" else None,
        high=1 if np.dtype(dtype).kind == "f" else None,
    )
    hi = np.iinfo(dtype).max if np.dtype(dtype).kind == "u" else 1.0
    for bg in (0, hi, (hi * 0.2, hi * 0.5, hi)):
        got = to_numpy(K.rgba_to_rgb(xp.asarray(x), background=bg))
        assert_close(got, R.rgba_to_rgb(x, background=bg), dtype, int_atol=0 if np.dtype(dtype).kind == "u" else 1)
    x[..., 3] = hi  # opaque: the colors themselves
    np.testing.assert_array_equal(to_numpy(K.rgba_to_rgb(xp.asarray(x), background=0)), x[..., :3])


# ---- layouts, out=, errors -------------------------------------------------------------------------
def test_strided_and_negative_views(xp, rng):
    base = random_array(rng, (3, 40, 50, 4), np.uint8)
    views = [
        base[..., :3],
        base[:, ::-1, :, :3],
        base[:, :, ::-1, :3],
        base[:, ::2, ::3, :3],
        base[::-1, 5:30, 7:41, :3],
        np.asfortranarray(base[0, :, :, :3]),
        base[0, :, :, :3].transpose(1, 0, 2),
    ]
    for v in views:
        exp = to_numpy(K.rgb_to_gray(xp.asarray(np.ascontiguousarray(v))))
        got = to_numpy(K.rgb_to_gray(xp.asarray(v) if xp is not np else v))
        np.testing.assert_array_equal(got, exp)
        np.testing.assert_array_equal(to_numpy(K.rgb_to_bgr(v)), R.rgb_to_bgr(np.ascontiguousarray(v)))


def test_out_argument(xp, rng):
    x = xp.asarray(random_array(rng, (2, 17, 19, 3), np.uint8))
    out = xp.full((2, 17, 19, 1), 7, np.uint8)
    r = K.rgb_to_gray(x, out=out)
    assert r is out
    np.testing.assert_array_equal(to_numpy(out), to_numpy(K.rgb_to_gray(x)))
    # a non-contiguous out receives the result by copy
    big = xp.zeros((2, 17, 38, 3), np.uint8)
    r = K.rgb_to_bgr(x, out=big[:, :, ::2])
    np.testing.assert_array_equal(to_numpy(big[:, :, ::2]), to_numpy(K.rgb_to_bgr(x)))
    assert (to_numpy(big[:, :, 1::2]) == 0).all()
    # in place (out is the input): allowed, computed through a temporary
    y = xp.asarray(random_array(rng, (9, 11, 3), np.float32, low=0, high=1))
    exp = to_numpy(K.rgb_to_hsv(y))
    K.rgb_to_hsv(y, out=y)
    np.testing.assert_array_equal(to_numpy(y), exp)
    with pytest.raises(ValueError, match="out"):
        K.rgb_to_gray(x, out=xp.empty((2, 17, 19), np.uint8))
    with pytest.raises(TypeError, match="out"):
        K.rgb_to_gray(x, out=xp.empty((2, 17, 19, 1), np.float32))


def test_bad_arguments(rng):
    x = random_array(rng, (5, 6, 3), np.uint8)
    with pytest.raises(TypeError, match="image"):
        K.rgb_to_gray(x.tolist())
    with pytest.raises(TypeError, match="image"):
        K.rgb_to_gray(x.astype(np.int32))
    with pytest.raises(TypeError, match="image"):
        K.rgb_to_hsv(x.astype(np.uint16))
    with pytest.raises(ValueError, match="image"):
        K.rgb_to_gray(x[..., :2])
    with pytest.raises(ValueError, match="image"):
        K.rgb_to_gray(x[..., 0])
    with pytest.raises(ValueError, match="image"):
        K.rgba_to_rgb(x)
    with pytest.raises(ValueError, match="image"):
        K.gray_to_rgb(x)
    with pytest.raises(ValueError, match="image"):
        K.rgb_to_ycbcr(np.zeros((2, 3, 4, 5, 3), np.uint8))
    x4 = random_array(rng, (5, 6, 4), np.uint8)
    with pytest.raises(ValueError, match="background"):
        K.rgba_to_rgb(x4, background=(1, 2))
    with pytest.raises(ValueError, match="background"):
        K.rgba_to_rgb(x4, background=300)
    with pytest.raises(ValueError, match="background"):
        K.rgba_to_rgb(x4.astype(np.float32), background=float("nan"))
    with pytest.raises(TypeError, match="background"):
        K.rgba_to_rgb(x4, background="white")


def test_empty_images(xp):
    for shape in [(0, 5, 3), (4, 0, 3), (0, 2, 3, 3)]:
        x = xp.zeros(shape, np.uint8)
        assert K.rgb_to_hsv(x).shape == shape
        assert K.rgb_to_gray(x).shape == (shape[:-1] if len(shape) == 3 else shape[:-1] + (1,))


def test_uint8_every_color(xp):
    """All 2**24 RGB colors: the vector paths (rows of 4096 pixels) equal the scalar paths
    (rows of 8 pixels, below one vector), and gray and HSV equal OpenCV, bit for bit."""
    cv2 = pytest.importorskip("cv2")
    v = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8)
    wide = to_numpy(K.rgb_to_hsv(xp.asarray(rgb.reshape(4096, 4096, 3))))
    narrow = to_numpy(K.rgb_to_hsv(xp.asarray(rgb.reshape(-1, 8, 3))))
    np.testing.assert_array_equal(wide.reshape(-1, 3), narrow.reshape(-1, 3))
    np.testing.assert_array_equal(wide, cv2.cvtColor(rgb.reshape(4096, 4096, 3), cv2.COLOR_RGB2HSV))
    # every vectorized uint8 row kernel against its scalar functor, on every 3-byte input
    hsv = rgb.copy()
    hsv[..., 0] %= 180
    for fn, inp in ((K.hsv_to_rgb, hsv), (K.hsv_to_rgb, rgb), (K.rgb_to_ycbcr, rgb), (K.ycbcr_to_rgb, rgb), (K.rgb_to_bgr, rgb)):
        w = to_numpy(fn(xp.asarray(inp.reshape(4096, 4096, 3))))
        n = to_numpy(fn(xp.asarray(inp.reshape(-1, 8, 3))))
        np.testing.assert_array_equal(w.reshape(-1, 3), n.reshape(-1, 3), err_msg=fn.__name__)
    gray = rgb[..., 0].reshape(4096, 4096)
    np.testing.assert_array_equal(
        to_numpy(K.gray_to_rgb(xp.asarray(gray))).reshape(-1, 3),
        to_numpy(K.gray_to_rgb(xp.asarray(gray.reshape(-1, 8)))).reshape(-1, 3),
    )
    rgba = np.concatenate([rgb[: 1 << 22], rgb[: 1 << 22, :1]], -1)
    for w in (2048, 8, 7, 6, 5, 1):  # the drop-alpha kernel stops 6 pixels before a row's end
        n = rgba.shape[0] // w * w
        got = to_numpy(K.rgba_to_rgb(xp.asarray(rgba[:n].reshape(-1, w, 4))))
        np.testing.assert_array_equal(got.reshape(-1, 3), rgba[:n, :3], err_msg=f"width {w}")
    g = to_numpy(K.rgb_to_gray(xp.asarray(rgb.reshape(4096, 4096, 3))))
    np.testing.assert_array_equal(g.ravel(), to_numpy(K.rgb_to_gray(xp.asarray(rgb.reshape(-1, 8, 3)))).ravel())
    np.testing.assert_array_equal(g, cv2.cvtColor(rgb.reshape(4096, 4096, 3), cv2.COLOR_RGB2GRAY))


def _float_specials(rng, dtype, n):
    """n RGB/HSV triples: values in [0, 1], ties between channels, zeros of both signs, values
    far outside [0, 1], infinities and NaN, in random positions."""
    x = rng.random((n, 3)).astype(dtype)
    pick = rng.random((n, 3))
    specials = np.array([0.0, -0.0, 1.0, 0.5, -0.25, 7.5, 1e30, -1e30, 7e5, np.inf, -np.inf, np.nan], dtype)
    x = np.where(pick < 0.15, specials[rng.integers(0, len(specials), (n, 3))], x)
    ties = rng.random(n) < 0.2
    x[ties, 1] = x[ties, 0]
    ties = rng.random(n) < 0.2
    x[ties, 2] = x[ties, rng.integers(0, 2)]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hsv_float_vector_rows_equal_scalar(isa, rng, dtype):
    """The float HSV row kernels (whole vectors of pixels) give the scalar functor's bits: the
    same pixels as one wide row and as a column of 1-pixel rows (scalar only)."""
    x = _float_specials(rng, dtype, 16 * 997)
    with np.errstate(all="ignore"):
        for fn in (K.rgb_to_hsv, K.hsv_to_rgb):
            wide = fn(x.reshape(1, -1, 3)).reshape(-1, 3)
            narrow = fn(x.reshape(-1, 1, 3)).reshape(-1, 3)
            # bits, with every NaN made the same NaN (its sign and payload are not specified)
            wide, narrow = (np.where(np.isnan(a), dtype(np.nan), a).view(f"u{x.itemsize}") for a in (wide, narrow))
            np.testing.assert_array_equal(wide, narrow, err_msg=fn.__name__)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lab_float_vector_rows_match_scalar(isa, rng, dtype):
    """The float L*a*b* row kernels (vector pow / cbrt) agree with the scalar functor (std::pow /
    std::cbrt) to a few ulp on pixels of moderate values (|v| <= 1000: the rows' domain; blocks
    with other values go to the functor, whose own result there depends on how the compiler
    contracts its cancelling sums), and NaN input gives NaN either way."""
    x = _float_specials(rng, dtype, 16 * 997)
    x[: 16 * 500] = rng.random((16 * 500, 3)).astype(dtype)  # whole blocks of ordinary colors
    with np.errstate(all="ignore"):
        for fn, inp in ((K.rgb_to_lab, x), (K.lab_to_rgb, K.rgb_to_lab(x.reshape(-1, 1, 3)).reshape(-1, 3))):
            wide = fn(inp.reshape(1, -1, 3)).reshape(-1, 3)
            narrow = fn(inp.reshape(-1, 1, 3)).reshape(-1, 3)
            nan_in = np.isnan(inp).any(-1)
            assert np.isnan(wide[nan_in]).all() and np.isnan(narrow[nan_in]).all(), fn.__name__
            moderate = (np.abs(inp) <= 1000).all(-1)  # False for NaN
            w, n, v = wide[moderate].astype(np.float64), narrow[moderate], inp[moderate]
            # a few ulp of 500 f(x) (a* is a difference of cube roots, f ~ cbrt(|input|))
            tol = 4000 * np.finfo(dtype).eps * np.cbrt(1 + np.abs(v).max(-1, keepdims=True)) * (1 + np.abs(n) * 1e-3)
            assert (np.abs(w - n) <= tol).all(), fn.__name__
            # the vector rows took the ordinary blocks (a scalar-only run would be bit-equal)
            if fn is K.rgb_to_lab:
                assert (wide[: 16 * 500] != narrow[: 16 * 500]).any()


def test_hsv_uint8_streamed_rows_equal_plain(isa, rng):
    """uint8 rgb_to_hsv outputs beyond the cache are streamed (AVX-512 VBMI rows: the first step's
    masked stores up to the first 64-byte aligned pixel, then non-temporal stores; AVX2 rows: the
    pixels before the first 16-byte aligned one by a buffered step, then 64-pixel pairs of steps
    by 32-byte non-temporal stores where that pixel's output is 32-byte aligned and 16-byte ones
    elsewhere, the rest by plain steps or a buffered one): forced on
    (stream_bytes=0) for every output offset modulo 64 and widths around the 32- and 64-pixel
    steps (tails of 0-63 pixels after one to four pairs), the bits are those of the plain rows,
    every byte written and none before the output."""
    x = random_array(rng, (2, 300, 3), np.uint8)
    x[0, :5] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [9, 200, 200], [3, 3, 170]]
    try:
        for w in (32, 33, 63, 64, 65, 79, 80, 95, 96, 97, 127, 128, 130, 143, 160, 191, 200, 255, 256, 271, 300):
            xi = np.ascontiguousarray(x[:, :w])
            imkern.set_cpu_params(stream_bytes=None)
            plain = K.rgb_to_hsv(xi)
            imkern.set_cpu_params(stream_bytes=0)
            for off in range(64):
                buf = np.full(2 * w * 3 + off, 0xA5, np.uint8)
                out = buf[off:].reshape(2, w, 3)
                K.rgb_to_hsv(xi, out=out)
                np.testing.assert_array_equal(out, plain, err_msg=f"w={w} off={off}")
                assert (buf[:off] == 0xA5).all(), f"w={w} off={off}: written before the output"
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hsv_float_streamed_rows_equal_plain(isa, rng, dtype):
    """Float HSV outputs beyond the cache are written by non-temporal stores after a scalar head
    that aligns them: forced on (stream_bytes=0) for every output alignment and odd widths, the
    bits are those of the plain rows."""
    x = rng.random((3, 67, 3), dtype=np.float64).astype(dtype)
    x[0, :5] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.2], [0.1, 0.9, 0.9], [0.3, 0.3, 0.7]]
    h = K.rgb_to_hsv(x)
    plain = {}
    try:
        for stream in (None, 0):
            imkern.set_cpu_params(stream_bytes=stream)
            for fn, inp in ((K.rgb_to_hsv, x), (K.hsv_to_rgb, h)):
                for off in range(17):  # every offset of the output modulo 64 bytes (float32)
                    buf = np.empty(3 * 67 * 3 + off, dtype)
                    out = buf[off:].reshape(3, 67, 3)
                    fn(inp, out=out)
                    key = (fn.__name__, off)
                    if stream is None:
                        plain[key] = out.copy()
                    else:
                        np.testing.assert_array_equal(out, plain[key], err_msg=str(key))
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float3_streamed_rows_of_views(isa, rng, dtype):
    """Streamed float 3-channel rows prefetch their input a page ahead, past a row's end only
    where the next row follows it: views whose rows have gaps (a crop, a reversed-rows view, a
    batch with a gap) and contiguous images of rows wider than a page give the bits of the
    contiguous copy with streaming off (YCbCr within an ulp: the streamed head is the functor)."""
    big = rng.random((2, 9, 700, 3), dtype=np.float64).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    views = [big[0, :, 3:650], big[0, ::-1], big[:, 1:, :], big[1], big[:, :, 5:400]]
    try:
        for fn in (K.rgb_to_hsv, K.hsv_to_rgb, K.rgb_to_ycbcr, K.ycbcr_to_rgb):
            for i, v in enumerate(views):
                imkern.set_cpu_params(stream_bytes=None)
                plain = fn(np.ascontiguousarray(v))
                imkern.set_cpu_params(stream_bytes=0)
                if fn in (K.rgb_to_hsv, K.hsv_to_rgb):
                    np.testing.assert_array_equal(fn(v), plain, err_msg=f"{fn.__name__} view {i}")
                else:
                    np.testing.assert_allclose(fn(v), plain, rtol=tol, atol=tol, err_msg=f"{fn.__name__} view {i}")
    finally:
        imkern.reset_cpu_params()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ycbcr_gray_float_streamed_rows(isa, rng, dtype):
    """Float YCbCr and gray outputs beyond the cache are written by non-temporal stores after a
    per-pixel head that aligns them: forced on (stream_bytes=0) for every output alignment and
    odd widths, the results are the plain rows' (within an ulp: the head is the functor)."""
    x = rng.random((3, 67, 3), dtype=np.float64).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    plain = {}
    try:
        for stream in (None, 0):
            imkern.set_cpu_params(stream_bytes=stream)
            for fn in (K.rgb_to_ycbcr, K.ycbcr_to_rgb, K.rgb_to_gray, K.bgr_to_gray):
                shape = x.shape if "ycbcr" in fn.__name__ else x.shape[:-1]
                n = int(np.prod(shape))
                for off in range(17):  # every offset of the output modulo 64 bytes (float32)
                    buf = np.full(n + off, np.nan, dtype)
                    out = buf[off:].reshape(shape)
                    fn(x, out=out)
                    key = (fn.__name__, off)
                    if stream is None:
                        plain[key] = out.copy()
                    else:
                        np.testing.assert_allclose(out, plain[key], rtol=tol, atol=tol, err_msg=str(key))
                        ref = getattr(R, fn.__name__)(x)
                        np.testing.assert_allclose(out, ref.reshape(shape), rtol=0, atol=10 * tol)
    finally:
        imkern.reset_cpu_params()


def test_lab_float32_block_pairs_equal_single_blocks(isa, rng):
    """float32 rgb_to_lab with FMA converts two vector blocks per step where both are ordinary
    colors: the same bits as one block per row (rows one vector wide), including pairs where one
    block is not (values past the polynomial's range, NaN) and rows with an odd block."""
    lanes = {"avx512": 16, "avx2": 8}.get(isa, 4)
    x = rng.random((7, 9 * lanes, 3)).astype(np.float32)
    x[1, 3] = [16.5, 0.2, 0.3]  # (the general vector lanes)
    x[2, lanes + 1] = [np.nan, 0.5, 0.5]  # (the scalar functor)
    x[3, 5 * lanes - 1] = [-2000, 0.1, 0.1]
    x[4, 2 * lanes :] = np.linspace(15.8, 16.0, 7 * lanes * 3, dtype=np.float32).reshape(-1, 3)
    with np.errstate(all="ignore"):
        wide = K.rgb_to_lab(x)
        single = K.rgb_to_lab(x.reshape(-1, lanes, 3)).reshape(x.shape)
        for w in (2 * lanes + 1, 3 * lanes, 5 * lanes - 3):  # (the last w % lanes pixels: the functor)
            v = w // lanes * lanes
            got = K.rgb_to_lab(np.ascontiguousarray(x[:, :w]))[:, :v]
            np.testing.assert_array_equal(got, wide[:, :v], err_msg=f"width {w}")
    np.testing.assert_array_equal(wide, single)
    assert np.isnan(wide[2, lanes + 1]).all()


def test_lab_float32_every_gamma_segment(isa, rng):
    """float32 rgb_to_lab on a dense ramp over [0, 17] (every segment and octave of the vector
    rows' sRGB gamma table, the linear segment, and blocks past 15.9 that take the general pow),
    in order and shuffled, agrees with the float64 reference to float32 precision (errors grow
    as the L*a*b* values do: ~ cbrt(linear) ~ (1 + input)^0.8)."""
    v = np.linspace(0, 17, 3 * 16 * 4096, dtype=np.float32)
    for x in (v, rng.permutation(v)):
        x = x.reshape(1, -1, 3)
        err = np.abs(K.rgb_to_lab(x).astype(np.float64) - R.rgb_to_lab(x.astype(np.float64)))
        assert (err <= 2e-4 * (1 + x.max(-1, keepdims=True)) ** 0.8).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lab_float_equals_skimage(xp, rng, dtype):
    skc = pytest.importorskip("skimage.color")
    data = pytest.importorskip("skimage.data")
    for x in (random_array(rng, (47, 53, 3), dtype, low=0, high=1), (data.astronaut() / 255.0).astype(dtype)):
        x[0, :3] = [[0, 0, 0], [1, 1, 1], [0.01, 0.002, 0.03]]  # black, white, the linear segments
        lab = to_numpy(K.rgb_to_lab(xp.asarray(x)))
        tol = 2e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(lab, skc.rgb2lab(x), rtol=0, atol=tol)
        ref_lab = skc.rgb2lab(x).astype(dtype)
        np.testing.assert_allclose(
            to_numpy(K.lab_to_rgb(xp.asarray(ref_lab))),
            skc.lab2rgb(ref_lab),
            rtol=0,
            atol=1e-5 if dtype == np.float32 else 1e-12,
        )


def test_lab_uint8_photo_equals_opencv(xp):
    """A real photograph both ways, bit for bit (every input: tests/test_color_exhaustive.py)."""
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    rgb = data.astronaut()
    lab = to_numpy(K.rgb_to_lab(xp.asarray(rgb)))
    np.testing.assert_array_equal(lab, cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB))
    np.testing.assert_array_equal(to_numpy(K.lab_to_rgb(xp.asarray(lab))), cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


# ---- uint8 gray rows (csrc/cpu/color/gray.cpp) ------------------------------------------------
# A contiguous image is converted as one span of n h w pixels (chunks placed on the output's
# 64-byte lines, split between threads); other layouts row by row. AVX-512 with VBMI + VNNI: 64
# pixels per block, masked 16-pixel heads and tails; AVX2 (and AVX-512 without them): 32 pixels
# per block, 8-pixel steps, the last one overlapping, the functor under 8 pixels. Outputs beyond
# the cache (or every output with stream_bytes=0) are streamed from the first aligned pixel.
_GRAY_WIDTHS = list(range(1, 72)) + [95, 96, 97, 98, 99, 127, 128, 129, 130, 131, 191, 255, 263, 1021]


def _gray_q15(x, bgr):
    """OpenCV's fixed point, computed here independently of the kernels (and of the reference)."""
    c = x[..., :3].astype(np.uint32)
    r, g, b = (c[..., 2], c[..., 1], c[..., 0]) if bgr else (c[..., 0], c[..., 1], c[..., 2])
    return ((9798 * r + 19235 * g + 3735 * b + (1 << 14)) >> 15).astype(np.uint8)


def _gray_input(rng, shape):
    """Random pixels, the extremes (white, black, the primaries) first and last."""
    x = random_array(rng, shape, np.uint8)
    flat = x.reshape(-1, shape[-1])
    extremes = np.array([[255, 255, 255, 255], [0, 0, 0, 0], [255, 0, 0, 7], [0, 255, 0, 9], [0, 0, 255, 1]], np.uint8)
    k = min(len(flat), len(extremes))
    flat[:k] = extremes[:k, : shape[-1]]
    flat[-k:] = extremes[:k, : shape[-1]]
    return x


def _gray_rows_equal_q15(rng, widths, heights=(1, 3)):
    """Every width and layout (dense: one span; batches; rows apart; negative row strides; every
    output offset modulo 64 for the dense span) against the fixed-point formula, outputs poisoned."""
    for c in (3, 4):
        for fn, bgr in ((K.rgb_to_gray, False), (K.bgr_to_gray, True)):
            for w in widths:
                for h in heights:
                    x = _gray_input(rng, (h, w, c))
                    want = _gray_q15(x, bgr)
                    padded = np.pad(x, ((0, 0), (0, 3), (0, 0)))[:, :w]  # rows apart
                    for view, exp in ((x, want), (x[::-1], want[::-1]), (padded, want)):
                        out = np.full((h, w), 0xA5, np.uint8)
                        fn(view, out=out)
                        np.testing.assert_array_equal(out, exp, err_msg=f"{fn.__name__} c={c} w={w} h={h}")
                    off = (w * 7 + h) % 64  # an output offset modulo the line (all of them over the widths)
                    buf = np.full(h * w + 64, 0x5A, np.uint8)
                    out = buf[off : off + h * w].reshape(h, w)
                    fn(x, out=out)
                    np.testing.assert_array_equal(out, want, err_msg=f"{fn.__name__} c={c} w={w} h={h} off={off}")
                    assert (buf[:off] == 0x5A).all() and (buf[off + h * w :] == 0x5A).all()
                batch = _gray_input(rng, (2, 3, w, c))
                got = fn(batch)
                np.testing.assert_array_equal(got[..., 0], _gray_q15(batch, bgr), err_msg=f"batch c={c} w={w}")


def test_gray_uint8_rows_every_width(isa, rng):
    _gray_rows_equal_q15(rng, _GRAY_WIDTHS)


@pytest.mark.parametrize("stream_bytes", [0, None])
def test_gray_uint8_spans_threads_and_streams(isa, threads, rng, stream_bytes):
    """Dense images of several chunks (16384 pixels each, placed on the output's lines) at every
    output offset modulo 64, streamed (stream_bytes=0) and not, 1 and 3 threads; rows of a
    strided view streamed from their first aligned pixel."""
    try:
        imkern.set_cpu_params(stream_bytes=stream_bytes)
        for c in (3, 4):
            x = _gray_input(rng, (2, 97, 389, c))  # 75466 pixels: 5 chunks and a partial one
            for fn, bgr in ((K.rgb_to_gray, False), (K.bgr_to_gray, True)):
                want = _gray_q15(x, bgr)[..., None]
                for off in (0, 1, 15, 16, 31, 33, 63):
                    buf = np.full(x[..., 0].size + 64, 0x5A, np.uint8)
                    out = buf[off : off + x[..., 0].size].reshape(want.shape)
                    fn(x, out=out)
                    np.testing.assert_array_equal(out, want, err_msg=f"{fn.__name__} c={c} off={off}")
                    assert (buf[:off] == 0x5A).all() and (buf[off + want.size :] == 0x5A).all()
                view = x[:, ::-1, 3:-2]  # rows apart, negative row stride: row by row
                np.testing.assert_array_equal(fn(view), want[:, ::-1, 3:-2], err_msg=f"{fn.__name__} c={c} view")
        if stream_bytes == 0:
            _gray_rows_equal_q15(rng, [1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 96, 127, 128, 129, 200], heights=(2,))
    finally:
        imkern.reset_cpu_params()


@pytest.fixture(scope="module")
def gray_every_color():
    """All 2**24 colors as RGB and as RGBA (alpha varying), with their four expected results."""
    v = np.arange(1 << 24, dtype=np.uint32)
    rgba = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255, (v * 2654435761) >> 24], -1).astype(np.uint8)
    xs = {3: np.ascontiguousarray(rgba[:, :3]), 4: rgba}
    return xs, {bgr: _gray_q15(rgba, bgr) for bgr in (False, True)}


def test_gray_uint8_every_color_every_path(isa, gray_every_color):
    """All 2**24 colors, RGB / BGR and RGBA / BGRA, through the dense span and through rows of
    odd widths (a strided view: the row kernels' heads and tails), bit for bit against the
    fixed-point formula."""
    xs, wants = gray_every_color
    n = (1 << 24) // 1021 * 1021
    for c, x in xs.items():
        for fn, bgr in ((K.rgb_to_gray, False), (K.bgr_to_gray, True)):
            want = wants[bgr]
            np.testing.assert_array_equal(fn(x.reshape(4096, 4096, c)).ravel(), want, err_msg=f"{fn.__name__} c={c}")
            if c == 3:  # rows apart (2 pixels of each skipped)
                rows, exp = x[:n].reshape(-1, 1021, 3)[:, :1019], want[:n].reshape(-1, 1021)[:, :1019]
            else:  # a negative row stride
                rows, exp = x[:n].reshape(-1, 1021, 4)[::-1], want[:n].reshape(-1, 1021)[::-1]
            np.testing.assert_array_equal(fn(rows), exp, err_msg=f"{fn.__name__} c={c} rows")


def test_gray_uint8_rows_without_vbmi_vnni():
    """The AVX-512 build's AVX2 rows (the CPU without VBMI / VNNI: IMKERN_CPU_DISABLE), in a
    fresh process, every width and layout, streamed and not."""
    code = (
        "import numpy as np, imkern, test_color as t\n"
        "for isa in ('avx512', 'avx2'):\n"
        "    imkern.set_cpu_isa(isa)\n"
        "    for s in (0, None):\n"
        "        imkern.set_cpu_params(stream_bytes=s)\n"
        "        t._gray_rows_equal_q15(np.random.default_rng(7), t._GRAY_WIDTHS)\n"
        "print('ok')\n"
    )
    _run_without("avx512vbmi,avx512vnni", code, timeout=600)
