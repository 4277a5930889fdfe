// Per-pixel color formulas, shared by the CPU kernels (csrc/cpu/color/) and the CUDA kernels
// (csrc/cuda/color/): host + device inline functors. Each functor maps one pixel, `in` with
// CI channels to `out` with CO channels. Integer dtypes use only integer arithmetic here, so
// both devices (and every CPU ISA) give the same bits; floats compute in the image's type.
//
//   luma (BT.601, OpenCV's fixed point, equal to cv2.cvtColor RGB2GRAY for uint8 and uint16):
//       Y = (9798 R + 19235 G + 3735 B + 2^14) >> 15       (0.299, 0.587, 0.114 in Q15)
//   HSV, uint8 (OpenCV: H in [0, 180), S, V in [0, 255]): cv2's own tables
//       sdiv[v] = rint(255 * 2^12 / v), hdiv[d] = rint(180 * 2^12 / (6 d)), computed here exactly
//       in integers (round half to even, as cvRound); the inverse by exact rationals rounded
//       half up. Floats as skimage.color.rgb2hsv / hsv2rgb (H, S, V in [0, 1]).
//   YCbCr (BT.601 full range, JPEG / JFIF): Q16 fixed point for integers, offset 2^(bits-1);
//       floats with offset 0.5.
//   L*a*b*, uint8: OpenCV's integer algorithm over generated tables (see the L*a*b* section).
#pragma once
#include <cmath>
#include <cstdint>

#include "imkern/color_lab_tables.hpp"
#include "imkern/common.hpp"

namespace imkern {
namespace color {

// ---- gray ------------------------------------------------------------------------------
IMKERN_HOST_DEVICE inline uint8_t luma(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>((r * 9798u + g * 19235u + b * 3735u + 16384u) >> 15);
}
IMKERN_HOST_DEVICE inline uint16_t luma(uint16_t r, uint16_t g, uint16_t b) {
  return static_cast<uint16_t>((r * 9798u + g * 19235u + b * 3735u + 16384u) >> 15);
}
IMKERN_HOST_DEVICE inline float luma(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }
IMKERN_HOST_DEVICE inline double luma(double r, double g, double b) { return 0.299 * r + 0.587 * g + 0.114 * b; }

template <typename T, bool BGR>
struct ToGray {
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    out[0] = luma(in[BGR ? 2 : 0], in[1], in[BGR ? 0 : 2]);
  }
};

template <typename T>
struct GrayToRgb {
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    const T v = in[0];
    out[0] = v;
    out[1] = v;
    out[2] = v;
  }
};

// ---- channel order and alpha ---------------------------------------------------------------
template <typename T, int C>
struct SwapRB {
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    const T r = in[0], g = in[1], b = in[2];
    out[0] = b;
    out[1] = g;
    out[2] = r;
    if (C == 4) out[3] = in[3];
  }
};

template <typename T>
struct DropAlpha {
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    const T r = in[0], g = in[1], b = in[2];
    out[0] = r;
    out[1] = g;
    out[2] = b;
  }
};

// out = (rgb * a + bg * (M - a)) / M, M the dtype's maximum (1 for floats); integers rounded
// to nearest (exact: M is odd, so no ties). bg is already in the image's range.
template <typename T>
struct BlendAlpha {
  T bg[3];
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    if constexpr (sizeof(T) <= 2 && T(-1) > T(0)) {
      constexpr uint64_t M = sizeof(T) == 1 ? 255u : 65535u;
      const uint64_t a = in[3];
      for (int c = 0; c < 3; ++c)
        out[c] = static_cast<T>((in[c] * a + bg[c] * (M - a) + M / 2) / M);
    } else {
      const T a = in[3];
      for (int c = 0; c < 3; ++c) out[c] = in[c] * a + bg[c] * (T(1) - a);
    }
  }
};

// ---- HSV -------------------------------------------------------------------------------------
// round(num / den) with ties to even (cvRound of the same quotient computed in double is exact
// here: num < 2^21, so the double quotient rounds the same way).
IMKERN_HOST_DEVICE inline int32_t div_round_even(int32_t num, int32_t den) {
  const int32_t q = num / den, r = num % den;
  if (2 * r > den || (2 * r == den && (q & 1))) return q + 1;
  return q;
}
IMKERN_HOST_DEVICE inline int32_t hsv_sdiv(int32_t v) { return v == 0 ? 0 : div_round_even(255 << 12, v); }
IMKERN_HOST_DEVICE inline int32_t hsv_hdiv(int32_t d) { return d == 0 ? 0 : div_round_even(180 << 12, 6 * d); }

// OpenCV's RGB2HSV_b: sdiv/hdiv are tables on the CPU and computed on the fly on CUDA (same
// values: both come from hsv_sdiv / hsv_hdiv).
IMKERN_HOST_DEVICE inline void rgb_to_hsv_u8(int32_t r, int32_t g, int32_t b, int32_t sdiv, int32_t hdiv,
                                             uint8_t* out) {
  int32_t v = r > g ? r : g;
  v = v > b ? v : b;
  int32_t mn = r < g ? r : g;
  mn = mn < b ? mn : b;
  const int32_t diff = v - mn;
  const int32_t s = (diff * sdiv + (1 << 11)) >> 12;
  int32_t h;
  if (v == r) h = g - b;
  else if (v == g) h = b - r + 2 * diff;
  else h = r - g + 4 * diff;
  h = (h * hdiv + (1 << 11)) >> 12;  // arithmetic shift: floor for negative h, as OpenCV
  if (h < 0) h += 180;
  out[0] = static_cast<uint8_t>(h);
  out[1] = static_cast<uint8_t>(s);
  out[2] = static_cast<uint8_t>(v);
}

// H in [0, 180) (taken mod 180), S, V in [0, 255]: the exact rationals of the HSV model,
// rounded half up. f = (H mod 30) / 30 within the sector H / 30.
IMKERN_HOST_DEVICE inline void hsv_to_rgb_u8(int32_t h, int32_t s, int32_t v, uint8_t* out) {
  h %= 180;
  const int32_t sector = h / 30, f = h % 30;
  const int32_t vv = v;
  const int32_t p = (2 * v * (255 - s) + 255) / 510;
  const int32_t q = (2 * v * (7650 - s * f) + 7650) / 15300;
  const int32_t t = (2 * v * (7650 - s * (30 - f)) + 7650) / 15300;
  int32_t r, g, b;
  switch (sector) {
    case 0: r = vv; g = t; b = p; break;
    case 1: r = q; g = vv; b = p; break;
    case 2: r = p; g = vv; b = t; break;
    case 3: r = p; g = q; b = vv; break;
    case 4: r = t; g = p; b = vv; break;
    default: r = vv; g = p; b = q; break;
  }
  out[0] = static_cast<uint8_t>(r);
  out[1] = static_cast<uint8_t>(g);
  out[2] = static_cast<uint8_t>(b);
}

// skimage.color.rgb2hsv: ties of the maximum go to blue, then green, then red (its order of
// assignment); H = 0 where max == min; S = 0 where V == 0.
template <typename T>
IMKERN_HOST_DEVICE inline void rgb_to_hsv_float(T r, T g, T b, T* out) {
  T v = r > g ? r : g;
  v = v > b ? v : b;
  T mn = r < g ? r : g;
  mn = mn < b ? mn : b;
  const T delta = v - mn;
  T h = T(0), s = T(0);
  if (delta != T(0)) {
    s = delta / v;
    if (b == v) h = T(4) + (r - g) / delta;
    else if (g == v) h = T(2) + (b - r) / delta;
    else h = (g - b) / delta;
    h = h / T(6);
    h = h - std::floor(h);  // Python's % 1.0 (a tiny negative h gives 1.0, as in NumPy)
  }
  out[0] = h;
  out[1] = s;
  out[2] = v;
}

// skimage.color.hsv2rgb.
template <typename T>
IMKERN_HOST_DEVICE inline void hsv_to_rgb_float(T h, T s, T v, T* out) {
  const T h6 = h * T(6);
  const T hi = std::floor(h6);
  const T f = h6 - hi;
  const T p = v * (T(1) - s);
  const T q = v * (T(1) - f * s);
  const T t = v * (T(1) - (T(1) - f) * s);
  int sector = static_cast<int>(static_cast<int64_t>(hi) % 6);
  if (sector < 0) sector += 6;
  T r, g, b;
  switch (sector) {
    case 0: r = v; g = t; b = p; break;
    case 1: r = q; g = v; b = p; break;
    case 2: r = p; g = v; b = t; break;
    case 3: r = p; g = q; b = v; break;
    case 4: r = t; g = p; b = v; break;
    default: r = v; g = p; b = q; break;
  }
  out[0] = r;
  out[1] = g;
  out[2] = b;
}

// ---- YCbCr (JPEG) ------------------------------------------------------------------------------
template <typename T>
IMKERN_HOST_DEVICE inline T clamp_int(int64_t x) {
  constexpr int64_t hi = sizeof(T) == 1 ? 255 : 65535;
  return static_cast<T>(x < 0 ? 0 : (x > hi ? hi : x));
}

template <typename T>
struct RgbToYcbcr {
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    if constexpr (sizeof(T) <= 2 && T(-1) > T(0)) {
      constexpr int64_t half = sizeof(T) == 1 ? 128 : 32768;
      const int64_t r = in[0], g = in[1], b = in[2];
      const int64_t y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
      const int64_t cb = ((half << 16) - 11058 * r - 21710 * g + 32768 * b + 32768) >> 16;
      const int64_t cr = ((half << 16) + 32768 * r - 27439 * g - 5329 * b + 32768) >> 16;
      out[0] = clamp_int<T>(y);
      out[1] = clamp_int<T>(cb);
      out[2] = clamp_int<T>(cr);
    } else {
      const T r = in[0], g = in[1], b = in[2];
      out[0] = T(0.299) * r + T(0.587) * g + T(0.114) * b;
      out[1] = T(0.5) - T(0.299 / 1.772) * r - T(0.587 / 1.772) * g + T(0.5) * b;
      out[2] = T(0.5) + T(0.5) * r - T(0.587 / 1.402) * g - T(0.114 / 1.402) * b;
    }
  }
};

template <typename T>
struct YcbcrToRgb {
  IMKERN_HOST_DEVICE void operator()(const T* in, T* out) const {
    if constexpr (sizeof(T) <= 2 && T(-1) > T(0)) {
      constexpr int64_t half = sizeof(T) == 1 ? 128 : 32768;
      const int64_t y = static_cast<int64_t>(in[0]) << 16, cb = in[1] - half, cr = in[2] - half;
      out[0] = clamp_int<T>((y + 91881 * cr + 32768) >> 16);
      out[1] = clamp_int<T>((y - 22554 * cb - 46802 * cr + 32768) >> 16);
      out[2] = clamp_int<T>((y + 116130 * cb + 32768) >> 16);
    } else {
      const T y = in[0], cb = in[1] - T(0.5), cr = in[2] - T(0.5);
      out[0] = y + T(1.402) * cr;
      out[1] = y - T(0.114 * 1.772 / 0.587) * cb - T(0.299 * 1.402 / 0.587) * cr;
      out[2] = y + T(1.772) * cb;
    }
  }
};

// ---- CIE L*a*b* (D65, 2-degree observer; sRGB primaries) ------------------------------------------
// Floats: skimage.color.rgb2lab / lab2rgb (L in [0, 100], a and b about [-128, 127]; lab2rgb
// clips z at 0 and the result to [0, 1]). uint8: OpenCV's 8-bit algorithm (cv2.cvtColor
// RGB2Lab / Lab2RGB, equal bit for bit on every input) in OpenCV's encoding (L * 255 / 100,
// a + 128, b + 128): integer arithmetic over the tables of imkern/color_lab_tables.hpp, which
// the CPU reads directly and the CUDA launcher copies to constant memory.
//   forward: R, G, B = gamma[r, g, b] (linear light * 2040); X, Y, Z = the Q12 matrix rounded;
//            fx, fy, fz = cbrt[X, Y, Z] (f * 2^15); L = 116 fy - 16 scaled to 255 (296 ~ 1.16 *
//            255 in Q8 of 2^15), a = 500 (fx - fy) + 128, b = 200 (fy - fz) + 128, rounded
//            in Q15 and saturated.
//   inverse: y, fy = l_to_y_fy[L] (Q14); fx = fy + a / 500, fz = fy - b / 200 by OpenCV's
//            multiply-shift approximations; x, z = f^-1 (lab8_f_inv); linear R, G, B = the Q12
//            matrix, clamped to [0, 4095]; inv_gamma[] -> sRGB level.
IMKERN_HOST_DEVICE inline int32_t clamp_u8(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

IMKERN_HOST_DEVICE inline void rgb_to_lab_u8(const Lab8Tables& T, int r, int g, int b, uint8_t* out) {
  const int32_t R = T.gamma[r], G = T.gamma[g], B = T.gamma[b];
  const int32_t* m = T.rgb_to_xyz;
  const int32_t fx = T.cbrt[(m[0] * R + m[1] * G + m[2] * B + (1 << 11)) >> 12];
  const int32_t fy = T.cbrt[(m[3] * R + m[4] * G + m[5] * B + (1 << 11)) >> 12];
  const int32_t fz = T.cbrt[(m[6] * R + m[7] * G + m[8] * B + (1 << 11)) >> 12];
  out[0] = static_cast<uint8_t>(clamp_u8((296 * fy - 1336934 + (1 << 14)) >> 15));
  out[1] = static_cast<uint8_t>(clamp_u8((500 * (fx - fy) + (128 << 15) + (1 << 14)) >> 15));
  out[2] = static_cast<uint8_t>(clamp_u8((200 * (fy - fz) + (128 << 15) + (1 << 14)) >> 15));
}

// f^-1 of a Q14 value i in [-8145, 26868] (OpenCV's abToXZ_b): (i - 16/116) / 7.787 at or below
// 6/29 (3390), else i^3; C's truncating division, and no int32 overflow in the cube.
IMKERN_HOST_DEVICE inline int32_t lab8_f_inv(int32_t i) {
  return i <= 3390 ? i * 108 / 841 - 290 : (i * i / 16384) * i / 16384;
}

IMKERN_HOST_DEVICE inline void lab_to_rgb_u8(const Lab8Tables& T, int l8, int a8, int b8, uint8_t* out) {
  const uint32_t yf = T.l_to_y_fy[l8];
  const int32_t y = static_cast<int32_t>(yf & 0xFFFF), fy = static_cast<int32_t>(yf >> 16);
  const int32_t x = lab8_f_inv(fy + ((5 * a8 * 53687 + (1 << 7)) >> 13) - 4194);
  const int32_t z = lab8_f_inv(fy - ((b8 * 41943 + (1 << 4)) >> 9) + 10484);
  const int32_t* m = T.xyz_to_rgb;
  for (int c = 0; c < 3; ++c) {
    int32_t v = (m[3 * c] * x + m[3 * c + 1] * y + m[3 * c + 2] * z + (1 << 13)) >> 14;
    v = v < 0 ? 0 : (v > 4095 ? 4095 : v);
    out[c] = static_cast<uint8_t>(T.inv_gamma[v]);
  }
}

template <typename T>
IMKERN_HOST_DEVICE inline void rgb_to_lab_float(T r, T g, T b, T* out) {
  T c[3] = {r, g, b};
  for (int i = 0; i < 3; ++i)
    c[i] = c[i] > T(0.04045) ? std::pow((c[i] + T(0.055)) / T(1.055), T(2.4)) : c[i] / T(12.92);
  T xyz[3] = {(T(0.412453) * c[0] + T(0.357580) * c[1] + T(0.180423) * c[2]) / T(0.95047),
              (T(0.212671) * c[0] + T(0.715160) * c[1] + T(0.072169) * c[2]),
              (T(0.019334) * c[0] + T(0.119193) * c[1] + T(0.950227) * c[2]) / T(1.08883)};
  for (int i = 0; i < 3; ++i)
    xyz[i] = xyz[i] > T(0.008856) ? std::cbrt(xyz[i]) : T(7.787) * xyz[i] + T(16.0 / 116.0);
  out[0] = T(116) * xyz[1] - T(16);
  out[1] = T(500) * (xyz[0] - xyz[1]);
  out[2] = T(200) * (xyz[1] - xyz[2]);
}

template <typename T>
IMKERN_HOST_DEVICE inline void lab_to_rgb_float(T l, T a, T b, T* out) {
  const T y = (l + T(16)) / T(116);
  T f[3] = {a / T(500) + y, y, y - b / T(200)};
  if (f[2] < T(0)) f[2] = T(0);
  for (int i = 0; i < 3; ++i)
    f[i] = f[i] > T(0.2068966) ? f[i] * f[i] * f[i] : (f[i] - T(16.0 / 116.0)) / T(7.787);
  const T X = f[0] * T(0.95047), Y = f[1], Z = f[2] * T(1.08883);
  T c[3] = {T(3.2404813432005266) * X + T(-1.5371515162713185) * Y + T(-0.4985363261688878) * Z,
            T(-0.9692549499965682) * X + T(1.8759900014898907) * Y + T(0.0415559265582928) * Z,
            T(0.0556466391351772) * X + T(-0.2040413383665112) * Y + T(1.0573110696453443) * Z};
  for (int i = 0; i < 3; ++i) {
    T v = c[i] > T(0.0031308) ? T(1.055) * std::pow(c[i], T(1) / T(2.4)) - T(0.055) : c[i] * T(12.92);
    out[i] = v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
  }
}

}  // namespace color
}  // namespace imkern
