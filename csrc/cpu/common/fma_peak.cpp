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

double fma_peak_probe(double seconds) {
  using V = simd::vec_t<float>;
  constexpr int L = simd::Vec<float>::lanes;
#if defined(__AVX512F__)
  constexpr int N = 16;
#else
  constexpr int N = 10;
#endif
  V acc[N];
  for (int i = 0; i < N; ++i) acc[i] = simd::splat(1.0f + 0.001f * static_cast<float>(i));
  const V b = simd::splat(0.999999f), c = simd::splat(1e-6f);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  int64_t steps = 0;
  double elapsed = 0;
  do {
    for (int r = 0; r < 4096; ++r) {
#pragma GCC unroll 16
      for (int i = 0; i < N; ++i) acc[i] = acc[i] * b + c;
      // Keep the chains in registers and every step computed (no hoisting, no folding).
#pragma GCC unroll 16
      for (int i = 0; i < N; ++i) __asm__ volatile("" : "+v"(acc[i]));
    }
    steps += 4096;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds);
  float sink = 0;
  for (int i = 0; i < N; ++i) sink += acc[i][0];
  __asm__ volatile("" : : "v"(sink));
  return 2.0 * L * N * static_cast<double>(steps) / elapsed;
}

}  // namespace IMKERN_ISA
}  // namespace imkern
