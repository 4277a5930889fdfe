// rgb_to_hsv, hsv_to_rgb (compiled per ISA).
//
// uint8: OpenCV's convention (H in [0, 180), S, V in [0, 255]); the forward conversion is
// cv2's fixed-point algorithm with its two 256-entry division tables (built once from the
// same integer functions the CUDA kernel evaluates, so both devices agree bit for bit), the
// inverse exact rationals rounded half up. Floats: skimage.color.rgb2hsv / hsv2rgb in the
// image's type (H, S, V in [0, 1]). Per pixel: 6 elements moved, ~10 integer ops (uint8) or
// 2 divisions (floats).
#include <cstring>

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
#if defined(__SSE4_1__)
// color::rgb_to_hsv_u8 in native int32 lanes (Row3U8: 16 pixels per step). The two division
// tables are evaluated in float: rint(N / d) with N < 2^23 is exact in float32 (the quotient's
// distance from a half-integer, >= 1/(2d), exceeds half an ulp, and exact ties are
// representable), so the lanes reproduce hsv_sdiv / hsv_hdiv bit for bit. Round to
// nearest-even by the 1.5 * 2^23 trick (exact for 0 <= q < 2^22).
struct RgbToHsvLanes {
  IMKERN_ALWAYS_INLINE void lanes(vi r, vi g, vi b, vi& h, vi& s, vi& v) const {
    const vf magic = vf{} + 12582912.0f;
    auto table = [&](vi d, float num) IMKERN_ALWAYS_INLINE {
      const vf q = (vf{} + num) / __builtin_convertvector(d, vf);
      const vi t = __builtin_convertvector((q + magic) - magic, vi);
      return d == 0 ? vi{} : t;  // d == 0: 0 (the quotient is inf there)
    };
    v = r > g ? r : g;
    v = v > b ? v : b;
    vi mn = r < g ? r : g;
    mn = mn < b ? mn : b;
    const vi diff = v - mn;
    s = (diff * table(v, float(255 << 12)) + (1 << 11)) >> 12;
    h = v == r ? g - b : (v == g ? b - r + 2 * diff : r - g + 4 * diff);
    h = (h * table(diff, float(180 << 12) / 6.0f) + (1 << 11)) >> 12;
    h = h < 0 ? h + 180 : h;
  }
};
#endif

#if defined(__SSE4_1__)
// color::hsv_to_rgb_u8 in native int32 lanes. Its three quotients n / 510 and n / 15300 (n < 2^22) are
// taken in float: n is exact, the quotient correctly rounded, and an exact quotient is at
// least 1/15300 below the next integer, far more than half an ulp (< 2^-16 at 256), so the
// float quotient truncates to the same integer.
struct HsvToRgbLanes {
  void lanes(vi h, vi s, vi v, vi& r, vi& g, vi& b) const {
    h = h - 180 * __builtin_convertvector(__builtin_convertvector(h, vf) / 180.0f, vi);  // h %= 180
    const vi sector = __builtin_convertvector(__builtin_convertvector(h, vf) / 30.0f, vi);
    const vi f = h - 30 * sector;
    auto quot = [](vi n, float dd) { return __builtin_convertvector(__builtin_convertvector(n, vf) / dd, vi); };
    const vi p = quot(2 * v * (255 - s) + 255, 510.0f);
    const vi q = quot(2 * v * (7650 - s * f) + 7650, 15300.0f);
    const vi t = quot(2 * v * (7650 - s * (30 - f)) + 7650, 15300.0f);
    r = ((sector == 0) | (sector == 5)) ? v : (sector == 1 ? q : (sector == 4 ? t : p));
    g = ((sector == 1) | (sector == 2)) ? v : (sector == 0 ? t : (sector == 3 ? q : p));
    b = ((sector == 3) | (sector == 4)) ? v : (sector == 2 ? t : (sector == 5 ? q : p));
  }
};
#endif

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
#if defined(__SSE4_1__)
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv}, Row3U8<RgbToHsvLanes>{});
#else
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv});
#endif
      } else {
#if defined(__SSE4_1__)
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{}, Row3U8<HsvToRgbLanes>{});
#else
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{});
#endif
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
