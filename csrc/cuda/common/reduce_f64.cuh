// Fixed-order block sums in float64, for the long reductions (pooling over big windows,
// per-channel statistics and bias gradients, loss sums): they accumulate in double, as their
// CPU kernels do. The tree is common.cuh's block_sum (warp butterfly, then the warp sums in
// warp 0), so the result depends on the block size only: bitwise reproducible.
#pragma once

#include "common/common.cuh"

namespace imkern {
namespace cuda {

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Every thread gets the total. `sh` must hold NT / 32 doubles; callers reusing it must
// __syncthreads() in between.
template <int NT>
__device__ __forceinline__ double block_sum(double v, double* sh) {
  static_assert(NT % 32 == 0 && NT <= 1024, "block size");
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  double t = 0.0;
  if (w == 0) {
    t = lane < NT / 32 ? sh[lane] : 0.0;
    t = warp_sum(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  t = sh[0];
  __syncthreads();  // sh may be reused right after
  return t;
}

}  // namespace cuda
}  // namespace imkern
