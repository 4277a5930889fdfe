// imkern's CUDA launchers of the geometric transforms (see cuda.hpp for the conventions:
// the caller's stream as void*, device pointers, nothing launched for empty inputs). Tables
// are the host-built ones of transform.hpp, copied to the device by the caller.
#pragma once
#include "imkern/common.hpp"
#include "imkern/transform.hpp"

namespace imkern {
namespace cuda {

void resize_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                 const ResizeTable& y, const ResizeTable& x, int shift, void* stream);
void resize_nearest_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                         const int64_t* sy, const int64_t* sx, void* stream);
void warp_affine_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      const AffineMap& map, Interp interp, const void* wtab, Border border, double cval,
                      void* stream);
void warp_perspective_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                           const double* m, Interp interp, const void* wtab, Border border, double cval,
                           void* stream);

}  // namespace cuda
}  // namespace imkern
