// pad on CUDA: dst[b, y, x, c] = src[b, rows[y], cols[x], c], or cval[c] where rows[y] or
// cols[x] is -1 (the border tables of transform.pad, built by the Python layer and shared with
// the CPU kernel).
//
// One thread per output element in (b, y, x, c) order, so a warp's stores are contiguous and
// its loads come from one or two runs of a source row. Elements move as unsigned integers of
// their size (1, 2, 4 or 8 bytes): any dtype. Bytes per output element: 2 x elem_bytes.
#include <cstdint>
#include <stdexcept>

#include "common/common.cuh"
#include "imkern/transform.hpp"

namespace imkern {
namespace cuda {

namespace {
template <typename T>
__global__ void __launch_bounds__(kThreads)
    pad_kernel(const T* __restrict__ src, ImageDesc s, T* __restrict__ dst, ImageDesc d,
               const int64_t* __restrict__ rows, const int64_t* __restrict__ cols, const T* __restrict__ cval,
               int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % d.c;
    int64_t r = i / d.c;
    const int64_t x = r % d.w;
    r /= d.w;
    const int64_t y = r % d.h, b = r / d.h;
    const int64_t sy = rows[y], sx = cols[x];
    dst[b * d.batch_stride + y * d.row_stride + x * d.c + c] =
        (sy < 0 || sx < 0) ? cval[c] : src[b * s.batch_stride + sy * s.row_stride + sx * s.c + c];
  }
}

template <typename T>
void launch_pad(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const int64_t* rows,
                const int64_t* cols, const void* cval, void* stream) {
  const int64_t total = d.n * d.h * d.w * d.c;
  if (total == 0) return;
  pad_kernel<T><<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
      static_cast<const T*>(src), s, static_cast<T*>(dst), d, rows, cols, static_cast<const T*>(cval), total);
  IMKERN_CUDA_CHECK_LAUNCH();
}
}  // namespace

void pad_cuda(int elem_bytes, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const int64_t* rows,
              const int64_t* cols, const void* cval, void* stream) {
  switch (elem_bytes) {
    case 1: return launch_pad<uint8_t>(src, s, dst, d, rows, cols, cval, stream);
    case 2: return launch_pad<uint16_t>(src, s, dst, d, rows, cols, cval, stream);
    case 4: return launch_pad<uint32_t>(src, s, dst, d, rows, cols, cval, stream);
    case 8: return launch_pad<uint64_t>(src, s, dst, d, rows, cols, cval, stream);
    default: throw std::invalid_argument("pad: element size must be 1, 2, 4 or 8 bytes");
  }
}

}  // namespace cuda
}  // namespace imkern
