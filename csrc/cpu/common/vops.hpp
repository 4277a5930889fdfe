// Float vector operations GCC's vector extensions do not spell as one instruction, on the ISA's
// native float / double vectors (16, 32 or 64 bytes; compiled per ISA):
//   vround<Mode>(x)     roundps / roundpd / vrndscale with an _MM_FROUND_* mode (floor,
//                       nearest, ...), exceptions suppressed;
//   vminmax<Max>(a, b)  maxps / minps (pd): a > b ? a : b (a < b for min), b when either is
//                       NaN (the x86 rule), one instruction where GCC emits a compare and a blend;
//   all_lanes(m)        whether every lane of a comparison result is true (one movemask).
// and the integer pair sums, on any native integer vector (an intrinsic type such as __m256i
// or a GCC vector of the same size; the result has the argument's type):
//   maddubs_i16(a, b)   pmaddubsw: per 16-bit lane, the unsigned bytes of a times the signed
//                       bytes of b, the two products summed with signed saturation;
//   madd_i32(a, b)      pmaddwd: per 32-bit lane, the signed 16-bit halves of a times those of
//                       b, the two products summed (wrapping only for -32768 * -32768 twice);
//   subs_u8(a, b)       psubusb: per byte, the unsigned a - b, 0 where b > a;
//   add_lanes<E>(a, b)  a + b in lanes of the integer type E (paddw / paddd / ...).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "common/simd.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace simd {

template <typename V>
constexpr bool is_f32_vec() {
  return std::is_same_v<std::remove_cv_t<std::remove_reference_t<decltype(V{}[0])>>, float>;
}

template <int Mode, typename V>
IMKERN_ALWAYS_INLINE inline V vround(V x) {
  constexpr int m = Mode | _MM_FROUND_NO_EXC;
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64) {
    if constexpr (is_f32_vec<V>()) return reinterpret_cast<V>(_mm512_roundscale_ps(reinterpret_cast<__m512>(x), m));
    else return reinterpret_cast<V>(_mm512_roundscale_pd(reinterpret_cast<__m512d>(x), m));
  }
#endif
#if defined(__AVX__)
  if constexpr (sizeof(V) == 32) {
    if constexpr (is_f32_vec<V>()) return reinterpret_cast<V>(_mm256_round_ps(reinterpret_cast<__m256>(x), m));
    else return reinterpret_cast<V>(_mm256_round_pd(reinterpret_cast<__m256d>(x), m));
  }
#endif
#if defined(__SSE4_1__)
  if constexpr (sizeof(V) == 16) {
    if constexpr (is_f32_vec<V>()) return reinterpret_cast<V>(_mm_round_ps(reinterpret_cast<__m128>(x), m));
    else return reinterpret_cast<V>(_mm_round_pd(reinterpret_cast<__m128d>(x), m));
  }
#endif
  static_assert(sizeof(V) == 64 || sizeof(V) == 32 || sizeof(V) == 16, "native float vectors only");
  return x;  // below SSE4.1 there is no rounding instruction: callers use vround only from SSE4.1 up
}

template <bool Max, typename V>
IMKERN_ALWAYS_INLINE inline V vminmax(V a, V b) {
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64) {
    if constexpr (is_f32_vec<V>())
      return reinterpret_cast<V>(Max ? _mm512_max_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b))
                                     : _mm512_min_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b)));
    else
      return reinterpret_cast<V>(Max ? _mm512_max_pd(reinterpret_cast<__m512d>(a), reinterpret_cast<__m512d>(b))
                                     : _mm512_min_pd(reinterpret_cast<__m512d>(a), reinterpret_cast<__m512d>(b)));
  }
#endif
#if defined(__AVX__)
  if constexpr (sizeof(V) == 32) {
    if constexpr (is_f32_vec<V>())
      return reinterpret_cast<V>(Max ? _mm256_max_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b))
                                     : _mm256_min_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b)));
    else
      return reinterpret_cast<V>(Max ? _mm256_max_pd(reinterpret_cast<__m256d>(a), reinterpret_cast<__m256d>(b))
                                     : _mm256_min_pd(reinterpret_cast<__m256d>(a), reinterpret_cast<__m256d>(b)));
  }
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(V) == 16) {
    if constexpr (is_f32_vec<V>())
      return reinterpret_cast<V>(Max ? _mm_max_ps(reinterpret_cast<__m128>(a), reinterpret_cast<__m128>(b))
                                     : _mm_min_ps(reinterpret_cast<__m128>(a), reinterpret_cast<__m128>(b)));
    else
      return reinterpret_cast<V>(Max ? _mm_max_pd(reinterpret_cast<__m128d>(a), reinterpret_cast<__m128d>(b))
                                     : _mm_min_pd(reinterpret_cast<__m128d>(a), reinterpret_cast<__m128d>(b)));
  }
#endif
  if constexpr (Max) return a > b ? a : b;
  else return a < b ? a : b;
}

// Whether every lane of a comparison result (GCC's vector of 0 / -1 integers) is true: one
// movemask (or a mask test) instead of a branch per lane, which GCC emits as extracts on AVX2.
template <typename M>
IMKERN_ALWAYS_INLINE inline bool all_lanes(M m) {
  constexpr int n = static_cast<int>(sizeof(M) / sizeof(m[0]));
  constexpr bool wide = sizeof(m[0]) == 8;
#if defined(__AVX512F__)
  if constexpr (sizeof(M) == 64) {
    if constexpr (wide) return _mm512_test_epi64_mask(reinterpret_cast<__m512i>(m), reinterpret_cast<__m512i>(m)) == 0xFF;
    else return _mm512_test_epi32_mask(reinterpret_cast<__m512i>(m), reinterpret_cast<__m512i>(m)) == 0xFFFF;
  }
#endif
#if defined(__AVX__)
  if constexpr (sizeof(M) == 32) {
    if constexpr (wide) return _mm256_movemask_pd(reinterpret_cast<__m256d>(m)) == 0xF;
    else return _mm256_movemask_ps(reinterpret_cast<__m256>(m)) == 0xFF;
  }
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(M) == 16) {
    if constexpr (wide) return _mm_movemask_pd(reinterpret_cast<__m128d>(m)) == 0x3;
    else return _mm_movemask_ps(reinterpret_cast<__m128>(m)) == 0xF;
  }
#endif
  for (int i = 0; i < n; ++i)
    if (!m[i]) return false;
  return true;
}

// The lane loops below are the instructions' definitions (used only below SSSE3 / SSE2).
template <typename V>
IMKERN_ALWAYS_INLINE inline V maddubs_i16(V a, V b) {
#if defined(__AVX512BW__)
  if constexpr (sizeof(V) == 64) return reinterpret_cast<V>(_mm512_maddubs_epi16(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b)));
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(V) == 32) return reinterpret_cast<V>(_mm256_maddubs_epi16(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b)));
#endif
#if defined(__SSSE3__)
  if constexpr (sizeof(V) == 16) return reinterpret_cast<V>(_mm_maddubs_epi16(reinterpret_cast<__m128i>(a), reinterpret_cast<__m128i>(b)));
#endif
  uint8_t u[sizeof(V)];
  int8_t w[sizeof(V)];
  int16_t r[sizeof(V) / 2];
  std::memcpy(u, &a, sizeof(V));
  std::memcpy(w, &b, sizeof(V));
  for (int i = 0; i < static_cast<int>(sizeof(V) / 2); ++i) {
    const int s = u[2 * i] * w[2 * i] + u[2 * i + 1] * w[2 * i + 1];
    r[i] = static_cast<int16_t>(s < -32768 ? -32768 : s > 32767 ? 32767 : s);
  }
  V v;
  std::memcpy(&v, r, sizeof(V));
  return v;
}
template <typename V>
IMKERN_ALWAYS_INLINE inline V madd_i32(V a, V b) {
#if defined(__AVX512BW__)
  if constexpr (sizeof(V) == 64) return reinterpret_cast<V>(_mm512_madd_epi16(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b)));
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(V) == 32) return reinterpret_cast<V>(_mm256_madd_epi16(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b)));
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(V) == 16) return reinterpret_cast<V>(_mm_madd_epi16(reinterpret_cast<__m128i>(a), reinterpret_cast<__m128i>(b)));
#endif
  int16_t x[sizeof(V) / 2], y[sizeof(V) / 2];
  int32_t r[sizeof(V) / 4];
  std::memcpy(x, &a, sizeof(V));
  std::memcpy(y, &b, sizeof(V));
  for (int i = 0; i < static_cast<int>(sizeof(V) / 4); ++i)
    r[i] = static_cast<int32_t>(static_cast<uint32_t>(x[2 * i] * y[2 * i]) + static_cast<uint32_t>(x[2 * i + 1] * y[2 * i + 1]));
  V v;
  std::memcpy(&v, r, sizeof(V));
  return v;
}
template <typename V>
IMKERN_ALWAYS_INLINE inline V subs_u8(V a, V b) {
#if defined(__AVX512BW__)
  if constexpr (sizeof(V) == 64) return reinterpret_cast<V>(_mm512_subs_epu8(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b)));
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(V) == 32) return reinterpret_cast<V>(_mm256_subs_epu8(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b)));
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(V) == 16) return reinterpret_cast<V>(_mm_subs_epu8(reinterpret_cast<__m128i>(a), reinterpret_cast<__m128i>(b)));
#endif
  uint8_t x[sizeof(V)], y[sizeof(V)];
  std::memcpy(x, &a, sizeof(V));
  std::memcpy(y, &b, sizeof(V));
  for (int i = 0; i < static_cast<int>(sizeof(V)); ++i) x[i] = static_cast<uint8_t>(x[i] > y[i] ? x[i] - y[i] : 0);
  V v;
  std::memcpy(&v, x, sizeof(V));
  return v;
}
// (in unsigned lanes: wrapping, as paddw / paddd, never signed overflow)
template <typename E, typename V>
IMKERN_ALWAYS_INLINE inline V add_lanes(V a, V b) {
  typedef std::make_unsigned_t<E> VE __attribute__((vector_size(sizeof(V))));
  return reinterpret_cast<V>(reinterpret_cast<VE>(a) + reinterpret_cast<VE>(b));
}

}  // namespace simd
}  // namespace IMKERN_ISA
}  // namespace imkern
