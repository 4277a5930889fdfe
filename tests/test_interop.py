"""Arrays of other frameworks (DLPack / CUDA array interface) in and out of every family's ops:
PyTorch tensors (CPU; CUDA with a GPU) and JAX arrays give the same values as NumPy, come back
as the caller's kind, zero-copy in, ``out=`` tensors written in place, inputs unchanged,
non-contiguous and requires_grad tensors accepted (the latter detached). Skipped without the
framework."""
from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import HAS_GPU, random_array
from imkern import _interop
from imkern.nn import functional as F

torch = pytest.importorskip("torch")

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not (HAS_GPU and torch.cuda.is_available()):
        pytest.skip("needs a CUDA GPU, a CUDA build of imkern, CuPy and CUDA PyTorch")
    return request.param


def _np(t):
    return t.detach().cpu().numpy()


def _match(got, want, exact=True):
    """Exact on the CPU (the same kernels); on CUDA within float32/TF32 rounding (integers within 1)."""
    got, want = np.asarray(got), np.asarray(want)
    if exact:
        np.testing.assert_array_equal(got, want)
    elif want.dtype.kind in "ui":
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max(initial=0) <= 1
    else:
        scale = float(np.abs(want).max(initial=0)) or 1.0
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * scale)


def _like(x, a):
    """A parameter array ``a`` of the framework and device of ``x`` (imkern does not mix host
    and device arrays in one call)."""
    if isinstance(x, torch.Tensor):
        return torch.from_numpy(a).to(x.device)
    if type(x).__module__.split(".")[0] in ("jax", "jaxlib"):
        import jax.numpy as jnp

        return jnp.asarray(a)
    return a


# (family, call(fn_input) -> result, input shape, dtype): one case per op kind of each family
_IMG = (13, 17, 3)
CASES = {
    "filters.gaussian": (lambda x: imkern.filters.gaussian(x, 1.5), _IMG, np.float32),
    "filters.correlate": (lambda x: imkern.filters.correlate(x, np.arange(6.0).reshape(2, 3), border="wrap"), _IMG,
                          np.float32),
    "filters.median": (lambda x: imkern.filters.median(x, 5), _IMG, np.uint8),
    "filters.erode": (lambda x: imkern.filters.erode(x, 3), _IMG, np.uint8),
    "filters.sobel": (lambda x: imkern.filters.sobel(x, 1, 0), _IMG, np.uint8),
    "filters.gradient": (lambda x: imkern.filters.gradient(x), (13, 17), np.float32),  # a tuple of two
    "filters.threshold": (lambda x: imkern.filters.threshold(x, 100, 255), _IMG, np.uint8),
    "color.rgb_to_gray": (lambda x: imkern.color.rgb_to_gray(x), _IMG, np.uint8),
    "color.rgb_to_hsv": (lambda x: imkern.color.rgb_to_hsv(x), _IMG, np.float32),
    "transform.resize": (lambda x: imkern.transform.resize(x, (7, 29), interpolation="bicubic"), _IMG, np.uint8),
    "transform.rotate": (lambda x: imkern.transform.rotate(x, 30.0), _IMG, np.float32),
    "transform.flip": (lambda x: imkern.transform.flip(x, 1), _IMG, np.uint8),
    "transform.to_tensor": (lambda x: imkern.transform.to_tensor(x), (2, 9, 11, 3), np.uint8),
    "nn.conv2d": (lambda x: F.conv2d(x, _like(x, np.ones((4, 3, 3, 3), np.float32)), padding=1), (2, 3, 9, 11),
                  np.float32),
    "nn.max_pool2d": (lambda x: F.max_pool2d(x, 2, return_indices=True), (2, 3, 9, 11), np.float32),
    "nn.avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), (2, 3, 9, 11), np.float32),
    "nn.linear": (lambda x: F.linear(x, _like(x, np.ones((5, 11), np.float32))), (2, 3, 9, 11), np.float32),
    "nn.relu": (lambda x: F.relu(x), (2, 3, 9, 11), np.float32),
    "nn.softmax": (lambda x: F.softmax(x, axis=1), (2, 3, 9, 11), np.float32),
}


def _as_list(r):
    return list(r) if isinstance(r, tuple) else [r]


def _to_torch(a, device):
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_in_torch_out(rng, name, device):
    call, shape, dtype = CASES[name]
    a = random_array(rng, shape, dtype)
    expected = _as_list(call(a))
    t = _to_torch(a, device)
    before = t.clone()
    got = _as_list(call(t))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert isinstance(g, torch.Tensor), type(g)
        assert g.device.type == device
        _match(_np(g), e, exact=device == "cpu")
    assert torch.equal(t, before), "input modified"


@pytest.mark.parametrize("name", ["filters.gaussian", "filters.median", "transform.resize", "nn.conv2d",
                                  "nn.max_pool2d", "color.rgb_to_gray"])
def test_non_contiguous_tensors(rng, name):
    call, shape, dtype = CASES[name]
    big = random_array(rng, tuple(2 * s + 1 for s in shape), dtype)
    view = big[tuple(slice(1, None, 2) for _ in shape)]  # every other element on each axis
    t = torch.from_numpy(big)[tuple(slice(1, None, 2) for _ in shape)]
    assert not t.is_contiguous()
    for g, e in zip(_as_list(call(t)), _as_list(call(view))):
        np.testing.assert_array_equal(_np(g), e)


def test_permuted_nchw_to_nhwc(rng):
    x = torch.from_numpy(random_array(rng, (2, 3, 10, 12), np.float32))
    nhwc = x.permute(0, 2, 3, 1)  # a channels-last view of an NCHW batch
    r = imkern.filters.gaussian(nhwc, 1.0)
    np.testing.assert_array_equal(_np(r), imkern.filters.gaussian(np.ascontiguousarray(_np(nhwc)), 1.0))


def test_requires_grad_is_detached(rng):
    a = random_array(rng, (2, 3, 8, 8), np.float32)
    t = torch.from_numpy(a.copy()).requires_grad_()
    r = F.conv2d(t, np.ones((2, 3, 3, 3), np.float32))
    assert isinstance(r, torch.Tensor) and not r.requires_grad and r.grad_fn is None
    np.testing.assert_array_equal(_np(r), F.conv2d(a, np.ones((2, 3, 3, 3), np.float32)))
    g = imkern.filters.gaussian(t[0].permute(1, 2, 0), 1.0)
    assert not g.requires_grad


def test_zero_copy_in(rng):
    t = torch.from_numpy(random_array(rng, (6, 7), np.float32))
    a = _interop.to_native(t)
    assert isinstance(a, np.ndarray)
    assert a.ctypes.data == t.data_ptr()
    nc = t.t()
    b = _interop.to_native(nc)
    assert b.ctypes.data == nc.data_ptr() and b.strides == (4, 28)


def test_result_memory_is_shared_with_the_returned_tensor(rng):
    # the kernel's output buffer is handed to torch, not copied
    a = random_array(rng, (9, 9), np.float32)
    r = imkern.filters.gaussian(torch.from_numpy(a), 1.0)
    assert isinstance(r, torch.Tensor) and r.is_contiguous()
    r *= 2  # a writeable tensor that owns (through DLPack) the NumPy result
    np.testing.assert_array_equal(_np(r), 2 * imkern.filters.gaussian(a, 1.0))


def test_out_tensor_written_in_place(rng):
    a = random_array(rng, (11, 13, 3), np.float32)
    t = torch.from_numpy(a.copy())
    out = torch.empty_like(t)
    r = imkern.filters.gaussian(t, 2.0, out=out)
    assert r is out
    np.testing.assert_array_equal(out.numpy(), imkern.filters.gaussian(a, 2.0))
    # a non-contiguous out tensor is filled by copy
    big = torch.zeros(11, 26, 3)
    o2 = big[:, ::2]
    r2 = imkern.filters.gaussian(t, 2.0, out=o2)
    assert r2 is o2
    np.testing.assert_array_equal(o2.numpy(), imkern.filters.gaussian(a, 2.0))


def test_mixed_torch_and_numpy_arguments(rng):
    x = random_array(rng, (2, 3, 6, 6), np.float64)
    w = random_array(rng, (4, 3, 3, 3), np.float64)
    r = F.conv2d(torch.from_numpy(x), w)
    assert isinstance(r, torch.Tensor)
    np.testing.assert_array_equal(r.numpy(), F.conv2d(x, w))
    r2 = F.conv2d(x, torch.from_numpy(w))  # the first foreign argument decides the result kind
    assert isinstance(r2, torch.Tensor)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="image"):
        imkern.filters.gaussian(torch.zeros(4, 4, dtype=torch.int32), 1.0)
    with pytest.raises(ValueError, match="image"):
        imkern.filters.gaussian(torch.zeros(4), 1.0)
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(torch.zeros(1, 1, 3, 3, dtype=torch.float16), torch.zeros(1, 1, 1, 1, dtype=torch.float16))


def test_numpy_path_has_no_wrapper_surprises(rng):
    a = random_array(rng, (9, 9), np.uint8)
    r = imkern.filters.gaussian(a, 1.0)
    assert type(r) is np.ndarray
    assert imkern.filters.gaussian.__wrapped__ is not None  # functools.wraps keeps the signature and docs
    assert "Gaussian" in imkern.filters.gaussian.__doc__


@pytest.mark.parametrize("name", ["filters.gaussian", "filters.median", "transform.resize", "nn.conv2d",
                                  "nn.max_pool2d", "color.rgb_to_gray"])
def test_jax_in_jax_out(rng, name):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    call, shape, dtype = CASES[name]
    a = random_array(rng, shape, dtype)
    j = jnp.asarray(a)
    got = _as_list(call(j))
    on_cpu = all(d.platform == "cpu" for d in j.devices())
    for g, e in zip(got, _as_list(call(a))):
        assert isinstance(g, jax.Array), type(g)
        _match(np.asarray(g), e, exact=on_cpu)


def test_other_dlpack_producers_get_numpy(rng):
    class Producer:  # DLPack only, no known framework: NumPy results
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    a = random_array(rng, (8, 8), np.float32)
    r = imkern.filters.gaussian(Producer(a), 1.0)
    assert type(r) is np.ndarray
    np.testing.assert_array_equal(r, imkern.filters.gaussian(a, 1.0))


def test_wrapped_functions_pickle_by_reference():
    import pickle

    for f in (imkern.filters.gaussian, F.conv2d, imkern.transform.resize, imkern.color.rgb_to_gray):
        assert pickle.loads(pickle.dumps(f)) is f
