// rgb_to_hsv, hsv_to_rgb on CUDA. uint8: OpenCV's fixed-point algorithm with the division
// tables computed per pixel by the same integer functions the CPU uses to build its tables
// (hsv_sdiv / hsv_hdiv), so both devices agree bit for bit; floats as skimage.
#include "color/pixel_map.cuh"

namespace imkern {
namespace cuda {

namespace {
struct RgbToHsvU8 {
  __device__ void operator()(const uint8_t* in, uint8_t* out) const {
    const int32_t r = in[0], g = in[1], b = in[2];
    const int32_t v = max(max(r, g), b), mn = min(min(r, g), b);
    color::rgb_to_hsv_u8(r, g, b, color::hsv_sdiv(v), color::hsv_hdiv(v - mn), out);
  }
};
struct HsvToRgbU8 {
  __device__ void operator()(const uint8_t* in, uint8_t* out) const { color::hsv_to_rgb_u8(in[0], in[1], in[2], out); }
};
template <typename T>
struct RgbToHsvF {
  __device__ void operator()(const T* in, T* out) const { color::rgb_to_hsv_float<T>(in[0], in[1], in[2], out); }
};
template <typename T>
struct HsvToRgbF {
  __device__ void operator()(const T* in, T* out) const { color::hsv_to_rgb_float<T>(in[0], in[1], in[2], out); }
};
}  // namespace

void color_hsv_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    void* stream) {
  const bool fwd = op == ColorOp::rgb_to_hsv;
  switch (dtype) {
    case DType::u8:
      if (fwd) colork::map_pixels<uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{}, stream);
      else colork::map_pixels<uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{}, stream);
      return;
    case DType::f32:
      if (fwd) colork::map_pixels<float, 3, 3>(src, s, dst, d, RgbToHsvF<float>{}, stream);
      else colork::map_pixels<float, 3, 3>(src, s, dst, d, HsvToRgbF<float>{}, stream);
      return;
    case DType::f64:
      if (fwd) colork::map_pixels<double, 3, 3>(src, s, dst, d, RgbToHsvF<double>{}, stream);
      else colork::map_pixels<double, 3, 3>(src, s, dst, d, HsvToRgbF<double>{}, stream);
      return;
    default: throw std::invalid_argument("hsv: expected uint8, float32 or float64");
  }
}

}  // namespace cuda
}  // namespace imkern
