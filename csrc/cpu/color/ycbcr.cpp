// rgb_to_ycbcr, ycbcr_to_rgb: BT.601 full range as JPEG / JFIF (compiled per ISA).
//
// uint8/uint16: Q16 fixed point, chroma offset 128 / 32768 (identical on CPU and CUDA);
// floats: the exact JPEG matrix in the image's type, chroma offset 0.5. Per pixel: 6 elements
// moved, 9 multiply-adds.
#include "color/pixel_map.hpp"

// The native lane vectors never cross a function boundary that is not inlined.
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {

namespace {
#if defined(__SSE4_1__)
// The Q16 formulas of color::RgbToYcbcr / YcbcrToRgb in int32 lanes (|sums| < 2^25).
struct RgbToYcbcrLanes {
  void lanes(vi r, vi g, vi b, vi& y, vi& cb, vi& cr) const {
    y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    cb = ((128 << 16) - 11058 * r - 21710 * g + 32768 * b + 32768) >> 16;
    cr = ((128 << 16) + 32768 * r - 27439 * g - 5329 * b + 32768) >> 16;
  }
};
struct YcbcrToRgbLanes {
  void lanes(vi y, vi cb, vi cr, vi& r, vi& g, vi& b) const {
    const vi ys = y << 16, u = cb - 128, v = cr - 128;
    r = (ys + 91881 * v + 32768) >> 16;
    g = (ys - 22554 * u - 46802 * v + 32768) >> 16;
    b = (ys + 116130 * u + 32768) >> 16;
  }
};
#endif
}  // namespace

void color_ycbcr(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
#if defined(__SSE4_1__)
  if (dtype == DType::u8) {
    if (op == ColorOp::rgb_to_ycbcr)
      map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, color::RgbToYcbcr<uint8_t>{}, Row3U8<RgbToYcbcrLanes>{});
    else
      map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, color::YcbcrToRgb<uint8_t>{}, Row3U8<YcbcrToRgbLanes>{});
    return;
  }
#endif
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::rgb_to_ycbcr) map_pixels<T, T, 3, 3>(src, s, dst, d, color::RgbToYcbcr<T>{});
    else map_pixels<T, T, 3, 3>(src, s, dst, d, color::YcbcrToRgb<T>{});
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
