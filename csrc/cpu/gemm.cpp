// Blocked GEMM, BLIS style (compiled per ISA).
//
// Algorithm: C is cut into MC x NC tiles, one parallel_for chunk each. A tile walks k in KC
// blocks: it packs op(A)[MC x KC] into MR-row slivers and op(B)[KC x NC] into NR-column
// slivers (contiguous, 64-byte aligned, zero-padded at the edges), then runs the register
// microkernel over every MR x NR sub-tile: MR x NV vector accumulators (NR = NV * lanes)
// fed by NV aligned loads of B and MR broadcasts of A per k step. The microkernel is written
// once with simd::vec_t, so it becomes AVX-512 (8 x 3 zmm accumulators), AVX2 or SSE
// (6 x 2). FLOPs: 2 m n k. Bytes: the packing reads A n/NC times and B m/MC times.
// Deterministic: an element's k sum runs in KC blocks in increasing order, each block summed
// in registers in k order, whatever the tile a thread takes. The epilogue (alpha, beta,
// bias, ReLU) is applied in registers on the last k block.
// Variants: f32, f64; trans_a / trans_b handled by the packing routines only.
#include "imkern/gemm.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "imkern/parallel.hpp"
#include "simd.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

template <typename T>
struct Blocking {
  static constexpr int L = simd::Vec<T>::lanes;
#if defined(__AVX512F__)
  static constexpr int MR = 8, NV = 3;
#else
  static constexpr int MR = 6, NV = 2;
#endif
  static constexpr int NR = NV * L;
  static constexpr int64_t KC = 256;
  static constexpr int64_t MC = MR * 16;
  static constexpr int64_t NC = NR * 32;
};

// Per-thread packing buffers, grown on demand and reused across calls (no allocation in the
// hot path after the first call).
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      cap = (bytes + 4095) & ~size_t(4095);
      p = std::aligned_alloc(64, cap);
      if (!p) {
        cap = 0;
        throw std::bad_alloc();
      }
    }
    return p;
  }
};

template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local Scratch bufs[2];
  return static_cast<T*>(bufs[slot].get(static_cast<size_t>(n) * sizeof(T)));
}

// op(A)[i0:i0+mc, p0:p0+kc] -> MR-row slivers: dst[s][p][ii].
template <typename T>
void pack_a(bool trans, const T* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* dst) {
  constexpr int MR = Blocking<T>::MR;
  for (int64_t s = 0; s < mc; s += MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - s);
    T* d = dst + s * kc;
    if (!trans) {
      for (int64_t ii = 0; ii < mr; ++ii) {
        const T* src = a + (i0 + s + ii) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) d[p * MR + ii] = src[p];
      }
      for (int64_t ii = mr; ii < MR; ++ii)
        for (int64_t p = 0; p < kc; ++p) d[p * MR + ii] = T(0);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = a + (p0 + p) * lda + i0 + s;
        T* dp = d + p * MR;
        int64_t ii = 0;
        for (; ii < mr; ++ii) dp[ii] = src[ii];
        for (; ii < MR; ++ii) dp[ii] = T(0);
      }
    }
  }
}

// op(B)[p0:p0+kc, j0:j0+nc] -> NR-column slivers: dst[t][p][jj].
template <typename T>
void pack_b(bool trans, const T* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
  constexpr int NR = Blocking<T>::NR;
  for (int64_t t = 0; t < nc; t += NR) {
    const int64_t nr = std::min<int64_t>(NR, nc - t);
    T* d = dst + t * kc;
    if (!trans) {
      if (nr == NR) {
        for (int64_t p = 0; p < kc; ++p) {
          const T* src = b + (p0 + p) * ldb + j0 + t;
          T* dp = d + p * NR;
          for (int jj = 0; jj < NR; ++jj) dp[jj] = src[jj];
        }
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          const T* src = b + (p0 + p) * ldb + j0 + t;
          T* dp = d + p * NR;
          int64_t jj = 0;
          for (; jj < nr; ++jj) dp[jj] = src[jj];
          for (; jj < NR; ++jj) dp[jj] = T(0);
        }
      }
    } else {
      // Transposed: read each source row contiguously, write with stride NR. Work in blocks
      // of 8 k values so the NR destination lines stay in L1.
      for (int64_t jj = 0; jj < nr; ++jj) {
        const T* src = b + (j0 + t + jj) * ldb + p0;
        for (int64_t p = 0; p < kc; ++p) d[p * NR + jj] = src[p];
      }
      for (int64_t jj = nr; jj < NR; ++jj)
        for (int64_t p = 0; p < kc; ++p) d[p * NR + jj] = T(0);
    }
  }
}

template <typename T>
struct Store {
  T alpha, beta;
  bool first, last, relu;
};

// One MR x NR tile of C (row stride ldc) from kc steps of packed A and B.
template <typename T>
inline void microkernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t ldc,
                        const Store<T>& st, const T* rb, const T* cb) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int MR = Blocking<T>::MR, NV = Blocking<T>::NV, L = Blocking<T>::L, NR = Blocking<T>::NR;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const V*>(b + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V av = splat<T>(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += av * bv[j];
    }
    a += MR;
    b += NR;
  }
  const V valpha = splat<T>(st.alpha), vbeta = splat<T>(st.beta);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      T* cp = c + i * ldc + j * L;
      V v = acc[i][j];
      if (st.alpha != T(1)) v *= valpha;
      if (!st.first) v += loadu(cp);
      else if (st.beta != T(0)) v += vbeta * loadu(cp);
      if (st.last) {
        if (rb) v += splat<T>(rb[i]);
        if (cb) v += loadu(cb + j * L);
        if (st.relu) v = v < V{} ? V{} : v;
      }
      storeu(cp, v);
    }
  }
}

// An edge tile (mr < MR or nr < NR): run the microkernel on a local MR x NR copy.
template <typename T>
void microkernel_edge(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mr, int64_t nr,
                      const Store<T>& st, const T* rb, const T* cb) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  alignas(64) T tmp[MR * NR];
  alignas(64) T rbuf[MR];
  alignas(64) T cbuf[NR];
  const bool read_c = !st.first || st.beta != T(0);
  for (int64_t i = 0; i < MR; ++i)
    for (int64_t j = 0; j < NR; ++j) tmp[i * NR + j] = (read_c && i < mr && j < nr) ? c[i * ldc + j] : T(0);
  if (rb) {
    for (int64_t i = 0; i < MR; ++i) rbuf[i] = i < mr ? rb[i] : T(0);
    rb = rbuf;
  }
  if (cb) {
    for (int64_t j = 0; j < NR; ++j) cbuf[j] = j < nr ? cb[j] : T(0);
    cb = cbuf;
  }
  microkernel<T>(kc, a, b, tmp, NR, st, rb, cb);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = tmp[i * NR + j];
}

// C = beta * C + bias, act (k == 0 or alpha == 0: no product).
template <typename T>
void scale_only(int64_t m, int64_t n, T beta, T* c, int64_t ldc, const GemmEpilogue<T>& ep) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T v = beta == T(0) ? T(0) : beta * c[i * ldc + j];
      if (ep.row_bias) v += ep.row_bias[i];
      if (ep.col_bias) v += ep.col_bias[j];
      if (ep.relu) v = v < T(0) ? T(0) : v;
      c[i * ldc + j] = v;
    }
}

template <typename T>
void gemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const GemmEpilogue<T>& ep) {
  using Bk = Blocking<T>;
  constexpr int MR = Bk::MR, NR = Bk::NR;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) return scale_only(m, n, beta, c, ldc, ep);
  const int64_t mt = (m + Bk::MC - 1) / Bk::MC, nt = (n + Bk::NC - 1) / Bk::NC;
  const int64_t ntiles = mt * nt;
  // Small products are not worth waking the pool.
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int64_t grain = flops < 4e6 ? ntiles : 1;
  parallel_for(0, ntiles, grain, [&](int64_t t0, int64_t t1) {
    T* pa = scratch<T>(0, Bk::MC * Bk::KC);
    T* pb = scratch<T>(1, Bk::NC * Bk::KC);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = (t / nt) * Bk::MC, j0 = (t % nt) * Bk::NC;
      const int64_t mc = std::min<int64_t>(Bk::MC, m - i0), nc = std::min<int64_t>(Bk::NC, n - j0);
      for (int64_t p0 = 0; p0 < k; p0 += Bk::KC) {
        const int64_t kc = std::min<int64_t>(Bk::KC, k - p0);
        pack_a<T>(ta, a, lda, i0, mc, p0, kc, pa);
        pack_b<T>(tb, b, ldb, p0, kc, j0, nc, pb);
        const Store<T> st{alpha, beta, p0 == 0, p0 + kc >= k, ep.relu};
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min<int64_t>(NR, nc - jr);
          const T* bp = pb + jr * kc;
          const T* cb = ep.col_bias ? ep.col_bias + j0 + jr : nullptr;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - ir);
            const T* ap = pa + ir * kc;
            T* cp = c + (i0 + ir) * ldc + j0 + jr;
            const T* rb = ep.row_bias ? ep.row_bias + i0 + ir : nullptr;
            if (mr == MR && nr == NR)
              microkernel<T>(kc, ap, bp, cp, ldc, st, rb, cb);
            else
              microkernel_edge<T>(kc, ap, bp, cp, ldc, mr, nr, st, rb, cb);
          }
        }
      }
    }
  });
}

}  // namespace

void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
              const GemmEpilogue<float>& ep) {
  gemm_impl<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

void gemm_f64(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
              int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
              const GemmEpilogue<double>& ep) {
  gemm_impl<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

}  // namespace IMKERN_ISA
}  // namespace imkern
