// conv2d forward for single-channel inputs with a 3x3 or 5x5 kernel, stride 1 (a grayscale
// first layer: MNIST-style models, LeNet), as a direct stencil; compiled per ISA.
//
// With a reduction of only 9 or 25 taps, a GEMM spends more on forming (im2col) and packing
// the patch matrix than on the products. Here, per (image, output channel), the R*R weights
// are splatted into registers and the plane is computed from a zero-padded copy of the image
// in blocks of M output rows by NC vectors of columns (7 x 2 for 3x3 on AVX-512, else 4 x 1):
// each of the M + R - 1 input rows under a block is loaded once as R shifted vectors and
// multiplied into every output row of the block it contributes to, R (M + R - 1) / M loads
// per R*R FMAs (3.9 per 9 for 7-row 3x3 blocks). A first port with one load per FMA ran at
// half this speed: the loads are unaligned and mostly split cache lines, so it was bound by
// the load ports, not the FMAs (the standalone prototype it came from was fast only because
// GCC, seeing constant strides, reused the loads across rows by itself).
// A row whose width is not a multiple of the vector width ends with a vector overlapping the
// one before, and a band whose height is not a multiple of M with a block overlapping the
// one before: the same values recomputed by the same code and stored again (no masked
// stores, which cost a third more on Zen 5). Planes are written one after the other (the
// channel-inner order, interleaving 32 planes' rows, cost 40% in write bandwidth). Tall
// planes are cut into bands of rows whose padded input (~16 KB) stays in L1 across channels.
// Every output is bias + its taps in (r, s) order, one FMA chain: the result does not depend
// on the block, band, thread count or memory alignment. Bias and ReLU are fused (NaN stays
// NaN, as torch). FLOPs/output = 2 R*R; bytes: the input read once, the output written once.
// float32 3x3 on AVX-512 and AVX2 takes a second kernel, `forward_flat` (below): the plane
// flattened into a 1-D stencil over nine shifted copies, no recomputed lanes, aligned loads.
// Both run at ~60% of the FMA peak; what holds them there is the output stores (one 64-byte
// store per 9 FMAs): a standalone loop of the same FMAs and loads without the stores runs at
// 80%, with stores to L1-resident lines, non-temporal or 2 x 256-bit stores at 57-59%.
// Where it is used: conv_small_applies.
#include <algorithm>
#include <type_traits>

#include "nn/conv_small.hpp"
#include "imkern/parallel.hpp"
#include "common/simd.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

using simd::Vec;
using simd::vec_t;

// Block shape: M output rows by NC vectors of columns. 3x3 on AVX-512: 7 x 2 (14 accumulators,
// 9 weights and 6 input vectors in 32 registers; 7 rows divide 28); 5x5, or 16 registers:
// 4 x 1. Measured on Zen 5 (N=128, K=32, 28x28, one thread): 3x3 4 x 1 0.47 ms, 7 x 1
// 0.42 ms, 7 x 2 0.38 ms.
template <int R>
struct Tile {
  static constexpr bool wide = simd::kBytes == 64 && R == 3;
  static constexpr int M = wide ? 7 : 4, NC = wide ? 2 : 1;
};

// d[0, n) = s[0, n): whole vectors, the last overlapping the one before; scalar when n < L.
template <typename T>
__attribute__((always_inline)) inline void copy_row(T* d, const T* s, int64_t n) {
  constexpr int L = Vec<T>::lanes;
  if (n < L) {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    return;
  }
  for (int64_t i = 0; i < n - L; i += L) simd::storeu(d + i, simd::loadu(s + i));
  simd::storeu(d + n - L, simd::loadu(s + n - L));
}

// Rows [0, rows) of the zero-padded band (rows Ws apart) hold input rows oh_lo - pt + i of
// image x (H x W), zero outside the image; the pl left and pr right columns are left as they
// are (zero: the caller clears the band once per chunk).
template <typename T>
inline void load_band(T* pad, int64_t rows, int64_t Ws, const T* x, int64_t H, int64_t W, int64_t oh_lo,
                      const Conv2dShape& p) {
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t y = oh_lo + i - p.pt;
    T* d = pad + i * Ws + p.pl;
    if (y >= 0 && y < H) copy_row(d, x + y * W, W);
    else std::fill(d, d + W, T(0));
  }
}

// Outputs (oh0 + m, x0[c] .. x0[c] + L - 1), m < M, c < NC, from q = &pad[oh0][0] (pad rows
// ws apart), stored at o + m * ow + x0[c].
template <typename T, int R, int M, int NC, bool Relu>
__attribute__((always_inline)) inline void block(const T* q, int64_t ws, const int64_t* x0, const vec_t<T>* wk,
                                                 vec_t<T> b0, T* o, int64_t ow) {
  vec_t<T> acc[M][NC];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) acc[m][c] = b0;
#pragma GCC unroll 16
  for (int i = 0; i < M + R - 1; ++i) {
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      vec_t<T> v[R];
#pragma GCC unroll 5
      for (int s = 0; s < R; ++s) v[s] = simd::loadu(q + i * ws + x0[c] + s);
#pragma GCC unroll 5
      for (int r = 0; r < R; ++r) {
        const int m = i - r;  // input row i is tap row r of output row m
        if (m < 0 || m >= M) continue;
#pragma GCC unroll 5
        for (int s = 0; s < R; ++s) acc[m][c] += wk[r * R + s] * v[s];
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      vec_t<T> y = acc[m][c];
      if (Relu) y = y < T(0) ? vec_t<T>{} : y;  // NaN < 0 is false: NaN stays NaN
      simd::storeu(o + m * ow + x0[c], y);
    }
}

template <typename T, int R, bool Relu>
void forward(const T* x, const T* w, const T* bias, T* out, const Conv2dShape& p) {
  constexpr int L = Vec<T>::lanes, RS = R * R, M = Tile<R>::M, NC = Tile<R>::NC;
  const int64_t K = p.k, H = p.h, W = p.w, OH = p.oh, OW = p.ow, OHW = OH * OW;
  const int64_t Ws = W + p.pl + p.pr;   // a vector's taps end at column <= Ws - 1
  const int64_t nv = (OW + L - 1) / L;  // vectors per row; the last starts at OW - L
  // Bands of B output rows (a multiple of M), their B + R - 1 padded input rows kept in ~16 KB
  // of L1 while all K channels are computed from them (a whole 28x28 image is one band).
  const int64_t fit = (int64_t(16) << 10) / static_cast<int64_t>(Ws * sizeof(T)) - (R - 1);
  const int64_t B = std::min(OH, std::max<int64_t>(M, fit / M * M));
  const int64_t nb = (OH + B - 1) / B, rows_in = B + R - 1;
  // Work items are (image, band, channel), channels innermost; the padded band is refreshed
  // when (image, band) changes. ~2^17 FMAs per chunk.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / std::max<int64_t>(1, B * OW * RS));
  parallel_for(0, p.n * nb * K, grain, [&](int64_t lo, int64_t hi) {
    T* pad = thread_scratch<T>(3, static_cast<size_t>(rows_in * Ws));
    std::fill(pad, pad + rows_in * Ws, T(0));  // left/right borders stay zero
    int64_t cur = -1;
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t nbi = it / K, k = it % K, n = nbi / nb, oh_lo = nbi % nb * B;
      const int64_t oh_hi = std::min(OH, oh_lo + B);
      if (nbi != cur) {
        load_band(pad, oh_hi - oh_lo + R - 1, Ws, x + n * H * W, H, W, oh_lo, p);
        cur = nbi;
      }
      vec_t<T> wk[RS];
      for (int t = 0; t < RS; ++t) wk[t] = simd::splat<T>(w[k * RS + t]);
      const vec_t<T> b0 = simd::splat<T>(bias ? bias[k] : T(0));
      T* o = out + (n * K + k) * OHW;
      // Output rows [oh0, oh0 + MB) of this band.
      auto rows = [&](int64_t oh0, auto m_tag) {
        constexpr int MB = decltype(m_tag)::value;
        const T* q = pad + (oh0 - oh_lo) * Ws;
        int64_t j = 0;
        for (; j + NC <= nv; j += NC) {
          int64_t x0[NC];
          for (int c = 0; c < NC; ++c) x0[c] = std::min<int64_t>((j + c) * L, OW - L);
          block<T, R, MB, NC, Relu>(q, Ws, x0, wk, b0, o + oh0 * OW, OW);
        }
        for (; j < nv; ++j) {
          const int64_t x0 = std::min<int64_t>(j * L, OW - L);
          block<T, R, MB, 1, Relu>(q, Ws, &x0, wk, b0, o + oh0 * OW, OW);
        }
      };
      if (oh_hi - oh_lo >= M) {
        for (int64_t oh0 = oh_lo; oh0 + M <= oh_hi; oh0 += M) rows(oh0, std::integral_constant<int, M>{});
        if ((oh_hi - oh_lo) % M) rows(oh_hi - M, std::integral_constant<int, M>{});
      } else {
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) rows(oh, std::integral_constant<int, 1>{});
      }
    }
  });
}

// The float32 3x3 kernel with 256- or 512-bit vectors: the image is flattened instead of tiled.
// Per band of output rows (E = rows * OW outputs), nine copies X[t], t = 3 r + s, are laid out
// with X[t][j] = padded input under tap (r, s) of flat output j (row j / OW, column j % OW), so
// that output vector j..j+L-1 is bias + sum_t w[t] * X[t][j..j+L-1]: a 1-D stencil with no
// row structure. Every vector is full (a 28-wide row no longer costs two vectors with 12.5%
// of their lanes recomputed), every load is aligned (the tiled kernel's loads mostly split
// cache lines), and each load serves KB = 3 output channels (4 x 3 accumulators, 27 weights
// partly as memory operands): a third of an aligned load per FMA; with 16 registers (AVX2) KB = 1
// (9 weights, 5 accumulators, a load), one aligned load per FMA. (Broadcasting the weights from
// memory instead, 3-5 vectors x 4-8 channels, measured 10-20% slower.) The copies (9 E
// elements, ~28 KB for a 28x28 float plane) are built once per (image, band) and stay in L1
// while all output channels are computed from them. Each output is the same FMA chain as in `block` (bias,
// then the taps in (r, s) order), so both kernels give the same bits.
// The bias of channel c: broadcast from a scalar, or a vector splatted before the blocks.
template <typename T>
__attribute__((always_inline)) inline vec_t<T> bias_vec(const T* b, int c) {
  return simd::splat<T>(b[c]);
}
template <typename T>
__attribute__((always_inline)) inline vec_t<T> bias_vec(const vec_t<T>* b, int c) {
  return b[c];
}

template <typename T, int V, int KB, bool Aligned, bool Relu, typename B>
__attribute__((always_inline)) inline void flat_block(const T* X, int64_t xs, int64_t j0, const vec_t<T>* wk,
                                                      const B* b0, T* o, int64_t ostride) {
  constexpr int L = Vec<T>::lanes;
  vec_t<T> acc[V][KB];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v)
#pragma GCC unroll 2
    for (int c = 0; c < KB; ++c) acc[v][c] = bias_vec<T>(b0, c);
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      const T* q = X + t * xs + j0 + v * L;
      const vec_t<T> a = Aligned ? *reinterpret_cast<const vec_t<T>*>(q) : simd::loadu(q);
#pragma GCC unroll 2
      for (int c = 0; c < KB; ++c) acc[v][c] += wk[c * 9 + t] * a;
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v)
#pragma GCC unroll 2
    for (int c = 0; c < KB; ++c) {
      vec_t<T> y = acc[v][c];
      if (Relu) y = y < T(0) ? vec_t<T>{} : y;
      simd::storeu(o + c * ostride + j0 + v * L, y);
    }
}

// Outputs [0, E) of KB channels (planes ostride apart, starting at o) from the copies X.
template <typename T, int KB, bool Relu>
void flat_channels(const T* X, int64_t xs, int64_t E, const vec_t<T>* wk, const T* bias, T* o,
                   int64_t ostride) {
  // Output vectors per block. AVX-512, KB = 3: 4 x 3 accumulators, and the 27 weights where
  // registers are left (the rest are memory operands of the FMAs): a third fewer copy loads per
  // FMA than 6 x 2 (18 weights in registers), 1.1-1.2x its speed in a standalone loop of the
  // block on Zen 4 (outputs in L3 and in L1), but only 2-4% in the whole kernel (one thread,
  // 16 x 1 x 28 x 28, K 32, outputs in L2/L3: 0.089-0.091 vs 0.091-0.093 ms, same bits).
  // KB = 2 and 1 (the last channels): 6 x KB. AVX2 (16 registers, KB = 1): 5 + 9 weights + a load.
  constexpr int L = Vec<T>::lanes, V = simd::kBytes == 64 ? (KB == 3 ? 4 : 6) : 5;
  // The biases: broadcast in every block with 3 channels (as vectors splatted here, GCC kept
  // them on the stack and that loop ran ~10% slower; splatted in the caller, it copied them
  // to the stack in 256-bit halves per block and read them back whole, a failed store
  // forwarding that cost a fifth of the time); vectors otherwise (AVX2's loop is bound by its
  // one load per FMA, and a broadcast per accumulator measured ~3% slower).
  vec_t<T> bv[KB];
  for (int c = 0; c < KB; ++c) bv[c] = simd::splat<T>(bias[c]);
  const auto* b0 = [&] {
    if constexpr (KB == 3) return bias;
    else return static_cast<const vec_t<T>*>(bv);
  }();
  const int64_t nfull = E / L;
  int64_t v = 0;
  for (; v + V <= nfull; v += V) {
    // AVX-512: the output lines of the next block are prefetched (their misses overlap this
    // block's FMAs; the output, 12.8 MB in the 128x32x28x28 benchmark, misses L2): one
    // thread (Zen 4), 0.72-0.74 vs 0.76-0.80 ms there. AVX2 (one channel per pass, half the
    // stores per FMA) measured 3% slower with it. (PREFETCHW, -mprfchw, measured the same;
    // aligning the blocks to the output's lines, non-temporal stores or an L1-sized band
    // gained nothing. Without the stores the loop runs 20% faster: they, not the loads or
    // the FMAs, hold it at ~70% of the FMA peak.)
    if constexpr (simd::kBytes == 64) {
#pragma GCC unroll 2
      for (int c = 0; c < KB; ++c)
#pragma GCC unroll 8
        for (int u = 0; u < V; ++u) __builtin_prefetch(o + c * ostride + (v + V + u) * L, 1, 3);
    }
    flat_block<T, V, KB, true, Relu>(X, xs, v * L, wk, b0, o, ostride);
  }
  switch (nfull - v) {  // the rest of the full vectors (fewer than V)
    case 5:
      if constexpr (V > 5) flat_block<T, 5, KB, true, Relu>(X, xs, v * L, wk, b0, o, ostride);
      break;
    case 4:
      if constexpr (V > 4) flat_block<T, 4, KB, true, Relu>(X, xs, v * L, wk, b0, o, ostride);
      break;
    case 3: flat_block<T, 3, KB, true, Relu>(X, xs, v * L, wk, b0, o, ostride); break;
    case 2: flat_block<T, 2, KB, true, Relu>(X, xs, v * L, wk, b0, o, ostride); break;
    case 1: flat_block<T, 1, KB, true, Relu>(X, xs, v * L, wk, b0, o, ostride); break;
    default: break;
  }
  // A last partial vector: the one ending at E, overlapping the one before (same values).
  if (E % L) flat_block<T, 1, KB, false, Relu>(X, xs, E - L, wk, b0, o, ostride);
}

template <typename T, bool Relu>
void forward_flat(const T* x, const T* w, const T* bias, T* out, const Conv2dShape& p) {
  const int64_t K = p.k, H = p.h, W = p.w, OH = p.oh, OW = p.ow, OHW = OH * OW;
  // Bands of B output rows whose nine copies take at most ~32 KB (a 28x28 float plane is one).
  const int64_t B = std::max<int64_t>(1, std::min(OH, ((int64_t(32) << 10) / (9 * int64_t(sizeof(T)))) / OW));
  // Output channels per pass over the copies: 3 with 32 vector registers, 1 with 16.
  constexpr int KB = simd::kBytes == 64 ? 3 : 1;
  const int64_t nb = (OH + B - 1) / B, KP = (K + KB - 1) / KB;
  const int64_t xs = round_up_line<T>(B * OW);  // copy stride: every copy starts on a line
  // Chunks of whole (image, band)s (each builds its copies once), ~2^17 FMAs or more.
  const int64_t grain = KP * std::max<int64_t>(1, (int64_t(1) << 17) / std::max<int64_t>(1, B * OW * 9 * K));
  const int64_t Ws = W + p.pl + p.pr;  // a zero-padded band of input rows, as in `forward`
  parallel_for(0, p.n * nb * KP, grain, [&](int64_t lo, int64_t hi) {
    T* X = thread_scratch<T>(4, static_cast<size_t>(9 * xs));
    T* pad = thread_scratch<T>(3, static_cast<size_t>((B + 2) * Ws));
    std::fill(pad, pad + (B + 2) * Ws, T(0));  // left/right borders stay zero
    int64_t cur = -1, E = 0, oh_lo = 0;
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t nbi = it / KP, kp = it % KP, n = nbi / nb;
      if (nbi != cur) {  // the padded rows, then the nine copies of this (image, band)
        oh_lo = nbi % nb * B;
        const int64_t rows = std::min(OH, oh_lo + B) - oh_lo;
        E = rows * OW;
        load_band(pad, rows + 2, Ws, x + n * H * W, H, W, oh_lo, p);
        for (int r = 0; r < 3; ++r)
          for (int s = 0; s < 3; ++s)
            for (int64_t i = 0; i < rows; ++i) copy_row(X + (3 * r + s) * xs + i * OW, pad + (i + r) * Ws + s, OW);
        cur = nbi;
      }
      const int64_t k0 = KB * kp, kb = std::min<int64_t>(KB, K - k0);  // channels k0 .. k0 + kb - 1
      T* o = out + (n * K + k0) * OHW + oh_lo * OW;
      vec_t<T> wk[9 * KB];
      T b0[KB];
      for (int t = 0; t < 9 * KB; ++t) wk[t] = simd::splat<T>(t < 9 * kb ? w[k0 * 9 + t] : T(0));
      for (int c = 0; c < KB; ++c) b0[c] = bias && c < kb ? bias[k0 + c] : T(0);
      if constexpr (KB == 3) {
        if (kb == 3) flat_channels<T, 3, Relu>(X, xs, E, wk, b0, o, OHW);
        else if (kb == 2) flat_channels<T, 2, Relu>(X, xs, E, wk, b0, o, OHW);
        else flat_channels<T, 1, Relu>(X, xs, E, wk, b0, o, OHW);
      } else {
        flat_channels<T, 1, Relu>(X, xs, E, wk, b0, o, OHW);
      }
    }
  });
}

}  // namespace

template <typename T>
bool conv_small_applies(const Conv2dShape& p) {
  // 5x5 only with 32 vector registers: with 16, its 25 weights spill and it merely ties the
  // GEMM path (AVX2 0.9-1.0x, SSE 1.0-1.2x); 3x3 takes 0.45-0.8x the GEMM path's time there.
  const bool taps = (p.r == 3 && p.s == 3) || (p.r == 5 && p.s == 5 && simd::kBytes == 64);
  // Measured against the im2col + GEMM path (Zen 5, AVX-512, one thread): 28x28, K 1-128,
  // 3x3 and 5x5, float32 and float64: 0.45-0.85x its time; 64x64 0.83x; 100x100 (K 64) 1.3x
  // and 224x224 1.1x, where the GEMM's reuse of each patch across a register tile of
  // channels wins: planes up to 64x64 only.
  return p.groups == 1 && p.c == 1 && taps && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1 &&
         p.ow >= Vec<T>::lanes && p.oh * p.ow <= 64 * 64;
}

template <typename T>
void conv_small_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dShape& p, bool relu) {
  // The flattened kernel for float32 on AVX-512 and AVX2. Measured against the tiled one (Zen 5,
  // AVX-512, 2 threads, K 8-32): 28x28 0.195 vs 0.236 ms, 64x64 0.127 vs 0.175 ms (the tiled one
  // recomputes rows where a band is not a multiple of 7 rows), 40x100 even, 32x32 (no
  // recomputed lanes there) 0.091 vs 0.082 ms. AVX2 (Zen 4, one thread, 32x1x28x28, K 32,
  // output in cache): 0.214 vs 0.237 ms (the tiled 4 x 1 block recomputes 4 of a 28-wide row's
  // 32 lanes and splits cache lines; 5 vectors of one channel run at 1 aligned load per FMA).
  // float64 stays tiled: even to 10% slower flattened (40x100).
  if constexpr (simd::kBytes >= 32 && std::is_same<T, float>::value) {
    if (p.r == 3) {
      if (relu) forward_flat<T, true>(x, w, bias, out, p);
      else forward_flat<T, false>(x, w, bias, out, p);
      return;
    }
  }
  if (p.r == 3) {
    if (relu) forward<T, 3, true>(x, w, bias, out, p);
    else forward<T, 3, false>(x, w, bias, out, p);
  } else {
    if (relu) forward<T, 5, true>(x, w, bias, out, p);
    else forward<T, 5, false>(x, w, bias, out, p);
  }
}

template bool conv_small_applies<float>(const Conv2dShape&);
template bool conv_small_applies<double>(const Conv2dShape&);
template void conv_small_forward<float>(const float*, const float*, const float*, float*, const Conv2dShape&, bool);
template void conv_small_forward<double>(const double*, const double*, const double*, double*, const Conv2dShape&,
                                         bool);

}  // namespace IMKERN_ISA
}  // namespace imkern
