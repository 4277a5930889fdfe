// The deterministic per-channel reduction of NCHW tensors shared by batch_norm.cu and
// channel_sum.cu: over (N, HW) for every channel c, in two stages. Stage 1, block (c, p) sums
// the p-th chunk of the channel's N * HW elements (fixed thread striding, fixed shuffle tree);
// stage 2, one thread per channel adds the chunk partials in chunk order. The chunking depends
// on the sizes only, so results are bitwise reproducible on any GPU. Both stages accumulate in
// float64 (each thread's run, the block tree, the chunk partials' sum), as the CPU statistics
// and column sums do: a float run of thousands of elements per thread, then a float sum of up to
// 1024 partials, drifted with the channel length. A partial is stored as float (one rounding,
// relative to its own magnitude), so the workspace layout is unchanged.
#pragma once
#include <algorithm>

#include "common/common.cuh"

namespace imkern {
namespace cuda {
namespace nn {
namespace channel {

constexpr int64_t kChunk = 8192;    // elements per stage-1 block (32 per thread)
constexpr int64_t kMaxParts = 1024;  // partials per channel

struct Red {
  int64_t n, c, hw, len, parts, chunk;  // len = n * hw
};

inline Red make_red(int64_t n, int64_t c, int64_t hw) {
  Red r{n, c, hw, checked_mul(n, hw), 1, 1};
  checked_mul(r.len, c);
  r.parts = std::min<int64_t>(std::max<int64_t>(ceil_div<int64_t>(r.len, kChunk), 1), kMaxParts);
  r.chunk = std::max<int64_t>(ceil_div<int64_t>(r.len, r.parts), 1);
  if (checked_mul(r.c, r.parts) > INT32_MAX) throw std::overflow_error("imkern CUDA nn: too many channels");
  return r;
}

// Op(c, offset) -> float2 of the element at x[offset] (channel c). Writes ws[(c * parts + p) * 2 + {0, 1}].
template <class Op>
__global__ void channel_partial_kernel(Red r, Op op, float* __restrict__ ws) {
  __shared__ double sh[kThreads / 32];
  const int64_t c = blockIdx.x / r.parts, p = blockIdx.x - c * r.parts;
  const int64_t beg = p * r.chunk, end = min(beg + r.chunk, r.len);
  double a = 0.0, b = 0.0;
  if (r.hw >= 64) {
    // Row by row: contiguous j within a row, no division per element.
    for (int64_t n = beg / r.hw; n * r.hw < end; ++n) {
      const int64_t j0 = max(beg - n * r.hw, int64_t(0)), j1 = min(end - n * r.hw, r.hw);
      const int64_t base = (n * r.c + c) * r.hw;
      for (int64_t j = j0 + threadIdx.x; j < j1; j += kThreads) {
        const float2 v = op(c, base + j);
        a += v.x;
        b += v.y;
      }
    }
  } else {
    for (int64_t e = beg + threadIdx.x; e < end; e += kThreads) {
      const int64_t n = e / r.hw, j = e - n * r.hw;
      const float2 v = op(c, (n * r.c + c) * r.hw + j);
      a += v.x;
      b += v.y;
    }
  }
  a = block_sum<kThreads>(a, sh);
  b = block_sum<kThreads>(b, sh);
  if (threadIdx.x == 0) {
    ws[(c * r.parts + p) * 2] = static_cast<float>(a);
    ws[(c * r.parts + p) * 2 + 1] = static_cast<float>(b);
  }
}

template <class Fin>
__global__ void channel_final_kernel(Red r, const float* __restrict__ ws, Fin fin) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < r.c;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double a = 0.0, b = 0.0;
    for (int64_t p = 0; p < r.parts; ++p) {
      a += ws[(c * r.parts + p) * 2];
      b += ws[(c * r.parts + p) * 2 + 1];
    }
    fin(c, static_cast<float>(a), static_cast<float>(b));
  }
}

template <class Op, class Fin>
void channel_reduce(const Red& r, const Op& op, const Fin& fin, float* ws, cudaStream_t st) {
  channel_partial_kernel<<<static_cast<unsigned>(r.c * r.parts), kThreads, 0, st>>>(r, op, ws);
  IMKERN_CUDA_CHECK_LAUNCH();
  channel_final_kernel<<<grid_for(r.c), kThreads, 0, st>>>(r, ws, fin);
  IMKERN_CUDA_CHECK_LAUNCH();
}

// ---- ops and finals --------------------------------------------------------------------------
template <typename T>
struct ValueOp {
  const T* x;
  __device__ float2 operator()(int64_t, int64_t i) const { return make_float2(to_f(x[i]), 0.f); }
};
template <typename T>
struct StoreSum {
  T* out;
  __device__ void operator()(int64_t c, float a, float) const { out[c] = from_f<T>(a); }
};

}  // namespace channel
}  // namespace nn
}  // namespace cuda
}  // namespace imkern
