"""One rule for arrays in non-native byte order (issue 9, item 4): every op raises TypeError
naming the argument, from the shared array check (imkern._arrays.array_kind). conv2d and
linear once read a byte-swapped float32 as native (off by ~2e34).

NumPy only: CuPy has no non-native dtypes."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_array
from imkern import color, filters, transform
from imkern.nn import functional as F

# (name, call(image) -> result); each op is tried with the multi-byte dtypes below and checked
# with the first one its native version accepts.
IMAGE_OPS = [
    ("correlate", lambda a: filters.correlate(a, np.ones((3, 3)) / 9)),
    ("convolve", lambda a: filters.convolve(a, np.ones((3, 3)) / 9)),
    ("sep_filter", lambda a: filters.sep_filter(a, [1, 2, 1], [1, 0, -1])),
    ("box", lambda a: filters.box(a, 3)),
    ("gaussian", lambda a: filters.gaussian(a, 1.0)),
    ("median", lambda a: filters.median(a, 3)),
    ("erode", lambda a: filters.erode(a)),
    ("dilate", lambda a: filters.dilate(a)),
    ("opening", lambda a: filters.opening(a)),
    ("morph_gradient", lambda a: filters.morph_gradient(a)),
    ("minimum_filter", lambda a: filters.minimum_filter(a)),
    ("maximum_filter", lambda a: filters.maximum_filter(a)),
    ("bilateral", lambda a: filters.bilateral(a, 5, 0.5, 2.0)),
    ("sobel", lambda a: filters.sobel(a)),
    ("scharr", lambda a: filters.scharr(a)),
    ("prewitt", lambda a: filters.prewitt(a)),
    ("laplacian", lambda a: filters.laplacian(a)),
    ("gradient_magnitude", lambda a: filters.gradient_magnitude(a)),
    ("unsharp_mask", lambda a: filters.unsharp_mask(a, 1.0)),
    ("threshold", lambda a: filters.threshold(a, 0.5, 1.0)),
    ("threshold_otsu", lambda a: filters.threshold_otsu(a)),
    ("threshold_triangle", lambda a: filters.threshold_triangle(a)),
    ("adaptive_threshold", lambda a: filters.adaptive_threshold(a, 1.0)),
    ("canny", lambda a: filters.canny(a, 0.1, 0.3)),
    ("rgb_to_gray", lambda a: color.rgb_to_gray(a)),
    ("rgb_to_bgr", lambda a: color.rgb_to_bgr(a)),
    ("rgb_to_hsv", lambda a: color.rgb_to_hsv(a)),
    ("hsv_to_rgb", lambda a: color.hsv_to_rgb(a)),
    ("rgb_to_ycbcr", lambda a: color.rgb_to_ycbcr(a)),
    ("rgb_to_lab", lambda a: color.rgb_to_lab(a)),
    ("resize", lambda a: transform.resize(a, (5, 7))),
    ("warp_affine", lambda a: transform.warp_affine(a, np.eye(2, 3), (9, 8))),
    ("rotate", lambda a: transform.rotate(a, 30.0)),
    ("crop", lambda a: transform.crop(a, 1, 1, 4, 4)),
    ("pad", lambda a: transform.pad(a, 2)),
    ("flip", lambda a: transform.flip(a)),
    ("rotate90", lambda a: transform.rotate90(a)),
    ("to_tensor", lambda a: transform.to_tensor(a[None])),
]
DTYPES = (np.float32, np.uint16, np.float64)


def _swapped(a):
    return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder in "=<" and np.little_endian else "<"))


def _native_dtype(rng, call):
    for dt in DTYPES:
        a = random_array(rng, (9, 8, 3), dt, low=0, high=1 if np.dtype(dt).kind == "f" else 255)
        try:
            call(a)
        except (TypeError, ValueError):
            continue
        return a
    return None


@pytest.mark.parametrize("name,call", IMAGE_OPS, ids=[n for n, _ in IMAGE_OPS])
def test_image_ops_reject_byte_swapped(rng, name, call):
    a = _native_dtype(rng, call)
    if a is None:
        pytest.skip(f"{name} takes no multi-byte dtype on (9, 8, 3)")
    b = _swapped(a)
    assert not b.dtype.isnative and (b == a).all()
    with pytest.raises(TypeError, match=r"image.*non-native byte order"):
        call(b)


def _nn_cases(rng):
    x = random_array(rng, (2, 3, 6, 6), np.float32)
    w = random_array(rng, (4, 3, 3, 3), np.float32)
    b = random_array(rng, (4,), np.float32)
    xl = random_array(rng, (5, 7), np.float32)
    wl = random_array(rng, (3, 7), np.float32)
    bl = random_array(rng, (3,), np.float32)
    go = random_array(rng, (2, 4, 4, 4), np.float32)
    gl = random_array(rng, (5, 3), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    t = np.array([0, 2, 1, 1, 0])
    return [
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b), (x, w, b), ("x", "weight", "bias")),
        ("conv2d_backward", lambda g, x, w: F.conv2d_backward(g, x, w), (go, x, w), ("grad_output", "x", "weight")),
        ("linear", lambda x, w, b: F.linear(x, w, b), (xl, wl, bl), ("x", "weight", "bias")),
        ("linear_backward", lambda g, x, w: F.linear_backward(g, x, w), (gl, xl, wl), ("grad_output", "x", "weight")),
        ("relu", F.relu, (x,), ("x",)),
        ("gelu", F.gelu, (x,), ("x",)),
        ("softmax", lambda x: F.softmax(x, 1), (x,), ("x",)),
        ("max_pool2d", lambda x: F.max_pool2d(x, 2), (x,), ("x",)),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), (x,), ("x",)),
        ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 1), (x,), ("x",)),
        ("batch_norm2d", lambda x, rm, rv: F.batch_norm2d(x, None, None, rm, rv), (x, rm, rv),
         ("x", "running_mean", "running_var")),
        ("dropout", lambda x: F.dropout(x, 0.5, seed=1), (x,), ("x",)),
        ("cross_entropy", lambda x, t: F.cross_entropy(x, t), (xl[:, :3].copy(), t), ("logits", "target")),
    ]


def test_nn_ops_reject_byte_swapped(rng):
    for name, call, args, names in _nn_cases(rng):
        expected = call(*args)
        for i, arg_name in enumerate(names):
            swapped = list(args)
            swapped[i] = _swapped(args[i])
            with pytest.raises(TypeError, match=rf"{arg_name}: dtype .* non-native byte order"):
                call(*swapped)
        # The error suggests the conversion; it gives the native result.
        fixed = [a.astype(a.dtype.newbyteorder("=")) for a in args]
        r1, r2 = call(*fixed), expected
        for u, v in zip(r1 if isinstance(r1, tuple) else (r1,), r2 if isinstance(r2, tuple) else (r2,)):
            np.testing.assert_array_equal(u, v, err_msg=name)


def test_conv2d_byte_swapped_was_read_as_native(rng):
    """The issue's call: F.conv2d(x.astype('>f4'), w.astype('>f4'))."""
    x = random_array(rng, (1, 2, 5, 5), np.float32)
    w = random_array(rng, (3, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="non-native byte order"):
        F.conv2d(x.astype(">f4"), w.astype(">f4"))


def test_out_byte_swapped_rejected(rng):
    x = random_array(rng, (2, 3, 4, 4), np.float32)
    out = np.empty(x.shape, ">f4")
    with pytest.raises(TypeError, match="out"):
        F.relu(x, out=out)
    img = random_array(rng, (6, 6), np.float32)
    with pytest.raises(TypeError, match="out"):
        filters.box(img, 3, out=np.empty((6, 6), ">f4"))


def test_optimizer_rejects_byte_swapped_parameter(rng):
    from imkern import nn, optim

    p = nn.Parameter(random_array(rng, (4,), np.float32).astype(">f4"))
    p.grad = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="non-native byte order"):
        optim.SGD([p], lr=0.1).step()



def test_imwrite_rejects_byte_swapped(rng, tmp_path):
    pytest.importorskip("PIL")
    from imkern import io

    a = random_array(rng, (5, 6), np.uint16)
    io.imwrite(tmp_path / "a.png", a)
    with pytest.raises(TypeError, match="image: dtype >u2 is in non-native byte order"):
        io.imwrite(tmp_path / "b.png", a.astype(">u2"))
