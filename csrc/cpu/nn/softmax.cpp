// Softmax / log-softmax over one axis and cross entropy with class-index targets (compiled
// per ISA).
//
// Softmax of an (outer, c, inner) array along c, three passes over each slice: the maximum M,
// then e = exp(x - M) and its sum S, then y = e / S (softmax) or y = x - M - log S
// (log-softmax). Max subtraction keeps every exp in (0, 1], so large logits never overflow;
// exps come from vm::exp_nonpos (no overflow handling needed). NaN: a NaN logit makes its exp
// term, the sum and so the whole slice NaN (the float32 row maximum skips NaN: one vmaxps).
// Bytes/element: 2 * sizeof(T) (the slice stays in cache between passes); FLOPs/element ~20
// (one exp).
// Layouts: inner == 1 (softmax over the last axis) runs along contiguous rows with
// simd::vec_t<float>, the next row prefetched during the exp pass; float32 softmax rows of up
// to 8192 keep e in a per-chunk scratch row and stream y = e / S out with non-temporal stores
// (no read-for-ownership of y). inner > 1 processes blocks of up to 256 contiguous inner
// positions at once, the c loop outermost, so the loads are contiguous too.
// Cross entropy: per element (n, s) the log-sum-exp L, the target logit x_t and (for label
// smoothing eps) the logit sum; loss = L - (1 - eps) x_t - eps / C * sum_c x_c, 0 where the
// target is ignore_index. The mean divides the sum by the number of non-ignored elements, as
// torch (NaN when every element is ignored). Losses are kept in float64 per element and
// summed serially in index order: the same bits for any thread count.
// Variants: float32 (vector exp) and float64 (libm exp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "imkern/nn_ops.hpp"
#include "imkern/parallel.hpp"
#include "common/vmath.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

constexpr int64_t kBlock = 256;  // inner positions processed together (inner > 1)

// ---- contiguous-row primitives -------------------------------------------------------------
inline float row_max(const float* x, int64_t n) {
  using vm::vf;
  constexpr int L = vm::LF;
  int64_t i = 0;
  float m = -std::numeric_limits<float>::infinity();
  if (n >= L) {
    vf mv = simd::splat(m);
    // Plain maximum (one vmaxps): a NaN element is skipped here but makes its exp term, hence
    // the row sum and every output of the row, NaN anyway.
    for (; i + L <= n; i += L) {
      const vf v = simd::loadu(x + i);
      mv = v > mv ? v : mv;
    }
    for (int k = 0; k < L; ++k) m = vm::nanmax_s(m, mv[k]);
  }
  for (; i < n; ++i) m = vm::nanmax_s(m, x[i]);
  return m;
}
inline double row_max(const double* x, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = vm::nanmax_s(m, x[i]);
  return m;
}

// Returns sum_i exp(x[i] - m); stores the terms into e when e is not null. pf_x / pf_e (the
// next row, or null) are prefetched alongside, so the next row's loads overlap this row's exps.
inline float row_sum_exp(const float* x, float m, float* e, int64_t n, const float* pf_x = nullptr,
                         const float* pf_e = nullptr) {
  using vm::vf;
  constexpr int L = vm::LF;
  vf acc = simd::splat(0.0f);
  const vf mv = simd::splat(m);
  int64_t i = 0;
  constexpr int kLine = 64 / sizeof(float);
  for (; i + L <= n; i += L) {
    if (i % kLine == 0) {
      if (pf_x) __builtin_prefetch(pf_x + i, 0, 3);
      if (pf_e) __builtin_prefetch(pf_e + i, 1, 3);
    }
    const vf t = vm::exp_nonpos(simd::loadu(x + i) - mv);
    if (e) simd::storeu(e + i, t);
    acc += t;
  }
  if (i < n) {
    float buf[L];
    for (int k = 0; k < L; ++k) buf[k] = -std::numeric_limits<float>::infinity();
    std::memcpy(buf, x + i, sizeof(float) * (n - i));
    vf t = vm::exp_nonpos(simd::loadu(buf) - mv);
    for (int64_t k = n - i; k < L; ++k) t[k] = 0.0f;  // NaN-safe padding when m is inf
    if (e) {
      simd::storeu(buf, t);
      std::memcpy(e + i, buf, sizeof(float) * (n - i));
    }
    acc += t;
  }
  float s = 0.0f;
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}
inline double row_sum_exp(const double* x, double m, double* e, int64_t n, const double* = nullptr,
                          const double* = nullptr) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double t = std::exp(x[i] - m);
    if (e) e[i] = t;
    s += t;
  }
  return s;
}

// e[j] = exp(x[j] - m[j]).
inline void exp_diff(const float* x, const float* m, float* e, int64_t n) {
  vm::map2(x, m, e, n, [](vm::vf a, vm::vf b) { return vm::exp_nonpos(a - b); });
}
inline void exp_diff(const double* x, const double* m, double* e, int64_t n) {
  for (int64_t j = 0; j < n; ++j) e[j] = std::exp(x[j] - m[j]);
}

// y[i] = exp(x[i] - m) * scale - off.
inline void exp_scaled(const float* x, float m, float scale, float off, float* y, int64_t n) {
  vm::map1(x, y, n, [=](vm::vf v) { return vm::exp_nonpos(v - m) * scale - off; });
}
inline void exp_scaled(const double* x, double m, double scale, double off, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - m) * scale - off;
}

// y[i] = e[i] * inv; the 64-byte-aligned middle of y (a whole vector per store where the ISA
// has one of 32 or 64 bytes) is written with non-temporal stores: the output row is not read
// back here, and skipping its read-for-ownership saves a third of the memory traffic. The
// values are the same bits as plain stores. Callers end their chunk with an sfence.
inline void scale_store_stream(const float* e, float inv, float* y, int64_t n) {
#if defined(__AVX512F__) || defined(__AVX__)
#if defined(__AVX512F__)
  constexpr int64_t W = 16;
#else
  constexpr int64_t W = 8;
#endif
  int64_t i = 0;
  const int64_t head = static_cast<int64_t>(((W * 4) - (reinterpret_cast<uintptr_t>(y) & (W * 4 - 1))) & (W * 4 - 1)) / 4;
  if ((reinterpret_cast<uintptr_t>(y) & 3) == 0 && n >= head + W) {
    for (; i < head; ++i) y[i] = e[i] * inv;
    for (; i + W <= n; i += W) {
#if defined(__AVX512F__)
      _mm512_stream_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(e + i), _mm512_set1_ps(inv)));
#else
      _mm256_stream_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(e + i), _mm256_set1_ps(inv)));
#endif
    }
  }
  for (; i < n; ++i) y[i] = e[i] * inv;
#else
  for (int64_t i = 0; i < n; ++i) y[i] = e[i] * inv;
#endif
}
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

constexpr int64_t kStreamRowMax = 8192;  // rows up to this many floats go through an L1/L2 scratch

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t C, bool log) {
  if constexpr (std::is_same<T, float>::value) {
    if (!log && C <= kStreamRowMax) {
      // exp(x - M) into a per-chunk scratch row, then y = e / S streamed out.
      const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
      parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
        std::vector<float> e(static_cast<size_t>(C));
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * C;
          const float m = row_max(xr, C);
          const float s = row_sum_exp(xr, m, e.data(), C, r + 1 < r1 ? xr + C : nullptr);
          scale_store_stream(e.data(), 1.0f / s, y + r * C, C);
        }
        stream_fence();
      });
      return;
    }
  }
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      const T m = row_max(xr, C);
      const T* pfx = r + 1 < r1 ? xr + C : nullptr;
      T* pfy = r + 1 < r1 ? yr + C : nullptr;
      if (log) {
        const T s = row_sum_exp(xr, m, static_cast<T*>(nullptr), C, pfx, pfy);
        const T ls = std::log(s);
        for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] - m - ls;
      } else {
        const T s = row_sum_exp(xr, m, yr, C, pfx, pfy);
        const T inv = T(1) / s;
        for (int64_t i = 0; i < C; ++i) yr[i] *= inv;
      }
    }
  });
}

template <typename T>
void softmax_strided(const T* x, T* y, int64_t outer, int64_t C, int64_t inner, bool log) {
  const int64_t nb = (inner + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C * std::min(inner, kBlock), 1));
  parallel_for(0, outer * nb, grain, [&](int64_t t0, int64_t t1) {
    T mx[kBlock], sm[kBlock], e[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / nb, b0 = (t % nb) * kBlock, B = std::min(kBlock, inner - b0);
      const T* xs = x + o * C * inner + b0;
      T* ys = y + o * C * inner + b0;
      std::fill(mx, mx + B, -std::numeric_limits<T>::infinity());
      std::fill(sm, sm + B, T(0));
      for (int64_t c = 0; c < C; ++c) {
        const T* xr = xs + c * inner;
        for (int64_t j = 0; j < B; ++j) mx[j] = vm::nanmax_s(mx[j], xr[j]);
      }
      for (int64_t c = 0; c < C; ++c) {
        exp_diff(xs + c * inner, mx, e, B);
        for (int64_t j = 0; j < B; ++j) sm[j] += e[j];
        if (!log) std::copy(e, e + B, ys + c * inner);
      }
      if (log) {
        for (int64_t j = 0; j < B; ++j) sm[j] = mx[j] + std::log(sm[j]);
        for (int64_t c = 0; c < C; ++c) {
          const T* xr = xs + c * inner;
          T* yr = ys + c * inner;
          for (int64_t j = 0; j < B; ++j) yr[j] = xr[j] - sm[j];
        }
      } else {
        for (int64_t j = 0; j < B; ++j) sm[j] = T(1) / sm[j];
        for (int64_t c = 0; c < C; ++c) {
          T* yr = ys + c * inner;
          for (int64_t j = 0; j < B; ++j) yr[j] *= sm[j];
        }
      }
    }
  });
}

template <typename F>
void visit_float(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default: throw std::invalid_argument("imkern: the CPU nn kernels take float32 or float64");
  }
}

// ---- cross entropy -------------------------------------------------------------------------
// For each element (n, s) of a block: per-element loss (float64), and optionally the
// gradient. Calls fn(n, s0, B, M[], S[], sumx[]) with the row max, sum of exp and logit sum.
template <typename T, typename F>
void ce_blocks(const T* x, int64_t N, int64_t C, int64_t S, bool need_sumx, F&& fn) {
  if (S == 1) {
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
    parallel_for(0, N, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
        T m = row_max(xr, C);
        T s = row_sum_exp(xr, m, static_cast<T*>(nullptr), C, r + 1 < r1 ? xr + C : nullptr);
        T sx = 0;
        if (need_sumx)
          for (int64_t c = 0; c < C; ++c) sx += xr[c];
        fn(r, int64_t(0), int64_t(1), &m, &s, &sx);
      }
    });
    return;
  }
  const int64_t nb = (S + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C * std::min(S, kBlock), 1));
  parallel_for(0, N * nb, grain, [&](int64_t t0, int64_t t1) {
    T mx[kBlock], sm[kBlock], sx[kBlock], e[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb, s0 = (t % nb) * kBlock, B = std::min(kBlock, S - s0);
      const T* xs = x + n * C * S + s0;
      std::fill(mx, mx + B, -std::numeric_limits<T>::infinity());
      std::fill(sm, sm + B, T(0));
      std::fill(sx, sx + B, T(0));
      for (int64_t c = 0; c < C; ++c) {
        const T* xr = xs + c * S;
        for (int64_t j = 0; j < B; ++j) mx[j] = vm::nanmax_s(mx[j], xr[j]);
      }
      for (int64_t c = 0; c < C; ++c) {
        exp_diff(xs + c * S, mx, e, B);
        for (int64_t j = 0; j < B; ++j) sm[j] += e[j];
        if (need_sumx)
          for (int64_t j = 0; j < B; ++j) sx[j] += xs[c * S + j];
      }
      fn(n, s0, B, mx, sm, sx);
    }
  });
}

template <typename T>
double ce_impl(const T* x, const int64_t* tgt, T* loss_out, int64_t N, int64_t C, int64_t S, int64_t ignore,
               double eps, Reduction red) {
  std::vector<double> loss(static_cast<size_t>(N * S));
  ce_blocks<T>(x, N, C, S, eps != 0.0, [&](int64_t n, int64_t s0, int64_t B, const T* M, const T* Sm, const T* Sx) {
    for (int64_t j = 0; j < B; ++j) {
      const int64_t i = n * S + s0 + j, t = tgt[i];
      double l = 0.0;
      if (t != ignore) {
        const T lse = M[j] + std::log(Sm[j]);
        const T xt = x[(n * C + t) * S + s0 + j];
        l = (1.0 - eps) * static_cast<double>(lse - xt);
        if (eps != 0.0) l += eps / static_cast<double>(C) * (static_cast<double>(C) * lse - static_cast<double>(Sx[j]));
      }
      loss[static_cast<size_t>(i)] = l;
    }
  });
  const int64_t total = N * S;
  if (red == Reduction::none) {
    for (int64_t i = 0; i < total; ++i) loss_out[i] = static_cast<T>(loss[static_cast<size_t>(i)]);
    return 0.0;
  }
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t i = 0; i < total; ++i) {
    sum += loss[static_cast<size_t>(i)];
    count += tgt[i] != ignore;
  }
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
  ce_blocks<T>(x, N, C, S, false, [&](int64_t n, int64_t s0, int64_t B, const T* M, const T* Sm, const T*) {
    if (S == 1) {
      const int64_t t = tgt[n];
      T* gc = g + n * C;
      if (t == ignore) {
        std::fill(gc, gc + C, T(0));
        return;
      }
      exp_scaled(x + n * C, M[0], sc / Sm[0], off, gc, C);
      gc[t] -= hit;
      return;
    }
    T inv[kBlock], e[kBlock];
    bool keep[kBlock];
    for (int64_t j = 0; j < B; ++j) {
      keep[j] = tgt[n * S + s0 + j] != ignore;
      inv[j] = keep[j] ? sc / Sm[j] : T(0);
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

void softmax(DType dtype, const void* x, void* y, int64_t outer, int64_t c, int64_t inner, bool log) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (inner == 1)
      softmax_rows<T>(static_cast<const T*>(x), static_cast<T*>(y), outer, c, log);
    else
      softmax_strided<T>(static_cast<const T*>(x), static_cast<T*>(y), outer, c, inner, log);
  });
}

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
