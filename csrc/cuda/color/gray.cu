// rgb_to_gray, bgr_to_gray, gray_to_rgb on CUDA: the per-pixel formulas of
// imkern/color_pixel.hpp (OpenCV's Q15 fixed point for integers), one thread per pixel.
// Per pixel: C_in + C_out elements moved, 3 multiply-adds. Variants: C_in 3/4 per dtype.
#include "color/pixel_map.cuh"

namespace imkern {
namespace cuda {

void color_gray_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                     void* stream) {
  colork::visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::gray_to_rgb) {
      colork::map_pixels<T, 1, 3>(src, s, dst, d, color::GrayToRgb<T>{}, stream);
      return;
    }
    const bool bgr = op == ColorOp::bgr_to_gray;
    if (s.c == 3) {
      if (bgr) colork::map_pixels<T, 3, 1>(src, s, dst, d, color::ToGray<T, true>{}, stream);
      else colork::map_pixels<T, 3, 1>(src, s, dst, d, color::ToGray<T, false>{}, stream);
    } else {
      if (bgr) colork::map_pixels<T, 4, 1>(src, s, dst, d, color::ToGray<T, true>{}, stream);
      else colork::map_pixels<T, 4, 1>(src, s, dst, d, color::ToGray<T, false>{}, stream);
    }
  });
}

}  // namespace cuda
}  // namespace imkern
