// Dense 2-D correlation (compiled per ISA).
//
// Algorithm: a ring of the kh source rows an output row needs, each converted and padded
// once; each output element is sum_{i,j} k[i][j] * P_i[x + j*C], computed 4 vectors at a
// time with the kh*kw taps streamed from L1. bytes/pixel = 2 * sizeof(T) * C,
// FLOPs/pixel = 2 * C * kh * kw. Variants: one per dtype and output dtype (the input's, float32
// or float64, written directly; float64 accumulation when either is). float32 -> float32 3x3
// on wide rows skips the ring for the rows whose source rows are all inside the image: their
// interior is filtered straight from the source rows, only the two end strips are padded
// (correlate_impl, "direct"); same bits, one copy of the source less (bytes/pixel as above).
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename T, typename A>
static void correlate_row(const A* const* P, T* o, int64_t n, int64_t C, const A* k, int kh, int kw) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{};
    for (int i = 0; i < kh; ++i) {
      const A* q = P[i] + x;
      const A* ki = k + static_cast<int64_t>(i) * kw;
      for (int j = 0; j < kw; ++j, q += C) {
        const vec_t<A> kv = splat<A>(ki[j]);
        a0 += kv * loadu(q);
        a1 += kv * loadu(q + L);
        a2 += kv * loadu(q + 2 * L);
        a3 += kv * loadu(q + 3 * L);
      }
    }
    store_vec<T, A>(o + x, a0);
    store_vec<T, A>(o + x + L, a1);
    store_vec<T, A>(o + x + 2 * L, a2);
    store_vec<T, A>(o + x + 3 * L, a3);
  }
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    vec_t<A> a0{};
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) a0 += splat<A>(k[i * kw + j]) * loadu(P[i] + e + j * C);
    return a0;
  };
  for (; x + L <= n; x += L) store_vec<T, A>(o + x, one(x));
  if (x < n && n >= L) return store_vec<T, A>(o + n - L, one(n - L));  // the last vector ends at n
  for (; x < n; ++x) {
    A a = 0;
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) a += k[i * kw + j] * P[i][x + j * C];
    o[x] = to_output<T, A>(a);
  }
}

// 3x3: the nine taps live in registers for the whole row (the common case: Sobel, Laplacian,
// sharpening). Same products, same summation order as the generic loop. Every element of a
// row of at least one vector is computed by the same vector code: with Stream, the whole lines
// of stream_span streamed (where the shifted ring rows are aligned too), the head and tail by
// plain vectors; a last vector ending at n (overlapping).
template <typename T, typename A, bool Stream>
static void correlate_row_3x3(const A* const* P, T* o, int64_t n, int64_t C, const A* k) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  if (n < L) return correlate_row<T, A>(P, o, n, C, k, 3, 3);
  vec_t<A> kv[9];
  for (int t = 0; t < 9; ++t) kv[t] = splat<A>(k[t]);
  const A* r0 = P[0];
  const A* r1 = P[1];
  const A* r2 = P[2];
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    vec_t<A> a0{};
    const A* rr[3] = {r0 + x, r1 + x, r2 + x};
#pragma GCC unroll 3
    for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) a0 += kv[i * 3 + j] * loadu(rr[i] + j * C);
    return a0;
  };
  const StreamSpan sp = stream_head<T, A, Stream>(o, n, one);
  int64_t x = sp.begin;
  // four vectors per iteration: four independent chains of nine dependent FMAs in flight
  // (two left the FMA pipes idle waiting on their latency)
  for (; x + 4 * L <= sp.end; x += 4 * L) {
    const vec_t<A> v0 = one(x), v1 = one(x + L), v2 = one(x + 2 * L), v3 = one(x + 3 * L);
    put<T, A, Stream>(o + x, v0);
    put<T, A, Stream>(o + x + L, v1);
    put<T, A, Stream>(o + x + 2 * L, v2);
    put<T, A, Stream>(o + x + 3 * L, v3);
  }
  for (; x + L <= sp.end; x += L) put<T, A, Stream>(o + x, one(x));
  plain_vectors<T, A>(o, x, n, one);
}

#if defined(__AVX512F__)
// AVX-512, float rows, 3x3 with C < 8: the shifted windows come from two loads per row with
// valignd instead of unaligned loads that split cache lines (the ring rows are 64-byte
// aligned, or shifted to the output's alignment when it streams: then the loop streams the
// whole lines of stream_span, the head and tail by plain vectors). Every element of a row of at
// least 16 is computed by the same vector code (a last vector ending at n, overlapping).
template <typename T, int C, bool Stream>
static void correlate_row_3x3_align512(const float* const* P, T* o, int64_t n, const float* k) {
  if (n < 16) return correlate_row<T, float>(P, o, n, C, k, 3, 3);
  __m512 kv[9];
  for (int t = 0; t < 9; ++t) kv[t] = _mm512_set1_ps(k[t]);
  // The second load may read up to 16 floats past the padded row, inside the ring's
  // line-rounded row stride (and the scratch's spare line), in lanes that are never used.
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int i = 0; i < 3; ++i) {
      const __m512 cur = _mm512_loadu_ps(P[i] + x), nxt = _mm512_loadu_ps(P[i] + x + 16);
      const __m512i ci = _mm512_castps_si512(cur), ni = _mm512_castps_si512(nxt);
      a = _mm512_fmadd_ps(kv[i * 3], cur, a);
      b = _mm512_fmadd_ps(kv[i * 3 + 1], _mm512_castsi512_ps(_mm512_alignr_epi32(ni, ci, C)), b);
      a = _mm512_fmadd_ps(kv[i * 3 + 2], _mm512_castsi512_ps(_mm512_alignr_epi32(ni, ci, 2 * C)), a);
    }
    return reinterpret_cast<simd::vec_t<float>>(_mm512_add_ps(a, b));
  };
  // Two vectors per step (the same sums as one()): the middle load of each row serves both,
  // 9 loads per 32 outputs instead of 12.
  auto two = [&](int64_t x, __m512& r0v, __m512& r1v) IMKERN_ALWAYS_INLINE {
    __m512 a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int i = 0; i < 3; ++i) {
      const __m512 c0 = _mm512_loadu_ps(P[i] + x), c1 = _mm512_loadu_ps(P[i] + x + 16),
                   c2 = _mm512_loadu_ps(P[i] + x + 32);
      const __m512i i0 = _mm512_castps_si512(c0), i1 = _mm512_castps_si512(c1), i2 = _mm512_castps_si512(c2);
      a0 = _mm512_fmadd_ps(kv[i * 3], c0, a0);
      a1 = _mm512_fmadd_ps(kv[i * 3], c1, a1);
      b0 = _mm512_fmadd_ps(kv[i * 3 + 1], _mm512_castsi512_ps(_mm512_alignr_epi32(i1, i0, C)), b0);
      b1 = _mm512_fmadd_ps(kv[i * 3 + 1], _mm512_castsi512_ps(_mm512_alignr_epi32(i2, i1, C)), b1);
      a0 = _mm512_fmadd_ps(kv[i * 3 + 2], _mm512_castsi512_ps(_mm512_alignr_epi32(i1, i0, 2 * C)), a0);
      a1 = _mm512_fmadd_ps(kv[i * 3 + 2], _mm512_castsi512_ps(_mm512_alignr_epi32(i2, i1, 2 * C)), a1);
    }
    r0v = _mm512_add_ps(a0, b0);
    r1v = _mm512_add_ps(a1, b1);
  };
  const StreamSpan sp = stream_head<T, float, Stream>(o, n, one);
  int64_t x = sp.begin;
  for (; x + 32 <= sp.end; x += 32) {
    __m512 v0, v1;
    two(x, v0, v1);
    put<T, float, Stream>(o + x, reinterpret_cast<simd::vec_t<float>>(v0));
    put<T, float, Stream>(o + x + 16, reinterpret_cast<simd::vec_t<float>>(v1));
  }
  for (; x + 16 <= sp.end; x += 16) put<T, float, Stream>(o + x, one(x));
  plain_vectors<T, float>(o, x, n, one);
}
#endif

template <typename T, typename U>
static void correlate_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                           const double* k, int kh, int kw, int ay, int ax, Border border, double cval) {
  using A = typename OutAccOf<T, U>::type;
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  std::vector<A> kv(k, k + static_cast<int64_t>(kh) * kw);
  const A cv = static_cast<A>(cval);
  // Column strips keep the ring in cache and, when the output streams (large outputs), start
  // on output lines (see plan_strips); results do not depend on them.
  // Small kernels too take the L2 budget (a ring of at least 9 rows: whole 4K rows): the
  // source rows are then read and the output rows streamed in one run each, and the ring (a
  // few rows) still fits L2. Measured on a 4K float32 image, 3x3, one thread: 5.0 ms in
  // whole rows, 5.5 ms in the L1 budget's two strips per row (AVX-512 and AVX2 alike).
  const StripPlan plan = plan_strips<U>(dst, s, d, kh < 9 ? 9 : kh, sizeof(A));
  const int64_t SP = plan.widest();
  const bool stream = plan.stream;
  auto emit_row = [&](auto stream_tag, const A* const* P, U* drow, int64_t n) {
    constexpr bool St = decltype(stream_tag)::value;
#if defined(__AVX512F__)
    if constexpr (std::is_same<A, float>::value) {
      if (kh == 3 && kw == 3 && C == 1) return correlate_row_3x3_align512<U, 1, St>(P, drow, n, kv.data());
      if (kh == 3 && kw == 3 && C == 3) return correlate_row_3x3_align512<U, 3, St>(P, drow, n, kv.data());
      if (kh == 3 && kw == 3 && C == 4) return correlate_row_3x3_align512<U, 4, St>(P, drow, n, kv.data());
    }
#endif
    if (kh == 3 && kw == 3)
      correlate_row_3x3<U, A, St>(P, drow, n, C, kv.data());
    else
      correlate_row<U, A>(P, drow, n, C, kv.data(), kh, kw);
  };
  auto ring_rows = [&](int64_t t0, int64_t t1) {
    ring_pipeline<A>(
        t0, t1, H, W, kh, ay, plan.sp, plan.first, plan.merge, (left + SP + right) * C,
        [&](int64_t b, int64_t sy, int64_t x0, int64_t x1, A* slot) {
          load_source_segment<T, A>(src, s, b, sy, x0, x1, left, right, border, cv, slot);
        },
        [&](const A* const* P, int64_t b, int64_t y, int64_t x0, int64_t x1) {
          U* drow = row_ptr<U>(dst, d, b, y) + x0 * C;
          if (stream) emit_row(std::true_type{}, P, drow, (x1 - x0) * C);
          else emit_row(std::false_type{}, P, drow, (x1 - x0) * C);
        },
        [&](int64_t b, int64_t y, int64_t x0) -> int64_t {
          // streaming starts at the first aligned output element: align the ring rows with it
          if (!stream) return 0;
          const int64_t st = stream_start<U, A>(row_ptr<U>(dst, d, b, y) + x0 * C);
          return st % simd::Vec<A>::lanes == 0 ? 0 : simd::Vec<A>::lanes - st;
        });
  };
  // float32 in and out, 3x3, wide rows: the rows whose three source rows lie inside the image
  // are filtered straight from the source (no padded copy): the interior columns with the
  // source rows as the ring rows, the E columns at each end from a small padded strip
  // (load_source_segment). emit_row computes every element of a row of at least one vector
  // with the same vector code wherever it is, so the bits are the ring path's. E * C >= 32
  // keeps both strips and the interior at least one vector and the interior's reads (up to 16
  // floats past its padded row in correlate_row_3x3_align512) inside the source row. The end
  // strips use plain stores and the interior streams only its whole output lines (stream_span),
  // so no line takes both streaming and plain stores: such lines cost more than the whole ring
  // copy on a Xeon. 4K float32, one thread, Xeon (Granite Rapids): 5.1 -> 3.0 ms (AVX-512),
  // 5.9 -> 3.2 (AVX2). Rows of fewer than 1024 elements take the ring: the six edge segments
  // and three row calls per output row cost more than the copy of a short interior saves (one
  // thread, Zen 3, against cv2.filter2D in turns: 224x224 57 -> 37 us, 512 wide 1.25-1.31x ->
  // 1.01-1.08x cv2's time; from 1024 elements the direct rows are as fast or faster).
  constexpr bool direct_ok = std::is_same<T, float>::value && std::is_same<U, float>::value;
  const int64_t E = (32 + C - 1) / C < 2 ? 2 : (32 + C - 1) / C;
  const bool direct = direct_ok && kh == 3 && kw == 3 && W >= 4 * E + 32 && W * C >= 1024;
  // three padded edge rows: up to E + 2 columns each, a line of slack for the over-read
  const int64_t bs = ((E + 2) * C + 16 + 15) / 16 * 16 + 16;
  auto direct_rows = [&](int64_t t0, int64_t t1) {
    if constexpr (!direct_ok) return ring_rows(t0, t1);
    A* buf = thread_scratch<A>(5, static_cast<size_t>(3 * bs));  // slot 5: no other filter uses it
    const A* P[3];
    const A* B[3] = {buf, buf + bs, buf + 2 * bs};
    const int64_t xa = E, xb = W - E;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      U* drow = row_ptr<U>(dst, d, b, y);
      for (int i = 0; i < 3; ++i)
        load_source_segment<T, A>(src, s, b, y - ay + i, 0, xa, left, right, border, cv, buf + i * bs);
      emit_row(std::false_type{}, B, drow, xa * C);
      // No software prefetch of the rows ahead (the hardware streams these sequential rows):
      // prefetching the whole row four ahead, as load_source_segment does for the ring, made
      // this loop 30% slower on the Xeon (3.0 -> 3.9 ms, 4K, one thread, AVX-512 and AVX2).
      for (int i = 0; i < 3; ++i)
        P[i] = reinterpret_cast<const A*>(row_ptr<T>(src, s, b, y - ay + i)) + (xa - left) * C;
      if (stream) emit_row(std::true_type{}, P, drow + xa * C, (xb - xa) * C);
      else emit_row(std::false_type{}, P, drow + xa * C, (xb - xa) * C);
      for (int i = 0; i < 3; ++i)
        load_source_segment<T, A>(src, s, b, y - ay + i, xb, W, left, right, border, cv, buf + i * bs);
      emit_row(std::false_type{}, B, drow + xb * C, (W - xb) * C);
    }
    if (stream) stream_fence();
  };
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    if (direct) {
      // runs of rows: inside (three source rows in the image) go direct, the others to the ring
      for (int64_t t = t0; t < t1;) {
        const int64_t y = t % H;
        const bool inside = y - ay >= 0 && y - ay + 2 < H;
        int64_t u = t + 1;
        while (u < t1 && (u % H - ay >= 0 && u % H - ay + 2 < H) == inside) ++u;
        if (inside) direct_rows(t, u);
        else ring_rows(t, u);
        t = u;
      }
    } else {
      ring_rows(t0, t1);
    }
  });
}

void correlate(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
               const double* k, int kh, int kw, int ay, int ax, Border border, double cval) {
  visit_dtype_pair(dtype, out_dtype, [&](auto tag, auto otag) {
    using T = decltype(tag);
    using U = decltype(otag);
    correlate_impl<T, U>(src, s, dst, d, k, kh, kw, ay, ax, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
