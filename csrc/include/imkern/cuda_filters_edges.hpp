// CUDA launchers of the derivative, threshold and edge filters (csrc/cuda/filters/sobel.cu,
// unsharp.cu, threshold.cu, canny.cu). As in cuda.hpp: device pointers, the caller's stream
// (a cudaStream_t as void*), nothing synchronized, nothing launched for empty inputs; host
// pointers for the (small) filter taps, copied into the kernel arguments.
#pragma once
#include <cstdint>

#include "imkern/common.hpp"
#include "imkern/filters.hpp"

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
