// Row primitives of softmax.cpp and cross_entropy.cpp (compiled per ISA): the row maximum
// (NaN skipped in float32: one vmaxps), sum of exp(x - max) with the next row prefetched,
// and the element-wise exp(x - m). Max subtraction keeps every exp in (0, 1].
// texp (AVX2 / AVX-512; softmax.cpp, cross_entropy.cpp's rows): the same row maximum and sum
// with a table exp.
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

// ---- softmax / log-softmax rows: a table exp (AVX2 + FMA, AVX-512) -------------------------
// Used by softmax.cpp and by cross_entropy.cpp's contiguous rows (inner == 1).
// exp(d) for d = x - max <= 0 (NaN and -inf allowed) with a 2^(j / N) table, N = 2^kTexpBits
// (16 in AVX-512, one vpermps of a 16-lane register; 8 in AVX2): t = d N / ln2 + 1.5 * 2^23
// rounds n = round(d N / ln2) into the low mantissa bits of t, r = d - n ln2 / N (Cody-Waite,
// two FMAs, |r| <= ln2 / 2N), exp(r) - 1 by its Taylor polynomial (degree 3 for N = 16, 4
// for N = 8: truncation 9e-9 / 1.3e-9 relative), and exp(d) = s + s (exp(r) - 1) with
// s = 2^(n / N) = 2^q 2^(j / N), n = qN + j: one FMA, one rounding. s costs three integer
// ops: the table lane j is picked by the low bits of t (vpermps reads only those), and
// bits(t) << (23 - kTexpBits) is q << 23 plus j << (23 - kTexpBits) (the bits of 1.5 * 2^23
// shift out), the latter pre-subtracted from the table's bits, so one integer add puts q into
// the exponent field. Within ~1 ulp of exp (the table entry and the FMA round once each);
// 13 vector ops (AVX-512) against vm::exp_nonpos's 17, whose 2^-30 / 2^(n + 30) split keeps
// subnormal results: here results below 2^-126 are flushed, d < -87 giving exactly 0 (a
// masked FMA; the compare is unordered-true, so NaN propagates and -inf gives 0): such terms
// add nothing to a row sum of at least 1, and their softmax outputs are under 1.2e-38.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define IMKERN_SOFTMAX_TEXP 1
namespace texp {
using I = simd::ivec;
#if defined(__AVX512F__)
using V = __m512;
constexpr int L = 16, kTexpBits = 4;
alignas(64) constexpr int32_t kTab[16] = {
    0x3f800000, 0x3f7daac3, 0x3f7b95c2, 0x3f79c3d3, 0x3f7837f0, 0x3f76f532, 0x3f75fed7, 0x3f75583f,
    0x3f7504f3, 0x3f7508a4, 0x3f75672a, 0x3f76248c, 0x3f7744fd, 0x3f78ccdf, 0x3f7ac0c7, 0x3f7d257d};
constexpr float kScale = 23.083120346069336f;  // 16 / ln2
constexpr float kLnHi = 0x1.62e43p-5f, kLnLo = -0x1.05c61p-33f;  // ln2 / 16 = hi + lo
IMKERN_ALWAYS_INLINE inline V set1(float a) { return _mm512_set1_ps(a); }
IMKERN_ALWAYS_INLINE inline V loadu(const float* p) { return _mm512_loadu_ps(p); }
IMKERN_ALWAYS_INLINE inline void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
IMKERN_ALWAYS_INLINE inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V add(V a, V b) { return _mm512_add_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
IMKERN_ALWAYS_INLINE inline V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
IMKERN_ALWAYS_INLINE inline I table() { return _mm512_load_si512(kTab); }
IMKERN_ALWAYS_INLINE inline V scale_bits(V t, I tab) {
  const I ti = _mm512_castps_si512(t);
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(ti, tab), _mm512_slli_epi32(ti, 23 - kTexpBits)));
}
// a * b + a where d >= -87 or d is NaN, else 0.
IMKERN_ALWAYS_INLINE inline V fma_flush(V d, V a, V b) {
  return _mm512_maskz_fmadd_ps(_mm512_cmp_ps_mask(d, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ), a, b, a);
}
// The first n < L floats of p, -inf in the other lanes (nothing past p + n is read).
IMKERN_ALWAYS_INLINE inline V load_tail(const float* p, int64_t n, float fill) {
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << n) - 1), p);
}
IMKERN_ALWAYS_INLINE inline void store_tail(float* p, V v, int64_t n) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
}
IMKERN_ALWAYS_INLINE inline float hmax(V v) { return _mm512_reduce_max_ps(v); }
// Sum of the lanes in float64, a fixed order.
IMKERN_ALWAYS_INLINE inline __m512d widen_sum(V v) {
  return _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}
IMKERN_ALWAYS_INLINE inline double hsum(__m512d v) { return _mm512_reduce_add_pd(v); }
using D = __m512d;
IMKERN_ALWAYS_INLINE inline D dzero() { return _mm512_setzero_pd(); }
IMKERN_ALWAYS_INLINE inline D dadd(D a, D b) { return _mm512_add_pd(a, b); }
// exp(r) - 1 = r + r^2 / 2 + r^3 / 6 (Horner).
IMKERN_ALWAYS_INLINE inline V poly(V r) {
  V p = fma(r, set1(1.0f / 6.0f), set1(0.5f));
  p = fma(p, r, set1(1.0f));
  return mul(p, r);
}
#else
using V = __m256;
constexpr int L = 8, kTexpBits = 3;
alignas(32) constexpr int32_t kTab[8] = {0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7,
                                         0x3f7504f3, 0x3f75672a, 0x3f7744fd, 0x3f7ac0c7};
constexpr float kScale = 11.541560173034668f;  // 8 / ln2
constexpr float kLnHi = 0x1.62e43p-4f, kLnLo = -0x1.05c61p-32f;  // ln2 / 8 = hi + lo
IMKERN_ALWAYS_INLINE inline V set1(float a) { return _mm256_set1_ps(a); }
IMKERN_ALWAYS_INLINE inline V loadu(const float* p) { return _mm256_loadu_ps(p); }
IMKERN_ALWAYS_INLINE inline void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
IMKERN_ALWAYS_INLINE inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V add(V a, V b) { return _mm256_add_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
IMKERN_ALWAYS_INLINE inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
IMKERN_ALWAYS_INLINE inline V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
IMKERN_ALWAYS_INLINE inline I table() { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kTab)); }
IMKERN_ALWAYS_INLINE inline V scale_bits(V t, I tab) {
  const I ti = _mm256_castps_si256(t);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_permutevar8x32_epi32(tab, ti), _mm256_slli_epi32(ti, 23 - kTexpBits)));
}
IMKERN_ALWAYS_INLINE inline V fma_flush(V d, V a, V b) {
  return _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-87.0f), _CMP_NLT_UQ), _mm256_fmadd_ps(a, b, a));
}
IMKERN_ALWAYS_INLINE inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
IMKERN_ALWAYS_INLINE inline V load_tail(const float* p, int64_t n, float fill) {
  const __m256i k = tail_mask(n);
  return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, k), _mm256_castsi256_ps(k));
}
IMKERN_ALWAYS_INLINE inline void store_tail(float* p, V v, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
IMKERN_ALWAYS_INLINE inline float hmax(V v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
IMKERN_ALWAYS_INLINE inline __m256d widen_sum(V v) {
  return _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
IMKERN_ALWAYS_INLINE inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
using D = __m256d;
IMKERN_ALWAYS_INLINE inline D dzero() { return _mm256_setzero_pd(); }
IMKERN_ALWAYS_INLINE inline D dadd(D a, D b) { return _mm256_add_pd(a, b); }
IMKERN_ALWAYS_INLINE inline V poly(V r) {  // exp(r) - 1 to degree 4: |r| <= ln2 / 16
  V p = fma(r, set1(1.0f / 24.0f), set1(1.0f / 6.0f));
  p = fma(p, r, set1(0.5f));
  p = fma(p, r, set1(1.0f));
  return mul(p, r);
}
#endif

// exp(d), d <= 0 (see above); tab = table().
IMKERN_ALWAYS_INLINE inline V exp(V d, I tab) {
  const V magic = set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const V t = fma(d, set1(kScale), magic);
  const V nf = sub(t, magic);
  V r = fnma(nf, set1(kLnHi), d);
  r = fnma(nf, set1(kLnLo), r);
  return fma_flush(d, scale_bits(t, tab), poly(r));  // s + s (exp(r) - 1)
}

// The row maximum (NaN skipped or not: a NaN element makes the row NaN either way).
inline float row_max(const float* x, int64_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  V m0 = set1(ninf), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    m0 = vmax(loadu(x + i), m0);
    m1 = vmax(loadu(x + i + L), m1);
  }
  if (i + L <= n) {
    m0 = vmax(loadu(x + i), m0);
    i += L;
  }
  if (i < n) m1 = vmax(load_tail(x + i, n - i, ninf), m1);
  return hmax(vmax(m0, m1));
}

// sum_i exp(x[i] - m), the terms stored into e (which may be x) when e is not null; pf (the
// next row, or null) is prefetched alongside, so its loads overlap this row's exps (the row
// maximum, which reads the row first, would otherwise wait on L3 or memory). Deterministic and independent of the caller's threads: float32 lanes summed over blocks of
// kSumBlock elements (two accumulators, a fixed order), the block sums added in float64.
inline double row_sum_exp(const float* x, float m, float* e, int64_t n, const float* pf = nullptr) {
  const I tab = table();
  const V mv = set1(m);
  D total = dzero();
  int64_t i = 0;
  while (i < n) {
    const int64_t end = std::min(n, i + kSumBlock);
    V a0 = set1(0.0f), a1 = a0;
    for (; i + 2 * L <= end; i += 2 * L) {
      if (pf)
        for (int k = 0; k < 2 * L; k += 16) __builtin_prefetch(pf + i + k, 0, 3);
      const V t0 = exp(sub(loadu(x + i), mv), tab);
      const V t1 = exp(sub(loadu(x + i + L), mv), tab);
      if (e) {
        storeu(e + i, t0);
        storeu(e + i + L, t1);
      }
      a0 = add(a0, t0);
      a1 = add(a1, t1);
    }
    if (i + L <= end) {
      const V t0 = exp(sub(loadu(x + i), mv), tab);
      if (e) storeu(e + i, t0);
      a0 = add(a0, t0);
      i += L;
    }
    if (i < end) {
      // -inf in the lanes past the end: exp gives 0 there unless m is +-inf or NaN, when the
      // row is NaN anyway (inf - inf).
      const V t0 = exp(sub(load_tail(x + i, end - i, -std::numeric_limits<float>::infinity()), mv), tab);
      if (e) store_tail(e + i, t0, end - i);
      a1 = add(a1, t0);
      i = end;
    }
    total = dadd(total, widen_sum(add(a0, a1)));
  }
  return hsum(total);
}

// y[i] = e[i] * s.
inline void scale_row(const float* e, float s, float* y, int64_t n) {
  const V sv = set1(s);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, mul(loadu(e + i), sv));
  if (i < n) store_tail(y + i, mul(load_tail(e + i, n - i, 0.0f), sv), n - i);
}
}  // namespace texp
#endif

}  // namespace softmax_detail
}  // namespace IMKERN_ISA
}  // namespace imkern
