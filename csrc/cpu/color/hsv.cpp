// rgb_to_hsv, hsv_to_rgb (compiled per ISA).
//
// uint8: OpenCV's convention (H in [0, 180), S, V in [0, 255]); the forward conversion is
// cv2's fixed-point algorithm with its two 256-entry division tables (built once from the
// same integer functions the CUDA kernel evaluates, so both devices agree bit for bit), the
// inverse exact rationals rounded half up. Floats: skimage.color.rgb2hsv / hsv2rgb in the
// image's type (H, S, V in [0, 1]). Per pixel: 6 elements moved, ~10 integer ops (uint8) or
// 2 divisions (floats).
#include <cstring>

// The 64-byte lane vectors below never cross a function boundary that is not inlined.
#pragma GCC diagnostic ignored "-Wpsabi"

#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
struct HsvTables {
  int32_t sdiv[256], hdiv[256];
  HsvTables() {
    for (int i = 0; i < 256; ++i) {
      sdiv[i] = color::hsv_sdiv(i);
      hdiv[i] = color::hsv_hdiv(i);
    }
  }
};
const HsvTables& hsv_tables() {
  static const HsvTables t;
  return t;
}

struct RgbToHsvU8 {
  const int32_t* sdiv;
  const int32_t* hdiv;
  void operator()(const uint8_t* in, uint8_t* out) const {
    const int32_t r = in[0], g = in[1], b = in[2];
    int32_t v = r > g ? r : g;
    v = v > b ? v : b;
    int32_t mn = r < g ? r : g;
    mn = mn < b ? mn : b;
    color::rgb_to_hsv_u8(r, g, b, sdiv[v], hdiv[v - mn], out);
  }
};
// 16 pixels per step in 16 int32 lanes (GCC vector extensions: one zmm, two ymm or four xmm).
// The two division tables are evaluated in float: rint(N / d) with N < 2^23 is exact in
// float32 (the quotient's distance from a half-integer, >= 1/(2d), exceeds half an ulp, and
// exact ties are representable), so the lanes reproduce hsv_sdiv / hsv_hdiv bit for bit. Round
// to nearest-even by the 1.5 * 2^23 trick (exact for 0 <= q < 2^22).
struct RgbToHsvRowU8 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    int64_t x = 0;
#if defined(__SSE4_1__)
    typedef int32_t vi __attribute__((vector_size(64)));
    typedef float vf __attribute__((vector_size(64)));
    const vf magic = vf{} + 12582912.0f;
    // Widening / narrowing without a trip through memory (a 64-byte load of four 16-byte
    // stores misses store forwarding).
    auto widen = [](__m128i b) {
#if defined(__AVX512F__)
      return reinterpret_cast<vi>(_mm512_cvtepu8_epi32(b));
#else
      union { vi v; __m128i q[4]; } u;
      u.q[0] = _mm_cvtepu8_epi32(b);
      u.q[1] = _mm_cvtepu8_epi32(_mm_srli_si128(b, 4));
      u.q[2] = _mm_cvtepu8_epi32(_mm_srli_si128(b, 8));
      u.q[3] = _mm_cvtepu8_epi32(_mm_srli_si128(b, 12));
      return u.v;
#endif
    };
    auto narrow = [](vi v) {  // lanes in [0, 255]
#if defined(__AVX512F__)
      return _mm512_cvtepi32_epi8(reinterpret_cast<__m512i>(v));
#else
      union { vi v; __m128i q[4]; } u;
      u.v = v;
      return _mm_packus_epi16(_mm_packs_epi32(u.q[0], u.q[1]), _mm_packs_epi32(u.q[2], u.q[3]));
#endif
    };
    auto table = [&](vi d, float num) {
      const vf q = (vf{} + num) / __builtin_convertvector(d, vf);
      const vi t = __builtin_convertvector((q + magic) - magic, vi);
      return d == 0 ? vi{} : t;  // d == 0: 0 (the quotient is inf there)
    };
    for (; x + 16 <= w; x += 16) {
      __m128i rb, gb, bb;
      deinterleave3_u8(in + 3 * x, rb, gb, bb);
      const vi r = widen(rb), g = widen(gb), b = widen(bb);
      vi v = r > g ? r : g;
      v = v > b ? v : b;
      vi mn = r < g ? r : g;
      mn = mn < b ? mn : b;
      const vi diff = v - mn;
      const vi s = (diff * table(v, float(255 << 12)) + (1 << 11)) >> 12;
      vi h = v == r ? g - b : (v == g ? b - r + 2 * diff : r - g + 4 * diff);
      h = (h * table(diff, float(180 << 12) / 6.0f) + (1 << 11)) >> 12;
      h = h < 0 ? h + 180 : h;
      interleave3_u8(narrow(h), narrow(s), narrow(v), out + 3 * x);
    }
#endif
    return x;
  }
};

struct HsvToRgbU8 {
  void operator()(const uint8_t* in, uint8_t* out) const { color::hsv_to_rgb_u8(in[0], in[1], in[2], out); }
};
template <typename T>
struct RgbToHsvF {
  void operator()(const T* in, T* out) const { color::rgb_to_hsv_float<T>(in[0], in[1], in[2], out); }
};
template <typename T>
struct HsvToRgbF {
  void operator()(const T* in, T* out) const { color::hsv_to_rgb_float<T>(in[0], in[1], in[2], out); }
};
}  // namespace

void color_hsv(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  const bool fwd = op == ColorOp::rgb_to_hsv;
  switch (dtype) {
    case DType::u8: {
      if (fwd) {
        const HsvTables& t = hsv_tables();
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv}, RgbToHsvRowU8{});
      } else {
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{});
      }
      return;
    }
    case DType::f32:
      if (fwd) map_pixels<float, float, 3, 3>(src, s, dst, d, RgbToHsvF<float>{});
      else map_pixels<float, float, 3, 3>(src, s, dst, d, HsvToRgbF<float>{});
      return;
    case DType::f64:
      if (fwd) map_pixels<double, double, 3, 3>(src, s, dst, d, RgbToHsvF<double>{});
      else map_pixels<double, double, 3, 3>(src, s, dst, d, HsvToRgbF<double>{});
      return;
    default: throw std::invalid_argument("hsv: expected uint8, float32 or float64");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
