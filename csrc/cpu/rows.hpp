// Row helpers shared by the filter kernels (compiled per ISA): dtype traits, converting a
// source row into a horizontally padded accumulator row, and storing an accumulator row
// back with rounding and saturation.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "imkern/common.hpp"
#include "simd.hpp"

namespace imkern {
namespace IMKERN_ISA {

// Accumulator type per data type: float for 8/16-bit and float32, double for float64.
template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };

template <typename T> struct Saturate {
  static constexpr bool integer = false;
};
template <> struct Saturate<uint8_t> {
  static constexpr bool integer = true;
  static constexpr float lo = 0.f, hi = 255.f;
};
template <> struct Saturate<uint16_t> {
  static constexpr bool integer = true;
  static constexpr float lo = 0.f, hi = 65535.f;
};

// dst[0 .. (left + w + right) * c) = src row with `left`/`right` border pixels resolved by
// `border`. `row` is null for a row that lies wholly in the constant border.
template <typename T, typename A>
inline void load_padded_row(const T* row, A* dst, int64_t w, int64_t c, int64_t left,
                            int64_t right, Border border, A cval) {
  const int64_t n = (left + w + right) * c;
  if (!row) {
    std::fill(dst, dst + n, cval);
    return;
  }
  A* mid = dst + left * c;
  const int64_t wc = w * c;
  for (int64_t i = 0; i < wc; ++i) mid[i] = static_cast<A>(row[i]);
  for (int64_t x = -left; x < 0; ++x) {
    int64_t sx = border_index(x, w, border);
    for (int64_t ch = 0; ch < c; ++ch)
      dst[(x + left) * c + ch] = sx < 0 ? cval : mid[sx * c + ch];
  }
  for (int64_t x = w; x < w + right; ++x) {
    int64_t sx = border_index(x, w, border);
    for (int64_t ch = 0; ch < c; ++ch)
      dst[(x + left) * c + ch] = sx < 0 ? cval : mid[sx * c + ch];
  }
}

// Store n accumulator values as T: integers are rounded to nearest-even and saturated.
template <typename T, typename A>
inline void store_row(const A* acc, T* dst, int64_t n) {
  if constexpr (Saturate<T>::integer) {
    for (int64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(acc[i]);
      v = v < Saturate<T>::lo ? Saturate<T>::lo : v;  // NaN stays NaN here ...
      v = v > Saturate<T>::hi ? Saturate<T>::hi : v;
      v = v == v ? v : 0.f;                           // ... and becomes 0, not UB
      dst[i] = static_cast<T>(static_cast<int32_t>(__builtin_rintf(v)));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(acc[i]);
  }
}

// Row pointer of image b, row y (y inside the image).
template <typename T>
inline const T* row_ptr(const void* base, const ImageDesc& s, int64_t b, int64_t y) {
  return static_cast<const T*>(base) + b * s.batch_stride + y * s.row_stride;
}
template <typename T>
inline T* row_ptr(void* base, const ImageDesc& d, int64_t b, int64_t y) {
  return static_cast<T*>(base) + b * d.batch_stride + y * d.row_stride;
}

// Rows of output per parallel chunk: enough chunks to balance the threads, few enough that
// the (kernel height - 1) halo rows each chunk re-reads stay cheap. Results never depend
// on the chunking (each output row is computed the same way whatever chunk it is in).
inline int64_t filter_grain(int64_t rows, int kh, int threads) {
  int64_t want = rows / (4 * (threads > 0 ? threads : 1));
  int64_t minimum = 8 * static_cast<int64_t>(kh > 1 ? kh : 1);
  if (want < minimum) want = minimum;
  return want < 1 ? 1 : want;
}

// Calls f(T{}) with the C++ type of dtype (the CPU kernels handle u8, u16, f32, f64).
template <typename F>
inline void visit_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::u8: f(uint8_t{}); break;
    case DType::u16: f(uint16_t{}); break;
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default: throw std::invalid_argument(std::string("imkern: dtype ") + dtype_name(dt) +
                                         " is not supported by the CPU kernels");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
