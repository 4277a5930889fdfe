// The uint8 2x2 mean at an integer stride (compiled per ISA): resize's uint8 tables with two
// equal taps per output on both axes and, along the row, windows F pixels apart (start[x] =
// F x + o, F >= 2): cv2's bilinear weights at an exact 4x shrink (taps 4x + 1, 4x + 2 at 1/2
// each), and at 2x along a row whose height shrinks by another factor.
//
// Every output is (s + 2) >> 2 with s = (a + b) + (c + d), a, b the source row r0 = start_y[y]
// at bytes p, p + C (p = (F x + o) C + c) and c, d row r1 = r0 + 1 there: with the tap weights
// Wy, Wx and 4 Wy Wx = 2^rshift (after a vertical shift that loses nothing: exact_mean4_u8)
// the generic path's (Wy Wx s + 2^(rshift - 1)) >> rshift is exactly that (round half up), so
// the bits of every other path and ISA level.
//
// Per output row, only the two source rows it reads (2 of every F_y: half the rows at 4x, as the
// fused rows of the horizontal-first path read them, which spent two int32 multiplies per output
// and per-block table loads on them: 3x this kernel's time with the rows in L2), in vectors of 4 G outputs (G 128-bit lanes): each lane gathers
// the byte pairs (p, p + C) of 4 consecutive outputs from a 16-byte window of each row (pshufb,
// both taps in one lane: F C + C + 1 <= 16 bytes, e.g. F = 4 with 1 to 4 channels), the pairs
// summed by pmaddubsw with ones into the low word of each int32 lane, the rows' sums added,
// rounded and narrowed. With AVX-512 VBMI, 16 outputs from one 64-byte window of each row and
// one two-source vpermt2b (the four bytes of each output in one int32 lane) and pmaddubsw +
// pmaddwd with ones. The windows and shuffle controls repeat every C / gcd(C, 4 G) vectors (a
// super-block of whole pixels, its source bytes a fixed distance on): the controls stay in
// registers, no per-block table. The last vectors whose windows would pass the row's end, and
// widths no vector fits, take the scalar formula. The rows come from memory (or a shared L3) at
// the core's bandwidth: each 64-byte step prefetches a few lines ahead into L1, and the same bytes
// of the next output row's two rows into L2, a row ahead (the hardware prefetchers start late on
// each new row; without these 4K RGB -> 540x960 ran 1.1-1.3x slower on a Xeon, Granite Rapids).
// Each row is computed into an L1 buffer and copied out (copy_bytes); outputs larger than the
// cache share go out with streaming stores on whole 64-byte lines (copy_bytes_stream), the head
// and the tail plainly.
// Bytes per output element: 2 F_x (the two rows' windows; the source lines between the taps
// are read too) + 1; 3 adds.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/copy_bytes.hpp"
#include "common/rows.hpp"
#include "common/stream.hpp"
#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "transform/resize.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

#if defined(__SSSE3__)
using DVI = simd::ivec;
constexpr int kDG = simd::kBytes / 16;  // 128-bit lanes per vector
constexpr int kDE = 4 * kDG;                              // outputs per vector
constexpr int kDMaxNV = 4;                                // vectors per super-block, at most

inline bool has_vbmi_dec() {
#if defined(__AVX512BW__)
  static const bool yes = cpu_has(CpuFeature::avx512vbmi);
  return yes;
#else
  return false;
#endif
}

// The pattern of one row: super-blocks of nv vectors (sbe outputs, adv source bytes each, from
// byte p0 of the row); vector v's lane g reads the 16-byte window (or, VBMI, the vector the
// 64-byte window) at off[v][g] from the super-block's first byte, ctl[v] its controls.
struct DecPlan {
  bool ok = false, vbmi = false;
  int nv = 0;
  int64_t sbe = 0, adv = 0, p0 = 0, F = 0, C = 0;
  alignas(64) uint8_t ctl[kDMaxNV][64] = {};
  int32_t off[kDMaxNV][4] = {};
  int32_t reach[kDMaxNV] = {};  // bytes past the super-block's first that vector v's loads read

  int64_t p(int64_t e) const { return (F * (e / C) + (p0 / C)) * C + e % C; }

  DecPlan(int64_t F_, int64_t o, int64_t C_, bool vbmi_) : vbmi(vbmi_), F(F_), C(C_) {
    p0 = o * C;
    nv = static_cast<int>(C / std::gcd<int64_t>(C, kDE));
    if (nv > kDMaxNV) return;
    sbe = int64_t(nv) * kDE;
    adv = sbe / C * F * C;
    for (int v = 0; v < nv; ++v) {
      const int64_t e0 = int64_t(v) * kDE;
      if (vbmi) {
        // one window per vector; bytes 4j, 4j + 1 from row 0 (indices < 64), 4j + 2, 4j + 3
        // the same bytes of row 1 (+ 64)
        const int64_t b = p(e0) - p0;
        off[v][0] = static_cast<int32_t>(b);
        for (int j = 0; j < 16; ++j) {
          const int64_t i = p(e0 + j) - p0 - b;
          if (i + C > 63) return;
          ctl[v][4 * j] = static_cast<uint8_t>(i);
          ctl[v][4 * j + 1] = static_cast<uint8_t>(i + C);
          ctl[v][4 * j + 2] = static_cast<uint8_t>(i + 64);
          ctl[v][4 * j + 3] = static_cast<uint8_t>(i + C + 64);
        }
        reach[v] = static_cast<int32_t>(b + 64);
      } else {
        // per lane: bytes 4j, 4j + 1 the pair of output j, 4j + 2, 4j + 3 zero (pshufb 0x80)
        int64_t r = 0;
        for (int g = 0; g < kDG; ++g) {
          const int64_t eg = e0 + 4 * g, b = p(eg) - p0;
          off[v][g] = static_cast<int32_t>(b);
          for (int j = 0; j < 4; ++j) {
            const int64_t i = p(eg + j) - p0 - b;
            if (i + C > 15) return;
            ctl[v][16 * g + 4 * j] = static_cast<uint8_t>(i);
            ctl[v][16 * g + 4 * j + 1] = static_cast<uint8_t>(i + C);
            ctl[v][16 * g + 4 * j + 2] = 0x80;
            ctl[v][16 * g + 4 * j + 3] = 0x80;
          }
          r = std::max(r, b + 16);
        }
        reach[v] = static_cast<int32_t>(r);
      }
    }
    ok = true;
  }
};

// The 4 G int32 sums of vector v (pshufb lanes) of the super-block at s0 / s1 (both rows).
IMKERN_ALWAYS_INLINE inline DVI dec_lanes(const uint8_t* s0, const uint8_t* s1, const int32_t* off, DVI ctl) {
  auto ld = [&](const uint8_t* s, int g) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + off[g])); };
#if defined(__AVX512BW__)
  __m512i w0 = _mm512_castsi128_si512(ld(s0, 0)), w1 = _mm512_castsi128_si512(ld(s1, 0));
  w0 = _mm512_inserti32x4(w0, ld(s0, 1), 1);
  w1 = _mm512_inserti32x4(w1, ld(s1, 1), 1);
  w0 = _mm512_inserti32x4(w0, ld(s0, 2), 2);
  w1 = _mm512_inserti32x4(w1, ld(s1, 2), 2);
  w0 = _mm512_inserti32x4(w0, ld(s0, 3), 3);
  w1 = _mm512_inserti32x4(w1, ld(s1, 3), 3);
  const __m512i one = _mm512_set1_epi8(1);
  return _mm512_add_epi32(_mm512_maddubs_epi16(_mm512_shuffle_epi8(w0, ctl), one),
                          _mm512_maddubs_epi16(_mm512_shuffle_epi8(w1, ctl), one));
#elif defined(__AVX2__)
  const __m256i w0 = _mm256_inserti128_si256(_mm256_castsi128_si256(ld(s0, 0)), ld(s0, 1), 1);
  const __m256i w1 = _mm256_inserti128_si256(_mm256_castsi128_si256(ld(s1, 0)), ld(s1, 1), 1);
  const __m256i one = _mm256_set1_epi8(1);
  return _mm256_add_epi32(_mm256_maddubs_epi16(_mm256_shuffle_epi8(w0, ctl), one),
                          _mm256_maddubs_epi16(_mm256_shuffle_epi8(w1, ctl), one));
#else
  const __m128i one = _mm_set1_epi8(1);
  return _mm_add_epi32(_mm_maddubs_epi16(_mm_shuffle_epi8(ld(s0, 0), ctl), one),
                       _mm_maddubs_epi16(_mm_shuffle_epi8(ld(s1, 0), ctl), one));
#endif
}

// (s + 2) >> 2 of the 4 G sums, as 4 G bytes at o.
IMKERN_ALWAYS_INLINE inline void dec_put(DVI a, uint8_t* o) {
#if defined(__AVX512BW__)
  a = _mm512_srli_epi32(_mm512_add_epi32(a, _mm512_set1_epi32(2)), 2);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtepi32_epi8(a));
#elif defined(__AVX2__)
  a = _mm256_srli_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(2)), 2);
  // byte 0 of each int32 to the lane's first 4 bytes, then the two lanes' dwords together
  const __m256i gb = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1,
                                      -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  a = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(a, gb), _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(a));
#else
  a = _mm_srli_epi32(_mm_add_epi32(a, _mm_set1_epi32(2)), 2);
  const int32_t b4 = _mm_cvtsi128_si32(_mm_shuffle_epi8(a, _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                          -1, -1, -1)));
  std::memcpy(o, &b4, 4);
#endif
}

#if defined(__AVX512BW__)
__attribute__((target("avx512vbmi"))) IMKERN_ALWAYS_INLINE inline __m512i dec_vbmi(const uint8_t* s0,
                                                                                    const uint8_t* s1, int32_t off,
                                                                                    __m512i ctl) {
  const __m512i w = _mm512_permutex2var_epi8(_mm512_loadu_si512(s0 + off), ctl, _mm512_loadu_si512(s1 + off));
  return _mm512_madd_epi16(_mm512_maddubs_epi16(w, _mm512_set1_epi8(1)), _mm512_set1_epi16(1));
}
#endif

// Outputs [0, n) of one row into o (o: n + kDE bytes of room), rows r0 / r1 of SWC bytes; VEC(v,
// a, b) the sums of vector v of the super-block at a / b. (A macro: the VBMI row needs the
// target attribute on the function itself; lambdas do not inherit it.)
#define IMKERN_DEC_ROW(NAME, ATTR, VEC)                                                                      \
  template <int NV>                                                                                          \
  ATTR void NAME(const DecPlan& pl, const uint8_t* __restrict__ r0, const uint8_t* __restrict__ r1,           \
                 int64_t SWC, int64_t n, uint8_t* __restrict__ o, const uint8_t* x0, const uint8_t* x1) {     \
    DVI ctl[NV];                                                                                             \
    for (int v = 0; v < NV; ++v) std::memcpy(&ctl[v], pl.ctl[v], sizeof(DVI));                              \
    const int64_t adv = pl.adv, sbe = pl.sbe, room = SWC - pl.p0;                                            \
    const uint8_t* s0 = r0 + pl.p0;                                                                          \
    const uint8_t* s1 = r1 + pl.p0;                                                                          \
    /* whole super-blocks whose loads stay in the row */                                                     \
    const int64_t nsb =                                                                                      \
        std::min(n / sbe, room >= pl.reach[NV - 1] ? (room - pl.reach[NV - 1]) / adv + 1 : int64_t(0));      \
    int64_t m = 0;                                                                                           \
    uint8_t* q = o;                                                                                          \
    /* (no L1 prefetches past the row's end: the rows between the output rows' are not read) */            \
    const int64_t pf_end = nsb - (512 + adv - 1) / adv;                                                      \
    for (; m < nsb; ++m, s0 += adv, s1 += adv, q += sbe) {                                                   \
      /* the rows stream from memory: a few lines ahead of the windows into L1, and the same */          \
      /* bytes of the next output row's rows x0, x1 into L2 (a row ahead: the hardware prefetchers */     \
      /* start late on each new row) */                                                                  \
      for (int64_t k = 0; k < adv; k += 64) {                                                                \
        if (m < pf_end) {                                                                                    \
          _mm_prefetch(reinterpret_cast<const char*>(s0) + 512 + k, _MM_HINT_T0);                            \
          _mm_prefetch(reinterpret_cast<const char*>(s1) + 512 + k, _MM_HINT_T0);                            \
        }                                                                                                    \
        _mm_prefetch(reinterpret_cast<const char*>(x0 + (s0 - r0)) + k, _MM_HINT_T1);                        \
        _mm_prefetch(reinterpret_cast<const char*>(x1 + (s0 - r0)) + k, _MM_HINT_T1);                        \
      }                                                                                                      \
      for (int v = 0; v < NV; ++v) dec_put(VEC(v, s0, s1), q + v * kDE);                                     \
    }                                                                                                        \
    /* single vectors of the next super-block while their loads fit (the last may write past n) */           \
    int64_t e = m * sbe;                                                                                     \
    for (int v = 0; v < NV && e < n && pl.reach[v] <= room - m * adv; ++v, e += kDE)                         \
      dec_put(VEC(v, s0, s1), q + v * kDE);                                                                  \
    for (; e < n; ++e) {                                                                                     \
      const int64_t p = pl.p(e);                                                                             \
      o[e] = static_cast<uint8_t>((r0[p] + r0[p + pl.C] + r1[p] + r1[p + pl.C] + 2) >> 2);                   \
    }                                                                                                        \
  }
#define IMKERN_DEC_LANES(v, a, b) dec_lanes(a, b, pl.off[v], ctl[v])
IMKERN_DEC_ROW(dec_row_lanes, , IMKERN_DEC_LANES)
#undef IMKERN_DEC_LANES
#if defined(__AVX512BW__)
#define IMKERN_DEC_VBMI(v, a, b) dec_vbmi(a, b, pl.off[v][0], ctl[v])
IMKERN_DEC_ROW(dec_row_vbmi, __attribute__((target("avx512vbmi"))), IMKERN_DEC_VBMI)
#undef IMKERN_DEC_VBMI
#endif
#undef IMKERN_DEC_ROW

using DecRowFn = void (*)(const DecPlan&, const uint8_t*, const uint8_t*, int64_t, int64_t, uint8_t*, const uint8_t*, const uint8_t*);

DecRowFn dec_row_fn(int nv, bool vbmi) {
#if defined(__AVX512BW__)
  if (vbmi) {
    switch (nv) {
      case 1: return dec_row_vbmi<1>;
      case 2: return dec_row_vbmi<2>;
      case 3: return dec_row_vbmi<3>;
      default: return dec_row_vbmi<4>;
    }
  }
#endif
  (void)vbmi;
  switch (nv) {
    case 1: return dec_row_lanes<1>;
    case 2: return dec_row_lanes<2>;
    case 3: return dec_row_lanes<3>;
    default: return dec_row_lanes<4>;
  }
}

// Whether the table has two equal taps everywhere (w: the tap) and both taps in range.
inline bool equal_pairs(const ResizeTable& t, int64_t src, int32_t& w) {
  if (t.k != 2 || t.n < 1) return false;
  const int32_t* q = static_cast<const int32_t*>(t.w);
  w = q[0];
  for (int64_t i = 0; i < t.n; ++i)
    if (q[2 * i] != w || q[2 * i + 1] != w || t.start[i] < 0 || t.start[i] + 1 >= src) return false;
  return w > 0;
}
#endif  // __SSSE3__

}  // namespace

bool resize_decimate_u8(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                        const ResizeTable& tx, int shift) {
#if defined(__SSSE3__)
  const int rshift = ty.bits + tx.bits - shift;
  int32_t qy = 0, qx = 0;
  if (!(equal_pairs(ty, s.h, qy) && equal_pairs(tx, s.w, qx) && exact_mean4_u8(shift, rshift, qy, qx)))
    return false;
  if (tx.n < 2) return false;
  const int64_t F = tx.start[1] - tx.start[0], o = tx.start[0];
  if (F < 2) return false;
  for (int64_t x = 0; x < tx.n; ++x)
    if (tx.start[x] != F * x + o) return false;
  const int64_t C = s.c, SWC = s.w * C, DWC = d.w * C;
  const bool vbmi = has_vbmi_dec();
  DecPlan plan(F, o, C, vbmi);
  if (!plan.ok && vbmi) plan = DecPlan(F, o, C, false);
  if (!plan.ok) return false;
  const DecRowFn row = dec_row_fn(plan.nv, plan.vbmi);
  const int64_t rows = d.n * d.h;
  const bool stream = 2 * (s.n * s.h * s.w * C + rows * DWC) > params().stream_bytes;
  parallel_for(0, rows, rows_grain(rows, 4 * DWC * F), [&](int64_t t0, int64_t t1) {
    uint8_t* buf = thread_scratch<uint8_t>(0, static_cast<size_t>(DWC + 64));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const int64_t sy = ty.start[y];
      // the next row's source rows, prefetched into L2 as this one is read (the chunk's last
      // row: its own again, already there)
      const int64_t b1 = t + 1 < t1 ? (t + 1) / d.h : b, sy1 = t + 1 < t1 ? ty.start[(t + 1) % d.h] : sy;
      row(plan, row_ptr<uint8_t>(src, s, b, sy), row_ptr<uint8_t>(src, s, b, sy + 1), SWC, DWC, buf,
          row_ptr<uint8_t>(src, s, b1, sy1), row_ptr<uint8_t>(src, s, b1, sy1 + 1));
      uint8_t* out = row_ptr<uint8_t>(dst, d, b, y);
      if (stream)
        copy_bytes_stream(buf, out, DWC);
      else
        copy_bytes(buf, out, DWC);
    }
    if (stream) stream_fence();
  });
  return true;
#else
  (void)src, (void)s, (void)dst, (void)d, (void)ty, (void)tx, (void)shift;
  return false;
#endif
}

}  // namespace IMKERN_ISA
}  // namespace imkern
