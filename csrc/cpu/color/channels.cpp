// rgb_to_bgr / bgr_to_rgb (swap the first and third channels, alpha kept) and rgba_to_rgb
// (alpha dropped, or blended onto a background color) (compiled per ISA).
//
// Pure data movement except the blend: out = (rgb a + bg (M - a)) / M, exact integer
// rounding for uint8/uint16 (M = 255 / 65535), so CPU and CUDA agree bit for bit.
// Per pixel: C_in + C_out elements moved.
#include <cmath>
#include <type_traits>

#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

void color_channels(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const ColorParams& p) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::swap_rb) {
#if defined(__SSE4_1__)
      if constexpr (sizeof(T) <= 2 && std::is_integral<T>::value) {
        static const bool vbmi = cpu_has(CpuFeature::avx512vbmi);
        if (s.c == 3) map_pixels<T, T, 3, 3>(src, s, dst, d, color::SwapRB<T, 3>{}, SwapRowInt<T, 3>{vbmi});
        else map_pixels<T, T, 4, 4>(src, s, dst, d, color::SwapRB<T, 4>{}, SwapRowInt<T, 4>{});
        return;
      }
#endif
      if (s.c == 3) map_pixels<T, T, 3, 3>(src, s, dst, d, color::SwapRB<T, 3>{});
      else map_pixels<T, T, 4, 4>(src, s, dst, d, color::SwapRB<T, 4>{});
    } else if (!p.blend) {
#if defined(__SSE4_1__)
      if constexpr (sizeof(T) <= 2 && std::is_integral<T>::value) {
        static const bool vbmi = cpu_has(CpuFeature::avx512vbmi);
        map_pixels<T, T, 4, 3>(src, s, dst, d, color::DropAlpha<T>{}, DropAlphaRowInt<T>{vbmi});
        return;
      }
#endif
      map_pixels<T, T, 4, 3>(src, s, dst, d, color::DropAlpha<T>{});
    } else {
      color::BlendAlpha<T> f;
      for (int c = 0; c < 3; ++c) f.bg[c] = static_cast<T>(p.bg[c]);
      map_pixels<T, T, 4, 3>(src, s, dst, d, f);
    }
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
