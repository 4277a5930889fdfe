// rgb_to_lab, lab_to_rgb on CUDA. uint8: OpenCV's integer algorithm, the functions of
// imkern/color_pixel.hpp with the generated tables of imkern/color_lab_tables.hpp (the ones the
// CPU reads) copied to constant memory on the caller's stream before the launch: both devices
// agree bit for bit.
// Floats as skimage (device pow / cbrt). One thread per pixel.

#include "color/pixel_map.cuh"

namespace imkern {
namespace cuda {

namespace {
__constant__ color::Lab8Tables c_lab;

struct RgbToLabU8 {
  __device__ void operator()(const uint8_t* in, uint8_t* out) const {
    color::rgb_to_lab_u8(c_lab, in[0], in[1], in[2], out);
  }
};
struct LabToRgbU8 {
  __device__ void operator()(const uint8_t* in, uint8_t* out) const {
    color::lab_to_rgb_u8(c_lab, in[0], in[1], in[2], out);
  }
};
template <typename T>
struct RgbToLabF {
  __device__ void operator()(const T* in, T* out) const { color::rgb_to_lab_float<T>(in[0], in[1], in[2], out); }
};
template <typename T>
struct LabToRgbF {
  __device__ void operator()(const T* in, T* out) const { color::lab_to_rgb_float<T>(in[0], in[1], in[2], out); }
};
}  // namespace

void color_lab_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    void* stream) {
  const bool fwd = op == ColorOp::rgb_to_lab;
  if (s.n * s.h * s.w == 0) return;
  switch (dtype) {
    case DType::u8:
      // The tables are constant for the process; every launch (re)writes the same bytes, in
      // stream order, so no launch can read a partly written table.
      IMKERN_CUDA_CHECK(cudaMemcpyToSymbolAsync(c_lab, &color::kLab8, sizeof(color::Lab8Tables), 0,
                                                cudaMemcpyHostToDevice, as_stream(stream)));
      if (fwd) colork::map_pixels<uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{}, stream);
      else colork::map_pixels<uint8_t, 3, 3>(src, s, dst, d, LabToRgbU8{}, stream);
      return;
    case DType::f32:
      if (fwd) colork::map_pixels<float, 3, 3>(src, s, dst, d, RgbToLabF<float>{}, stream);
      else colork::map_pixels<float, 3, 3>(src, s, dst, d, LabToRgbF<float>{}, stream);
      return;
    case DType::f64:
      if (fwd) colork::map_pixels<double, 3, 3>(src, s, dst, d, RgbToLabF<double>{}, stream);
      else colork::map_pixels<double, 3, 3>(src, s, dst, d, LabToRgbF<double>{}, stream);
      return;
    default: throw std::invalid_argument("lab: expected uint8, float32 or float64");
  }
}

}  // namespace cuda
}  // namespace imkern
