"""Single-thread sweep of imkern against OpenCV: many ops x shapes (224x224x3, 1080p gray,
1080p RGB) x dtypes, beyond the `python -m imkern bench` cases.

    python benchmarks/sweep_single_thread.py [substring of case names] > sweep.md

Each case times imkern and cv2 on the same input, alternating, by ``time.thread_time`` (CPU
time of this thread: robust to other processes), one thread each, and prints the medians and
the ratio (imkern / cv2; ** where imkern is slower, * above 0.7). Outputs are fresh arrays, as
a plain call makes them. A tool for finding gaps, not a test.
"""

import sys
import time

import cv2
import numpy as np

import imkern
from imkern import color, filters, transform

imkern.set_num_threads(1)
cv2.setNumThreads(1)
rng = np.random.default_rng(0)
only = sys.argv[1] if len(sys.argv) > 1 else ""


def t2(fi, fc, reps=15):
    fi()
    fc()
    a, b = [], []
    for _ in range(reps):
        t0 = time.thread_time()
        fi()
        a.append(time.thread_time() - t0)
        t0 = time.thread_time()
        fc()
        b.append(time.thread_time() - t0)
    return np.median(a) * 1e6, np.median(b) * 1e6


shapes = [(224, 224, 3), (1080, 1920), (1080, 1920, 3)]


def img(sh, dt):
    if dt == np.uint8:
        return rng.integers(0, 256, sh, dtype=np.uint8)
    if dt == np.uint16:
        return rng.integers(0, 65536, sh, dtype=np.uint16)
    return rng.random(sh, dtype=np.float32) if dt == np.float32 else rng.random(sh)


K3 = np.ones((3, 3), np.uint8)
K5 = np.ones((5, 5), np.uint8)
cases = []
for dt in (np.uint8, np.uint16, np.float32):
    dn = np.dtype(dt).name
    cases += [
        (
            f"gauss3 {dn}",
            dt,
            lambda a: filters.gaussian(a, 0.8, ksize=(3, 3)),
            lambda a: cv2.GaussianBlur(a, (3, 3), 0.8),
        ),
        (
            f"gauss5 {dn}",
            dt,
            lambda a: filters.gaussian(a, 1.0, ksize=(5, 5)),
            lambda a: cv2.GaussianBlur(a, (5, 5), 1.0),
        ),
        (f"box3 {dn}", dt, lambda a: filters.box(a, 3), lambda a: cv2.blur(a, (3, 3))),
        (f"box5 {dn}", dt, lambda a: filters.box(a, 5), lambda a: cv2.blur(a, (5, 5))),
        (f"erode3 {dn}", dt, lambda a: filters.erode(a, 3), lambda a: cv2.erode(a, K3)),
        (f"dilate5 {dn}", dt, lambda a: filters.dilate(a, 5), lambda a: cv2.dilate(a, K5)),
        (f"flip_h {dn}", dt, lambda a: transform.flip(a, 1), lambda a: cv2.flip(a, 1)),
        (f"flip_v {dn}", dt, lambda a: transform.flip(a, 0), lambda a: cv2.flip(a, 0)),
        (
            f"rot90 {dn}",
            dt,
            lambda a: transform.rotate90(a, 1),
            lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
        ),
        (
            f"pad8 {dn}",
            dt,
            lambda a: transform.pad(a, 8, border="reflect101"),
            lambda a: cv2.copyMakeBorder(a, 8, 8, 8, 8, cv2.BORDER_REFLECT_101),
        ),
        (
            f"resize_half {dn}",
            dt,
            lambda a: transform.resize(a, (a.shape[0] // 2, a.shape[1] // 2)),
            lambda a: cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2)),
        ),
        (
            f"resize_up1.5 {dn}",
            dt,
            lambda a: transform.resize(a, (a.shape[0] * 3 // 2, a.shape[1] * 3 // 2)),
            lambda a: cv2.resize(a, (a.shape[1] * 3 // 2, a.shape[0] * 3 // 2)),
        ),
        (
            f"resize_0.7area {dn}",
            dt,
            lambda a: transform.resize(a, (a.shape[0] * 7 // 10, a.shape[1] * 7 // 10), interpolation="area"),
            lambda a: cv2.resize(a, (a.shape[1] * 7 // 10, a.shape[0] * 7 // 10), interpolation=cv2.INTER_AREA),
        ),
        (
            f"median3 {dn}",
            dt,
            lambda a: filters.median(a, 3),
            lambda a: cv2.medianBlur(a, 3) if a.dtype == np.uint8 or a.ndim >= 2 else None,
        ),
        (
            f"sobel {dn}",
            dt,
            lambda a: filters.sobel(a, 1, 0),
            lambda a: cv2.Sobel(a, cv2.CV_32F if a.dtype != np.float64 else cv2.CV_64F, 1, 0),
        ),
        (
            f"thresh {dn}",
            dt,
            lambda a: filters.threshold(a, 100 if a.dtype != np.float32 else 0.4, 255 if a.dtype == np.uint8 else 1),
            lambda a: cv2.threshold(
                a, 100 if a.dtype != np.float32 else 0.4, 255 if a.dtype == np.uint8 else 1, cv2.THRESH_BINARY
            )[1],
        ),
    ]
cases += [
    (
        "rgb2gray uint8",
        np.uint8,
        lambda a: color.rgb_to_gray(a) if a.ndim == 3 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else None,
    ),
    (
        "rgb2gray float32",
        np.float32,
        lambda a: color.rgb_to_gray(a) if a.ndim == 3 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else None,
    ),
    (
        "rgb2bgr uint8",
        np.uint8,
        lambda a: color.rgb_to_bgr(a) if a.ndim == 3 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2BGR) if a.ndim == 3 else None,
    ),
    (
        "gray2rgb uint8",
        np.uint8,
        lambda a: color.gray_to_rgb(a) if a.ndim == 2 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_GRAY2RGB) if a.ndim == 2 else None,
    ),
    (
        "rgb2hsv uint8",
        np.uint8,
        lambda a: color.rgb_to_hsv(a) if a.ndim == 3 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2HSV) if a.ndim == 3 else None,
    ),
    (
        "rgb2ycbcr uint8",
        np.uint8,
        lambda a: color.rgb_to_ycbcr(a) if a.ndim == 3 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb) if a.ndim == 3 else None,
    ),
    (
        "rgb2lab uint8",
        np.uint8,
        lambda a: color.rgb_to_lab(a) if a.ndim == 3 else None,
        lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2Lab) if a.ndim == 3 else None,
    ),
    ("median5 uint8", np.uint8, lambda a: filters.median(a, 5), lambda a: cv2.medianBlur(a, 5)),
    (
        "bilateral5 uint8",
        np.uint8,
        lambda a: filters.bilateral(a, 5, 50, 5),
        lambda a: cv2.bilateralFilter(a, 5, 50, 5),
    ),
    (
        "canny uint8",
        np.uint8,
        lambda a: filters.canny(a, 50, 150) if a.ndim == 2 else None,
        lambda a: cv2.Canny(a, 50, 150) if a.ndim == 2 else None,
    ),
    (
        "warp_affine uint8",
        np.uint8,
        lambda a: transform.warp_affine(a, np.array([[0.9, 0.1, 5], [-0.1, 0.9, 7]]), a.shape[:2]),
        lambda a: cv2.warpAffine(a, np.array([[0.9, 0.1, 5], [-0.1, 0.9, 7]]), (a.shape[1], a.shape[0])),
    ),
    (
        "lap3 float32",
        np.float32,
        lambda a: filters.laplacian(a, ksize=3),
        lambda a: cv2.Laplacian(a, cv2.CV_32F, ksize=3),
    ),
    ("scharr uint8", np.uint8, lambda a: filters.scharr(a, 1, 0), lambda a: cv2.Scharr(a, cv2.CV_32F, 1, 0)),
]
print("| case | shape | imkern us | cv2 us | ratio |")
print("|---|---|---|---|---|")
for name, dt, fi, fc in cases:
    if only and only not in name:
        continue
    for sh in shapes:
        a = img(sh, dt)
        try:
            if fi(a) is None or fc(a) is None:
                continue
            ti, tc = t2(lambda: fi(a), lambda: fc(a))  # noqa: B023 (called before the loop moves on)
        except Exception as e:
            print(f"| {name} | {sh} | err {type(e).__name__}: {str(e)[:60]} | | |")
            continue
        flag = " **" if ti / tc > 1.0 else (" *" if ti / tc > 0.7 else "")
        print(f"| {name} | {sh} | {ti:.1f} | {tc:.1f} | {ti / tc:.2f}{flag} |", flush=True)
