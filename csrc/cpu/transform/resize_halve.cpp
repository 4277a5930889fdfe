// The exact 2x shrink of resize (compiled per ISA): bilinear and area at exactly half the size
// in both axes (taps (0.5, 0.5) at 2i, 2i + 1; cv2.resize turns INTER_LINEAR at factor 2 into
// this average), float32, uint16 and uint8, in one pass with no buffer.
//
// Every output is the mean of a 2x2 block of the source rows r0 = 2y, r1 = 2y + 1:
// s = (r0[2x][c] + r1[2x][c]) + (r0[2x + 1][c] + r1[2x + 1][c]), in that order, finished per
// dtype (HalveOps):
//   float32: 0.25 s (the generic two passes give the same bits: 0.5 a + 0.5 b is 0.5 (a + b)
//     exactly);
//   uint16: s an exact int32 (the generic float sums are exact too: every product and sum is a
//     multiple of 1/4 below 2^17), s / 4 rounded to nearest-even: with s = 4q + r that is q for
//     r = 0, 1, q + (q & 1) for r = 2, q + 1 for r = 3, i.e. (s + 1 + ((s >> 2) & 1)) >> 2;
//   uint8: the fixed-point path's (weights Wy, Wx with 4 Wy Wx = 2^rshift, after a vertical
//     shift that loses nothing: exact_mean4_u8; area's 14-bit tables have one)
//     (Wy Wx s + 2^(rshift - 1)) >> rshift = (s + 2) >> 2 (round half up; at most 255).
// The same sums in the same order on every path and ISA level: the same bits everywhere, and
// those of the generic paths.
//
// halve_row, one template over the dtype's element ops (widen, add, finish and store): each
// vector of L outputs from e0 on reads the pair sums u[j] = (r0[j] + r1[j]) + (r0[j + C] +
// r1[j + C]) of a window of source elements (output x C + c is u[2 x C + c]), summed in
// registers from unaligned loads of the two rows (widened to int32 lanes for the integers), and
// gathers its lanes with one permute (AVX-512 vpermt2ps / vpermt2d of a 2L window; AVX2 vpermps
// of two vectors and a blend, or of two L windows, one per half of the lanes, where 2L is too
// short); per residue e0 % C a table of lane indices (HalvePlan); the scalar formula where no
// window fits (more channels than about L). Before those, for 2 to L channels, the same sums
// as two gathers of a grid of row-sum vectors r0 + r1 that consecutive blocks share (HalveGrid:
// half the loads); the row's last block one window that ends at the row's end (HalvePlan
// end_idx). (A first version summed a chunk of u into an L1 buffer, then permuted: 1.25x
// slower on Zen 4, 4K RGB: the reads stalled while the second pass ran.)
// Ahead of it, where a dtype has them, the pair sums (HalvePairs): the two rows summed first,
// then each output's two horizontal elements: float32 C = 1 the even and odd lanes of the row
// sums (vpermt2ps; AVX2 shufps), one add; float32 C = 3 on AVX2 the pair sums of every element
// from unaligned loads, 24 outputs picked from six vectors by vpermps and immediate blends
// (the grid's vblendvps are 3 uops on Intel: 4K -> 1080p RGB one thread 10.0 -> 7.7 ms there); uint16 / uint8 16-bit multiply-adds with ones
// (pmaddwd / pmaddubsw) of each row, C = 1 as loaded, else after one vpermt2w / vpermt2b
// (AVX-512BW, VBMI) of a window per row: half the loads and adds of the pair-sum windows;
// uint8 on AVX2 (no vpermb) with 2 to 8 channels where whole pixel pairs fill a 128-bit lane
// (C dividing 8: 8 outputs a lane; C dividing 6: 6 from 12 bytes), the pairs by one pshufb per
// lane (LanePairs; 4K -> 1080p RGB, one thread, 2.7 -> 1.8 ms, 1080p -> 540p 590 -> 210 us);
// on AVX-512BW the same for C dividing 8 on whole 64-byte loads (no two-source vpermb; 4K RGBA
// one thread 2.13-2.26 -> 1.78-1.89 ms).
// Outputs larger than the cache share are streamed, from the first 64-byte aligned output on.
// Bytes per output element sizeof(T) (4 + 1) (the input is read once); 4 adds.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/rows.hpp"
#include "common/small_buffer.hpp"
#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "transform/resize.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

#if defined(__AVX512F__)
constexpr int kHalveL = 16;
#elif defined(__AVX2__)
constexpr int kHalveL = 8;
#else
constexpr int kHalveL = 0;  // baseline: the scalar formula
#endif

// Whether the float table of one axis is the exact halving with taps (0.5, 0.5) at 2i, 2i + 1.
inline bool is_halving(const ResizeTable& t, int64_t src) {
  if (t.k != 2 || 2 * t.n != src) return false;
  const float* w = static_cast<const float*>(t.w);
  for (int64_t i = 0; i < t.n; ++i)
    if (t.start[i] != 2 * i || w[2 * i] != 0.5f || w[2 * i + 1] != 0.5f) return false;
  return true;
}

// Whether a uint8 fixed-point table is the exact halving with equal taps at 2i, 2i + 1 (w: the tap).
inline bool is_halving_fixed(const ResizeTable& t, int64_t src, int32_t& w) {
  if (t.k != 2 || 2 * t.n != src) return false;
  const int32_t* q = static_cast<const int32_t*>(t.w);
  w = q[0];
  for (int64_t i = 0; i < t.n; ++i)
    if (t.start[i] != 2 * i || q[2 * i] != w || q[2 * i + 1] != w) return false;
  return true;
}

// How each vector of L outputs gathers its pair sums, per residue c0 = e0 % C of its first
// output e0. With base = 2 e0 - c0 (the u index of output e0), output e0 + j is
// u[base + rel[j]], rel[j] = 2 j - (c0 + j) % C + c0 (increasing in j).
struct HalvePlan {
  static constexpr int L = kHalveL > 0 ? kHalveL : 1;
  // (the tables in place up to kC channels: the plans are built per call, and their eight heap
  // tables were ~40% of a small image's kernel call)
  static constexpr size_t kC = 16;
  // kind: 0 the scalar formula; 1 one window u[base, base + 2L); 2 two windows of L, at base
  // for the lower half of the lanes and at base + h1 for the upper half
  SmallBuffer<int8_t, kC> kind;
  SmallBuffer<int32_t, kC> h1;
  SmallBuffer<int32_t, kC * L> idx;  // [C][L]: kind 1 rel; kind 2 rel, minus h1 in the upper half
  // The row's last block, outputs [n - L, n) of a row of n: one window u[b, b + 2L) that ends
  // where the row does (b = 2n - C - 2L: its loads reach r[2n - 1]), end_idx its rel from b;
  // it writes again some outputs before it, with the same bits. (Instead of the scalar formula:
  // 224x224x3 uint16, single thread, AVX-512 14.7 -> 11.5 us, AVX2 21.9 -> 20.6 us.)
  bool end_ok = false;
  alignas(64) int32_t end_idx[L];

  HalvePlan(int64_t C, int64_t n) {
    if (kHalveL == 0) return;
    if (n >= L && 2 * n >= 2 * L + C) {
      end_ok = true;
      const int64_t b = 2 * n - C - 2 * L;
      for (int j = 0; j < L; ++j) {
        const int64_t o = n - L + j;
        end_idx[j] = static_cast<int32_t>(2 * o - o % C - b);  // in [1, 2L)
      }
    }
    kind.assign(static_cast<size_t>(C), 0);
    h1.assign(static_cast<size_t>(C), 0);
    idx.assign(static_cast<size_t>(C * L), 0);
    for (int64_t c0 = 0; c0 < C; ++c0) {
      int64_t rel[L];
      for (int j = 0; j < L; ++j) rel[j] = 2 * j - (c0 + j) % C + c0;
      int32_t* ix = idx.data() + c0 * L;
      if (rel[L - 1] < 2 * L) {
        kind[c0] = 1;
        for (int j = 0; j < L; ++j) ix[j] = static_cast<int32_t>(rel[j]);
      } else if (rel[L / 2 - 1] < L && rel[L - 1] - rel[L / 2] < L) {
        kind[c0] = 2;
        h1[c0] = static_cast<int32_t>(rel[L / 2]);
        for (int j = 0; j < L; ++j) ix[j] = static_cast<int32_t>(j < L / 2 ? rel[j] : rel[j] - rel[L / 2]);
      }
    }
  }
};

// 2 <= C <= L (AVX2 / AVX-512): the pair sums as the sum of two gathers of the row sums
// v = r0 + r1 on a grid of vectors G(k) = v[2 e + L k, 2 e + L k + L) that consecutive blocks
// share (each block loads two new ones: 4 loads instead of the 8 of the pair-sum windows, which
// split cache lines). Output e + j (pixel channel c) is v[p] + v[p + C], p = 2 (e + j) - c:
// v[p] is lane a[j] = p - 2 e + L of (G(-1), G(0), G(1)); v[p + C] lane b[j] = p - 2 e + C of
// (G(0), G(1), G(2)) (AVX-512: a two-source permute, and the lanes >= 2L (masks ma, mb) from
// the third vector; AVX2: three permutes and two blends, by bits 3 and 4 of the index). Per
// residue c0 = e % C.
struct HalveGrid {
  static constexpr int L = kHalveL > 0 ? kHalveL : 1;
  bool ok = false;
  alignas(64) int32_t ia[L * L], ib[L * L];  // [C][L] (C <= L: in place)
  uint16_t ma[L], mb[L];                     // lanes from G(1) / G(2) (AVX-512)

  explicit HalveGrid(int64_t C) {
    if (kHalveL == 0 || C < 2 || C > L) return;
    std::fill_n(ma, C, uint16_t(0));
    std::fill_n(mb, C, uint16_t(0));
    for (int64_t c0 = 0; c0 < C; ++c0)
      for (int j = 0; j < L; ++j) {
        const int64_t p = 2 * j - (c0 + j) % C, a = p + L, b = p + C;  // 1 <= a, b < 3L
        ia[c0 * L + j] = static_cast<int32_t>(a);
        ib[c0 * L + j] = static_cast<int32_t>(b);
        if (a >= 2 * L) ma[c0] = static_cast<uint16_t>(ma[c0] | (1u << j));
        if (b >= 2 * L) mb[c0] = static_cast<uint16_t>(mb[c0] | (1u << j));
      }
    ok = true;
  }
};

// ---- the element ops of each dtype ------------------------------------------------------------
// S: the lane of the exact sums; fin: the scalar finish (sum -> output); and with AVX2 / AVX-512:
// V, L lanes of S; wide: L elements from p, as V; add; put<Stream>: finish and store L outputs
// (streamed: p aligned to L sizeof(T) bytes).
template <typename T>
struct HalveOps;

template <>
struct HalveOps<float> {
  using S = float;
  static float fin(float s) { return 0.25f * s; }
#if defined(__AVX512F__)
  using V = __m512;
  static V wide(const float* p) { return _mm512_loadu_ps(p); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  template <bool Stream>
  static void put(float* p, V s) {
    const __m512 r = _mm512_mul_ps(s, _mm512_set1_ps(0.25f));
    if (Stream) _mm512_stream_ps(p, r);
    else _mm512_storeu_ps(p, r);
  }
#elif defined(__AVX2__)
  using V = __m256;
  static V wide(const float* p) { return _mm256_loadu_ps(p); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  template <bool Stream>
  static void put(float* p, V s) {
    const __m256 r = _mm256_mul_ps(s, _mm256_set1_ps(0.25f));
    if (Stream) _mm256_stream_ps(p, r);
    else _mm256_storeu_ps(p, r);
  }
#endif
};

template <>
struct HalveOps<uint16_t> {
  using S = int32_t;
  static uint16_t fin(int32_t s) { return static_cast<uint16_t>((s + 1 + ((s >> 2) & 1)) >> 2); }
  using V = simd::ivec;
#if defined(__AVX512F__)
  static V wide(const uint16_t* p) {
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V add(V a, V b) { return _mm512_add_epi32(a, b); }
  template <bool Stream>
  static void put(uint16_t* p, V s) {
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(s, 2), _mm512_set1_epi32(1));
    s = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(s, _mm512_set1_epi32(1)), odd), 2);
    const __m256i v = _mm512_cvtepi32_epi16(s);
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  }
#elif defined(__AVX2__)
  static V wide(const uint16_t* p) { return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static V add(V a, V b) { return _mm256_add_epi32(a, b); }
  template <bool Stream>
  static void put(uint16_t* p, V s) {
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(s, 2), _mm256_set1_epi32(1));
    s = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(1)), odd), 2);
    const __m128i v = _mm_packus_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    if (Stream) _mm_stream_si128(reinterpret_cast<__m128i*>(p), v);
    else _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
  }
#endif
};

template <>
struct HalveOps<uint8_t> {
  using S = int32_t;
  static uint8_t fin(int32_t s) { return static_cast<uint8_t>((s + 2) >> 2); }
  using V = simd::ivec;
#if defined(__AVX512F__)
  static V wide(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static V add(V a, V b) { return _mm512_add_epi32(a, b); }
  template <bool Stream>
  static void put(uint8_t* p, V s) {
    const __m128i v = _mm512_cvtepi32_epi8(_mm512_srli_epi32(_mm512_add_epi32(s, _mm512_set1_epi32(2)), 2));
    if (Stream) _mm_stream_si128(reinterpret_cast<__m128i*>(p), v);
    else _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
  }
#elif defined(__AVX2__)
  static V wide(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
  static V add(V a, V b) { return _mm256_add_epi32(a, b); }
  template <bool Stream>
  static void put(uint8_t* p, V s) {
    s = _mm256_srli_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(2)), 2);
    const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const __m128i v = _mm_packus_epi16(w16, w16);
    if (Stream) _mm_stream_si64(reinterpret_cast<long long*>(p), _mm_cvtsi128_si64(v));
    else _mm_storel_epi64(reinterpret_cast<__m128i*>(p), v);
  }
#endif
};

// The lane permutes of HalvePlan, for float and int32 lanes alike (moves only: the same bits).
using HalveIdx = simd::ivec;
#if defined(__AVX512F__)
inline HalveIdx load_idx(const int32_t* p) { return _mm512_load_si512(p); }
// kind 1: lanes of the window (a, b) of 2L sums
inline __m512 perm_win(__m512 a, HalveIdx i, __m512 b) { return _mm512_permutex2var_ps(a, i, b); }
inline __m512i perm_win(__m512i a, HalveIdx i, __m512i b) { return _mm512_permutex2var_epi32(a, i, b); }
// kind 2: the lower half of the lanes from a, the upper half from b
inline __m512 perm_halves(__m512 a, HalveIdx i, __m512 b) {
  return _mm512_mask_blend_ps(0xFF00, _mm512_permutexvar_ps(i, a), _mm512_permutexvar_ps(i, b));
}
inline __m512i perm_halves(__m512i a, HalveIdx i, __m512i b) {
  return _mm512_mask_blend_epi32(0xFF00, _mm512_permutexvar_epi32(i, a), _mm512_permutexvar_epi32(i, b));
}
// HalveGrid: lanes of (x, y, z) by indices < 48, the lanes of mask m (those >= 32) from z
template <typename V>
inline V perm3(V x, V y, V z, HalveIdx i, __mmask16 m) {
  if constexpr (std::is_same<V, __m512>::value) return _mm512_mask_permutexvar_ps(perm_win(x, i, y), m, i, z);
  else return _mm512_mask_permutexvar_epi32(perm_win(x, i, y), m, i, z);
}
#elif defined(__AVX2__)
inline HalveIdx load_idx(const int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
// kind 1: bit 3 of the index picks the second vector
inline __m256 perm_win(__m256 a, HalveIdx i, __m256 b) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, i), _mm256_permutevar8x32_ps(b, i),
                          _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
}
inline __m256i perm_win(__m256i a, HalveIdx i, __m256i b) {
  return _mm256_castps_si256(perm_win(_mm256_castsi256_ps(a), i, _mm256_castsi256_ps(b)));
}
inline __m256 perm_halves(__m256 a, HalveIdx i, __m256 b) {
  return _mm256_blend_ps(_mm256_permutevar8x32_ps(a, i), _mm256_permutevar8x32_ps(b, i), 0xF0);
}
inline __m256i perm_halves(__m256i a, HalveIdx i, __m256i b) {
  return _mm256_blend_epi32(_mm256_permutevar8x32_epi32(a, i), _mm256_permutevar8x32_epi32(b, i), 0xF0);
}
// HalveGrid: lanes of (x, y, z) by indices < 24 (bit 3 picks y, bit 4 z)
inline __m256 perm3(__m256 x, __m256 y, __m256 z, HalveIdx i, uint16_t) {
  const __m256 r = _mm256_blendv_ps(_mm256_permutevar8x32_ps(x, i), _mm256_permutevar8x32_ps(y, i),
                                    _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
  return _mm256_blendv_ps(r, _mm256_permutevar8x32_ps(z, i), _mm256_castsi256_ps(_mm256_slli_epi32(i, 27)));
}
inline __m256i perm3(__m256i x, __m256i y, __m256i z, HalveIdx i, uint16_t m) {
  return _mm256_castps_si256(
      perm3(_mm256_castsi256_ps(x), _mm256_castsi256_ps(y), _mm256_castsi256_ps(z), i, m));
}
#endif

// Outputs [e0, e1) of one row by the scalar formula, a pixel's channels at a time.
template <typename T>
inline void halve_scalar(const T* __restrict__ r0, const T* __restrict__ r1, int64_t C, int64_t e0, int64_t e1,
                         T* __restrict__ out) {
  using Op = HalveOps<T>;
  using S = typename Op::S;
  if (e0 >= e1) return;  // (no divisions for nothing: several calls a row)
  int64_t x = e0 / C, c = e0 % C;
  for (int64_t e = e0; e < e1; c = 0, ++x) {
    const int64_t n = std::min(C - c, e1 - e);
    const T* a0 = r0 + 2 * x * C + c;
    const T* a1 = r1 + 2 * x * C + c;
    for (int64_t i = 0; i < n; ++i) out[e + i] = Op::fin((S(a0[i]) + S(a1[i])) + (S(a0[i + C]) + S(a1[i + C])));
    e += n;
  }
}

// Outputs [e0, e1) of one row of n outputs (2n source elements) by the pair-sum windows.
// Stream: out is aligned to sizeof(T); plain stores up to the first output aligned for the
// streaming ones.
template <typename T, bool Stream>
inline void halve_row(const HalvePlan& p, const HalveGrid& g, const T* __restrict__ r0, const T* __restrict__ r1,
                      int64_t C, int64_t e0, int64_t e1, int64_t n, T* __restrict__ out) {
  if (e0 >= e1) return;
  int64_t e = e0;
#if defined(__AVX512F__) || defined(__AVX2__)
  using Op = HalveOps<T>;
  constexpr int L = kHalveL;
  if constexpr (Stream) {
    constexpr uintptr_t B = L * sizeof(T);
    const int64_t head = static_cast<int64_t>((B - reinterpret_cast<uintptr_t>(out + e) % B) % B / sizeof(T));
    halve_scalar(r0, r1, C, e, std::min(e1, e + head), out);
    e = std::min(e1, e + head);
  }
  const int64_t step = L % C;
  int64_t c0 = e % C;
  // the grid: G(-1) before the row's start is not read (no lane of a block at e = 0 takes it); a
  // block at 0 < e < L / 2 by the scalar formula
  if (g.ok && e > 0 && 2 * e < L && e + L <= e1 && 2 * e + 3 * L <= 2 * n) {
    halve_scalar(r0, r1, C, e, e + L, out);
    e += L;
    c0 = c0 + step >= C ? c0 + step - C : c0 + step;
  }
  if (g.ok && (e == 0 || 2 * e >= L)) {
    using V = typename Op::V;
    auto v = [&](int64_t j) { return Op::add(Op::wide(r0 + j), Op::wide(r1 + j)); };
    // (the tables' pointers in registers: out may alias them for the compiler)
    const int32_t* __restrict__ ta = g.ia;
    const int32_t* __restrict__ tb = g.ib;
    const uint16_t* __restrict__ tma = g.ma;
    const uint16_t* __restrict__ tmb = g.mb;
    V gm1 = e > 0 ? v(2 * e - L) : V(), g0 = v(2 * e);
    for (; 2 * e + 3 * L <= 2 * n && e + L <= e1; e += L) {
      const V g1 = v(2 * e + L), g2 = v(2 * e + 2 * L);
      const HalveIdx ia = load_idx(ta + c0 * L), ib = load_idx(tb + c0 * L);
      Op::template put<Stream>(out + e, Op::add(perm3(gm1, g0, g1, ia, tma[c0]), perm3(g0, g1, g2, ib, tmb[c0])));
      gm1 = g1;
      g0 = g2;
      c0 = c0 + step >= C ? c0 + step - C : c0 + step;
    }
  }
  // the windows read source elements up to base + 2L + C - 1 (base <= 2 e): within the row's 2n
  for (; 2 * e + 2 * L + C <= 2 * n && e + L <= e1; e += L) {
    const int k = p.kind[c0];
    if (k == 0) {
      halve_scalar(r0, r1, C, e, e + L, out);
    } else {
      const int64_t base = 2 * e - c0;
      auto u = [&](int64_t j) {
        return Op::add(Op::add(Op::wide(r0 + j), Op::wide(r1 + j)), Op::add(Op::wide(r0 + j + C), Op::wide(r1 + j + C)));
      };
      const HalveIdx i = load_idx(p.idx.data() + c0 * L);
      if (k == 1) Op::template put<Stream>(out + e, perm_win(u(base), i, u(base + L)));
      else Op::template put<Stream>(out + e, perm_halves(u(base), i, u(base + p.h1[c0])));
    }
    c0 = c0 + step >= C ? c0 + step - C : c0 + step;
  }
  // the row's last block (plain stores; not over outputs this call did not write)
  if (e < e1 && e1 == n && p.end_ok && n - L >= e0) {
    halve_scalar(r0, r1, C, e, std::max(e, n - L), out);
    auto u = [&](int64_t j) {
      return Op::add(Op::add(Op::wide(r0 + j), Op::wide(r1 + j)), Op::add(Op::wide(r0 + j + C), Op::wide(r1 + j + C)));
    };
    const int64_t base = 2 * n - C - 2 * L;
    Op::template put<false>(out + n - L, perm_win(u(base), load_idx(p.end_idx), u(base + L)));
    e = n;
  }
#else
  (void)p;
  (void)g;
  (void)n;
#endif
  halve_scalar(r0, r1, C, e, e1, out);
}

// ---- pair sums: the rows summed first -------------------------------------------------------
// Each writes whole blocks of outputs from e0 on, up to e1 at most, of a row of n outputs (2n
// source elements), and returns where it stopped (halve_row does the rest). Stream: out + e0
// is 64-byte aligned, and every block store is streamed.

// float32, C = 1: the even and odd lanes of the row sums r0 + r1 (the same sums in the same order).
template <bool Stream>
inline int64_t halve_pairs_f32_c1(const float* __restrict__ r0, const float* __restrict__ r1, int64_t e0, int64_t e1,
                                  float* __restrict__ out) {
  int64_t e = e0;
#if defined(__AVX512F__)
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
  for (; e + 16 <= e1; e += 16) {
    const __m512 a = _mm512_add_ps(_mm512_loadu_ps(r0 + 2 * e), _mm512_loadu_ps(r1 + 2 * e));
    const __m512 b = _mm512_add_ps(_mm512_loadu_ps(r0 + 2 * e + 16), _mm512_loadu_ps(r1 + 2 * e + 16));
    HalveOps<float>::put<Stream>(out + e, _mm512_add_ps(_mm512_permutex2var_ps(a, ev, b), _mm512_permutex2var_ps(a, od, b)));
  }
#elif defined(__AVX2__)
  for (; e + 8 <= e1; e += 8) {
    const __m256 a = _mm256_add_ps(_mm256_loadu_ps(r0 + 2 * e), _mm256_loadu_ps(r1 + 2 * e));
    const __m256 b = _mm256_add_ps(_mm256_loadu_ps(r0 + 2 * e + 8), _mm256_loadu_ps(r1 + 2 * e + 8));
    // per 128-bit lane: the even (odd) elements of a, then of b; the 64-bit pieces in order after
    const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xDD));
    HalveOps<float>::put<Stream>(out + e, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8)));
  }
#else
  (void)r0;
  (void)r1;
  (void)out;
  (void)e1;
#endif
  return e;
}

// float32, C = 3 (AVX2): the pair sums u[k] = (r0[k] + r1[k]) + (r0[k + 3] + r1[k + 3]) of
// every k (the same sums in the same order), as whole vectors of unaligned loads, then the
// outputs picked from them: output e + j (channel c = j % 3 from a pixel's first output e) is
// u[2 (e + j) - c]; 8 pixels (24 outputs, three vectors) from six vectors of u by eight vpermps
// and five immediate blends. Against the HalveGrid blocks (4 loads, 6 vpermps and 4 vblendvps
// for 8 outputs, port 5 bound on Intel, where vblendvps is 3 uops) twice the loads (L1 hits:
// the same lines) and a third of the shuffles. Blocks start on a pixel (e0 % 3 == 0), else
// nothing is done; their loads reach source element 2 e + 50.
template <bool Stream>
inline int64_t halve_pairs_f32_c3(const float* __restrict__ r0, const float* __restrict__ r1, int64_t e0,
                                  int64_t e1, int64_t n, float* __restrict__ out) {
  int64_t e = e0;
#if defined(__AVX2__) && !defined(__AVX512F__)
  if (e0 % 3 != 0) return e0;
  auto u = [&](int64_t j) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(r0 + j), _mm256_loadu_ps(r1 + j)),
                         _mm256_add_ps(_mm256_loadu_ps(r0 + j + 3), _mm256_loadu_ps(r1 + j + 3)));
  };
  // u indices of the 24 outputs, from the block's 2 e: 0 1 2 6 7 8 12 13 | 14 18 19 20 24 25 26
  // 30 | 31 32 36 37 38 42 43 44; each output vector's lanes by one index vector applied to
  // the two or three u vectors it spans
  const __m256i i0 = _mm256_setr_epi32(0, 1, 2, 6, 7, 0, 4, 5);  // U0 lanes 0-4, U1 5-7
  const __m256i i1 = _mm256_setr_epi32(6, 2, 3, 4, 0, 1, 2, 6);  // U1 lane 0, U2 1-3, U3 4-7
  const __m256i i2 = _mm256_setr_epi32(7, 0, 4, 5, 6, 2, 3, 4);  // U3 lane 0, U4 1-4, U5 5-7
  auto put = [&](int64_t at, __m256 v) { HalveOps<float>::put<Stream>(out + at, v); };
  for (; 2 * e + 51 <= 2 * n && e + 24 <= e1; e += 24) {
    const int64_t j = 2 * e;
    if constexpr (Stream) {
      // (streamed outputs: a source far larger than the caches) the three lines per row this
      // step reads, 2 KiB ahead: 4K -> 1080p, one thread, loaded Xeon, 8.2 -> 7.7 ms (AVX-512
      // 7.4); the hardware prefetchers alone left the loads waiting
      const int64_t q = j + 512;
      for (int64_t k = 0; k < 48; k += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(r0 + q + k), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(r1 + q + k), _MM_HINT_T0);
      }
    }
    const __m256 U0 = u(j), U1 = u(j + 8), U2 = u(j + 16), U3 = u(j + 24), U4 = u(j + 32), U5 = u(j + 40);
    put(e, _mm256_blend_ps(_mm256_permutevar8x32_ps(U0, i0), _mm256_permutevar8x32_ps(U1, i0), 0xE0));
    put(e + 8, _mm256_blend_ps(_mm256_blend_ps(_mm256_permutevar8x32_ps(U1, i1), _mm256_permutevar8x32_ps(U2, i1), 0x0E),
                               _mm256_permutevar8x32_ps(U3, i1), 0xF0));
    put(e + 16, _mm256_blend_ps(_mm256_blend_ps(_mm256_permutevar8x32_ps(U3, i2), _mm256_permutevar8x32_ps(U4, i2), 0x1E),
                                _mm256_permutevar8x32_ps(U5, i2), 0xE0));
  }
#else
  (void)r0;
  (void)r1;
  (void)e1;
  (void)n;
  (void)out;
#endif
  return e;
}

// uint16 / uint8: 16-bit multiply-adds of the rows (AVX-512BW / AVX2): each output's two
// horizontal source elements made adjacent (C = 1: already; else one vpermt2w / vpermt2b of a
// window per row), then pmaddwd with ones (uint16, biased by -32768 to fit the signed lanes:
// +131072 after the two rows) or pmaddubsw with ones (uint8, the sums fit int16), the rows
// added. Per residue c0 of a block's first output: 64 bytes of lane indices (lane 2j: rel[j],
// 2j + 1: rel[j] + C, rel as in HalvePlan); ok only where every residue's window fits 64
// (uint16) / 128 (uint8) elements.
template <typename T>
struct PairPlan {
  static constexpr int W = sizeof(T) == 2 ? 16 : 32;  // outputs per block (one zmm of pairs)
  static constexpr int Win = 4 * W;                   // window elements
  static constexpr int64_t kMaxC = 40;  // past this a residue's window no longer fits
  bool ok = false;
  alignas(64) uint8_t idx[kMaxC * 64];  // [C][64]
  explicit PairPlan(int64_t C) {
    if (C > kMaxC) return;
    std::memset(idx, 0, static_cast<size_t>(C * 64));
    for (int64_t c0 = 0; c0 < C; ++c0)
      for (int j = 0; j < W; ++j) {
        const int64_t rel = 2 * j - (c0 + j) % C + c0;
        if (rel + C >= Win) return;
        if constexpr (sizeof(T) == 2) {
          int16_t* q = reinterpret_cast<int16_t*>(idx + c0 * 64);
          q[2 * j] = static_cast<int16_t>(rel);
          q[2 * j + 1] = static_cast<int16_t>(rel + C);
        } else {
          idx[c0 * 64 + 2 * j] = static_cast<uint8_t>(rel);
          idx[c0 * 64 + 2 * j + 1] = static_cast<uint8_t>(rel + C);
        }
      }
    ok = true;
  }
};

// uint8, C = 2, 4, 8 (AVX2 and AVX-512BW) and C = 3, 6 (AVX2, no vpermb): pshufb inside each 128-bit lane puts every
// output's two horizontal bytes side by side, pmaddubsw with ones sums them, the rows are added in
// 16-bit lanes, (s + 2) >> 2 (the sums as in halve_pairs_u8_c1: exact). A lane holds whole pixel
// pairs: for C dividing 8, its 16 source bytes give 8 outputs (32 outputs per step, as C = 1);
// for C dividing 6, 12 of its bytes give 6 outputs, so 4 lanes make 24 outputs, put together by
// a pshufb and a vpermd (and with streaming stores, four such groups make three aligned vectors).
// Blocks start on a pixel (e0 % C == 0), where the caller's start is one; else nothing is done.
struct LanePairs {
  int k = 0;  // outputs per lane: 8 (C divides 8), 6 (C divides 6); 0: not this path
  alignas(64) uint8_t ctl[64];  // the 16-byte lane control, four times
  explicit LanePairs(int64_t C) {
    std::memset(ctl, 0x80, sizeof(ctl));
    if (C < 2 || C > 8) return;
    k = 8 % C == 0 ? 8 : 6 % C == 0 ? 6 : 0;
    for (int j = 0; j < k; ++j) {
      const int src = static_cast<int>(2 * C * (j / C) + j % C);  // the output's first byte in the lane
      for (int h = 0; h < 4; ++h) {
        ctl[16 * h + 2 * j] = static_cast<uint8_t>(src);
        ctl[16 * h + 2 * j + 1] = static_cast<uint8_t>(src + C);
      }
    }
  }
};

// uint16, C = 2, 3, 4 (AVX2: no vpermw): LanePairs for 16-bit elements. pshufb inside each
// 128-bit lane puts every output's two horizontal elements side by side, pmaddwd with ones sums
// them (biased as in halve_pairs_u16); a lane holds whole pixel pairs: C dividing 4, its 8
// elements give 4 outputs (16 per step, as C = 1); C = 3, 6 of them give 3 outputs (the fourth
// int32 lane is ignored), so 4 lanes make 12 outputs, put together by a pshufb and a vpermd.
// Blocks start on a pixel (e0 % C == 0), where the caller's start is one; else nothing is done.
struct LanePairs16 {
  int k = 0;  // outputs per lane: 4 (C divides 4), 3 (C = 3); 0: not this path
  alignas(64) uint8_t ctl[32];  // the 16-byte lane control, twice
  explicit LanePairs16(int64_t C) {
    std::memset(ctl, 0x80, sizeof(ctl));
    if (C < 2 || C > 4) return;
    k = 4 % C == 0 ? 4 : 3;
    for (int j = 0; j < k; ++j) {
      const int src = static_cast<int>(2 * C * (j / C) + j % C);  // the output's first element in the lane
      for (int h = 0; h < 2; ++h) {
        ctl[16 * h + 4 * j] = static_cast<uint8_t>(2 * src);
        ctl[16 * h + 4 * j + 1] = static_cast<uint8_t>(2 * src + 1);
        ctl[16 * h + 4 * j + 2] = static_cast<uint8_t>(2 * (src + C));
        ctl[16 * h + 4 * j + 3] = static_cast<uint8_t>(2 * (src + C) + 1);
      }
    }
  }
};

#if defined(__AVX512BW__)
// uint16, AVX-512BW: Perm false for C = 1 (the pairs are adjacent)
template <bool Perm, bool Stream>
inline int64_t halve_pairs_u16(const PairPlan<uint16_t>& p, const uint16_t* __restrict__ r0,
                               const uint16_t* __restrict__ r1, int64_t C, int64_t e0, int64_t e1, int64_t n,
                               uint16_t* __restrict__ out) {
  const __m512i bias = _mm512_set1_epi16(static_cast<int16_t>(0x8000));
  const __m512i ones = _mm512_set1_epi16(1);
  const int64_t step = 16 % C;
  int64_t c0 = Perm ? e0 % C : 0, e = e0;
  // the rounded outputs [e, e + 16) as int32 lanes (c0 = e % C); reads 2 e - c0 + [0, Win)
  constexpr int64_t Win = Perm ? 64 : 32;
  auto block = [&](int64_t e1, int64_t c) {
    const int64_t base = 2 * e1 - c;
    auto row = [&](const uint16_t* r) {
      __m512i v;
      if constexpr (Perm)
        v = _mm512_permutex2var_epi16(_mm512_loadu_si512(r + base), _mm512_load_si512(p.idx + c * 64),
                                      _mm512_loadu_si512(r + base + 32));
      else
        v = _mm512_loadu_si512(r + base);
      return _mm512_madd_epi16(_mm512_xor_si512(v, bias), ones);
    };
    // the biased sum s - 131072 (bit 2 is s's), then (s + 1 + ((s >> 2) & 1)) >> 2
    const __m512i sb = _mm512_add_epi32(row(r0), row(r1));
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(sb, 2), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(sb, _mm512_set1_epi32(131073)), odd), 2);
  };
  auto next = [&](int64_t c) { return c + step >= C ? c + step - C : c + step; };
  // two blocks per step, packed in-lane and the qwords put in order
  const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  for (; 2 * e + 32 + Win <= 2 * n && e + 32 <= e1; e += 32) {
    const int64_t c1 = Perm ? next(c0) : 0;
    const __m512i v = _mm512_permutexvar_epi64(order, _mm512_packus_epi32(block(e, c0), block(e + 16, c1)));
    if (Stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(out + e), v);
    else _mm512_storeu_si512(out + e, v);
    if constexpr (Perm) c0 = next(c1);
  }
  for (; 2 * e + Win <= 2 * n && e + 16 <= e1; e += 16) {
    const __m256i v = _mm512_cvtepi32_epi16(block(e, c0));
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + e), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + e), v);
    if constexpr (Perm) c0 = next(c0);
  }
  return e;
}

// uint8, C > 1: vpermt2b (VBMI); no lambdas (they would not inherit the target attribute)
template <bool Stream>
__attribute__((target("avx512vbmi"))) int64_t halve_pairs_u8(const PairPlan<uint8_t>& p,
                                                              const uint8_t* __restrict__ r0,
                                                              const uint8_t* __restrict__ r1, int64_t C, int64_t e0,
                                                              int64_t e1, int64_t n, uint8_t* __restrict__ out) {
  const __m512i ones = _mm512_set1_epi8(1);
  const int64_t step = 32 % C;
  int64_t c0 = e0 % C, e = e0;
  for (; 2 * e + 128 <= 2 * n && e + 32 <= e1; e += 32) {
    const int64_t base = 2 * e - c0;
    const __m512i ix = _mm512_load_si512(p.idx + c0 * 64);
    const __m512i s0 = _mm512_maddubs_epi16(
        _mm512_permutex2var_epi8(_mm512_loadu_si512(r0 + base), ix, _mm512_loadu_si512(r0 + base + 64)), ones);
    const __m512i s1 = _mm512_maddubs_epi16(
        _mm512_permutex2var_epi8(_mm512_loadu_si512(r1 + base), ix, _mm512_loadu_si512(r1 + base + 64)), ones);
    const __m512i s = _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(s0, s1), _mm512_set1_epi16(2)), 2);
    const __m256i v = _mm512_cvtepi16_epi8(s);
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + e), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + e), v);
    c0 = c0 + step >= C ? c0 + step - C : c0 + step;
  }
  return e;
}

// uint8, C = 1 (AVX-512BW alone)
template <bool Stream>
inline int64_t halve_pairs_u8_c1(const uint8_t* __restrict__ r0, const uint8_t* __restrict__ r1, int64_t e0,
                                 int64_t e1, uint8_t* __restrict__ out) {
  const __m512i ones = _mm512_set1_epi8(1);
  int64_t e = e0;
  for (; e + 32 <= e1; e += 32) {
    const __m512i s0 = _mm512_maddubs_epi16(_mm512_loadu_si512(r0 + 2 * e), ones);
    const __m512i s1 = _mm512_maddubs_epi16(_mm512_loadu_si512(r1 + 2 * e), ones);
    const __m256i v =
        _mm512_cvtepi16_epi8(_mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(s0, s1), _mm512_set1_epi16(2)), 2));
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + e), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + e), v);
  }
  return e;
}

// uint8, C dividing 8 (AVX-512BW; LanePairs): one pshufb of a whole 64-byte load per row for 32
// outputs, where the vpermb path needs two loads and a two-source permute; blocks on a pixel.
template <bool Stream>
inline int64_t halve_pairs_u8_lanes(const LanePairs& lp, const uint8_t* __restrict__ r0,
                                    const uint8_t* __restrict__ r1, int64_t C, int64_t e0, int64_t e1, int64_t,
                                    uint8_t* __restrict__ out) {
  int64_t e = e0;
  if (lp.k != 8 || e0 % C != 0) return e0;
  const __m512i ctl = _mm512_load_si512(lp.ctl), ones = _mm512_set1_epi8(1);
  auto blk = [&](int64_t j) {  // 32 outputs (16-bit, in-lane order) of source bytes [j, j + 64)
    const __m512i s0 = _mm512_maddubs_epi16(_mm512_shuffle_epi8(_mm512_loadu_si512(r0 + j), ctl), ones);
    const __m512i s1 = _mm512_maddubs_epi16(_mm512_shuffle_epi8(_mm512_loadu_si512(r1 + j), ctl), ones);
    return _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(s0, s1), _mm512_set1_epi16(2)), 2);
  };
  const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  for (; e + 64 <= e1; e += 64) {
    const __m512i v = _mm512_permutexvar_epi64(order, _mm512_packus_epi16(blk(2 * e), blk(2 * e + 64)));
    if (Stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(out + e), v);
    else _mm512_storeu_si512(out + e, v);
  }
  return e;
}
#elif defined(__AVX2__)
// AVX2, C = 1 only: uint16, 16 outputs per step
template <bool Stream>
inline int64_t halve_pairs_u16_c1(const uint16_t* __restrict__ r0, const uint16_t* __restrict__ r1, int64_t e0,
                                  int64_t e1, uint16_t* __restrict__ out) {
  const __m256i bias = _mm256_set1_epi16(static_cast<int16_t>(0x8000));
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t e = e0;
  auto blk = [&](int64_t j) {
    auto row = [&](const uint16_t* r) {
      return _mm256_madd_epi16(_mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + j)), bias), ones);
    };
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(row(r0), row(r1)), _mm256_set1_epi32(131072));
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(s, 2), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(1)), odd), 2);
  };
  for (; e + 16 <= e1; e += 16) {
    const __m256i v = _mm256_permute4x64_epi64(_mm256_packus_epi32(blk(2 * e), blk(2 * e + 16)), 0xD8);
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + e), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + e), v);
  }
  return e;
}
// uint8, 32 outputs per step
template <bool Stream>
inline int64_t halve_pairs_u8_c1(const uint8_t* __restrict__ r0, const uint8_t* __restrict__ r1, int64_t e0,
                                 int64_t e1, uint8_t* __restrict__ out) {
  const __m256i ones = _mm256_set1_epi8(1);
  int64_t e = e0;
  auto blk = [&](int64_t j) {
    auto row = [&](const uint8_t* r) {
      return _mm256_maddubs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + j)), ones);
    };
    return _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(row(r0), row(r1)), _mm256_set1_epi16(2)), 2);
  };
  for (; e + 32 <= e1; e += 32) {
    const __m256i v = _mm256_permute4x64_epi64(_mm256_packus_epi16(blk(2 * e), blk(2 * e + 32)), 0xD8);
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + e), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + e), v);
  }
  return e;
}

// The two 128-bit lanes' source windows of a row: lane 0 from r + a, lane 1 from r + b (one
// load where they are adjacent)
template <typename T>
inline __m256i lane_window(const T* __restrict__ r, int64_t a, int64_t b) {
  constexpr int64_t lane = 16 / sizeof(T);
  if (a + lane == b) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + a));
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + a))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + b)), 1);
}

// The lane pairs of one element type (uint8: LanePairs, uint16: LanePairs16): sums(r0, r1, a,
// b, ctl), the rounded outputs of the pixel pairs in the two lanes' source windows
// (lane_window); packus, their narrowing to T; the counts in outputs: step, one vector (two
// lanes of whole = 8 / 4 outputs, C dividing whole); group, four lanes of 6 / 3 (C dividing 6 /
// C = 3) in the low 24 bytes, whose loads reach source element j + reach (j its first).
template <typename T>
struct LaneOps {
  using Plan = std::conditional_t<sizeof(T) == 1, LanePairs, LanePairs16>;
  static constexpr int whole = 8 / sizeof(T);
  static constexpr int64_t step = 32 / sizeof(T), group = 24 / sizeof(T), reach = 52 / sizeof(T);
  static __m256i sums(const T* __restrict__ r0, const T* __restrict__ r1, int64_t a, int64_t b, __m256i ctl);
  static __m256i packus(__m256i x, __m256i y);
};

// uint8: 16-bit lanes, (s + 2) >> 2
template <>
inline __m256i LaneOps<uint8_t>::sums(const uint8_t* __restrict__ r0, const uint8_t* __restrict__ r1, int64_t a,
                                      int64_t b, __m256i ctl) {
  const __m256i ones = _mm256_set1_epi8(1);
  auto row = [&](const uint8_t* r) {
    return _mm256_maddubs_epi16(_mm256_shuffle_epi8(lane_window(r, a, b), ctl), ones);
  };
  return _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(row(r0), row(r1)), _mm256_set1_epi16(2)), 2);
}
template <>
inline __m256i LaneOps<uint8_t>::packus(__m256i x, __m256i y) {
  return _mm256_packus_epi16(x, y);
}

// uint16: int32 lanes (C = 3: lanes 3 and 7 unused)
template <>
inline __m256i LaneOps<uint16_t>::sums(const uint16_t* __restrict__ r0, const uint16_t* __restrict__ r1, int64_t a,
                                       int64_t b, __m256i ctl) {
  const __m256i bias = _mm256_set1_epi16(static_cast<int16_t>(0x8000));
  const __m256i ones = _mm256_set1_epi16(1);
  auto row = [&](const uint16_t* r) {
    return _mm256_madd_epi16(_mm256_shuffle_epi8(_mm256_xor_si256(lane_window(r, a, b), bias), ctl), ones);
  };
  // the biased sum s - 131072 (bit 2 is s's), then (s + 1 + ((s >> 2) & 1)) >> 2
  const __m256i sb = _mm256_add_epi32(row(r0), row(r1));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(sb, 2), _mm256_set1_epi32(1));
  return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(sb, _mm256_set1_epi32(131073)), odd), 2);
}
template <>
inline __m256i LaneOps<uint16_t>::packus(__m256i x, __m256i y) {
  return _mm256_packus_epi32(x, y);
}

// One group: outputs [e, e + G) of source elements j = 2 e .. j + 2 G (G = group: 24 uint8,
// 12 uint16), in the low 24 bytes (qwords 0-2). A's lanes hold outputs e, e + G / 2 (sources
// j, j + G), B's e + G / 4, e + 3 G / 4 (j + G / 2, j + 3 G / 2): after packus each lane has
// G / 2 consecutive outputs.
template <typename T>
inline __m256i lane_group(const T* __restrict__ r0, const T* __restrict__ r1, int64_t j, __m256i ctl) {
  using O = LaneOps<T>;
  constexpr int64_t G = O::group;
  const __m256i A = O::sums(r0, r1, j, j + G, ctl), B = O::sums(r0, r1, j + G / 2, j + 3 * G / 2, ctl);
  const __m256i pack = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1, 0, 1, 2, 3, 4, 5, 8, 9,
                                        10, 11, 12, 13, -1, -1, -1, -1);
  return _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(O::packus(A, B), pack),
                                     _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7));
}

// uint8 and uint16 on AVX2 (LanePairs, LanePairs16)
template <typename T, bool Stream>
inline int64_t halve_pairs_lanes(const typename LaneOps<T>::Plan& lp, const T* __restrict__ r0,
                                 const T* __restrict__ r1, int64_t C, int64_t e0, int64_t e1, int64_t n,
                                 T* __restrict__ out) {
  using O = LaneOps<T>;
  constexpr int64_t V = O::step, G = O::group;
  int64_t e = e0;
  if (lp.k == 0 || e0 % C != 0) return e0;
  const __m256i ctl = _mm256_load_si256(reinterpret_cast<const __m256i*>(lp.ctl));
  auto put = [&](int64_t at, __m256i v) {
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + at), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + at), v);
  };
  if (lp.k == O::whole) {
    for (; e + V <= e1; e += V)
      put(e, _mm256_permute4x64_epi64(O::packus(O::sums(r0, r1, 2 * e, 2 * e + V / 2, ctl),
                                                O::sums(r0, r1, 2 * e + V, 2 * e + 3 * V / 2, ctl)),
                                      0xD8));
    return e;
  }
  // four groups in three whole vectors (qwords: x0 x1 x2 | y0 y1 y2 | z0 z1 z2 | w0 w1 w2)
  for (; 2 * e + 6 * G + O::reach <= 2 * n && e + 4 * G <= e1; e += 4 * G) {
    const __m256i x = lane_group(r0, r1, 2 * e, ctl), y = lane_group(r0, r1, 2 * e + 2 * G, ctl);
    const __m256i z = lane_group(r0, r1, 2 * e + 4 * G, ctl), w = lane_group(r0, r1, 2 * e + 6 * G, ctl);
    put(e, _mm256_blend_epi32(x, _mm256_permute4x64_epi64(y, 0x00), 0xC0));
    put(e + V, _mm256_blend_epi32(_mm256_permute4x64_epi64(y, 0xF9), _mm256_permute4x64_epi64(z, 0x40), 0xF0));
    put(e + 2 * V, _mm256_blend_epi32(_mm256_permute4x64_epi64(z, 0x02), _mm256_permute4x64_epi64(w, 0x90), 0xFC));
  }
  // plain stores: one group a step, the 32-byte store's last V - G outputs rewritten by the next
  if (!Stream)
    for (; 2 * e + O::reach <= 2 * n && e + V <= e1; e += G) put(e, lane_group(r0, r1, 2 * e, ctl));
  return e;
}
#endif

#if defined(__AVX512BW__)
inline bool has_vbmi() {
  static const bool yes = cpu_has(CpuFeature::avx512vbmi);
  return yes;
}
#endif

// The pair sums a dtype has, per row: run<Stream>(r0, r1, C, e0, e1, n, out) writes outputs
// from e0 on (up to e1 at most, of a row of n) and returns where it stopped.
template <typename T>
struct HalvePairs {
  PairPlan<T> plan;
  LanePairs lanes;
  LanePairs16 lanes16;
  explicit HalvePairs(int64_t C) : plan(C), lanes(sizeof(T) == 1 ? C : 0), lanes16(sizeof(T) == 2 ? C : 0) {}
  // The first output of a row's streamed part, from h, the first one on a 64-byte line: whole
  // lines further where the blocks must start on a pixel (AVX2 uint8, C = 3, 6: 64 = 1 mod 3).
  int64_t stream_head(int64_t C, int64_t h) const {
#if defined(__AVX2__) && !defined(__AVX512BW__)
    constexpr int64_t line = 64 / sizeof(T);
    if (lanes.k == 6 || lanes16.k > 0)
      for (int64_t k = 0; k < C; ++k)
        if ((h + k * line) % C == 0) return h + k * line;
#endif
    (void)C;
    return h;
  }
  template <bool Stream>
  int64_t run(const T* r0, const T* r1, int64_t C, int64_t e0, int64_t e1, int64_t n, T* out) const {
#if defined(__AVX512BW__)
    if constexpr (sizeof(T) == 2) {
      if (C == 1) return halve_pairs_u16<false, Stream>(plan, r0, r1, C, e0, e1, n, out);
      if (plan.ok) return halve_pairs_u16<true, Stream>(plan, r0, r1, C, e0, e1, n, out);
    } else {
      if (C == 1) return halve_pairs_u8_c1<Stream>(r0, r1, e0, e1, out);
      // C dividing 8: the lane pairs, the vpermb blocks for the rest (or all, off a pixel)
      const int64_t e = halve_pairs_u8_lanes<Stream>(lanes, r0, r1, C, e0, e1, n, out);
      if (plan.ok && has_vbmi()) return halve_pairs_u8<Stream>(plan, r0, r1, C, e, e1, n, out);
      return e;
    }
#elif defined(__AVX2__)
    if (C == 1) {
      if constexpr (sizeof(T) == 2) return halve_pairs_u16_c1<Stream>(r0, r1, e0, e1, out);
      else return halve_pairs_u8_c1<Stream>(r0, r1, e0, e1, out);
    }
    if constexpr (sizeof(T) == 1) return halve_pairs_lanes<T, Stream>(lanes, r0, r1, C, e0, e1, n, out);
    else return halve_pairs_lanes<T, Stream>(lanes16, r0, r1, C, e0, e1, n, out);
#else
    (void)r0;
    (void)r1;
    (void)C;
    (void)e1;
    (void)out;
#endif
    (void)n;
    return e0;
  }
};

template <>
struct HalvePairs<float> {
  explicit HalvePairs(int64_t) {}
  // AVX2, C = 3: the streamed part from a pixel (blocks start on one), whole lines after h
  int64_t stream_head(int64_t C, int64_t h) const {
#if defined(__AVX2__) && !defined(__AVX512F__)
    if (C == 3)
      for (int64_t k = 0; k < C; ++k)
        if ((h + 16 * k) % C == 0) return h + 16 * k;
#endif
    (void)C;
    return h;
  }
  template <bool Stream>
  int64_t run(const float* r0, const float* r1, int64_t C, int64_t e0, int64_t e1, int64_t n, float* out) const {
    if (C == 3) return halve_pairs_f32_c3<Stream>(r0, r1, e0, e1, n, out);
    return C == 1 ? halve_pairs_f32_c1<Stream>(r0, r1, e0, e1, out) : e0;
  }
};

// Whether the one pass is faster than the generic uint8 paths: where its pair sums apply
// (AVX-512BW or AVX2, C = 1; AVX-512 VBMI, C up to about 40; AVX2, C = 2, 3, 4, 6, 8). Elsewhere the int32-lane permutes
// are slower than the generic path's pshufb / vpermb windows (1080p RGB 0.73 vs 0.58 of cv2).
inline bool u8_halve_fast(int64_t C) {
#if defined(__AVX512BW__)
  return C == 1 || LanePairs(C).k == 8 || (has_vbmi() && PairPlan<uint8_t>(C).ok);
#elif defined(__AVX2__)
  return C == 1 || LanePairs(C).k > 0;
#else
  (void)C;
  return false;
#endif
}

template <typename T>
void halve_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d) {
  const int64_t C = s.c, DWC = d.w * C;
  const int64_t rows = d.n * d.h;
  const HalvePlan plan(C, DWC);
  const HalveGrid grid(C);
  const HalvePairs<T> pairs(C);
  const bool stream_big = 2 * static_cast<int64_t>(sizeof(T)) * (s.n * s.h * s.w * C + rows * DWC) >
                          params().stream_bytes;
  // Outputs [e0, e1) of a row (plain stores), from the vector blocks of a window [w0, w1) of the
  // row written to a stack buffer: w0 a whole pixel, so the plans' residues hold; w1 the row's
  // end or a block boundary, so the last block (planned for rows of DWC) is only used at the end.
  constexpr int64_t kBuf = 256;
  auto via_buffer = [&](const T* r0, const T* r1, T* o, int64_t e0, int64_t e1) {
    if (e0 >= e1) return;
    const int64_t L = std::max(kHalveL, 1);
    const int64_t w0 = e0 == 0 ? 0 : std::max<int64_t>(0, std::min(e0, DWC - L - C)) / C * C;
    const int64_t w1 = e1 == DWC ? DWC : std::min(DWC, w0 + (e1 - w0 + L - 1) / L * L);
    if (w1 - w0 > kBuf) {
      halve_row<T, false>(plan, grid, r0, r1, C, e0, e1, DWC, o);
      return;
    }
    alignas(64) T buf[kBuf];
    const T* q0 = r0 + 2 * w0;
    const T* q1 = r1 + 2 * w0;
    const int64_t n = DWC - w0;
    halve_row<T, false>(plan, grid, q0, q1, C, pairs.template run<false>(q0, q1, C, 0, w1 - w0, n, buf), w1 - w0, n,
                        buf);
    std::memcpy(o + e0, buf + (e0 - w0), static_cast<size_t>(e1 - e0) * sizeof(T));
  };
  parallel_for(0, rows, rows_grain(rows, 2 * s.w * C + DWC), [&](int64_t t0, int64_t t1) {
    bool streamed = false;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const T* r0 = row_ptr<T>(src, s, b, 2 * y);
      const T* r1 = row_ptr<T>(src, s, b, 2 * y + 1);
      T* o = row_ptr<T>(dst, d, b, y);
      const uintptr_t a = reinterpret_cast<uintptr_t>(o);
      if (stream_big && kHalveL > 0 && a % sizeof(T) == 0) {
        // streaming stores on whole 64-byte lines only (a line written by both kinds is slow):
        // plain ones up to the first, and from the last line the vector blocks cannot fill
        // (their windows read up to C / 2 source pixels past the block's own)
        constexpr int64_t line = 64 / sizeof(T);
        const int64_t head =
            std::min<int64_t>(DWC, pairs.stream_head(C, static_cast<int64_t>((64 - a % 64) % 64 / sizeof(T))));
        const int64_t body = head + std::max<int64_t>(0, DWC - (C + 1) / 2 - head) / line * line;
        // the head [0, head) and the tail [body, DWC) by the vector blocks into a buffer, then
        // copied (too short for the blocks in place: the scalar formula on up to a line and a
        // half per row, 1080p gray float32 192 -> 151 us against 151 unstreamed)
        via_buffer(r0, r1, o, 0, head);
        halve_row<T, true>(plan, grid, r0, r1, C, pairs.template run<true>(r0, r1, C, head, body, DWC, o), body, DWC, o);
        via_buffer(r0, r1, o, body, DWC);
        streamed = true;
      } else {
        halve_row<T, false>(plan, grid, r0, r1, C, pairs.template run<false>(r0, r1, C, 0, DWC, DWC, o), DWC, DWC, o);
      }
    }
    if (streamed) stream_fence();
  });
}

}  // namespace

template <typename T>
bool resize_halve(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                  const ResizeTable& tx, int shift) {
  if constexpr (std::is_same<T, uint8_t>::value) {
    const int rshift = ty.bits + tx.bits - shift;
    int32_t qy = 0, qx = 0;
    if (!(is_halving_fixed(ty, s.h, qy) && is_halving_fixed(tx, s.w, qx) && exact_mean4_u8(shift, rshift, qy, qx) &&
          u8_halve_fast(s.c)))
      return false;
  } else {
    (void)shift;
    if (!(is_halving(ty, s.h) && is_halving(tx, s.w))) return false;
  }
  halve_impl<T>(src, s, dst, d);
  return true;
}

template bool resize_halve<float>(const void*, const ImageDesc&, void*, const ImageDesc&, const ResizeTable&,
                                  const ResizeTable&, int);
template bool resize_halve<uint16_t>(const void*, const ImageDesc&, void*, const ImageDesc&, const ResizeTable&,
                                     const ResizeTable&, int);
template bool resize_halve<uint8_t>(const void*, const ImageDesc&, void*, const ImageDesc&, const ResizeTable&,
                                    const ResizeTable&, int);

}  // namespace IMKERN_ISA
}  // namespace imkern
