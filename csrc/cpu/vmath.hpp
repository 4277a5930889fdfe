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

// The wide float64 lanes (vd) are only passed between inlined functions of one ISA.
#pragma GCC diagnostic ignored "-Wpsabi"

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
  // Vector casts reinterpret the bits (GCC semantics): 2^n1 and 2^n2 built from exponents.
  const vf s1 = (vf)((n1 + 127) << 23), s2 = (vf)((n2 + 127) << 23);
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

// GELU (exact, erf form) in float32 lanes, within ~3 ulp of x * Phi(x) (Phi the standard normal
// CDF). Two regions by t = |x|:
//  * t < 0.75: Phi(x) = 0.5 + x P(x^2), P a degree-4 fit of (Phi(x) - 0.5) / x (relative error
//    2.5e-9); 0.5 + x P cancels at most 1.2x there.
//  * t >= 0.75: the upper tail Q(t) = Phi(-t) = exp(-t^2 / 2) R(t), R(t) = s G(s') with
//    s = 1 / (t + 2) and G a degree-8 fit in s' = s A - B (the s-range mapped to [-1, 1];
//    relative error 2.3e-8 on [0.75, 14.6]); gelu = x Q(t) for x < 0, x - x Q(t) for x > 0.
// exp(-t^2 / 2) is evaluated without the rounding of t^2: t = h + l with h on a 2^-8 grid
// (h^2 / 2 exact in float32), -t^2 / 2 = -h^2 / 2 - l (h + l / 2), the exact part is
// range-reduced exactly (Cody-Waite) and the small rest subtracted from the reduced argument.
// The 2^n scaling comes last, in two steps, so subnormal results are rounded once.
// t is clamped at 14.6 (gelu(-14.6) underflows to 0); gelu(+inf) = +inf, gelu(-inf) = NaN
// (as torch and the float64 reference: -inf * 0), NaN propagates.
inline void gelu_parts(vf x, vf& small, vf& r, vf& p, vf& s1, vf& s2, vf& xc) {
  const vf ax = x < 0.0f ? -x : x;
  const vf t = ax > 14.6f ? simd::splat(14.6f) : ax;  // NaN stays NaN
  xc = x < 0.0f ? -t : t;
  // small region
  const vf u = x * x;
  vf q = simd::splat(1.0294056372011106e-04f);
  q = q * u + -1.1812847795002973e-03f;
  q = q * u + 9.972348733294169e-03f;
  q = q * u + -6.649029490627442e-02f;
  q = q * u + 3.9894227943272076e-01f;
  small = 0.5f + x * q;
  // R(t) = s G(s A - B)
  const vf s = 1.0f / (t + 2.0f);
  const vf sp = s * 6.5920577617328515f - 1.3971119133574006f;
  vf g = simd::splat(9.846839467195934e-06f);
  g = g * sp + -5.172829683633621e-05f;
  g = g * sp + -1.984424472712701e-05f;
  g = g * sp + 6.496948201099511e-04f;
  g = g * sp + -8.349358481209264e-04f;
  g = g * sp + -7.763613156868508e-03f;
  g = g * sp + 1.666174014681132e-02f;
  g = g * sp + 1.942386501946056e-01f;
  g = g * sp + 6.227494420470907e-01f;
  r = s * g;
  // exp(-t^2 / 2) = p 2^n
  const vf grid = simd::splat(49152.0f);  // 1.5 * 2^15: t + grid rounds t to a multiple of 2^-8
  const vf h = (t + grid) - grid;
  const vf l = t - h;
  const vf a = h * h * -0.5f;  // exact: h has at most 12 significant bits
  const vf magic = simd::splat(12582912.0f);
  const vf nf = (a * 1.44269504088896341f + magic) - magic;
  vf rr = a - nf * 0.693359375f;  // exact
  rr = rr - nf * -2.12194440e-4f;
  rr = rr - l * (h + 0.5f * l);
  vf e = simd::splat(1.0f / 5040.0f);
  e = e * rr + 1.0f / 720.0f;
  e = e * rr + 1.0f / 120.0f;
  e = e * rr + 1.0f / 24.0f;
  e = e * rr + 1.0f / 6.0f;
  e = e * rr + 0.5f;
  e = e * rr + 1.0f;
  e = e * rr + 1.0f;
  p = e;
  const vi ni = __builtin_convertvector(nf, vi);
  const vi n1 = ni / 2, n2 = ni - n1;
  s1 = (vf)((n1 + 127) << 23);
  s2 = (vf)((n2 + 127) << 23);
}

inline vf gelu(vf x) {
  vf small, r, p, s1, s2, xc;
  gelu_parts(x, small, r, p, s1, s2, xc);
  const vf xq = ((xc * r * p) * s1) * s2;  // x Q(|x|)
  const vf big = x < 0.0f ? xq : x - xq;
  const vf ax = x < 0.0f ? -x : x;
  vf res = ax < 0.75f ? x * small : big;
  res = x == -std::numeric_limits<float>::infinity() ? simd::splat(std::numeric_limits<float>::quiet_NaN()) : res;
  return x != x ? x : res;
}

// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi), with the parts of gelu;
// the float64 reference gives NaN at +-inf (inf * 0), so does this.
inline vf gelu_grad(vf x) {
  vf small, r, p, s1, s2, xc;
  gelu_parts(x, small, r, p, s1, s2, xc);
  const vf ax = x < 0.0f ? -x : x;
  const vf xk = xc * 0.3989422804014327f;
  const auto is_small = ax < 0.75f;
  const vf v = is_small ? xk : (x < 0.0f ? r + xk : xk - r);
  const vf ek = ((v * p) * s1) * s2;
  vf res = is_small ? small + ek : (x < 0.0f ? ek : 1.0f + ek);
  res = ax == std::numeric_limits<float>::infinity() ? simd::splat(std::numeric_limits<float>::quiet_NaN()) : res;
  return x != x ? x : res;
}

// Native float64 lanes (for float32 math evaluated in double precision), and the float32
// vector with as many lanes. Oversized generic vectors are avoided: GCC lowers their
// selects element by element.
using vd = vec_t<double>;
using vl = vec_t<int64_t>;
constexpr int LD = Vec<double>::lanes;
using vfh = vecn_t<float, LD>;

// y[i] = f(x[i]) on float32 data with f computed on float64 lanes (LD at a time; the tail
// padded with zeros into one vector).
template <typename F>
inline void map1_d(const float* x, float* y, int64_t n, F&& f) {
  auto one = [&](const float* src, float* dst) {
    vfh h;
    std::memcpy(&h, src, sizeof(h));
    const vfh r = __builtin_convertvector(f(__builtin_convertvector(h, vd)), vfh);
    std::memcpy(dst, &r, sizeof(r));
  };
  int64_t i = 0;
  for (; i + LD <= n; i += LD) one(x + i, y + i);
  if (i < n) {
    float buf[LD] = {};
    std::memcpy(buf, x + i, sizeof(float) * (n - i));
    one(buf, buf);
    std::memcpy(y + i, buf, sizeof(float) * (n - i));
  }
}

// y[i] = f(a[i], b[i]) likewise.
template <typename F>
inline void map2_d(const float* a, const float* b, float* y, int64_t n, F&& f) {
  auto one = [&](const float* pa, const float* pb, float* dst) {
    vfh ha, hb;
    std::memcpy(&ha, pa, sizeof(ha));
    std::memcpy(&hb, pb, sizeof(hb));
    const vfh r = __builtin_convertvector(f(__builtin_convertvector(ha, vd), __builtin_convertvector(hb, vd)), vfh);
    std::memcpy(dst, &r, sizeof(r));
  };
  int64_t i = 0;
  for (; i + LD <= n; i += LD) one(a + i, b + i, y + i);
  if (i < n) {
    float ba[LD] = {}, bb[LD] = {};
    std::memcpy(ba, a + i, sizeof(float) * (n - i));
    std::memcpy(bb, b + i, sizeof(float) * (n - i));
    one(ba, bb, ba);
    std::memcpy(y + i, ba, sizeof(float) * (n - i));
  }
}

// exp in float64 lanes for arguments clamped to [-700, 700] (relative error ~1e-11: the
// Taylor polynomial to degree 9 after Cody-Waite reduction); NaN propagates. Used where a
// float32 result needs an exp computed with margin.
inline vd exp_d(vd x) {
  const vd xc = x < -700.0 ? vd{} - 700.0 : (x > 700.0 ? vd{} + 700.0 : x);
  const vd magic = vd{} + 6755399441055744.0;  // 1.5 * 2^52
  const vd t = xc * 1.4426950408889634074 + magic;  // round(x / ln2) in the low mantissa bits
  const vd n = t - magic;
  vd r = xc - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  vd p = vd{} + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // n as an integer without a float->int64 conversion (none before AVX-512DQ): the bit
  // patterns of t and magic differ by exactly n.
  const vd s = (vd)(((vl)t - (vl)magic + 1023) << 52);
  const vd res = p * s;
  return x != x ? x : res;
}

// erfc(z) in float64 lanes with relative error < 1.2e-7 everywhere (the Chebyshev-fitted
// form t * exp(-z^2 + P(t)), t = 1 / (1 + z / 2), of Numerical Recipes' erfcc), reflected
// for z < 0 as 2 - erfc(-z). Enough for float32 results within ~2 ulp.
inline vd erfc_d(vd z) {
  const vd az = z < 0.0 ? -z : z;
  const vd t = 1.0 / (1.0 + 0.5 * az);
  vd p = vd{} + 0.17087277;
  p = p * t + -0.82215223;
  p = p * t + 1.48851587;
  p = p * t + -1.13520398;
  p = p * t + 0.27886807;
  p = p * t + -0.18628806;
  p = p * t + 0.09678418;
  p = p * t + 0.37409196;
  p = p * t + 1.00002368;
  p = p * t + -1.26551223;
  const vd r = t * exp_d(-az * az + p);
  const vd res = z < 0.0 ? 2.0 - r : r;
  return z != z ? z : res;
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
