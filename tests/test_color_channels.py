"""rgb_to_bgr / gray_to_rgb / rgba_to_rgb row kernels against NumPy slicing: every row length
from 1 to 200 pixels (the 16-byte group maps, the 64-byte AVX-512 permutes with their masked
first load and their tails), 3 and 4 channels, every dtype, reversed views, every ISA level,
and the uint8 swap with AVX-512 VBMI hidden (IMKERN_CPU_DISABLE, in a child process)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from imkern import color

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
WIDTHS = list(range(1, 200)) + [255, 256, 257, 1921]


def _swapped(a):
    e = a.copy()
    e[..., 0], e[..., 2] = a[..., 2], a[..., 0]
    return e


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [3, 4])
def test_swap_rb_every_width(isa, dtype, channels):
    rng = np.random.default_rng(7 + channels)
    for w in WIDTHS:
        a = (rng.random((2, w, channels)) * 250).astype(dtype)
        np.testing.assert_array_equal(color.rgb_to_bgr(a), _swapped(a), err_msg=f"w={w}")
        v = a[::-1, ::-1]  # negative strides
        np.testing.assert_array_equal(color.bgr_to_rgb(v), _swapped(v), err_msg=f"w={w} reversed")
        if channels == 4:
            np.testing.assert_array_equal(color.rgba_to_rgb(a), a[..., :3], err_msg=f"w={w}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gray_to_rgb_every_width(isa, dtype):
    rng = np.random.default_rng(5)
    for w in WIDTHS:
        g = (rng.random((3, w)) * 250).astype(dtype)
        np.testing.assert_array_equal(color.gray_to_rgb(g), np.repeat(g[..., None], 3, axis=2), err_msg=f"w={w}")


def test_swap_rb_without_vbmi():
    code = (
        "import numpy as np, imkern\n"
        "from imkern import color\n"
        "rng = np.random.default_rng(3)\n"
        "for w in list(range(1, 200)) + [1921]:\n"
        "    a = rng.integers(0, 256, (2, w, 3), dtype=np.uint8)\n"
        "    e = a[..., ::-1]\n"
        "    assert np.array_equal(color.rgb_to_bgr(a), e), w\n"
        "print('ok')\n"
    )
    env = dict(os.environ, IMKERN_CPU_DISABLE="avx512vbmi")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
