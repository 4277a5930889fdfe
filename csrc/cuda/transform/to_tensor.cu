// to_tensor on CUDA: crop + horizontal flip + scale/normalize + HWC -> CHW in one pass.
//
// One thread per output element in (n, c, y, x) order, so a warp's stores are contiguous
// (the loads stride by C within a source row, all from the same few cache lines).
// scale/shift come from a small device array of the output type. Bytes per output element:
// sizeof(in) read + sizeof(out) written; 1 FMA. Variants: in u8/u16/f32/f64, out f32/f64.
#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "common/common.cuh"
#include "imkern/transform.hpp"

namespace imkern {
namespace cuda {

namespace {
constexpr int kThreads = 256;

template <typename TI, typename A>
__global__ void __launch_bounds__(kThreads)
    to_tensor_kernel(const TI* __restrict__ src, ImageDesc s, int64_t y0, int64_t x0, bool flip, A* __restrict__ dst,
                     TensorDesc d, const A* __restrict__ params, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % d.w;
    int64_t r = i / d.w;
    const int64_t y = r % d.h;
    r /= d.h;
    const int64_t c = r % d.c, b = r / d.c;
    const int64_t sx = x0 + (flip ? d.w - 1 - x : x);
    const TI v = src[b * s.batch_stride + (y0 + y) * s.row_stride + sx * s.c + c];
    dst[b * d.batch_stride + c * d.plane_stride + y * d.row_stride + x] =
        static_cast<A>(v) * params[c] + params[d.c + c];
  }
}

template <typename TI, typename A>
void launch(const void* src, const ImageDesc& s, int64_t y0, int64_t x0, bool flip, void* dst, const TensorDesc& d,
            const void* params, void* stream) {
  const int64_t total = d.n * d.c * d.h * d.w;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>(ceil_div<int64_t>(total, kThreads), int64_t(1) << 20);
  to_tensor_kernel<TI, A><<<static_cast<unsigned>(blocks), kThreads, 0, as_stream(stream)>>>(
      static_cast<const TI*>(src), s, y0, x0, flip, static_cast<A*>(dst), d, static_cast<const A*>(params), total);
  IMKERN_CUDA_CHECK_LAUNCH();
}

template <typename A>
void dispatch_in(DType in_dtype, const void* src, const ImageDesc& s, int64_t y0, int64_t x0, bool flip, void* dst,
                 const TensorDesc& d, const void* params, void* stream) {
  switch (in_dtype) {
    case DType::u8: return launch<uint8_t, A>(src, s, y0, x0, flip, dst, d, params, stream);
    case DType::u16: return launch<uint16_t, A>(src, s, y0, x0, flip, dst, d, params, stream);
    case DType::f32: return launch<float, A>(src, s, y0, x0, flip, dst, d, params, stream);
    case DType::f64: return launch<double, A>(src, s, y0, x0, flip, dst, d, params, stream);
    default: throw std::invalid_argument("to_tensor: unsupported input dtype on CUDA");
  }
}
}  // namespace

void to_tensor_cuda(DType in_dtype, DType out_dtype, const void* src, const ImageDesc& s, int64_t y0, int64_t x0,
                    bool flip, void* dst, const TensorDesc& d, const void* params, void* stream) {
  if (out_dtype == DType::f32) return dispatch_in<float>(in_dtype, src, s, y0, x0, flip, dst, d, params, stream);
  if (out_dtype == DType::f64) return dispatch_in<double>(in_dtype, src, s, y0, x0, flip, dst, d, params, stream);
  throw std::invalid_argument("to_tensor: output dtype must be float32 or float64");
}

}  // namespace cuda
}  // namespace imkern
