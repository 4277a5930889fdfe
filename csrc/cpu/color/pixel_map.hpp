// The CPU driver of every color conversion (compiled per ISA): rows of the batch split over
// the thread pool, each row a loop over pixels calling one functor of imkern/color_pixel.hpp
// with compile-time channel counts, so the compiler vectorizes the channel (de)interleave.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "imkern/color.hpp"
#include "imkern/color_pixel.hpp"
#include "common/shuffle.hpp"
#include "common/vops.hpp"
#include "common/simd.hpp"
#include "common/stream.hpp"
#include "imkern/parallel.hpp"
#include "imkern/dispatch.hpp"
#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

// The native lane vectors live inside inlined row kernels; their "ABI change" warnings never
// matter here.
#pragma GCC diagnostic ignored "-Wpsabi"
// GCC 12 reports _mm512_undefined_epi32() inside the AVX-512 zero-extending loads and max as
// maybe-uninitialized (a known false positive of its headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {

// No vectorized row prefix: the functor does every pixel.
struct NoRowKernel {
  template <typename TI, typename TO>
  int64_t operator()(const TI*, TO*, int64_t) const { return 0; }
};

// f maps one pixel; rowk(in, out, w) may convert a prefix of the row with SIMD and returns how
// many pixels it did (the functor finishes the row, so both must compute the same bits).
// Each chunk of rows ends with stream_fence, for the row kernels that stream (stream_row):
// a fence per row cost 1.2x at 8640x960 float32 gray, AVX2, single thread on the Xeon.
template <typename TI, typename TO, int CI, int CO, typename F, typename R = NoRowKernel>
void map_pixels(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const F& f,
                const R& rowk = R{}) {
  const int64_t H = s.h, W = s.w, rows = s.n * s.h;
  // about 64 KiB of pixels per chunk: enough to amortize a hand-off, small enough to balance
  const int64_t grain = W > 0 ? (16384 + W - 1) / W : 1;
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / H, y = r % H;
      const TI* in = static_cast<const TI*>(src) + b * s.batch_stride + y * s.row_stride;
      TO* out = static_cast<TO*>(dst) + b * d.batch_stride + y * d.row_stride;
      for (int64_t x = rowk(in, out, W); x < W; ++x) f(in + x * CI, out + x * CO);
    }
    stream_fence();
  });
}

// Whether the rows (and images) of g with c elements per pixel lie back to back.
inline bool dense_pixels(const ImageDesc& g, int64_t c) {
  return (g.h == 1 || g.row_stride == g.w * c) && (g.n == 1 || g.batch_stride == g.h * g.w * c);
}
// Pixels per chunk of map_pixels_run (and gray_u8's runs): a multiple of every line's pixels (64 / sizeof(TO)),
// ~64-192 KiB of output per hand-off, as map_pixels' rows.
constexpr int64_t kRunGrain = 16384;

#if defined(__SSE4_1__)
// 16 interleaved RGB uint8 pixels (48 bytes) -> three planes of 16 bytes (pshufb + or).
inline void deinterleave3_u8(const uint8_t* p, __m128i& r, __m128i& g, __m128i& b) {
  const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
  const __m128i a2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
  r = _mm_or_si128(_mm_or_si128(
          _mm_shuffle_epi8(a0, _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
          _mm_shuffle_epi8(a1, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1))),
          _mm_shuffle_epi8(a2, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13)));
  g = _mm_or_si128(_mm_or_si128(
          _mm_shuffle_epi8(a0, _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
          _mm_shuffle_epi8(a1, _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1))),
          _mm_shuffle_epi8(a2, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14)));
  b = _mm_or_si128(_mm_or_si128(
          _mm_shuffle_epi8(a0, _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
          _mm_shuffle_epi8(a1, _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1))),
          _mm_shuffle_epi8(a2, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15)));
}

// Three planes of 16 bytes -> 16 interleaved 3-channel pixels (48 bytes): the inverse.
inline void interleave3_u8(__m128i c0, __m128i c1, __m128i c2, uint8_t* p) {
  const __m128i o0 = _mm_or_si128(_mm_or_si128(
      _mm_shuffle_epi8(c0, _mm_setr_epi8(0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5)),
      _mm_shuffle_epi8(c1, _mm_setr_epi8(-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1))),
      _mm_shuffle_epi8(c2, _mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1)));
  const __m128i o1 = _mm_or_si128(_mm_or_si128(
      _mm_shuffle_epi8(c0, _mm_setr_epi8(-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1)),
      _mm_shuffle_epi8(c1, _mm_setr_epi8(5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10))),
      _mm_shuffle_epi8(c2, _mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1)));
  const __m128i o2 = _mm_or_si128(_mm_or_si128(
      _mm_shuffle_epi8(c0, _mm_setr_epi8(-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1)),
      _mm_shuffle_epi8(c1, _mm_setr_epi8(-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1))),
      _mm_shuffle_epi8(c2, _mm_setr_epi8(10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), o0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 16), o1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 32), o2);
}

#if defined(__AVX2__)
// a 16-byte pshufb mask in both 128-bit halves
IMKERN_ALWAYS_INLINE inline __m256i bc16(__m128i m) { return _mm256_broadcastsi128_si256(m); }

// The same on 32 pixels in 256-bit vectors, each 128-bit half on its own 16 pixels (pshufb and
// or work within halves): half 0 gets pixels 0-15, half 1 pixels 16-31, so the planes are in
// pixel order.
inline void deinterleave3_u8x32(const uint8_t* p, __m256i& r, __m256i& g, __m256i& b) {
  auto ld = [](const uint8_t* lo, const uint8_t* hi) IMKERN_ALWAYS_INLINE {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
  };
  const __m256i a0 = ld(p, p + 48), a1 = ld(p + 16, p + 64), a2 = ld(p + 32, p + 80);
  auto pick = [&](__m256i m0, __m256i m1, __m256i m2) IMKERN_ALWAYS_INLINE {
    return _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a0, m0), _mm256_shuffle_epi8(a1, m1)),
                           _mm256_shuffle_epi8(a2, m2));
  };
  r = pick(bc16(_mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
           bc16(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1)),
           bc16(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13)));
  g = pick(bc16(_mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
           bc16(_mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1)),
           bc16(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14)));
  b = pick(bc16(_mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
           bc16(_mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1)),
           bc16(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15)));
}

// Three planes of 32 bytes (pixel order) -> 32 interleaved pixels (96 bytes): the inverse.
inline void interleave3_u8x32(__m256i c0, __m256i c1, __m256i c2, uint8_t* p) {
  auto put = [&](__m256i m0, __m256i m1, __m256i m2) IMKERN_ALWAYS_INLINE {
    return _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(c0, m0), _mm256_shuffle_epi8(c1, m1)),
                           _mm256_shuffle_epi8(c2, m2));
  };
  // per half: its 48 output bytes as three 16-byte pieces
  const __m256i o0 = put(bc16(_mm_setr_epi8(0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5)),
                         bc16(_mm_setr_epi8(-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1)),
                         bc16(_mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1)));
  const __m256i o1 = put(bc16(_mm_setr_epi8(-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1)),
                         bc16(_mm_setr_epi8(5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10)),
                         bc16(_mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1)));
  const __m256i o2 = put(bc16(_mm_setr_epi8(-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1)),
                         bc16(_mm_setr_epi8(-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1)),
                         bc16(_mm_setr_epi8(10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permute2x128_si256(o0, o1, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 32), _mm256_permute2x128_si256(o2, o0, 0x30));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 64), _mm256_permute2x128_si256(o1, o2, 0x31));
}
#endif

// Pixels of 3 uint8 channels as int32 lanes of the ISA's native width (simd::vec_t: 16 lanes
// AVX-512, 8 AVX2, 4 SSE4), for the integer formulas of color_pixel.hpp; the lane arithmetic
// is the functor's, in int32 where its sums cannot overflow. A 16-pixel block is kParts
// vectors. Vectors wider than the ISA's registers would be split by GCC piecewise, often
// through memory or lane by lane (that made the AVX2 kernels several times slower).
typedef simd::vec_t<int32_t> vi;
typedef simd::vec_t<float> vf;
constexpr int kLanes = simd::Vec<int32_t>::lanes;
constexpr int kParts = 16 / kLanes;

// 16 bytes -> kParts vectors of zero-extended lanes.
IMKERN_ALWAYS_INLINE inline void widen16(__m128i b, vi* v) {
#if defined(__AVX512F__)
  v[0] = reinterpret_cast<vi>(_mm512_cvtepu8_epi32(b));
#elif defined(__AVX2__)
  v[0] = reinterpret_cast<vi>(_mm256_cvtepu8_epi32(b));
  v[1] = reinterpret_cast<vi>(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));
#else
  v[0] = reinterpret_cast<vi>(_mm_cvtepu8_epi32(b));
  v[1] = reinterpret_cast<vi>(_mm_cvtepu8_epi32(_mm_srli_si128(b, 4)));
  v[2] = reinterpret_cast<vi>(_mm_cvtepu8_epi32(_mm_srli_si128(b, 8)));
  v[3] = reinterpret_cast<vi>(_mm_cvtepu8_epi32(_mm_srli_si128(b, 12)));
#endif
}
// kParts vectors -> 16 bytes, lanes saturated to [0, 255].
IMKERN_ALWAYS_INLINE inline __m128i narrow16(const vi* v) {
#if defined(__AVX512F__)
  return _mm512_cvtusepi32_epi8(_mm512_max_epi32(reinterpret_cast<__m512i>(v[0]), _mm512_setzero_si512()));
#elif defined(__AVX2__)
  // packs works within 128-bit halves: (v0 lo, v1 lo, v0 hi, v1 hi); 0xD8 puts v0 before v1
  const __m256i p = _mm256_permute4x64_epi64(
      _mm256_packs_epi32(reinterpret_cast<__m256i>(v[0]), reinterpret_cast<__m256i>(v[1])), 0xD8);
  return _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
#else
  return _mm_packus_epi16(_mm_packs_epi32(reinterpret_cast<__m128i>(v[0]), reinterpret_cast<__m128i>(v[1])),
                          _mm_packs_epi32(reinterpret_cast<__m128i>(v[2]), reinterpret_cast<__m128i>(v[3])));
#endif
}

// t[i] per lane from a uint16 table (i >= 0; the table has one entry past the last index, since
// the gather reads 32 bits).
IMKERN_ALWAYS_INLINE inline vi gather_u16(const uint16_t* t, vi i) {
#if defined(__AVX512F__)
  return reinterpret_cast<vi>(_mm512_i32gather_epi32(reinterpret_cast<__m512i>(i), t, 2)) & 0xFFFF;
#elif defined(__AVX2__)
  return reinterpret_cast<vi>(_mm256_i32gather_epi32(reinterpret_cast<const int*>(t), reinterpret_cast<__m256i>(i), 2)) &
         0xFFFF;
#else
  return vi{t[i[0]], t[i[1]], t[i[2]], t[i[3]]};
#endif
}
IMKERN_ALWAYS_INLINE inline vi gather_u32(const uint32_t* t, vi i) {
#if defined(__AVX512F__)
  return reinterpret_cast<vi>(_mm512_i32gather_epi32(reinterpret_cast<__m512i>(i), t, 4));
#elif defined(__AVX2__)
  return reinterpret_cast<vi>(_mm256_i32gather_epi32(reinterpret_cast<const int*>(t), reinterpret_cast<__m256i>(i), 4));
#else
  return vi{int32_t(t[i[0]]), int32_t(t[i[1]]), int32_t(t[i[2]]), int32_t(t[i[3]])};
#endif
}

// Float lanes to int32 rounded to nearest, ties to even (cvtps2dq under the default MXCSR).
IMKERN_ALWAYS_INLINE inline vi round_to_int(vf v) {
#if defined(__AVX512F__)
  return reinterpret_cast<vi>(_mm512_cvtps_epi32(reinterpret_cast<__m512>(v)));
#elif defined(__AVX2__)
  return reinterpret_cast<vi>(_mm256_cvtps_epi32(reinterpret_cast<__m256>(v)));
#else
  return reinterpret_cast<vi>(_mm_cvtps_epi32(reinterpret_cast<__m128>(v)));
#endif
}

// A row kernel for 3 -> 3 channel uint8 ops: Op::lanes(c0, c1, c2, o0, o1, o2) on native vectors
// (a functor object, so it may carry state), 16 pixels per step.
template <typename Op>
struct Row3U8 {
  Op op{};
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    int64_t x = 0;
    for (; x + 16 <= w; x += 16) {
      __m128i rb, gb, bb;
      deinterleave3_u8(in + 3 * x, rb, gb, bb);
      vi r[kParts], g[kParts], b[kParts], o0[kParts], o1[kParts], o2[kParts];
      widen16(rb, r);
      widen16(gb, g);
      widen16(bb, b);
      for (int k = 0; k < kParts; ++k) op.lanes(r[k], g[k], b[k], o0[k], o1[k], o2[k]);
      interleave3_u8(narrow16(o0), narrow16(o1), narrow16(o2), out + 3 * x);
    }
    return x;
  }
};

// gray -> RGB of 16 pixels: one plane interleaved three times.
struct GrayToRgbRowU8 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    // each output byte picks its pixel's gray byte: three pshufb per 16 pixels
    const __m128i m0 = _mm_setr_epi8(0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5);
    const __m128i m1 = _mm_setr_epi8(5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10);
    const __m128i m2 = _mm_setr_epi8(10, 11, 11, 11, 12, 12, 12, 13, 13, 13, 14, 14, 14, 15, 15, 15);
    int64_t x = 0;
    for (; x + 16 <= w; x += 16) {
      const __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + x));
      uint8_t* o = out + 3 * x;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm_shuffle_epi8(g, m0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 16), _mm_shuffle_epi8(g, m1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 32), _mm_shuffle_epi8(g, m2));
    }
    return x;
  }
};

// A fixed byte map per group of NP pixels (PI bytes each in, PO out): one pshufb of a 16-byte
// load per group, the input stepped by NP * PI bytes and the output by NP * PO <= 16; each
// 16-byte store's bytes past the group are rewritten by the next group's store, so a group is
// done only while its whole load and store lie in the row. Returns the pixels done.
template <int PI, int PO, int NP>
IMKERN_ALWAYS_INLINE inline int64_t shuffle_groups_u8(const uint8_t* in, uint8_t* out, int64_t w, __m128i m) {
  static_assert(NP * PI <= 16 && NP * PO <= 16, "a group fits one 16-byte register");
  int64_t x = 0;
  for (; PI * x + 16 <= PI * w && PO * x + 16 <= PO * w; x += NP) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + PI * x));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + PO * x), _mm_shuffle_epi8(v, m));
  }
  return x;
}

#if defined(__AVX512BW__)
// rgb <-> bgr of 3-channel rows in 64-byte vectors: output vector k (L elements) is one
// two-table permute (vpermt2b for uint8, AVX-512 VBMI; vpermt2w for uint16) of the 2L elements
// from 2 before it (A: its own and those the swap reaches across its start) and the next L (B,
// which holds the 2 it reaches across its end). B is the next vector's A, so each input vector
// is loaded once; the row's first A is a masked load (nothing before the row is read). The
// element index modulo 3 cycles with k (L = 64 or 32), so three index vectors take turns.
// Returns the pixels whose elements are all done (the caller's tail rewrites a partial one).
template <typename T>
struct SwapIdx3 {
  alignas(64) T v[3][64 / sizeof(T)];
};
// The three index vectors (k = 0, 1, 2; entry j of L = 64 / sizeof(T)) of f(k, j, L), built
// once per table (each caller's lambda type is its own table).
template <typename T, typename F>
const SwapIdx3<T>& idx3_table(F f) {
  static const SwapIdx3<T> t = [&] {
    SwapIdx3<T> s{};
    constexpr int L = 64 / sizeof(T);
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < L; ++j) s.v[k][j] = static_cast<T>(f(k, j, L));
    return s;
  }();
  return t;
}
template <typename T>
const SwapIdx3<T>& swap_idx3() {
  return idx3_table<T>([](int k, int j, int L) {
    const int e = (k * L + j) % 3;  // channel of output element k L + j
    return j + 2 + (e == 0 ? 2 : e == 2 ? -2 : 0);
  });
}

// The loop, for uint8 (VBMI, in a function of that target) and uint16: one macro body, since a
// permute of the VBMI target cannot be inlined into a template of the plain AVX-512 one.
#define IMKERN_SWAP3_WIDE(T, PERM)                                                                       \
  constexpr int64_t L = 64 / sizeof(T);                                                                \
  const int64_t n = 3 * w;                                                                             \
  if (n < 2 * L - 2) return 0;                                                                         \
  const SwapIdx3<T>& ix = swap_idx3<T>();                                                              \
  const __m512i i0 = _mm512_load_si512(ix.v[0]), i1 = _mm512_load_si512(ix.v[1]),                     \
                i2 = _mm512_load_si512(ix.v[2]);                                                       \
  __m512i a = _mm512_maskz_loadu_epi8(~uint64_t{(1u << (2 * sizeof(T))) - 1},                          \
                                      reinterpret_cast<const uint8_t*>(in) - 2 * sizeof(T));           \
  int64_t k = 0;                                                                                       \
  for (; (k + 4) * L - 2 <= n; k += 3) { /* the B of vector k + 2 ends at (k + 4) L - 2 */             \
    const __m512i b0 = _mm512_loadu_si512(in + k * L + L - 2);                                         \
    const __m512i b1 = _mm512_loadu_si512(in + k * L + 2 * L - 2);                                     \
    const __m512i b2 = _mm512_loadu_si512(in + k * L + 3 * L - 2);                                     \
    _mm512_storeu_si512(out + k * L, PERM(a, i0, b0));                                                 \
    _mm512_storeu_si512(out + k * L + L, PERM(b0, i1, b1));                                            \
    _mm512_storeu_si512(out + k * L + 2 * L, PERM(b1, i2, b2));                                        \
    a = b2;                                                                                            \
  }                                                                                                    \
  for (int t = 0; t < 2 && (k + 2) * L - 2 <= n; ++t, ++k) { /* k % 3 == t here */                    \
    const __m512i b = _mm512_loadu_si512(in + k * L + L - 2);                                          \
    _mm512_storeu_si512(out + k * L, PERM(a, t == 0 ? i0 : i1, b));                                    \
    a = b;                                                                                             \
  }                                                                                                    \
  return k * L / 3;

__attribute__((target("avx512vbmi"))) inline int64_t swap3_u8_vbmi(const uint8_t* in, uint8_t* out, int64_t w) {
  IMKERN_SWAP3_WIDE(uint8_t, _mm512_permutex2var_epi8)
}
inline int64_t swap3_u16(const uint16_t* in, uint16_t* out, int64_t w) { IMKERN_SWAP3_WIDE(uint16_t, _mm512_permutex2var_epi16) }
#undef IMKERN_SWAP3_WIDE

// RGBA -> RGB (alpha dropped) in 64-byte vectors: 3 output vectors (64 pixels of uint8, 32 of
// uint16) from 4 input vectors, output vector k a two-table permute of input vectors k and
// k + 1 (output element o is element o % 3 of pixel o / 3: input element 4 (o / 3) + o % 3,
// which for o in vector k lies in input vectors k and k + 1). Returns the pixels done.
template <typename T>
const SwapIdx3<T>& drop_alpha_idx() {
  return idx3_table<T>([](int k, int j, int L) {
    const int o = k * L + j;
    return 4 * (o / 3) + o % 3 - k * L;
  });
}
#define IMKERN_DROP_ALPHA_WIDE(T, PERM)                                                     \
  constexpr int64_t L = 64 / sizeof(T), NP = L;  /* pixels per 3 output vectors */          \
  const SwapIdx3<T>& ix = drop_alpha_idx<T>();                                             \
  const __m512i i0 = _mm512_load_si512(ix.v[0]), i1 = _mm512_load_si512(ix.v[1]),          \
                i2 = _mm512_load_si512(ix.v[2]);                                            \
  int64_t x = 0;                                                                            \
  for (; x + NP <= w; x += NP) {                                                            \
    const T* p = in + 4 * x;                                                                \
    const __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + L),               \
                  a2 = _mm512_loadu_si512(p + 2 * L), a3 = _mm512_loadu_si512(p + 3 * L);   \
    T* o = out + 3 * x;                                                                     \
    _mm512_storeu_si512(o, PERM(a0, i0, a1));                                               \
    _mm512_storeu_si512(o + L, PERM(a1, i1, a2));                                           \
    _mm512_storeu_si512(o + 2 * L, PERM(a2, i2, a3));                                       \
  }                                                                                         \
  return x;

__attribute__((target("avx512vbmi"))) inline int64_t drop_alpha_u8_vbmi(const uint8_t* in, uint8_t* out, int64_t w) {
  IMKERN_DROP_ALPHA_WIDE(uint8_t, _mm512_permutex2var_epi8)
}
inline int64_t drop_alpha_u16(const uint16_t* in, uint16_t* out, int64_t w) {
  IMKERN_DROP_ALPHA_WIDE(uint16_t, _mm512_permutex2var_epi16)
}
#undef IMKERN_DROP_ALPHA_WIDE
#endif

// rgb <-> bgr (the first and third channels swapped), 3 or 4 channels of uint8 or uint16: a
// byte map per 16-byte group (5 RGB / 4 RGBA uint8 pixels, 2 RGB / 2 RGBA uint16 pixels);
// with AVX-512, 3-channel rows first take swap3_u8_vbmi / swap3_u16 (uint8 where the CPU has VBMI: `vbmi`),
// and with AVX2 / AVX-512 4-channel rows take the group map in every 16-byte lane of a vector.
template <typename T, int C>
struct SwapRowInt {
  bool vbmi = false;
  int64_t operator()(const T* in, T* out, int64_t w) const {
    int64_t x = 0;
#if defined(__AVX512BW__)
    if constexpr (C == 3) {
      if constexpr (sizeof(T) == 2) x = swap3_u16(in, out, w);
      else if (vbmi) x = swap3_u8_vbmi(in, out, w);
    }
#endif
    const auto* i8 = reinterpret_cast<const uint8_t*>(in + C * x);
    auto* o8 = reinterpret_cast<uint8_t*>(out + C * x);
    const int64_t r = w - x;
    if constexpr (sizeof(T) == 1 && C == 3)
      return x + shuffle_groups_u8<3, 3, 5>(i8, o8, r, _mm_setr_epi8(2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 15));
    const __m128i m = sizeof(T) == 1 ? _mm_setr_epi8(2, 1, 0, 3, 6, 5, 4, 7, 10, 9, 8, 11, 14, 13, 12, 15)
                      : C == 3       ? _mm_setr_epi8(4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7, 12, 13, 14, 15)
                                     : _mm_setr_epi8(4, 5, 2, 3, 0, 1, 6, 7, 12, 13, 10, 11, 8, 9, 14, 15);
    if constexpr (C == 3) return x + shuffle_groups_u8<6, 6, 2>(i8, o8, r, m);
    int64_t b = 0;  // 4 channels: every 16 bytes hold whole pixels
#if defined(__AVX512BW__)
    const __m512i mw = _mm512_broadcast_i32x4(m);
    for (; (b + 64) <= r * 4 * static_cast<int64_t>(sizeof(T)); b += 64)
      _mm512_storeu_si512(o8 + b, _mm512_shuffle_epi8(_mm512_loadu_si512(i8 + b), mw));
#elif defined(__AVX2__)
    const __m256i mw = _mm256_broadcastsi128_si256(m);
    for (; (b + 32) <= r * 4 * static_cast<int64_t>(sizeof(T)); b += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o8 + b),
                          _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(i8 + b)), mw));
#endif
    for (; (b + 16) <= r * 4 * static_cast<int64_t>(sizeof(T)); b += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o8 + b), _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(i8 + b)), m));
    return x + b / (4 * static_cast<int64_t>(sizeof(T)));
  }
};

// RGBA -> RGB (alpha dropped) of uint8 / uint16 rows: 4 uint8 / 2 uint16 pixels per 16-byte
// group (pshufb packs their color bytes to the front; each 16-byte store's last bytes are
// rewritten by the next), after the 64-byte permutes with AVX-512 (uint8 where the CPU has VBMI).
template <typename T>
struct DropAlphaRowInt {
  bool vbmi = false;
  int64_t operator()(const T* in, T* out, int64_t w) const {
    int64_t x = 0;
#if defined(__AVX512BW__)
    if constexpr (sizeof(T) == 2) x = drop_alpha_u16(in, out, w);
    else if (vbmi) x = drop_alpha_u8_vbmi(in, out, w);
#endif
    const auto* i8 = reinterpret_cast<const uint8_t*>(in + 4 * x);
    auto* o8 = reinterpret_cast<uint8_t*>(out + 3 * x);
    if constexpr (sizeof(T) == 1)
      return x + shuffle_groups_u8<4, 3, 4>(i8, o8, w - x, _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
    else
      return x + shuffle_groups_u8<8, 6, 2>(i8, o8, w - x, _mm_setr_epi8(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1));
  }
};
#endif

#if defined(__SSE4_1__)
// ---- float pixels: 3 interleaved channels <-> 3 planes of native vectors (L lanes) ----------
// Two two-operand shuffles per plane (vpermt2ps/pd on AVX-512, permutes and blends on AVX2),
// with the masks built at compile time from the lane index.
template <typename T>
using fv = simd::vec_t<T>;
template <typename T>
using fmask = simd::vec_t<std::conditional_t<sizeof(T) == 4, int32_t, int64_t>>;
// The shuffle masks (Kind, K): deinterleave plane K's two steps (first the elements in a0/a1,
// index < 2L, then those in a2 over the rest); interleave output vector K's two steps (element
// e = K L + i is channel e % 3 of pixel e / 3: channels 0 and 1 first, then 2).
enum class Il3 { de1, de2, in1, in2 };
template <Il3 Kind, int K, int L>
constexpr int il3_index(int i) {
  const int e = 3 * i + K, f = K * L + i;
  switch (Kind) {
    case Il3::de1: return e < 2 * L ? e : 0;
    case Il3::de2: return e < 2 * L ? i : L + e - 2 * L;
    case Il3::in1: return f % 3 == 0 ? f / 3 : (f % 3 == 1 ? L + f / 3 : 0);
    default: return f % 3 == 2 ? L + f / 3 : i;
  }
}
template <typename T, Il3 Kind, int K, std::size_t... I>
constexpr fmask<T> il3_mask(std::index_sequence<I...>) {
  using E = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  return fmask<T>{static_cast<E>(il3_index<Kind, K, simd::Vec<T>::lanes>(static_cast<int>(I)))...};
}
template <typename T, Il3 Kind, int K>
constexpr fmask<T> il3_mask() {
  return il3_mask<T, Kind, K>(std::make_index_sequence<simd::Vec<T>::lanes>{});
}

// 3 * L interleaved values at p -> planes c[0], c[1], c[2] (element 3 i + k -> c[k][i]).
// (float on AVX2: 128-bit half swaps, blends and in-lane shuffles, 11 operations each way,
// where the generic two-operand shuffles take vpermd + blends and run out of registers)
template <typename T>
IMKERN_ALWAYS_INLINE inline void deinterleave3(const T* p, fv<T>* c) {
  constexpr int L = simd::Vec<T>::lanes;
  const fv<T> a0 = simd::loadu(p), a1 = simd::loadu(p + L), a2 = simd::loadu(p + 2 * L);
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    const __m256 v0 = reinterpret_cast<__m256>(a0), v1 = reinterpret_cast<__m256>(a1),
                 v2 = reinterpret_cast<__m256>(a2);
    const __m256 lo = _mm256_permute2f128_ps(v0, v2, 0x20), hi = _mm256_permute2f128_ps(v0, v2, 0x31);
    const __m256 b0 = _mm256_blend_ps(_mm256_blend_ps(lo, hi, 0x24), v1, 0x92);
    const __m256 g0 = _mm256_blend_ps(_mm256_blend_ps(hi, lo, 0x92), v1, 0x24);
    const __m256 r0 = _mm256_blend_ps(_mm256_blend_ps(v1, lo, 0x24), hi, 0x92);
    c[0] = reinterpret_cast<fv<T>>(_mm256_permute_ps(b0, 0x6c));
    c[1] = reinterpret_cast<fv<T>>(_mm256_permute_ps(g0, 0xb1));
    c[2] = reinterpret_cast<fv<T>>(_mm256_permute_ps(r0, 0xc6));
    return;
  }
#endif
  c[0] = IMKERN_SHUFFLE2(IMKERN_SHUFFLE2(a0, a1, (il3_mask<T, Il3::de1, 0>())), a2, (il3_mask<T, Il3::de2, 0>()));
  c[1] = IMKERN_SHUFFLE2(IMKERN_SHUFFLE2(a0, a1, (il3_mask<T, Il3::de1, 1>())), a2, (il3_mask<T, Il3::de2, 1>()));
  c[2] = IMKERN_SHUFFLE2(IMKERN_SHUFFLE2(a0, a1, (il3_mask<T, Il3::de1, 2>())), a2, (il3_mask<T, Il3::de2, 2>()));
}

// A whole vector to p (Stream: a non-temporal store, p aligned to the vector's size; only for
// 32- and 64-byte vectors).
template <bool Stream, typename T>
IMKERN_ALWAYS_INLINE inline void store_vec(T* p, fv<T> v) {
  if constexpr (Stream) {
#if defined(__AVX512F__)
    if constexpr (sizeof(T) == 4)
      _mm512_stream_ps(reinterpret_cast<float*>(p), reinterpret_cast<__m512>(v));
    else
      _mm512_stream_pd(reinterpret_cast<double*>(p), reinterpret_cast<__m512d>(v));
#elif defined(__AVX__)
    if constexpr (sizeof(T) == 4)
      _mm256_stream_ps(reinterpret_cast<float*>(p), reinterpret_cast<__m256>(v));
    else
      _mm256_stream_pd(reinterpret_cast<double*>(p), reinterpret_cast<__m256d>(v));
#else
    simd::storeu(p, v);
#endif
  } else {
    simd::storeu(p, v);
  }
}

// Planes c[0], c[1], c[2] -> 3 * L interleaved values at p (the inverse).
template <typename T, bool Stream = false>
IMKERN_ALWAYS_INLINE inline void interleave3(const fv<T>* c, T* p) {
  constexpr int L = simd::Vec<T>::lanes;
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    const __m256 b0 = _mm256_permute_ps(reinterpret_cast<__m256>(c[0]), 0x6c);
    const __m256 g0 = _mm256_permute_ps(reinterpret_cast<__m256>(c[1]), 0xb1);
    const __m256 r0 = _mm256_permute_ps(reinterpret_cast<__m256>(c[2]), 0xc6);
    const __m256 p0 = _mm256_blend_ps(_mm256_blend_ps(b0, g0, 0x92), r0, 0x24);
    const __m256 p1 = _mm256_blend_ps(_mm256_blend_ps(g0, r0, 0x92), b0, 0x24);
    const __m256 p2 = _mm256_blend_ps(_mm256_blend_ps(r0, b0, 0x92), g0, 0x24);
    store_vec<Stream>(p, reinterpret_cast<fv<T>>(_mm256_permute2f128_ps(p0, p1, 0x20)));
    store_vec<Stream>(p + L, reinterpret_cast<fv<T>>(p2));
    store_vec<Stream>(p + 2 * L, reinterpret_cast<fv<T>>(_mm256_permute2f128_ps(p0, p1, 0x31)));
    return;
  }
#endif
  store_vec<Stream>(p, IMKERN_SHUFFLE2(IMKERN_SHUFFLE2(c[0], c[1], (il3_mask<T, Il3::in1, 0>())), c[2],
                                       (il3_mask<T, Il3::in2, 0>())));
  store_vec<Stream>(p + L, IMKERN_SHUFFLE2(IMKERN_SHUFFLE2(c[0], c[1], (il3_mask<T, Il3::in1, 1>())), c[2],
                                           (il3_mask<T, Il3::in2, 1>())));
  store_vec<Stream>(p + 2 * L, IMKERN_SHUFFLE2(IMKERN_SHUFFLE2(c[0], c[1], (il3_mask<T, Il3::in1, 2>())), c[2],
                                               (il3_mask<T, Il3::in2, 2>())));
}

// floor per lane (roundps/pd toward -inf).
template <typename T>
IMKERN_ALWAYS_INLINE inline fv<T> vfloor(fv<T> x) {
  return simd::vround<_MM_FROUND_TO_NEG_INF>(x);
}

// Streamed rows (non-temporal stores, which need aligned addresses) start at the first pixel
// whose output (P elements of T) starts on an A-byte boundary: its index, or -1 where no pixel
// within A / sizeof(T) does (an output not aligned to T). With P odd and A a power of two,
// steps of P sizeof(T) bytes reach every multiple of sizeof(T) modulo A in that many pixels.
template <typename T, int P>
inline int64_t stream_head(const T* out, uintptr_t A) {
  const uintptr_t o = reinterpret_cast<uintptr_t>(out);
  if (o % sizeof(T) != 0) return -1;
  for (int64_t h = 0; h < static_cast<int64_t>(A / sizeof(T)); ++h)
    if (((o + P * h * sizeof(T)) & (A - 1)) == 0) return h;
  return -1;
}

// Whether the rows of s lie back to back in memory (a row's pixels end where the next row's
// begin, across the batch too): then a row kernel's prefetches past its row's end are not wasted.
inline bool contiguous_rows(const ImageDesc& s) {
  return s.row_stride == s.row_elems() && (s.n == 1 || s.batch_stride == s.h * s.row_stride);
}

// The Bytes bytes from p, one 4 KiB page ahead, into L1: for rows streamed from memory. The
// hardware's stream prefetchers stop at page boundaries, so each new page of a sequential
// read begins with demand misses; at the rate of a streamed conversion these stalls went
// unhidden (single thread, 4K float32 image, Xeon Granite Rapids: rgb_to_hsv AVX2 23.9 -> 14.3
// ms, AVX-512 14.0 -> 12.8; hsv_to_rgb 31.7 -> 18.0 / 16.5 -> 13.6; rgb_to_ycbcr unchanged).
// 2 and 4 KiB ahead were alike there, 8 KiB slower; a page is the distance that does not depend
// on the machine's latency as long as one page of input outlasts a memory access (the same as
// the uint8 rgb_to_hsv rows). A prefetch does not fault, so reading past the image is harmless;
// past a row of a view whose rows have gaps it would fetch unused lines (Row3F stops there).
template <int Bytes, typename T>
IMKERN_ALWAYS_INLINE inline void prefetch_page_ahead(const T* p) {
  for (int b = 0; b < Bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + 4096 + b, _MM_HINT_T0);
}

// A row of a float row kernel k, whose k.blocks<Stream>(in, out, x, w) converts whole vectors of
// L pixels (PO output elements each) from pixel x on and returns where it stops (before w);
// returns the pixels done. Unstreamed: the vectors from pixel 0, the functor after them (the
// caller's loop). Streamed (`stream` and a whole line to stream; common/stream.hpp's
// rule): the pixels whose outputs fill whole 64-byte lines (stream_span) by streaming vectors,
// those before and after them by plain vectors, each part's last vector ending at its end
// (overlapping the one before: the same values, since the ops that stream give the functor's
// bits in the vectors too, and out never overlaps in); no line takes both kinds of store. The
// caller fences after its chunk (map_pixels, gray_float).
// Streaming from the first vector-aligned output instead (f before it, f after the last
// vector) left a line shared by plain and streaming stores at each end of a row wherever the
// output was not line-aligned: float32 4K rgb_to_gray at AVX2 into an output 16 bytes into a
// line, single thread on the Xeon (Granite Rapids): 12 ms against 8.5 aligned, one such line
// per row (2160 lines of 518400) costing ~1.6 us each.
template <typename K, typename T>
IMKERN_ALWAYS_INLINE inline void plain_vectors_px(const K& k, const T* in, T* out, int64_t x0, int64_t x1) {
  constexpr int L = simd::Vec<T>::lanes;
  if (k.template blocks<false>(in, out, x0, x1) < x1) k.template blocks<false>(in, out, x1 - L, x1);
}
template <int PO, typename T, typename K>
IMKERN_ALWAYS_INLINE inline int64_t stream_row(const K& k, const T* in, T* out, int64_t w, bool stream) {
#if defined(__AVX__)
  if (stream) {
    const StreamSpan sp = stream_span<T, simd::Vec<T>::lanes, PO>(out, w);
    if (sp.end > sp.begin) {
      if (sp.begin > 0) plain_vectors_px(k, in, out, 0, sp.begin);
      k.template blocks<true>(in, out, sp.begin, sp.end);
      if (sp.end < w) plain_vectors_px(k, in, out, sp.end, w);
      return w;
    }
  }
#else
  (void)stream;
#endif
  return k.template blocks<false>(in, out, 0, w);
}

// A row kernel for 3 -> 3 channel float ops: Op::lanes(c, o) maps planes c[3] to planes o[3]
// on L pixels, or returns false for a block it leaves to the scalar functor F.
// stream: outputs far larger than the cache (the caller decides) are written by non-temporal
// stores, which save the read-for-ownership of every output line (a third of the traffic of a
// memory-bound conversion), on whole lines (stream_row; the ops that stream give the
// functor's bits in their vectors too).
// Op::kPairs: Op also has lanes2(c[2][3], o[2][3]), two blocks at once with the bits of two
// lanes() calls, or false (then each block goes through lanes()): for latency-bound ops, whose
// two chains then overlap in the out-of-order window (labf::fast::RgbToLab).
template <typename Op, typename = void>
struct HasPairs : std::false_type {};
template <typename Op>
struct HasPairs<Op, std::void_t<decltype(Op::kPairs)>> : std::bool_constant<Op::kPairs> {};
template <typename T, typename Op, typename F>
struct Row3F {
  Op op{};
  F f{};
  bool stream = false;
  bool rows_follow = false;  // each row's input ends where the next row's begins (contiguous_rows)
  // A block of L pixels the vectors leave to the functor (rare): streamed, through a buffer
  // stored by the block's three vectors, so that no plain store reaches a streamed line.
  template <bool Stream>
  void by_functor(const T* in, T* out) const {
    constexpr int L = simd::Vec<T>::lanes;
    if constexpr (Stream) {
      alignas(64) T buf[3 * L];
      for (int i = 0; i < L; ++i) f(in + 3 * i, buf + 3 * i);
      for (int j = 0; j < 3; ++j) store_vec<true>(out + j * L, simd::loadu(buf + j * L));
    } else {
      for (int i = 0; i < L; ++i) f(in + 3 * i, out + 3 * i);
    }
  }
  template <bool Stream>
  IMKERN_ALWAYS_INLINE int64_t blocks(const T* in, T* out, int64_t x, int64_t w) const {
    constexpr int L = simd::Vec<T>::lanes;
    // streamed blocks prefetch the input a page ahead (prefetch_page_ahead): up to the row's end
    // where the next row follows it in memory, else only while that page is inside the row
    [[maybe_unused]] const int64_t pf_end = rows_follow ? w : w - 4096 / (3 * int64_t(sizeof(T)));
    if constexpr (HasPairs<Op>::value) {
      for (; x + 2 * L <= w; x += 2 * L) {
        fv<T> c[2][3], o[2][3];
        if constexpr (Stream)
          if (x < pf_end) prefetch_page_ahead<6 * L * int(sizeof(T))>(in + 3 * x);
        deinterleave3(in + 3 * x, c[0]);
        deinterleave3(in + 3 * (x + L), c[1]);
        if (op.lanes2(c, o)) {
          interleave3<T, Stream>(o[0], out + 3 * x);
          interleave3<T, Stream>(o[1], out + 3 * (x + L));
          continue;
        }
        for (int k = 0; k < 2; ++k) {
          const int64_t xk = x + k * L;
          if (op.lanes(c[k], o[k])) interleave3<T, Stream>(o[k], out + 3 * xk);
          else by_functor<Stream>(in + 3 * xk, out + 3 * xk);
        }
      }
    }
    for (; x + L <= w; x += L) {
      fv<T> c[3], o[3];
      if constexpr (Stream)
        if (x < pf_end) prefetch_page_ahead<3 * L * int(sizeof(T))>(in + 3 * x);
      deinterleave3(in + 3 * x, c);
      if (op.lanes(c, o)) interleave3<T, Stream>(o, out + 3 * x);
      else by_functor<Stream>(in + 3 * x, out + 3 * x);
    }
    return x;
  }
  int64_t operator()(const T* in, T* out, int64_t w) const { return stream_row<3>(*this, in, out, w, stream); }
};

// map_pixels for rows back to back in the input and the output (images too; else
// map_pixels): one run of n h w pixels in chunks of kRunGrain, placed on the output's 64-byte
// lines (every chunk but the first starts at a pixel whose output starts a line, and no line
// is shared by two chunks), split between the threads, each chunk one rowk call (the functor
// after it) and a fence. A streamed output is then plain only at the run's two ends; row by
// row, an output not on a line boundary puts plain vectors at each row's ends between
// streamed lines (gray_float, Row3F: see there for what that cost).
template <typename TI, typename TO, int CI, int CO, typename F, typename R>
void map_pixels_run(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const F& f, const R& rowk) {
  auto* out = static_cast<TO*>(dst);
  const int64_t h = stream_head<TO, CO>(out, 64);
  if (h < 0 || !dense_pixels(s, CI) || !dense_pixels(d, CO)) {
    map_pixels<TI, TO, CI, CO>(src, s, dst, d, f, rowk);
    return;
  }
  const auto* in = static_cast<const TI*>(src);
  constexpr int64_t line = 64 / sizeof(TO);  // pixels between two pixels starting a line (CO odd)
  static_assert(CO % 2 == 1 && kRunGrain % line == 0, "chunks keep the line phase");
  const int64_t n = s.n * s.h * s.w, phase = (line - h) % line;
  // chunks at multiples of kRunGrain from 0, the line phase's origin (parallel_for's chunks
  // start at begin + c grain), the first one cut at phase
  parallel_for(0, phase + n, kRunGrain, [&](int64_t lo, int64_t hi) {
    lo = std::max(lo, phase);
    if (lo >= hi) return;
    const TI* i = in + CI * (lo - phase);
    TO* o = out + CO * (lo - phase);
    for (int64_t x = rowk(i, o, hi - lo); x < hi - lo; ++x) f(i + CI * x, o + CO * x);
    stream_fence();
  });
}
#endif

// Calls fn(T{}) with the C++ type of dtype (the four image dtypes).
template <typename Fn>
void visit_dtype(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::u8: fn(uint8_t{}); return;
    case DType::u16: fn(uint16_t{}); return;
    case DType::f32: fn(float{}); return;
    case DType::f64: fn(double{}); return;
    default: throw std::invalid_argument("color: unsupported dtype");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
