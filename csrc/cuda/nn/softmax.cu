// softmax / log_softmax along any axis (torch semantics).
//
// x is viewed as (outer, len, inner). inner == 1: one warp per row (len <= 1024) or one block
// per row (longer rows); inner > 1: one thread per (outer, inner) column, so consecutive
// threads read consecutive addresses. Three passes over a row (max, sum of exp, write), the
// row staying in L1/L2: bytes ~ 2 * sizeof(T) per element from DRAM, 1 exp per element.
// Reductions use fixed shuffle trees (deterministic).
#include "imkern/nn.hpp"
#include "common/common.cuh"

namespace imkern {
namespace cuda {

namespace {


// ---- softmax ----------------------------------------------------------------------------
template <typename T>
__global__ void softmax_warp_kernel(int64_t rows, int64_t len, const T* __restrict__ x, T* __restrict__ y, bool log) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; row < rows; row += warps) {
    const T* xr = x + row * len;
    T* yr = y + row * len;
    float m = -INFINITY;
    for (int64_t i = lane; i < len; i += 32) m = fmaxf(m, to_f(xr[i]));
    m = warp_max(m);
    float s = 0.f;
    for (int64_t i = lane; i < len; i += 32) s += expf(to_f(xr[i]) - m);
    s = warp_sum(s);
    if (log) {
      const float ls = logf(s);  // (x - m) - log s: m + log s would round to ulp(m) first
      for (int64_t i = lane; i < len; i += 32) yr[i] = from_f<T>((to_f(xr[i]) - m) - ls);
    } else {
      const float inv = 1.f / s;
      for (int64_t i = lane; i < len; i += 32) yr[i] = from_f<T>(expf(to_f(xr[i]) - m) * inv);
    }
  }
}

template <typename T>
__global__ void softmax_block_kernel(int64_t rows, int64_t len, const T* __restrict__ x, T* __restrict__ y, bool log) {
  __shared__ float sh[kThreads / 32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * len;
    T* yr = y + row * len;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < len; i += kThreads) m = fmaxf(m, to_f(xr[i]));
    m = block_max<kThreads>(m, sh);
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < len; i += kThreads) s += expf(to_f(xr[i]) - m);
    s = block_sum<kThreads>(s, sh);
    if (log) {
      const float ls = logf(s);  // (x - m) - log s: m + log s would round to ulp(m) first
      for (int64_t i = threadIdx.x; i < len; i += kThreads) yr[i] = from_f<T>((to_f(xr[i]) - m) - ls);
    } else {
      const float inv = 1.f / s;
      for (int64_t i = threadIdx.x; i < len; i += kThreads) yr[i] = from_f<T>(expf(to_f(xr[i]) - m) * inv);
    }
  }
}

template <typename T>
__global__ void softmax_column_kernel(int64_t outer, int64_t len, int64_t inner, const T* __restrict__ x,
                                      T* __restrict__ y, bool log) {
  const int64_t cols = outer * inner;
  for (int64_t col = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; col < cols;
       col += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = col / inner, j = col - o * inner;
    const T* xc = x + o * len * inner + j;
    T* yc = y + o * len * inner + j;
    float m = -INFINITY;
    for (int64_t i = 0; i < len; ++i) m = fmaxf(m, to_f(xc[i * inner]));
    double s = 0.0;  // one thread sums the whole column: float64 keeps it ~1 ulp for any len
    for (int64_t i = 0; i < len; ++i) s += expf(to_f(xc[i * inner]) - m);
    if (log) {
      const float ls = static_cast<float>(::log(s));  // (x - m) - log s, as the row kernels
      for (int64_t i = 0; i < len; ++i) yc[i * inner] = from_f<T>((to_f(xc[i * inner]) - m) - ls);
    } else {
      const float inv = static_cast<float>(1.0 / s);
      for (int64_t i = 0; i < len; ++i) yc[i * inner] = from_f<T>(expf(to_f(xc[i * inner]) - m) * inv);
    }
  }
}

}  // namespace

void softmax_cuda(DType dt, int64_t outer, int64_t len, int64_t inner, const void* x, void* y, bool log,
                  void* stream) {
  if (outer < 0 || len < 0 || inner < 0) throw std::invalid_argument("softmax: negative size");
  checked_mul(checked_mul(outer, len), inner);
  if (outer == 0 || len == 0 || inner == 0) return;
  cudaStream_t st = as_stream(stream);
  dispatch_float(dt, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    if (inner == 1 && len <= 1024) {
      softmax_warp_kernel<T><<<grid_for(checked_mul(outer, 32)), kThreads, 0, st>>>(outer, len, px, py, log);
    } else if (inner == 1) {
      const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(outer, 65535LL * 16));
      softmax_block_kernel<T><<<blocks, kThreads, 0, st>>>(outer, len, px, py, log);
    } else {
      softmax_column_kernel<T><<<grid_for(outer * inner), kThreads, 0, st>>>(outer, len, inner, px, py, log);
    }
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
