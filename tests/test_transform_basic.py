"""crop, center_crop, pad, flip, rotate90 against the NumPy reference, OpenCV and torchvision's
conventions; CPU and CUDA (xp fixture), every dtype and layout, views, out=, bad arguments."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_array, to_numpy
from imkern import transform as T
from imkern.reference import transform as R

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(1, 1), (7, 1), (1, 9), (13, 17), (8, 11, 3), (5, 6, 1), (3, 9, 10, 4), (2, 1, 1, 3)]
BORDERS = ["constant", "reflect101", "reflect", "replicate", "wrap"]


def _hw(shape):
    return shape[1:3] if len(shape) == 4 else shape[:2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_crop_center_crop_flip_rotate(xp, rng, dtype, shape):
    x = random_array(rng, shape, dtype)
    before = x.copy()
    H, W = _hw(shape)
    xd = xp.asarray(x)
    for _ in range(3):
        h, w = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
        top, left = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        got = T.crop(xd, top, left, h, w)
        assert type(got) is type(xd) and got.dtype == x.dtype
        np.testing.assert_array_equal(to_numpy(got), R.crop(x, top, left, h, w))
        np.testing.assert_array_equal(to_numpy(T.center_crop(xd, (h, w))), R.center_crop(x, (h, w)))
    for axis in (0, 1, (0, 1), None):
        np.testing.assert_array_equal(to_numpy(T.flip(xd, axis)), R.flip(x, axis))
    for k in (-3, -1, 0, 1, 2, 3, 5):
        got = to_numpy(T.rotate90(xd, k))
        np.testing.assert_array_equal(got, R.rotate90(x, k))
        assert got.flags.c_contiguous
    np.testing.assert_array_equal(x, before)


def test_results_own_their_memory(rng):
    x = random_array(rng, (6, 7, 3), np.uint8)
    for r in (T.crop(x, 0, 0, 6, 7), T.center_crop(x, 3), T.flip(x), T.rotate90(x, 0), T.pad(x, 0)):
        assert not np.shares_memory(r, x)
        assert r.flags.c_contiguous and r.flags.writeable


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("border", BORDERS)
def test_pad_matches_numpy(xp, rng, dtype, shape, border):
    x = random_array(rng, shape, dtype)
    H, W = _hw(shape)
    # widths up to 2.5x the image: the rule applied repeatedly, as in the filters
    for widths in ((0, 0, 0, 0), tuple(int(v) for v in rng.integers(0, 3 * max(H, W) + 2, size=4))):
        got = to_numpy(T.pad(xp.asarray(x), widths, border=border, cval=-3.7 if dtype in (np.float32, np.float64) else 300))
        exp = R.pad(x, widths, border=border, cval=-3.7 if dtype in (np.float32, np.float64) else 300)
        np.testing.assert_array_equal(got, exp, err_msg=f"{widths}")


def test_pad_forms_and_peers(rng):
    x = random_array(rng, (9, 11, 3), np.uint8)
    a = T.pad(x, 2, border="wrap")
    np.testing.assert_array_equal(a, T.pad(x, (2, 2), border="wrap"))
    np.testing.assert_array_equal(a, T.pad(x, (2, 2, 2, 2), border="wrap"))
    np.testing.assert_array_equal(a, T.pad(x, ((2, 2), (2, 2)), border="wrap"))
    np.testing.assert_array_equal(T.pad(x, (1, 2, 3, 4), border="reflect"),
                                  np.pad(x, ((1, 2), (3, 4), (0, 0)), mode="symmetric"))
    np.testing.assert_array_equal(T.pad(x, 1, cval=7.6), np.pad(x, ((1, 1), (1, 1), (0, 0)), constant_values=8))
    np.testing.assert_array_equal(T.pad(x, 1, border="nearest"), T.pad(x, 1, border="replicate"))
    cv2 = pytest.importorskip("cv2")
    codes = {"constant": cv2.BORDER_CONSTANT, "reflect101": cv2.BORDER_REFLECT_101, "reflect": cv2.BORDER_REFLECT,
             "replicate": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP}
    for b, code in codes.items():
        exp = cv2.copyMakeBorder(x, 3, 1, 4, 2, code, value=(5, 5, 5))
        np.testing.assert_array_equal(T.pad(x, (3, 1, 4, 2), border=b, cval=5), exp, err_msg=b)


def test_peers_rotate_flip_center_crop(rng):
    cv2 = pytest.importorskip("cv2")
    x = random_array(rng, (9, 14, 3), np.uint8)
    np.testing.assert_array_equal(T.rotate90(x, 1), cv2.rotate(x, cv2.ROTATE_90_COUNTERCLOCKWISE))
    np.testing.assert_array_equal(T.rotate90(x, -1), cv2.rotate(x, cv2.ROTATE_90_CLOCKWISE))
    np.testing.assert_array_equal(T.rotate90(x, 2), cv2.rotate(x, cv2.ROTATE_180))
    for axis, code in ((0, 0), (1, 1), (None, -1)):
        np.testing.assert_array_equal(T.flip(x, axis), cv2.flip(x, code))


def test_center_crop_equals_torchvision(rng):
    torch = pytest.importorskip("torch")
    tvf = pytest.importorskip("torchvision.transforms.functional")
    x = random_array(rng, (9, 14, 3), np.uint8)
    t = torch.from_numpy(x).permute(2, 0, 1)
    for size in ((4, 5), (9, 1), (8, 13), (1, 1)):
        np.testing.assert_array_equal(T.center_crop(x, size), tvf.center_crop(t, list(size)).permute(1, 2, 0).numpy())


def test_strided_views_and_out(xp, rng):
    base = xp.asarray(random_array(rng, (2, 20, 30, 3), np.float32))
    for v in (base[:, ::-1], base[:, :, ::-2], base[::-1, 3:17, 5:29]):
        vn = to_numpy(v)
        np.testing.assert_array_equal(to_numpy(T.flip(v, 1)), R.flip(vn, 1))
        np.testing.assert_array_equal(to_numpy(T.pad(v, 3, border="reflect101")), R.pad(vn, 3, border="reflect101"))
        np.testing.assert_array_equal(to_numpy(T.rotate90(v, 1)), R.rotate90(vn, 1))
    out = xp.empty((2, 5, 6, 3), np.float32)
    assert T.crop(base, 1, 2, 5, 6, out=out) is out
    np.testing.assert_array_equal(to_numpy(out), to_numpy(base)[:, 1:6, 2:8])
    out = xp.empty((2, 26, 36, 3), np.float32)
    assert T.pad(base, 3, out=out) is out
    with pytest.raises(ValueError, match="out"):
        T.flip(base, out=xp.empty((2, 20, 31, 3), np.float32))
    with pytest.raises(TypeError, match="out"):
        T.rotate90(base, out=xp.empty((2, 30, 20, 3), np.float64))


def test_bad_arguments(rng):
    x = random_array(rng, (6, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="crop"):
        T.crop(x, 0, 0, 7, 8)
    with pytest.raises(ValueError, match="crop"):
        T.crop(x, -1, 0, 2, 2)
    with pytest.raises(ValueError, match="height"):
        T.crop(x, 0, 0, 0, 2)
    with pytest.raises(TypeError, match="top"):
        T.crop(x, 0.5, 0, 2, 2)
    with pytest.raises(ValueError, match="size"):
        T.center_crop(x, (7, 2))
    with pytest.raises(ValueError, match="size"):
        T.center_crop(x, (0, 2))
    with pytest.raises(ValueError, match="pad"):
        T.pad(x, -1)
    with pytest.raises(ValueError, match="pad"):
        T.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="border"):
        T.pad(x, 1, border="mirror-ish")
    with pytest.raises(TypeError, match="cval"):
        T.pad(x, 1, cval="black")
    with pytest.raises(ValueError, match="axis"):
        T.flip(x, 2)
    with pytest.raises(ValueError, match="axis"):
        T.flip(x, (0, 0))
    with pytest.raises(TypeError, match="k"):
        T.rotate90(x, 1.0)
    with pytest.raises(TypeError, match="image"):
        T.flip(x.astype(np.int64))
    with pytest.raises(ValueError, match="image"):
        T.flip(np.zeros((2, 2, 2, 2, 2), np.uint8))
    with pytest.raises(TypeError, match="image"):
        T.crop([[1, 2]], 0, 0, 1, 1)


def test_pad_empty_image():
    x = np.zeros((0, 4, 3), np.uint8)
    assert T.pad(x, 2, cval=9).shape == (4, 8, 3)
    assert (T.pad(x, 2, cval=9) == 9).all()
    with pytest.raises(ValueError, match="border"):
        T.pad(x, 2, border="wrap")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4, 5])
def test_flip_rotate_kernels_every_pixel_size(isa, threads, rng, dtype, channels):
    """The CPU kernels (pshufb row reversal, 16-byte block transposes, tiles of 16-160 pixels)
    against NumPy at sizes around their block and tile edges, batches and negative strides."""
    for h, w in [(1, 1), (1, 37), (37, 1), (16, 16), (17, 33), (64, 64), (65, 130), (131, 67), (290, 333)]:
        for n in (None, 2):
            if n and not channels:
                continue  # (N, H, W) is not an image layout
            shape = ((n,) if n else ()) + (h, w) + ((channels,) if channels else ())
            x = random_array(rng, shape, dtype)
            o = 1 if n else 0
            for v in (x, np.flip(x, o), np.flip(x, o + 1)):
                for k in (1, 2, 3):
                    np.testing.assert_array_equal(T.rotate90(v, k), np.rot90(v, k, axes=(o, o + 1)))
                for axis in (0, 1, None):
                    axes = (o, o + 1) if axis is None else o + axis
                    np.testing.assert_array_equal(T.flip(v, axis), np.flip(v, axes))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 2, 3])
def test_rotate90_square_tiles(isa, threads, rng, dtype, channels):
    """rotate90 with a tiny L2 budget (strip_l2), which turns its width-spanning bands into the
    square L1 tiles (ragged edges, wide and narrow blocks)."""
    import imkern

    imkern.set_cpu_params(strip_l2=1024)
    try:
        for h, w in [(65, 130), (290, 333)]:
            x = random_array(rng, (h, w) + ((channels,) if channels else ()), dtype)
            for v in (x, np.flip(x, 0), np.flip(x, 1)):
                for k in (1, 3):
                    np.testing.assert_array_equal(T.rotate90(v, k), np.rot90(v, k))
    finally:
        imkern.reset_cpu_params()


@pytest.fixture(params=["plain", "streamed"])
def stream(request):
    """The kernels' plain stores, or (stream_bytes=0) the non-temporal row copies they take for
    images past the effective L3."""
    import imkern

    if request.param == "streamed":
        imkern.set_cpu_params(stream_bytes=0)
    yield request.param
    imkern.reset_cpu_params()


@pytest.mark.parametrize("pixel_bytes", range(1, 33))
def test_flip_pad_every_pixel_byte_size(isa, threads, stream, rng, pixel_bytes):
    """flip (the 64- / 32-byte permutes, the 16-byte pshufb steps, the per-pixel tail), pad /
    vertical flip (the vector row copies, streamed or not) and rotate90 (the block transposes,
    6-byte pixels' qword blocks included) for pixels of 1..32 bytes, at widths
    around the vector and line sizes, 1-pixel images, batches, strided and negative-stride
    views; also as uint16 / float32 / float64 pixels of the same byte sizes."""
    views = [lambda a: a, lambda a: np.flip(a, -2), lambda a: np.flip(a, -3), lambda a: a[..., ::2, :, :]]
    for w in (1, 7, 22, 63, 65, 300):
        for shape in ((1, w), (9, w), (2, 3, w)):
            x = random_array(rng, shape + (pixel_bytes,), np.uint8)
            alts = [x]
            for dt in (np.uint16, np.float32, np.float64):
                if pixel_bytes % np.dtype(dt).itemsize == 0:
                    alts.append(random_array(rng, shape + (pixel_bytes // np.dtype(dt).itemsize,), dt))
            for a in alts:
                for view in views:
                    v = view(a)
                    if v.shape[-3] == 0:
                        continue
                    for axis in (0, 1, None):
                        o = v.ndim - 3
                        axes = (o, o + 1) if axis is None else o + axis
                        np.testing.assert_array_equal(T.flip(v, axis), np.flip(v, axes), err_msg=f"{v.shape} {axis}")
                    np.testing.assert_array_equal(T.pad(v, (1, 2, 3, 5), border="reflect101"),
                                                  R.pad(v, (1, 2, 3, 5), border="reflect101"))
                    for k in (1, 3):
                        o = v.ndim - 3
                        np.testing.assert_array_equal(T.rotate90(v, k), np.rot90(v, k, axes=(o, o + 1)))


@pytest.mark.parametrize("pixel_bytes", [1, 2, 3, 4, 6, 8, 12, 16, 24, 32])
def test_flip_output_alignment(isa, threads, stream, rng, pixel_bytes):
    """flip into outputs at every element offset from a 64-byte line and with padded rows (each
    row its own offset): the horizontal reversal's line-aligned vectors (two-source permutes,
    streamed in descending order) and the partial pixels written around them, and the
    vertical flip's aligned row copies, at widths around 4 lines of the row and beyond."""
    for dt in (np.uint8, np.uint16, np.float32, np.float64):
        item = np.dtype(dt).itemsize
        if pixel_bytes % item:
            continue
        c = pixel_bytes // item
        for w in (int(256 // pixel_bytes) + 1, 97, 300):
            x = random_array(rng, (5, w, c), dt)
            for v in (x, x[:, ::-1]):
                for axis in (0, 1, None):
                    exp = np.flip(v, (0, 1) if axis is None else axis)
                    for off in range(0, 64, item * max(1, 7 // item)):
                        for pad_row in (0, 3):  # 3 extra pixels per row: each row at another offset
                            nb = 5 * (w + pad_row) * pixel_bytes
                            buf = np.zeros(nb + 128, np.uint8)
                            base = (-buf.ctypes.data) % 64 + off
                            out = buf[base:base + nb].view(dt).reshape(5, w + pad_row, c)[:, :w]
                            out[...] = 0
                            got = T.flip(v, axis, out=out)
                            assert got is out
                            np.testing.assert_array_equal(out, exp, err_msg=f"{w} {axis} off={off} pad={pad_row}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_pad_edge_chunks(isa, threads, stream, rng, dtype, channels):
    """pad's 16-byte border chunks (two loads, two pshufb, the constant's bytes) against the
    reference for every border rule, pads of 0 to 40 pixels a side, source rows around the 32
    bytes the chunks need, batches and negative-stride views; and the constant rows copied
    from a chunk's first one."""
    cval = -2.5 if np.dtype(dtype).kind == "f" else 77
    pads = [(0, 0, 1, 1), (2, 3, 8, 8), (1, 1, 0, 5), (3, 0, 7, 0), (1, 2, 16, 17), (4, 4, 40, 3), (0, 0, 9, 31)]
    for w in (5, 8, 11, 33, 100):
        for shape in ((6, w), (2, 6, w)):
            if len(shape) == 3 and channels is None:
                continue
            full = shape + ((channels,) if channels else ())
            x = random_array(rng, full, dtype)
            o = x.ndim - (3 if channels else 2)
            for v in (x, np.flip(x, o + 1)):
                for border in BORDERS:
                    for widths in pads:
                        got = T.pad(v, widths, border=border, cval=cval)
                        exp = R.pad(v, widths, border=border, cval=cval)
                        np.testing.assert_array_equal(got, exp, err_msg=f"{v.shape} {border} {widths}")


@pytest.mark.parametrize("dtype,channels", [(np.uint8, None), (np.uint8, 1), (np.uint8, 3), (np.uint8, 4),
                                            (np.uint16, None), (np.uint16, 3), (np.float32, None), (np.float32, 3)])
def test_flip_odd_widths(isa, threads, stream, rng, dtype, channels):
    """The horizontal reversal's wide steps (AVX2 3- and 6-byte pixels: one 32-byte load, a
    lane swap and two pshufb per 30 output bytes; the permutes of the other sizes) and the
    narrower steps and single pixels after them, at widths on both sides of each step's
    size (10 / 5 pixels for uint8 / uint16 RGB), 1-pixel images, batches, strided and
    negative-stride views, outputs with padded rows; every axis, against NumPy."""
    widths = (1, 2, 3, 5, 10, 11, 12, 15, 20, 21, 22, 31, 33, 41, 65, 97, 331, 641)
    for w in widths:
        for shape in ((1, w), (3, w), (2, 4, w)):
            if len(shape) == 3 and channels is None:
                continue
            x = random_array(rng, shape + ((channels,) if channels else ()), dtype)
            o = x.ndim - (3 if channels else 2)
            views = [x, np.flip(x, o + 1), np.flip(x, o), x[..., ::2, :, :] if channels else x[..., ::2, :]]
            if w > 2:  # a column-strided view (pixels 2 apart) and one cut at both ends
                views += [x[..., ::2, :] if channels else x[..., ::2], x[..., 1:-1, :] if channels else x[..., 1:-1]]
            for v in views:
                for axis in (1, 0, None):
                    axes = (o, o + 1) if axis is None else o + axis
                    exp = np.flip(v, axes)
                    np.testing.assert_array_equal(T.flip(v, axis), exp, err_msg=f"{v.shape} {v.strides} {axis}")
                    # into a poisoned output whose rows are padded (each row at another offset)
                    big = np.full(v.shape[:o + 1] + (v.shape[o + 1] + 3,) + v.shape[o + 2:], 7, dtype)
                    out = big[..., :-3, :] if channels else big[..., :-3]
                    assert T.flip(v, axis, out=out) is out
                    np.testing.assert_array_equal(out, exp, err_msg=f"out {v.shape} {axis}")
                    tail = big[..., -3:, :] if channels else big[..., -3:]
                    assert (tail == 7).all()
