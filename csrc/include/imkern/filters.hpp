// Linear filters on batches of images (N, H, W, C); see common.hpp for ImageDesc and Border.
//
// Output row y, column x, channel c of every op:  sum_{i,j} k[i][j] * src(y + i - ay, x + j - ax, c)
// with out-of-image coordinates resolved by `border` (cval for Border::constant).
// Accumulation is float32 for uint8/uint16/float32 data and float64 for float64 data.
// Integer outputs are rounded to nearest (ties to even) and saturated.
// src and dst must not overlap (the Python layer guarantees it).
#pragma once
#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  // Separable filter: ky (kh taps, anchor ay) down the columns, kx (kw taps, anchor ax) along rows.
  void sep_filter(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                  const double* ky, int kh, int ay, const double* kx, int kw, int ax,
                  Border border, double cval);
  // Dense 2-D correlation with a kh x kw kernel (row-major), anchor (ay, ax).
  void correlate(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                 const double* k, int kh, int kw, int ay, int ax, Border border, double cval);
  // Box sum (normalize=false) or mean over a kh x kw window by running sums: O(1) in the size.
  void box(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
           int kh, int kw, int ay, int ax, bool normalize, Border border, double cval);
)
}  // namespace imkern

// Rank filters (csrc/cpu/filters/median.cpp, morphology.cpp). Values are compared exactly;
// floats order NaN above +inf.
namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  // Median of each k x k window (k odd, centered); out-of-image pixels by `border` (cval
  // converted to the dtype).
  void median(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k,
              Border border, double cval);
)
}  // namespace imkern
