// Dropout with a counter-based mask (compiled per ISA).
//
// Element i is kept when u(i) = (splitmix64(seed + i * 0x9E3779B97F4A7C15) >> 40) * 2^-24 >= p
// (docs/design.md; identical on CPU, CUDA and in the NumPy reference), and kept values are
// scaled by 1 / (1 - p). Because u(i) is a multiple of 2^-24, u >= p is tested exactly in
// integers as (hash >> 40) >= ceil(p * 2^24). No state: any chunking, any thread count, and
// the backward pass (the same mask on grad_output) reproduce the mask from (seed, i).
// Bytes/element: 2 * sizeof(T); integer ops/element: ~12 (2 64-bit multiplies), on native
// 64-bit lanes (AVX-512DQ has a 64-bit multiply; AVX2 and the baseline emulate it).
// Variants: float32, float64.
#include <cmath>
#include <stdexcept>

#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "common/vmath.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

template <typename T>
void dropout_impl(const T* x, T* y, int64_t n, uint64_t seed, double p) {
  if (p >= 1.0) {
    parallel_for(0, n, 65536, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) y[i] = x[i] * T(0);  // NaN stays NaN, as torch
    });
    return;
  }
  const uint64_t thr = static_cast<uint64_t>(std::ceil(p * 16777216.0));
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  parallel_for(0, n, 65536, [&](int64_t a, int64_t b) {
    // LD elements per step: the hash runs on native 64-bit lanes, the data on as many lanes.
    using UL = simd::vec_t<uint64_t>;
    constexpr int LD = simd::Vec<uint64_t>::lanes;
    using TV = vm::vecn_t<T, LD>;
    using MV = vm::vecn_t<typename vm::IntOf<T>::type, LD>;
    UL lane{};
    for (int k = 0; k < LD; ++k) lane[k] = static_cast<uint64_t>(k);
    int64_t i = a;
    for (; i + LD <= b; i += LD) {
      const UL z = splitmix64<UL>(seed + (lane + static_cast<uint64_t>(i)) * kSplitmixGamma);
      const MV keep = __builtin_convertvector((z >> 40) >= thr, MV);
      TV xv;
      std::memcpy(&xv, x + i, sizeof(xv));
      const TV yv = xv * (keep ? TV{} + scale : TV{});  // x * 0 as torch (NaN stays NaN)
      std::memcpy(y + i, &yv, sizeof(yv));
    }
    for (; i < b; ++i) {
      const uint64_t z = splitmix64<uint64_t>(seed + static_cast<uint64_t>(i) * kSplitmixGamma);
      y[i] = x[i] * ((z >> 40) >= thr ? scale : T(0));
    }
  });
}

}  // namespace

void dropout(DType dtype, const void* x, void* y, int64_t n, uint64_t seed, double p) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    dropout_impl(static_cast<const T*>(x), static_cast<T*>(y), n, seed, p);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
