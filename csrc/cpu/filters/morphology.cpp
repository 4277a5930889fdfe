// Grey erosion / dilation with a flat footprint (compiled per ISA).
//
// out(y, x) = min (erode) or max (dilate) over the footprint's nonzero (i, j) of
// src(y + i - ay, x + j - ax), out-of-image pixels by the border rule (the Python layer
// turns "outside pixels ignored" into a constant border holding the op's identity).
// Floats: NaN propagates (a window holding NaN gives NaN), as max-pooling does.
//
// The footprint is split into horizontal runs (per row, maximal spans of ones).
//  * Every run length L in use gives a horizontal 1-D min/max of each padded source row:
//    for L <= 8 directly (C <= 4: the taps off the 16-byte lanes of the window, one palignr
//    each, as loads bound this pass; else one load per tap), for L <= 32 by doubling (windows
//    of 1, 2, 4, ..., m taps, then two overlapping m-windows: floor(log2 L) + 1 vector
//    passes), beyond by van Herk / Gil-Werman (block prefix and suffix scans, 3 ops per
//    element whatever L).
//  * Rectangles (one run per row, all equal): separable, vertical pass first (morph_rect):
//    four (then two) output rows sharing their common rows up to 8 rows, van Herk /
//    Gil-Werman across rows beyond (vectorized across the row: 3 min/max per element
//    whatever the height). Outputs past stream_bytes are written by non-temporal stores.
//  * Footprints covered by up to 4 rectangles of ones, each at most 8x8 (cross, ellipse):
//    the min/max of the rectangles' separable passes (morph_cover).
//  * Other footprints (large ellipses, holes): each output row is the min/max over its runs
//    of the shifted filtered rows (one vector op per run and element).
// bytes/pixel ~ 2 sizeof(T) C (+ the strip buffers, cache resident).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "common/vops.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

// min / max; floats propagate NaN. Integer lanes take the plain form, which compiles to one
// vpmaxub/vpminub-style instruction (the NaN test would leave a compare and a blend).
template <bool Max, bool Nan, typename V>
inline V pick(V a, V b) {
  if constexpr (!Nan && !std::is_integral_v<std::remove_reference_t<decltype(a[0])>>) {
    return simd::vminmax<Max>(a, b);  // no NaN in either: the same value as below
  } else if constexpr (std::is_integral_v<std::remove_reference_t<decltype(a[0])>>) {
    if constexpr (Max) return a > b ? a : b;
    else return a < b ? a : b;
  } else {
    // x86's max/min return their second operand when either is NaN: b's NaN is caught by
    // max(a, b) itself and a's by the select, three instructions instead of two compares, an
    // or and a blend
    const V m = simd::vminmax<Max>(a, b);
    return a != a ? a : m;
  }
}
template <bool Max, typename T>
inline T pick1(T a, T b) {
  if constexpr (Max) return (a > b || a != a) ? a : b;
  else return (a < b || a != a) ? a : b;
}

// dst[e] = op(a[e], b[e]) for n elements; dst may be a or b (element e is read before it is
// written, so no restrict).
template <bool Max, bool Nan, typename T>
inline void pick_rows(T* dst, const T* a, const T* b, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  int64_t e = 0;
  for (; e + L <= n; e += L) storeu(dst + e, pick<Max, Nan>(loadu(a + e), loadu(b + e)));
  for (; e < n; ++e) dst[e] = pick1<Max>(a[e], b[e]);
}

// dst[e] = op over k < m of src[k][e] for n elements, in one pass (m >= 1).
template <bool Max, bool Nan, typename T>
inline void pick_many_rt(T* __restrict__ dst, const T* const* src, int m, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  int64_t e = 0;
  for (; e + 2 * L <= n; e += 2 * L) {
    vec_t<T> a = loadu(src[0] + e), b = loadu(src[0] + e + L);
    for (int k = 1; k < m; ++k) {
      a = pick<Max, Nan>(a, loadu(src[k] + e));
      b = pick<Max, Nan>(b, loadu(src[k] + e + L));
    }
    storeu(dst + e, a);
    storeu(dst + e + L, b);
  }
  for (; e < n; ++e) {
    T a = src[0][e];
    for (int k = 1; k < m; ++k) a = pick1<Max>(a, src[k][e]);
    dst[e] = a;
  }
}

// pick_many for a fixed count: the row pointers stay in registers and the taps unroll.
template <bool Max, bool Nan, int K, typename T>
inline void pick_many_k(T* __restrict__ dst, const T* const* src, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  const T* p[K];
  for (int k = 0; k < K; ++k) p[k] = src[k];
  int64_t e = 0;
  for (; e + 2 * L <= n; e += 2 * L) {
    vec_t<T> a = loadu(p[0] + e), b = loadu(p[0] + e + L);
    for (int k = 1; k < K; ++k) {
      a = pick<Max, Nan>(a, loadu(p[k] + e));
      b = pick<Max, Nan>(b, loadu(p[k] + e + L));
    }
    storeu(dst + e, a);
    storeu(dst + e + L, b);
  }
  auto one = [&](int64_t i) IMKERN_ALWAYS_INLINE {
    vec_t<T> a = loadu(p[0] + i);
    for (int k = 1; k < K; ++k) a = pick<Max, Nan>(a, loadu(p[k] + i));
    storeu(dst + i, a);
  };
  for (; e + L <= n; e += L) one(e);
  // The last vector overlaps the one before: rewriting an element gives the same value even
  // where dst is also src[0] (morph_impl's running result), as min/max are idempotent.
  if (e < n && n >= L) {
    one(n - L);
    return;
  }
  for (; e < n; ++e) {
    T a = p[0][e];
    for (int k = 1; k < K; ++k) a = pick1<Max>(a, p[k][e]);
    dst[e] = a;
  }
}

template <bool Max, bool Nan, typename T>
inline void pick_many(T* __restrict__ dst, const T* const* src, int m, int64_t n) {
  switch (m) {
    case 1: std::copy(src[0], src[0] + n, dst); return;
    case 2: return pick_many_k<Max, Nan, 2>(dst, src, n);
    case 3: return pick_many_k<Max, Nan, 3>(dst, src, n);
    case 4: return pick_many_k<Max, Nan, 4>(dst, src, n);
    case 5: return pick_many_k<Max, Nan, 5>(dst, src, n);
    case 6: return pick_many_k<Max, Nan, 6>(dst, src, n);
    case 7: return pick_many_k<Max, Nan, 7>(dst, src, n);
    case 8: return pick_many_k<Max, Nan, 8>(dst, src, n);
    default: return pick_many_rt<Max, Nan>(dst, src, m, n);
  }
}

// Bytes K .. K + 15 of each 128-bit lane of lo and hi joined lane by lane (lo's lane first):
// palignr. With lo = the vector at byte b and hi = the vector at byte b + 16, that is the
// vector at byte b + K: a shifted window from two loads instead of one load per shift.
template <int K, typename V>
IMKERN_ALWAYS_INLINE inline V lane_alignr(V hi, V lo) {
  static_assert(K > 0 && K < 16, "a shift within a 16-byte lane");
#if defined(__AVX512BW__)
  if constexpr (sizeof(V) == 64)
    return reinterpret_cast<V>(_mm512_alignr_epi8(reinterpret_cast<__m512i>(hi), reinterpret_cast<__m512i>(lo), K));
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(V) == 32)
    return reinterpret_cast<V>(_mm256_alignr_epi8(reinterpret_cast<__m256i>(hi), reinterpret_cast<__m256i>(lo), K));
#endif
#if defined(__SSSE3__)
  if constexpr (sizeof(V) == 16)
    return reinterpret_cast<V>(_mm_alignr_epi8(reinterpret_cast<__m128i>(hi), reinterpret_cast<__m128i>(lo), K));
#endif
  unsigned char a[sizeof(V)], b[sizeof(V)], r[sizeof(V)];
  std::memcpy(a, &lo, sizeof(V));
  std::memcpy(b, &hi, sizeof(V));
  for (size_t l = 0; l < sizeof(V); l += 16)
    for (int i = 0; i < 16; ++i) r[l + i] = i + K < 16 ? a[l + i + K] : b[l + i + K - 16];
  V v;
  std::memcpy(&v, r, sizeof(V));
  return v;
}

// Tap J (elements J*C on) of the window at q, from x[m] = the vector at q + 16m bytes: that
// vector itself when the shift is whole lanes, else one palignr of two of them.
template <typename T, int C, int J>
IMKERN_ALWAYS_INLINE inline simd::vec_t<T> lane_tap(const simd::vec_t<T>* x) {
  constexpr int K = J * C * static_cast<int>(sizeof(T));
  if constexpr (K % 16 == 0) return x[K / 16];
  else return lane_alignr<K % 16>(x[K / 16 + 1], x[K / 16]);
}

template <bool Max, bool Nan, typename T, int C, int... J>
IMKERN_ALWAYS_INLINE inline simd::vec_t<T> lane_taps(const simd::vec_t<T>* x, std::integer_sequence<int, J...>) {
  simd::vec_t<T> acc = x[0];
  ((acc = pick<Max, Nan>(acc, lane_tap<T, C, J + 1>(x))), ...);  // taps in order, as pick_many_k
  return acc;
}

// A whole vector at p (aligned to its size) by a non-temporal store.
template <typename T>
IMKERN_ALWAYS_INLINE inline void store_nt(T* p, simd::vec_t<T> v) {
#if defined(__AVX512F__)
  if constexpr (sizeof(v) == 64) return _mm512_stream_si512(reinterpret_cast<__m512i*>(p), reinterpret_cast<__m512i>(v));
#endif
#if defined(__AVX__)
  if constexpr (sizeof(v) == 32) return _mm256_stream_si256(reinterpret_cast<__m256i*>(p), reinterpret_cast<__m256i>(v));
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(v) == 16) return _mm_stream_si128(reinterpret_cast<__m128i*>(p), reinterpret_cast<__m128i>(v));
#endif
  simd::storeu(p, v);
}

// op over j < LEN of the vectors at q + jC (C <= 4): the taps off the 16-byte lanes of the
// window (hline_lanes), in order. Reads up to 15 bytes past the window's (LEN-1)C + one vector.
template <bool Max, bool Nan, typename T, int C, int LEN>
IMKERN_ALWAYS_INLINE inline simd::vec_t<T> lane_window(const T* q) {
  using namespace simd;
  constexpr int E16 = 16 / static_cast<int>(sizeof(T));
  constexpr int M = ((LEN - 1) * C * static_cast<int>(sizeof(T)) + 15) / 16;
  vec_t<T> x[M + 1];
#pragma GCC unroll 16
  for (int m = 0; m <= M; ++m) x[m] = loadu(q + m * E16);
  return lane_taps<Max, Nan, T, C>(x, std::make_integer_sequence<int, LEN - 1>{});
}

// hline's direct pass for C <= 4 and len <= 8 taps: out[e] = op over j < LEN of p[e + jC].
// The taps come from the vectors at every 16 bytes of the window (1 + (LEN-1)C sizeof(T)/16
// loads, 2 for 8-bit rows up to 17 bytes of window) and one palignr per tap off those lanes,
// instead of one unaligned load per tap: loads bound the direct pass (Zen 4, 1920-byte rows,
// per 64 output bytes: 5 taps 2.2 -> 1.4 ns, 3 taps 1.4 -> 0.9 ns). The same taps in the same
// order as pick_many_k, so the same results. Reads up to 15 bytes past p's n + (LEN-1)C
// elements (the scratch rows hline reads have that slack); needs n >= one vector. stream:
// the whole lines of `out` (stream_span) are written by non-temporal stores (large images: the
// output is not read back soon, and skipping its read-for-ownership saves a third of the
// traffic).
template <bool Max, bool Nan, typename T, int C, int LEN, bool Grad = false>
void hline_lanes(const T* p, T* __restrict__ out, int64_t n, bool stream, const T* pn = nullptr) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  auto window = [&](const T* q, auto max) IMKERN_ALWAYS_INLINE {
    return lane_window<decltype(max)::value, Nan, T, C, LEN>(q);
  };
  auto taps = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    if constexpr (Grad) return window(p + e, std::true_type{}) - window(pn + e, std::false_type{});
    else return window(p + e, std::bool_constant<Max>{});
  };
  int64_t e = 0;
  if (stream) {  // the whole lines of stream_span streamed, plain vectors before and after
    const StreamSpan sp = stream_span<T, L>(out, n);
    plain_vectors<T, T>(out, 0, sp.begin, taps);
    for (e = sp.begin; e < sp.end; e += L) store_nt(out + e, taps(e));
  }
  plain_vectors<T, T>(out, e, n, taps);  // the last vector overlaps the one before (out is not p)
}

template <bool Max, bool Nan, typename T, int C, bool Grad>
bool hline_lanes_len(const T* p, T* out, int64_t n, int len, bool stream, const T* pn) {
  switch (len) {
    case 2: hline_lanes<Max, Nan, T, C, 2, Grad>(p, out, n, stream, pn); return true;
    case 3: hline_lanes<Max, Nan, T, C, 3, Grad>(p, out, n, stream, pn); return true;
    case 4: hline_lanes<Max, Nan, T, C, 4, Grad>(p, out, n, stream, pn); return true;
    case 5: hline_lanes<Max, Nan, T, C, 5, Grad>(p, out, n, stream, pn); return true;
    case 6: hline_lanes<Max, Nan, T, C, 6, Grad>(p, out, n, stream, pn); return true;
    case 7: hline_lanes<Max, Nan, T, C, 7, Grad>(p, out, n, stream, pn); return true;
    case 8: hline_lanes<Max, Nan, T, C, 8, Grad>(p, out, n, stream, pn); return true;
    default: return false;
  }
}

// hline_lanes where it applies (C <= 4, 2 <= len <= 8, n >= one vector); false if not. Grad:
// out = the max over p's windows - the min over pn's (morph_rect's gradient).
template <bool Max, bool Nan, typename T, bool Grad = false>
bool hline_lanes_any(const T* p, T* out, int64_t n, int64_t C, int len, bool stream, const T* pn = nullptr) {
  if (n < simd::Vec<T>::lanes) return false;
  // 32-byte vectors load two a cycle (Zen 4): for 2-3 taps the loads beat the shuffles there
  // (uint8 1080p erode 3x3, AVX2: 122 us with loads, 133 with lanes).
  if (!Grad && sizeof(simd::vec_t<T>) == 32 && len <= 3) return false;
  switch (C) {
    case 1: return hline_lanes_len<Max, Nan, T, 1, Grad>(p, out, n, len, stream, pn);
    case 2: return hline_lanes_len<Max, Nan, T, 2, Grad>(p, out, n, len, stream, pn);
    case 3: return hline_lanes_len<Max, Nan, T, 3, Grad>(p, out, n, len, stream, pn);
    case 4: return hline_lanes_len<Max, Nan, T, 4, Grad>(p, out, n, len, stream, pn);
    default: return false;
  }
}

// out[e] = op over j < len of p[e + j*C], e in [0, n). p holds n + (len-1)*C elements.
// tmp: two scratch rows of n + (len-1)*C elements. stream: as hline_lanes (where it applies).
template <bool Max, bool Nan, typename T>
void hline(const T* p, T* out, int64_t n, int64_t C, int len, T* tmp0, T* tmp1, bool stream = false) {
  if (len == 1) {
    std::copy(p, p + n, out);
    return;
  }
  const int64_t total = n + static_cast<int64_t>(len - 1) * C;
  if (len <= 8) {  // direct: one pass, len loads per vector (or the lanes' taps)
    if (hline_lanes_any<Max, Nan, T>(p, out, n, C, len, stream)) return;
    const T* taps[8];
    for (int j = 0; j < len; ++j) taps[j] = p + j * C;
    pick_many<Max, Nan>(out, taps, len, n);
    return;
  }
  if (len <= 32) {
    // Doubling with overlap: windows of 1, 2, 4, ..., m taps (m the largest power of two
    // <= len, one pass each), then out[e] = op(W_m[e], W_m[e + (len - m) C]): the two
    // m-windows cover the len taps (overlapping where len is not a power of two).
    const T* w = p;
    int64_t bs = 1, valid = total;
    T* ping = tmp0;
    while (2 * bs <= len) {
      const int64_t nvalid = valid - bs * C;
      if (2 * bs == len) {  // the last doubling is the result
        pick_rows<Max, Nan>(out, w, w + bs * C, n);
        return;
      }
      pick_rows<Max, Nan>(ping, w, w + bs * C, nvalid);
      w = ping;
      ping = ping == tmp0 ? tmp1 : tmp0;
      valid = nvalid;
      bs *= 2;
    }
    pick_rows<Max, Nan>(out, w, w + (len - bs) * C, n);
    return;
  }
  // van Herk / Gil-Werman per channel: prefix (g) and suffix (h) scans over blocks of len.
  T* g = tmp0;
  T* h = tmp1;
  const int64_t npx = total / C;
  for (int64_t ch = 0; ch < C; ++ch) {
    for (int64_t q0 = 0; q0 < npx; q0 += len) {
      const int64_t q1 = std::min<int64_t>(npx, q0 + len);
      T acc = p[q0 * C + ch];
      g[q0 * C + ch] = acc;
      for (int64_t q = q0 + 1; q < q1; ++q) g[q * C + ch] = acc = pick1<Max>(acc, p[q * C + ch]);
      acc = p[(q1 - 1) * C + ch];
      h[(q1 - 1) * C + ch] = acc;
      for (int64_t q = q1 - 2; q >= q0; --q) h[q * C + ch] = acc = pick1<Max>(acc, p[q * C + ch]);
    }
  }
  const int64_t span = static_cast<int64_t>(len - 1) * C;
  pick_rows<Max, Nan>(out, h, g + span, n);
}

constexpr int kDirectRows = 8;  // rectangles up to this height: direct vertical pass (below)

// Two output rows sharing their middle: d0 = op(s[0..k-1]), d1 = op(s[1..k]) for n elements
// (k >= 2; s holds k + 1 rows): k + 1 loads for two rows instead of 2k.
template <bool Max, bool Nan, int K, typename T>
inline void pick_pair_k(T* __restrict__ d0, T* __restrict__ d1, const T* const* src, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  const T* s[K + 1];
  for (int i = 0; i <= K; ++i) s[i] = src[i];
  auto one = [&](int64_t i) IMKERN_ALWAYS_INLINE {
    vec_t<T> c = loadu(s[1] + i);
    for (int k = 2; k < K; ++k) c = pick<Max, Nan>(c, loadu(s[k] + i));
    storeu(d0 + i, pick<Max, Nan>(loadu(s[0] + i), c));
    storeu(d1 + i, pick<Max, Nan>(c, loadu(s[K] + i)));
  };
  int64_t e = 0;
  for (; e + L <= n; e += L) one(e);
  if (e < n && n >= L) {  // the last vector overlaps the one before (d0, d1 are no source)
    one(n - L);
    return;
  }
  for (; e < n; ++e) {
    T c = s[1][e];
    for (int i = 2; i < K; ++i) c = pick1<Max>(c, s[i][e]);
    d0[e] = pick1<Max>(s[0][e], c);
    d1[e] = pick1<Max>(c, s[K][e]);
  }
}

template <bool Max, bool Nan, typename T>
inline void pick_pair(T* __restrict__ d0, T* __restrict__ d1, const T* const* s, int k, int64_t n) {
  static_assert(kDirectRows == 8, "one case per direct height");
  switch (k) {
    case 2: return pick_pair_k<Max, Nan, 2>(d0, d1, s, n);
    case 3: return pick_pair_k<Max, Nan, 3>(d0, d1, s, n);
    case 4: return pick_pair_k<Max, Nan, 4>(d0, d1, s, n);
    case 5: return pick_pair_k<Max, Nan, 5>(d0, d1, s, n);
    case 6: return pick_pair_k<Max, Nan, 6>(d0, d1, s, n);
    case 7: return pick_pair_k<Max, Nan, 7>(d0, d1, s, n);
    default: return pick_pair_k<Max, Nan, 8>(d0, d1, s, n);
  }
}

// The four windows of K rows in v[0 .. K+2], sharing their middles: r[q] = op(v[q .. q+K-1])
// (K >= 2).
template <bool Max, bool Nan, int K, typename V>
IMKERN_ALWAYS_INLINE inline void quad_windows(const V* v, V* r) {
  V c1 = v[1], c3 = v[3];  // c1 = op(v[1 .. k-1]), c3 = op(v[3 .. k+1])
  if constexpr (K >= 4) {
    V m = v[3];  // op(v[3 .. k-1]), common to the four rows
#pragma GCC unroll 8
    for (int i = 4; i < K; ++i) m = pick<Max, Nan>(m, v[i]);
    c1 = pick<Max, Nan>(pick<Max, Nan>(v[1], v[2]), m);
    c3 = pick<Max, Nan>(pick<Max, Nan>(m, v[K]), v[K + 1]);
  } else {
#pragma GCC unroll 8
    for (int i = 2; i < K; ++i) c1 = pick<Max, Nan>(c1, v[i]);
#pragma GCC unroll 8
    for (int i = 4; i <= K + 1; ++i) c3 = pick<Max, Nan>(c3, v[i]);
  }
  r[0] = pick<Max, Nan>(v[0], c1);
  r[1] = pick<Max, Nan>(c1, v[K]);
  r[2] = pick<Max, Nan>(v[2], c3);
  r[3] = pick<Max, Nan>(c3, v[K + 2]);
}

// Four output rows sharing their middles: d_q = op(s[q .. q+k-1]), q < 4, for n elements
// (2 <= k; s holds k + 3 rows): k + 3 loads for four rows (pairs: 2k + 2), which bound this
// pass (5 rows: 2 loads per output row instead of 3; 3 rows: 1.5 instead of 2). Grad: both
// extremes from the same loads, the maxima to d (as Max) and the minima to g.
template <bool Max, bool Nan, int K, typename T, bool Grad = false>
inline void pick_quad_k(T* const* d, const T* const* src, int64_t n, T* const* g = nullptr) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  const T* s[K + 3];
  for (int i = 0; i < K + 3; ++i) s[i] = src[i];
  T* __restrict__ d0 = d[0];
  T* __restrict__ d1 = d[1];
  T* __restrict__ d2 = d[2];
  T* __restrict__ d3 = d[3];
  T* __restrict__ g0 = Grad ? g[0] : nullptr;
  T* __restrict__ g1 = Grad ? g[1] : nullptr;
  T* __restrict__ g2 = Grad ? g[2] : nullptr;
  T* __restrict__ g3 = Grad ? g[3] : nullptr;
  auto one = [&](int64_t i) IMKERN_ALWAYS_INLINE {
    vec_t<T> v[K + 3], r[4];
#pragma GCC unroll 16
    for (int k = 0; k < K + 3; ++k) v[k] = loadu(s[k] + i);
    quad_windows<Max, Nan, K>(v, r);
    storeu(d0 + i, r[0]);
    storeu(d1 + i, r[1]);
    storeu(d2 + i, r[2]);
    storeu(d3 + i, r[3]);
    if constexpr (Grad) {
      quad_windows<false, Nan, K>(v, r);
      storeu(g0 + i, r[0]);
      storeu(g1 + i, r[1]);
      storeu(g2 + i, r[2]);
      storeu(g3 + i, r[3]);
    }
  };
  int64_t e = 0;
  for (; e + L <= n; e += L) one(e);
  if (e < n && n >= L) {  // the last vector overlaps the one before (the d_q are no source)
    one(n - L);
    return;
  }
  for (; e < n; ++e) {
    for (int q = 0; q < 4; ++q) {
      T a = s[q][e], b = a;
      for (int r = q + 1; r < q + K; ++r) {
        a = pick1<Max>(a, s[r][e]);
        b = pick1<false>(b, s[r][e]);
      }
      d[q][e] = a;
      if constexpr (Grad) g[q][e] = b;
    }
  }
}

template <bool Max, bool Nan, typename T, bool Grad = false>
inline void pick_quad(T* const* d, const T* const* s, int k, int64_t n, T* const* g = nullptr) {
  static_assert(kDirectRows == 8, "one case per direct height");
  switch (k) {
    case 2: return pick_quad_k<Max, Nan, 2, T, Grad>(d, s, n, g);
    case 3: return pick_quad_k<Max, Nan, 3, T, Grad>(d, s, n, g);
    case 4: return pick_quad_k<Max, Nan, 4, T, Grad>(d, s, n, g);
    case 5: return pick_quad_k<Max, Nan, 5, T, Grad>(d, s, n, g);
    case 6: return pick_quad_k<Max, Nan, 6, T, Grad>(d, s, n, g);
    case 7: return pick_quad_k<Max, Nan, 7, T, Grad>(d, s, n, g);
    default: return pick_quad_k<Max, Nan, 8, T, Grad>(d, s, n, g);
  }
}

// One van Herk step across rows: p = first ? b : op(p, b); out = op(a, p) (n elements).
template <bool Max, bool Nan, typename T>
inline void prefix_combine(T* __restrict__ out, T* __restrict__ p, const T* b, const T* a, bool first, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  int64_t e = 0;
  if (first) {
    for (; e + L <= n; e += L) {
      const vec_t<T> q = loadu(b + e);
      storeu(p + e, q);
      storeu(out + e, pick<Max, Nan>(loadu(a + e), q));
    }
  } else {
    for (; e + L <= n; e += L) {
      const vec_t<T> q = pick<Max, Nan>(loadu(p + e), loadu(b + e));
      storeu(p + e, q);
      storeu(out + e, pick<Max, Nan>(loadu(a + e), q));
    }
  }
  for (; e < n; ++e) {
    const T q = first ? b[e] : pick1<Max>(p[e], b[e]);
    p[e] = q;
    out[e] = pick1<Max>(a[e], q);
  }
}

// One column strip [x0, x1) of a rectangle pass (morph_rect, morph_cover) over the rows of image
// b: the source columns [first, last) its outputs read (the footprint's reach left and right
// added), their in-image part [in0, in1), that part's element count and its offset in a padded
// row, and the border-mapped source rows.
template <typename T>
struct Strip {
  const void* src;
  const ImageDesc* s;
  int64_t b;
  Border border;
  int64_t x0, x1, n, first, last, in0, in1, cnt, off;
  // Source row sy (border-mapped): the whole row, or null for the constant border.
  const T* row(int64_t sy) const {
    const int64_t yy = border_index(sy, s->h, border);
    return yy < 0 ? nullptr : row_ptr<T>(src, *s, b, yy);
  }
  // Row sy's in-image columns [in0, in1), or `cvrow` (the constant) where sy maps outside.
  const T* in_row(int64_t sy, const T* cvrow) const {
    const T* r = row(sy);
    return r ? r + in0 * s->c : cvrow;
  }
};

template <typename T>
Strip<T> strip_at(const void* src, const ImageDesc& s, int64_t b, Border border, int64_t x0, int64_t SW, int left,
                  int right) {
  Strip<T> st{src, &s, b, border, x0, std::min<int64_t>(s.w, x0 + SW), 0, x0 - left, 0, 0, 0, 0, 0};
  st.n = (st.x1 - x0) * s.c;
  st.last = st.x1 + right;
  st.in0 = std::max<int64_t>(st.first, 0);
  st.in1 = std::min<int64_t>(st.last, s.w);
  st.cnt = (st.in1 - st.in0) * s.c;
  st.off = (st.in0 - st.first) * s.c;
  return st;
}

// The column strips of width SW over rows [t0, t1) of the flattened (image, row) range, in
// order: body(strip, y0, y1) per strip of each image's run of rows [y0, y1) (the chunk of a
// parallel_for: it may span images). Both rectangle paths (morph_rect, morph_cover) walk so.
template <typename T, typename Body>
IMKERN_ALWAYS_INLINE inline void for_each_strip(const void* src, const ImageDesc& s, Border border, int64_t t0,
                                                int64_t t1, int64_t SW, int left, int right, Body&& body) {
  for (int64_t t = t0; t < t1;) {
    const int64_t b = t / s.h, y0 = t % s.h;
    const int64_t y1 = std::min<int64_t>(s.h, y0 + (t1 - t));
    t += y1 - y0;
    for (int64_t x0 = 0; x0 < s.w; x0 += SW) body(strip_at<T>(src, s, b, border, x0, SW, left, right), y0, y1);
  }
}

// Columns [first, in0) and [in1, last) of `row`, the vertical min/max (Max) of the nh source
// rows from y0 over the strip's columns [first, last) whose part [in0, in1) is computed: by the
// border rule from a computed column, or, for a column outside it, from the nh source rows
// directly. Both rectangle paths pad with it.
template <bool Max, typename T>
void pad_vertical_row(T* row, const Strip<T>& st, T cv, int64_t y0, int nh) {
  const int64_t W = st.s->w, C = st.s->c;
  for (int64_t x = st.first; x < st.last; ++x) {
    if (x == st.in0) {
      x = st.in1 - 1;
      continue;
    }
    T* dpx = row + (x - st.first) * C;
    const int64_t sx = border_index(x, W, st.border);
    if (sx < 0) {
      std::fill(dpx, dpx + C, cv);
    } else if (sx >= st.in0 && sx < st.in1) {
      std::copy(row + (sx - st.first) * C, row + (sx - st.first) * C + C, dpx);
    } else {
      for (int64_t ch = 0; ch < C; ++ch) {
        T v{};
        for (int i = 0; i < nh; ++i) {
          const T* r = st.row(y0 + i);
          const T e = r ? r[sx * C + ch] : cv;
          v = i == 0 ? e : pick1<Max>(v, e);
        }
        dpx[ch] = v;
      }
    }
  }
}

// dst[e] = a[e] - b[e], integers saturated at 0 as cv2.subtract (a footprint that misses its
// anchor can see no pixel: the two ops' constants then); dst may be a.
template <typename T>
void sub_rows(T* dst, const T* a, const T* b, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  int64_t e = 0;
  for (; e + L <= n; e += L) {
    const vec_t<T> x = loadu(a + e), y = loadu(b + e);
    if constexpr (std::is_integral_v<T>) storeu(dst + e, (x > y ? x : y) - y);
    else storeu(dst + e, x - y);
  }
  for (; e < n; ++e) {
    if constexpr (std::is_integral_v<T>) dst[e] = a[e] > b[e] ? static_cast<T>(a[e] - b[e]) : T{0};
    else dst[e] = a[e] - b[e];
  }
}

// Rectangles (fh x fw ones): separable, vertical pass first, fused per column strip. For
// each output row, the vertical min/max of its fh source rows (read in place from the image)
// goes to a row buffer that stays in L1, padded at the strip's ends by the border rule (the
// pad of a column-wise result is the result of the padded columns: a border maps columns the
// same way in every row), and the horizontal pass (hline) writes the output row from it:
//  * fh <= kDirectRows: output rows in fours (then pairs) sharing their common source rows
//    (fh + 3 loads per four rows);
//  * taller: van Herk / Gil-Werman across rows, in blocks of fh output rows: suffix
//    minima/maxima of the block's first fh source rows, a running prefix over the next fh, and
//    each row's result op(suffix, prefix): 3 vector ops per element whatever fh.
// No copy of the source is made. Strips: the source rows a block re-reads, the suffix rows and
// the row buffers fit a quarter of this machine's L2 (pairs) or the L2 (van Herk)
// (cpu_params: strip_l2); whole rows when they fit. Every output element is the same min/max
// of the same inputs whatever the strips, bands or threads, so results never depend on them.
// Grad (fh <= kDirectRows only): the morphological gradient dilate - erode in one pass: the
// vertical maxima and minima from the same loads, the horizontal ones from their two rows, and
// max - min stored (cv: the dilation's constant, cvn the erosion's).
template <bool Max, bool Grad, typename T>
void morph_rect(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int fh, int fw, int ay, int ax,
                Border border, T cv, T cvn) {
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t rows = s.n * H;
  const int left = ax, right = fw - 1 - ax;
  const bool direct = fh <= kDirectRows;
  const int64_t chunk = filter_grain(rows, fh, get_num_threads());
  const CpuParams& cp = params();
  // Outputs past the cache this process gets are written by non-temporal stores (hline_lanes).
  const bool stream = 2 * s.n * H * W * C * static_cast<int64_t>(sizeof(T)) > cp.stream_bytes;
  // Rows held per strip pixel: the source rows re-read (fh + 3, or 2 fh), the suffix rows
  // (van Herk), the four row buffers (Grad: eight, and two horizontal results), hline's two
  // scratch rows and the prefix row.
  const int held = direct ? fh + 10 + (Grad ? 7 : 0) : 3 * fh + 5;
  // Direct: a quarter of the L2 (whole rows up to ~4K RGB uint8 / 1080p RGB float32 for 3x3):
  // the source rows are re-read from L2 instead of L1, but they stream whole and in order
  // (L1-sized strips of a few KiB per row left the hardware prefetcher behind: float32
  // 1080p RGB erode 3x3 4.4 -> 3.6 ms, uint16 RGB dilate 5x5 2.7 -> 2.0 ms single-threaded).
  const int64_t budget = std::max<int64_t>(4096, direct ? std::max(cp.strip_l1, cp.strip_l2 / 4) : cp.strip_l2);
  int64_t SW = budget / (static_cast<int64_t>(held) * C * static_cast<int64_t>(sizeof(T)));
  SW = SW < 64 ? 64 : SW / 64 * 64;
  if (SW >= W) SW = W;
  parallel_for(0, rows, chunk, [&](int64_t t0, int64_t t1) {
    const int64_t padn = (SW + left + right) * C;
    constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
    const int64_t rl = round_up_line<T>(padn) + kLine;  // scratch row pitch (+ a line of slack)
    const int nscratch = direct ? (Grad ? 15 : 8) : fh + 5;
    T* scratch = thread_scratch<T>(0, static_cast<size_t>(nscratch * rl));
    T* tmp0 = scratch;  // hline's scratch
    T* tmp1 = scratch + rl;
    // Rows 2..: the padded vertical results (row0 .. row3; Grad: the minima's in rows 8 .. 11),
    // the constant border's rows (4; Grad: 12), van Herk's running prefix and suffix rows
    // (fh - 1), Grad's horizontal maxima and minima (13, 14), placed per strip (see `shift`).
    std::fill(scratch + 4 * rl, scratch + 5 * rl, cv);
    if (Grad) std::fill(scratch + 12 * rl, scratch + 13 * rl, cvn);
    const T* rp[kDirectRows + 3];
    const T* rpn[kDirectRows + 3];
    std::vector<const T*> rpv(direct ? 0 : 2 * fh);
    for_each_strip<T>(src, s, border, t0, t1, SW, left, right, [&](const Strip<T>& st, int64_t y0, int64_t y1) {
      const int64_t b = st.b, x0 = st.x0;
      const int64_t n = st.n, cnt = st.cnt, off = st.off;
      // The rows the vertical pass reads and writes start at the same offset within a cache
      // line as the source row's column in0 (the source rows share it when the row stride is
      // whole lines): the pass then splits no line the source does not.
      const uintptr_t sa = reinterpret_cast<uintptr_t>(row_ptr<T>(src, s, b, 0) + st.in0 * C) & 63;
      const int64_t shift =
          sa % sizeof(T) ? 0 : ((static_cast<int64_t>(sa / sizeof(T)) - off) % kLine + kLine) % kLine;
      auto srow = [&](int i) { return scratch + i * rl + shift; };
      T* rows4[4] = {srow(2), srow(3), srow(6), srow(7)};  // (rows 6, 7: no suffix rows in the direct pass)
      T* rowsn[4] = {srow(8), srow(9), srow(10), srow(11)};
      T* cvrow = srow(4) + off;  // holds cv from its start
      T* cvrown = srow(12) + off;
      T* prow = srow(5) + off;
      T* sfx = srow(6) + off;
      T* row0 = rows4[0];
      // Row sy's in-image columns [in0, in1) (the constant row where sy is outside).
      auto vsrc = [&](int64_t sy) { return st.in_row(sy, cvrow); };
      // Pads columns [first, in0) and [in1, last) of the vertical result in rows4[q] (Grad:
      // and rowsn[q]) of output row y (by the border rule from the computed columns, or, for
      // a column the strip did not compute, from the fh source rows directly), then filters
      // it into the output.
      auto pad_and_filter = [&](int q, int64_t y) {
        T* row = rows4[q];
        pad_vertical_row<Max>(row, st, cv, y - ay, fh);
        if constexpr (Grad) pad_vertical_row<false>(rowsn[q], st, cvn, y - ay, fh);
        T* out = row_ptr<T>(dst, d, b, y) + x0 * C;
        [&] {
          constexpr bool Nan = true;
          if constexpr (Grad) {
            if (hline_lanes_any<true, Nan, T, true>(row, out, n, C, fw, stream, rowsn[q])) return;
            T* hx = srow(13);
            T* hn = srow(14);
            hline<true, Nan, T>(row, hx, n, C, fw, tmp0, tmp1);
            hline<false, Nan, T>(rowsn[q], hn, n, C, fw, tmp0, tmp1);
            sub_rows(out, hx, hn, n);
          } else {
            hline<Max, Nan, T>(row, out, n, C, fw, tmp0, tmp1, stream);
          }
        }();
      };
      if (direct) {
        // Output rows y .. y + m - 1 (m = 4, 2, 1) from source rows y - ay .. y - ay + fh + m - 2.
        auto direct_rows = [&](int64_t y, int m) {
          const int nsrc = fh + m - 1;
          bool cvrows = false;  // Grad: a constant row read (the two ops' constants differ)
          for (int i = 0; i < nsrc; ++i) {
            rp[i] = vsrc(y - ay + i);
            cvrows = cvrows || rp[i] == cvrow;
          }
          [&] {
            constexpr bool Nan = true;
            T* d4[4] = {rows4[0] + off, rows4[1] + off, rows4[2] + off, rows4[3] + off};
            T* n4[4] = {rowsn[0] + off, rowsn[1] + off, rowsn[2] + off, rowsn[3] + off};
            if (Grad && !cvrows && m == 4) {
              pick_quad<true, Nan, T, true>(d4, rp, fh, cnt, n4);
              return;
            }
            for (int g = 0; g < (Grad ? 2 : 1); ++g) {
              const T* const* r = rp;
              T* const* o = d4;
              if (g == 1) {
                for (int i = 0; i < nsrc; ++i) rpn[i] = rp[i] == cvrow ? cvrown : rp[i];
                r = rpn;
                o = n4;
              }
              auto go = [&](auto max_c) {
                constexpr bool M = decltype(max_c)::value;
                if (m == 4) pick_quad<M, Nan>(o, r, fh, cnt);
                else if (m == 2) pick_pair<M, Nan>(o[0], o[1], r, fh, cnt);
                else pick_many<M, Nan>(o[0], r, fh, cnt);
              };
              if constexpr (Grad) {
                if (g == 1) go(std::false_type{});
                else go(std::true_type{});
              } else {
                go(std::bool_constant<Max>{});
              }
            }
          }();
          for (int q = 0; q < m; ++q) pad_and_filter(q, y + q);
        };
        int64_t y = y0;
        if (fh > 1) {
          for (; y + 4 <= y1; y += 4) direct_rows(y, 4);
          for (; y + 2 <= y1; y += 2) direct_rows(y, 2);
        }
        for (; y < y1; ++y) direct_rows(y, 1);
      } else {
        // Block of fh output rows from yb: sources q = 0 .. 2 fh - 2 are rows yb - ay + q;
        // suffix i (i < fh) = op(q = i .. fh - 1), prefix j = op(q = fh .. fh + j - 1).
        const T** q = rpv.data();
        for (int64_t yb = y0; yb < y1; yb += fh) {
          const int m = static_cast<int>(std::min<int64_t>(fh, y1 - yb));
          for (int i = 0; i < fh + m - 1; ++i) q[i] = vsrc(yb - ay + i);
          {
            constexpr bool Nan = true;
            const T* sf = q[fh - 1];  // suffix fh - 1: the source row itself
            for (int i = fh - 2; i >= 0; --i) {
              T* o = sfx + i * rl;
              pick_rows<Max, Nan>(o, q[i], sf, cnt);
              sf = o;
            }
            std::copy(sfx, sfx + cnt, row0 + off);
            pad_and_filter(0, yb);
            for (int i = 1; i < m; ++i) {
              const T* si = i == fh - 1 ? q[fh - 1] : sfx + i * rl;
              prefix_combine<Max, Nan>(row0 + off, prow, q[fh + i - 1], si, i == 1, cnt);
              pad_and_filter(0, yb + i);
            }
          }
        }
      }
    });
    if (stream) stream_fence();
  });
}

// A cross (morph_cover's two rectangles: a K x 1 column through the anchor column, then a
// 1 x K row), four output rows in one pass: out_q = op(column window q, row window q), the
// column windows from the K + 3 source rows read in place (quad_windows, as pick_quad) and the
// row windows (the taps of hline, in its order) from the centre rows: read in place where the
// vector's reads stay inside the source row (ea <= e < eb: hs[q] + base + e), else from the
// padded rows hp[q] + e (filled where such vectors read). The same values as the two
// rectangles' separate passes and their pick_many, without their row buffers (cross 5x5:
// vertical rows, a copy, a horizontal pass and a combining pass become one pass). rp[i]: the
// column's source rows at the output's first element; n >= one vector.
template <bool Max, bool Nan, typename T, int C, int K>
void cross_quad_k(T* const* out, const T* const* rp, const T* const* hp, const T* const* hs, int64_t base,
                  int64_t ea, int64_t eb, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  const T* s[K + 3];
  for (int i = 0; i < K + 3; ++i) s[i] = rp[i];
  T* __restrict__ o[4] = {out[0], out[1], out[2], out[3]};
  auto hwin = [&](const T* q) IMKERN_ALWAYS_INLINE {
    // 32-byte vectors: plain loads for up to 3 taps (hline_lanes_any's choice; same taps)
    if constexpr (sizeof(vec_t<T>) == 32 && K <= 3) {
      vec_t<T> a = loadu(q);
      for (int j = 1; j < K; ++j) a = pick<Max, Nan>(a, loadu(q + j * C));
      return a;
    } else {
      return lane_window<Max, Nan, T, C, K>(q);
    }
  };
  auto one = [&](int64_t i) IMKERN_ALWAYS_INLINE {
    vec_t<T> v[K + 3], r[4];
#pragma GCC unroll 16
    for (int k = 0; k < K + 3; ++k) v[k] = loadu(s[k] + i);
    quad_windows<Max, Nan, K>(v, r);
    const bool direct = i >= ea && i < eb;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const T* w = direct ? hs[q] + (base + i) : hp[q] + i;
      storeu(o[q] + i, pick<Max, Nan>(r[q], hwin(w)));
    }
  };
  int64_t e = 0;
  for (; e + L <= n; e += L) one(e);
  if (e < n) one(n - L);  // overlaps the vector before (no output is a source)
}

// cross_quad_k for C <= 4 and K in {3, 5, 7}; false where it does not apply.
template <bool Max, typename T>
bool cross_quad(T* const* out, const T* const* rp, const T* const* hp, const T* const* hs, int64_t base, int64_t ea,
                int64_t eb, int64_t n, int64_t C, int k) {
  constexpr bool Nan = true;
  if (n < simd::Vec<T>::lanes) return false;
  auto go = [&](auto c) {
    constexpr int CC = decltype(c)::value;
    switch (k) {
      case 3: cross_quad_k<Max, Nan, T, CC, 3>(out, rp, hp, hs, base, ea, eb, n); return true;
      case 5: cross_quad_k<Max, Nan, T, CC, 5>(out, rp, hp, hs, base, ea, eb, n); return true;
      case 7: cross_quad_k<Max, Nan, T, CC, 7>(out, rp, hp, hs, base, ea, eb, n); return true;
      default: return false;
    }
  };
  switch (C) {
    case 1: return go(std::integral_constant<int, 1>{});
    case 2: return go(std::integral_constant<int, 2>{});
    case 3: return go(std::integral_constant<int, 3>{});
    case 4: return go(std::integral_constant<int, 4>{});
    default: return false;
  }
}

struct Run {
  int row, col, len_index;
};

// A rectangle of ones inside the footprint: rows [r0, r0 + h), columns [j0, j0 + w).
struct Rect {
  int r0, h, j0, w;
};
constexpr int kCoverRects = 4;

// Footprints covered by a few rectangles of ones (cross, ellipse: each row's run stretched over
// every row holding it), each at most kDirectRows x 8: out = op over the rectangles of their
// separable min/max, overlaps being harmless (min/max are idempotent). Per output row and
// rectangle, the vertical min/max of its h source rows (four output rows at a time, read in
// place) goes to a row buffer padded by the border rule for the whole footprint's reach, its
// horizontal min/max of w taps (hline: lanes) to a second row when w > 1, and one pass takes
// the op of those rows into the output (a w = 1 rectangle's row is read shifted by its
// column). Cross 5x5: 7 loads per output vector instead of the run path's 12 (and cv2's 9);
// ellipse 5x5: 7.5 (cv2: 17). Whole rows per strip when they fit a quarter of the L2.
template <bool Max, typename T>
void morph_cover(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const Rect* rects, int nr,
                 int fh, int fw, int ay, int ax, Border border, T cv) {
  constexpr bool Nan = true;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t rows = s.n * H;
  const int left = ax, right = fw - 1 - ax;
  const int64_t chunk = filter_grain(rows, fh, get_num_threads());
  const CpuParams& cp = params();
  const int slots = 3 + 5 * nr;  // tmp0, tmp1, the constant row; 4 vertical rows and 1 horizontal per rectangle
  const int64_t budget = std::max<int64_t>(4096, std::max(cp.strip_l1, cp.strip_l2 / 4));
  int64_t SW = budget / (static_cast<int64_t>(slots + fh + 3) * C * static_cast<int64_t>(sizeof(T)));
  SW = SW < 64 ? 64 : SW / 64 * 64;
  if (SW >= W) SW = W;
  // A cross: a column of K rows through the anchor column, then a row of K columns (K = 3, 5,
  // 7, C <= 4): four output rows in one pass (cross_quad).
  const bool cross = nr == 2 && rects[0].w == 1 && rects[0].j0 == ax && rects[1].h == 1 &&
                     rects[1].w == rects[0].h && rects[0].h % 2 == 1 && rects[0].h <= 7 && C <= 4;
  parallel_for(0, rows, chunk, [&](int64_t t0, int64_t t1) {
    const int64_t padn = (SW + left + right) * C;
    constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
    const int64_t rl = round_up_line<T>(padn) + kLine;
    T* scratch = thread_scratch<T>(0, static_cast<size_t>(slots) * rl);
    T* tmp0 = scratch;
    T* tmp1 = scratch + rl;
    T* cvrow = scratch + 2 * rl;
    std::fill(cvrow, cvrow + rl, cv);
    const T* rp[kDirectRows + 3];
    for_each_strip<T>(src, s, border, t0, t1, SW, left, right, [&](const Strip<T>& st, int64_t y0, int64_t y1) {
      const int64_t b = st.b, x0 = st.x0;
      const int64_t n = st.n, cnt = st.cnt, off = st.off;
      auto vrow = [&](int k, int q) { return scratch + static_cast<int64_t>(3 + 4 * k + q) * rl; };
      auto hrow = [&](int k) { return scratch + static_cast<int64_t>(3 + 4 * nr + k) * rl; };
      auto vsrc = [&](int64_t sy) { return st.in_row(sy, cvrow); };
      // Pads the vertical result `row` of rectangle `rc` for output row y (as morph_rect).
      auto pad = [&](T* row, const Rect& rc, int64_t y) { pad_vertical_row<Max>(row, st, cv, y - ay + rc.r0, rc.h); };
      // Output row y from the rectangles' vertical rows q.
      auto finish = [&](int q, int64_t y) {
        const T* srcs[kCoverRects];
        for (int k = 0; k < nr; ++k) {
          const Rect& rc = rects[k];
          T* v = vrow(k, q);
          pad(v, rc, y);
          if (rc.w == 1) {
            srcs[k] = v + static_cast<int64_t>(rc.j0) * C;
          } else {
            hline<Max, Nan, T>(v + static_cast<int64_t>(rc.j0) * C, hrow(k), n, C, rc.w, tmp0, tmp1);
            srcs[k] = hrow(k);
          }
        }
        pick_many<Max, Nan>(row_ptr<T>(dst, d, b, y) + x0 * C, srcs, nr, n);
      };
      int64_t y = y0;
      for (; y + 4 <= y1; y += 4) {
        if (cross && n >= simd::Vec<T>::lanes) {
          // The centre rows (rectangle 1) are read in place by the row windows whose reads stay
          // inside the source row: e in [ea, eb) (none where a centre row is the constant
          // border's); the others read padded rows, filled only where they read (in-image
          // columns copied, the others by the border rule, as pad_vertical_row).
          const Rect& rv = rects[0];
          const Rect& rh = rects[1];
          const int64_t cbase = x0 - ax + rh.j0;  // the source column of a row window's element 0
          const int64_t base = cbase * C, padlen = n + static_cast<int64_t>(rh.w - 1) * C;
          const int64_t span = static_cast<int64_t>(rh.w - 1) * C + simd::Vec<T>::lanes + 16 / static_cast<int64_t>(sizeof(T));
          int64_t ea = std::max<int64_t>(0, -base), eb = W * C - base - span + 1;
          const T* hs[4];
          const T* hp[4];
          T* o4[4];
          for (int q = 0; q < 4; ++q) {
            hs[q] = st.row(y + q - ay + rh.r0);
            if (!hs[q]) ea = n, eb = 0;
            o4[q] = row_ptr<T>(dst, d, b, y + q) + x0 * C;
          }
          const int64_t lend = ea >= eb ? padlen : ea > 0 ? std::min(padlen, ea + span) : 0;
          const int64_t rs = std::clamp<int64_t>(eb, 0, padlen);
          for (int q = 0; q < 4; ++q) {
            const T* r = hs[q];
            if (!r) {
              hp[q] = cvrow;
              continue;
            }
            T* v = vrow(1, q);
            hp[q] = v;
            // Padded columns [pc0, pc1) (source columns cbase + pc) into v.
            auto fill = [&](int64_t pc0, int64_t pc1) {
              auto scalar = [&](int64_t pc) {
                const int64_t sx = border_index(cbase + pc, W, border);
                if (sx < 0) std::fill(v + pc * C, v + pc * C + C, cv);
                else std::copy(r + sx * C, r + sx * C + C, v + pc * C);
              };
              int64_t pc = pc0;
              for (; pc < pc1 && cbase + pc < 0; ++pc) scalar(pc);
              const int64_t pe = std::min<int64_t>(pc1, W - cbase);
              if (pe > pc) {
                std::copy(r + (cbase + pc) * C, r + (cbase + pe) * C, v + pc * C);
                pc = pe;
              }
              for (; pc < pc1; ++pc) scalar(pc);
            };
            const int64_t ncol = (padlen + C - 1) / C;
            if (lend >= rs) {
              fill(0, ncol);
            } else {
              fill(0, (lend + C - 1) / C);
              fill(rs / C, ncol);
            }
          }
          for (int i = 0; i < rv.h + 3; ++i) rp[i] = vsrc(y - ay + rv.r0 + i) + (x0 - st.in0) * C;
          if (cross_quad<Max, T>(o4, rp, hp, hs, base, ea, eb, n, C, rv.h)) continue;
        }
        for (int k = 0; k < nr; ++k) {
          const Rect& rc = rects[k];
          if (rc.h == 1) {
            for (int q = 0; q < 4; ++q) {
              const T* r = vsrc(y + q - ay + rc.r0);
              std::copy(r, r + cnt, vrow(k, q) + off);
            }
            continue;
          }
          for (int i = 0; i < rc.h + 3; ++i) rp[i] = vsrc(y - ay + rc.r0 + i);
          T* const d4[4] = {vrow(k, 0) + off, vrow(k, 1) + off, vrow(k, 2) + off, vrow(k, 3) + off};
          pick_quad<Max, Nan>(d4, rp, rc.h, cnt);
        }
        for (int q = 0; q < 4; ++q) finish(q, y + q);
      }
      for (; y < y1; ++y) {
        for (int k = 0; k < nr; ++k) {
          const Rect& rc = rects[k];
          for (int i = 0; i < rc.h; ++i) rp[i] = vsrc(y - ay + rc.r0 + i);
          pick_many<Max, Nan>(vrow(k, 0) + off, rp, rc.h, cnt);
        }
        finish(0, y);
      }
    });
  });
}

template <bool Max, typename T>
void morph_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const uint8_t* fp, int fh, int fw,
                int ay, int ax, Border border, T cv) {
  constexpr bool Nan = true;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t rows = s.n * H;
  // Runs of the footprint and the distinct run lengths.
  std::vector<int> lens;
  std::vector<Run> runs;
  for (int i = 0; i < fh; ++i) {
    for (int j = 0; j < fw;) {
      if (!fp[i * fw + j]) {
        ++j;
        continue;
      }
      int e = j;
      while (e < fw && fp[i * fw + e]) ++e;
      const int len = e - j;
      int li = static_cast<int>(std::find(lens.begin(), lens.end(), len) - lens.begin());
      if (li == static_cast<int>(lens.size())) lens.push_back(len);
      runs.push_back(Run{i, j, li});
      j = e;
    }
  }
  if (runs.empty()) throw std::invalid_argument("footprint: has no nonzero element");
  // A cover by rectangles: each run stretched over the rows above and below that hold it.
  {
    Rect cover[kCoverRects];
    int nc = 0;
    bool fits = true;
    for (const Run& r : runs) {
      const int len = lens[r.len_index];
      auto holds = [&](int row) {
        for (int j = r.col; j < r.col + len; ++j)
          if (!fp[row * fw + j]) return false;
        return true;
      };
      int r0 = r.row, r1 = r.row + 1;
      while (r0 > 0 && holds(r0 - 1)) --r0;
      while (r1 < fh && holds(r1)) ++r1;
      const Rect rc{r0, r1 - r0, r.col, len};
      bool seen = false;
      for (int k = 0; k < nc; ++k)
        seen = seen || (cover[k].r0 == rc.r0 && cover[k].h == rc.h && cover[k].j0 == rc.j0 && cover[k].w == rc.w);
      if (seen) continue;
      if (nc == kCoverRects || rc.h > kDirectRows || rc.w > 8) {
        fits = false;
        break;
      }
      cover[nc++] = rc;
    }
    if (fits && nc > 1) {
      morph_cover<Max, T>(src, s, dst, d, cover, nc, fh, fw, ay, ax, border, cv);
      return;
    }
  }
  if (static_cast<int>(runs.size()) == fh && lens.size() == 1 && lens[0] == fw) {
    morph_rect<Max, false, T>(src, s, dst, d, fh, fw, ay, ax, border, cv, cv);
    return;
  }
  // Rectangles up to 16 rows take the run path (fh - 1 vector ops per element on rows that
  // stay in L1, written row by row); taller ones the vertical van Herk (3 per element).
  const bool rect = static_cast<int>(runs.size()) == fh && lens.size() == 1 && lens[0] == fw && fh > 16;
  const int nl = static_cast<int>(lens.size());
  const int left = ax, right = fw - 1 - ax;
  // Column strips keep the per-thread buffers within a few MiB (whole rows when they fit:
  // output rows are then written sequentially).
  const int64_t chunk = filter_grain(rows, fh, get_num_threads());
  const int64_t per_row = rect ? 2 * (2 * chunk + fh) : static_cast<int64_t>(fh) * nl + 4;
  int64_t SW = std::max<int64_t>(16, (int64_t{8} << 20) / (per_row * C * static_cast<int64_t>(sizeof(T))));
  SW = std::min<int64_t>(SW, W);
  parallel_for(0, rows, chunk, [&](int64_t t0, int64_t t1) {
    const int64_t padn = (SW + left + right) * C;
    T* pad = thread_scratch<T>(0, padn);
    T* tmp0 = thread_scratch<T>(1, padn);
    T* tmp1 = thread_scratch<T>(2, padn);
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y0 = t % H;
      const int64_t y1 = std::min<int64_t>(H, y0 + (t1 - t));
      t += y1 - y0;
      const int64_t nsrc = (y1 - y0) + fh - 1;
      for (int64_t x0 = 0; x0 < W; x0 += SW) {
        const int64_t x1 = std::min<int64_t>(W, x0 + SW), n = (x1 - x0) * C;
        // Source row sy, columns [x0 - left, x1 + right), padded by the border rule.
        auto load = [&](int64_t sy) {
          const int64_t yy = border_index(sy, H, border);
          load_padded_segment<T, T>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), pad, W, C, x0, x1, left, right,
                                    border, cv);
        };
        if (rect) {
          // R rows (horizontal pass), then vertical van Herk: P (block prefix), R -> suffix.
          T* R = thread_scratch<T>(3, static_cast<size_t>(nsrc * n));
          T* P = thread_scratch<T>(4, static_cast<size_t>(nsrc * n));
          for (int64_t q = 0; q < nsrc; ++q) {
            load(y0 - ay + q);
            hline<Max, Nan, T>(pad, R + q * n, n, C, fw, tmp0, tmp1);
          }
          if (fh == 1) {
            for (int64_t q = 0; q < nsrc; ++q) std::copy(R + q * n, R + q * n + n, row_ptr<T>(dst, d, b, y0 + q) + x0 * C);
            continue;
          }
          for (int64_t q = 0; q < nsrc; ++q) {
            if (q % fh == 0) std::copy(R + q * n, R + q * n + n, P + q * n);
            else pick_rows<Max, Nan>(P + q * n, P + (q - 1) * n, R + q * n, n);
          }
          for (int64_t q = nsrc - 2; q >= 0; --q)
            if (q % fh != fh - 1) pick_rows<Max, Nan>(R + q * n, R + (q + 1) * n, R + q * n, n);
          for (int64_t q = 0; q < y1 - y0; ++q)
            pick_rows<Max, Nan>(row_ptr<T>(dst, d, b, y0 + q) + x0 * C, R + q * n, P + (q + fh - 1) * n, n);
        } else {
          // Ring of fh source rows, each filtered for every run length.
          const int64_t rl = n + static_cast<int64_t>(fw) * C;  // filtered row length (with the shift room)
          T* ring = thread_scratch<T>(3, static_cast<size_t>(fh) * nl * rl);
          std::vector<int64_t> tag(fh, INT64_MIN);
          for (int64_t y = y0; y < y1; ++y) {
            T* out = row_ptr<T>(dst, d, b, y) + x0 * C;
            bool first = true;
            for (int i = 0; i < fh; ++i) {
              const int64_t sy = y - ay + i;
              const int slot = static_cast<int>(((sy % fh) + fh) % fh);
              T* rows_l = ring + static_cast<int64_t>(slot) * nl * rl;
              if (tag[slot] != sy) {
                load(sy);
                // Filtered row for length L covers window starts [0, n + (fw - L) * C).
                for (int li = 0; li < nl; ++li)
                  hline<Max, Nan, T>(pad, rows_l + li * rl, n + static_cast<int64_t>(fw - lens[li]) * C, C, lens[li],
                                tmp0, tmp1);
                tag[slot] = sy;
              }
            }
            // All runs combined in one pass over the output row (in groups of 16 sources).
            const int nr = static_cast<int>(runs.size());
            for (int r0 = 0; r0 < nr; r0 += 16) {
              const T* srcs[17];
              int m = 0;
              if (!first) srcs[m++] = out;
              for (int ri = r0; ri < std::min(nr, r0 + 16); ++ri) {
                const Run& r = runs[ri];
                const int64_t sy = y - ay + r.row;
                const int slot = static_cast<int>(((sy % fh) + fh) % fh);
                srcs[m++] = ring + (static_cast<int64_t>(slot) * nl + r.len_index) * rl + static_cast<int64_t>(r.col) * C;
              }
              pick_many<Max, Nan>(out, srcs, m, n);
              first = false;
            }
          }
        }
      }
    }
  });
}

}  // namespace

void morphology(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const uint8_t* fp,
                int fh, int fw, int ay, int ax, bool dilate, Border border, double cval) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T cv = to_output<T, double>(cval);
    if (dilate) morph_impl<true, T>(src, s, dst, d, fp, fh, fw, ay, ax, border, cv);
    else morph_impl<false, T>(src, s, dst, d, fp, fh, fw, ay, ax, border, cv);
  });
}

void morph_gradient(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const uint8_t* fp, int fh, int fw, int ay, int ax, Border border, double cval_dilate,
                    double cval_erode) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T cx = to_output<T, double>(cval_dilate), cn = to_output<T, double>(cval_erode);
    if (fh <= kDirectRows && std::all_of(fp, fp + static_cast<int64_t>(fh) * fw, [](uint8_t v) { return v != 0; })) {
      morph_rect<true, true, T>(src, s, dst, d, fh, fw, ay, ax, border, cx, cn);
      return;
    }
    // Other footprints: the dilation into dst, the erosion into a packed scratch image, then
    // their difference row by row.
    ImageDesc e = s;
    e.row_stride = s.w * s.c;
    e.batch_stride = s.h * e.row_stride;
    std::vector<T> ero(static_cast<size_t>(s.n * e.batch_stride));
    morph_impl<true, T>(src, s, dst, d, fp, fh, fw, ay, ax, border, cx);
    morph_impl<false, T>(src, s, ero.data(), e, fp, fh, fw, ay, ax, border, cn);
    parallel_for(0, s.n * s.h, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        T* o = row_ptr<T>(dst, d, t / s.h, t % s.h);
        sub_rows(o, o, row_ptr<T>(static_cast<const void*>(ero.data()), e, t / s.h, t % s.h), e.row_stride);
      }
    });
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
