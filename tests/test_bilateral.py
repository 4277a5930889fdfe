"""imkern.filters.bilateral against OpenCV (within 1 for uint8, 1e-4 relative for float32) and the
float64 reference."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import random_array, to_numpy
from imkern import filters as F
from imkern.reference import filters as R

BORDERS = ["reflect101", "reflect", "replicate", "constant"]
SHAPES = [(1, 1), (2, 1), (1, 1, 3), (3, 2, 3), (31, 45), (40, 37, 3), (23, 70, 1), (2, 13, 17, 3)]
PARAMS = [(5, 20.0, 3.0), (9, 75.0, 75.0), (1, 10.0, 10.0), (4, 50.0, 2.0), (15, 30.0, 5.0)]


def _data(rng, shape, dtype):
    if np.dtype(dtype) == np.uint8:
        return random_array(rng, shape, dtype)
    return (rng.random(shape) * 100 - 30).astype(np.float32)


def _cv(cv2, x, d, sc, ss, border):
    codes = {"reflect101": cv2.BORDER_REFLECT_101, "reflect": cv2.BORDER_REFLECT,
             "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
    if x.ndim == 4:
        return np.stack([_cv(cv2, im, d, sc, ss, border) for im in x])
    res = cv2.bilateralFilter(np.ascontiguousarray(x), d, sc, ss, borderType=codes[border])
    return res.reshape(x.shape)


def _check(got, expect, dtype, msg=""):
    got = to_numpy(got).astype(np.float64)
    expect = np.asarray(expect, np.float64)
    if np.dtype(dtype) == np.uint8:
        assert np.abs(got - expect).max(initial=0) <= 1, msg
    else:
        err = np.abs(got - expect)
        assert (err <= 1e-4 * np.abs(expect) + 1e-4).all(), f"{msg} max err {err.max()}"


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_matches_opencv(xp, rng, dtype, shape, border):
    cv2 = pytest.importorskip("cv2")
    x = _data(rng, shape, dtype)
    for d, sc, ss in PARAMS:
        got = F.bilateral(xp.asarray(x), d, sc, ss, border=border)
        assert type(got) is type(xp.asarray(x)) and got.dtype == x.dtype and got.shape == x.shape
        _check(got, _cv(cv2, x, d, sc, ss, border), dtype, f"d={d} sc={sc} ss={ss}")


@pytest.mark.parametrize("name", ["camera", "astronaut", "coins"])
def test_photographs_match_opencv(xp, name):
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = np.ascontiguousarray(getattr(data, name)())
    for d, sc, ss in ((9, 75.0, 75.0), (5, 30.0, 10.0)):
        _check(F.bilateral(xp.asarray(img), d, sc, ss), cv2.bilateralFilter(img, d, sc, ss), np.uint8, name)
        f = img.astype(np.float32) / 255
        _check(F.bilateral(xp.asarray(f), d, sc / 255, ss), cv2.bilateralFilter(f, d, sc / 255, ss), np.float32,
               name)


def test_matches_reference(xp, rng):
    # float32 against the exact float64 definition: the weights are exact up to float32
    # rounding and the exp2 polynomial (relative 2e-7)
    x = (rng.random((21, 26, 3)) * 10).astype(np.float32)
    for d, sc, ss in PARAMS:
        got = to_numpy(F.bilateral(xp.asarray(x), d, sc, ss))
        np.testing.assert_allclose(got, R.bilateral(x, d, sc, ss), rtol=1e-5, atol=1e-5)
    u = random_array(rng, (19, 23), np.uint8)
    assert np.abs(to_numpy(F.bilateral(xp.asarray(u), 7, 40.0, 4.0)).astype(int)
                  - R.bilateral(u, 7, 40.0, 4.0).astype(int)).max() <= 1


@pytest.mark.parametrize("channels", [1, 3])
def test_float_tiny_sigma_color(xp, rng, channels):
    # sigma_color far below any color distance: only equal neighbors count (weight = their
    # space weight), never NaN from 0 * inf
    shape = (13, 16, channels) if channels == 3 else (13, 16)
    x = rng.integers(0, 3, shape).astype(np.float32) * 0.5
    for sc in (1e-6, 1e-30):
        got = to_numpy(F.bilateral(xp.asarray(x), 5, sc, 2.0))
        np.testing.assert_allclose(got, R.bilateral(x, 5, sc, 2.0), rtol=1e-6, atol=1e-6)
        assert np.isfinite(got).all()


def test_flat_float_image_unchanged(xp):
    x = np.full((9, 10, 3), 0.25, np.float32)
    np.testing.assert_array_equal(to_numpy(F.bilateral(xp.asarray(x), 5, 1.0, 1.0)), x)


def test_nan_propagates(rng):
    x = (rng.random((15, 17)) * 10).astype(np.float32)
    x[7, 8] = np.nan
    got = F.bilateral(x, 5, 5.0, 3.0)
    assert np.isnan(got[7, 8])
    assert np.isnan(got[6, 8]) and np.isnan(got[7, 10])
    assert np.isfinite(got[0, 0]) and np.isfinite(got[14, 16])


# ---- layouts, views, out= -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_strided_and_negative_views(rng, dtype):
    base = _data(rng, (31, 36, 3), dtype)
    for v in (base[::-1], base[:, ::-1], base[::2, ::3], np.asfortranarray(base), base[..., ::-1]):
        before = v.copy()
        np.testing.assert_array_equal(F.bilateral(v, 5, 30.0, 3.0), F.bilateral(np.ascontiguousarray(v), 5, 30.0, 3.0))
        np.testing.assert_array_equal(v, before)


def test_batch_equals_per_image(rng):
    x = _data(rng, (3, 17, 19, 3), np.float32)
    x[1] *= 5  # each image uses its own value range
    got = F.bilateral(x, 7, 20.0, 4.0)
    for i in range(3):
        np.testing.assert_array_equal(got[i], F.bilateral(x[i], 7, 20.0, 4.0))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_out(xp, rng, dtype):
    x = xp.asarray(_data(rng, (19, 22, 3), dtype))
    expect = to_numpy(F.bilateral(x, 5, 25.0, 3.0))
    out = xp.asarray(_data(rng, x.shape, dtype))
    assert F.bilateral(x, 5, 25.0, 3.0, out=out) is out
    np.testing.assert_array_equal(to_numpy(out), expect)
    y = x.copy()
    F.bilateral(y, 5, 25.0, 3.0, out=y)
    np.testing.assert_array_equal(to_numpy(y), expect)


def test_zero_size():
    assert F.bilateral(np.zeros((0, 5, 3), np.uint8), 5, 1.0, 1.0).shape == (0, 5, 3)


def test_bad_arguments():
    x = np.zeros((8, 8), np.uint8)
    for d in (0, -3):
        with pytest.raises(ValueError, match="d"):
            F.bilateral(x, d, 10.0, 10.0)
    with pytest.raises(TypeError, match="d"):
        F.bilateral(x, 5.5, 10.0, 10.0)
    for s in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma_color"):
            F.bilateral(x, 5, s, 10.0)
        with pytest.raises(ValueError, match="sigma_space"):
            F.bilateral(x, 5, 10.0, s)
    with pytest.raises(TypeError, match="sigma_color"):
        F.bilateral(x, 5, "a", 10.0)
    for dt in (np.uint16, np.float64, np.int32):
        with pytest.raises(TypeError, match="image"):
            F.bilateral(x.astype(dt), 5, 10.0, 10.0)
    with pytest.raises(ValueError, match="channels"):
        F.bilateral(np.zeros((8, 8, 4), np.uint8), 5, 10.0, 10.0)
    with pytest.raises(ValueError, match="border"):
        F.bilateral(x, 5, 10.0, 10.0, border="wrap")
    with pytest.raises(ValueError, match="border"):
        F.bilateral(x, 5, 10.0, 10.0, border="nope")
    with pytest.raises(TypeError, match="out"):
        F.bilateral(x, 5, 10.0, 10.0, out=np.zeros((8, 8), np.float32))


# ---- ISA levels and threads ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_every_isa_level(rng, isa, dtype):
    cv2 = pytest.importorskip("cv2")
    for shape in ((29, 75, 3), (33, 41)):
        x = _data(rng, shape, dtype)
        _check(F.bilateral(x, 9, 40.0, 5.0), cv2.bilateralFilter(x, 9, 40.0, 5.0), dtype, isa)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_every_window_size_and_isa(rng, isa, dtype):
    # the weight rows are made a few forward offsets per pass (2 at AVX2 and baseline, 4 at
    # AVX-512; the last pass of each window row takes the 1 to 3 left): every window size, odd
    # widths and 1-pixel images, gray and RGB, at each ISA level
    cv2 = pytest.importorskip("cv2")
    for shape in ((21, 37, 3), (18, 29), (1, 1), (1, 1, 3), (2, 5, 3), (9, 1)):
        x = _data(rng, shape, dtype)
        for d in range(1, 18):
            _check(F.bilateral(x, d, 30.0, 4.0), _cv(cv2, x, d, 30.0, 4.0, "reflect101"), dtype, f"{isa} {shape} d={d}")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_views_every_isa(rng, isa, dtype):
    base = _data(rng, (27, 41, 3), dtype)
    for v in (base[::-1, ::-1], base[::2, ::3], base[..., ::-1], base[:, 3:40, 1]):
        np.testing.assert_array_equal(F.bilateral(v, 9, 40.0, 5.0), F.bilateral(np.ascontiguousarray(v), 9, 40.0, 5.0))


@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_weight_exponent_bound(rng, isa, channels):
    # uint8: exp2 drops its clamp of the exponent at -125 (log2 units) when no pixel pair's can go
    # below it (sigma_color large enough for the window). Just above and below that bound, and far
    # below, on images with the largest color distances (a 0 / 255 checkerboard, noise): a weight
    # made without the clamp it needed would be 2^(huge) instead of ~0.
    cv2 = pytest.importorskip("cv2")
    shape = (23, 31, 3) if channels == 3 else (23, 31)
    yy, xx = np.indices(shape[:2])
    board = np.where((yy + xx) % 2 == 0, 0, 255).astype(np.uint8)
    if channels == 3:
        board = np.repeat(board[..., None], 3, axis=-1)
    noise = random_array(rng, shape, np.uint8)
    d, ss, t = 9, 3.0, 255.0 * channels
    s_min = -0.5 * 16 / ss**2 * np.log2(np.e)  # the farthest offset (i^2 + j^2 = 16 at d = 9)
    for target in (-100.0, -124.5, -125.5, -130.0, -400.0):
        sc = float(np.sqrt(0.5 * t * t * np.log2(np.e) / (s_min - target)))
        for x in (board, noise):
            got = F.bilateral(x, d, sc, ss)
            _check(got, cv2.bilateralFilter(x, d, sc, ss), np.uint8, f"{isa} target={target}")
            assert np.abs(got.astype(int) - R.bilateral(x, d, sc, ss).astype(int)).max() <= 1


@pytest.mark.parametrize("dtype,d,sc,ss", [(np.float32, 7, 20.0, 4.0), (np.uint8, 9, 75.0, 75.0)])
def test_threads_do_not_change_results(rng, threads, dtype, d, sc, ss):
    x = _data(rng, (300, 257, 3), dtype)
    before = imkern.get_num_threads()
    ref = F.bilateral(x, d, sc, ss)
    imkern.set_num_threads(1)
    try:
        np.testing.assert_array_equal(F.bilateral(x, d, sc, ss), ref)
    finally:
        imkern.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_column_strips(rng, isa, dtype):
    # wide images and a large window: the kernel sweeps several column strips (sized to the L2)
    cv2 = pytest.importorskip("cv2")
    x = _data(rng, (23, 1500, 3), dtype)
    for border in BORDERS:
        _check(F.bilateral(x, 31, 40.0, 9.0, border=border), _cv(cv2, x, 31, 40.0, 9.0, border), dtype, border)
    g = _data(rng, (19, 1700), dtype)
    _check(F.bilateral(g, 9, 30.0, 4.0), cv2.bilateralFilter(g, 9, 30.0, 4.0), dtype, "gray")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_lane_runs_every_isa(rng, isa, dtype):
    # each strip is cut into one run of ceil(width / lanes) pixels per vector lane, transposed in
    # lanes x lanes blocks: widths around 1, 2 and 16 vectors of runs (4, 8 and 16 lanes), runs
    # shorter and longer than a block, lanes left empty; against OpenCV, and bit for bit across
    # thread counts and strips
    cv2 = pytest.importorskip("cv2")
    threads = imkern.get_num_threads()
    try:
        for w in (3, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 256, 257, 271, 529):
            for shape in ((6, w, 3), (5, w)):
                x = _data(rng, shape, dtype)
                for d in (3, 9):
                    imkern.set_num_threads(1)
                    ref = F.bilateral(x, d, 30.0, 4.0)
                    _check(ref, cv2.bilateralFilter(x, d, 30.0, 4.0), dtype, f"{isa} {shape} d={d}")
                    imkern.set_num_threads(3)
                    np.testing.assert_array_equal(F.bilateral(x, d, 30.0, 4.0), ref)
                    imkern.set_cpu_params(strip_l2=1024)  # strips of 64 pixels
                    try:
                        np.testing.assert_array_equal(F.bilateral(x, d, 30.0, 4.0), ref)
                    finally:
                        imkern.set_cpu_params(strip_l2=None)
                    np.testing.assert_array_equal(F.bilateral(x[:, ::-1], d, 30.0, 4.0)[:, ::-1],
                                                  F.bilateral(np.ascontiguousarray(x[:, ::-1]), d, 30.0, 4.0)[:, ::-1])
    finally:
        imkern.set_num_threads(threads)


_GATHER_CHILD = """
import sys
import numpy as np
import imkern
from imkern import filters as F
cases = np.load(sys.argv[1], allow_pickle=True)["cases"]
out = []
for x, d, sc, ss in cases:
    imkern.set_num_threads(1)
    r = F.bilateral(x, d, sc, ss)
    imkern.set_num_threads(3)
    np.testing.assert_array_equal(F.bilateral(x, d, sc, ss), r)
    imkern.set_cpu_params(strip_l2=1024)
    np.testing.assert_array_equal(F.bilateral(x, d, sc, ss), r)
    imkern.set_cpu_params(strip_l2=None)
    np.testing.assert_array_equal(F.bilateral(x[::-1, ::-1], d, sc, ss),
                                  F.bilateral(np.ascontiguousarray(x[::-1, ::-1]), d, sc, ss))
    out.append(r)
np.savez(sys.argv[2], *out)
"""


def test_uint8_rgb_gather_tables_every_isa(rng, isa, tmp_path):
    # uint8 RGB at AVX2 makes half of the pair weights by gathers from tables (one per distinct
    # space term) at the color distances of packed rows (where they pay; IMKERN_BILATERAL_GATHER,
    # read once per process, forces it: so each mode runs in a child process): the same bits as
    # the polynomial, for every window size (the passes of 1 to 4 offsets), exponents that need
    # exp2's clamp and not, odd widths and 1-pixel images, strips, threads and views; against
    # OpenCV (other ISAs ignore it). The packed distances by VNNI where the CPU has it (AVX-VNNI
    # at AVX2, AVX512_VNNI at AVX-512) and without (IMKERN_CPU_DISABLE hides them): the same bits.
    import os
    import subprocess
    import sys

    cv2 = pytest.importorskip("cv2")
    cases = []
    for shape in ((1, 1, 3), (2, 5, 3), (21, 37, 3), (6, 257, 3)):
        x = random_array(rng, shape, np.uint8)
        for d, sc, ss in ((1, 10.0, 10.0), (3, 30.0, 4.0), (5, 20.0, 3.0), (9, 75.0, 75.0), (9, 5.0, 3.0),
                          (12, 200.0, 6.0), (17, 30.0, 4.0)):
            cases.append((x, d, sc, ss))
    src = tmp_path / "cases.npz"
    arr = np.empty(len(cases), dtype=object)
    arr[:] = cases
    np.savez(src, cases=arr)
    got = {}
    for mode in ("0", "1", "1-novnni", "0-novnni"):
        env = dict(os.environ, IMKERN_CPU_ISA=isa, IMKERN_BILATERAL_GATHER=mode[0])
        if mode.endswith("novnni"):
            env["IMKERN_CPU_DISABLE"] = "avxvnni,avx512vnni"
        else:
            env.pop("IMKERN_CPU_DISABLE", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(imkern.__file__)),
                                                       env.get("PYTHONPATH")) if p)
        res = tmp_path / f"out{mode}.npz"
        proc = subprocess.run([sys.executable, "-c", _GATHER_CHILD, str(src), str(res)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with np.load(res) as z:
            got[mode] = [z[f"arr_{i}"] for i in range(len(cases))]
    for i, (x, d, sc, ss) in enumerate(cases):
        msg = f"{isa} {x.shape} d={d} sc={sc}"
        for mode in ("1", "1-novnni", "0-novnni"):
            np.testing.assert_array_equal(got[mode][i], got["0"][i], err_msg=f"{msg} {mode}")
        _check(got["0"][i], cv2.bilateralFilter(x, d, sc, ss), np.uint8, msg)


def test_photographs_full_hd_within_one(xp):
    # the benchmark's case on real content: within 1 of OpenCV, and rarely off at all
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    for name in ("astronaut", "coffee", "chelsea"):
        img = cv2.resize(np.ascontiguousarray(getattr(data, name)()), (1920, 1080), interpolation=cv2.INTER_CUBIC)
        got = to_numpy(F.bilateral(xp.asarray(img), 9, 75.0, 75.0)).astype(int)
        diff = np.abs(got - cv2.bilateralFilter(img, 9, 75.0, 75.0).astype(int))
        assert diff.max() <= 1 and diff.mean() < 1e-3, (name, diff.max(), diff.mean())


# ---- float32 gray: forward weights made inside the pixel loop (AVX-512) ---------------------------
# At AVX-512 a float32 one-channel image makes the weights of the window rows below each pixel in
# its pixel loop (two partial sums per pixel), and those of the columns just outside the loop (the
# next rows read them) in a separate pass; RGB, uint8 and the other ISA levels keep the plain
# loop. Widths around the vector length (the loop's last vector and the margins), 1-pixel and
# one-row images, every window size, border and ISA, against the float64 reference at the
# tolerance test_matches_reference gives float32.
GRAY_SHAPES = [(1, 1), (1, 17), (2, 16), (13, 15), (9, 31), (17, 33), (6, 47), (5, 64), (11, 65), (23, 1)]


@pytest.mark.parametrize("border", BORDERS)
def test_float_gray_every_isa_matches_reference(rng, isa, border):
    for shape in GRAY_SHAPES:
        x = (rng.random(shape) * 10).astype(np.float32)
        for d in (1, 3, 5, 7, 9, 15):
            got = F.bilateral(x, d, 3.0, d / 2, border=border)
            np.testing.assert_allclose(
                got, R.bilateral(x, d, 3.0, d / 2, border=border), rtol=1e-5, atol=1e-5, err_msg=f"{isa} {shape} d={d}"
            )


def test_float_gray_paths_agree_across_isas(rng):
    # the fused loop (AVX-512) against the plain one (AVX2, baseline): the same weights, the sums in
    # another order; and RGB / uint8 (the plain loop everywhere) equal across AVX-512 and AVX2
    before = imkern.get_cpu_isa()
    x = (rng.random((37, 83)) * 50 - 10).astype(np.float32)
    rgb = _data(rng, (19, 45, 3), np.float32)
    u8 = _data(rng, (21, 50), np.uint8)
    res = {}
    try:
        for level in ("avx512", "avx2", "baseline"):
            if imkern.set_cpu_isa(level) != level:
                continue
            res[level] = [F.bilateral(x, d, 8.0, 3.0) for d in (3, 9, 13)]
            res[level] += [F.bilateral(rgb, 9, 30.0, 4.0), F.bilateral(u8, 9, 30.0, 4.0)]
    finally:
        imkern.set_cpu_isa(before)
    levels = list(res)
    for level in levels[1:]:
        for a, b in zip(res[levels[0]][:3], res[level][:3]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=level)
    if "avx512" in res and "avx2" in res:
        for a, b in zip(res["avx512"][3:], res["avx2"][3:]):
            assert np.abs(a.astype(np.float64) - b).max() <= (1 if a.dtype == np.uint8 else 1e-5)


def test_float_gray_views_strips_threads(rng, isa):
    # results independent of the view, the column strips (the loop's weights and the margins' meet at
    # each strip's edges) and the threads, bit for bit
    base = (rng.random((41, 300)) * 20).astype(np.float32)
    views = (base[::-1], base[:, ::-1], base[::-1, ::-1], base[::2, ::3], base[:, 5:222], np.asfortranarray(base))
    for v in views:
        before = v.copy()
        np.testing.assert_array_equal(F.bilateral(v, 9, 4.0, 3.0), F.bilateral(np.ascontiguousarray(v), 9, 4.0, 3.0))
        np.testing.assert_array_equal(v, before)
    ref = F.bilateral(base, 11, 4.0, 3.0, border="constant")
    params = imkern.get_cpu_params()
    threads = imkern.get_num_threads()
    try:
        imkern.set_cpu_params(strip_l2=4096)  # strips of 64 pixels
        np.testing.assert_array_equal(F.bilateral(base, 11, 4.0, 3.0, border="constant"), ref)
        imkern.reset_cpu_params()
        imkern.set_num_threads(3)
        np.testing.assert_array_equal(F.bilateral(base, 11, 4.0, 3.0, border="constant"), ref)
    finally:
        imkern.reset_cpu_params()
        imkern.set_num_threads(threads)
    assert imkern.get_cpu_params() == params
