// rgb_to_lab, lab_to_rgb: CIE L*a*b*, D65 (compiled per ISA).
//
// Floats: skimage.color.rgb2lab / lab2rgb in the image's type (pow, cbrt). uint8: OpenCV's
// encoding, integer arithmetic from the tables of imkern/color_pixel.hpp (built once here,
// copied to constant memory by the CUDA launcher), so both devices agree bit for bit.
// Per pixel: 6 elements moved; uint8 ~40 integer ops and 3 interpolated table reads (forward)
// or 3 binary searches of 8 steps (inverse).
#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
const color::LabTables& lab_tables() {
  static const color::LabTables t = [] {
    color::LabTables v;
    color::fill_lab_tables(v);
    return v;
  }();
  return t;
}
struct RgbToLabU8 {
  const color::LabTables* t;
  void operator()(const uint8_t* in, uint8_t* out) const { color::rgb_to_lab_u8(*t, in[0], in[1], in[2], out); }
};
struct LabToRgbU8 {
  const color::LabTables* t;
  void operator()(const uint8_t* in, uint8_t* out) const { color::lab_to_rgb_u8(*t, in[0], in[1], in[2], out); }
};
template <typename T>
struct RgbToLabF {
  void operator()(const T* in, T* out) const { color::rgb_to_lab_float<T>(in[0], in[1], in[2], out); }
};
template <typename T>
struct LabToRgbF {
  void operator()(const T* in, T* out) const { color::lab_to_rgb_float<T>(in[0], in[1], in[2], out); }
};
}  // namespace

void color_lab(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  const bool fwd = op == ColorOp::rgb_to_lab;
  switch (dtype) {
    case DType::u8:
      if (fwd) map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{&lab_tables()});
      else map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, LabToRgbU8{&lab_tables()});
      return;
    case DType::f32:
      if (fwd) map_pixels<float, float, 3, 3>(src, s, dst, d, RgbToLabF<float>{});
      else map_pixels<float, float, 3, 3>(src, s, dst, d, LabToRgbF<float>{});
      return;
    case DType::f64:
      if (fwd) map_pixels<double, double, 3, 3>(src, s, dst, d, RgbToLabF<double>{});
      else map_pixels<double, double, 3, 3>(src, s, dst, d, LabToRgbF<double>{});
      return;
    default: throw std::invalid_argument("lab: expected uint8, float32 or float64");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
