// Dropout with the counter-based hash mask of docs/design.md, bit-identical to the CPU kernel
// and the NumPy reference: u(i) = (splitmix64(seed + i * 0x9E3779B97F4A7C15) >> 40) * 2^-24,
// element i kept when u(i) >= p and scaled by 1 / (1 - p). No state, so any thread layout
// (and any device) gives the same mask. Bytes: 2 * sizeof(T) per element; ~12 integer ops.
#include "imkern/nn.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {


// keep iff (h >> 40) * 2^-24 >= p  <=>  (h >> 40) >= threshold, threshold = ceil(p * 2^24)
// computed on the host in double (exact: h >> 40 < 2^24 is an integer).
template <typename T>
__global__ void dropout_kernel(int64_t n, const T* __restrict__ x, T* __restrict__ y, uint64_t seed,
                               uint64_t threshold, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t h = splitmix64<uint64_t>(seed + static_cast<uint64_t>(i) * kSplitmixGamma) >> 40;
    y[i] = h >= threshold ? from_f<T>(to_f(x[i]) * scale) : from_f<T>(0.f);
  }
}

}  // namespace

void dropout_cuda(DType dt, int64_t n, const void* x, void* y, double p, uint64_t seed, void* stream) {
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("dropout: p must be in [0, 1]");
  if (n < 0) throw std::invalid_argument("dropout: negative size");
  if (n == 0) return;
  // u >= p with u = h * 2^-24 exactly  <=>  h >= ceil(p * 2^24) (p * 2^24 is exact in double).
  const uint64_t threshold = static_cast<uint64_t>(std::ceil(p * 16777216.0));
  const float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.f;
  dispatch_float(dt, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dropout_kernel<T><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(
        n, static_cast<const T*>(x), static_cast<T*>(y), seed, threshold, scale);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
