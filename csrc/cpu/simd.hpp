// Width-agnostic SIMD for the per-ISA kernels: GCC/Clang vector extensions sized by the
// ISA this translation unit is compiled for (16 bytes baseline, 32 AVX2, 64 AVX-512).
// One source serves every ISA; the compiler emits the ISA's own instructions (FMA included,
// since we build with -ffp-contract=fast, GCC's default in gnu++ mode).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

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

}  // namespace simd
}  // namespace IMKERN_ISA
}  // namespace imkern
