// The CPU driver of every color conversion (compiled per ISA): rows of the batch split over
// the thread pool, each row a loop over pixels calling one functor of imkern/color_pixel.hpp
// with compile-time channel counts, so the compiler vectorizes the channel (de)interleave.
#pragma once
#include <cstdint>

#include "imkern/color.hpp"
#include "imkern/color_pixel.hpp"
#include "imkern/parallel.hpp"
#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

namespace imkern {
namespace IMKERN_ISA {

// No vectorized row prefix: the functor does every pixel.
struct NoRowKernel {
  template <typename TI, typename TO>
  int64_t operator()(const TI*, TO*, int64_t) const { return 0; }
};

// f maps one pixel; rowk(in, out, w) may convert a prefix of the row with SIMD and returns how
// many pixels it did (the functor finishes the row, so both must compute the same bits).
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
  });
}

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
