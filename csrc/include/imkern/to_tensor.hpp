// to_tensor: images (N, H, W, C) of any image dtype -> a normalized float tensor (N, C, h, w),
// in one pass (crop, horizontal flip, scale, per-channel normalization, HWC -> CHW), as
// DALI's crop_mirror_normalize.
//
//   out[n, c, y, x] = src[n, y0 + y, x0 + (flip ? w - 1 - x : x), c] * scale[c] + shift[c]
//
// The Python layer folds the integer range (1/255, 1/65535), mean and std into scale and
// shift: scale = 1 / (range * std), shift = -mean / std. Arithmetic in the output's type.
#pragma once
#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

// The output tensor: x is contiguous; batch, plane and row strides in elements.
struct TensorDesc {
  int64_t n = 1, c = 1, h = 0, w = 0;
  int64_t batch_stride = 0, plane_stride = 0, row_stride = 0;
};

IMKERN_DECLARE_FOR_EACH_ISA(
  // in_dtype: u8, u16, f32, f64; out_dtype: f32, f64. src covers the whole image; the crop
  // (y0, x0, d.h, d.w) lies inside it. scale and shift hold d.c values each.
  void to_tensor(DType in_dtype, DType out_dtype, const void* src, const ImageDesc& s, int64_t y0, int64_t x0,
                 bool flip, void* dst, const TensorDesc& d, const double* scale, const double* shift);
)

namespace cuda {
// The same on the caller's stream; `params` is a device array of 2 * d.c values of the output
// type (scale[0..C), shift[0..C)).
void to_tensor_cuda(DType in_dtype, DType out_dtype, const void* src, const ImageDesc& s, int64_t y0, int64_t x0,
                    bool flip, void* dst, const TensorDesc& d, const void* params, void* stream);
}  // namespace cuda

}  // namespace imkern
