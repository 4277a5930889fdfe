// rgb_to_ycbcr, ycbcr_to_rgb: BT.601 full range as JPEG / JFIF (compiled per ISA).
//
// uint8/uint16: Q16 fixed point, chroma offset 128 / 32768 (identical on CPU and CUDA);
// floats: the exact JPEG matrix in the image's type, chroma offset 0.5. Per pixel: 6 elements
// moved, 9 multiply-adds.
#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

void color_ycbcr(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::rgb_to_ycbcr) map_pixels<T, T, 3, 3>(src, s, dst, d, color::RgbToYcbcr<T>{});
    else map_pixels<T, T, 3, 3>(src, s, dst, d, color::YcbcrToRgb<T>{});
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
