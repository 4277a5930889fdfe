// Float L*a*b* rows on native vectors (compiled per ISA, included by lab.cpp): the formulas of
// color::rgb_to_lab_float / lab_to_rgb_float (skimage.color.rgb2lab / lab2rgb) with the
// functor's constants and operations in the image's type, pow and cbrt replaced by vector
// versions (VMath: within about one ulp of the type, as std::pow / std::cbrt, which the scalar
// functor and the tails of the rows use). Branches are selects; blocks
// with NaN, infinities or huge values go to the functor (moderate()).
#pragma once
#include <cmath>

#include "color/pixel_map.hpp"

#if defined(__SSE4_1__)
namespace imkern {
namespace IMKERN_ISA {
namespace labf {

// log2, exp2, pow and cbrt on lanes of T, for x > 0 of moderate size (the rows only see
// those; other lanes give unspecified values and raise nothing).
//   log2: x = 2^e m, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <
//         0.172, by its odd series (to s^11 for float, s^21 for double: truncation below the
//         type's rounding).
//   exp2: y = n + f, |f| <= 1/2, 2^f = e^(f ln 2) by its Taylor series (degree 8 / 14), times
//         2^n in the exponent bits.
//   cbrt: an exponent-bits estimate (error < 4%), then Halley steps y (y^3 + 2x) / (2 y^3 + x),
//         which cube the error (2 for float, 3 for double).
template <typename T>
struct VMath;

// float lanes as many as T's: the type of cbrt's estimate
typedef float f_half __attribute__((vector_size(simd::kBytes / 2)));
typedef int32_t i_half __attribute__((vector_size(simd::kBytes / 2)));
template <typename T>
struct Est {
  using FV = simd::vec_t<float>;
  using FI = simd::vec_t<int32_t>;
};
template <>
struct Est<double> {
  using FV = f_half;
  using FI = i_half;
};

template <typename T>
struct VMathCommon {
  using V = fv<T>;
  using I = simd::vec_t<std::conditional_t<sizeof(T) == 4, int32_t, int64_t>>;
  static constexpr int kMant = sizeof(T) == 4 ? 23 : 52, kBias = sizeof(T) == 4 ? 127 : 1023;
  template <int N>
  IMKERN_ALWAYS_INLINE static V log2_pos(V x, const T (&odd)[N]) {
    const I bits = reinterpret_cast<I>(x);
    const I one = (I{} + kBias) << kMant;
    I e = (bits >> kMant) - kBias;
    V m = reinterpret_cast<V>((bits & (((I{} + 1) << kMant) - 1)) | one);
    const auto big = m > T(1.4142135623730951);
    m = big ? m * T(0.5) : m;
    e = big ? e + 1 : e;
    const V s = (m - T(1)) / (m + T(1)), s2 = s * s;
    V p = V{} + odd[N - 1];
    for (int i = N - 2; i >= 0; --i) p = p * s2 + odd[i];
    const V two_s = T(2) * s;
    return __builtin_convertvector(e, V) + (two_s + two_s * (s2 * p)) * T(1.4426950408889634);
  }
  template <int N>
  IMKERN_ALWAYS_INLINE static V exp2_(V y, const T (&inv_fact)[N]) {
    const V n = simd::vround<_MM_FROUND_TO_NEAREST_INT>(y);
    const V z = (y - n) * T(0.6931471805599453);
    V p = V{} + inv_fact[N - 1];
    for (int i = N - 2; i >= 0; --i) p = p * z + inv_fact[i];
    const V lo = V{} + T(1 - kBias), hi = V{} + T(kBias);
    const V nc = n > hi ? hi : (n < lo ? lo : n);
    return p * reinterpret_cast<V>((__builtin_convertvector(nc, I) + kBias) << kMant);
  }
  template <int Steps>
  IMKERN_ALWAYS_INLINE static V cbrt_pos(V x) {
    // the estimate in float: a third of the bits plus a third of the bias (within 4%)
    using FV = typename Est<T>::FV;
    using FI = typename Est<T>::FI;
    const FV xf = __builtin_convertvector(x, FV);
    const FI third = __builtin_convertvector(__builtin_convertvector(reinterpret_cast<FI>(xf), FV) * (1.0f / 3), FI);
    V y = __builtin_convertvector(reinterpret_cast<FV>(third + 0x2a5137a0), V);
    for (int i = 0; i < Steps; ++i) {
      const V y3 = y * y * y;
      y = y * (y3 + T(2) * x) / (T(2) * y3 + x);
    }
    return y;
  }
};

template <>
struct VMath<double> : VMathCommon<double> {
  static constexpr double kOdd[10] = {1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
                                      1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21};
  static constexpr double kFact[15] = {1.0,          1.0,           1.0 / 2,         1.0 / 6,         1.0 / 24,
                                       1.0 / 120,    1.0 / 720,     1.0 / 5040,      1.0 / 40320,     1.0 / 362880,
                                       1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800, 1.0 / 87178291200};
  IMKERN_ALWAYS_INLINE static V pow_pos(V x, double k) { return exp2_(k * log2_pos(x, kOdd), kFact); }
  IMKERN_ALWAYS_INLINE static V cbrt(V x) { return cbrt_pos<3>(x); }
};
// float32 lanes: pow in float (a few ulp: the cube root divides its relative error by 3); the
// cube root's last Halley step in double lanes (in float it would lose ~2 ulp, which 500 (fx -
// fy) turns into twice the functor's error in a*).
template <>
struct VMath<float> : VMathCommon<float> {
  static constexpr float kOdd[5] = {1.0f / 3, 1.0f / 5, 1.0f / 7, 1.0f / 9, 1.0f / 11};
  static constexpr float kFact[9] = {1.0f, 1.0f, 1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040, 1.0f / 40320};
  IMKERN_ALWAYS_INLINE static V pow_pos(V x, float k) { return exp2_(k * log2_pos(x, kOdd), kFact); }
  // one Halley step in float (error < 1e-4), then one in double lanes, rounded once
  IMKERN_ALWAYS_INLINE static V cbrt(V x) {
    using D = VMath<double>;
    const V y = cbrt_pos<1>(x);
    return map_double(x, y, [](D::V xd, D::V yd) IMKERN_ALWAYS_INLINE {
      const D::V y3 = yd * yd * yd;
      return yd - yd * (y3 - xd) / (2.0 * y3 + xd);
    });
  }
  // f(a, b) on double lanes, per half of the float lanes (split and joined in registers: a
  // memcpy through halves went through the stack, which cost AVX2 a third of its time)
  template <typename F>
  IMKERN_ALWAYS_INLINE static V map_double(V a, V b, F f) {
    using DV = VMath<double>::V;
    DV lo_a, hi_a, lo_b, hi_b;
    split(a, lo_a, hi_a);
    split(b, lo_b, hi_b);
    return join(f(lo_a, lo_b), f(hi_a, hi_b));
  }
  IMKERN_ALWAYS_INLINE static void split(V x, VMath<double>::V& lo, VMath<double>::V& hi) {
    using DV = VMath<double>::V;
#if defined(__AVX512F__)
    const __m512 v = reinterpret_cast<__m512>(x);
    lo = reinterpret_cast<DV>(_mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    hi = reinterpret_cast<DV>(
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
#elif defined(__AVX2__)
    const __m256 v = reinterpret_cast<__m256>(x);
    lo = reinterpret_cast<DV>(_mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    hi = reinterpret_cast<DV>(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
#else
    const __m128 v = reinterpret_cast<__m128>(x);
    lo = reinterpret_cast<DV>(_mm_cvtps_pd(v));
    hi = reinterpret_cast<DV>(_mm_cvtps_pd(_mm_movehl_ps(v, v)));
#endif
  }
  IMKERN_ALWAYS_INLINE static V join(VMath<double>::V lo, VMath<double>::V hi) {
#if defined(__AVX512F__)
    const __m256 l = _mm512_cvtpd_ps(reinterpret_cast<__m512d>(lo)), h = _mm512_cvtpd_ps(reinterpret_cast<__m512d>(hi));
    return reinterpret_cast<V>(
        _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(l)), _mm256_castps_pd(h), 1)));
#elif defined(__AVX2__)
    const __m128 l = _mm256_cvtpd_ps(reinterpret_cast<__m256d>(lo)), h = _mm256_cvtpd_ps(reinterpret_cast<__m256d>(hi));
    return reinterpret_cast<V>(_mm256_insertf128_ps(_mm256_castps128_ps256(l), h, 1));
#else
    return reinterpret_cast<V>(_mm_movelh_ps(_mm_cvtpd_ps(reinterpret_cast<__m128d>(lo)),
                                             _mm_cvtpd_ps(reinterpret_cast<__m128d>(hi))));
#endif
  }
};

// Whether every lane of the three planes is a number of magnitude <= 1000: the vector rows
// take only such blocks, where evaluating in double differs from the functor's T arithmetic by
// rounding alone; a block with NaN, infinities or huge values (where float32 intermediates
// would overflow and double ones not) is left to the functor.
template <typename T>
IMKERN_ALWAYS_INLINE inline bool moderate(const fv<T>* c) {
  const fv<T> lim = fv<T>{} + T(1000);
  return simd::all_lanes((c[0] <= lim) & (c[0] >= -lim) & (c[1] <= lim) & (c[1] >= -lim) & (c[2] <= lim) &
                         (c[2] >= -lim));
}

template <typename T>
struct RgbToLabLanes {
  bool lanes(const fv<T>* in, fv<T>* out) const {
    using M = VMath<T>;
    using V = fv<T>;
    if (!moderate<T>(in)) return false;
    V l[3];
    for (int ch = 0; ch < 3; ++ch) {
      const V x = in[ch];
      l[ch] = x > T(0.04045) ? M::pow_pos((x + T(0.055)) / T(1.055), T(2.4)) : x / T(12.92);
    }
    V xyz[3] = {(T(0.412453) * l[0] + T(0.357580) * l[1] + T(0.180423) * l[2]) / T(0.95047),
                (T(0.212671) * l[0] + T(0.715160) * l[1] + T(0.072169) * l[2]),
                (T(0.019334) * l[0] + T(0.119193) * l[1] + T(0.950227) * l[2]) / T(1.08883)};
    for (int i = 0; i < 3; ++i) xyz[i] = xyz[i] > T(0.008856) ? M::cbrt(xyz[i]) : T(7.787) * xyz[i] + T(16.0 / 116.0);
    out[0] = T(116) * xyz[1] - T(16);
    out[1] = T(500) * (xyz[0] - xyz[1]);
    out[2] = T(200) * (xyz[1] - xyz[2]);
    return true;
  }
};

template <typename T>
struct LabToRgbLanes {
  bool lanes(const fv<T>* in, fv<T>* out) const {
    using M = VMath<T>;
    using V = fv<T>;
    if (!moderate<T>(in)) return false;
    const V y = (in[0] + T(16)) / T(116);
    V f[3] = {in[1] / T(500) + y, y, y - in[2] / T(200)};
    f[2] = f[2] < T(0) ? V{} : f[2];
    for (int i = 0; i < 3; ++i) f[i] = f[i] > T(0.2068966) ? f[i] * f[i] * f[i] : (f[i] - T(16.0 / 116.0)) / T(7.787);
    const V X = f[0] * T(0.95047), Y = f[1], Z = f[2] * T(1.08883);
    const V lin[3] = {T(3.2404813432005266) * X + T(-1.5371515162713185) * Y + T(-0.4985363261688878) * Z,
                      T(-0.9692549499965682) * X + T(1.8759900014898907) * Y + T(0.0415559265582928) * Z,
                      T(0.0556466391351772) * X + T(-0.2040413383665112) * Y + T(1.0573110696453443) * Z};
    for (int i = 0; i < 3; ++i) {
      const V v = lin[i] > T(0.0031308) ? T(1.055) * M::pow_pos(lin[i], T(1) / T(2.4)) - T(0.055) : lin[i] * T(12.92);
      out[i] = v < T(0) ? V{} : (v > T(1) ? V{} + T(1) : v);
    }
    return true;
  }
};

}  // namespace labf
}  // namespace IMKERN_ISA
}  // namespace imkern
#endif
