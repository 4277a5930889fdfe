// Float vector operations GCC's vector extensions do not spell as one instruction, on the ISA's
// native float / double vectors (16, 32 or 64 bytes; compiled per ISA):
//   vround<Mode>(x)     roundps / roundpd / vrndscale with an _MM_FROUND_* mode (floor,
//                       nearest, ...), exceptions suppressed;
//   vminmax<Max>(a, b)  maxps / minps (pd): a > b ? a : b (a < b for min), b when either is
//                       NaN (the x86 rule), one instruction where GCC emits a compare and a blend.
#pragma once
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

}  // namespace simd
}  // namespace IMKERN_ISA
}  // namespace imkern
