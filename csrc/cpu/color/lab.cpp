// rgb_to_lab, lab_to_rgb: CIE L*a*b*, D65 (compiled per ISA).
//
// Floats: skimage.color.rgb2lab / lab2rgb in the image's type (pow, cbrt). uint8: OpenCV's 8-bit
// integer algorithm (color::rgb_to_lab_u8 / lab_to_rgb_u8 of imkern/color_pixel.hpp, tables of
// imkern/color_lab_tables.hpp), equal to cv2.cvtColor bit for bit and to the CUDA kernels.
// uint8 per pixel: 6 bytes moved; forward 6 table reads (3 sRGB -> linear, 3 cube roots) and
// ~25 integer ops; inverse 4 table reads (L -> y, f(y); 3 linear -> sRGB) and ~40 integer ops.
// The SIMD rows do the same integer arithmetic in native int32 lanes, with hardware gathers
// for the table reads on AVX2 / AVX-512 (the tables total ~15 KiB and stay in L1).
#include "color/pixel_map.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
const color::Lab8Tables& T8 = color::kLab8;

struct RgbToLabU8 {
  void operator()(const uint8_t* in, uint8_t* out) const { color::rgb_to_lab_u8(T8, in[0], in[1], in[2], out); }
};
struct LabToRgbU8 {
  void operator()(const uint8_t* in, uint8_t* out) const { color::lab_to_rgb_u8(T8, in[0], in[1], in[2], out); }
};

#if defined(__SSE4_1__)
// color::rgb_to_lab_u8 per lane (all sums < 2^25; the shifts of negative a, b are arithmetic,
// as in the scalar code). Saturation to [0, 255] happens in Row3U8's narrowing.
struct RgbToLabLanes {
  IMKERN_ALWAYS_INLINE void lanes(vi r, vi g, vi b, vi& L, vi& A, vi& B) const {
    const int32_t* m = T8.rgb_to_xyz;
    const vi R = gather_u16(T8.gamma, r), G = gather_u16(T8.gamma, g), Bl = gather_u16(T8.gamma, b);
    const vi fx = gather_u16(T8.cbrt, (m[0] * R + m[1] * G + m[2] * Bl + (1 << 11)) >> 12);
    const vi fy = gather_u16(T8.cbrt, (m[3] * R + m[4] * G + m[5] * Bl + (1 << 11)) >> 12);
    const vi fz = gather_u16(T8.cbrt, (m[6] * R + m[7] * G + m[8] * Bl + (1 << 11)) >> 12);
    L = (296 * fy + (-1336934 + (1 << 14))) >> 15;
    A = (500 * (fx - fy) + ((128 << 15) + (1 << 14))) >> 15;
    B = (200 * (fy - fz) + ((128 << 15) + (1 << 14))) >> 15;
  }
};

// color::lab8_f_inv per lane. The truncating i * 108 / 841 of the low branch is taken in float:
// |i * 108| < 2^24 is exact, and a quotient that is not an integer lies at least 1/841 from
// one, far more than its rounding error (< 2^-13 below 1100), so truncation gives C's result.
IMKERN_ALWAYS_INLINE inline vi lab8_f_inv(vi i) {
  const vi lo = __builtin_convertvector(__builtin_convertvector(i * 108, vf) / 841.0f, vi) - 290;
  const vi hi = (((i * i) >> 14) * i) >> 14;
  return i <= 3390 ? lo : hi;
}

// color::lab_to_rgb_u8 per lane (products below 2^31: |x|, |z| <= 72254, |matrix| < 2^14).
struct LabToRgbLanes {
  IMKERN_ALWAYS_INLINE void lanes(vi l, vi a, vi b, vi& R, vi& G, vi& B) const {
    const vi yf = gather_u32(T8.l_to_y_fy, l);
    const vi y = yf & 0xFFFF, fy = reinterpret_cast<vi>(reinterpret_cast<simd::vec_t<uint32_t>>(yf) >> 16);
    const vi x = lab8_f_inv(fy + ((5 * 53687 * a + (1 << 7)) >> 13) - 4194);
    const vi z = lab8_f_inv(fy - ((41943 * b + (1 << 4)) >> 9) + 10484);
    const int32_t* m = T8.xyz_to_rgb;
    auto channel = [&](int c) IMKERN_ALWAYS_INLINE {
      vi v = (m[3 * c] * x + m[3 * c + 1] * y + m[3 * c + 2] * z + (1 << 13)) >> 14;
      v = v < 0 ? vi{} : v;
      v = v > 4095 ? vi{} + 4095 : v;
      return gather_u16(T8.inv_gamma, v);
    };
    R = channel(0);
    G = channel(1);
    B = channel(2);
  }
};
#endif

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
#if defined(__SSE4_1__)
      if (fwd) map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{}, Row3U8<RgbToLabLanes>{});
      else map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, LabToRgbU8{}, Row3U8<LabToRgbLanes>{});
#else
      if (fwd) map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToLabU8{});
      else map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, LabToRgbU8{});
#endif
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
