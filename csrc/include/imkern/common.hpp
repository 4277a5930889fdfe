// imkern's C++ API: plain types shared by every kernel. No pybind11 here, so the kernels
// can be embedded in other C++ code: find_package(imkern) and link imkern::core (see
// examples/cpp/), or link the static library and put these headers on the include path.
#pragma once
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

// Functions usable from both host code and CUDA kernels.
#if defined(__CUDACC__)
#define IMKERN_HOST_DEVICE __host__ __device__
#else
#define IMKERN_HOST_DEVICE
#endif

namespace imkern {

enum class DType : int { u8 = 0, u16 = 1, f32 = 2, f64 = 3, f16 = 4, bf16 = 5 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::u8: return "uint8";
    case DType::u16: return "uint16";
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
  }
  return "?";
}

// Border modes, named as OpenCV names them. The comments give SciPy's / NumPy's names.
enum class Border : int {
  reflect101 = 0,  // dcb|abcd|cba   scipy "mirror", numpy/torch "reflect"
  reflect = 1,     // cba|abcd|dcb   scipy "reflect", numpy "symmetric"
  replicate = 2,   // aaa|abcd|ddd   scipy "nearest"
  constant = 3,    // kkk|abcd|kkk   cval
  wrap = 4,        // bcd|abcd|abc   scipy "grid-wrap", torch "circular"
};

// A batch of images (N, H, W, C). Pixels of a row and the channels of a pixel are packed
// (element stride 1 along C, C along W); rows and images may have any stride, negative
// included. Strides are in elements, not bytes.
struct ImageDesc {
  int64_t n = 1, h = 0, w = 0, c = 1;
  int64_t batch_stride = 0, row_stride = 0;
  int64_t row_elems() const { return w * c; }
};

// Map a coordinate outside [0, len) back into the image; -1 means "use the constant".
// Correct for any distance from the edge (kernels larger than the image). Shared by the CPU
// kernels and the CUDA kernels.
IMKERN_HOST_DEVICE inline int64_t border_index(int64_t p, int64_t len, Border b) {
  if (p >= 0 && p < len) return p;
  // Within one length of the image (every filter's border, unless its kernel is longer than the
  // image) the wrapped and reflected indices are one subtraction: the same values as the
  // general formulas' modulo, without its 64-bit division for kernels that ask per row.
  const bool near = p >= -len && p < 2 * len;
  switch (b) {
    case Border::constant: return -1;
    case Border::replicate: return p < 0 ? 0 : len - 1;
    case Border::wrap: {
      if (near) return p < 0 ? p + len : p - len;
      int64_t m = p % len; return m < 0 ? m + len : m;
    }
    case Border::reflect: {
      if (near) return p < 0 ? -1 - p : 2 * len - 1 - p;
      const int64_t period = 2 * len;
      int64_t m = p % period; if (m < 0) m += period;
      return m < len ? m : period - 1 - m;
    }
    case Border::reflect101: {
      if (len == 1) return 0;
      if (p > -len && p < 2 * len - 1) return p < 0 ? -p : 2 * len - 2 - p;
      const int64_t period = 2 * len - 2;
      int64_t m = p % period; if (m < 0) m += period;
      return m < len ? m : period - m;
    }
  }
  return -1;
}

// The splitmix64 finalizer: dropout's counter hash (docs/design.md), the same bits on every
// device. A template so the CPU kernels apply it to whole vectors of uint64 lanes too.
constexpr uint64_t kSplitmixGamma = 0x9E3779B97F4A7C15ull;
template <typename U>
IMKERN_HOST_DEVICE inline U splitmix64(U z) {
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ull;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z;
}

// 64-bit size arithmetic with overflow checks (std::overflow_error -> Python OverflowError).
// GCC and Clang have checked builtins; other compilers (cl.exe including this header) get the
// portable range tests.
inline int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
#if defined(__GNUC__) || defined(__clang__)
  const bool overflow = __builtin_mul_overflow(a, b, &r);
#else
  constexpr int64_t hi = std::numeric_limits<int64_t>::max(), lo = std::numeric_limits<int64_t>::min();
  const bool overflow = a != 0 && b != 0 &&
                        ((a > 0) == (b > 0) ? (a > 0 ? a > hi / b : a < hi / b)
                                            : (a > 0 ? b < lo / a : a < lo / b));
  r = overflow ? 0 : a * b;
#endif
  if (overflow) throw std::overflow_error("imkern: size computation overflows 64 bits");
  return r;
}
inline int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
#if defined(__GNUC__) || defined(__clang__)
  const bool overflow = __builtin_add_overflow(a, b, &r);
#else
  const bool overflow = b > 0 ? a > std::numeric_limits<int64_t>::max() - b
                              : a < std::numeric_limits<int64_t>::min() - b;
  r = overflow ? 0 : a + b;
#endif
  if (overflow) throw std::overflow_error("imkern: size computation overflows 64 bits");
  return r;
}

}  // namespace imkern
