// Winograd F(4x4, 3x3) for float32 3x3 stride-1 convolutions (groups 1, dilation 1);
// included by conv2d.cpp, so compiled per ISA.
//
// Algorithm (Lavin & Gray 2016): the output is cut into 4x4 tiles, each computed from the
// 6x6 input window under it: Y = A^T [ sum_c (G g_kc G^T) . (B^T d_c B) ] A, with the
// interpolation points 0, 1, -1, 2, -1/2, inf (see bt6). Per block of T tiles (consecutive
// in the flattened (image, tile row, tile column) order, T a multiple of the microkernel's
// NR; 48 for C = 64 on AVX-512):
//  1. input transform: V[e][c][t] = (B^T d B)[e], e = 6 i + j; vectorized across the tiles of
//     a tile row: the six input rows are split into the four column phases (u mod 4), so the
//     six columns of L consecutive tiles are plain vector loads; zero padding applied there;
//  2. 36 GEMMs M[e] (K x T) = U[e] (K x C) * V[e] (C x T), U = G g G^T packed once per call
//     for the register microkernel, V read by it in place (microkernel_off, no packing);
//  3. output transform A^T m A per output channel, vectorized across tiles, + bias, ReLU,
//     interleaved back into rows of `out` (partial tiles clipped at the right and bottom).
// Steps 2 and 3 run per chunk of ~16 output channels, so V (36 C T floats) and that chunk of
// M stay in L2. x is read once, out written once; the next block's x and the chunk's out
// lines are prefetched during the GEMMs (the transforms alone would outrun DRAM).
// FLOPs per output: 2 * 36 C K / 16 in the GEMMs (4x fewer than direct 2 * 9 C K) plus
// ~20 C + ~12 K for the transforms. Accuracy: the transforms scale values by up to ~100 and
// cancel, so the float32 error is ~3x the direct path's (N(0, 1) data, C = K = 64: max 3e-6
// and RMS 1.1e-6 of the output's scale, direct 9e-7 and 4.2e-7).
// Every output element is computed by one block in a fixed order: bit-identical for any
// thread count. A NaN/Inf input pixel spreads to the whole tiles whose windows contain it.
// grad_input is `forward` on grad_out (conv2d.cpp); grad_weight is the adjoint (see
// grad_weight below), with an error about the direct path's.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "nn/ukernels/gemm_kernel.hpp"
#include "common/simd.hpp"
#include "common/shuffle.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace winograd {

using V = simd::vec_t<float>;
constexpr int L = simd::Vec<float>::lanes;
typedef int32_t IV __attribute__((vector_size(simd::kBytes)));

template <size_t... I>
constexpr IV iota(std::index_sequence<I...>) { return IV{int(I)...}; }
template <size_t... I>
constexpr IV even_mask(std::index_sequence<I...>) { return IV{int(2 * I)...}; }
template <size_t... I>
constexpr IV odd_mask(std::index_sequence<I...>) { return IV{int(2 * I + 1)...}; }
// zip(a, b) = a0 b0 a1 b1 ...: first and second half.
template <size_t... I>
constexpr IV zip_lo_mask(std::index_sequence<I...>) { return IV{int(I / 2 + (I % 2) * L)...}; }
template <size_t... I>
constexpr IV zip_hi_mask(std::index_sequence<I...>) { return IV{int(L / 2 + I / 2 + (I % 2) * L)...}; }

constexpr IV kEven = even_mask(std::make_index_sequence<L>{});
constexpr IV kOdd = odd_mask(std::make_index_sequence<L>{});
constexpr IV kZipLo = zip_lo_mask(std::make_index_sequence<L>{});
constexpr IV kZipHi = zip_hi_mask(std::make_index_sequence<L>{});

// (a0 a1 a2 a3) = s[0 .. 4L) -> p_j[l] = s[4 l + j].
inline void deinterleave4(V a0, V a1, V a2, V a3, V (&p)[4]) {
  const V e01 = IMKERN_SHUFFLE2(a0, a1, kEven), o01 = IMKERN_SHUFFLE2(a0, a1, kOdd);
  const V e23 = IMKERN_SHUFFLE2(a2, a3, kEven), o23 = IMKERN_SHUFFLE2(a2, a3, kOdd);
  p[0] = IMKERN_SHUFFLE2(e01, e23, kEven);
  p[1] = IMKERN_SHUFFLE2(o01, o23, kEven);
  p[2] = IMKERN_SHUFFLE2(e01, e23, kOdd);
  p[3] = IMKERN_SHUFFLE2(o01, o23, kOdd);
}

// (c0 c1 c2 c3) = d[0 .. 4L) with d[4 l + j] = o_j[l].
inline void interleave4(V o0, V o1, V o2, V o3, V (&c)[4]) {
  const V alo = IMKERN_SHUFFLE2(o0, o2, kZipLo), ahi = IMKERN_SHUFFLE2(o0, o2, kZipHi);
  const V blo = IMKERN_SHUFFLE2(o1, o3, kZipLo), bhi = IMKERN_SHUFFLE2(o1, o3, kZipHi);
  c[0] = IMKERN_SHUFFLE2(alo, blo, kZipLo);
  c[1] = IMKERN_SHUFFLE2(alo, blo, kZipHi);
  c[2] = IMKERN_SHUFFLE2(ahi, bhi, kZipLo);
  c[3] = IMKERN_SHUFFLE2(ahi, bhi, kZipHi);
}

// Lanes [lo, hi) of row + i0 (0 <= lo < hi <= L), the others zero; nothing outside is read.
inline V load_part(const float* row, int64_t i0, int lo, int hi) {
#if defined(__AVX512F__)
  const __mmask16 m = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
  return reinterpret_cast<V>(_mm512_maskz_loadu_ps(m, row + i0));
#elif defined(__AVX2__)
  const IV io = iota(std::make_index_sequence<L>{});
  const IV m = (io >= lo) & (io < hi);
  return reinterpret_cast<V>(_mm256_maskload_ps(row + i0, reinterpret_cast<__m256i>(m)));
#else
  V v{};
  for (int l = lo; l < hi; ++l) v[l] = row[i0 + l];
  return v;
#endif
}

// Lanes [0, n) of v to d (0 < n <= L).
inline void store_part(float* d, V v, int n) {
  if (n == L) return simd::storeu(d, v);
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(d, static_cast<__mmask16>((1u << n) - 1), reinterpret_cast<__m512>(v));
#elif defined(__AVX2__)
  const IV m = iota(std::make_index_sequence<L>{}) < n;
  _mm256_maskstore_ps(d, reinterpret_cast<__m256i>(m), reinterpret_cast<__m256>(v));
#else
  for (int l = 0; l < n; ++l) d[l] = v[l];
#endif
}

// row[i0 .. i0 + L) with zeros outside [0, w).
inline V load_clipped(const float* row, int64_t i0, int64_t w) {
  if (i0 >= 0 && i0 + L <= w) return simd::loadu(row + i0);
  if (i0 + L <= 0 || i0 >= w) return V{};
  const int lo = static_cast<int>(std::max<int64_t>(0, -i0)), hi = static_cast<int>(std::min<int64_t>(L, w - i0));
  return load_part(row, i0, lo, hi);
}

// The transforms for the interpolation points 0, 1, -1, 2, -1/2, inf, scaled so that B^T
// and A^T hold small integers (rows 0-3 and 5 of B^T by 2, column 4 of A^T by 8; the inverse
// factors are in G). Found by simulating the float32 error of candidate point sets; on
// N(0, 1) data their error is about half (RMS) and a third (max) of the usual points
// 0, +-1, +-2, inf (simulated: RMS 1.2e-6 vs 1.9e-6, max 2.6e-6 vs 6.7e-6 of the output's
// scale, for C = 64), for a few more additions.
//   B^T = [2 3 -4 -3 2 0; 0 -2 -5 -1 2 0; 0 2 1 -5 2 0; 0 -1 -2 1 2 0; 0 2 -1 -2 1 0;
//          0 2 3 -4 -3 2]
//   G   = [1/2 0 0; -1/6 (1 1 1); 1/6 (1 -1 1); 1/30 (1 2 4); -1/30 (4 -2 1); 0 0 1/2]
//   A^T = [1 1 1 1 8 0; 0 1 -1 2 -4 0; 0 1 1 4 2 0; 0 1 -1 8 -1 1]

// Zero columns [nt, npad) (the tile slots past the last tile of a block) of the 36
// matrices of `rows` rows at buf (matrix stride es, row stride ld).
inline void zero_pad_columns(float* buf, int64_t rows, int64_t es, int64_t ld, int64_t nt, int64_t npad) {
  if (npad <= nt) return;
  for (int64_t e = 0; e < 36; ++e)
    for (int64_t r = 0; r < rows; ++r) std::fill(buf + e * es + r * ld + nt, buf + e * es + r * ld + npad, 0.f);
}

// r = B^T d (one 6-point input transform, elementwise over lanes).
inline void bt6(const V (&d)[6], V (&r)[6]) {
  const V u = 2.f * (d[4] - d[2]) - 3.f * d[3], v = 2.f * (d[3] - d[1]) - 3.f * d[2];
  const V s = d[4] - d[2], t = d[3] - d[1];
  r[0] = 2.f * (d[0] + d[4]) - 3.f * t - 4.f * d[2];
  r[1] = u + v;
  r[2] = u - v;
  r[3] = 2.f * s + t;
  r[4] = s - 2.f * t;
  r[5] = 2.f * (d[1] + d[5]) + 3.f * (d[2] - d[4]) - 4.f * d[3];
}

// o = A^T m (one 6-point output transform).
inline void at4(const V (&m)[6], V (&o)[4]) {
  const V s12 = m[1] + m[2], d12 = m[1] - m[2];
  o[0] = m[0] + s12 + m[3] + 8.f * m[4];
  o[1] = d12 + 2.f * m[3] - 4.f * m[4];
  o[2] = s12 + 4.f * m[3] + 2.f * m[4];
  o[3] = d12 + 8.f * m[3] - m[4] + m[5];
}

// The shapes this path computes (float32 is the caller's condition).
inline bool eligible(const Conv2dShape& p) {
  return p.r == 3 && p.s == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1 && p.groups == 1;
}

// Where it beats the implicit GEMM (measured on Zen 5, AVX-512): at least 16 input and output
// channels (C = K = 8 breaks even), and direct FLOPs >= 1.5x the Winograd GEMMs' (18 N OH OW
// vs 72 per tile, tiles rounded up to whole NR slivers): small images in small batches lose
// to the fixed costs (weight transform, partial slivers, 4x4 tiles over a few pixels).
inline bool profitable(const Conv2dShape& p) {
  constexpr int64_t NR = gemm_detail::Blocking<float>::NR;
  const int64_t tiles = p.n * ((p.oh + 3) / 4) * ((p.ow + 3) / 4);
  const int64_t tpad = (tiles + NR - 1) / NR * NR;
  return p.c >= 16 && p.k >= 16 && 18 * p.n * p.oh * p.ow >= 3 * 36 * tpad;
}

// grad_weight transforms both x and grad_out per tile (cost ~ C + K per tile, at TW / L lane
// use for images under L tiles wide) to save ~C K per tile: below C K / (C + K) * lane use
// of 6 (e.g. 8x8 images at C = K = 64) the direct kernel is faster (measured).
inline bool profitable_grad_weight(const Conv2dShape& p) {
  const int64_t tw = (p.ow + 3) / 4, twl = (tw + L - 1) / L * L;
  return profitable(p) && p.c * p.k * tw >= 6 * (p.c + p.k) * twl;
}

struct Plan {
  int64_t tw, th, tiles_img, total;  // tiles per row, per column, per image, in all
  int64_t tblk, items;               // tiles per block (a multiple of NR), blocks
  int64_t kpad, kcb, kch;            // K rounded up to MR; reduction block over C; K chunk
  int64_t nch, phs;                  // vector chunks per phase row; its length (+ slack)
  int64_t ves, mes;                  // e strides of V [e][C][tblk] and M [e][kch][tblk]
};

inline Plan make_plan(const Conv2dShape& p) {
  using Bk = gemm_detail::Blocking<float>;
  Plan q;
  q.tw = (p.ow + 3) / 4, q.th = (p.oh + 3) / 4;
  q.tiles_img = q.tw * q.th;
  q.total = p.n * q.tiles_img;
  q.kpad = (p.k + Bk::MR - 1) / Bk::MR * Bk::MR;
  q.kcb = p.c <= 512 ? p.c : 256;
  // V of a block (36 C floats per tile) fills about half the L2 (cpu_params().l2_block), in
  // whole NR slivers; M is computed for kch output channels at a time (an eighth of the L2,
  // cpu_params().wino_m) and transformed while in L2, leaving room for the prefetched input
  // of the next block. (Measured on a 1 MiB L2: 512 and 128 KiB.) Neither changes a bit:
  // each tile's sums run over C in kcb blocks, whatever the block of tiles.
  const CpuParams& cp = params();
  const int64_t slivers = std::max<int64_t>(1, cp.l2_block / (36 * 4 * p.c * Bk::NR));
  q.tblk = std::min(slivers * Bk::NR, (q.total + Bk::NR - 1) / Bk::NR * Bk::NR);
  q.items = (q.total + q.tblk - 1) / q.tblk;
  q.kch = std::min(q.kpad, std::max<int64_t>(1, cp.wino_m / (36 * 4 * q.tblk * Bk::MR)) * Bk::MR);
  // Phase rows hold tile columns [0, TW + 1) (tile TW - 1 reads column 4 TW + 1); the lanes
  // of a group past its segment read up to L - 1 further (finite garbage, never stored).
  q.nch = (q.tw + 1 + L - 1) / L;
  q.phs = (q.nch + 1) * L;
  // Rows of tblk floats; + 32 per e: room for the lanes a last segment writes (or reads)
  // past its row, and consecutive e rows in different L1 sets.
  q.ves = p.c * q.tblk + 32;
  q.mes = q.kch * q.tblk + 32;
  return q;
}

// r = G g for one 3-vector, elementwise over lanes.
inline void g6(V g0, V g1, V g2, V (&r)[6]) {
  const V s = g0 + g2;
  r[0] = 0.5f * g0;
  r[1] = (s + g1) * (-1.f / 6);
  r[2] = (s - g1) * (1.f / 6);
  r[3] = (g0 + 2.f * g1 + 4.f * g2) * (1.f / 30);
  r[4] = (4.f * g0 - 2.f * g1 + g2) * (-1.f / 30);
  r[5] = 0.5f * g2;
}

// U[e] = (G g G^T)[e] for every (k, c), packed as the GEMM's A operand (pack_a's layout:
// blocks of kcb columns, MR-row slivers, zero rows up to kpad). Per sliver and run of CB
// channels, the (c, k) pairs are laid out as lanes (j = (c - c0) MR + k % MR, which is
// also their packed order), transformed as vectors and copied out as contiguous runs.
// (float: the rounding of U to float dominates the transform's own error.)
inline void transform_weights(const float* w, const Conv2dShape& p, const Plan& q, float* upk) {
  constexpr int MR = gemm_detail::Blocking<float>::MR;
  constexpr int64_t CB = 32, NJ = CB * MR;  // NJ: a multiple of L
  const int64_t C = p.c, usz = q.kpad * C;
  const int64_t ncb = (C + CB - 1) / CB;
  parallel_for(0, q.kpad / MR * ncb, 4, [&](int64_t lo, int64_t hi) {
    alignas(64) float gt[9][NJ];
    alignas(64) float loc[36][NJ];
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t s = item / ncb, c0 = item % ncb * CB, c1 = std::min(C, c0 + CB);
      const int64_t nj = (c1 - c0) * MR;
      for (int64_t c = c0; c < c1; ++c)
        for (int ii = 0; ii < MR; ++ii) {
          const int64_t k = s * MR + ii, j = (c - c0) * MR + ii;
          const float* g = w + (k * C + c) * 9;
          for (int t = 0; t < 9; ++t) gt[t][j] = k < p.k ? g[t] : 0.f;
        }
      for (int64_t j = 0; j < nj; j += L) {
        V t[6][3];
        for (int b = 0; b < 3; ++b) {
          V r[6];
          g6(simd::loadu(&gt[b][j]), simd::loadu(&gt[3 + b][j]), simd::loadu(&gt[6 + b][j]), r);
          for (int a = 0; a < 6; ++a) t[a][b] = r[a];
        }
        for (int a = 0; a < 6; ++a) {
          V r[6];
          g6(t[a][0], t[a][1], t[a][2], r);
          for (int b = 0; b < 6; ++b) simd::storeu(&loc[6 * a + b][j], r[b]);
        }
      }
      // Runs of channels within one kcb block are contiguous in the packed layout.
      for (int64_t c = c0; c < c1;) {
        const int64_t p0 = c / q.kcb * q.kcb, kc = std::min(q.kcb, C - p0), ce = std::min(c1, p0 + kc);
        const int64_t base = p0 * q.kpad + s * MR * kc + (c - p0) * MR;
        for (int e = 0; e < 36; ++e)
          std::memcpy(upk + e * usz + base, &loc[e][(c - c0) * MR],
                      static_cast<size_t>((ce - c) * MR) * sizeof(float));
        c = ce;
      }
    }
  });
}

// The four column phases of one padded input row: d[j * phs + m] = row[4 m + j - pl] (zero
// outside [0, w)), m < 4 nch L... for tile columns m < nch L.
inline void phase_row(const float* row, int64_t w, int64_t pl, int64_t nch, int64_t phs, float* d) {
  for (int64_t m = 0; m < nch; ++m) {
    const int64_t i0 = 4 * L * m - pl;
    V ph[4];
    deinterleave4(load_clipped(row, i0, w), load_clipped(row, i0 + L, w), load_clipped(row, i0 + 2 * L, w),
                  load_clipped(row, i0 + 3 * L, w), ph);
    for (int j = 0; j < 4; ++j) simd::storeu(d + j * phs + m * L, ph[j]);
  }
}

// Input transform of tiles tx_a .. tx_a + nt of one tile row: rows[rho] are the phase rows of
// its six input rows; v[e * es + t] for t < roundup(nt, L) (the lanes past nt belong to other
// tiles: overwritten by the next segment or never read).
inline void input_segment(const float* const (&rows)[6], int64_t phs, int64_t tx_a, int64_t nt, float* v,
                          int64_t es) {
  const int64_t ng = (nt + L - 1) / L;
  for (int64_t g = 0; g < ng; ++g) {
    V t[6][6];
    for (int j = 0; j < 6; ++j) {
      const int64_t off = (j % 4) * phs + tx_a + g * L + j / 4;
      V d[6], r[6];
      for (int rho = 0; rho < 6; ++rho) d[rho] = simd::loadu(rows[rho] + off);
      bt6(d, r);
      for (int i = 0; i < 6; ++i) t[i][j] = r[i];
    }
    for (int i = 0; i < 6; ++i) {
      V r[6];
      bt6(t[i], r);
      for (int j = 0; j < 6; ++j) simd::storeu(v + (6 * i + j) * es + g * L, r[j]);
    }
  }
}

// Output transform of tiles (ty, tx_a .. tx_a + nt) of one output channel: m[e * es + t] ->
// plane o (OH x OW), + bias, ReLU.
inline void output_segment(const float* m, int64_t es, float bias, bool relu, float* o, const Conv2dShape& p,
                           int64_t ty, int64_t tx_a, int64_t nt) {
  const int64_t ng = (nt + L - 1) / L;
  const V vb = bias - V{};
  const int rows = static_cast<int>(std::min<int64_t>(4, p.oh - 4 * ty));
  for (int64_t g = 0; g < ng; ++g) {
    V s[6][4];
    for (int i = 0; i < 6; ++i) {
      V r[6], a[4];
      for (int j = 0; j < 6; ++j) r[j] = simd::loadu(m + (6 * i + j) * es + g * L);
      at4(r, a);
      for (int b = 0; b < 4; ++b) s[i][b] = a[b];
    }
    V y[4][4];
    for (int b = 0; b < 4; ++b) {
      V c[6], a[4];
      for (int i = 0; i < 6; ++i) c[i] = s[i][b];
      at4(c, a);
      for (int r = 0; r < 4; ++r) {
        V v = a[r] + vb;
        if (relu) v = v < V{} ? V{} : v;
        y[r][b] = v;
      }
    }
    const int64_t ox0 = 4 * (tx_a + g * L);
    const int64_t ncol = std::min(4 * std::min<int64_t>(L, nt - g * L), p.ow - ox0);
    for (int r = 0; r < rows; ++r) {
      float* d = o + (4 * ty + r) * p.ow + ox0;
      V c[4];
      interleave4(y[r][0], y[r][1], y[r][2], y[r][3], c);
      for (int k = 0; k < 4 && k * L < ncol; ++k)
        store_part(d + k * L, c[k], static_cast<int>(std::min<int64_t>(L, ncol - k * L)));
    }
  }
}

// GCC 12 drops __builtin_prefetch from these loops (measured: no prefetch instruction left in
// the object); the asm statements stay.
template <bool Write>
inline void prefetch_line(const char* a) {
#if defined(__x86_64__) || defined(__i386__)
  if (Write) asm volatile("prefetchw %0" : : "m"(*a));
  else asm volatile("prefetcht0 %0" : : "m"(*a));
#else
  __builtin_prefetch(a, Write ? 1 : 0, 3);
#endif
}

// Prefetches the rows [4 ty + r_off, 4 ty + r_off + extra) (within [0, h)) of the tile rows
// ty that tiles [t0, t0 + nt) occupy, in plane0 + n * img_stride for their images n.
template <bool Write>
inline void prefetch_rows(const float* plane0, int64_t img_stride, int64_t h, int64_t w, const Plan& q, int64_t t0,
                          int64_t nt, int64_t r_off, int64_t extra) {
  for (int64_t n = t0 / q.tiles_img; nt > 0 && n <= (t0 + nt - 1) / q.tiles_img; ++n) {
    const int64_t ta = std::max(t0, n * q.tiles_img) % q.tiles_img / q.tw;
    const int64_t tb = (std::min(t0 + nt, (n + 1) * q.tiles_img) - 1) % q.tiles_img / q.tw;
    const int64_t r0 = std::max<int64_t>(0, 4 * ta + r_off), r1 = std::min(h, 4 * tb + r_off + extra);
    const char* a = reinterpret_cast<const char*>(plane0 + n * img_stride + r0 * w);
    const char* e = reinterpret_cast<const char*>(plane0 + n * img_stride + r1 * w);
    for (; a < e; a += 64) prefetch_line<Write>(a);
  }
}

// Input transform of tiles [t0, t0 + nt) into vb ([e][C][ldv], e stride ves), channel by
// channel, tile row segments in order; columns [nt, npad) zeroed. ring: 8 phase-row slots
// (a tile row's six input rows are distinct mod 8, and the next tile row reuses two); zrow:
// a phase row of zeros (rows outside the image).
inline void input_block(const float* x, const Conv2dShape& p, const Plan& q, int64_t t0, int64_t nt, int64_t npad,
                        int64_t ldv, int64_t ves, float* ring, const float* zrow, float* vb) {
  const int64_t C = p.c, HW = p.h * p.w, phs = q.phs;
  for (int64_t c = 0; c < C; ++c) {
    // (Again two channels ahead: part of the early prefetch has left L2 by now; -5%.)
    if (c + 2 < C) prefetch_rows<false>(x + (c + 2) * HW, C * HW, p.h, p.w, q, t0, nt, -p.pt, 6);
    int64_t key[8];
    std::fill(key, key + 8, int64_t(-1));
    for (int64_t t = t0; t < t0 + nt;) {
      const int64_t n = t / q.tiles_img, ty = (t % q.tiles_img) / q.tw, tx = t % q.tw;
      const int64_t seg = std::min(q.tw - tx, t0 + nt - t);
      const float* plane = x + (n * C + c) * HW;
      const float* rows[6];
      for (int rho = 0; rho < 6; ++rho) {
        const int64_t ih = 4 * ty - p.pt + rho;
        if (ih < 0 || ih >= p.h) {
          rows[rho] = zrow;
          continue;
        }
        const int64_t slot = ih & 7, id = n * p.h + ih;
        float* d = ring + slot * 4 * phs;
        if (key[slot] != id) {
          phase_row(plane + ih * p.w, p.w, p.pl, q.nch, phs, d);
          key[slot] = id;
        }
        rows[rho] = d;
      }
      input_segment(rows, phs, tx, seg, vb + c * ldv + (t - t0), ves);
      t += seg;
    }
  }
  zero_pad_columns(vb, C, ves, ldv, nt, npad);
}

// out = conv(x, w) (+ bias, ReLU); shape p must satisfy eligible().
inline void forward(const float* x, const float* w, const float* bias, float* out, const Conv2dShape& p,
                    bool relu) {
  using Bk = gemm_detail::Blocking<float>;
  constexpr int MR = Bk::MR, NR = Bk::NR;
  const Plan q = make_plan(p);
  const int64_t C = p.c, K = p.k, HW = p.h * p.w, OHW = p.oh * p.ow;
  const int64_t ldv = q.tblk, usz = q.kpad * C, ves = q.ves, mes = q.mes, phs = q.phs;
  // U in the calling thread's slot 0 (the GEMM driver's, unused here): reused across calls,
  // no page faults on fresh memory (37 MiB for C = K = 512).
  float* upk = gemm_detail::scratch<float>(0, 36 * usz);
  transform_weights(w, p, q, upk);
  std::vector<int64_t> off(static_cast<size_t>(q.kcb));
  for (int64_t c = 0; c < q.kcb; ++c) off[c] = c * ldv;
  const int64_t nkc = (q.kpad + q.kch - 1) / q.kch;
  // A few blocks per chunk, so that most blocks find their input prefetched.
  const int64_t grain = std::max<int64_t>(1, std::min<int64_t>(8, q.items / 8));
  parallel_for(0, q.items, grain, [&](int64_t lo, int64_t hi) {
    float* vb = gemm_detail::scratch<float>(2, 36 * ves);
    float* mb = gemm_detail::scratch<float>(3, 36 * mes);
    // Phase rows: a ring of 8 input rows (a tile row's six are distinct mod 8, and the next
    // tile row reuses two), then one of zeros for the rows outside the image.
    float* ring = gemm_detail::scratch<float>(4, 9 * 4 * phs);
    float* zrow = ring + 8 * 4 * phs;
    std::fill(ring, zrow + 4 * phs, 0.f);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t t0 = it * q.tblk, nt = std::min(q.tblk, q.total - t0);
      const int64_t tpad = (nt + NR - 1) / NR * NR;
      // 1. input transform.
      input_block(x, p, q, t0, nt, tpad, ldv, ves, ring, zrow, vb);
      // x is read at several bytes per cycle in the input transform, faster than DRAM serves
      // two cores: the next block's input (spread over this block's GEMMs, which use no memory
      // bandwidth) and each K chunk's output lines are prefetched.
      const int64_t nxt = it + 1 < hi ? std::min(q.tblk, q.total - t0 - q.tblk) : 0;
      const int64_t steps = nkc * 36;
      for (int64_t kc0 = 0, ci = 0; kc0 < q.kpad; kc0 += q.kch, ++ci) {
        const int64_t kn = std::min(q.kch, q.kpad - kc0);
        // 2. M[e] = U[e] V[e] for output channels [kc0, kc0 + kn).
        for (int e = 0; e < 36; ++e) {
          const int64_t st = ci * 36 + e;
          for (int64_t c = st * C / steps; c < (st + 1) * C / steps && nxt > 0; ++c)
            prefetch_rows<false>(x + c * HW, C * HW, p.h, p.w, q, t0 + q.tblk, nxt, -p.pt, 6);
          if (e < kn && kc0 + e < K)
            prefetch_rows<true>(out + (kc0 + e) * OHW, K * OHW, p.oh, p.ow, q, t0, nt, 0, 4);
          const float* ue = upk + e * usz;
          const float* ve = vb + e * ves;
          float* me = mb + e * mes;
          for (int64_t p0 = 0; p0 < C; p0 += q.kcb) {
            const int64_t kc = std::min(q.kcb, C - p0);
            const gemm_detail::Store<float> sto{1.f, 0.f, p0 == 0, p0 + kc >= C, false};
            const float* ub = ue + p0 * q.kpad;
            for (int64_t ir = kc0; ir < kc0 + kn; ir += MR)
              for (int64_t jr = 0; jr < tpad; jr += NR)
                gemm_detail::microkernel_off<float>(kc, ub + ir * kc, ve + p0 * ldv + jr, off.data(),
                                                    me + (ir - kc0) * ldv + jr, ldv, sto, nullptr);
          }
        }
        // 3. output transform of those channels.
        for (int64_t k = kc0; k < std::min(K, kc0 + kn); ++k) {
          const float b = bias ? bias[k] : 0.f;
          for (int64_t t = t0; t < t0 + nt;) {
            const int64_t n = t / q.tiles_img, ty = (t % q.tiles_img) / q.tw, tx = t % q.tw;
            const int64_t seg = std::min(q.tw - tx, t0 + nt - t);
            output_segment(mb + (k - kc0) * ldv + (t - t0), mes, b, relu, out + (n * K + k) * OHW, p, ty, tx,
                           seg);
            t += seg;
          }
        }
      }
    }
  });
}

// y = A m for one 4-vector (the adjoint of at4: A = (A^T)^T is 6 x 4).
inline void a6(const V (&m)[4], V (&y)[6]) {
  y[0] = m[0];
  y[1] = (m[0] + m[2]) + (m[1] + m[3]);
  y[2] = (m[0] + m[2]) - (m[1] + m[3]);
  y[3] = m[0] + 2.f * m[1] + 4.f * m[2] + 8.f * m[3];
  y[4] = 8.f * m[0] - 4.f * m[1] + 2.f * m[2] - m[3];
  y[5] = m[3];
}

// A dY A^T of grad_out tiles tx_a .. tx_a + nt of one tile row of one output channel: rows[a]
// are the phase rows of its four grad_out rows; y[e * es + t] as input_segment.
inline void grad_out_segment(const float* const (&rows)[4], int64_t phs, int64_t tx_a, int64_t nt, float* y,
                             int64_t es) {
  const int64_t ng = (nt + L - 1) / L;
  for (int64_t g = 0; g < ng; ++g) {
    V t[4][6];
    for (int a = 0; a < 4; ++a) {
      V m[4], r[6];
      for (int b = 0; b < 4; ++b) m[b] = simd::loadu(rows[a] + b * phs + tx_a + g * L);
      a6(m, r);
      for (int j = 0; j < 6; ++j) t[a][j] = r[j];
    }
    for (int j = 0; j < 6; ++j) {
      V m[4], r[6];
      for (int a = 0; a < 4; ++a) m[a] = t[a][j];
      a6(m, r);
      for (int i = 0; i < 6; ++i) simd::storeu(y + (6 * i + j) * es + g * L, r[i]);
    }
  }
}

// Lane reduction tree: fold(x, y) adds the two halves of each 2H-lane block of x and of y,
// giving x's H-lane partial sums in the low half and y's in the high half.
template <int H, bool Hi, size_t... I>
constexpr IV fold_mask(std::index_sequence<I...>) {
  return IV{int((I < L / 2 ? 0 : L) + (I % (L / 2)) / H * 2 * H + (Hi ? H : 0) + (I % (L / 2)) % H)...};
}
template <int H>
inline V fold(V x, V y) {
  constexpr IV lo = fold_mask<H, false>(std::make_index_sequence<L>{});
  constexpr IV hi = fold_mask<H, true>(std::make_index_sequence<L>{});
  return IMKERN_SHUFFLE2(x, y, lo) + IMKERN_SHUFFLE2(x, y, hi);
}
// a[0 .. n) (n = 2 L / (2 H) vectors of L / n lanes per source) -> a[0] lane l = sum of source l.
template <int H>
inline void reduce_lanes(V* a, int n) {
  for (int q = 0; q < n / 2; ++q) a[q] = fold<H>(a[2 * q], a[2 * q + 1]);
  if constexpr (H > 1) reduce_lanes<H / 2>(a, n / 2);
}

// C[i][j] (+)= sum_p A[i * lda + p] B[j * ldb + p], p < k (a multiple of L): 4 x 4 tiles of
// vector accumulators, reduced together by a shuffle tree (a fixed order; ~10x fewer
// operations than reducing each accumulator across its lanes), edges by gemm_nt_dot's tile.
inline void dot_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                   int64_t ldc, bool accumulate) {
  const int64_t mf = m / 4 * 4, nf = n / 4 * 4;
  for (int64_t j = 0; j < nf; j += 4)
    for (int64_t i = 0; i < mf; i += 4) {
      V s[16];
      for (int q = 0; q < 16; ++q) s[q] = V{};
      const float* ap = a + i * lda;
      const float* bp = b + j * ldb;
      for (int64_t p = 0; p < k; p += L) {
        V av[4], bv[4];
        for (int r = 0; r < 4; ++r) av[r] = simd::loadu(ap + r * lda + p);
        for (int r = 0; r < 4; ++r) bv[r] = simd::loadu(bp + r * ldb + p);
        for (int r = 0; r < 4; ++r)
          for (int q = 0; q < 4; ++q) s[4 * r + q] += av[r] * bv[q];
      }
      for (int g = 0; g < 16; g += L) reduce_lanes<L / 2>(s + g, L);
      for (int q = 0; q < 16; ++q) {
        const float v = s[q / L * L][q % L];
        float* cp = c + (i + q / 4) * ldc + j + q % 4;
        *cp = accumulate ? *cp + v : v;
      }
    }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = (i < mf ? nf : 0); j < n; ++j)
      gemm_detail::dot_tile<float, 1, 1>(k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
}

// grad_weight = G^T [ sum over tiles (A dY A^T) . (B^T d B) ] G, the adjoint of forward: per
// block of tiles, Y[e] (K x T) = A dY A^T and V[e] (C x T), then GW[e] (K x C) += Y[e] V[e]^T
// with a dot-product kernel (both operands contiguous along the tiles; blocks of a few
// hundred tiles amortize its lane reductions; V and Y, ~4 MiB, live in L3). Blocks are
// summed per chunk fixed by the problem size, the chunks in order, then transformed back to
// 3x3 in double: bit-identical for any thread count.
inline void grad_weight(const float* go, const float* x, float* gw, const Conv2dShape& p) {
  const Plan q = make_plan(p);
  const int64_t C = p.c, K = p.k, OHW = p.oh * p.ow, phs = q.phs, ngw = 36 * K * C;
  int64_t tg = (4 << 20) / (36 * 4 * (C + K));  // 4 MiB of V and Y (2 to 8 measured alike)
  tg = std::max<int64_t>(128, std::min<int64_t>(1024, tg)) / 16 * 16;
  // At least ~8 blocks where there are enough tiles, so that both cores work (blocks of 64
  // tiles still amortize the lane reductions).
  tg = std::min(tg, std::max<int64_t>(64, (q.total + 8 * 16 - 1) / (8 * 16) * 16));
  tg = std::min(tg, (q.total + 15) / 16 * 16);
  const int64_t items = (q.total + tg - 1) / tg;
  // One block per chunk up to 32 blocks (balance over two cores: 2 blocks per chunk measured
  // 5% slower), then fewer partials.
  const int64_t grain = std::max<int64_t>(1, (items + 31) / 32);
  const int64_t nchunk = parallel_chunks(0, items, grain);
  const int64_t ld = tg, ves = C * ld + 32, yes = K * ld + 32;
  // Per-chunk partial sums in the calling thread's slot 0 (reused across calls; every chunk's
  // first block overwrites its partial).
  float* part = gemm_detail::scratch<float>(0, nchunk * ngw);
  parallel_for(0, items, grain, [&](int64_t lo, int64_t hi) {
    float* vb = gemm_detail::scratch<float>(2, 36 * ves);
    float* yb = gemm_detail::scratch<float>(3, 36 * yes);
    float* ring = gemm_detail::scratch<float>(4, 9 * 4 * phs);
    float* zrow = ring + 8 * 4 * phs;
    std::fill(ring, zrow + 4 * phs, 0.f);
    float* acc = part + lo / grain * ngw;
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t t0 = it * tg, nt = std::min(tg, q.total - t0), npad = (nt + L - 1) / L * L;
      input_block(x, p, q, t0, nt, npad, ld, ves, ring, zrow, vb);
      for (int64_t k = 0; k < K; ++k) {
        if (k + 2 < K) prefetch_rows<false>(go + (k + 2) * OHW, K * OHW, p.oh, p.ow, q, t0, nt, 0, 4);
        for (int64_t t = t0; t < t0 + nt;) {
          const int64_t n = t / q.tiles_img, ty = (t % q.tiles_img) / q.tw, tx = t % q.tw;
          const int64_t seg = std::min(q.tw - tx, t0 + nt - t);
          const float* plane = go + (n * K + k) * OHW;
          const float* rows[4];
          for (int a = 0; a < 4; ++a) {
            const int64_t oy = 4 * ty + a;
            if (oy >= p.oh) {
              rows[a] = zrow;
              continue;
            }
            float* d = ring + a * 4 * phs;
            phase_row(plane + oy * p.ow, p.ow, 0, q.nch, phs, d);
            rows[a] = d;
          }
          grad_out_segment(rows, phs, tx, seg, yb + k * ld + (t - t0), yes);
          t += seg;
        }
      }
      zero_pad_columns(yb, K, yes, ld, nt, npad);
      for (int e = 0; e < 36; ++e)
        dot_nt(K, C, npad, yb + e * yes, ld, vb + e * ves, ld, acc + e * K * C, C, it != lo);
    }
  });
  // The chunks in order, then gw[k][c] = G^T GW[.][k][c] G.
  static const double G[6][3] = {{0.5, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {1.0 / 6, -1.0 / 6, 1.0 / 6},
                                 {1.0 / 30, 2.0 / 30, 4.0 / 30},
                                 {-4.0 / 30, 2.0 / 30, -1.0 / 30},
                                 {0, 0, 0.5}};
  parallel_for(0, ngw, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t ch = 1; ch < nchunk; ++ch) {
      const float* src = part + ch * ngw;
      for (int64_t i = lo; i < hi; ++i) part[i] += src[i];
    }
  });
  parallel_for(0, K * C, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t kc = lo; kc < hi; ++kc) {
      double m[36];
      for (int e = 0; e < 36; ++e) m[e] = part[e * K * C + kc];
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) {
          double s = 0;
          for (int i = 0; i < 6; ++i)
            for (int j = 0; j < 6; ++j) s += G[i][r] * m[6 * i + j] * G[j][c];
          gw[kc * 9 + 3 * r + c] = static_cast<float>(s);
        }
    }
  });
}

}  // namespace winograd
}  // namespace IMKERN_ISA
}  // namespace imkern
