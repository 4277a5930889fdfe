// Winograd F(4x4, 3x3) for float32 3x3 stride-1 convolutions (groups 1, dilation 1);
// included by conv2d.cpp, so compiled per ISA.
//
// Algorithm (Lavin & Gray 2016): the output is cut into 4x4 tiles, each computed from the
// 6x6 input window under it: Y = A^T [ sum_c (G g_kc G^T) . (B^T d_c B) ] A, with the
// interpolation points 0, +-1, +-2, inf. Per block of T tiles (consecutive in the flattened
// (image, tile row, tile column) order, T a multiple of the microkernel's NR):
//  1. input transform: V[e][c][t] = (B^T d B)[e], e = 6 i + j; vectorized across the tiles of
//     a tile row: the six input rows are split into the four column phases (u mod 4), so the
//     six columns of L consecutive tiles are plain vector loads; zero padding applied there;
//  2. 36 GEMMs M[e] (K x T) = U[e] (K x C) * V[e] (C x T), U = G g G^T packed once per call
//     for the register microkernel, V read by it in place (microkernel_off, no packing);
//  3. output transform A^T m A per output channel, vectorized across tiles, + bias, ReLU,
//     interleaved back into rows of `out` (partial tiles clipped at the right and bottom).
// V and M of a block (36 (C + K) T floats) stay in L2; x is read once, out written once.
// FLOPs per output: 2 * 36 C K / 16 in the GEMMs (4x fewer than direct 2 * 9 C K) plus
// ~15 C + ~10 K for the transforms. Accuracy: the transforms scale values by up to ~100 and
// cancel, so the float32 error is a few times the direct path's (~1e-6 relative).
// Every output element is computed by one block in a fixed order: bit-identical for any
// thread count. A NaN/Inf input pixel spreads to the whole tiles whose windows contain it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "imkern/conv.hpp"
#include "imkern/parallel.hpp"
#include "gemm_kernel.hpp"
#include "simd.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace winograd {

using V = simd::vec_t<float>;
constexpr int L = simd::Vec<float>::lanes;
typedef int32_t IV __attribute__((vector_size(simd::kBytes)));

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

// s[0 .. 4L) -> p_j[l] = s[4 l + j], stored at d + j * ds.
inline void deinterleave4(const float* s, float* d, int64_t ds) {
  const V a0 = simd::loadu(s), a1 = simd::loadu(s + L), a2 = simd::loadu(s + 2 * L), a3 = simd::loadu(s + 3 * L);
  const V e01 = __builtin_shuffle(a0, a1, kEven), o01 = __builtin_shuffle(a0, a1, kOdd);
  const V e23 = __builtin_shuffle(a2, a3, kEven), o23 = __builtin_shuffle(a2, a3, kOdd);
  simd::storeu(d, __builtin_shuffle(e01, e23, kEven));
  simd::storeu(d + ds, __builtin_shuffle(o01, o23, kEven));
  simd::storeu(d + 2 * ds, __builtin_shuffle(e01, e23, kOdd));
  simd::storeu(d + 3 * ds, __builtin_shuffle(o01, o23, kOdd));
}

// d[4 l + j] = o_j[l], 4L floats.
inline void interleave4(V o0, V o1, V o2, V o3, float* d) {
  const V alo = __builtin_shuffle(o0, o2, kZipLo), ahi = __builtin_shuffle(o0, o2, kZipHi);
  const V blo = __builtin_shuffle(o1, o3, kZipLo), bhi = __builtin_shuffle(o1, o3, kZipHi);
  simd::storeu(d, __builtin_shuffle(alo, blo, kZipLo));
  simd::storeu(d + L, __builtin_shuffle(alo, blo, kZipHi));
  simd::storeu(d + 2 * L, __builtin_shuffle(ahi, bhi, kZipLo));
  simd::storeu(d + 3 * L, __builtin_shuffle(ahi, bhi, kZipHi));
}

// r = B^T d (one 6-point input transform, elementwise over lanes).
inline void bt6(const V (&d)[6], V (&r)[6]) {
  const V a = d[4] - 4.f * d[2], b = d[3] - 4.f * d[1];
  const V c = d[4] - d[2], e = 2.f * (d[3] - d[1]);
  r[0] = 4.f * d[0] - 5.f * d[2] + d[4];
  r[1] = a + b;
  r[2] = a - b;
  r[3] = c + e;
  r[4] = c - e;
  r[5] = 4.f * d[1] - 5.f * d[3] + d[5];
}

// o = A^T m (one 6-point output transform).
inline void at4(const V (&m)[6], V (&o)[4]) {
  const V s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  o[0] = m[0] + s12 + s34;
  o[1] = d12 + 2.f * d34;
  o[2] = s12 + 4.f * s34;
  o[3] = d12 + 8.f * d34 + m[5];
}

// The shapes this path takes (float32 is the caller's condition). Below 16 channels the
// GEMMs are too short for the transforms to pay off.
inline bool eligible(const Conv2dShape& p) {
  return p.r == 3 && p.s == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1 && p.groups == 1 && p.c >= 16 &&
         p.k >= 16;
}

struct Plan {
  int64_t tw, th, tiles_img, total;  // tiles per row, per column, per image, in all
  int64_t tblk, items, ldv;          // tiles per block, blocks, row stride of V and M
  int64_t kpad, kcb;                 // K rounded up to MR; reduction block over C
  int64_t ngmax, phs;                // vector groups per tile row segment; phase row length
};

inline Plan make_plan(const Conv2dShape& p) {
  using Bk = gemm_detail::Blocking<float>;
  Plan q;
  q.tw = (p.ow + 3) / 4, q.th = (p.oh + 3) / 4;
  q.tiles_img = q.tw * q.th;
  q.total = p.n * q.tiles_img;
  q.kpad = (p.k + Bk::MR - 1) / Bk::MR * Bk::MR;
  q.kcb = p.c <= 512 ? p.c : 256;
  // Tiles per block: V and M (36 (C + Kpad) floats per tile) fill about 768 KiB of L2, in
  // whole NR slivers.
  const int64_t per_tile = 36 * 4 * (p.c + q.kpad);
  const int64_t slivers = std::max<int64_t>(1, (768 << 10) / (per_tile * Bk::NR));
  q.tblk = std::min(slivers * Bk::NR, (q.total + Bk::NR - 1) / Bk::NR * Bk::NR);
  q.items = (q.total + q.tblk - 1) / q.tblk;
  // The last tile row segment of a block writes up to L - 1 lanes past the block.
  q.ldv = (q.tblk + L + 15) / 16 * 16;
  q.ngmax = (std::min(q.tw, q.tblk) + L - 1) / L;
  q.phs = (q.ngmax + 1) * L;  // + 1: the columns of a group's last tile reach into the next group
  return q;
}

// U[e] = (G g G^T)[e] for every (k, c), in double, packed as the GEMM's A operand (pack_a's
// layout: blocks of kcb columns, MR-row slivers, zero rows up to kpad).
inline void transform_weights(const float* w, const Conv2dShape& p, const Plan& q, float* upk) {
  constexpr int MR = gemm_detail::Blocking<float>::MR;
  static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  const int64_t C = p.c, usz = q.kpad * C;
  parallel_for(0, q.kpad / MR, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t p0 = c / q.kcb * q.kcb, kc = std::min(q.kcb, C - p0);
        const int64_t base = p0 * q.kpad + s * MR * kc + (c - p0) * MR;
        for (int ii = 0; ii < MR; ++ii) {
          const int64_t k = s * MR + ii;
          double u[6][6] = {};
          if (k < p.k) {
            const float* g = w + (k * C + c) * 9;
            double t[6][3];
            for (int a = 0; a < 6; ++a)
              for (int b = 0; b < 3; ++b) t[a][b] = G[a][0] * g[b] + G[a][1] * g[3 + b] + G[a][2] * g[6 + b];
            for (int a = 0; a < 6; ++a)
              for (int b = 0; b < 6; ++b) u[a][b] = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
          }
          for (int e = 0; e < 36; ++e) upk[e * usz + base + ii] = static_cast<float>(u[e / 6][e % 6]);
        }
      }
  });
}

// Input transform of tiles (ty, tx_a .. tx_a + nt) of channel plane xc into v[e * es + t],
// t < roundup(nt, L) (the lanes past nt hold other tiles' values, overwritten by the next
// segment or never read). lin: 4 (ngmax + 1) L floats; ph: [6][4][phs].
inline void input_segment(const float* xc, const Conv2dShape& p, const Plan& q, int64_t ty, int64_t tx_a,
                          int64_t nt, float* lin, float* ph, float* v, int64_t es) {
  const int64_t ng = (nt + L - 1) / L, len = 4 * L * (ng + 1), u0 = 4 * tx_a, phs = q.phs;
  for (int rho = 0; rho < 6; ++rho) {
    float* pr = ph + rho * 4 * phs;
    const int64_t ih = 4 * ty - p.pt + rho;
    if (ih < 0 || ih >= p.h) {
      for (int j = 0; j < 4; ++j) std::fill(pr + j * phs, pr + j * phs + (ng + 1) * L, 0.f);
      continue;
    }
    const int64_t lo = std::min(std::max<int64_t>(p.pl - u0, 0), len);
    const int64_t hi = std::min(std::max(p.pl + p.w - u0, lo), len);
    std::fill(lin, lin + lo, 0.f);
    if (hi > lo) {
      const float* src = xc + ih * p.w + (u0 + lo - p.pl);
      int64_t t = lo;
      for (; t + L <= hi; t += L) simd::storeu(lin + t, simd::loadu(src + (t - lo)));
      for (; t < hi; ++t) lin[t] = src[t - lo];
    }
    std::fill(lin + hi, lin + len, 0.f);
    for (int64_t m = 0; m <= ng; ++m) deinterleave4(lin + 4 * L * m, pr + m * L, phs);
  }
  for (int64_t g = 0; g < ng; ++g) {
    V t[6][6];
    for (int j = 0; j < 6; ++j) {
      const float* col = ph + (j % 4) * phs + g * L + j / 4;
      V d[6], r[6];
      for (int rho = 0; rho < 6; ++rho) d[rho] = simd::loadu(col + rho * 4 * phs);
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
      if (ncol == 4 * L) {
        interleave4(y[r][0], y[r][1], y[r][2], y[r][3], d);
      } else {
        alignas(64) float tmp[4 * L];
        interleave4(y[r][0], y[r][1], y[r][2], y[r][3], tmp);
        for (int64_t t = 0; t < ncol; ++t) d[t] = tmp[t];
      }
    }
  }
}

// out = conv(x, w) (+ bias, ReLU); shape p must satisfy eligible().
inline void forward(const float* x, const float* w, const float* bias, float* out, const Conv2dShape& p,
                    bool relu) {
  using Bk = gemm_detail::Blocking<float>;
  constexpr int MR = Bk::MR, NR = Bk::NR;
  const Plan q = make_plan(p);
  const int64_t C = p.c, K = p.k, HW = p.h * p.w, OHW = p.oh * p.ow;
  const int64_t usz = q.kpad * C;
  std::vector<float, AlignedAllocator<float>> upk(static_cast<size_t>(36 * usz));
  transform_weights(w, p, q, upk.data());
  std::vector<int64_t> off(static_cast<size_t>(q.kcb));
  for (int64_t c = 0; c < q.kcb; ++c) off[c] = c * q.ldv;
  const int64_t ves = C * q.ldv, mes = q.kpad * q.ldv;  // e strides of V and M
  parallel_for(0, q.items, 1, [&](int64_t lo, int64_t hi) {
    float* vb = gemm_detail::scratch<float>(2, 36 * ves);
    float* mb = gemm_detail::scratch<float>(3, 36 * mes);
    float* lin = gemm_detail::scratch<float>(4, 4 * L * (q.ngmax + 1) + 24 * q.phs);
    float* ph = lin + 4 * L * (q.ngmax + 1);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t t0 = it * q.tblk, nt = std::min(q.tblk, q.total - t0);
      const int64_t tpad = (nt + NR - 1) / NR * NR;
      // 1. input transform, channel by channel, tile row segments in order.
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t t = t0; t < t0 + nt;) {
          const int64_t n = t / q.tiles_img, ty = (t % q.tiles_img) / q.tw, tx = t % q.tw;
          const int64_t seg = std::min(q.tw - tx, t0 + nt - t);
          input_segment(x + (n * C + c) * HW, p, q, ty, tx, seg, lin, ph, vb + c * q.ldv + (t - t0), ves);
          t += seg;
        }
      }
      if (tpad > nt)
        for (int64_t r = 0; r < 36 * C; ++r) std::fill(vb + r * q.ldv + nt, vb + r * q.ldv + tpad, 0.f);
      // 2. M[e] = U[e] V[e].
      for (int e = 0; e < 36; ++e) {
        const float* ue = upk.data() + e * usz;
        const float* ve = vb + e * ves;
        float* me = mb + e * mes;
        for (int64_t p0 = 0; p0 < C; p0 += q.kcb) {
          const int64_t kc = std::min(q.kcb, C - p0);
          const gemm_detail::Store<float> st{1.f, 0.f, p0 == 0, p0 + kc >= C, false};
          const float* ub = ue + p0 * q.kpad;
          for (int64_t ir = 0; ir < q.kpad; ir += MR)
            for (int64_t jr = 0; jr < tpad; jr += NR)
              gemm_detail::microkernel_off<float>(kc, ub + ir * kc, ve + p0 * q.ldv + jr, off.data(),
                                                  me + ir * q.ldv + jr, q.ldv, st, nullptr);
        }
      }
      // 3. output transform, channel by channel.
      for (int64_t k = 0; k < K; ++k) {
        const float b = bias ? bias[k] : 0.f;
        for (int64_t t = t0; t < t0 + nt;) {
          const int64_t n = t / q.tiles_img, ty = (t % q.tiles_img) / q.tw, tx = t % q.tw;
          const int64_t seg = std::min(q.tw - tx, t0 + nt - t);
          output_segment(mb + k * q.ldv + (t - t0), mes, b, relu, out + (n * K + k) * OHW, p, ty, tx, seg);
          t += seg;
        }
      }
    }
  });
}

}  // namespace winograd
}  // namespace IMKERN_ISA
}  // namespace imkern
