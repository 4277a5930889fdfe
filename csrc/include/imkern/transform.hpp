// The transform family, both devices: geometric transforms on batches of images (N, H, W, C)
// (resize, warp_affine, warp_perspective) and to_tensor (below).
// See common.hpp for ImageDesc and Border. Both devices take the same host-built tables, so
// uint8 results are identical on the CPU and on CUDA.
#pragma once
#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

// The coefficient table of one resize axis: output i reads the k source indices
// start[i] .. start[i] + k - 1 (all inside the image, 0 <= start[i] <= src - k) with weights
// w[i * k + j]. The weight type follows the image dtype: int32 fixed point scaled by 2^bits
// (uint8), float (uint16, float32), double (float64).
struct ResizeTable {
  int64_t n = 0;
  int k = 0;
  const int64_t* start = nullptr;
  const void* w = nullptr;
  int bits = 0;
};

// Warp modes.
enum class Interp : int { nearest = 0, bilinear = 1, bicubic = 2 };

// OpenCV's fixed-point remap: source coordinates with INTER_BITS = 5 fractional bits.
constexpr int kInterBits = 5;
constexpr int kInterTab = 1 << kInterBits;

// An affine map in OpenCV's fixed point (AB_BITS = 10): for output (x, y) the source
// coordinate times 1024 is (row_x[y] + col_x[x], row_y[y] + col_y[x]) (rounding offset
// included), then shifted right by `shift` (5 for bilinear/bicubic -> 5 fractional bits,
// 10 for nearest -> integers). Built on the host so both devices use the same integers.
struct AffineMap {
  const int32_t* col_x = nullptr;  // [w_out]
  const int32_t* col_y = nullptr;  // [w_out]
  const int32_t* row_x = nullptr;  // [h_out]
  const int32_t* row_y = nullptr;  // [h_out]
  int shift = 5;
};

// A warp: output pixel (x, y) samples the source at the point the output->source map m
// gives. Two coordinate schemes, as OpenCV (>= 4.11) uses them:
//  - fixed (OpenCV's remap tables): coordinates rounded to 1/32 pixel, affine from the
//    integer terms of `map`, perspective per pixel in float64; weights from the 32 x 32 table
//    `wtab` (int32 scaled by 2^15 for uint8, float otherwise; K x K per entry);
//  - float (OpenCV's warp kernels for 8U/16U/32F): coordinates in float32,
//    sx = fma(float(m0), x, float(m1 * y + m2)) (perspective: divided by the same for the
//    third row), bilinear as two float lerps, bicubic with a = -0.75 weights, no table.
// Every float operation of the float scheme is spelled out (fma or separately rounded), so
// all ISA levels and the CUDA kernel give the same bits.
struct WarpSpec {
  Interp interp = Interp::bilinear;
  bool perspective = false;
  bool fixed = true;
  AffineMap map;            // fixed affine only
  double m[9] = {0};        // output->source matrix (row-major; affine uses the first 6)
  const void* wtab = nullptr;  // fixed bilinear/bicubic only
  Border border = Border::constant;
  double cval = 0;
};

IMKERN_DECLARE_FOR_EACH_ISA(
  // Separable resize with the tables of both axes; uint8 sums of the vertical pass are
  // shifted right (rounded) by `shift` before the horizontal pass, the result by
  // y.bits + x.bits - shift (rounded), then saturated.
  void resize(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
              const ResizeTable& y, const ResizeTable& x, int shift);
  // Nearest neighbour: output (y, x) = source (sy[y], sx[x]).
  void resize_nearest(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      const int64_t* sy, const int64_t* sx);
  // Affine or perspective warp (see WarpSpec).
  void warp(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const WarpSpec& w);
)

// ---- CUDA launchers of the geometric transforms (csrc/cuda/transform/resize.cu, warp.cu): the
// caller's stream as void*, device pointers, nothing launched for empty inputs. Tables are the
// host-built ones above, copied to the device by the caller.
namespace cuda {

void resize_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                 const ResizeTable& y, const ResizeTable& x, int shift, void* stream);
void resize_nearest_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                         const int64_t* sy, const int64_t* sx, void* stream);
void warp_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const WarpSpec& w,
               void* stream);

}  // namespace cuda

// ---- to_tensor (csrc/cpu/transform/to_tensor.cpp, csrc/cuda/transform/to_tensor.cu) ------------
// to_tensor: images (N, H, W, C) of any image dtype -> a normalized float tensor (N, C, h, w),
// in one pass (crop, horizontal flip, scale, per-channel normalization, HWC -> CHW), as
// DALI's crop_mirror_normalize.
//
//   out[n, c, y, x] = src[n, y0 + y, x0 + (flip ? w - 1 - x : x), c] * scale[c] + shift[c]
//
// The Python layer folds the integer range (1/255, 1/65535), mean and std into scale and
// shift: scale = 1 / (range * std), shift = -mean / std. Arithmetic in the output's type.
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

// ---- flips and quarter turns (pure data movement) --------------------------------------------
namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  // dst = src mirrored left-right (flip_x) and/or upside down (flip_y), image by image. Pixels
  // are `pixel_bytes` (elem_bytes * channels) and packed in a row; strides of s and d are in
  // elements of elem_bytes. d has s's shape.
  void flip(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int elem_bytes, bool flip_x,
            bool flip_y);
  // dst = src turned k quarter turns counter-clockwise (k = 1 or 3; numpy.rot90 on the H, W
  // axes), image by image: d.h = s.w, d.w = s.h.
  void rotate90(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int elem_bytes, int k);
  // dst (d.h x d.w) = src padded: output row y is source row rows[y] and output column x is
  // source column cols[x] (-1: the pixel `cval`, pixel_bytes bytes), image by image. The
  // columns [left, left + s.w) must be the source row in order (one memcpy).
  void pad(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int elem_bytes, const int64_t* rows,
           const int64_t* cols, int64_t left, const void* cval);
)
namespace cuda {
// pad on CUDA (csrc/cuda/transform/basic.cu): the CPU pad's contract with device pointers (the
// tables and the cval pixel on the device) and any column table.
void pad_cuda(int elem_bytes, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const int64_t* rows,
              const int64_t* cols, const void* cval, void* stream);
}  // namespace cuda
}  // namespace imkern
