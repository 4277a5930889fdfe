// Vectorizable math for the nn kernels (compiled per ISA): float32 exp / sigmoid / tanh as
// polynomials on simd::vec_t<float> (within ~1-2 ulp), exp_nonpos (exp for x <= 0, softmax),
// gelu / gelu_grad (within ~6 ulp, float32 lanes throughout), and helpers that apply a vector
// function over an array with the tail padded into one vector, so every element (tail
// included) goes through the same code and gets the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "common/simd.hpp"
#include "common/vops.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif


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

// exp(x) for x <= 0 (NaN and -inf allowed), as the reductions of softmax / cross entropy use
// it: the same reduction as exp, a degree-6 polynomial (one FMA less, as accurate) scaled by
// 2^-30 in its coefficients, times 2^(n + 30) (normal for n >= -150; one rounding for
// subnormal results), and no overflow / special-value selects: x is clamped at
// -104 (exp(-104) rounds to 0, so -inf -> 0), NaN propagates through the arithmetic.
inline vf exp_nonpos(vf x) {
  const vf xc = x < -104.0f ? simd::splat(-104.0f) : x;
  const vf magic = simd::splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const vf t = xc * 1.44269504088896341f + magic;
  const vf n = t - magic;
  vf r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  // 2^-30 exp(r) = 2^-30 (1 + r + r^2 q(r)), q a degree-4 fit (relative error 4.7e-9 for
  // |r| <= ln2 / 2); the coefficients carry the (exact) 2^-30.
  vf p = simd::splat(0x1p-30f * 1.3813143596053123e-3f);
  p = p * r + 0x1p-30f * 8.369418792426586e-3f;
  p = p * r + 0x1p-30f * 4.166845604777336e-2f;
  p = p * r + 0x1p-30f * 1.6666515171527863e-1f;
  p = p * r + 0x1p-30f * 4.999999403953552e-1f;
  p = p * r + 0x1p-30f;
  p = p * r + 0x1p-30f;
  // n (in [-150, 0]) sits in the low mantissa bits of t; 2^(n + 30) is built from its exponent.
  const vf s = (vf)(((vi)t - (vi)magic + (127 + 30)) << 23);
  return p * s;
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

// GELU (exact, erf form) in float32 lanes, within ~6 ulp of x Phi(x) (Phi the standard normal
// CDF; measured max 4.67 ulp at AVX2 / AVX-512 before the table below, 4.80 on the baseline
// ISA, over 48M points: 12M evenly spaced and 12M random on [-15, 15], 12M random on [-5, 5],
// 0.2M on [-90, 90]; with the table (FMA ISAs, |x| <= 4.2: gelu_table) 4.12, and the
// baseline 5.09, over those plus 12M random on [-4.3, 4.3]), and its derivative.
// With t = |x|: the upper tail
// Q(t) = Phi(-t) = exp(-t^2 / 2) R(t), R(t) = s G(s - s0), s = 1 / (t + 2.5), G one of two fits
// in float32 coefficients: the central one, degree 7 on t in [0, 5] (relative error 4.4e-8,
// s0 = 4 / 15), and the tail one, degree 9 on [0, 14.6] (2e-8, s0 the middle of its s-range;
// the shift 2.5 narrows the s-range enough for degree 9 where 1.5 needed degree 11). A block
// of N vectors whose lanes all have |x| <= 5 (the usual case) runs the central fit alone and
// skips the special-value handling; any other block computes both and keeps the central one
// per lane where t <= 5, so every lane's bits are its own (independent of its neighbours, the
// alignment and the thread split). The central fit saves two FMAs and the selects on the
// common path; together with the one-shift 2^n below, in L1 and single thread on an Intel
// Xeon (Granite Rapids class): AVX-512 0.455 -> 0.380 ns per element, AVX2 0.687 -> 0.592.
// Phi(x) = Q(t) for x < 0 and 1 - Q(t) for x >= 0, so gelu = (x >= 0 ? x : -0) - t Q(t): no
// select between two products, and nothing cancels (t Q(t) <= |x| / 2). The forward takes
// t R(t) = u G, u = t s = t / (t + 2.5) (one divide, as s), with G rewritten in u (s - s0 is
// linear in u): a multiply and two roundings fewer than t (s G) (max 5.45 -> 4.17 ulp); the
// central G then refitted in powers of u (no shift, one op fewer; see gelu_tail).
// With the exp reduction in doubled units, VSCALEFPS and the mask-register test below, on the
// same Xeon (single thread, L2-resident, loaded host, medians): AVX-512 0.433 -> 0.406 ns per
// element, AVX2 0.637 -> 0.592; gelu_grad AVX-512 0.56 -> 0.48, AVX2 0.71 -> 0.675.
// exp(-t^2 / 2) is evaluated without the rounding of t^2: with FMA, the reduced argument
// -t^2 / 2 - n ln2_hi is one fused multiply-add (exact up to its one rounding); without, t = h + l with h on a 2^-8 grid (h^2 / 2 exact in float32)
// and -t^2 / 2 = -h^2 / 2 - l (h + l / 2). The exact part is range-reduced exactly
// (Cody-Waite), the small rest subtracted from the reduced argument, and exp of that is a
// degree-6 fit (|r| <= ln2 / 2, FMA) or the Taylor polynomial to degree 7 (|r| < 0.38).
// The 2^n scaling is applied as 2^(n + 31) (normal for every n >= -157) to the polynomial
// scaled by 2^-31 (in its coefficients, exactly), so a subnormal result is rounded once
// (VSCALEFPS at AVX-512: the same bits in one instruction). t is
// clamped at 14.6 (gelu(-14.6) underflows to -0).
// gelu(+inf) = +inf, gelu(-inf) = NaN (as torch and the float64 reference: -inf * 0); NaN
// propagates through the arithmetic.
#if defined(__FMA__)
// -(a * b) - c with one rounding (V: vf; a template so only its own width is instantiated).
template <typename V>
inline V fnmsub(V a, V b, V c) {
  if constexpr (sizeof(V) == 16) {
    return (V)_mm_fnmsub_ps((__m128)a, (__m128)b, (__m128)c);
  } else if constexpr (sizeof(V) == 32) {
    return (V)_mm256_fnmsub_ps((__m256)a, (__m256)b, (__m256)c);
  } else {
    return (V)_mm512_fnmsub_ps((__m512)a, (__m512)b, (__m512)c);
  }
}

// c - a * b and a * b + c with one rounding, written out where the bits must not depend on
// whether GCC contracts the expression in a given inlining context.
template <typename V>
inline V fnmadd(V a, V b, V c) {
  if constexpr (sizeof(V) == 16) {
    return (V)_mm_fnmadd_ps((__m128)a, (__m128)b, (__m128)c);
  } else if constexpr (sizeof(V) == 32) {
    return (V)_mm256_fnmadd_ps((__m256)a, (__m256)b, (__m256)c);
  } else {
    return (V)_mm512_fnmadd_ps((__m512)a, (__m512)b, (__m512)c);
  }
}
template <typename V>
inline V fmadd(V a, V b, V c) {
  if constexpr (sizeof(V) == 16) {
    return (V)_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c);
  } else if constexpr (sizeof(V) == 32) {
    return (V)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
  } else {
    return (V)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
  }
}
#else
template <typename V>
inline V fnmadd(V a, V b, V c) {
  return c - a * b;  // no FMA: nothing to contract
}
template <typename V>
inline V fmadd(V a, V b, V c) {
  return a * b + c;
}
#endif

// x86 MINPS / MAXPS, one instruction: a < b ? a : b and a > b ? a : b, b where either is NaN
// (GCC keeps the vector-extension ternary as a compare and a blend).
template <typename V>
inline V vmin(V a, V b) {
#if defined(__SSE2__)
  if constexpr (sizeof(V) == 16) return (V)_mm_min_ps((__m128)a, (__m128)b);
#endif
#if defined(__AVX__)
  if constexpr (sizeof(V) == 32) return (V)_mm256_min_ps((__m256)a, (__m256)b);
#endif
#if defined(__AVX512F__)
  // (the builtin, not _mm512_min_ps, whose _mm512_undefined_ps() source trips GCC 12's
  // -Wmaybe-uninitialized; all 16 lanes are written)
#if defined(__clang__)
  if constexpr (sizeof(V) == 64) return (V)_mm512_min_ps((__m512)a, (__m512)b);
#else
  if constexpr (sizeof(V) == 64)
    return (V)__builtin_ia32_minps512_mask((__v16sf)a, (__v16sf)b, (__v16sf)a, (__mmask16)-1, _MM_FROUND_CUR_DIRECTION);
#endif
#endif
  return a < b ? a : b;
}
template <typename V>
inline V vmax(V a, V b) {
#if defined(__SSE2__)
  if constexpr (sizeof(V) == 16) return (V)_mm_max_ps((__m128)a, (__m128)b);
#endif
#if defined(__AVX__)
  if constexpr (sizeof(V) == 32) return (V)_mm256_max_ps((__m256)a, (__m256)b);
#endif
#if defined(__AVX512F__)
#if defined(__clang__)
  if constexpr (sizeof(V) == 64) return (V)_mm512_max_ps((__m512)a, (__m512)b);
#else
  if constexpr (sizeof(V) == 64)
    return (V)__builtin_ia32_maxps512_mask((__v16sf)a, (__v16sf)b, (__v16sf)a, (__mmask16)-1, _MM_FROUND_CUR_DIRECTION);
#endif
#endif
  return a > b ? a : b;
}

struct GeluTail {
  vf t;  // |x| (clamped to 14.6 on the general path)
  vf s;  // U = false: s = 1 / (t + 2.5), R(t) = s * g; U = true: u = t s = t / (t + 2.5), t R(t) = u * g
  vf g;  // G(s - s0) (or G as a polynomial in u (central) or in u - u0 (tail)), the central or the tail fit
  vf E;  // exp(-t^2 / 2), rounded once (also where it is subnormal)
};

// The central interval of gelu_tail's two fits: |x| <= kGeluCentral.
constexpr float kGeluCentral = 5.0f;
// The FMA ISAs' table interval, |x| <= kGeluTable (see gelu_table)
constexpr float kGeluTable = 4.2f;

// N vectors, each step written for all N before the next (see gelu_tail)
#define IMKERN_GELU_STEP for (int j = 0; j < N; ++j)

// Horner's scheme for N vectors, each step for all N before the next: h = (..(c[0] w + c[1]) w
// + ..) w + c[K - 1], every step one fused multiply-add (as the chains written out were).
// side(0) is called before the first step and side(i) after the step that adds c[i], so a
// caller's other chain can be written between the steps (gelu_exp_parts, gelu_one_parts).
struct GeluNoSide {
  void operator()(int) const {}
};
template <int N, int K, typename Side = GeluNoSide>
IMKERN_ALWAYS_INLINE inline void gelu_horner(const vf* w, const float (&c)[K], vf* h, Side side = {}) {
  side(0);
  IMKERN_GELU_STEP h[j] = w[j] * c[0] + c[1];
  side(1);
#pragma GCC unroll 16
  for (int i = 2; i < K; ++i) {
    IMKERN_GELU_STEP h[j] = h[j] * w[j] + c[i];
    side(i);
  }
}

// exp(-t^2 / 2) for N vectors of t >= 0 (t <= 14.6 or NaN), in two parts so gelu_tail can
// interleave its other chain: gelu_exp_parts gives fl (n + 158 in its low mantissa bits), nf = n
// and e, the polynomial of the reduced argument (times 2^-31 unless VSCALEFPS applies 2^n), and
// gelu_exp_scale e 2^n, rounded once (also where it is subnormal). The algorithm: see gelu_tail.
#if defined(__AVX512F__)
constexpr bool kGeluScalef = sizeof(vf) == 64;
#else
constexpr bool kGeluScalef = false;
#endif
// Unit = true (gelu_one): e unscaled (the polynomial itself: 2^31 times the bits of the
// scaled one, exactly) and fl = 1.5 * 2^23 + n, n in its low mantissa bits as a two's
// complement (so fl's bits shifted left by 23 are n 2^23, the exponent step of 2^n).
// side: called between the polynomial's steps (gelu_horner), for gelu_one_parts' G.
#if defined(__FMA__)
template <int N, bool Unit = false, typename Side = GeluNoSide>
IMKERN_ALWAYS_INLINE inline void gelu_exp_parts(const vf* t, vf* fl, vf* nf, vf* e, Side side = {}) {
  vf rr[N];
  // 1.5 * 2^23 + 158 (see gelu_tail); 1.5 * 2^23 for Unit (the same n: both even)
  const vf magic = simd::splat(Unit ? 12582912.0f : 12583070.0f);
  constexpr float k = kGeluScalef || Unit ? 1.0f : 0x1p-31f;
  // t^2 / 2 = b + e2 exactly: th = t / 2 (exact for t >= 2^-125; below, b and e2 are 0 and
  // exp(-th t) is 1 exactly, as for t = 0), b = th * t rounded, e2 = fma(th, t, -b).
  // -b - n ln2_hi is exact; the small rest (-e2 - n ln2_lo) is summed on its own, in parallel.
  // In doubled units (w = 2 r: every rounding the same bits as at scale 1, two ops fewer
  // than forming t^2 / 2 and its rounding error apart): t2 = t^2 rounded gives n (t2 / 2 is
  // t^2 / 2 rounded), w = -t^2 - 2 n ln2_hi rounded once (fused; 2 n ln2_hi exact: n has at
  // most 8 bits), minus 2 n ln2_lo.
  IMKERN_GELU_STEP {
    const vf t2 = t[j] * t[j];
    fl[j] = t2 * (-0.5f * 1.44269504088896341f) + magic;
    nf[j] = fl[j] - magic;
    // 2 n ln2_hi (exact); Unit: straight from fl, fl 2 ln2_hi - 1.5 * 2^23 * 2 ln2_hi (exact, as
    // is the difference: one rounding of an exact result), off the chain through nf
    const vf m = Unit ? fl[j] * (2.0f * 0.693359375f) - 17448960.0f : nf[j] * (2.0f * 0.693359375f);
    rr[j] = fnmadd(nf[j], simd::splat(2.0f * -2.12194440e-4f), fnmsub(t[j], t[j], m));  // |w| <= ln2 (+ 2e-5)
  }
  // 1 + r + r^2 q(r), the degree-6 fit of exp_nonpos, in w = 2 r (the coefficient of w^i
  // carries 2^-i, exactly)
  static constexpr float kE[7] = {k * 0x1p-6f * 1.3813143596053123e-3f, k * 0x1p-5f * 8.369418792426586e-3f,
                                  k * 0x1p-4f * 4.166845604777336e-2f,  k * 0x1p-3f * 1.6666515171527863e-1f,
                                  k * 0x1p-2f * 4.999999403953552e-1f,  k * 0.5f,
                                  k};
  gelu_horner<N>(rr, kE, e, side);
}
#endif

template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_exp_scale(const vf* e, const vf* fl, const vf* nf, vf* E) {
#if defined(__AVX512F__)
  if constexpr (kGeluScalef) {
    // e 2^n in one instruction (VSCALEFPS: the exact product rounded once, as the shift and
    // the multiply below; the same bits).
    (void)fl;
#if defined(__clang__)
    IMKERN_GELU_STEP E[j] = (vf)_mm512_scalef_ps((__m512)e[j], (__m512)nf[j]);
#else
    // (the builtin: see vmin)
    IMKERN_GELU_STEP E[j] = (vf)__builtin_ia32_scalefps512_mask((__v16sf)e[j], (__v16sf)nf[j], (__v16sf)e[j],
                                                                (__mmask16)-1, _MM_FROUND_CUR_DIRECTION);
#endif
  } else
#endif
  {
    (void)nf;
    // 2^(n + 31) from the low bits of fl (n + 158 there, the bits above shifted out).
    IMKERN_GELU_STEP E[j] = e[j] * (vf)((vi)fl[j] << 23);
  }
}

// The mixed blocks' factor of the far pieces: E = e 2^n where t > kGeluTable (or NaN), exactly
// 1 elsewhere (the near lanes' m - f 1 = m - f: their bits), by a merge-masked VSCALEFPS (one
// op; the scaling and then a select were two). Only the merged AVX-512 path (kGeluMerged: 16
// lanes, so kGeluScalef) calls it; AVX2 scales every lane and masks E in gelu's final AND / ANDN
// (gelu_far_setup), so there is no other-width version (the one kept before could never run).
#if defined(__AVX512F__)
// The lanes beyond the table, t > kGeluTable or NaN (t = |x|), as a mask register
IMKERN_ALWAYS_INLINE inline __mmask16 gelu_far_mask(vf t) {
  return _mm512_cmp_ps_mask((__m512)t, _mm512_set1_ps(kGeluTable), _CMP_NLE_UQ);
}
#endif
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_exp_scale_far(const vf* t, const vf* e, const vf* fl, const vf* nf, vf* E) {
  static_assert(N > 0 && kGeluScalef, "gelu_exp_scale_far: the AVX-512 merged path only");
  (void)fl;
#if defined(__AVX512F__)
  for (int j = 0; j < N; ++j) {
    const __mmask16 far = gelu_far_mask(t[j]);
#if defined(__clang__)
    E[j] = (vf)_mm512_mask_scalef_ps(_mm512_set1_ps(1.0f), far, (__m512)e[j], (__m512)nf[j]);
#else
    E[j] = (vf)__builtin_ia32_scalefps512_mask((__v16sf)e[j], (__v16sf)nf[j], (__v16sf)_mm512_set1_ps(1.0f), far,
                                               _MM_FROUND_CUR_DIRECTION);
#endif
  }
#else
  (void)t, (void)e, (void)nf, (void)E;
#endif
}

// gelu_tail's tail fit G (t in [0, 14.6]) for N vectors of its variable s: U = true
// u = t / (t + 2.5), else 1 / (t + 2.5)
template <int N, bool U>
IMKERN_ALWAYS_INLINE inline void gelu_tail_fit(const vf* s, vf* h) {
  static constexpr float kU[10] = {-0.0816079229f, -0.0259717945f, 0.119099513f, 0.107151404f, -0.110843711f,
                                   -0.231810376f,  0.146647215f,   0.503602445f, -0.942984581f, 0.772846818f};
  static constexpr float kS[10] = {311.3095f, -39.629814f, -72.69257f, 26.160011f, 10.824581f,
                                   -9.055093f, -2.2913628f, 3.1475153f, 2.3574615f, 0.7728468f};
  vf w[N];
  IMKERN_GELU_STEP w[j] = s[j] - (U ? 0.426900595f : 0.22923976f);
  if constexpr (U) {
    gelu_horner<N>(w, kU, h);
  } else {
    gelu_horner<N>(w, kS, h);
  }
}

// Two independent chains (the divide and G; the exp) that meet only in the caller's final
// products, so neither waits on the other; the exp's 2^(n + 31) scaling is applied to the
// polynomial alone (an exact power-of-two product while normal, one rounding where E is
// subnormal), and the caller multiplies E last.
// N vectors at once, every step written for all N before the next (IMKERN_GELU_STEP), so the
// instruction stream interleaves N independent dependency chains: with 8 lanes and two FMA
// ports the chain of one vector (divide, two Horner polynomials) is too long for the
// out-of-order window to hide. N = 2: in L1, single thread, AVX2 19.2-20.2 -> 17.5-18.0
// cycles per vector, AVX-512 30.3 -> 29.4 (N = 4 spills at AVX2). The same bits as N = 1.
// Fits = kGeluCentralFit: every lane has t <= kGeluCentral (the caller checked), G is the
// central fit alone; kGeluBothFits: both fits, the central one kept where t <= kGeluCentral,
// so a lane gets the same bits whichever path its vector takes; kGeluTailFit: the tail fit
// alone (the FMA forward's far lanes, see gelu).
enum : int { kGeluCentralFit = 0, kGeluBothFits = 1, kGeluTailFit = 2 };
template <int N, int Fits, bool U>
IMKERN_ALWAYS_INLINE inline void gelu_tail(const vf* t, GeluTail* o) {
  vf v[N], g[N], fl[N], nf[N], rr[N], e[N];
  // 1.5 * 2^23 + 158: adding it rounds to an integer n and leaves n + 158 in the low mantissa
  // bits (158 even: the same ties-to-even rounding as 1.5 * 2^23), so 2^(n + 31) is those
  // bits shifted into the exponent field, one shift.
  const vf magic = simd::splat(12583070.0f);
  // 2^-31 carried by the exp coefficients (exact: every Horner step's bits are those of the
  // unscaled polynomial times 2^-31), unless VSCALEFPS applies 2^n
  constexpr float k = kGeluScalef ? 1.0f : 0x1p-31f;
  IMKERN_GELU_STEP o[j].t = t[j];
  if constexpr (U) {
    IMKERN_GELU_STEP o[j].s = t[j] / (t[j] + 2.5f);
  } else {
    IMKERN_GELU_STEP o[j].s = 1.0f / (t[j] + 2.5f);
  }
#if defined(__FMA__)
  (void)magic;
  (void)rr;
  (void)k;
  gelu_exp_parts<N>(t, fl, nf, e);
#else
  // No fused multiply-add: t = h + l with h on a 2^-8 grid, h^2 / 2 exact.
  IMKERN_GELU_STEP {
    const vf grid = simd::splat(49152.0f);  // 1.5 * 2^15: t + grid rounds t to a multiple of 2^-8
    const vf h = (t[j] + grid) - grid;
    const vf l = t[j] - h;
    const vf a = (h * -0.5f) * h;  // exact: h has at most 12 significant bits
    fl[j] = a * 1.44269504088896341f + magic;
    nf[j] = fl[j] - magic;
    vf r = a - nf[j] * 0.693359375f;  // exact
    r = r - nf[j] * -2.12194440e-4f;
    rr[j] = r - l * (h + 0.5f * l);  // |rr| < 0.38
  }
  IMKERN_GELU_STEP e[j] = rr[j] * (k / 5040.0f) + k / 720.0f;
  IMKERN_GELU_STEP e[j] = e[j] * rr[j] + k / 120.0f;
  IMKERN_GELU_STEP e[j] = e[j] * rr[j] + k / 24.0f;
  IMKERN_GELU_STEP e[j] = e[j] * rr[j] + k / 6.0f;
  IMKERN_GELU_STEP e[j] = e[j] * rr[j] + k * 0.5f;
  IMKERN_GELU_STEP e[j] = e[j] * rr[j] + k;
  IMKERN_GELU_STEP e[j] = e[j] * rr[j] + k;
#endif
  // The central G (t <= 5, degree 7) in powers of s - s0 (s0 mid-range)
  // (U: the same fit in powers of u itself, no shift: u in [0, 2 / 3] is well enough
  // conditioned (sum |c_i| u^i <= 3.9 |G|) and the subtraction was one of the ~31 FP-port
  // ops; the coefficients refitted in float32 (relative, then rounded highest degree first
  // with the rest refitted, then a +-1 ulp search on the simulated u G; the monomial
  // evaluation's roundings, not the fit, set the error): max 4.07 -> 4.67 ulp (AVX2 =
  // AVX-512; baseline 4.49 -> 4.80) over the 48M points above. Single thread on the Xeon
  // (loaded host, medians): AVX-512 L2-resident 0.365 -> 0.354 ns per element, 25.7 MB
  // 0.337 -> 0.324; AVX2 L2-resident 0.551 -> 0.543, 25.7 MB unchanged within 1%)
  if constexpr (Fits == kGeluTailFit) {
    (void)v;
  } else if constexpr (U) {
    IMKERN_GELU_STEP g[j] = o[j].s * 0.09397624f + -0.18144707f;
    IMKERN_GELU_STEP g[j] = g[j] * o[j].s + -0.0036968028f;
    IMKERN_GELU_STEP g[j] = g[j] * o[j].s + 0.0167404f;
    IMKERN_GELU_STEP g[j] = g[j] * o[j].s + 0.2978241f;
    IMKERN_GELU_STEP g[j] = g[j] * o[j].s + 0.16915353f;
    IMKERN_GELU_STEP g[j] = g[j] * o[j].s + -1.2433791f;
    IMKERN_GELU_STEP g[j] = g[j] * o[j].s + 1.25f;
  } else {
    IMKERN_GELU_STEP v[j] = o[j].s - 0.26666668f;
    IMKERN_GELU_STEP g[j] = v[j] * -57.35502f + 9.236852f;
    IMKERN_GELU_STEP g[j] = g[j] * v[j] + 14.385952f;
    IMKERN_GELU_STEP g[j] = g[j] * v[j] + -6.6410985f;
    IMKERN_GELU_STEP g[j] = g[j] * v[j] + -3.4724822f;
    IMKERN_GELU_STEP g[j] = g[j] * v[j] + 2.820555f;
    IMKERN_GELU_STEP g[j] = g[j] * v[j] + 2.581653f;
    IMKERN_GELU_STEP g[j] = g[j] * v[j] + 0.8653512f;
  }
  if constexpr (Fits != kGeluCentralFit) {
    // The tail G (t in [0, 14.6], degree 9), kept where t > 5 (or NaN)
    vf h[N], sv[N];
    IMKERN_GELU_STEP sv[j] = o[j].s;
    gelu_tail_fit<N, U>(sv, h);
    if constexpr (Fits == kGeluTailFit) {
      IMKERN_GELU_STEP g[j] = h[j];
    } else {
      IMKERN_GELU_STEP g[j] = t[j] <= kGeluCentral ? g[j] : h[j];
    }
  }
  IMKERN_GELU_STEP o[j].g = g[j];
  {
    vf E[N];
    gelu_exp_scale<N>(e, fl, nf, E);
    IMKERN_GELU_STEP o[j].E = E[j];
  }
}

// Whether every lane of the N vectors t has t <= b (false where any is NaN): one test per N
// vectors.
template <int N>
IMKERN_ALWAYS_INLINE inline bool gelu_all_le(const vf* t, float b) {
#if defined(__AVX512F__)
  if constexpr (sizeof(vf) == 64) {
    // compares into a mask register, chained, then KORTEST (GCC's vector compare would
    // materialize the mask as a vector and test it again)
    __mmask16 in = _mm512_cmp_ps_mask((__m512)t[0], _mm512_set1_ps(b), _CMP_LE_OQ);  // false for NaN
    for (int j = 1; j < N; ++j) in = _mm512_mask_cmp_ps_mask(in, (__m512)t[j], _mm512_set1_ps(b), _CMP_LE_OQ);
    return _kortestc_mask16_u8(in, in);
  } else
#endif
  {
    vi in = (vi)(t[0] <= b);  // false for NaN
    for (int j = 1; j < N; ++j) in &= (vi)(t[j] <= b);
    return simd::all_lanes(in);
  }
}

// t = |x| for N vectors and GeluTail for each; fin(q, wide) then makes the results, with
// wide a std::integral_constant: false where every lane is finite with |x| <= kGeluCentral
// (the usual case: one test per N vectors, then the central fit alone and no special-value
// handling), true otherwise (t clamped at 14.6, both fits, NaN / inf lanes).
template <int N, bool U, typename F>
IMKERN_ALWAYS_INLINE inline void gelu_eval(const vf* x, F&& fin) {
  vf t[N];
  GeluTail q[N];
  IMKERN_GELU_STEP t[j] = (vf)((vi)x[j] & (int32_t)0x7fffffff);
  if (__builtin_expect(gelu_all_le<N>(t, kGeluCentral), 1)) {
    gelu_tail<N, kGeluCentralFit, U>(t, q);
    fin(q, std::false_type{});
  } else {
    IMKERN_GELU_STEP t[j] = vmin(simd::splat(14.6f), t[j]);  // NaN stays NaN
    gelu_tail<N, kGeluBothFits, U>(t, q);
    fin(q, std::true_type{});
  }
}

#if defined(__FMA__)
// The FMA forward's central interval, t = |x| <= kGeluTable: f(t) = t Q(t) (so gelu =
// (x >= 0 ? x : -0) - f) by a table of 8 pieces of width h = 9/16 centred on j h
// (j = 0..7, t < 7.5 h = 4.21875), a degree-7 polynomial in r = t - j h on each: no divide
// and no exp. j = round(t / h) by one FMA (t (1 / h) + 1.5 * 2^23 leaves j in the low
// mantissa bits, the permute's index as it stands); r exact (j h has 7 significant bits,
// and t is within a factor 2 of j h for j >= 1: Sterbenz), so no rounding of the reduction
// enters the result, which has a condition number up to ~t^2 for x < 0. The coefficients
// come from one VPERMPS each (entries 0..7 of a row: j <= 7 leaves index bit 3 clear, so
// AVX-512's 16-entry permute reads them as AVX2's 8-entry one does; the same arithmetic at
// both: the same bits, tested). Entries 8..15 hold the far pieces (see gelu). Each
// piece fitted for relative error in float64 (Lawson-weighted least squares over r a little
// beyond the piece, for the rounding of t / h), the coefficients rounded to float32 highest
// degree first with the rest refitted; piece 0 has c0 = 0 and c1 = 1/2 (f(t) = t / 2 - ...,
// correct down to subnormal t). Max 4.12 ulp measured (60M points, see above), near
// x = -4.2, where Horner's terms are largest beside the result (c1 r / c0 up to ~1.2).
// Op count per vector (AVX-512, from the compiled loop): |x|, the compare, 1 FMA + 2 for j
// and r, 8 permutes, 7 FMAs, 2 for the sign: ~22, ~31 for the divide-and-exp form (which the
// far lanes keep: gelu_tail); on the Xeon (GNR), single thread, L2-resident, medians:
// AVX-512 0.46 -> 0.37 ns per element (~11.5 cycles per vector at ~2 GHz: the two ports
// that take 512-bit FP ops and permutes are full), AVX2 0.59 -> 0.43. On Zen 4 the permutes
// go to its shuffle pipes, not the two FMA pipes that bound the divide-and-exp form there.
alignas(64) inline constexpr float kGeluTab[8][16] = {
    {0.0f, 0.161374331f, 0.146581337f, 0.0772092417f, 0.0275050625f, 0.00691284705f, 0.00124563975f, 0.000162096898f,
     0.379375756f, 0.387277842f, 0.391254365f, 0.393513203f, 0.394911826f, 0.395835131f, 0.396475464f, 0.396937251f},
    {0.5f, 0.0953184292f, -0.108066708f, -0.116350159f, -0.0591897443f, -0.0190369282f, -0.0041571972f, -0.000634137774f,
     0.00814813655f, 0.00383592234f, 0.00207815995f, 0.0012424814f, 0.000798552297f, 0.000542267167f, 0.000384465966f, 0.000282198307f},
    {-0.398942292f, -0.286688745f, -0.0777985677f, 0.0407135673f, 0.0486013815f, 0.0225844998f, 0.00629696576f, 0.00115799985f,
     -0.00245495001f, -0.000923683168f, -0.000414306298f, -0.000210654805f, -0.000117557051f, -7.04594349e-05f, -4.46767663e-05f, -2.96449889e-05f},
    {4.15287928e-07f, 0.117610469f, 0.108628049f, 0.0311332811f, -0.0126461247f, -0.0140080303f, -0.00557537982f, -0.00129478355f,
     0.00063367351f, 0.000193368149f, 7.22631667e-05f, 3.13743913e-05f, 1.5244239e-05f, 8.07991455e-06f, 4.58823706e-06f, 2.75484877e-06f},
    {0.0664817244f, 0.0267528892f, -0.0287515614f, -0.0313180722f, -0.00768433372f, 0.00356624788f, 0.00301865395f, 0.000970850233f,
     -0.000141823781f, -3.80878118e-05f, -1.18428916e-05f, -4.38737698e-06f, -1.85524357e-06f, -8.69349549e-07f, -4.42029602e-07f, -2.3993536e-07f},
    {8.65601251e-05f, -0.0233348757f, -0.0112798f, 0.00704230694f, 0.00717290631f, 0.00115416374f, -0.000845656847f, -0.000494068372f,
     2.16237913e-05f, 6.90328443e-06f, 1.80722566e-06f, 5.75706167e-07f, 2.12977099e-07f, 8.85548559e-08f, 4.04241973e-08f, 2.03824104e-08f},
    {-0.0104205022f, -0.001630874f, 0.00661475956f, 0.002750549f, -0.00171652518f, -0.00127924385f, -7.55333022e-05f, 0.00015350616f,
     0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    {0.00115318724f, 0.00319593796f, 0.000352244533f, -0.00164176757f, -0.000378293946f, 0.000384250394f, 0.000160223732f, -1.4154668e-05f,
     0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
};

// d gelu / dx = Phi(x) + x phi(x) = k(t) for x < 0 and 1 - k(t) for x >= 0, with
// k(t) = Q(t) - t phi(t) = f'(t): the same pieces and reduction as kGeluTab, k fitted on its
// own (not f's derivative: 30x more accurate), relative to max(|k|, 1e-3) (k crosses 0 at
// t = 0.7518). Absolute error <= 7.1e-8 and relative 7.3e-6 where |k| > 1e-3 (max 3.7 ulp
// away from the crossing) in a float64 simulation over 8M points on [-4.2, 4.2]. Entries 8..15:
// the far pieces of Pg(t) = k(t) / exp(-t^2 / 2) = Q(t) / exp(-t^2 / 2) - t / sqrt(2 pi)
// (degree 5, as kGeluTab's; relative error <= 2.6 * 2^-24 simulated, k's max relative error
// for x < -4.2 measured 4.0 -> 3.6 * 2^-24).
alignas(64) inline constexpr float kGeluGradTab[8][16] = {
    {0.5f, 0.0953184292f, -0.108066708f, -0.116350159f, -0.0591897443f, -0.0190369282f, -0.00415719766f, -0.00063413789f,
     -1.58522999f, -2.16491985f, -2.73670244f, -3.30426836f, -3.86933708f, -4.43281126f, -4.99520636f, -5.55683899f},
    {-0.797884583f, -0.57337743f, -0.155596912f, 0.0814271271f, 0.0972026885f, 0.0451689959f, 0.0125939436f, 0.0023160025f,
     -0.418508798f, -0.410606712f, -0.406630188f, -0.404371381f, -0.402972758f, -0.402049452f, -0.40140909f, -0.400947303f},
    {7.21376026e-08f, 0.352831572f, 0.325884581f, 0.0933998451f, -0.0379388481f, -0.0420241207f, -0.0167259984f, -0.00388431596f,
     0.00407372601f, 0.00191778759f, 0.00103903445f, 0.000621226209f, 0.000399270793f, 0.000271131343f, 0.000192231964f, 0.000141098804f},
    {0.26595974f, 0.107006796f, -0.115033761f, -0.125271246f, -0.0307273436f, 0.0142653501f, 0.0120727997f, 0.00388301047f,
     -0.000816146261f, -0.000307877548f, -0.000138099f, -7.02175093e-05f, -3.91854555e-05f, -2.34864001e-05f, -1.48922236e-05f, -9.88120428e-06f},
    {2.27031578e-05f, -0.116679169f, -0.0564167574f, 0.0352117009f, 0.0358843878f, 0.0057721301f, -0.00423428183f, -0.00247183582f,
     0.000152377383f, 4.92361323e-05f, 1.8299912e-05f, 7.9181882e-06f, 3.83865563e-06f, 2.0314535e-06f, 1.1522975e-06f, 6.9086741e-07f},
    {-0.0599968396f, -0.00965641718f, 0.0405090898f, 0.016470192f, -0.0106072854f, -0.0076875235f, -0.000394214527f, 0.0009338698f,
     -2.07175017e-05f, -7.64357901e-06f, -2.37337326e-06f, -8.78643732e-07f, -3.71397761e-07f, -1.73991566e-07f, -8.84537599e-08f, -4.90246101e-08f},
    {0.000562635134f, 0.0224052146f, 0.00264169299f, -0.0114955213f, -0.00284726545f, 0.00267636101f, 0.00118254358f, -8.38392516e-05f,
     0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    {0.00859932229f, -0.000984850456f, -0.0068026334f, 0.000288559619f, 0.00261570723f, 0.000108196684f, -0.000518291257f, -0.000113684277f,
     0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
};

// tab[j] per lane, j the low 3 bits of idx (VPERMPS; the table is read as one vector)
// (V: vf, a template so only its own width is instantiated)
template <typename V>
IMKERN_ALWAYS_INLINE inline V gelu_lookup(const float* tab, V idx) {
  static_assert(sizeof(V) == 32 || sizeof(V) == 64, "the FMA ISAs have 8 or 16 lanes");
  if constexpr (sizeof(V) == 32) {
    return (V)_mm256_permutevar8x32_ps(_mm256_load_ps(tab), (__m256i)idx);
  } else {
#if defined(__clang__)
    return (V)_mm512_permutexvar_ps((__m512i)idx, _mm512_load_ps(tab));
#else
    // (the builtin: see vmin)
    const __m512 v = _mm512_load_ps(tab);
    return (V)__builtin_ia32_permvarsf512_mask((__v16sf)v, (__v16si)idx, (__v16sf)v, (__mmask16)-1);
#endif
  }
}

// The piecewise polynomial tab (kGeluTab: f = t Q(t); kGeluGradTab: f') at N vectors of t
// (a lane with t > kGeluTable gets a meaningless value)
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_table(const vf* t, const float (*tab)[16], vf* f) {
  vf fl[N], r[N];
  const vf magic = simd::splat(12582912.0f);  // 1.5 * 2^23
  IMKERN_GELU_STEP fl[j] = fmadd(t[j], simd::splat(16.0f / 9.0f), magic);
  IMKERN_GELU_STEP r[j] = fnmadd(fl[j] - magic, simd::splat(0.5625f), t[j]);  // exact
  IMKERN_GELU_STEP f[j] = gelu_lookup(tab[7], fl[j]);
  for (int k = 6; k >= 0; --k) {
    IMKERN_GELU_STEP f[j] = fmadd(f[j], r[j], gelu_lookup(tab[k], fl[j]));
  }
}
// A mixed block's polynomial per lane: the near piece of tab (entries 0..7, degree 7; as
// gelu_table, the same bits) where t <= kGeluTable, else the far piece (entries 8..15,
// degree 5, width w = 1.4f centred on i w, i = 3..10: index i + 5 from one FMA as for the near
// pieces, r = t - i w rounded: the far functions are smooth, condition number < 1). tc = t
// clamped at 14.6. AVX-512 (kGeluMerged): one Horner over both kinds of piece (16-entry
// permutes; the far ones' zero c6, c7 leave f = 0 exactly until c5: the same bits as a
// degree-5 Horner) into f; AVX2: gelu_table into f and a degree-5 Horner on 8-entry permutes
// into ff, each meaningful on its own lanes only (no blend: the caller masks them, see gelu).
constexpr bool kGeluMerged = sizeof(vf) == 64;
// ~m & v (the AVX2 path's far-lane mask): VANDNPS written out, as GCC turns the vector
// expression into VPBLENDVB with zero (more uops on recent Intel cores)
template <typename I, typename V>
IMKERN_ALWAYS_INLINE inline V gelu_andnot(I m, V v) {
  if constexpr (sizeof(V) == 32) {
    return (V)_mm256_andnot_ps((__m256)m, (__m256)v);
  } else {
    return (V)(~m & (I)v);
  }
}
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_pieces(const vf* t, const vf* tc, const float (*tab)[16], vf* f, vf* ff) {
  vf idx[N], r[N];
  const vf magic = simd::splat(12582912.0f);  // 1.5 * 2^23
  const vf magic_far = magic + 5.0f;
#if defined(__AVX512F__)
  if constexpr (kGeluMerged) {
    (void)ff;
    IMKERN_GELU_STEP {
      // far ? b : a, one mask (gelu_far_mask's, shared with gelu_exp_scale_far)
      const __mmask16 far = gelu_far_mask(t[j]);
      const auto sel = [far](float a, float b) IMKERN_ALWAYS_INLINE {
        return (vf)_mm512_mask_blend_ps(far, _mm512_set1_ps(a), _mm512_set1_ps(b));
      };
      const vf mg = sel(12582912.0f, 12582912.0f + 5.0f);
      idx[j] = fmadd(tc[j], sel(16.0f / 9.0f, 1.0f / 1.4f), mg);
      r[j] = fnmadd(idx[j] - mg, sel(0.5625f, 1.4f), tc[j]);  // near: exact
    }
    IMKERN_GELU_STEP f[j] = gelu_lookup(tab[7], idx[j]);
    for (int k = 6; k >= 0; --k) {
      IMKERN_GELU_STEP f[j] = fmadd(f[j], r[j], gelu_lookup(tab[k], idx[j]));
    }
  } else
#endif
  {
    (void)t;
    gelu_table<N>(tc, tab, f);
    IMKERN_GELU_STEP {
      idx[j] = fmadd(tc[j], simd::splat(1.0f / 1.4f), magic_far);
      r[j] = fnmadd(idx[j] - magic_far, simd::splat(1.4f), tc[j]);
    }
    IMKERN_GELU_STEP ff[j] = gelu_lookup(tab[5] + 8, idx[j]);
    for (int k = 4; k >= 0; --k) {
      IMKERN_GELU_STEP ff[j] = fmadd(ff[j], r[j], gelu_lookup(tab[k] + 8, idx[j]));
    }
  }
}

// The mixed blocks' pieces and exp factor, shared by gelu (tab = kGeluTab) and gelu_grad
// (kGeluGradTab): tc = min(t, 14.6) (NaN stays NaN), gelu_pieces into f and ff (see there:
// AVX-512 both kinds of piece in f, ff unused; AVX2 the near table in f, the far Horner in ff),
// E = exp(-tc^2 / 2) from gelu_exp_parts, scaled (AVX-512: exactly 1 on the near lanes,
// gelu_exp_scale_far; AVX2: on every lane, the caller masks it). Inlined: the callers' object
// code is what the two written-out copies gave.
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_far_setup(const vf* t, const float (*tab)[16], vf* f, vf* ff, vf* E) {
  vf tc[N], fl[N], nf[N], e[N];
  IMKERN_GELU_STEP tc[j] = vmin(simd::splat(14.6f), t[j]);  // NaN stays NaN
  gelu_exp_parts<N>(tc, fl, nf, e);
  gelu_pieces<N>(t, tc, tab, f, ff);
  if constexpr (kGeluMerged) {
    gelu_exp_scale_far<N>(t, e, fl, nf, E);  // 1 on the near lanes
  } else {
    gelu_exp_scale<N>(e, fl, nf, E);
  }
}
#endif

// gelu's m: x >= 0 (-0 included) or NaN: x; else -0 (-0 from its bits: splat(-0.0f) is {} +
// -0.0f = +0), so that gelu = m - t Q(t) with nothing to select
IMKERN_ALWAYS_INLINE inline vf gelu_sign_part(vf x) { return vmax((vf)simd::splat(int32_t(0x80000000)), x); }

// gelu's result from gelu_tail's parts (U: s = u, t R = u G): m - (u G) E with m = x or -0 (the
// subtraction fused explicitly); wide (std::true_type): -inf lanes NaN. Shared by the one-fit
// form and the FMA-less path.
template <typename W>
IMKERN_ALWAYS_INLINE inline vf gelu_fin(vf xv, vf m, const GeluTail& q, W) {
  const vf res = fnmadd(q.s * q.g, q.E, m);
  if constexpr (W::value) {
    return (vf)((vi)res | (vi)(xv == -std::numeric_limits<float>::infinity()));
  } else {
    (void)xv;
    return res;
  }
}

#if defined(__FMA__)
// gelu's one-fit form (CpuParams::gelu_table = 0; see gelu): t Q(t) = (u G) E for every lane,
// u = t / (t + 3.75), G a degree-8 fit in u - u0 over t in [0, 14.6] (float32 coefficients,
// rounded highest degree first with the rest refitted, then a +-3 ulp search on the last
// three against the simulated float32 evaluation: u G within 3.45 * 2^-24 of t R(t), the
// degree-9 fit in t / (t + 2.5) that it replaces 3.51), E = exp(-t^2 / 2) by gelu_exp_parts.
// The shift 3.75 is where the degree-8 fit's error dips (minimax over the shift: 2.5e-8 at
// 2.9, 1.45e-8 at 3.75, 5e-8 to 2e-7 elsewhere in [2.5, 4]), as good as degree 9 at 2.5.
// The product is formed as G (u e 2^n): u e is scaled by 2^n with an integer add to its
// exponent field (the vector integer pipes, not the FMA ones) while every lane of the block
// has t <= kGeluOneFast, where u e 2^n is normal (n = 0 where t < 0.83; else u >= 0.18,
// e >= 0.7 and n >= -122), so exact; the result is m - G (u e 2^n) in one fused op (m = x or
// -0, one rounding). Any other block (t > 13, inf, NaN) takes, per lane, that value where
// t <= kGeluOneFast and else m - (u G) E with E = e 2^n rounded once (also where it is
// subnormal; 2^-31 e times 2^(n + 31), both exact), so a lane's bits depend on its own x
// only. 21 FMA-pipe operations and a divide per vector (t^2, n and the reduction 5, the exp
// polynomial 6, G 8, u e, the final fused op), against 23 for the first one-fit form (G 9,
// E formed first, a fused m - (u G) E). The work is latency-bound (the divide and G's 8
// steps, ~55 cycles, in a loop of ~16), so the chain is kept short: G's first step is taken
// in u (c0 u + (c1 - c0 u0)) with w = u - u0 formed beside it; the exp's 2 n ln2_hi comes
// straight from fl (gelu_exp_parts, Unit); u e is formed beside G and scaled off the chain,
// and the last multiply and the subtraction are one fused op; G's steps are written between
// the exp's (gelu_exp_parts' side calls), which the compiler keeps, so the window holds both
// chains. On the Zen 3 VM, single thread, in L1, timed in turns in one process: ~17.9 ->
// ~16.4 cycles per vector (gelu_one, the twenty-fourth session: P = (u G) e, m - P 2^n; 4
// vectors a step, 2 gave ~18.6), then 5% less (0.652 -> 0.624 ns per element, 2048 and 32768
// floats; 25.7 MB, plain stores, 0.98-0.93x); max 4.13 -> 4.03 ulp.
constexpr float kGeluOneFast = 13.0f;
// The rare blocks of the one-fit forms (a lane beyond kGeluOneFast, inf or NaN) run out of
// line: Op::wide<N>(x, y), called with the block's x by value, in registers. With a pointer to
// the caller's x every block stored its x to the stack for the rare call, and the loops spilled
// (Zen 3, in L1, one process, the same bits: gelu 44 stack operands per 4 vectors -> 6, ~1-2%;
// gelu_backward 91 -> 6, 7-9%).
template <typename Op, int N, typename... V>
__attribute__((noinline)) void gelu_out_of_line(vf* y, V... xs) {
  const vf x[N] = {xs...};
  Op::template wide<N>(x, y);
}
template <typename Op, int N, size_t... I>
IMKERN_ALWAYS_INLINE inline void gelu_out_of_line_call(const vf* x, vf* y, std::index_sequence<I...>) {
  gelu_out_of_line<Op, N>(y, x[I]...);
}
template <typename Op, int N>
IMKERN_ALWAYS_INLINE inline void gelu_out_of_line_call(const vf* x, vf* y) {
  gelu_out_of_line_call<Op, N>(x, y, std::make_index_sequence<N>{});
}
// u, G, e and fl for N vectors of t (gelu_one's parts; the same bits on either of its paths)
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_one_parts(const vf* t, vf* u, vf* g, vf* fl, vf* e) {
  vf w[N], nf[N];
  constexpr float u0 = 0.39782017f;
  IMKERN_GELU_STEP u[j] = t[j] / (t[j] + 3.75f);
  IMKERN_GELU_STEP w[j] = u[j] - u0;
  static constexpr float kG[9] = {0.11352366f, -0.02756566f, -0.28028804f, 0.20950271f, 0.5369045f,
                                  -1.4474688f, 1.8200567f,   -1.5053713f,  0.88659364f};
  // Horner's first step in u, so w = u - u0 is formed beside it: c0 (u - u0) + c1 = c0 u + (c1 - c0 u0)
  constexpr float c1 = kG[1] - kG[0] * u0;
  gelu_exp_parts<N, true>(t, fl, nf, e, [&](int i) IMKERN_ALWAYS_INLINE {
    if (i == 0) {
      IMKERN_GELU_STEP g[j] = u[j] * kG[0] + c1;
      IMKERN_GELU_STEP g[j] = g[j] * w[j] + kG[2];
    } else {
      IMKERN_GELU_STEP g[j] = g[j] * w[j] + kG[i + 2];
    }
  });
}
// m - G (u e 2^n), one rounding, m = gelu_sign_part(x) (the scaling by the integer add: exact
// while normal, so t <= kGeluOneFast)
IMKERN_ALWAYS_INLINE inline vf gelu_one_fin(vf m, vf u, vf g, vf fl, vf e) {
  return fnmadd(g, (vf)((vi)(u * e) + ((vi)fl << 23)), m);
}
// The blocks with a lane beyond kGeluOneFast, inf or NaN (rare: out of line)
struct GeluOneWide {
  template <int N>
  static void wide(const vf* x, vf* y) {
    vf t[N], u[N], g[N], fl[N], e[N];
    IMKERN_GELU_STEP t[j] = vmin(simd::splat(14.6f), (vf)((vi)x[j] & (int32_t)0x7fffffff));  // NaN stays NaN
    gelu_one_parts<N>(t, u, g, fl, e);
    IMKERN_GELU_STEP {
      const vf m = gelu_sign_part(x[j]);
      // 2^-31 e 2^(n + 31): fl's low bits + 158 = n + 158 shifted into the exponent field
      const vf E = (e[j] * 0x1p-31f) * (vf)(((vi)fl[j] + 158) << 23);
      const vi far = ~(vi)(t[j] <= kGeluOneFast);  // t > 13 or NaN
      const vf res = (vf)(((vi)fnmadd(u[j] * g[j], E, m) & far) | ((vi)gelu_one_fin(m, u[j], g[j], fl[j], e[j]) & ~far));
      y[j] = (vf)((vi)res | (vi)(x[j] == -std::numeric_limits<float>::infinity()));  // -inf: NaN
    }
  }
};
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_one(const vf* x, vf* y) {
  vf t[N], u[N], g[N], fl[N], e[N];
  IMKERN_GELU_STEP t[j] = (vf)((vi)x[j] & (int32_t)0x7fffffff);
  if (__builtin_expect(!gelu_all_le<N>(t, kGeluOneFast), 0)) {  // (true for NaN)
    gelu_out_of_line_call<GeluOneWide, N>(x, y);
    return;
  }
  gelu_one_parts<N>(t, u, g, fl, e);
  IMKERN_GELU_STEP y[j] = gelu_one_fin(gelu_sign_part(x[j]), u[j], g[j], fl[j], e[j]);
}
#endif

// gelu(-inf) = NaN by OR-ing the all-ones pattern (a NaN) over the lane: a compare and an OR,
// no blend (blendvps takes an FMA port on Zen 4); only on the wide path.
// With FMA: the table (gelu_table) for blocks whose lanes all have |x| <= kGeluTable, else
// per lane the table where |x| <= kGeluTable and the far pieces times exp(-x^2 / 2) elsewhere
// (gelu_pieces; see "Since gelu6" below). Without: gelu_eval's central and tail fits.
// History (gelu5, when the far lanes took gelu_tail's u G E form; the price of the mixed
// blocks, both computed): single thread on the Xeon, inputs with many |x| > 4.2 run slower than the
// divide-and-exp form alone did (AVX-512: U[-8, 8] 0.56-0.63 -> 0.71-0.75 ns per element,
// N(0, 2) 0.44-0.47 -> 0.55-0.57; AVX2 +5-15%), U[-4, 4] and N(0, 1) 25-35% faster. (Taking
// the table only in blocks with a lane within kGeluTable, or the mixed blocks vector by
// vector, measured slower on the mixed inputs: AVX2 U[-8, 8] 0.95 -> 1.05-1.25.)
// Since gelu6 the mixed blocks have no divide and no second fit: far lanes (|x| > 4.2, up to
// the clamp at 14.6) take t Q(t) = P(t) exp(-t^2 / 2), P(t) = t m(t) / sqrt(2 pi) (m the Mills
// ratio Q / phi: smooth, 0.38..0.40) from 8 more pieces (kGeluTab's entries 8..15, degree 5,
// width 1.4; P's fits within ~1 ulp, float32 Horner simulated) and the exp of gelu_tail
// (t^2 unrounded, one rounding of a subnormal E); near lanes keep the table's bits. AVX-512
// runs both kinds of piece through one 16-entry Horner (the far pieces' c6 = c7 = 0 keep f = 0
// exactly until c5), AVX2 the near table and a degree-5 Horner apart (8-entry permutes): the
// same bits. Max ulp over |x| > 4.2 on the negative side 3.24 -> 2.54 (positive side 0.5).
// Ops per mixed vector (AVX-512): |x|, clamp, compare, 3 selects + FMA + 2 for index and r,
// 8 permutes + 7 FMAs, exp 13, select + fnmadd + the -inf OR: ~40 (was ~22 + ~31 + the divide's
// latency + selects); AVX2 ~50 (near 8 permutes + far 6 permutes, one blend; was about the
// same). All-near vectors unchanged (~22). Single thread on the Xeon (GNR), L2-resident, 1000
// reps, medians, load ~5: AVX-512 U[-8, 8] 0.632-0.649 -> 0.493-0.501 ns per element, AVX2
// 0.907-0.930 -> 0.909-0.938 (unchanged); U[-4, 4] and N(0, 1) unchanged within 2%. On Zen 4
// (not measured) the mixed AVX-512 vectors lose the divide (slow there, FMA pipes) and the
// degree-9 fit, and add 3 selects and 8 shuffle-pipe permutes: expected no slower.
// Since gelu7 the mixed blocks select without VBLENDVPS at AVX2 (AND / ANDN on the two
// polynomials and E: 119 -> 108 uops per 2 vectors; U[-8, 8] single thread in L2 ~1.05 ->
// ~0.94 ns per element) and with one mask register at AVX-512 (E = 1 on the near lanes by a
// merge-masked VSCALEFPS: 83 -> 81 uops per 2 vectors). Where the rest goes, per mixed vector:
// the near table ~18 (its bits are what an all-near block gives, so a mixed block cannot skip
// it: each lane depends on its own x only), the exp ~14, P ~14 at AVX2 (0 at AVX-512: shared
// Horner), selects, clamp, sign and -inf ~8: ~54 uops at AVX2 (14 permutes), ~41 at AVX-512,
// against ~22 for an all-near vector. One form for every lane (P E over [0, 14.6]) would be
// ~33 everywhere: faster mixed blocks, slower [-4, 4] and N(0, 1) blocks.
// Lane compaction (tried in gelu8, not kept): mixed groups deferred, their near lanes and far
// lanes left-packed into two L1 buffers (AVX-512 VCOMPRESSPS in a register; AVX2 VPERMPS from
// a nibble table), each buffer run through its own form, the results put back (VEXPANDPS /
// inverse VPERMPS and blends), lanes with x >= 5.3475156 (where gelu(x) == x exactly, every
// float checked) left as x. Same bits per lane, but on the Xeon (GNR) the compaction alone
// cost 0.35 ns per element at AVX-512 (compares into k, compress, expand and GPR-to-k moves
// all issue on port 5: ~13 uops per vector) and 0.60 at AVX2 (~50 ALU uops per 8 lanes with
// the scalar bookkeeping), against 0.50 / 0.90 for the whole mixed computation: U[-8, 8]
// single thread 0.49-0.50 -> 0.56 (AVX-512), 0.90 -> 0.92-0.97 (AVX2), and [-4, 4] / N(0, 1.5)
// up to 10% slower (the bigger loop).
// Table = false (CpuParams::gelu_table 0: the cores whose permutes share the FMA pipes, Zen 1
// to 3): with FMA, every lane by one form, t R(t) E = (u G) E (gelu_one: a degree-8 fit in
// u = t / (t + 3.75) over t in [0, 14.6], the 2^n of E applied by an integer add): no lookups,
// one well-predicted branch. Where the table takes ~16 cycles per all-near vector and ~37 per
// mixed one on Zen 3 (8 + 6 VPERMPS, each holding an FMA pipe ~2 cycles), the one-fit form
// took ~16-17 for every input (the twenty-third session's form: gelu_tail's degree-9 tail fit, E
// formed first), ~15 since gelu_one (see there). Max 4.13 ulp (the first form 3.78, the table
// 4.12) over the 15M points of gelu_acc (test_gelu_float32_ulp's ranges and more). The first
// form on the Zen 3 VM (EPYC 7xx3),
// `bench -k gelu`, 2 threads, two runs each: U[-8, 8] 5.1-5.6 -> 2.67-2.75 ms (1.6-1.8 ->
// 0.6-0.9x torch), N(0, 1) 2.07-2.24 -> 2.49-2.55 ms (0.59-0.69 -> 0.72-0.80x). gelu_grad's
// one-fit form keeps gelu_tail's parts (R = s G, the degree-9 tail fit in s; absolute error
// 1.6e-7, the table 7.1e-8), E's 2^n by the same integer add (gelu_grad_one: the same bits).
// Without FMA Table is ignored.
template <int N, bool Table = true>
IMKERN_ALWAYS_INLINE inline void gelu(const vf* x, vf* y) {
#if defined(__FMA__)
  vf t[N], f[N];
  IMKERN_GELU_STEP t[j] = (vf)((vi)x[j] & (int32_t)0x7fffffff);
  if constexpr (!Table) {
    (void)f, (void)t;
    gelu_one<N>(x, y);
  } else if (__builtin_expect(gelu_all_le<N>(t, kGeluTable), 1)) {
    gelu_table<N>(t, kGeluTab, f);
    IMKERN_GELU_STEP y[j] = gelu_sign_part(x[j]) - f[j];
  } else {
    // Near lanes (t <= kGeluTable) as above, the same bits; far lanes (t > kGeluTable, NaN)
    // t Q(t) = P(t) E, E = exp(-t^2 / 2) (gelu_exp_parts), P(t) = t Q(t) / E by kGeluTab's
    // entries 8..15 (gelu_pieces).
    vf E[N], ff[N];
    gelu_far_setup<N>(t, kGeluTab, f, ff, E);
    IMKERN_GELU_STEP {
      const vf m = gelu_sign_part(x[j]);
      const vi near = (vi)(t[j] <= kGeluTable);  // false for NaN
      vf res;
      if constexpr (kGeluMerged) {
        // near: m - f 1 = m - f (one rounding, as above); far: m - P E
        (void)near;
        res = fnmadd(f[j], E[j], m);
      } else {
        // near: (m - f) - ff 0 = m - f, the same bits; far: (m - 0) - ff E = m - P E. Masks by
        // AND / ANDN, not VBLENDVPS (3 uops on recent Intel cores, 2 selects per vector).
        res = fnmadd(ff[j], gelu_andnot(near, E[j]), m - (vf)(near & (vi)f[j]));
      }
      // -inf: NaN
      y[j] = (vf)((vi)res | (vi)(x[j] == -std::numeric_limits<float>::infinity()));
    }
  }
#else
  // |x| Q(|x|) = (t R) E = (u G) E, |x| clamped; E last.
  // x >= 0: x - t Q; x < 0: -t Q (-0 where it underflows, as x Phi(x)); NaN: NaN.
  gelu_eval<N, true>(x, [&](const GeluTail* q, auto wide) IMKERN_ALWAYS_INLINE {
    IMKERN_GELU_STEP y[j] = gelu_fin(x[j], gelu_sign_part(x[j]), q[j], wide);
  });
#endif
}

template <bool Table = true>
IMKERN_ALWAYS_INLINE inline vf gelu(vf x) {
  vf y;
  gelu<1, Table>(&x, &y);
  return y;
}

// Vectors per gelu / gelu_grad call in the row loops (see gelu_tail); 1 on the baseline ISA.
constexpr int kGeluVecs = LF >= 8 ? 2 : 1;
// Vectors per step of the one-fit forms (gelu_one, gelu_grad_one; on Zen 3 in L1 gelu_one takes
// ~18.6 cycles per vector with 2, ~16.4 with 4)
constexpr int kGeluOneVecs = LF >= 8 ? 4 : 1;

// gelu_grad's result from gelu_tail's parts (R = s G): +-(t / sqrt(2 pi) - R) E + (x >= 0);
// wide (std::true_type): +-inf lanes NaN.
template <typename W>
IMKERN_ALWAYS_INLINE inline vf gelu_grad_fin(vf xv, const GeluTail& q, W) {
  const vi neg = (vi)(xv < 0.0f);
  const vf tk = q.t * 0.3989422804014327f;
  const vf v = (vf)((vi)fnmadd(q.s, q.g, tk) ^ (neg & (int32_t)0x80000000));  // +-(tk - R)
  const vf one = (vf)(~neg & (vi)simd::splat(1.0f));
  const vf res = fmadd(v, q.E, one);
  if constexpr (W::value) {
    const vi inf = ((vi)xv & (int32_t)0x7fffffff) == (int32_t)0x7f800000;
    return (vf)((vi)res | inf);
  } else {
    return res;
  }
}

#if defined(__FMA__)
// gelu_grad's one-fit form (gelu_table 0): gelu_tail's parts (R = s G, the tail fit in
// s = 1 / (t + 2.5)) and gelu_grad_fin, with E's 2^n applied as an integer add to the exponent
// bits of the unscaled exp polynomial (gelu_exp_parts' Unit form) in blocks whose lanes all
// have |x| <= kGeluOneFast (no clamp, no inf lanes there): E normal, so the same value as
// gelu_tail's 2^-31 e times 2^(n + 31) and the same bits (one multiply fewer per vector); any
// other block goes through gelu_tail as before.
// (the blocks with a lane beyond kGeluOneFast, inf or NaN: out of line, gelu_out_of_line)
struct GeluGradOneWide {
  template <int N>
  static void wide(const vf* x, vf* y) {
    vf t[N];
    GeluTail q[N];
    IMKERN_GELU_STEP t[j] = vmin(simd::splat(14.6f), (vf)((vi)x[j] & (int32_t)0x7fffffff));  // NaN stays NaN
    gelu_tail<N, kGeluTailFit, false>(t, q);
    IMKERN_GELU_STEP y[j] = gelu_grad_fin(x[j], q[j], std::true_type{});
  }
};
template <int N>
IMKERN_ALWAYS_INLINE inline void gelu_grad_one(const vf* x, vf* y) {
  vf t[N], fl[N], nf[N], e[N], s[N], g[N];
  GeluTail q[N];
  IMKERN_GELU_STEP t[j] = (vf)((vi)x[j] & (int32_t)0x7fffffff);
  if (__builtin_expect(!gelu_all_le<N>(t, kGeluOneFast), 0)) {  // (true for NaN)
    gelu_out_of_line_call<GeluGradOneWide, N>(x, y);
    return;
  }
  IMKERN_GELU_STEP s[j] = 1.0f / (t[j] + 2.5f);
  gelu_exp_parts<N, true>(t, fl, nf, e);
  gelu_tail_fit<N, false>(s, g);
  IMKERN_GELU_STEP {
    q[j].t = t[j];
    q[j].s = s[j];
    q[j].g = g[j];
    q[j].E = (vf)((vi)e[j] + ((vi)fl[j] << 23));  // e 2^n, exact while normal
    y[j] = gelu_grad_fin(x[j], q[j], std::false_type{});
  }
  (void)nf;
}
#endif

// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi):
// E (R - t / sqrt(2 pi)) for x < 0, 1 + E (t / sqrt(2 pi) - R) for x >= 0, E = exp(-t^2 / 2).
// The float64 reference gives NaN at +-inf (inf * 0); so does this. The two cases by bit
// operations on the compare mask (a sign flip and a masked 1), not blends.
// With FMA: kGeluGradTab's k for blocks whose lanes all have |x| <= kGeluTable, else per lane
// k there and k = Pg(t) E elsewhere (Pg from kGeluGradTab's far pieces, gelu_pieces; no divide
// since gelu6: single thread, L2, AVX-512 U[-8, 8] ~0.79 -> ~0.61 ns per element, N(0, 2)
// ~0.67 -> ~0.55; AVX2 U[-8, 8] ~1.26-1.44 -> ~1.11-1.27; noisy, load ~5); k or 1 - k as
// s k + (1 - s) / 2 with s = -1 (x >= 0) or +1 (x < 0 or -0) from the sign bit: two fused ops,
// no compare.
// Table = false: with FMA, every lane by the tail fit alone (R = s G, t clamped at 14.6; E's
// 2^n by an integer add where every lane is within 13: gelu_grad_one); without FMA Table is
// ignored.
template <int N, bool Table = true>
IMKERN_ALWAYS_INLINE inline void gelu_grad(const vf* x, vf* y) {
#if defined(__FMA__)
  vf t[N], k[N];
  IMKERN_GELU_STEP t[j] = (vf)((vi)x[j] & (int32_t)0x7fffffff);
  if constexpr (!Table) {
    (void)k, (void)t;
    gelu_grad_one<N>(x, y);
  } else if (__builtin_expect(gelu_all_le<N>(t, kGeluTable), 1)) {
    gelu_table<N>(t, kGeluGradTab, k);
    IMKERN_GELU_STEP {
      // s = +1 where the sign bit is set, else -1 (the bits of 1.0 with the sign flipped)
      const vf sg = (vf)(((vi)x[j] & (int32_t)0x80000000) ^ (int32_t)0xbf800000);
      y[j] = fmadd(sg, k[j], fmadd(sg, simd::splat(-0.5f), simd::splat(0.5f)));  // exact 0 / 1, then one rounding
    }
  } else {
    // near lanes as above; far lanes (and NaN) k = Pg(t) E, Pg = k / E = Q / E - t / sqrt(2 pi)
    // (smooth, -14.5..-3.9) from kGeluGradTab's entries 8..15 (gelu_pieces), E from
    // gelu_exp_parts: g = s Pg E + (1 - s) / 2 (the near lanes' fmadd with E = 1: the same
    // bits); +-inf: NaN (as the float64 reference)
    vf E[N], p[N], pf[N];
    gelu_far_setup<N>(t, kGeluGradTab, p, pf, E);
    IMKERN_GELU_STEP {
      const vf sg = (vf)(((vi)x[j] & (int32_t)0x80000000) ^ (int32_t)0xbf800000);
      const vi near = (vi)(t[j] <= kGeluTable);  // false for NaN
      const vf c = fmadd(sg, simd::splat(-0.5f), simd::splat(0.5f));  // exact 0 / 1
      vf res;
      if constexpr (kGeluMerged) {
        (void)near;
        res = fmadd(sg * p[j], E[j], c);
      } else {
        // near: fmadd(s, k, c) (as above) + (s Pg) 0: the same bits (a nonzero sum, or +0
        // plus a signed zero: +0); far: c + 0 = c exactly, then s Pg E + c (AND / ANDN as
        // in gelu)
        res = fmadd(sg * pf[j], gelu_andnot(near, E[j]), fmadd(sg, (vf)(near & (vi)p[j]), c));
      }
      const vi inf = ((vi)x[j] & (int32_t)0x7fffffff) == (int32_t)0x7f800000;
      y[j] = (vf)((vi)res | inf);
    }
  }
#else
  gelu_eval<N, false>(x, [&](const GeluTail* q, auto wide) IMKERN_ALWAYS_INLINE {
    IMKERN_GELU_STEP y[j] = gelu_grad_fin(x[j], q[j], wide);
  });
#endif
}
#undef IMKERN_GELU_STEP

template <bool Table = true>
IMKERN_ALWAYS_INLINE inline vf gelu_grad(vf x) {
  vf y;
  gelu_grad<1, Table>(&x, &y);
  return y;
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
