// Row helpers shared by the filter kernels (compiled per ISA): dtype traits, converting a
// source row into a horizontally padded accumulator row, and storing an accumulator row
// back with rounding and saturation.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "imkern/common.hpp"
#include "imkern/cpu_params.hpp"
#include "common/simd.hpp"
#include "common/stream.hpp"

namespace imkern {
namespace IMKERN_ISA {

// Accumulator type per data type: float for 8/16-bit and float32, double for float64.
template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
// Accumulator type when the output dtype U differs from the input's T: float64 when either is.
template <typename T, typename U> struct OutAccOf {
  using type = typename std::conditional<std::is_same<T, double>::value || std::is_same<U, double>::value, double,
                                         float>::type;
};

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

// One accumulator value -> T: integers rounded to nearest-even and saturated (NaN -> 0).
template <typename T, typename A>
inline T to_output(A a) {
  if constexpr (Saturate<T>::integer) {
    float v = static_cast<float>(a);
    v = v > Saturate<T>::lo ? v : Saturate<T>::lo;  // also maps NaN to lo
    v = v < Saturate<T>::hi ? v : Saturate<T>::hi;
    return static_cast<T>(static_cast<int32_t>(__builtin_rintf(v)));
  } else {
    return static_cast<T>(a);
  }
}

// A vector of accumulators -> lanes of T at p (unaligned); integers as to_output does.
template <typename T, typename A>
inline void store_vec(T* p, simd::vec_t<A> v) {
  using namespace simd;
  if constexpr (std::is_same<T, A>::value) {
    storeu(p, v);
  } else if constexpr (Saturate<T>::integer && std::is_same<A, float>::value) {
    store_rounded_saturated<T>(p, v);
  } else {
    constexpr int L = Vec<A>::lanes;
    for (int i = 0; i < L; ++i) p[i] = to_output<T, A>(v[i]);
  }
}

// Like store_vec, but a vector whose destination is aligned to its size is written with
// non-temporal stores: the output is not read back soon, and skipping the read-for-ownership
// saves a third of the memory traffic of a bandwidth-bound filter (floats on AVX and
// AVX-512, 8/16-bit integers on AVX-512). Callers end their chunk with stream_fence().

// The first element index x in [1, L] at which p + x is aligned for store_vec_stream's
// streaming stores (L if p is not even aligned to sizeof(T): then nothing streams).
template <typename T, typename A>
inline int64_t stream_start(const T* p) {
  constexpr int64_t L = simd::Vec<A>::lanes;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % sizeof(T)) return L;
  const int64_t m = static_cast<int64_t>((a / sizeof(T)) % L);
  return L - m;
}
template <typename T, typename A>
inline void store_vec_stream(T* p, simd::vec_t<A> v) {
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value && std::is_same<A, float>::value) {
    if ((reinterpret_cast<uintptr_t>(p) & 63) == 0) {
      _mm512_stream_ps(p, reinterpret_cast<__m512>(v));
      return;
    }
  } else if constexpr (Saturate<T>::integer && std::is_same<A, float>::value) {
    // 16 lanes narrowed to 16 (u8) or 32 (u16) bytes, streamed when aligned to that size.
    if ((reinterpret_cast<uintptr_t>(p) & (16 * sizeof(T) - 1)) == 0) {
      const __m512 c = _mm512_min_ps(_mm512_set1_ps(Saturate<T>::hi), reinterpret_cast<__m512>(v));
      const __m512i i = _mm512_max_epi32(_mm512_cvtps_epi32(c), _mm512_setzero_si512());
      if constexpr (sizeof(T) == 1) _mm_stream_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtusepi32_epi8(i));
      else _mm256_stream_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtusepi32_epi16(i));
      return;
    }
  }
#elif defined(__AVX__)
  if constexpr (std::is_same<T, float>::value && std::is_same<A, float>::value) {
    if ((reinterpret_cast<uintptr_t>(p) & 31) == 0) {
      _mm256_stream_ps(p, reinterpret_cast<__m256>(v));
      return;
    }
  }
#endif
  store_vec<T, A>(p, v);
}

// store_vec_stream or store_vec, chosen at compile time.
template <typename T, typename A, bool Stream>
inline void put(T* p, simd::vec_t<A> v) {
  if constexpr (Stream) store_vec_stream<T, A>(p, v);
  else store_vec<T, A>(p, v);
}

// Plain vector stores of one(x) for the elements [x0, x1) of a row (x1 - x0 = 0 or >= L):
// vectors from x0 on, the last one ending at x1 (overlapping the one before).
template <typename T, typename A, typename One>
IMKERN_ALWAYS_INLINE inline void plain_vectors(T* o, int64_t x0, int64_t x1, One&& one) {
  constexpr int L = simd::Vec<A>::lanes;
  int64_t x = x0;
  for (; x + L <= x1; x += L) store_vec<T, A>(o + x, one(x));
  if (x < x1) store_vec<T, A>(o + x1 - L, one(x1 - L));
}

// L lanes of T at p -> a vector of accumulators.
template <typename A, typename T>
inline simd::vec_t<A> load_vec(const T* p) {
  using namespace simd;
  if constexpr (std::is_same<T, A>::value) {
    return loadu(p);
  } else {
    constexpr int L = Vec<A>::lanes;
    if constexpr (std::is_integral<T>::value && std::is_same<A, float>::value) {
      return widen_to_f32<T>(p);
    } else {
      typedef T vt __attribute__((vector_size(L * sizeof(T))));
      vt t;
      std::memcpy(&t, p, sizeof(t));
      if constexpr (std::is_integral<T>::value) {
        typedef int32_t vi __attribute__((vector_size(L * sizeof(int32_t))));
        return __builtin_convertvector(__builtin_convertvector(t, vi), vec_t<A>);
      } else {
        return __builtin_convertvector(t, vec_t<A>);
      }
    }
  }
}

// Convert n values of T to the accumulator type.
template <typename T, typename A>
inline void convert_row(const T* src, A* dst, int64_t n) {
  constexpr int L = simd::Vec<A>::lanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) simd::storeu(dst + i, load_vec<A, T>(src + i));
  for (; i < n; ++i) dst[i] = static_cast<A>(src[i]);
}

// Columns [x0 - left, x1 + right) of a source row (w pixels of c channels), converted to the
// accumulator type, into dst; out-of-image pixels by the border rule. `row` null: all cval.
template <typename T, typename A>
inline void load_padded_segment(const T* row, A* dst, int64_t w, int64_t c, int64_t x0, int64_t x1,
                                int64_t left, int64_t right, Border border, A cval) {
  const int64_t first = x0 - left, last = x1 + right;  // pixel range, exclusive end
  if (!row) {
    std::fill(dst, dst + (last - first) * c, cval);
    return;
  }
  const int64_t in0 = first > 0 ? first : 0, in1 = last < w ? last : w;
  if (in1 > in0) convert_row(row + in0 * c, dst + (in0 - first) * c, (in1 - in0) * c);
  for (int64_t x = first; x < last; ++x) {
    if (x >= 0 && x < w) {
      x = in1 - 1;  // skip the interior (already converted)
      continue;
    }
    const int64_t sx = border_index(x, w, border);
    A* d = dst + (x - first) * c;
    for (int64_t ch = 0; ch < c; ++ch) d[ch] = sx < 0 ? cval : static_cast<A>(row[sx * c + ch]);
  }
}

// Ask for n elements at p ahead of use: source rows are read in short strips, too short for
// the hardware prefetcher to ramp up, so the filters prefetch the row they will need next.
template <typename T>
inline void prefetch_span(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  const int64_t bytes = n * static_cast<int64_t>(sizeof(T));
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

// Column strip width (in pixels) for the row-ring filters: wide enough to amortize the halo,
// narrow enough that the ring of `ring_rows` rows stays in L1 (small kernels) or L2 (large):
// the budgets are the machine's L1d and L2 (cpu_params(): strip_l1, strip_l2; tuned as 32 KiB
// and 1 MiB on a Zen core with those caches). Results never depend on the strips.
inline int64_t strip_pixels(int64_t w, int64_t c, int ring_rows, size_t acc_size) {
  const CpuParams& cp = params();
  const int64_t budget = std::max<int64_t>(1024, ring_rows <= 8 ? cp.strip_l1 : cp.strip_l2);
  int64_t px = budget / (static_cast<int64_t>(acc_size) * (ring_rows + 1) * c);
  px = px < 64 ? 64 : px / 16 * 16;  // whole vectors per strip row for any c (no scalar tails)
  return px >= w ? w : px;
}

// Store n accumulator values as T (see to_output / store_vec).
template <typename T, typename A>
inline void store_row(const A* acc, T* dst, int64_t n) {
  constexpr int L = simd::Vec<A>::lanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) store_vec<T, A>(dst + i, simd::loadu(acc + i));
  for (; i < n; ++i) dst[i] = to_output<T, A>(acc[i]);
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

// Ring row for source row sy (any integer: the border decides) of image b, columns
// [x0 - left, x1 + right), converted and padded into dst (load_padded_segment); the row four
// output rows ahead is prefetched (Prefetch false: not, for a caller that spreads its own
// prefetches, as bilateral's uint8 RGB path). Shared by the row-ring filters. Always inlined: as
// an out-of-line call the u8 Gaussian 5x5 on 4K RGB took 2.5 ms instead of 2.0.
template <typename T, typename A, bool Prefetch = true>
__attribute__((always_inline)) inline void load_source_segment(const void* src, const ImageDesc& s, int64_t b, int64_t sy, int64_t x0, int64_t x1,
                                int64_t left, int64_t right, Border border, A cval, A* dst) {
  const int64_t yy = border_index(sy, s.h, border);
  load_padded_segment<T, A>(yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy), dst, s.w, s.c, x0, x1, left, right, border,
                            cval);
  if constexpr (Prefetch) {
    const int64_t ahead = sy + 4;
    if (ahead >= 0 && ahead < s.h) prefetch_span(row_ptr<T>(src, s, b, ahead) + x0 * s.c, (x1 - x0) * s.c);
  }
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

// Calls f(T{}, U{}) for an input dtype and an output dtype: the output is the input's dtype,
// float32 or float64 (cv2's ddepth for the linear filters).
template <typename F>
inline void visit_dtype_pair(DType in, DType out, F&& f) {
  visit_dtype(in, [&](auto tag) {
    if (out == in) return f(tag, tag);
    if (out == DType::f32) return f(tag, float{});
    if (out == DType::f64) return f(tag, double{});
    throw std::invalid_argument(std::string("imkern: output dtype ") + dtype_name(out) + " is not supported for " +
                                dtype_name(in) + " input (the input's dtype, float32 or float64)");
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
