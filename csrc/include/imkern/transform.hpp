// Geometric transforms on batches of images (N, H, W, C): resize, warp_affine, warp_perspective.
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

IMKERN_DECLARE_FOR_EACH_ISA(
  // Separable resize with the tables of both axes; uint8 sums of the vertical pass are
  // shifted right (rounded) by `shift` before the horizontal pass, the result by
  // y.bits + x.bits - shift (rounded), then saturated.
  void resize(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
              const ResizeTable& y, const ResizeTable& x, int shift);
  // Nearest neighbour: output (y, x) = source (sy[y], sx[x]).
  void resize_nearest(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      const int64_t* sy, const int64_t* sx);
  // Affine warp with OpenCV's fixed-point coordinates. wtab: kInterTab^2 entries of ksize^2
  // weights (ksize 2 bilinear, 4 bicubic), int16 scaled by 2^15 for uint8 (int32 storage),
  // float for the other dtypes (double for float64).
  void warp_affine(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                   const AffineMap& map, Interp interp, const void* wtab, Border border, double cval);
  // Perspective warp: the 3x3 matrix maps output to source (already inverted), coordinates
  // computed per pixel in float64 as OpenCV does, then the same fixed-point remap.
  void warp_perspective(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                        const double* m, Interp interp, const void* wtab, Border border, double cval);
)

}  // namespace imkern
