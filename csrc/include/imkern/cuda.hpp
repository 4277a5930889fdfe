// imkern's CUDA launchers. Every launcher takes the caller's stream (a cudaStream_t passed as
// void* so this header needs no CUDA headers), enqueues its work there and returns without
// synchronizing. Pointers are device pointers. Errors throw std::runtime_error (CUDA
// failures) or std::invalid_argument (bad arguments); nothing is launched for empty inputs.
#pragma once
#include <string>
#include <vector>

#include "imkern/common.hpp"

namespace imkern {
namespace cuda {

struct DeviceInfo {
  int id;
  std::string name;
  int major, minor;
  long long memory_bytes;
};
// The GPUs the runtime sees; empty (never an error) without a driver or device.
std::vector<DeviceInfo> devices();

// ---- linear filters (csrc/cuda/<op>.cu); weights are device arrays of the accumulation type:
// float for u8/u16/f16/f32 images, double for f64 images.
void sep_filter_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                     const void* ky, int kh, int ay, const void* kx, int kw, int ax, Border border,
                     double cval, void* stream);
void correlate_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const void* k, int kh, int kw, int ay, int ax, Border border, double cval, void* stream);
void box_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw,
              int ay, int ax, bool normalize, Border border, double cval, void* stream);

// ---- rank filters (csrc/cuda/filters/median.cu, morphology.cu)
void median_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k,
                 Border border, double cval, void* stream);

}  // namespace cuda
}  // namespace imkern
