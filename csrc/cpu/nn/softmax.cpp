// Softmax / log-softmax over one axis (compiled per ISA); the row primitives are in
// softmax_rows.hpp (shared with cross_entropy.cpp).
//
// Softmax of an (outer, c, inner) array along c, three passes over each slice: the maximum M,
// then e = exp(x - M) and its sum S, then y = e / S (softmax) or y = x - M - log S
// (log-softmax). Max subtraction keeps every exp in (0, 1], so large logits never overflow;
// exps come from vm::exp_nonpos (no overflow handling needed), or for float32 rows over the
// last axis at AVX2 / AVX-512 from the table exp texp::exp (softmax_rows.hpp; 13 vector ops
// against 17, results under 2^-126 flushed to 0). NaN: a NaN logit makes its exp term, the sum
// and so the whole slice NaN (the float32 row maximum may skip NaN: one vmaxps).
// Bytes/element: 2 * sizeof(T) (the slice stays in cache between passes); FLOPs/element ~20
// (one exp).
// Layouts: inner == 1 (softmax over the last axis) runs along contiguous rows, the next row
// prefetched during the exp pass; float32 softmax rows of up to 8192 keep e in a per-chunk
// scratch row and stream y = e / S out with non-temporal stores (no read-for-ownership of y)
// when x and y exceed the cache. 4096x1000 float32, 1 thread, AVX-512: ~1.25 ms (a copy of
// the same bytes ~1.1 ms), from ~2.2 ms with vm::exp_nonpos: the exp pass is FP-port bound.
// inner > 1 runs one driver (softmax_strided) over blocks of up to 256 contiguous inner
// positions, the c loop outermost, so the loads are contiguous too, with a block function
// for the maxima, exps and sums: the generic per-element passes, or for float32 softmax at
// AVX2 / AVX-512 block_softmax_f32 (register-blocked, the table exp) on blocks sized from the
// L1d: (32, 64, 56, 56) over dim 1, 1 thread, AVX-512 3.0 ms (a copy of the same bytes
// 1.8 ms), from 5.1 ms.
// Variants: float32 (vector exp) and float64 (libm exp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "imkern/cpu_params.hpp"
#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "common/stream.hpp"
#include "common/vmath.hpp"
#include "nn/softmax_rows.hpp"

// GCC 12 reports _mm512_undefined_*() inside the AVX-512 max / extract / convert intrinsics of
// the table exp (softmax_rows.hpp, texp) as maybe-uninitialized (a known false positive of its
// headers; see color/pixel_map.hpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace imkern {
namespace IMKERN_ISA {
namespace {

using namespace softmax_detail;

// y[i] = e[i] * s[i] (Scalar: one scale s[0] for all i), the whole 64-byte lines of y
// (stream_span, common/stream.hpp) written by non-temporal stores: the output is not read back
// here, and skipping its read-for-ownership saves a third of the memory traffic. The same bits
// as plain stores. A line must not take both streaming and plain stores: a line that is partly
// plain costs a read-for-ownership and holds the neighbouring streamed lines up (AVX2, 1
// thread: (32, 64, 56, 55) dim 1 with rows starting 16 bytes into a line, the first half-line
// plain and the second streamed, took 33 ms against 6 ms). So the partial lines at the ends
// take scalar stores (the neighbouring row's or block's part of such a line too, by the same
// rule). Callers end their chunk with stream_fence.
template <bool Scalar>
inline void scale_store_stream_lines(const float* e, const float* s, float* y, int64_t n) {
  const auto one = [&](int64_t i) { return e[i] * s[Scalar ? 0 : i]; };
  int64_t i = 0;
#if defined(__AVX512F__) || defined(__AVX__)
  using vm::vf;
  constexpr int64_t W = vm::LF;  // floats per vector (a vector is a line or half a line)
  const StreamSpan sp = stream_span<float, 1>(y, n);
  const int64_t head = sp.begin, body = sp.end;
  if (body > head) {
    for (; i < head; ++i) y[i] = one(i);
    const vf s1 = simd::splat(s[0]);
    for (; i < body; i += W) {
      vf v = simd::loadu(e + i);
      if constexpr (Scalar)
        v = v * s1;
      else
        v = v * simd::loadu(s + i);
#if defined(__AVX512F__)
      _mm512_stream_ps(y + i, (__m512)v);
#else
      _mm256_stream_ps(y + i, (__m256)v);
#endif
    }
  }
#endif
  for (; i < n; ++i) y[i] = one(i);
}
inline void scale_store_stream(const float* e, float inv, float* y, int64_t n) {
  scale_store_stream_lines<true>(e, &inv, y, n);
}
inline void scale_store_stream(const float* e, const float* inv, float* y, int64_t n) {
  scale_store_stream_lines<false>(e, inv, y, n);
}

constexpr int64_t kStreamRowMax = 8192;  // rows up to this many floats go through an L1/L2 scratch

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t C, bool log) {
  if constexpr (std::is_same<T, float>::value) {
#if defined(IMKERN_SOFTMAX_TEXP)
    // The table exp (softmax_rows.hpp, texp): rows of up to kStreamRowMax keep e in a
    // per-chunk scratch row (L1 / L2) and write y = e / S once (streamed when x and y exceed
    // the cache this process gets, cpu_params().stream_bytes, else plain stores so that the
    // next op finds y in cache; the same bits either way); longer rows put e into y and
    // scale it in place; log-softmax needs only the sum.
    const bool scratch = !log && C <= kStreamRowMax;
    const bool stream = scratch && 2 * rows * C * int64_t(sizeof(float)) > params().stream_bytes;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
    parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
      std::vector<float> e(scratch ? static_cast<size_t>(C) : 0);
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        float* yr = y + r * C;
        const float m = texp::row_max(xr, C);
        const float* pf = r + 1 < r1 ? xr + C : nullptr;
        if (log) {
          const float ls = static_cast<float>(std::log(texp::row_sum_exp(xr, m, nullptr, C, pf)));
          for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] - m - ls;
          continue;
        }
        float* er = scratch ? e.data() : yr;
        const float inv = static_cast<float>(1.0 / texp::row_sum_exp(xr, m, er, C, pf));
        if (stream)
          scale_store_stream(er, inv, yr, C);
        else
          texp::scale_row(er, inv, yr, C);
      }
      if (stream) stream_fence();
    });
    return;
#else
    if (!log && C <= kStreamRowMax) {
      // exp(x - M) into a per-chunk scratch row, then y = e / S streamed out (when x and y
      // exceed the cache this process gets, cpu_params().stream_bytes; else plain stores,
      // so that the next op finds y in cache). The same bits either way.
      const bool stream = 2 * rows * C * int64_t(sizeof(float)) > params().stream_bytes;
      const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
      parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
        std::vector<float> e(static_cast<size_t>(C));
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * C;
          const float m = row_max(xr, C);
          const float s = row_sum_exp(xr, m, e.data(), C, r + 1 < r1 ? xr + C : nullptr);
          if (stream) {
            scale_store_stream(e.data(), 1.0f / s, y + r * C, C);
          } else {
            const float inv = 1.0f / s;
            float* yr = y + r * C;
            for (int64_t i = 0; i < C; ++i) yr[i] = e[i] * inv;
          }
        }
        if (stream) stream_fence();
      });
      return;
    }
#endif
  }
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      const T m = row_max(xr, C);
      const T* pfx = r + 1 < r1 ? xr + C : nullptr;
      T* pfy = r + 1 < r1 ? yr + C : nullptr;
      if (log) {
        const T s = row_sum_exp(xr, m, static_cast<T*>(nullptr), C, pfx, pfy);
        const T ls = std::log(s);
        for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] - m - ls;
      } else {
        const T s = row_sum_exp(xr, m, yr, C, pfx, pfy);
        const T inv = T(1) / s;
        for (int64_t i = 0; i < C; ++i) yr[i] *= inv;
      }
    }
  });
}

#if defined(IMKERN_SOFTMAX_TEXP)
// float32 softmax of one block of B <= kBlock inner positions (C rows `inner` apart), with the
// table exp texp::exp (softmax_rows.hpp; 13 vector ops against vm::exp_nonpos's 17).
// Register-blocked: K = 4 vectors of positions at a time (then single vectors, then one masked
// tail), the c loop inside, so the running maxima and the float32 partial sums stay in
// registers (no load / store of a per-position array per element). The sums: float32 over runs
// of kSumRun rows per lane (a fixed order), each run added into the float64 array sm, so the
// error stays ~kSumRun / 2 ulp for any C, as the rows' kSumBlock / L. Per lane the work does
// not depend on the position of the block or the thread: the same bits for any thread count.
// NaN: the vector maximum skips NaN (vmax returns its second operand), but the exp of a NaN
// logit is NaN and so is the sum: the position's outputs are all NaN, as before.
constexpr int64_t kSumRun = kSumBlock / 16;  // 64 rows per float32 partial
constexpr int kK = 4;
template <int K, bool Tail>
IMKERN_ALWAYS_INLINE inline void block_max(const float* xs, int64_t inner, int64_t C, int64_t tn, float* mx,
                                          const float* pf) {
  using namespace texp;
  const float ninf = -std::numeric_limits<float>::infinity();
  V m[K];
  for (int k = 0; k < K; ++k) m[k] = set1(ninf);
  for (int64_t c = 0; c < C; ++c) {
    const float* xr = xs + c * inner;
    if (pf)
      for (int k = 0; k < K * L; k += 16) __builtin_prefetch(pf + c * inner + k, 0, 3);
    for (int k = 0; k < K; ++k) m[k] = vmax(Tail ? load_tail(xr + k * L, tn, ninf) : loadu(xr + k * L), m[k]);
  }
  for (int k = 0; k < K; ++k) {
    if (Tail)
      store_tail(mx + k * L, m[k], tn);
    else
      storeu(mx + k * L, m[k]);
  }
}
// e = exp(x - mx) for K vectors of positions over all C rows (row c of e at e + c * es),
// sm = sum over c (float64).
template <int K, bool Tail>
IMKERN_ALWAYS_INLINE inline void block_exp_sum(const float* xs, int64_t inner, int64_t C, int64_t tn, const float* mx,
                                              float* e, int64_t es, double* sm) {
  using namespace texp;
  const I tab = table();
  const float ninf = -std::numeric_limits<float>::infinity();
  V m[K];
  for (int k = 0; k < K; ++k) m[k] = Tail ? load_tail(mx + k * L, tn, 0.0f) : loadu(mx + k * L);
  for (int k = 0; k < K * L; ++k) sm[k] = 0.0;
  for (int64_t c0 = 0; c0 < C; c0 += kSumRun) {
    const int64_t c1 = std::min(C, c0 + kSumRun);
    V a[K];
    for (int k = 0; k < K; ++k) a[k] = set1(0.0f);
    for (int64_t c = c0; c < c1; ++c) {
      const float* xr = xs + c * inner;
      float* er = e + c * es;
      for (int k = 0; k < K; ++k) {
        const V t = exp(sub(Tail ? load_tail(xr + k * L, tn, ninf) : loadu(xr + k * L), m[k]), tab);
        if (Tail)
          store_tail(er + k * L, t, tn);
        else
          storeu(er + k * L, t);
        a[k] = add(a[k], t);
      }
    }
    alignas(64) float p[K * L];
    for (int k = 0; k < K; ++k) storeu(p + k * L, a[k]);
    for (int k = 0; k < K * L; ++k) sm[k] += p[k];
  }
}
// The maxima, the exps (into e, row c at e + c * es) and their sums for B positions.
// pf (or null): the same positions of the next block, prefetched during the maximum pass (the
// pass that reads this block from memory; prefetching never faults, so a next block shorter
// than this one needs no check).
inline void block_softmax_f32(const float* xs, int64_t inner, int64_t C, int64_t B, float* mx, float* e, int64_t es,
                              double* sm, const float* pf) {
  constexpr int64_t L = texp::L;
  int64_t j = 0;
  for (; j + kK * L <= B; j += kK * L) {
    block_max<kK, false>(xs + j, inner, C, L, mx + j, pf ? pf + j : nullptr);
    block_exp_sum<kK, false>(xs + j, inner, C, L, mx + j, e + j, es, sm + j);
  }
  for (; j + L <= B; j += L) {
    block_max<1, false>(xs + j, inner, C, L, mx + j, pf ? pf + j : nullptr);
    block_exp_sum<1, false>(xs + j, inner, C, L, mx + j, e + j, es, sm + j);
  }
  if (j < B) {
    block_max<1, true>(xs + j, inner, C, B - j, mx + j, pf ? pf + j : nullptr);
    block_exp_sum<1, true>(xs + j, inner, C, B - j, mx + j, e + j, es, sm + j);
  }
}
#endif

// The generic block function of softmax_strided (any T, any ISA), per-element passes over the
// B positions of one block: the maxima (the c loop outermost, so each load is a contiguous run
// of B elements; the same rows of the next block, pf / pfB wide, prefetched alongside), then
// e = exp(x - M) row by row (vm::exp_nonpos / libm) and the float64 sums (the error stays ~1 ulp
// of T for any C). e null (log-softmax): only the sums are kept.
template <typename T>
inline void block_softmax_generic(const T* xs, int64_t inner, int64_t C, int64_t B, T* mx, T* e, int64_t es,
                                  double* sm, const T* pf, int64_t pfB) {
  std::fill(mx, mx + B, -std::numeric_limits<T>::infinity());
  std::fill(sm, sm + B, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    const T* xr = xs + c * inner;
    if (pf)
      for (int64_t j = 0; j < pfB; j += 64 / int64_t(sizeof(T))) __builtin_prefetch(pf + c * inner + j, 0, 3);
    for (int64_t j = 0; j < B; ++j) mx[j] = vm::nanmax_s(mx[j], xr[j]);
  }
  // The terms go through an L1 row, then to e: written straight into e (y, not in cache), the
  // scalar libm exps of float64 waited on y's read-for-ownership (~2% slower).
  T row[kBlock];
  for (int64_t c = 0; c < C; ++c) {
    exp_diff(xs + c * inner, mx, row, B);
    for (int64_t j = 0; j < B; ++j) sm[j] += row[j];
    if (e) std::copy(row, row + B, e + c * es);
  }
}

// Softmax along c of (outer, c, inner), inner > 1: the driver. Blocks of B <= bw <= kBlock
// contiguous inner positions (a block: B elements of C rows inner apart); `block` (a block
// function: block_softmax_generic or block_softmax_f32) fills the block's maxima M, exp terms e
// and float64 sums S, then the driver writes y = e / S (softmax) or y = (x - M) - log S
// (log-softmax). The rows of a block are too short for the hardware prefetcher to follow, so
// the block function prefetches the same rows of the next block (the following positions, or
// the next slice's first block) during its maximum pass. A float32 softmax whose data exceed
// the cache this process gets (cpu_params().stream_bytes) keeps e in a scratch (when it fits
// the L2 block) and streams y = e / S out with non-temporal stores (no read-for-ownership of
// y); otherwise e goes to y and is scaled in place. The same bits either way, and for any bw
// and thread count: every position's work depends on its own C elements only.
template <typename T, typename Block>
void softmax_strided(const T* x, T* y, int64_t outer, int64_t C, int64_t inner, bool log, int64_t bw,
                     Block&& block) {
  const int64_t blk = std::min(inner, bw);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C * blk, 1));
  const bool stream = std::is_same<T, float>::value && !log &&
                      2 * outer * C * inner * int64_t(sizeof(T)) > params().stream_bytes &&
                      C * blk * int64_t(sizeof(T)) <= params().l2_block;
  // Streamed rows of y that all have one phase against the 64-byte lines (inner a whole number
  // of lines): the first block of a slice is shortened to end on a line, so that the rows of
  // every later block are whole lines, all streamed, and only the lines across the ends of the
  // rows take plain stores (see scale_store_stream_lines). With blocks ending mid-line, each
  // block row had two partly plain lines among four streamed ones (a read-for-ownership each,
  // and probably the adjacent-line prefetch of the streamed buddy line): (32, 64, 56, 56) dim 1
  // with y 16 bytes past a line, 1 thread: 7.2 -> 4.1 ms AVX-512 (4.0 with y line-aligned),
  // 15.6 -> 6.0 ms AVX2 (5.9; also the stores' fix). The bits do not depend on the blocks.
  int64_t first = blk;
  constexpr int64_t LN = 64 / int64_t(sizeof(T));
  const uintptr_t ya = reinterpret_cast<uintptr_t>(y);
  if (stream && inner % LN == 0 && ya % sizeof(T) == 0 && bw > LN) {
    const int64_t a = static_cast<int64_t>((0 - ya) & 63) / int64_t(sizeof(T));  // elements to the next line
    if (a) first = std::min(inner, bw - LN + a);
  }
  const int64_t nb = 1 + (inner - first + bw - 1) / bw;  // blocks per slice
  parallel_for(0, outer * nb, grain, [&](int64_t t0, int64_t t1) {
    alignas(64) T mx[kBlock], ls[kBlock];
    alignas(64) double sm[kBlock];
    std::vector<T> es(stream ? static_cast<size_t>(C * blk) : 0);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / nb, i = t % nb;
      const int64_t b0 = i == 0 ? 0 : first + (i - 1) * bw, B = i == 0 ? first : std::min(bw, inner - b0);
      const T* xs = x + o * C * inner + b0;
      T* ys = y + o * C * inner + b0;
      // The next block: the following positions of the same rows, or the next slice's first.
      const bool more = b0 + B < inner;
      const T* nx = t + 1 < outer * nb ? (more ? xs + B : x + (o + 1) * C * inner) : nullptr;
      const int64_t nB = more ? std::min(bw, inner - b0 - B) : first;
      block(xs, inner, C, B, mx, log ? nullptr : stream ? es.data() : ys, stream ? B : inner, sm, nx, nB);
      if (log) {
        // (x - M) - log S, as the contiguous rows: x - (M + log S) would round M + log S to
        // the precision of M first (an error of ulp(M) / 2: 0.03 at 1e6, everything at 1e8).
        for (int64_t j = 0; j < B; ++j) ls[j] = static_cast<T>(std::log(sm[j]));
        for (int64_t c = 0; c < C; ++c) {
          const T* xr = xs + c * inner;
          T* yr = ys + c * inner;
          for (int64_t j = 0; j < B; ++j) yr[j] = (xr[j] - mx[j]) - ls[j];
        }
        continue;
      }
      for (int64_t j = 0; j < B; ++j) ls[j] = static_cast<T>(1.0 / sm[j]);
      if constexpr (std::is_same<T, float>::value) {
        if (stream) {
          for (int64_t c = 0; c < C; ++c) scale_store_stream(es.data() + c * B, ls, ys + c * inner, B);
          continue;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        T* yr = ys + c * inner;
        for (int64_t j = 0; j < B; ++j) yr[j] *= ls[j];
      }
    }
    if (stream) stream_fence();
  });
}

#if defined(IMKERN_SOFTMAX_TEXP)
// The block width of the float32 softmax at AVX2 / AVX-512 (block_softmax_f32): a multiple of
// the 4-vector chunk, at most kBlock, such that the block of x, its exps and the next block of x
// (being prefetched) fit the L1d (cpu_params().strip_l1; the second and third passes then read
// L1, not L2; the smallest is one chunk, a 128 / 256-byte run per row). (32, 64, 56, 56) dim 1
// on a 48 KiB L1d, 1 thread: B = 64 gave 3.0 ms (AVX-512) / 3.9 ms (AVX2), B = 256 3.7 / 4.2 ms;
// B = 48 (not a whole chunk) 4.5 ms. The bits do not depend on it (every lane's work is the
// same), so neither on the machine.
inline int64_t strided_f32_width(int64_t C) {
  constexpr int64_t KL = kK * texp::L;  // one register-blocked chunk
  const int64_t fit = params().strip_l1 / (3 * C * int64_t(sizeof(float)));
  return std::min(kBlock, std::max(KL, fit / KL * KL));
}
#endif
}  // namespace

void softmax(DType dtype, const void* x, void* y, int64_t outer, int64_t c, int64_t inner, bool log) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (inner == 1)
      softmax_rows<T>(static_cast<const T*>(x), static_cast<T*>(y), outer, c, log);
    else {
#if defined(IMKERN_SOFTMAX_TEXP)
      if constexpr (std::is_same<T, float>::value) {
        if (!log) {
          // The next block's width is not needed: block_softmax_f32 prefetches the next
          // block's chunks alongside its own (at most one block width of a tail short).
          softmax_strided<float>(static_cast<const float*>(x), static_cast<float*>(y), outer, c, inner, false,
                                 strided_f32_width(c),
                                 [](const float* xs, int64_t in, int64_t C, int64_t B, float* mx, float* e,
                                    int64_t es, double* sm, const float* pf, int64_t) {
                                   block_softmax_f32(xs, in, C, B, mx, e, es, sm, pf);
                                 });
          return;
        }
      }
#endif
      softmax_strided<T>(static_cast<const T*>(x), static_cast<T*>(y), outer, c, inner, log, kBlock,
                         [](auto... a) { block_softmax_generic<T>(a...); });
    }
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
