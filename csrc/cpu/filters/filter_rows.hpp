// Vectorized inner loops shared by sep_filter and correlate (compiled per ISA).
//   hfilter:  h[x] = sum_j k[j] * p[x + j*C]          kw FMAs per output element
//   vfilter:  o[x] = sum_i k[i] * rows[i][x]           kh FMAs per output element
// Both keep 4 vectors x 2 accumulators in registers and stream the taps; the tails are scalar.
#pragma once
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "common/rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

// The taps are split over two accumulators per vector (even taps, odd taps), summed at the
// end: 8 independent FMA chains hide the FMA latency (a single chain per vector runs at half
// the FMA throughput). taps: K >= 1 (a compile-time constant in the fixed variants).
#define IMKERN_TAP_LOOP(K, LOAD)                                              \
  int j = 0;                                                                  \
  _Pragma("GCC unroll 8")                                                     \
  for (; j + 1 < (K); j += 2) {                                               \
    const vec_t<A> ka = KV(j), kb = KV(j + 1);                                \
    a0 += ka * LOAD(j, 0);                                                    \
    b0 += kb * LOAD(j + 1, 0);                                                \
    a1 += ka * LOAD(j, L);                                                    \
    b1 += kb * LOAD(j + 1, L);                                                \
    a2 += ka * LOAD(j, 2 * L);                                                \
    b2 += kb * LOAD(j + 1, 2 * L);                                            \
    a3 += ka * LOAD(j, 3 * L);                                                \
    b3 += kb * LOAD(j + 1, 3 * L);                                            \
  }                                                                           \
  if (j < (K)) {                                                              \
    const vec_t<A> ka = KV(j);                                                \
    a0 += ka * LOAD(j, 0);                                                    \
    a1 += ka * LOAD(j, L);                                                    \
    a2 += ka * LOAD(j, 2 * L);                                                \
    a3 += ka * LOAD(j, 3 * L);                                                \
  }

// x0: where to start (the kernels below hand their last elements over; the last vector may
// reach back before x0, rewriting equal values).
template <typename A>
inline void hfilter_any(const A* p, A* h, int64_t n, int64_t C, const A* k, int kw, int64_t x0 = 0) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = x0;
#define KV(j) splat<A>(k[j])
#define LOAD(j, off) loadu(q + (j) * C + (off))
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
    const A* q = p + x;
    IMKERN_TAP_LOOP(kw, LOAD)
    storeu(h + x, a0 + b0);
    storeu(h + x + L, a1 + b1);
    storeu(h + x + 2 * L, a2 + b2);
    storeu(h + x + 3 * L, a3 + b3);
  }
#undef LOAD
#undef KV
  // The rest by single vectors summed as the body sums (even taps, odd taps, then their sum),
  // the last one ending at n: an element's bits do not depend on where a row or strip ends.
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    vec_t<A> a{}, b{};
    const A* q = p + e;
    int j = 0;
    for (; j + 1 < kw; j += 2) {
      a += splat<A>(k[j]) * loadu(q + j * C);
      b += splat<A>(k[j + 1]) * loadu(q + (j + 1) * C);
    }
    if (j < kw) a += splat<A>(k[j]) * loadu(q + j * C);
    return a + b;
  };
  if (n >= L) {
    for (; x + L <= n; x += L) storeu(h + x, one(x));
    if (x < n) storeu(h + n - L, one(n - L));
    return;
  }
  for (; x < n; ++x) {
    A a = 0;
    for (int j = 0; j < kw; ++j) a += k[j] * p[x + j * C];
    h[x] = a;
  }
}

// Output type T: the accumulators are converted (rounded, saturated) as they are stored.
template <typename T, typename A>
inline void vfilter_any(const A* const* rows, T* o, int64_t n, const A* k, int kh) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
#define KV(j) splat<A>(k[j])
#define LOAD(j, off) loadu(rows[j] + x + (off))
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
    IMKERN_TAP_LOOP(kh, LOAD)
    store_vec<T, A>(o + x, a0 + b0);
    store_vec<T, A>(o + x + L, a1 + b1);
    store_vec<T, A>(o + x + 2 * L, a2 + b2);
    store_vec<T, A>(o + x + 3 * L, a3 + b3);
  }
#undef LOAD
#undef KV
  // As in hfilter_any: single vectors in the body's order, the last one ending at n.
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    vec_t<A> a{}, b{};
    int i = 0;
    for (; i + 1 < kh; i += 2) {
      a += splat<A>(k[i]) * loadu(rows[i] + e);
      b += splat<A>(k[i + 1]) * loadu(rows[i + 1] + e);
    }
    if (i < kh) a += splat<A>(k[i]) * loadu(rows[i] + e);
    return a + b;
  };
  if (n >= L) {
    for (; x + L <= n; x += L) store_vec<T, A>(o + x, one(x));
    if (x < n) store_vec<T, A>(o + n - L, one(n - L));
    return;
  }
  for (; x < n; ++x) {
    A a = 0;
    for (int i = 0; i < kh; ++i) a += k[i] * rows[i][x];
    o[x] = to_output<T, A>(a);
  }
}

// Four accumulator vectors -> 4 L consecutive outputs at p, the same values as four put<>()
// calls. uint8 from float (AVX2, AVX-512): one pack of the four vectors (cvtps2dq, packssdw,
// packuswb, one dword permute) and one full-width store instead of four narrowing stores;
// min(255, v) first, so values beyond int32 saturate to 255 and NaN still gives 0 (cvtps2dq's
// INT_MIN, saturated to 0 by the packs), exactly as store_rounded_saturated. With Stream, a
// p aligned to the store's width (64 bytes on AVX-512, 32 on AVX2) is written with one
// non-temporal store.
template <typename T, typename A, bool Stream>
IMKERN_ALWAYS_INLINE inline void put4(T* p, simd::vec_t<A> v0, simd::vec_t<A> v1, simd::vec_t<A> v2,
                                      simd::vec_t<A> v3) {
  constexpr int L = simd::Vec<A>::lanes;
#if defined(__AVX512F__) && defined(__AVX512BW__)
  if constexpr (std::is_same<T, uint8_t>::value && std::is_same<A, float>::value) {
    const __m512 hi = _mm512_set1_ps(255.f);
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_min_ps(hi, reinterpret_cast<__m512>(v0)));
    const __m512i i1 = _mm512_cvtps_epi32(_mm512_min_ps(hi, reinterpret_cast<__m512>(v1)));
    const __m512i i2 = _mm512_cvtps_epi32(_mm512_min_ps(hi, reinterpret_cast<__m512>(v2)));
    const __m512i i3 = _mm512_cvtps_epi32(_mm512_min_ps(hi, reinterpret_cast<__m512>(v3)));
    // per 128-bit lane k: dword m holds i_m[4k .. 4k + 3]; wanted: dword 4m + k
    const __m512i b = _mm512_packus_epi16(_mm512_packs_epi32(i0, i1), _mm512_packs_epi32(i2, i3));
    const __m512i r = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), b);
    if (Stream && (reinterpret_cast<uintptr_t>(p) & 63) == 0) _mm512_stream_si512(reinterpret_cast<__m512i*>(p), r);
    else _mm512_storeu_si512(p, r);
    return;
  }
#elif defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (std::is_same<T, uint8_t>::value && std::is_same<A, float>::value) {
    // With Stream, a 32-byte-aligned p is written with one non-temporal store (half a line:
    // the next put4 completes it).
    const __m256 hi = _mm256_set1_ps(255.f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_min_ps(hi, reinterpret_cast<__m256>(v0)));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_min_ps(hi, reinterpret_cast<__m256>(v1)));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_min_ps(hi, reinterpret_cast<__m256>(v2)));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_min_ps(hi, reinterpret_cast<__m256>(v3)));
    const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    const __m256i r = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (Stream && (reinterpret_cast<uintptr_t>(p) & 31) == 0) _mm256_stream_si256(reinterpret_cast<__m256i*>(p), r);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), r);
    return;
  }
#endif
  put<T, A, Stream>(p, v0);
  put<T, A, Stream>(p + L, v1);
  put<T, A, Stream>(p + 2 * L, v2);
  put<T, A, Stream>(p + 3 * L, v3);
}

// The streaming row loops below: the head before stream_span's begin and the tail from its end
// by plain vectors of one(x), the whole lines between by the caller's streaming loop. Returns
// the span ({0, n} without Stream: the loop covers the row, the tail its last partial vector).
template <typename T, typename A, bool Stream, typename One>
IMKERN_ALWAYS_INLINE inline StreamSpan stream_head(T* o, int64_t n, One&& one) {
  if constexpr (!Stream) return {0, n};
  const StreamSpan sp = stream_span<T, simd::Vec<A>::lanes>(o, n);
  plain_vectors<T, A>(o, 0, sp.begin, one);
  return sp;
}

// Fixed tap counts: the taps are broadcast once into registers and the tap loop is unrolled
// (the generic loops re-broadcast every tap for every 4 vectors).
template <int K, typename A>
inline void hfilter_fixed(const A* p, A* h, int64_t n, int64_t C, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  vec_t<A> kv[K];
  for (int j = 0; j < K; ++j) kv[j] = splat<A>(k[j]);
  int64_t x = 0;
#define KV(j) kv[j]
#define LOAD(j, off) loadu(q + (j) * C + (off))
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
    const A* q = p + x;
    IMKERN_TAP_LOOP(K, LOAD)
    storeu(h + x, a0 + b0);
    storeu(h + x + L, a1 + b1);
    storeu(h + x + 2 * L, a2 + b2);
    storeu(h + x + 3 * L, a3 + b3);
  }
#undef LOAD
#undef KV
  if (x < n) hfilter_any(p, h, n, C, k, K, x);
}

template <int K, typename T, typename A, bool Stream>
inline void vfilter_fixed(const A* const* rows, T* o, int64_t n, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  vec_t<A> kv[K];
  const A* r[K];
  for (int i = 0; i < K; ++i) {
    kv[i] = splat<A>(k[i]);
    r[i] = rows[i];
  }
  if (n < L) return vfilter_any<T, A>(r, o, n, k, K);
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {  // even taps in a, odd in b: two FMA chains
    vec_t<A> a{}, b{};
#pragma GCC unroll 16
    for (int j = 0; j < K; ++j) {
      if (j & 1) b += kv[j] * loadu(r[j] + x);
      else a += kv[j] * loadu(r[j] + x);
    }
    return a + b;
  };
  // As vfilter_sym: every element by the same vector code, streaming whole lines (stream_head),
  // the last vector overlapping the one before.
  const StreamSpan sp = stream_head<T, A, Stream>(o, n, one);  // x = 0 without: ring loads aligned
  int64_t x = sp.begin;
  for (; x + 4 * L <= sp.end; x += 4 * L) {  // the same sums as one(), four vectors at a time
    vec_t<A> a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
#define KV(j) kv[j]
#define LOAD(j, off) loadu(r[j] + x + (off))
    IMKERN_TAP_LOOP(K, LOAD)
#undef LOAD
#undef KV
    put4<T, A, Stream>(o + x, a0 + b0, a1 + b1, a2 + b2, a3 + b3);
  }
  for (; x + L <= sp.end; x += L) put<T, A, Stream>(o + x, one(x));
  plain_vectors<T, A>(o, x, n, one);
}

// Symmetric kernels (k[j] == k[K - 1 - j], K odd, as every Gaussian): the mirrored taps are
// added first, k[h] * t[h] + sum_{j<h} k[j] * (t[j] + t[K-1-j]), which takes (K + 1) / 2
// multiplies instead of K (the additions go to the other FP pipes). The sum is formed in the
// same order for every element, so results still do not depend on strips or threads.
#define IMKERN_SYM_TAPS(K, T)                                                 \
  vec_t<A> a = kv[(K) / 2] * T((K) / 2), b{};                                 \
  _Pragma("GCC unroll 8")                                                     \
  for (int j = 0; j < (K) / 2; ++j) {                                         \
    if (j & 1) a += kv[j] * (T(j) + T((K) - 1 - j));                          \
    else b += kv[j] * (T(j) + T((K) - 1 - j));                                \
  }

// One element, the same sum as IMKERN_SYM_TAPS (for the tails).
template <int K, typename A, typename Tap>
inline A sym_taps(const A* k, Tap&& t) {
  A a = k[K / 2] * t(K / 2), b = 0;
  for (int j = 0; j < K / 2; ++j) {
    if (j & 1) a += k[j] * (t(j) + t(K - 1 - j));
    else b += k[j] * (t(j) + t(K - 1 - j));
  }
  return a + b;
}

template <int K, typename A>
inline void hfilter_sym(const A* p, A* h, int64_t n, int64_t C, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  vec_t<A> kv[K];
  for (int j = 0; j < K; ++j) kv[j] = splat<A>(k[j]);
  int64_t x = 0;
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    const A* q = p + e;
#define TAP(j) loadu(q + (j) * C)
    IMKERN_SYM_TAPS(K, TAP)
#undef TAP
    return a + b;
  };
  for (; x + L <= n; x += L) storeu(h + x, one(x));
  if (x < n && n >= L) return storeu(h + n - L, one(n - L));  // the last vector ends at n
  for (; x < n; ++x) h[x] = sym_taps<K>(k, [&](int j) { return p[x + j * C]; });
}

template <int K, typename T, typename A, bool Stream>
inline void vfilter_sym(const A* const* rows, T* o, int64_t n, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  vec_t<A> kv[K];
  const A* r[K];
  for (int i = 0; i < K; ++i) {
    kv[i] = splat<A>(k[i]);
    r[i] = rows[i];
  }
  if (n < L) {
    for (int64_t x = 0; x < n; ++x) o[x] = to_output<T, A>(sym_taps<K>(k, [&](int j) { return r[j][x]; }));
    return;
  }
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
#define TAP(j) loadu(r[j] + x)
    IMKERN_SYM_TAPS(K, TAP)
#undef TAP
    return a + b;
  };
  // Every element is computed by the same vector code: the head and tail by plain vectors, the
  // whole lines between by streaming stores (stream_head), the last vector ending at n
  // (overlapping the one before).
  const StreamSpan sp = stream_head<T, A, Stream>(o, n, one);  // x = 0 without: ring loads aligned
  int64_t x = sp.begin;
  for (; x + 4 * L <= sp.end; x += 4 * L)
    put4<T, A, Stream>(o + x, one(x), one(x + L), one(x + 2 * L), one(x + 3 * L));
  for (; x + L <= sp.end; x += L) put<T, A, Stream>(o + x, one(x));
  plain_vectors<T, A>(o, x, n, one);
}

// Long symmetric kernels (K = 13 ... 31, float accumulation, any image dtype: an integer image
// keeps the arithmetic of its float32 copy, bit for bit, as with the shorter kernels): past
// a dozen taps the loops above are bound by their loads (an unaligned vector load per tap and
// output vector, plus the broadcast taps), not by their FMAs, so folding alone gains nothing.
// These kernels fold the mirrored taps and compute R output vectors together, so that each
// loaded vector serves every output it is a tap of: hfilter_long (C = 1) computes 4
// consecutive vectors of a row, whose windows overlap (K - 1 + 4 L loads instead of 4 K);
// vfilter_long<K, 2> computes two output rows, whose windows share K - 1 rows (K + 1 loads
// instead of 2 K). Per output vector: about K / 2 multiply-adds, K / 2 adds, K / 2 + L / 4
// (x) or (K + 1) / 2 (y) loads. The pairs of taps are summed in the order 0, h-1, 1, h-2, ...
// (h = K / 2), alternating two accumulators: with K = 2 L - 1 (31 taps on AVX-512, 15 on AVX2)
// the right tap of pair j in one vector is the left tap of pair h - 1 - j in the next, used in
// the next step (short live ranges). Every element is summed in this order, by the vector code
// and the scalar tails alike, so results do not depend on strips, row pairs or threads.
#define IMKERN_LONG_SYM_TAPS(X) X(13) X(15) X(17) X(19) X(21) X(23) X(25) X(27) X(29) X(31)

// The most rows vfilter_long2_strided (AVX2) addresses without row pointers: four bases of
// eight rows each, the row offsets 0 ... 7 S formed by the index registers S, 3 S, 5 S, 7 S
// scaled by 1, 2, 4 or 8. A pair of output rows of a K-tap kernel reads K + 1 rows, so the
// strided kernel (and sep_filter's mirrored ring, which only it uses) takes kh + 1 <= 32.
constexpr int kLongStridedRows = 32;

template <int K>
constexpr int long_pair(int idx) {
  return (idx & 1) ? K / 2 - 1 - idx / 2 : idx / 2;
}

// out[r] = sum_j kv[j] * t(r, j), folded, in long_pair order (V: a vector or a scalar; kv: the
// taps 0 .. K / 2 as V).
template <int K, int R, typename V, typename Tap>
IMKERN_ALWAYS_INLINE inline void long_taps(const V* kv, Tap&& t, V (&out)[R]) {
  constexpr int h = K / 2;
  V a[R], b[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    a[r] = kv[h] * t(r, h);
    b[r] = V{};
  }
#pragma GCC unroll 16
  for (int idx = 0; idx < h; ++idx) {
    const int j = long_pair<K>(idx);
    V kj = kv[j];
#if defined(__SSE2__) && !defined(__AVX512F__)
    // 16 vector registers cannot hold the taps: load each once per step into a register (left
    // to itself, the compiler folds a reload into each of the R multiply-adds).
    asm("" : "+x"(kj));
#endif
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V s = t(r, j) + t(r, K - 1 - j);
      if (idx & 1) a[r] += kj * s;
      else b[r] += kj * s;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = a[r] + b[r];
}

template <int K, typename A>
inline void hfilter_long(const A* p, A* h, int64_t n, int64_t C, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  constexpr int R = 4;
  vec_t<A> kv[K / 2 + 1];
  for (int j = 0; j <= K / 2; ++j) kv[j] = splat<A>(k[j]);
  int64_t x = 0;
  if (C == 1) {  // the tap stride a constant: the loads shared by the R vectors are loaded once
    for (; x + R * L <= n; x += R * L) {
      const A* q = p + x;
      vec_t<A> v[R];
      long_taps<K, R>(kv, [&](int r, int j) IMKERN_ALWAYS_INLINE { return loadu(q + r * L + j); }, v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) storeu(h + x + r * L, v[r]);
    }
  }
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    vec_t<A> v[1];
    long_taps<K, 1>(kv, [&](int, int j) IMKERN_ALWAYS_INLINE { return loadu(p + e + j * C); }, v);
    return v[0];
  };
  if (n >= L) {  // single vectors, the last one ending at n
    for (; x + L <= n; x += L) storeu(h + x, one(x));
    if (x < n) storeu(h + n - L, one(n - L));
    return;
  }
  for (; x < n; ++x) {
    A v[1];
    long_taps<K, 1>(k, [&](int, int j) { return p[x + j * C]; }, v);
    h[x] = v[0];
  }
}

// The vertical long kernels' sums on AVX2 (16 registers, 256-bit FMAs of latency 4 at two per
// cycle: eight independent chains are needed, and long_taps' two per row give R = 2 rows only
// four): pair j goes to accumulator j % 4 (its first pair by a plain product), the centre tap
// to accumulator h % 4, then (s0 + s1) + (s2 + s3). The pairs in natural order: with R = 2
// the rows j + 1 and K - 1 - j of step j are the rows of step j + 1's other output row, so
// each row is loaded once and used in two consecutive steps (short live ranges, no spills).
// The same order for every element (vector code, single rows, scalar tails), so results do
// not depend on strips, row pairing or threads. Other ISAs: long_taps.
template <int K, int R, typename V, typename Tap>
IMKERN_ALWAYS_INLINE inline void vlong_taps(const V* kv, Tap&& t, V (&out)[R]) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  constexpr int h = K / 2;
  static_assert(h >= 4, "every accumulator gets a pair");
  V s[R][4];
#pragma GCC unroll 16
  for (int j = 0; j < h; ++j) {
    V kj = kv[j];
    if constexpr (!std::is_arithmetic<V>::value) asm("" : "+x"(kj));  // one tap load per step
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V p = t(r, j) + t(r, K - 1 - j);
      if (j < 4) s[r][j] = kj * p;
      else s[r][j & 3] += kj * p;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    s[r][h & 3] += kv[h] * t(r, h);
    out[r] = (s[r][0] + s[r][1]) + (s[r][2] + s[r][3]);
  }
#else
  long_taps<K, R>(kv, t, out);
#endif
}

// A float vector load as a float load (simd::loadu's memcpy is an integer-typed load, which
// GCC spills and reloads through the stack in the long kernels' unrolled bodies on AVX2).
template <typename A>
IMKERN_ALWAYS_INLINE inline simd::vec_t<A> vload_f(const A* p) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (std::is_same<A, float>::value) return reinterpret_cast<simd::vec_t<A>>(_mm256_loadu_ps(p));
#endif
  return simd::loadu(p);
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// hfilter_long<K> for one channel on AVX2 without cache-line-splitting loads. The blocked
// loop reads the tap windows q + o (o = 0 ... 4 L + K - 2) of a 64-byte-aligned row: the 32-byte
// windows with o % 16 in 9 ... 15 straddle two cache lines (a split load costs two), so those are
// read from a copy of the chunk shifted by 8 floats, where they do not. The same windows, sums
// and order as hfilter_long (long_taps<K, 4>), so the same bits; rows not aligned take hfilter_long.
template <int K>
inline void hfilter_long_c1_avx2(const float* p, float* h, int64_t n, const float* k) {
  using namespace simd;
  using A = float;
  constexpr int L = Vec<A>::lanes, R = 4, CH = 256;  // CH: outputs per chunk (whole blocks)
  static_assert(L == 8 && CH % (R * L) == 0, "AVX2 blocks");
  if ((reinterpret_cast<uintptr_t>(p) & 63) != 0 || n < R * L) return hfilter_long<K>(p, h, n, 1, k);
  vec_t<A> kv[K / 2 + 1];
  for (int j = 0; j <= K / 2; ++j) kv[j] = splat<A>(k[j]);
  alignas(64) A sh[8 + CH + K - 1];  // sh[8 + i] = p[c + i]
  int64_t x = 0;
  for (int64_t c = 0; c + R * L <= n; c += CH) {
    const int64_t cn = std::min<int64_t>(CH, (n - c) / (R * L) * (R * L));
    const int64_t m = cn + K - 1;
    int64_t i = 0;
    for (; i + L <= m; i += L) storeu(sh + 8 + i, vload_f(p + c + i));
    for (; i < m; ++i) sh[8 + i] = p[c + i];
    for (x = c; x < c + cn; x += R * L) {
      const A* q = p + x;
      const A* q2 = sh + 8 + (x - c);
      vec_t<A> v[R];
      long_taps<K, R>(
          kv,
          [&](int r, int j) IMKERN_ALWAYS_INLINE {
            const int o = r * L + j;
            return (o & 15) > 8 ? vload_f(q2 + o) : vload_f(q + o);
          },
          v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) storeu(h + x + r * L, v[r]);
    }
  }
  // the rest as hfilter_long: single vectors, the last one ending at n
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    vec_t<A> v[1];
    long_taps<K, 1>(kv, [&](int, int j) IMKERN_ALWAYS_INLINE { return loadu(p + e + j); }, v);
    return v[0];
  };
  for (; x + L <= n; x += L) storeu(h + x, one(x));
  if (x < n) storeu(h + n - L, one(n - L));
}
#endif

// R output rows o[0 .. R-1] (output row q from rows[q .. q + K - 1]).
template <int K, int R, typename T, typename A, bool Stream>
inline void vfilter_long(const A* const* rows, T* const* out, int64_t n, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  vec_t<A> kv[K / 2 + 1];
  for (int j = 0; j <= K / 2; ++j) kv[j] = splat<A>(k[j]);
  const A* r[K + R - 1];
  for (int i = 0; i < K + R - 1; ++i) r[i] = rows[i];
  T* o[R];
  for (int q = 0; q < R; ++q) o[q] = out[q];
  if (n < L) {
    for (int q = 0; q < R; ++q)
      for (int64_t x = 0; x < n; ++x) {
        A v[1];
        vlong_taps<K, 1>(k, [&](int, int j) { return r[q + j][x]; }, v);
        o[q][x] = to_output<T, A>(v[0]);
      }
    return;
  }
  auto blk = [&](int64_t x, vec_t<A> (&v)[R]) IMKERN_ALWAYS_INLINE {
    vlong_taps<K, R>(kv, [&](int q, int j) IMKERN_ALWAYS_INLINE { return vload_f(r[q + j] + x); }, v);
  };
  // As vfilter_sym: whole lines streamed (stream_span), the head and tail by plain vectors, the
  // last vector ending at n.
  auto plain = [&](int64_t x0, int64_t x1) IMKERN_ALWAYS_INLINE {  // x1 - x0 = 0 or >= L
    for (int64_t x = x0; x < x1;) {
      const int64_t e = x + L <= x1 ? x : x1 - L;
      vec_t<A> v[R];
      blk(e, v);
      for (int q = 0; q < R; ++q) store_vec<T, A>(o[q] + e, v[q]);
      x = e + L;
    }
  };
  StreamSpan sp{0, n};
  if constexpr (Stream) {
    sp = stream_span<T, L>(o[0], n);
    if constexpr (R > 1) {
      for (int q = 1; q < R; ++q)
        if ((reinterpret_cast<uintptr_t>(o[q]) - reinterpret_cast<uintptr_t>(o[0])) % 64) {
          // rows placed differently in their lines: one at a time
          for (int qq = 0; qq < R; ++qq) vfilter_long<K, 1, T, A, Stream>(r + qq, o + qq, n, k);
          return;
        }
    }
    plain(0, sp.begin);
  }
  int64_t x = sp.begin;
  for (; x + L <= sp.end; x += L) {
    vec_t<A> v[R];
    blk(x, v);
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) put<T, A, Stream>(o[q] + x, v[q]);
  }
  plain(x, n);
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// vfilter_long<K, 2> (AVX2, float) over rows at a constant stride: row i at r0 + i * S (S in
// elements; RowRing's mirrored rows). The 32 rows are addressed from four bases (rows 8 q ...
// 8 q + 7 at b_q + {0, 1, 2, 3, 4, 5, 6, 7} S, the multiples by the index registers S, 3 S, 5 S,
// 7 S scaled by 1, 2, 4 or 8), so no row pointer is reloaded from memory in the loop (the
// general kernel reloads most of its 32 pointers per output vector: 16 general registers).
// The same sums in the same order as vfilter_long (vlong_taps), so the same bits.
template <int K, typename T, bool Stream>
inline void vfilter_long2_strided(const float* r0, int64_t S, T* const* out, int64_t n, const float* k) {
  using namespace simd;
  using A = float;
  constexpr int L = Vec<A>::lanes;
  constexpr int R = 2;
  static_assert(K + R - 1 <= kLongStridedRows, "four bases of eight rows");
  vec_t<A> kv[K / 2 + 1];
  for (int j = 0; j <= K / 2; ++j) kv[j] = splat<A>(k[j]);
  T* o0 = out[0];
  T* o1 = out[1];
  const intptr_t s1 = static_cast<intptr_t>(S) * static_cast<intptr_t>(sizeof(A)), s3 = 3 * s1, s5 = 5 * s1,
                 s7 = 7 * s1;
  auto blk = [&](int64_t x, vec_t<A> (&v)[R]) IMKERN_ALWAYS_INLINE {
    // opaque bases: else GCC turns each row's address into a loop-invariant pointer of its own
    const char* b0 = reinterpret_cast<const char*>(r0 + x);
    asm("" : "+r"(b0));
    const char* b1 = b0 + 8 * s1;
    asm("" : "+r"(b1));
    const char* b2 = b1 + 8 * s1;
    asm("" : "+r"(b2));
    const char* b3 = b2 + 8 * s1;
    asm("" : "+r"(b3));
    auto row = [&](int i) IMKERN_ALWAYS_INLINE -> const A* {
      const char* b = i < 8 ? b0 : i < 16 ? b1 : i < 24 ? b2 : b3;
      switch (i & 7) {
        case 0: return reinterpret_cast<const A*>(b);
        case 1: return reinterpret_cast<const A*>(b + s1);
        case 2: return reinterpret_cast<const A*>(b + 2 * s1);
        case 3: return reinterpret_cast<const A*>(b + s3);
        case 4: return reinterpret_cast<const A*>(b + 4 * s1);
        case 5: return reinterpret_cast<const A*>(b + s5);
        case 6: return reinterpret_cast<const A*>(b + 2 * s3);
        default: return reinterpret_cast<const A*>(b + s7);
      }
    };
    vlong_taps<K, R>(kv, [&](int q, int j) IMKERN_ALWAYS_INLINE { return vload_f(row(q + j)); }, v);
  };
  // As vfilter_long (n >= L; both rows at the same place in their lines, checked by the
  // caller, so one stream_span serves both).
  auto plain = [&](int64_t x0, int64_t x1) IMKERN_ALWAYS_INLINE {  // x1 - x0 = 0 or >= L
    for (int64_t x = x0; x < x1;) {
      const int64_t e = x + L <= x1 ? x : x1 - L;
      vec_t<A> v[R];
      blk(e, v);
      store_vec<T, A>(o0 + e, v[0]);
      store_vec<T, A>(o1 + e, v[1]);
      x = e + L;
    }
  };
  StreamSpan sp{0, n};
  if constexpr (Stream) {
    sp = stream_span<T, L>(o0, n);
    plain(0, sp.begin);
  }
  int64_t x = sp.begin;
  for (; x + L <= sp.end; x += L) {
    vec_t<A> v[R];
    blk(x, v);
    put<T, A, Stream>(o0 + x, v[0]);
    put<T, A, Stream>(o1 + x, v[1]);
  }
  plain(x, n);
}
#endif

// Whether vfilter2 computes two rows together (else it calls vfilter once per row).
template <typename T, typename A>
inline bool vfilter_pairs(int kh, bool sym) {
  if constexpr (std::is_same<A, float>::value) {
    switch (kh) {
#define IMKERN_V(K) case K:
      IMKERN_LONG_SYM_TAPS(IMKERN_V)
#undef IMKERN_V
      return sym;
      default: return false;
    }
  }
  (void)kh, (void)sym;
  return false;
}

#if defined(__AVX512F__)
// AVX-512, float, small interleaved taps ((K - 1) * C < 16): the shifted windows are built
// from two aligned loads with valignd instead of K - 1 unaligned (cache-line-splitting) loads.
// p must be 64-byte aligned (the padded rows are). Same products and order as hfilter_fixed.
template <int K, int C>
inline void hfilter_align512(const float* p, float* h, int64_t n, const float* k) {
  static_assert((K - 1) * C < 16, "taps must fit in two vectors");
  __m512 kv[K];
  for (int j = 0; j < K; ++j) kv[j] = _mm512_set1_ps(k[j]);
  int64_t x = 0;
  __m512 cur = _mm512_load_ps(p);
  // Full output vectors only. Their taps lie in p[x .. x + 15 + (K - 1) * C], inside the padded
  // row; the load of p[x + 16 .. x + 31] may reach up to 16 floats past the row, which the row
  // buffers have (thread_scratch keeps 64 spare bytes), and those lanes are never used.
  for (; x + 16 <= n; x += 16) {
    const __m512 nxt = _mm512_load_ps(p + x + 16);
    const __m512i ci = _mm512_castps_si512(cur), ni = _mm512_castps_si512(nxt);
    __m512 a = _mm512_mul_ps(kv[0], cur), b = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int j = 1; j < K; ++j) {
      const __m512 v = _mm512_castsi512_ps(_mm512_alignr_epi32(ni, ci, (j * C) & 15));
      if (j & 1) b = _mm512_fmadd_ps(kv[j], v, b);
      else a = _mm512_fmadd_ps(kv[j], v, a);
    }
    _mm512_storeu_ps(h + x, _mm512_add_ps(a, b));
    cur = nxt;
  }
  if (x < n) hfilter_any(p, h, n, C, k, K, x);
}

// hfilter_align512 for symmetric kernels (see IMKERN_SYM_TAPS).
template <int K, int C>
inline void hfilter_align512_sym(const float* p, float* h, int64_t n, const float* k) {
  static_assert((K - 1) * C < 16 && K % 2 == 1, "taps must fit in two vectors; odd K");
  using A = float;
  using namespace simd;
  vec_t<A> kv[K];
  for (int j = 0; j < K; ++j) kv[j] = splat<A>(k[j]);
  int64_t x = 0;
  __m512 cur = _mm512_load_ps(p);
  for (; x + 16 <= n; x += 16) {  // as in hfilter_align512
    const __m512 nxt = _mm512_load_ps(p + x + 16);
    const __m512i ci = _mm512_castps_si512(cur), ni = _mm512_castps_si512(nxt);
    vec_t<A> w[K];
    w[0] = reinterpret_cast<vec_t<A>>(cur);
#pragma GCC unroll 8
    for (int j = 1; j < K; ++j)
      w[j] = reinterpret_cast<vec_t<A>>(_mm512_alignr_epi32(ni, ci, (j * C) & 15));
#define TAP(j) w[j]
    IMKERN_SYM_TAPS(K, TAP)
#undef TAP
    storeu(h + x, a + b);
    cur = nxt;
  }
  if (x < n && n >= 16) {  // the last vector ends at n (its loads stay inside the padded row + 16)
    x = n - 16;
    const __m512i ci = _mm512_castps_si512(_mm512_loadu_ps(p + x)), ni = _mm512_castps_si512(_mm512_loadu_ps(p + x + 16));
    vec_t<A> w[K];
    w[0] = reinterpret_cast<vec_t<A>>(ci);
#pragma GCC unroll 8
    for (int j = 1; j < K; ++j) w[j] = reinterpret_cast<vec_t<A>>(_mm512_alignr_epi32(ni, ci, (j * C) & 15));
#define TAP(j) w[j]
    IMKERN_SYM_TAPS(K, TAP)
#undef TAP
    storeu(h + x, a + b);
    return;
  }
  for (; x < n; ++x) h[x] = sym_taps<K>(k, [&](int j) { return p[x + j * C]; });
}
#endif  // __AVX512F__

#if defined(__AVX512F__)
// uint8 source rows, AVX-512, (K - 1) * C < 16: the conversion to float is fused into the
// horizontal pass (each 16 bytes widened and converted once, in registers; the shifted windows
// by valignd as in hfilter_align512[_sym]), so no float copy of the padded row is written and
// read back. The conversions are exact and the products and their order are those of
// hfilter_align512_sym (Sym) / hfilter_align512: the result is bitwise that of converting the
// row and calling hfilter. p: n + (K - 1) * C bytes, readable 16 bytes further (thread_scratch).
template <int K, int C, bool Sym>
inline void hfilter_u8_512(const uint8_t* p, float* h, int64_t n, const float* k) {
  static_assert((K - 1) * C < 16, "taps must fit in two vectors");
  using A = float;
  using namespace simd;
  vec_t<A> kv[K];
  for (int j = 0; j < K; ++j) kv[j] = splat<A>(k[j]);
  auto cvt16 = [](const uint8_t* q) IMKERN_ALWAYS_INLINE {
    return _mm512_castps_si512(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)))));
  };
  auto body = [&](int64_t x, __m512i cur, __m512i nxt) IMKERN_ALWAYS_INLINE {
    vec_t<A> w[K];
    w[0] = reinterpret_cast<vec_t<A>>(cur);
#pragma GCC unroll 8
    for (int j = 1; j < K; ++j) w[j] = reinterpret_cast<vec_t<A>>(_mm512_alignr_epi32(nxt, cur, (j * C) & 15));
    if constexpr (Sym) {
#define TAP(j) w[j]
      IMKERN_SYM_TAPS(K, TAP)
#undef TAP
      storeu(h + x, a + b);
    } else {
      __m512 a = _mm512_mul_ps(reinterpret_cast<__m512>(kv[0]), reinterpret_cast<__m512>(w[0]));
      __m512 b = _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int j = 1; j < K; ++j) {
        if (j & 1) b = _mm512_fmadd_ps(reinterpret_cast<__m512>(kv[j]), reinterpret_cast<__m512>(w[j]), b);
        else a = _mm512_fmadd_ps(reinterpret_cast<__m512>(kv[j]), reinterpret_cast<__m512>(w[j]), a);
      }
      _mm512_storeu_ps(h + x, _mm512_add_ps(a, b));
    }
  };
  int64_t x = 0;
  __m512i cur = cvt16(p);
  for (; x + 16 <= n; x += 16) {
    const __m512i nxt = cvt16(p + x + 16);
    body(x, cur, nxt);
    cur = nxt;
  }
  // The last vector ends at n, as in the float kernels (p is readable to n + (K - 1) C + 16).
  if (x < n && n >= 16) return body(n - 16, cvt16(p + n - 16), cvt16(p + n));
  if (x < n) {  // rows under 16 outputs: from a converted copy, by the tails of the float kernels
    float t[16 + (K - 1) * C];
    const int64_t m = n - x + (K - 1) * C;
    for (int64_t i = 0; i < m; ++i) t[i] = static_cast<float>(p[x + i]);
    if constexpr (Sym) {
      for (int64_t e = 0; e < n - x; ++e) h[x + e] = sym_taps<K>(k, [&](int j) { return t[e + j * C]; });
    } else {
      hfilter_any(t, h + x, n - x, C, k, K);
    }
  }
}
#endif

// Whether hfilter_u8 has a fused kernel for C channels and kw taps.
inline bool hfilter_u8_supported(int64_t C, int kw) {
#if defined(__AVX512F__)
  return (C == 1 && (kw == 3 || kw == 5 || kw == 7)) || (C == 3 && (kw == 3 || kw == 5)) || (C == 4 && kw == 3);
#else
  (void)C;
  (void)kw;
  return false;
#endif
}

// hfilter of a padded uint8 row (hfilter_u8_supported(C, kw) only): bitwise what converting the
// row to float and calling hfilter gives.
inline void hfilter_u8(const uint8_t* p, float* h, int64_t n, int64_t C, const float* k, int kw, bool sym) {
#if defined(__AVX512F__)
#define IMKERN_U8H(KK, CC)                                                                  \
  if (C == CC && kw == KK) return sym ? hfilter_u8_512<KK, CC, true>(p, h, n, k) : hfilter_u8_512<KK, CC, false>(p, h, n, k);
  IMKERN_U8H(3, 1)
  IMKERN_U8H(5, 1)
  IMKERN_U8H(7, 1)
  IMKERN_U8H(3, 3)
  IMKERN_U8H(5, 3)
  IMKERN_U8H(3, 4)
#undef IMKERN_U8H
#endif
  (void)p, (void)h, (void)n, (void)C, (void)k, (void)kw, (void)sym;
  throw std::logic_error("hfilter_u8: no fused kernel for these taps");
}

template <typename A>
inline void hfilter(const A* p, A* h, int64_t n, int64_t C, const A* k, int kw, bool sym = false) {
#if defined(__AVX512F__)
  if constexpr (std::is_same<A, float>::value) {
    if (sym && (reinterpret_cast<uintptr_t>(p) & 63) == 0) {
      if (C == 3 && kw == 5) return hfilter_align512_sym<5, 3>(p, h, n, k);
      if (C == 3 && kw == 3) return hfilter_align512_sym<3, 3>(p, h, n, k);
      if (C == 1 && kw == 5) return hfilter_align512_sym<5, 1>(p, h, n, k);
      if (C == 1 && kw == 3) return hfilter_align512_sym<3, 1>(p, h, n, k);
      if (C == 1 && kw == 7) return hfilter_align512_sym<7, 1>(p, h, n, k);
    }
    if ((reinterpret_cast<uintptr_t>(p) & 63) == 0) {
      if (C == 3 && kw == 5) return hfilter_align512<5, 3>(p, h, n, k);
      if (C == 3 && kw == 3) return hfilter_align512<3, 3>(p, h, n, k);
      if (C == 1 && kw == 5) return hfilter_align512<5, 1>(p, h, n, k);
      if (C == 1 && kw == 3) return hfilter_align512<3, 1>(p, h, n, k);
      if (C == 1 && kw == 7) return hfilter_align512<7, 1>(p, h, n, k);
    }
  }
#endif
  if constexpr (std::is_same<A, float>::value) {
    // one channel on AVX2: hfilter_long_c1_avx2 (no cache-line-splitting loads, the same bits)
#if defined(__AVX2__) && !defined(__AVX512F__)
#define IMKERN_H(K) \
  case K: return C == 1 ? hfilter_long_c1_avx2<K>(p, h, n, k) : hfilter_long<K>(p, h, n, C, k);
#else
#define IMKERN_H(K) \
  case K: return hfilter_long<K>(p, h, n, C, k);
#endif
    if (sym) switch (kw) {
      IMKERN_LONG_SYM_TAPS(IMKERN_H)
#undef IMKERN_H
      default: break;
    }
  }
  if (sym) switch (kw) {
    case 3: return hfilter_sym<3>(p, h, n, C, k);
    case 5: return hfilter_sym<5>(p, h, n, C, k);
    case 7: return hfilter_sym<7>(p, h, n, C, k);
    case 9: return hfilter_sym<9>(p, h, n, C, k);
    case 11: return hfilter_sym<11>(p, h, n, C, k);
    default: break;
  }
  switch (kw) {
    case 3: return hfilter_fixed<3>(p, h, n, C, k);
    case 5: return hfilter_fixed<5>(p, h, n, C, k);
    case 7: return hfilter_fixed<7>(p, h, n, C, k);
    default: return hfilter_any(p, h, n, C, k, kw);
  }
}

template <typename T, typename A, bool Stream>
inline void vfilter_taps(const A* const* rows, T* o, int64_t n, const A* k, int kh, bool sym) {
  if (sym) switch (kh) {
    case 3: return vfilter_sym<3, T, A, Stream>(rows, o, n, k);
    case 5: return vfilter_sym<5, T, A, Stream>(rows, o, n, k);
    case 7: return vfilter_sym<7, T, A, Stream>(rows, o, n, k);
    case 9: return vfilter_sym<9, T, A, Stream>(rows, o, n, k);
    case 11: return vfilter_sym<11, T, A, Stream>(rows, o, n, k);
    default: break;
  }
  if constexpr (std::is_same<A, float>::value) {
    if (sym) switch (kh) {
#define IMKERN_V(K) \
  case K: return vfilter_long<K, 1, T, A, Stream>(rows, &o, n, k);
      IMKERN_LONG_SYM_TAPS(IMKERN_V)
#undef IMKERN_V
      default: break;
    }
  }
  switch (kh) {
    case 3: return vfilter_fixed<3, T, A, Stream>(rows, o, n, k);
    case 5: return vfilter_fixed<5, T, A, Stream>(rows, o, n, k);
    case 7: return vfilter_fixed<7, T, A, Stream>(rows, o, n, k);
    default: return vfilter_any<T, A>(rows, o, n, k, kh);
  }
}

// Output rows: sym (is_symmetric(k, kh)) selects the folded taps; stream the non-temporal
// stores (for outputs too large to stay in the caches).
template <typename T, typename A>
inline void vfilter(const A* const* rows, T* o, int64_t n, const A* k, int kh, bool sym, bool stream) {
  if (stream) return vfilter_taps<T, A, true>(rows, o, n, k, kh, sym);
  return vfilter_taps<T, A, false>(rows, o, n, k, kh, sym);
}

// Output rows o0 and o1 from the kh + 1 rows (o0 from rows[0 .. kh-1], o1 from rows[1 .. kh]):
// the same values as two vfilter calls, computed together where vfilter_pairs says so.
template <typename T, typename A>
inline void vfilter2(const A* const* rows, T* o0, T* o1, int64_t n, const A* k, int kh, bool sym, bool stream) {
  if constexpr (std::is_same<A, float>::value) {
    if (vfilter_pairs<T, A>(kh, sym)) {
      T* const o[2] = {o0, o1};
#if defined(__AVX2__) && !defined(__AVX512F__)
      // rows at one stride (the mirrored ring): the kernel without row pointers
      const int64_t S = rows[1] - rows[0];
      bool strided = n >= simd::Vec<A>::lanes && kh + 1 <= kLongStridedRows &&
                     (!stream || (reinterpret_cast<uintptr_t>(o1) - reinterpret_cast<uintptr_t>(o0)) % 64 == 0);
      for (int i = 2; strided && i <= kh; ++i) strided = rows[i] == rows[0] + i * S;
      if (strided) switch (kh) {
#define IMKERN_V(K)                                                                                  \
  case K:                                                                                            \
    return stream ? vfilter_long2_strided<K, T, true>(rows[0], S, o, n, k)                           \
                  : vfilter_long2_strided<K, T, false>(rows[0], S, o, n, k);
          IMKERN_LONG_SYM_TAPS(IMKERN_V)
#undef IMKERN_V
          default: break;
        }
#endif
      switch (kh) {
#define IMKERN_V(K)                                                                      \
  case K:                                                                                \
    return stream ? vfilter_long<K, 2, T, A, true>(rows, o, n, k) : vfilter_long<K, 2, T, A, false>(rows, o, n, k);
        IMKERN_LONG_SYM_TAPS(IMKERN_V)
#undef IMKERN_V
        default: break;
      }
    }
  }
  vfilter<T, A>(rows, o0, n, k, kh, sym, stream);
  vfilter<T, A>(rows + 1, o1, n, k, kh, sym, stream);
}

// Whether k[j] == k[K - 1 - j] for all j, K odd (the symmetric paths above apply).
template <typename A>
inline bool is_symmetric(const A* k, int K) {
  if (K % 2 == 0) return false;
  for (int j = 0; j < K / 2; ++j)
    if (!(k[j] == k[K - 1 - j])) return false;
  return true;
}

// Whether a filter writes its output with non-temporal stores: when source and result
// cannot both stay in the last-level cache (more than cpu_params().stream_bytes: the L3 this
// process measurably gets, not the socket's), streaming saves the read-for-ownership of every
// output line. Measured on 4K images (docs/design.md): 8/16-bit outputs gain ~35% streaming
// from the first aligned element of each row; float outputs gain ~40% when every row starts
// on a 64-byte line, but lose when rows start mid-line (NumPy's large allocations start 16
// bytes into a line), so those keep plain stores. SP: the strip width in pixels.
template <typename T>
inline bool stream_output(const void* dst, const ImageDesc& s, const ImageDesc& d, int64_t SP) {
  const int64_t line = 64 / static_cast<int64_t>(sizeof(T));
  const bool rows_on_lines = reinterpret_cast<uintptr_t>(dst) % 64 == 0 && d.row_stride % line == 0 &&
                             (s.n == 1 || d.batch_stride % line == 0) && (SP * s.c) % line == 0;
  return 2 * s.n * s.h * s.w * s.c * static_cast<int64_t>(sizeof(T)) > params().stream_bytes &&
         (Saturate<T>::integer || rows_on_lines);
}

// The column strips of a row-ring filter and whether its output is streamed.
//  * sp: the strip width in pixels (strip_pixels: the ring stays in L1 or L2).
//  * Streaming (outputs larger than cpu_params().stream_bytes: source and result cannot both
//    stay in the last-level cache) skips the read-for-ownership of every output line, but only
//    whole lines gain: a strip row that starts or ends inside a line leaves that line to plain
//    stores, and a line written partly by streaming and partly by plain stores costs a
//    write-combining flush and a read. So when a row holds several strips, the strip
//    boundaries are put on output lines: the strips all start at the same offset in their
//    line when the row and batch strides are whole lines, and `first` (the first strip's
//    width, sp plus a phase below one line) moves the later boundaries onto line starts.
//    Rows of one strip (sp >= w) stream from their first aligned element whatever their
//    alignment. Float rows whose strips cannot be put on lines do not stream (measured: 2x
//    slower than plain stores with 448-pixel strips); 8/16-bit rows still do (as before).
// Results never depend on the plan (every element is summed the same way).
// A last strip narrower than `merge` pixels joins the one before it (rows under one vector
// would take the scalar tails, whose roundings can differ from the vector code's).
struct StripPlan {
  int64_t sp = 0, first = 0, merge = 0;
  bool stream = false;
  int64_t widest() const { return (first > sp ? first : sp) + merge; }
};

// px: the strip width in pixels (plan_strips: strip_pixels'), before the line alignment.
template <typename T>
inline StripPlan plan_strips_px(const void* dst, const ImageDesc& s, const ImageDesc& d, int64_t px) {
  StripPlan p;
  p.sp = p.first = px >= s.w ? s.w : px;
  if (p.sp < s.w) p.merge = 16;
  const bool big = 2 * s.n * s.h * s.w * s.c * static_cast<int64_t>(sizeof(T)) > params().stream_bytes;
  if (!big) return p;
  if (p.sp >= s.w) {
    p.stream = true;
    return p;
  }
  const int64_t line = 64 / static_cast<int64_t>(sizeof(T));  // elements per line
  const uintptr_t a = reinterpret_cast<uintptr_t>(dst);
  const bool same = a % sizeof(T) == 0 && d.row_stride % line == 0 && (s.n == 1 || d.batch_stride % line == 0);
  if (same) {
    const int64_t sp = p.sp >= line ? p.sp / line * line : line;  // sp * c: whole lines
    const int64_t m = static_cast<int64_t>((a / sizeof(T)) % static_cast<uintptr_t>(line));
    for (int64_t ph = 0; ph < line; ++ph) {
      if ((m + ph * s.c) % line) continue;
      p.sp = sp;
      p.first = sp + ph;
      if (p.first >= s.w) {
        p.sp = p.first = s.w;
        p.merge = 0;
      }
      p.stream = true;
      return p;
    }
  }
  p.stream = Saturate<T>::integer;
  return p;
}

template <typename T>
inline StripPlan plan_strips(const void* dst, const ImageDesc& s, const ImageDesc& d, int ring_rows, size_t acc_size) {
  return plan_strips_px<T>(dst, s, d, strip_pixels(s.w, s.c, ring_rows, acc_size));
}

// Keeps the kh source rows an output row needs, each converted and padded once, in a ring
// indexed by source-row number modulo kh. `make(r, dst)` fills the slot for source row r
// (r may lie outside the image: the border decides).
template <typename A>
class RowRing {
 public:
  // The ring lives in this thread's scratch slot 0.
  // Room for rows of `width` values starting up to one vector past the slot's (aligned)
  // start (see set_shift).
  // `slots` >= kh rows (more for rows_for's count).
  // mirror: each row is also copied cap slots further (2 cap slots), so that the rows of any
  // window of up to cap rows lie at one stride (rows_for's pointers are equally spaced).
  RowRing(int kh, int64_t width, int slots = 0, bool mirror = false)
      : kh_(kh), cap_(slots > kh ? slots : kh), width_(ring_stride(width + simd::Vec<A>::lanes)),
        buf_(thread_scratch<A>(0, static_cast<size_t>(mirror ? 2 * cap_ : cap_) * width_)), rows_(cap_),
        mirror_(mirror) {}
  // The rows first ... first + count - 1 (count: kh, or up to the slots).
  template <typename Make>
  const A* const* rows_for(int64_t first, Make&& make, int count = 0) {
    const int cnt = count > 0 ? count : kh_;
    const int64_t last = first + cnt;  // exclusive
    if (first < lo_ || first > hi_) lo_ = hi_ = first;  // restart (new image or a jump)
    while (hi_ < last) {
      A* row = slot(hi_);
      make(hi_, row);
      if (mirror_) std::memcpy(row + cap_ * width_, row, static_cast<size_t>(width_ - shift_) * sizeof(A));
      ++hi_;
    }
    lo_ = first;
    if (mirror_) {
      A* r0 = slot(first);
      for (int i = 0; i < cnt; ++i) rows_[i] = r0 + i * width_;
    } else {
      for (int i = 0; i < cnt; ++i) rows_[i] = slot(first + i);
    }
    return rows_.data();
  }
  void reset() { lo_ = hi_ = INT64_MIN / 2; }
  // Rows start `shift` (< lanes) values past the aligned slot start, so that a vector loop
  // over them is aligned exactly where one over an output row misaligned by `shift` is.
  // Forgets the rows made so far.
  void set_shift(int64_t shift) {
    shift_ = shift;
    reset();
  }

  // Row stride: whole cache lines, and not a multiple of 4 KiB (give or take 512 bytes), so
  // the loads from the kh rows and the store into the next one do not alias in the L1's
  // 4K-offset disambiguation (a 3x slowdown for widths like 3072 floats).
  static int64_t ring_stride(int64_t width) {
    int64_t n = round_up_line<A>(width);
    const int64_t line = 64 / static_cast<int64_t>(sizeof(A));
    while (true) {
      const int64_t m = (n * static_cast<int64_t>(sizeof(A))) % 4096;
      if (m >= 512 && m <= 3584) return n;
      n += line;
    }
  }

 private:
  A* slot(int64_t r) {
    int64_t m = r % cap_;
    if (m < 0) m += cap_;
    return buf_ + m * width_ + shift_;
  }
  int kh_, cap_;
  int64_t width_;
  A* buf_;
  std::vector<const A*> rows_;
  int64_t lo_ = INT64_MIN / 2, hi_ = INT64_MIN / 2;
  int64_t shift_ = 0;
  bool mirror_ = false;
};

// The row pipeline of sep_filter and correlate, for output rows [t0, t1) of the flattened
// (N * H) range, in column strips of `strip` pixels: each ring row (source row sy of image b,
// strip [x0, x1)) is made once by make(b, sy, x0, x1, slot); emit(rows, b, y, x0, x1) then
// writes the strip of output row y from the kh ring rows y - ay ... y - ay + kh - 1.
// shift(b, y, x0) gives the ring-row offset for a strip starting at output row y (see
// RowRing::set_shift). Ends with a store fence, for emitters that use non-temporal stores.
// `first`: the first strip's width (StripPlan), the others `strip`; a last strip under `merge`
// pixels joins the one before (the ring must hold strip + merge pixels).
template <typename A, typename Make, typename Emit, typename Shift>
inline void ring_pipeline(int64_t t0, int64_t t1, int64_t H, int64_t W, int kh, int ay, int64_t strip, int64_t first,
                          int64_t merge, int64_t ring_width, Make&& make, Emit&& emit, Shift&& shift) {
  RowRing<A> ring(kh, ring_width);
  for (int64_t x0 = 0, x1 = 0; x0 < W; x0 = x1) {
    x1 = x0 + (x0 == 0 ? first : strip);
    if (x1 > W || W - x1 < merge) x1 = W;
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {
        cur_b = b;
        ring.set_shift(shift(b, y, x0));
      }
      const A* const* rows = ring.rows_for(y - ay, [&](int64_t sy, A* slot) { make(b, sy, x0, x1, slot); });
      emit(rows, b, y, x0, x1);
    }
  }
  stream_fence();
}

// ring_pipeline writing two output rows at a time where it can: emit2(rows, b, y, x0, x1)
// writes rows y and y + 1 from the kh + 1 ring rows y - ay ... y - ay + kh; a row left alone
// (the last of the range or of an image) goes to emit. The ring holds kh + 1 rows.
template <typename A, typename Make, typename Emit, typename Emit2, typename Shift>
inline void ring_pipeline2(int64_t t0, int64_t t1, int64_t H, int64_t W, int kh, int ay, int64_t strip, int64_t first,
                           int64_t merge, int64_t ring_width, Make&& make, Emit&& emit, Emit2&& emit2,
                           Shift&& shift, bool mirror = false) {
  RowRing<A> ring(kh, ring_width, kh + 1, mirror);
  for (int64_t x0 = 0, x1 = 0; x0 < W; x0 = x1) {
    x1 = x0 + (x0 == 0 ? first : strip);
    if (x1 > W || W - x1 < merge) x1 = W;
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y = t % H;
      if (b != cur_b) {
        cur_b = b;
        ring.set_shift(shift(b, y, x0));
      }
      auto mk = [&](int64_t sy, A* slot) { make(b, sy, x0, x1, slot); };
      if (t + 1 < t1 && y + 1 < H) {
        emit2(ring.rows_for(y - ay, mk, kh + 1), b, y, x0, x1);
        t += 2;
      } else {
        emit(ring.rows_for(y - ay, mk), b, y, x0, x1);
        t += 1;
      }
    }
  }
  stream_fence();
}

template <typename A, typename Make, typename Emit, typename Shift>
inline void ring_pipeline(int64_t t0, int64_t t1, int64_t H, int64_t W, int kh, int ay, int64_t strip,
                          int64_t ring_width, Make&& make, Emit&& emit, Shift&& shift) {
  ring_pipeline<A>(t0, t1, H, W, kh, ay, strip, strip, 0, ring_width, make, emit, shift);
}

template <typename A, typename Make, typename Emit>
inline void ring_pipeline(int64_t t0, int64_t t1, int64_t H, int64_t W, int kh, int ay, int64_t strip,
                          int64_t ring_width, Make&& make, Emit&& emit) {
  ring_pipeline<A>(t0, t1, H, W, kh, ay, strip, strip, 0, ring_width, make, emit,
                   [](int64_t, int64_t, int64_t) { return 0; });
}


// ---- Direct small separable filters: K x K taps, K = 3 or 5, float32 arithmetic ---------------
// Vertical first, in registers: for each output row the K source rows are read in place (no
// padded copy, no ring of filtered rows), each vector of vertical sums v(p) (p: the element
// offset in the row) is formed once, and the horizontal taps come from the previous, current and
// next vectors of v by lane shifts (shuffle2 with constant masks: valignd on AVX-512, vperm2f128
// + vpalignr on AVX2), so every output vector costs K loads and one store, with no intermediate
// row written or read back: one pass over memory (the K - 1 rows above the newest come from L1
// or L2). Needs (K / 2) * C <= lanes (the horizontal halo inside one vector each side).
// bytes/pixel = (sizeof(T) + sizeof(U)) * C; FLOPs/pixel about 2 K C (folded taps: K + 1 adds
// and K + 1 multiplies per element).
// Integer images (uint8, uint16) are widened to float32 as they are loaded (exact), so they get
// the float32 image's arithmetic bit for bit, rounded and saturated at the store.
// The column border: v at a column outside the image is v of the column border_index maps it
// to (every row's value there is that column's), or, for the constant border, v of K cval
// values; the same bits whatever the row, chunk or thread. Rows of at least one vector are
// computed by the same vector code for every element (the last vector overlapping); narrower
// rows by a scalar loop in the same order.
// Sums: Mode 0: symmetric taps folded as IMKERN_SYM_TAPS, vertically then horizontally (other
// roundings than the ring path's horizontal-first, within the float32 tolerance of the float64
// reference); Mode 1: plain sums (the box filter), then times `post` (1 / area) or as they are.

// concat(a, b)[S .. S + lanes): a constant two-source shuffle.
template <int S>
IMKERN_ALWAYS_INLINE inline simd::vec_t<float> lane_window(simd::vec_t<float> a, simd::vec_t<float> b) {
  constexpr int L = simd::Vec<float>::lanes;
  if constexpr (S == 0) {
    (void)b;
    return a;
  } else if constexpr (S == L) {
    (void)a;
    return b;
  } else {
    typedef int32_t mi __attribute__((vector_size(sizeof(simd::vec_t<float>))));
    mi mask;
    for (int i = 0; i < L; ++i) mask[i] = S + i;
    return simd::shuffle2(a, b, mask);
  }
}

template <int K, int C, int Mode, typename U>
struct DirectSep {
  using V = simd::vec_t<float>;
  static constexpr int L = simd::Vec<float>::lanes;
  static constexpr int H = (K / 2) * C;  // horizontal halo in elements
  static_assert(K == 3 || K == 5, "3 or 5 taps");
  static_assert(H <= L, "halo within one vector");
  V ky[K], kx[K];
  float kys[K], kxs[K];
  V post;  // Mode 1: the factor applied to the sums (with scale)
  float posts = 1.f;
  bool scale = false;

  // sum_j k[j] t(j): folded symmetric taps (Mode 0) or plain sums (Mode 1). S: V or float.
  template <typename S, typename Tap>
  IMKERN_ALWAYS_INLINE static S taps(const S* k, Tap&& t) {
    if constexpr (Mode == 0) {
      if constexpr (K == 3) {
        S a = k[1] * t(1), b = k[0] * (t(0) + t(2));
        return a + b;
      } else {
        S a = k[2] * t(2), b = k[0] * (t(0) + t(4));
        a += k[1] * (t(1) + t(3));
        return a + b;
      }
    } else {
      (void)k;
      if constexpr (K == 3) return (t(0) + t(1)) + t(2);
      else return ((t(0) + t(1)) + (t(2) + t(3))) + t(4);
    }
  }

  template <typename TL>
  IMKERN_ALWAYS_INLINE static V vsum(const V* ky, const TL* const* r, int64_t p) {
    if constexpr (Mode == 1 && std::is_same<TL, uint16_t>::value) {
      // plain sums of uint16 rows in int32 lanes, converted once: exact, so the float sums' bits
      (void)ky;
      auto t = [&](int i) IMKERN_ALWAYS_INLINE { return simd::widen_to_i32<uint16_t>(r[i] + p); };
      simd::vec_t<int32_t> si;
      if constexpr (K == 3) si = (t(0) + t(1)) + t(2);
      else si = ((t(0) + t(1)) + (t(2) + t(3))) + t(4);
      return __builtin_convertvector(si, V);
    } else {
      return taps(ky, [&](int i) IMKERN_ALWAYS_INLINE { return load_vec<float, TL>(r[i] + p); });
    }
  }
  template <int J>
  IMKERN_ALWAYS_INLINE static V tap_window(V vp, V vc, V vn) {
    constexpr int d = (J - K / 2) * C;
    if constexpr (d < 0) return lane_window<L + d>(vp, vc);
    else return lane_window<d>(vc, vn);
  }
  IMKERN_ALWAYS_INLINE static V hsum(const V* kx, bool scale, V post, V vp, V vc, V vn) {
    V w[K];
    w[0] = tap_window<0>(vp, vc, vn);
    w[1] = tap_window<1>(vp, vc, vn);
    w[2] = tap_window<2>(vp, vc, vn);
    if constexpr (K == 5) {
      w[3] = tap_window<3>(vp, vc, vn);
      w[4] = tap_window<4>(vp, vc, vn);
    }
    V s = taps(kx, [&](int j) IMKERN_ALWAYS_INLINE { return w[j]; });
    if constexpr (Mode == 1) {
      if (scale) s *= post;
    }
    return s;
  }

  // One output row (n >= L elements) from the K source rows r. halo_l / halo_r: for the H
  // elements left of the row and right of it, the element offset they map to (-1: vcv, the
  // constant border's v).
  // pf: a source row read soon (prefetched along, a vector per vector of output).
  template <typename TL, bool Stream>
  IMKERN_ALWAYS_INLINE void row(const TL* const* r, U* o, int64_t n, const int64_t* halo_l, const int64_t* halo_r,
                                float vcv, const TL* pf) const {
    // the taps in locals: the stores to o could alias the members, which would then be
    // reloaded for every vector
    V kyl[K], kxl[K];
    for (int i = 0; i < K; ++i) {
      kyl[i] = ky[i];
      kxl[i] = kx[i];
    }
    const bool sc = scale;
    const V pv = post;
    auto vsum = [&](const TL* const* rr, int64_t p) IMKERN_ALWAYS_INLINE { return DirectSep::vsum(kyl, rr, p); };
    auto hsum = [&](V a, V b, V c) IMKERN_ALWAYS_INLINE { return DirectSep::hsum(kxl, sc, pv, a, b, c); };
    alignas(64) float le[2 * L], ri[2 * L];  // v at [-L, L) and at [n - L, n + L)
    const V vfirst = vsum(r, 0), vlast = vsum(r, n - L);
    simd::storeu(le + L, vfirst);
    simd::storeu(ri, vlast);
    auto val = [&](int64_t m) IMKERN_ALWAYS_INLINE -> float {
      if (m < 0) return vcv;
      if (m < L) return le[L + m];
      if (m >= n - L) return ri[m - (n - L)];
      return vsum(r, m)[0];
    };
    for (int i = 0; i < L - H; ++i) le[i] = 0.f;
    for (int i = 0; i < H; ++i) le[L - H + i] = val(halo_l[i]);
    for (int i = 0; i < H; ++i) ri[L + i] = val(halo_r[i]);
    for (int i = H; i < L; ++i) ri[L + i] = 0.f;
    // v at [p - L, p) and at [p + L, p + 2 L), for a vector at p (0 <= p <= n - L)
    auto vprev = [&](int64_t p) IMKERN_ALWAYS_INLINE { return p >= L ? vsum(r, p - L) : simd::loadu(le + p); };
    auto vnext = [&](int64_t p) IMKERN_ALWAYS_INLINE {
      return p + 2 * L <= n ? vsum(r, p + L) : simd::loadu(ri + (p + 2 * L - n));
    };
    // any one vector (the head and tail of a streaming row, the last vector ending at n)
    auto one = [&](int64_t p) IMKERN_ALWAYS_INLINE { return hsum(vprev(p), vsum(r, p), vnext(p)); };
    // the rolling loop over [b, en): the whole lines of stream_span with Stream (the plain
    // head and tail by one()), else the row
    StreamSpan sp{0, n};
    if constexpr (Stream) {
      sp = stream_span<U, L>(o, n);
      plain_vectors<U, float>(o, 0, sp.begin, one);
    }
    int64_t e = sp.begin;
    V vp = e == 0 ? simd::loadu(le) : vprev(e);
    V vc = e == 0 ? vfirst : vsum(r, e);
    for (; e + L <= sp.end && e + 2 * L <= n; e += L) {
      __builtin_prefetch(pf + e, 0, 3);
      const V vn = vsum(r, e + L);
      put<U, float, Stream>(o + e, hsum(vp, vc, vn));
      vp = vc;
      vc = vn;
    }
    if (e + L <= sp.end) {  // the next vector reaches past n: from ri
      put<U, float, Stream>(o + e, hsum(vp, vc, simd::loadu(ri + (e + L - (n - L)))));
      e += L;
    }
    plain_vectors<U, float>(o, e, n, one);  // the last vector ends at n
  }

  // Rows narrower than one vector: scalars, in the order of the vector code.
  template <typename TL>
  void row_narrow(const TL* const* r, U* o, int64_t n, const int64_t* halo_l, const int64_t* halo_r,
                  float vcv) const {
    float v[L + 2 * H];
    for (int64_t p = 0; p < n; ++p) v[H + p] = taps(kys, [&](int i) { return static_cast<float>(r[i][p]); });
    for (int i = 0; i < H; ++i) v[i] = halo_l[i] < 0 ? vcv : v[H + halo_l[i]];
    for (int i = 0; i < H; ++i) v[H + n + i] = halo_r[i] < 0 ? vcv : v[H + halo_r[i]];
    for (int64_t p = 0; p < n; ++p) {
      float s = taps(kxs, [&](int j) { return v[H + p + (j - K / 2) * C]; });
      if constexpr (Mode == 1) {
        if (scale) s *= posts;
      }
      o[p] = to_output<U, float>(s);
    }
  }

  template <typename TL>
  IMKERN_ALWAYS_INLINE void any_row(const TL* const* r, U* o, int64_t n, const int64_t* halo_l, const int64_t* halo_r,
                                    float vcv, bool stream, const TL* pf) const {
    if (n < L) return row_narrow<TL>(r, o, n, halo_l, halo_r, vcv);
    if (stream) row<TL, true>(r, o, n, halo_l, halo_r, vcv, pf);
    else row<TL, false>(r, o, n, halo_l, halo_r, vcv, pf);
  }
};

// Whether sep_direct takes a filter: square 3x3 or 5x5 taps, centred; 1 to 4 channels with the
// horizontal halo inside one vector.
inline bool sep_direct_ok(int kh, int kw, int ay, int ax, int64_t c) {
  if (kh != kw || (kh != 3 && kh != 5) || ay != kh / 2 || ax != kw / 2 || c < 1 || c > 4) return false;
  return (kw / 2) * c <= simd::Vec<float>::lanes;
}

// The whole image: T -> U with float32 arithmetic. ky, kx: the taps (Mode 0; Mode 1 ignores
// them); Mode 1 multiplies the sums by post when scale. stream: non-temporal stores.
template <int K, int C, int Mode, typename T, typename U>
inline void sep_direct_run(const T* src, const ImageDesc& s, U* dst, const ImageDesc& d, const float* ky,
                           const float* kx, bool scale, float post, Border border, float cval, bool stream) {
  using D = DirectSep<K, C, Mode, U>;
  D f;
  for (int i = 0; i < K; ++i) {
    f.kys[i] = Mode == 0 ? ky[i] : 1.f;
    f.kxs[i] = Mode == 0 ? kx[i] : 1.f;
    f.ky[i] = simd::splat<float>(f.kys[i]);
    f.kx[i] = simd::splat<float>(f.kxs[i]);
  }
  f.scale = scale;
  f.posts = post;
  f.post = simd::splat<float>(post);
  constexpr int H = D::H;
  const int64_t Hh = s.h, W = s.w, n = W * C;
  // halo maps: the element offsets of the H elements left and right of a row
  int64_t halo_l[H], halo_r[H];
  for (int i = 0; i < H; ++i) {
    const int64_t ch = i % C;
    const int64_t ml = border_index(-(K / 2) + i / C, W, border), mr = border_index(W + i / C, W, border);
    halo_l[i] = ml < 0 ? -1 : ml * C + ch;
    halo_r[i] = mr < 0 ? -1 : mr * C + ch;
  }
  // v of K cval values (the constant border's columns), as the vector code forms it
  const simd::vec_t<float> cvv = simd::splat<float>(cval);
  const float vcv = D::taps(f.ky, [&](int) { return cvv; })[0];
  // The constant border of an integer image: cval need not be a T, so the rows of an output
  // row that reaches outside are widened into float rows first (exact: the same bits).
  const bool float_rows = border == Border::constant && !std::is_same<T, float>::value;
  const int64_t rows = s.n * Hh;
  parallel_for(0, rows, filter_grain(rows, K, get_num_threads()), [&](int64_t t0, int64_t t1) {
    float* cvrow = nullptr;
    if (border == Border::constant) {
      cvrow = thread_scratch<float>(1, static_cast<size_t>(n));
      std::fill(cvrow, cvrow + n, cval);
    }
    float* frows = float_rows ? thread_scratch<float>(2, static_cast<size_t>(K * n)) : nullptr;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / Hh, y = t % Hh;
      U* o = row_ptr<U>(dst, d, b, y);
      const bool outside = y < K / 2 || y + K / 2 >= Hh;
      if (outside && border == Border::constant) {
        const float* fr[K];
        for (int i = 0; i < K; ++i) {
          const int64_t yy = border_index(y - K / 2 + i, Hh, border);
          if (yy < 0) {
            fr[i] = cvrow;
          } else if constexpr (std::is_same<T, float>::value) {
            fr[i] = row_ptr<float>(src, s, b, yy);
          } else {
            convert_row<T, float>(row_ptr<T>(src, s, b, yy), frows + i * n, n);
            fr[i] = frows + i * n;
          }
        }
        f.template any_row<float>(fr, o, n, halo_l, halo_r, vcv, stream, fr[K - 1]);
        continue;
      }
      const T* r[K];
      for (int i = 0; i < K; ++i) r[i] = row_ptr<T>(src, s, b, border_index(y - K / 2 + i, Hh, border));
      // the row two past the newest one this row reads, prefetched along the row
      const int64_t ahead = y + K / 2 + 2;
      f.template any_row<T>(r, o, n, halo_l, halo_r, vcv, stream, ahead < Hh ? row_ptr<T>(src, s, b, ahead) : r[K - 1]);
    }
    if (stream) stream_fence();
  });
}

// Dispatch on K and C (sep_direct_ok must hold).
template <int Mode, typename T, typename U>
inline void sep_direct(const T* src, const ImageDesc& s, U* dst, const ImageDesc& d, int k, const float* ky,
                       const float* kx, bool scale, float post, Border border, float cval, bool stream) {
  constexpr int L = simd::Vec<float>::lanes;
#define IMKERN_DIRECT(KK, CC)                                                                             \
  if constexpr ((KK / 2) * CC <= L) {                                                                     \
    if (k == KK && s.c == CC)                                                                             \
      return sep_direct_run<KK, CC, Mode, T, U>(src, s, dst, d, ky, kx, scale, post, border, cval, stream); \
  }
  IMKERN_DIRECT(3, 1)
  IMKERN_DIRECT(3, 2)
  IMKERN_DIRECT(3, 3)
  IMKERN_DIRECT(3, 4)
  IMKERN_DIRECT(5, 1)
  IMKERN_DIRECT(5, 2)
  IMKERN_DIRECT(5, 3)
  IMKERN_DIRECT(5, 4)
#undef IMKERN_DIRECT
  throw std::logic_error("sep_direct: no kernel for these taps and channels");
}

}  // namespace IMKERN_ISA
}  // namespace imkern
