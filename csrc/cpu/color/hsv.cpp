// rgb_to_hsv, hsv_to_rgb (compiled per ISA).
//
// uint8: OpenCV's convention (H in [0, 180), S, V in [0, 255]); the forward conversion is
// cv2's fixed-point algorithm with its two 256-entry division tables (built once from the
// same integer functions the CUDA kernel evaluates, so both devices agree bit for bit), the
// inverse exact rationals rounded half up. Floats: skimage.color.rgb2hsv / hsv2rgb in the
// image's type (H, S, V in [0, 1]). Per pixel: 6 elements moved, ~10 integer ops (uint8) or
// 2 divisions (floats).
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
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv});
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
