"""Max and average pooling of narrow rows: fewer output columns than the native vector has
lanes (16x16 -> 8x8 planes at AVX-512 float32) take a half- or quarter-width vector path
instead of the scalar loop. Every width from 1 to 40 columns, strides 1 and 2, padding,
dilation, ceil mode, NaN / -inf / ties, with and without indices, every ISA level: equal to the
reference (max: bit for bit, indices included; average: within the dtype's tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern.nn import functional as F
from imkern.reference import nn as R

# (kernel, stride, padding, dilation, ceil_mode)
MAX_ARGS = [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 1, False), (2, 1, 0, 2, False), (2, 2, 1, 1, True)]
AVG_ARGS = [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), (2, 1, 0, True)]
WIDTHS = [1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 18, 20, 23, 24, 31, 33, 40]


def _images(rng, dtype, w):
    x = random_array(rng, (2, 3, 9, w), dtype)
    u = rng.random(x.shape)
    x[u < 0.04] = np.nan
    x[(u >= 0.04) & (u < 0.12)] = -np.inf
    x[:, 1, 4:6] = 0.5  # ties: the first in scan order wins
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_narrow_rows_every_isa(rng, dtype):
    before = imkern.get_cpu_isa()
    try:
        for w in WIDTHS:
            x = _images(rng, dtype, w)
            for args in MAX_ARGS:
                k, s, p, d, ceil = args
                if (k - 1) * d + 1 > w + 2 * p or 2 * p > k:
                    continue
                ry, ri = R.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
                for isa in imkern.info()["cpu_isa_available"]:
                    imkern.set_cpu_isa(isa)
                    y, i = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
                    msg = f"{isa} w={w} {args}"
                    np.testing.assert_array_equal(y, ry, err_msg=msg)
                    np.testing.assert_array_equal(i, ri, err_msg=msg)
                    np.testing.assert_array_equal(F.max_pool2d(x, k, s, p, d, ceil), ry, err_msg=msg)
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_narrow_rows_every_isa(rng, dtype):
    before = imkern.get_cpu_isa()
    try:
        for w in WIDTHS:
            x = random_array(rng, (2, 3, 9, w), dtype)
            for k, s, p, cip in AVG_ARGS:
                if k > w + 2 * p or 2 * p > k:
                    continue
                r = R.avg_pool2d(x, k, s, p, False, cip)
                for isa in imkern.info()["cpu_isa_available"]:
                    imkern.set_cpu_isa(isa)
                    assert_close(F.avg_pool2d(x, k, s, p, False, cip), r, dtype)
    finally:
        imkern.set_cpu_isa(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_average_pool_every_isa(rng, dtype):
    """adaptive_avg_pool2d(x, 1): within test_pool_global's bound of the float64 mean (4 ulps
    plus the sums' rounding where the values cancel: an rtol of 4 ulps alone failed now and then
    for a float64 mean of -0.02 from values of +-1), over plane sizes from 1 pixel to 300x300,
    every ISA level and thread count."""
    from test_pool_global import _assert_mean

    before, threads = imkern.get_cpu_isa(), imkern.get_num_threads()
    try:
        for shape in [(2, 3, 1, 1), (1, 5, 1, 7), (3, 4, 4, 4), (2, 3, 8, 8), (1, 2, 33, 65), (1, 2, 300, 300)]:
            x = random_array(rng, shape, dtype) + 0.25
            first = None
            for isa in imkern.info()["cpu_isa_available"]:
                for t in (1, 2):
                    imkern.set_cpu_isa(isa)
                    imkern.set_num_threads(t)
                    y = F.adaptive_avg_pool2d(x, 1)
                    assert y.shape == shape[:2] + (1, 1) and y.dtype == dtype
                    _assert_mean(y, x, f"{shape} {isa} threads={t}")
                    if first is None:
                        first = y
                    np.testing.assert_array_equal(y, first)  # the same bits everywhere
    finally:
        imkern.set_cpu_isa(before)
        imkern.set_num_threads(threads)
