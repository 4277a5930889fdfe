// conv2d forward and backward, on top of the GEMM microkernels (compiled per ISA).
//
// Forward: float32 3x3 stride-1 convolutions (dilation 1, groups 1, C and K >= 16, enough
// output pixels) use Winograd F(4x4, 3x3) unless switched off (winograd.hpp: 4x fewer
// multiplications, bias + ReLU fused in the output transform). Otherwise three paths, each a
// GEMM out[K/g, pixels] = W[K/g, CRS] * patches[CRS, pixels] (CRS = C/g * R * S) with the
// weights packed once per call and bias + ReLU fused in the microkernel's epilogue:
//  * stride 1, CRS >= K/g: implicit GEMM. The input rows a work item needs are copied once
//    into a zero-padded block; outputs are computed on the padded-width ("wide") grid, where
//    every patch row is a contiguous shifted window of that block, so the microkernel loads
//    B straight from it (no im2col, no packing). Cost: (Wp - OW) / OW extra columns.
//  * 1x1, stride 1, no padding: the image is B (packed from it directly).
//  * otherwise (strided, or short reductions such as a C = 1 first layer): im2col fused with
//    the B packing, per (image, group, chunk of output pixels sized to L2).
//  * depthwise (groups == C == K): a direct stencil on the input plane, each tap over the
//    output columns whose input lies in the image (memory and work independent of padding).
//  * C = 1 (groups 1), 3x3 (5x5 on AVX-512), stride 1, dilation 1, planes up to 64x64: a
//    direct stencil, weights in registers, each input row reused by a block of output rows
//    (conv2d_small.cpp); tried before the GEMM paths.
// FLOPs/output = 2 CRS; bytes: x read ~(1 + (R-1)/rows) times, out written once.
// Backward: grad_bias = per-channel sums; grad_input, for stride 1 with padding <= the
// dilated kernel extent, is the forward convolution (Winograd where the forward would use it,
// else the implicit GEMM) of grad_out with the flipped, transposed weights and the
// complementary padding; else W^T grad_out per pixel chunk and col2im. grad_weight: Winograd
// where the forward would use it (winograd.hpp); else, for stride 1, an outer-product kernel
// over the wide grid (grad_out transposed, zeros in the dropped columns, times the shifted
// input windows); else a dot-product kernel over im2col chunks. The batch is cut into chunks
// fixed by the problem size, their partial sums added in chunk order.
// Every reduction has a fixed order, so 1 and N threads give identical bits.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "imkern/cpu_params.hpp"
#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "nn/conv_small.hpp"
#include "nn/ukernels/gemm_kernel.hpp"
#include "common/dtype.hpp"
#include "common/simd.hpp"
#include "nn/ukernels/winograd.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

using gemm_detail::Blocking;
using gemm_detail::scratch;  // slots 2 (packed B / col chunk), 3 (padded plane), 4 (patch row)

// For output pixel run [t_lo, t_hi) of a row segment starting at input column iw0 with
// stride sw, the offsets whose input column lies in [0, W).
inline void valid_range(int64_t iw0, int64_t sw, int64_t w, int64_t seg, int64_t& lo, int64_t& hi) {
  if (iw0 >= w) {
    lo = hi = seg;
    return;
  }
  lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
  hi = (w - 1 - iw0) / sw + 1;
  lo = std::min(lo, seg);
  hi = std::max(lo, std::min(hi, seg));
}

// One row of the patch matrix: d[j] = x[c, ih, iw] (zero outside the image) for tap (r, s)
// of input plane `plane` and output pixels col0 + j, j < ncols.
template <typename T>
void im2col_row(const T* plane, const Conv2dShape& p, int64_t r, int64_t s, int64_t col0, int64_t ncols, T* d) {
  const int64_t H = p.h, W = p.w, OW = p.ow;
  int64_t idx = col0, oh = col0 / OW, ow = col0 % OW;
  const int64_t end = col0 + ncols;
  while (idx < end) {
    const int64_t seg = std::min(OW - ow, end - idx);
    T* dd = d + (idx - col0);
    const int64_t ih = oh * p.sh - p.pt + r * p.dh;
    if (ih < 0 || ih >= H) {
      std::fill(dd, dd + seg, T(0));
    } else {
      const T* row = plane + ih * W;
      const int64_t iw0 = ow * p.sw - p.pl + s * p.dw;
      int64_t lo, hi;
      valid_range(iw0, p.sw, W, seg, lo, hi);
      std::fill(dd, dd + lo, T(0));
      if (p.sw == 1) {
        std::memcpy(dd + lo, row + iw0 + lo, static_cast<size_t>(hi - lo) * sizeof(T));
      } else {
        for (int64_t t = lo; t < hi; ++t) dd[t] = row[iw0 + t * p.sw];
      }
      std::fill(dd + hi, dd + seg, T(0));
    }
    idx += seg;
    ow = 0;
    ++oh;
  }
}

// col[(c * R + r) * S + s][j] for output pixels col0 + j.
template <typename T>
void im2col(const T* x, const Conv2dShape& p, int64_t cg, int64_t col0, int64_t ncols, T* dst) {
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t r = 0; r < p.r; ++r)
      for (int64_t s = 0; s < p.s; ++s)
        im2col_row(x + c * p.h * p.w, p, r, s, col0, ncols, dst + ((c * p.r + r) * p.s + s) * ncols);
}

// Patch-matrix rows q0 .. q0 + kc, output pixels col0 .. col0 + ncols, written straight into
// the GEMM's packed-B layout (NR-column slivers, zero-padded): im2col fused with packing.
template <typename T>
void im2col_packed(const T* x, const Conv2dShape& p, int64_t q0, int64_t kc, int64_t col0, int64_t ncols,
                   T* dst) {
  constexpr int NR = Blocking<T>::NR;
  const int64_t npad = (ncols + NR - 1) / NR * NR;
  T* row = scratch<T>(4, npad);
  std::fill(row + ncols, row + npad, T(0));
  const int64_t RS = p.r * p.s;
  for (int64_t q = 0; q < kc; ++q) {
    const int64_t qq = q0 + q, c = qq / RS, r = (qq % RS) / p.s, s = qq % p.s;
    im2col_row(x + c * p.h * p.w, p, r, s, col0, ncols, row);
    for (int64_t t = 0; t < npad; t += NR) std::memcpy(dst + t * kc + q * NR, row + t, NR * sizeof(T));
  }
}

// The adjoint of im2col: gi[c, ih, iw] += col[...] for in-image positions.
template <typename T>
void col2im(const T* src, const Conv2dShape& p, int64_t cg, int64_t col0, int64_t ncols, T* gi) {
  const int64_t H = p.h, W = p.w, OW = p.ow;
  for (int64_t c = 0; c < cg; ++c) {
    T* plane = gi + c * H * W;
    for (int64_t r = 0; r < p.r; ++r)
      for (int64_t s = 0; s < p.s; ++s) {
        const T* d = src + ((c * p.r + r) * p.s + s) * ncols;
        int64_t idx = col0, oh = col0 / OW, ow = col0 % OW;
        const int64_t end = col0 + ncols;
        while (idx < end) {
          const int64_t seg = std::min(OW - ow, end - idx);
          const T* dd = d + (idx - col0);
          const int64_t ih = oh * p.sh - p.pt + r * p.dh;
          if (ih >= 0 && ih < H) {
            T* row = plane + ih * W;
            const int64_t iw0 = ow * p.sw - p.pl + s * p.dw;
            int64_t lo, hi;
            valid_range(iw0, p.sw, W, seg, lo, hi);
            if (p.sw == 1) {
              T* q = row + iw0;
              for (int64_t t = lo; t < hi; ++t) q[t] += dd[t];
            } else {
              for (int64_t t = lo; t < hi; ++t) row[iw0 + t * p.sw] += dd[t];
            }
          }
          idx += seg;
          ow = 0;
          ++oh;
        }
      }
  }
}

inline bool is_pointwise(const Conv2dShape& p) {
  return p.r == 1 && p.s == 1 && p.sh == 1 && p.sw == 1 && p.pt == 0 && p.pb == 0 && p.pl == 0 && p.pr == 0;
}

// Depthwise forward: one channel plane at a time, straight from the input plane. Each tap
// (r, s) adds into the output columns whose input column lies inside the image (a range
// computed once per tap), and skips rows outside it: no padded copy, so the memory and the
// work do not depend on the padding (a padded plane took (H + pt + pb) x (W + pl + pr)
// elements: 1.5 GB for padding 10000 on a 2x2 input, and its size product could wrap).
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dShape& p, bool relu) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  const int64_t H = p.h, W = p.w;
  const int64_t OH = p.oh, OW = p.ow, RS = p.r * p.s, planes = p.n * p.c;
  const int64_t work = std::max<int64_t>(1, OH * OW * RS);
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / work);
  // Output columns [lo, hi) whose input column ox * sw + off lies in [0, W); off = s*dw - pl.
  auto col_range = [&](int64_t off, int64_t& lo, int64_t& hi) {
    // ox * sw + off >= 0  <=>  ox >= ceil(-off / sw);  ox * sw + off <= W - 1
    lo = off >= 0 ? 0 : (-off + p.sw - 1) / p.sw;
    hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / p.sw + 1;
    lo = std::min(lo, OW);
    hi = std::max(std::min(hi, OW), lo);
  };
  parallel_for(0, planes, grain, [&](int64_t lo_pl, int64_t hi_pl) {
    for (int64_t pl = lo_pl; pl < hi_pl; ++pl) {
      const int64_t c = pl % p.c;
      const T* src = x + pl * H * W;
      const T* wk = w + c * RS;
      const T b = bias ? bias[c] : T(0);
      T* o = out + pl * OH * OW;
      for (int64_t oy = 0; oy < OH; ++oy) {
        T* orow = o + oy * OW;
        std::fill(orow, orow + OW, b);
        for (int64_t r = 0; r < p.r; ++r) {
          // oy * sh + r * dh - pt < H + pb: no overflow (the Python layer bounds H + pt + pb)
          const int64_t iy = oy * p.sh + r * p.dh - p.pt;
          if (iy < 0 || iy >= H) continue;
          const T* irow = src + iy * W;
          for (int64_t s = 0; s < p.s; ++s) {
            const T wt = wk[r * p.s + s];
            const int64_t off = s * p.dw - p.pl;
            int64_t lo, hi;
            col_range(off, lo, hi);
            if (p.sw == 1) {
              const T* q = irow + off;  // q[ox] valid for ox in [lo, hi)
              const V wv = splat<T>(wt);
              int64_t ox = lo;
              for (; ox + L <= hi; ox += L) storeu(orow + ox, loadu(orow + ox) + wv * loadu(q + ox));
              for (; ox < hi; ++ox) orow[ox] += wt * q[ox];
            } else {
              for (int64_t ox = lo; ox < hi; ++ox) orow[ox] += wt * irow[ox * p.sw + off];
            }
          }
        }
        if (relu)
          for (int64_t ox = 0; ox < OW; ++ox) orow[ox] = orow[ox] < T(0) ? T(0) : orow[ox];
      }
    }
  });
}

// k blocking of the conv GEMMs: the whole reduction when it is short enough (C is then
// written once, with the epilogue), else blocks of 512. Depends on the shape only.
inline int64_t conv_kc(int64_t k) { return k <= 1152 ? std::max<int64_t>(k, 1) : 512; }

// Output pixels per work item: the packed-B panel (kc x ncols) fills about half the L2
// (cpu_params().l2_block; 512 KiB on the 1 MiB L2 it was measured on).
template <typename T>
int64_t conv_cols(int64_t kc, int64_t ohw) {
  constexpr int NR = Blocking<T>::NR;
  const int64_t target = std::max<int64_t>(4096, params().l2_block) / static_cast<int64_t>(sizeof(T));
  int64_t nc = target / std::max<int64_t>(kc, 1) / NR * NR;
  nc = std::max<int64_t>(nc, 2 * NR);
  return std::min(nc, ohw);
}

// ---- stride-1 implicit GEMM ---------------------------------------------------------------
// The input rows an item needs are copied once into a zero-padded block [C/g][rows][Wp]
// (Wp = W + left + right); the outputs are computed on the "wide" grid j = oh * Wp + ow
// (ow < Wp), where tap (c, r, s) reads the contiguous window at c * rows * Wp + r * dh * Wp
// + s * dw + j. The microkernel loads B straight from there (no im2col, no packing); the
// Wp - OW wide columns per row are computed and dropped (3.6% for 56 + 2 padding).

inline int64_t padded_w(const Conv2dShape& p) { return p.w + p.pl + p.pr; }

// A copy of a few dozen elements, inline (a libc call per tile row costs more than the copy).
template <typename T>
inline void copy_short(T* d, const T* s, int64_t n) {
  using namespace simd;
  constexpr int L = Vec<T>::lanes;
  int64_t t = 0;
  for (; t + L <= n; t += L) storeu(d + t, loadu(s + t));
  for (; t < n; ++t) d[t] = s[t];
}

// Padded rows [prow0, prow0 + rows) (padded coordinates) of cg channel planes into dst,
// followed by `slack` zeros.
template <typename T>
void load_padded_rows(const T* x, const Conv2dShape& p, int64_t cg, int64_t prow0, int64_t rows, int64_t slack,
                      T* dst) {
  const int64_t Wp = padded_w(p);
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t lr = 0; lr < rows; ++lr) {
      T* d = dst + (c * rows + lr) * Wp;
      const int64_t ih = prow0 + lr - p.pt;
      if (ih < 0 || ih >= p.h) {
        std::fill(d, d + Wp, T(0));
        continue;
      }
      std::fill(d, d + p.pl, T(0));
      std::memcpy(d + p.pl, x + (c * p.h + ih) * p.w, static_cast<size_t>(p.w) * sizeof(T));
      std::fill(d + p.pl + p.w, d + Wp, T(0));
    }
  std::fill(dst + cg * rows * Wp, dst + cg * rows * Wp + slack, T(0));
}

// Output rows per item: the padded block fills about half the L2 (cpu_params().l2_block; on
// a 1 MiB L2, 128 KiB measured 8% slower, 448-640 KiB alike).
// (grad_weight passes the fixed 512 KiB: there the row blocks order the pixel sums, so they
// must depend on the shape only.)
template <typename T>
int64_t direct_rows(const Conv2dShape& p, int64_t cg, int64_t block_bytes) {
  const int64_t target = std::max<int64_t>(4096, block_bytes) / static_cast<int64_t>(sizeof(T));
  const int64_t Wp = padded_w(p);
  constexpr int NR = Blocking<T>::NR;
  const int64_t rmax = std::max<int64_t>(1, std::min(target / std::max<int64_t>(1, cg * Wp) - (p.r - 1) * p.dh, p.oh));
  // Among [rmax / 2, rmax], the row count that wastes the fewest NR-wide sliver columns.
  int64_t best = rmax, best_cost = INT64_MAX;
  for (int64_t r = rmax; r >= std::max<int64_t>(1, rmax / 2); --r) {
    const int64_t full = p.oh / r, rem = p.oh % r;
    const int64_t cost = full * ((r * Wp + NR - 1) / NR) + (rem * Wp + NR - 1) / NR;
    if (cost < best_cost) best = r, best_cost = cost;
  }
  return best;
}

template <typename T>
void tap_offsets(const Conv2dShape& p, int64_t cg, int64_t rows_in, int64_t* off) {
  const int64_t Wp = padded_w(p), RS = p.r * p.s;
  for (int64_t q = 0; q < cg * RS; ++q) {
    const int64_t c = q / RS, r = (q % RS) / p.s, s = q % p.s;
    off[q] = c * rows_in * Wp + r * p.dh * Wp + s * p.dw;
  }
}

// out = conv(x, W) (+ bias, ReLU) for a stride-1 convolution; wpk holds each group's W
// packed by pack_a_full (kcb blocks), wsz elements apart.
template <typename T>
void direct_forward(const T* x, const T* wpk, int64_t wsz, int64_t kcb, const T* bias, T* out, const Conv2dShape& p,
                    bool relu) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  const int64_t G = p.groups, Cg = p.c / G, Kg = p.k / G, CRS = Cg * p.r * p.s;
  const int64_t HW = p.h * p.w, OHW = p.oh * p.ow, Wp = padded_w(p);
  const int64_t Kpad = (Kg + MR - 1) / MR * MR;
  const int64_t rows_per = direct_rows<T>(p, Cg, params().l2_block);
  const int64_t nrc = (p.oh + rows_per - 1) / rows_per;
  const int64_t slack = NR + (p.s - 1) * p.dw + Wp;
  parallel_for(0, p.n * G * nrc, 1, [&](int64_t lo, int64_t hi) {
    T* ctmp = scratch<T>(3, Kpad * NR);
    T* xl = scratch<T>(2, Cg * (rows_per + (p.r - 1) * p.dh) * Wp + slack);
    std::vector<int64_t> off(static_cast<size_t>(CRS));
    std::vector<T> bpad(static_cast<size_t>(Kpad), T(0));
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t n = it / (G * nrc), g = (it / nrc) % G, rc = it % nrc;
      const int64_t oh0 = rc * rows_per, nrows = std::min(rows_per, p.oh - oh0);
      const int64_t rows_in = nrows + (p.r - 1) * p.dh;
      load_padded_rows(x + (n * p.c + g * Cg) * HW, p, Cg, oh0, rows_in, slack, xl);
      tap_offsets<T>(p, Cg, rows_in, off.data());
      if (bias) std::copy(bias + g * Kg, bias + (g + 1) * Kg, bpad.begin());
      const T* rb = bias ? bpad.data() : nullptr;
      const T* wg = wpk + g * wsz;
      T* og = out + (n * p.k + g * Kg) * OHW;
      const int64_t nwide = nrows * Wp;
      for (int64_t j0 = 0; j0 < nwide; j0 += NR) {
        for (int64_t p0 = 0; p0 < CRS; p0 += kcb) {
          const int64_t kc = std::min(kcb, CRS - p0);
          const gemm_detail::Store<T> st{T(1), T(0), p0 == 0, p0 + kc >= CRS, relu};
          for (int64_t ir = 0; ir < Kpad; ir += MR)
            gemm_detail::microkernel_off<T>(kc, wg + p0 * Kpad + ir * kc, xl + j0, off.data() + p0, ctmp + ir * NR,
                                            NR, st, rb ? rb + ir : nullptr);
        }
        if (CRS == 0)
          for (int64_t i = 0; i < Kpad; ++i)
            for (int64_t jj = 0; jj < NR; ++jj) {
              const T v = rb ? rb[i] : T(0);
              ctmp[i * NR + jj] = relu && v < T(0) ? T(0) : v;
            }
        // Keep the columns that are real output pixels.
        const int64_t jn = std::min<int64_t>(NR, nwide - j0);
        for (int64_t jj = 0; jj < jn;) {
          const int64_t j = j0 + jj, orow = j / Wp, ow = j % Wp;
          const int64_t seg = std::min(jn - jj, Wp - ow), valid = std::min(seg, p.ow - ow);
          if (valid > 0)
            for (int64_t i = 0; i < Kg; ++i) copy_short(og + i * OHW + (oh0 + orow) * p.ow + ow, ctmp + i * NR + jj, valid);
          jj += seg;
        }
      }
    }
  });
}

// grad_weight tile: gwT[q][k] (+)= sum_j xl[off[q] + j] * goT[j][k] for MQ taps q and NV
// vectors of output channels k: an outer-product microkernel (broadcast the input sample,
// aligned vector loads of the transposed grad_out), j in order.
template <typename T, int MQ, int NV>
inline void gw_tile(int64_t nj, const T* __restrict goT, int64_t ldk, const T* xl, const int64_t* off, T* gwT,
                    bool accumulate) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  const T* xq[MQ];
  for (int i = 0; i < MQ; ++i) xq[i] = xl + off[i];
  V acc[MQ][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MQ; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  for (int64_t j = 0; j < nj; ++j) {
    V gv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) gv[v] = *reinterpret_cast<const V*>(goT + j * ldk + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < MQ; ++i) {
      const V xb = gemm_detail::bcast<T>(xq[i][j]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[i][v] += xb * gv[v];
    }
  }
  for (int i = 0; i < MQ; ++i)
    for (int v = 0; v < NV; ++v) {
      T* d = gwT + i * ldk + v * L;
      storeu(d, accumulate ? loadu(d) + acc[i][v] : acc[i][v]);
    }
}

template <typename T, int MQ>
void gw_rows(int64_t nj, const T* goT, int64_t ldk, const T* xl, const int64_t* off, T* gwT, bool accumulate) {
  constexpr int L = simd::Vec<T>::lanes;
#if defined(__AVX512F__)
  constexpr int NVMAX = 4;
#else
  constexpr int NVMAX = 3;
#endif
  for (int64_t k0 = 0; k0 < ldk; k0 += NVMAX * L) {
    const int64_t nv = std::min<int64_t>(NVMAX, (ldk - k0) / L);
    T* d = gwT + k0;
    const T* g = goT + k0;
    if (nv == NVMAX) gw_tile<T, MQ, NVMAX>(nj, g, ldk, xl, off, d, accumulate);
    else if (nv == 3) gw_tile<T, MQ, 3>(nj, g, ldk, xl, off, d, accumulate);
    else if (nv == 2) gw_tile<T, MQ, 2>(nj, g, ldk, xl, off, d, accumulate);
    else gw_tile<T, MQ, 1>(nj, g, ldk, xl, off, d, accumulate);
  }
}

// grad_weight of a stride-1 convolution, images [n0, n1) of group g, into gwg ([K/g, CRS],
// overwritten): grad_out is laid out transposed on the wide grid (goT[j][k], zeros in the
// dropped columns) and multiplied with the shifted windows of the padded input.
template <typename T>
void direct_grad_weight(const T* go, const T* x, T* gwg, const Conv2dShape& p, int64_t g, int64_t n0, int64_t n1) {
  constexpr int L = simd::Vec<T>::lanes;
#if defined(__AVX512F__)
  constexpr int MQ = 6;
#else
  constexpr int MQ = 3;
#endif
  const int64_t G = p.groups, Cg = p.c / G, Kg = p.k / G, CRS = Cg * p.r * p.s;
  const int64_t HW = p.h * p.w, OHW = p.oh * p.ow, Wp = padded_w(p);
  const int64_t Kpad = (Kg + L - 1) / L * L;
  const int64_t rows_per = direct_rows<T>(p, Cg, int64_t(512) << 10);  // shape-only: sets the sum order
  const int64_t slack = (p.s - 1) * p.dw + Wp + 64;
  T* xl = scratch<T>(2, Cg * (rows_per + (p.r - 1) * p.dh) * Wp + slack);
  T* goT = scratch<T>(3, rows_per * Wp * Kpad);
  std::vector<int64_t> off(static_cast<size_t>(CRS));
  std::vector<T> gwT(static_cast<size_t>(CRS * Kpad));
  bool first = true;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t oh0 = 0; oh0 < p.oh; oh0 += rows_per) {
      const int64_t nrows = std::min(rows_per, p.oh - oh0), rows_in = nrows + (p.r - 1) * p.dh;
      const int64_t nwide = nrows * Wp;
      load_padded_rows(x + (n * p.c + g * Cg) * HW, p, Cg, oh0, rows_in, slack, xl);
      tap_offsets<T>(p, Cg, rows_in, off.data());
      std::fill(goT, goT + nwide * Kpad, T(0));
      // Transpose in blocks of 16 pixels, so the 16 goT rows being written stay in L1.
      const T* src0 = go + (n * p.k + g * Kg) * OHW + oh0 * p.ow;
      for (int64_t lr = 0; lr < nrows; ++lr)
        for (int64_t ow0 = 0; ow0 < p.ow; ow0 += 16) {
          const int64_t tn = std::min<int64_t>(16, p.ow - ow0);
          T* d = goT + (lr * Wp + ow0) * Kpad;
          for (int64_t k = 0; k < Kg; ++k) {
            const T* src = src0 + k * OHW + lr * p.ow + ow0;
            for (int64_t t = 0; t < tn; ++t) d[t * Kpad + k] = src[t];
          }
        }
      int64_t qf = 0;
      if (Kpad <= 2 * L) {
        // Two vectors of output channels or fewer: twice the taps per pass (2 x MQ x 2
        // accumulators still fit the register file), halving the grad_out loads per FMA.
        qf = CRS / (2 * MQ) * (2 * MQ);
        for (int64_t q = 0; q < qf; q += 2 * MQ)
          gw_rows<T, 2 * MQ>(nwide, goT, Kpad, xl, off.data() + q, gwT.data() + q * Kpad, !first);
      }
      const int64_t qm = qf + (CRS - qf) / MQ * MQ;
      for (int64_t q = qf; q < qm; q += MQ)
        gw_rows<T, MQ>(nwide, goT, Kpad, xl, off.data() + q, gwT.data() + q * Kpad, !first);
      for (int64_t q = qm; q < CRS; ++q)
        gw_rows<T, 1>(nwide, goT, Kpad, xl, off.data() + q, gwT.data() + q * Kpad, !first);
      first = false;
    }
  }
  for (int64_t k = 0; k < Kg; ++k)
    for (int64_t q = 0; q < CRS; ++q) gwg[k * CRS + q] = first ? T(0) : gwT[q * Kpad + k];
}

// The Winograd path, where allowed, possible and (for ConvWinograd::auto_select) faster:
// float32 only (float64 stays exact, the reference for finite-difference checks).
inline bool try_winograd(const float* x, const float* w, const float* bias, float* out, const Conv2dShape& p,
                         bool relu, ConvWinograd mode) {
  if (mode == ConvWinograd::off || !winograd::eligible(p)) return false;
  if (mode == ConvWinograd::auto_select && !winograd::profitable(p)) return false;
  winograd::forward(x, w, bias, out, p, relu);
  return true;
}
inline bool try_winograd(const double*, const double*, const double*, double*, const Conv2dShape&, bool,
                         ConvWinograd) {
  return false;
}
inline bool try_winograd_grad_weight(const float* go, const float* x, float* gw, const Conv2dShape& p,
                                     ConvWinograd mode) {
  if (mode == ConvWinograd::off || !winograd::eligible(p)) return false;
  if (mode == ConvWinograd::auto_select && !winograd::profitable_grad_weight(p)) return false;
  winograd::grad_weight(go, x, gw, p);
  return true;
}
inline bool try_winograd_grad_weight(const double*, const double*, double*, const Conv2dShape&, ConvWinograd) {
  return false;
}

template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dShape& p, bool relu,
                  ConvWinograd winograd) {
  constexpr int NR = Blocking<T>::NR;
  const int64_t G = p.groups, Cg = p.c / G, Kg = p.k / G, CRS = Cg * p.r * p.s;
  const int64_t HW = p.h * p.w, OHW = p.oh * p.ow;
  if (p.n == 0 || p.k == 0 || OHW == 0) return;
  if (try_winograd(x, w, bias, out, p, relu, winograd)) return;
  if (G > 1 && G == p.c && G == p.k) return depthwise_forward(x, w, bias, out, p, relu);
  if (conv_small_applies<T>(p)) return conv_small_forward(x, w, bias, out, p, relu);
  const bool pw = is_pointwise(p);
  const int64_t kcb = conv_kc(CRS);
  // The weights, packed once for all work items.
  const int64_t wsz = gemm_detail::packed_a_size<T>(Kg, CRS);
  std::vector<T> wpk(static_cast<size_t>(std::max<int64_t>(1, G * wsz)));
  for (int64_t g = 0; g < G; ++g)
    gemm_detail::pack_a_full<T>(false, w + g * Kg * CRS, CRS, Kg, CRS, kcb, wpk.data() + g * wsz);
  // The implicit GEMM's overhead is per output (a copy out of the tile buffer), im2col's per
  // patch element: take the one whose overhead is amortized over the longer dimension.
  if (!pw && p.sh == 1 && p.sw == 1 && CRS >= Kg && CRS >= 16)
    return direct_forward(x, wpk.data(), wsz, kcb, bias, out, p, relu);
  const int64_t ncols = conv_cols<T>(kcb, OHW);
  const int64_t ncc = (OHW + ncols - 1) / ncols;
  const int64_t items = p.n * G * ncc;
  parallel_for(0, items, 1, [&](int64_t lo, int64_t hi) {
    T* pb = scratch<T>(2, kcb * ((ncols + NR - 1) / NR * NR));
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t n = it / (G * ncc), g = (it / ncc) % G, cc = it % ncc;
      const int64_t col0 = cc * ncols, nc = std::min(ncols, OHW - col0);
      const T* xg = x + (n * p.c + g * Cg) * HW;
      auto pack = [&](int64_t q0, int64_t kc, T* dst) {
        if (pw)
          gemm_detail::pack_b<T>(false, xg, HW, q0, kc, col0, nc, dst);
        else
          im2col_packed(xg, p, q0, kc, col0, nc, dst);
      };
      gemm_detail::gemm_packed_a<T>(wpk.data() + g * wsz, Kg, nc, CRS, kcb, pack, pb,
                                    out + (n * p.k + g * Kg) * OHW + col0, OHW, bias ? bias + g * Kg : nullptr,
                                    relu);
    }
  });
}

// Sum of n values with vector lanes in a fixed pattern (same result for any caller).
template <typename T>
double sum_fixed(const T* a, int64_t n) {
  // Blocked: vector lanes over blocks of 1024 elements, the block totals added in float64, so
  // the error stays ~(1024 / L) ulp of T for any plane size (plain lanes drift with n / L).
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  constexpr int64_t kBlk = 1024;
  double total = 0;
  int64_t i = 0;
  while (i + 2 * L <= n) {
    V acc0{}, acc1{};
    const int64_t end = std::min(n, i + kBlk);
    for (; i + 2 * L <= end; i += 2 * L) {
      acc0 += loadu(a + i);
      acc1 += loadu(a + i + L);
    }
    acc0 += acc1;
    for (int l = 0; l < L; ++l) total += static_cast<double>(acc0[l]);
  }
  for (; i < n; ++i) total += static_cast<double>(a[i]);
  return total;
}

template <typename T>
void conv_backward(const T* go, const T* x, const T* w, T* gi, T* gw, T* gb, const Conv2dShape& p,
                   ConvWinograd winograd) {
  const int64_t G = p.groups, Cg = p.c / G, Kg = p.k / G, CRS = Cg * p.r * p.s;
  const int64_t HW = p.h * p.w, OHW = p.oh * p.ow;
  const int64_t ngi = p.n * p.c * HW, ngw = p.k * CRS;
  // gi == nullptr: grad_input not wanted (torch's output_mask; the first layer of a network).
  if (p.n == 0 || OHW == 0 || p.k == 0) {
    if (gi) std::fill(gi, gi + ngi, T(0));
    std::fill(gw, gw + ngw, T(0));
    std::fill(gb, gb + p.k, T(0));
    return;
  }
  // grad_bias: per channel, images in order.
  parallel_for(0, p.k, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, p.n * OHW)), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      double acc = 0;
      for (int64_t n = 0; n < p.n; ++n) acc += sum_fixed(go + (n * p.k + k) * OHW, OHW);
      gb[k] = static_cast<T>(acc);
    }
  });
  if (CRS == 0) {
    if (gi) std::fill(gi, gi + ngi, T(0));
    return;
  }
  constexpr int NR = Blocking<T>::NR;
  const bool pw = is_pointwise(p);
  const bool s1 = !pw && p.sh == 1 && p.sw == 1;
  // grad_input of a stride-1 convolution is a stride-1 convolution of grad_out with the
  // flipped, transposed weights and the complementary padding (when that is >= 0).
  const int64_t ext_h = p.dh * (p.r - 1), ext_w = p.dw * (p.s - 1);
  const bool gi_direct = gi && s1 && p.pt <= ext_h && p.pb <= ext_h && p.pl <= ext_w && p.pr <= ext_w;
  if (gi_direct) {
    Conv2dShape q = p;
    q.c = p.k, q.h = p.oh, q.w = p.ow, q.k = p.c, q.oh = p.h, q.ow = p.w;
    q.pt = ext_h - p.pt, q.pb = ext_h - p.pb, q.pl = ext_w - p.pl, q.pr = ext_w - p.pr;
    const int64_t RS = p.r * p.s, KRS = Kg * RS, kcq = conv_kc(KRS);
    std::vector<T> wt(static_cast<size_t>(G * Cg * KRS));
    for (int64_t g = 0; g < G; ++g)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t k = 0; k < Kg; ++k)
          for (int64_t t = 0; t < RS; ++t)
            wt[(g * Cg + c) * KRS + k * RS + t] = w[((g * Kg + k) * Cg + c) * RS + (RS - 1 - t)];
    if (!try_winograd(go, wt.data(), static_cast<const T*>(nullptr), gi, q, false, winograd)) {
      const int64_t qsz = gemm_detail::packed_a_size<T>(Cg, KRS);
      std::vector<T> wq(static_cast<size_t>(std::max<int64_t>(1, G * qsz)));
      for (int64_t g = 0; g < G; ++g)
        gemm_detail::pack_a_full<T>(false, wt.data() + g * Cg * KRS, KRS, Cg, KRS, kcq, wq.data() + g * qsz);
      direct_forward<T>(go, wq.data(), qsz, kcq, nullptr, gi, q, false);
    }
  }
  // grad_input: col = W^T grad_out (W^T packed once), then col2im; independent per image.
  const int64_t kct = conv_kc(Kg);
  const int64_t wsz = gemm_detail::packed_a_size<T>(CRS, Kg);
  const bool gi_col2im = gi && !gi_direct;
  std::vector<T> wtp(static_cast<size_t>(gi_col2im ? std::max<int64_t>(1, G * wsz) : 0));
  for (int64_t g = 0; gi_col2im && g < G; ++g)
    gemm_detail::pack_a_full<T>(true, w + g * Kg * CRS, CRS, CRS, Kg, kct, wtp.data() + g * wsz);
  const int64_t gcols = pw ? conv_cols<T>(kct, HW) : conv_cols<T>(std::max(CRS, kct), OHW);
  if (gi_col2im) parallel_for(0, p.n, 1, [&](int64_t lo, int64_t hi) {
    T* pb = scratch<T>(2, kct * ((gcols + NR - 1) / NR * NR));
    for (int64_t n = lo; n < hi; ++n) {
      T* gin = gi + n * p.c * HW;
      for (int64_t g = 0; g < G; ++g) {
        const T* gog = go + (n * p.k + g * Kg) * OHW;
        T* gig = gin + g * Cg * HW;
        if (!pw) std::fill(gig, gig + Cg * HW, T(0));
        for (int64_t col0 = 0; col0 < OHW; col0 += gcols) {
          const int64_t nc = std::min(gcols, OHW - col0);
          auto pack = [&](int64_t q0, int64_t kc, T* dst) { gemm_detail::pack_b<T>(false, gog, OHW, q0, kc, col0, nc, dst); };
          if (pw) {
            gemm_detail::gemm_packed_a<T>(wtp.data() + g * wsz, Cg, nc, Kg, kct, pack, pb, gig + col0, HW, nullptr, false);
          } else {
            T* col = scratch<T>(3, CRS * nc);
            gemm_detail::gemm_packed_a<T>(wtp.data() + g * wsz, CRS, nc, Kg, kct, pack, pb, col, nc, nullptr, false);
            col2im(col, p, Cg, col0, nc, gig);
          }
        }
      }
    }
  });
  if (try_winograd_grad_weight(go, x, gw, p, winograd)) return;
  // grad_weight: batch chunks fixed by the problem size; partials combined in chunk order.
  const int64_t max_chunks = std::max<int64_t>(1, std::min<int64_t>(16, (int64_t(1) << 24) / std::max<int64_t>(1, ngw)));
  const int64_t bgrain = (p.n + max_chunks - 1) / max_chunks;
  const int64_t nbc = parallel_chunks(0, p.n, bgrain);
  std::vector<T> part(nbc > 1 ? static_cast<size_t>(nbc * ngw) : 0);
  // Pixels per step: a long reduction for the dot kernel; the patch chunk lives in L3.
  const int64_t wcols = std::min<int64_t>(OHW, 1024);
  parallel_for(0, p.n, bgrain, [&](int64_t lo, int64_t hi) {
    T* dst = nbc > 1 ? part.data() + (lo / bgrain) * ngw : gw;
    for (int64_t g = 0; g < G; ++g) {
      bool first = true;
      if (s1) {
        direct_grad_weight(go, x, dst + g * Kg * CRS, p, g, lo, hi);
        continue;
      }
      for (int64_t n = lo; n < hi; ++n) {
        const T* xg = x + (n * p.c + g * Cg) * HW;
        const T* gog = go + (n * p.k + g * Kg) * OHW;
        for (int64_t col0 = 0; col0 < OHW; col0 += wcols) {
          const int64_t nc = std::min(wcols, OHW - col0);
          const T* b;
          int64_t ldb;
          if (pw) {
            b = xg + col0;
            ldb = HW;
          } else {
            T* col = scratch<T>(2, CRS * nc);
            im2col(xg, p, Cg, col0, nc, col);
            b = col;
            ldb = nc;
          }
          gemm_detail::gemm_nt_dot<T>(Kg, CRS, nc, gog + col0, OHW, b, ldb, dst + g * Kg * CRS, CRS, !first);
          first = false;
        }
      }
    }
  });
  if (nbc > 1) {
    parallel_for(0, ngw, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t e = lo; e < hi; ++e) {
        T acc = part[e];
        for (int64_t c = 1; c < nbc; ++c) acc += part[c * ngw + e];
        gw[e] = acc;
      }
    });
  }
}

}  // namespace

void conv2d_forward(DType dtype, const void* x, const void* weight, const void* bias, void* out,
                    const Conv2dShape& sh, bool relu, ConvWinograd winograd) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    conv_forward<T>(static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias),
                    static_cast<T*>(out), sh, relu, winograd);
  });
}

void conv2d_backward(DType dtype, const void* grad_out, const void* x, const void* weight, void* grad_in,
                     void* grad_weight, void* grad_bias, const Conv2dShape& sh, ConvWinograd winograd) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    conv_backward<T>(static_cast<const T*>(grad_out), static_cast<const T*>(x), static_cast<const T*>(weight),
                     static_cast<T*>(grad_in), static_cast<T*>(grad_weight), static_cast<T*>(grad_bias), sh,
                     winograd);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
