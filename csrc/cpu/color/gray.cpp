// rgb_to_gray, bgr_to_gray, gray_to_rgb (compiled per ISA).
//
// Gray: Y = 0.299 R + 0.587 G + 0.114 B; uint8/uint16 in OpenCV's Q15 fixed point (equal to
// cv2.cvtColor bit for bit), floats in the image's type. Per pixel: C_in + 1 elements moved,
// 3 multiply-adds. gray_to_rgb replicates the one channel. Variants: C_in 3 or 4 per dtype.
#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

void color_gray(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::gray_to_rgb) {
      map_pixels<T, T, 1, 3>(src, s, dst, d, color::GrayToRgb<T>{});
      return;
    }
    const bool bgr = op == ColorOp::bgr_to_gray;
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
