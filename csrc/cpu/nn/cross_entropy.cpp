// Cross entropy with class-index targets, forward and backward (compiled per ISA), on logits
// (N, C, S) viewed as softmax slices along C (softmax_rows.hpp).
//
// Cross entropy: per element (n, s) the log-sum-exp L, the target logit x_t and (for label
// smoothing eps) the logit sum; loss = L - (1 - eps) x_t - eps / C * sum_c x_c, 0 where the
// target is ignore_index. The mean divides the sum by the number of non-ignored elements, as
// torch (NaN when every element is ignored). Losses are kept in float64 per element and
// summed serially in index order: the same bits for any thread count.
// Backward: g = scale * (softmax(x) - (1 - eps) onehot(t) - eps / C), the exps of the sum
// written into g and scaled in place.
// Layouts: S == 1 (logits (N, C)) runs along contiguous rows, two passes per row (the maximum,
// then the sum of exp(x - max) from L1 with the next row prefetched); float32 at AVX2 /
// AVX-512 with softmax's table exp and two accumulators per pass (texp, softmax_rows.hpp).
// 4096x1000 float32 forward, 1 thread, thread time on the Xeon (AVX-512): 0.86 ms from 1.70
// with row_max / row_sum_exp (one accumulator each, vm::exp_nonpos: latency-bound chains).
// Bytes/element: sizeof(T) forward (2 sizeof(T) backward); FLOPs/element ~16 (one exp).
// S > 1 runs blocks of up to 256 contiguous positions, the C loop outermost.
// Variants: float32 (vector exp) and float64 (libm exp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "common/vmath.hpp"
#include "nn/softmax_rows.hpp"

// GCC 12 reports _mm512_undefined_*() inside the AVX-512 intrinsics of the table exp
// (softmax_rows.hpp, texp) as maybe-uninitialized: a false positive (see softmax.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {
namespace {

using namespace softmax_detail;

// ---- cross entropy -------------------------------------------------------------------------
// The maximum m of a contiguous row and s = sum exp(x - m) (the terms stored into e when e is
// not null), the next row pf (or null) prefetched during the exp pass. float32 at AVX2 /
// AVX-512 uses softmax's table exp (texp: 13 vector ops per exp against vm::exp_nonpos's 17,
// two accumulators in both passes; terms under 2^-126 flush to 0, which a sum of at least 1
// cannot see); the baseline and float64 use row_max / row_sum_exp.
inline void row_stats(const float* xr, int64_t C, const float* pf, float* e, float& m, double& s) {
#if defined(IMKERN_SOFTMAX_TEXP)
  m = texp::row_max(xr, C);
  s = texp::row_sum_exp(xr, m, e, C, pf);
#else
  m = row_max(xr, C);
  s = row_sum_exp(xr, m, e, C, pf);
#endif
}
inline void row_stats(const double* xr, int64_t C, const double*, double* e, double& m, double& s) {
  m = row_max(xr, C);
  s = row_sum_exp(xr, m, e, C);
}

// sum_i (x[i] - m) in float64 (label smoothing), vectorized: float32 half-vectors widened to
// native-width float64 vectors (a full float vector widened would be twice the register width,
// which GCC spills to the stack), four accumulators, their lanes added in order (a fixed
// order: the row alone decides the bits). A float64 difference of two floats is exact when
// their exponents are within 29.
inline double row_sum_diff(const float* x, float m, int64_t n) {
  constexpr int64_t H = vm::LF / 2;  // float64 lanes in a vector
  using hf = vm::vecn_t<float, H>;
  using vd = vm::vecn_t<double, H>;
  const double md = m;
  const auto wide = [&](int64_t i) {
    hf h;
    std::memcpy(&h, x + i, sizeof(h));
    return __builtin_convertvector(h, vd) - md;
  };
  vd a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 4 * H <= n; i += 4 * H) {
    a0 += wide(i);
    a1 += wide(i + H);
    a2 += wide(i + 2 * H);
    a3 += wide(i + 3 * H);
  }
  a0 = (a0 + a1) + (a2 + a3);
  double s = 0.0;
  for (int64_t k = 0; k < H; ++k) s += a0[k];
  for (; i < n; ++i) s += static_cast<double>(x[i]) - md;
  return s;
}
inline double row_sum_diff(const double* x, double m, int64_t n) {
  double s0 = 0.0, s1 = 0.0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    s0 += x[i] - m;
    s1 += x[i + 1] - m;
  }
  if (i < n) s0 += x[i] - m;
  return s0 + s1;
}

// y[i] = y[i] * a - b.
inline void affine_inplace(float* y, float a, float b, int64_t n) {
  vm::map1(y, y, n, [=](vm::vf v) { return v * a - b; });
}
inline void affine_inplace(double* y, double a, double b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] * a - b;
}

// For each element (n, s) of a block: per-element loss (float64), and optionally the
// gradient. Calls fn(n, s0, B, M[], S[], sumd[]) with the row max M, the sum of exp(x - M)
// and (need_sumd) the sum of x - M (float64; label smoothing), so that no term is ever
// formed as a difference of two large numbers (M + log S - x_t cancels for logits ~1e6).
template <typename T, typename F>
void ce_blocks(const T* x, int64_t N, int64_t C, int64_t S, bool need_sumd, F&& fn) {
  if (S == 1) {
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
    parallel_for(0, N, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
        T m;
        double s;
        row_stats(xr, C, r + 1 < r1 ? xr + C : nullptr, static_cast<T*>(nullptr), m, s);
        double sd = 0;
        if (need_sumd) sd = row_sum_diff(xr, m, C);
        fn(r, int64_t(0), int64_t(1), &m, &s, &sd);
      }
    });
    return;
  }
  const int64_t nb = (S + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C * std::min(S, kBlock), 1));
  parallel_for(0, N * nb, grain, [&](int64_t t0, int64_t t1) {
    T mx[kBlock], e[kBlock];
    double sm[kBlock], sd[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb, s0 = (t % nb) * kBlock, B = std::min(kBlock, S - s0);
      const T* xs = x + n * C * S + s0;
      std::fill(mx, mx + B, -std::numeric_limits<T>::infinity());
      std::fill(sm, sm + B, 0.0);
      std::fill(sd, sd + B, 0.0);
      for (int64_t c = 0; c < C; ++c) {
        const T* xr = xs + c * S;
        for (int64_t j = 0; j < B; ++j) mx[j] = vm::nanmax_s(mx[j], xr[j]);
      }
      for (int64_t c = 0; c < C; ++c) {
        exp_diff(xs + c * S, mx, e, B);
        for (int64_t j = 0; j < B; ++j) sm[j] += e[j];
        if (need_sumd)
          for (int64_t j = 0; j < B; ++j) sd[j] += static_cast<double>(xs[c * S + j]) - static_cast<double>(mx[j]);
      }
      fn(n, s0, B, mx, sm, sd);
    }
  });
}

// sum_i log(s_i) over row sums (s_i >= 1, or NaN) as one log: the product of the significands
// (in [1, 2), renormalized every 512 factors so it stays finite) and the sum of the exponents,
// so that a mean over N rows takes one libm log instead of N (~6% of the 4096x1000 forward).
// The product's rounding adds at most ~N 2^-53 to the log (absolute): 5e-13 for N = 4096, and
// every term of the loss sum is non-negative, so nothing cancels. A NaN s (a NaN logit, or a
// row of -inf) makes the result NaN, as log would (any positive normal s is handled).
class LogSum {
 public:
  void add(double s) {
    if (!(s >= std::numeric_limits<double>::min() && s <= std::numeric_limits<double>::max())) {
      nan_ = true;
      return;
    }
    m_ *= split(s, e_);
    if (++k_ == 512) {
      m_ = split(m_, e_);
      k_ = 0;
    }
  }
  double value() const {
    if (nan_) return std::numeric_limits<double>::quiet_NaN();
    return std::log(m_) + static_cast<double>(e_) * 0.69314718055994530942;
  }

 private:
  // The significand of a positive normal v (in [1, 2)); its exponent is added to e.
  static double split(double v, int64_t& e) {
    uint64_t b;
    std::memcpy(&b, &v, sizeof(b));
    e += static_cast<int64_t>(b >> 52) - 1023;
    b = (b & ((uint64_t(1) << 52) - 1)) | (uint64_t(1023) << 52);
    std::memcpy(&v, &b, sizeof(v));
    return v;
  }
  double m_ = 1.0;
  int64_t e_ = 0;
  int k_ = 0;
  bool nan_ = false;
};

// loss = (1 - eps) (M - x_t) + eps (-Sd / C) + log S per element; "none" writes each (one log
// each), "mean" / "sum" add the first two terms in index order and the logs through LogSum
// (serial, index order: the same bits for any thread count).
template <typename T>
double ce_impl(const T* x, const int64_t* tgt, T* loss_out, int64_t N, int64_t C, int64_t S, int64_t ignore,
               double eps, Reduction red) {
  const bool none = red == Reduction::none;
  std::vector<double> loss(static_cast<size_t>(N * S)), sums(none ? 0 : static_cast<size_t>(N * S));
  ce_blocks<T>(x, N, C, S, eps != 0.0, [&](int64_t n, int64_t s0, int64_t B, const T* M, const double* Sm,
                                            const double* Sd) {
    for (int64_t j = 0; j < B; ++j) {
      const int64_t i = n * S + s0 + j, t = tgt[i];
      double l = 0.0, sm = 1.0;
      if (t != ignore) {
        // -log softmax(x)_t = (M - x_t) + log S; with smoothing, mean_c (M - x_c) + log S.
        const double xt = static_cast<double>(x[(n * C + t) * S + s0 + j]);
        l = (1.0 - eps) * (static_cast<double>(M[j]) - xt);
        if (eps != 0.0) l -= eps * (Sd[j] / static_cast<double>(C));
        if (none)
          l += std::log(Sm[j]);
        else
          sm = Sm[j];
      }
      loss[static_cast<size_t>(i)] = l;
      if (!none) sums[static_cast<size_t>(i)] = sm;
    }
  });
  const int64_t total = N * S;
  if (none) {
    for (int64_t i = 0; i < total; ++i) loss_out[i] = static_cast<T>(loss[static_cast<size_t>(i)]);
    return 0.0;
  }
  double sum = 0.0;
  int64_t count = 0;
  LogSum logs;
  for (int64_t i = 0; i < total; ++i) {
    sum += loss[static_cast<size_t>(i)];
    if (tgt[i] != ignore) {
      ++count;
      logs.add(sums[static_cast<size_t>(i)]);
    }
  }
  sum += logs.value();
  if (red == Reduction::sum) return sum;
  return count ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
}

template <typename T>
void ce_backward_impl(const T* x, const int64_t* tgt, T* g, int64_t N, int64_t C, int64_t S, int64_t ignore,
                      double eps, Reduction red) {
  double scale = 1.0;
  if (red == Reduction::mean) {
    int64_t count = 0;
    for (int64_t i = 0; i < N * S; ++i) count += tgt[i] != ignore;
    scale = count ? 1.0 / static_cast<double>(count) : 0.0;
  }
  const T sc = static_cast<T>(scale);
  const T off = static_cast<T>(scale * eps / static_cast<double>(C));
  const T hit = static_cast<T>(scale * (1.0 - eps));
  if (S == 1) {
    // Rows: the terms exp(x - m) go into the gradient row as the sum is formed (row_stats, the
    // exp of the forward), then g = e * (scale / sum) - off in place (L1) and the target's -hit.
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
    parallel_for(0, N, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t t = tgt[r];
        T* gc = g + r * C;
        if (t == ignore) {
          std::fill(gc, gc + C, T(0));
          continue;
        }
        T m;
        double sm;
        row_stats(x + r * C, C, r + 1 < r1 ? x + (r + 1) * C : nullptr, gc, m, sm);
        affine_inplace(gc, static_cast<T>(sc / sm), off, C);
        gc[t] -= hit;
      }
    });
    return;
  }
  ce_blocks<T>(x, N, C, S, false, [&](int64_t n, int64_t s0, int64_t B, const T* M, const double* Sm, const double*) {
    T inv[kBlock], e[kBlock];
    bool keep[kBlock];
    for (int64_t j = 0; j < B; ++j) {
      keep[j] = tgt[n * S + s0 + j] != ignore;
      inv[j] = keep[j] ? static_cast<T>(sc / Sm[j]) : T(0);
    }
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = (n * C + c) * S + s0;
      exp_diff(x + o, M, e, B);
      for (int64_t j = 0; j < B; ++j) g[o + j] = keep[j] ? e[j] * inv[j] - off : T(0);
    }
    for (int64_t j = 0; j < B; ++j)
      if (keep[j]) g[(n * C + tgt[n * S + s0 + j]) * S + s0 + j] -= hit;
  });
}

}  // namespace

double cross_entropy(DType dtype, const void* logits, const int64_t* target, void* loss, int64_t n, int64_t c,
                     int64_t s, int64_t ignore_index, double label_smoothing, Reduction r) {
  double res = 0.0;
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    res = ce_impl<T>(static_cast<const T*>(logits), target, static_cast<T*>(loss), n, c, s, ignore_index,
                     label_smoothing, r);
  });
  return res;
}

void cross_entropy_backward(DType dtype, const void* logits, const int64_t* target, void* grad, int64_t n,
                            int64_t c, int64_t s, int64_t ignore_index, double label_smoothing, Reduction r) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    ce_backward_impl<T>(static_cast<const T*>(logits), target, static_cast<T*>(grad), n, c, s, ignore_index,
                        label_smoothing, r);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
