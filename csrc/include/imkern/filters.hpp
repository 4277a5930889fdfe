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
  // The morphological gradient dilation - erosion (same footprint, anchor and border; cval_dilate
  // and cval_erode: each op's constant), in one pass for rectangles up to 8 rows. Exactly the
  // difference of the two morphology() results (integers: never negative).
  void morph_gradient(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      const uint8_t* fp, int fh, int fw, int ay, int ax, Border border, double cval_dilate,
                      double cval_erode);
  // Bilateral filter as cv2.bilateralFilter (window radius `radius`, circular), uint8 or
  // float32 with 1 or 3 channels; sigmas positive.
  void bilateral(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int radius,
                 double sigma_color, double sigma_space, Border border);
)
}  // namespace imkern

// ---- Derivatives, thresholds, edges (sobel.cpp, threshold.cpp, canny.cpp, unsharp.cpp) -----
namespace imkern {
// How deriv_filter combines its two separable filters F0 = ky0 (x) kx0 and F1 = ky1 (x) kx1.
enum class DerivMode : int {
  single = 0,  // out0 = F0 + delta
  sum = 1,     // out0 = F0 + F1 + delta
  pair = 2,    // out0 = F0, out1 = F1
  mag_l1 = 3,  // out0 = |F0| + |F1|
  mag_l2 = 4,  // out0 = sqrt(F0^2 + F1^2)
};
// threshold kinds (cv2.THRESH_* values)
enum class ThreshKind : int { binary = 0, binary_inv = 1, trunc = 2, tozero = 3, tozero_inv = 4 };

IMKERN_DECLARE_FOR_EACH_ISA(
  // Output dtype: float32 for u8/u16/f32 sources, float64 for f64 (dst0/dst1 of that type,
  // the source's shape). Kernels kh x kw (anchors at the centers), src border by `border`.
  void deriv_filter(DType dtype, const void* src, const ImageDesc& s, void* dst0, const ImageDesc& d0,
                    void* dst1, const ImageDesc& d1, const double* kx0, const double* ky0,
                    const double* kx1, const double* ky1, int kw, int kh, DerivMode mode, double delta,
                    Border border, double cval);
  // out = src + amount * (src - blur) where |src - blur| > threshold, else src; blur the
  // separable filter ky (x) kx; rounded and saturated for integers. dst has src's dtype.
  void unsharp_mask(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    const double* ky, int kh, const double* kx, int kw, double amount, double threshold,
                    Border border, double cval);
  // cv2.threshold semantics; for integer dtypes thresh is floor(thresh) and maxval
  // round(maxval) saturated (as cv2 does), for float32 both are rounded to float32 first.
  void threshold(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                 ThreshKind kind, double thresh, double maxval);
  // adaptive_threshold's compare (cv2.adaptiveThreshold's table): out = maxval where
  // src - mean > -idelta (inv: <= -idelta), else 0; idelta is ceil(c) (inv: floor(c)).
  void adaptive_compare_u8(const uint8_t* src, const ImageDesc& s, const uint8_t* mean, const ImageDesc& m,
                           uint8_t* dst, const ImageDesc& d, int idelta, uint8_t maxval, bool inv);
  // Histogram of a u8 (256 bins) or u16 (65536 bins) image: hist[v] = count of value v.
  void histogram_int(DType dtype, const void* src, const ImageDesc& s, int64_t* hist);
  // cv2's Otsu and triangle levels from an nbins histogram (as cv2.threshold computes them).
  double otsu_level(const int64_t* hist, int nbins);
  double triangle_level(const int64_t* hist, int nbins);
  // Canny on u8 (N, H, W, C) -> u8 (N, H, W) edge map (0 / 255), as cv2.Canny: Sobel ksize
  // 3/5/7 with replicated borders (7: scaled by 1/16, rounded), L1 or L2 magnitude (integer
  // thresholds low/high as cv2 derives them), the strongest channel per pixel, cv2's
  // non-maximum suppression, hysteresis by 8-connectivity.
  void canny_u8(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, int ksize,
                bool l2, int low, int high);
)
}  // namespace imkern

// ---- CUDA: derivatives, thresholds, edges (csrc/cuda/filters/sobel.cu, unsharp.cu,
// threshold.cu, canny.cu): device pointers, the caller's stream (a cudaStream_t as void*),
// nothing synchronized, nothing launched for empty inputs; host pointers for the (small)
// filter taps, copied into the kernel arguments.
namespace imkern {
namespace cuda {

constexpr int kMaxDerivTaps = 7;  // kernel sizes of the CUDA derivative filters

// deriv_filter (filters.hpp) on CUDA: out dtype float32 (u8/u16/f16/f32) or float64 (f64).
void deriv_filter_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst0, const ImageDesc& d0, void* dst1,
                       const ImageDesc& d1, const double* kx0, const double* ky0, const double* kx1,
                       const double* ky1, int kw, int kh, DerivMode mode, double delta, Border border, double cval,
                       void* stream);
// unsharp_mask (filters.hpp): a row pass into a stream-ordered float temporary, then one
// column pass that blurs and combines.
void unsharp_mask_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                       const double* ky, int kh, const double* kx, int kw, double amount, double threshold,
                       Border border, double cval, void* stream);
void threshold_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, ThreshKind kind,
                    double thresh, double maxval, void* stream);
// adaptive_compare_u8 (filters.hpp) on CUDA.
void adaptive_compare_cuda(const uint8_t* src, const ImageDesc& s, const uint8_t* mean, const ImageDesc& m,
                           uint8_t* dst, const ImageDesc& d, int idelta, uint8_t maxval, bool inv, void* stream);
// Adds the image's value counts into hist (256 bins for u8, 65536 for u16; zeroed by the caller).
void histogram_int_cuda(DType dtype, const void* src, const ImageDesc& s, unsigned long long* hist, void* stream);
// canny_u8 (filters.hpp) on CUDA, hysteresis on the device (union-find over the candidates).
void canny_cuda(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, int ksize, bool l2, int low,
                int high, void* stream);

}  // namespace cuda
}  // namespace imkern

// ---- uint8 Gaussian as cv2.GaussianBlur (csrc/cpu/filters/gaussian_u8.cpp, csrc/cuda/filters/
// gaussian_u8.cu): integer taps ky (kh) and kx (kw), odd sizes, 8 fractional bits, each kernel
// summing to 256 with every tap in [0, 256] and kx symmetric or not;
// h = sum_j kx[j] src(x + j - kw/2) (exact in 16 bits), out = (sum_i ky[i] h(y + i - kh/2) + 2^15) >> 16,
// out-of-image pixels by `border` (cval, 0..255, for Border::constant). Exact integer sums: the
// same bits on every ISA, thread count and device.
namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  void gaussian_u8(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, const int32_t* ky, int kh,
                   const int32_t* kx, int kw, Border border, int cval);
)
namespace cuda {
constexpr int kMaxGaussU8Taps = 63;  // kh, kw of the CUDA kernel (taps passed by value)
// Host taps, copied into the kernel arguments; the caller's stream; nothing launched for empty images.
void gaussian_u8_cuda(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, const int32_t* ky,
                      int kh, const int32_t* kx, int kw, Border border, int cval, void* stream);
}  // namespace cuda
}  // namespace imkern

// ---- uint16 Gaussian as cv2.GaussianBlur (csrc/cpu/filters/gaussian_u16.cpp, csrc/cuda/filters/
// gaussian_u8.cu): the same contract with taps in 16 fractional bits, each kernel summing to
// 65536 and symmetric (so every tap but the center is at most 32768);
// h = sum_j kx[j] src(x + j - kw/2) (exact in 32 bits), out = (sum_i ky[i] h(y + i - kh/2) + 2^31) >> 32
// (exact in 64 bits), cval 0..65535. The same bits on every ISA, thread count and device.
namespace imkern {
IMKERN_DECLARE_FOR_EACH_ISA(
  void gaussian_u16(const uint16_t* src, const ImageDesc& s, uint16_t* dst, const ImageDesc& d, const int32_t* ky,
                    int kh, const int32_t* kx, int kw, Border border, int cval);
)
namespace cuda {
constexpr int kMaxGaussU16Taps = 33;  // kh, kw of the CUDA kernel (its shared rows of 32 bits: <= 48 KiB)
void gaussian_u16_cuda(const uint16_t* src, const ImageDesc& s, uint16_t* dst, const ImageDesc& d, const int32_t* ky,
                       int kh, const int32_t* kx, int kw, Border border, int cval, void* stream);
}  // namespace cuda
}  // namespace imkern
