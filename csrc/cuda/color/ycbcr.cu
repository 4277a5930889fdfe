// rgb_to_ycbcr, ycbcr_to_rgb (JPEG full range) on CUDA: the functors of
// imkern/color_pixel.hpp (Q16 fixed point for integers), one thread per pixel.
#include "color/pixel_map.cuh"

namespace imkern {
namespace cuda {

void color_ycbcr_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      void* stream) {
  colork::visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::rgb_to_ycbcr) colork::map_pixels<T, 3, 3>(src, s, dst, d, color::RgbToYcbcr<T>{}, stream);
    else colork::map_pixels<T, 3, 3>(src, s, dst, d, color::YcbcrToRgb<T>{}, stream);
  });
}

}  // namespace cuda
}  // namespace imkern
