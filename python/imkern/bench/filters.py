"""Benchmark cases of the linear filters, one list for both devices: on the CPU against OpenCV
(both use every core this process may use), on CUDA against cupyx.scipy.ndimage and cv2.cuda
(the same border rule: cupyx mode "mirror" = our "reflect101", cv2's BORDER_REFLECT_101).
bytes = input + output bytes of one call."""

from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from . import Case, cuda_timed, optional_import

H, W = 2160, 3840


def _img(shape, dtype):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, 256, size=shape, dtype=dtype)
    return rng.random(shape, dtype=np.float64).astype(dtype)


def _setup(make_imkern, make_cv2, shape, dtype):
    def setup():
        import imkern

        x = _img(shape, dtype)
        out = np.empty_like(x)
        fn = make_imkern(imkern, x, out)
        peers = {}
        cv2 = optional_import("cv2")
        if cv2 is not None:
            cv2.setNumThreads(imkern.get_num_threads())
            peers["opencv"] = make_cv2(cv2, x, out)
        return fn, peers

    return setup


def _gauss(ks, sigma) -> Tuple[Callable, Callable]:
    return (
        lambda imkern, x, out: lambda: imkern.filters.gaussian(x, sigma, ksize=(ks, ks), out=out),
        lambda cv2, x, out: lambda: cv2.GaussianBlur(x, (ks, ks), sigma, dst=out, borderType=cv2.BORDER_REFLECT_101),
    )


_K3 = np.array([[0.1, 0.2, 0.05], [0.15, 0.3, 0.1], [0.02, 0.03, 0.05]])

CASES = [
    Case("gaussian 5x5 s1 uint8 2160x3840x3", "cpu", _setup(*_gauss(5, 1.0), (H, W, 3), np.uint8), bytes=2 * H * W * 3),
    Case(
        "gaussian 31x31 s5 uint8 2160x3840x3", "cpu", _setup(*_gauss(31, 5.0), (H, W, 3), np.uint8), bytes=2 * H * W * 3
    ),
    Case("gaussian 5x5 s1 float32 2160x3840", "cpu", _setup(*_gauss(5, 1.0), (H, W), np.float32), bytes=2 * H * W * 4),
    Case(
        "gaussian 31x31 s5 float32 2160x3840", "cpu", _setup(*_gauss(31, 5.0), (H, W), np.float32), bytes=2 * H * W * 4
    ),
    Case(
        "correlate 3x3 float32 2160x3840",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.correlate(x, _K3, out=out),
            lambda cv2, x, out: (
                lambda: cv2.filter2D(x, -1, _K3.astype(np.float32), dst=out, borderType=cv2.BORDER_REFLECT_101)
            ),
            (H, W),
            np.float32,
        ),
        bytes=2 * H * W * 4,
    ),
    Case(
        "box 15x15 uint8 2160x3840x3",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.box(x, 15, out=out),
            lambda cv2, x, out: lambda: cv2.blur(x, (15, 15), dst=out, borderType=cv2.BORDER_REFLECT_101),
            (H, W, 3),
            np.uint8,
        ),
        bytes=2 * H * W * 3,
    ),
    Case(
        "box 15x15 float32 2160x3840x3",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.box(x, 15, out=out),
            lambda cv2, x, out: lambda: cv2.blur(x, (15, 15), dst=out, borderType=cv2.BORDER_REFLECT_101),
            (H, W, 3),
            np.float32,
        ),
        bytes=2 * H * W * 3 * 4,
    ),
]


# ---- CUDA ----------------------------------------------------------------------------------
def _cv2_cuda():
    cv2 = optional_import("cv2")
    try:
        if cv2 is not None and cv2.cuda.getCudaEnabledDeviceCount() > 0:
            return cv2
    except Exception:
        pass
    return None


def _gaussian_setup(shape, dtype, ksize, sigma):
    def setup():
        import cupy

        from .. import filters
        from .._kernels import gaussian_kernel_cv

        rng = np.random.default_rng(0)
        if np.dtype(dtype).kind == "u":
            host = rng.integers(0, 256, size=shape, dtype=dtype)
        else:
            host = rng.random(shape, dtype=np.float32).astype(dtype)
        x = cupy.asarray(host)
        out = cupy.empty_like(x)
        fn = cuda_timed(lambda: filters.gaussian(x, sigma, ksize=(ksize, ksize), out=out))
        peers = {}
        ndi = optional_import("cupyx.scipy.ndimage")
        if ndi is not None:
            k = cupy.asarray(gaussian_kernel_cv(ksize, sigma), dtype=cupy.float32)
            # channel axis (and batch axis) get a 1-tap kernel: ndimage filters every axis
            ax_h, ax_w = (x.ndim - 3, x.ndim - 2) if x.ndim >= 3 else (0, 1)
            ptmp = cupy.empty_like(x)
            pout = cupy.empty_like(x)

            def nd():
                ndi.correlate1d(x, k, axis=ax_h, output=ptmp, mode="mirror")
                ndi.correlate1d(ptmp, k, axis=ax_w, output=pout, mode="mirror")
                return pout

            peers["cupyx.ndimage"] = cuda_timed(nd)
        cv2 = _cv2_cuda()
        if cv2 is not None and x.ndim <= 3 and dtype in (np.uint8, np.float32):
            ch = 1 if x.ndim == 2 else x.shape[-1]
            cvt = {
                (np.uint8, 1): cv2.CV_8UC1,
                (np.uint8, 3): cv2.CV_8UC3,
                (np.uint8, 4): cv2.CV_8UC4,
                (np.float32, 1): cv2.CV_32FC1,
                (np.float32, 3): cv2.CV_32FC3,
                (np.float32, 4): cv2.CV_32FC4,
            }
            try:
                peers.update(_cv2_gaussian(cv2, host, cvt[(dtype, ch)], ksize, sigma))
            except Exception:  # type/size not supported by this OpenCV build
                pass
        return fn, peers

    return setup


def _cv2_gaussian(cv2, host, cvtype, ksize, sigma):
    g = cv2.cuda_GpuMat()
    g.upload(host)
    go = cv2.cuda_GpuMat(g.size(), g.type())
    flt = cv2.cuda.createGaussianFilter(cvtype, cvtype, (ksize, ksize), sigma)

    def cvf():
        flt.apply(g, go)
        cv2.cuda.Stream.Null().waitForCompletion()
        return go

    cvf()
    return {"cv2.cuda": cvf}


def _correlate_setup(shape, ksize):
    def setup():
        import cupy

        from .. import filters

        rng = np.random.default_rng(0)
        host = rng.random(shape, dtype=np.float32)
        x = cupy.asarray(host)
        out = cupy.empty_like(x)
        k = rng.random((ksize, ksize)).astype(np.float32)
        fn = cuda_timed(lambda: filters.correlate(x, k, out=out))
        peers = {}
        ndi = optional_import("cupyx.scipy.ndimage")
        if ndi is not None:
            kd = cupy.asarray(k)
            pout = cupy.empty_like(x)
            peers["cupyx.ndimage"] = cuda_timed(lambda: ndi.correlate(x, kd, output=pout, mode="mirror"))
        cv2 = _cv2_cuda()
        if cv2 is not None and len(shape) == 2:
            try:
                peers.update(_cv2_linear(cv2, host, k))
            except Exception:
                pass
        return fn, peers

    return setup


def _cv2_linear(cv2, host, k):
    g = cv2.cuda_GpuMat()
    g.upload(host)
    go = cv2.cuda_GpuMat(g.size(), g.type())
    flt = cv2.cuda.createLinearFilter(cv2.CV_32FC1, cv2.CV_32FC1, k)

    def cvf():
        flt.apply(g, go)
        cv2.cuda.Stream.Null().waitForCompletion()
        return go

    cvf()
    return {"cv2.cuda": cvf}


def _nbytes(shape, dtype):
    return 2 * int(np.prod(shape)) * np.dtype(dtype).itemsize


_CUDA_CASES = [
    Case(
        "gaussian 5x5 s1 uint8 8x2160x3840x3",
        "cuda",
        _gaussian_setup((8, 2160, 3840, 3), np.uint8, 5, 1.0),
        bytes=_nbytes((8, 2160, 3840, 3), np.uint8),
        note="batch of 8 RGB 4K frames, sigma 1",
    ),
    Case(
        "gaussian 5x5 s1 float32 2160x3840",
        "cuda",
        _gaussian_setup((2160, 3840), np.float32, 5, 1.0),
        bytes=_nbytes((2160, 3840), np.float32),
    ),
    Case(
        "gaussian 31x31 s5 float32 2160x3840",
        "cuda",
        _gaussian_setup((2160, 3840), np.float32, 31, 5.0),
        bytes=_nbytes((2160, 3840), np.float32),
        note="sigma 5, runtime-size kernel",
    ),
    Case(
        "correlate 3x3 float32 2160x3840",
        "cuda",
        _correlate_setup((2160, 3840), 3),
        bytes=_nbytes((2160, 3840), np.float32),
    ),
]
CASES += _CUDA_CASES
# ---- rank filters and morphology (OpenCV's defaults: median border replicate, morphology
# border ignored) ------------------------------------------------------------------------------
_RECT5 = np.ones((5, 5), np.uint8)
_RECT15 = np.ones((15, 15), np.uint8)

CASES += [
    Case(
        "median 5x5 uint8 2160x3840",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.median(x, 5, out=out),
            lambda cv2, x, out: lambda: cv2.medianBlur(x, 5, dst=out),
            (H, W),
            np.uint8,
        ),
        bytes=2 * H * W,
    ),
    Case(
        "median 15x15 uint8 2160x3840",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.median(x, 15, out=out),
            lambda cv2, x, out: lambda: cv2.medianBlur(x, 15, dst=out),
            (H, W),
            np.uint8,
        ),
        bytes=2 * H * W,
    ),
    Case(
        "erode 5x5 uint8 2160x3840",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.erode(x, _RECT5, out=out),
            lambda cv2, x, out: lambda: cv2.erode(x, _RECT5, dst=out),
            (H, W),
            np.uint8,
        ),
        bytes=2 * H * W,
    ),
    Case(
        "dilate 15x15 uint8 2160x3840",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.dilate(x, _RECT15, out=out),
            lambda cv2, x, out: lambda: cv2.dilate(x, _RECT15, dst=out),
            (H, W),
            np.uint8,
        ),
        bytes=2 * H * W,
    ),
]

CASES += [
    Case(
        "bilateral d9 uint8 1080x1920x3",
        "cpu",
        _setup(
            lambda imkern, x, out: lambda: imkern.filters.bilateral(x, 9, 75.0, 75.0, out=out),
            lambda cv2, x, out: lambda: cv2.bilateralFilter(x, 9, 75.0, 75.0, dst=out),
            (1080, 1920, 3),
            np.uint8,
        ),
        bytes=2 * 1080 * 1920 * 3,
    ),
]


# ---- derivatives, thresholds, edges (each against cv2 in the same run) ------------------------
def _setup_any(make_imkern, make_cv2, shape, dtype, prepare=None):
    """Like _setup, but the ops choose their own outputs; `prepare(x)` may reshape the input
    (e.g. blur it so that Canny sees real edges)."""

    def setup():
        import imkern

        x = _img(shape, dtype)
        cv2 = optional_import("cv2")
        if prepare is not None and cv2 is not None:
            x = prepare(cv2, x)
        fn = make_imkern(imkern, x)
        peers = {}
        if cv2 is not None:
            cv2.setNumThreads(imkern.get_num_threads())
            peers["opencv"] = make_cv2(cv2, x)
        return fn, peers

    return setup


def _sobel_case(imkern, x):
    out = np.empty(x.shape, np.float32)
    return lambda: imkern.filters.sobel(x, 1, 0, out=out)


def _sobel_cv2(cv2, x):
    out = np.empty(x.shape, np.float32)
    return lambda: cv2.Sobel(x, cv2.CV_32F, 1, 0, dst=out)


def _gradmag_case(imkern, x):
    out = np.empty(x.shape, np.float32)
    return lambda: imkern.filters.gradient_magnitude(x, out=out)


def _gradmag_cv2(cv2, x):
    # OpenCV has no fused magnitude: the two derivatives, then cv2.magnitude
    return lambda: cv2.magnitude(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))


def _canny_case(imkern, x):
    out = np.empty(x.shape, np.uint8)
    return lambda: imkern.filters.canny(x, 50, 150, out=out)


def _canny_cv2(cv2, x):
    out = np.empty(x.shape, np.uint8)
    return lambda: cv2.Canny(x, 50, 150, edges=out)


def _otsu_case(imkern, x):
    out = np.empty_like(x)
    F = imkern.filters
    return lambda: F.threshold(x, F.threshold_otsu(x), 255, out=out)


def _otsu_cv2(cv2, x):
    out = np.empty_like(x)
    return lambda: cv2.threshold(x, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU, dst=out)


def _smooth(cv2, x):
    return cv2.GaussianBlur(x, (5, 5), 2.0)


def _photo(cv2, x):
    """A photograph at the input's size (scikit-image's astronaut, gray, resized), so Canny
    sees real edges (~3% of the pixels); blurred noise (~30% edges) without scikit-image."""
    data = optional_import("skimage.data")
    if data is None:
        return _smooth(cv2, x)
    g = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, (x.shape[1], x.shape[0]), interpolation=cv2.INTER_CUBIC)


CASES += [
    Case(
        "sobel dx 3x3 float32 2160x3840",
        "cpu",
        _setup_any(_sobel_case, _sobel_cv2, (H, W), np.float32),
        bytes=2 * H * W * 4,
    ),
    Case(
        "gradient_magnitude 3x3 l2 uint8 2160x3840",
        "cpu",
        _setup_any(_gradmag_case, _gradmag_cv2, (H, W), np.uint8),
        bytes=H * W * 5,
        note="OpenCV: Sobel x, Sobel y, magnitude",
    ),
    Case(
        "canny 50_150 photo uint8 1080x1920",
        "cpu",
        _setup_any(_canny_case, _canny_cv2, (1080, 1920), np.uint8, _photo),
        bytes=2 * 1080 * 1920,
    ),
    Case(
        "threshold_otsu binary uint8 2160x3840",
        "cpu",
        _setup_any(_otsu_case, _otsu_cv2, (H, W), np.uint8, _photo),
        bytes=3 * H * W,
        note="OpenCV: cv2.threshold with THRESH_OTSU (level and image in one call)",
    ),
]
