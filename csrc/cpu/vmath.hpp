// Vectorizable math for the nn kernels (compiled per ISA): float32 exp / sigmoid / tanh as
// polynomials on simd::vec_t<float> (within ~1-2 ulp), and helpers that apply a vector
// function over an array with the tail padded into one vector, so every element (tail
// included) goes through the same code and gets the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "simd.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace vm {

using simd::vec_t;
using simd::Vec;
using vf = vec_t<float>;
using vi = vec_t<int32_t>;
constexpr int LF = Vec<float>::lanes;

// A vector of N elements of type E (any N, e.g. int64 or double lanes matching a float vector).
template <typename E, int N>
struct VecN {
  typedef E type __attribute__((vector_size(sizeof(E) * N)));
};
template <typename E, int N>
using vecn_t = typename VecN<E, N>::type;

template <typename T> struct IntOf;
template <> struct IntOf<float> { using type = int32_t; };
template <> struct IntOf<double> { using type = int64_t; };

// exp(x): n = round(x / ln2), r = x - n ln2 (Cody-Waite, two parts), exp(r) by its Taylor
// polynomial to degree 7 (truncation 5e-9 relative for |r| <= ln2 / 2), then the 2^n scaling
// in two steps so results in the subnormal range are rounded once. Overflow -> inf,
// underflow -> 0, NaN -> NaN.
inline vf exp(vf x) {
  const vf xc = x < -104.0f ? simd::splat(-104.0f) : (x > 89.0f ? simd::splat(89.0f) : x);
  const vf magic = simd::splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  vf t = xc * 1.44269504088896341f + magic;
  const vf n = t - magic;
  vf r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = simd::splat(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const vi ni = __builtin_convertvector(n, vi);
  const vi n1 = ni / 2, n2 = ni - n1;
  vf s1, s2;
  const vi b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
  std::memcpy(&s1, &b1, sizeof(s1));
  std::memcpy(&s2, &b2, sizeof(s2));
  vf res = p * s1 * s2;
  res = x > 88.72283935546875f ? simd::splat(std::numeric_limits<float>::infinity()) : res;
  res = x < -104.0f ? simd::splat(0.0f) : res;
  return x != x ? x : res;
}

inline vf sigmoid(vf x) { return 1.0f / (1.0f + exp(-x)); }

// tanh: the odd Taylor series to x^15 for |x| < 0.4 (truncation < 3e-10 relative), else
// 1 - 2 / (exp(2|x|) + 1) (cancellation at most 1.6x there); the sign restored.
inline vf tanh(vf x) {
  const vf ax = x < 0.0f ? -x : x;
  const vf e = exp(ax + ax);
  const vf big = 1.0f - 2.0f / (e + 1.0f);
  const vf x2 = ax * ax;
  vf p = simd::splat(-929569.0f / 638512875.0f);
  p = p * x2 + 21844.0f / 6081075.0f;
  p = p * x2 + -1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 + -17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 + -1.0f / 3.0f;
  const vf small = ax + ax * x2 * p;
  const vf r = ax < 0.4f ? small : big;
  return x < 0.0f ? -r : r;
}

// NaN-propagating running maximum: v replaces m when v > m or v is NaN (torch's rule).
template <typename V>
inline V nanmax(V m, V v) {
  return (v > m) | (v != v) ? v : m;
}
template <typename T>
inline T nanmax_s(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// y[i] = f(x[i]) for i < n with a vector function f; the tail runs through f in a padded vector.
template <typename F>
inline void map1(const float* x, float* y, int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + LF <= n; i += LF) simd::storeu(y + i, f(simd::loadu(x + i)));
  if (i < n) {
    float buf[LF] = {};
    std::memcpy(buf, x + i, sizeof(float) * (n - i));
    simd::storeu(buf, f(simd::loadu(buf)));
    std::memcpy(y + i, buf, sizeof(float) * (n - i));
  }
}

// y[i] = f(a[i], b[i]).
template <typename F>
inline void map2(const float* a, const float* b, float* y, int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + LF <= n; i += LF) simd::storeu(y + i, f(simd::loadu(a + i), simd::loadu(b + i)));
  if (i < n) {
    float ba[LF] = {}, bb[LF] = {};
    std::memcpy(ba, a + i, sizeof(float) * (n - i));
    std::memcpy(bb, b + i, sizeof(float) * (n - i));
    simd::storeu(ba, f(simd::loadu(ba), simd::loadu(bb)));
    std::memcpy(y + i, ba, sizeof(float) * (n - i));
  }
}

// Scalar exp with the same bits as the vector one (for float) or libm (double).
inline float exp_s(float x) {
  vf v = simd::splat(x);
  return exp(v)[0];
}
inline double exp_s(double x) { return std::exp(x); }

}  // namespace vm
}  // namespace IMKERN_ISA
}  // namespace imkern
