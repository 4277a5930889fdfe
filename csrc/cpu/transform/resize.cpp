// Separable resize driven by host-built coefficient tables (compiled per ISA).
//
// Algorithm: every output row is computed on its own (threads split the output rows):
//   1. vertical pass: the ky source rows of the row's window are combined into one row of
//      accumulators at the source width (contiguous, SIMD: ky multiply-adds per element);
//   2. horizontal pass: each output element sums kx accumulators of its window (gathers
//      through a per-call index row; kx multiply-adds per output element), then rounds and
//      saturates.
// Vertical first when the height shrinks or stays (the common case): the gathering pass
// runs on output rows only. When the height grows, horizontal first into a ring of ky
// rows (each source row resized horizontally once), then the vertical sums.
// uint8: int32 arithmetic on fixed-point weights (exact; the vertical sums are shifted by
// `shift` so the horizontal sums cannot overflow), the same integer formula as the CUDA
// kernel, so both give the same bits. uint16/float32: float32; float64: float64.
// float32 / uint16 (resize_f32_vfirst / resize_f32_hfirst): the horizontal taps of any channel
// count as lane permutes of a window of the source row (a plan per call: each block of one
// vector of outputs and the first element of its window), the vertical-first order in column
// chunks whose sums stay in L1, the horizontal-first vertical sums fused with the store;
// outputs larger than the cache share are streamed (blocks placed where the rows align).
// Tables that repeat along the row (2x, 3x, 1.5x, ...) are read from their first period, and
// whole periods run with its index and weight vectors (hperm_periods); when the height grows,
// consecutive output rows with the same window (2x: rows 2i + 1, 2i + 2) are summed in one
// pass over the ring (vsum_out2_f32); integer upscales (2x, 4x) sum each phase's pixels with
// broadcast weights and interleave the pixels (hphase). Same values and order: the
// same bits.
// uint8 horizontal first: consecutive output rows with one window and mirrored weights (2x:
// rows 2i + 1, 2i + 2) are summed together from sums and differences of the mirrored ring
// rows (vsum2_u8: half the int32 multiplies, the same integers); its horizontal pass runs whole
// periods of short-period tables (2x) with the period's shuffles and weights in registers and
// the windows at fixed offsets from one moving source pointer (U8Hpass::run_periods).
// Where the tables' weights share power-of-two factors (cv2's bilinear and bicubic at 2x) and
// the height grows, the ring holds each horizontal sum as two 16-bit digits (pmaddubsw of the
// window bytes with digit weights) and the vertical sums multiply by pmaddwd (one uop) instead
// of vpmulld (two on Intel cores): split_plan; the same integers.
// Exactly half the size with taps (0.5, 0.5) on both axes (bilinear, area), float32, uint16
// and uint8: the 2x2 mean in one pass, with the generic paths' bits (resize_halve.cpp).
// uint8 with two equal taps on both axes and the row's windows F pixels apart (cv2's bilinear at
// an exact 4x shrink): the 2x2 means at that stride from only the two source rows of each output
// row, with the generic paths' bits (resize_decimate.cpp).
// Bytes per output pixel ~ C * sizeof(T) * (ky * src_w / dst_w + 1); MACs per output pixel
// C * (ky * src_w / dst_w + kx).
#include <algorithm>
#include <cstring>

#include "imkern/dispatch.hpp"
#include "imkern/parallel.hpp"
#include "imkern/transform.hpp"
#include "common/copy_bytes.hpp"
#include "common/rows.hpp"
#include "common/vops.hpp"
#include "transform/resize.hpp"

namespace imkern {
namespace IMKERN_ISA {

namespace {

template <typename T> struct RzAcc { using type = float; };
template <> struct RzAcc<uint8_t> { using type = int32_t; };
template <> struct RzAcc<double> { using type = double; };

// a + w x for the float sums (tap 0's product, then one of these per further tap), scalar and
// vector alike: fused where the ISA has FMA (the permute blocks' _mm*_fmadd_ps), else a
// product and a sum. Written out rather than left to -ffp-contract, so the scalar heads and
// tails of a row give the vector body's bits (GCC contracted some loops and not others).
inline float fmadd_f32(float w, float x, float a) {
#if defined(__FMA__)
  return __builtin_fmaf(w, x, a);
#else
  return a + w * x;
#endif
}
inline simd::vec_t<float> fmadd_f32(float w, simd::vec_t<float> x, simd::vec_t<float> a) {
#if defined(__AVX512F__)
  static_assert(sizeof(simd::vec_t<float>) == 64, "AVX-512 float vectors");
  const __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(w), reinterpret_cast<__m512>(x), reinterpret_cast<__m512>(a));
  simd::vec_t<float> o;
  std::memcpy(&o, &r, sizeof(o));
  return o;
#elif defined(__FMA__) && defined(__AVX2__)
  static_assert(sizeof(simd::vec_t<float>) == 32, "AVX2 float vectors");
  const __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(w), reinterpret_cast<__m256>(x), reinterpret_cast<__m256>(a));
  simd::vec_t<float> o;
  std::memcpy(&o, &r, sizeof(o));
  return o;
#else
  return a + w * x;
#endif
}

// The accumulation step of the per-pixel horizontal passes of the vertical-first order
// (hpassK, hpass_dyn): float sums fused as above (whether they or the permutes run depends on
// the plan, so on the output's alignment: they must give the permutes' bits), integer and
// double ones a product and a sum. (The horizontal-first order's hrow runs for whole rows
// where there is no plan, whatever the alignment: unchanged, its chain of adds is shorter.)
template <typename A>
inline A madd_acc(A w, A x, A a) {
  if constexpr (std::is_same<A, float>::value) return fmadd_f32(w, x, a);
  else return a + w * x;
}
#if defined(__SSE4_1__)
inline __m128 fmadd_ps128(__m128 w, __m128 x, __m128 a) {
#if defined(__FMA__)
  return _mm_fmadd_ps(w, x, a);
#else
  return _mm_add_ps(a, _mm_mul_ps(w, x));
#endif
}
#endif

// Round (uint8: fixed point shifted right by rshift, half up) and saturate a row of sums.
template <typename T, typename A>
inline void store_out(const A* __restrict__ acc, T* __restrict__ out, int64_t n, int rshift) {
  if constexpr (std::is_same<T, uint8_t>::value) {
    const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
    for (int64_t e = 0; e < n; ++e) {
      const int32_t v = (acc[e] + half) >> rshift;
      out[e] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
    }
  } else {
    store_row<T, A>(acc, out, n);
  }
}


// The horizontal pass with explicit gathers (GCC's cost model does not emit them): whole
// vectors of output elements, stored rounded and saturated; returns how many were done
// (the rest goes through the scalar loops). Same arithmetic as the scalar path: int32
// products and sums for uint8 (exact), float multiply then add for the others (the scalar
// loop's order; no fused multiply-add, so every ISA level gives the same bits).
template <typename T, typename A>
inline int64_t hpass_simd(const A* v, const int32_t* ip, const A* wp, int kx, int64_t C, int64_t n, int rshift,
                          T* out) {
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (std::is_same<A, int32_t>::value || (std::is_same<A, float>::value && !std::is_same<T, float>::value) ||
                std::is_same<T, float>::value) {
#if defined(__AVX512F__)
    constexpr int L = 16;
#else
    constexpr int L = 8;
#endif
    int64_t e = 0;
    const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
    for (; e + L <= n; e += L) {
#if defined(__AVX512F__)
      const __m512i id = _mm512_loadu_si512(ip + e);
      if constexpr (std::is_same<A, int32_t>::value) {
        __m512i a = _mm512_mullo_epi32(_mm512_loadu_si512(wp + e), _mm512_i32gather_epi32(id, v, 4));
        for (int k = 1; k < kx; ++k) {
          const __m512i ik = _mm512_add_epi32(id, _mm512_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm512_add_epi32(a, _mm512_mullo_epi32(_mm512_loadu_si512(wp + k * n + e), _mm512_i32gather_epi32(ik, v, 4)));
        }
        a = _mm512_srai_epi32(_mm512_add_epi32(a, _mm512_set1_epi32(half)), rshift);
        a = _mm512_min_epi32(_mm512_max_epi32(a, _mm512_setzero_si512()), _mm512_set1_epi32(255));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + e), _mm512_cvtepi32_epi8(a));
      } else {
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(wp + e), _mm512_i32gather_ps(id, v, 4));
        for (int k = 1; k < kx; ++k) {
          const __m512i ik = _mm512_add_epi32(id, _mm512_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(wp + k * n + e), _mm512_i32gather_ps(ik, v, 4)));
        }
        simd::vec_t<float> av;
        std::memcpy(&av, &a, sizeof(av));
        store_vec<T, float>(out + e, av);
      }
#else
      const __m256i id = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip + e));
      if constexpr (std::is_same<A, int32_t>::value) {
        const int* vi = reinterpret_cast<const int*>(v);
        __m256i a = _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + e)),
                                       _mm256_i32gather_epi32(vi, id, 4));
        for (int k = 1; k < kx; ++k) {
          const __m256i ik = _mm256_add_epi32(id, _mm256_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + k * n + e)),
                                                     _mm256_i32gather_epi32(vi, ik, 4)));
        }
        a = _mm256_srai_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(half)), rshift);
        a = _mm256_min_epi32(_mm256_max_epi32(a, _mm256_setzero_si256()), _mm256_set1_epi32(255));
        const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + e), _mm_packus_epi16(w16, w16));
      } else {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(wp + e), _mm256_i32gather_ps(v, id, 4));
        for (int k = 1; k < kx; ++k) {
          const __m256i ik = _mm256_add_epi32(id, _mm256_set1_epi32(static_cast<int32_t>(k * C)));
          a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(wp + k * n + e), _mm256_i32gather_ps(v, ik, 4)));
        }
        simd::vec_t<float> av;
        std::memcpy(&av, &a, sizeof(av));
        store_vec<T, float>(out + e, av);
      }
#endif
    }
    return e;
  }
#endif
  return 0;
}

// ---- float sums (float32, uint16): horizontal taps as lane permutes ------------------------
// Output elements in blocks of L (one vector; element e = x C + c reads the source elements
// ip[e] + k C, k < kx). Each block's taps lie in a window of NW vectors of the source row that
// starts at the block's base (found once per call, when the plan is built; -1: the taps spread
// wider, the block takes the scalar formula), so every tap is a lane permute of the window
// (AVX-512: vpermt2ps, two and a blend for NW = 4; AVX2: two vpermps and a blend) instead of a
// gather or a load per pixel, for any channel count. Sums: tap 0's product, then one fused
// multiply-add per further tap (the scalar formula: the same products, rounded once per tap).
constexpr int kPermL = simd::kBytes >= 32 ? simd::kBytes / 4 : 0;  // float lanes (AVX2 and up only)

struct PermPlan {
  int nw = 0;                    // window vectors (2 or 4); 0: too few blocks fit, no plan
  int64_t off = 0;               // blocks start at off + b kPermL (off < kPermL)
  aligned_vector<int32_t> base;  // per block of kPermL output elements: the window's first element
  // per block: 1 when tap 0's elements lie in one vector from base and every tap's vector at
  // base + k C lies in the row: each tap is then one permute of its own vector
  std::vector<uint8_t> narrow;

  // Windows of 2 vectors, else 4 on AVX-512 (shrinking by about 2, three channels); a plan
  // only when at least 7 blocks in 8 fit. off_: the first block's start (outputs aligned for
  // streaming stores; the elements before it take the scalar formula).
  bool build(const int32_t* ip, int kx, int64_t C, int64_t SWC, int64_t n, int64_t off_ = 0) {
    nw = 0;
    off = 0;
    per = 0;
    fast = false;
    df = 0;
    C_ = C;
    SWC_ = SWC;
    if (kPermL == 0 || kx > 8 || off_ < 0 || off_ >= kPermL) return false;
    const int64_t L = std::max(kPermL, 1), nb = (n - off_) / L;
    if (nb <= 0) return false;
    off = off_;
    ip += off;
#if defined(__AVX512F__)
    constexpr int max_nw = 4;
#else
    // 4-vector windows cost four vpermps and three blends per tap on AVX2: measured on Zen 4,
    // 4K -> 1080p bicubic, 1.2x slower than the per-pixel loads for uint16, 5% faster for float32
    constexpr int max_nw = 2;
#endif
    for (int w : {2, 4}) {
      if (w > max_nw) break;
      const int64_t win = w * L;
      if (SWC < win) break;
      base.assign(static_cast<size_t>(nb), -1);
      narrow.assign(static_cast<size_t>(nb), 0);
      int64_t fit = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int64_t lo = INT64_MAX, hi = -1;
        for (int64_t e = b * L; e < b * L + L; ++e) {
          lo = std::min<int64_t>(lo, ip[e]);
          hi = std::max<int64_t>(hi, ip[e] + (kx - 1) * C);
        }
        const int64_t bs = std::min(lo, SWC - win);
        if (hi - bs < win) {
          base[b] = static_cast<int32_t>(bs);
          ++fit;
#if !defined(__AVX512F__)
          // (AVX2 only: at AVX-512, vpermt2ps of the 2-vector window measured 2-3% faster)
          int64_t hi0 = -1;
          for (int64_t e = b * L; e < b * L + L; ++e) hi0 = std::max<int64_t>(hi0, ip[e]);
          narrow[b] = hi0 - bs < L && bs + (kx - 1) * C + L <= SWC;
#endif
        }
      }
      if (8 * fit >= 7 * nb) {
        nw = w;
        return true;
      }
    }
    off = 0;
    return false;
  }

  // Tables that repeat along the row (rational factors with a short period: 2x every 3
  // blocks of three channels) in blocks per_lo .. per_hi - 1 (away from the edges' clamped
  // taps): block b >= per_lo + per reads the weights and the window-relative indices of
  // block per_lo + (b - per_lo) % per, which stay in L1, instead of a table row as long as
  // the output row (4K: five 46 KB rows read from L2 per source row). The same values, so
  // the same bits. per = 0: no period.
  int64_t per_lo = 0, per = 0, per_hi = 0;
  void find_period(const int32_t* ip, const float* wp, int kx, int64_t ws) {
    per = 0;
    if (nw == 0) return;
    const int64_t L = std::max(kPermL, 1), nb = static_cast<int64_t>(base.size());
    const int64_t lo = 4;
    // (and before the last blocks whose windows are pushed back into the row: 4x gray has ~6)
    int64_t hi = nb - 4;
    while (hi > lo && base[hi - 1] == SWC_ - nw * L) --hi;
    auto same = [&](int64_t a, int64_t b) {
      if ((base[a] < 0) != (base[b] < 0) || narrow[a] != narrow[b]) return false;
      if (base[a] < 0) return true;  // the scalar formula reads the block's own entries
      const int64_t ea = off + a * L, eb = off + b * L;
      for (int64_t i = 0; i < L; ++i)
        if (ip[ea + i] - base[a] != ip[eb + i] - base[b]) return false;
      for (int k = 0; k < kx; ++k)
        if (std::memcmp(wp + k * ws + ea, wp + k * ws + eb, static_cast<size_t>(L) * sizeof(float)) != 0) return false;
      return true;
    };
    for (int64_t p = 1; p <= 32 && lo + 4 * p <= hi; ++p) {
      bool ok = true;
      for (int64_t b = lo + p; b < hi && ok; ++b) ok = same(b, b - p);
      if (ok) {
        per_lo = lo;
        per = p;
        per_hi = hi;
        fill_period(ip, wp, kx, ws);
        return;
      }
    }
  }

  // The first period's tables as vectors for hperm_periods: prel [per][kx][L] the lane
  // indices of each tap (AVX-512: into the block's 2- or 4-vector window, rel + k C; AVX2:
  // into the one vector at base + k C, rel for every tap), pw [per][kx][L] the weights.
  // fast: every block of the period has a window (AVX2: a narrow one).
  aligned_vector<int32_t> prel;
  aligned_vector<float> pw;
  bool fast = false;
  void fill_period(const int32_t* ip, const float* wp, int kx, int64_t ws) {
    const int64_t L = std::max(kPermL, 1);
    fast = true;
    prel.assign(static_cast<size_t>(per * kx * L), 0);
    pw.assign(static_cast<size_t>(per * kx * L), 0.f);
    for (int64_t j = 0; j < per; ++j) {
      const int64_t b = per_lo + j, e0 = off + b * L;
      if (base[b] < 0) fast = false;
#if defined(__AVX2__) && !defined(__AVX512F__)
      if (!narrow[b]) fast = false;
#endif
      for (int k = 0; k < kx; ++k)
        for (int64_t i = 0; i < L; ++i) {
          int32_t r = ip[e0 + i] - base[b];
#if defined(__AVX512F__)
          r += static_cast<int32_t>(k * C_);
#endif
          prel[(j * kx + k) * L + i] = r;
          pw[(j * kx + k) * L + i] = wp[k * ws + e0 + i];
        }
    }
  }
  int64_t C_ = 1, SWC_ = 0;  // the channel count and the source row's elements (set by build)

  // Integer upscales (2x, 4x: tables that repeat exactly; 1 or 2 channels 2x only) on AVX2
  // (hphase; CpuParams::resize_phases): output pixels x in [xlo, xhi) read, at tap k, source
  // pixel (x + ds) / df + k with weights that depend on the phase (x + ds) % df only
  // (pwph [df][kx]): the widest such range around the row's middle (the whole row but its
  // ends), found from the tables; used where the permute plan's periodic blocks lie in it
  // (4 channels at 2x have no plan: hrow, whose unfused sums give other bits). df = 0: none.
  static constexpr int kPhaseMax = 8;
  int df = 0;
  int64_t ds = 0, xlo = 0, xhi = 0;
  float pwph[kPhaseMax][8] = {};
  void find_phases([[maybe_unused]] const int32_t* ip, [[maybe_unused]] const float* wp, [[maybe_unused]] int kx,
                   [[maybe_unused]] int64_t ws, [[maybe_unused]] int64_t DWC) {
    df = 0;
#if defined(__AVX2__) && !defined(__AVX512F__)
    const int64_t C = C_, DW = DWC / C;
    // (bilinear: two permutes per 8 outputs cost less than the copies: 1080p -> 4K RGB float32
    // on Zen 3, 3.0 -> 3.4 us per row)
    if (C > 4 || kx < 3 || kx > 8 || DW < 64) return;
    const int64_t xm = DW / 2, p0 = ip[xm * C] / C;
    for (int f = 2; f <= kPhaseMax; ++f) {
      if (C <= 2 && f != 2) break;  // (1 and 2 channels: only the zip of two phase rows)
      for (int64_t r = 0; r < f; ++r) {
        const int64_t s = p0 * f + r - xm;  // (xm + s) / f = p0
        // the weights of pixels xm .. xm + f - 1 by phase; then pixel x fits when its
        // indices and weights are those of its phase
        for (int64_t x = xm; x < xm + f; ++x)
          for (int k = 0; k < kx; ++k) pwph[(x + s) % f][k] = wp[k * ws + x * C];
        auto fits = [&](int64_t x) {
          if (x + s < 0) return false;
          const int64_t q = (x + s) / f, ph = (x + s) % f;
          for (int64_t c = 0; c < C; ++c) {
            if (ip[x * C + c] != q * C + c) return false;
            for (int k = 0; k < kx; ++k)
              if (std::memcmp(&wp[k * ws + x * C + c], &pwph[ph][k], sizeof(float)) != 0) return false;
          }
          return true;
        };
        int64_t lo = xm, hi = xm;
        while (lo > 0 && fits(lo - 1)) --lo;
        while (hi < DW && fits(hi)) ++hi;
        // the whole row but its ends (the tables' clamped taps); else not an integer upscale
        // (3x: weights that agree by chance over a stretch)
        if (lo > 2 * kx * f || hi < DW - 2 * kx * f) continue;
        df = f;
        ds = s;
        xlo = lo;
        xhi = hi;
        return;
      }
    }
#endif
  }

  // Integer shrinks on AVX2 (hdec2; CpuParams::resize_phases): 2x with 1 to 4 channels, 3x and
  // 4x with 3 or 4 (factor dF). The
  // permute plan has no windows for them (the taps of 8 outputs span more than two vectors)
  // but for two taps and one channel, where hdec2 needs fewer shuffles; found, it replaces the
  // plan (nw = 0). Output
  // pixels x in [dlo, dhi) read, at tap k, source pixel dF x + dds + k with the weights dw[k]
  // (the same for every such pixel): the widest such range around the row's middle, found
  // from the tables; the whole row but its ends, else none (dec false).
  bool dec = false;
  int64_t dF = 2, dds = 0, dlo = 0, dhi = 0;
  float dw[8] = {};
  void find_dec([[maybe_unused]] const int32_t* ip, [[maybe_unused]] const float* wp, [[maybe_unused]] int kx,
                 [[maybe_unused]] int64_t ws, [[maybe_unused]] int64_t DWC) {
    dec = false;
#if defined(__AVX2__) && !defined(__AVX512F__)
    const int64_t C = C_, DW = DWC / C;
    if (C < 1 || C > 4 || kx < 1 || kx > 8 || DW < 32) return;
    const int64_t xm = DW / 2;
    // 1 and 2 channels at 2x only (their lane splits); 3 and 4 channels at 2x, 3x, 4x (a pixel
    // per 4-lane vector, or two per vector for 4 channels at 2x)
    for (int64_t F = 2; F <= (C <= 2 ? 2 : 4); ++F) {
      const int64_t s0 = ip[xm * C] / C - F * xm;
      for (int k = 0; k < kx; ++k) dw[k] = wp[k * ws + xm * C];
      auto fits = [&](int64_t x) {
        for (int64_t c = 0; c < C; ++c) {
          if (ip[x * C + c] != (F * x + s0) * C + c) return false;
          for (int k = 0; k < kx; ++k)
            if (std::memcmp(&wp[k * ws + x * C + c], &dw[k], sizeof(float)) != 0) return false;
        }
        return true;
      };
      int64_t lo = xm, hi = xm;
      while (lo > 0 && fits(lo - 1)) --lo;
      while (hi < DW && fits(hi)) ++hi;
      if (lo > 2 * kx + 4 || hi < DW - 2 * kx - 4) continue;
      // (the loads of a block's last taps reach one pixel past them: keep it in the row)
      while (hi > lo && (F * hi + s0 + kx + 1) * C > SWC_) --hi;
      if (hi - lo < 16) continue;
      dec = true;
      nw = 0;
      off = 0;
      per = 0;
      dF = F;
      dds = s0;
      dlo = lo;
      dhi = hi;
      return;
    }
#endif
  }
};

// One vector of float sums stored as T (rounded and saturated for uint16), streamed where
// Stream and the destination is aligned; on AVX2 uint16 streams too (8 lanes, 16 bytes: the
// common store_vec_stream streams floats only there), with store_vec's rounding and
// saturation (NaN -> 0).
template <typename T, bool Stream>
inline void put_out(T* p, simd::vec_t<float> v) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (Stream && std::is_same<T, uint16_t>::value) {
    if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
      const __m256 c = _mm256_min_ps(_mm256_set1_ps(65535.f), reinterpret_cast<__m256>(v));
      const __m256i i = _mm256_cvtps_epi32(c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(p),
                       _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1)));
      return;
    }
  }
#endif
  put<T, float, Stream>(p, v);
}

// Element i of a horizontal pass's source row.
template <typename S>
inline float src_at(const S* v, int64_t i) {
  return static_cast<float>(v[i]);
}

#if defined(__AVX512F__) || defined(__AVX2__)
// NW vectors of a source row as float, and one permute of them by a vector of indices < NW L.
template <int NW>
struct PermWin {
  using VI = simd::ivec;
#if defined(__AVX512F__)
  using VF = __m512;
#else
  using VF = __m256;
#endif
  VF v[NW];
  template <typename S>
  PermWin(const S* p, int64_t off) {
    for (int j = 0; j < NW; ++j) v[j] = reinterpret_cast<VF>(load_vec<float, S>(p + off + j * kPermL));
  }
  VF operator()(VI i) const {
#if defined(__AVX512F__)
    const __m512 lo = _mm512_permutex2var_ps(v[0], i, v[1]);
    if constexpr (NW == 2) return lo;
    const __m512 hi = _mm512_permutex2var_ps(v[2], i, v[3]);
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(i, _mm512_set1_epi32(32)), lo, hi);
#else
    // vpermps reads the low 3 bits; bit 3 picks v[1] over v[0] (2-vector windows only)
    static_assert(NW == 2, "AVX2 plans use 2-vector windows");
    const __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(v[0], i), _mm256_permutevar8x32_ps(v[1], i), b3);
#endif
  }
};
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
// One block of a narrow plan (AVX2): tap k is the same lane indices into the vector at
// bs + k C (one vpermps, no index arithmetic or blends: 2 vpermps, a blend and two integer
// ops per tap otherwise; 1080p -> 4K RGB bicubic float32 11.7 -> 11.1 ms on Zen 4); the same
// products and sums as the window permutes.
// ip, tbs: the indices and window start of the block whose tables it reads (PermPlan::find_period).
template <typename Src>
inline __m256 hperm_narrow(const Src v, const int32_t* ip, int32_t tbs, int32_t bs, const float* wp, int kx, int64_t C,
                           int64_t n) {
  const int kk = kx;
  const __m256i rel = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip)), _mm256_set1_epi32(tbs));
  auto tap = [&](int k) {
    return _mm256_permutevar8x32_ps(reinterpret_cast<__m256>(load_vec<float>(v + bs + k * C)), rel);
  };
  __m256 a = _mm256_mul_ps(_mm256_loadu_ps(wp), tap(0));
  for (int k = 1; k < kk; ++k) a = _mm256_fmadd_ps(_mm256_loadu_ps(wp + k * n), tap(k), a);
  return a;
}
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
// Whole periods of a periodic plan (PermPlan::fill_period, `fast`), from block b (the start of
// a period) for nper periods: the first period's index and weight vectors from L1, the
// window of each block from base. The same taps, products and sums as hperm_run's blocks
// (tap 0's product, then one fused multiply-add per tap), so the same bits; about half the
// instructions per block (no index arithmetic, no table of the row's length, no per-block
// branches).
template <typename Src, typename T, int NW, bool Stream, int K>
inline void hperm_periods(const Src v, const PermPlan& plan, int kx_, int64_t C, int64_t b, int64_t nper, T* out) {
  constexpr int L = kPermL;
  const int kx = K > 0 ? K : kx_;
  const int per = static_cast<int>(plan.per);
  const int32_t* __restrict__ base = plan.base.data() + b;
  const int32_t* __restrict__ prel = plan.prel.data();
  const float* __restrict__ pw = plan.pw.data();
  T* o = out + plan.off + b * L;
  for (int64_t m = 0; m < nper; ++m) {
    for (int j = 0; j < per; ++j, ++base, o += L) {
      const int32_t bs = *base;
      const int32_t* rj = prel + j * kx * L;
      const float* wj = pw + j * kx * L;
#if defined(__AVX512F__)
      const PermWin<NW> w(v, bs);
      __m512 a = _mm512_mul_ps(_mm512_load_ps(wj), w(_mm512_load_si512(rj)));
      for (int k = 1; k < kx; ++k)
        a = _mm512_fmadd_ps(_mm512_load_ps(wj + k * L), w(_mm512_load_si512(rj + k * L)), a);
#else
      static_assert(NW == 2, "AVX2 plans use 2-vector windows");
      // every block narrow: tap k permutes the vector at bs + k C by the same indices
      const __m256i rel = _mm256_load_si256(reinterpret_cast<const __m256i*>(rj));
      auto tap = [&](int k) {
        return _mm256_permutevar8x32_ps(reinterpret_cast<__m256>(load_vec<float>(v + bs + k * C)), rel);
      };
      __m256 a = _mm256_mul_ps(_mm256_load_ps(wj), tap(0));
      for (int k = 1; k < kx; ++k) a = _mm256_fmadd_ps(_mm256_load_ps(wj + k * L), tap(k), a);
#endif
      simd::vec_t<float> av;
      std::memcpy(&av, &a, sizeof(av));
      put_out<T, Stream>(o, av);
    }
  }
}
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
// Whole periods of a phase plan (PermPlan::find_phases: integer upscales of 1 to 4 channels)
// into float rows, from block b for nper periods, in chunks of kPhaseChunk output pixels. It
// writes whole pixels (those cut by the first and last block get their own values again), so
// a call must cover the whole row (resize_f32_hfirst's ring rows: find_phases is called for
// that order only):
//  1. the phase rows P[ph][q] = sum_k w[ph][k] S[q + k] over the chunk's source pixels q, for
//     every phase from the same source loads (broadcast weights, no permutes);
//  2. output pixel x = P[(x + ds) % df][(x + ds) / df], one 16-byte copy per pixel (3 channels:
//     the fourth float is overwritten by the next pixel; the region's last pixel copies 3);
//     1 and 2 channels (2x): the two phase rows zipped by unpacks, 16 floats per step.
// The same products and sums as the permutes (tap 0's product, then one fused multiply-add per
// tap, the same weights), so the same bits. Per 8 outputs at 2x RGB, bicubic: 2 loads, 4 FMAs
// and a store for the sums, 2.7 loads and 2.7 stores for the copies, instead of 8 loads, 4
// permutes and 4 FMAs (1080p -> 4K RGB bicubic float32 on Zen 3, one process: the horizontal
// pass 4.5-4.9 -> 3.4-3.7 us per row, the whole resize 0.87-0.95x on one thread).
constexpr int64_t kPhaseChunk = 512;
// (F: df known at compile time (2), or 0)
template <typename Src, int K, int F>
inline void hphase(const Src v, const PermPlan& plan, int kx_, int64_t C, int64_t x0, int64_t x1, float* out) {
  constexpr int L = kPermL;
  const int kx = K > 0 ? K : kx_;
  const int64_t f = F > 0 ? F : plan.df, s = plan.ds, SWC = plan.SWC_;
  // floats per phase row: a chunk's source pixels (at most kPhaseChunk / f + 2) and a vector
  const int64_t pstride = ((kPhaseChunk / f + 2) * C + 2 * L - 1) / L * L;
  // (f pstride <= 512 C + 2 f C + f (2 L - 1) <= 2232 floats)
  alignas(64) float P[kPhaseChunk * 4 + PermPlan::kPhaseMax * (8 + 2 * kPermL)];
  __m256 w[PermPlan::kPhaseMax][8];
  for (int64_t ph = 0; ph < f; ++ph)
    for (int k = 0; k < kx; ++k) w[ph][k] = _mm256_set1_ps(plan.pwph[ph][k]);
  for (int64_t xa = x0; xa < x1; xa += kPhaseChunk) {
    const int64_t xb = std::min(x1, xa + kPhaseChunk);
    const int64_t qa = (xa + s) / f, qb = (xb - 1 + s) / f + 1, n = (qb - qa) * C;
    // 1. phase rows: elements [0, n) from source element qa C
    int64_t i = 0;
    const int64_t sb = qa * C, kc = (kx - 1) * C;
    for (; i + L <= n && sb + i + kc + L <= SWC; i += L) {
      __m256 x[8];
      for (int k = 0; k < kx; ++k) x[k] = reinterpret_cast<__m256>(load_vec<float>(v + sb + i + k * C));
      for (int64_t ph = 0; ph < f; ++ph) {
        __m256 a = _mm256_mul_ps(w[ph][0], x[0]);
        for (int k = 1; k < kx; ++k) a = _mm256_fmadd_ps(w[ph][k], x[k], a);
        _mm256_store_ps(P + ph * pstride + i, a);
      }
    }
    for (; i < n; ++i)
      for (int64_t ph = 0; ph < f; ++ph) {
        float a = plan.pwph[ph][0] * src_at(v, sb + i);
        for (int k = 1; k < kx; ++k) a = fmadd_f32(plan.pwph[ph][k], src_at(v, sb + i + k * C), a);
        P[ph * pstride + i] = a;
      }
    // 2. the pixels in order, phase by phase (the region's last pixel of 3 channels: 3 floats)
    const int64_t xe = C == 3 && xb == x1 ? xb - 1 : xb;
    int64_t x = xa, ph = (xa + s) % f;
    const float* q = P + ((xa + s) / f - qa) * C;
    float* o = out + xa * C;
    if (f == 2 && C <= 2) {
      // 1 and 2 channels at 2x: the two phase rows zipped, by floats or by pairs (the first
      // output pixel's phase row first, then the other's, a pixel further when it is phase 0's)
      const float* pa = q + ph * pstride;
      const float* pb = q + (1 - ph) * pstride + ph * C;
      for (; x + 16 / C <= xb; x += 16 / C, pa += 8, pb += 8, o += 16) {
        const __m256 a = _mm256_loadu_ps(pa), bb = _mm256_loadu_ps(pb);
        __m256 lo, hi;
        if (C == 1) {
          lo = _mm256_unpacklo_ps(a, bb);
          hi = _mm256_unpackhi_ps(a, bb);
        } else {
          lo = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(bb)));
          hi = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(bb)));
        }
        _mm256_storeu_ps(o, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
      }
      for (int64_t j = 0; x < xb; ++x, ++j, o += C) std::memcpy(o, (j & 1 ? pb : pa) + (j >> 1) * C, C * sizeof(float));
      continue;
    }
    auto copy = [&](const float* p) __attribute__((always_inline)) {
      _mm_storeu_ps(o, _mm_loadu_ps(p));
      o += C;
    };
    for (; ph != 0 && x < xe; ++x) {
      copy(q + ph * pstride);
      if (++ph == f) {
        ph = 0;
        q += C;
      }
    }
    for (; x + f <= xe; x += f, q += C)  // (F = 2: unrolled)
      for (int64_t j = 0; j < f; ++j) copy(q + j * pstride);
    for (; x < xe; ++x, ++ph) copy(q + ph * pstride);
    if (xe < xb) std::memcpy(o, q + ph * pstride, 3 * sizeof(float));
  }
}

template <typename Src, int K>
inline void hphase_any(const Src v, const PermPlan& plan, int kx, int64_t C, int64_t x0, int64_t x1, float* out) {
  if (plan.df == 2) hphase<Src, K, 2>(v, plan, kx, C, x0, x1, out);
  else hphase<Src, K, 0>(v, plan, kx, C, x0, x1, out);
}
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
// hdec2's split of 16 floats (the pixels from p on) into the even and the odd pixels, in a
// lane order that fix() puts back: 1 channel shufps (outputs 0 1 4 5 | 2 3 6 7), 2 channels
// unpacks of pixel pairs (0 2 | 1 3), 4 channels the 128-bit halves (in order).
template <int C>
struct Dec2Split {
  static inline void split(__m256 a, __m256 b, __m256& ev, __m256& od) {
    if constexpr (C == 1) {
      ev = _mm256_shuffle_ps(a, b, 0x88);
      od = _mm256_shuffle_ps(a, b, 0xDD);
    } else if constexpr (C == 2) {
      ev = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
      od = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
    } else {
      ev = _mm256_permute2f128_ps(a, b, 0x20);
      od = _mm256_permute2f128_ps(a, b, 0x31);
    }
  }
  static inline __m256 fix(__m256 x) {
    if constexpr (C == 4) return x;
    else return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(x), 0xD8));
  }
};

// Output pixels [x0, x1) (inside the plan's [dlo, dhi), x1 - x0 >= 8 / C; 1, 2, 4 channels, and
// 3 in hdec_px below) of an integer 2x
// shrink: 8 / C pixels a vector; taps k, k + 1 are the even and odd pixels of one pair of plain
// loads from source pixel 2 x + dds + k, their products summed in the scalar formula's order
// (tap 0's product, then a fused multiply-add per tap) in a lane order fixed before the store:
// the same bits. The last vector ends at x1 (overlapping the one before).
template <typename T, int C, int K>
inline void hdec2(const float* v, const PermPlan& plan, int kx_, int64_t x0, int64_t x1, T* out) {
  const int kx = K > 0 ? K : kx_;
  constexpr int P = 8 / C;
  __m256 w[8];
  for (int k = 0; k < kx; ++k) w[k] = _mm256_set1_ps(plan.dw[k]);
  const float* vs = v + plan.dds * C;
  auto one = [&](int64_t x) __attribute__((always_inline)) {
    const float* p = vs + 2 * x * C;
    __m256 a = _mm256_setzero_ps();
    for (int k = 0; k < kx; k += 2) {
      __m256 ev, od;
      Dec2Split<C>::split(_mm256_loadu_ps(p + k * C), _mm256_loadu_ps(p + k * C + 8), ev, od);
      a = k == 0 ? _mm256_mul_ps(w[0], ev) : _mm256_fmadd_ps(w[k], ev, a);
      if (k + 1 < kx) a = _mm256_fmadd_ps(w[k + 1], od, a);
    }
    simd::vec_t<float> av;
    const __m256 r = Dec2Split<C>::fix(a);
    std::memcpy(&av, &r, sizeof(av));
    put_out<T, false>(out + x * C, av);
  };
  int64_t x = x0;
  for (; x + P <= x1; x += P) one(x);
  if (x < x1) one(x1 - P);
}

template <typename T, int C>
inline void hdec2_k(const float* v, const PermPlan& plan, int kx, int64_t x0, int64_t x1, T* out) {
  if (kx == 2) hdec2<T, C, 2>(v, plan, kx, x0, x1, out);
  else if (kx == 4) hdec2<T, C, 4>(v, plan, kx, x0, x1, out);
  else if (kx == 8) hdec2<T, C, 8>(v, plan, kx, x0, x1, out);
  else hdec2<T, C, 0>(v, plan, kx, x0, x1, out);
}

// 3 or 4 channels at any factor dF: one pixel per 4-lane vector (3 channels: a 4th lane of the
// next pixel's data, never stored past x1: the last pixel goes out as 3 lanes), the weights in
// registers; uint16 through acc (the rounding store after).
template <typename T, int C, int K>
inline void hdec_px(const float* v, const PermPlan& plan, int kx_, int64_t x0, int64_t x1, T* out, float* acc) {
  static_assert(C == 3 || C == 4, "a pixel per 4-lane vector");
  const int kx = K > 0 ? K : kx_;
  __m128 w[8];
  for (int k = 0; k < kx; ++k) w[k] = _mm_set1_ps(plan.dw[k]);
  const float* vs = v + plan.dds * C;
  const int64_t step = plan.dF * C;
  float* o = std::is_same<T, float>::value ? reinterpret_cast<float*>(out) + x0 * C : acc;
  auto one = [&](int64_t x) __attribute__((always_inline)) {
    const float* p = vs + step * x;
    __m128 a = _mm_mul_ps(w[0], _mm_loadu_ps(p));
    for (int k = 1; k < kx; ++k) a = _mm_fmadd_ps(w[k], _mm_loadu_ps(p + C * k), a);
    return a;
  };
  int64_t x = x0;
  for (; x + 1 < x1; ++x) _mm_storeu_ps(o + (x - x0) * C, one(x));
  if (x < x1) {
    const __m128 a = one(x);
    float* q = o + (x - x0) * C;
    if constexpr (C == 4) {
      _mm_storeu_ps(q, a);
    } else {
      _mm_storel_pi(reinterpret_cast<__m64*>(q), a);
      _mm_store_ss(q + 2, _mm_movehl_ps(a, a));
    }
  }
  if constexpr (!std::is_same<T, float>::value) store_out<T, float>(acc, out + x0 * C, (x1 - x0) * C, 0);
}

template <typename T, int C>
inline void hdec_px_k(const float* v, const PermPlan& plan, int kx, int64_t x0, int64_t x1, T* out, float* acc) {
  if (kx == 2) hdec_px<T, C, 2>(v, plan, kx, x0, x1, out, acc);
  else if (kx == 4) hdec_px<T, C, 4>(v, plan, kx, x0, x1, out, acc);
  else if (kx == 8) hdec_px<T, C, 8>(v, plan, kx, x0, x1, out, acc);
  else hdec_px<T, C, 0>(v, plan, kx, x0, x1, out, acc);
}

template <typename T>
inline void hdec_any(const float* v, const PermPlan& plan, int kx, int64_t C, int64_t x0, int64_t x1, T* out,
                      float* acc) {
  if (C == 1) hdec2_k<T, 1>(v, plan, kx, x0, x1, out);  // (dF = 2: find_dec)
  else if (C == 2) hdec2_k<T, 2>(v, plan, kx, x0, x1, out);
  else if (C == 4 && plan.dF == 2) hdec2_k<T, 4>(v, plan, kx, x0, x1, out);
  else if (C == 4) hdec_px_k<T, 4>(v, plan, kx, x0, x1, out, acc);
  else hdec_px_k<T, 3>(v, plan, kx, x0, x1, out, acc);
}
#endif

// The scalar formula for output elements [e0, e1) (weights tap-major with stride n).
template <typename Src, typename T>
inline void hperm_scalar(const Src v, const int32_t* ip, const float* wp, int kx, int64_t C, int64_t n, int64_t e0,
                         int64_t e1, T* out) {
  for (int64_t e = e0; e < e1; ++e) {
    float a = wp[e] * src_at(v, ip[e]);
    for (int k = 1; k < kx; ++k) a = fmadd_f32(wp[k * n + e], src_at(v, ip[e] + k * C), a);
    out[e] = to_output<T, float>(a);
  }
}

// Output elements [e0, e1) of one row from the source row v (float vertical sums, or a float32
// / uint16 source row): whole blocks where the plan puts them, the scalar formula for the
// elements before the first and after the last; streamed stores where Stream.
template <typename Src, typename T, int NW, bool Stream, int K>
inline void hperm_run(const Src v, const int32_t* ip, const PermPlan& plan, const float* wp, int kx_, int64_t C,
                      int64_t n, int64_t e0, int64_t e1, T* out) {
  const int kx = K > 0 ? K : kx_;
  int64_t e = e0;
#if defined(__AVX512F__) || defined(__AVX2__)
  constexpr int L = kPermL;
  const int32_t* base = plan.base.data();
#if defined(__AVX2__) && !defined(__AVX512F__)
  const uint8_t* narrow = plan.narrow.data();
#endif
  const int64_t off = plan.off, per_lo = plan.per_lo, per = plan.per, per_hi = plan.per_hi;
  // the first block start at or after e0
  const int64_t eb = std::min(e1, e0 < off ? off : e0 + (L - (e0 - off) % L) % L);
  hperm_scalar<Src, T>(v, ip, wp, kx, C, n, e0, eb, out);
  e = eb;
  // One block: the window of block b, the tables of block ub (b itself, or its place in the
  // first period: find_period)
  auto block = [&](int64_t e, int64_t b, int64_t ub) __attribute__((always_inline)) {
    const int32_t bs = base[b];
    if (bs < 0) {
      hperm_scalar<Src, T>(v, ip, wp, kx, C, n, e, e + L, out);
      return;
    }
    const int64_t te = off + ub * L;
    const int32_t tbs = base[ub];
#if defined(__AVX2__) && !defined(__AVX512F__)
    if (narrow[b]) {
      const __m256 a = hperm_narrow(v, ip + te, tbs, bs, wp + te, kx, C, n);
      simd::vec_t<float> av;
      std::memcpy(&av, &a, sizeof(av));
      put_out<T, Stream>(out + e, av);
      return;
    }
#endif
    const PermWin<NW> w(v, bs);
#if defined(__AVX512F__)
    const __m512i rel = _mm512_sub_epi32(_mm512_loadu_si512(ip + te), _mm512_set1_epi32(tbs));
    __m512 a = _mm512_mul_ps(_mm512_loadu_ps(wp + te), w(rel));
    for (int k = 1; k < kx; ++k)
      a = _mm512_fmadd_ps(_mm512_loadu_ps(wp + k * n + te),
                          w(_mm512_add_epi32(rel, _mm512_set1_epi32(static_cast<int32_t>(k * C)))), a);
#else
    const __m256i rel =
        _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip + te)), _mm256_set1_epi32(tbs));
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(wp + te), w(rel));
    for (int k = 1; k < kx; ++k)
      a = _mm256_fmadd_ps(_mm256_loadu_ps(wp + k * n + te),
                          w(_mm256_add_epi32(rel, _mm256_set1_epi32(static_cast<int32_t>(k * C)))), a);
#endif
    simd::vec_t<float> av;
    std::memcpy(&av, &a, sizeof(av));
    put_out<T, Stream>(out + e, av);
  };
  int64_t b = (e - off) / L;
  if (per == 0) {
    for (; e + L <= e1; e += L, ++b) block(e, b, b);
  } else {
    // tb cycles through the first period in step with b; whole periods go to hperm_periods
    int64_t tb = b < per_lo ? per_lo : per_lo + (b - per_lo) % per;
    for (; e + L <= e1; e += L, ++b) {
      if (plan.fast && tb == per_lo && b >= per_lo) {
        const int64_t np = std::min((per_hi - b) / per, (e1 - e) / (per * L));
        if (np > 0) {
#if defined(__AVX2__) && !defined(__AVX512F__)
          if constexpr (std::is_same<T, float>::value && !Stream) {
            // whole pixels: those cut by the first and last block get the same values again
            const int64_t x0 = (off + b * L) / C, x1 = (off + (b + np * per) * L + C - 1) / C;
            if (plan.df > 0 && x0 >= plan.xlo && x1 <= plan.xhi) hphase_any<Src, K>(v, plan, kx, C, x0, x1, out);
            else hperm_periods<Src, T, NW, Stream, K>(v, plan, kx, C, b, np, out);
          } else
#endif
            hperm_periods<Src, T, NW, Stream, K>(v, plan, kx, C, b, np, out);
          e += np * per * L;
          b += np * per;
          if (e + L > e1) break;
        }
      }
      const int64_t ub = b >= per_lo && b < per_hi ? tb : b;
      if (b >= per_lo) tb = tb + 1 == per_lo + per ? per_lo : tb + 1;
      block(e, b, ub);
    }
  }
#endif
  hperm_scalar<Src, T>(v, ip, wp, kx, C, n, e, e1, out);
}

// (2 and 4 taps, bilinear and bicubic, known at compile time: no tap loop; 224x224x3 -> 336x336
// bilinear float32 79 -> 67 us on Zen 4)
template <typename Src, typename T, bool Stream>
inline void hperm(const PermPlan& plan, const Src v, const int32_t* ip, const float* wp, int kx, int64_t C, int64_t n,
                  int64_t e0, int64_t e1, T* out) {
  auto run = [&](auto nw, auto k) {
    hperm_run<Src, T, decltype(nw)::value, Stream, decltype(k)::value>(v, ip, plan, wp, kx, C, n, e0, e1, out);
  };
  using W2 = std::integral_constant<int, 2>;
  using W4 = std::integral_constant<int, 4>;
  using K0 = std::integral_constant<int, 0>;
#if defined(__AVX512F__)
  if (plan.nw == 4) return kx == 2 ? run(W4(), W2()) : run(W4(), K0());
#endif
  if (kx == 2) return run(W2(), W2());
  if (kx == 4) return run(W2(), W4());
  run(W2(), K0());
}

#if defined(__AVX2__) && defined(__FMA__)
// Float sums of 3 or 4 channels, pixel by pixel (hpassK, hpass_dyn): two pixels per 8-lane
// vector, pixel x in the low half and x + 1 in the high one (3 channels: the 4th lane of each
// half is the next pixel's first channel, stored and then overwritten by that pixel's store; the
// range's last pixel goes out as 3 lanes, so nothing lands past it). Each half sums its pixel's
// taps with that pixel's weights (w[kx x + k]: for 4 and 8 taps each group of 4 of both pixels'
// weights is one vector and tap k one in-lane permute of it; for 2 taps one 16-byte load
// broadcast to both halves; else two broadcasts and a blend). The same products and sums in the same order as one pixel per
// 4-lane vector (tap 0's product, then a fused multiply-add per tap): the same bits. One
// dependent chain per two pixels: the one-pixel loop waited on its chains (multiply and three
// fused adds, ~15 cycles per pixel, after the index and tap loads). Float output is written in
// place (no row of sums copied after). Measured on Zen 3 against resize_phases=0 in turns, one
// thread: 4K RGB -> 2560 wide bicubic 23.4 -> 16.7 ms, RGBA 35.4 -> 22.9; 1080p -> 720p RGB
// bicubic 4.85 -> 3.63, lanczos 7.4 -> 6.6.
// S: the row's element type (float sums, or a uint16 source row read in place by the
// horizontal-first order: each pixel's 4 elements widened to float).
template <typename T, int C, int K, typename S = float>
inline void hpair(const S* __restrict__ v, const int64_t* __restrict__ start, const float* __restrict__ w, int kx_,
                  int64_t dw, T* __restrict__ out) {
  static_assert(C == 3 || C == 4, "a pixel per half vector");
  static_assert(std::is_same<T, float>::value || std::is_same<T, uint16_t>::value, "float sums out as float or uint16");
  const int kx = K > 0 ? K : kx_;
  __m256i sel[4];
  for (int k = 0; k < 4; ++k)
    sel[k] = K == 2 ? _mm256_setr_epi32(k, k, k, k, 2 + k, 2 + k, 2 + k, 2 + k) : _mm256_set1_epi32(k);
  // the sums of pixels x (low half) and x + 1 (high half)
  auto two = [&](int64_t x) __attribute__((always_inline)) {
    const S* p0 = v + start[x] * C;
    const S* p1 = v + start[x + 1] * C;
    const float* w0 = w + static_cast<int64_t>(kx) * x;
    // 4 and 8 taps: each group of 4 weights of both pixels as one vector (x's in the low half)
    __m256 wv[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    if constexpr (K == 4 || K == 8) {
      for (int g = 0; g < K / 4; ++g)
        wv[g] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w0 + 4 * g)), _mm_loadu_ps(w0 + K + 4 * g), 1);
    }
    if constexpr (K == 2) wv[0] = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(w0));
    auto wk = [&](int k) __attribute__((always_inline)) {
      if constexpr (K == 2) return _mm256_permutevar_ps(wv[0], sel[k]);
      if constexpr (K == 4 || K == 8) return _mm256_permutevar_ps(wv[k / 4], sel[k % 4]);
      return _mm256_blend_ps(_mm256_broadcast_ss(w0 + kx + k), _mm256_broadcast_ss(w0 + k), 0x0F);
    };
    auto px = [&](int k) __attribute__((always_inline)) {
      if constexpr (std::is_same<S, uint16_t>::value) {
        const __m128i q = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0 + k * C)),
                                             _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p1 + k * C)));
        return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(q));
      } else {
        return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p0 + k * C)), _mm_loadu_ps(p1 + k * C), 1);
      }
    };
    __m256 a = _mm256_mul_ps(wk(0), px(0));
    for (int k = 1; k < kx; ++k) a = _mm256_fmadd_ps(wk(k), px(k), a);
    return a;
  };
  // One pixel's 4 lanes to pixel x: all 4 (the 4th of 3 channels overwritten by the next
  // pixel), or for the range's last pixel its C lanes only. uint16 output is rounded and
  // saturated in registers as store_out does (the lanes' minimum with 65535, cvtps2dq's
  // nearest-even, packusdw's saturation: NaN -> 0).
  auto put1 = [&](int64_t x, __m128 r, bool last) __attribute__((always_inline)) {
    if constexpr (std::is_same<T, uint16_t>::value) {
      uint16_t* q = out + x * C;
      const __m128i i = _mm_cvtps_epi32(_mm_min_ps(_mm_set1_ps(65535.f), r));
      const __m128i l = _mm_packus_epi32(i, i);  // the 4 elements in the low 8 bytes
      if (C == 4 || !last) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(q), l);
      } else {
        const int32_t l01 = _mm_cvtsi128_si32(l);
        std::memcpy(q, &l01, 4);
        q[2] = static_cast<uint16_t>(_mm_extract_epi16(l, 2));
      }
    } else if (C == 4 || !last) {
      _mm_storeu_ps(out + x * C, r);
    } else {
      _mm_storel_pi(reinterpret_cast<__m64*>(out + x * C), r);
      _mm_store_ss(out + x * C + 2, _mm_movehl_ps(r, r));
    }
  };
  // pixels x and x + 1 (last: x + 1 is the range's last pixel)
  auto put2 = [&](int64_t x, __m256 a, bool last) __attribute__((always_inline)) {
    if constexpr (std::is_same<T, float>::value && C == 4) {
      _mm256_storeu_ps(out + x * C, a);
    } else {
      put1(x, _mm256_castps256_ps128(a), false);
      put1(x + 1, _mm256_extractf128_ps(a, 1), last);
    }
  };
  int64_t x = 0;
  for (; x + 2 < dw; x += 2) put2(x, two(x), false);
  // the last one or two pixels: whole lanes only
  if (x + 2 == dw) {
    put2(x, two(x), true);
  } else if (x + 1 == dw) {
    const S* p = v + start[x] * C;
    const float* wx = w + static_cast<int64_t>(kx) * x;
    auto px1 = [&](int k) __attribute__((always_inline)) {
      if constexpr (std::is_same<S, uint16_t>::value)
        return _mm_cvtepi32_ps(_mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + k * C))));
      else
        return _mm_loadu_ps(p + k * C);
    };
    __m128 a = _mm_mul_ps(_mm_set1_ps(wx[0]), px1(0));
    for (int k = 1; k < kx; ++k) a = _mm_fmadd_ps(_mm_set1_ps(wx[k]), px1(k), a);
    put1(x, a, true);
  }
}
#endif

// Two-tap horizontal pass with the channel count known: out[x][c] = w0[x] * v[s][c] +
// w1[x] * v[s + 1][c] (multiply, multiply, add: the scalar path's order), into acc, then
// the rounding/saturating store.
template <typename T, typename A, int C, int K>
inline void hpassK(const A* __restrict__ v, const int64_t* __restrict__ start, const A* __restrict__ w, int64_t dw,
                   int rshift, T* __restrict__ out, A* __restrict__ acc) {
#if defined(__SSE4_1__)
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr ((C == 3 || C == 4) && std::is_same<A, float>::value) {
    if (params().resize_phases) return hpair<T, C, K>(v, start, w, K, dw, out);
  }
#endif
  if constexpr ((C == 3 || C == 4) && (std::is_same<A, int32_t>::value || std::is_same<A, float>::value)) {
    // one pixel's C channels per 4-lane vector (a 4th lane of junk for C = 3, overwritten by
    // the next pixel; v and acc are scratch rows with slack at the end): the same products
    // and sums, in the same order, as the scalar loop below
    for (int64_t x = 0; x < dw; ++x) {
      const A* p = v + start[x] * C;
      const A* wx = w + K * x;
      if constexpr (std::is_same<A, int32_t>::value) {
        __m128i a = _mm_mullo_epi32(_mm_set1_epi32(wx[0]), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        for (int k = 1; k < K; ++k)
          a = _mm_add_epi32(a, _mm_mullo_epi32(_mm_set1_epi32(wx[k]),
                                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k * C))));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + x * C), a);
      } else {
        __m128 a = _mm_mul_ps(_mm_set1_ps(wx[0]), _mm_loadu_ps(p));
        for (int k = 1; k < K; ++k) a = fmadd_ps128(_mm_set1_ps(wx[k]), _mm_loadu_ps(p + k * C), a);
        _mm_storeu_ps(acc + x * C, a);
      }
    }
    store_out<T, A>(acc, out, dw * C, rshift);
    return;
  }
#endif
  for (int64_t x = 0; x < dw; ++x) {
    const A* p = v + start[x] * C;
    const A* wx = w + K * x;
    for (int c = 0; c < C; ++c) {
      A a = wx[0] * p[c];
      for (int k = 1; k < K; ++k) {
        a = madd_acc<A>(wx[k], p[k * C + c], a);
      }
      acc[x * C + c] = a;
    }
  }
  store_out<T, A>(acc, out, dw * C, rshift);
}

// The same with the tap count known only at run time (antialiased shrinking: a window of
// 2 * factor + 1 taps), C = 3 or 4: one pixel's channels per 4-lane vector, plain loads of
// its taps (they lie side by side in v: no gathers), the same products and sums in the same
// order as the scalar loop. Two pixels at a time for independent chains.
template <typename T, typename A, int C>
inline bool hpass_dyn(const A* __restrict__ v, const int64_t* __restrict__ start, const A* __restrict__ w, int kx,
                      int64_t dw, int rshift, T* __restrict__ out, A* __restrict__ acc) {
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr ((C == 3 || C == 4) && std::is_same<A, float>::value) {
    if (params().resize_phases) {
      hpair<T, C, 0>(v, start, w, kx, dw, out);
      return true;
    }
  }
#endif
#if defined(__SSE4_1__)
  if constexpr ((C == 3 || C == 4) && (std::is_same<A, int32_t>::value || std::is_same<A, float>::value)) {
    int64_t x = 0;
    for (; x + 2 <= dw; x += 2) {
      const A* p0 = v + start[x] * C;
      const A* p1 = v + start[x + 1] * C;
      const A* w0 = w + static_cast<int64_t>(kx) * x;
      const A* w1 = w0 + kx;
      if constexpr (std::is_same<A, int32_t>::value) {
        __m128i a0 = _mm_mullo_epi32(_mm_set1_epi32(w0[0]), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p0)));
        __m128i a1 = _mm_mullo_epi32(_mm_set1_epi32(w1[0]), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)));
        for (int k = 1; k < kx; ++k) {
          a0 = _mm_add_epi32(a0, _mm_mullo_epi32(_mm_set1_epi32(w0[k]),
                                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(p0 + k * C))));
          a1 = _mm_add_epi32(a1, _mm_mullo_epi32(_mm_set1_epi32(w1[k]),
                                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1 + k * C))));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + x * C), a0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + (x + 1) * C), a1);
      } else {
        __m128 a0 = _mm_mul_ps(_mm_set1_ps(w0[0]), _mm_loadu_ps(p0));
        __m128 a1 = _mm_mul_ps(_mm_set1_ps(w1[0]), _mm_loadu_ps(p1));
        for (int k = 1; k < kx; ++k) {
          a0 = fmadd_ps128(_mm_set1_ps(w0[k]), _mm_loadu_ps(p0 + k * C), a0);
          a1 = fmadd_ps128(_mm_set1_ps(w1[k]), _mm_loadu_ps(p1 + k * C), a1);
        }
        _mm_storeu_ps(acc + x * C, a0);
        _mm_storeu_ps(acc + (x + 1) * C, a1);
      }
    }
    for (; x < dw; ++x) {
      const A* p = v + start[x] * C;
      const A* wx = w + static_cast<int64_t>(kx) * x;
      for (int c = 0; c < C; ++c) {
        A a = wx[0] * p[c];
        for (int k = 1; k < kx; ++k) {
          a = madd_acc<A>(wx[k], p[k * C + c], a);
        }
        acc[x * C + c] = a;
      }
    }
    store_out<T, A>(acc, out, dw * C, rshift);
    return true;
  }
#endif
  (void)v, (void)start, (void)w, (void)kx, (void)dw, (void)rshift, (void)out, (void)acc;
  return false;
}

// Dispatch on the channel count (1, 3, 4; 2 for the float sums, whose fused steps give the
// scalar formula's bits) for a tap count K.
template <typename T, typename A, int K>
inline bool hpass_fixed(const A* v, const int64_t* start, const A* w, int64_t dw, int64_t C, int rshift, T* out,
                        A* acc) {
  if (C == 1) hpassK<T, A, 1, K>(v, start, w, dw, rshift, out, acc);
  else if (C == 2 && std::is_same<A, float>::value) hpassK<T, A, 2, K>(v, start, w, dw, rshift, out, acc);
  else if (C == 3) hpassK<T, A, 3, K>(v, start, w, dw, rshift, out, acc);
  else if (C == 4) hpassK<T, A, 4, K>(v, start, w, dw, rshift, out, acc);
  else return false;
  return true;
}

// Horizontal pass of one source row (T) into accumulators (no rounding): for the
// horizontal-first order used when the height grows.
template <typename T, typename A, int C, int K>
inline void hrowK(const T* __restrict__ src, const int64_t* __restrict__ start, const A* __restrict__ w, int64_t dw,
                  A* __restrict__ out) {
  for (int64_t x = 0; x < dw; ++x) {
    const T* p = src + start[x] * C;
    const A* wx = w + K * x;
    for (int c = 0; c < C; ++c) {
      A a = wx[0] * static_cast<A>(p[c]);
      for (int k = 1; k < K; ++k) {
        const A t = wx[k] * static_cast<A>(p[k * C + c]);
        a = a + t;
      }
      out[x * C + c] = a;
    }
  }
}

template <typename T, typename A>
inline void hrow(const T* src, const int64_t* start, const A* w, int kx, int64_t dw, int64_t C, A* out) {
#define IMKERN_HROW(CC, KK) \
  if (C == CC && kx == KK) return hrowK<T, A, CC, KK>(src, start, w, dw, out);
  IMKERN_HROW(1, 2) IMKERN_HROW(3, 2) IMKERN_HROW(4, 2)
  IMKERN_HROW(1, 4) IMKERN_HROW(3, 4) IMKERN_HROW(4, 4)
  IMKERN_HROW(1, 8) IMKERN_HROW(3, 8) IMKERN_HROW(4, 8)
#undef IMKERN_HROW
  for (int64_t x = 0; x < dw; ++x) {
    const T* p = src + start[x] * C;
    const A* wx = w + static_cast<int64_t>(kx) * x;
    for (int64_t c = 0; c < C; ++c) {
      A a = wx[0] * static_cast<A>(p[c]);
      for (int k = 1; k < kx; ++k) {
        const A t = wx[k] * static_cast<A>(p[k * C + c]);
        a = a + t;
      }
      out[x * C + c] = a;
    }
  }
}

// ---- uint8, horizontal first, 16-bit multiply-adds ------------------------------------------
// The horizontal pass of one uint8 source row with byte shuffles and pmaddwd: output
// elements in groups of 4 (one 128-bit lane): the group's taps lie in a 16-byte window of
// the source row (checked when the table is built), pshufb gathers each element's taps as
// zero-extended 16-bit pairs, pmaddwd multiplies them by the 16-bit weights and adds the
// pair: h = sum_k wx[k] * p[k], exact in int32 (the same integers as the scalar loop).
// Tables are built per call; a table that does not fit (a group's taps spread over more
// than 16 bytes: shrinking by more than about 4x, or weights beyond int16) is refused and
// the general path runs.
#if defined(__SSSE3__)
struct U8Hpass {
  static constexpr int G = simd::kBytes / 16;  // 128-bit groups per vector (simd::ivec)
  static constexpr int E = 4 * G;  // output elements per vector
  int pairs = 0;
  int64_t blocks = 0;
  aligned_vector<int32_t> base;  // [blocks * G]: byte offset of each group's window
  aligned_vector<uint8_t> ctl;   // [blocks][pairs][16 G]: pshufb controls
  aligned_vector<int16_t> w;     // [blocks][pairs][8 G]: weights, pairs of taps

  // ge output elements per group (window 4 * ge bytes), gpb groups per block: (4, G) for the
  // pshufb runs below, (16, 1) for the vpermb ones (AVX-512 VBMI).
  int ge = 4, gpb = G;
  int64_t elems = E;  // output elements per block
  bool vbmi = false;
  // split > 0 (set before build; SplitPlan): the sums in two 16-bit digits per int32 lane,
  // low L = sum_k lo_k p_k and high H = sum_k hi_k p_k with wx[k] >> split_ax = lo_k + split hi_k
  // (lo_k in [-split / 2, split / 2)): pmaddubsw of the window bytes, each tap's byte twice,
  // with the digit weights, and 16-bit adds; the lane 65536 H + L then gives pmaddwd with a
  // weight pair (u, split u) the product u (L + split H) = u wx.p / 2^split_ax exactly.
  int split = 0, split_ax = 0;

  // lazy: the caller reads the tables of a period's blocks from the first period only (not
  // run2, which reads every block's own): where the source tables show the period (src_period),
  // the blocks of later periods are not filled.
  bool build(const ResizeTable& tx, int64_t C, int64_t SWC, int64_t DWC, int ge_, int gpb_, bool lazy = false) {
    const int kx = tx.k;
    const int32_t* wx = static_cast<const int32_t*>(tx.w);
    ge = ge_;
    gpb = gpb_;
    elems = int64_t(ge) * gpb;
    const int64_t win = 4 * ge;
    if (SWC < win || kx < 1 || kx > 16) return false;
    for (int64_t i = 0; i < tx.n * kx; ++i)
      if (wx[i] > 32767 || wx[i] < -32767) return false;
    pairs = (kx + 1) / 2;
    blocks = (DWC + elems - 1) / elems;
    base.assign(static_cast<size_t>(blocks * gpb), 0);
    ctl.assign(static_cast<size_t>(blocks * pairs * win * gpb), 0x80);
    w.assign(static_cast<size_t>(blocks * pairs * 2 * ge * gpb), 0);
    // (the element's pixel and channel counted along, not divided out per element)
    int64_t ex = 0, ec = 0;  // pixel and channel of the group's first element
    uint8_t* const ctlp = ctl.data();
    int16_t* const wp16 = w.data();
    const int64_t* const st = tx.start;
    const int64_t cstep = gpb * win, wstep = gpb * 4 * ge;  // bytes from one pair of taps to the next
    const int32_t half_b = split / 2, log_b = split > 0 ? __builtin_ctz(static_cast<unsigned>(split)) : 0;
    for (int64_t g = 0, x = 0, c = 0; g < blocks * gpb; ++g) {
      const int64_t e0 = ge * g, e1 = std::min<int64_t>(e0 + ge, DWC);
      if (e0 >= DWC) break;
      int64_t lo = INT64_MAX, hi = 0;
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t i0 = st[x] * C + c;
        lo = std::min(lo, i0);
        hi = std::max(hi, i0 + (kx - 1) * C);
        if (++c == C) c = 0, ++x;
      }
      const int64_t b = std::min(lo, SWC - win);
      if (hi - b >= win) return false;
      base[g] = static_cast<int32_t>(b);
    }
    per = 0;
    if (lazy && ge == 4) src_period(tx, C);
    for (int64_t g = 0, blk = 0, gi = 0; g < blocks * gpb; ++g) {
      const int64_t e0 = ge * g, e1 = std::min<int64_t>(e0 + ge, DWC);
      if (e0 >= DWC) break;
      if (per > 0 && blk == per_lo + per && gi == 0 && per_hi > blk) {
        // blocks per_lo + per .. per_hi - 1: the first period's tables (src_period)
        const int64_t skip = (per_hi - blk) * elems;
        g += (per_hi - blk) * gpb - 1;
        blk = per_hi;
        ex += (ec + skip) / C;
        ec = (ec + skip) % C;
        continue;
      }
      const int64_t b = base[g];
      // (the tables through local pointers: stores through uint8_t may alias the vectors')
      uint8_t* cg = ctlp + (blk * pairs * gpb + gi) * win;
      uint8_t* wg = reinterpret_cast<uint8_t*>(wp16 + (blk * pairs * gpb + gi) * 2 * ge);
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t j = e - e0;
        const int32_t i0 = static_cast<int32_t>(st[ex] * C + ec - b);
        const int32_t* wr = wx + ex * kx;
        for (int k = 0; k < kx; ++k) {
          uint8_t* cp = cg + (k >> 1) * cstep + 4 * j;
          uint8_t* wb = wg + (k >> 1) * wstep + 4 * j;  // the element's 2 weights (16 bits each), or 4 bytes
          const uint8_t idx = static_cast<uint8_t>(i0 + k * static_cast<int32_t>(C));
          if (split == 0) {
            cp[2 * (k & 1)] = idx;
            const int16_t v = static_cast<int16_t>(wr[k]);
            std::memcpy(wb + 2 * (k & 1), &v, 2);
          } else {
            // bytes p_k, p_k+1 twice: the low and the high digits' 16-bit lanes (pmaddubsw)
            const int32_t v = wr[k] >> split_ax, lo_d = ((v + half_b) & (split - 1)) - half_b;
            cp[k & 1] = idx;
            cp[2 + (k & 1)] = idx;
            wb[k & 1] = static_cast<uint8_t>(static_cast<int8_t>(lo_d));
            wb[2 + (k & 1)] = static_cast<uint8_t>(static_cast<int8_t>((v - lo_d) >> log_b));  // (exact)
          }
        }
        if (++ec == C) ec = 0, ++ex;
      }
      if (++gi == gpb) gi = 0, ++blk;
    }
    // (the pshufb tables only: the vpermb blocks stream a 64-byte window per 16 outputs and
    // did not gain; the pshufb ones ran 5% faster on Zen 4, bicubic 1080p -> 4K at AVX2)
    if (ge == 4 && per == 0) find_period(win);
    return true;
  }

  // The period of the tables from the source tables (before the blocks are filled): blocks
  // bk and bk - p (per_lo + p <= bk < per_hi) have the same shuffle controls and weights when
  // p blocks are P whole pixels, every pixel of those blocks has the weights of the pixel P
  // before and its window start D pixels on, and every group's window starts D C bytes on
  // (the controls are window-relative). Sets per, per_lo, per_hi, dper as find_period would
  // for that p (the same tables, so the same integers); per = 0: none found (find_period then
  // compares the filled blocks).
  void src_period(const ResizeTable& tx, int64_t C) {
    const int kx = tx.k;
    const int32_t* wx = static_cast<const int32_t*>(tx.w);
    const int64_t lo = 4, hi = blocks - 4;
    for (int64_t p = 1; p <= 32 && lo + 4 * p <= hi; ++p) {
      const int64_t q = p * elems;
      if (q % C != 0) continue;
      const int64_t P = q / C, x0 = (lo + p) * elems / C, x1 = (hi * elems - 1) / C;
      const int64_t D = tx.start[x0] - tx.start[x0 - P];
      bool ok = x1 < tx.n;
      for (int64_t x = x0; x <= x1 && ok; ++x)
        ok = tx.start[x] - tx.start[x - P] == D &&
             std::memcmp(wx + x * kx, wx + (x - P) * kx, static_cast<size_t>(kx) * sizeof(int32_t)) == 0;
      for (int64_t g = (lo + p) * gpb; g < hi * gpb && ok; ++g)
        ok = base[static_cast<size_t>(g)] - base[static_cast<size_t>(g - p * gpb)] == D * C;
      if (ok) {
        per_lo = lo;
        per = p;
        per_hi = hi;
        dper = D * C;
        return;
      }
    }
  }

  // Tables repeat along the row for rational factors with a short period (2x: every 3
  // blocks); the blocks then read the tables of the first period, which stay in L1, instead
  // of streaming a table as large as the row (the windows still move along the row).
  // per_lo .. per_hi: the blocks away from the edges (clamped taps); per = 0: no period.
  int64_t per_lo = 0, per = 0, per_hi = 0;
  void find_period(int64_t win) {
    per = 0;
    const size_t cb = static_cast<size_t>(pairs * win * gpb), wb = static_cast<size_t>(pairs * 2 * ge * gpb);
    const int64_t lo = 4, hi = blocks - 4;
    auto same = [&](int64_t a, int64_t b) {
      return std::memcmp(ctl.data() + a * cb, ctl.data() + b * cb, cb) == 0 &&
             std::memcmp(w.data() + a * wb, w.data() + b * wb, wb * sizeof(int16_t)) == 0;
    };
    for (int64_t p = 1; p <= 32 && lo + 4 * p <= hi; ++p) {
      bool ok = true;
      for (int64_t bk = lo + p; bk < hi && ok; ++bk) ok = same(bk, bk - p);
      if (ok) {
        per_lo = lo;
        per = p;
        per_hi = hi;
        // whether every group's window moves by the same bytes per period (dper): the
        // periods then run from one source pointer (run_periods)
        dper = base[static_cast<size_t>((lo + p) * gpb)] - base[static_cast<size_t>(lo * gpb)];
        for (int64_t i = (lo + p) * gpb; i < hi * gpb && dper >= 0; ++i)
          if (base[static_cast<size_t>(i)] - base[static_cast<size_t>(i - p * gpb)] != dper) dper = -1;
        return;
      }
    }
  }
  int64_t dper = -1;  // bytes the windows move per period, -1: not the same for every group

  using VI = simd::ivec;

  // The E sums of block bk of one source row.
  // The tables as plain local pointers (the loops store through uint8_t pointers, which may
  // alias anything: members would be reloaded every block).
  struct View {
    const int32_t* base;
    const uint8_t* ctl;
    const int16_t* w;
    int pairs;
    int64_t blocks;
    int64_t per_lo, per, per_hi;
    // f(bk, tb) for the blocks bk0 .. bk1 - 1, tb the block whose tables bk uses: bk itself
    // near the edges, the same place in the first period elsewhere (no division per block).
    template <typename F>
    void for_blocks(int64_t bk0, int64_t bk1, F&& f) const {
      int64_t bk = bk0;
      const int64_t a = per == 0 ? bk1 : std::min(bk1, per_lo + per);
      for (; bk < a; ++bk) f(bk, bk);
      if (per != 0) {
        const int64_t b = std::min(bk1, per_hi), end = per_lo + per;
        int64_t tb = bk < b ? per_lo + (bk - per_lo) % per : 0;
        for (; bk < b; ++bk) {
          f(bk, tb);
          tb = tb + 1 == end ? per_lo : tb + 1;
        }
      }
      for (; bk < bk1; ++bk) f(bk, bk);
    }
  };
  View view() const { return View{base.data(), ctl.data(), w.data(), pairs, blocks, per_lo, per, per_hi}; }

  // the window's shuffled taps times the weights of one pair of taps: 16-bit products summed
  // in pairs to int32 (pmaddwd), or (SPL) byte products summed in pairs to int16 digits
  template <bool SPL>
  static inline VI mw(VI x, VI w) {
    return SPL ? simd::maddubs_i16(x, w) : simd::madd_i32(x, w);
  }
  template <bool SPL>
  static inline VI acc(VI a, VI b) {
    return SPL ? simd::add_lanes<int16_t>(a, b) : simd::add_lanes<int32_t>(a, b);
  }

  template <int P, bool SPL = false>
  static inline VI block(const View& t, const uint8_t* __restrict__ src, int64_t bk, int64_t tb) {
    const int np = P > 0 ? P : t.pairs;
    const int32_t* bs = t.base + bk * G;
    const uint8_t* cp = t.ctl + tb * np * 16 * G;
    const int16_t* wp = t.w + tb * np * 8 * G;
    // the source row streams from memory: prefetch a few lines ahead of the windows
    _mm_prefetch(reinterpret_cast<const char*>(src + bs[0]) + 384, _MM_HINT_T0);
#if defined(__AVX512BW__)
    __m512i win = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[0])));
    win = _mm512_inserti32x4(win, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[1])), 1);
    win = _mm512_inserti32x4(win, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[2])), 2);
    win = _mm512_inserti32x4(win, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[3])), 3);
    __m512i a = mw<SPL>(_mm512_shuffle_epi8(win, _mm512_load_si512(cp)), _mm512_load_si512(wp));
    for (int p = 1; p < np; ++p)
      a = acc<SPL>(a, mw<SPL>(_mm512_shuffle_epi8(win, _mm512_load_si512(cp + 64 * p)), _mm512_load_si512(wp + 32 * p)));
    return a;
#elif defined(__AVX2__)
    const __m256i win = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[0]))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[1])), 1);
    __m256i a = mw<SPL>(_mm256_shuffle_epi8(win, _mm256_load_si256(reinterpret_cast<const __m256i*>(cp))),
                        _mm256_load_si256(reinterpret_cast<const __m256i*>(wp)));
    for (int p = 1; p < np; ++p)
      a = acc<SPL>(a, mw<SPL>(_mm256_shuffle_epi8(win, _mm256_load_si256(reinterpret_cast<const __m256i*>(cp + 32 * p))),
                              _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + 16 * p))));
    return a;
#else
    const __m128i win = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + bs[0]));
    __m128i a = mw<SPL>(_mm_shuffle_epi8(win, _mm_load_si128(reinterpret_cast<const __m128i*>(cp))),
                        _mm_load_si128(reinterpret_cast<const __m128i*>(wp)));
    for (int p = 1; p < np; ++p)
      a = acc<SPL>(a, mw<SPL>(_mm_shuffle_epi8(win, _mm_load_si128(reinterpret_cast<const __m128i*>(cp + 16 * p))),
                              _mm_load_si128(reinterpret_cast<const __m128i*>(wp + 8 * p))));
    return a;
#endif
  }

  // Whole periods (PER blocks each, known at compile time) from block bk (the start of a
  // period) for np periods: the first period's shuffle controls and weights held in
  // registers, the windows at fixed offsets from one source pointer that moves dper bytes
  // per period. The same shuffles, products and sums as block(): the same integers, with
  // about half the instructions per block (no table index arithmetic, no base table reads;
  // 1080p -> 4K RGB bicubic at AVX2: 20 -> 9 instructions per block of 8 outputs).
  // (out of line: one call per strip of a row; inlined into resize_u8_hfirst, its size moved
  // GCC's inlining of the vertical sums there: AVX-512, which does not use it where the CPU
  // has VBMI, ran 6.2 -> 7.2 ms)
  template <int P, int PER, bool SPL>
  __attribute__((noinline)) void run_periods(const uint8_t* __restrict__ src, int32_t* __restrict__ h, int64_t bk,
                                             int64_t np) const {
    constexpr int NP = P;  // (P > 0 here)
    VI c[PER][NP], wv[PER][NP];
    int64_t off[PER][G];
    const int32_t b0 = base[static_cast<size_t>(per_lo * G)];
    for (int j = 0; j < PER; ++j) {
      for (int q = 0; q < NP; ++q) {
        std::memcpy(&c[j][q], ctl.data() + ((per_lo + j) * NP + q) * 16 * G, sizeof(VI));
        std::memcpy(&wv[j][q], w.data() + ((per_lo + j) * NP + q) * 8 * G, sizeof(VI));
      }
      for (int g = 0; g < G; ++g) off[j][g] = base[static_cast<size_t>((per_lo + j) * G + g)] - b0;
    }
    const uint8_t* s = src + base[static_cast<size_t>(bk * G)];
    for (int64_t m = 0; m < np; ++m, s += dper, h += PER * E) {
      _mm_prefetch(reinterpret_cast<const char*>(s) + 384, _MM_HINT_T0);
      for (int j = 0; j < PER; ++j) {
        auto ld = [&](int g) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + off[j][g])); };
#if defined(__AVX512BW__)
        __m512i win = _mm512_castsi128_si512(ld(0));
        win = _mm512_inserti32x4(win, ld(1), 1);
        win = _mm512_inserti32x4(win, ld(2), 2);
        win = _mm512_inserti32x4(win, ld(3), 3);
        __m512i a = mw<SPL>(_mm512_shuffle_epi8(win, c[j][0]), wv[j][0]);
        for (int q = 1; q < NP; ++q) a = acc<SPL>(a, mw<SPL>(_mm512_shuffle_epi8(win, c[j][q]), wv[j][q]));
#elif defined(__AVX2__)
        const __m256i win = _mm256_inserti128_si256(_mm256_castsi128_si256(ld(0)), ld(1), 1);
        __m256i a = mw<SPL>(_mm256_shuffle_epi8(win, c[j][0]), wv[j][0]);
        for (int q = 1; q < NP; ++q) a = acc<SPL>(a, mw<SPL>(_mm256_shuffle_epi8(win, c[j][q]), wv[j][q]));
#else
        const __m128i win = ld(0);
        __m128i a = mw<SPL>(_mm_shuffle_epi8(win, c[j][0]), wv[j][0]);
        for (int q = 1; q < NP; ++q) a = acc<SPL>(a, mw<SPL>(_mm_shuffle_epi8(win, c[j][q]), wv[j][q]));
#endif
        std::memcpy(h + j * E, &a, sizeof(a));
      }
    }
  }

  // Blocks bk0 .. bk1 - 1 as run() with the whole periods (1 to 3 blocks: 2x with 1 channel
  // or 4, 1 block; 3 channels, 3) through run_periods, the blocks before and after one by one;
  // false (nothing written) where no whole period lies in the range. (Out of line: in run(), it
  // slowed the other tables' blocks, 1.5x RGB bicubic 4%.)
  template <int P, bool SPL>
  __attribute__((noinline)) bool run_split(const uint8_t* __restrict__ src, int32_t* __restrict__ h, int64_t bk0,
                                           int64_t bk1) const {
    const int64_t a = bk0 <= per_lo ? per_lo : per_lo + (bk0 - per_lo + per - 1) / per * per;
    const int64_t np = a < std::min(bk1, per_hi) ? (std::min(bk1, per_hi) - a) / per : 0;
    if (np <= 0) return false;
    const View t = view();
    auto one = [&](int64_t bk, int64_t tb) {
      const VI v = block<P, SPL>(t, src, bk, tb);
      std::memcpy(h + (bk - bk0) * E, &v, sizeof(v));
    };
    t.for_blocks(bk0, a, one);
    if (per == 1) run_periods<P, 1, SPL>(src, h + (a - bk0) * E, a, np);
    else if (per == 2) run_periods<P, 2, SPL>(src, h + (a - bk0) * E, a, np);
    else run_periods<P, 3, SPL>(src, h + (a - bk0) * E, a, np);
    // (for_blocks from a period start: its tables are the first period's)
    t.for_blocks(a + np * per, bk1, one);
    return true;
  }

  // h[0 .. blocks * E) for one source row (entries past DWC are junk).
  template <int P, bool SPL>
  void run(const uint8_t* __restrict__ src, int32_t* __restrict__ h, int64_t bk0, int64_t bk1) const {
    if constexpr (P == 1 || P == 2) {
      if (per >= 1 && per <= 3 && dper >= 0 && run_split<P, SPL>(src, h, bk0, bk1)) return;
    }
    const View t = view();
    t.for_blocks(bk0, bk1, [&](int64_t bk, int64_t tb) {
      const VI a = block<P, SPL>(t, src, bk, tb);
      std::memcpy(h + (bk - bk0) * E, &a, sizeof(a));
    });
  }

  // Two source rows straight to output: out[e] = saturate((w0 * h0[e] + w1 * h1[e] + half) >>
  // rshift) for e < n, with no int32 rows in between (when no other output row shares them).
  template <int P>
  void run2(const uint8_t* __restrict__ s0, const uint8_t* __restrict__ s1, int32_t w0, int32_t w1, int rshift,
            uint8_t* __restrict__ out, int64_t n, bool stream) const {
    // streaming stores of whole aligned blocks (E bytes; the output is not read back here)
    stream = stream && (reinterpret_cast<uintptr_t>(out) & (E - 1)) == 0;
    const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
    const __m128i sh = _mm_cvtsi32_si128(rshift);
    const View t = view();
    // (every block's own tables: this loop, fused and short, ran slower with the shared ones)
    for (int64_t bk = 0; bk < t.blocks; ++bk) {
      const VI h0 = block<P>(t, s0, bk, bk), h1 = block<P>(t, s1, bk, bk);
      uint8_t tmp[E];
      uint8_t* o = (bk + 1) * E <= n ? out + bk * E : tmp;
#if defined(__AVX512BW__)
      __m512i a = _mm512_add_epi32(_mm512_mullo_epi32(h0, _mm512_set1_epi32(w0)), _mm512_mullo_epi32(h1, _mm512_set1_epi32(w1)));
      a = _mm512_sra_epi32(_mm512_add_epi32(a, _mm512_set1_epi32(half)), sh);
      a = _mm512_max_epi32(a, _mm512_setzero_si512());
      if (stream && o != tmp) _mm_stream_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtusepi32_epi8(a));
      else _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtusepi32_epi8(a));
#elif defined(__AVX2__)
      __m256i a = _mm256_add_epi32(_mm256_mullo_epi32(h0, _mm256_set1_epi32(w0)), _mm256_mullo_epi32(h1, _mm256_set1_epi32(w1)));
      a = _mm256_sra_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(half)), sh);
      const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
      const __m128i b8 = _mm_packus_epi16(w16, w16);
      if (stream && o != tmp) _mm_stream_si64(reinterpret_cast<long long*>(o), _mm_cvtsi128_si64(b8));
      else _mm_storel_epi64(reinterpret_cast<__m128i*>(o), b8);
#else
      __m128i a = _mm_add_epi32(_mm_mullo_epi32(h0, _mm_set1_epi32(w0)), _mm_mullo_epi32(h1, _mm_set1_epi32(w1)));
      a = _mm_sra_epi32(_mm_add_epi32(a, _mm_set1_epi32(half)), sh);
      const __m128i w16 = _mm_packus_epi32(a, a);
      const int32_t b4 = _mm_cvtsi128_si32(_mm_packus_epi16(w16, w16));
      std::memcpy(o, &b4, 4);
#endif
      if (o == tmp) std::memcpy(out + bk * E, tmp, static_cast<size_t>(n - bk * E));
    }
  }

  void run2_any(const uint8_t* s0, const uint8_t* s1, int32_t w0, int32_t w1, int rshift, uint8_t* out,
                int64_t n, bool stream) const;
  void run2_pshufb(const uint8_t* s0, const uint8_t* s1, int32_t w0, int32_t w1, int rshift, uint8_t* out,
                   int64_t n, bool stream) const {
    if (pairs == 1) run2<1>(s0, s1, w0, w1, rshift, out, n, stream);
    else if (pairs == 2) run2<2>(s0, s1, w0, w1, rshift, out, n, stream);
    else run2<0>(s0, s1, w0, w1, rshift, out, n, stream);
  }

  template <bool SPL>
  void run_any(const uint8_t* src, int32_t* h, int64_t bk0, int64_t bk1) const;
  // Prefetches the bytes of one source row that blocks bk0 .. bk1 - 1 read (the strips walk
  // down the rows: the hardware prefetchers see a new short run per row and miss its start).
  void prefetch(const uint8_t* src, int64_t bk0, int64_t bk1) const {
    const uint8_t* p = src + base[static_cast<size_t>(bk0 * gpb)];
    const uint8_t* e = src + base[static_cast<size_t>(bk1 * gpb - 1)] + 4 * ge;
    for (; p < e; p += 64) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(e - 1), _MM_HINT_T0);
  }
  template <bool SPL>
  void run_pshufb(const uint8_t* src, int32_t* h, int64_t bk0, int64_t bk1) const {
    if (pairs == 1) run<1, SPL>(src, h, bk0, bk1);
    else if (pairs == 2) run<2, SPL>(src, h, bk0, bk1);
    else run<0, SPL>(src, h, bk0, bk1);
  }
};

#if defined(__AVX512BW__)
// The same passes with one 64-byte window per 16 output elements and vpermb (AVX-512 VBMI,
// checked at run time): one load and one permute per pair of taps instead of four loads,
// three inserts and a shuffle.
template <int P, bool SPL = false>
__attribute__((target("avx512vbmi"))) inline __m512i vbmi_block(const U8Hpass::View& t, const uint8_t* __restrict__ src,
                                                                  int64_t bk) {
  const int np = P > 0 ? P : t.pairs;
  const uint8_t* cp = t.ctl + bk * np * 64;
  const int16_t* wp = t.w + bk * np * 32;
  const uint8_t* p = src + t.base[bk];
  _mm_prefetch(reinterpret_cast<const char*>(p) + 384, _MM_HINT_T0);
  const __m512i win = _mm512_loadu_si512(p);
  // zero-extended bytes: 16-bit taps (SPL: every byte, for pmaddubsw)
  const __mmask64 even = SPL ? ~0ULL : 0x5555555555555555ULL;
  __m512i a = U8Hpass::mw<SPL>(_mm512_maskz_permutexvar_epi8(even, _mm512_load_si512(cp), win), _mm512_load_si512(wp));
  for (int q = 1; q < np; ++q)
    a = U8Hpass::acc<SPL>(a, U8Hpass::mw<SPL>(_mm512_maskz_permutexvar_epi8(even, _mm512_load_si512(cp + 64 * q), win),
                                              _mm512_load_si512(wp + 32 * q)));
  return a;
}

template <int P, bool SPL>
__attribute__((target("avx512vbmi"))) void vbmi_run(U8Hpass::View t, const uint8_t* __restrict__ src,
                                                      int32_t* __restrict__ h, int64_t bk0, int64_t bk1) {
  for (int64_t bk = bk0; bk < bk1; ++bk) _mm512_storeu_si512(h + (bk - bk0) * 16, vbmi_block<P, SPL>(t, src, bk));
}

template <int P>
__attribute__((target("avx512vbmi"))) void vbmi_run2(U8Hpass::View t, const uint8_t* __restrict__ s0,
                                                       const uint8_t* __restrict__ s1, int32_t w0, int32_t w1,
                                                       int rshift, uint8_t* __restrict__ out, int64_t n,
                                                       bool stream) {
  stream = stream && (reinterpret_cast<uintptr_t>(out) & 15) == 0;
  const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
  const __m128i sh = _mm_cvtsi32_si128(rshift);
  const __m512i vw0 = _mm512_set1_epi32(w0), vw1 = _mm512_set1_epi32(w1), vh = _mm512_set1_epi32(half);
  for (int64_t bk = 0; bk < t.blocks; ++bk) {
    const __m512i h0 = vbmi_block<P>(t, s0, bk), h1 = vbmi_block<P>(t, s1, bk);
    __m512i a = _mm512_add_epi32(_mm512_mullo_epi32(h0, vw0), _mm512_mullo_epi32(h1, vw1));
    a = _mm512_max_epi32(_mm512_sra_epi32(_mm512_add_epi32(a, vh), sh), _mm512_setzero_si512());
    const int64_t m = std::min<int64_t>(16, n - bk * 16);
    if (stream && m == 16) _mm_stream_si128(reinterpret_cast<__m128i*>(out + bk * 16), _mm512_cvtusepi32_epi8(a));
    else _mm512_mask_cvtusepi32_storeu_epi8(out + bk * 16, static_cast<__mmask16>((1u << m) - 1), a);
  }
}
#endif

template <bool SPL>
inline void U8Hpass::run_any(const uint8_t* src, int32_t* h, int64_t bk0, int64_t bk1) const {
#if defined(__AVX512BW__)
  if (vbmi) {
    if (pairs == 1) return vbmi_run<1, SPL>(view(), src, h, bk0, bk1);
    if (pairs == 2) return vbmi_run<2, SPL>(view(), src, h, bk0, bk1);
    return vbmi_run<0, SPL>(view(), src, h, bk0, bk1);
  }
#endif
  run_pshufb<SPL>(src, h, bk0, bk1);
}

inline void U8Hpass::run2_any(const uint8_t* s0, const uint8_t* s1, int32_t w0, int32_t w1, int rshift, uint8_t* out,
                              int64_t n, bool stream) const {
#if defined(__AVX512BW__)
  if (vbmi) {
    if (pairs == 1) return vbmi_run2<1>(view(), s0, s1, w0, w1, rshift, out, n, stream);
    if (pairs == 2) return vbmi_run2<2>(view(), s0, s1, w0, w1, rshift, out, n, stream);
    return vbmi_run2<0>(view(), s0, s1, w0, w1, rshift, out, n, stream);
  }
#endif
  run2_pshufb(s0, s1, w0, w1, rshift, out, n, stream);
}
#endif

// The pmaddwd weight pair (w, B w) that multiplies a split element by w (low word w).
inline int32_t split_pair(int32_t w, int B) {
  return static_cast<int32_t>((static_cast<uint32_t>(B * w) << 16) | (static_cast<uint32_t>(w) & 0xFFFFu));
}
// The value of a ring element: the int32 sum, or (split > 0, U8Hpass::split) L + split H of
// its two 16-bit digits (the low and the high word, each signed: digits are added as words,
// so no borrow from L reaches H; pmaddwd reads them so).
inline int32_t ring_value(int32_t x, int split) {
  if (split == 0) return x;
  return static_cast<int16_t>(static_cast<uint32_t>(x) & 0xFFFFu) + split * (x >> 16);
}

// out[e] = saturate((sum_k wy[k] * rows[k][e] + half) >> rshift): the vertical sums of the
// horizontal-first order (exact int32, as the CUDA kernel's). SPL (K = 2 or 4): ring rows of
// split digits (U8Hpass::split = B), each weight w applied by pmaddwd with the pair (w, B w).
template <int K, bool SPL = false>
inline void vsum_u8(const int32_t* const* rows, const int32_t* wy, int ky, int64_t n, int rshift, uint8_t* __restrict__ out,
                    bool stream = false, int B = 0) {
  static_assert(!SPL || K == 2 || K == 4, "split rings: 2 or 4 taps");
  const int kk = K > 0 ? K : ky;
#if defined(__AVX512BW__) || defined(__AVX2__)
  // 2 and 4 taps: 16 outputs per step; outputs larger than the caches (the caller decides)
  // go out with streaming stores (no read for ownership of the output lines), aligned ones
  // only
  if constexpr (K == 2 || K == 4) {
    // wide steps: W outputs packed with saturating packs and stored (streamed) whole
#if defined(__AVX512BW__)
    constexpr int64_t W = 64;
#else
    constexpr int64_t W = 32;
#endif
    int64_t e = 0;
    if (stream) {
      // (to 16 bytes only: every store after the head is then a streaming one; a line written
      // both ways is slow)
      const int64_t head = std::min(n, static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(out) & 15)) & 15));
      if (head > 0) vsum_u8<K, SPL>(rows, wy, ky, head, rshift, out, false, B);
      e = head;
    }
    const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
    const __m128i sh = _mm_cvtsi32_si128(rshift);
#if defined(__AVX512BW__)
    const __m512i vh = _mm512_set1_epi32(half);
    __m512i w[K];
    for (int k = 0; k < K; ++k) w[k] = _mm512_set1_epi32(SPL ? split_pair(wy[k], B) : wy[k]);
    auto mulw = [&](__m512i wk, __m512i x) { return SPL ? _mm512_madd_epi16(x, wk) : _mm512_mullo_epi32(wk, x); };
    auto sum16 = [&](int64_t i) {
      __m512i a = mulw(w[0], _mm512_loadu_si512(rows[0] + i));
      for (int k = 1; k < K; ++k) a = _mm512_add_epi32(a, mulw(w[k], _mm512_loadu_si512(rows[k] + i)));
      return _mm512_sra_epi32(_mm512_add_epi32(a, vh), sh);
    };
    auto step = [&](int64_t i) {
      __m512i a = _mm512_max_epi32(sum16(i), _mm512_setzero_si512());
      return _mm512_cvtusepi32_epi8(a);
    };
    // 64 outputs: saturating packs int32 -> [0, 65535] -> [0, 255] (the same as max(v, 0) then
    // the unsigned saturation of step); 128-bit lane L then holds 4 outputs of each of the 4
    // sums, put back in order by one dword permute
    const __m512i wide_order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    auto wide = [&](int64_t i) {
      const __m512i p0 = _mm512_packus_epi32(sum16(i), sum16(i + 16));
      const __m512i p1 = _mm512_packus_epi32(sum16(i + 32), sum16(i + 48));
      return _mm512_permutexvar_epi32(wide_order, _mm512_packus_epi16(p0, p1));
    };
    auto wide_store = [&](uint8_t* o, __m512i v, bool nt) {
      if (nt) _mm512_stream_si512(reinterpret_cast<__m512i*>(o), v);
      else _mm512_storeu_si512(o, v);
    };
#else
    const __m256i vh = _mm256_set1_epi32(half);
    __m256i w[K];
    for (int k = 0; k < K; ++k) w[k] = _mm256_set1_epi32(SPL ? split_pair(wy[k], B) : wy[k]);
    auto mulw = [&](__m256i wk, __m256i x) { return SPL ? _mm256_madd_epi16(x, wk) : _mm256_mullo_epi32(wk, x); };
    auto half8 = [&](int64_t i) {
      __m256i a = mulw(w[0], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[0] + i)));
      for (int k = 1; k < K; ++k) a = _mm256_add_epi32(a, mulw(w[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + i))));
      return _mm256_sra_epi32(_mm256_add_epi32(a, vh), sh);
    };
    auto step = [&](int64_t i) {
      // saturating packs: int32 -> [0, 65535] -> [0, 255], lanes put back in order
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(half8(i), half8(i + 8)), 0xD8);
      return _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    };
    // 32 outputs: the same packs on four sums, then one dword permute for the order
    const __m256i wide_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    auto wide = [&](int64_t i) {
      const __m256i p0 = _mm256_packus_epi32(half8(i), half8(i + 8));
      const __m256i p1 = _mm256_packus_epi32(half8(i + 16), half8(i + 24));
      return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p0, p1), wide_order);
    };
    auto wide_store = [&](uint8_t* o, __m256i v, bool nt) {
      if (nt) _mm256_stream_si256(reinterpret_cast<__m256i*>(o), v);
      else _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v);
    };
#endif
    auto store16 = [&](int64_t i) {
      if (stream) _mm_stream_si128(reinterpret_cast<__m128i*>(out + i), step(i));
      else _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), step(i));
    };
    if (stream)
      for (; e + 16 <= n && (reinterpret_cast<uintptr_t>(out + e) & (W - 1)) != 0; e += 16) store16(e);
    for (; e + W <= n; e += W) wide_store(out + e, wide(e), stream);
    for (; e + 16 <= n; e += 16) store16(e);
    if (e < n) {
      const int32_t* rr[K];
      for (int k = 0; k < K; ++k) rr[k] = rows[k] + e;
      const int32_t w0 = wy[0];
      for (int64_t i = 0; i < n - e; ++i) {
        int32_t acc = w0 * ring_value(rr[0][i], SPL ? B : 0);
        for (int k = 1; k < K; ++k) acc += wy[k] * ring_value(rr[k][i], SPL ? B : 0);
        const int32_t v = (acc + half) >> rshift;
        out[e + i] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
      }
    }
    return;
  }
#else
  (void)stream;
#endif
  if constexpr (SPL) {  // (the vectors above do these; here for ISAs without them)
    const int32_t half = int32_t(1) << (rshift - 1);
    for (int64_t e = 0; e < n; ++e) {
      int32_t acc = 0;
      for (int k = 0; k < K; ++k) acc += wy[k] * ring_value(rows[k][e], B);
      out[e] = static_cast<uint8_t>(std::min(std::max((acc + half) >> rshift, 0), 255));
    }
    return;
  }
  const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
  const int32_t* __restrict__ r0 = rows[0];
  const int32_t w0 = wy[0];
  if constexpr (K == 2) {
    const int32_t* __restrict__ r1 = rows[1];
    const int32_t w1 = wy[1];
    for (int64_t e = 0; e < n; ++e) {
      const int32_t v = (w0 * r0[e] + w1 * r1[e] + half) >> rshift;
      out[e] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
    }
  } else if constexpr (K == 4) {
    const int32_t* __restrict__ r1 = rows[1];
    const int32_t* __restrict__ r2 = rows[2];
    const int32_t* __restrict__ r3 = rows[3];
    const int32_t w1 = wy[1], w2 = wy[2], w3 = wy[3];
    for (int64_t e = 0; e < n; ++e) {
      const int32_t v = (w0 * r0[e] + w1 * r1[e] + w2 * r2[e] + w3 * r3[e] + half) >> rshift;
      out[e] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
    }
  } else {
    // blocks of 256 elements: sums in a small local buffer
    int32_t acc[256];
    for (int64_t e0 = 0; e0 < n; e0 += 256) {
      const int64_t m = std::min<int64_t>(256, n - e0);
      for (int64_t e = 0; e < m; ++e) acc[e] = w0 * r0[e0 + e];
      for (int k = 1; k < kk; ++k) {
        const int32_t* __restrict__ rk = rows[k] + e0;
        const int32_t wk = wy[k];
        for (int64_t e = 0; e < m; ++e) acc[e] += wk * rk[e];
      }
      for (int64_t e = 0; e < m; ++e) {
        const int32_t v = (acc[e] + half) >> rshift;
        out[e0 + e] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
      }
    }
  }
}

// Two output rows that share their window with mirrored weights (wb[k] = wa[K - 1 - k]: the
// rows 2i + 1, 2i + 2 of a 2x upscale) from the sums and differences of the mirrored ring rows:
//   ta + tb = sum_k<K/2 (wa[k] + wa[K-1-k]) (r_k + r_{K-1-k}),
//   ta - tb = sum_k<K/2 (wa[k] - wa[K-1-k]) (r_k - r_{K-1-k}),
// K/2 multiplies per output element instead of K. Every step is exact modulo 2^32 (wrapping
// int32 adds and multiplies), and 2 (t + half + off) with off = 128 << rshift lies in
// [0, 2^32) (the caller checks the bound from the weights), so a logical shift by rshift + 1
// gives ((t + half) >> rshift) + 128 exactly: the single rows' integers, then saturated.
// Streams when `stream` (both rows at the same alignment modulo 64; the caller checks).
// SPL: ring rows of split digits (as vsum_u8); their sums and differences stay digits (the
// plan bounds each digit of them to int16).
template <int K, bool SPL = false>
inline void vsum2_u8(const int32_t* const* rows, const int32_t* wa, int64_t n, int rshift, uint8_t* __restrict__ oa,
                     uint8_t* __restrict__ ob, bool stream, int B = 0) {
  static_assert(K == 2 || K == 4, "mirrored pairs of 2 or 4 taps");
  const int32_t half = rshift > 0 ? int32_t(1) << (rshift - 1) : 0;
  int64_t e = 0;
  // the single rows' formula for heads and tails (the same integers)
  auto scalar = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      uint32_t a = 0, b = 0;  // (wrapping; the sums themselves fit int32)
      for (int k = 0; k < K; ++k) {
        const int32_t r = ring_value(rows[k][i], SPL ? B : 0);
        a += static_cast<uint32_t>(wa[k]) * static_cast<uint32_t>(r);
        b += static_cast<uint32_t>(wa[K - 1 - k]) * static_cast<uint32_t>(r);
      }
      oa[i] = static_cast<uint8_t>(std::min(std::max((static_cast<int32_t>(a) + half) >> rshift, 0), 255));
      ob[i] = static_cast<uint8_t>(std::min(std::max((static_cast<int32_t>(b) + half) >> rshift, 0), 255));
    }
  };
#if defined(__AVX512BW__) || defined(__AVX2__)
  constexpr int H = K / 2;
  // (split rows: 2 (t / 2^(ax + ay) + half) fits int32 (split_plan), so no offset, and an
  // arithmetic shift)
  const uint32_t bias = 2u * (static_cast<uint32_t>(half) + (SPL ? 0u : 128u << rshift));
  using VI = simd::ivec;
  constexpr int64_t W = simd::kBytes, L = W / 4;  // bytes and int32 lanes of VI
#if defined(__AVX512BW__)
  auto set1 = [](uint32_t v) { return _mm512_set1_epi32(static_cast<int32_t>(v)); };
  auto ld = [](const int32_t* p) { return _mm512_loadu_si512(p); };
  auto add = [](VI x, VI y) { return _mm512_add_epi32(x, y); };
  auto sub = [](VI x, VI y) { return _mm512_sub_epi32(x, y); };
  // the ring rows' sums and differences: digit by digit for split rows
  auto radd = [](VI x, VI y) { return SPL ? _mm512_add_epi16(x, y) : _mm512_add_epi32(x, y); };
  auto rsub = [](VI x, VI y) { return SPL ? _mm512_sub_epi16(x, y) : _mm512_sub_epi32(x, y); };
  auto mul = [](VI w, VI x) { return SPL ? _mm512_madd_epi16(x, w) : _mm512_mullo_epi32(w, x); };
  auto srl = [](VI x, __m128i c) { return SPL ? _mm512_sra_epi32(x, c) : _mm512_srl_epi32(x, c); };
  const VI c128 = _mm512_set1_epi16(128);
  // 4 vectors of v + 128 (< 512) -> 64 bytes in order, v saturated to [0, 255]
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  auto pack4 = [&](VI x0, VI x1, VI x2, VI x3) {
    const VI p0 = SPL ? _mm512_packus_epi32(x0, x1) : _mm512_subs_epu16(_mm512_packus_epi32(x0, x1), c128);
    const VI p1 = SPL ? _mm512_packus_epi32(x2, x3) : _mm512_subs_epu16(_mm512_packus_epi32(x2, x3), c128);
    return _mm512_permutexvar_epi32(order, _mm512_packus_epi16(p0, p1));
  };
  auto put = [&](uint8_t* o, VI v) {
    if (stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(o), v);
    else _mm512_storeu_si512(o, v);
  };
#else
  auto set1 = [](uint32_t v) { return _mm256_set1_epi32(static_cast<int32_t>(v)); };
  auto ld = [](const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  auto add = [](VI x, VI y) { return _mm256_add_epi32(x, y); };
  auto sub = [](VI x, VI y) { return _mm256_sub_epi32(x, y); };
  auto radd = [](VI x, VI y) { return SPL ? _mm256_add_epi16(x, y) : _mm256_add_epi32(x, y); };
  auto rsub = [](VI x, VI y) { return SPL ? _mm256_sub_epi16(x, y) : _mm256_sub_epi32(x, y); };
  auto mul = [](VI w, VI x) { return SPL ? _mm256_madd_epi16(x, w) : _mm256_mullo_epi32(w, x); };
  auto srl = [](VI x, __m128i c) { return SPL ? _mm256_sra_epi32(x, c) : _mm256_srl_epi32(x, c); };
  const VI c128 = _mm256_set1_epi16(128);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  auto pack4 = [&](VI x0, VI x1, VI x2, VI x3) {
    const VI p0 = SPL ? _mm256_packus_epi32(x0, x1) : _mm256_subs_epu16(_mm256_packus_epi32(x0, x1), c128);
    const VI p1 = SPL ? _mm256_packus_epi32(x2, x3) : _mm256_subs_epu16(_mm256_packus_epi32(x2, x3), c128);
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p0, p1), order);
  };
  auto put = [&](uint8_t* o, VI v) {
    if (stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(o), v);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v);
  };
#endif
  VI ws[H], wd[H];
  for (int k = 0; k < H; ++k) {
    if constexpr (SPL) {
      ws[k] = set1(static_cast<uint32_t>(split_pair(wa[k] + wa[K - 1 - k], B)));
      wd[k] = set1(static_cast<uint32_t>(split_pair(wa[k] - wa[K - 1 - k], B)));
    } else {
      ws[k] = set1(static_cast<uint32_t>(wa[k]) + static_cast<uint32_t>(wa[K - 1 - k]));
      wd[k] = set1(static_cast<uint32_t>(wa[k]) - static_cast<uint32_t>(wa[K - 1 - k]));
    }
  }
  const VI vb = set1(bias);
  const __m128i sh = _mm_cvtsi32_si128(rshift + 1);
  // L elements of both rows: v + 128 each
  auto two = [&](int64_t i, VI& xa, VI& xb) {
    VI sum = vb, dif;
    {
      const VI r0 = ld(rows[0] + i), r1 = ld(rows[K - 1] + i);
      sum = add(sum, mul(ws[0], radd(r0, r1)));
      dif = mul(wd[0], rsub(r0, r1));
    }
    for (int k = 1; k < H; ++k) {
      const VI r0 = ld(rows[k] + i), r1 = ld(rows[K - 1 - k] + i);
      sum = add(sum, mul(ws[k], radd(r0, r1)));
      dif = add(dif, mul(wd[k], rsub(r0, r1)));
    }
    xa = srl(add(sum, dif), sh);
    xb = srl(sub(sum, dif), sh);
  };
  // 16 outputs of both rows
  auto put16 = [&](uint8_t* o, __m128i v) {
    if (stream) _mm_stream_si128(reinterpret_cast<__m128i*>(o), v);
    else _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
  };
  auto step16 = [&](int64_t i) {
#if defined(__AVX512BW__)
    VI xa, xb;
    two(i, xa, xb);
    const VI c = _mm512_set1_epi32(SPL ? 0 : 128), z = _mm512_setzero_si512();
    put16(oa + i, _mm512_cvtusepi32_epi8(_mm512_max_epi32(_mm512_sub_epi32(xa, c), z)));
    put16(ob + i, _mm512_cvtusepi32_epi8(_mm512_max_epi32(_mm512_sub_epi32(xb, c), z)));
#else
    VI a0, a1, b0, b1;
    two(i, a0, b0);
    two(i + L, a1, b1);
    auto pk = [&](VI x0, VI x1) {
      const VI p = _mm256_permute4x64_epi64(
          SPL ? _mm256_packus_epi32(x0, x1) : _mm256_subs_epu16(_mm256_packus_epi32(x0, x1), c128), 0xD8);
      return _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    };
    put16(oa + i, pk(a0, a1));
    put16(ob + i, pk(b0, b1));
#endif
  };
  if (stream) {
    // (to 16 bytes only: every store after the head is then a streaming one; a line written
    // both ways is slow)
    e = std::min(n, static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(oa) & 15)) & 15));
    scalar(0, e);
    for (; e + 16 <= n && (reinterpret_cast<uintptr_t>(oa + e) & 63) != 0; e += 16) step16(e);
  }
  auto wide = [&](int64_t i, VI& pa, VI& pb) __attribute__((always_inline)) {
    VI a0, a1, a2, a3, b0, b1, b2, b3;
    two(i, a0, b0);
    two(i + L, a1, b1);
    two(i + 2 * L, a2, b2);
    two(i + 3 * L, a3, b3);
    pa = pack4(a0, a1, a2, a3);
    pb = pack4(b0, b1, b2, b3);
  };
  if constexpr (W < 64) {
    // a whole 64-byte line of one row, then of the other: the lines' halves written in turn
    // with the other row's (32-byte streaming stores) were flushed from the write-combining
    // buffers as partial lines (AVX2 1080p -> 4K RGB bicubic, back-to-back calls: these sums
    // 6.2 -> 3.6 ms, the whole resize 8.4 -> 5.6 ms)
    for (; e + 2 * W <= n; e += 2 * W) {
      VI pa0, pb0, pa1, pb1;
      wide(e, pa0, pb0);
      wide(e + W, pa1, pb1);
      put(oa + e, pa0);
      put(oa + e + W, pa1);
      put(ob + e, pb0);
      put(ob + e + W, pb1);
    }
  }
  for (; e + W <= n; e += W) {
    VI pa, pb;
    wide(e, pa, pb);
    put(oa + e, pa);
    put(ob + e, pb);
  }
  for (; e + 16 <= n; e += 16) step16(e);
#else
  (void)stream;
#endif
  scalar(e, n);
}

// Whether output rows y, y + 1 (of ky taps) can go through vsum2_u8: the same window,
// mirrored weights, and every possible sum within vsum2_u8's range. pmax / nmax: the largest
// sums of positive / negative horizontal weights of any output column.
inline bool mirrored_pair(const ResizeTable& ty, int64_t y, int rshift, int64_t pmax, int64_t nmax) {
  const int ky = ty.k;
  if ((ky != 2 && ky != 4) || y + 1 >= ty.n || ty.start[y + 1] != ty.start[y] || rshift < 1 || rshift > 22) return false;
  const int32_t* wa = static_cast<const int32_t*>(ty.w) + y * ky;
  const int32_t* wb = wa + ky;
  int64_t py = 0, ny = 0;
  for (int k = 0; k < ky; ++k) {
    if (wb[k] != wa[ky - 1 - k]) return false;
    (wa[k] > 0 ? py : ny) += wa[k] > 0 ? wa[k] : -int64_t(wa[k]);
  }
  // t = sum w_y w_x p, p in [0, 255]: t in [-255 (py nmax + ny pmax), 255 (py pmax + ny nmax)]
  const int64_t half = int64_t(1) << (rshift - 1), off = int64_t(128) << rshift;
  const int64_t tmax = 255 * (py * pmax + ny * nmax), tmin = -255 * (py * nmax + ny * pmax);
  return tmin + half + off >= 0 && tmax + half + off < (int64_t(1) << 31);
}

#if defined(__AVX2__)
// The vertical pass of uint8 rows (vertical-first order): v[j] = sum_k wy[k] * r_k[j], then
// (v + half) >> shift when shift > 0; exact int32, the scalar loop's integers. Rows in pairs,
// bytes zero-extended to 16 bits and interleaved, one pmaddwd per pair with the weights
// (wy[k], wy[k + 1]); the sums stay in registers over all ky rows (interleaving permutes the
// elements within 128-bit lanes; undone once before the store).
// Rows and packed weight pairs (wy[2p] low, wy[2p + 1] high) for the pairs; an odd last row
// is paired with itself at weight 0.
struct VPairs {
  const uint8_t* r[66];
  int32_t w[33];
  int np;
  VPairs(const uint8_t* const* rows, const int32_t* wy, int ky) : np((ky + 1) / 2) {
    for (int p = 0; p < np; ++p) {
      const int k = 2 * p;
      const bool two = k + 1 < ky;
      r[k] = rows[k];
      r[k + 1] = two ? rows[k + 1] : rows[k];
      w[p] = static_cast<int32_t>(((two ? static_cast<uint32_t>(wy[k + 1]) : 0u) << 16) |
                                  (static_cast<uint32_t>(wy[k]) & 0xFFFFu));
    }
  }
};

#if defined(__AVX512BW__)
// 64 elements per step (four independent sums), 32 for the rest; returns the elements done.
// MADD(acc, x, w) is acc + pmaddwd(x, w): vpdpwssd where the processor has AVX-512 VNNI.
#define IMKERN_VPASS512(NAME, ATTR, MADD)                                                                      \
  ATTR inline int64_t NAME(const VPairs& q, int64_t n, int shift, int32_t* __restrict__ v) {                \
    const int32_t half = shift > 0 ? int32_t(1) << (shift - 1) : 0;                                          \
    const __m128i sh = _mm_cvtsi32_si128(shift);                                                             \
    const __m512i id0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);           \
    const __m512i id1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);     \
    const __m512i vh = _mm512_set1_epi32(half);                                                              \
    auto ld = [&](int k, int64_t j) {                                                                        \
      return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.r[k] + j)));         \
    };                                                                                                       \
    auto fin = [&](__m512i lo, __m512i hi, int32_t* o) {                                                     \
      if (shift > 0) {                                                                                       \
        lo = _mm512_sra_epi32(_mm512_add_epi32(lo, vh), sh);                                                 \
        hi = _mm512_sra_epi32(_mm512_add_epi32(hi, vh), sh);                                                 \
      }                                                                                                      \
      _mm512_storeu_si512(o, _mm512_permutex2var_epi32(lo, id0, hi));                                        \
      _mm512_storeu_si512(o + 16, _mm512_permutex2var_epi32(lo, id1, hi));                                   \
    };                                                                                                       \
    int64_t j = 0;                                                                                           \
    for (; j + 64 <= n; j += 64) {                                                                           \
      __m512i lo0 = _mm512_setzero_si512(), hi0 = lo0, lo1 = lo0, hi1 = lo0;                                 \
      for (int p = 0; p < q.np; ++p) {                                                                       \
        const __m512i wp = _mm512_set1_epi32(q.w[p]);                                                        \
        const __m512i a0 = ld(2 * p, j), b0 = ld(2 * p + 1, j);                                              \
        const __m512i a1 = ld(2 * p, j + 32), b1 = ld(2 * p + 1, j + 32);                                    \
        lo0 = MADD(lo0, _mm512_unpacklo_epi16(a0, b0), wp);                                                  \
        hi0 = MADD(hi0, _mm512_unpackhi_epi16(a0, b0), wp);                                                  \
        lo1 = MADD(lo1, _mm512_unpacklo_epi16(a1, b1), wp);                                                  \
        hi1 = MADD(hi1, _mm512_unpackhi_epi16(a1, b1), wp);                                                  \
      }                                                                                                      \
      fin(lo0, hi0, v + j);                                                                                  \
      fin(lo1, hi1, v + j + 32);                                                                             \
    }                                                                                                        \
    for (; j + 32 <= n; j += 32) {                                                                           \
      __m512i lo = _mm512_setzero_si512(), hi = lo;                                                          \
      for (int p = 0; p < q.np; ++p) {                                                                       \
        const __m512i wp = _mm512_set1_epi32(q.w[p]);                                                        \
        const __m512i a = ld(2 * p, j), b = ld(2 * p + 1, j);                                                \
        lo = MADD(lo, _mm512_unpacklo_epi16(a, b), wp);                                                      \
        hi = MADD(hi, _mm512_unpackhi_epi16(a, b), wp);                                                      \
      }                                                                                                      \
      fin(lo, hi, v + j);                                                                                    \
    }                                                                                                        \
    return j;                                                                                                \
  }
#define IMKERN_MADD_BW(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
#define IMKERN_MADD_VNNI(acc, x, w) _mm512_dpwssd_epi32(acc, x, w)
IMKERN_VPASS512(vpass_u8_bw, , IMKERN_MADD_BW)
IMKERN_VPASS512(vpass_u8_vnni, __attribute__((target("avx512vnni"))), IMKERN_MADD_VNNI)
#undef IMKERN_MADD_BW
#undef IMKERN_MADD_VNNI
#undef IMKERN_VPASS512
#endif

inline void vpass_u8_madd(const uint8_t* const* rows, const int32_t* wy, int ky, int64_t n, int shift,
                          int32_t* __restrict__ v) {
  const int32_t half = shift > 0 ? int32_t(1) << (shift - 1) : 0;
  const VPairs q(rows, wy, ky);
  int64_t j = 0;
#if defined(__AVX512BW__)
  static const bool has_vnni = cpu_has(CpuFeature::avx512vnni);
  j = has_vnni ? vpass_u8_vnni(q, n, shift, v) : vpass_u8_bw(q, n, shift, v);
#else
  const __m128i sh = _mm_cvtsi32_si128(shift);
  const __m256i vh = _mm256_set1_epi32(half);
  auto ld = [&](int k, int64_t jj) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q.r[k] + jj)));
  };
  auto fin = [&](__m256i lo, __m256i hi, int32_t* o) {
    if (shift > 0) {
      lo = _mm256_sra_epi32(_mm256_add_epi32(lo, vh), sh);
      hi = _mm256_sra_epi32(_mm256_add_epi32(hi, vh), sh);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
  };
  // 32 elements per step (four independent sums), 16 for the rest
  for (; j + 32 <= n; j += 32) {
    __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    for (int p = 0; p < q.np; ++p) {
      const __m256i wp = _mm256_set1_epi32(q.w[p]);
      const __m256i a0 = ld(2 * p, j), b0 = ld(2 * p + 1, j);
      const __m256i a1 = ld(2 * p, j + 16), b1 = ld(2 * p + 1, j + 16);
      lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a0, b0), wp));
      hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(_mm256_unpackhi_epi16(a0, b0), wp));
      lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(_mm256_unpacklo_epi16(a1, b1), wp));
      hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a1, b1), wp));
    }
    fin(lo0, hi0, v + j);
    fin(lo1, hi1, v + j + 16);
  }
  for (; j + 16 <= n; j += 16) {
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (int p = 0; p < q.np; ++p) {
      const __m256i wp = _mm256_set1_epi32(q.w[p]);
      const __m256i a = ld(2 * p, j), b = ld(2 * p + 1, j);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wp));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wp));
    }
    fin(lo, hi, v + j);
  }
#endif
  for (; j < n; ++j) {
    int32_t a = 0;
    for (int k = 0; k < ky; ++k) a += wy[k] * static_cast<int32_t>(rows[k][j]);
    v[j] = shift > 0 ? (a + half) >> shift : a;
  }
}
#endif

#if defined(__AVX2__)
// Split digits for the uint8 horizontal-first order (U8Hpass::split): where every horizontal
// weight is a multiple of 2^ax and every vertical one of 2^ay, and a base B = 2^b keeps the
// digits of wx / 2^ax (lo in [-B/2, B/2), hi) and their sums over the window, doubled (the
// mirrored pairs' sums and differences), within int16 (pmaddubsw pairs within it too) and B
// times the vertical weights u = wy / 2^ay (and their mirrored sums and differences) within
// int16, the ring holds each horizontal sum g = wx.p / 2^ax as 65536 H + L (L + B H = g) and
// the vertical sums multiply by pmaddwd (one uop; vpmulld is two on Intel cores) with the
// exact integers: t = 2^(ax + ay) sum_k u_k g_k, so out = sat((sum_k u_k g_k + 2^(r2 - 1)) >>
// r2) with r2 = rshift - ax - ay >= 1. cv2's bicubic and bilinear tables at 2x (multiples of 8
// and 512) allow it; chosen from the tables, not the processor. B = 0: no split.
struct SplitPlan {
  int B = 0, ax = 0, ay = 0, r2 = 0;
};

inline SplitPlan split_plan(const ResizeTable& ty, const ResizeTable& tx, int rshift) {
  SplitPlan q;
  const int32_t* wx = static_cast<const int32_t*>(tx.w);
  const int32_t* wy = static_cast<const int32_t*>(ty.w);
  const int kx = tx.k, ky = ty.k;
  if (ky != 2 && ky != 4) return q;
  uint32_t ox = 0, oy = 0;
  for (int64_t i = 0; i < tx.n * kx; ++i) ox |= static_cast<uint32_t>(wx[i]);
  for (int64_t i = 0; i < ty.n * ky; ++i) oy |= static_cast<uint32_t>(wy[i]);
  if (ox == 0 || oy == 0) return q;
  const int ax = __builtin_ctz(ox), ay = __builtin_ctz(oy), r2 = rshift - ax - ay;
  if (r2 < 1 || r2 > 22) return q;
  int64_t umax = 0, su = 0, sv = 0;  // the largest |u_k| + |u_(K-1-k)|, sum_k |u_k|, sum_k |v_k|
  for (int64_t y = 0; y < ty.n; ++y) {
    int64_t a = 0;
    for (int k = 0; k < ky; ++k) {
      umax = std::max<int64_t>(umax, std::abs(int64_t(wy[y * ky + k] >> ay)) + std::abs(int64_t(wy[y * ky + ky - 1 - k] >> ay)));
      a += std::abs(int64_t(wy[y * ky + k] >> ay));
    }
    su = std::max(su, a);
  }
  for (int64_t x = 0; x < tx.n; ++x) {
    int64_t a = 0;
    for (int k = 0; k < kx; ++k) a += std::abs(int64_t(wx[x * kx + k] >> ax));
    sv = std::max(sv, a);
  }
  // the mirrored pairs' doubled sums 2 (sum_k u_k g_k + 2^(r2 - 1)) within int32 (vsum2_u8)
  if (2 * (255 * su * sv + (int64_t(1) << (r2 - 1))) >= (int64_t(1) << 31)) return q;
  for (int B = 128; B >= 2; B /= 2) {
    if (B * umax > 32767) continue;
    bool ok = true;
    for (int64_t x = 0; x < tx.n && ok; ++x) {
      int64_t lp = 0, ln = 0, hp = 0, hn = 0;  // the digits' positive and negative sums
      for (int k = 0; k < kx && ok; ++k) {
        const int32_t v = wx[x * kx + k] >> ax, lo = ((v + B / 2) & (B - 1)) - B / 2, hi = (v - lo) >> __builtin_ctz(static_cast<unsigned>(B));  // (exact)
        if (hi > 127 || hi < -128) ok = false;
        (lo > 0 ? lp : ln) += std::abs(lo);
        (hi > 0 ? hp : hn) += std::abs(hi);
      }
      // (the window's sum bounds each pmaddubsw pair's; doubled for the mirrored sums)
      ok = ok && 510 * std::max({lp, ln, hp, hn}) <= 32767;
    }
    if (ok) {
      q.B = B;
      q.ax = ax;
      q.ay = ay;
      q.r2 = r2;
      return q;
    }
  }
  return q;
}
#endif

#if defined(__SSSE3__)
// uint8 with no intermediate shift: every source row the outputs need is resized
// horizontally once (U8Hpass) into a ring of ky int32 rows, then each output row is the
// ky-row weighted sum, rounded once: the same exact integer sum as the vertical-first order
// and the CUDA kernel.
// SPL: split digits (hp.split = B, built with SplitPlan sp): the vertical sums with the weights
// u = wy / 2^sp.ay and the shift sp.r2 (the same integers).
template <bool SPL = false>
void resize_u8_hfirst(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                      const ResizeTable& tx, const U8Hpass& hp, int rshift, int ay = 0, int r2 = 0) {
  const int ky = ty.k;
  const int32_t* wy = static_cast<const int32_t*>(ty.w);
  std::vector<int32_t> uw;
  if constexpr (SPL) {
    uw.resize(static_cast<size_t>(ty.n * ky));
    for (int64_t i = 0; i < ty.n * ky; ++i) uw[static_cast<size_t>(i)] = wy[i] >> ay;
  }
  const int32_t* wv = SPL ? uw.data() : wy;  // the vertical sums' weights and shift
  const int vs = SPL ? r2 : rshift;
  const int B = hp.split;
  const int64_t DWC = d.w * d.c;
  // blocks per column strip: ky ring rows of int32 in half the L1 data cache (at least 8
  // KiB; the other half holds the tables and the outputs' lines): 16 KiB on a 32 KiB L1 (Zen
  // 4, as before); 24 KiB on a 48 KiB one, whose longer strips let the source rows stream in
  // longer runs (Xeon, 1080p -> 4K RGB bicubic AVX2, one thread, 8.0 -> 7.7 ms; 32 and 64
  // KiB no faster)
  const int64_t ring_bytes = std::max<int64_t>(8192, params().strip_l1 / 2);
  const int64_t sb = std::max<int64_t>(1, (ring_bytes / (4 * ky)) / hp.elems);
  const int64_t stride = (sb * hp.elems + 15) / 16 * 16;
  const int64_t rows = d.n * d.h;
  // two taps and no source row shared by consecutive output rows (shrinking by 2 or more):
  // both rows of each output row straight to the output
  bool fused = ky == 2 && !SPL;
  // the outputs go out with streaming stores unless input and output fit in half the cache
  // this process gets (cpu_params stream_bytes; the rest holds the rings, the tables and
  // whatever the caller keeps): measured on Zen 4, 1080p -> 4K bicubic (31 MB in all, a 32 MB
  // L3) runs 1.2x faster streamed
  const bool stream = 2 * (s.n * s.h * s.w * s.c + rows * DWC) > params().stream_bytes;
  for (int64_t y = 1; y < d.h && fused; ++y) fused = ty.start[y] >= ty.start[y - 1] + 2;
  // output rows y, y + 1 summed together (vsum2_u8): pair[y] = 1
  std::vector<uint8_t> pair;
  if (!fused && (ky == 2 || ky == 4)) {
    int64_t pmax = 0, nmax = 0;
    const int32_t* wx = static_cast<const int32_t*>(tx.w);
    for (int64_t x = 0; x < tx.n; ++x) {
      int64_t px = 0, nx = 0;
      for (int k = 0; k < tx.k; ++k) (wx[x * tx.k + k] > 0 ? px : nx) += std::abs(int64_t(wx[x * tx.k + k]));
      pmax = std::max(pmax, px);
      nmax = std::max(nmax, nx);
    }
    pair.assign(static_cast<size_t>(d.h), 0);
    bool any = false;
    for (int64_t y = 0; y + 1 < d.h; ++y)
      if (mirrored_pair(ty, y, rshift, pmax, nmax)) {
        pair[static_cast<size_t>(y)] = 1;
        any = true;
        ++y;
      }
    if (!any) pair.clear();
  }
  parallel_for(0, rows, rows_grain(rows, (ky + 2 * hp.pairs) * DWC), [&](int64_t t0, int64_t t1) {
    int32_t* ring = thread_scratch<int32_t>(2, static_cast<size_t>(ky * stride));
    int64_t keys[16];
    const int32_t* rp[16];
    if (fused) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / d.h, y = t % d.h;
        const int64_t sy0 = ty.start[y];
        const int32_t* wr = wy + y * ky;
        hp.run2_any(row_ptr<uint8_t>(src, s, b, sy0), row_ptr<uint8_t>(src, s, b, sy0 + 1), wr[0], wr[1], rshift,
                    row_ptr<uint8_t>(dst, d, b, y), DWC, stream);
      }
      if (stream) stream_fence();
      return;
    }
    // column strips whose ring of ky int32 rows stays in L1: the vertical sums read each
    // ring row once per output row
    for (int64_t bk0 = 0; bk0 < hp.blocks; bk0 += sb) {
      const int64_t bk1 = std::min(hp.blocks, bk0 + sb);
      const int64_t e0 = bk0 * hp.elems, n = std::min(DWC, bk1 * hp.elems) - e0;
      for (int k = 0; k < ky; ++k) keys[k] = -1;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / d.h, y = t % d.h;
        const int64_t sy0 = ty.start[y];
        const int32_t* wr = wv + y * ky;
        uint8_t* o = row_ptr<uint8_t>(dst, d, b, y) + e0;
        uint8_t* o2 = nullptr;  // the next row's, when the pair is summed together
        if (!pair.empty() && pair[static_cast<size_t>(y)] && t + 1 < t1) {
          o2 = row_ptr<uint8_t>(dst, d, b, y + 1) + e0;
          // streamed pairs need one alignment (within 64 bytes) for both rows
          if (stream && ((reinterpret_cast<uintptr_t>(o) ^ reinterpret_cast<uintptr_t>(o2)) & 63) != 0) o2 = nullptr;
        }
        for (int k = 0; k < ky; ++k) {
          const int64_t sy = sy0 + k, slot = sy % ky, key = b * s.h + sy;
          if (keys[slot] != key) {
            hp.run_any<SPL>(row_ptr<uint8_t>(src, s, b, sy), ring + slot * stride, bk0, bk1);
            keys[slot] = key;
          }
          rp[k] = ring + slot * stride;
        }
        for (int64_t sy = sy0 + ky; sy < std::min<int64_t>(s.h, sy0 + ky + 2); ++sy)
          hp.prefetch(row_ptr<uint8_t>(src, s, b, sy), bk0, bk1);
        if (o2 != nullptr) {
          if (ky == 2) vsum2_u8<2, SPL>(rp, wr, n, vs, o, o2, stream, B);
          else vsum2_u8<4, SPL>(rp, wr, n, vs, o, o2, stream, B);
          ++t;
        } else if (ky == 2) vsum_u8<2, SPL>(rp, wr, ky, n, vs, o, stream, B);
        else if (ky == 4) vsum_u8<4, SPL>(rp, wr, ky, n, vs, o, stream, B);
        else if constexpr (!SPL) vsum_u8<0>(rp, wr, ky, n, rshift, o);
      }
    }
    if (stream) stream_fence();
  });
}
#endif

// ---- float sums (float32, uint16 images) -----------------------------------------------------
// The vertical sums of source elements [j0, j1) of ky rows: v[j] = sum_k wy[k] rows[k][j]
// (tap 0's product, then a multiply-add per row). K: ky when known at compile time.
template <typename T, int K>
inline void vsum_f32(const T* const* rows, const float* wy, int ky, int64_t j0, int64_t j1, float* __restrict__ v) {
  const int kk = K > 0 ? K : ky;
  constexpr int L = simd::Vec<float>::lanes;
  int64_t j = j0;
  // four independent chains of ky - 1 fused multiply-adds (two were latency-bound at 8 taps:
  // 300x300x3 -> 224x224 lanczos, AVX-512)
  for (; j + 4 * L <= j1; j += 4 * L) {
    simd::vec_t<float> a[4];
    for (int u = 0; u < 4; ++u) a[u] = wy[0] * load_vec<float, T>(rows[0] + j + u * L);
    for (int k = 1; k < kk; ++k)
      for (int u = 0; u < 4; ++u) a[u] = fmadd_f32(wy[k], load_vec<float, T>(rows[k] + j + u * L), a[u]);
    for (int u = 0; u < 4; ++u) simd::storeu(v + j + u * L, a[u]);
  }
  for (; j + L <= j1; j += L) {
    simd::vec_t<float> a0 = wy[0] * load_vec<float, T>(rows[0] + j);
    for (int k = 1; k < kk; ++k) a0 = fmadd_f32(wy[k], load_vec<float, T>(rows[k] + j), a0);
    simd::storeu(v + j, a0);
  }
  for (; j < j1; ++j) {
    float a = wy[0] * static_cast<float>(rows[0][j]);
    for (int k = 1; k < kk; ++k) a = fmadd_f32(wy[k], static_cast<float>(rows[k][j]), a);
    v[j] = a;
  }
}

template <typename T>
inline void vsum_f32_any(const T* const* rows, const float* wy, int ky, int64_t j0, int64_t j1, float* v) {
  if (ky == 2) vsum_f32<T, 2>(rows, wy, ky, j0, j1, v);
  else if (ky == 4) vsum_f32<T, 4>(rows, wy, ky, j0, j1, v);
  else vsum_f32<T, 0>(rows, wy, ky, j0, j1, v);
}

// The vertical sums of ring rows straight to the output (the horizontal-first order):
// out[e] = T(sum_k wy[k] rows[k][e]), streamed where Stream. Backward: the vectors from the
// row's end down (see resize_f32_hfirst: 4K aliasing).
// Elements [0, n) of an output row: `one(e)` for the elements before `head` and after the last
// whole vector, `vec(e)` for the vectors of L elements from `head`; first to last, or last to
// first (`backward`: the order that keeps the stores off the loads' 4 KiB aliases).
// G > 1 vectors per step: `group(e)` for runs of G vectors (G L elements) from `head + to_group`
// (rounded down to whole vectors: where the streamed rows reach a 64-byte line), `vec(e)` for
// the vectors before it and after the last whole group. G = 1: `group` takes every vector from
// `head` on (`to_group` is not read).
// TailVec (plain stores; `vec` computes each element as `one` does): the elements after the
// last whole vector are one vector ending at n, which writes some of the body's elements again
// with the same values (a row of 300 floats at AVX-512 had 12 elements of scalar formula;
// 224 -> 300 gray float32, one thread, kernel call: bilinear 24.9 -> 24.6 us, bicubic 39.2 ->
// 38.4).
// vend (default n): the vectors end there, the elements from the last whole vector before it
// on go to `one` (streamed rows: vend = stream_span's end, so the plain tail shares no line
// with the streamed vectors).
template <int L, int G, bool TailVec, typename One, typename Vec, typename Group>
__attribute__((always_inline)) inline void walk_row(int64_t n, int64_t head, int64_t to_group, bool backward, One&& one,
                                                    Vec&& vec, Group&& group, int64_t vend = -1) {
  if (vend < 0) vend = n;
  const int64_t ghead = G == 1 ? head : head + std::min(vend - head, to_group) / L * L;
  const int64_t groups = ghead + (vend - ghead) / (G * L) * (G * L);
  const int64_t body = G == 1 ? groups : groups + (vend - groups) / L * L;
  const bool tail_vec = TailVec && body < n && n >= L;
  if (!backward) {
    for (int64_t e = 0; e < head; ++e) one(e);
    for (int64_t e = head; e < ghead; e += L) vec(e);
    for (int64_t e = ghead; e < groups; e += G * L) group(e);
    for (int64_t e = groups; e < body; e += L) vec(e);
    if (tail_vec) vec(n - L);
    else
      for (int64_t e = body; e < n; ++e) one(e);
  } else {
    if (tail_vec) vec(n - L);
    else
      for (int64_t e = n - 1; e >= body; --e) one(e);
    for (int64_t e = body - L; e >= groups; e -= L) vec(e);
    for (int64_t e = groups - G * L; e >= ghead; e -= G * L) group(e);
    for (int64_t e = ghead - L; e >= head; e -= L) vec(e);
    for (int64_t e = head - 1; e >= 0; --e) one(e);
  }
}

// The streamed part of an output row for vsum_out_f32 / vsum_out2_f32 (scalar heads and
// tails: stream_span with one-element ends); a row not aligned to T streams nothing but keeps
// its vectors (put_out stores them plainly), a row too short for a whole line takes scalars.
template <typename T>
inline StreamSpan resize_stream_span(const T* out, int64_t n) {
  if (reinterpret_cast<uintptr_t>(out) % sizeof(T)) return {0, n};
  const StreamSpan sp = stream_span<T, 1>(out, n);
  return sp.end > sp.begin ? sp : StreamSpan{n, n};
}

template <typename T, int K, bool Stream, typename S = float>
inline void vsum_out_f32(const S* const* rows, const float* wy, int ky, int64_t n, T* __restrict__ out,
                         bool backward) {
  const int kk = K > 0 ? K : ky;
  constexpr int L = simd::Vec<float>::lanes;
  // the weights in registers (loads through wy would be repeated after every store: out may
  // alias them)
  float wl[K > 0 ? K : 1];
  if constexpr (K > 0) {
    for (int k = 0; k < K; ++k) wl[k] = wy[k];
    wy = wl;
  }
  auto one = [&](int64_t e) {
    float a = wy[0] * static_cast<float>(rows[0][e]);
    for (int k = 1; k < kk; ++k) a = fmadd_f32(wy[k], static_cast<float>(rows[k][e]), a);
    out[e] = to_output<T, float>(a);
  };
  auto vec = [&](int64_t e) {
    simd::vec_t<float> a = wy[0] * load_vec<float, S>(rows[0] + e);
    for (int k = 1; k < kk; ++k) a = fmadd_f32(wy[k], load_vec<float, S>(rows[k] + e), a);
    put_out<T, Stream>(out + e, a);
  };
  // streamed: the whole lines of stream_span by streaming vectors, the elements before and
  // after by the scalar formula (no line takes both kinds of store)
  const StreamSpan sp = Stream ? resize_stream_span(out, n) : StreamSpan{0, n};
  walk_row<L, 1, !Stream>(n, sp.begin, 0, backward, one, vec, vec, sp.end);
}

template <typename T, bool Stream, typename S = float>
inline void vsum_out_f32_any(const S* const* rows, const float* wy, int ky, int64_t n, T* out, bool backward) {
  if (ky == 2) vsum_out_f32<T, 2, Stream, S>(rows, wy, ky, n, out, backward);
  else if (ky == 4) vsum_out_f32<T, 4, Stream, S>(rows, wy, ky, n, out, backward);
  else vsum_out_f32<T, 0, Stream, S>(rows, wy, ky, n, out, backward);
}

// Whether a float table is the identity: one tap of weight 1 at each index (an axis whose size
// does not change: resize_tables in Python).
// One tap of weight 1 for every output (an unchanged axis, or bilinear / bicubic / lanczos at
// an odd integer shrink: the tables keep only the nonzero tap): each output is a source
// element times 1, that element itself (NaN, infinities and signed zeros included).
inline bool is_pick_f32(const ResizeTable& t) {
  if (t.k != 1) return false;
  const float* w = static_cast<const float*>(t.w);
  for (int64_t i = 0; i < t.n; ++i)
    if (w[i] != 1.f) return false;
  return true;
}

// The identity: a pick of every source element in order.
inline bool is_identity_f32(const ResizeTable& t, int64_t src) {
  if (t.n != src || !is_pick_f32(t)) return false;
  for (int64_t i = 0; i < t.n; ++i)
    if (t.start[i] != i) return false;
  return true;
}

// The leading output pixels whose kx taps, read as whole 4-lane vectors (3 channels: a lane
// past each pixel), stay inside a source row of SWC elements (tx's starts never decrease): the
// per-pixel vector passes may read a row in place for these; the rest take an exact loop.
inline int64_t pixels_in_row(const ResizeTable& tx, int kx, int64_t C, int64_t SWC) {
  int64_t n = tx.n;
  while (n > 0 && (tx.start[n - 1] + kx - 1) * C + 4 > SWC) --n;
  return n;
}

// Two output rows with the same window of K ring rows (an upscale by 2 pairs rows 2i + 1 and
// 2i + 2): each ring vector is loaded once for both rows, and each row's sum is
// vsum_out_f32's, in its order (the same bits). The caller checks that both rows stream from
// the same element (the same head).
// Streamed, the vectors go out a whole 64-byte line of one row at a time (V vectors: AVX2
// floats 2, uint16 4 (AVX-512 2)), as in vsum2_u8: lines written in parts, in turn with the
// other row's, left the write-combining buffers partial (AVX2, 1080p -> 4K bicubic, 1 thread:
// uint16 RGB 8.3 -> 6.4 ms, float32 gray 3.08 -> 2.90, float32 RGB 8.37 -> 8.13).
template <typename T, int K, bool Stream>
inline void vsum_out2_f32(const float* const* rows, const float* wa, const float* wb, int64_t n, T* __restrict__ oa,
                          T* __restrict__ ob, bool backward) {
  constexpr int L = simd::Vec<float>::lanes;
  constexpr int V = Stream && L * sizeof(T) < 64 ? static_cast<int>(64 / (L * sizeof(T))) : 1;
  float ua[K], ub[K];  // the weights in registers (out may alias them)
  const float* r[K];
  for (int k = 0; k < K; ++k) ua[k] = wa[k], ub[k] = wb[k], r[k] = rows[k];
  auto one = [&](int64_t e) {
    float a = ua[0] * r[0][e];
    for (int k = 1; k < K; ++k) a = fmadd_f32(ua[k], r[k][e], a);
    float b = ub[0] * r[0][e];
    for (int k = 1; k < K; ++k) b = fmadd_f32(ub[k], r[k][e], b);
    oa[e] = to_output<T, float>(a);
    ob[e] = to_output<T, float>(b);
  };
  // (always inlined: GCC made this a call per vector, 1.2x slower at AVX2)
  auto sums = [&](int64_t e, simd::vec_t<float>& a, simd::vec_t<float>& b) __attribute__((always_inline)) {
    simd::vec_t<float> x[K];
    for (int k = 0; k < K; ++k) x[k] = simd::loadu(r[k] + e);
    a = ua[0] * x[0];
    b = ub[0] * x[0];
    for (int k = 1; k < K; ++k) a = fmadd_f32(ua[k], x[k], a);
    for (int k = 1; k < K; ++k) b = fmadd_f32(ub[k], x[k], b);
  };
  auto vec = [&](int64_t e) __attribute__((always_inline)) {
    simd::vec_t<float> a, b;
    sums(e, a, b);
    put_out<T, Stream>(oa + e, a);
    put_out<T, Stream>(ob + e, b);
  };
  // whole lines of V vectors per row in turn (V = 1: vectors)
  auto line = [&](int64_t e) __attribute__((always_inline)) {
    simd::vec_t<float> a[V], b[V];
    for (int v = 0; v < V; ++v) sums(e + v * L, a[v], b[v]);
    for (int v = 0; v < V; ++v) put_out<T, Stream>(oa + e + v * L, a[v]);
    for (int v = 0; v < V; ++v) put_out<T, Stream>(ob + e + v * L, b[v]);
  };
  // streamed: as vsum_out_f32 (both rows at one place in their lines, checked by the caller),
  // the lines from stream_span's begin on
  const StreamSpan sp = Stream ? resize_stream_span(oa, n) : StreamSpan{0, n};
  walk_row<L, V, !Stream>(n, sp.begin, 0, backward, one, vec, line, sp.end);
}

// 4K aliasing (see resize_f32_hfirst): the sums of output rows at `outs` from ring rows at
// `ring` (all ring rows at one offset modulo 4096) go backward when that keeps every
// pending store further from the loads modulo 4096 than going forward does. Forward, a store
// e' bytes behind the loads aliases them when e' = (out - ring) mod 4096; backward, when
// e' = (ring - out) mod 4096 (ahead of them); the larger the distance, the more stores drain
// first. One row: backward when the ring is more than 2 KiB ahead of it, as before.
inline bool sum_backward(const void* ring, const void* const* outs, int n_out) {
  int64_t fwd = 4096, bwd = 4096;
  for (int i = 0; i < n_out; ++i) {
    const int64_t ahead =
        static_cast<int64_t>((reinterpret_cast<uintptr_t>(ring) - reinterpret_cast<uintptr_t>(outs[i])) & 4095);
    fwd = std::min(fwd, ahead == 0 ? 4096 : 4096 - ahead);
    bwd = std::min(bwd, ahead == 0 ? 4096 : ahead);
  }
  return bwd > fwd;
}

// Height shrinking or kept, float sums: each output row in column chunks whose source span
// stays in L1 (about 4096 elements): the vertical sums of the chunk's source elements only,
// then its outputs' horizontal taps (lane permutes where the plan has them, else per-pixel
// vector loads or the scalar formula), reading the sums back from L1. Only the ky rows of each
// output row are read (a shrink by more than 2 skips the rows between), and only the source
// span of the chunk's outputs. (Software prefetches of the next chunk, chunks of 256 to 8192
// elements, and a fused pass that sums each window's rows in registers instead of a row of
// sums all measured the same on Zen 4, 4K -> 1080p bilinear.)
// The width kept (an identity x table), float sums: each output row is the vertical sum of its
// source rows, stored straight (streamed past the cache share), whether the height shrinks or
// grows: no horizontal pass, so no tables or plan (the sums those paths make, times 1).
template <typename T>
void resize_f32_rows(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty) {
  const int64_t SWC = s.w * s.c, rows = d.n * d.h;
  const int ky = ty.k;
  const float* wy = static_cast<const float*>(ty.w);
  const bool stream = 2 * static_cast<int64_t>(sizeof(T)) * (s.n * s.h * SWC + rows * SWC) > params().stream_bytes;
  parallel_for(0, rows, rows_grain(rows, ky * SWC), [&](int64_t t0, int64_t t1) {
    const T* rr[256];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      for (int k = 0; k < ky; ++k) rr[k] = row_ptr<T>(src, s, b, ty.start[y] + k);
      T* orow = row_ptr<T>(dst, d, b, y);
      if (stream) vsum_out_f32_any<T, true, T>(rr, wy + y * ky, ky, SWC, orow, false);
      else vsum_out_f32_any<T, false, T>(rr, wy + y * ky, ky, SWC, orow, false);
    }
    if (stream) stream_fence();
  });
}

template <typename T>
void resize_f32_vfirst(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                       const ResizeTable& tx, const int32_t* ip, const float* wp, int64_t ws, const PermPlan& plan) {
  const int64_t C = s.c, SWC = s.w * C, DW = d.w, DWC = DW * C;
  const int ky = ty.k, kx = tx.k;
  const float* wy = static_cast<const float*>(ty.w);
  const float* wx = static_cast<const float*>(tx.w);
  // chunks of whole pixels and whole permute blocks (a multiple of C * kPermL elements, from
  // the plan's first block on)
  const int64_t unit = C * std::max(kPermL, 1);
  const double ratio = static_cast<double>(SWC) / static_cast<double>(DWC);
  const int64_t ce = std::max<int64_t>(1, static_cast<int64_t>(4096.0 / std::max(ratio, 1.0) / unit)) * unit;
  const int64_t off = plan.nw > 0 ? plan.off : 0;
  const int64_t nch = (DWC - off + ce - 1) / ce + (off > 0 ? 1 : 0);
  std::vector<int64_t> cb(static_cast<size_t>(nch + 1));
  for (int64_t c = 0; c <= nch; ++c) cb[c] = std::min(DWC, c == 0 ? 0 : off + (off > 0 ? c - 1 : c) * ce);
  cb[nch] = DWC;
  std::vector<int64_t> lo(static_cast<size_t>(nch)), hi(static_cast<size_t>(nch));
  for (int64_t c = 0; c < nch; ++c) {
    int64_t l = INT64_MAX, h = 0;
    for (int64_t e = cb[c]; e < cb[c + 1]; ++e) {
      l = std::min<int64_t>(l, ip[e]);
      h = std::max<int64_t>(h, ip[e] + (kx - 1) * C + 1);
    }
    lo[c] = l;
    hi[c] = h;
  }
  const int64_t rows = d.n * d.h;
  const bool stream = 2 * static_cast<int64_t>(sizeof(T)) * (s.n * s.h * SWC + rows * DWC) > params().stream_bytes;
  // One source row per output row with weight 1 (the height kept, or an odd integer shrink of
  // bilinear, bicubic, lanczos), float32: the horizontal pass reads the source row itself (its
  // vertical sums were the row times 1, so the same bits) where every load stays inside the
  // row: the permute blocks, hdec2 (its range keeps them there), the per-pixel passes but for
  // 3 channels at the row's end (their loads read a lane past a pixel), the scalar formula.
  // (Against the copy into a row of sums, in turns on Zen 3: 4K -> 720p bilinear 0.73-0.85x,
  // 4K -> 2560 wide with the height kept bicubic 0.74-0.81x, lanczos 0.77-0.86x.)
  const bool yid = std::is_same<T, float>::value && is_pick_f32(ty);
  const int64_t xin = yid && C == 3 ? pixels_in_row(tx, kx, C, SWC) : DW;
  parallel_for(0, rows, rows_grain(rows, ky * SWC + kx * DWC), [&](int64_t t0, int64_t t1) {
    float* __restrict__ v = thread_scratch<float>(0, static_cast<size_t>(SWC));
    float* __restrict__ acc = thread_scratch<float>(1, static_cast<size_t>(DWC + 4));
    const T* rr[256];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const float* wr = wy + y * ky;
      for (int k = 0; k < ky; ++k) rr[k] = row_ptr<T>(src, s, b, ty.start[y] + k);
      T* orow = row_ptr<T>(dst, d, b, y);
      const float* vc = v;
      if constexpr (std::is_same<T, float>::value) {
        if (yid) vc = rr[0];
      }
      for (int64_t c = 0; c < nch; ++c) {
        const int64_t e0 = cb[c], e1 = cb[c + 1];
        if (e0 >= e1) continue;
        if (!yid) vsum_f32_any<T>(rr, wr, ky, lo[c], hi[c], v);
        if (plan.nw > 0) {
          if (stream) hperm<const float*, T, true>(plan, vc, ip, wp, kx, C, ws, e0, e1, orow);
          else hperm<const float*, T, false>(plan, vc, ip, wp, kx, C, ws, e0, e1, orow);
          continue;
        }
        // pixels [xa, xb) one at a time
        auto per_pixel = [&](int64_t xa, int64_t xb) {
          if (xa >= xb) return;
          // 3 channels read a lane past each pixel: in the source row itself, the pixels whose
          // loads would leave the row take the scalar formula
          const int64_t xv = yid && C == 3 ? std::max(xa, std::min(xb, xin)) : xb;
          const int64_t* st = tx.start + xa;
          T* o = orow + xa * C;
          const int64_t nv = xv - xa;
          int64_t xs = xv;  // the scalar formula from here
          if (nv > 0) {
            bool done = true;
            if (kx == 2) done = hpass_fixed<T, float, 2>(vc, st, wx + 2 * xa, nv, C, 0, o, acc);
            else if (kx == 4) done = hpass_fixed<T, float, 4>(vc, st, wx + 4 * xa, nv, C, 0, o, acc);
            else if (kx == 8) done = hpass_fixed<T, float, 8>(vc, st, wx + 8 * xa, nv, C, 0, o, acc);
            else if (C == 3) done = hpass_dyn<T, float, 3>(vc, st, wx + kx * xa, kx, nv, 0, o, acc);
            else if (C == 4) done = hpass_dyn<T, float, 4>(vc, st, wx + kx * xa, kx, nv, 0, o, acc);
            else done = false;
            if (!done) xs = xa;
          }
          hperm_scalar<const float*, T>(vc, ip, wp, kx, C, ws, xs * C, xb * C, orow);
        };
        const int64_t x0 = e0 / C, x1 = e1 / C;
#if defined(__AVX2__) && !defined(__AVX512F__)
        if (plan.dec) {
          const int64_t xa = std::max(x0, plan.dlo), xb = std::min(x1, plan.dhi);
          if (xb - xa >= 8) {
            per_pixel(x0, xa);
            hdec_any<T>(vc, plan, kx, C, xa, xb, orow, acc);
            per_pixel(xb, x1);
            continue;
          }
        }
#endif
        per_pixel(x0, x1);
      }
    }
    if (stream) stream_fence();
  });
}

// Height growing, float sums: each source row resized horizontally once (lane permutes where
// the plan has them) into a ring of ky float rows, then every output row is the ky-row sum,
// stored (streamed when input and output exceed the cache share) in the same pass.
// 4K aliasing: the sums load the ring rows and store the output at the same rate, and a load
// whose address matches a pending store's in the low 12 bits waits for it (measured on Zen 4
// at AVX2, 1080p -> 4K bicubic gray float32: 5 to 11 ms depending on the output's address).
// The ring rows all sit at the same offset modulo 4096 (their stride is whole pages), and
// each output row is summed forward when the ring is up to 2 KiB ahead of it modulo 4096 (the
// pending stores lie behind the loads), backward otherwise (they lie ahead).
template <typename T>
void resize_f32_hfirst(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                       const ResizeTable& tx, const int32_t* ip, const float* wp, int64_t ws, const PermPlan& plan) {
  const int64_t C = s.c, SWC = s.w * C, DW = d.w, DWC = DW * C;
  const int ky = ty.k, kx = tx.k;
  const float* wy = static_cast<const float*>(ty.w);
  const float* wx = static_cast<const float*>(tx.w);
  const int64_t rows = d.n * d.h;
  const int64_t stride = (DWC + 1023) / 1024 * 1024;  // whole 4 KiB pages
  // (AVX2, one channel, float32: the scalar loop ran here until the periodic blocks; 1080p ->
  // 4K bicubic gray, horizontal pass 5.4 ms scalar, 2.8 ms permutes, 1.4 ms periodic permutes)
  const bool use_perm = plan.nw > 0;
  const bool stream = 2 * static_cast<int64_t>(sizeof(T)) * (s.n * s.h * SWC + rows * DWC) > params().stream_bytes;
  // No plan, 3 or 4 channels (AVX2): the pixels whose 4-element loads stay inside the source row
  // go two per vector (hpair: uint16 widened to float; tap 0's product, then a fused
  // multiply-add per tap, as the permute blocks and every other float pass), the last ones
  // through hrow. Against hrow (its sums compiled unfused or fused loop by loop: other bits),
  // in turns on Zen 3, 2 threads: 1080p -> 1620x2880 RGB uint16 bicubic 12.4 -> 5.6 ms, RGBA
  // 19.2 -> 5.6, lanczos 0.36-0.45x; float32 RGB bicubic / lanczos 0.67-0.98x, RGBA 0.86-0.99x.
#if defined(__AVX2__) && defined(__FMA__)
  const int64_t npair = !use_perm && (C == 3 || C == 4) ? pixels_in_row(tx, kx, C, SWC) : 0;
#endif
  auto hrow_any = [&](const T* sr, float* r) {
#if defined(__AVX2__) && defined(__FMA__)
    if (npair > 0) {
      auto run = [&](auto c) {
        constexpr int CC = decltype(c)::value;
        if (kx == 2) hpair<float, CC, 2, T>(sr, tx.start, wx, kx, npair, r);
        else if (kx == 4) hpair<float, CC, 4, T>(sr, tx.start, wx, kx, npair, r);
        else if (kx == 8) hpair<float, CC, 8, T>(sr, tx.start, wx, kx, npair, r);
        else hpair<float, CC, 0, T>(sr, tx.start, wx, kx, npair, r);
      };
      if (C == 3) run(std::integral_constant<int, 3>());
      else run(std::integral_constant<int, 4>());
      if (npair < DW) hrow<T, float>(sr, tx.start + npair, wx + kx * npair, kx, DW - npair, C, r + npair * C);
      return;
    }
#endif
    hrow<T, float>(sr, tx.start, wx, kx, DW, C, r);
  };
  parallel_for(0, rows, rows_grain(rows, ky * DWC + kx * DWC), [&](int64_t t0, int64_t t1) {
    // the ring 1 KiB behind the tables modulo 4096: their loads never wait for the ring's stores
    float* scratch = thread_scratch<float>(2, static_cast<size_t>(ky * stride + 1024));
    const uintptr_t pad = (reinterpret_cast<uintptr_t>(wp) - 1024 - reinterpret_cast<uintptr_t>(scratch)) & 4095;
    float* __restrict__ ring = scratch + pad / sizeof(float);
    std::vector<int64_t> keys(static_cast<size_t>(ky), -1);
    const float* rp[256];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const int64_t sy0 = ty.start[y];
      for (int k = 0; k < ky; ++k) {
        const int64_t sy = sy0 + k, slot = sy % ky, key = b * s.h + sy;
        float* r = ring + slot * stride;
        if (keys[slot] != key) {
          const T* sr = row_ptr<T>(src, s, b, sy);
          if (use_perm) hperm<const T*, float, false>(plan, sr, ip, wp, kx, C, ws, 0, DWC, r);
          else hrow_any(sr, r);
          keys[slot] = key;
        }
        rp[k] = r;
      }
      T* o = row_ptr<T>(dst, d, b, y);
      // the next output row with the same window (2x: rows 2i + 1 and 2i + 2) in the same pass
      if ((ky == 2 || ky == 4) && t + 1 < t1 && y + 1 < d.h && ty.start[y + 1] == sy0) {
        T* o2 = row_ptr<T>(dst, d, b, y + 1);
        if (!stream || (reinterpret_cast<uintptr_t>(o2) - reinterpret_cast<uintptr_t>(o)) % 64 == 0) {
          const void* outs[2] = {o, o2};
          const bool bw = sum_backward(ring, outs, 2);
          const float *wa = wy + y * ky, *wb = wa + ky;
          if (ky == 2) {
            if (stream) vsum_out2_f32<T, 2, true>(rp, wa, wb, DWC, o, o2, bw);
            else vsum_out2_f32<T, 2, false>(rp, wa, wb, DWC, o, o2, bw);
          } else {
            if (stream) vsum_out2_f32<T, 4, true>(rp, wa, wb, DWC, o, o2, bw);
            else vsum_out2_f32<T, 4, false>(rp, wa, wb, DWC, o, o2, bw);
          }
          ++t;
          continue;
        }
      }
      const void* outs[1] = {o};
      const bool backward = sum_backward(ring, outs, 1);
      if (stream) vsum_out_f32_any<T, true>(rp, wy + y * ky, ky, DWC, o, backward);
      else vsum_out_f32_any<T, false>(rp, wy + y * ky, ky, DWC, o, backward);
    }
    if (stream) stream_fence();
  });
}

template <typename T>
void resize_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                 const ResizeTable& tx, int shift) {
  using A = typename RzAcc<T>::type;
  const int64_t C = s.c, SWC = s.w * C, DW = d.w, DWC = DW * C;
  const int ky = ty.k, kx = tx.k;
  const A* wy = static_cast<const A*>(ty.w);
  const A* wx = static_cast<const A*>(tx.w);
  const int rshift = std::is_same<T, uint8_t>::value ? ty.bits + tx.bits - shift : 0;
  // the exact 2x shrink in one pass (resize_halve.cpp)
  if constexpr (!std::is_same<T, double>::value) {
    if (resize_halve<T>(src, s, dst, d, ty, tx, shift)) return;
  }
  // the 2x2 means at an integer stride (4x bilinear; resize_decimate.cpp)
  if constexpr (std::is_same<T, uint8_t>::value) {
    if (resize_decimate_u8(src, s, dst, d, ty, tx, shift)) return;
  }
#if defined(__SSSE3__)
  if constexpr (std::is_same<T, uint8_t>::value) {
    if (shift == 0 && ky <= 16) {
      U8Hpass hp;
#if defined(__AVX2__)
      // split digits where the tables allow them and the height grows (the ring rows' vertical
      // sums, two output rows or more per ring row, are most of the work)
      SplitPlan sp;
      if (d.h > s.h) sp = split_plan(ty, tx, rshift);
      hp.split = sp.B;
      hp.split_ax = sp.ax;
#endif
      auto go = [&]() {
#if defined(__AVX2__)
        if (hp.split > 0) return resize_u8_hfirst<true>(src, s, dst, d, ty, tx, hp, rshift, sp.ay, sp.r2);
#endif
        resize_u8_hfirst<false>(src, s, dst, d, ty, tx, hp, rshift);
      };
#if defined(__AVX512BW__)
      // one 64-byte window per 16 outputs where the processor has vpermb (VBMI)
      static const bool has_vbmi = cpu_has(CpuFeature::avx512vbmi);
      if (has_vbmi && hp.build(tx, C, SWC, DWC, 16, 1)) {
        hp.vbmi = true;
        return go();
      }
#endif
      // (lazy where the height grows: run2, which reads every block's tables, serves shrinking
      // by 2 or more only)
      if (hp.build(tx, C, SWC, DWC, 4, U8Hpass::G, d.h > s.h)) return go();
    }
  }
#endif
  // the width kept: the vertical sums only
  if constexpr (std::is_same<A, float>::value) {
    if (ky <= 256 && is_identity_f32(tx, s.w)) return resize_f32_rows<T>(src, s, dst, d, ty);
  }
  // Per output element: the source element of its first tap, and its weights tap-major.
  if (SWC + kx * C >= (int64_t(1) << 31)) throw std::overflow_error("resize: a source row is too long for int32 indices");
  aligned_vector<int32_t> idx(static_cast<size_t>(DWC));
  aligned_vector<A> wxe(static_cast<size_t>(kx * DWC));
  for (int64_t x = 0; x < DW; ++x)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t e = x * C + c;
      idx[e] = static_cast<int32_t>(tx.start[x] * C + c);
      for (int k = 0; k < kx; ++k) wxe[k * DWC + e] = wx[x * kx + k];
    }
  const int32_t* ip = idx.data();
  const A* wp = wxe.data();
  const int64_t rows = d.n * d.h;
  // When the height grows, horizontal first: each source row is resized horizontally once
  // into a ring of ky rows and every output row is a ky-row weighted sum of the ring (rows
  // shared by consecutive output rows are not recomputed). uint8 only when no intermediate
  // shift is needed, so the integer result is the same exact sum in either order (and the
  // CUDA kernel's).
  const bool hfirst = d.h > s.h && (!std::is_same<T, uint8_t>::value || shift == 0);
  if constexpr (std::is_same<A, float>::value) {
    if (ky <= 256) {
      // the tables again with whole-page rows (weights of tap k, then the indices), all at one
      // offset modulo 4096: see resize_f32_hfirst (4K aliasing)
      const int64_t ws = (DWC + 1023) / 1024 * 1024;
      aligned_vector<float> tab(static_cast<size_t>((kx + 1) * ws));
      int32_t* ipp = reinterpret_cast<int32_t*>(tab.data() + kx * ws);
      std::memcpy(ipp, ip, static_cast<size_t>(DWC) * sizeof(int32_t));
      for (int k = 0; k < kx; ++k)
        std::memcpy(tab.data() + k * ws, wp + k * DWC, static_cast<size_t>(DWC) * sizeof(float));
      // vertical-first: blocks start where the output rows are aligned for streaming stores
      int64_t off = 0;
      const uintptr_t a0 = reinterpret_cast<uintptr_t>(dst);
      const int64_t al = std::max(kPermL, 1) * static_cast<int64_t>(sizeof(T));
      if (!hfirst && a0 % sizeof(T) == 0 && (d.row_stride * static_cast<int64_t>(sizeof(T))) % al == 0 &&
          (d.n == 1 || (d.batch_stride * static_cast<int64_t>(sizeof(T))) % al == 0))
        off = static_cast<int64_t>((al - static_cast<int64_t>(a0 % al)) % al) / static_cast<int64_t>(sizeof(T));
      PermPlan plan;
      plan.build(ipp, kx, C, SWC, DWC, off);
#if defined(__AVX512F__)
      // (AVX-512: tables in the L1 only for 3 and more channels: 224 -> 448 gray bilinear 49 ->
      // 54 us with periods, 2 channels 63 -> 66; 3 channels bicubic 172 -> 147, bilinear 102 ->
      // 96, 4 channels bilinear 143 -> 138)
      if (C >= 3 || static_cast<int64_t>(kx + 1) * DWC * 4 > 65536) plan.find_period(ipp, tab.data(), kx, ws);
#else
      plan.find_period(ipp, tab.data(), kx, ws);
#endif
      // (horizontal first only: hphase writes whole pixels, so its calls must cover whole rows)
      if (hfirst && params().resize_phases) plan.find_phases(ipp, tab.data(), kx, ws, DWC);
      if (!hfirst && params().resize_phases) plan.find_dec(ipp, tab.data(), kx, ws, DWC);
#if defined(__AVX2__) && !defined(__AVX512F__)
      // 3 channels, and 4 of uint16, vertical first: two pixels per vector (hpair) with the
      // plan's bits instead of its window permutes (2 vpermps, a blend and index arithmetic per
      // tap), in turns on Zen 3: 1.5x shrinks of RGB uint16 bilinear / area 0.69-0.82x, float32
      // 0.81-0.94x, RGBA uint16 0.81-1.0x; 1.2x area 0.70-0.81x (RGBA float32 0.91-1.15x: the
      // plan kept; AVX-512's vpermt2ps: not measured)
      if (!hfirst && !plan.dec && (C == 3 || (C == 4 && !std::is_same<T, float>::value)) && params().resize_phases)
        plan.nw = 0;
#endif
      if (hfirst) resize_f32_hfirst<T>(src, s, dst, d, ty, tx, ipp, tab.data(), ws, plan);
      else resize_f32_vfirst<T>(src, s, dst, d, ty, tx, ipp, tab.data(), ws, plan);
      return;
    }
  }
  if (hfirst) {
    parallel_for(0, rows, rows_grain(rows, ky * DWC + kx * DWC), [&](int64_t t0, int64_t t1) {
      A* __restrict__ ring = thread_scratch<A>(2, static_cast<size_t>(ky * DWC));
      A* __restrict__ acc = thread_scratch<A>(1, static_cast<size_t>(DWC));
      std::vector<int64_t> keys(static_cast<size_t>(ky), -1);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / d.h, y = t % d.h;
        const int64_t sy0 = ty.start[y];
        const A* wr = wy + y * ky;
        for (int k = 0; k < ky; ++k) {
          const int64_t sy = sy0 + k, slot = sy % ky, key = b * s.h + sy;
          if (keys[slot] != key) {
            hrow<T, A>(row_ptr<T>(src, s, b, sy), tx.start, wx, kx, DW, C, ring + slot * DWC);
            keys[slot] = key;
          }
        }
        {
          const A* r0 = ring + (sy0 % ky) * DWC;
          const A w0 = wr[0];
          for (int64_t e = 0; e < DWC; ++e) acc[e] = w0 * r0[e];
          for (int k = 1; k < ky; ++k) {
            const A* rk = ring + ((sy0 + k) % ky) * DWC;
            const A wk = wr[k];
            for (int64_t e = 0; e < DWC; ++e) {
              const A tk = wk * rk[e];
              acc[e] = acc[e] + tk;
            }
          }
        }
        store_out<T, A>(acc, row_ptr<T>(dst, d, b, y), DWC, rshift);
      }
    });
    return;
  }
  // uint8: the vertical sums with 16-bit multiply-adds on row pairs (weights fit int16)
  bool vmadd_ok = std::is_same<T, uint8_t>::value && ky <= 64;
  if constexpr (std::is_same<T, uint8_t>::value)
    for (int64_t i = 0; i < ty.n * ky && vmadd_ok; ++i) vmadd_ok = wy[i] >= -32767 && wy[i] <= 32767;
  (void)vmadd_ok;
  parallel_for(0, rows, rows_grain(rows, ky * SWC + kx * DWC), [&](int64_t t0, int64_t t1) {
    A* __restrict__ v = thread_scratch<A>(0, static_cast<size_t>(SWC));
    A* __restrict__ acc = thread_scratch<A>(1, static_cast<size_t>(DWC));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const A* wr = wy + y * ky;
      const int64_t sy = ty.start[y];
      // 1. vertical pass
#if defined(__AVX2__)
      if constexpr (std::is_same<T, uint8_t>::value) {
        if (vmadd_ok) {
          const uint8_t* rr[64];
          for (int k = 0; k < ky; ++k) rr[k] = row_ptr<uint8_t>(src, s, b, sy + k);
          vpass_u8_madd(rr, wr, ky, SWC, shift, v);
        }
      }
      if (!vmadd_ok)
#endif
      {
        const T* r0 = row_ptr<T>(src, s, b, sy);
        const A w0 = wr[0];
        if (ky == 1) {
          for (int64_t j = 0; j < SWC; ++j) v[j] = w0 * static_cast<A>(r0[j]);
        } else {
          const T* r1 = row_ptr<T>(src, s, b, sy + 1);
          const A w1 = wr[1];
          for (int64_t j = 0; j < SWC; ++j) v[j] = w0 * static_cast<A>(r0[j]) + w1 * static_cast<A>(r1[j]);
          for (int k = 2; k < ky; ++k) {
            const T* rk = row_ptr<T>(src, s, b, sy + k);
            const A wk = wr[k];
            for (int64_t j = 0; j < SWC; ++j) v[j] += wk * static_cast<A>(rk[j]);
          }
        }
        if constexpr (std::is_same<T, uint8_t>::value) {
          if (shift > 0) {
            const int32_t half = int32_t(1) << (shift - 1);
            for (int64_t j = 0; j < SWC; ++j) v[j] = (v[j] + half) >> shift;
          }
        }
      }
      // 2. horizontal pass: gathers of 32-bit indices (vpgatherdd / vgatherdps), sums into
      // acc, then one rounding/saturating store pass
      T* orow = row_ptr<T>(dst, d, b, y);
      // short windows (bilinear, bicubic, lanczos) per output pixel: plain loads of its
      // source pixels (gathers are slow on some processors; these loads hit L1), taps and
      // channels unrolled
      int64_t done = 0;
      if (done == 0 && kx == 2 && hpass_fixed<T, A, 2>(v, tx.start, wx, DW, C, rshift, orow, acc)) continue;
      if (done == 0 && kx == 4 && hpass_fixed<T, A, 4>(v, tx.start, wx, DW, C, rshift, orow, acc)) continue;
      if (done == 0 && kx == 8 && hpass_fixed<T, A, 8>(v, tx.start, wx, DW, C, rshift, orow, acc)) continue;
      if (C == 3 && kx != 2 && hpass_dyn<T, A, 3>(v, tx.start, wx, kx, DW, rshift, orow, acc)) continue;
      if (C == 4 && kx != 2 && hpass_dyn<T, A, 4>(v, tx.start, wx, kx, DW, rshift, orow, acc)) continue;
      if (done == 0) done = hpass_simd<T, A>(v, ip, wp, kx, C, DWC, rshift, orow);
      if (done == DWC) continue;
      for (int64_t e = done; e < DWC; ++e) acc[e] = wp[e] * v[ip[e]];
      for (int k = 1; k < kx; ++k) {
        const A* __restrict__ wk = wp + k * DWC;
        const int32_t off = static_cast<int32_t>(k * C);
        for (int64_t e = done; e < DWC; ++e) acc[e] += wk[e] * v[ip[e] + off];
      }
      store_out<T, A>(acc + done, orow + done, DWC - done, rshift);
    }
  });
}

// One pixel of B bytes (B known at compile time): a load and a store of an integer of that
// size, or two (3, 6, 12 bytes: no access past the pixel, the source row's last pixel included).
template <int B>
IMKERN_ALWAYS_INLINE inline void copy_px(const uint8_t* __restrict p, uint8_t* __restrict q) {
  auto mv = [&](auto tag, int at) {
    decltype(tag) v;
    std::memcpy(&v, p + at, sizeof(v));
    std::memcpy(q + at, &v, sizeof(v));
  };
  if constexpr (B == 1) mv(uint8_t(), 0);
  else if constexpr (B == 2) mv(uint16_t(), 0);
  else if constexpr (B == 3) mv(uint16_t(), 0), mv(uint8_t(), 2);
  else if constexpr (B == 4) mv(uint32_t(), 0);
  else if constexpr (B == 6) mv(uint32_t(), 0), mv(uint16_t(), 4);
  else if constexpr (B == 8) mv(uint64_t(), 0);
  else if constexpr (B == 12) mv(uint64_t(), 0), mv(uint32_t(), 8);
  else if constexpr (B == 16) mv(uint64_t(), 0), mv(uint64_t(), 8);
  else std::memcpy(q, p, B);
}

// A row of nearest samples: output pixel x is the source pixel at byte offset off[x]. Each
// offset is opaque to the compiler: it vectorized 4- and 8-byte pixels into gathers, which ran
// 1.3-1.7x this loop's time on Zen 3 (and explicit 8-lane int32-index gathers 1.1-1.6x).
// Pixels of 3, 6 and 12 bytes: the first `wide` of them copied as one 4-, 8- or 16-byte
// integer (the extra bytes read from the next source pixel and written over the next output
// pixel, which its own copy then sets: the caller keeps them inside both rows).
template <int B>
void nearest_row(const uint8_t* __restrict in, const int64_t* __restrict off, int64_t n, uint8_t* __restrict out,
                 int64_t wide) {
  int64_t x = 0;
  // pixels x .. end - 1, each copied as W bytes
  auto run = [&](auto w, int64_t end) IMKERN_ALWAYS_INLINE {
    auto one = [&](int64_t i) IMKERN_ALWAYS_INLINE {
      int64_t o = off[i];
      asm("" : "+r"(o));
      copy_px<decltype(w)::value>(in + o, out + i * B);
    };
    for (; x + 4 <= end; x += 4) {
      one(x);
      one(x + 1);
      one(x + 2);
      one(x + 3);
    }
    for (; x < end; ++x) one(x);
  };
  if constexpr (B == 3 || B == 6 || B == 12) run(std::integral_constant<int, B == 3 ? 4 : B == 6 ? 8 : 16>(), wide);
  run(std::integral_constant<int, B>(), n);
}

// Nearest resize: every output row a copy of its source row's sampled pixels (a row equal to the
// previous output row's source is that row copied). Pixels are copied as B-byte integers, B the
// pixel's size (channels x element size) known at compile time for 1-4 channels of every dtype,
// so any dtype gives the source's bits; other sizes by memcpy. (A memcpy call per pixel of 2 and
// 4 channels, and element loops for the others, ran 1.2-4.8x cv2.resize's time on Zen 3; now
// 0.4-1.0x.)
void nearest_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const int64_t* sy,
                  const int64_t* sx, int64_t esize) {
  const int64_t B = s.c * esize, DW = d.w;
  const int64_t rows = d.n * d.h;
  std::vector<int64_t> off(static_cast<size_t>(DW));
  for (int64_t x = 0; x < DW; ++x) off[x] = sx[x] * B;
  // the pixels that may be copied wide (nearest_row): all but the last, and those whose source
  // bytes plus the wide copy's extra stay inside the source row (the offsets never decrease)
  const int64_t extra = B == 3 ? 1 : B == 6 ? 2 : B == 12 ? 4 : 0;
  int64_t wide = std::max<int64_t>(0, DW - 1);
  while (wide > 0 && off[wide - 1] + B + extra > s.w * B) --wide;
  // the width kept: each row copied whole
  bool xid = DW == s.w;
  for (int64_t x = 0; x < DW && xid; ++x) xid = sx[x] == x;
  const int64_t rs = s.row_stride * esize, bs = s.batch_stride * esize;
  const int64_t drs = d.row_stride * esize, dbs = d.batch_stride * esize;
  // whole rows copied (the width kept, or a repeated row) by copy_bytes, streamed past the
  // cache share
  const bool stream = (s.n * s.h * s.w + rows * DW) * B > params().stream_bytes;
  auto copy_row = [&](const uint8_t* in, uint8_t* out) {
    if (stream) copy_bytes_stream(in, out, DW * B);
    else copy_bytes(in, out, DW * B);
  };
  auto sample = [&](const uint8_t* in, uint8_t* out) {
    switch (B) {
      case 1: return nearest_row<1>(in, off.data(), DW, out, wide);
      case 2: return nearest_row<2>(in, off.data(), DW, out, wide);
      case 3: return nearest_row<3>(in, off.data(), DW, out, wide);
      case 4: return nearest_row<4>(in, off.data(), DW, out, wide);
      case 6: return nearest_row<6>(in, off.data(), DW, out, wide);
      case 8: return nearest_row<8>(in, off.data(), DW, out, wide);
      case 12: return nearest_row<12>(in, off.data(), DW, out, wide);
      case 16: return nearest_row<16>(in, off.data(), DW, out, wide);
      case 24: return nearest_row<24>(in, off.data(), DW, out, wide);
      case 32: return nearest_row<32>(in, off.data(), DW, out, wide);
      default:
        for (int64_t x = 0; x < DW; ++x) std::memcpy(out + x * B, in + off[x], static_cast<size_t>(B));
    }
  };
  auto row = [&](const uint8_t* in, uint8_t* out) {
    if (xid) return copy_row(in, out);
    sample(in, out);
  };
  parallel_for(0, rows, rows_grain(rows, DW * s.c), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / d.h, y = t % d.h;
      const uint8_t* in = static_cast<const uint8_t*>(src) + b * bs + sy[y] * rs;
      uint8_t* out = static_cast<uint8_t*>(dst) + b * dbs + y * drs;
      // the same source row as the previous output row: copy it
      if (t > t0 && y > 0 && sy[y] == sy[y - 1]) {
        copy_row(out - drs, out);
        continue;
      }
      row(in, out);
    }
    if (stream) stream_fence();
  });
}

}  // namespace

void resize(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& y,
            const ResizeTable& x, int shift) {
  visit_dtype(dtype, [&](auto tag) { resize_impl<decltype(tag)>(src, s, dst, d, y, x, shift); });
}

void resize_nearest(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const int64_t* sy, const int64_t* sx) {
  visit_dtype(dtype, [&](auto tag) {
    nearest_impl(src, s, dst, d, sy, sx, static_cast<int64_t>(sizeof(decltype(tag))));
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
