// Color conversions on batches of images (N, H, W, C); see common.hpp for ImageDesc.
//
// The per-pixel formulas live in imkern/color_pixel.hpp (host + device inline), shared by the
// CPU kernels (csrc/cpu/color/*.cpp) and the CUDA kernels (csrc/cuda/color/*.cu): integer
// results are computed by the same integer / fixed-point arithmetic on both devices, so
// uint8 and uint16 outputs are identical bit for bit.
#pragma once
#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

// Which conversion; the codes are shared with python/imkern/color.py (_OPS).
enum class ColorOp : int {
  rgb_to_gray = 0,   // C_in 3 or 4 -> 1
  bgr_to_gray = 1,   // C_in 3 or 4 -> 1
  gray_to_rgb = 2,   // 1 -> 3
  swap_rb = 3,       // 3 -> 3, 4 -> 4 (alpha kept): rgb_to_bgr / bgr_to_rgb
  rgba_to_rgb = 4,   // 4 -> 3, alpha dropped or blended onto ColorParams::bg
  rgb_to_hsv = 5,    // 3 -> 3
  hsv_to_rgb = 6,    // 3 -> 3
  rgb_to_ycbcr = 7,  // 3 -> 3
  ycbcr_to_rgb = 8,  // 3 -> 3
  rgb_to_lab = 9,    // 3 -> 3
  lab_to_rgb = 10,   // 3 -> 3
};

struct ColorParams {
  bool blend = false;           // rgba_to_rgb: blend onto bg instead of dropping alpha
  double bg[3] = {0, 0, 0};     // background color in the image's own scale
};

IMKERN_DECLARE_FOR_EACH_ISA(
  // gray.cpp: rgb_to_gray, bgr_to_gray, gray_to_rgb
  void color_gray(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d);
  // channels.cpp: swap_rb, rgba_to_rgb
  void color_channels(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      const ColorParams& p);
  // hsv.cpp: rgb_to_hsv, hsv_to_rgb
  void color_hsv(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d);
  // ycbcr.cpp: rgb_to_ycbcr, ycbcr_to_rgb
  void color_ycbcr(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d);
  // lab.cpp: rgb_to_lab, lab_to_rgb
  void color_lab(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d);
)

namespace cuda {
// csrc/cuda/color/*.cu: the same conversions on the caller's stream (void* = cudaStream_t).
void color_gray_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                     void* stream);
void color_channels_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst,
                         const ImageDesc& d, const ColorParams& p, void* stream);
void color_hsv_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    void* stream);
void color_ycbcr_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                      void* stream);
void color_lab_cuda(ColorOp op, DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                    void* stream);
}  // namespace cuda

}  // namespace imkern
