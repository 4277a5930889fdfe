// Bilateral filter, OpenCV's definition (cv2.bilateralFilter), compiled per ISA.
//
// Window: the pixels of the (2r+1)^2 square within distance r of the center (r = max(d/2, 1)),
// space weight exp(-(i^2 + j^2) / (2 sigma_space^2)) (float). Color distance: |a - b| for one
// channel, the L1 sum over the 3 channels for 3. Color weight exp(-t^2 / (2 sigma_color^2)).
// The product of the two weights is evaluated as one exp2 of t^2 * c1 + (i^2 + j^2) * c2 by a
// polynomial (relative error ~2e-7, the rounding of OpenCV's float tables; uint8 by Horner's rule,
// float32 by Estrin's: see exp2_nonpos), no table:
//  * uint8: results within 1 of OpenCV's (about 1e-5 of the pixels differ by 1, as measured
//    on random images and photographs);
//  * float32: the exact weights of the definition (OpenCV interpolates a table of 4096 * C
//    bins over the image's value range: within 1e-4 of these). As OpenCV, an image whose
//    max - min (with the constant border's zeros) is below FLT_EPSILON is copied unchanged.
// out = sum(w * v) / sum(w), rounded to nearest for uint8. Sums in float32, per pixel in the
// window offsets' order (the same bits whatever the strips, chunks or threads).
// Vectorized across pixels, in column strips swept top to bottom: rows are converted, padded
// by the border rule and stored once per strip in a ring, in lanes (the strip cut into L runs,
// run l in lane l: a horizontal shift is a whole-vector shift, every load aligned; the rows are
// transposed in L x L register blocks on the way in and out; uint8 RGB as packed pixels, one
// 32-bit lane a pixel, straight from and to the bytes: see spread_rgb), the C channels of a
// vector side by side; per window offset one aligned vector load per channel, the weight and
// 2C FMAs per L pixels (uint8 RGB: the offsets of a row in runs, each plane vector loaded once for the pixel
// vectors of a pass that use it). One weight
// per pixel pair (the forward half of the offsets computes its weight rows into small rings,
// the backward half reads them back), computed software-pipelined (uint8 RGB: the color
// distances from a packed copy of the ring rows, 4 bytes a pixel, by byte arithmetic, the bytes
// summed by one VNNI dot product where the CPU has it (AVX512_VNNI / AVX-VNNI); at AVX2,
// where gathers measure faster, every other offset's row read by a gather from a table of its
// weight per integer color distance, made by the same code: the same bits); float32 gray at AVX-512 makes
// those of the rows below in the pixel loop instead (kFuse), summed apart from the others.
// FLOPs/pixel ~ (4 + 3C) * (number of window offsets, ~ 0.785 d^2).
#include <algorithm>
#include <chrono>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "imkern/dispatch.hpp"
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "common/vops.hpp"
#include "filters/filter_rows.hpp"

// GCC 12 reports _mm512_undefined_*() inside the AVX-512 conversion intrinsics as
// maybe-uninitialized (a known false positive of its headers; see color/pixel_map.hpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {

namespace {

using simd::vec_t;
using vf = vec_t<float>;
using vi = vec_t<int32_t>;
constexpr int L = simd::Vec<float>::lanes;

inline vf vabs(vf x) {
  const vi m = reinterpret_cast<vi>(x) & 0x7fffffff;
  return reinterpret_cast<vf>(m);
}

// 2^x for x <= 0 (finite; anything below -125 may give 0 or 2^-125): n = round(x),
// 2^(x - n) by a degree-5 polynomial (relative error 1.9e-7 on [-1/2, 1/2], fit with the
// constant term 1 so 2^0 = 1 exactly), times 2^n. Low = false: the caller knows x >= -125
// (no clamp). Horner: the polynomial by Horner's rule (5 FMAs, 5 deep: one operation fewer than
// Estrin's 6, 3 deep, and slightly more accurate: max relative error 1.6e-7 against 2.0e-7 on
// [-1/2, 1/2]; other bits in ~25% of the results), for uint8 images, whose weight loops are
// bound by their operation count and have independent pixels to hide the latency; float32
// keeps Estrin's (its bits, and the latency of AVX-512's fused loop).
template <bool Low = true, bool Horner = false>
IMKERN_ALWAYS_INLINE inline vf exp2_nonpos(vf x) {
  auto poly = [](vf f) {
    if constexpr (Horner) {
      vf h = f * 0x1.5a8502p-10f + 0x1.3cec16p-7f;
      h = h * f + 0x1.c6baaap-5f;
      h = h * f + 0x1.ebf9b6p-3f;
      h = h * f + 0x1.62e426p-1f;
      return h * f + 1.0f;
    }
    // Estrin's scheme: 3 FMAs deep instead of 5
    const vf f2 = f * f;
    const vf t0 = f * 0x1.62e426p-1f + 1.0f;
    const vf t1 = f * 0x1.c6baaap-5f + 0x1.ebf9b6p-3f;
    const vf t2 = f * 0x1.5a8502p-10f + 0x1.3cec16p-7f;
    return (t2 * f2 + t1) * f2 + t0;
  };
#if defined(__AVX512F__)
  // f = x - round(x) in one instruction (vreduceps, AVX512DQ: part of our x86-64-v4 level),
  // n = x - f = round(x) exactly
  const vf f = reinterpret_cast<vf>(_mm512_reduce_ps(reinterpret_cast<__m512>(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const vf p = poly(f);
  return reinterpret_cast<vf>(_mm512_scalef_ps(reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(x - f)));  // 0 below 2^-149
#else
  if constexpr (Low) {
#if defined(__AVX2__)
    x = reinterpret_cast<vf>(_mm256_max_ps(reinterpret_cast<__m256>(x), _mm256_set1_ps(-125.f)));
#else
    x = x > -125.f ? x : simd::splat(-125.f);
#endif
  }
  const vf magic = simd::splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const vf t = x + magic;
  const vf p = poly(x - (t - magic));
  // p * 2^n as an integer add to p's exponent (n >= -125 and p >= 2^-1/2 keep it normal: the
  // bits of the product): t's low mantissa bits are 2^22 + n, shifted out but for n.
  return reinterpret_cast<vf>(reinterpret_cast<vi>(p) + (reinterpret_cast<vi>(t) << 23));
#endif
}

// p, hidden from the optimizer: the loads at p + constant then use p as their base register with
// a displacement, instead of one register per constant offset (which GCC hoists out of the loop
// over the window offsets, spilling the pixel loop's registers).
template <typename P>
IMKERN_ALWAYS_INLINE inline P* opaque(P* p) {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+r"(p));
#endif
  return p;
}

// v, kept in a register: its uses are not folded into loads from memory (GCC re-reads a value
// loaded once as a memory operand of each use, undoing a loop's load reuse).
IMKERN_ALWAYS_INLINE inline vf in_register(vf v) {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+v"(v));
#endif
  return v;
}

// The L x L transpose in registers (r[t] lane l <- r[l] lane t): log2(L) butterfly stages, the
// rows i and i + b of each stage swapping their off-diagonal b x b blocks (L shuffles a stage).
struct TMasks {
  int32_t lo[5][L], hi[5][L];
};
constexpr TMasks make_tmasks() {
  TMasks m{};
  int st = 0;
  for (int b = L / 2; b >= 1; b /= 2, ++st)
    for (int p = 0; p < L; ++p) {
      const int c = p / (2 * b) * 2 * b, o = p % (2 * b);
      m.lo[st][p] = o < b ? c + o : L + c + o - b;
      m.hi[st][p] = o < b ? c + b + o : L + c + o;
    }
  return m;
}
constexpr TMasks kTMasks = make_tmasks();
IMKERN_ALWAYS_INLINE inline void transpose(vf* v) {
  int st = 0;
#pragma GCC unroll 8
  for (int b = L / 2; b >= 1; b /= 2, ++st) {
    const vi lo = simd::loadu(kTMasks.lo[st]), hi = simd::loadu(kTMasks.hi[st]);
#pragma GCC unroll 16
    for (int i = 0; i < L; ++i)
      if (!(i & b)) {
        const vf a = v[i], c = v[i + b];
        v[i] = simd::shuffle2(a, c, lo);
        v[i + b] = simd::shuffle2(a, c, hi);
      }
  }
}

// Lines to prefetch for reading, a few at each step of a loop of known length (a burst of
// prefetches from memory waits on the fill buffers): up to two spans, all their lines fetched
// by the last step. No allocation: the state of one row.
struct SpreadPrefetch {
  const char *a = nullptr, *ae = nullptr;  // the span being fetched: [a, ae)
  const char *b = nullptr, *be = nullptr;  // the next one
  int64_t per = 0;
  void add(const char* q, int64_t bytes) {
    if (a == ae) {
      a = q;
      ae = q + bytes;
    } else {
      b = q;
      be = q + bytes;
    }
  }
  void plan(int64_t steps) {  // lines per step: all of them within `steps` steps
    const int64_t lines = (ae - a + 63) / 64 + (be - b + 63) / 64;
    per = steps > 0 ? (lines + steps - 1) / steps : lines;
  }
  IMKERN_ALWAYS_INLINE void step() {
    for (int64_t e = 0; e < per; ++e) {
      if (a >= ae) {
        if (b == be) return;
        a = b;
        ae = be;
        b = be = nullptr;
      }
      __builtin_prefetch(a, 0, 3);
      a += 64;
    }
  }
};

// Strip width in pixels (a multiple of 64): the strip's rings (k plane rows of C channels,
// cw_rows weight rows) take about half the L2 (measured on Zen 4 at d = 9: strips of 256 to
// 1920 pixels within noise; the bound keeps large windows on wide images out of memory).
inline int64_t bilateral_strip(int k, int C, int cw_rows) {
  const int64_t per_px = 4 * (static_cast<int64_t>(k) * C + cw_rows);
  const int64_t px = static_cast<int64_t>(params().strip_l2) / 2 / per_px;
  return std::max<int64_t>(64, px / 64 * 64);
}

// The exponent of one pair weight (log2 units): t^2 * g2 + s, t the L1 color distance of b and a
// (for one channel the difference itself: its square is the same). Clamp: kept >= -200 (float32
// images, whose t may be anything) where exp2 has no clamp of its own (AVX-512: below SSE4.1 and
// AVX2 exp2 clamps at -125, which gives the same weight, NaN included).
template <bool Clamp>
IMKERN_ALWAYS_INLINE inline vf dist_exponent(vf dist, vf g2, vf s) {
  vf e = dist * dist * g2 + s;
#if defined(__AVX512F__)
  if constexpr (Clamp) e = simd::vminmax<true>(e, vf{} - 200.f);
#endif
  return e;
}
template <int C, bool Clamp>
IMKERN_ALWAYS_INLINE inline vf pair_exponent(const vf* b, const vf* a, vf g2, vf s) {
  vf dist = C == 1 ? b[0] - a[0] : vabs(b[0] - a[0]);
  for (int c = 1; c < C; ++c) dist += vabs(b[c] - a[c]);
  return dist_exponent<Clamp>(dist, g2, s);
}

// uint8 RGB pixels packed one per 32-bit lane, r | g << 8 | b << 16, in the float rows' lane
// layout (a ring row of them beside each plane row): the L1 color distance of L pairs is then
// one byte |difference| (two saturating subtractions and an or) summed by two multiply-adds
// (bytes by 1 into 16-bit pairs, those by 1 into 32 bits), an integer in [0, 765]: 1 load and 5
// operations instead of 3 loads and 8 (3 subtractions, 3 absolute values, 2 additions) from the
// float planes, and exactly the same distance (the sum of integers, exact in float either way).

// uint8 RGB rows in and out of the lane layout as packed pixels (one 32-bit lane a pixel, as
// above), so the L x L transposes move one vector per L pixels instead of C = 3 float vectors:
// in, the source bytes (3 a pixel) are spread to 4 (a dword permute putting the 12 bytes of 4
// pixels in each 16-byte lane, then a byte shuffle in lanes), transposed, and the float planes
// made from the packed lanes (a mask or shift and a conversion per channel: the same integer-
// valued floats as converting the bytes); out, each channel rounded and saturated as
// store_rounded_saturated does (min(255, v) to nearest, negatives and NaN to 0), packed,
// transposed back and squeezed to 3 bytes a pixel (the byte shuffle and dword permute undone).
struct PackMasks {
  int32_t spread_perm[L], spread_bytes[L], squeeze_perm[L], squeeze_bytes[L];
};
constexpr PackMasks make_pack_masks() {
  PackMasks m{};
  for (int i = 0; i < L; ++i) {
    const int q = i % 4;  // the dword within its 16-byte lane
    m.spread_perm[i] = i / 4 * 3 + (q < 3 ? q : 2);
    // dword q of a lane <- bytes 3q .. 3q + 2 of the lane, the top byte zero (index bit 7 set)
    m.spread_bytes[i] = static_cast<int32_t>(static_cast<uint32_t>(3 * q) | static_cast<uint32_t>(3 * q + 1) << 8 |
                                             static_cast<uint32_t>(3 * q + 2) << 16 | 0x80u << 24);
    // bytes 3q' .. 3q' + 2 of a lane's first 12 <- bytes 0 .. 2 of its dwords (the rest zero)
    uint32_t w = 0;
    for (int k = 0; k < 4; ++k) {
      const int o = 4 * q + k;  // the output byte within the lane
      w |= (o < 12 ? static_cast<uint32_t>(o / 3 * 4 + o % 3) : 0x80u) << (8 * k);
    }
    m.squeeze_bytes[i] = static_cast<int32_t>(w);
    m.squeeze_perm[i] = i < 3 * L / 4 ? i / 3 * 4 + i % 3 : 0;
  }
  return m;
}
constexpr PackMasks kPackMasks = make_pack_masks();
// pshufb: the bytes of each 16-byte lane of v picked by m (an index with bit 7 set gives 0);
// SSSE3 is in every level we build (x86-64-v2 and up).
IMKERN_ALWAYS_INLINE inline vi bytes_in_lanes(vi v, vi m) {
#if defined(__AVX512BW__)
  return reinterpret_cast<vi>(_mm512_shuffle_epi8(reinterpret_cast<__m512i>(v), reinterpret_cast<__m512i>(m)));
#elif defined(__AVX2__)
  return reinterpret_cast<vi>(_mm256_shuffle_epi8(reinterpret_cast<__m256i>(v), reinterpret_cast<__m256i>(m)));
#else
  return reinterpret_cast<vi>(_mm_shuffle_epi8(reinterpret_cast<__m128i>(v), reinterpret_cast<__m128i>(m)));
#endif
}
// The L pixels of 3 bytes at p (reads 4L bytes) as packed lanes r | g << 8 | b << 16.
IMKERN_ALWAYS_INLINE inline vi spread_rgb(const uint8_t* p) {
  vi v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (L > 4) v = __builtin_shuffle(v, simd::loadu(kPackMasks.spread_perm));
  return bytes_in_lanes(v, simd::loadu(kPackMasks.spread_bytes));
}
// The L packed pixels of v as 3L bytes at p.
IMKERN_ALWAYS_INLINE inline void squeeze_rgb(uint8_t* p, vi v) {
  v = bytes_in_lanes(v, simd::loadu(kPackMasks.squeeze_bytes));
  if constexpr (L > 4) v = __builtin_shuffle(v, simd::loadu(kPackMasks.squeeze_perm));
  // the first 3L bytes in two stores (a memcpy of 3L went through the stack at AVX2)
#if defined(__AVX512F__)
  const __m512i w = reinterpret_cast<__m512i>(v);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_castsi512_si256(w));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 32), _mm512_extracti32x4_epi32(w, 2));
#elif defined(__AVX2__)
  const __m256i w = reinterpret_cast<__m256i>(v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(w));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p + 16), _mm256_extracti128_si256(w, 1));
#else
  const __m128i w = reinterpret_cast<__m128i>(v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), w);
  const int32_t hi = _mm_cvtsi128_si32(_mm_srli_si128(w, 8));
  std::memcpy(p + 8, &hi, 4);
#endif
}
// One channel's results as uint8 in int32 lanes: store_rounded_saturated's rule (min(255, v)
// first, so NaN reaches the conversion and gives INT_MIN; rounded to nearest-even; then >= 0).
IMKERN_ALWAYS_INLINE inline vi round_u8(vf v) {
#if defined(__AVX512F__)
  const __m512 c = _mm512_min_ps(_mm512_set1_ps(255.f), reinterpret_cast<__m512>(v));
  const vi i = reinterpret_cast<vi>(_mm512_cvtps_epi32(c));
#elif defined(__AVX2__)
  const __m256 c = _mm256_min_ps(_mm256_set1_ps(255.f), reinterpret_cast<__m256>(v));
  const vi i = reinterpret_cast<vi>(_mm256_cvtps_epi32(c));
#else
  const __m128 c = _mm_min_ps(_mm_set1_ps(255.f), reinterpret_cast<__m128>(v));
  const vi i = reinterpret_cast<vi>(_mm_cvtps_epi32(c));
#endif
  return i > 0 ? i : vi{};
}

// A vector of E lanes of 1 (as _mm*_set1_epi8 / epi16 build it), as a vi.
template <typename E>
IMKERN_ALWAYS_INLINE inline vi ones() {
  typedef E ve __attribute__((vector_size(sizeof(vi))));
  return reinterpret_cast<vi>(ve{} + 1);
}
// Vnni: the byte sum by one VNNI dot product (vpdpbusd: the 4 unsigned bytes of a lane times
// signed 1s, added to 0) instead of the two multiply-adds, the same integer: AVX512_VNNI at
// AVX-512, AVX-VNNI (its VEX form, not an AVX-512 instruction) at AVX2; only where the caller
// checked cpu_has (the instruction written as inline asm: no target attribute to spread through
// the templates that inline it). IMKERN_HAVE_VNNI_ASM: the build's assembler takes both forms
// (CMakeLists.txt checks; binutils < 2.36 lacks `{vex}`); without it bilateral_vnni() is false.
template <bool Vnni = false>
IMKERN_ALWAYS_INLINE inline vi packed_distance(vi a, vi b) {
  // |a - b| per byte (psubusb both ways); the or in 64-bit lanes, as _mm*_or_si* take it (in
  // int32 lanes GCC scheduled the AVX2 weight loop differently)
  typedef uint64_t vq __attribute__((vector_size(sizeof(vi))));
  const vi d = reinterpret_cast<vi>(reinterpret_cast<vq>(simd::subs_u8(a, b)) | reinterpret_cast<vq>(simd::subs_u8(b, a)));
#if defined(IMKERN_HAVE_VNNI_ASM) && defined(__AVX512BW__)
  if constexpr (Vnni) {
    vi t{};
    __asm__("vpdpbusd %2, %1, %0" : "+v"(t) : "v"(d), "v"(ones<int8_t>()));
    return t;
  }
#elif defined(IMKERN_HAVE_VNNI_ASM) && defined(__AVX2__)
  if constexpr (Vnni) {
    vi t{};
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(t) : "x"(d), "x"(ones<int8_t>()));
    return t;
  }
#endif
  // the 4 bytes of a lane summed: byte pairs to 16 bits (times 1), then 16-bit pairs to 32
  return simd::madd_i32(simd::maddubs_i16(d, ones<int8_t>()), ones<int16_t>());
}

// F rows of pair weights that share the centers a: o[u][x] = exp2(t^2 * gc2 + s[u]) for x in
// [xs, xe) (x counts floats, L per vector), t the L1 color distance of the pixels at a and b[u]
// (rows of C-channel vector groups: channel c of vector x / L at x * C + c * L; S = int32_t:
// uint8 RGB packed rows, vector x / L at x, see spread_rgb). Clamp: the exponent is kept >= -200
// (float32 images, whose t may be anything); Low: it may go below -125 (exp2 clamps it).
// The offsets outer, x inner: no per-offset pointers or constants reloaded per vector (the loop
// of one offset at a time per vector was bound by its instruction count at AVX2), F independent
// chains interleaved, software-pipelined: each step computes the exponents of one vector and the
// exp2 of the previous ones (ready by then), so few operations wait on long dependency chains.
template <int C, bool Clamp, bool Low, int F, typename S = float, bool Vnni = false, bool Hn = false>
IMKERN_ALWAYS_INLINE inline void weight_rows(float* const* o, const S* a, const S* const* b, int64_t xs, int64_t xe, float gc2, const float* s) {
  const vf g2 = simd::splat(gc2);
  vf sv[F];
  for (int u = 0; u < F; ++u) sv[u] = simd::splat(s[u]);
  auto expo = [&](int64_t x, vf* e) IMKERN_ALWAYS_INLINE {
    if constexpr (std::is_same<S, int32_t>::value) {
      static_assert(C == 3, "packed rows: uint8 RGB");
      const vi ak = simd::loadu(a + x);
      for (int u = 0; u < F; ++u)
        e[u] = dist_exponent<Clamp>(__builtin_convertvector(packed_distance<Vnni>(ak, simd::loadu(b[u] + x)), vf), g2, sv[u]);
    } else {
      vf av[C];
      for (int c = 0; c < C; ++c) av[c] = simd::loadu(a + x * C + c * L);
      for (int u = 0; u < F; ++u) {
        vf bv[C];
        for (int c = 0; c < C; ++c) bv[c] = simd::loadu(b[u] + x * C + c * L);
        e[u] = pair_exponent<C, Clamp>(bv, av, g2, sv[u]);
      }
    }
  };
  int64_t x = xs;
  vf pe[F];
  expo(x, pe);
  for (; x + L < xe; x += L) {
    vf e[F];
    expo(x + L, e);
    for (int u = 0; u < F; ++u) {
      simd::storeu(o[u] + x, exp2_nonpos<Low, Hn>(pe[u]));
      pe[u] = e[u];
    }
  }
  for (int u = 0; u < F; ++u) simd::storeu(o[u] + x, exp2_nonpos<Low, Hn>(pe[u]));
}

// uint8 RGB at AVX2: the same rows, half of them by table lookup. t is an integer in [0, 765],
// so an offset's weight is a function of t alone: tab[u][t] = exp2(t^2 * gc2 + s[u]), made once
// per call by the same pair_exponent and exp2 as weight_rows (the same bits), read by a 32-bit
// gather at the integer distance of the packed rows (packed_distance). A gathered row costs 6
// vector operations and the gather (8 loads) instead of ~19 operations (the distance, the
// exponent and the exp2 polynomial), so the offsets alternate between the two (the even ones
// gathered, the odd ones by polynomial) to load the load ports and the vector ALUs together: on
// the Xeon (Granite Rapids) 1080p d = 9 32.2 -> 30.7 ms single thread (float distances); all by
// gather 31.3 ms (and with packed distances and tables shared by equal space terms still ~5%
// slower than half; 3 in 4 within noise of half). At AVX-512 (16 loads a gather) half by gather
// was slower with float distances and a table per offset (23.4 -> 23.8 ms); with the packed
// distances and shared tables 1080p ran ~3% faster but images up to 384 pixels wide 2-5% slower
// (the tables' making and their L1 share weigh more there), so AVX2 only. Whether gathers pay
// is measured once per process (gather_tables_pay): their speed varies by core (Zen 4's issue
// slower than Intel's, and the Downfall mitigation slows them several times on some Intel
// cores).
#if defined(__AVX2__) && !defined(__AVX512F__)
constexpr bool kGatherBuild = true;
template <int F, bool Low, bool Vnni = false>
IMKERN_ALWAYS_INLINE inline void weight_rows_tab(float* const* o, const int32_t* a, const int32_t* const* b, int64_t xs,
                                                 int64_t xe, const float* const* tab, float gc2, const float* s) {
  const vf g2 = simd::splat(gc2);
  for (int64_t x = xs; x < xe; x += L) {
    const vi ak = simd::loadu(a + x);
    for (int u = 0; u < F; ++u) {
      // b's vector loaded once (GCC loaded it twice: into a register for one subtraction and as
      // the memory operand of the other; ~1% of the filter at AVX2)
      const vi bu = reinterpret_cast<vi>(in_register(reinterpret_cast<vf>(simd::loadu(b[u] + x))));
      const vi t = packed_distance<Vnni>(ak, bu);
      if (u % 2 == 1) {
        const vf e = dist_exponent<false>(__builtin_convertvector(t, vf), g2, simd::splat(s[u]));
        simd::storeu(o[u] + x, exp2_nonpos<Low, true>(e));
      } else {
        simd::storeu(o[u] + x, reinterpret_cast<vf>(_mm256_i32gather_ps(tab[u], reinterpret_cast<__m256i>(t), 4)));
      }
    }
  }
}
// Whether the half-gathered weight rows beat the polynomial ones on this core: both timed on
// the same 512 vectors of packed RGB pairs x 4 offsets (as make_cw passes them: 2 + 2 by polynomial,
// 4 by gather; L1-resident), the fastest of 21 alternating runs each (the minimum is what load and interrupts disturb least);
// gathers kept only when at least 3% faster (the whole filter's gain was ~8% on the Xeon).
// Once per process (~0.1 ms). IMKERN_BILATERAL_GATHER=0 / 1 in the environment, read once per
// process with it, forces the choice (the tests reach both paths with it, in child processes).
inline bool gather_tables_pay() {
  static const bool pay = [] {
    constexpr int64_t n = 512 * L;
    std::vector<int32_t> a(n), bs(n + 4 * L);  // packed RGB pixels (spread_rgb)
    std::vector<float> w(4 * n), tab(768);
    for (int64_t e = 0; e < n + 4 * L; ++e) {
      if (e < n) a[e] = static_cast<int32_t>((e * 37) % 256 | (e * 11 + 5) % 256 << 8 | (e * 73 + 1) % 256 << 16);
      bs[e] = static_cast<int32_t>((e * 101 + 7) % 256 | (e * 29 + 3) % 256 << 8 | (e * 57 + 9) % 256 << 16);
    }
    for (int t = 0; t < 768; ++t) tab[t] = std::exp2(-1e-4f * static_cast<float>(t) * static_cast<float>(t));
    float* o[4];
    const int32_t* bb[4];
    const float* tb[4];
    for (int u = 0; u < 4; ++u) {
      o[u] = w.data() + u * n;
      bb[u] = bs.data() + u * L;  // rows one vector apart, as the offsets (i, j) and (i, j + 1)
      tb[u] = tab.data();
    }
    const float sv[4] = {-0.1f, -0.2f, -0.3f, -0.4f};
    double best_poly = 1e30, best_tab = 1e30;
    for (int rep = 0; rep < 21; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      weight_rows<3, false, false, 2, int32_t, false, true>(o, a.data(), bb, 0, n, -1e-4f, sv);
      weight_rows<3, false, false, 2, int32_t, false, true>(o + 2, a.data(), bb + 2, 0, n, -1e-4f, sv + 2);
      auto t1 = std::chrono::steady_clock::now();
      weight_rows_tab<4, false>(o, a.data(), bb, 0, n, tb, -1e-4f, sv);
      auto t2 = std::chrono::steady_clock::now();
      best_poly = std::min(best_poly, std::chrono::duration<double>(t1 - t0).count());
      best_tab = std::min(best_tab, std::chrono::duration<double>(t2 - t1).count());
    }
    return best_tab < 0.97 * best_poly;
  }();
  return pay;
}
#else
constexpr bool kGatherBuild = false;
#endif

// The weight rows of uint8 RGB by gathers (weight_rows_tab): forced by IMKERN_BILATERAL_GATHER
// (0 or 1), else where they pay on this core; decided once per process (no getenv per call).
inline bool bilateral_gather() {
#if defined(__AVX2__) && !defined(__AVX512F__)
  static const bool use = [] {
    if (const char* e = std::getenv("IMKERN_BILATERAL_GATHER"))
      if (*e) return std::atoi(e) != 0;
    return gather_tables_pay();
  }();
  return use;
#else
  return false;
#endif
}

// Whether the packed color distances take the VNNI dot product (packed_distance<true>): where
// the CPU has it at this level (AVX512_VNNI at AVX-512, AVX-VNNI at AVX2; never at the baseline).
// IMKERN_CPU_DISABLE=avx512vnni / avxvnni hides it (the tests reach both paths so).
inline bool bilateral_vnni() {
#if !defined(IMKERN_HAVE_VNNI_ASM)
  static const bool has = false;
#elif defined(__AVX512BW__)
  static const bool has = cpu_has(CpuFeature::avx512vnni);
#elif defined(__AVX2__)
  static const bool has = cpu_has(CpuFeature::avxvnni);
#else
  static const bool has = false;
#endif
  return has;
}

// Forward offsets per weight pass (sharing the center loads): AVX2 (16 registers) 2 and 3 within
// noise, 4 slower; AVX-512 (32) 4 fastest.
constexpr int kF = L >= 16 ? 4 : 2;
// The gathered rows (weight_rows_tab) 4 a pass at AVX2: few registers each (the distance, the
// index), so more offsets share the center loads: 1080p d = 9 30.7 -> 29.6 ms on the Xeon.
constexpr int kFT = 4;
constexpr int kFMax = kGatherBuild ? std::max(kF, kFT) : kF;
static_assert(kFMax == 2 || kFMax == 4, "make_cw dispatches 1 to kFMax offsets");
// Whether the pixel loop takes the window offsets in runs (each plane vector loaded once for the
// pixel vectors of a pass that use it; see pixels): uint8 RGB, where it measured faster on the
// Xeon (1080p d = 9 single thread 0.97x at AVX-512, 0.98x at AVX2); gray and float32 RGB ran
// 2-8% slower with it (their loads fewer or their weights dearer: the old loop kept).
// Whether the weights take their color distances from packed rows (spread_rgb): uint8 RGB.
template <typename T, int C>
constexpr bool kPk = std::is_same<T, uint8_t>::value && C == 3;
template <typename T, int C>
constexpr bool kRuns = std::is_same<T, uint8_t>::value && C == 3;
// Pixel vectors per pass: 2, but 3 for RGB at AVX2 (12 sums, and with runs 3 plane vectors and a
// weight, in the 16 registers; 1080p d = 9 about 3% faster on Zen 4) and for runs at AVX-512
// (Xeon 1080p d = 9 23.41 -> 23.13 ms, 2 vs 3; without runs no faster with 3 or 4 on Zen 4).
template <typename T, int C>
constexpr int kNV = C == 3 && (L == 8 || (L == 16 && kRuns<T, C>)) ? 3 : 2;
// Whether the pixel loop makes the forward weights of the rows below itself (the neighbor loaded
// once for weight and sum, no store-and-reload of those weights, their arithmetic overlapping the
// loads of the others): float32 gray at AVX-512, 1080p d = 9 17.1 -> 15.7 ms single thread on
// Zen 4. Not at AVX2 (16 registers: the fused loop spills, 22.1 -> 24.5 ms even one vector a
// step); RGB and uint8 are well ahead of OpenCV without it.
template <typename T, int C>
constexpr bool kFuse = std::is_same<T, float>::value && C == 1 && L >= 16;

template <typename T, int C>
void bilateral_typed(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int r, double sigma_color,
                     double sigma_space, Border border) {
  const int64_t H = s.h, W = s.w;
  const int64_t rows = s.n * H;
  const int k = 2 * r + 1;
  // Window offsets inside the circle (OpenCV's order).
  std::vector<int> off_i, off_j;
  for (int i = -r; i <= r; ++i)
    for (int j = -r; j <= r; ++j) {
      const double rr = std::sqrt(static_cast<double>(i) * i + static_cast<double>(j) * j);
      if (rr > r) continue;
      off_i.push_back(i);
      off_j.push_back(j);
    }
  const int maxk = static_cast<int>(off_i.size());
  constexpr bool is_u8 = std::is_same<T, uint8_t>::value;
  // The weight of a pixel pair does not depend on which one is the center
  // (|a - b| = |b - a| exactly, the same space distance), so each pair's weight is made once:
  // for the offsets q = (i, j) of the forward half (i > 0, or i = 0 and j > 0) the weights
  // cw_q(y, x) of row y go to a ring of i + 1 (rounded up to a power of two) rows, and the
  // backward offset -q of output (y, x) reads cw_q(y - i, x - j) from it. Half the exp2
  // evaluations, the same weights and the same sums in the same order as one per offset.
  std::vector<int> fwd, ring_first, ring_mask;  // forward offsets (indices into off_*), their ring rows
  std::vector<int> mirror(maxk, -1);  // per offset: its forward twin's index in fwd (or -1)
  std::vector<int> grp_first;  // forward offsets grp_first[g] .. grp_first[g + 1] - 1 share i
  int ring_rows = 0;
  for (int q = 0; q < maxk; ++q)
    if (off_i[q] > 0 || (off_i[q] == 0 && off_j[q] > 0)) {
      fwd.push_back(q);
      ring_first.push_back(ring_rows);
      int m = 1;  // a power of two >= i + 1 rows (the ring index is a mask, not a division)
      while (m < off_i[q] + 1) m *= 2;
      ring_mask.push_back(m - 1);
      ring_rows += m;
    }
  // groups of forward offsets with the same row offset i (consecutive in fwd)
  for (size_t f = 0; f < fwd.size(); ++f)
    if (f == 0 || off_i[fwd[f]] != off_i[fwd[f - 1]]) grp_first.push_back(static_cast<int>(f));
  grp_first.push_back(static_cast<int>(fwd.size()));
  for (int q = 0; q < maxk; ++q)
    for (size_t f = 0; f < fwd.size(); ++f)
      if ((off_i[fwd[f]] == off_i[q] && off_j[fwd[f]] == off_j[q]) ||
          (off_i[fwd[f]] == -off_i[q] && off_j[fwd[f]] == -off_j[q]))
        mirror[q] = static_cast<int>(f);
  int q_center = 0;
  for (int q = 0; q < maxk; ++q)
    if (off_i[q] == 0 && off_j[q] == 0) q_center = q;
  // The whole weight sw * cw = exp(-(i^2 + j^2) / (2 sigma_space^2) - t^2 / (2 sigma_color^2))
  // as one exp2 of t^2 * gc2 + fwd_s[f] (log2 units). uint8: coefficients clamped so that no
  // product overflows (below -1e6 every weight with t or i^2 + j^2 >= 1 is 0 anyway). float32:
  // t may be any size, so gc2 is only kept finite (t = 0 gives 0, not NaN) and the exponent is
  // clamped at -200 before the exp2 (an infinite or NaN t gives the weight 0).
  constexpr double kLog2e = 1.4426950408889634;
  const float gc2 = static_cast<float>(
      std::max(-0.5 / (sigma_color * sigma_color) * kLog2e, is_u8 ? -1e6 : -static_cast<double>(FLT_MAX)));
  std::vector<float> fwd_s;
  for (int q : fwd) {
    const double rr2 = static_cast<double>(off_i[q]) * off_i[q] + static_cast<double>(off_j[q]) * off_j[q];
    fwd_s.push_back(static_cast<float>(std::max(-0.5 / (sigma_space * sigma_space) * rr2 * kLog2e, -1e6)));
  }
  // uint8: whether an exponent may go below -125 (t <= 255 C; a margin for the float rounding
  // of t^2 * gc2 + s): else exp2 needs no clamp (sigma_color >= ~60 at d = 9).
  double s_min = 0;
  for (float v : fwd_s) s_min = std::min<double>(s_min, v);
  const bool low = !is_u8 || static_cast<double>(gc2) * (255.0 * C) * (255.0 * C) + s_min < -124.9;
  // uint8 RGB with gathers: the weight tables of the forward offsets (see weight_rows_tab), made
  // by the same pair_exponent and exp2 as weight_rows on t = 0 .. 767 (the same bits).
  const bool use_tab = is_u8 && C == 3 && kGatherBuild && bilateral_gather();
  constexpr int64_t NT = (255 * C + 1 + L - 1) / L * L;
  // One table per distinct space term (offsets at the same distance from the center share it:
  // 9 tables for the 24 forward offsets at d = 9, 27 KiB, that stay in L1 beside the rows).
  std::vector<int> tab_of(fwd.size());
  std::vector<char> tab_first(fwd.size());
  int ntab = 0;
  for (size_t f = 0; f < fwd.size(); ++f) {
    size_t e = 0;
    while (e < f && fwd_s[e] != fwd_s[f]) ++e;  // bounded: a NaN term is unequal to itself
    tab_first[f] = e == f;
    tab_of[f] = e == f ? ntab++ : tab_of[e];
  }
  std::vector<float> tabs(use_tab ? ntab * NT : 0);
  if (use_tab) {
    const vf g2 = simd::splat(gc2);
    for (size_t f = 0; f < fwd.size(); ++f)
      for (int64_t t = 0; t < NT && tab_first[f]; t += L) {
        vf bv[C], av[C];
        float tv[L];
        for (int l = 0; l < L; ++l) tv[l] = static_cast<float>(t + l);
        for (int c = 0; c < C; ++c) bv[c] = av[c] = vf{};
        bv[0] = simd::loadu(tv);
        const vf e = pair_exponent<C, false>(bv, av, g2, simd::splat(fwd_s[f]));
        simd::storeu(tabs.data() + tab_of[f] * NT + t, low ? exp2_nonpos<true, true>(e) : exp2_nonpos<false, true>(e));
      }
  }
  // float32, per image: OpenCV's test for a flat image (max - min < FLT_EPSILON over the padded
  // image, NaN skipped), which it copies unchanged. The scan stops at the first spread that is
  // large enough (at once on real images).
  std::vector<char> flat(is_u8 ? 0 : s.n, 0);
  if constexpr (!is_u8) {
    for (int64_t b = 0; b < s.n; ++b) {
      float mn = INFINITY, mx = -INFINITY;
      if (border == Border::constant) mn = mx = 0.f;  // OpenCV takes the padded image's range
      bool is_flat = true;
      for (int64_t y = 0; y < H && is_flat; ++y) {
        const T* row = row_ptr<T>(src, s, b, y);
        for (int64_t e = 0; e < W * C; ++e) {
          const float v = static_cast<float>(row[e]);
          mn = v < mn ? v : mn;  // NaN skipped
          mx = v > mx ? v : mx;
        }
        is_flat = !(mx - mn >= FLT_EPSILON);
      }
      flat[b] = is_flat;
    }
  }
  // Column strips of SW pixels (a multiple of L), each swept top to bottom: the rings of a
  // strip (k plane rows, and for uint8 the forward weight rows) stay in L1/L2 while the window
  // walks down, instead of streaming every tap's row from L2. Results never depend on the strips.
  const int64_t SW = std::min<int64_t>(W, bilateral_strip(k, C, ring_rows));
  // Lane layout: a strip of Ws pixels is cut into L runs of Mv = ceil(Ws / L) pixels, run l in
  // lane l: vector m holds the pixels l * Mv + m. A shift by j pixels is then a shift by j whole
  // vectors, so every load of the window (planes and weight rows) is aligned: unaligned 64-byte
  // loads split cache lines, which Intel cores (Golden Cove on) serve at about half the rate
  // (the pixel loop ran 27% faster aligned on this Xeon); Zen 4 splits them into two 32-byte
  // halves anyway. Each run keeps its own r columns of margin (the neighbors in its lane), so
  // the rows are transposed in registers on the way in and out (L x L blocks). The margins cost
  // about (2r + |j|) / Mv more: nothing on wide images, but strips under ~100 pixels at AVX-512
  // (Mv < 7) ran 10-40% slower than with contiguous vectors (measured at widths 48 to 100).
  // A ring row: the C channels of vector m side by side (C * L floats: one base register and
  // constant offsets for all the loads of a window offset), m in [-2r, Mv + 2r + L) (zeros
  // outside [-r, Mv + r): make_cw reads up to r vectors further), P = base at m = 0.
  const int64_t MV = (SW + L - 1) / L;
  constexpr int CL = C * L;
  const int64_t PB = 2 * static_cast<int64_t>(r) * CL;
  const int64_t slot_len = round_up_line<float>((MV + 4 * r + L) * CL);
  const int64_t kslot_len = round_up_line<int32_t>((MV + 4 * r) * L);  // a packed ring row (uint8 RGB)
  // A row of C-channel pixels is C floats a pixel both ways: interleaved in pixel order, and as
  // C vectors (one per channel) a vector of lanes, so the lane transposes treat it as one channel
  // of C times the length (float e = C * v + c of run l <-> vector e, lane l).
  const int64_t TL = (L * MV + 2 * r + 2 * L) * C;  // a source row, interleaved, with slack
  const int64_t OPL = (MV + L) * L * C;             // the results in lanes, and in pixel order
  const int64_t TLB = 3 * (L * MV + 2 * r + 2 * L) + L;  // uint8 RGB: a source row's bytes, with slack
  constexpr bool fuse = kFuse<T, C>;
  const bool vnni = kPk<T, C> && bilateral_vnni();
  static_assert(!(fuse && kRuns<T, C>), "the runs replace the unfused offset loop only");
  parallel_for(0, rows, filter_grain(rows, k, get_num_threads()), [&](int64_t t0, int64_t t1) {
    float* ring = thread_scratch<float>(0, static_cast<size_t>(slot_len * k));
    float* pad = thread_scratch<float>(1, static_cast<size_t>(TL));
    float* outl = thread_scratch<float>(2, static_cast<size_t>(2 * OPL));
    float* outt = outl + OPL;  // the results in pixel order, interleaved, run l at l * Mp
    // uint8 RGB: the source row's bytes (spread_rgb reads L bytes past the last pixel)
    uint8_t* padb = kPk<T, C> ? thread_scratch<uint8_t>(6, static_cast<size_t>(TLB)) : nullptr;
    std::vector<int64_t> tag(k, INT64_MIN);
    int64_t cur_b = -1;
    std::vector<const float*> P(k);
    // uint8 RGB: each ring row packed (spread_rgb) beside it, for the weights' color distances
    int32_t* kring = kPk<T, C> ? thread_scratch<int32_t>(5, static_cast<size_t>(kslot_len * k)) : nullptr;
    std::vector<const int32_t*> K(k);
    // The forward weight rings (cw_q(y, x) at [x + r]) and each offset's weight row.
    const int64_t OFF = static_cast<int64_t>(r) * L;
    const int64_t cw_pitch = round_up_line<float>((MV + 2 * r + 1) * L);  // x = 0 at OFF (aligned)
    float* cw_ring = thread_scratch<float>(3, static_cast<size_t>(cw_pitch * std::max(ring_rows, 1)));
    std::vector<const float*> CW(maxk), TP(maxk);
    std::vector<float> SV(maxk, 0.f), fSV(maxk);  // per forward offset: its space term (fwd_s)
    std::vector<const float*> lTP(maxk), lCW(maxk), fTP(maxk);
    std::vector<float*> fW(maxk);
    std::vector<int> run_k0(maxk), run_n(maxk);  // the unfused pixel loop's runs of offsets
    std::vector<int64_t> run_ws(maxk);
    int nrun = -1;
    float* ones = thread_scratch<float>(4, static_cast<size_t>(MV * L + L));  // the center's weight
    std::fill(ones, ones + MV * L + L, 1.f);
    auto cw_row = [&](size_t f, int64_t yc) { return cw_ring + (ring_first[f] + (yc & ring_mask[f])) * cw_pitch + OFF; };
    for (int64_t x0 = 0; x0 < W; x0 += SW) {
      const int64_t Ws = std::min(SW, W - x0);
      const int64_t Mv = (Ws + L - 1) / L, Mp = (Mv * C + L - 1) / L * L;  // vectors per run; its floats, rounded up
      // cw_q(yc, x) for the forward offsets f of group g (row offset i) from the planes of rows yc
      // (pc) and yc + i (pn), kF offsets a pass: the vectors both uses of each offset (i, j) read,
      // [min(0, -j), max(Mv, Mv - j)) (x counts floats: L per vector).
      auto make_cw = [&](size_t g, int64_t yc, int ic, int in, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) {
        const float* const pc = P[ic];
        const float* const pn = P[in];
        const int32_t* const kc = K[ic];
        const int32_t* const kn = K[in];
        const int f1 = grp_first[g + 1];
        const int step = kGatherBuild && use_tab ? kFT : kF;  // kF where the build has no gathers
        for (int f = grp_first[g]; f < f1; f += step) {
          const int nf = std::min(step, f1 - f);
          float* o[kFMax];
          const float* bb[kFMax];
          const int32_t* kb[kFMax];
          float sv[kFMax];
          int64_t xs = 0, xe = 0;
          for (int u = 0; u < nf; ++u) {
            const int j = off_j[fwd[f + u]];
            o[u] = cw_row(f + u, yc);
            bb[u] = pn + static_cast<int64_t>(j) * CL;
            kb[u] = kPk<T, C> ? kn + static_cast<int64_t>(j) * L : nullptr;
            sv[u] = fwd_s[f + u];
            xs = std::min<int64_t>(xs, -static_cast<int64_t>(std::max(j, 0)) * L);
            xe = std::max<int64_t>(xe, (Mv + std::max(-j, 0)) * L);
          }
          xs = std::max(xs, lo);
          xe = std::min(xe, hi);
          if (xs >= xe) continue;
          auto run = [&](auto nfc) IMKERN_ALWAYS_INLINE {
            constexpr int NF = decltype(nfc)::value;
#if defined(__AVX2__) && !defined(__AVX512F__)
            if constexpr (kPk<T, C>) {
              if (use_tab) {
                const float* tb[NF];
                for (int u = 0; u < NF; ++u) tb[u] = tabs.data() + tab_of[f + u] * NT;
                if (vnni) {
                  if (low) weight_rows_tab<NF, true, true>(o, kc, kb, xs, xe, tb, gc2, sv);
                  else weight_rows_tab<NF, false, true>(o, kc, kb, xs, xe, tb, gc2, sv);
                } else {
                  if (low) weight_rows_tab<NF, true>(o, kc, kb, xs, xe, tb, gc2, sv);
                  else weight_rows_tab<NF, false>(o, kc, kb, xs, xe, tb, gc2, sv);
                }
                return;
              }
            }
#endif
            if constexpr (kPk<T, C>) {
              if (vnni) {
                if (low) weight_rows<C, false, true, NF, int32_t, true, true>(o, kc, kb, xs, xe, gc2, sv);
                else weight_rows<C, false, false, NF, int32_t, true, true>(o, kc, kb, xs, xe, gc2, sv);
              } else {
                if (low) weight_rows<C, false, true, NF, int32_t, false, true>(o, kc, kb, xs, xe, gc2, sv);
                else weight_rows<C, false, false, NF, int32_t, false, true>(o, kc, kb, xs, xe, gc2, sv);
              }
              return;
            }
            if (low) weight_rows<C, !is_u8, true, NF, float, false, is_u8>(o, pc, bb, xs, xe, gc2, sv);
            else weight_rows<C, false, false, NF, float, false, is_u8>(o, pc, bb, xs, xe, gc2, sv);
          };
          if (nf == kF) {
            run(std::integral_constant<int, kF>{});
          } else if (nf == 1) {
            run(std::integral_constant<int, 1>{});
          } else if (nf == 2) {
            run(std::integral_constant<int, 2>{});
          } else if constexpr (kFMax == 4) {
            if (nf == 3) run(std::integral_constant<int, 3>{});
            else run(std::integral_constant<int, 4>{});
          }
        }
      };
      std::fill(tag.begin(), tag.end(), INT64_MIN);
      cur_b = -1;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / H, y = t % H;
        const bool seg_start = t == t0 || y == 0;
        T* drow = row_ptr<T>(dst, d, b, y) + x0 * C;
        // uint8 RGB: the output row two rows ahead fetched for writing (its runs' 3L-byte stores
        // otherwise each wait on a line from memory): AVX2 on the Xeon 1080p d = 9 ~2% faster,
        // AVX-512 within noise. Any distance of a row or more covers memory's latency (a row
        // takes tens of microseconds); only this chunk's rows (no line taken from another thread).
        // Its lines, and those of the source row r + 4 rows ahead (load_source_segment's
        // prefetch), are fetched a few per pixel pass (spread_prefetch): ~90 prefetches at once
        // each waited for a fill buffer, a stall of ~2% of the time at AVX2 on the Xeon.
        SpreadPrefetch pf;
        if (kPk<T, C> && t + 2 < t1)
          pf.add(reinterpret_cast<const char*>(row_ptr<T>(dst, d, (t + 2) / H, (t + 2) % H) + x0 * C), Ws * C);
        if (kPk<T, C> && y + r + 4 < H)
          pf.add(reinterpret_cast<const char*>(row_ptr<T>(src, s, b, y + r + 4) + x0 * C), Ws * C);
        if (!is_u8 && flat[b]) {
          const T* srow = row_ptr<T>(src, s, b, y) + x0 * C;
          std::copy(srow, srow + Ws * C, drow);
          continue;
        }
        if (b != cur_b) {
          cur_b = b;
          std::fill(tag.begin(), tag.end(), INT64_MIN);
        }
        int slot = static_cast<int>((((y - r) % k) + k) % k);
        for (int i = 0; i < k; ++i, slot = slot + 1 == k ? 0 : slot + 1) {
          const int64_t sy = y - r + i;
          float* const base = ring + slot * slot_len + PB;
          if (tag[slot] != sy) {
            // Columns x0 - r .. x0 + Ws + r of the row in pixel order (pad, zeros after), then run
            // l's pixels l * Mv - r .. l * Mv + Mv + r transposed into lane l of vectors -r .. Mv + r.
            // (the source row 4 rows ahead is prefetched: a row met cold stalled on memory)
            if constexpr (kPk<T, C>) {
              // uint8 RGB: the bytes (zeros after) spread to packed pixels, transposed as packed
              // lanes, the planes made from them (see spread_rgb).
              // (no burst prefetch of row sy + 4 here: pf spreads row y + r + 4's over the passes,
              // and a segment's first rows prefetch the 3 rows before it once)
              load_source_segment<uint8_t, uint8_t, false>(src, s, b, sy, x0, x0 + Ws, r, r, border, uint8_t{0}, padb);
              if (seg_start && i == k - 1)
                for (int64_t a = sy + 1; a < sy + 4; ++a)
                  if (a >= 0 && a < H) prefetch_span(row_ptr<uint8_t>(src, s, b, a) + x0 * C, Ws * C);
              std::fill(padb + (Ws + 2 * r) * 3, padb + TLB, uint8_t{0});
              int32_t* const pk = reinterpret_cast<int32_t*>(pad);
              for (int64_t p = 0; p < L * Mv + 2 * r + L; p += L) simd::storeu(pk + p, spread_rgb(padb + 3 * p));
              int32_t* const kbase = kring + slot * kslot_len + 2 * r * L;
              for (int64_t m0 = 0; m0 < Mv + 2 * r; m0 += L) {
                vf blk[L];
#pragma GCC unroll 16
                for (int l = 0; l < L; ++l) blk[l] = reinterpret_cast<vf>(simd::loadu(pk + l * Mv + m0));
                transpose(blk);
#pragma GCC unroll 16
                for (int u = 0; u < L; ++u) {
                  const int64_t m = m0 + u - r;
                  if (m >= Mv + r) break;
                  const vi pv = reinterpret_cast<vi>(blk[u]);
                  simd::storeu(kbase + m * L, pv);
                  float* const pm = base + m * CL;
                  simd::storeu(pm, __builtin_convertvector(pv & 0xff, vf));
                  simd::storeu(pm + L, __builtin_convertvector((pv >> 8) & 0xff, vf));
                  simd::storeu(pm + 2 * L, __builtin_convertvector(pv >> 16, vf));
                }
              }
              std::fill(kbase - 2 * r * L, kbase - r * L, 0);
              std::fill(kbase + (Mv + r) * L, kbase + (Mv + 2 * r) * L, 0);
            } else {
              load_source_segment<T, float>(src, s, b, sy, x0, x0 + Ws, r, r, border, 0.f, pad);
              std::fill(pad + (Ws + 2 * r) * C, pad + TL, 0.f);
              for (int64_t e0 = 0; e0 < (Mv + 2 * r) * C; e0 += L) {
                vf blk[L];
#pragma GCC unroll 16
                for (int l = 0; l < L; ++l) blk[l] = simd::loadu(pad + l * Mv * C + e0);
                transpose(blk);
#pragma GCC unroll 16
                for (int u = 0; u < L; ++u) simd::storeu(base - r * CL + (e0 + u) * L, blk[u]);
              }
            }
            std::fill(base - PB, base - r * CL, 0.f);
            std::fill(base + (Mv + r) * CL, base - PB + slot_len, 0.f);
            tag[slot] = sy;
          }
          P[i] = base;
          if constexpr (kPk<T, C>) K[i] = kring + slot * kslot_len + 2 * r * L;
        }
        // Forward weights of rows y - r .. y - 1 at a segment's start (made by the earlier
        // rows otherwise), then of row y.
        const size_t ngrp = grp_first.size() - 1;
        if (seg_start)
          for (int64_t yc = y - r; yc < y; ++yc)
            for (size_t g = 0; g < ngrp; ++g) {
              const int i = off_i[fwd[grp_first[g]]];
              if (yc + i >= y) make_cw(g, yc, static_cast<int>(r + (yc - y)), static_cast<int>(r + (yc - y) + i));
            }
        // Row y's own forward weights: the row offset 0 here (its backward twins read them in this
        // row); those of the rows below (i > 0) inside the pixel loop (kFuse), which uses each
        // where it is made (no store and reload, the neighbor loaded once), but for the columns
        // outside the loop's [0, Wv) that later rows read (the margins).
        const int64_t Wv = Mv * L;
        for (size_t g = 0; g < ngrp; ++g) {
          const int i = off_i[fwd[grp_first[g]]];
          if (i == 0 || !fuse) {
            make_cw(g, y, r, r + i);
          } else {
            make_cw(g, y, r, r + i, INT64_MIN, 0);
            make_cw(g, y, r, r + i, Wv, INT64_MAX);
          }
        }
        for (int q = 0; q < maxk; ++q) {
          const int f = mirror[q];
          if (f < 0) CW[q] = ones;  // the center
          else if (fwd[f] == q) CW[q] = cw_row(f, y);
          else CW[q] = cw_row(f, y + off_i[q]) + off_j[q] * L;  // cw_f(y - i_f, x - j_f)
          if (f >= 0) SV[q] = fwd_s[f];
        }
        for (int q = 0; q < maxk; ++q) TP[q] = P[r + off_i[q]] + off_j[q] * CL;
        // The window's offsets in two streams summed apart: the weights read from the rings (rows
        // above and the center row) and, where fused, those made here (rows below); the streams
        // alternate so the loads of one and the arithmetic of the other overlap.
        int nl = 0, nf = 0;
        for (int q = 0; q < maxk; ++q) {
          if (fuse && off_i[q] > 0) {
            fTP[nf] = TP[q];
            fW[nf] = const_cast<float*>(CW[q]);
            fSV[nf++] = SV[q];
          } else {
            lTP[nl] = TP[q];
            lCW[nl++] = CW[q];
          }
        }
        // uint8 RGB (kRuns; never fused): the offsets in runs of consecutive j in one row (their
        // plane rows one vector apart) whose weight rows are equally spaced in the weight rings
        // (the forward offsets of a row, and their backward twins: rings of equal size, one after
        // the other); the center (its weights a row of ones elsewhere) alone. The same runs for
        // every row (the rings rotate, their spacing does not): found on the first.
        if (kRuns<T, C> && nrun < 0) {
          nrun = 0;
          const auto addr = [](const float* p) { return reinterpret_cast<intptr_t>(p); };
          for (int k = 0; k < nl;) {
            int n = 1;
            int64_t ws = 0;
            const auto joins = [&](int e) {  // whether offset e can follow e - 1 in a run
              return lTP[e] == lTP[e - 1] + CL && lCW[e] != ones && lCW[e - 1] != ones;
            };
            if (k + 1 < nl && joins(k + 1)) {
              ws = (addr(lCW[k + 1]) - addr(lCW[k])) / static_cast<intptr_t>(sizeof(float));
              n = 2;
              while (k + n < nl && joins(k + n) && addr(lCW[k + n]) - addr(lCW[k + n - 1]) == ws * 4) ++n;
            }
            run_k0[nrun] = k;
            run_n[nrun] = n;
            run_ws[nrun++] = ws;
            k += n;
          }
        }
        // NV vectors of pixels at x: NV independent accumulator chains per sum hide the FMA
        // latency (the sums of each pixel are the same, in the same order, whatever NV).
        auto pixels = [&](int64_t x, auto nv, auto lowc) IMKERN_ALWAYS_INLINE {
          constexpr int NV = decltype(nv)::value;
          constexpr bool Low = decltype(lowc)::value;
          vf sum[NV][C], wsum[NV], sumf[NV][C], wsumf[NV], cen[NV][C];
          for (int u = 0; u < NV; ++u) {
            wsum[u] = wsumf[u] = vf{};
            for (int c = 0; c < C; ++c) sum[u][c] = sumf[u][c] = vf{};
          }
          const vf g2 = simd::splat(gc2);
          if (nf > 0)
            for (int u = 0; u < NV; ++u)
              for (int c = 0; c < C; ++c) cen[u][c] = simd::loadu(TP[q_center] + (x + u * L) * C + c * L);
          auto loaded = [&](int k) IMKERN_ALWAYS_INLINE {
            const float* const row0 = opaque(lTP[k] + x * C);
            const float* const w0 = opaque(lCW[k] + x);
            for (int u = 0; u < NV; ++u) {
              const float* row = row0 + u * CL;
              vf v[C];
              for (int c = 0; c < C; ++c) v[c] = simd::loadu(row + c * L);
              const vf w = simd::loadu(w0 + u * L);
              for (int c = 0; c < C; ++c) sum[u][c] += v[c] * w;
              wsum[u] += w;
            }
          };
          auto made = [&](int k) IMKERN_ALWAYS_INLINE {
            const vf sv = simd::splat(fSV[k]);
            const float* const row0 = opaque(fTP[k] + x * C);
            for (int u = 0; u < NV; ++u) {
              const float* row = row0 + u * CL;
              vf v[C];
              for (int c = 0; c < C; ++c) v[c] = simd::loadu(row + c * L);
              const vf w = exp2_nonpos<Low, is_u8>(pair_exponent<C, !is_u8 && Low>(v, cen[u], g2, sv));
              simd::storeu(fW[k] + x + u * L, w);
              for (int c = 0; c < C; ++c) sumf[u][c] += v[c] * w;
              wsumf[u] += w;
            }
          };
          int k = 0;
          for (; k < nf; ++k) {
            loaded(k);
            made(k);
          }
          if constexpr (!kRuns<T, C>) {
            for (; k < nl; ++k) loaded(k);
          } else {
            // A run of n offsets (t = 0 .. n - 1, j ascending): offset t of pixel vector u reads
            // plane vector m = t + u, so each plane vector m is loaded once for the up to NV
            // offsets that use it (about half the loads of one offset at a time; on the Xeon
            // 1-2% faster at 1080p d = 9: the loop is not bound by its loads alone); each u
            // still sums its offsets in order (t ascending): the same bits.
            for (int ru = 0; ru < nrun; ++ru) {
              const int n = run_n[ru];
              const float* const row0 = opaque(lTP[run_k0[ru]] + x * C);
              const float* const cw0 = opaque(lCW[run_k0[ru]] + x);
              const int64_t ws = run_ws[ru];
              auto step = [&](int m, auto edge) IMKERN_ALWAYS_INLINE {
                const float* const row = row0 + static_cast<int64_t>(m) * CL;
                vf v[C];
                for (int c = 0; c < C; ++c) v[c] = in_register(simd::loadu(row + c * L));
                for (int u = 0; u < NV; ++u) {
                  if constexpr (decltype(edge)::value)
                    if (static_cast<unsigned>(m - u) >= static_cast<unsigned>(n)) continue;
                  const vf w = simd::loadu(cw0 + (m - u) * ws + u * L);
                  for (int c = 0; c < C; ++c) sum[u][c] += v[c] * w;
                  wsum[u] += w;
                }
              };
              if (n >= NV - 1) {
                // The first and last NV - 1 steps, where some u have no offset, with their u fixed
                // at compile time (no per-u tests, and weight addresses from two per-run pointers
                // instead of a multiply each): head step h serves u <= h, tail step n + e serves
                // u > e (the same FMAs in the same order as step(m, edge)).
                const float* const cwl = opaque(cw0 + static_cast<int64_t>(n - 1) * ws);  // the run's last offset
                auto part = [&](int m, int ulo, int uhi, const float* wrow, int64_t wstep) IMKERN_ALWAYS_INLINE {
                  // u in [ulo, uhi) (constants once unrolled), u's weight at wrow + (ulo - u) wstep + u L.
                  // The plane vectors read per u (a memory operand of each FMA), not held in
                  // registers: at AVX2 the 4 NV sums, 3 plane vectors and a weight take all 16
                  // registers, and GCC spilled two sums at every run's edges (their FMA chains
                  // through a store and reload); 1080p d = 9 single thread ~2% faster at AVX2.
                  const float* const row = row0 + static_cast<int64_t>(m) * CL;
#pragma GCC unroll 16
                  for (int u = ulo; u < uhi; ++u) {
                    const vf w = simd::loadu(wrow + (ulo - u) * wstep + u * L);
                    const float* const ru = opaque(row);
                    for (int c = 0; c < C; ++c) sum[u][c] += simd::loadu(ru + c * L) * w;
                    wsum[u] += w;
                  }
                };
#pragma GCC unroll 16
                for (int h = 0; h < NV - 1; ++h) part(h, 0, h + 1, cw0 + h * ws, ws);
                for (int m = NV - 1; m < n; ++m) step(m, std::false_type{});
#pragma GCC unroll 16
                for (int e = 0; e < NV - 1; ++e) part(n + e, e + 1, NV, cwl, ws);
              } else {
                const int mb = std::min(NV - 1, n);
                int m = 0;
                for (; m < mb; ++m) step(m, std::true_type{});
                for (; m < n; ++m) step(m, std::false_type{});
                for (; m < n + NV - 1; ++m) step(m, std::true_type{});
              }
            }
          }
          if (nf > 0)
            for (int u = 0; u < NV; ++u) {
              wsum[u] += wsumf[u];
              for (int c = 0; c < C; ++c) sum[u][c] += sumf[u][c];
            }
          for (int u = 0; u < NV; ++u) {
            if constexpr (C == 1) {
              simd::storeu(outl + x + u * L, sum[u][0] / wsum[u]);
            } else if constexpr (kPk<T, C>) {  // the packed uint8 results (round_u8, spread_rgb)
              const vf inv = 1.f / wsum[u];
              const vi pv =
                  round_u8(sum[u][0] * inv) | round_u8(sum[u][1] * inv) << 8 | round_u8(sum[u][2] * inv) << 16;
              simd::storeu(reinterpret_cast<int32_t*>(outl) + x + u * L, pv);
            } else {
              const vf inv = 1.f / wsum[u];
              for (int c = 0; c < C; ++c) simd::storeu(outl + (x + u * L) * C + c * L, sum[u][c] * inv);
            }
          }
        };
        auto row_pass = [&](auto lowc) IMKERN_ALWAYS_INLINE {
          int64_t x = 0;
          constexpr int NV = kNV<T, C>;
          pf.plan((Wv + NV * L - 1) / (NV * L));
          for (; x + (NV - 1) * L < Wv; x += NV * L) {
            pixels(x, std::integral_constant<int, NV>{}, lowc);
            pf.step();
          }
          for (; x < Wv; x += L) {
            pixels(x, std::integral_constant<int, 1>{}, lowc);
            pf.step();
          }
        };
        if (low) row_pass(std::true_type{});
        else row_pass(std::false_type{});
        // Out of the lanes: L x L blocks transposed into pixel order, interleaved (run l at l * Mp,
        // the floats past Mv * C unused), stored run by run.
        if constexpr (kPk<T, C>) {
          // uint8 RGB: the packed results transposed, squeezed to 3 bytes a pixel straight into
          // the output row (a run's last, partial block through a buffer).
          const int32_t* const po = reinterpret_cast<const int32_t*>(outl);
          for (int64_t m0 = 0; m0 < Mv; m0 += L) {
            vf blk[L];
#pragma GCC unroll 16
            for (int u = 0; u < L; ++u) blk[u] = reinterpret_cast<vf>(simd::loadu(po + (m0 + u) * L));
            transpose(blk);
#pragma GCC unroll 16
            for (int l = 0; l < L; ++l) {
              const int64_t n = std::min<int64_t>(std::min(Mv, Ws - l * Mv) - m0, L);  // pixels to store
              uint8_t* const o = reinterpret_cast<uint8_t*>(drow) + (l * Mv + m0) * 3;
              if (n == L) {
                squeeze_rgb(o, reinterpret_cast<vi>(blk[l]));
              } else if (n > 0) {
                uint8_t tmp[3 * L];
                squeeze_rgb(tmp, reinterpret_cast<vi>(blk[l]));
                std::memcpy(o, tmp, static_cast<size_t>(3 * n));
              }
            }
          }
        } else {
          for (int64_t e0 = 0; e0 < Mv * C; e0 += L) {
            vf blk[L];
#pragma GCC unroll 16
            for (int u = 0; u < L; ++u) blk[u] = simd::loadu(outl + (e0 + u) * L);
            transpose(blk);
#pragma GCC unroll 16
            for (int l = 0; l < L; ++l) simd::storeu(outt + l * Mp + e0, blk[l]);
          }
          for (int l = 0; l < L && l * Mv < Ws; ++l)
            store_row<T, float>(outt + l * Mp, drow + l * Mv * C, std::min(Mv, Ws - l * Mv) * C);
        }
      }
    }
  });
}

}  // namespace

void bilateral(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int radius,
               double sigma_color, double sigma_space, Border border) {
  if (s.c != 1 && s.c != 3) throw std::invalid_argument("image: bilateral takes 1 or 3 channels");
  if (dtype == DType::u8) {
    if (s.c == 1) bilateral_typed<uint8_t, 1>(src, s, dst, d, radius, sigma_color, sigma_space, border);
    else bilateral_typed<uint8_t, 3>(src, s, dst, d, radius, sigma_color, sigma_space, border);
  } else if (dtype == DType::f32) {
    if (s.c == 1) bilateral_typed<float, 1>(src, s, dst, d, radius, sigma_color, sigma_space, border);
    else bilateral_typed<float, 3>(src, s, dst, d, radius, sigma_color, sigma_space, border);
  } else {
    throw std::invalid_argument("image: bilateral takes uint8 or float32");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
