// Blocked GEMM, BLIS style (compiled per ISA).
//
// Algorithm: C is cut into NC-wide columns and MC-row blocks; a parallel_for task is either a
// whole column (BLIS's order: each KC x NC block of B packed once and reused by every row
// block) or one MC x NC tile (NC shrinking for about 4 tiles per thread), whichever packs
// fewer elements (when m <= MC, A is packed once for all tasks, by all threads); the columns
// are split between tasks in whole NR slivers, evenly. A task walks k in KC blocks: it packs
// op(B)[KC x NC] into NR-column slivers (contiguous, 64-byte aligned, zero-padded at the
// edges; the next block's source prefetched meanwhile) and, per row block, op(A)[MC x KC]
// into MR-row slivers, then runs the register
// microkernel over every MR x NR sub-tile: MR x NV vector accumulators (NR = NV * lanes)
// fed by NV aligned loads of B and MR broadcasts of A per k step (the microkernel alone runs
// at its FMA peak: ~250 GFLOP/s on one Zen 5 core, 115 on a Zen 4 VM core; ~85% of it on a Xeon
// Granite Rapids core, 175-178 of ~205 GFLOP/s, at AVX-512 two k steps per loop iteration). The microkernel is
// written once with simd::vec_t, so it becomes AVX-512 (8 x 3 zmm accumulators), AVX2 or SSE
// (6 x 2). A task with a single row block (m <= MC, or one tile) packs B one sliver at a time
// instead, just before the microkernels that use it, prefetching the next sliver's source a
// slice per microkernel (x 256x4096 W^T 4096x4096 float32, one Zen 4 core: 84 -> 88-90% of the
// FMA peak at AVX-512, 82 -> 87-90% at AVX2), a line every few k steps inside the microkernel's
// loop (issued in one burst before each microkernel, the lines from DRAM filled the miss buffers
// and the prefetch instructions stalled: 4% of the time; AVX-512 87-88 -> 90-91%). Such a task,
// when k has several blocks, keeps its C tile's partial sums in a contiguous buffer until the last
// k block (C's own rows, often 16 KiB apart, made every epilogue wait on C: AVX2 87.5 -> 90%). FLOPs: 2 m n k. Bytes: the packing reads A n/NC times and B once (columns) or
// m/MC times (tiles).
// Measured no faster on a Xeon (Granite Rapids) core at 256x4096 W^T 4096x4096 (single thread,
// AVX-512 and AVX2): packing the next B sliver inside the current sliver's microkernels (each W
// line prefetched, then copied element by element through a general register between the FMAs
// into the other half of a double buffer, instead of pack_b's pass): 7-11% slower, and 4-7%
// slower with the copies' stores left out, so the loads alone cost more than pack_b's pass;
// KC = K (the C tile in registers over all of k, the A sliver then from the L3): 3-15% slower;
// the next-sliver prefetches into the L2 only (prefetcht1 / t2) or for every 2nd-8th line
// only: within 1.5%. The same core's register loop alone (thread CPU time against the peak
// probe's loop in the same process): 8 x 48 with its operands in the L1 89-92% of the peak,
// streaming A and B from the L2 84-88%; 12 x 32, 14 x 32, 6 x 64, 4 x 96 no faster (83-87%
// from the L2); each accumulator's FMA forced into the 231 form (no accumulator copies) no
// faster; FMAs with an embedded broadcast operand (m32{1to16}) half the rate (the broadcast
// takes the second FMA port); software prefetch of A and B 4-32 steps ahead 1-3% slower. The
// core clock after the GEMM loop equals the one after the peak loop (a dependent add chain:
// 3.72-3.79 GHz after each), so the gap to the peak is not frequency. In place, the median
// microkernel call runs at ~84% of the peak; the mean is lower (calls that follow a k-block
// switch, the first after pack_b, and a tail of slow calls).
// Deterministic: an element's k sum runs in KC blocks in increasing order, each block summed
// in registers in k order, whatever the tile a thread takes. The epilogue (alpha, beta,
// bias, ReLU) is applied in registers on the last k block.
// MC, KC, NC: read once per call from the run-time parameters (imkern/cpu_params.hpp: a
// BLIS-style model of this machine's caches, or imkern.set_cpu_params); only KC changes bits,
// and the default KC depends on the nominal L1 and L2 geometry alone.
// Variants: f32, f64; trans_a / trans_b handled by the packing routines only.
#include "imkern/nn.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "imkern/parallel.hpp"
#include "nn/ukernels/gemm_kernel.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {
using namespace gemm_detail;

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
  const Bk bk = Bk::get();
  const int64_t MC = bk.mc, KC = bk.kc;
  if (k <= 0 || alpha == T(0)) return scale_only(m, n, beta, c, ldc, ep);
  // Tasks: an NC-wide column of C and a group of MC-row blocks of it. For each k block a task
  // packs its B block (KC x NC) once, then packs A (MC x KC) and runs the microkernels for each
  // row block of its group (BLIS's loop order: the packed B is reused by every row block, so
  // B is packed once in all, A once per column). Otherwise each tile (one row block) is a task,
  // NC shrinking (down to 4 slivers) until there are about 4 tiles per thread: A is packed once
  // per column of tiles, B once per row block. With several row blocks (m > MC) the schedule
  // that copies fewer elements into the packed panels wins (whole columns: NC shrinking for
  // about 4 columns per thread, and at least 2 per thread; one thread: NC itself).
  // Only the k blocking affects the result, so these choices may depend on the thread count.
  const int64_t mt = (m + MC - 1) / MC;
  const int64_t threads = static_cast<int64_t>(get_num_threads());
  const int64_t want = 4 * threads;
  auto nc_for = [&](int64_t cols) {
    const int64_t w = ((n + cols - 1) / cols + NR - 1) / NR * NR;
    return std::max<int64_t>(4 * NR, std::min<int64_t>(bk.nc, w));
  };
  int64_t group = 1, nc_blk = nc_for(std::max<int64_t>(1, (want + mt - 1) / mt));
  if (mt > 1) {
    const int64_t nc_col = threads == 1 ? nc_for(1) : nc_for(want);
    const int64_t nt_col = (n + nc_col - 1) / nc_col, nt_tile = (n + nc_blk - 1) / nc_blk;
    // Elements packed (per k): A m * columns, B n * (row blocks per column).
    const double copies_col = double(m) * double(nt_col) + double(n);
    const double copies_tile = double(m) * double(nt_tile) + double(n) * double(mt);
    if ((threads == 1 || nt_col >= 2 * threads) && copies_col <= copies_tile) {
      group = mt;
      nc_blk = nc_col;
    }
  }
  // One row block per task, several k blocks, beta = 0: each task sums its C tile in a
  // contiguous thread-local buffer (slot 5, sliver-major: see cw below) until its last k
  // block, whose epilogue reads the buffer and writes C. C's own rows are ldc apart (often 16 KiB: the tile's lines fall in
  // a few L1 and L2 sets, and its rows alias each other at 4 KiB), so every k block's epilogue
  // waited for C's lines (x 256x4096 W^T 4096x4096 float32, one Zen 4 core: ~2.5% of the
  // microkernel's samples on its C loads at AVX2, 0.1% with the buffer). Narrowing the task so
  // that its buffer stays in the L2 measured slower (the A block then comes from the L3 more
  // often). Same operations on the same values: the same bits.
  const bool c_local = group == 1 && mt == 1 && k > KC && beta == T(0);
  const int64_t nt = (n + nc_blk - 1) / nc_blk;
  const int64_t ngroups = (mt + group - 1) / group;
  const int64_t ntasks = ngroups * nt;
  // The columns of C in whole NR slivers, split evenly between the nt column tasks (10 or 11
  // slivers each rather than 11 and a short last one: with 2 threads and 256x4096 -> 4096 at
  // AVX-512, 4096 = 85.3 slivers of 48, equal widths gave one thread 3% more work than the other).
  const int64_t slivers = (n + NR - 1) / NR;
  auto col_lo = [&](int64_t tc) { return std::min<int64_t>(n, tc * slivers / nt * NR); };
  const int64_t nc_max = ((slivers + nt - 1) / nt) * NR;
  // One row block per task (group == 1): its B block is used by that block alone, so B is packed
  // one NR-wide sliver at a time just before the microkernels that use it (the packed sliver
  // stays in L1/L2 instead of a KC x NC block that, with the A block and the C tile, overflows
  // the L2), and the source of the next sliver is prefetched in small slices, one per
  // microkernel (a few dozen lines per 8640 FMA cycles at 8 x 48, KC 360, one every 4 k steps
  // of its loop: LineCursor) instead of a block's worth of lines in bursts that filled the miss
  // queues while the microkernels waited.
  const bool per_sliver = group == 1;
  // Small products are not worth waking the pool.
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int64_t grain = flops < 4e6 ? ntasks : 1;
  // One row block (m <= MC) shared by all tasks: pack A once instead of once per task, its k
  // blocks split between the threads (the calling thread's slot 0, which its tasks then leave
  // alone).
  const T* a_all = nullptr;
  const int64_t mpad = (m + MR - 1) / MR * MR;
  if (mt == 1 && nt > 1 && mpad * k <= (int64_t(1) << 22)) {
    T* buf = scratch<T>(0, mpad * k);
    const int64_t nkb = (k + KC - 1) / KC;
    parallel_for(0, nkb, flops < 4e6 ? nkb : 1, [&](int64_t b0, int64_t b1) {
      for (int64_t kb = b0; kb < b1; ++kb)
        pack_a<T>(ta, a, lda, 0, m, kb * KC, std::min<int64_t>(KC, k - kb * KC), buf + kb * KC * mpad);
    });
    a_all = buf;
  }
  // Lines of the source of an op(B) sliver or block: rows (of b) and lines per row.
  struct Src {
    const char* p = nullptr;
    int64_t rows = 0, lpr = 0;
  };
  auto b_src = [&](int64_t q0, int64_t qkc, int64_t qj0, int64_t qnc) {
    Src s;
    const T* src = tb ? b + qj0 * ldb + q0 : b + q0 * ldb + qj0;
    const int64_t phase = static_cast<int64_t>(reinterpret_cast<uintptr_t>(src) & 63);
    s.p = reinterpret_cast<const char*>(src) - phase;
    s.rows = tb ? qnc : qkc;
    s.lpr = (phase + (tb ? qkc : qnc) * int64_t(sizeof(T)) + 63) / 64;
    return s;
  };
  const int64_t ldb_bytes = ldb * int64_t(sizeof(T));
  auto prefetch_lines = [&](const Src& s, int64_t l0, int64_t l1) {
    for (int64_t l = l0; l < l1; ++l) __builtin_prefetch(s.p + (l / s.lpr) * ldb_bytes + (l % s.lpr) * 64);
  };
  parallel_for(0, ntasks, grain, [&](int64_t t0, int64_t t1) {
    T* pa = a_all ? nullptr : scratch<T>(0, ((MC + MR - 1) / MR * MR) * KC);
    T* pb = scratch<T>(1, (per_sliver ? NR : nc_max) * KC);
    // The C buffer, sliver-major: the partial sums of NR-column sliver s are m rows of NR at
    // cw + s * m * NR (rows NR * sizeof(T) bytes apart, never a multiple of 4 KiB). A
    // microkernel's tile is then MR NR contiguous elements and a sliver's column of tiles one
    // contiguous run, instead of MR rows nc_max apart: with 256x4096 W^T 4096x4096 float32 the
    // 4 MiB buffer comes back from the L3 at every k block, and row-major each tile spread over
    // 8 pages and 8 streams (one Xeon Granite Rapids core, the microkernels alone on packed
    // data: 165 -> 171 GFLOP/s).
    const int64_t ldw = NR;
    T* cw = c_local ? scratch<T>(5, m * ((nc_max + NR - 1) / NR) * NR) : nullptr;
    // Per sliver: whether the microkernels of the previous sliver prefetched this one's source
    // (then pack_b's own prefetches of its rows are redundant: 1280 prefetch instructions per
    // 48 x 512 sliver, each waiting for a fill buffer while the lines are still in flight).
    bool src_ready = false;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ib0 = (t / nt) * group, ib1 = std::min(mt, ib0 + group), j0 = col_lo(t % nt);
      const int64_t nc = col_lo(t % nt + 1) - j0;
      for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = std::min<int64_t>(KC, k - p0);
        // Whole-block packing: the source of the next B block (this task's next k block, or the
        // next task's first) is prefetched in slices while the first row block's microkernels
        // run: packing then reads it from the L2 instead of memory (B is often a weight read
        // from DRAM, its rows far apart).
        Src nb;
        if (!per_sliver) {
          pack_b<T>(tb, b, ldb, p0, kc, j0, nc, pb);
          int64_t q0 = p0 + KC, qj0 = j0, qnc = nc;
          if (q0 >= k && t + 1 < t1) {
            q0 = 0;
            qj0 = col_lo((t + 1) % nt);
            qnc = col_lo((t + 1) % nt + 1) - qj0;
          }
          if (q0 < k) nb = b_src(q0, std::min<int64_t>(KC, k - q0), qj0, qnc);
        }
        const int64_t nb_lines = nb.rows * nb.lpr, njr = (nc + NR - 1) / NR;
        // The A block that this task uses next (a_all's next k block, or its first for the next
        // task), fetched into the L2 by the microkernels of this k block's last slivers. Without
        // it the first sliver of each k block read its A slivers from the L3: x 256x4096 W^T
        // 4096x4096 float32 at AVX-512 on one Xeon (Granite Rapids) core, per microkernel (TSC
        // cycles, median / mean of calls under 40000) 9780 / 11364 there against 5720 / 6045 for
        // the others; with the prefetch 7694 / 8567, the others unchanged (5682 / 5943). Only the
        // last `a_slivers` slivers issue it, as few as leave their microkernels' prefetch slots
        // (one line per kPrefetchSteps k steps) room beside the B lines: issued earlier, the
        // lines would be evicted from the L2 by the C buffer and B traffic before their use.
        // Prefetches only: the same bits.
        const char* an = nullptr;
        int64_t an_lines = 0, a_slivers = 0;
        if (a_all && per_sliver && (p0 + KC < k || t + 1 < t1)) {
          const int64_t q0 = p0 + KC < k ? p0 + KC : 0;
          an = reinterpret_cast<const char*>(a_all + q0 * mpad);
          an_lines = (mpad * std::min<int64_t>(KC, k - q0) * int64_t(sizeof(T)) + 63) / 64;
          const int64_t nir = (m + MR - 1) / MR, slots = std::max<int64_t>(1, kc / kPrefetchSteps);
          const int64_t wl = (std::min<int64_t>(NR, nc) * ((kc * int64_t(sizeof(T)) + 63) / 64 + 1) + nir - 1) / nir;
          const int64_t room = std::max<int64_t>(1, slots - wl);
          a_slivers = std::min<int64_t>(njr, (an_lines + nir * room - 1) / (nir * room));
        }
        Store<T> st{alpha, beta, p0 == 0, p0 + kc >= k, ep.relu};
        // Where the microkernels write: the buffer (column j0 at 0) before the last k block.
        T* const cwb = cw && !st.last ? cw : nullptr;
        const int64_t ldct = cwb ? ldw : ldc;
        for (int64_t ib = ib0; ib < ib1; ++ib) {
          const int64_t i0 = ib * MC, mc = std::min<int64_t>(MC, m - i0), nir = (mc + MR - 1) / MR;
          const T* pa_blk = pa;
          if (!a_all)
            pack_a<T>(ta, a, lda, i0, mc, p0, kc, pa);
          else
            pa_blk = a_all + p0 * mpad;
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t nr = std::min<int64_t>(NR, nc - jr);
            const T* bp = pb + jr * kc;
            Src ns;  // per sliver: the next sliver's source (this k block, the next, the next task)
            LineCursor cur;
            if (per_sliver) {
              pack_b<T>(tb, b, ldb, p0, kc, j0 + jr, nr, pb, !src_ready);
              bp = pb;
              if (jr + NR < nc) {
                ns = b_src(p0, kc, j0 + jr + NR, std::min<int64_t>(NR, nc - jr - NR));
              } else if (p0 + KC < k) {
                ns = b_src(p0 + KC, std::min<int64_t>(KC, k - p0 - KC), j0, std::min<int64_t>(NR, nc));
              } else if (t + 1 < t1) {
                const int64_t qj0 = col_lo((t + 1) % nt);
                ns = b_src(0, std::min<int64_t>(KC, k), qj0, std::min<int64_t>(NR, col_lo((t + 1) % nt + 1) - qj0));
              }
              src_ready = ns.rows > 0;  // every line of ns is issued by this sliver's microkernels
            } else if (nb.rows && ib == ib0) {
              const int64_t s = jr / NR;
              prefetch_lines(nb, nb_lines * s / njr, nb_lines * (s + 1) / njr);
            }
            const int64_t ns_lines = ns.rows * ns.lpr;
            cur.row = ns.p;
            cur.stride = ldb_bytes;
            cur.lpr = ns.lpr;
            // This sliver's share of the next A block's lines (slivers njr - a_slivers .. njr - 1).
            const int64_t sj = jr / NR - (njr - a_slivers);
            const int64_t a_lo = sj >= 0 ? an_lines * sj / a_slivers : 0;
            const int64_t a_n = sj >= 0 ? an_lines * (sj + 1) / a_slivers - a_lo : 0;
            cur.lin = an + a_lo * 64;
            const T* cb = ep.col_bias ? ep.col_bias + j0 + jr : nullptr;
            for (int64_t ir = 0, ii = 0; ir < mc; ir += MR, ++ii) {
              cur.wleft = ns_lines * (ii + 1) / nir - ns_lines * ii / nir;
              cur.left = cur.wleft + a_n * (ii + 1) / nir - a_n * ii / nir;
              const int64_t mr = std::min<int64_t>(MR, mc - ir);
              const T* ap = pa_blk + ir * kc;
              T* cp = cwb ? cwb + jr * m + ir * ldw : c + (i0 + ir) * ldc + j0 + jr;
              if (cw && st.last) {
                st.src = cw + jr * m + ir * ldw;
                st.lds = ldw;
              }
              const T* rb = ep.row_bias ? ep.row_bias + i0 + ir : nullptr;
              if (mr == MR && nr == NR) {
                microkernel<T>(kc, ap, bp, cp, ldct, st, rb, cb, cur.left ? &cur : nullptr);
                continue;
              }
              while (cur.left > 0) cur.next();
              if (nr % Bk::L == 0)  // e.g. AVX2's 6-row tile over m = 256: a 4-row tile, not 6
                microkernel_fit<T>(static_cast<int>(mr), static_cast<int>(nr / Bk::L), kc, ap, bp, cp, ldct, st, rb, cb);
              else
                microkernel_edge<T>(kc, ap, bp, cp, ldct, mr, nr, st, rb, cb);
            }
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
