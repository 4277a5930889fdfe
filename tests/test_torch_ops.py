"""imkern.torch beyond the first ops (tests/test_torch.py): every other public imkern op as a
torch.library operator. For each: the forward equals the NumPy imkern function bit for bit,
``torch.library.opcheck`` passes (schema, fake kernel, autograd registration, AOT dispatch) on
several dtypes and layouts, and the differentiable ones pass ``gradcheck`` in float64 (the
backward formulas are the exact adjoints). Skipped without PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import imkern  # noqa: E402
import imkern.torch as itorch  # noqa: E402
from conftest import random_array  # noqa: E402

F = imkern.filters
BORDERS = ["reflect101", "reflect", "replicate", "constant", "wrap"]
FLOATS = [torch.float32, torch.float64]
_NP = {torch.uint8: np.uint8, torch.uint16: np.uint16, torch.float32: np.float32, torch.float64: np.float64}


def _t(rng, shape, dtype=torch.float64, grad=False):
    t = torch.from_numpy(random_array(rng, shape, _NP[dtype]))
    return t.requires_grad_(grad) if dtype.is_floating_point else t


def _eq(got, want):
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            _eq(g, w)
        return
    np.testing.assert_array_equal(got.detach().numpy(), np.asarray(want))


def _opcheck(name, *args):
    torch.library.opcheck(getattr(torch.ops.imkern, name).default, args)


def _gradcheck(fn, *inputs):
    assert torch.autograd.gradcheck(fn, inputs)


# ---- every op: (name, args builder, NumPy imkern call, itorch call) -------------------------------
# args(rng, dtype, grad) -> the operator's positional arguments; np_fn(a) / th_fn(t) compute the
# same result through imkern on a NumPy array and through imkern.torch on a tensor.
def _img(shape):
    return lambda rng, dt, grad: (_t(rng, shape, dt, grad),)


FILTER_CASES = {
    "box": (
        _img((7, 9, 2)),
        (5, 3, True, "reflect", 0.0),
        lambda a: F.box(a, (5, 3), border="reflect"),
        lambda t: itorch.box(t, (5, 3), border="reflect"),
    ),
    "scharr": (
        _img((6, 7)),
        (0, 1, 0.5, 1.0, "wrap", 0.0),
        lambda a: F.scharr(a, 0, 1, scale=0.5, delta=1.0, border="wrap"),
        lambda t: itorch.scharr(t, 0, 1, scale=0.5, delta=1.0, border="wrap"),
    ),
    "prewitt": (
        _img((2, 5, 6, 1)),
        (1, 0, 2.0, 0.0, "constant", 0.5),
        lambda a: F.prewitt(a, 1, 0, scale=2.0, border="constant", cval=0.5),
        lambda t: itorch.prewitt(t, 1, 0, scale=2.0, border="constant", cval=0.5),
    ),
    "laplacian": (
        _img((7, 6, 3)),
        (3, 1.5, 0.0, "reflect101", 0.0),
        lambda a: F.laplacian(a, ksize=3, scale=1.5),
        lambda t: itorch.laplacian(t, ksize=3, scale=1.5),
    ),
    "gradient": (
        _img((6, 8)),
        (5, "replicate", 0.0),
        lambda a: F.gradient(a, ksize=5, border="replicate"),
        lambda t: itorch.gradient(t, ksize=5, border="replicate"),
    ),
    "gradient_magnitude": (
        _img((7, 6, 2)),
        (3, True, "reflect", 0.0),
        lambda a: F.gradient_magnitude(a, border="reflect"),
        lambda t: itorch.gradient_magnitude(t, border="reflect"),
    ),
    "unsharp_mask": (
        _img((8, 7)),
        (1.0, 0.7, 1.5, 0.0, 0, 0, 4.0, "reflect101", 0.0),
        lambda a: F.unsharp_mask(a, (1.0, 0.7), 1.5),
        lambda t: itorch.unsharp_mask(t, (1.0, 0.7), 1.5),
    ),
    "median": (_img((7, 8, 3)), (3, "replicate", 0.0), lambda a: F.median(a, 3), lambda t: itorch.median(t, 3)),
    "minimum_filter": (
        _img((7, 8)),
        (3, 2, "reflect", 0.0),
        lambda a: F.minimum_filter(a, (3, 2)),
        lambda t: itorch.minimum_filter(t, (3, 2)),
    ),
    "maximum_filter": (
        _img((2, 5, 8, 1)),
        (2, 3, "constant", 0.25),
        lambda a: F.maximum_filter(a, (2, 3), border="constant", cval=0.25),
        lambda t: itorch.maximum_filter(t, (2, 3), border="constant", cval=0.25),
    ),
    "threshold": (
        _img((6, 7, 2)),
        (0.3, 0.9, "tozero"),
        lambda a: F.threshold(a, 0.3, 0.9, "tozero"),
        lambda t: itorch.threshold(t, 0.3, 0.9, "tozero"),
    ),
}
FP = torch.as_tensor(F.footprint("cross", 3))
for _m in ("erode", "dilate", "opening", "closing", "morph_gradient", "tophat", "blackhat"):
    FILTER_CASES[_m] = (
        _img((7, 9, 2)), (FP, 1, None, 0.0),
        (lambda m: lambda a: getattr(F, m)(a, F.footprint("cross", 3)))(_m),
        (lambda m: lambda t: getattr(itorch, m)(t, F.footprint("cross", 3)))(_m),
    )  # fmt: skip

COLOR_CASES = {
    "rgb_to_gray": (7, 5, 3), "bgr_to_gray": (2, 4, 5, 4), "gray_to_rgb": (6, 5), "rgb_to_bgr": (5, 4, 3),
    "bgr_to_rgb": (2, 3, 4, 3), "rgb_to_ycbcr": (5, 6, 3), "ycbcr_to_rgb": (2, 4, 3, 3), "rgb_to_hsv": (5, 4, 3),
    "hsv_to_rgb": (4, 5, 3), "rgb_to_lab": (5, 4, 3), "lab_to_rgb": (4, 3, 3),
}  # fmt: skip
COLOR_GRAD = ["rgb_to_gray", "bgr_to_gray", "gray_to_rgb", "rgb_to_bgr", "bgr_to_rgb", "rgb_to_ycbcr", "ycbcr_to_rgb"]


def _dtypes_for(name):
    if name in ("rgb_to_hsv", "hsv_to_rgb", "rgb_to_lab", "lab_to_rgb"):
        return [torch.uint8, torch.float32]
    if name in (
        "gradient",
        "gradient_magnitude",
        "scharr",
        "prewitt",
        "laplacian",
        "box",
        "median",
        "threshold",
        "unsharp_mask",
        "minimum_filter",
    ):
        return [torch.uint8, torch.uint16, torch.float32, torch.float64]
    return [torch.uint8, torch.float32, torch.float64]


# ---- forward values equal the NumPy imkern functions ---------------------------------------------
@pytest.mark.parametrize("name", sorted(FILTER_CASES))
def test_filter_forward_equals_imkern(rng, name):
    build, _, np_fn, th_fn = FILTER_CASES[name]
    for dt in _dtypes_for(name):
        (x,) = build(rng, dt, False)
        _eq(th_fn(x), np_fn(x.numpy()))


@pytest.mark.parametrize("name", sorted(COLOR_CASES))
def test_color_forward_equals_imkern(rng, name):
    for dt in _dtypes_for(name):
        x = _t(rng, COLOR_CASES[name], dt)
        if name in ("lab_to_rgb",) and dt.is_floating_point:
            x = x * torch.tensor([100.0, 80.0, 80.0], dtype=dt) - torch.tensor([0.0, 40.0, 40.0], dtype=dt)
        _eq(getattr(itorch, name)(x), getattr(imkern.color, name)(x.numpy()))
    x = _t(rng, (2, 3, 5, 4), torch.float32)
    _eq(itorch.rgba_to_rgb(x), imkern.color.rgba_to_rgb(x.numpy()))
    _eq(
        itorch.rgba_to_rgb(x, background=(0.2, 0.5, 1.0)),
        imkern.color.rgba_to_rgb(x.numpy(), background=(0.2, 0.5, 1.0)),
    )


def test_other_filters_forward(rng):
    x = _t(rng, (9, 8, 3), torch.float32)
    ky, kx = random_array(rng, (3,), np.float64), random_array(rng, (4,), np.float64)
    _eq(itorch.sep_filter(x, ky, kx, border="wrap"), F.sep_filter(x.numpy(), ky, kx, border="wrap"))
    k = random_array(rng, (2, 3), np.float64)
    _eq(itorch.convolve(x, k, border="reflect"), F.convolve(x.numpy(), k, border="reflect"))
    u8 = _t(rng, (12, 13), torch.uint8)
    _eq(itorch.bilateral(u8, 5, 30.0, 2.0), F.bilateral(u8.numpy(), 5, 30.0, 2.0))
    assert float(itorch.threshold_otsu(u8)) == F.threshold_otsu(u8.numpy())
    assert float(itorch.threshold_triangle(u8)) == F.threshold_triangle(u8.numpy())
    _eq(
        itorch.adaptive_threshold(u8, 255, "gaussian", 5, 2.0),
        F.adaptive_threshold(u8.numpy(), 255, "gaussian", 5, 2.0),
    )
    _eq(itorch.canny(u8, 40, 90, l2gradient=True), F.canny(u8.numpy(), 40, 90, l2gradient=True))
    for kind in ("binary", "binary_inv", "trunc", "tozero", "tozero_inv"):
        _eq(itorch.threshold(x, 0.4, 2.0, kind), F.threshold(x.numpy(), 0.4, 2.0, kind))


def test_transform_forward_equals_imkern(rng):
    T = imkern.transform
    for dt in (torch.uint8, torch.float32):
        x = _t(rng, (2, 7, 9, 3), dt)
        a = x.numpy()
        _eq(itorch.crop(x, 1, 2, 4, 5), T.crop(a, 1, 2, 4, 5))
        _eq(itorch.center_crop(x, (4, 6)), T.center_crop(a, (4, 6)))
        _eq(itorch.pad(x, (1, 2, 3, 0), border="reflect"), T.pad(a, (1, 2, 3, 0), border="reflect"))
        _eq(itorch.flip(x, (0, 1)), T.flip(a, (0, 1)))
        _eq(itorch.rotate90(x, 3), T.rotate90(a, 3))
        _eq(itorch.rotate(x, 17.0, border="replicate"), T.rotate(a, 17.0, border="replicate"))
        m = np.array([[0.9, 0.1, 1.0], [-0.2, 1.1, 0.5]])
        _eq(itorch.warp_affine(x, m, (5, 11)), T.warp_affine(a, m, (5, 11)))
        p = np.array([[1.0, 0.1, 0.5], [0.05, 0.9, 1.0], [0.01, 0.002, 1.0]])
        _eq(
            itorch.warp_perspective(x, p, (8, 6), interpolation="nearest"),
            T.warp_perspective(a, p, (8, 6), interpolation="nearest"),
        )
        kw = dict(mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25), crop=(1, 1, 5, 6), flip=True)
        t = itorch.to_tensor(x, **kw)
        _eq(t, T.to_tensor(a, **kw))
        _eq(
            itorch.from_tensor(t, mean=kw["mean"], std=kw["std"]),
            T.from_tensor(t.numpy(), mean=kw["mean"], std=kw["std"]),
        )


def test_nn_forward_equal_torch(rng):
    tF = torch.nn.functional
    x = _t(rng, (3, 4, 5, 6), torch.float64) * 3
    for ours, theirs in [
        (itorch.relu, tF.relu),
        (itorch.sigmoid, torch.sigmoid),
        (itorch.tanh, torch.tanh),
        (itorch.gelu, tF.gelu),
        (lambda t: itorch.leaky_relu(t, 0.2), lambda t: tF.leaky_relu(t, 0.2)),
        (lambda t: itorch.softmax(t, 1), lambda t: torch.softmax(t, 1)),
        (lambda t: itorch.log_softmax(t, -1), lambda t: torch.log_softmax(t, -1)),
    ]:
        torch.testing.assert_close(ours(x), theirs(x))
    logits = _t(rng, (6, 5, 3), torch.float64)
    target = torch.from_numpy(rng.integers(0, 5, (6, 3)))
    target[0, 0] = -100
    for red in ("mean", "sum", "none"):
        torch.testing.assert_close(
            itorch.cross_entropy(logits, target, reduction=red, label_smoothing=0.1),
            tF.cross_entropy(logits, target, reduction=red, label_smoothing=0.1),
        )
    w, b = _t(rng, (4,)), _t(rng, (4,))
    for training in (True, False):
        rm, rv = _t(rng, (4,)), _t(rng, (4,)).abs() + 0.5
        rm2, rv2 = rm.clone(), rv.clone()
        torch.testing.assert_close(
            itorch.batch_norm(x, rm, rv, w, b, training, 0.3, 1e-3),
            tF.batch_norm(x, rm2, rv2, w, b, training, 0.3, 1e-3),
        )
        torch.testing.assert_close(rm, rm2)
        torch.testing.assert_close(rv, rv2)
    x2 = _t(rng, (7, 4), torch.float32)
    torch.testing.assert_close(
        itorch.batch_norm(x2, None, None, training=True), tF.batch_norm(x2, None, None, training=True)
    )
    y = itorch.dropout(torch.ones(2000, dtype=torch.float64), 0.25, seed=11)
    np.testing.assert_array_equal(y.numpy(), imkern.nn.functional.dropout(np.ones(2000), 0.25, seed=11))
    assert itorch.dropout(x, 0.5, training=False) is x


# ---- opcheck on every operator ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FILTER_CASES))
def test_opcheck_filters(rng, name):
    build, rest, _, _ = FILTER_CASES[name]
    for dt in (torch.uint8, torch.float32, torch.float64) if name != "threshold" else (torch.uint8, torch.float64):
        grad = (
            dt == torch.float64
            and name not in ("median", "minimum_filter", "maximum_filter")
            and name not in ("erode", "dilate", "opening", "closing", "morph_gradient", "tophat", "blackhat")
        )
        _opcheck(name, *build(rng, dt, grad), *rest)


def test_opcheck_other_filters(rng):
    x = _t(rng, (6, 7, 2), torch.float64, grad=True)
    _opcheck("sep_filter", x, _t(rng, (3,), grad=True), _t(rng, (2,), grad=True), "reflect", 0.0)
    _opcheck("sep_filter", _t(rng, (2, 5, 4, 1), torch.float32), _t(rng, (5,)), _t(rng, (1,)), "wrap", 0.0)
    _opcheck("convolve", x, _t(rng, (2, 3), grad=True), "constant", 0.3)
    _opcheck("convolve", _t(rng, (5, 6), torch.uint8), _t(rng, (3, 3)), "reflect101", 0.0)
    u8 = _t(rng, (11, 12), torch.uint8)
    _opcheck("bilateral", u8, 5, 20.0, 3.0, "reflect101")
    _opcheck("bilateral", _t(rng, (2, 7, 6, 3), torch.float32), 3, 0.2, 1.0, "replicate")
    _opcheck("threshold_otsu", u8)
    _opcheck("threshold_otsu", _t(rng, (5, 6), torch.float32))
    _opcheck("threshold_triangle", u8)
    _opcheck("adaptive_threshold", u8, 255.0, "mean", 5, 1.0, "binary_inv")
    _opcheck("canny", u8, 30.0, 80.0, 3, False)
    _opcheck("canny", _t(rng, (2, 9, 8, 1), torch.uint8), 30.0, 80.0, 5, True)
    _opcheck("gradient_magnitude", x, 1, False, "wrap", 0.0)
    _opcheck("unsharp_mask", x, 1.2, 1.2, 0.8, 0.05, 0, 0, 4.0, "reflect", 0.0)
    _opcheck("unsharp_mask", _t(rng, (6, 5, 3), torch.uint8), 0.0, 0.0, 2.0, 3.0, 3, 5, 4.0, "reflect", 0.0)


@pytest.mark.parametrize("name", sorted(COLOR_CASES))
def test_opcheck_color(rng, name):
    for dt in _dtypes_for(name):
        _opcheck(name, _t(rng, COLOR_CASES[name], dt, grad=dt == torch.float64 and name in COLOR_GRAD))
    if name == "rgb_to_gray":
        x = _t(rng, (2, 3, 5, 4), torch.float64, grad=True)
        _opcheck("rgba_to_rgb", x, None)
        _opcheck("rgba_to_rgb", x, [0.1, 0.2, 0.3])
        _opcheck("rgba_to_rgb", _t(rng, (3, 5, 4), torch.uint8), [255.0])


def test_opcheck_transform(rng):
    for dt, grad in ((torch.uint8, False), (torch.float64, True)):
        x = _t(rng, (2, 7, 9, 3), dt, grad)
        x2 = _t(rng, (6, 5), dt, grad)
        _opcheck("crop", x, 1, 2, 4, 5)
        _opcheck("center_crop", x2, 3, 4)
        _opcheck("pad", x, [1, 2, 0, 3], "wrap", 0.0)
        _opcheck("pad", x2, [2, 2, 1, 1], "constant", 7.0)
        _opcheck("flip", x, [0, 1])
        _opcheck("flip", x2, [1])
        _opcheck("rotate90", x, 1)
        _opcheck("rotate90", x2, 2)
        xn, x2n = x.detach(), x2.detach()  # no gradient through the warps
        _opcheck("rotate", xn, 30.0, "bilinear", "constant", 0.0)
        _opcheck(
            "warp_affine", x2n, torch.tensor([[1.0, 0.2, 0.0], [0.1, 0.9, 1.0]]), 4, 8, "bicubic", "reflect", 0.0, False
        )
        _opcheck("warp_perspective", xn, torch.eye(3, dtype=torch.float64), 5, 3, "nearest", "constant", 1.0, True)
        _opcheck("to_tensor", x, [0.5], [0.25, 0.5, 1.0], [1, 1, 3, 4], True, "float64")
        _opcheck("to_tensor", x2, None, None, None, False, "float32")
    _opcheck("from_tensor", _t(rng, (2, 3, 4, 5), torch.float32), [0.5], [0.25])
    _opcheck("from_tensor", _t(rng, (3, 4, 5), torch.float64), None, None)


def test_opcheck_nn(rng):
    # every op in float64; the float32 fake kernels (same code, another dtype) on a subset
    dt = torch.float64
    x = _t(rng, (3, 4, 5, 2), dt, grad=True)
    for name in ("relu", "sigmoid", "tanh", "gelu"):
        _opcheck(name, x)
    _opcheck("leaky_relu", x, 0.1)
    _opcheck("softmax", x, 1)
    _opcheck("log_softmax", x, -1)
    target = torch.from_numpy(rng.integers(0, 4, 6))
    _opcheck("cross_entropy", _t(rng, (6, 4), dt, grad=True), target, "mean", 0.0, -100)
    t3 = target.reshape(2, 3)[:, :1].expand(2, 4).contiguous() % 3
    _opcheck("cross_entropy", _t(rng, (2, 3, 4), dt, grad=True), t3, "none", 0.2, 1)
    w, b = _t(rng, (4,), dt, grad=True), _t(rng, (4,), dt, grad=True)
    rm, rv = _t(rng, (4,), dt), _t(rng, (4,), dt).abs() + 0.5
    _opcheck("batch_norm", x, w, b, rm, rv, True, 0.1, 1e-5)
    _opcheck("batch_norm", x, None, b, rm, rv, False, 0.1, 1e-5)
    _opcheck("batch_norm", x, w, None, None, None, True, 0.1, 1e-5)
    _opcheck("dropout", x, 0.3, torch.tensor(5))
    dt = torch.float32
    x = _t(rng, (2, 3, 4, 5), dt, grad=True)
    _opcheck("gelu", x)
    _opcheck("softmax", x, -1)
    _opcheck("cross_entropy", _t(rng, (6, 4), dt, grad=True), target, "sum", 0.1, 2)
    w32, b32 = _t(rng, (3,), dt, grad=True), _t(rng, (3,), dt, grad=True)
    _opcheck("batch_norm", x, w32, b32, rm[:3].float(), rv[:3].float(), True, 0.1, 1e-5)
    _opcheck("dropout", x, 0.5, torch.tensor(9))


# ---- gradcheck (float64) ------------------------------------------------------------------------
@pytest.mark.parametrize("border", BORDERS)
def test_gradcheck_linear_filters(rng, border):
    x = _t(rng, (4, 5), grad=True)
    _gradcheck(lambda t: itorch.box(t, (3, 4), border=border, cval=0.4), x)
    _gradcheck(lambda t: itorch.box(t, 2, normalize=False, border=border), _t(rng, (2, 4, 3, 2), grad=True))
    _gradcheck(
        lambda t, a, b: itorch.sep_filter(t, a, b, border=border, cval=0.3),
        x,
        _t(rng, (3,), grad=True),
        _t(rng, (4,), grad=True),
    )
    _gradcheck(
        lambda t, k: itorch.convolve(t, k, border=border, cval=0.2),
        _t(rng, (5, 4, 2), grad=True),
        _t(rng, (2, 3), grad=True),
    )
    _gradcheck(lambda t: itorch.scharr(t, 0, 1, scale=0.5, border=border), x)
    _gradcheck(lambda t: itorch.prewitt(t, 1, 0, border=border), x)
    _gradcheck(lambda t: itorch.laplacian(t, ksize=1, border=border), x)
    _gradcheck(lambda t: itorch.laplacian(t, ksize=5, scale=0.3, border=border), x)
    _gradcheck(lambda t: torch.stack(itorch.gradient(t, ksize=3, border=border)), x)
    _gradcheck(lambda t: itorch.gradient(t, ksize=-1, border=border)[1], x)  # one output unused
    _gradcheck(lambda t: itorch.gradient_magnitude(t, border=border), x)
    _gradcheck(lambda t: itorch.gradient_magnitude(t, ksize=5, l2=False, border=border), x)
    _gradcheck(lambda t: itorch.unsharp_mask(t, (1.0, 0.6), 1.7, border=border), x)


def test_gradcheck_unsharp_threshold_and_threshold(rng):
    x = _t(rng, (4, 5, 2), grad=True)
    _gradcheck(lambda t: itorch.unsharp_mask(t, 1.0, 2.0, threshold=0.05), x)
    x = _t(rng, (3, 4), grad=True)
    for kind in ("binary", "binary_inv", "trunc", "tozero", "tozero_inv"):
        _gradcheck(lambda t, kind=kind: itorch.threshold(t, 0.4, 1.5, kind), x)


def test_gradcheck_color(rng):
    for name in COLOR_GRAD:
        _gradcheck(getattr(itorch, name), _t(rng, COLOR_CASES[name], grad=True))
    x = _t(rng, (2, 3, 4, 4), grad=True)
    _gradcheck(itorch.rgba_to_rgb, x)
    _gradcheck(lambda t: itorch.rgba_to_rgb(t, background=(0.3, 0.6, 0.9)), x)
    _gradcheck(lambda t: itorch.rgba_to_rgb(t, background=0.5), x)


@pytest.mark.parametrize("border", BORDERS)
def test_gradcheck_pad(rng, border):
    _gradcheck(lambda t: itorch.pad(t, (3, 1, 0, 5), border=border, cval=2.0), _t(rng, (2, 3, 4, 2), grad=True))
    _gradcheck(lambda t: itorch.pad(t, 2, border=border), _t(rng, (1, 3), grad=True))


def test_gradcheck_transform(rng):
    x = _t(rng, (2, 5, 6, 3), grad=True)
    x2 = _t(rng, (5, 7), grad=True)
    _gradcheck(lambda t: itorch.crop(t, 1, 2, 3, 3), x)
    _gradcheck(lambda t: itorch.center_crop(t, (2, 5)), x2)
    for axis in (0, 1, None):
        _gradcheck(lambda t, axis=axis: itorch.flip(t, axis), x)
    for k in (1, 2, 3, -1):
        _gradcheck(lambda t, k=k: itorch.rotate90(t, k), x2)
    _gradcheck(
        lambda t: itorch.to_tensor(
            t, mean=(0.1, 0.2, 0.3), std=(0.5, 2.0, 0.25), crop=(1, 1, 3, 4), flip=True, dtype="float64"
        ),
        x,
    )
    _gradcheck(lambda t: itorch.to_tensor(t, std=0.5, crop=(3, 5), dtype="float64"), x2)


def test_gradcheck_nn(rng):
    x = _t(rng, (3, 4, 3, 2), grad=True)
    x.data[x.data.abs() < 1e-3] = 0.5  # away from relu's kink
    for fn in (
        itorch.relu,
        itorch.sigmoid,
        itorch.tanh,
        itorch.gelu,
        lambda t: itorch.leaky_relu(t, 0.2),
        lambda t: itorch.softmax(t, 1),
        lambda t: itorch.log_softmax(t, -1),
    ):
        _gradcheck(fn, x)
    logits = _t(rng, (5, 4, 2), grad=True)
    target = torch.from_numpy(rng.integers(0, 4, (5, 2)))
    target[1, 1] = -100
    for red in ("mean", "sum", "none"):
        _gradcheck(lambda t, red=red: itorch.cross_entropy(t, target, reduction=red, label_smoothing=0.15), logits)
    _gradcheck(lambda t: itorch.cross_entropy(t, torch.tensor(2)), _t(rng, (4,), grad=True))  # unbatched
    w, b = _t(rng, (4,), grad=True), _t(rng, (4,), grad=True)
    rm, rv = _t(rng, (4,)), _t(rng, (4,)).abs() + 0.5
    for training in (True, False):
        _gradcheck(lambda t, ww, bb, tr=training: itorch.batch_norm(t, rm.clone(), rv.clone(), ww, bb, tr), x, w, b)
    _gradcheck(lambda t: itorch.batch_norm(t, None, None, None, None, True), _t(rng, (6, 3), grad=True))
    _gradcheck(lambda t: itorch.dropout(t, 0.4, seed=3), x)


def test_gradients_equal_torch_float32(rng):
    # batch_norm and the activations' backward kernels give torch's gradients
    tF = torch.nn.functional
    x = _t(rng, (4, 3, 6, 5), torch.float32, grad=True)
    w, b = _t(rng, (3,), torch.float32, grad=True), _t(rng, (3,), torch.float32, grad=True)
    xs, ws, bs = (t.detach().clone().requires_grad_() for t in (x, w, b))
    target = torch.from_numpy(rng.integers(0, 3, (4, 6, 5)))
    y = itorch.gelu(itorch.batch_norm(x, None, None, w, b, True))
    itorch.cross_entropy(itorch.log_softmax(y, 1), target).backward()
    ys = tF.gelu(tF.batch_norm(xs, None, None, ws, bs, True))
    tF.cross_entropy(torch.log_softmax(ys, 1), target).backward()
    for a, r in ((x, xs), (w, ws), (b, bs)):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-4, atol=1e-5)


def test_no_gradient_ops_say_so(rng):
    x = _t(rng, (6, 6), grad=True)
    for fn in (
        lambda t: itorch.median(t, 3),
        lambda t: itorch.erode(t),
        lambda t: itorch.rgb_to_hsv(t[..., None].expand(6, 6, 3).float()),
        lambda t: itorch.rotate(t, 10.0),
    ):
        with pytest.raises(RuntimeError, match="no autograd formula"):
            fn(x).sum().backward()


# ---- torch.compile ------------------------------------------------------------------------------
def test_torch_compile_fullgraph_ops(rng):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")

    def f(img, logits, target):
        g = itorch.rgb_to_gray(itorch.flip(itorch.pad(img, 2, border="reflect"), 1))
        e = itorch.gradient_magnitude(itorch.box(g, 3)) + itorch.erode(g.detach(), 3)  # erode: no gradient
        t = itorch.to_tensor(itorch.crop(img, 1, 1, 4, 4), std=0.5)
        z = itorch.gelu(itorch.batch_norm(t, None, None, training=True)).mean()
        return e.mean() + z + itorch.cross_entropy(itorch.log_softmax(logits, 1), target)

    img = _t(rng, (2, 6, 7, 3), torch.float32, grad=True)
    logits = _t(rng, (5, 3), torch.float32, grad=True)
    target = torch.from_numpy(rng.integers(0, 3, 5))
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    out = compiled(img, logits, target)
    ref = f(img, logits, target)
    torch.testing.assert_close(out, ref)
    ga = torch.autograd.grad(out, (img, logits))
    gb = torch.autograd.grad(ref, (img, logits))
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)


def test_torch_compile_dropout_draws_new_masks():
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    f = torch.compile(lambda t: itorch.dropout(t, 0.5), backend="aot_eager", fullgraph=True)
    x = torch.ones(256)
    assert not torch.equal(f(x), f(x))
    torch.manual_seed(4)
    a = itorch.dropout(x, 0.5)
    torch.manual_seed(4)
    assert torch.equal(a, itorch.dropout(x, 0.5))


def test_nn_forward_equals_imkern_numpy(rng):
    nF = imkern.nn.functional
    x = _t(rng, (2, 3, 4, 5), torch.float32) * 3
    a = x.numpy()
    _eq(itorch.relu(x), nF.relu(a))
    _eq(itorch.leaky_relu(x, 0.3), nF.leaky_relu(a, 0.3))
    _eq(itorch.gelu(x), nF.gelu(a))
    _eq(itorch.sigmoid(x), nF.sigmoid(a))
    _eq(itorch.tanh(x), nF.tanh(a))
    _eq(itorch.softmax(x, 1), nF.softmax(a, 1))
    _eq(itorch.log_softmax(x, 3), nF.log_softmax(a, 3))
    t = torch.from_numpy(rng.integers(0, 3, (2, 4, 5)))
    _eq(itorch.cross_entropy(x, t, reduction="none"), nF.cross_entropy(a, t.numpy(), reduction="none"))
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = itorch.batch_norm(x, torch.zeros(3), torch.ones(3), training=True)
    _eq(y, nF.batch_norm(a, rm, rv, training=True))


def test_strided_tensors(rng):
    # NCHW tensors permuted to imkern's channels-last layout (not contiguous) work forward and backward
    x = _t(rng, (2, 3, 6, 7), torch.float64, grad=True)
    v = x.permute(0, 2, 3, 1)
    c = v.detach().contiguous()
    for fn in (
        lambda t: itorch.box(t, 3),
        lambda t: itorch.laplacian(t, border="wrap"),
        lambda t: itorch.rgb_to_gray(t),
        lambda t: itorch.pad(t, 1, border="reflect"),
        lambda t: itorch.median(t, 3),
    ):
        _eq(fn(v), fn(c))
    itorch.unsharp_mask(v, 1.0).sum().backward()
    g = c.clone().requires_grad_()
    itorch.unsharp_mask(g, 1.0).sum().backward()
    torch.testing.assert_close(x.grad, g.grad.permute(0, 3, 1, 2))
