"""Cross entropy over (N, C) logits: the row kernels (cross_entropy.cpp with softmax_rows.hpp's
texp rows at AVX2 / AVX-512, row_max / row_sum_exp at the baseline ISA and in float64) at every
ISA level. Row lengths around the vector widths (8, 16) and the sum blocks (1024), more than 512
kept rows (LogSum's renormalization of the mean's product of sums: the 3000-row accuracy test
and the 560-row thread test), ignored rows, label
smoothing, -inf / NaN / +inf / huge logits, the backward's in-place scaling, strided and
negative-stride views, 1 vs 3 threads bit for bit, and the binding's target check."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import imkern
from conftest import assert_close, random_array
from imkern.nn import functional as F
from imkern.reference import nn as R

WIDTHS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 65, 1000, 1023, 1024, 1025, 2049]


def _inputs(rng, n, c, dtype, ignore=-100, frac_ignored=0.2):
    x = random_array(rng, (n, c), dtype, -20, 20)
    t = rng.integers(0, c, size=n)
    t[rng.random(n) < frac_ignored] = ignore
    return x, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", WIDTHS)
def test_cross_entropy_rows_match_reference(rng, isa, C, dtype):
    n = max(3, min(600, 60000 // C))
    x, t = _inputs(rng, n, C, dtype)
    x[0, 0] = 5000.0  # large logits must not overflow
    for ls in (0.0, 0.1):
        for red in ("mean", "sum", "none"):
            kw = dict(reduction=red, label_smoothing=ls)
            scale = 20.0 * (n if red == "sum" else 1)
            msg = f"{isa} C={C} {red} ls={ls}"
            assert_close(F.cross_entropy(x, t, **kw), R.cross_entropy(x, t, **kw), dtype, scale=scale, err_msg=msg)
            g = F.cross_entropy_backward(x, t, **kw)
            assert_close(g, R.cross_entropy_backward(x, t, **kw), dtype, err_msg=msg)
        # ignored rows get a zero gradient; a kept row's gradient sums to 0 (softmax - onehot)
        assert not np.any(g[t == -100]), isa
        sums = g[t != -100].astype(np.float64).sum(1)
        assert np.max(np.abs(sums), initial=0.0) < (1e-5 + C * 1e-7 if dtype == np.float32 else 1e-12), msg


def test_cross_entropy_rows_mean_accuracy(rng, isa):
    # Logits on a 2^-10 grid (x - max exact in float32): the mean over 3000 kept rows (the
    # product of the row sums renormalized several times) within a few float32 ulp of the
    # float64 reference, and the float64 kernel within 1e-12.
    x = (np.round(rng.uniform(-8, 8, size=(3000, 100)) * 1024) / 1024).astype(np.float32)
    t = rng.integers(0, 100, size=3000)
    ref = float(R.cross_entropy(x.astype(np.float64), t))
    assert abs(float(F.cross_entropy(x, t)) - ref) <= 4 * np.spacing(np.float32(ref)), isa
    assert abs(float(F.cross_entropy(x.astype(np.float64), t)) - ref) < 1e-12 * ref, isa
    s = float(R.cross_entropy(x.astype(np.float64), t, reduction="sum"))
    assert abs(float(F.cross_entropy(x.astype(np.float64), t, reduction="sum")) - s) < 1e-12 * s, isa
    # label smoothing (the float64 sums of x - max), also around a large offset
    for off in (0.0, 1.0e5):
        xo = x + np.float32(off)
        ref = float(R.cross_entropy(xo.astype(np.float64), t, label_smoothing=0.3))
        got = float(F.cross_entropy(xo, t, label_smoothing=0.3))
        assert abs(got - ref) <= 4 * np.spacing(np.float32(ref)), f"{isa} {off}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [1, 5, 16, 17, 1000, 1025])
def test_cross_entropy_rows_special_values(rng, isa, C, dtype):
    x = random_array(rng, (8, C), dtype, -5, 5)
    t = np.full(8, C - 1)
    k = C // 2
    x[1, :] = -np.inf
    x[1, k] = 3.0  # one finite logit among -inf: loss 0 when it is the target, +inf otherwise
    t[1] = k
    x[2, k] = np.nan  # NaN makes the row's loss NaN
    x[3, k] = np.inf  # +inf: inf - inf, NaN (as the reference and torch)
    x[4, :] = 3.0e38  # huge equal logits: log C
    x[6, :] = -np.inf  # all -inf: NaN
    x[7, 0] = 1.0e4  # the rest underflow
    none = F.cross_entropy(x, t, reduction="none")
    assert none[1] == 0.0 and np.isnan(none[[2, 3, 6]]).all(), isa
    np.testing.assert_allclose(none[4], np.log(C), rtol=1e-6, atol=1e-6)
    if C > 1:
        assert none[7] == pytest.approx(1.0e4 - x[7, C - 1], rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = R.cross_entropy(x, t, reduction="none")
    np.testing.assert_array_equal(np.isnan(none)[2:], np.isnan(ref)[2:])  # (the reference's row 1 is NaN)
    ok = [0, 4, 5, 7]
    assert_close(none[ok], ref[ok], dtype, scale=20.0, err_msg=isa)
    # a NaN row makes the mean and the sum NaN unless its target is ignored
    for red in ("mean", "sum"):
        assert np.isnan(F.cross_entropy(x, t, reduction=red)), isa
        tk = t.copy()
        tk[[1, 2, 3, 6]] = -100
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the reference's ignored -inf row
            rk = R.cross_entropy(x, tk, reduction=red)
        assert_close(F.cross_entropy(x, tk, reduction=red), rk, dtype, scale=200.0, err_msg=isa)
    g = F.cross_entropy_backward(x, t)
    assert np.isnan(g[[2, 3, 6]]).all() and np.isfinite(g[[0, 1, 4, 5, 7]]).all(), isa


@pytest.mark.parametrize("C", [17, 1000])
def test_cross_entropy_rows_views(rng, isa, C):
    x = random_array(rng, (9, 2 * C + 3), np.float32, -20, 20)
    t = rng.integers(0, C, size=9)
    t[4] = -100
    x0 = x.copy()  # the input, to check it is left unchanged
    for v in [x[:, :C], x[:, 1 : C + 1], x[:, ::2][:, :C], x[::-1, :C], x[:, ::-1][:, :C]]:
        c = np.ascontiguousarray(v)
        for red in ("mean", "none"):
            np.testing.assert_array_equal(F.cross_entropy(v, t, reduction=red), F.cross_entropy(c, t, reduction=red))
        np.testing.assert_array_equal(F.cross_entropy_backward(v, t), F.cross_entropy_backward(c, t))
        np.testing.assert_array_equal(F.cross_entropy(c, t[::-1].copy()), F.cross_entropy(c, t[::-1]))
        for tt in (t.astype(np.int32), t.astype(">i8").astype(np.int64), t.astype(np.int16)):
            r = F.cross_entropy(c, tt)
            assert r.shape == () and r.dtype == np.float32 and isinstance(r, np.ndarray)
            np.testing.assert_array_equal(r, F.cross_entropy(c, t))
    with pytest.raises(TypeError, match="non-native byte order"):
        F.cross_entropy(np.ascontiguousarray(x[:, :C]), t.astype(">i8"))
    with pytest.raises(TypeError, match="without wrapping"):
        F.cross_entropy(np.ascontiguousarray(x[:, :C]), t.clip(0).astype(np.uint64))
    np.testing.assert_array_equal(x, x0)  # (was x against x.copy(): a check that cannot fail)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_rows_bits_independent_of_threads(rng, isa, dtype):
    x, t = _inputs(rng, 700, 1000, dtype)
    x[5, 3] = np.nan
    t[5] = -100  # a NaN row that is ignored
    before = imkern.get_num_threads()
    try:
        res = {}
        for n in (1, 3):
            imkern.set_num_threads(n)
            res[n] = [F.cross_entropy(x, t, reduction=r, label_smoothing=ls) for r in ("mean", "sum", "none")
                      for ls in (0.0, 0.2)] + [F.cross_entropy_backward(x, t, label_smoothing=0.1)]
        for a, b in zip(res[1], res[3]):
            np.testing.assert_array_equal(a, b, err_msg=isa)
    finally:
        imkern.set_num_threads(before)


def test_cross_entropy_bad_target_message():
    # NumPy targets are checked by the binding, which names the first bad value.
    x = np.zeros((4, 3), np.float32)
    for t, v in (([0, 1, 2, 3], 3), ([0, -5, 2, -100], -5), ([7, -1, 0, 0], 7)):
        for f in (F.cross_entropy, F.cross_entropy_backward):
            with pytest.raises(ValueError, match=rf"class index {v} is outside \[0, 3\) and is not ignore_index=-100"):
                f(x, np.array(t))
    with pytest.raises(ValueError, match="class index -100 is outside"):
        F.cross_entropy(x, np.array([0, -100, 1, 1]), ignore_index=-1)
    assert np.isfinite(F.cross_entropy(x, np.array([0, -1, 1, 1]), ignore_index=-1))


def test_cross_entropy_bad_arguments():
    # Bad targets and ignore_index raise before any kernel runs: TypeError for a dtype or type
    # (naming the argument and the dtype), ValueError for a value (naming it); the binding's
    # class check (NumPy targets) for every layout and target dtype that reaches it: spatial
    # targets, narrow integer targets (converted to int64 first), out=, reduction="none" and
    # the backward. (torch: RuntimeError for the dtypes, IndexError "Target 7 is out of
    # bounds." for the values; the package's convention is TypeError / ValueError.)
    x = np.zeros((4, 3), np.float32)
    for t, name in ((np.array([0, 1, 2, 0.0]), "float64"), (np.array([True, False, True, False]), "bool"),
                    (np.array([0, 1, 2, 0], object), "object")):
        for f in (F.cross_entropy, F.cross_entropy_backward):
            with pytest.raises(TypeError, match=rf"target: expected integer class indices .* got {name}"):
                f(x, t)
    for bad, exc, msg in ((2**63, ValueError, "ignore_index: expected a value in the int64 range, got 9223372036854775808"),
                          (-(2**63) - 1, ValueError, "ignore_index: expected a value in the int64 range"),
                          (-1.5, TypeError, "ignore_index: expected an int, got float")):
        with pytest.raises(exc, match=msg):
            F.cross_entropy(x, np.array([0, 1, 2, 0]), ignore_index=bad)
    xs = np.zeros((2, 3, 5), np.float32)  # (N, C, S): targets (2, 5)
    ts = np.zeros((2, 5), np.int64)
    ts[1, 3] = 3
    for tt in (ts, ts.astype(np.int32), ts.astype(np.int8)):
        for kw in (dict(), dict(reduction="sum"), dict(reduction="none"), dict(out=np.empty((), np.float32))):
            with pytest.raises(ValueError, match=r"target: class index 3 is outside \[0, 3\) and is not ignore_index=-100"):
                F.cross_entropy(xs, tt, **kw)
        with pytest.raises(ValueError, match="class index 3 is outside"):
            F.cross_entropy_backward(xs, tt)
    ts[1, 3] = -(2**63)  # the smallest int64 (no overflow in the check or the message)
    with pytest.raises(ValueError, match=r"class index -9223372036854775808 is outside \[0, 3\)"):
        F.cross_entropy(xs, ts)
    ts[1, 3] = -100  # ignored: fine again, and a narrow dtype's -100 is ignore_index too
    for tt in (ts, ts.astype(np.int8)):
        assert np.isfinite(F.cross_entropy(xs, tt))
