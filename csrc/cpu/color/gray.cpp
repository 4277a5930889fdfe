// rgb_to_gray, bgr_to_gray, gray_to_rgb (compiled per ISA).
//
// Gray: Y = 0.299 R + 0.587 G + 0.114 B; uint8/uint16 in OpenCV's Q15 fixed point (equal to
// cv2.cvtColor bit for bit), floats in the image's type. Per pixel: C_in + 1 elements moved,
// 3 multiply-adds. gray_to_rgb replicates the one channel. Variants: C_in 3 or 4 per dtype;
// vector rows for uint8 (GrayRowU8, 3 and 4 channels: AVX-512 VBMI + VNNI 64 pixels per block
// by vpermb and two vpdpbusd of 8-bit weight halves; AVX2 32 by pshufb or AND/shift pairs and
// pmaddwd, 3 channels 8 pixels per 32-byte load inside a span; SSE4.1 3 channels; contiguous images as one span split between the threads) and
// float / double (GrayRowF, 3 channels: planes, then the weights). Outputs beyond the cache
// are streamed: at 1080p float32 RGB that takes the single thread from ~0.95-1.0 to ~0.85-0.9
// of cv2's time (memory-bound); uint8 4K RGB ~1.1 -> 0.9 ms (plain vs streamed stores, AVX-512,
// single thread; cv2 1.7 ms), 1080p RGB 0.14 ms (cv2 0.42), the AVX2 rows ~1.5x the time.
#include <type_traits>
#include <utility>

#include "color/pixel_map.hpp"
#include "imkern/cpu_params.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {
// ---- uint8 -----------------------------------------------------------------------------------
// OpenCV's Q15 weights of the three channels in memory order (BGR: blue first); the sum of a
// pixel is (w0 c0 + w1 c1 + w2 c2 + 2^14) >> 15.
template <bool BGR>
struct GrayQ15 {
  static constexpr int w0 = BGR ? 3735 : 9798, w1 = 19235, w2 = BGR ? 9798 : 3735;
};

#if defined(__AVX2__)
// 8 pixels per step in int32 lanes, 4 in each 128-bit half, each half from a 16-byte load
// (vbroadcasti128, then vpblendd: no shuffle port) spread to int16 pairs (c0, c1) and (c2, 0)
// by pshufb for two pmaddwd. A 32-pixel block takes pixels 4 q .. 4 q + 3 in the low halves and
// 16 + 4 q .. in the high ones (q = 0..3), so packssdw + packuswb leave them in order; C = 3: the
// last high half is loaded 4 bytes early (nothing past the block is read). A single step (row
// tails) takes pixels 0-3 and 4-7 and puts them in order with vpermd. C = 4: 8 pixels from one
// 32-byte load, the pairs (c0, c2) by an AND and (c1, alpha) by a 16-bit shift (no pshufb: 7
// operations per step instead of 8), 4 steps put in order by vpermd.
struct GrayAvx2 {
  __m256i m01, m2;    // pair masks: pixels at byte 0 of both halves (C = 4: m01 the low bytes of int16)
  __m256i m01b, m2b;  // C = 3: pixels at byte 4 of the high half
  __m256i m01c, m2c;  // C = 3: pixels at byte 4 of the low half and byte 0 of the high one
  __m256i w01, w2, order;
};
template <int C>
inline __m256i gray_pair_mask(int first, int second, int high_offset, int low_offset = 0) {
  alignas(32) int8_t m[32];
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j) {
      const int base = (h ? high_offset : low_offset) + C * j;
      int8_t* q = m + 16 * h + 4 * j;
      q[0] = static_cast<int8_t>(base + first);
      q[1] = -1;
      q[2] = static_cast<int8_t>(second < 0 ? -1 : base + second);
      q[3] = -1;
    }
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}
template <int C, bool BGR>
inline GrayAvx2 gray_avx2_consts() {
  typedef GrayQ15<BGR> Q;
  if constexpr (C == 4)
    return {_mm256_set1_epi16(0xFF),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_set1_epi32(Q::w0 | Q::w2 << 16),
            _mm256_set1_epi32(Q::w1),
            _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)};
  return {gray_pair_mask<C>(0, 1, 0),
          gray_pair_mask<C>(2, -1, 0),
          gray_pair_mask<C>(0, 1, C == 3 ? 4 : 0),
          gray_pair_mask<C>(2, -1, C == 3 ? 4 : 0),
          gray_pair_mask<C>(0, 1, 0, 4),
          gray_pair_mask<C>(2, -1, 0, 4),
          _mm256_set1_epi32(Q::w0 | Q::w1 << 16),
          _mm256_set1_epi32(Q::w2),
          _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)};
}
// The rounding: Y = (S + 2^14) >> 15 = ((S >> 14) + 1) >> 1, so the dword steps return S >> 14
// (<= 510) and the words take the last step by vpavgw with zero (one per 16 pixels instead of
// an add of the bias per 8).
IMKERN_ALWAYS_INLINE inline __m256i gray_round_words(__m256i w) { return _mm256_avg_epu16(w, _mm256_setzero_si256()); }
// S >> 14 of the 4 + 4 pixels whose 16-byte loads start at p0 and p1.
IMKERN_ALWAYS_INLINE inline __m256i gray8_avx2(const uint8_t* p0, const uint8_t* p1, __m256i m01, __m256i m2,
                                               const GrayAvx2& k) {
  const __m256i v = _mm256_blend_epi32(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0))),
                                       _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p1))), 0xF0);
  const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(v, m01), k.w01),
                                     _mm256_madd_epi16(_mm256_shuffle_epi8(v, m2), k.w2));
  return _mm256_srli_epi32(s, 14);
}
// The same for 8 pixels from one 32-byte load at p - 4 (C = 3: pixels 0-3 at byte 4 of the low
// half, 4-7 at byte 0 of the high one; reads 4 bytes either side of the pixels).
IMKERN_ALWAYS_INLINE inline __m256i gray8_avx2_mid(const uint8_t* p, const GrayAvx2& k) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p - 4));
  const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(v, k.m01c), k.w01),
                                     _mm256_madd_epi16(_mm256_shuffle_epi8(v, k.m2c), k.w2));
  return _mm256_srli_epi32(s, 14);
}
IMKERN_ALWAYS_INLINE inline __m256i gray8_avx2_c4(const uint8_t* p, const GrayAvx2& k) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(_mm256_and_si256(v, k.m01), k.w01),
                                     _mm256_madd_epi16(_mm256_srli_epi16(v, 8), k.w2));
  return _mm256_srli_epi32(s, 14);
}
template <int C>
IMKERN_ALWAYS_INLINE inline __m256i gray32_avx2(const uint8_t* p, const GrayAvx2& k) {
  if constexpr (C == 4) {
    const __m256i a = gray_round_words(_mm256_packs_epi32(gray8_avx2_c4(p, k), gray8_avx2_c4(p + 32, k)));
    const __m256i b = gray_round_words(_mm256_packs_epi32(gray8_avx2_c4(p + 64, k), gray8_avx2_c4(p + 96, k)));
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), k.order);
  }
  const __m256i y0 = gray8_avx2(p, p + 48, k.m01, k.m2, k);  // the high halves from pixel 16 on
  const __m256i y1 = gray8_avx2(p + 12, p + 60, k.m01, k.m2, k);
  const __m256i y2 = gray8_avx2(p + 24, p + 72, k.m01, k.m2, k);
  const __m256i y3 = gray8_avx2(p + 36, p + 80, k.m01b, k.m2b, k);
  return _mm256_packus_epi16(gray_round_words(_mm256_packs_epi32(y0, y1)), gray_round_words(_mm256_packs_epi32(y2, y3)));
}
// C = 3, 32 pixels at p with 4 readable bytes before p and after p + 96: 8 pixels per 32-byte
// load (no blends, half the loads), dwords (pixels 8 j .. 8 j + 3 | 8 j + 4 .. 8 j + 7) put in
// order by vpermd after the packs.
IMKERN_ALWAYS_INLINE inline __m256i gray32_avx2_mid(const uint8_t* p, const GrayAvx2& k) {
  const __m256i a = gray_round_words(_mm256_packs_epi32(gray8_avx2_mid(p, k), gray8_avx2_mid(p + 24, k)));
  const __m256i b = gray_round_words(_mm256_packs_epi32(gray8_avx2_mid(p + 48, k), gray8_avx2_mid(p + 72, k)));
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), k.order);
}
// A 32-pixel block at pixel x of a row (or span) of w pixels.
template <int C>
IMKERN_ALWAYS_INLINE inline __m256i gray32_avx2_at(const uint8_t* in, int64_t x, int64_t w, const GrayAvx2& k) {
  if constexpr (C == 3) {
    if (x >= 2 && x + 34 <= w) return gray32_avx2_mid(in + 3 * x, k);
  }
  return gray32_avx2<C>(in + C * x, k);
}
template <int C>
IMKERN_ALWAYS_INLINE inline void gray8_store_avx2(const uint8_t* p, uint8_t* o, const GrayAvx2& k) {
  const __m256i y = C == 3 ? gray8_avx2(p, p + 8, k.m01b, k.m2b, k) : gray8_avx2_c4(p, k);
  const __m256i b = _mm256_packus_epi16(gray_round_words(_mm256_packs_epi32(y, y)), y);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, k.order)));
}
// Pixels [x0, x1) of a row by 8-pixel steps, the last one ending at x1 (x1 - x0 >= 8).
template <int C>
IMKERN_ALWAYS_INLINE inline void gray_span8_avx2(const uint8_t* in, uint8_t* out, int64_t x0, int64_t x1,
                                                 const GrayAvx2& k) {
  for (; x0 + 8 <= x1; x0 += 8) gray8_store_avx2<C>(in + C * x0, out + x0, k);
  if (x0 < x1) gray8_store_avx2<C>(in + C * (x1 - 8), out + x1 - 8, k);
}
// A row: 32-pixel blocks (streamed: pairs of them filling the whole 64-byte lines from the
// first output on a line, so that no line is written by both kinds of store; the rest plain
// from a line boundary, at least 8 pixels of it where there is any, so that the last
// 8-pixel step, ending at w, stays out of the streamed lines: common/stream.hpp's rule), then
// 8-pixel steps, the last one overlapping; rows under 8 pixels and a head under 8 pixels take
// the functor.
template <int C, bool BGR>
void gray_row_avx2(const uint8_t* in, uint8_t* out, int64_t w, bool stream) {
  const color::ToGray<uint8_t, BGR> f{};
  if (w < 8) {
    for (int64_t x = 0; x < w; ++x) f(in + C * x, out + x);
    return;
  }
  const GrayAvx2 k = gray_avx2_consts<C, BGR>();
  int64_t x = 0;
  if (stream) {
    const int64_t head = stream_head<uint8_t, 1>(out, 64);
    if (head + 64 <= w) {
      if (head < 8) {
        for (; x < head; ++x) f(in + C * x, out + x);
      } else {
        gray_span8_avx2<C>(in, out, 0, head, k);
        x = head;
      }
      int64_t end = head + (w - head) / 64 * 64;  // whole lines only
      if (w - end > 0 && w - end < 8) end -= 64;    // a 1-7 pixel tail: its last line plain too
      for (; x < end; x += 64) {
        _mm256_stream_si256(reinterpret_cast<__m256i*>(out + x), gray32_avx2_at<C>(in, x, w, k));
        _mm256_stream_si256(reinterpret_cast<__m256i*>(out + x + 32), gray32_avx2_at<C>(in, x + 32, w, k));
      }
      stream_fence();
    }
  }
  for (; x + 32 <= w; x += 32) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + x), gray32_avx2_at<C>(in, x, w, k));
  if (x < w) gray_span8_avx2<C>(in, out, x, w, k);
}
#endif

#if defined(__AVX512BW__)
// AVX-512 VBMI + VNNI: 16 pixels per vector, one int32 lane each, bytes (c0, c1, c2, any) (C =
// 3: vpermb of a 64-byte load; C = 4: the load itself), and the Q15 sum in two vpdpbusd of
// 8-bit weights: w = 256 h + l with l in [-128, 127] (9798 = 256 * 38 + 70, 19235 = 256 * 75 +
// 35, 3735 = 256 * 15 - 105), L = 2^14 + sum l c, then T = (L >> 8) + sum h c (arithmetic
// shift: L may be negative) and Y = T >> 7 = floor((256 sum h c + L) / 2^15), the same bits.
// 64 pixels per block: 4 vectors packed (packusdw, packuswb, vpermd) to one 64-byte store.
struct GrayVnniTables {
  alignas(64) uint8_t spread[2][64];  // C = 3: pixel j's bytes from 3 j (+ 16: the block's last load)
  alignas(64) int32_t order[16];      // the packed block's dwords back in pixel order
  GrayVnniTables() {
    for (int t = 0; t < 2; ++t)
      for (int b = 0; b < 64; ++b) spread[t][b] = static_cast<uint8_t>(16 * t + 3 * (b / 4) + (b % 4 == 3 ? 0 : b % 4));
    for (int d = 0; d < 16; ++d) order[d] = 4 * (d % 4) + d / 4;
  }
};
struct GrayVnni {
  __m512i spread0, spread1, order, whi, wlo, bias;
};
constexpr int gray_hi8(int w) { return (w + 128) >> 8; }
constexpr int gray_lo8(int w) { return w - 256 * gray_hi8(w); }
constexpr int32_t gray_bytes4(int a, int b, int c) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint8_t>(a)) |
                              static_cast<uint32_t>(static_cast<uint8_t>(b)) << 8 |
                              static_cast<uint32_t>(static_cast<uint8_t>(c)) << 16);
}
template <bool BGR>
GrayVnni gray_vnni_consts() {
  static const GrayVnniTables t;
  typedef GrayQ15<BGR> Q;
  return {_mm512_load_si512(t.spread[0]),
          _mm512_load_si512(t.spread[1]),
          _mm512_load_si512(t.order),
          _mm512_set1_epi32(gray_bytes4(gray_hi8(Q::w0), gray_hi8(Q::w1), gray_hi8(Q::w2))),
          _mm512_set1_epi32(gray_bytes4(gray_lo8(Q::w0), gray_lo8(Q::w1), gray_lo8(Q::w2))),
          _mm512_set1_epi32(1 << 14)};
}

#define IMKERN_GRAY_TARGET __attribute__((target("avx512vbmi,avx512vnni"), always_inline)) inline
// T = floor(sum / 2^8) (in [64, 32704]); the result is T >> 7.
IMKERN_GRAY_TARGET __m512i gray16_vnni(__m512i x, const GrayVnni& k) {
  const __m512i lo = _mm512_dpbusd_epi32(k.bias, x, k.wlo);
  return _mm512_dpbusd_epi32(_mm512_srai_epi32(lo, 8), x, k.whi);
}
template <int C>
IMKERN_GRAY_TARGET __m512i gray64_vnni(const uint8_t* p, const GrayVnni& k) {
  __m512i y[4];
  for (int q = 0; q < 4; ++q) {
    __m512i x;
    if constexpr (C == 3)
      x = q < 3 ? _mm512_permutexvar_epi8(k.spread0, _mm512_loadu_si512(p + 48 * q))
                : _mm512_permutexvar_epi8(k.spread1, _mm512_loadu_si512(p + 128));
    else
      x = _mm512_loadu_si512(p + 64 * q);
    y[q] = gray16_vnni(x, k);
  }
  // T fits 16 bits: shifted after the first pack, two vectors at once
  const __m512i b = _mm512_packus_epi16(_mm512_srli_epi16(_mm512_packus_epi32(y[0], y[1]), 7),
                                        _mm512_srli_epi16(_mm512_packus_epi32(y[2], y[3]), 7));
  return _mm512_permutexvar_epi32(k.order, b);
}
// Pixels [x0, x1) by masked 16-pixel steps (nothing outside them is read or written).
template <int C>
IMKERN_GRAY_TARGET void gray_span16_vnni(const uint8_t* in, uint8_t* out, int64_t x0, int64_t x1,
                                         const GrayVnni& k) {
  for (; x0 < x1; x0 += 16) {
    const int64_t n = x1 - x0 < 16 ? x1 - x0 : 16;
    __m512i x;
    if constexpr (C == 3)
      x = _mm512_permutexvar_epi8(k.spread0, _mm512_maskz_loadu_epi8((__mmask64(1) << (3 * n)) - 1, in + 3 * x0));
    else
      x = _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), in + 4 * x0);
    _mm_mask_storeu_epi8(out + x0, static_cast<__mmask16>((1u << n) - 1),
                         _mm512_cvtepi32_epi8(_mm512_srli_epi32(gray16_vnni(x, k), 7)));
  }
}
#undef IMKERN_GRAY_TARGET
// A row: 64-pixel blocks (streamed from the first 64-byte aligned output), head and tail by
// masked 16-pixel steps.
template <int C>
__attribute__((target("avx512vbmi,avx512vnni"))) void gray_row_vnni(const uint8_t* in, uint8_t* out, int64_t w,
                                                                   const GrayVnni& consts, bool stream) {
  const GrayVnni k = consts;  // in registers (the stores could alias the caller's copy)
  int64_t x = 0;
  if (stream) {
    const int64_t head = stream_head<uint8_t, 1>(out, 64);
    if (head + 64 <= w) {
      gray_span16_vnni<C>(in, out, 0, head, k);
      for (x = head; x + 64 <= w; x += 64) _mm512_stream_si512(reinterpret_cast<__m512i*>(out + x), gray64_vnni<C>(in + C * x, k));
      stream_fence();
    }
  }
  for (; x + 64 <= w; x += 64) _mm512_storeu_si512(out + x, gray64_vnni<C>(in + C * x, k));
  gray_span16_vnni<C>(in, out, x, w, k);
}
#endif

// uint8 RGB/BGR (C = 3) or RGBA/BGRA (C = 4) rows -> gray, the functor's bits: AVX-512 with VBMI
// and VNNI gray_row_vnni, other AVX2 / AVX-512 gray_row_avx2, SSE4.1 (3 channels) 16 pixels
// per step by pshufb and pmaddwd, then the functor. Whole rows (the functor included).
template <int C, bool BGR>
struct GrayRowU8 {
  bool fast = false;    // AVX-512 VBMI + VNNI
  bool stream = false;  // outputs beyond the cache: non-temporal stores
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
#if defined(__AVX512BW__)
    if (fast) {
      gray_row_vnni<C>(in, out, w, gray_vnni_consts<BGR>(), stream);
      return w;
    }
#endif
#if defined(__AVX2__)
    gray_row_avx2<C, BGR>(in, out, w, stream);
    return w;
#else
    int64_t x = 0;
#if defined(__SSE4_1__)
    if constexpr (C == 3) {
      typedef GrayQ15<BGR> Q;
      const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi16(1);
      const __m128i c_rg = _mm_set1_epi32(Q::w1 << 16 | Q::w0);
      const __m128i c_b1 = _mm_set1_epi32((16384 << 16) | Q::w2);
      for (; x + 16 <= w; x += 16) {
        __m128i r, g, b;
        deinterleave3_u8(in + 3 * x, r, g, b);
        const __m128i rl = _mm_unpacklo_epi8(r, zero), rh = _mm_unpackhi_epi8(r, zero);
        const __m128i gl = _mm_unpacklo_epi8(g, zero), gh = _mm_unpackhi_epi8(g, zero);
        const __m128i bl = _mm_unpacklo_epi8(b, zero), bh = _mm_unpackhi_epi8(b, zero);
        auto sum = [&](__m128i rg, __m128i b1) {
          return _mm_srli_epi32(_mm_add_epi32(_mm_madd_epi16(rg, c_rg), _mm_madd_epi16(b1, c_b1)), 15);
        };
        const __m128i y0 = sum(_mm_unpacklo_epi16(rl, gl), _mm_unpacklo_epi16(bl, one));
        const __m128i y1 = sum(_mm_unpackhi_epi16(rl, gl), _mm_unpackhi_epi16(bl, one));
        const __m128i y2 = sum(_mm_unpacklo_epi16(rh, gh), _mm_unpacklo_epi16(bh, one));
        const __m128i y3 = sum(_mm_unpackhi_epi16(rh, gh), _mm_unpackhi_epi16(bh, one));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x),
                         _mm_packus_epi16(_mm_packs_epi32(y0, y1), _mm_packs_epi32(y2, y3)));
      }
    }
#endif
    for (; x < w; ++x) color::ToGray<uint8_t, BGR>{}(in + C * x, out + x);
    return w;
#endif
  }
};

// A contiguous image (rows back to back in the input and the output, images too) is one row of
// n h w pixels: chunks of kRunGrain pixels placed on the output's 64-byte lines (so that every
// chunk but the first streams from its first pixel and no line is shared by two chunks), split
// evenly between the threads; no per-row heads and tails (map_pixels_run's plan; the row
// kernel fences itself). Other layouts: row by row.
template <int C, bool BGR>
void gray_u8(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  GrayRowU8<C, BGR> row{};
#if defined(__AVX512BW__)
  static const bool fast = cpu_has(CpuFeature::avx512vbmi) && cpu_has(CpuFeature::avx512vnni);
  row.fast = fast;
#endif
  const int64_t n = s.n * s.h * s.w;
  row.stream = (C + 1) * n > params().stream_bytes;
  if (dense_pixels(s, C) && dense_pixels(d, d.c)) {
    const auto* in = static_cast<const uint8_t*>(src);
    auto* out = static_cast<uint8_t*>(dst);
    const int64_t phase = static_cast<int64_t>(reinterpret_cast<uintptr_t>(out) % 64);
    // chunks at multiples of kRunGrain from 0, the line phase's origin (parallel_for's chunks
    // start at begin + c grain), the first one cut at phase
    parallel_for(0, phase + n, kRunGrain, [&](int64_t lo, int64_t hi) {
      lo = std::max(lo, phase);
      if (lo < hi) row(in + C * (lo - phase), out + (lo - phase), hi - lo);
    });
    return;
  }
  map_pixels<uint8_t, uint8_t, C, 1>(src, s, dst, d, color::ToGray<uint8_t, BGR>{}, row);
}

#if defined(__SSE4_1__)
// float / double RGB/BGR -> gray, L pixels per step: the planes (deinterleave3), then luma's
// expression. stream: outputs beyond the cache are written by non-temporal stores on whole
// 64-byte lines, plain vectors before and after them (stream_row, as Row3F).
template <typename T, bool BGR>
struct GrayRowF {
  bool stream = false;
  template <bool Stream>
  IMKERN_ALWAYS_INLINE int64_t blocks(const T* in, T* out, int64_t x, int64_t w) const {
    constexpr int L = simd::Vec<T>::lanes;
    for (; x + L <= w; x += L) {
      fv<T> c[3];
      deinterleave3(in + 3 * x, c);
      store_vec<Stream>(out + x, T(0.299) * c[BGR ? 2 : 0] + T(0.587) * c[1] + T(0.114) * c[BGR ? 0 : 2]);
    }
    return x;
  }
  int64_t operator()(const T* in, T* out, int64_t w) const {
    return stream_row<1>(*this, in, out, w, stream);
  }
};

// Rows back to back in the input and the output (images too): one run of n h w pixels in
// chunks placed on the output's lines (map_pixels_run), so a streamed output is plain only at
// the run's two ends. Row by row, an output not on a line boundary puts plain vectors at each
// row's ends between streamed lines, and at AVX2 that alone cost ~1.35x the time: float32 4K
// rgb_to_gray, single thread, Xeon (Granite Rapids), out 16 bytes into a line 12.4 ms against
// 9.0 aligned; the same pixels as one row 9.2 (whole-line rule and fences alike: a fence per
// chunk instead of per row did not change it; the input's offset and 4 KiB aliasing did not
// matter). AVX-512 (12 plain elements at a row's start, the row's tail and the next row's
// head one plain line) showed no such loss.
template <typename T, bool BGR>
void gray_float(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, bool stream) {
  map_pixels_run<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, BGR>{}, GrayRowF<T, BGR>{stream});
}
#endif
}  // namespace

void color_gray(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::gray_to_rgb) {
#if defined(__SSE4_1__)
      if constexpr (sizeof(T) == 1) {
        map_pixels<T, T, 1, 3>(src, s, dst, d, color::GrayToRgb<T>{}, GrayToRgbRowU8{});
        return;
      }
#endif
      map_pixels<T, T, 1, 3>(src, s, dst, d, color::GrayToRgb<T>{});
      return;
    }
    const bool bgr = op == ColorOp::bgr_to_gray;
    if constexpr (std::is_same<T, uint8_t>::value) {
      if (s.c == 3) {
        if (bgr) gray_u8<3, true>(src, s, dst, d);
        else gray_u8<3, false>(src, s, dst, d);
      } else {
        if (bgr) gray_u8<4, true>(src, s, dst, d);
        else gray_u8<4, false>(src, s, dst, d);
      }
      return;
    }
#if defined(__SSE4_1__)
    if constexpr (std::is_floating_point<T>::value) {
      if (s.c == 3) {
        // (input + output bytes beyond the cache: streamed, as hsv_float)
        const bool stream = d.n * d.h * d.w * 4 * int64_t(sizeof(T)) > params().stream_bytes;
        if (bgr) gray_float<T, true>(src, s, dst, d, stream);
        else gray_float<T, false>(src, s, dst, d, stream);
        return;
      }
    }
#endif
    if (s.c == 3) {
      if (bgr) map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, true>{});
      else map_pixels<T, T, 3, 1>(src, s, dst, d, color::ToGray<T, false>{});
    } else {
      if (bgr) map_pixels<T, T, 4, 1>(src, s, dst, d, color::ToGray<T, true>{});
      else map_pixels<T, T, 4, 1>(src, s, dst, d, color::ToGray<T, false>{});
    }
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
