// Width-agnostic SIMD for the per-ISA kernels: GCC/Clang vector extensions sized by the
// ISA this translation unit is compiled for (16 bytes baseline, 32 AVX2, 64 AVX-512).
// One source serves every ISA; the compiler emits the ISA's own instructions (FMA included,
// since we build with -ffp-contract=fast, GCC's default in gnu++ mode).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

// Forces inlining of small hot lambdas and helpers whose inlining GCC's size budget may drop
// as a translation unit grows (GCC/Clang; a no-op elsewhere).
#if defined(__GNUC__) || defined(__clang__)
#define IMKERN_ALWAYS_INLINE __attribute__((always_inline))
#else
#define IMKERN_ALWAYS_INLINE
#endif

#ifndef IMKERN_ISA
#error "IMKERN_ISA must be defined (baseline, avx2, avx512)"
#endif

namespace imkern {
namespace IMKERN_ISA {
namespace simd {

#if defined(__AVX512F__)
constexpr int kBytes = 64;
#elif defined(__AVX2__)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif

// The integer register of the kernels written in intrinsics (vec_t below is the vector-extension
// one), kBytes wide: __m512i with AVX-512, __m256i with AVX2, __m128i below; its int32 lanes
// are Vec<int32_t>::lanes. The 512-bit integer paths key on AVX-512 F (dword ops) or BW (byte
// and word ops) as their instructions need, so this one alias serves both only while F comes
// with BW: it does in the AVX-512 build (x86-64-v4: F, BW, CD, DQ, VL), and an F-only build
// (Knights Landing) is refused here instead of BW-keyed 256-bit paths meeting a 512-bit alias
// (transform/basic.cpp's F-keyed byte shuffles need BW as well).
#if defined(__AVX512F__) && !defined(__AVX512BW__)
#error "the AVX-512 kernels need AVX-512 BW with F (x86-64-v4)"
#endif
#if defined(__AVX512F__)
using ivec = __m512i;
#elif defined(__AVX2__)
using ivec = __m256i;
#elif defined(__SSE2__)
using ivec = __m128i;
#endif
#if defined(__SSE2__)
static_assert(sizeof(ivec) == kBytes, "the integer register is kBytes wide");
#endif

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(kBytes)));
  static constexpr int lanes = kBytes / sizeof(T);
};

template <typename T>
using vec_t = typename Vec<T>::type;

template <typename T>
inline vec_t<T> loadu(const T* p) {
  vec_t<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void storeu(T* p, vec_t<T> v) {
  std::memcpy(p, &v, sizeof(v));
}
template <typename T>
inline vec_t<T> splat(T x) {
  return vec_t<T>{} + x;
}

// Lanes of the concatenation (a, b) picked by mask (indices modulo 2n, n lanes): GCC's
// __builtin_shuffle(a, b, mask). Clang has no two-operand shuffle with a mask vector
// (its __builtin_shufflevector wants constant indices), so it gets the lane loop, which it
// turns back into shuffles when the mask is a known constant.
template <typename V, typename M>
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
inline V shuffle2(V a, V b, M mask) {
#if defined(__clang__) || !defined(__GNUC__)
  constexpr int n = static_cast<int>(sizeof(V) / sizeof(a[0]));
  V r;
  for (int i = 0; i < n; ++i) {
    const int k = static_cast<int>(mask[i]) & (2 * n - 1);
    r[i] = k < n ? a[k] : b[k - n];
  }
  return r;
#else
  return __builtin_shuffle(a, b, mask);
#endif
}

// Widening loads / narrowing stores between 8/16-bit integers and int32 / float lanes. GCC's
// __builtin_convertvector scalarizes these, so they are spelled with the ISA's intrinsics
// (pmovzx / vcvtdq2ps; vcvtps2dq / vpmov* or packus); the generic fallback is a plain loop.
// The int32 lanes of L unsigned 8/16-bit integers at p (zero-extended).
template <typename U>
inline vec_t<int32_t> widen_to_i32(const U* p) {
  static_assert(sizeof(U) <= 2, "8/16-bit integers only");
#if defined(__AVX512F__)
  __m512i i;
  if constexpr (sizeof(U) == 1) i = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  else i = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__AVX2__)
  __m256i i;
  if constexpr (sizeof(U) == 1) i = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  else i = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif defined(__SSE4_1__)
  __m128i i;
  if constexpr (sizeof(U) == 1) {
    int32_t w;
    std::memcpy(&w, p, 4);
    i = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(w));
  } else {
    i = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
#else
  vec_t<int32_t> i;
  for (int k = 0; k < Vec<int32_t>::lanes; ++k) i[k] = static_cast<int32_t>(p[k]);
#endif
  return reinterpret_cast<vec_t<int32_t>>(i);
}

template <typename U>
inline vec_t<float> widen_to_f32(const U* p) {
  return __builtin_convertvector(widen_to_i32<U>(p), vec_t<float>);
}

// The int32 lanes of i, saturated to U's range (0 for negatives), stored as L U's at p.
template <typename U>
inline void store_narrow_saturated(U* p, vec_t<int32_t> v) {
  static_assert(sizeof(U) <= 2, "8/16-bit integers only");
#if defined(__AVX512F__)
  const __m512i i = _mm512_max_epi32(reinterpret_cast<__m512i>(v), _mm512_setzero_si512());
  if constexpr (sizeof(U) == 1) _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtusepi32_epi8(i));
  else _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtusepi32_epi16(i));
#elif defined(__AVX2__)
  const __m256i i = reinterpret_cast<__m256i>(v);
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  if constexpr (sizeof(U) == 1) _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
  else _mm_storeu_si128(reinterpret_cast<__m128i*>(p), w);
#elif defined(__SSE4_1__)
  const __m128i w = _mm_packus_epi32(reinterpret_cast<__m128i>(v), reinterpret_cast<__m128i>(v));
  if constexpr (sizeof(U) == 1) {
    const int32_t b = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
    std::memcpy(p, &b, 4);
  } else {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), w);
  }
#else
  constexpr int32_t hi = sizeof(U) == 1 ? 255 : 65535;
  for (int k = 0; k < Vec<int32_t>::lanes; ++k) p[k] = static_cast<U>(v[k] < 0 ? 0 : v[k] > hi ? hi : v[k]);
#endif
}

// Round to nearest-even (the default MXCSR mode) and saturate to U's range; NaN -> 0.
// min(hi, v) first keeps large values from overflowing the int32 conversion (and passes NaN
// through to it, which yields INT_MIN, then 0 after the saturation); the narrowing saturates.
template <typename U>
inline void store_rounded_saturated(U* p, vec_t<float> v) {
  static_assert(sizeof(U) <= 2, "8/16-bit integers only");
  constexpr float hi = sizeof(U) == 1 ? 255.f : 65535.f;
#if defined(__AVX512F__)
  const __m512i i = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_set1_ps(hi), reinterpret_cast<__m512>(v)));
#elif defined(__AVX2__)
  const __m256i i = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(hi), reinterpret_cast<__m256>(v)));
#elif defined(__SSE4_1__)
  const __m128i i = _mm_cvtps_epi32(_mm_min_ps(_mm_set1_ps(hi), reinterpret_cast<__m128>(v)));
#else
  vec_t<int32_t> i;
  for (int k = 0; k < Vec<float>::lanes; ++k) {
    float x = v[k];
    x = x > 0.f ? x : 0.f;
    x = x < hi ? x : hi;
    i[k] = static_cast<int32_t>(__builtin_rintf(x));
  }
#endif
  store_narrow_saturated<U>(p, reinterpret_cast<vec_t<int32_t>>(i));
}

}  // namespace simd

// Scratch buffers aligned to 64 bytes, so full-vector loads and stores of row starts never
// split a cache line.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = ::operator new(n * sizeof(T), std::align_val_t(64));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
template <typename T>
using aligned_vector = std::vector<T, AlignedAllocator<T>>;

// Per-thread scratch that grows and never shrinks: kernels take their row buffers from here
// instead of allocating per call (large allocations come back as fresh, zeroed pages every
// time, which costs more than the filtering itself). `slot` separates buffers used together.
template <typename T>
inline T* thread_scratch(int slot, size_t n) {
  static thread_local aligned_vector<unsigned char> bufs[8];
  auto& b = bufs[slot];
  const size_t bytes = n * sizeof(T) + 64;
  if (b.size() < bytes) b.resize(bytes);
  return reinterpret_cast<T*>(b.data());
}

// Round n elements up to whole 64-byte lines.
template <typename T>
inline int64_t round_up_line(int64_t n) {
  const int64_t per = 64 / static_cast<int64_t>(sizeof(T));
  return (n + per - 1) / per * per;
}
}  // namespace IMKERN_ISA
}  // namespace imkern
