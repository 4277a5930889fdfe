// Float L*a*b* rows on native vectors (compiled per ISA, included by lab.cpp): the formulas of
// color::rgb_to_lab_float / lab_to_rgb_float (skimage.color.rgb2lab / lab2rgb) with the
// functor's constants and operations in the image's type, pow and cbrt replaced by vector
// versions (VMath: within about one ulp of the type, as std::pow / std::cbrt, which the scalar
// functor and the tails of the rows use). Branches are selects; blocks
// with NaN, infinities or huge values go to the functor (moderate()). float32 rgb_to_lab with
// FMA takes labf::fast (below): the same formulas without division or double lanes.
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

#if defined(__FMA__)
// ---- float32 rgb_to_lab with FMA (AVX2, AVX-512): no division, no double lanes -------------
// The sRGB gamma ((x + 0.055) / 1.055)^2.4 for 0.04045 < x < 15.9: v = x + 0.055 (one
// rounding) = 2^e m, m in [1, 2); v^2.4 / 1.055^2.4 = m^2.4 * (2^(2.4 e) / 1.055^2.4): m^2.4 by
// a degree-4 polynomial per eighth of [1, 2) (the top three mantissa bits pick the segment,
// t = m - its middle, |t| <= 1/16; Chebyshev interpolation at 64 nodes, truncation 6e-8
// relative with the float coefficients), the scale by e in [-4, 3]; both read from 8-entry
// tables by permutes (vpermps). Relative error <= 2.8e-7 over the range (the scalar float
// pow's is 6.2e-7), most of it the rounding of v.
// The cube root: r ~ x^(-1/3) from the exponent bits (error < 3.5%), two Newton steps
// r (4 - x r^3) / 3 (error ~1e-5), y = x r^2, then one Newton step on y with the residual
// y^3 - x taken exactly (y^2 = y2 + e2 by FMA): within 0.52 ulp (the scalar float cbrt is
// within ~2 ulp).
// These rows are latency-bound, not throughput-bound, on AVX2 above all: ~200 vector operations
// per block in one dependency chain (gamma, matrix, cube root) fill the FP scheduler before the
// next block's can start. So the chain is kept short (Estrin's scheme for the polynomial, three
// dependent operations per Newton step, one range test per block with the rest out of line),
// and two blocks go through each stage side by side (compute<2>, Row3F's kPairs). 4K image,
// one thread, Zen 4: AVX2 36.5 -> 32 (short chain) -> 25.7 ms (pairs); AVX-512 27.8 -> 21.8 ->
// 20.5 ms. Every pixel's bits are the same with or without pairs.
namespace fast {
using V = fv<float>;
using VI = simd::vec_t<int32_t>;

IMKERN_ALWAYS_INLINE inline V fma(V a, V b, V c) {
#if defined(__AVX512F__)
  return reinterpret_cast<V>(
      _mm512_fmadd_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b), reinterpret_cast<__m512>(c)));
#else
  return reinterpret_cast<V>(
      _mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b), reinterpret_cast<__m256>(c)));
#endif
}
// t[i & 7] per lane (t: 8 floats, repeated to the vector's width for AVX-512)
IMKERN_ALWAYS_INLINE inline V perm8(const float* t, VI i) {
#if defined(__AVX512F__)
  return reinterpret_cast<V>(
      _mm512_permutexvar_ps(reinterpret_cast<__m512i>(i & 7), _mm512_broadcast_f32x8(_mm256_loadu_ps(t))));
#else
  return reinterpret_cast<V>(_mm256_permutevar8x32_ps(_mm256_loadu_ps(t), reinterpret_cast<__m256i>(i)));
#endif
}

struct Gamma {
  static constexpr float kPoly[5][8] = {
      {0x1.281808p+0f, 0x1.82b01ep+0f, 0x1.ebacdap+0f, 0x1.31d272p+1f, 0x1.75934p+1f, 0x1.c15c54p+1f, 0x1.0ab7p+2f,
       0x1.3902e8p+2f},
      {0x1.4e6972p+1f, 0x1.86c224p+1f, 0x1.c18818p+1f, 0x1.fe9702p+1f, 0x1.1ee7ep+2f, 0x1.3f8b9cp+2f, 0x1.612ad2p+2f,
       0x1.83baeep+2f},
      {0x1.b8a30ap+0f, 0x1.ccaefcp+0f, 0x1.df801ap+0f, 0x1.f14528p+0f, 0x1.01114cp+1f, 0x1.091ab4p+1f, 0x1.10ca9p+1f,
       0x1.182a94p+1f},
      {0x1.ba74eep-3f, 0x1.9de034p-3f, 0x1.85be04p-3f, 0x1.7107dep-3f, 0x1.5f044p-3f, 0x1.4f2bfap-3f, 0x1.4119f4p-3f,
       0x1.3480e4p-3f},
      {-0x1.f3f8dap-6f, -0x1.a2676cp-6f, -0x1.647498p-6f, -0x1.34258cp-6f, -0x1.0da506p-6f, -0x1.dcc91cp-7f,
       -0x1.a941e2p-7f, -0x1.7e3484p-7f},
  };
  // 2^(2.4 e) / 1.055^2.4 for e = -4 .. 3
  static constexpr float kScale[8] = {0x1.290fbp-10f, 0x1.87f988p-8f, 0x1.029b5cp-5f, 0x1.553bdcp-3f,
                                      0x1.c242bep-1f, 0x1.290fbp+2f,  0x1.87f988p+4f, 0x1.029b5cp+7f};
  // sRGB -> linear for every lane (x < 15.9; NaN-free)
  IMKERN_ALWAYS_INLINE static V linear(V x) {
    const V v = x + 0.055f;
    const VI bits = reinterpret_cast<VI>(v);
    const VI seg = (bits >> 20) & 7, e = (bits >> 23) - 123;
    const V t = reinterpret_cast<V>((bits & 0x000FFFFF) | 0x3F800000) - 1.0625f;
    // Estrin's scheme (c0 + c1 t) + t^2 ((c2 + c3 t) + c4 t^2): 3 FMA latencies instead of
    // Horner's 4 (the rows are latency-bound on AVX2; see cbrt)
    const V t2 = t * t;
    const V a = fma(perm8(kPoly[1], seg), t, perm8(kPoly[0], seg));
    const V b = fma(perm8(kPoly[3], seg), t, perm8(kPoly[2], seg));
    const V p = fma(fma(perm8(kPoly[4], seg), t2, b), t2, a);
    const V pw = p * perm8(kScale, e);
    return x > 0.04045f ? pw : x * (1.0f / 12.92f);
  }
};

// cube root for x > 0 normal (other lanes: unspecified values, no traps)
IMKERN_ALWAYS_INLINE inline V cbrt(V x) {
  const VI bits = reinterpret_cast<VI>(x);
  const VI third = __builtin_convertvector(__builtin_convertvector(bits, V) * (1.0f / 3), VI);
  V r = reinterpret_cast<V>(0x54a21d2a - third);
  // Newton as r (4 - x r^3) / 3 = 4/3 r - x/3 r^4: three dependent operations per step
  const V x3 = x * (1.0f / 3);
  for (int i = 0; i < 2; ++i) {
    const V q = r * r;
    r = fma(-x3, q * q, r * (4.0f / 3));
  }
  const V r2 = r * r;
  const V y = x * r2;
  const V y2 = y * y;
  const V e2 = fma(y, y, -y2);
  const V res = fma(e2, y, fma(y2, y, -x));  // y^3 - x
  return fma(-res, r2 * (1.0f / 3), y);
}

struct RgbToLab {
  // blocks outside [-1000, 15.9): moderate ones by the general lanes, others by the functor
  __attribute__((noinline)) static bool other(const V* in, V* out) {
    if (!moderate<float>(in)) return false;
    return RgbToLabLanes<float>{}.lanes(in, out);
  }
  IMKERN_ALWAYS_INLINE static bool fast_range(const V* in) {
    const V lo = V{} - 1000.0f, hi = V{} + 15.9f;
    return simd::all_lanes((in[0] < hi) & (in[0] >= lo) & (in[1] < hi) & (in[1] >= lo) & (in[2] < hi) & (in[2] >= lo));
  }
  // N blocks stage by stage (each stage's N x 3 chains side by side in program order)
  template <int N>
  IMKERN_ALWAYS_INLINE static void compute(const V (*in)[3], V (*out)[3]) {
    V l[N][3], xyz[N][3];
    for (int k = 0; k < N; ++k)
      for (int c = 0; c < 3; ++c) l[k][c] = Gamma::linear(in[k][c]);
    // the matrix with the white point's X and Z folded in
    for (int k = 0; k < N; ++k) {
      const V l0 = l[k][0], l1 = l[k][1], l2 = l[k][2];
      xyz[k][0] = float(0.412453 / 0.95047) * l0 + float(0.357580 / 0.95047) * l1 + float(0.180423 / 0.95047) * l2;
      xyz[k][1] = 0.212671f * l0 + 0.715160f * l1 + 0.072169f * l2;
      xyz[k][2] = float(0.019334 / 1.08883) * l0 + float(0.119193 / 1.08883) * l1 + float(0.950227 / 1.08883) * l2;
    }
    for (int k = 0; k < N; ++k)
      for (int i = 0; i < 3; ++i)
        xyz[k][i] = xyz[k][i] > 0.008856f ? cbrt(xyz[k][i]) : 7.787f * xyz[k][i] + float(16.0 / 116.0);
    for (int k = 0; k < N; ++k) {
      out[k][0] = 116.0f * xyz[k][1] - 16.0f;
      out[k][1] = 500.0f * (xyz[k][0] - xyz[k][1]);
      out[k][2] = 200.0f * (xyz[k][1] - xyz[k][2]);
    }
  }
  IMKERN_ALWAYS_INLINE bool lanes(const V* in, V* out) const {
    if (!fast_range(in)) return other(in, out);
    compute<1>(reinterpret_cast<const V(*)[3]>(in), reinterpret_cast<V(*)[3]>(out));
    return true;
  }
  static constexpr bool kPairs = true;
  // two blocks at once, or false (then each block goes through lanes())
  IMKERN_ALWAYS_INLINE bool lanes2(const V (*in)[3], V (*out)[3]) const {
    if (!(fast_range(in[0]) && fast_range(in[1]))) return false;
    compute<2>(in, out);
    return true;
  }
};
}  // namespace fast
#endif

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
