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

# ---- rank filters and morphology (OpenCV's defaults: median border replicate, morphology
# border ignored) ------------------------------------------------------------------------------
_RECT5 = np.ones((5, 5), np.uint8)
_RECT15 = np.ones((15, 15), np.uint8)

CASES += [
    Case("median 5x5 uint8 3840x2160", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.median(x, 5, out=out)),
                lambda cv2, x, out: (lambda: cv2.medianBlur(x, 5, dst=out)),
                (H, W), np.uint8),
         bytes=2 * H * W),
    Case("median 15x15 uint8 3840x2160", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.median(x, 15, out=out)),
                lambda cv2, x, out: (lambda: cv2.medianBlur(x, 15, dst=out)),
                (H, W), np.uint8),
         bytes=2 * H * W),
    Case("erode 5x5 uint8 3840x2160", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.erode(x, _RECT5, out=out)),
                lambda cv2, x, out: (lambda: cv2.erode(x, _RECT5, dst=out)),
                (H, W), np.uint8),
         bytes=2 * H * W),
    Case("dilate 15x15 uint8 3840x2160", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.dilate(x, _RECT15, out=out)),
                lambda cv2, x, out: (lambda: cv2.dilate(x, _RECT15, dst=out)),
                (H, W), np.uint8),
         bytes=2 * H * W),
]

CASES += [
    Case("bilateral d9 uint8 1920x1080x3", "cpu",
         _setup(lambda imkern, x, out: (lambda: imkern.filters.bilateral(x, 9, 75.0, 75.0, out=out)),
                lambda cv2, x, out: (lambda: cv2.bilateralFilter(x, 9, 75.0, 75.0, dst=out)),
                (1080, 1920, 3), np.uint8),
         bytes=2 * 1080 * 1920 * 3),
]
