// Linear filters on batches of images (N, H, W, C); see common.hpp for ImageDesc and Border.
//
// Output row y, column x, channel c of every op:  sum_{i,j} k[i][j] * src(y + i - ay, x + j - ax, c)
// with out-of-image coordinates resolved by `border` (cval for Border::constant).
// Accumulation is float32 for uint8/uint16/float32 data and float64 for float64 data.
// Integer outputs are rounded to nearest (ties to even) and saturated.
// out_dtype (the dst's dtype) is dtype, float32 or float64 (cv2's ddepth): the results are
// written straight into it; the accumulation is float64 when either dtype is float64.
// src and dst must not overlap (the Python layer guarantees it).
#pragma once
#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  // Separable filter: ky (kh taps, anchor ay) down the columns, kx (kw taps, anchor ax) along rows.
  void sep_filter(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                  const double* ky, int kh, int ay, const double* kx, int kw, int ax,
                  Border border, double cval);
  // Dense 2-D correlation with a kh x kw kernel (row-major), anchor (ay, ax).
  void correlate(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                 const double* k, int kh, int kw, int ay, int ax, Border border, double cval);
  // Box sum (normalize=false) or mean over a kh x kw window: O(1) in the size (running sums for
  // integers, block prefix/suffix sums for floats, so non-finite values stay in their windows).
  void box(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
           int kh, int kw, int ay, int ax, bool normalize, Border border, double cval);
)

// ---- CUDA (csrc/cuda/filters/<op>.cu): device pointers, the caller's stream as void*, nothing
// launched for empty images; CUDA failures -> std::runtime_error, bad arguments ->
// std::invalid_argument.
namespace cuda {
// ---- linear filters (csrc/cuda/<op>.cu); out_dtype is dtype, float32 or float64; weights
// are device arrays of the accumulation type: double when the image or the output is
// float64, else float.
void sep_filter_cuda(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                     const void* ky, int kh, int ay, const void* kx, int kw, int ax, Border border,
                     double cval, void* stream);
void correlate_cuda(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                    const void* k, int kh, int kw, int ay, int ax, Border border, double cval, void* stream);
void box_cuda(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d, int kh, int kw,
              int ay, int ax, bool normalize, Border border, double cval, void* stream);

// ---- rank filters (csrc/cuda/filters/median.cu, morphology.cu, bilateral.cu)
void median_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k,
                 Border border, double cval, void* stream);
// fp: host footprint (fh x fw, row-major 0/1), copied to the device by the launcher.
void morphology_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                     const uint8_t* fp, int fh, int fw, int ay, int ax, bool dilate, Border border, double cval,
                     void* stream);
void bilateral_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int radius,
                    double sigma_color, double sigma_space, Border border, void* stream);

}  // namespace cuda
}  // namespace imkern

// Rank filters (csrc/cpu/filters/median.cpp, morphology.cpp). Values are compared exactly;
// floats order NaN above +inf.
namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  // Median of each k x k window (k odd, centered); out-of-image pixels by `border` (cval
  // converted to the dtype).
  void median(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k,
              Border border, double cval);
  // Grey erosion (dilate=false: min) or dilation (max) over the nonzero entries of the fh x fw
  // footprint fp (row-major 0/1), anchor (ay, ax), not mirrored: out(y, x) = op of
  // src(y + i - ay, x + j - ax). Floats propagate NaN.
  void morphology(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                  const uint8_t* fp, int fh, int fw, int ay, int ax, bool dilate, Border border, double cval);
  // Bilateral filter as cv2.bilateralFilter (window radius `radius`, circular), uint8 or
  // float32 with 1 or 3 channels; sigmas positive.
  void bilateral(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int radius,
                 double sigma_color, double sigma_space, Border border);
)
}  // namespace imkern
