// The CUDA driver of every color conversion: one thread per pixel (grid-stride loop, 64-bit
// indices), calling the same functor of imkern/color_pixel.hpp as the CPU kernels, so integer
// results are identical on both devices. Consecutive threads take consecutive pixels of a
// row, so loads and stores of a warp cover a contiguous span.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "common/common.cuh"
#include "imkern/color.hpp"
#include "imkern/color_pixel.hpp"

namespace imkern {
namespace cuda {
namespace colork {

constexpr int kThreads = 256;

template <typename T, int CI, int CO, typename F>
__global__ void __launch_bounds__(kThreads)
    map_pixels_kernel(const T* __restrict__ src, ImageDesc s, T* __restrict__ dst, ImageDesc d, F f, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % s.w, r = i / s.w;
    const int64_t y = r % s.h, b = r / s.h;
    T in[CI], out[CO];
    const T* p = src + b * s.batch_stride + y * s.row_stride + x * CI;
#pragma unroll
    for (int c = 0; c < CI; ++c) in[c] = p[c];
    f(in, out);
    T* q = dst + b * d.batch_stride + y * d.row_stride + x * CO;
#pragma unroll
    for (int c = 0; c < CO; ++c) q[c] = out[c];
  }
}

template <typename T, int CI, int CO, typename F>
void map_pixels(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const F& f, void* stream) {
  const int64_t total = s.n * s.h * s.w;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>(ceil_div<int64_t>(total, kThreads), int64_t(1) << 20);
  map_pixels_kernel<T, CI, CO, F><<<static_cast<unsigned>(blocks), kThreads, 0, as_stream(stream)>>>(
      static_cast<const T*>(src), s, static_cast<T*>(dst), d, f, total);
  IMKERN_CUDA_CHECK_LAUNCH();
}

template <typename Fn>
void visit_dtype(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::u8: fn(uint8_t{}); return;
    case DType::u16: fn(uint16_t{}); return;
    case DType::f32: fn(float{}); return;
    case DType::f64: fn(double{}); return;
    default: throw std::invalid_argument("color: unsupported dtype on CUDA");
  }
}

}  // namespace colork
}  // namespace cuda
}  // namespace imkern
