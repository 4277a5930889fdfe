// rgb_to_hsv, hsv_to_rgb (compiled per ISA).
//
// uint8: OpenCV's convention (H in [0, 180), S, V in [0, 255]); the forward conversion is
// cv2's fixed-point algorithm with its two 256-entry division tables (built once from the
// same integer functions the CUDA kernel evaluates, so both devices agree bit for bit), the
// inverse exact rationals rounded half up. Floats: skimage.color.rgb2hsv / hsv2rgb in the
// image's type (H, S, V in [0, 1]). Per pixel: 6 elements moved, ~10 integer ops (uint8) or
// 2 divisions (floats). Float outputs beyond the cache are written with non-temporal stores.
// uint8 vector rows: rgb_to_hsv 64 pixels per step on AVX-512 with VBMI (bytes and words only:
// the tables looked up by vpermi2b, no division; beyond the cache streamed stores and a
// prefetched input), 32 per step on AVX2 (software-pipelined: the byte stage of the next step
// beside the float stage of this one; one division for both tables; beyond the cache streamed
// stores, two steps' outputs at a time, and a prefetched input) and on AVX-512 without VBMI
// (bytes, words, then the two table quotients in float dwords), 16 on SSE4.1 and for a tail;
// hsv_to_rgb 32 per step in words on AVX2 / AVX-512 (AVX2: one quotient per pixel and the
// selection in bytes), 16 per step in dwords on SSE4.1 and for a tail; the per-pixel functor for
// the rest.
#include <cstring>

#include "color/pixel_map.hpp"
#include "imkern/cpu_params.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
struct HsvTables {
  int32_t sdiv[256], hdiv[256];
  HsvTables() {
    for (int i = 0; i < 256; ++i) {
      sdiv[i] = color::hsv_sdiv(i);
      hdiv[i] = color::hsv_hdiv(i);
    }
  }
};
const HsvTables& hsv_tables() {
  static const HsvTables t;
  return t;
}

struct RgbToHsvU8 {
  const int32_t* sdiv;
  const int32_t* hdiv;
  void operator()(const uint8_t* in, uint8_t* out) const {
    const int32_t r = in[0], g = in[1], b = in[2];
    int32_t v = r > g ? r : g;
    v = v > b ? v : b;
    int32_t mn = r < g ? r : g;
    mn = mn < b ? mn : b;
    color::rgb_to_hsv_u8(r, g, b, sdiv[v], hdiv[v - mn], out);
  }
};
#if defined(__SSE4_1__)
// color::rgb_to_hsv_u8 on 16 pixels per step: V, min and V - min in bytes (pmaxub, pminub),
// the rest in native int32 lanes. The two division tables are evaluated in float: rint(N / d)
// with N < 2^23 is exact in float32 (the quotient's distance from a half-integer, >= 1/(2d),
// exceeds half an ulp, and exact ties are representable), so the lanes reproduce hsv_sdiv /
// hsv_hdiv bit for bit; cvtps2dq rounds half to even, as cvRound. Where the table's argument is
// 0 (V = 0, or V - min = 0) the factor it multiplies is 0 too, so d = max(d, 1) is enough.
typedef int16_t v16i __attribute__((vector_size(32)));
IMKERN_ALWAYS_INLINE inline v16i u8_to_i16(__m128i b) {
#if defined(__AVX2__)
  return reinterpret_cast<v16i>(_mm256_cvtepu8_epi16(b));
#else
  union { v16i v; __m128i q[2]; } u;
  u.q[0] = _mm_cvtepu8_epi16(b);
  u.q[1] = _mm_cvtepu8_epi16(_mm_srli_si128(b, 8));
  return u.v;
#endif
}
IMKERN_ALWAYS_INLINE inline void i16_to_i32(v16i a, vi* v) {
#if defined(__AVX512F__)
  v[0] = reinterpret_cast<vi>(_mm512_cvtepi16_epi32(reinterpret_cast<__m256i>(a)));
#elif defined(__AVX2__)
  v[0] = reinterpret_cast<vi>(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(reinterpret_cast<__m256i>(a))));
  v[1] = reinterpret_cast<vi>(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(reinterpret_cast<__m256i>(a), 1)));
#else
  union { v16i v; __m128i q[2]; } u;
  u.v = a;
  v[0] = reinterpret_cast<vi>(_mm_cvtepi16_epi32(u.q[0]));
  v[1] = reinterpret_cast<vi>(_mm_cvtepi16_epi32(_mm_srli_si128(u.q[0], 8)));
  v[2] = reinterpret_cast<vi>(_mm_cvtepi16_epi32(u.q[1]));
  v[3] = reinterpret_cast<vi>(_mm_cvtepi16_epi32(_mm_srli_si128(u.q[1], 8)));
#endif
}

struct RgbToHsvRowU8 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    auto table = [](vi d, float num) IMKERN_ALWAYS_INLINE {
      return round_to_int((vf{} + num) / __builtin_convertvector(d > 1 ? d : vi{} + 1, vf));
    };
    int64_t x = 0;
    for (; x + 16 <= w; x += 16) {
      __m128i rb, gb, bb;
      deinterleave3_u8(in + 3 * x, rb, gb, bb);
      const __m128i vb = _mm_max_epu8(_mm_max_epu8(rb, gb), bb);
      const __m128i db = _mm_sub_epi8(vb, _mm_min_epu8(_mm_min_epu8(rb, gb), bb));
      // the hue's numerator in 16 int16 lanes (|n| <= 4 * 255): g - b, b - r + 2 d or r - g + 4 d
      // as V is R, G or B (in that order of precedence)
      const v16i r16 = u8_to_i16(rb), g16 = u8_to_i16(gb), b16 = u8_to_i16(bb);
      const v16i v16 = u8_to_i16(vb), d16 = u8_to_i16(db);
      const v16i n16 = v16 == r16 ? g16 - b16 : (v16 == g16 ? b16 - r16 + 2 * d16 : r16 - g16 + 4 * d16);
      vi v[kParts], diff[kParts], n[kParts], h[kParts], s[kParts];
      widen16(vb, v);
      widen16(db, diff);
      i16_to_i32(n16, n);
      for (int k = 0; k < kParts; ++k) {
        s[k] = (diff[k] * table(v[k], float(255 << 12)) + (1 << 11)) >> 12;
        const vi hk = (n[k] * table(diff[k], float(180 << 12) / 6.0f) + (1 << 11)) >> 12;
        h[k] = hk < 0 ? hk + 180 : hk;
      }
      interleave3_u8(narrow16(h), narrow16(s), vb, out + 3 * x);
    }
    return x;
  }
};
#endif

#if defined(__AVX512F__)
// AVX-512 without VBMI: 32 pixels per step, V, V - min and the hue numerator's operands
// selected in bytes (n = X - Y + k d, (X, Y, k) = (g, b, 0), (b, r, 2) or (r, g, 4) as V is R,
// G or B), X + k d in int16 words by one pmaddubsw of the byte pairs (X, d) and (1, k), each 16
// words widened to one vector of dwords for the float products (bytes become words by
// unpacking with zero within 128-bit halves, so the packs at the end restore pixel order
// without permutes). The table value T = rint(N / x) (N = 255 * 4096 for S with x = V,
// 30 * 4096 for H with x = d) is taken as T / 4096 = rint to a multiple of 2^-12 of
// q = (N / 4096) / max(x, 1): q + 3072 has its ulp at 2^-12 and rounds half to even as cvRound,
// and subtracting 3072 is exact (a zero x meets a zero factor); then (y T + 2048) >> 12 =
// floor(y (T / 4096) + 0.5) is exact in one fma and truncated (the hue plus 180, then wrapped).
IMKERN_ALWAYS_INLINE inline void rgb_to_hsv_words(__m256i v16, __m256i d16, __m256i xk16, __m256i y16, __m256i& s16,
                                                  __m256i& h16) {
  const __m512 magic = _mm512_set1_ps(3072.0f), one = _mm512_set1_ps(1.0f);
  auto table = [&](__m512 x, float num) IMKERN_ALWAYS_INLINE {
    return _mm512_sub_ps(_mm512_add_ps(_mm512_div_ps(_mm512_set1_ps(num), _mm512_max_ps(x, one)), magic), magic);
  };
  const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(v16)), d = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(d16));
  const __m512 n = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_sub_epi16(xk16, y16)));
  s16 = _mm512_cvtepi32_epi16(_mm512_cvttps_epi32(_mm512_fmadd_ps(d, table(v, 255.0f), _mm512_set1_ps(0.5f))));
  const __m256i hz =
      _mm512_cvtepi32_epi16(_mm512_cvttps_epi32(_mm512_fmadd_ps(n, table(d, 30.0f), _mm512_set1_ps(180.5f))));
  h16 = _mm256_min_epu16(hz, _mm256_sub_epi16(hz, _mm256_set1_epi16(180)));  // hz < 180: hz - 180 wraps above
}
struct RgbToHsvRowU8x32 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2),
                  four = _mm256_set1_epi8(4);
    int64_t x = 0;
    for (; x + 32 <= w; x += 32) {
      __m256i rb, gb, bb;
      deinterleave3_u8x32(in + 3 * x, rb, gb, bb);
      const __m256i vb = _mm256_max_epu8(_mm256_max_epu8(rb, gb), bb);
      const __m256i db = _mm256_sub_epi8(vb, _mm256_min_epu8(_mm256_min_epu8(rb, gb), bb));
      const __m256i mr = _mm256_cmpeq_epi8(vb, rb), mg = _mm256_cmpeq_epi8(vb, gb);
      // (blendv(a, b, m): m ? b : a)
      const __m256i xb = _mm256_blendv_epi8(_mm256_blendv_epi8(rb, bb, mg), gb, mr);
      const __m256i yb = _mm256_blendv_epi8(_mm256_blendv_epi8(gb, rb, mg), bb, mr);
      const __m256i kb = _mm256_andnot_si256(mr, _mm256_blendv_epi8(four, two, mg));
      __m256i s16[2], h16[2];
      for (int k = 0; k < 2; ++k) {
        auto word = [&](__m256i b) IMKERN_ALWAYS_INLINE {
          return k ? _mm256_unpackhi_epi8(b, zero) : _mm256_unpacklo_epi8(b, zero);
        };
        // X + k d <= 1275: pmaddubsw (unsigned (X, d) times signed (1, k)) does not saturate
        const __m256i xd = k ? _mm256_unpackhi_epi8(xb, db) : _mm256_unpacklo_epi8(xb, db);
        const __m256i onek = k ? _mm256_unpackhi_epi8(one, kb) : _mm256_unpacklo_epi8(one, kb);
        rgb_to_hsv_words(word(vb), word(db), _mm256_maddubs_epi16(xd, onek), word(yb), s16[k], h16[k]);
      }
      interleave3_u8x32(_mm256_packus_epi16(h16[0], h16[1]), _mm256_packus_epi16(s16[0], s16[1]), vb, out + 3 * x);
    }
    return x + RgbToHsvRowU8{}(in + 3 * x, out + 3 * x, w - x);  // a tail of 16 or more pixels
  }
};
#elif defined(__AVX2__)
// AVX2: 32 pixels per step, software-pipelined: the loop runs the byte stage of the next 32
// pixels (hsv_front: deinterleave, V, V - min, the hue numerator's operands) beside the float
// stage of the current ones (hsv_back), so the out-of-order core has independent work while
// the divisions and their fma chains wait (Xeon Granite Rapids: 70 -> 62 cycles per 32
// pixels from that alone). The bound is the two floating-point ports (p0 / p1 on Intel):
// conversions, fmas and the division all go there, so the byte and word work is arranged to
// avoid them.
//   Bytes: the planes from 4-pixel groups (hsv_deinterleave), V, V - min, the masks V = R and
// V = G (in that order of precedence); X without a blend (hsv_front: a min, an or, an and and
// an xor), Y = R ^ G ^ B ^ V ^ X (the remaining channel: {V, X, Y} = {R, G, B}), k = 4, 2 or 0
// by masks;
// X + k d in words by one pmaddubsw of the byte pairs (X, d) and (1, k) (<= 1275: no
// saturation); n + 1024 = (X + k d) - (Y - 1024) in words (Y - 1024: Y unpacked with the high
// byte 0xFC), in [769, 2299], so that unpacking it with the high word 0x4B00 makes the float
// 2^23 + n + 1024, and one subtraction gives n (no pmaddwd, no conversion).
//   Floats, 8 pixels per vector (d zero-extended from bytes by one pshufb; V and n from words
// unpacked with the high word 0x4B00, the float bits of 2^23 + x): the table value
// T = rint(N / x) (N = 255 * 4096 for S with x = V, 30 * 4096 for H with x = d) is taken as
// T / 4096 = rint to a multiple of 2^-12 of q = (N / 4096) / x, by adding 3072: q + 3072 has
// its ulp at 2^-12 (q <= 255 keeps the sum in [2048, 4096)) and rounds half to even as cvRound.
// One division serves both tables: v = 30 V / 255 (one fma of 2^23 + V and c = 30 / 255 less
// 2^23 c, which is exact: the conversion and the product in one operation), r = 30 / (v d),
// q = d r for S and v r for H, each product rounded once inside the fma that adds 3072; with
// the roundings of v, v d and r (S; v's cancels in H's v r) q is within 2^-22 relative of the
// true one, so within 255 * 2^-22 / x of it, less than q's distance to a rounding boundary,
// which is a nonzero multiple of 2^-13 / x (no q is a tie: 2^13 * 255 / x and 2^13 * 30 / x are
// never odd integers for x < 2^13): the rounding is the exact quotient's. Then (y T + 2048) >> 12
// = floor(y (T / 4096) + 0.5) with y = d or n: T / 4096 = (T / 4096 + 3072) - 3072 exactly, and
// one fma of y and T / 4096 plus 0.5 (or 180.5 for the hue, h >= -30) is exact (a multiple of
// 2^-12 below 2^11), and truncation floors it (positive); the hue wraps by hz - 180 where that
// is not negative. (The subtraction of 3072 rather than an fma-formed addend 0.5 - 3072 y: the
// same count, but an add runs on the adders, off the two fma ports, where Golden Cove-class
// cores (ports 1 and 5) and Zen 4 (FP2 / FP3) have them: 57.4 -> 55.6 cycles per 32 pixels on
// the Xeon.) A zero product (v d = 0: black or gray pixels) becomes 2^-30 (the fma that forms
// v d adds it; the smallest nonzero v d is 30 / 255, where it is below half an ulp), so r stays
// finite: q = d r = 0 for S, and H's large but finite q meets n = 0 (d = 0 makes X = Y and
// k d = 0); no floating-point exception but inexact is raised (a process may unmask them).
// (Every input: tests/test_color_exhaustive.py.)
//   Out: packuswb of the words (H, S) gives P_k = (H, S) of pixels 8k..8k+7 per half, and six
// pshufb of P_0, P_1, their vpblendd and V build the 96 bytes (stored as 16-byte halves: no lane
// permute). (V by unpacks and an fma rather than pshufb, cvtdq2ps and a multiply, and the blend
// for a pshufb and an or: 3 operations fewer per 32 pixels, 0.678 -> 0.668x cv2 single thread
// at 4K, ~1% in L2.)
//   Measured and not taken (Xeon Granite Rapids, AVX2, single thread; here each vector operation
// removed saves ~0.35 cycle): S's table value by vpgatherdd from a float table and H's by a
// division of its own, (2048 d + 30) / d correctly rounded being 2048 + hsv_hdiv(d) / 4096
// (exact on all 2^24 inputs; 14 operations and a gather per 8 pixels instead of 17): equal in
// steady state, in L2 and at 4K (0.95x only when calls alternate with these rows, an artifact),
// 1.03x with the guard that keeps gray pixels from dividing by 0; AMD's gathers are microcoded
// besides. 255 / V and 30 / d by two divisions per 8 pixels, each as 2048 + q (the same
// exactness; no V d, no 30 V / 255): 0.98x in L1, but vdivps ymm issues one per 5.2 cycles here,
// so 8 per step hold the divider ~42 of the step's ~53 cycles (and Zen 4's is unmeasured).
// In-process A/B, 120x1000: replacing the division by a multiply (wrong values, a bound) gave
// 1.00x, so the divider is not what limits and rcp + a Newton step (3 operations for 1) can only
// lose (AMD's rcpps also differs from Intel's); two steps per iteration in the plain loop (as the
// streamed one) 1.00x; the deinterleave's loads by vbroadcasti128 + vpblendd instead of
// vinserti128 (off port 5) 1.00-1.01x.
struct HsvAvx2Masks {
  // out[c][src]: output chunk c (16 bytes of a half's 48) from P_0, P_1 (src 0, 1) or V (2);
  // out[1][0] takes chunk 1's bytes of both P_0 and P_1 from their blend (hsv_back)
  alignas(32) int8_t out[3][3][32];
  HsvAvx2Masks() {
    for (int c = 0; c < 3; ++c)
      for (int src = 0; src < 3; ++src)
        for (int i = 0; i < 32; ++i) {
          const int b = 16 * c + (i & 15), j = b / 3, ch = b % 3;  // pixel j's channel ch
          int idx = -1;
          if (ch == 2) {
            if (src == 2) idx = j;
          } else if (src == (j < 8 ? 0 : 1)) {
            idx = (j & 7) + 8 * ch;
          }
          out[c][src][i] = static_cast<int8_t>(idx);
        }
    for (int i = 0; i < 32; ++i)
      if (out[1][0][i] < 0) out[1][0][i] = out[1][1][i];
  }
};
const HsvAvx2Masks& hsv_avx2_masks() {
  static const HsvAvx2Masks t;
  return t;
}

// 32 RGB pixels (96 bytes) -> three planes in pixel order: Y_k holds the 4-pixel group k in its
// low half and group k + 4 in its high half, sorted by pshufb into dwords (R, G, B, 0), then a
// 4 x 4 transpose of dwords per half (11 shuffles; three pshufb per plane and two ors took 15).
IMKERN_ALWAYS_INLINE inline void hsv_deinterleave(const uint8_t* p, __m256i& r, __m256i& g, __m256i& b) {
  const __m256i m = bc16(_mm_setr_epi8(0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11, -1, -1, -1, -1));
  // the last group's high half is read from 4 bytes earlier, to stay inside the 96 bytes
  const __m256i m3 = _mm256_setr_epi8(0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11, -1, -1, -1, -1, 4, 7, 10, 13, 5, 8, 11, 14,
                                      6, 9, 12, 15, -1, -1, -1, -1);
  auto ld = [](const uint8_t* lo, const uint8_t* hi) IMKERN_ALWAYS_INLINE {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
  };
  const __m256i y0 = _mm256_shuffle_epi8(ld(p, p + 48), m), y1 = _mm256_shuffle_epi8(ld(p + 12, p + 60), m);
  const __m256i y2 = _mm256_shuffle_epi8(ld(p + 24, p + 72), m), y3 = _mm256_shuffle_epi8(ld(p + 36, p + 80), m3);
  const __m256i t0 = _mm256_unpacklo_epi32(y0, y1), t1 = _mm256_unpacklo_epi32(y2, y3);
  const __m256i t2 = _mm256_unpackhi_epi32(y0, y1), t3 = _mm256_unpackhi_epi32(y2, y3);
  r = _mm256_unpacklo_epi64(t0, t1);
  g = _mm256_unpackhi_epi64(t0, t1);
  b = _mm256_unpacklo_epi64(t2, t3);
}

// The byte stage of 32 pixels: V and d = V - min as bytes, n + 1024 as words (k = 0: pixels 0-7
// of each half, k = 1: 8-15).
struct HsvFront {
  __m256i vb, db, n16[2];
};
IMKERN_ALWAYS_INLINE inline void hsv_front(const uint8_t* p, HsvFront& f) {
  const __m256i one = _mm256_set1_epi8(1), fc = _mm256_set1_epi8(-4);
  __m256i rb, gb, bb;
  hsv_deinterleave(p, rb, gb, bb);
  const __m256i vb = _mm256_max_epu8(_mm256_max_epu8(rb, gb), bb);
  const __m256i db = _mm256_sub_epi8(vb, _mm256_min_epu8(_mm256_min_epu8(rb, gb), bb));
  const __m256i mr = _mm256_cmpeq_epi8(vb, rb), mg = _mm256_cmpeq_epi8(vb, gb);
  // X = V = R ? G : (V = G ? B : R) without vpblendvb (3 uops on Intel P-cores, a chain of two
  // per X): t = min(B, R | mask(V = G)) is B where V = G (R | 0xFF), R where V is B alone (R < B)
  // and B where V = R (R = V >= B, or 0xFF), so X = t ^ (mask(V = R) & (G ^ B)); G ^ B serves Y
  // too. Same bits; 4 single-uop operations on any vector port for the 2 blends' 6 uops and
  // their 6-cycle chain (Xeon Granite Rapids, AVX2, single thread: 120x1000 ~0.98x the time,
  // 4K 0.98-1.00x). Zen 4 issues vpblendvb as one op (Agner Fog's tables), so there these are
  // two simple operations more per 32 pixels (~1.5% of the ~130), unmeasured.
  const __m256i gx = _mm256_xor_si256(gb, bb);
  const __m256i tb = _mm256_min_epu8(bb, _mm256_or_si256(rb, mg));
  const __m256i xb = _mm256_xor_si256(tb, _mm256_and_si256(mr, gx));
  const __m256i yb = _mm256_xor_si256(_mm256_xor_si256(gx, _mm256_xor_si256(rb, vb)), xb);
  // k: 4, 2 where V = G (4 ^ 6), 0 where V = R
  const __m256i kb =
      _mm256_andnot_si256(mr, _mm256_xor_si256(_mm256_set1_epi8(4), _mm256_and_si256(mg, _mm256_set1_epi8(6))));
  f.vb = vb;
  f.db = db;
  for (int k = 0; k < 2; ++k) {
    const __m256i xd = k ? _mm256_unpackhi_epi8(xb, db) : _mm256_unpacklo_epi8(xb, db);
    const __m256i onek = k ? _mm256_unpackhi_epi8(one, kb) : _mm256_unpacklo_epi8(one, kb);
    const __m256i y1024 = k ? _mm256_unpackhi_epi8(yb, fc) : _mm256_unpacklo_epi8(yb, fc);  // Y - 1024
    f.n16[k] = _mm256_sub_epi16(_mm256_maddubs_epi16(xd, onek), y1024);
  }
}

// bytes 4q..4q+3 of each half, zero-extended to dwords, as floats
IMKERN_ALWAYS_INLINE inline __m256 hsv_dwords(__m256i b, int q) {
  const __m256i m = bc16(_mm_setr_epi8(4 * q, -1, -1, -1, 4 * q + 1, -1, -1, -1, 4 * q + 2, -1, -1, -1, 4 * q + 3, -1,
                                       -1, -1));
  return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(b, m));
}

// The float stage of the 32 pixels of f: their 96 output bytes, o[c] holding bytes 16c..16c+15
// in its low half and 48 + 16c.. in its high half.
IMKERN_ALWAYS_INLINE inline void hsv_back(const HsvFront& f, const HsvAvx2Masks& t, __m256i* o) {
  const __m256 magic = _mm256_set1_ps(3072.0f);
  const __m256i magic_w = _mm256_set1_epi16(0x4B00);  // a word x below it: 2^23 + x as float bits
  const float c30 = 30.0f / 255.0f;
  __m256i P[2];
  for (int k = 0; k < 2; ++k) {
    __m256i s[2], h[2];
    const __m256i v16 = k ? _mm256_unpackhi_epi8(f.vb, _mm256_setzero_si256())
                          : _mm256_unpacklo_epi8(f.vb, _mm256_setzero_si256());
    for (int j = 0; j < 2; ++j) {  // pixels 8k + 4j .. 8k + 4j + 3 of each half
      auto dwords = [&](__m256i w) IMKERN_ALWAYS_INLINE {
        return _mm256_castsi256_ps(j ? _mm256_unpackhi_epi16(w, magic_w) : _mm256_unpacklo_epi16(w, magic_w));
      };
      const __m256 d = hsv_dwords(f.db, 2 * k + j);
      const __m256 n = _mm256_sub_ps(dwords(f.n16[k]), _mm256_set1_ps(8389632.0f));  // - (2^23 + 1024)
      // 30 V / 255 = (2^23 + V) c - 2^23 c, one rounding (2^23 c is exact)
      const __m256 v30 = _mm256_fmadd_ps(dwords(v16), _mm256_set1_ps(c30), _mm256_set1_ps(-0x1p23f * c30));
      const __m256 r = _mm256_div_ps(_mm256_set1_ps(30.0f), _mm256_fmadd_ps(v30, d, _mm256_set1_ps(0x1p-30f)));
      const __m256 es = _mm256_sub_ps(_mm256_fmadd_ps(d, r, magic), magic);
      const __m256 eh = _mm256_sub_ps(_mm256_fmadd_ps(v30, r, magic), magic);
      s[j] = _mm256_cvttps_epi32(_mm256_fmadd_ps(d, es, _mm256_set1_ps(0.5f)));
      h[j] = _mm256_cvttps_epi32(_mm256_fmadd_ps(n, eh, _mm256_set1_ps(180.5f)));
    }
    const __m256i s16 = _mm256_packs_epi32(s[0], s[1]), hz = _mm256_packs_epi32(h[0], h[1]);
    // hz < 180: hz - 180 is negative, above hz as unsigned
    const __m256i h16 = _mm256_min_epu16(hz, _mm256_sub_epi16(hz, _mm256_set1_epi16(180)));
    P[k] = _mm256_packus_epi16(h16, s16);
  }
  auto mask = [&](int c, int src) IMKERN_ALWAYS_INLINE {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(t.out[c][src]));
  };
  o[0] = _mm256_or_si256(_mm256_shuffle_epi8(P[0], mask(0, 0)), _mm256_shuffle_epi8(f.vb, mask(0, 2)));
  // chunk 1 (pixels 5-10) takes bytes 5-7 and 13-15 of P_0 (dwords 1, 3) and 0-2 and 8-10 of
  // P_1 (dwords 0, 2): one vpblendd joins them for a single pshufb
  o[1] = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_blend_epi32(P[1], P[0], 0xAA), mask(1, 0)),
                         _mm256_shuffle_epi8(f.vb, mask(1, 2)));
  o[2] = _mm256_or_si256(_mm256_shuffle_epi8(P[1], mask(2, 1)), _mm256_shuffle_epi8(f.vb, mask(2, 2)));
}

// The 96 bytes of hsv_back's o at p, in address order (16-byte halves: no lane permute);
// Stream: by non-temporal stores (p 16-byte aligned).
template <bool Stream>
IMKERN_ALWAYS_INLINE inline void hsv_store(const __m256i* o, uint8_t* p) {
  __m128i* q = reinterpret_cast<__m128i*>(p);
  auto store = [&](int i, __m128i v) IMKERN_ALWAYS_INLINE {
    if (Stream) _mm_stream_si128(q + i, v);
    else _mm_storeu_si128(q + i, v);
  };
  for (int c = 0; c < 3; ++c) store(c, _mm256_castsi256_si128(o[c]));
  for (int c = 0; c < 3; ++c) store(3 + c, _mm256_extracti128_si256(o[c], 1));
}

// Whole steps of 32 pixels from pixel x0 on (pipelined; the caller has w - x0 >= 32), by plain
// stores; returns the pixels done.
int64_t rgb_to_hsv_avx2_steps(const uint8_t* in, uint8_t* out, int64_t x0, int64_t w) {
  const HsvAvx2Masks& t = hsv_avx2_masks();
  int64_t x = x0;
  HsvFront f;
  hsv_front(in + 3 * x, f);
  __m256i o[3];
  for (; x + 64 <= w; x += 32) {
    HsvFront g;
    hsv_front(in + 3 * x + 96, g);
    hsv_back(f, t, o);
    hsv_store<false>(o, out + 3 * x);
    f = g;
  }
  hsv_back(f, t, o);
  hsv_store<false>(o, out + 3 * x);
  return x + 32;
}

// Pixels [x0, x1) of a row of w >= 32 pixels by plain stores that stay inside their outputs:
// 32-pixel steps, the last one ending at x1 (overlapping the one before: the same values); fewer
// than 32 pixels by one step on the 32 pixels from x0 (or ending at the row's end) into a buffer,
// their part copied out.
void rgb_to_hsv_avx2_plain(const uint8_t* in, uint8_t* out, int64_t x0, int64_t x1, int64_t w) {
  if (x1 - x0 >= 32) {
    if (rgb_to_hsv_avx2_steps(in, out, x0, x1) < x1) rgb_to_hsv_avx2_steps(in, out, x1 - 32, x1);
  } else if (x1 > x0) {
    const int64_t s = x0 + 32 <= w ? x0 : w - 32;
    alignas(32) uint8_t buf[96];
    rgb_to_hsv_avx2_steps(in + 3 * s, buf, 0, 32);
    std::memcpy(out + 3 * x0, buf + 3 * (x0 - s), static_cast<size_t>(3 * (x1 - x0)));
  }
}

// Streamed: pixels [x0, x1) in 64-pixel pairs of the pipelined steps (out + 3 x0 16-byte aligned,
// x1 - x0 a nonzero multiple of 64): each pair's 192 output bytes written by twelve consecutive
// 16-byte non-temporal stores (six 32-byte ones: Wide) once both steps are computed (three whole lines where out + 3 x0
// is 64-byte aligned), the input prefetched a page ahead (prefetch_page_ahead: the hardware's
// stream prefetchers stop at page boundaries). No fence: map_pixels ends each chunk of rows
// with stream_fence.
//   Why pairs: storing each 32-pixel step as it was computed (1.5 lines) left half a line to be
// finished by the next step's stores ~25 ns later, and a line whose write-combining buffer is
// not filled back to back costs more (partial flushes): single thread 4K, AVX2, Xeon Granite
// Rapids, the streaming stores alone (the same stores with the input one L1-resident row)
// cost ~0.4 ms of ~5 into a 64-byte aligned output and ~0.9 ms into one 16 bytes into a line
// (two of three lines split across steps); paired, ~0.1 ms. The 4K call: 5.6 -> 4.9-5.0 ms.
// Nothing here is vendor-specific (Intel's optimization manual: streaming stores gain when the
// 64 bytes of a line are written consecutively; AMD's guides describe the same 64-byte
// write-combining buffers; Zen 4 was not measured): the same instructions as one step at a time,
// and whether to stream is still decided by cpu_params' stream_bytes.
//   Wide (out + 3 x0 32-byte aligned, as every output of imkern's own allocation): six 32-byte
// stores per pair, their halves joined by four vperm2i128 and two vpblendd instead of the six
// vextracti128 of the 16-byte stores (the same shuffle count, half the stores): 2 threads, 4K,
// process CPU time 0.664-0.693x cv2 against 0.691-0.719x with 16-byte stores (7 same-process
// pairs of runs; single thread within noise, 0.663-0.694x against 0.670-0.685x).
template <bool Wide>
void rgb_to_hsv_avx2_stream(const uint8_t* in, uint8_t* out, int64_t x0, int64_t x1) {
  const HsvAvx2Masks& t = hsv_avx2_masks();
  HsvFront f;
  hsv_front(in + 3 * x0, f);
  for (int64_t x = x0; x < x1; x += 64) {
    prefetch_page_ahead<192>(in + 3 * x);
    HsvFront g;
    hsv_front(in + 3 * x + 96, g);
    __m256i a[3], b[3];
    hsv_back(f, t, a);
    if (x + 64 < x1) hsv_front(in + 3 * x + 192, f);
    hsv_back(g, t, b);
    if (Wide) {
      __m256i* q = reinterpret_cast<__m256i*>(out + 3 * x);
      for (const __m256i* o : {a, b}) {  // bytes 0-31 (o0, o1 low), 32-63 (o2 low, o0 high), 64-95
        _mm256_stream_si256(q++, _mm256_permute2x128_si256(o[0], o[1], 0x20));
        _mm256_stream_si256(q++, _mm256_blend_epi32(o[2], o[0], 0xF0));
        _mm256_stream_si256(q++, _mm256_permute2x128_si256(o[1], o[2], 0x31));
      }
    } else {
      hsv_store<true>(a, out + 3 * x);
      hsv_store<true>(b, out + 3 * x + 96);
    }
  }
}

struct RgbToHsvRowU8x32 {
  // Outputs beyond the cache: streamed from the first pixel whose output is 16-byte aligned (0
  // for a 16-byte aligned output and W a multiple of 16), in pairs to the row's last whole pair;
  // the pixels before and after by plain stores that stay inside their own outputs. Not on
  // common/stream.hpp's whole-line rule (stream_span, streaming from the first line boundary):
  // into an output 16 bytes into a line (np.empty's arrays of this size are), single thread 4K,
  // AVX2, Xeon Granite Rapids, the rule's plain head and tail in every row (3 of the row's 180
  // lines, read for ownership, and their short steps) measured 0.73-0.79x cv2 against
  // 0.715-0.73x streaming them (a contiguous image's row ends then meet in lines that streaming
  // stores of both rows fill); into a 64-byte aligned output (imkern's own) both are the same.
  bool stream = false;
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    const int64_t head = stream ? stream_head<uint8_t, 3>(out, 16) : -1;  // in [0, 16)
    if (head >= 0 && w - head >= 64) {
      const int64_t end = head + (w - head) / 64 * 64;
      rgb_to_hsv_avx2_plain(in, out, 0, head, w);
      if (reinterpret_cast<uintptr_t>(out + 3 * head) % 32 == 0) rgb_to_hsv_avx2_stream<true>(in, out, head, end);
      else rgb_to_hsv_avx2_stream<false>(in, out, head, end);
      rgb_to_hsv_avx2_plain(in, out, end, w, w);
      return w;
    }
    // a tail of w % 32 pixels by one more step ending at w (overlapping the one before: the
    // same values; outputs never overlap inputs) rather than 16-pixel blocks and the functor
    // (up to 15 pixels by the table lookups): 37 x 1001 (9 a row) 0.926 -> 0.914x cv2, single
    // thread (imkern's 2.7 us per call against cv2's 1.2 us is most of the rest of the gap there)
    if (w >= 32) {
      rgb_to_hsv_avx2_plain(in, out, 0, w, w);
      return w;
    }
    return RgbToHsvRowU8{}(in, out, w);  // 16 to 31 pixels: one 16-pixel block
  }
};
#endif

#if defined(__AVX512BW__)
// AVX-512 with VBMI (Ice Lake and later, Zen 4): 64 pixels per step, every value in bytes or
// words, no division and no int32 lane. The planes come from the three 64-byte loads by two
// vpermt2b each (and go back the same way); V, V - min and the hue numerator's operands are
// selected in bytes (masked blends), the numerator n and the products in int16 words.
// The division tables, T = sdiv[V] or hdiv[d], are looked up as bytes (two vpermi2b on 128
// entries each and a blend on the index's top bit): T = 4096 Q + R, R < 4096, as the planes Q,
// R & 255 and R >> 8, so that with x = d (S) or n (H),
//   (x T + 2048) >> 12 = x Q + ((x R + 2048) >> 12) = x Q + mulhrs(8 x, R)
// exactly (pmulhrsw is floor((a b + 2^14) / 2^15) of the full product, here of 8 x R; 8 x and R
// fit int16 as |x| <= 1020, and x Q, the result, fits as |x Q| <= 30600): the scalar
// function's bits. Per 64 pixels ~90 vector operations, about half of them shuffles.
struct HsvVbmiTables {
  // the table planes: sdiv[v] = 4096 qs + (rs_hi << 8 | rs_lo), hdiv[d] likewise
  alignas(64) uint8_t qs[256], rs_lo[256], rs_hi[256], qh[256], rh_lo[256], rh_hi[256];
  // vpermt2b indices: plane c from (a0, a1) then from (that, a2); output vector k from (h, s)
  // then from (that, v)
  alignas(64) uint8_t de[3][2][64], il[3][2][64];
  HsvVbmiTables() {
    for (int i = 0; i < 256; ++i) {
      const int32_t ts = color::hsv_sdiv(i), th = color::hsv_hdiv(i);
      qs[i] = static_cast<uint8_t>(ts >> 12);
      rs_lo[i] = static_cast<uint8_t>(ts & 255);
      rs_hi[i] = static_cast<uint8_t>((ts >> 8) & 15);
      qh[i] = static_cast<uint8_t>(th >> 12);
      rh_lo[i] = static_cast<uint8_t>(th & 255);
      rh_hi[i] = static_cast<uint8_t>((th >> 8) & 15);
    }
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 64; ++i) {
        const int pos = 3 * i + c;  // byte of plane c's pixel i in the 192 loaded bytes
        de[c][0][i] = static_cast<uint8_t>(pos < 128 ? pos : 0);
        de[c][1][i] = static_cast<uint8_t>(pos < 128 ? i : 64 + pos - 128);
        const int j = 64 * c + i, px = j / 3, ch = j % 3;  // output byte i of vector c
        il[c][0][i] = static_cast<uint8_t>(ch == 0 ? px : (ch == 1 ? 64 + px : 0));
        il[c][1][i] = static_cast<uint8_t>(ch == 2 ? 64 + px : i);
      }
  }
};
const HsvVbmiTables& hsv_vbmi_tables() {
  static const HsvVbmiTables t;
  return t;
}

#define IMKERN_HSV_TARGET __attribute__((target("avx512vbmi"), always_inline)) inline
// t[i] for 64 byte indices (t: 256 bytes, 64-byte aligned; top: the indices' bit 7)
IMKERN_HSV_TARGET __m512i hsv_lut256(const uint8_t* t, __m512i i, __mmask64 top) {
  const __m512i lo = _mm512_permutex2var_epi8(_mm512_load_si512(t), i, _mm512_load_si512(t + 64));
  const __m512i hi = _mm512_permutex2var_epi8(_mm512_load_si512(t + 128), i, _mm512_load_si512(t + 192));
  return _mm512_mask_blend_epi8(top, lo, hi);
}
// two vpermt2b: (a, b) by the indices i0, then (that, c) by i1
IMKERN_HSV_TARGET __m512i hsv_perm3(__m512i a, __m512i b, __m512i c, const uint8_t* i0, const uint8_t* i1) {
  return _mm512_permutex2var_epi8(_mm512_permutex2var_epi8(a, _mm512_load_si512(i0), b), _mm512_load_si512(i1), c);
}

// One step: the 64 pixels (192 bytes) at p -> their 192 output bytes o[0..2].
IMKERN_HSV_TARGET void rgb_to_hsv_vbmi_step(const uint8_t* p, const HsvVbmiTables& t, __m512i* o) {
  const __m512i zero = _mm512_setzero_si512(), two = _mm512_set1_epi8(2), four = _mm512_set1_epi8(4);
  const __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64), a2 = _mm512_loadu_si512(p + 128);
  const __m512i r = hsv_perm3(a0, a1, a2, t.de[0][0], t.de[0][1]);
  const __m512i g = hsv_perm3(a0, a1, a2, t.de[1][0], t.de[1][1]);
  const __m512i b = hsv_perm3(a0, a1, a2, t.de[2][0], t.de[2][1]);
  const __m512i v = _mm512_max_epu8(_mm512_max_epu8(r, g), b);
  const __m512i d = _mm512_sub_epi8(v, _mm512_min_epu8(_mm512_min_epu8(r, g), b));
  // n = X - Y + k d: (X, Y, k) = (g, b, 0), (b, r, 2) or (r, g, 4) as V is R, G or B (in that
  // order of precedence); blend(m, a, b) is m ? b : a
  const __mmask64 mr = _mm512_cmpeq_epi8_mask(v, r), mg = _mm512_cmpeq_epi8_mask(v, g);
  const __m512i xb = _mm512_mask_blend_epi8(mr, _mm512_mask_blend_epi8(mg, r, b), g);
  const __m512i yb = _mm512_mask_blend_epi8(mr, _mm512_mask_blend_epi8(mg, g, r), b);
  const __m512i kb = _mm512_mask_blend_epi8(mr, _mm512_mask_blend_epi8(mg, four, two), zero);
  const __mmask64 vtop = _mm512_movepi8_mask(v), dtop = _mm512_movepi8_mask(d);
  const __m512i qs = hsv_lut256(t.qs, v, vtop), rsl = hsv_lut256(t.rs_lo, v, vtop), rsh = hsv_lut256(t.rs_hi, v, vtop);
  const __m512i qh = hsv_lut256(t.qh, d, dtop), rhl = hsv_lut256(t.rh_lo, d, dtop), rhh = hsv_lut256(t.rh_hi, d, dtop);
  // words: pixels 0-7 of each 128-bit lane in the low unpack, 8-15 in the high one (packus
  // restores the order)
  __m512i h16[2], s16[2];
  for (int k = 0; k < 2; ++k) {
    auto word = [&](__m512i lo, __m512i hi) IMKERN_ALWAYS_INLINE {
      return k ? _mm512_unpackhi_epi8(lo, hi) : _mm512_unpacklo_epi8(lo, hi);
    };
    const __m512i dw = word(d, zero);
    const __m512i n =
        _mm512_add_epi16(_mm512_sub_epi16(word(xb, zero), word(yb, zero)), _mm512_mullo_epi16(word(kb, zero), dw));
    s16[k] = _mm512_add_epi16(_mm512_mullo_epi16(dw, word(qs, zero)),
                              _mm512_mulhrs_epi16(_mm512_slli_epi16(dw, 3), word(rsl, rsh)));
    const __m512i h = _mm512_add_epi16(_mm512_mullo_epi16(n, word(qh, zero)),
                                       _mm512_mulhrs_epi16(_mm512_slli_epi16(n, 3), word(rhl, rhh)));
    h16[k] = _mm512_min_epu16(h, _mm512_add_epi16(h, _mm512_set1_epi16(180)));  // h < 0: h + 180 (h >= -30)
  }
  const __m512i hb = _mm512_packus_epi16(h16[0], h16[1]), sb = _mm512_packus_epi16(s16[0], s16[1]);
  for (int c = 0; c < 3; ++c) o[c] = hsv_perm3(hb, sb, v, t.il[c][0], t.il[c][1]);
}

// Whole steps of 64 pixels (w >= 64); returns the pixels done. stream (images far beyond the
// cache): the steps from the first pixel whose output is 64-byte aligned on are written by
// non-temporal stores (the pixels before it by the first step's masked stores), which saves the
// read-for-ownership of every output line, a third of the traffic, and the input is prefetched.
__attribute__((target("avx512vbmi"))) int64_t rgb_to_hsv_vbmi(const uint8_t* in, uint8_t* out, int64_t w,
                                                               bool stream) {
  const HsvVbmiTables& t = hsv_vbmi_tables();
  __m512i o[3];
  int64_t x = 0;
  if (stream) {
    const int64_t head = stream_head<uint8_t, 3>(out, 64);  // in [0, 64): 3 is odd
    if (head > 0) {
      rgb_to_hsv_vbmi_step(in, t, o);
      for (int c = 0; c < 3; ++c) {
        const int64_t n = 3 * head - 64 * c;  // bytes of vector c before the head's output
        if (n <= 0) break;
        _mm512_mask_storeu_epi8(out + 64 * c, n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1, o[c]);
      }
      x = head;
    }
    for (; x + 64 <= w; x += 64) {
      // the input a page ahead: the hardware's stream prefetchers stop at page boundaries, and
      // at this kernel's rate they left it waiting on memory (single thread, 4K image, Xeon
      // Granite Rapids: 0.65 -> 0.50 ns per pixel; 2 and 4 KiB ahead alike, 1 KiB too little)
      prefetch_page_ahead<192>(in + 3 * x);
      rgb_to_hsv_vbmi_step(in + 3 * x, t, o);
      for (int c = 0; c < 3; ++c) _mm512_stream_si512(reinterpret_cast<__m512i*>(out + 3 * x + 64 * c), o[c]);
    }
    _mm_sfence();
    return x;
  }
  for (; x + 64 <= w; x += 64) {
    rgb_to_hsv_vbmi_step(in + 3 * x, t, o);
    for (int c = 0; c < 3; ++c) _mm512_storeu_si512(out + 3 * x + 64 * c, o[c]);
  }
  return x;
}
#undef IMKERN_HSV_TARGET

// rgb_to_hsv_vbmi where the CPU has VBMI, then the 32-pixel steps.
struct RgbToHsvRowU8Wide {
  bool vbmi = false;
  bool stream = false;
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    const int64_t x = vbmi && w >= 64 ? rgb_to_hsv_vbmi(in, out, w, stream) : 0;
    return x + RgbToHsvRowU8x32{}(in + 3 * x, out + 3 * x, w - x);
  }
};
#endif

#if defined(__SSE4_1__)
// color::hsv_to_rgb_u8 in native int32 lanes. Its three quotients n / 510 and n / 15300 (n < 2^22) are
// taken in float: n is exact, the quotient correctly rounded, and an exact quotient is at
// least 1/15300 below the next integer, far more than half an ulp (< 2^-16 at 256), so the
// float quotient truncates to the same integer.
struct HsvToRgbLanes {
  void lanes(vi h, vi s, vi v, vi& r, vi& g, vi& b) const {
    h = h - 180 * __builtin_convertvector(__builtin_convertvector(h, vf) / 180.0f, vi);  // h %= 180
    const vi sector = __builtin_convertvector(__builtin_convertvector(h, vf) / 30.0f, vi);
    const vi f = h - 30 * sector;
    auto quot = [](vi n, float dd) { return __builtin_convertvector(__builtin_convertvector(n, vf) / dd, vi); };
    const vi p = quot(2 * v * (255 - s) + 255, 510.0f);
    const vi q = quot(2 * v * (7650 - s * f) + 7650, 15300.0f);
    const vi t = quot(2 * v * (7650 - s * (30 - f)) + 7650, 15300.0f);
    r = ((sector == 0) | (sector == 5)) ? v : (sector == 1 ? q : (sector == 4 ? t : p));
    g = ((sector == 1) | (sector == 2)) ? v : (sector == 0 ? t : (sector == 3 ? q : p));
    b = ((sector == 3) | (sector == 4)) ? v : (sector == 2 ? t : (sector == 5 ? q : p));
  }
};
#endif

#if defined(__AVX2__)
// color::hsv_to_rgb_u8 on 32 pixels per step in 16-bit lanes (AVX-512BW: one 512-bit vector,
// AVX2: two of 256 bits): h %= 180 by a compare; sector = h / 30 = (h * 2185) >> 16 (exact for
// h < 180); p = (2 v (255 - s) + 255) / 510 = (v (255 - s) + 127) / 255, taken as
// (n * 32897) >> 23 (exact for n < 2^16); q and t = (2 v B + 7650) / 15300 = (v B + 3825) / 7650
// (B = 7650 - s f, or 7650 - s (30 - f), in [0, 7650]) by pmaddwd into int32 and a float
// multiply-add: (N + 0.5) * fl(1 / 7650), rounded once, lies within 3.1e-5 of the exact
// (N + 0.5) / 7650, which is at least 0.5 / 7650 from an integer, so truncation gives
// floor(N / 7650) (checked for every v and B). No divisions; the bits are the scalar function's.
#if defined(__AVX512BW__)
IMKERN_ALWAYS_INLINE inline void hsv_to_rgb_words(__m512i h, __m512i s, __m512i v, __m512i& r, __m512i& g, __m512i& b) {
  auto k16 = [](int x) IMKERN_ALWAYS_INLINE { return _mm512_set1_epi16(int16_t(x)); };
  h = _mm512_mask_sub_epi16(h, _mm512_cmpgt_epu16_mask(h, k16(179)), h, k16(180));
  const __m512i sector = _mm512_mulhi_epu16(h, k16(2185));
  const __m512i f = _mm512_sub_epi16(h, _mm512_mullo_epi16(sector, k16(30)));
  const __m512i p = _mm512_srli_epi16(
      _mm512_mulhi_epu16(_mm512_add_epi16(_mm512_mullo_epi16(v, _mm512_sub_epi16(k16(255), s)), k16(127)), k16(32897)),
      7);
  const __m512 inv = _mm512_set1_ps(1.0f / 7650), half_inv = _mm512_set1_ps(0.5f / 7650);
  // (v B + 3825) / 7650: pairs (v, 1) . (B, 3825) per int32 lane; packs restores the order
  // (unpack and pack both work within 128-bit quarters)
  auto quot = [&](__m512i B) IMKERN_ALWAYS_INLINE {
    auto d = [&](__m512i n) IMKERN_ALWAYS_INLINE {
      return _mm512_cvttps_epi32(_mm512_fmadd_ps(_mm512_cvtepi32_ps(n), inv, half_inv));
    };
    const __m512i lo = _mm512_madd_epi16(_mm512_unpacklo_epi16(v, k16(1)), _mm512_unpacklo_epi16(B, k16(3825)));
    const __m512i hi = _mm512_madd_epi16(_mm512_unpackhi_epi16(v, k16(1)), _mm512_unpackhi_epi16(B, k16(3825)));
    return _mm512_packs_epi32(d(lo), d(hi));
  };
  const __m512i sf = _mm512_mullo_epi16(s, f);
  const __m512i q = quot(_mm512_sub_epi16(k16(7650), sf));
  const __m512i t = quot(_mm512_add_epi16(_mm512_sub_epi16(k16(7650), _mm512_mullo_epi16(s, k16(30))), sf));
  auto is = [&](int k) IMKERN_ALWAYS_INLINE { return _mm512_cmpeq_epi16_mask(sector, k16(k)); };
  const __mmask32 e0 = is(0), e1 = is(1), e2 = is(2), e3 = is(3), e4 = is(4), e5 = is(5);
  // (blend(m, a, b): m ? b : a)
  r = _mm512_mask_blend_epi16(e0 | e5, _mm512_mask_blend_epi16(e4, _mm512_mask_blend_epi16(e1, p, q), t), v);
  g = _mm512_mask_blend_epi16(e1 | e2, _mm512_mask_blend_epi16(e3, _mm512_mask_blend_epi16(e0, p, t), q), v);
  b = _mm512_mask_blend_epi16(e3 | e4, _mm512_mask_blend_epi16(e5, _mm512_mask_blend_epi16(e2, p, t), q), v);
}
#else
// AVX2: a pixel's channels are v, p or X, X being q in the odd sectors and t in the even ones
// (each sector takes one of the two), so one quotient per pixel: (v B + 3825) / 7650 with B =
// 7650 - s f', f' = f (odd) or 30 - f (even, t's B). The words give sector, p and X; the
// selection is done in bytes (hsv_to_rgb_select).
IMKERN_ALWAYS_INLINE inline void hsv_to_rgb_words(__m256i h, __m256i s, __m256i v, __m256i& sector, __m256i& p,
                                                  __m256i& x) {
  auto k16 = [](int c) IMKERN_ALWAYS_INLINE { return _mm256_set1_epi16(int16_t(c)); };
  h = _mm256_sub_epi16(h, _mm256_and_si256(_mm256_cmpgt_epi16(h, k16(179)), k16(180)));
  sector = _mm256_mulhi_epu16(h, k16(2185));
  const __m256i f = _mm256_sub_epi16(h, _mm256_mullo_epi16(sector, k16(30)));
  p = _mm256_srli_epi16(
      _mm256_mulhi_epu16(_mm256_add_epi16(_mm256_mullo_epi16(v, _mm256_sub_epi16(k16(255), s)), k16(127)), k16(32897)),
      7);
  const __m256i even = _mm256_cmpeq_epi16(_mm256_and_si256(sector, k16(1)), _mm256_setzero_si256());
  const __m256i fs = _mm256_blendv_epi8(f, _mm256_sub_epi16(k16(30), f), even);
  const __m256i B = _mm256_sub_epi16(k16(7650), _mm256_mullo_epi16(s, fs));
  const __m256 inv = _mm256_set1_ps(1.0f / 7650), half_inv = _mm256_set1_ps(0.5f / 7650);
  auto d = [&](__m256i n) IMKERN_ALWAYS_INLINE {
    return _mm256_cvttps_epi32(_mm256_fmadd_ps(_mm256_cvtepi32_ps(n), inv, half_inv));
  };
  const __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(v, k16(1)), _mm256_unpacklo_epi16(B, k16(3825)));
  const __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(v, k16(1)), _mm256_unpackhi_epi16(B, k16(3825)));
  x = _mm256_packs_epi32(d(lo), d(hi));
}
// One channel of 32 pixels from the bytes of sector, v, p and X: a pshufb of the sector picks
// the channel's code, bit 7 for v and bit 6 for X (neither: p).
IMKERN_ALWAYS_INLINE inline __m256i hsv_to_rgb_select(__m256i sector, __m256i v, __m256i p, __m256i x, __m128i code) {
  const __m256i c = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(code), sector);
  return _mm256_blendv_epi8(_mm256_blendv_epi8(p, x, _mm256_slli_epi16(c, 1)), v, c);
}
#endif

struct HsvToRgbRowU8 {
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
    int64_t x = 0;
    for (; x + 32 <= w; x += 32) {
      __m256i hb, sb, vb, rb, gb, bb;
      deinterleave3_u8x32(in + 3 * x, hb, sb, vb);
#if defined(__AVX512BW__)
      __m512i r, g, b;
      hsv_to_rgb_words(_mm512_cvtepu8_epi16(hb), _mm512_cvtepu8_epi16(sb), _mm512_cvtepu8_epi16(vb), r, g, b);
      rb = _mm512_cvtepi16_epi8(r);  // (vpmovwb: every lane is in [0, 255])
      gb = _mm512_cvtepi16_epi8(g);
      bb = _mm512_cvtepi16_epi8(b);
#else
      // unpack and pack both work within 128-bit halves: pixels 0-7 and 16-23 in the low words,
      // 8-15 and 24-31 in the high ones, and packus puts them back in order
      const __m256i zero = _mm256_setzero_si256();
      __m256i sec[2], p[2], xq[2];
      hsv_to_rgb_words(_mm256_unpacklo_epi8(hb, zero), _mm256_unpacklo_epi8(sb, zero), _mm256_unpacklo_epi8(vb, zero),
                       sec[0], p[0], xq[0]);
      hsv_to_rgb_words(_mm256_unpackhi_epi8(hb, zero), _mm256_unpackhi_epi8(sb, zero), _mm256_unpackhi_epi8(vb, zero),
                       sec[1], p[1], xq[1]);
      const __m256i secb = _mm256_packus_epi16(sec[0], sec[1]), pb = _mm256_packus_epi16(p[0], p[1]),
                    xb = _mm256_packus_epi16(xq[0], xq[1]);
      // codes per sector 0..5: 0x80 v, 0x40 X (q or t), 0 p
      rb = hsv_to_rgb_select(secb, vb, pb, xb, _mm_setr_epi8(-128, 0x40, 0, 0, 0x40, -128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
      gb = hsv_to_rgb_select(secb, vb, pb, xb, _mm_setr_epi8(0x40, -128, -128, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
      bb = hsv_to_rgb_select(secb, vb, pb, xb, _mm_setr_epi8(0, 0, 0x40, -128, -128, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
#endif
      interleave3_u8x32(rb, gb, bb, out + 3 * x);
    }
    return x + Row3U8<HsvToRgbLanes>{}(in + 3 * x, out + 3 * x, w - x);  // a tail of 16 or more pixels
  }
};
#endif

#if defined(__SSE4_1__)
// color::rgb_to_hsv_float on L lanes: the same operations on the same values, the functor's
// branches taken as selects, so the bits are the functor's.
template <typename T>
struct RgbToHsvFLanes {
  bool lanes(const fv<T>* c, fv<T>* o) const {
    const fv<T> r = c[0], g = c[1], b = c[2];
    fv<T> v = r > g ? r : g;
    v = v > b ? v : b;
    fv<T> mn = r < g ? r : g;
    mn = mn < b ? mn : b;
    const fv<T> delta = v - mn;
    // one quotient: the numerator and offset of the functor's branch, then offset + quotient
    // (for V = R the offset 0 turns a -0 quotient into +0, which floor's subtraction below
    // turns into +0 in the functor too)
    const auto is_b = b == v, is_g = g == v;
    const fv<T> num = is_b ? r - g : (is_g ? b - r : g - b);
    const fv<T> off = is_b ? fv<T>{} + T(4) : (is_g ? fv<T>{} + T(2) : fv<T>{});
    fv<T> h = off + num / delta;
    h = h / T(6);
    h = h - vfloor<T>(h);
    const auto nz = delta != T(0);
    o[0] = nz ? h : fv<T>{};
    o[1] = nz ? delta / v : fv<T>{};
    o[2] = v;
    return true;
  }
};

// color::hsv_to_rgb_float on L lanes. The functor's sector is int64(floor(6 h)) mod 6; here it
// is taken in floating point, hi - 6 floor(hi / 6), which is exact for |6 h| < 2^22 (the
// rounded quotient stays within 1/6 of the true one): a block with any lane outside that
// (or NaN) is left to the functor.
template <typename T>
struct HsvToRgbFLanes {
  bool lanes(const fv<T>* c, fv<T>* o) const {
    const fv<T> h = c[0], s = c[1], v = c[2];
    const fv<T> h6 = h * T(6);
    if (!simd::all_lanes((h6 < T(4194304)) & (h6 > T(-4194304)))) return false;
    const fv<T> hi = vfloor<T>(h6);
    const fv<T> f = h6 - hi;
    const fv<T> p = v * (T(1) - s);
    const fv<T> q = v * (T(1) - f * s);
    const fv<T> t = v * (T(1) - (T(1) - f) * s);
    const fv<T> sector = hi - T(6) * vfloor<T>(hi / T(6));
    o[0] = (sector == T(0)) | (sector == T(5)) ? v : (sector == T(1) ? q : (sector == T(4) ? t : p));
    o[1] = (sector == T(1)) | (sector == T(2)) ? v : (sector == T(0) ? t : (sector == T(3) ? q : p));
    o[2] = (sector == T(3)) | (sector == T(4)) ? v : (sector == T(2) ? t : (sector == T(5) ? q : p));
    return true;
  }
};
#endif

struct HsvToRgbU8 {
  void operator()(const uint8_t* in, uint8_t* out) const { color::hsv_to_rgb_u8(in[0], in[1], in[2], out); }
};
template <typename T>
struct RgbToHsvF {
  void operator()(const T* in, T* out) const { color::rgb_to_hsv_float<T>(in[0], in[1], in[2], out); }
};
template <typename T>
struct HsvToRgbF {
  void operator()(const T* in, T* out) const { color::hsv_to_rgb_float<T>(in[0], in[1], in[2], out); }
};

template <typename T>
void hsv_float(bool fwd, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
#if defined(__SSE4_1__)
  // outputs beyond the cache (input + output bytes above cpu_params' stream_bytes) are streamed
  // (both directions give the functor's bits)
  const bool stream = 2 * d.n * d.h * d.w * 3 * int64_t(sizeof(T)) > params().stream_bytes;
  if (fwd) {
    Row3F<T, RgbToHsvFLanes<T>, RgbToHsvF<T>> row;
    row.stream = stream;
    row.rows_follow = contiguous_rows(s);
    map_pixels<T, T, 3, 3>(src, s, dst, d, RgbToHsvF<T>{}, row);
  } else {
    Row3F<T, HsvToRgbFLanes<T>, HsvToRgbF<T>> row;
    row.stream = stream;
    row.rows_follow = contiguous_rows(s);
    map_pixels<T, T, 3, 3>(src, s, dst, d, HsvToRgbF<T>{}, row);
  }
#else
  if (fwd) map_pixels<T, T, 3, 3>(src, s, dst, d, RgbToHsvF<T>{});
  else map_pixels<T, T, 3, 3>(src, s, dst, d, HsvToRgbF<T>{});
#endif
}
}  // namespace

void color_hsv(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  const bool fwd = op == ColorOp::rgb_to_hsv;
  switch (dtype) {
    case DType::u8: {
      if (fwd) {
        const HsvTables& t = hsv_tables();
#if defined(__AVX512BW__)
        static const bool vbmi = cpu_has(CpuFeature::avx512vbmi);
        // outputs beyond the cache (input + output bytes above cpu_params' stream_bytes) are streamed
        const bool stream = 2 * d.n * d.h * d.w * 3 > params().stream_bytes;
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv}, RgbToHsvRowU8Wide{vbmi, stream});
#elif defined(__AVX2__)
        RgbToHsvRowU8x32 row;
        // outputs beyond the cache (input + output bytes above cpu_params' stream_bytes) are streamed
        row.stream = 2 * d.n * d.h * d.w * 3 > params().stream_bytes;
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv}, row);
#elif defined(__SSE4_1__)
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv}, RgbToHsvRowU8{});
#else
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, RgbToHsvU8{t.sdiv, t.hdiv});
#endif
      } else {
#if defined(__AVX2__)
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{}, HsvToRgbRowU8{});
#elif defined(__SSE4_1__)
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{}, Row3U8<HsvToRgbLanes>{});
#else
        map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, HsvToRgbU8{});
#endif
      }
      return;
    }
    case DType::f32: return hsv_float<float>(fwd, src, s, dst, d);
    case DType::f64: return hsv_float<double>(fwd, src, s, dst, d);
    default: throw std::invalid_argument("hsv: expected uint8, float32 or float64");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
