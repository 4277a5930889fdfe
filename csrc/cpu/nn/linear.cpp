// linear (fully connected), forward and backward, on the GEMM microkernels (compiled per ISA):
// one GEMM per product (x W^T with the bias in the epilogue; go W; go^T x); the bias gradient
// is the column sums of go, rows added in order (columns split across threads).
// FLOPs: 2 M IN OUT per product. Every reduction has a fixed order, so 1 and N threads give
// identical bits.
// Small batches (forward; use_dot: M <= 32, or M <= 64 with OUT <= 64): the GEMM would pack
// all of W (OUT x IN, transposed into NR-column slivers) to use it M times, so packing
// dominates (32x2048 -> 128: 1.25x torch). The dot-product form reads W's rows as they are:
// C[i][j] = sum_k x[i][k] W[j][k], DM rows of x by DN rows of W per tile in DM x DN vector
// accumulators along k (lane l sums k = l, l + L, ... in order), reduced across lanes by a fixed
// pairwise tree, the k % L tail added after in k order, then the bias. k runs in chunks whose
// DN rows of W take half the L1 (copied step-major when several row tiles reuse them); the
// accumulators carry across chunks, so the chunk length changes no bit. Tasks are runs of
// DN-row blocks of W (columns of C): the bits depend on the shape alone, not on the thread
// count or the cache parameters. Bytes: W once (plus its L1 copy), x once per DN columns.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "imkern/cpu_params.hpp"
#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "nn/ukernels/gemm_kernel.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

// The dot-product tile: DM x DN (at most; the edges instantiate smaller ones).
#if defined(__AVX512F__)
constexpr int kDotM = 4, kDotN = 6;  // 24 zmm accumulators + 6 of W + 1 of x
#else
constexpr int kDotM = 4, kDotN = 3;  // 12 accumulators + 3 of W + 1 of x: the 16 registers
#endif
// Which products take the dot-product form: a shape rule (which path, hence which bits, never
// depends on the machine's parameters or the thread count). Measured on a Zen 4 core, single
// thread, dot-product time / GEMM time (AVX-512, AVX2): 32x4096 -> 1000 0.91, 0.95;
// 16x4096 -> 4096 0.78, 0.94; 64x512 -> 10 0.22, 0.46 (the GEMM pads 10 columns to a whole
// NR sliver); but 64x4096 -> 1000 1.05, 1.15 and 64x1024 -> 1024 1.17, 1.24: from ~64 rows the
// GEMM's register tile reuses each load more than packing W costs.
constexpr int64_t kDotRows = 32, kDotRowsNarrow = 64, kDotNarrowCols = 64;
inline bool use_dot(int64_t m, int64_t in, int64_t of) {
  return m >= 1 && in >= 1 && of >= 1 && (m <= kDotRows || (m <= kDotRowsNarrow && of <= kDotNarrowCols));
}

// Lane sums of up to L vectors at once: lane a of the result is the sum of v[a]'s lanes by a
// fixed pairwise tree (lane l + W into lane l, W = L/2, L/4, .. 1), whatever the number of
// vectors (missing ones are zeros in other lanes). Each level merges two vectors holding
// partial sums in groups of 2W lanes into one holding both in groups of W lanes (two
// shuffles and an add): L - 1 merges for L vectors instead of L trees of log2(L) steps.
template <typename T, int W>
inline simd::vec_t<T> merge_halves(simd::vec_t<T> a, simd::vec_t<T> b) {
  using V = simd::vec_t<T>;
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef I M __attribute__((vector_size(sizeof(V))));
  constexpr int L = simd::Vec<T>::lanes, G = L / (2 * W);
  M lo, hi;
#pragma GCC unroll 16
  for (int i = 0; i < L; ++i) {
    const int q = i / W, r = i % W, base = q < G ? q * 2 * W : L + (q - G) * 2 * W;
    lo[i] = static_cast<I>(base + r);
    hi[i] = static_cast<I>(base + W + r);
  }
  return simd::shuffle2(a, b, lo) + simd::shuffle2(a, b, hi);
}

template <typename T, int W>
inline void lane_sums_level(simd::vec_t<T>* v, int cnt) {
  int out = 0;
  for (int k = 0; k < cnt; k += 2) v[out++] = merge_halves<T, W>(v[k], k + 1 < cnt ? v[k + 1] : simd::vec_t<T>{});
  if constexpr (W > 1) lane_sums_level<T, W / 2>(v, out);
}

// One DM x DN tile over the k chunk [p0, p0 + kch) (kch a multiple of L, except in the last
// chunk, whose k % L tail is added after the lane sums): the vector accumulators start at zero
// (first chunk) or from acc, and go back to acc (not the last chunk) or are reduced into C.
// W's vectors: row j, step s (k = p0 + s L) at wv + j * wjs + s * wss (W itself, or its chunk
// copied step-major: see lin_forward_dot); the k % L tail is read from W.
template <typename T, int DM, int DN>
void dot_tile(const T* x, const T* w, int64_t in, int64_t p0, int64_t kch, const T* wv0, int64_t wjs, int64_t wss,
              bool first, bool last, T* acc_buf, T* c, int64_t ldc, const T* bias) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  V acc[DM][DN];
  V* ab = reinterpret_cast<V*>(acc_buf);
#pragma GCC unroll 8
  for (int i = 0; i < DM; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < DN; ++j) acc[i][j] = first ? V{} : ab[i * DN + j];
  const int64_t kv = kch / L * L;
  const T* xp = x + p0;
  const T* wp = w + p0;
  const T* ws = wv0;
  for (int64_t p = 0; p < kv; p += L, ws += wss) {
    V wv[DN];
#pragma GCC unroll 8
    for (int j = 0; j < DN; ++j) wv[j] = loadu(ws + j * wjs);
#pragma GCC unroll 8
    for (int i = 0; i < DM; ++i) {
      V xv = loadu(xp + i * in + p);
      // In a register: else GCC folds the load into each of the DN FMAs (DN loads of the same
      // vector, which made the loop load-bound: 15 loads per 12 FMAs at AVX2).
#if defined(__AVX512F__)
      __asm__("" : "+v"(xv));
#else
      __asm__("" : "+x"(xv));
#endif
#pragma GCC unroll 8
      for (int j = 0; j < DN; ++j) acc[i][j] += xv * wv[j];
    }
  }
  if (!last) {
#pragma GCC unroll 8
    for (int i = 0; i < DM; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < DN; ++j) ab[i * DN + j] = acc[i][j];
    return;
  }
  constexpr int N = DM * DN;
  T sums[N];
  for (int a0 = 0; a0 < N; a0 += L) {
    const int cnt = std::min(L, N - a0);
    V v[L];
    for (int a = 0; a < cnt; ++a) v[a] = acc[(a0 + a) / DN][(a0 + a) % DN];
    if constexpr (L > 1) lane_sums_level<T, L / 2>(v, cnt);
    for (int a = 0; a < cnt; ++a) sums[a0 + a] = v[0][a];
  }
  for (int i = 0; i < DM; ++i)
    for (int j = 0; j < DN; ++j) {
      T s = sums[i * DN + j];
      for (int64_t p = kv; p < kch; ++p) s += xp[i * in + p] * wp[j * in + p];
      if (bias) s += bias[j];
      c[i * ldc + j] = s;
    }
}

template <typename T, int DM, int DN>
void dot_tile_n(int dn, const T* x, const T* w, int64_t in, int64_t p0, int64_t kch, const T* wv0, int64_t wjs,
                int64_t wss, bool first, bool last, T* acc_buf, T* c, int64_t ldc, const T* bias) {
  if constexpr (DN >= 1) {
    if (dn == DN) return dot_tile<T, DM, DN>(x, w, in, p0, kch, wv0, wjs, wss, first, last, acc_buf, c, ldc, bias);
    dot_tile_n<T, DM, DN - 1>(dn, x, w, in, p0, kch, wv0, wjs, wss, first, last, acc_buf, c, ldc, bias);
  }
}

template <typename T, int DM>
void dot_tile_mn(int dm, int dn, const T* x, const T* w, int64_t in, int64_t p0, int64_t kch, const T* wv0,
                 int64_t wjs, int64_t wss, bool first, bool last, T* acc_buf, T* c, int64_t ldc, const T* bias) {
  if constexpr (DM >= 1) {
    if (dm == DM)
      return dot_tile_n<T, DM, kDotN>(dn, x, w, in, p0, kch, wv0, wjs, wss, first, last, acc_buf, c, ldc, bias);
    dot_tile_mn<T, DM - 1>(dm, dn, x, w, in, p0, kch, wv0, wjs, wss, first, last, acc_buf, c, ldc, bias);
  }
}

// out[m x of] = x[m x in] W[of x in]^T + bias, W read in place (use_dot's shapes).
template <typename T>
void lin_forward_dot(const T* x, const T* w, const T* bias, T* out, int64_t m, int64_t in, int64_t of) {
  constexpr int L = simd::Vec<T>::lanes;
  // k chunk: the DN rows of W in half the L1 (x's DM rows stream past them from the L2).
  const int64_t l1 = std::max<int64_t>(4096, cpu_caches().l1d.bytes);
  const int64_t kch_max = std::max<int64_t>(L, l1 / 2 / (kDotN * int64_t(sizeof(T))) / L * L);
  const int64_t nchunks0 = (in + kch_max - 1) / kch_max;
  // Chunks of about equal length (multiples of L; the k % L tail goes with the last one).
  const int64_t kch_even = ((in + nchunks0 - 1) / nchunks0 + L - 1) / L * L;
  const int64_t nchunks = (in + kch_even - 1) / kch_even;
  const int64_t nblk = (of + kDotN - 1) / kDotN;
  const int64_t mblk = (m + kDotM - 1) / kDotM;
  const double flops = 2.0 * double(m) * double(of) * double(in);
  parallel_for(0, nblk, flops < 4e6 ? nblk : 1, [&](int64_t b0, int64_t b1) {
    // Vector accumulators of one column block across the k chunks (per thread, reused).
    T* acc = nchunks > 1 ? gemm_detail::scratch<T>(1, mblk * kDotM * kDotN * L) : nullptr;
    // With several row blocks, W's chunk is copied step-major (the DN vectors of a k step
    // adjacent: one sequential stream): W's rows are IN apart, often a multiple of 4 KiB, so
    // DN rows of W and DM of x read in place fall into the same L1 sets, more than its ways.
    const bool copy_w = mblk > 1;
    T* wbuf = copy_w ? gemm_detail::scratch<T>(2, kch_even * kDotN) : nullptr;
    for (int64_t jb = b0; jb < b1; ++jb) {
      const int64_t j0 = jb * kDotN;
      const int dn = static_cast<int>(std::min<int64_t>(kDotN, of - j0));
      const T* wj = w + j0 * in;
      const T* bj = bias ? bias + j0 : nullptr;
      for (int64_t p0 = 0; p0 < in; p0 += kch_even) {
        const int64_t kch = std::min(kch_even, in - p0);
        const bool first = p0 == 0, last = p0 + kch >= in;
        const T* wv0 = wj + p0;
        int64_t wjs = in, wss = L;
        if (copy_w) {
          const int64_t kv = kch / L * L;
          for (int64_t s = 0; s < kv; s += L)
            for (int j = 0; j < dn; ++j) std::memcpy(wbuf + s * dn + j * L, wj + j * in + p0 + s, L * sizeof(T));
          wv0 = wbuf;
          wjs = L;
          wss = dn * L;
        }
        for (int64_t ib = 0; ib < mblk; ++ib) {
          const int64_t i0 = ib * kDotM;
          const int dm = static_cast<int>(std::min<int64_t>(kDotM, m - i0));
          dot_tile_mn<T, kDotM>(dm, dn, x + i0 * in, wj, in, p0, kch, wv0, wjs, wss, first, last,
                                acc ? acc + ib * kDotM * kDotN * L : nullptr, out + i0 * of + j0, of, bj);
        }
      }
    }
  });
}

template <typename T>
void lin_forward(const T* x, const T* w, const T* bias, T* out, int64_t m, int64_t in, int64_t of) {
  if (use_dot(m, in, of)) return lin_forward_dot<T>(x, w, bias, out, m, in, of);
  GemmEpilogue<T> ep;
  ep.col_bias = bias;
  gemm(false, true, m, of, in, T(1), x, in, w, in, T(0), out, of, ep);
}

template <typename T>
void lin_backward(const T* go, const T* x, const T* w, T* gi, T* gw, T* gb, int64_t m, int64_t in, int64_t of) {
  gemm(false, false, m, in, of, T(1), go, of, w, in, T(0), gi, in);
  gemm(true, false, of, in, m, T(1), go, of, x, in, T(0), gw, in);
  // grad_bias: column sums, rows in order; columns split across threads.
  // Float64 column sums: a float32 sum over many rows drifts with m (torch's CPU reductions
  // accumulate float32 in float64 too); still rows in order, so deterministic.
  parallel_for(0, of, 256, [&](int64_t lo, int64_t hi) {
    std::vector<double> acc(static_cast<size_t>(hi - lo), 0.0);
    for (int64_t i = 0; i < m; ++i) {
      const T* row = go + i * of + lo;
      for (int64_t j = 0; j < hi - lo; ++j) acc[static_cast<size_t>(j)] += static_cast<double>(row[j]);
    }
    for (int64_t j = lo; j < hi; ++j) gb[j] = static_cast<T>(acc[static_cast<size_t>(j - lo)]);
  });
}

}  // namespace

void linear_forward(DType dtype, const void* x, const void* weight, const void* bias, void* out, int64_t m,
                    int64_t in_features, int64_t out_features) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    lin_forward<T>(static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias),
                   static_cast<T*>(out), m, in_features, out_features);
  });
}

void linear_backward(DType dtype, const void* grad_out, const void* x, const void* weight, void* grad_in,
                     void* grad_weight, void* grad_bias, int64_t m, int64_t in_features, int64_t out_features) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    lin_backward<T>(static_cast<const T*>(grad_out), static_cast<const T*>(x), static_cast<const T*>(weight),
                    static_cast<T*>(grad_in), static_cast<T*>(grad_weight), static_cast<T*>(grad_bias), m,
                    in_features, out_features);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
