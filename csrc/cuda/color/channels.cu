// rgb_to_bgr / bgr_to_rgb and rgba_to_rgb (drop or blend) on CUDA: the functors of
// imkern/color_pixel.hpp (exact integer blend), one thread per pixel.
#include "color/pixel_map.cuh"

namespace imkern {
namespace cuda {

void color_channels_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst,
                         const ImageDesc& d, const ColorParams& p, void* stream) {
  colork::visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::swap_rb) {
      if (s.c == 3) colork::map_pixels<T, 3, 3>(src, s, dst, d, color::SwapRB<T, 3>{}, stream);
      else colork::map_pixels<T, 4, 4>(src, s, dst, d, color::SwapRB<T, 4>{}, stream);
    } else if (!p.blend) {
      colork::map_pixels<T, 4, 3>(src, s, dst, d, color::DropAlpha<T>{}, stream);
    } else {
      color::BlendAlpha<T> f;
      for (int c = 0; c < 3; ++c) f.bg[c] = static_cast<T>(p.bg[c]);
      colork::map_pixels<T, 4, 3>(src, s, dst, d, f, stream);
    }
  });
}

}  // namespace cuda
}  // namespace imkern
