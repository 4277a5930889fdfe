// Helpers shared by the CNN kernels (csrc/cuda/{gemm,conv2d,pool2d,activations,softmax,
// batch_norm,dropout}.cu): float <-> storage conversions, dtype dispatch, block reductions
// in a fixed order (determinism), launch-size checks.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/common.cuh"
#include "imkern/common.hpp"

namespace imkern {
namespace cuda {
namespace nn {

// ---- storage <-> float (all arithmetic is float32) -----------------------------------------
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) for the storage type of dt (float32, float16, bfloat16).
template <typename F>
void dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: f(TypeTag<float>{}); return;
    case DType::f16: f(TypeTag<__half>{}); return;
    case DType::bf16: f(TypeTag<__nv_bfloat16>{}); return;
    default:
      throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(dt) +
                                  " is not supported on CUDA; expected float32, float16 or bfloat16");
  }
}

// ---- launch geometry ---------------------------------------------------------------------
constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements (n > 0): enough to fill any current GPU,
// never more than gridDim.x allows.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t b = ceil_div<int64_t>(n, threads);
  const int64_t cap = 65535LL * 64;  // plenty of blocks; the loop covers the rest
  if (b > cap) b = cap;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

inline void require_int32(int64_t v, const char* what) {
  if (v < 0 || v > static_cast<int64_t>(INT32_MAX))
    throw std::overflow_error(std::string("imkern CUDA nn: ") + what + " exceeds the kernel's 32-bit index range");
}

// ---- fixed-order block reduction ------------------------------------------------------------
// Sum of one value per thread of a block of kThreads threads; the tree shape depends on the
// block size only, so the result is bitwise reproducible. Every thread gets the total.
// `sh` must hold kThreads / 32 floats; callers reusing it must __syncthreads() in between.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <int NT>
__device__ __forceinline__ float block_sum(float v, float* sh) {
  static_assert(NT % 32 == 0 && NT <= 1024, "block size");
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float t = 0.f;
  if (w == 0) {
    t = lane < NT / 32 ? sh[lane] : 0.f;
    t = warp_sum(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  t = sh[0];
  __syncthreads();  // sh may be reused right after
  return t;
}

template <int NT>
__device__ __forceinline__ float block_max(float v, float* sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  v = warp_max(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  if (w == 0) {
    float t = lane < NT / 32 ? sh[lane] : -INFINITY;
    t = warp_max(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  const float t = sh[0];
  __syncthreads();
  return t;
}

// Workspace from the stream-ordered allocator, freed on the stream when the owner leaves scope
// (the kernels using it are enqueued before, so the free waits for them).
struct StreamBuffer {
  void* p = nullptr;
  cudaStream_t s = nullptr;
  StreamBuffer(size_t bytes, cudaStream_t st) : s(st) {
    if (bytes) IMKERN_CUDA_CHECK(cudaMallocAsync(&p, bytes, st));
  }
  ~StreamBuffer() {
    if (p) cudaFreeAsync(p, s);  // never throws from a destructor; errors surface on the next check
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

}  // namespace nn
}  // namespace cuda
}  // namespace imkern
