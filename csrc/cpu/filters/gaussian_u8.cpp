// uint8 Gaussian blur as cv2.GaussianBlur computes it (its fixed-point "bit-exact" path),
// compiled per ISA.
//
// Algorithm: the taps are integers in 8 fractional bits summing to 256 (gaussian_kernel_q8 in
// python/imkern/_kernels.py). Each source row is filtered along x into 16-bit sums
// h = sum_j kx[j] * x[j] (at most 255 * 256: exact in 16 bits); each output row is then
// v = sum_i ky[i] * h_i (at most 255 * 2^16: exact in 32 bits) and out = (v + 2^15) >> 16.
// Every sum is exact, so the result is a pure function of the taps and the input: it does not
// depend on the summation order, the ISA, the strips or the threads, and it equals OpenCV's.
//   * Horizontal pass, pmaddubsw: the taps are split into terms of two (tap, weight) pairs,
//     each weight at most 127 and the two summing to at most 128 (255 * 128 < 2^15: the signed
//     16-bit sum never saturates); a term is one byte interleave (punpck{l,h}bw) of the two
//     taps' source bytes and one pmaddubsw per 16-bit vector. A Gaussian's mirrored taps make
//     (kw + 1) / 2 terms when its side taps are at most 64 and its centre at most 128 (5x5
//     sigma 1: 14 62 104 62 14); other taps are split greedily (a tap over 127 spreads over
//     two terms). The terms, summed onto -32640, give h - 32640 modulo 2^16: an int16 in
//     [-32640, 32640].
//   * Rows go into the ring in pairs (2m, 2m + 1), their 16-bit values interleaved (punpck
//     {l,h}wd), so the vertical pass is one pmaddwd (or AVX-512 VNNI vpdpwssd, which also
//     adds) per pair of rows and 32-bit lane: output row y takes the (kh + 1) / 2 pairs that
//     hold rows y - kh/2 ... y + kh/2 with weights (ky[2p], ky[2p + 1]) or, when y - kh/2 is
//     odd, (ky[2p - 1], ky[2p]); rows y and y + 1 share the pairs and their loads.
//     sum_i ky[i] (h_i - 32640) = v + 2^15 - 2^23 (the taps sum to 256), so
//     out = ((sum >> 16) + 128): arithmetic shift, signed packs, xor 0x80. No bias term.
//   * Everything stays in 128-bit lanes: the byte and word interleaves put the elements of a
//     64-byte unit in an order that packssdw then packsswb undo, so the output comes out in
//     order without a cross-lane permute.
// Cost per 64 output bytes (5x5, AVX-512): horizontally, per source row, 6 loads, 6 byte
// interleaves, 6 pmaddubsw, 6 adds, 2 word interleaves and 2 stores; vertically, per output
// row, 6 loads (shared by two rows), 12 multiply-adds (plus 8 adds without VNNI), 4 shifts,
// 3 packs, 1 xor and 1 store. 1 byte read, 1 written (streamed for outputs larger than the
// cache). The ring (kh + 1 rows of 16 bits per element) is held in column strips sized for
// half the L1 (short kernels) or the L2. 4K RGB 5x5 on one Zen 4 core (loaded machine): ~4.5 ms
// with VNNI, ~5.1 without, ~5.4 on AVX2; cv2 ~10.7 ms (the earlier 16-bit two-plane vertical
// pass: 8.8 and 10.5 ms).
// Variants: one vector source for SSE4.1 (baseline), AVX2 and AVX-512BW through the small
// wrappers in V, the vertical multiply-adds as VNNI where the CPU has it (cpu_has(avx512vnni));
// 2 to 4 horizontal terms and 1 to 4 vertical pairs unrolled, any count by a loop; a scalar
// loop over the same layout for rows under one unit of 64 (AVX-512) / 32 / 16 bytes.
#include <algorithm>
#include <vector>

#include "imkern/dispatch.hpp"
#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"

#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

constexpr int kBias = 32640;  // ring values: h - kBias, an int16 (h in [0, 65280])

#if defined(__AVX512BW__) || defined(__AVX2__) || defined(__SSE4_1__)
#define IMKERN_GAUSS_U8_SIMD 1
// The handful of integer operations the two passes use, for one vector width. Every one works
// within 128-bit lanes.
struct V {
  using T = simd::ivec;
  static constexpr int bytes = simd::kBytes;
#if defined(__AVX512BW__)
  static T load(const void* p) { return _mm512_loadu_si512(p); }
  static void store(void* p, T v) { _mm512_storeu_si512(p, v); }
  static void stream(void* p, T v) { _mm512_stream_si512(reinterpret_cast<__m512i*>(p), v); }
  static T set16(int v) { return _mm512_set1_epi16(static_cast<short>(v)); }
  static T set32(int v) { return _mm512_set1_epi32(v); }
  static T set8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static T zero() { return _mm512_setzero_si512(); }
  static T add16(T a, T b) { return _mm512_add_epi16(a, b); }
  static T add32(T a, T b) { return _mm512_add_epi32(a, b); }
  static T xor_(T a, T b) { return _mm512_xor_si512(a, b); }
  static T lo8(T a, T b) { return _mm512_unpacklo_epi8(a, b); }
  static T hi8(T a, T b) { return _mm512_unpackhi_epi8(a, b); }
  static T lo16(T a, T b) { return _mm512_unpacklo_epi16(a, b); }
  static T hi16(T a, T b) { return _mm512_unpackhi_epi16(a, b); }
  static T maddubs(T a, T b) { return _mm512_maddubs_epi16(a, b); }
  static T madd(T a, T b) { return _mm512_madd_epi16(a, b); }
  // (a vector-extension shift: GCC 12 warns on the intrinsic's undefined source operand)
  static T sra16_32(T a) { return reinterpret_cast<T>(reinterpret_cast<__v16si>(a) >> 16); }
  static T packs32(T a, T b) { return _mm512_packs_epi32(a, b); }
  static T packs16(T a, T b) { return _mm512_packs_epi16(a, b); }
#elif defined(__AVX2__)
  static T load(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(void* p, T v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void stream(void* p, T v) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v); }
  static T set16(int v) { return _mm256_set1_epi16(static_cast<short>(v)); }
  static T set32(int v) { return _mm256_set1_epi32(v); }
  static T set8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static T zero() { return _mm256_setzero_si256(); }
  static T add16(T a, T b) { return _mm256_add_epi16(a, b); }
  static T add32(T a, T b) { return _mm256_add_epi32(a, b); }
  static T xor_(T a, T b) { return _mm256_xor_si256(a, b); }
  static T lo8(T a, T b) { return _mm256_unpacklo_epi8(a, b); }
  static T hi8(T a, T b) { return _mm256_unpackhi_epi8(a, b); }
  static T lo16(T a, T b) { return _mm256_unpacklo_epi16(a, b); }
  static T hi16(T a, T b) { return _mm256_unpackhi_epi16(a, b); }
  static T maddubs(T a, T b) { return _mm256_maddubs_epi16(a, b); }
  static T madd(T a, T b) { return _mm256_madd_epi16(a, b); }
  static T sra16_32(T a) { return _mm256_srai_epi32(a, 16); }
  static T packs32(T a, T b) { return _mm256_packs_epi32(a, b); }
  static T packs16(T a, T b) { return _mm256_packs_epi16(a, b); }
#else
  static T load(const void* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void store(void* p, T v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static void stream(void* p, T v) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), v); }
  static T set16(int v) { return _mm_set1_epi16(static_cast<short>(v)); }
  static T set32(int v) { return _mm_set1_epi32(v); }
  static T set8(int v) { return _mm_set1_epi8(static_cast<char>(v)); }
  static T zero() { return _mm_setzero_si128(); }
  static T add16(T a, T b) { return _mm_add_epi16(a, b); }
  static T add32(T a, T b) { return _mm_add_epi32(a, b); }
  static T xor_(T a, T b) { return _mm_xor_si128(a, b); }
  static T lo8(T a, T b) { return _mm_unpacklo_epi8(a, b); }
  static T hi8(T a, T b) { return _mm_unpackhi_epi8(a, b); }
  static T lo16(T a, T b) { return _mm_unpacklo_epi16(a, b); }
  static T hi16(T a, T b) { return _mm_unpackhi_epi16(a, b); }
  static T maddubs(T a, T b) { return _mm_maddubs_epi16(a, b); }
  static T madd(T a, T b) { return _mm_madd_epi16(a, b); }
  static T sra16_32(T a) { return _mm_srai_epi32(a, 16); }
  static T packs32(T a, T b) { return _mm_packs_epi32(a, b); }
  static T packs16(T a, T b) { return _mm_packs_epi16(a, b); }
#endif
  static constexpr int lanes16 = bytes / 2;  // 16-bit lanes per vector
};

// acc + pmaddwd(a, w): two instructions, or one VNNI vpdpwssd (no saturation: the pairs'
// sums stay far below 2^31). The VNNI form is inline assembly so that the file needs no
// per-function target attributes; the assembler knows the instruction whatever -m flags.
struct MaddAdd {
  static V::T first(V::T a, V::T w) { return V::madd(a, w); }
  static V::T acc(V::T s, V::T a, V::T w) { return V::add32(s, V::madd(a, w)); }
};
#if defined(__AVX512BW__)
struct MaddVnni {
  static V::T first(V::T a, V::T w) { return V::madd(a, w); }
  static V::T acc(V::T s, V::T a, V::T w) {
#if defined(__AVX512VNNI__)
    return _mm512_dpwssd_epi32(s, a, w);
#else
    __asm__("vpdpwssd %2, %1, %0" : "+v"(s) : "v"(a), "v"(w));
    return s;
#endif
  }
};
#endif
#else
#define IMKERN_GAUSS_U8_SIMD 0
#endif

// A unit: V::bytes consecutive elements of a strip row (64 on AVX-512), the block both passes
// work on. Its ring slot holds its two rows' h - kBias as four vectors of (row 2m, row 2m + 1)
// 16-bit pairs, in the order the byte and word interleaves leave them.
#if IMKERN_GAUSS_U8_SIMD
constexpr int kUnit = V::bytes;
#else
constexpr int kUnit = 16;
#endif
constexpr int kUnitSlot = 2 * kUnit;  // int16 values per unit in a pair slot

// The horizontal taps as pmaddubsw terms: bytes at offsets a, b (in taps) times (wa, wb).
struct HTerm {
  int a, b, wa, wb;
};

// Mirrored taps whose side taps are at most 64 and centre at most 128: (kw + 1) / 2 terms of
// a tap and its mirror; else greedily, each term filled up to a weight of 128 from the next
// taps left (a tap over 127 goes into two terms).
inline std::vector<HTerm> plan_terms(const int32_t* k, int K) {
  std::vector<HTerm> t;
  bool sym = K % 2 == 1 && k[K / 2] <= 128;
  for (int j = 0; j < K / 2; ++j) sym = sym && k[j] == k[K - 1 - j] && k[j] <= 64;
  if (sym) {
    for (int j = 0; j < K / 2; ++j) t.push_back({j, K - 1 - j, k[j], k[j]});
    t.push_back({K / 2, K / 2, k[K / 2] / 2, k[K / 2] - k[K / 2] / 2});
    return t;
  }
  std::vector<int32_t> rem(k, k + K);
  int j = 0;
  while (true) {
    while (j < K && rem[j] == 0) ++j;
    if (j == K) break;
    HTerm h{j, j, std::min(rem[j], 127), 0};
    rem[j] -= h.wa;
    int i = j;
    while (i < K && rem[i] == 0) ++i;
    if (i < K) {
      h.b = i;
      h.wb = std::min({rem[i], 128 - h.wa, 127});
      rem[i] -= h.wb;
    }
    t.push_back(h);
  }
  if (t.empty()) t.push_back({0, 0, 0, 0});  // (the taps sum to 256: never)
  return t;
}

// The units that take streaming stores: [us, ue), whole lines of the row that the grid was
// made for (rows placed differently in their lines stream nothing: vrows checks).
struct UnitStream {
  int us = 0, ue = 0;
};

// Units of a strip row of n >= kUnit elements at o: without streaming, every kUnit from 0, the
// last one ending at n (overlapping the one before; both write the same values there). With
// streaming, the whole lines of stream_span (o + its begin: a line boundary) are the streamed
// units; the head before it and the tail after it by units of their own, the last of each
// ending at the span's begin or at n, so that no plain store reaches a streamed line.
inline int unit_positions(const uint8_t* o, int64_t n, bool stream, int64_t* pos, UnitStream& st) {
  const StreamSpan sp = stream ? stream_span<uint8_t, kUnit>(o, n) : StreamSpan{};
  int nu = 0;
  auto run = [&](int64_t x0, int64_t x1) {  // units covering [x0, x1): x1 - x0 = 0 or >= kUnit
    int64_t x = x0;
    for (; x + kUnit <= x1; x += kUnit) pos[nu++] = x;
    if (x < x1) pos[nu++] = x1 - kUnit;
  };
  run(0, sp.begin);
  st.us = nu;
  run(sp.begin, sp.end);
  st.ue = nu;
  run(sp.end, n);
  return nu;
}

#if IMKERN_GAUSS_U8_SIMD
using T = V::T;

// h - kBias of one row for the unit at q: lo and hi are the 16-bit halves, lane by lane
// (elements 0-7 and 8-15 of each 128-bit lane). w: the terms' byte weights as vectors.
template <int NT>
IMKERN_ALWAYS_INLINE inline void hunit(const uint8_t* q, const int64_t* oa, const int64_t* ob, const T* w, int n,
                                       T bias, T& lo, T& hi) {
  lo = hi = bias;
#pragma GCC unroll 4
  for (int i = 0; i < (NT > 0 ? NT : n); ++i) {
    const T a = V::load(q + oa[i]), b = V::load(q + ob[i]);
    lo = V::add16(lo, V::maddubs(V::lo8(a, b), w[i]));
    hi = V::add16(hi, V::maddubs(V::hi8(a, b), w[i]));
  }
}

// The pair slot of rows pa, pb (source bytes of the strip, with the taps' margins): every
// unit's four vectors of interleaved (row a, row b) values. hw: the terms' weight pairs as
// 16-bit values (wa | wb << 8); oa, ob: their byte offsets.
template <int NT>
void hpair(const uint8_t* pa, const uint8_t* pb, int16_t* slot, const int64_t* pos, int nu, const int64_t* oa,
           const int64_t* ob, const int16_t* hw, int nt) {
  constexpr int N = NT > 0 ? NT : 64;
  T w[N];
  int64_t a[N], b[N];
  const int n = NT > 0 ? NT : nt;
  for (int i = 0; i < n; ++i) w[i] = V::set16(hw[i]), a[i] = oa[i], b[i] = ob[i];
  const T bias = V::set16(-kBias);
  for (int u = 0; u < nu; ++u) {
    T alo, ahi, blo, bhi;
    hunit<NT>(pa + pos[u], a, b, w, n, bias, alo, ahi);
    hunit<NT>(pb + pos[u], a, b, w, n, bias, blo, bhi);
    int16_t* s = slot + static_cast<int64_t>(u) * kUnitSlot;
    V::store(s, V::lo16(alo, blo));
    V::store(s + V::lanes16, V::hi16(alo, blo));
    V::store(s + 2 * V::lanes16, V::lo16(ahi, bhi));
    V::store(s + 3 * V::lanes16, V::hi16(ahi, bhi));
  }
}

// Longer term lists (kw over ~100 taps, or uneven ones): the same sums, weights from memory.
void hpair_any(const uint8_t* pa, const uint8_t* pb, int16_t* slot, const int64_t* pos, int nu, const int64_t* oa,
               const int64_t* ob, const int16_t* hw, int nt) {
  const T bias = V::set16(-kBias);
  for (int u = 0; u < nu; ++u) {
    T alo = bias, ahi = bias, blo = bias, bhi = bias;
    for (int i = 0; i < nt; ++i) {
      const T w = V::set16(hw[i]);
      const T a0 = V::load(pa + pos[u] + oa[i]), a1 = V::load(pa + pos[u] + ob[i]);
      const T b0 = V::load(pb + pos[u] + oa[i]), b1 = V::load(pb + pos[u] + ob[i]);
      alo = V::add16(alo, V::maddubs(V::lo8(a0, a1), w));
      ahi = V::add16(ahi, V::maddubs(V::hi8(a0, a1), w));
      blo = V::add16(blo, V::maddubs(V::lo8(b0, b1), w));
      bhi = V::add16(bhi, V::maddubs(V::hi8(b0, b1), w));
    }
    int16_t* s = slot + static_cast<int64_t>(u) * kUnitSlot;
    V::store(s, V::lo16(alo, blo));
    V::store(s + V::lanes16, V::hi16(alo, blo));
    V::store(s + 2 * V::lanes16, V::lo16(ahi, bhi));
    V::store(s + 3 * V::lanes16, V::hi16(ahi, bhi));
  }
}

// The 32-bit sums of four vectors -> kUnit output bytes in order: the packs undo the
// interleaves (lane by lane), the shift and the xor apply the bias (see the file comment).
IMKERN_ALWAYS_INLINE inline T finish(const T* a, T x80) {
  const T w0 = V::packs32(V::sra16_32(a[0]), V::sra16_32(a[1]));
  const T w1 = V::packs32(V::sra16_32(a[2]), V::sra16_32(a[3]));
  return V::xor_(V::packs16(w0, w1), x80);
}

IMKERN_ALWAYS_INLINE inline void put(uint8_t* o, T v, bool stream) {
  if (stream) V::stream(o, v);
  else V::store(o, v);
}

// Output rows o0 (pair weights w0) and, with Two, o1 (w1) from the np pair slots P; the
// weights are (lo | hi << 16) int32 values. NP = 0: any count, weights from memory.
template <int NP, bool Two, class M>
void vrows(const int16_t* const* P, int np, const int32_t* w0, const int32_t* w1, uint8_t* o0, uint8_t* o1,
           const int64_t* pos, int nu, UnitStream st) {
  constexpr int N = NP > 0 ? NP : 1;
  // the streamed units only where this row (and o1) sits in its lines as the grid's row did
  const bool line_ok = st.ue > st.us && reinterpret_cast<uintptr_t>(o0 + pos[st.us]) % 64 == 0 &&
                       (!Two || reinterpret_cast<uintptr_t>(o1 + pos[st.us]) % 64 == 0);
  const int us = line_ok ? st.us : nu, ue = line_ok ? st.ue : nu;
  T W0[N], W1[N];
  const int16_t* R[N];
  if constexpr (NP > 0) {
    for (int p = 0; p < NP; ++p) W0[p] = V::set32(w0[p]), W1[p] = V::set32(w1[p]), R[p] = P[p];
  }
  auto wt0 = [&](int p) IMKERN_ALWAYS_INLINE { return NP > 0 ? W0[p] : V::set32(w0[p]); };
  auto wt1 = [&](int p) IMKERN_ALWAYS_INLINE { return NP > 0 ? W1[p] : V::set32(w1[p]); };
  auto row = [&](int p) IMKERN_ALWAYS_INLINE { return NP > 0 ? R[p] : P[p]; };
  const int n = NP > 0 ? NP : np;
  const T x80 = V::set8(0x80);
  for (int u = 0; u < nu; ++u) {
    const int64_t off = static_cast<int64_t>(u) * kUnitSlot;
    T a0[4], a1[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const T v = V::load(row(0) + off + j * V::lanes16);
      a0[j] = M::first(v, wt0(0));
      if constexpr (Two) a1[j] = M::first(v, wt1(0));
    }
#pragma GCC unroll 4
    for (int p = 1; p < n; ++p) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const T v = V::load(row(p) + off + j * V::lanes16);
        a0[j] = M::acc(a0[j], v, wt0(p));
        if constexpr (Two) a1[j] = M::acc(a1[j], v, wt1(p));
      }
    }
    const bool stream = u >= us && u < ue;
    put(o0 + pos[u], finish(a0, x80), stream);
    if constexpr (Two) put(o1 + pos[u], finish(a1, x80), stream);
  }
}

template <class M>
void vrows_k(const int16_t* const* P, int np, const int32_t* w0, const int32_t* w1, uint8_t* o0, uint8_t* o1,
             const int64_t* pos, int nu, UnitStream stream) {
#define IMKERN_V(N)                                                                           \
  if (o1) return vrows<N, true, M>(P, np, w0, w1, o0, o1, pos, nu, stream);                   \
  return vrows<N, false, M>(P, np, w0, w1, o0, o1, pos, nu, stream);
  switch (np) {
    case 1: IMKERN_V(1)
    case 2: IMKERN_V(2)
    case 3: IMKERN_V(3)
    case 4: IMKERN_V(4)
    default: IMKERN_V(0)
  }
#undef IMKERN_V
}
#endif

// Rows under one unit: the same values by scalar loops; the pair slot holds the two rows'
// values interleaved element by element.
inline void hpair_scalar(const uint8_t* pa, const uint8_t* pb, int16_t* slot, int64_t n, int64_t C, const int32_t* k,
                         int K) {
  for (int64_t e = 0; e < n; ++e) {
    int32_t ha = 0, hb = 0;
    for (int j = 0; j < K; ++j) {
      ha += k[j] * pa[e + j * C];
      hb += k[j] * pb[e + j * C];
    }
    slot[2 * e] = static_cast<int16_t>(ha - kBias);
    slot[2 * e + 1] = static_cast<int16_t>(hb - kBias);
  }
}

inline void vrow_scalar(const int16_t* const* P, int np, const int32_t* wa, const int32_t* wb, uint8_t* o, int64_t n) {
  for (int64_t e = 0; e < n; ++e) {
    int32_t s = 0;
    for (int p = 0; p < np; ++p) s += wa[p] * P[p][2 * e] + wb[p] * P[p][2 * e + 1];
    o[e] = static_cast<uint8_t>((s >> 16) + 128);
  }
}

inline int64_t floor_half(int64_t v) { return v >= 0 ? v / 2 : -((1 - v) / 2); }

}  // namespace

void gaussian_u8(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, const int32_t* ky, int kh,
                 const int32_t* kx, int kw, Border border, int cval) {
  const int64_t H = s.h, W = s.w, C = s.c;
  const int ay = kh / 2, ax = kw / 2;
  const int64_t left = ax, right = kw - 1 - ax;
  const int64_t rows = s.n * H;
  const int np = (kh + 1) / 2;  // pair slots an output row reads (kh odd)
  // Pair weights (lo: the pair's first row, hi: its second) for an output row whose first
  // source row is even (we*) or odd (wo*).
  std::vector<int32_t> wea(np), web(np), woa(np), wob(np);
  auto tap = [&](int i) { return i >= 0 && i < kh ? ky[i] : 0; };
  for (int p = 0; p < np; ++p) {
    wea[p] = tap(2 * p), web[p] = tap(2 * p + 1);
    woa[p] = tap(2 * p - 1), wob[p] = tap(2 * p);
  }
  const std::vector<HTerm> terms = plan_terms(kx, kw);
  const int nt = static_cast<int>(terms.size());
  std::vector<int64_t> oa(nt), ob(nt);
  for (int i = 0; i < nt; ++i) oa[i] = terms[i].a * C, ob[i] = terms[i].b * C;
#if IMKERN_GAUSS_U8_SIMD
  std::vector<int16_t> hw(nt);
  std::vector<int32_t> vwe(np), vwo(np);
  for (int i = 0; i < nt; ++i) hw[i] = static_cast<int16_t>(terms[i].wa | terms[i].wb << 8);
  for (int p = 0; p < np; ++p) {
    vwe[p] = static_cast<int32_t>(static_cast<uint32_t>(web[p]) << 16 | static_cast<uint32_t>(wea[p]));
    vwo[p] = static_cast<int32_t>(static_cast<uint32_t>(wob[p]) << 16 | static_cast<uint32_t>(woa[p]));
  }
#if defined(__AVX512BW__)
  const bool vnni = cpu_has(CpuFeature::avx512vnni);
#endif
#endif
  // Column strips: the ring (np pair slots: 4 np bytes per element) and the source rows in
  // flight (the pair being filtered and the pair prefetched four rows ahead: 4 bytes) take half
  // the L1 (4K RGB 5x5 on Zen 4: ~15% faster than a ring filling the L1), or half the L2 for
  // tall kernels whose strips would be narrower than 128 pixels that way. The last strip is
  // at least 128 pixels wide. Results never depend on the strips.
  const CpuParams& cp = params();
  const int64_t per_px = (4 * np + 4) * C;
  int64_t px = cp.strip_l1 / 2 / per_px;
  if (px < 128) px = cp.strip_l2 / 2 / per_px;
  px = std::max<int64_t>(64, px / 16 * 16);
  StripPlan plan = plan_strips_px<uint8_t>(dst, s, d, px);
  if (plan.sp < W) plan.merge = std::max<int64_t>(plan.merge, 128);
  const int64_t SP = plan.widest();
  const int64_t max_units = (SP * C + kUnit - 1) / kUnit + 2;
  // Slot stride: whole lines, and not a multiple of 4 KiB (the L1's 4K aliasing).
  int64_t stride = max_units * kUnitSlot;
  while ((stride * 2) % 4096 < 512 || (stride * 2) % 4096 > 3584) stride += 32;

  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    int16_t* ring = thread_scratch<int16_t>(0, static_cast<size_t>(np * stride) + 64);
    uint8_t* pad_a = thread_scratch<uint8_t>(1, static_cast<size_t>((left + SP + right) * C) + 64);
    uint8_t* pad_b = thread_scratch<uint8_t>(2, static_cast<size_t>((left + SP + right) * C) + 64);
    int64_t* pos = thread_scratch<int64_t>(3, static_cast<size_t>(max_units));
    std::vector<const int16_t*> P(np);
    for (int64_t x0 = 0, x1 = 0; x0 < W; x0 = x1) {
      x1 = x0 + (x0 == 0 ? plan.first : plan.sp);
      if (x1 > W || W - x1 < plan.merge) x1 = W;
      const int64_t n = (x1 - x0) * C;
      const bool vec = IMKERN_GAUSS_U8_SIMD && n >= kUnit;
      int nu = 0;
      UnitStream ust;
      if (vec) {
        // the unit grid: streaming, the lines of the chunk's first row
        nu = unit_positions(row_ptr<uint8_t>(dst, d, t0 / H, t0 % H) + x0 * C, n, plan.stream, pos, ust);
      }
      // Source row sy of image b for this strip: in place where the taps stay inside the
      // image, else a copy padded by the border rule (constant rows: all cval).
      auto source = [&](int64_t b, int64_t sy, uint8_t* pad) -> const uint8_t* {
        const int64_t yy = border_index(sy, H, border);
        const int64_t ahead = sy + 4;
        if (ahead >= 0 && ahead < H) prefetch_span(row_ptr<uint8_t>(src, s, b, ahead) + x0 * C, n);
        if (yy >= 0 && x0 - left >= 0 && x1 + right <= W) return row_ptr<uint8_t>(src, s, b, yy) + (x0 - left) * C;
        load_padded_segment<uint8_t, uint8_t>(yy < 0 ? nullptr : row_ptr<uint8_t>(src, s, b, yy), pad, W, C, x0, x1,
                                              left, right, border, static_cast<uint8_t>(cval));
        return pad;
      };
      auto make_pair = [&](int64_t b, int64_t m, int16_t* slot) {
        const uint8_t* pa = source(b, 2 * m, pad_a);
        const uint8_t* pb = source(b, 2 * m + 1, pad_b);
#if IMKERN_GAUSS_U8_SIMD
        if (vec) {
          switch (nt) {
            case 2: return hpair<2>(pa, pb, slot, pos, nu, oa.data(), ob.data(), hw.data(), nt);
            case 3: return hpair<3>(pa, pb, slot, pos, nu, oa.data(), ob.data(), hw.data(), nt);
            case 4: return hpair<4>(pa, pb, slot, pos, nu, oa.data(), ob.data(), hw.data(), nt);
            default:
              if (nt <= 64) return hpair<0>(pa, pb, slot, pos, nu, oa.data(), ob.data(), hw.data(), nt);
              return hpair_any(pa, pb, slot, pos, nu, oa.data(), ob.data(), hw.data(), nt);
          }
        }
#endif
        hpair_scalar(pa, pb, slot, n, C, kx, kw);
      };
      // The ring: pair m in slot m mod np, pairs [lo, hi) of image cur_b made.
      int64_t cur_b = -1, lo = 0, hi = 0;
      for (int64_t t = t0; t < t1;) {
        const int64_t b = t / H, y = t % H;
        const int64_t sy0 = y - ay, m0 = floor_half(sy0);
        const bool odd = sy0 - 2 * m0 == 1;
        const bool two = !odd && t + 1 < t1 && y + 1 < H;
        if (b != cur_b || m0 < lo || m0 > hi) cur_b = b, lo = hi = m0;
        for (; hi < m0 + np; ++hi) {
          int64_t slot = hi % np;
          if (slot < 0) slot += np;
          make_pair(b, hi, ring + slot * stride);
        }
        lo = m0;
        for (int p = 0; p < np; ++p) {
          int64_t slot = (m0 + p) % np;
          if (slot < 0) slot += np;
          P[p] = ring + slot * stride;
        }
        uint8_t* o0 = row_ptr<uint8_t>(dst, d, b, y) + x0 * C;
        uint8_t* o1 = two ? row_ptr<uint8_t>(dst, d, b, y + 1) + x0 * C : nullptr;
#if IMKERN_GAUSS_U8_SIMD
        if (vec) {
          const int32_t* w0 = odd ? vwo.data() : vwe.data();
#if defined(__AVX512BW__)
          if (vnni) vrows_k<MaddVnni>(P.data(), np, w0, vwo.data(), o0, o1, pos, nu, ust);
          else vrows_k<MaddAdd>(P.data(), np, w0, vwo.data(), o0, o1, pos, nu, ust);
#else
          vrows_k<MaddAdd>(P.data(), np, w0, vwo.data(), o0, o1, pos, nu, ust);
#endif
          t += two ? 2 : 1;
          continue;
        }
#endif
        vrow_scalar(P.data(), np, odd ? woa.data() : wea.data(), odd ? wob.data() : web.data(), o0, n);
        if (two) vrow_scalar(P.data(), np, woa.data(), wob.data(), o1, n);
        t += two ? 2 : 1;
      }
    }
    stream_fence();
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
