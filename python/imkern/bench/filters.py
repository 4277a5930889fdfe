"""CPU benchmark cases of the linear filters, against OpenCV (and SciPy where OpenCV has no
matching op). Both use every core this process may use."""
from __future__ import annotations

import numpy as np

from . import Case, optional_import

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


def _gauss(ks, sigma):
    return (
        lambda imkern, x, out: (lambda: imkern.filters.gaussian(x, sigma, ksize=(ks, ks), out=out)),
        lambda cv2, x, out: (lambda: cv2.GaussianBlur(x, (ks, ks), sigma, dst=out, borderType=cv2.BORDER_REFLECT_101)),
    )


_K3 = np.array([[0.1, 0.2, 0.05], [0.15, 0.3, 0.1], [0.02, 0.03, 0.05]])

CASES = [
    Case("gaussian 5x5 s1 uint8 3840x2160x3", "cpu", _setup(*_gauss(5, 1.0), (H, W, 3), np.uint8),
         bytes=2 * H * W * 3),
    Case("gaussian 5x5 s1 float32 3840x2160", "cpu", _setup(*_gauss(5, 1.0), (H, W), np.float32),
         bytes=2 * H * W * 4),
    Case("gaussian 31x31 s5 float32 3840x2160", "cpu", _setup(*_gauss(31, 5.0), (H, W), np.float32),
         bytes=2 * H * W * 4),
    Case("correlate 3x3 float32 3840x2160", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.correlate(x, _K3, out=out)),
                lambda cv2, x, out: (lambda: cv2.filter2D(x, -1, _K3.astype(np.float32), dst=out,
                                                          borderType=cv2.BORDER_REFLECT_101)),
                (H, W), np.float32),
         bytes=2 * H * W * 4),
    Case("box 15x15 uint8 3840x2160x3", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.box(x, 15, out=out)),
                lambda cv2, x, out: (lambda: cv2.blur(x, (15, 15), dst=out, borderType=cv2.BORDER_REFLECT_101)),
                (H, W, 3), np.uint8),
         bytes=2 * H * W * 3),
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
    Case("sobel dx 3x3 float32 3840x2160", "cpu", _setup_any(_sobel_case, _sobel_cv2, (H, W), np.float32),
         bytes=2 * H * W * 4),
    Case("gradient_magnitude 3x3 uint8->float32 3840x2160", "cpu",
         _setup_any(_gradmag_case, _gradmag_cv2, (H, W), np.uint8), bytes=H * W * 5,
         note="OpenCV: Sobel x, Sobel y, magnitude"),
    Case("canny 50/150 uint8 1920x1080 (photo)", "cpu",
         _setup_any(_canny_case, _canny_cv2, (1080, 1920), np.uint8, _photo), bytes=2 * 1080 * 1920),
    Case("threshold_otsu + threshold uint8 3840x2160", "cpu",
         _setup_any(_otsu_case, _otsu_cv2, (H, W), np.uint8, _photo), bytes=3 * H * W,
         note="OpenCV: cv2.threshold with THRESH_OTSU (level and image in one call)"),
]
