// rgb_to_ycbcr, ycbcr_to_rgb: BT.601 full range as JPEG / JFIF (compiled per ISA).
//
// uint8/uint16: Q16 fixed point, chroma offset 128 / 32768 (identical on CPU and CUDA);
// floats: the exact JPEG matrix in the image's type, chroma offset 0.5. Per pixel: 6 elements
// moved, 9 multiply-adds.
//
// uint8 with AVX2 / AVX-512 (Row3U8Pairs): one int32 lane per pixel, the pixels' bytes spread 4
// per 128-bit lane (vpermd) and taken as int16 pairs (pshufb) for pmaddwd; the Q16 sums' high
// halves are the results, packed with saturation (packuswb) and gathered back into 3-byte
// pixels (pshufb, vpermd). rgb_to_ycbcr: pairs (r, g), (b, g), two pmaddwd per sum (38470 g =
// 19235 g + 19235 g; the +32768 b of Cb and +32768 r of Cr, beyond int16, subtracted as
// -32768); ycbcr_to_rgb: see YcbcrToRgbPairs. 8 / 16 pixels per step, ~22 operations; with
// AVX-512 VBMI + VNNI 16 pixels in ~13 (vpermb, vpdpwssd). The functor's bits. Single thread,
// 1080p, against cv2.cvtColor YCrCb (Zen 4): 0.5-0.65 of its time (AVX-512), 0.65-0.8 (AVX2).
// Floats: Row3F (the functor's expressions on planes; outputs beyond the cache streamed;
// packed images as one run in line-placed chunks, map_pixels_run).
#include "color/pixel_map.hpp"
#include "imkern/cpu_params.hpp"

// The native lane vectors never cross a function boundary that is not inlined.
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {

namespace {
#if defined(__SSE4_1__)
// The Q16 formulas of color::RgbToYcbcr / YcbcrToRgb in int32 lanes (|sums| < 2^25).
struct RgbToYcbcrLanes {
  void lanes(vi r, vi g, vi b, vi& y, vi& cb, vi& cr) const {
    y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    cb = ((128 << 16) - 11058 * r - 21710 * g + 32768 * b + 32768) >> 16;
    cr = ((128 << 16) + 32768 * r - 27439 * g - 5329 * b + 32768) >> 16;
  }
};
struct YcbcrToRgbLanes {
  void lanes(vi y, vi cb, vi cr, vi& r, vi& g, vi& b) const {
    const vi ys = y << 16, u = cb - 128, v = cr - 128;
    r = (ys + 91881 * v + 32768) >> 16;
    g = (ys - 22554 * u - 46802 * v + 32768) >> 16;
    b = (ys + 116130 * u + 32768) >> 16;
  }
};

// color::RgbToYcbcr / YcbcrToRgb of floats on L lanes: the functor's expressions.
template <typename T>
struct RgbToYcbcrFLanes {
  bool lanes(const fv<T>* c, fv<T>* o) const {
    const fv<T> r = c[0], g = c[1], b = c[2];
    o[0] = T(0.299) * r + T(0.587) * g + T(0.114) * b;
    o[1] = T(0.5) - T(0.299 / 1.772) * r - T(0.587 / 1.772) * g + T(0.5) * b;
    o[2] = T(0.5) + T(0.5) * r - T(0.587 / 1.402) * g - T(0.114 / 1.402) * b;
    return true;
  }
};
template <typename T>
struct YcbcrToRgbFLanes {
  bool lanes(const fv<T>* c, fv<T>* o) const {
    const fv<T> y = c[0], cb = c[1] - T(0.5), cr = c[2] - T(0.5);
    o[0] = y + T(1.402) * cr;
    o[1] = y - T(0.114 * 1.772 / 0.587) * cb - T(0.299 * 1.402 / 0.587) * cr;
    o[2] = y + T(1.772) * cb;
    return true;
  }
};

template <typename T>
void ycbcr_float(bool fwd, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  // outputs beyond the cache are streamed, as hsv_float; packed images as one run in
  // line-placed chunks (map_pixels_run), others row by row
  const bool stream = 2 * d.n * d.h * d.w * 3 * int64_t(sizeof(T)) > params().stream_bytes;
  if (fwd) {
    Row3F<T, RgbToYcbcrFLanes<T>, color::RgbToYcbcr<T>> row;
    row.stream = stream;
    row.rows_follow = contiguous_rows(s);
    map_pixels_run<T, T, 3, 3>(src, s, dst, d, color::RgbToYcbcr<T>{}, row);
  } else {
    Row3F<T, YcbcrToRgbFLanes<T>, color::YcbcrToRgb<T>> row;
    row.stream = stream;
    row.rows_follow = contiguous_rows(s);
    map_pixels_run<T, T, 3, 3>(src, s, dst, d, color::YcbcrToRgb<T>{}, row);
  }
}
#endif

#if defined(__AVX2__)
// The int16 coefficient pair (lo, hi) of a pmaddwd lane.
constexpr int32_t pair16(int lo, int hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
                              (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16));
}

// The operations of Row3U8Pairs on 256- and 512-bit vectors.
struct V256 {
  typedef __m256i v;
  static v set1(int32_t x) { return _mm256_set1_epi32(x); }
  static v bytes16(__m128i m) { return _mm256_broadcastsi128_si256(m); }
  static v add(v a, v b) { return _mm256_add_epi32(a, b); }
  static v sub(v a, v b) { return _mm256_sub_epi32(a, b); }
  static v madd(v a, v b) { return _mm256_madd_epi16(a, b); }
  static v srl(v a, int n) { return _mm256_srli_epi32(a, n); }
  static v pshufb(v a, v m) { return _mm256_shuffle_epi8(a, m); }
  // the odd int16 halves from b, the even ones from a
  static v blend_odd16(v a, v b) { return _mm256_blend_epi16(a, b, 0xAA); }
  static v sll(v a, int n) { return _mm256_slli_epi32(a, n); }
  static v sra(v a, int n) { return _mm256_srai_epi32(a, n); }
  static v packus16(v a, v b) { return _mm256_packus_epi16(a, b); }
};
#if defined(__AVX512BW__)
struct V512 {
  typedef __m512i v;
  static v set1(int32_t x) { return _mm512_set1_epi32(x); }
  static v bytes16(__m128i m) { return _mm512_broadcast_i32x4(m); }
  static v add(v a, v b) { return _mm512_add_epi32(a, b); }
  static v sub(v a, v b) { return _mm512_sub_epi32(a, b); }
  static v madd(v a, v b) { return _mm512_madd_epi16(a, b); }
  static v srl(v a, int n) { return _mm512_srli_epi32(a, n); }
  static v pshufb(v a, v m) { return _mm512_shuffle_epi8(a, m); }
  static v blend_odd16(v a, v b) { return _mm512_mask_blend_epi16(0xAAAAAAAA, a, b); }
  static v sll(v a, int n) { return _mm512_slli_epi32(a, n); }
  static v sra(v a, int n) { return _mm512_srai_epi32(a, n); }
  static v packus16(v a, v b) { return _mm512_packus_epi16(a, b); }
};
#endif

// The Y, Cb, Cr sums (Y in [32768, 2^24), Cb, Cr in [65536, 2^24]) as bytes: per 128-bit lane
// y0 cr0 y1 cr1 y2 cr2 y3 cr3 cb0 - cb1 - cb2 - cb3 - (the sums' high int16 halves are the
// results, 256 at most; packuswb saturates as the functor's clamp).
template <typename V>
IMKERN_ALWAYS_INLINE inline typename V::v ycc_pack(typename V::v ys, typename V::v cbs, typename V::v crs) {
  return V::packus16(V::blend_odd16(V::srl(ys, 16), crs), V::srl(cbs, 16));
}
// The R, G, B sums (|sums| < 2^25) as bytes: per 128-bit lane r0 g0 r1 g1 r2 g2 r3 g3 b0 - b1 -
// b2 - b3 - (the sums' high int16 halves, signed, are the results; packuswb saturates).
template <typename V>
IMKERN_ALWAYS_INLINE inline typename V::v rgb_pack(typename V::v rs, typename V::v gs, typename V::v bs) {
  return V::packus16(V::blend_odd16(V::sra(rs, 16), gs), V::sra(bs, 16));
}

#if defined(__AVX512BW__)
// ---- AVX-512 with VBMI and VNNI (where the CPU has both: `fast` in color_ycbcr) ----------
// The same sums with fewer operations, 16 pixels per step: vpermb builds the int16 pairs
// straight from the 48 loaded bytes (zeroing the high bytes), vpdpwssd accumulates onto the
// constants, one vpermb gathers the packed results into 3-byte pixels.
// rgb_to_ycbcr takes the complements (255 - r, 255 - g) and (255 - b, 255 - g): every
// coefficient then fits int16 (Y: 65536 * 255 + 32768 - 19595 r' - 38470 g' - 7471 b';
// Cb: 2^23 + 32768 + 11058 r' + 21710 g' - 32768 b'; Cr: 2^23 + 32768 - 32768 r' + 27439 g'
// + 5329 b', since the weights of each row sum to 65536, 0 and 0), so each sum is two vpdpwssd.
struct YccVbmiTables {
  alignas(64) uint8_t rg[64], bg[64], ycc[64];       // rgb_to_ycbcr: pairs; output bytes
  alignas(64) uint8_t p[64], q[64], rgb[64];         // ycbcr_to_rgb: pairs P, Q; output bytes
  YccVbmiTables() {
    for (int t = 0; t < 64; ++t) {
      const int px = t / 4, pos = t % 4;  // int16 pair (lo, hi) of pixel px: bytes 0 and 2
      auto pick = [&](int lo, int hi) {
        return static_cast<uint8_t>(pos == 0 ? 3 * px + lo : (pos == 2 ? 3 * px + hi : 0));
      };
      rg[t] = pick(0, 1);
      bg[t] = pick(2, 1);
      p[t] = pick(2, 0);
      q[t] = pick(1, 2);
    }
    for (int j = 0; j < 64; ++j) {
      const int px = j / 3 % 16, ch = j % 3;  // output byte j: channel ch of pixel px (j < 48)
      // the bytes of ycc_pack / rgb_pack: channels 0 and 2 (0 and 1 for rgb_pack) at 2 i and
      // 2 i + 1, the other at 8 + 2 i (pixel i of its 128-bit lane)
      const int base = 16 * (px / 4), i = px % 4;
      ycc[j] = static_cast<uint8_t>(base + (ch == 1 ? 8 + 2 * i : 2 * i + ch / 2));
      rgb[j] = static_cast<uint8_t>(base + (ch == 2 ? 8 + 2 * i : 2 * i + ch));
    }
  }
};
const YccVbmiTables& ycc_vbmi_tables() {
  static const YccVbmiTables t;
  return t;
}
constexpr __mmask64 kPairBytes = 0x5555555555555555ull;  // bytes 0 and 2 of every int32 lane

#define IMKERN_YCC_TARGET __attribute__((target("avx512vbmi,avx512vnni"), always_inline)) inline

// The index vectors, loaded once per row (the output's stores might alias the tables).
struct YccVbmiIdx {
  __m512i pair0, pair1, out;
};
IMKERN_YCC_TARGET YccVbmiIdx rgb_to_ycbcr_vbmi_idx(const YccVbmiTables& t) {
  return {_mm512_load_si512(t.rg), _mm512_load_si512(t.bg), _mm512_load_si512(t.ycc)};
}
IMKERN_YCC_TARGET YccVbmiIdx ycbcr_to_rgb_vbmi_idx(const YccVbmiTables& t) {
  return {_mm512_load_si512(t.p), _mm512_load_si512(t.q), _mm512_load_si512(t.rgb)};
}

// acc + pmaddwd(x, (lo, hi)) in one vpdpwssd
IMKERN_YCC_TARGET __m512i vnni_dot(__m512i acc, __m512i x, int lo, int hi) {
  return _mm512_dpwssd_epi32(acc, x, _mm512_set1_epi32(pair16(lo, hi)));
}

IMKERN_YCC_TARGET __m512i rgb_to_ycbcr_vbmi_step(__m512i a, const YccVbmiIdx& ix) {
  // the complements as int16 255 - x (a complement of the loaded bytes becomes a vpternlogd
  // whose destination, an input too, holds the previous step's result: that chains the steps)
  const __m512i w255 = _mm512_set1_epi16(255);
  const __m512i rg = _mm512_sub_epi16(w255, _mm512_maskz_permutexvar_epi8(kPairBytes, ix.pair0, a));
  const __m512i bg = _mm512_sub_epi16(w255, _mm512_maskz_permutexvar_epi8(kPairBytes, ix.pair1, a));
  // each sum: a constant, then two vpdpwssd with the coefficients of (r', g') and (b', g')
  const __m512i c = _mm512_set1_epi32((128 << 16) + 32768);
  const __m512i ys = vnni_dot(vnni_dot(_mm512_set1_epi32(65536 * 255 + 32768), rg, -19595, -19235), bg, -7471, -19235);
  const __m512i cbs = vnni_dot(vnni_dot(c, rg, 11058, 21710), bg, -32768, 0);
  const __m512i crs = vnni_dot(vnni_dot(c, rg, -32768, 27439), bg, 5329, 0);
  return _mm512_permutexvar_epi8(ix.out, ycc_pack<V512>(ys, cbs, crs));
}

IMKERN_YCC_TARGET __m512i ycbcr_to_rgb_vbmi_step(__m512i a, const YccVbmiIdx& ix) {
  const __m512i p = _mm512_maskz_permutexvar_epi8(kPairBytes, ix.pair0, a);
  const __m512i q = _mm512_maskz_permutexvar_epi8(kPairBytes, ix.pair1, a);
  // each sum: (lanes + constant) + the pmaddwd of Q, as YcbcrToRgbPairs
  auto k = [](int32_t c) { return _mm512_set1_epi32(c); };
  const __m512i rs = vnni_dot(_mm512_add_epi32(_mm512_add_epi32(p, q), k(32768 - 91881 * 128)), q, -1, 26344);
  const __m512i gs =
      vnni_dot(_mm512_add_epi32(_mm512_sub_epi32(p, q), k(32768 + (22554 + 46802) * 128)), q, -22553, 18733);
  const __m512i bs =
      vnni_dot(_mm512_add_epi32(_mm512_add_epi32(p, _mm512_slli_epi32(q, 17)), k(32768 - 116130 * 128)), q, -14942, -1);
  return _mm512_permutexvar_epi8(ix.out, rgb_pack<V512>(rs, gs, bs));
}

// A whole row (w >= 1), as Row3U8Pairs at AVX-512.
#define IMKERN_YCC_VBMI_ROW(name, idx, step)                                                      \
  __attribute__((target("avx512vbmi,avx512vnni"))) int64_t name(const uint8_t* in, uint8_t* out, \
                                                                 int64_t w) {                    \
    const YccVbmiIdx ix = idx(ycc_vbmi_tables());                                                \
    int64_t x = 0;                                                                               \
    for (; 3 * x + 64 <= 3 * w; x += 16)                                                         \
      _mm512_storeu_si512(out + 3 * x, step(_mm512_loadu_si512(in + 3 * x), ix));                \
    for (; x < w; x += 16) {                                                                     \
      const int64_t n = w - x < 16 ? w - x : 16;                                                 \
      const __mmask64 m = (__mmask64(1) << (3 * n)) - 1;                                         \
      _mm512_mask_storeu_epi8(out + 3 * x, m, step(_mm512_maskz_loadu_epi8(m, in + 3 * x), ix)); \
    }                                                                                            \
    return w;                                                                                    \
  }
IMKERN_YCC_VBMI_ROW(rgb_to_ycbcr_vbmi, rgb_to_ycbcr_vbmi_idx, rgb_to_ycbcr_vbmi_step)
IMKERN_YCC_VBMI_ROW(ycbcr_to_rgb_vbmi, ycbcr_to_rgb_vbmi_idx, ycbcr_to_rgb_vbmi_step)
#undef IMKERN_YCC_VBMI_ROW
#undef IMKERN_YCC_TARGET
#endif

// One step of uint8 rgb_to_ycbcr (lanes<V>) on the pixels whose bytes a holds 4 per 128-bit
// lane (at the lane's bytes 0-11); returns each lane's 12 output bytes at its bytes 0-11.
struct RgbToYcbcrPairs {
#if defined(__AVX512BW__)
  static int64_t vbmi_row(const uint8_t* in, uint8_t* out, int64_t w) {
    return rgb_to_ycbcr_vbmi(in, out, w);
  }
#endif
  template <typename V>
  IMKERN_ALWAYS_INLINE static typename V::v lanes(typename V::v a) {
    typedef typename V::v v;
    const v rg = V::pshufb(a, V::bytes16(_mm_setr_epi8(0, -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1)));
    const v bg = V::pshufb(a, V::bytes16(_mm_setr_epi8(2, -1, 1, -1, 5, -1, 4, -1, 8, -1, 7, -1, 11, -1, 10, -1)));
    auto dot = [&](int r, int g1, int b, int g2) IMKERN_ALWAYS_INLINE {
      return V::add(V::madd(rg, V::set1(pair16(r, g1))), V::madd(bg, V::set1(pair16(b, g2))));
    };
    const v c = V::set1((128 << 16) + 32768);
    const v ys = V::add(dot(19595, 19235, 7471, 19235), V::set1(32768));
    const v cbs = V::sub(c, dot(11058, 21710, -32768, 0));
    const v crs = V::sub(c, dot(-32768, 27439, 5329, 0));
    return V::pshufb(ycc_pack<V>(ys, cbs, crs),
                     V::bytes16(_mm_setr_epi8(0, 8, 1, 2, 10, 3, 4, 12, 5, 6, 14, 7, -1, -1, -1, -1)));
  }
};

// One step of uint8 ycbcr_to_rgb, as RgbToYcbcrPairs. The pairs P = (cr, y), Q = (cb, cr) as
// int32 lanes are cr + 2^16 y and cb + 2^16 cr, and Q << 17 is 2^17 cb (mod 2^32): these give
// the multiples of 2^16 beyond int16 (65536 y; 91881 = 65536 + 1 + 26344; -46802 = 1 - 65536 +
// 18733; 116130 = 2 * 65536 - 14942) and one pmaddwd on Q the rest (all mod 2^32, the true
// sums below 2^25 in magnitude); rgb_pack takes the results.
struct YcbcrToRgbPairs {
#if defined(__AVX512BW__)
  static int64_t vbmi_row(const uint8_t* in, uint8_t* out, int64_t w) {
    return ycbcr_to_rgb_vbmi(in, out, w);
  }
#endif
  template <typename V>
  IMKERN_ALWAYS_INLINE static typename V::v lanes(typename V::v a) {
    typedef typename V::v v;
    const v p = V::pshufb(a, V::bytes16(_mm_setr_epi8(2, -1, 0, -1, 5, -1, 3, -1, 8, -1, 6, -1, 11, -1, 9, -1)));
    const v q = V::pshufb(a, V::bytes16(_mm_setr_epi8(1, -1, 2, -1, 4, -1, 5, -1, 7, -1, 8, -1, 10, -1, 11, -1)));
    auto qdot = [&](int cb, int cr) IMKERN_ALWAYS_INLINE { return V::madd(q, V::set1(pair16(cb, cr))); };
    const v rs = V::add(V::add(p, q), V::add(qdot(-1, 26344), V::set1(32768 - 91881 * 128)));
    const v gs = V::add(V::sub(p, q), V::add(qdot(-22553, 18733), V::set1(32768 + (22554 + 46802) * 128)));
    const v bs = V::add(V::add(p, V::sll(q, 17)), V::add(qdot(-14942, -1), V::set1(32768 - 116130 * 128)));
    return V::pshufb(rgb_pack<V>(rs, gs, bs),
                     V::bytes16(_mm_setr_epi8(0, 1, 8, 2, 3, 10, 4, 5, 12, 6, 7, 14, -1, -1, -1, -1)));
  }
};

// A row of 3 -> 3 channel uint8 pixels through Op::lanes (RgbToYcbcrPairs, YcbcrToRgbPairs), or
// Op::vbmi_row where `fast`. AVX-512: 16 pixels per step, whole 64-byte loads and stores while
// they stay in the row (each store's last 16 bytes rewritten by the next step), then masked
// ones to the row's end. AVX2: 8 pixels per step, 32-byte loads and stores (8 bytes past the
// step, inside the row), then whole steps ending at the row's end. Rows narrower than 16
// (AVX-512) / 11 (AVX2) pixels go to the functor.
template <typename Op>
struct Row3U8Pairs {
  bool fast = false;  // AVX-512 VBMI and VNNI: Op::vbmi_row
  int64_t operator()(const uint8_t* in, uint8_t* out, int64_t w) const {
#if defined(__AVX512BW__)
    if (w < 16) return 0;
    if (fast) return Op::vbmi_row(in, out, w);
    const __m512i spread = _mm512_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12);
    const __m512i gather = _mm512_setr_epi32(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 3, 7, 11, 15);
    int64_t x = 0;
    for (; 3 * x + 64 <= 3 * w; x += 16) {
      const __m512i a = _mm512_permutexvar_epi32(spread, _mm512_loadu_si512(in + 3 * x));
      _mm512_storeu_si512(out + 3 * x, _mm512_permutexvar_epi32(gather, Op::template lanes<V512>(a)));
    }
    for (; x < w; x += 16) {
      const int64_t n = w - x < 16 ? w - x : 16;
      const __mmask64 m = (__mmask64(1) << (3 * n)) - 1;
      const __m512i a = _mm512_permutexvar_epi32(spread, _mm512_maskz_loadu_epi8(m, in + 3 * x));
      _mm512_mask_storeu_epi8(out + 3 * x, m, _mm512_permutexvar_epi32(gather, Op::template lanes<V512>(a)));
    }
    return w;
#else
    if (w < 11) return 0;
    const __m256i spread = _mm256_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6);
    const __m256i gather = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
    int64_t x = 0;
    auto step = [&](int64_t at) IMKERN_ALWAYS_INLINE {
      const __m256i a =
          _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 3 * at)), spread);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 3 * at),
                          _mm256_permutevar8x32_epi32(Op::template lanes<V256>(a), gather));
    };
    for (; 3 * x + 32 <= 3 * w; x += 8) step(x);
    if (w - x > 8) {
      // 9 or 10 pixels left (w >= 17): 8 of them by a whole step, the rest by the last one's
      x = w - 16;
      step(x);
    }
    if (x < w) {
      // the last 8 pixels: their 24 bytes are the last of a 32-byte load (w >= 11), stored exactly
      x = w - 8;
      const __m256i last = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 3 * w - 32));
      const __m256i a = _mm256_permutevar8x32_epi32(last, _mm256_setr_epi32(2, 3, 4, 5, 5, 6, 7, 7));
      const __m256i o = _mm256_permutevar8x32_epi32(Op::template lanes<V256>(a), gather);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * x), _mm256_castsi256_si128(o));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 3 * x + 16), _mm256_extracti128_si256(o, 1));
    }
    return w;
#endif
  }
};
#endif
}  // namespace

void color_ycbcr(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
#if defined(__SSE4_1__)
  if (dtype == DType::u8) {
#if defined(__AVX512BW__)
    static const bool fast = cpu_has(CpuFeature::avx512vbmi) && cpu_has(CpuFeature::avx512vnni);
#else
    [[maybe_unused]] constexpr bool fast = false;
#endif
    if (op == ColorOp::rgb_to_ycbcr) {
#if defined(__AVX2__)
      map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, color::RgbToYcbcr<uint8_t>{},
                                         Row3U8Pairs<RgbToYcbcrPairs>{fast});
#else
      map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, color::RgbToYcbcr<uint8_t>{}, Row3U8<RgbToYcbcrLanes>{});
#endif
    } else {
#if defined(__AVX2__)
      map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, color::YcbcrToRgb<uint8_t>{},
                                         Row3U8Pairs<YcbcrToRgbPairs>{fast});
#else
      map_pixels<uint8_t, uint8_t, 3, 3>(src, s, dst, d, color::YcbcrToRgb<uint8_t>{}, Row3U8<YcbcrToRgbLanes>{});
#endif
    }
    return;
  }
  if (dtype == DType::f32) return ycbcr_float<float>(op == ColorOp::rgb_to_ycbcr, src, s, dst, d);
  if (dtype == DType::f64) return ycbcr_float<double>(op == ColorOp::rgb_to_ycbcr, src, s, dst, d);
#endif
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (op == ColorOp::rgb_to_ycbcr) map_pixels<T, T, 3, 3>(src, s, dst, d, color::RgbToYcbcr<T>{});
    else map_pixels<T, T, 3, 3>(src, s, dst, d, color::YcbcrToRgb<T>{});
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
