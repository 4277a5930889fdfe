// rgb_to_gray, bgr_to_gray, gray_to_rgb (compiled per ISA).
//
// Gray: Y = 0.299 R + 0.587 G + 0.114 B; uint8/uint16 in OpenCV's Q15 fixed point (equal to
// cv2.cvtColor bit for bit), floats in the image's type. Per pixel: C_in + 1 elements moved,
// 3 multiply-adds. gray_to_rgb replicates the one channel. Variants: C_in 3 or 4 per dtype;
// vector rows for uint8 (GrayRowU8) and float / double (GrayRowF, 3 channels: planes, then
// the weights; outputs beyond the cache streamed, which at 1080p float32 RGB takes the single
// thread from ~0.95-1.0 to ~0.85-0.9 of cv2's time, memory-bound).
#include <type_traits>
#include <utility>

#include "color/pixel_map.hpp"
#include "imkern/cpu_params.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
// uint8 RGB/BGR -> gray, 16 pixels per step: de-interleave (pshufb), then the exact Q15 sums
// with pmaddwd on (R, G) and (B, 1) pairs: (9798 R + 19235 G) + (3735 B + 16384), >> 15.
template <bool BGR>
struct GrayRowU8 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    int64_t x = 0;
#if defined(__SSE4_1__)
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi16(1);
    const __m128i c_rg = _mm_set1_epi32((19235 << 16) | 9798);
    const __m128i c_b1 = _mm_set1_epi32((16384 << 16) | 3735);
#if defined(__AVX2__)
    {
      // The same in 256 bits: each 128-bit lane handles its own 16 pixels (pshufb, unpack and
      // pack work within lanes), so lane 0 takes pixels 0-15 and lane 1 pixels 16-31.
      const __m256i zero2 = _mm256_setzero_si256(), one2 = _mm256_set1_epi16(1);
      const __m256i c_rg2 = _mm256_set1_epi32((19235 << 16) | 9798);
      const __m256i c_b12 = _mm256_set1_epi32((16384 << 16) | 3735);
      const __m256i mr0 = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
      const __m256i mr1 = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1));
      const __m256i mr2 = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13));
      const __m256i mg0 = _mm256_broadcastsi128_si256(_mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
      const __m256i mg1 = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1));
      const __m256i mg2 = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14));
      const __m256i mb0 = _mm256_broadcastsi128_si256(_mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
      const __m256i mb1 = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1));
      const __m256i mb2 = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15));
      auto ld = [](const uint8_t* lo, const uint8_t* hi) {
        return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
      };
      for (; x + 32 <= w; x += 32) {
        const uint8_t* p = in + 3 * x;
        const __m256i a0 = ld(p, p + 48), a1 = ld(p + 16, p + 64), a2 = ld(p + 32, p + 80);
        __m256i r = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a0, mr0), _mm256_shuffle_epi8(a1, mr1)),
                                    _mm256_shuffle_epi8(a2, mr2));
        const __m256i g = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a0, mg0), _mm256_shuffle_epi8(a1, mg1)),
                                          _mm256_shuffle_epi8(a2, mg2));
        __m256i b = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a0, mb0), _mm256_shuffle_epi8(a1, mb1)),
                                    _mm256_shuffle_epi8(a2, mb2));
        if (BGR) std::swap(r, b);
        const __m256i rl = _mm256_unpacklo_epi8(r, zero2), rh = _mm256_unpackhi_epi8(r, zero2);
        const __m256i gl = _mm256_unpacklo_epi8(g, zero2), gh = _mm256_unpackhi_epi8(g, zero2);
        const __m256i bl = _mm256_unpacklo_epi8(b, zero2), bh = _mm256_unpackhi_epi8(b, zero2);
        auto sum = [&](__m256i rg, __m256i b1) {
          return _mm256_srli_epi32(_mm256_add_epi32(_mm256_madd_epi16(rg, c_rg2), _mm256_madd_epi16(b1, c_b12)), 15);
        };
        const __m256i y0 = sum(_mm256_unpacklo_epi16(rl, gl), _mm256_unpacklo_epi16(bl, one2));
        const __m256i y1 = sum(_mm256_unpackhi_epi16(rl, gl), _mm256_unpackhi_epi16(bl, one2));
        const __m256i y2 = sum(_mm256_unpacklo_epi16(rh, gh), _mm256_unpacklo_epi16(bh, one2));
        const __m256i y3 = sum(_mm256_unpackhi_epi16(rh, gh), _mm256_unpackhi_epi16(bh, one2));
        const __m256i y = _mm256_packus_epi16(_mm256_packs_epi32(y0, y1), _mm256_packs_epi32(y2, y3));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + x), y);
      }
    }
#endif
    for (; x + 16 <= w; x += 16) {
      __m128i r, g, b;
      deinterleave3_u8(in + 3 * x, r, g, b);
      if (BGR) std::swap(r, b);
      const __m128i rl = _mm_unpacklo_epi8(r, zero), rh = _mm_unpackhi_epi8(r, zero);
      const __m128i gl = _mm_unpacklo_epi8(g, zero), gh = _mm_unpackhi_epi8(g, zero);
      const __m128i bl = _mm_unpacklo_epi8(b, zero), bh = _mm_unpackhi_epi8(b, zero);
      auto sum = [&](__m128i rg, __m128i b1) {
        return _mm_srli_epi32(_mm_add_epi32(_mm_madd_epi16(rg, c_rg), _mm_madd_epi16(b1, c_b1)), 15);
      };
      const __m128i y0 = sum(_mm_unpacklo_epi16(rl, gl), _mm_unpacklo_epi16(bl, one));
      const __m128i y1 = sum(_mm_unpackhi_epi16(rl, gl), _mm_unpackhi_epi16(bl, one));
      const __m128i y2 = sum(_mm_unpacklo_epi16(rh, gh), _mm_unpacklo_epi16(bh, one));
      const __m128i y3 = sum(_mm_unpackhi_epi16(rh, gh), _mm_unpackhi_epi16(bh, one));
      const __m128i y = _mm_packus_epi16(_mm_packs_epi32(y0, y1), _mm_packs_epi32(y2, y3));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), y);
    }
#endif
    return x;
  }
};

#if defined(__SSE4_1__)
// float / double RGB/BGR -> gray, L pixels per step: the planes (deinterleave3), then luma's
// expression. stream: outputs beyond the cache are written by non-temporal stores (as Row3F),
// the functor taking the row's first pixels up to the first aligned output vector.
template <typename T, bool BGR>
struct GrayRowF {
  bool stream = false;
  template <bool Stream>
  IMKERN_ALWAYS_INLINE int64_t blocks(const T* in, T* out, int64_t x, int64_t w) const {
    constexpr int L = simd::Vec<T>::lanes;
    for (; x + L <= w; x += L) {
      fv<T> c[3];
      deinterleave3(in + 3 * x, c);
      store_vec<Stream>(out + x, T(0.299) * c[BGR ? 2 : 0] + T(0.587) * c[1] + T(0.114) * c[BGR ? 0 : 2]);
    }
    return x;
  }
  int64_t operator()(const T* in, T* out, int64_t w) const {
#if defined(__AVX__)
    constexpr int L = simd::Vec<T>::lanes;
    constexpr uintptr_t A = sizeof(fv<T>);
    const uintptr_t o = reinterpret_cast<uintptr_t>(out);
    if (stream && o % sizeof(T) == 0) {
      const int64_t head = static_cast<int64_t>(((A - o % A) % A) / sizeof(T));
      if (head + L <= w) {
        for (int64_t x = 0; x < head; ++x) color::ToGray<T, BGR>{}(in + 3 * x, out + x);
        const int64_t x = blocks<true>(in, out, head, w);
        _mm_sfence();
        return x;
      }
    }
#endif
    return blocks<false>(in, out, 0, w);
  }
};
#endif
}  // namespace

void color_gray(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::gray_to_rgb) {
#if defined(__SSE4_1__)
      if constexpr (sizeof(T) == 1) {
        map_pixels<T, T, 1, 3>(src, s, dst, d, color::GrayToRgb<T>{}, GrayToRgbRowU8{});
        return;
      }
#endif
      map_pixels<T, T, 1, 3>(src, s, dst, d, color::GrayToRgb<T>{});
      return;
    }
    const bool bgr = op == ColorOp::bgr_to_gray;
    if constexpr (std::is_same<T, uint8_t>::value) {
      if (s.c == 3) {
        if (bgr) map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, true>{}, GrayRowU8<true>{});
        else map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, false>{}, GrayRowU8<false>{});
        return;
      }
    }
#if defined(__SSE4_1__)
    if constexpr (std::is_floating_point<T>::value) {
      if (s.c == 3) {
        // (input + output bytes beyond the cache: streamed, as hsv_float)
        const bool stream = d.n * d.h * d.w * 4 * int64_t(sizeof(T)) > params().stream_bytes;
        if (bgr) map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, true>{}, GrayRowF<T, true>{stream});
        else map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, false>{}, GrayRowF<T, false>{stream});
        return;
      }
    }
#endif
    if (s.c == 3) {
      if (bgr) map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, true>{});
      else map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, false>{});
    } else {
      if (bgr) map_pixels<T, T, 4, 1>(src, s, dst, d, color::ToGray<T, true>{});
      else map_pixels<T, T, 4, 1>(src, s, dst, d, color::ToGray<T, false>{});
    }
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
