// Shared CUDA helpers: error checks (every runtime call and launch), ceil_div, border index.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "imkern/common.hpp"

namespace imkern {
namespace cuda {

inline void check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("imkern CUDA error in ") + what + " (" + file + ":" +
                             std::to_string(line) + "): " + cudaGetErrorString(e));
}
#define IMKERN_CUDA_CHECK(expr) ::imkern::cuda::check((expr), #expr, __FILE__, __LINE__)
// After every <<<>>> launch: launch-configuration errors surface here.
#define IMKERN_CUDA_CHECK_LAUNCH() ::imkern::cuda::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

template <typename T>
__host__ __device__ inline T ceil_div(T a, T b) {
  return (a + b - 1) / b;
}

inline cudaStream_t as_stream(void* s) { return reinterpret_cast<cudaStream_t>(s); }

// The border rule of common.hpp, callable from device code.
__host__ __device__ inline int64_t border_index_dev(int64_t p, int64_t len, Border b) {
  return ::imkern::border_index(p, len, b);
}

}  // namespace cuda
}  // namespace imkern
