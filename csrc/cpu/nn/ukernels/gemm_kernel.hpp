// GEMM building blocks shared by gemm.cpp, conv2d.cpp and linear.cpp (compiled per ISA): the blocking
// constants, per-thread packing buffers, the packing routines, the register microkernel (and
// its implicit-GEMM variant reading B at per-row offsets), and a packing-free dot-product
// kernel for products whose two operands are both contiguous along the reduction.
// See gemm.cpp for the algorithm.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "imkern/cpu_params.hpp"
#include "imkern/nn.hpp"
#include "common/simd.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace imkern {
namespace IMKERN_ISA {
namespace gemm_detail {

// The ISA these kernels are compiled for (its row of the run-time parameters).
constexpr Isa kIsa = Isa::IMKERN_ISA;

// The register tile (compile time) and the cache blocking (run time, imkern/cpu_params.hpp:
// the model of the machine's caches, or the overrides of imkern.set_cpu_params).
template <typename T>
struct Blocking {
  static constexpr int L = simd::Vec<T>::lanes;
#if defined(__AVX512F__)
  static constexpr int MR = 8, NV = 3;
#else
  static constexpr int MR = 6, NV = 2;
#endif
  static constexpr int NR = NV * L;
  static_assert(MR == gemm_mr(kIsa) && NR == gemm_nr(kIsa, sizeof(T)), "cpu_params.hpp's register tile");
  int64_t mc, kc, nc;  // nc: the most; the driver may use less to balance threads
  // Read once per call (never in an inner loop).
  static Blocking get() {
    const CpuParams& p = IMKERN_ISA::params();
    const int t = sizeof(T) == 4 ? 0 : 1;
    return Blocking{std::max<int64_t>(1, p.gemm_mc[t]), std::max<int64_t>(1, p.gemm_kc[t]),
                    std::max<int64_t>(1, p.gemm_nc[t])};
  }
};

// Per-thread packing buffers, grown on demand and reused across calls (no allocation in the
// hot path after the first call). A buffer of half a huge page or more is whole 2 MiB pages,
// 2 MiB-aligned and marked for transparent huge pages (Linux's THP in "madvise" mode, the
// default of many distributions, gives them only where asked, as NumPy asks for its large
// arrays): the conv drivers' buffers and linear's packed x panel and C buffer (4 MiB each at
// 256x4096 -> 4096) were on 4 KiB pages, a TLB entry per 4 KiB on every core. Measured on a Xeon
// (Granite Rapids) core against the 4 KiB buffers, single thread thread_time, 6 alternating
// process pairs under load: conv2d 3x3 k64 32x64x56x56 backward AVX-512 64.8 -> 61.5 ms (every
// pair 0.93-0.97), AVX2 90.7 -> 87.9; linear 256x4096 -> 4096 and conv2d forward unchanged.
// Placement only: the same bits.
struct Scratch {
  static constexpr size_t kHuge = size_t(2) << 20;
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      const bool huge = bytes >= kHuge / 2;
      const size_t align = huge ? kHuge : 64, granule = huge ? kHuge : 4096;
      cap = (bytes + granule - 1) & ~(granule - 1);
      p = std::aligned_alloc(align, cap);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      if (p && huge) madvise(p, cap, MADV_HUGEPAGE);
#endif
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
  // Slots 0, 1: gemm's A and B panels (0 also the Winograd weights, in the calling thread);
  // 2..4: the conv drivers' buffers; 5: gemm's task-local C tile.
  thread_local Scratch bufs[6];
  return static_cast<T*>(bufs[slot].get(static_cast<size_t>(n) * sizeof(T)));
}

#if defined(__AVX2__)
// dst[q * ds + r] = src[r * ls + q] for r, q < 8: an 8 x 8 float block transposed in registers (8
// row loads, 24 shuffles, 8 stores of 8 floats instead of 64 scalar loads and stores).
inline void transpose8x8(const float* src, int64_t ls, float* dst, int64_t ds) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ls), r2 = _mm256_loadu_ps(src + 2 * ls),
         r3 = _mm256_loadu_ps(src + 3 * ls), r4 = _mm256_loadu_ps(src + 4 * ls), r5 = _mm256_loadu_ps(src + 5 * ls),
         r6 = _mm256_loadu_ps(src + 6 * ls), r7 = _mm256_loadu_ps(src + 7 * ls);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * ds, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * ds, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

// op(A)[i0:i0+mc, p0:p0+kc] -> MR-row slivers: dst[s][p][ii].
template <typename T>
void pack_a(bool trans, const T* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* dst) {
  constexpr int MR = Blocking<T>::MR;
  for (int64_t s = 0; s < mc; s += MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - s);
    T* d = dst + s * kc;
#if defined(__AVX2__)
    if constexpr (sizeof(T) == 4 && MR == 8) {
      // Whole 8-row slivers (AVX-512's tile): 8 x 8 blocks transposed in registers.
      if (!trans && mr == MR) {
        const float* src = reinterpret_cast<const float*>(a + (i0 + s) * lda + p0);
        float* df = reinterpret_cast<float*>(d);
        const int64_t kc8 = kc / 8 * 8;
        for (int64_t p = 0; p < kc8; p += 8) transpose8x8(src + p, lda, df + p * MR, MR);
        for (int64_t ii = 0; ii < MR; ++ii)
          for (int64_t p = kc8; p < kc; ++p) d[p * MR + ii] = a[(i0 + s + ii) * lda + p0 + p];
        continue;
      }
    }
#endif
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

// op(B)[p0:p0+kc, j0:j0+nc] -> NR-column slivers: dst[t][p][jj]. prefetch: the transposed
// form prefetches its next source rows (false where the caller already brought them in).
template <typename T>
void pack_b(bool trans, const T* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* dst,
            bool prefetch = true) {
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
      // Transposed: row by row (each source row read sequentially, written with stride NR
      // into the L1-resident sliver), prefetching the row 4 ahead (2 and 8 measured slower): the source rows are far
      // apart and often come from DRAM (a linear layer's weight), so latency dominates.
      constexpr int64_t AHEAD = 4, LINE = 64 / sizeof(T);
#if defined(__AVX2__)
      if constexpr (sizeof(T) == 4 && NR % 8 == 0) {
        // Full float32 slivers: 8 x 8 blocks transposed in registers (8 row loads, 24
        // shuffles, 8 stores of 8 floats instead of 64 scalar loads and stores); the next 8
        // source rows prefetched while a block of 8 is packed.
        if (nr == NR) {
          const int64_t kc8 = kc / 8 * 8;
          for (int64_t jj = 0; jj < NR; jj += 8) {
            const T* src = b + (j0 + t + jj) * ldb + p0;
            if (prefetch && t + jj + 8 < nc)
              for (int r = 0; r < 8 && t + jj + 8 + r < nc; ++r)
                for (int64_t l = 0; l < kc; l += LINE) __builtin_prefetch(src + (8 + r) * ldb + l);
            for (int64_t p = 0; p < kc8; p += 8)
              transpose8x8(reinterpret_cast<const float*>(src + p), ldb, reinterpret_cast<float*>(d) + p * NR + jj, NR);
            for (int r = 0; r < 8; ++r)
              for (int64_t p = kc8; p < kc; ++p) d[p * NR + jj + r] = src[r * ldb + p];
          }
          continue;
        }
      }
#endif
      for (int64_t jj = 0; jj < nr; ++jj) {
        if (prefetch && t + jj + AHEAD < nc) {
          const T* nxt = b + (j0 + t + jj + AHEAD) * ldb + p0;
          for (int64_t l = 0; l < kc; l += LINE) __builtin_prefetch(nxt + l);
        }
        const T* src = b + (j0 + t + jj) * ldb + p0;
        for (int64_t p = 0; p < kc; ++p) d[p * NR + jj] = src[p];
      }
      for (int64_t jj = nr; jj < NR; ++jj)
        for (int64_t p = 0; p < kc; ++p) d[p * NR + jj] = T(0);
    }
  }
}

// Broadcast without simd::splat's `{} + x` (which must keep an add to honour -0.0): x - 0 == x
// for every x, so the compiler folds the subtraction and emits one broadcast from memory.
template <typename T>
inline simd::vec_t<T> bcast(T x) {
  return x - simd::vec_t<T>{};
}

template <typename T>
struct Store {
  T alpha, beta;
  bool first, last, relu;
  // Where the sum so far is read (rows lds apart) when not from C itself: a task-local buffer
  // that held the earlier k blocks (gemm.cpp).
  const T* src = nullptr;
  int64_t lds = 0;
};

// The epilogue of a tile (MR x NV vectors, or a smaller edge tile): alpha, beta (or accumulation
// into C), bias, ReLU, in registers. C is read only where the sum continues (not the first k
// block) or beta asks for it.
template <typename T, int MR, int NV, bool READ_C, bool LAST>
inline void store_tile_as(const simd::vec_t<T> (&acc)[MR][NV], T* c, int64_t ldc, const T* cin, int64_t ldin,
                          bool relu, const T* rb, const T* cb) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Blocking<T>::L;
  // Every load before the first store: C's rows are often a multiple of 4 KiB apart, so a row's
  // loads issued after the previous row's stores would wait on them (4K aliasing: the store
  // buffer matches addresses by their low 12 bits).
  V v[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      v[i][j] = acc[i][j];
      if constexpr (READ_C) v[i][j] += loadu(cin + i * ldin + j * L);
      if constexpr (LAST) {
        if (rb) v[i][j] += bcast<T>(rb[i]);
        if (cb) v[i][j] += loadu(cb + j * L);
        if (relu) v[i][j] = v[i][j] < V{} ? V{} : v[i][j];
      }
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) storeu(c + i * ldc + j * L, v[i][j]);
}

template <typename T, int MR, int NV>
inline void store_tile(const simd::vec_t<T> (&acc)[MR][NV], T* c, int64_t ldc, const Store<T>& st, const T* rb,
                       const T* cb) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Blocking<T>::L;
  // The fields in locals: read through the reference, every one would be reloaded after each
  // store to C (which might alias it), a compare and branch per vector.
  const T alpha = st.alpha, beta = st.beta;
  const bool first = st.first, last = st.last, relu = st.relu;
  const T* const cin = st.src ? st.src : c;
  const int64_t ldin = st.src ? st.lds : ldc;
  if (alpha == T(1) && (!first || beta == T(0))) {
    // The GEMM's k blocks (C = acc, or C += acc), without scaling: the same operations in the
    // same order as the general loop below.
    if (first) {
      if (last) return store_tile_as<T, MR, NV, false, true>(acc, c, ldc, cin, ldin, relu, rb, cb);
      return store_tile_as<T, MR, NV, false, false>(acc, c, ldc, cin, ldin, relu, rb, cb);
    }
    if (last) return store_tile_as<T, MR, NV, true, true>(acc, c, ldc, cin, ldin, relu, rb, cb);
    return store_tile_as<T, MR, NV, true, false>(acc, c, ldc, cin, ldin, relu, rb, cb);
  }
  // Scaling (alpha != 1, or beta != 0 in the first block): the original element loop, kept as
  // it was (its multiply-adds contract the same way in every tile instantiation).
  const V valpha = bcast<T>(alpha), vbeta = bcast<T>(beta);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      T* cp = c + i * ldc + j * L;
      const T* cr = cin + i * ldin + j * L;
      V v = acc[i][j];
      if (alpha != T(1)) v *= valpha;
      if (!first) v += loadu(cr);
      else if (beta != T(0)) v += vbeta * loadu(cr);
      if (last) {
        if (rb) v += bcast<T>(rb[i]);
        if (cb) v += loadu(cb + j * L);
        if (relu) v = v < V{} ? V{} : v;
      }
      storeu(cp, v);
    }
  }
}

// Like microkernel, but row p of B is the NR values at b + off[p] (unaligned, unpacked): the
// implicit-GEMM form of a stride-1 convolution, where each kernel tap reads a shifted window
// of the zero-padded input.
template <typename T>
inline void microkernel_off(int64_t kc, const T* __restrict a, const T* b, const int64_t* __restrict off, T* c,
                            int64_t ldc, const Store<T>& st, const T* rb) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int MR = Blocking<T>::MR, NV = Blocking<T>::NV, L = Blocking<T>::L;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  for (int64_t p = 0; p < kc; ++p) {
    const T* bp = b + off[p];
    V bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = loadu(bp + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V av = bcast<T>(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += av * bv[j];
    }
    a += MR;
  }
  store_tile<T>(acc, c, ldc, st, rb, nullptr);
}

// The source lines of a B sliver packed later (rows of b, `stride` bytes apart, `lpr` lines
// each), walked in order by a cursor: a microkernel given one issues `left` of them spread
// through its k loop (a line every few k steps) instead of the caller issuing them in a burst
// (a burst of lines from DRAM fills the miss buffers and stalls the prefetch instructions).
// After its `wleft` B lines, a microkernel issues the rest of its `left` from a contiguous run
// (`lin`: the packed A block of the next k block, gemm.cpp) into the L2.
struct LineCursor {
  const char* row = nullptr;  // the current row's first line
  int64_t stride = 0, lpr = 0, col = 0;
  int64_t left = 0;   // lines this microkernel issues
  int64_t wleft = 0;  // of which from the rows above; the others from lin
  const char* lin = nullptr;
  inline void next() {
    if (wleft > 0) {
      __builtin_prefetch(row + col * 64, 0, 3);
      if (++col == lpr) {
        col = 0;
        row += stride;
      }
      --wleft;
    } else {
      __builtin_prefetch(lin, 0, 2);
      lin += 64;
    }
    --left;
  }
};

// k steps per line a microkernel's cursor issues.
constexpr int kPrefetchSteps = 4;

// k steps per iteration of the microkernel's loop: 2 with 32 vector registers (AVX-512), 1 with
// 16 (AVX2, SSE: an unrolled body spilled accumulators).
#if defined(__AVX512F__)
constexpr int kUnrollK = 2;
#else
constexpr int kUnrollK = 1;
#endif

// One MR x NR tile of C (row stride ldc) from kc steps of packed A and B; or, for an edge tile,
// its first MR rows and NV vectors (A and B keep the packed slivers' strides, Blocking's MR and
// NR): every element sums the same products in the same order as in a full tile.
template <typename T, int MR = Blocking<T>::MR, int NV = Blocking<T>::NV>
inline void microkernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t ldc,
                        const Store<T>& st, const T* rb, const T* cb, LineCursor* pf = nullptr) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Blocking<T>::L, NR = NV * L, AS = Blocking<T>::MR, BS = Blocking<T>::NR;
  // The C tile (MR rows, ldc apart: usually in L2 or L3, and in the same L1 sets) is fetched
  // now, while the k loop runs, so that the epilogue's loads and stores do not wait for it (and
  // the sum so far, when it is read from elsewhere).
  const T* const cin = st.src;
  const int64_t ldin = st.lds;
  auto prefetch_c = [&]() __attribute__((always_inline)) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int l = 0; l < int(NR * sizeof(T)); l += 64) __builtin_prefetch(reinterpret_cast<const char*>(c + i * ldc) + l, 1, 3);
    if (cin) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int l = 0; l < int(NR * sizeof(T)); l += 64) __builtin_prefetch(reinterpret_cast<const char*>(cin + i * ldin) + l, 0, 3);
    }
  };
  prefetch_c();
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  auto step = [&]() __attribute__((always_inline)) {
    V bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const V*>(b + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V av = bcast<T>(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += av * bv[j];
    }
    a += AS;
    b += BS;
  };
  // The C tile again, CTAIL steps before the end: with a long kc the A and B slivers streamed
  // through the L1 since the first prefetch have evicted it to the L2, and the epilogue's loads
  // and stores (every k block after the first reads C) would wait for it there.
  constexpr int64_t CTAIL = 16;
  const int64_t k1 = kc > 2 * CTAIL ? kc - CTAIL : kc;
  int64_t p = 0;
  if (pf) {
    // A line of the future sliver every PS k steps from the start, while lines are left. The
    // cursor is walked in a local copy: through the pointer, its fields were stored back to
    // memory after every line (the compiler cannot tell that C's stores do not alias them).
    constexpr int PS = kPrefetchSteps;
    LineCursor cur = *pf;
    for (; p + PS <= k1 && cur.left > 0; p += PS) {
      // Not unrolled further: with AVX2's 16 registers an unrolled body spilled accumulators.
#pragma GCC unroll 1
      for (int u = 0; u < PS; u += kUnrollK) {
#pragma GCC unroll 4
        for (int v = 0; v < kUnrollK; ++v) step();
      }
      cur.next();
    }
    while (cur.left > 0) cur.next();
    *pf = cur;
  }
  // Two k steps per iteration where the register file allows it (32 vector registers: the
  // 24 accumulators, the B vectors of both steps and the broadcasts): half the loop's pointer
  // increments, compare and branch. Measured on a Xeon (Granite Rapids) core, the microkernel
  // alone over a 256 x 512 A block and a 512 x 48 B sliver in the L2 (x 256x4096 W^T's shape):
  // 167 -> 175-178 GFLOP/s of a ~205 peak (4 steps: 169). The likely reason, a property of the
  // core rather than of a vendor: where the scalar ALUs share issue ports with the two 512-bit
  // FMA units (Intel's ports 0 and 5), the loop's scalar uops take FMA slots; where the FP pipes
  // are separate (Zen 4), fewer scalar uops cost nothing. The same steps in the same order: the
  // same bits.
  if constexpr (kUnrollK > 1) {
    for (; p + kUnrollK <= k1; p += kUnrollK) {
#pragma GCC unroll 4
      for (int u = 0; u < kUnrollK; ++u) step();
    }
  }
  for (; p < k1; ++p) step();
  if (k1 < kc) {
    prefetch_c();
    for (; p < kc; ++p) step();
  }
  store_tile<T>(acc, c, ldc, st, rb, cb);
}

// An edge tile whose width is whole vectors (nr = nv L): the microkernel of that size, on C itself
// (1 <= mr <= MR, 1 <= nv <= NV).
template <typename T, int MR = Blocking<T>::MR, int NV = Blocking<T>::NV>
inline void microkernel_fit(int mr, int nv, int64_t kc, const T* a, const T* b, T* c, int64_t ldc,
                            const Store<T>& st, const T* rb, const T* cb) {
  if constexpr (MR >= 1 && NV >= 1) {
    if (mr < MR) return microkernel_fit<T, MR - 1, NV>(mr, nv, kc, a, b, c, ldc, st, rb, cb);
    if (nv < NV) return microkernel_fit<T, MR, NV - 1>(mr, nv, kc, a, b, c, ldc, st, rb, cb);
    microkernel<T, MR, NV>(kc, a, b, c, ldc, st, rb, cb);
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
  const T* const cin = st.src ? st.src : c;
  const int64_t ldin = st.src ? st.lds : ldc;
  for (int64_t i = 0; i < MR; ++i)
    for (int64_t j = 0; j < NR; ++j) tmp[i * NR + j] = (read_c && i < mr && j < nr) ? cin[i * ldin + j] : T(0);
  Store<T> sl = st;
  sl.src = nullptr;
  if (rb) {
    for (int64_t i = 0; i < MR; ++i) rbuf[i] = i < mr ? rb[i] : T(0);
    rb = rbuf;
  }
  if (cb) {
    for (int64_t j = 0; j < NR; ++j) cbuf[j] = j < nr ? cb[j] : T(0);
    cb = cbuf;
  }
  microkernel<T>(kc, a, b, tmp, NR, sl, rb, cb);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = tmp[i * NR + j];
}

// op(A) (m x k) packed whole, k in blocks of kcb: block p0 starts at p0 * roundup(m, MR), its
// sliver s (rows s .. s + MR) at + s * kc. Packed once, reused by every column block.
template <typename T>
int64_t packed_a_size(int64_t m, int64_t k) {
  constexpr int MR = Blocking<T>::MR;
  return (m + MR - 1) / MR * MR * k;
}
template <typename T>
void pack_a_full(bool trans, const T* a, int64_t lda, int64_t m, int64_t k, int64_t kcb, T* dst) {
  constexpr int MR = Blocking<T>::MR;
  const int64_t mpad = (m + MR - 1) / MR * MR;
  for (int64_t p0 = 0; p0 < k; p0 += kcb) pack_a<T>(trans, a, lda, 0, m, p0, std::min(kcb, k - p0), dst + p0 * mpad);
}

// C[m x n] = op(A) * B (+ row bias, ReLU) on one thread, A packed by pack_a_full with block
// kcb, B packed per k block by pack_b_fn(p0, kc, dst) into NR-column slivers (pb holds
// kcb * roundup(n, NR)). C is overwritten (beta = 0). Sliver loop: rows outer, so the A
// sliver (MR x kc) stays in L1 while the B slivers stream from L2.
template <typename T, typename PackB>
void gemm_packed_a(const T* pa, int64_t m, int64_t n, int64_t k, int64_t kcb, PackB&& pack_b_fn, T* pb, T* c,
                   int64_t ldc, const T* row_bias, bool relu) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  const int64_t mpad = (m + MR - 1) / MR * MR;
  for (int64_t p0 = 0; p0 < k; p0 += kcb) {
    const int64_t kc = std::min(kcb, k - p0);
    pack_b_fn(p0, kc, pb);
    const Store<T> st{T(1), T(0), p0 == 0, p0 + kc >= k, relu};
    const T* pa_blk = pa + p0 * mpad;
    for (int64_t ir = 0; ir < m; ir += MR) {
      const int64_t mr = std::min<int64_t>(MR, m - ir);
      const T* ap = pa_blk + ir * kc;
      const T* rb = row_bias ? row_bias + ir : nullptr;
      for (int64_t jr = 0; jr < n; jr += NR) {
        const int64_t nr = std::min<int64_t>(NR, n - jr);
        T* cp = c + ir * ldc + jr;
        if (mr == MR && nr == NR)
          microkernel<T>(kc, ap, pb + jr * kc, cp, ldc, st, rb, nullptr);
        else
          microkernel_edge<T>(kc, ap, pb + jr * kc, cp, ldc, mr, nr, st, rb, nullptr);
      }
    }
  }
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T v = row_bias ? row_bias[i] : T(0);
        c[i * ldc + j] = relu && v < T(0) ? T(0) : v;
      }
  }
}

// C[i][j] = (accumulate ? C[i][j] : 0) + sum_p A[i * lda + p] * B[j * ldb + p]: both operands
// contiguous along the reduction, so no packing: DM x DN tiles of vector accumulators run
// along p, reduced across lanes (in lane order) at the end, the k % lanes tail added last.
// For grad_weight-style products with a long reduction and two short outputs.
template <typename T, int DM, int DN>
inline void dot_tile(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc,
                     bool accumulate) {
  using namespace simd;
  using V = vec_t<T>;
  constexpr int L = Vec<T>::lanes;
  const int64_t kv = k / L * L;
  V acc[DM][DN];
#pragma GCC unroll 8
  for (int i = 0; i < DM; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < DN; ++j) acc[i][j] = V{};
  for (int64_t p = 0; p < kv; p += L) {
    V av[DM];
#pragma GCC unroll 8
    for (int i = 0; i < DM; ++i) av[i] = loadu(a + i * lda + p);
#pragma GCC unroll 8
    for (int j = 0; j < DN; ++j) {
      const V bv = loadu(b + j * ldb + p);
#pragma GCC unroll 8
      for (int i = 0; i < DM; ++i) acc[i][j] += av[i] * bv;
    }
  }
  for (int i = 0; i < DM; ++i)
    for (int j = 0; j < DN; ++j) {
      T s = 0;
      for (int l = 0; l < L; ++l) s += acc[i][j][l];
      for (int64_t p = kv; p < k; ++p) s += a[i * lda + p] * b[j * ldb + p];
      T* cp = c + i * ldc + j;
      *cp = accumulate ? *cp + s : s;
    }
}

template <typename T>
void gemm_nt_dot(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                 int64_t ldc, bool accumulate) {
#if defined(__AVX512F__)
  constexpr int DM = 4, DN = 6;
#else
  constexpr int DM = 3, DN = 3;
#endif
  const int64_t mf = m / DM * DM, nf = n / DN * DN;
  for (int64_t j = 0; j < nf; j += DN) {
    for (int64_t i = 0; i < mf; i += DM)
      dot_tile<T, DM, DN>(k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
    for (int64_t i = mf; i < m; ++i)
      dot_tile<T, 1, DN>(k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
  }
  for (int64_t j = nf; j < n; ++j)
    for (int64_t i = 0; i < m; ++i)
      dot_tile<T, 1, 1>(k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
}

}  // namespace gemm_detail

// gemm_f32 / gemm_f64 under one name, for kernels templated on the element type.
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                 const GemmEpilogue<float>& ep = {}) {
  gemm_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                 const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
                 const GemmEpilogue<double>& ep = {}) {
  gemm_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}
}  // namespace IMKERN_ISA
}  // namespace imkern
