// Row primitives of softmax.cpp and cross_entropy.cpp (compiled per ISA): the row maximum
// (NaN skipped in float32: one vmaxps), sum of exp(x - max) with the next row prefetched,
// and the element-wise exp(x - m) forms. Max subtraction keeps every exp in (0, 1].
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "common/vmath.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace softmax_detail {

constexpr int64_t kBlock = 256;  // inner positions processed together (inner > 1)
constexpr int64_t kSumBlock = 1024;  // elements per float32 partial in the row sums

inline double lane_sum_f64(vm::vf v) {
  double s = 0.0;
  for (int k = 0; k < vm::LF; ++k) s += static_cast<double>(v[k]);
  return s;
}

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
  // Blocked sum: float32 lanes over blocks of kSumBlock elements, the block sums added in
  // float64, so the error stays ~(kSumBlock / L) ulp for any row length (a single float32
  // accumulator per lane drifts with n / L), and the order is fixed: deterministic.
  double total = 0.0;
  for (; i + L <= n; i += L) {
    if (i % kLine == 0) {
      if (pf_x) __builtin_prefetch(pf_x + i, 0, 3);
      if (pf_e) __builtin_prefetch(pf_e + i, 1, 3);
    }
    const vf t = vm::exp_nonpos(simd::loadu(x + i) - mv);
    if (e) simd::storeu(e + i, t);
    acc += t;
    if ((i + L) % kSumBlock == 0) {
      total += lane_sum_f64(acc);
      acc = simd::splat(0.0f);
    }
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
  return static_cast<float>(total + lane_sum_f64(acc));
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

}  // namespace softmax_detail
}  // namespace IMKERN_ISA
}  // namespace imkern
