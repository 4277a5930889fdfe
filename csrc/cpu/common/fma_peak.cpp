// The machine's FMA peak for this ISA, measured: independent chains of register-only
// multiply-adds on simd::vec_t<float> (fused where the ISA has FMA, a multiply and an add on
// the x86-64-v2 baseline), enough chains to cover the FMA latency on every port (16 with 32
// vector registers, else 10). 2 FLOPs per lane per multiply-add. For `python -m imkern bench`,
// which runs it on every thread at once and reports compute-bound cases as a share of it.
#include <chrono>
#include <cstdint>

#include "imkern/dispatch.hpp"
#include "common/simd.hpp"

namespace imkern {
namespace IMKERN_ISA {

// The chains are named locals, not an array: GCC kept an array of accumulators on the stack
// (a load and a store around every multiply-add), which measured half the real peak on Zen 4.
#define IMKERN_FMA_CHAINS10(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)
#if defined(__AVX512F__)
#define IMKERN_FMA_CHAINS(X) IMKERN_FMA_CHAINS10(X) X(10) X(11) X(12) X(13) X(14) X(15)
#else
#define IMKERN_FMA_CHAINS(X) IMKERN_FMA_CHAINS10(X)
#endif

double fma_peak_probe(double seconds) {
  using V = simd::vec_t<float>;
  constexpr int L = simd::Vec<float>::lanes;
  int n_chains = 0;
#define IMKERN_FMA_INIT(i) \
  V acc##i = simd::splat(1.0f + 0.001f * static_cast<float>(i)); \
  ++n_chains;
  IMKERN_FMA_CHAINS(IMKERN_FMA_INIT)
#undef IMKERN_FMA_INIT
  const V b = simd::splat(0.999999f), c = simd::splat(1e-6f);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  int64_t steps = 0;
  double elapsed = 0;
  do {
    for (int r = 0; r < 4096; ++r) {
#define IMKERN_FMA_STEP(i) acc##i = acc##i * b + c;
      IMKERN_FMA_CHAINS(IMKERN_FMA_STEP)
#undef IMKERN_FMA_STEP
      // Keep every chain in a register and every step computed (no hoisting, no folding).
#define IMKERN_FMA_KEEP(i) __asm__ volatile("" : "+v"(acc##i));
      IMKERN_FMA_CHAINS(IMKERN_FMA_KEEP)
#undef IMKERN_FMA_KEEP
    }
    steps += 4096;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds);
  float sink = 0;
#define IMKERN_FMA_SINK(i) sink += acc##i[0];
  IMKERN_FMA_CHAINS(IMKERN_FMA_SINK)
#undef IMKERN_FMA_SINK
  __asm__ volatile("" : : "v"(sink));
  return 2.0 * L * n_chains * static_cast<double>(steps) / elapsed;
}

#undef IMKERN_FMA_CHAINS
#undef IMKERN_FMA_CHAINS10

}  // namespace IMKERN_ISA
}  // namespace imkern
